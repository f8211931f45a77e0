"""Checks for chapter 05, neurons and superposition."""

from __future__ import annotations

import torch

from .. import toy_models as ref
from . import ExerciseFailed, call, compare, passed


@torch.no_grad()
def check_top_neurons(fn, model):
    """Exercise 5.1: fn(cache, layer, k) -> the indices of the k MLP neurons of block `layer`
    with the largest activation at the last position of the first prompt."""
    ex = "Exercise 5.1"
    texts = ["The capital of Texas is Austin.", "def add(x, y):\n    return x + y"]
    _, cache = model.run_with_cache(model.to_tokens(texts[0]))
    _, cache2 = model.run_with_cache(model.to_tokens(texts[::-1]))  # longest first
    d_model, d_mlp = model.cfg.d_model, model.cfg.d_mlp
    for c, layer, k in ((cache, 1, 5), (cache, 3, 12), (cache2, 0, 3), (cache, -1, 1)):
        out = call(ex, fn, c, layer, k)
        if isinstance(out, (list, tuple)):
            out = torch.tensor(out)
        if not isinstance(out, torch.Tensor) or out.is_floating_point() or out.ndim != 1:
            raise ExerciseFailed(f"{ex}: return the neurons' indices as a 1-D integer tensor "
                                 f"(topk(...).indices), got "
                                 f"{getattr(out, 'dtype', type(out).__name__)} of shape "
                                 f"{tuple(getattr(out, 'shape', ()))}.")
        if len(out) != k:
            raise ExerciseFailed(f"{ex}: asked for k={k} neurons, got {len(out)}: use the k "
                                 "argument.")
        post = c["mlp_post", layer][0, -1]  # (d_mlp,)
        want = set(post.topk(k).indices.tolist())
        got = set(out.tolist())
        if got == want:
            continue
        mistakes = {
            f"Those are residual-stream coordinates, not neurons: mlp_out is what the MLP adds "
            f"to the stream ({d_model} numbers, d_model), and its entries mix every neuron. "
            f"The block's {d_mlp} neurons (d_mlp) are in mlp_post.":
                c["mlp_out", layer][0, -1].topk(k).indices,
            "That is the first position: the last one is [0, -1].":
                c["mlp_post", layer][0, 0].topk(k).indices,
            "That is the last prompt of the batch: the first one is [0, -1].":
                c["mlp_post", layer][-1, -1].topk(k).indices,
            "Those are the k weakest neurons: topk keeps the largest.":
                post.topk(k, largest=False).indices,
        }
        for hint, wrong in mistakes.items():
            if got == set(wrong.tolist()):
                raise ExerciseFailed(f"{ex}: wrong neurons for layer {layer}, k={k}. {hint}")
        if max(got) < d_model <= d_mlp:
            raise ExerciseFailed(f"{ex}: every index is below {d_model} (d_model): did you "
                                 f"rank a residual-stream activation? Neurons are mlp_post, "
                                 f"{d_mlp} of them.")
        raise ExerciseFailed(f"{ex}: for layer {layer}, k={k}, {len(got - want)} of your "
                             "neurons are not among the k strongest, and the answer matches "
                             "none of the usual mistakes.")
    passed(ex, "the strongest neurons of each block, not residual coordinates")


def _toy_case(instances=3, n=5, m=2, batch=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(instances, m, n, generator=g)
    b = torch.randn(instances, n, generator=g) * 0.3
    x = torch.rand(batch, instances, n, generator=g) * (torch.rand(batch, instances, n,
                                                                    generator=g) < 0.5)
    return W, b, x


@torch.no_grad()
def check_toy_forward(fn, model=None):
    """Exercise 5.2: fn(W, b, x) -> ReLU(W.T W x + b) per instance."""
    ex = "Exercise 5.2"
    for instances, n, m, batch in ((1, 5, 2, 4), (3, 5, 2, 7), (4, 20, 5, 3)):
        W, b, x = _toy_case(instances, n, m, batch)
        out = call(ex, fn, W.clone(), b.clone(), x.clone())
        h = torch.einsum("imn,bin->bim", W, x)
        linear = torch.einsum("imn,bim->bin", W, h)
        compare(ex, out, ref.toy_forward(W, b, x), {
            "No ReLU at the output: the toy model reads features back through a ReLU, which is "
            "what lets it ignore small interference.": linear + b,
            "The bias is missing: add b before the ReLU.": torch.relu(linear),
            "The ReLU is on the hidden layer: h = W x is linear; the ReLU comes after W.T h + b.":
                torch.relu(torch.einsum("imn,bim->bin", W, torch.relu(h)) + b),
            "The bias went after the ReLU: ReLU(W.T W x + b).": torch.relu(linear) + b,
        }, what="the reconstruction")
    passed(ex, "the toy model's forward pass matches for 1 to 4 instances")


@torch.no_grad()
def check_weighted_mse(fn, model=None):
    """Exercise 5.3: fn(x, x_hat, importance) -> (instances,) loss."""
    ex = "Exercise 5.3"
    g = torch.Generator().manual_seed(1)
    for instances, n, batch in ((1, 5, 8), (3, 5, 16), (2, 7, 4)):
        x = torch.rand(batch, instances, n, generator=g)
        x_hat = torch.rand(batch, instances, n, generator=g)
        importance = 0.8 ** torch.arange(n).float()
        if instances == 2:  # a different importance per instance
            importance = torch.stack([importance, importance.flip(0)])
        out = call(ex, fn, x.clone(), x_hat.clone(), importance.clone())
        err = (x - x_hat).pow(2)
        if torch.is_tensor(out) and out.ndim == 0:
            raise ExerciseFailed(f"{ex}: return one loss per instance, shape ({instances},): "
                                 "sum over features, mean over the batch only.")
        compare(ex, out, ref.weighted_mse(x, x_hat, importance), {
            "Importance is ignored: multiply each feature's squared error by its importance.":
                err.sum(-1).mean(0),
            "The importance went inside the square: weight the squared error, "
            "importance * (x - x_hat)**2.": ((x - x_hat) * importance).pow(2).sum(-1).mean(0),
            "You averaged over features: sum them (each feature's weighted error counts "
            "in full).": (err * importance).mean(-1).mean(0),
            "You summed over the batch: average over it, so the loss does not grow with the "
            "batch size.": (err * importance).sum(-1).sum(0),
        }, what="the loss")
    passed(ex, "the importance-weighted loss matches, per instance")


@torch.no_grad()
def check_feature_dimensionality(fn, model=None):
    """Exercise 5.5: fn(W) -> (..., n) per-feature dimensionality."""
    ex = "Exercise 5.5"
    square = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])  # antipodal pair,
    g = torch.Generator().manual_seed(2)                          # a feature alone, one absent
    cases = [square, torch.randn(3, 4, 10, generator=g), torch.randn(2, 7, generator=g)]
    for W in cases:
        out = call(ex, fn, W.clone())
        if W is square and torch.is_tensor(out) and not torch.isfinite(out).all():
            raise ExerciseFailed(f"{ex}: a feature with zero norm should get dimensionality 0, "
                                 "not NaN: clamp the norms (and the denominator) before dividing.")
        want = ref.feature_dimensionality(W)
        norms = W.norm(dim=-2, keepdim=True)
        unit = W / norms.clamp(min=1e-8)
        raw = torch.einsum("...mi,...mj->...ij", W, W).pow(2).sum(-1)
        compare(ex, out, want, {
            "You did not normalise W_i in the denominator: use its unit vector, "
            "(W_i / ||W_i||) . W_j.": norms.squeeze(-2).pow(2) / raw.clamp(min=1e-8),
            "The numerator should be the squared norm ||W_i||^2.":
                norms.squeeze(-2) / torch.einsum("...mi,...mj->...ij", unit, W).pow(2)
                .sum(-1).clamp(min=1e-8),
        }, what="the dimensionalities", atol=1e-4)
    passed(ex, "1 for a feature alone, 1/2 for an antipodal pair, 0 for a dropped feature")


