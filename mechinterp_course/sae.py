"""Sparse autoencoders: a wide dictionary of directions, few of them active per input (chapter 06's
reference answers; the checks compare against these).

An SAE reads an activation x (d_in) into latents f = act(W_enc (x - b_dec) + b_enc) (d_sae, most
zero) and writes back x_hat = W_dec f + b_dec. Two ways to keep f sparse:

- ReLU with an L1 penalty on f (scaled by each decoder row's norm), the first recipe most
  courses teach;
- TopK: keep the k largest pre-activations, zero the rest, so sparsity is set, not tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .circuits import per_token_loss


class SAE(torch.nn.Module):
    """A sparse autoencoder. k=None: ReLU latents (train with an L1 penalty); k: TopK latents.

    rescale_by_decoder_norm: read and write each latent as if its decoder row had unit norm
    (SAELens's TopK default), so drifting decoder norms cannot change which k latents win."""

    def __init__(self, d_in: int, d_sae: int, k: int | None = None, seed: int = 0,
                 rescale_by_decoder_norm: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(d_sae, d_in, generator=g)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True) * 0.1
        self.W_dec = torch.nn.Parameter(W_dec)            # (d_sae, d_in): one direction a row
        self.W_enc = torch.nn.Parameter(W_dec.T.clone())  # (d_in, d_sae): tied at the start
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae))
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))
        self.k = k
        self.rescale_by_decoder_norm = rescale_by_decoder_norm

    def weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """(W_enc, b_enc, W_dec) as the SAE uses them: with rescaling, pre-activations are
        multiplied by each decoder row's norm and decoder rows are used at unit norm."""
        if not self.rescale_by_decoder_norm:
            return self.W_enc, self.b_enc, self.W_dec
        norms = self.W_dec.norm(dim=1)
        return self.W_enc * norms, self.b_enc * norms, self.W_dec / norms[:, None]

    def encode(self, x: Tensor) -> Tensor:
        W_enc, b_enc, _ = self.weights()
        return encode(x, W_enc, b_enc, self.b_dec, self.k)

    def decode(self, f: Tensor) -> Tensor:
        return f @ self.weights()[2] + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., d_in) -> (x_hat (..., d_in), latents (..., d_sae)).

        TopK decodes from its k winners only: the same sum as decode(f), but reading k rows of
        W_dec instead of multiplying by all d_sae of them, forward and backward (the matmuls are
        most of the cost of a training step)."""
        W_enc, b_enc, W_dec = self.weights()
        if self.k is None:
            f = encode(x, W_enc, b_enc, self.b_dec)
            return f @ W_dec + self.b_dec, f
        # (x - b_dec) @ W_enc, written so that b_dec's gradient costs a vector, not a matmul
        pre = x @ W_enc + (b_enc - self.b_dec @ W_enc)
        top = pre.topk(self.k, dim=-1, sorted=False)
        values = torch.relu(top.values)
        x_hat = torch.nn.functional.embedding_bag(
            top.indices.reshape(-1, self.k), W_dec, per_sample_weights=values.reshape(-1, self.k),
            mode="sum").reshape(*x.shape[:-1], -1) + self.b_dec
        return x_hat, torch.zeros_like(pre).scatter(-1, top.indices, values)


def encode(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor, k: int | None = None) -> Tensor:
    """Latents (..., d_sae): ReLU of the pre-activations, or with k, only the k largest kept."""
    pre = (x - b_dec) @ W_enc + b_enc
    if k is None:
        return torch.relu(pre)
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))


def l1_loss(x: Tensor, x_hat: Tensor, f: Tensor, W_dec: Tensor, l1_coeff: float) -> Tensor:
    """Mean squared reconstruction error (summed over d_in) plus l1_coeff * sum_i f_i ||W_dec_i||,
    averaged over the batch. Weighting by decoder norms stops the SAE from shrinking f and
    growing W_dec to dodge the penalty."""
    mse = (x_hat - x).pow(2).sum(-1).mean()
    sparsity = (f * W_dec.norm(dim=1)).sum(-1).mean()
    return mse + l1_coeff * sparsity


def fraction_of_variance_explained(x: Tensor, x_hat: Tensor) -> Tensor:
    """1 - sum of squared errors / sum of squared deviations from the mean activation."""
    return 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()


def mean_l0(f: Tensor) -> Tensor:
    """Mean number of active (non-zero) latents per input."""
    return (f != 0).float().sum(-1).mean()


def dead_fraction(f: Tensor) -> Tensor:
    """Fraction of latents that never activate on these inputs. f: (n_inputs, d_sae)."""
    return (f != 0).sum(0).eq(0).float().mean()


def mean_max_cosine(learned: Tensor, true: Tensor) -> Tensor:
    """For each true feature (rows of `true`), the best cosine similarity with any learned
    direction (rows of `learned`), averaged: 1 when every feature was recovered."""
    a = learned / learned.norm(dim=1, keepdim=True).clamp(min=1e-8)
    b = true / true.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return (b @ a.T).max(dim=1).values.mean()


@dataclass
class TrainResult:
    losses: list[float]
    fve: float
    l0: float
    dead: float


def train_step(sae: SAE, opt: torch.optim.Optimizer, x: Tensor, l1_coeff: float = 0.0) -> Tensor:
    """One optimisation step on a batch x (n, d_in); returns the loss. The L1 variant keeps its
    decoder rows at unit norm after the step, so the penalty cannot be dodged; TopK needs no
    penalty and no constraint."""
    x_hat, f = sae(x)
    if sae.k is None:
        loss = l1_loss(x, x_hat, f, sae.W_dec, l1_coeff)
    else:
        loss = (x_hat - x).pow(2).sum(-1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if sae.k is None:
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True)
    return loss.detach()


@torch.enable_grad()  # chapters turn gradients off for the model; the SAE still needs them
def train(sae: SAE, batches, steps: int, lr: float = 1e-3, l1_coeff: float = 0.0,
          progress: bool = True, desc: str = "training SAE", step_fn=train_step,
          max_grad_norm: float | None = None) -> TrainResult:
    """Adam over an iterator of activation batches; the metrics are read over the last tenth of
    training. max_grad_norm: clip the gradient's norm before each step (SAELens clips at 1)."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    if max_grad_norm is not None:  # runs inside opt.step(), so any step_fn gets it
        params = list(sae.parameters())

        def clip(*_):
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.register_step_pre_hook(clip)
    losses = []
    seen = torch.zeros(sae.W_dec.shape[0], dtype=torch.bool, device=sae.W_dec.device)
    fve_sum = l0_sum = n = 0.0
    last = max(1, steps // 10)
    for step in tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0):
        x = next(batches)
        losses.append(float(step_fn(sae, opt, x, l1_coeff)))
        if step >= steps - last:
            with torch.no_grad():
                x_hat, f = sae(x)
                seen |= (f != 0).any(0)
                fve_sum += float(fraction_of_variance_explained(x, x_hat))
                l0_sum += float(mean_l0(f))
                n += 1
    return TrainResult(losses, fve_sum / n, l0_sum / n, float((~seen).float().mean()))


