"""Checks for chapter 05, neurons and superposition."""

from __future__ import annotations

import torch

from .. import toy_models as ref
from . import ExerciseFailed, call, compare, passed


def _toy_case(instances=3, n=5, m=2, batch=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(instances, m, n, generator=g)
    b = torch.randn(instances, n, generator=g) * 0.3
    x = torch.rand(batch, instances, n, generator=g) * (torch.rand(batch, instances, n,
                                                                    generator=g) < 0.5)
    return W, b, x


@torch.no_grad()
def check_toy_forward(fn, model=None):
    """Exercise 5.1: fn(W, b, x) -> ReLU(W.T W x + b) per instance."""
    ex = "Exercise 5.1"
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
    """Exercise 5.2: fn(x, x_hat, importance) -> (instances,) loss."""
    ex = "Exercise 5.2"
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
    """Exercise 5.4: fn(W) -> (..., n) per-feature dimensionality."""
    ex = "Exercise 5.4"
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
    """Exercise 5.3: fn(W (2, n)) -> (norms (n,), angles in degrees in [0, 360))."""
    ex = "Exercise 5.3"
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