@torch.no_grad()
def check_feature_geometry(fn, model=None):
    """Exercise 5.4: fn(W (2, n)) -> (norms (n,), angles in degrees in [0, 360))."""
    ex = "Exercise 5.4"
    g = torch.Generator().manual_seed(3)
    for W in (torch.tensor([[1.0, 0.0, -1.0, 0.0], [0.0, 2.0, 0.0, -0.5]]),
              torch.randn(2, 5, generator=g)):
        out = call(ex, fn, W.clone())
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ExerciseFailed(f"{ex}: return a pair (norms, angles).")
        norms, angles = ref.feature_geometry(W)
        compare(ex, out[0], norms, {}, what="the norms")
        radians = torch.atan2(W[1], W[0])
        compare(ex, out[1], angles, {
            "Those are radians: convert to degrees (torch.rad2deg).": radians % (2 * torch.pi),
            "Angles should lie in [0, 360): take them modulo 360.": torch.rad2deg(radians),
            "x and y are swapped: the angle is atan2(y, x) = atan2(W[1], W[0]).":
                torch.rad2deg(torch.atan2(W[0], W[1])) % 360,
        }, what="the angles", atol=1e-3)
    passed(ex, "norms and angles of the feature directions match")


def _top_k_cases():
    """Small (acts, owner, n_families, k) cases with known answers, and a larger random one."""
    g = torch.Generator().manual_seed(0)
    acts = torch.tensor([[5.0, 0.0], [4.0, 1.0], [3.0, 9.0], [0.0, 8.0], [1.0, 7.0]])
    owner = torch.tensor([0, 1, -1, 1, 0])  # token 2 belongs to no family
    yield acts, owner, 2, 3
    yield torch.randn(400, 30, generator=g), torch.randint(-1, 4, (400,), generator=g), 4, 25


def check_top_k_counts(fn, model=None):
    """Exercise 5.6: fn(acts, owner, n_families, k) -> (n_families, n_neurons): how many of each
    neuron's k largest activations fall on each family's tokens."""
    from .. import neurons

    ex = "Exercise 5.6"
    for acts, owner, n_families, k in _top_k_cases():
        out = call(ex, fn, acts.clone(), owner.clone(), n_families, k)
        want = neurons.top_k_counts(acts, owner, n_families, k)
        if torch.is_tensor(out) and out.shape == want.T.shape and out.shape != want.shape:
            raise ExerciseFailed(f"{ex}: your counts are (n_neurons, n_families); return "
                                 "(n_families, n_neurons), one row a family.")
        if torch.is_tensor(out) and out.is_floating_point() and out.shape == want.shape:
            if torch.allclose(out, want.float() / k):
                raise ExerciseFailed(f"{ex}: those are shares of k; return counts.")
            if torch.equal(out, out.round()):
                out = out.long()  # whole numbers in a float tensor: counts all the same
        every = torch.stack([(owner == f).sum().expand(acts.shape[1]) for f in range(n_families)])
        compare(ex, out, want, {
            "You took the k smallest activations: topk gives the largest.":
                neurons.top_k_counts(-acts, owner, n_families, k),
            "You counted every token of each family, whatever the neuron: count only each "
            "neuron's top k tokens (topk over the tokens, dim=0).": every,
        }, what="the counts")
    passed(ex, "counts per family and neuron match, tokens of no family left out")
