"""Transcoders: a sparse replacement for each MLP (Dunefsky et al. 2024; the replacement model of
Anthropic's "Circuit Tracing", 2025). Where an SAE reads an activation and writes it back, a
transcoder reads the MLP's input (ln2) and writes the MLP's output (mlp_out):

    f = TopK(ReLU((x - b_in) @ W_enc + b_enc))   (..., d_tc), k active
    y_hat = f @ W_dec + b_dec                     (..., d_out)

so each latent is a direction read from the residual stream and a direction written back, and a
forward pass through transcoders instead of MLPs runs on sparse, named latents. Training is
chapter 06's TopK recipe with the target changed, plus the auxiliary loss of Gao et al. (2024)
that gives latents dead for a while a gradient towards the residual error.

The shipped set (``load``) was trained on the course model by ``python -m
mechinterp_course.transcoders --export mechinterp_course/transcoders``; its file records the
weights it was trained on and refuses any other model.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .sae import collect_activations, dead_fraction, fraction_of_variance_explained, mean_l0

FOLDER = Path(__file__).parent / "transcoders"
FILE = "course_model.safetensors"
RECIPE = {"d_tc": 512, "k": 16, "n_tokens": 120_000, "held_out": 20_000, "steps": 1500,
          "batch": 1024, "lr": 2e-3, "aux_k": 64, "dead_after": 50, "seed": 1}


class Transcoder(torch.nn.Module):
    """A TopK transcoder from d_in (the MLP's input) to d_out (its output)."""

    def __init__(self, d_in: int, d_tc: int, d_out: int, k: int, seed: int = 0):
        super().__init__()
        if not 1 <= k <= d_tc:
            raise ValueError(f"k must be between 1 and d_tc={d_tc}, got {k}")
        g = torch.Generator().manual_seed(seed)
        read = torch.randn(d_tc, d_in, generator=g)
        self.W_enc = torch.nn.Parameter(read.T / read.norm(dim=1) * 0.1)  # (d_in, d_tc)
        self.b_enc = torch.nn.Parameter(torch.zeros(d_tc))
        self.W_dec = torch.nn.Parameter(torch.randn(d_tc, d_out, generator=g) * 0.01)
        # W_enc (d_in, d_tc) reads, W_dec (d_tc, d_out) writes
        self.b_dec = torch.nn.Parameter(torch.zeros(d_out))
        self.b_in = torch.nn.Parameter(torch.zeros(d_in))  # centres the input
        self.k = k

    def pre_acts(self, x: Tensor) -> Tensor:
        """(..., d_tc): every latent's pre-activation, before TopK."""
        return (x - self.b_in) @ self.W_enc + self.b_enc

    def encode(self, x: Tensor) -> Tensor:
        """(..., d_tc) latents: the k largest pre-activations through a ReLU, the rest 0."""
        pre = self.pre_acts(x)
        top = pre.topk(self.k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def decode(self, f: Tensor) -> Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., d_in) -> (y_hat (..., d_out), latents (..., d_tc))."""
        f = self.encode(x)
        return self.decode(f), f


@dataclass
class Fit:
    """How well a transcoder stands in for its MLP, on held-out tokens."""

    fve: float    # fraction of mlp_out's variance explained
    l0: float     # mean active latents per token
    dead: float   # share of latents that never fire on these tokens


def evaluate(tc: Transcoder, x: Tensor, y: Tensor) -> Fit:
    """Fit on held-out (x, y): ln2 and mlp_out of the same tokens, (n, d) each."""
    with torch.no_grad():
        y_hat, f = tc(x)
        return Fit(float(fraction_of_variance_explained(y, y_hat)), float(mean_l0(f)),
                   float(dead_fraction(f)))


@torch.enable_grad()
def train(tc: Transcoder, x: Tensor, y: Tensor, steps: int, batch: int = 1024, lr: float = 2e-3,
          aux_k: int = 64, dead_after: int = 50, seed: int = 0, progress: bool = True,
          desc: str = "training transcoder") -> list[float]:
    """Adam on the squared error of y_hat against y (summed over d_out), on random batches of
    rows of x and y (n, d). A latent that has not fired for `dead_after` steps is dead; the
    auxiliary loss asks the aux_k largest dead latents to predict the residual error, so they
    come back (Gao et al. 2024, weighted 1/32). Returns the main loss per step."""
    from tqdm.auto import tqdm

    if len(x) != len(y):
        raise ValueError(f"x and y must be the same tokens: {len(x)} and {len(y)} rows")
    opt = torch.optim.Adam(tc.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    idle = torch.zeros(tc.W_dec.shape[0])  # steps since each latent last fired
    losses = []
    for _ in tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0):
        rows = torch.randint(0, len(x), (batch,), generator=g)
        xb, yb = x[rows], y[rows]
        y_hat, f = tc(xb)
        err = yb - y_hat
        loss = err.pow(2).sum(-1).mean()
        losses.append(float(loss.detach()))
        idle = torch.where((f > 0).any(0), torch.zeros_like(idle), idle + 1)
        dead = idle > dead_after
        if aux_k and dead.any():
            pre = tc.pre_acts(xb).masked_fill(~dead, float("-inf"))
            top = pre.topk(min(int(dead.sum()), aux_k), dim=-1)
            f_dead = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
            loss = loss + (f_dead @ tc.W_dec - err.detach()).pow(2).sum(-1).mean() / 32
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def collect_pairs(model, layer: int, folder: str | Path, n_tokens: int, seed: int = 1,
                  progress: bool = True) -> tuple[Tensor, Tensor]:
    """(ln2, mlp_out) of one layer over the same world text, (n_tokens, d_model) each, stored
    memory-mapped in `folder` (inside the working directory) and reused while the weights are
    the same: the same seed gives the same tokens, so row i of both is one token."""
    folder = Path(folder)
    x = collect_activations(model, ("ln2", layer), folder / f"ln2_{layer}.bin", n_tokens, seed,
                            progress=progress)
    y = collect_activations(model, ("mlp_out", layer), folder / f"mlp_out_{layer}.bin",
                            n_tokens, seed, progress=progress)
    return x, y


def replacement_hooks(transcoders: dict[int, Transcoder], errors: dict[int, Tensor] | None = None,
                      edits: list[tuple[int, int, int, float]] = ()):
    """Hooks that replace each listed layer's mlp_out by its transcoder's output on that layer's
    ln2: the replacement model. errors: {layer: (batch, pos, d_model)} added back to each
    output (`mlp_errors` of the same tokens), the error nodes of the local replacement model,
    with which the replacement model is the model again. edits: latents set to a value before
    decoding, [(layer, pos, latent, value)]."""
    seen: dict[int, Tensor] = {}
    hooks = {}
    for layer, tc in transcoders.items():
        mine = [(pos, latent, value) for at, pos, latent, value in edits if at == layer]

        def read(x, layer=layer):
            seen[layer] = x

        def write(x, layer=layer, tc=tc, mine=mine):
            f = tc.encode(seen.pop(layer))
            for pos, latent, value in mine:
                f[:, pos, latent] = value
            y_hat = tc.decode(f).to(x.dtype)
            return y_hat if errors is None else y_hat + errors[layer].to(x.dtype)
        hooks[("ln2", layer)] = read
        hooks[("mlp_out", layer)] = write
    return hooks


@torch.no_grad()
def mlp_errors(model, transcoders: dict[int, Transcoder], tokens: Tensor) -> dict[int, Tensor]:
    """{layer: mlp_out - transcoder(ln2)}, (batch, pos, d_model), on the model's own run: what
    each transcoder misses on these tokens."""
    names = [(name, layer) for layer in transcoders for name in ("ln2", "mlp_out")]
    _, cache = model.run_with_cache(tokens, names=names)
    return {layer: cache["mlp_out", layer] - tc(cache["ln2", layer])[0]
            for layer, tc in transcoders.items()}


@torch.no_grad()
def spliced_losses(model, transcoders: dict[int, Transcoder], tokens: Tensor) -> dict[str, float]:
    """Mean next-token loss on `tokens` (batch, pos): clean; with every listed MLP replaced by
    its transcoder (the replacement model); with those MLPs' outputs zeroed; and recovered =
    (zeroed - replaced) / (zeroed - clean), the share of what the MLPs do that the
    transcoders do."""
    from .circuits import per_token_loss

    def loss(hooks):
        return float(per_token_loss(model, tokens, hooks).mean())
    clean, replaced = loss({}), loss(replacement_hooks(transcoders))
    zeroed = loss({("mlp_out", layer): lambda x: torch.zeros_like(x) for layer in transcoders})
    return {"clean": clean, "replaced": replaced, "zeroed": zeroed,
            "recovered": (zeroed - replaced) / (zeroed - clean)}


@torch.no_grad()
def top1_agreement(model, transcoders: dict[int, Transcoder], tokens: Tensor,
                   hooks=None) -> float:
    """Share of rows of `tokens` (batch, pos; one prompt a row, no padding) where the
    replacement model's most likely next token at the last position is the model's. hooks: what
    makes the replacement model from the transcoders (`replacement_hooks`, or a learner's)."""
    clean = model(tokens)[:, -1].argmax(-1)
    with model.hooks((hooks or replacement_hooks)(transcoders)):
        replaced = model(tokens)[:, -1].argmax(-1)
    return float((clean == replaced).float().mean())


def shuffled_copy(tc: Transcoder, generator: torch.Generator) -> Transcoder:
    """A copy in which each latent reads as before but writes another latent's direction
    (W_dec's rows shuffled among the latents); `tc` is left as it was."""
    copy = Transcoder(tc.W_enc.shape[0], tc.W_enc.shape[1], tc.W_dec.shape[1], tc.k)
    copy.load_state_dict(tc.state_dict())
    order = torch.randperm(len(copy.W_dec), generator=generator)
    copy.W_dec.data = copy.W_dec.data[order]  # (d_tc, d_out): rows are the latents' writes
    return copy.to(tc.W_dec.device).eval().requires_grad_(False)


def shuffled_writes(transcoders: dict[int, Transcoder], seed: int = 0,
                    shuffle=shuffled_copy) -> dict[int, Transcoder]:
    """The null: every layer's transcoder through `shuffle` (`shuffled_copy`, or a learner's),
    one generator seeded once for all layers."""
    g = torch.Generator().manual_seed(seed)
    return {layer: shuffle(tc, g) for layer, tc in transcoders.items()}


# --- the shipped set ----------------------------------------------------------------------------

def save(transcoders: dict[int, Transcoder], model, path: str | Path, record: dict) -> Path:
    """One safetensors file: every layer's weights, and in its metadata the model weights'
    fingerprint, k, and `record` (recipe, fits, machine)."""
    from safetensors.torch import save_file

    from .sae import weights_fingerprint

    tensors = {f"{layer}.{name}": p.detach().contiguous()
               for layer, tc in transcoders.items() for name, p in tc.named_parameters()}
    meta = {"weights": weights_fingerprint(model), "model": model.cfg.model_name,
            "k": str(next(iter(transcoders.values())).k), "record": json.dumps(record)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata=meta)
    return path


def load(model, path: str | Path | None = None) -> dict[int, Transcoder]:
    """The shipped transcoders, {layer: Transcoder}, for the model whose weights they were
    trained on; any other model (a retrained course model, SmolLM2) is refused, since a
    transcoder read on other weights would give silently wrong latents."""
    from safetensors import safe_open

    from .sae import weights_fingerprint

    path = Path(path) if path is not None else FOLDER / FILE
    if not path.exists():
        raise FileNotFoundError(f"no transcoders at {path}: train them with python -m "
                                f"mechinterp_course.transcoders --export {path.parent}")
    with safe_open(str(path), framework="pt") as file:
        meta = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    if meta["weights"] != weights_fingerprint(model):
        raise ValueError(f"these transcoders were trained on other weights ({meta['model']}, "
                         f"fingerprint {meta['weights']}); this model's differ: train a set for "
                         f"it with mechinterp_course.transcoders.train")
    out = {}
    for layer in sorted({int(key.split(".")[0]) for key in tensors}):
        w = {key.split(".", 1)[1]: v for key, v in tensors.items() if key.startswith(f"{layer}.")}
        tc = Transcoder(w["W_enc"].shape[0], w["W_enc"].shape[1], w["W_dec"].shape[1],
                        int(meta["k"]))
        tc.load_state_dict(w)
        out[layer] = tc.eval().requires_grad_(False).to(model.cfg.device)
    return out


def record(path: str | Path | None = None) -> dict:
    """What the shipped file says of itself: recipe, held-out fits per layer, machine."""
    from safetensors import safe_open

    with safe_open(str(path or FOLDER / FILE), framework="pt") as file:
        return json.loads(file.metadata()["record"])


def build(model, work: str | Path, recipe: dict = RECIPE,
          progress: bool = True) -> tuple[dict[int, Transcoder], dict]:
    """Train one transcoder a layer with `recipe`; returns them and their record."""
    from .provenance import machine

    torch.manual_seed(recipe["seed"])
    transcoders, fits = {}, {}
    n, held = recipe["n_tokens"], recipe["held_out"]
    for layer in range(model.cfg.n_layers):
        x, y = collect_pairs(model, layer, work, n, recipe["seed"], progress)
        train_x, train_y = x[: n - held], y[: n - held]
        tc = Transcoder(x.shape[1], recipe["d_tc"], y.shape[1], recipe["k"], seed=layer)
        with torch.no_grad():
            tc.b_in.copy_(train_x[:20_000].mean(0))
            tc.b_dec.copy_(train_y[:20_000].mean(0))
        train(tc, train_x, train_y, recipe["steps"], recipe["batch"], recipe["lr"],
              recipe["aux_k"], recipe["dead_after"], seed=layer, progress=progress,
              desc=f"transcoder {layer}")
        fits[layer] = vars(evaluate(tc, x[n - held:].clone(), y[n - held:].clone()))
        transcoders[layer] = tc.eval().requires_grad_(False)
    return transcoders, {"recipe": recipe, "fits": fits,
                         "losses": spliced_losses(model, transcoders, eval_tokens(model)),
                         "capital_top1_agreement": capital_agreement(model, transcoders),
                         "machine": machine()}


def eval_tokens(model, n: int = 64, pos: int = 24) -> Tensor:
    """(n, pos) held-out world text (documents of seed 999, as chapter 06 evaluates SAEs)."""
    from . import world

    rows = [model.to_tokens(d.text)[0, :pos] for d in world.documents(999, 4 * n)]
    return torch.stack([r for r in rows if len(r) == pos][:n]).to(model.cfg.device)


def capital_agreement(model, transcoders: dict[int, Transcoder], hooks=None) -> float:
    """top1_agreement over every 'The capital of X is' prompt of the world."""
    from . import world

    prompts = world.capital_prompts()
    agree = [top1_agreement(model, transcoders, model.to_tokens(p.text), hooks)
             for p in prompts]
    return sum(agree) / len(agree)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", default=str(FOLDER), help="folder to write the file into")
    parser.add_argument("--work", default="transcoder_activations",
                        help="folder for the activation files (about 500 MB)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .models import load_model

    model = load_model("course", device="cpu")
    transcoders, rec = build(model, args.work)
    path = save(transcoders, model, Path(args.export) / FILE, rec)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    for layer, fit in rec["fits"].items():
        print(f"layer {layer}: FVE {fit['fve']:.3f}, L0 {fit['l0']:.1f}, dead {fit['dead']:.1%}")


if __name__ == "__main__":
    main()