def batches_from(data: Tensor, batch: int, seed: int = 0):
    """Endless shuffled batches from a (n, d) tensor (memory-mapped or not)."""
    g = torch.Generator().manual_seed(seed)
    while True:
        for idx in torch.randperm(len(data), generator=g).split(batch):
            if len(idx) == batch:
                yield data[idx]


def synthetic_features(n_features: int, d: int, seed: int = 0) -> Tensor:
    """(n_features, d) random unit-norm feature directions: the ground truth of a toy test."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n_features, d, generator=g)
    return f / f.norm(dim=1, keepdim=True)


def synthetic_batches(features: Tensor, batch: int, active: float = 3.0, seed: int = 0):
    """Endless batches of activations built from known sparse features: each input is a sum of
    on average `active` features with uniform [0, 1] coefficients."""
    g = torch.Generator().manual_seed(seed)
    n = features.shape[0]
    while True:
        on = torch.rand(batch, n, generator=g) < active / n
        coeff = torch.rand(batch, n, generator=g) * on
        yield coeff @ features


@torch.no_grad()
def weights_fingerprint(model) -> str:
    """A short hash of every parameter's bytes: which weights produced a stored activation file."""
    import hashlib

    digest = hashlib.sha1()
    for p in model.parameters():
        digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def collect_activations(model, name: tuple[str, int], path: str | Path, n_tokens: int,
                        seed: int = 1, rows: int = 16, progress: bool = True) -> Tensor:
    """Run the model over world text, documents packed into full-context rows joined by
    end-of-text as in training, and store one activation site (skipping each row's first
    position, the attention sink) as a (n_tokens, d) float32 file at `path`, inside the working
    directory. Returns it memory-mapped, so memory stays bounded; reuses the file when it already
    holds the same request from the same weights (a retrained model must not get stale ones)."""
    import json

    import numpy as np
    from tqdm.auto import tqdm

    from . import world

    path = Path(path)
    meta = path.with_suffix(".json")
    probe = model.to_tokens("The")
    _, cache = model.run_with_cache(probe, names=[name])  # the site's width (d_model, d_mlp, ...)
    d = cache[name].shape[-1]
    if cache[name].dim() != 3 or cache[name].shape[:2] != probe.shape:
        raise ValueError(f"collect_activations stores one vector per token; {name} has shape "
                         f"{tuple(cache[name].shape)} for {tuple(probe.shape)} tokens")
    want = {"name": list(name), "n_tokens": n_tokens, "seed": seed, "model": model.cfg.model_name,
            "weights": weights_fingerprint(model), "width": d}
    if not (path.exists() and meta.exists() and json.loads(meta.read_text()) == want):
        path.parent.mkdir(parents=True, exist_ok=True)
        out = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_tokens, d))
        eot, n_ctx = model.tokenizer.eos_token_id, model.cfg.n_ctx
        rng = np.random.default_rng(seed)
        filled = 0
        with tqdm(total=n_tokens, desc=f"collecting {name[0]} {name[1]}", disable=not progress,
                  mininterval=1.0) as bar:
            while filled < n_tokens:
                ids: list[int] = []
                while len(ids) < rows * n_ctx:
                    text = world.sample_document(rng).text
                    ids += [eot] + model.tokenizer(text, add_special_tokens=False)["input_ids"]
                tokens = torch.tensor(ids[: rows * n_ctx], device=model.cfg.device)
                _, cache = model.run_with_cache(tokens.view(rows, n_ctx), names=[name])
                acts = cache[name][:, 1:].reshape(-1, d).float().cpu().numpy()
                take = min(len(acts), n_tokens - filled)
                out[filled: filled + take] = acts[:take]
                filled += take
                bar.update(take)
        out.flush()
        del out
        meta.write_text(json.dumps(want))
    # copy-on-write: a writable view for torch, and the file on disk is never modified
    return torch.from_numpy(np.memmap(path, dtype=np.float32, mode="c", shape=(n_tokens, d)))


