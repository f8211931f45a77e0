"""Checks for chapter 06, sparse autoencoders."""

from __future__ import annotations

import torch

from .. import sae as ref
from . import ExerciseFailed, call, compare, expect_number, passed


def _case(batch=6, d_in=8, d_sae=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d_in, generator=g)
    W_enc = torch.randn(d_in, d_sae, generator=g) * 0.5
    b_enc = torch.randn(d_sae, generator=g) * 0.1
    b_dec = torch.randn(d_in, generator=g) * 0.3
    return x, W_enc, b_enc, b_dec


@torch.no_grad()
def check_encode(fn, model=None):
    """Exercise 6.1: fn(x, W_enc, b_enc, b_dec, k=None) -> latents."""
    ex = "Exercise 6.1"
    for batch, k, shift in ((6, None, 0.0), (6, 3, 0.0), (1, 5, 0.0), (4, 1, 0.0), (3, 5, -3.0)):
        x, W_enc, b_enc, b_dec = _case(batch, seed=batch + (k or 0))
        b_enc = b_enc + shift  # a negative shift: even some top-k pre-activations are negative
        out = call(ex, fn, x.clone(), W_enc.clone(), b_enc.clone(), b_dec.clone(), k)
        want = ref.encode(x, W_enc, b_enc, b_dec, k)
        pre = (x - b_dec) @ W_enc + b_enc
        mistakes = {"You did not subtract b_dec from x before encoding: the encoder reads "
                    "x - b_dec.": ref.encode(x + b_dec, W_enc, b_enc, b_dec, k)}
        if k is None:
            mistakes["No ReLU: latents must be non-negative."] = pre
        else:
            top = pre.topk(k, dim=-1)
            mistakes["You kept all latents: TopK zeroes everything but the k largest "
                     "pre-activations."] = torch.relu(pre)
            mistakes["You kept the k smallest: topk's default is largest=True, keep it."] = \
                torch.zeros_like(pre).scatter(-1, pre.topk(k, largest=False).indices,
                                              torch.relu(pre.topk(k, largest=False).values))
            abs_top = pre.abs().topk(k, dim=-1).indices
            mistakes["You picked the k largest by absolute value: pick the k largest "
                     "pre-activations."] = torch.zeros_like(pre).scatter(
                         -1, abs_top, torch.relu(pre.gather(-1, abs_top)))
            mistakes["The kept values need a ReLU too (a top pre-activation can be "
                     "negative)."] = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
        compare(ex, out, want, mistakes, what="the latents")
    passed(ex, "ReLU and TopK latents match")


@torch.no_grad()
def check_l1_loss(fn, model=None):
    """Exercise 6.2: fn(x, x_hat, f, W_dec, l1_coeff) -> scalar loss."""
    ex = "Exercise 6.2"
    g = torch.Generator().manual_seed(1)
    for batch, d_in, d_sae, coeff in ((8, 6, 12, 0.1), (3, 4, 10, 1.0)):
        x = torch.randn(batch, d_in, generator=g)
        x_hat = torch.randn(batch, d_in, generator=g)
        f = torch.relu(torch.randn(batch, d_sae, generator=g))
        W_dec = torch.randn(d_sae, d_in, generator=g) * 2
        out = call(ex, fn, x.clone(), x_hat.clone(), f.clone(), W_dec.clone(), coeff)
        if isinstance(out, float):
            out = torch.tensor(out)
        want = ref.l1_loss(x, x_hat, f, W_dec, coeff)
        mse = (x_hat - x).pow(2).sum(-1).mean()
        norms = W_dec.norm(dim=1)
        compare(ex, out, want, {
            "The penalty ignores the decoder norms: weight each latent by ||W_dec[i]||, or the "
            "SAE can shrink f and grow W_dec to dodge it.": mse + coeff * f.sum(-1).mean(),
            "The reconstruction error is averaged over d_in: sum over d_in, mean over the "
            "batch.": (x_hat - x).pow(2).mean() + coeff * (f * norms).sum(-1).mean(),
            "That is an L2 penalty: the sparsity term is the L1 norm, sum of |f_i| ||W_dec_i||.":
                mse + coeff * (f * norms).pow(2).sum(-1).mean(),
            "The penalty is summed over the batch: average it, like the error.":
                mse + coeff * (f * norms).sum(),
        }, what="the loss")
    passed(ex, "reconstruction error plus the decoder-norm-weighted L1 penalty")