def splice_hook(sae: SAE):
    """A hook that replaces an activation with the SAE's reconstruction of it."""
    def hook(x: Tensor) -> Tensor:
        return sae(x)[0]
    return hook


@torch.no_grad()
def loss_recovered(model, sae: SAE, name: tuple[str, int], tokens: Tensor) -> dict[str, float]:
    """Next-token loss clean, with the SAE's reconstruction spliced in, and with the site
    zero-ablated; recovered = (zero - spliced) / (zero - clean)."""
    def loss_with(hooks):
        return float(per_token_loss(model, tokens, hooks).mean())
    clean = loss_with({})
    spliced = loss_with({name: splice_hook(sae)})
    zero = loss_with({name: lambda x: torch.zeros_like(x)})
    return {"clean": clean, "spliced": spliced, "zero": zero,
            "recovered": (zero - spliced) / (zero - clean)}


@dataclass
class LatentSummary:
    """What a latent's dashboard shows: where it fires and what it writes."""

    latent: int
    activations: Tensor                    # (tokens,) over a labelled sample
    top_contexts: list[tuple[float, str]]  # (activation, context), strongest first
    promoted: list[tuple[str, float]]      # tokens its decoder direction raises most
    suppressed: list[tuple[str, float]]    # ... and lowers most
    best_labels: list[tuple[str, float]]   # world labels it detects best, by AUROC
    fires: float                           # share of tokens where it is active


@torch.no_grad()
def summarise_latent(model, sae: SAE, data, latents: Tensor, latent: int, k: int = 8,
                     labels: dict[str, Tensor] | None = None) -> LatentSummary:
    """A latent's dashboard numbers. data: a `neurons.NeuronData` collected at the SAE's site;
    latents: sae.encode(data.acts); labels: data.token_labels() (computed when not given)."""
    from .lens import direction_logits
    from .neurons import auroc

    if not 0 <= latent < latents.shape[1]:
        raise IndexError(f"latent {latent} out of range: the SAE has {latents.shape[1]} latents")
    a = latents[:, latent]
    top = a.topk(k).indices
    logits = direction_logits(model, sae.W_dec[latent])
    up, down = logits.topk(k), (-logits).topk(k)
    labels = data.token_labels() if labels is None else labels
    scores = {name: float(auroc(a[:, None], v)[0]) for name, v in labels.items()}
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
    return LatentSummary(
        latent, a, [(float(a[i]), data.contexts[i]) for i in top if a[i] > 0],
        [(model.to_string(int(t)), float(v)) for t, v in zip(up.indices, up.values)],
        [(model.to_string(int(t)), -float(v)) for t, v in zip(down.indices, down.values)],
        best, float((a > 0).float().mean()))