@torch.no_grad()
def check_metrics(fn, model=None):
    """Exercise 6.4: fn(x, x_hat, f) -> (fve, l0, dead) as floats or scalar tensors."""
    ex = "Exercise 6.4"
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 6, generator=g) + 3.0  # a large mean: centring matters
    x_hat = x + 0.3 * torch.randn(50, 6, generator=g)
    f = torch.relu(torch.randn(50, 10, generator=g) - 1.0)
    f[:, :3] = 0  # three dead latents
    out = call(ex, fn, x.clone(), x_hat.clone(), f.clone())
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        raise ExerciseFailed(f"{ex}: return a triple (fve, l0, dead).")
    fve, l0, dead = (torch.as_tensor(v, dtype=torch.float32) for v in out)
    compare(ex, fve, ref.fraction_of_variance_explained(x, x_hat), {
        "The variance is not centred: divide by the squared deviations from the mean "
        "activation, not by the raw squares.": 1 - (x - x_hat).pow(2).sum() / x.pow(2).sum(),
        "That is the fraction *unexplained*: FVE is 1 minus it.":
            (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum(),
        "The variance is centred over the wrong axis: subtract each dimension's mean over the "
        "batch (x.mean(0)), not each input's mean over its dimensions.":
            1 - (x - x_hat).pow(2).sum() / (x - x.mean(1, keepdim=True)).pow(2).sum(),
        "The variance is centred on one overall mean: subtract each dimension's own mean over "
        "the batch (x.mean(0)).": 1 - (x - x_hat).pow(2).sum() / (x - x.mean()).pow(2).sum(),
    }, what="the fraction of variance explained")
    compare(ex, l0, ref.mean_l0(f), {
        "That is the fraction of latents active: L0 counts them (per input, then mean).":
            (f != 0).float().mean(),
        "That is the total over the batch: average over inputs.": (f != 0).float().sum(),
        "That is the mean activation (an L1 norm): L0 counts how many latents are non-zero, "
        "whatever their size.": f.sum(-1).mean(),
        "That is the mean of the activations: L0 counts the non-zero latents per input.":
            f.mean(),
    }, what="the mean L0")
    compare(ex, dead, ref.dead_fraction(f), {
        "That counts latents, not the fraction: divide by d_sae.":
            (f != 0).sum(0).eq(0).float().sum(),
        "A latent is dead when it is zero on *every* input, not on some.":
            (f == 0).any(0).float().mean(),
    }, what="the dead fraction")
    passed(ex, "fraction of variance explained, L0 and dead latents match")


def check_train_step(fn, model=None):
    """Exercise 6.3: fn(sae, opt, x, l1_coeff) -> loss; one optimisation step."""
    ex = "Exercise 6.3"
    feats = ref.synthetic_features(12, 6, seed=0)
    for k in (None, 3):
        runs = []
        for step_fn in (fn, ref.train_step):
            torch.manual_seed(0)
            sae = ref.SAE(6, 16, k=k, seed=1)
            opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
            batches = ref.synthetic_batches(feats, 32, seed=2)
            losses = []
            for _ in range(3):
                loss = call(ex, step_fn, sae, opt, next(batches), 0.1)
                losses.append(expect_number(ex, loss, "the loss"))
            runs.append((sae, losses))
        (mine, my_losses), (want, want_losses) = runs
        if k is None and not torch.allclose(mine.W_dec.norm(dim=1), torch.ones(16), atol=1e-4):
            raise ExerciseFailed(f"{ex}: after a step the decoder rows should have unit norm "
                                 "again (the L1 variant): divide W_dec by its row norms under "
                                 "torch.no_grad().")
        if abs(my_losses[0] - want_losses[0]) > 1e-4:
            raise ExerciseFailed(f"{ex}: the first loss is {my_losses[0]:.4f}, expected "
                                 f"{want_losses[0]:.4f}: ReLU SAEs use the L1 loss, TopK SAEs "
                                 "the reconstruction error alone.")
        for name, p in want.named_parameters():
            if not torch.allclose(dict(mine.named_parameters())[name], p, atol=1e-5):
                raise ExerciseFailed(
                    f"{ex}: after three steps {name} differs from the reference. Usual causes: "
                    "no opt.zero_grad() (gradients pile up across steps), or opt.step() before "
                    "loss.backward().")
    passed(ex, "three steps reproduce the reference training exactly (ReLU + L1 and TopK)")


@torch.no_grad()
def check_spliced_loss(fn, model):
    """Exercise 6.5: fn(model, sae_module, site, tokens) -> next-token loss with the site's
    activation replaced by the SAE's reconstruction."""
    ex = "Exercise 6.5"
    tokens = model.to_tokens(["The capital of Texas is Austin. The capital of Ghana is Accra.",
                              "def add(x, y):\n    return x + y"])
    for layer, k in ((1, 8), (2, None)):
        site = ("resid_post", layer)
        module = ref.SAE(model.cfg.d_model, 64, k=k, seed=layer)
        with torch.no_grad():
            module.W_dec.mul_(40.0)  # an untrained SAE, scaled so its splice visibly hurts
        out = torch.tensor(expect_number(ex, call(ex, fn, model, module, site, tokens),
                                         "the spliced loss"))
        want = torch.tensor(ref.loss_recovered(model, module, site, tokens)["spliced"])

        def loss_of(logits, shift=True):
            if shift:
                logp = logits[:, :-1].log_softmax(-1)
                return -logp.gather(-1, tokens[:, 1:, None]).mean()
            return -logits.log_softmax(-1).gather(-1, tokens[..., None]).mean()
        with model.hooks({site: ref.splice_hook(module)}):
            spliced_logits = model(tokens)
        compare(ex, out, want, {
            "That is the clean model's loss: the hook must return the reconstruction (sae(x)[0]) "
            "for the model to use it.": loss_of(model(tokens)),
            "The loss is not shifted: logits at position t predict token t + 1, so compare "
            "logits[:, :-1] with tokens[:, 1:].": loss_of(spliced_logits, shift=False),
            "That is the zero-ablation loss: splice in the reconstruction, not zeros.":
                torch.tensor(ref.loss_recovered(model, module, site, tokens)["zero"]),
        }, what="the spliced loss", atol=1e-4)
    passed(ex, "the loss with the reconstruction spliced in matches (ReLU and TopK SAEs)")


def check_mean_max_cosine(fn, model=None):
    """Exercise 6.6: fn(learned, true) -> a scalar: for each true feature (row of `true`), the
    best cosine similarity with a learned direction (row of `learned`), averaged. On a
    dictionary with rows of many norms, more latents than features, and a few missing."""
    ex = "Exercise 6.6"
    g = torch.Generator().manual_seed(0)
    true = torch.randn(20, 16, generator=g) * torch.rand(20, 1, generator=g).mul(5).add(0.1)
    learned = torch.cat([true[:15] + 0.3 * torch.randn(15, 16, generator=g),
                         torch.randn(25, 16, generator=g)]) * torch.rand(40, 1, generator=g).mul(3)
    for a, b in ((learned, true), (true.clone(), true), (torch.randn(40, 16, generator=g), true)):
        out = call(ex, fn, a.clone(), b.clone())
        if torch.is_tensor(out) and out.numel() == 1:
            out = out.reshape(())
        want = ref.mean_max_cosine(a, b)
        unit = lambda x: x / x.norm(dim=1, keepdim=True)  # noqa: E731
        compare(ex, out, want, {
            "You took, for each *learned* direction, its best true feature: MMCS asks the other "
            "way, for each true feature, whether some latent found it (the max over the learned "
            "directions).": (unit(a) @ unit(b).T).max(1).values.mean(),
            "Those are dot products, not cosines: divide every row by its norm first.":
                (b @ a.T).max(1).values.mean(),
            "You averaged over every pair, not the best match of each true feature.":
                (unit(b) @ unit(a).T).mean(),
        }, what="MMCS", atol=1e-5)
    passed(ex, "MMCS matches, with rows of any norm and more latents than features")
