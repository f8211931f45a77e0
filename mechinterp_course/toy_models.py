"""Toy models of superposition (after Elhage et al., 2022), small enough to train in a notebook.

n sparse features are squeezed through m < n hidden dimensions and read back out:
``h = W x``, ``x_hat = ReLU(W.T h + b)``, trained to reconstruct x with each feature's error
weighted by its importance. Many such models ("instances") train at once, one per setting of
sparsity or importance, as a leading instance axis on every tensor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class ToyModel(torch.nn.Module):
    """`instances` independent toy models, each W (m, n) and b (n,)."""

    def __init__(self, n_features: int, d_hidden: int, instances: int = 1, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        bound = math.sqrt(6 / (n_features + d_hidden))  # Xavier-uniform
        self.W = torch.nn.Parameter((torch.rand(instances, d_hidden, n_features, generator=g)
                                     * 2 - 1) * bound)
        self.b = torch.nn.Parameter(torch.zeros(instances, n_features))

    def forward(self, x: Tensor) -> Tensor:
        """x (batch, instances, n) -> reconstruction (batch, instances, n)."""
        return toy_forward(self.W, self.b, x)


def toy_forward(W: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """ReLU(W.T W x + b): W (instances, m, n), b (instances, n), x (batch, instances, n)."""
    h = torch.einsum("imn,bin->bim", W, x)  # (batch, instances, m)
    return torch.relu(torch.einsum("imn,bim->bin", W, h) + b)


def weighted_mse(x: Tensor, x_hat: Tensor, importance: Tensor) -> Tensor:
    """Per-instance loss (instances,): mean over the batch of sum_i importance_i (x_i - x_hat_i)^2.
    importance broadcasts against (instances, n)."""
    return ((x - x_hat).pow(2) * importance).sum(-1).mean(0)


def sample_features(batch: int, n_features: int, feature_probability: Tensor,
                    generator: torch.Generator | None = None) -> Tensor:
    """(batch, instances, n): each feature is present with its instance's probability (1 -
    sparsity), uniform in [0, 1] when present, else 0. feature_probability: (instances, 1) or
    (instances, n)."""
    instances = feature_probability.shape[0]
    shape = (batch, instances, n_features)
    values = torch.rand(shape, generator=generator)
    present = torch.rand(shape, generator=generator) < feature_probability
    return values * present


def train(model: ToyModel, importance: Tensor, feature_probability: Tensor, steps: int = 3000,
          batch: int = 1024, lr: float = 1e-2, seed: int = 0, progress: bool = True) -> Tensor:
    """Train every instance at once with Adam; returns the final per-instance loss."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = model.W.shape[-1]
    bar = tqdm(range(steps), desc="training toy models", disable=not progress, mininterval=1.0)
    for _ in bar:
        x = sample_features(batch, n, feature_probability, g)
        loss = weighted_mse(x, model(x), importance)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        x = sample_features(4 * batch, n, feature_probability, g)
        return weighted_mse(x, model(x), importance)


def feature_dimensionality(W: Tensor) -> Tensor:
    """Per-feature dimensionality (..., n) for W (..., m, n): ||W_i||^2 / sum_j (W_i_hat . W_j)^2.
    1 for a feature with its own dimension, 1/2 for an antipodal pair, 0 for one not represented."""
    norms = W.norm(dim=-2, keepdim=True)  # (..., 1, n)
    unit = W / norms.clamp(min=1e-8)
    overlap = torch.einsum("...mi,...mj->...ij", unit, W).pow(2).sum(-1)  # (..., n)
    return norms.squeeze(-2).pow(2) / overlap.clamp(min=1e-8)


def dimensions_per_feature(W: Tensor) -> Tensor:
    """m / ||W||_F^2 for W (..., m, n): hidden dimensions spent per (fully) represented feature."""
    return W.shape[-2] / W.pow(2).sum(dim=(-2, -1))


def feature_geometry(W: Tensor) -> tuple[Tensor, Tensor]:
    """For W (2, n): each feature's norm and its direction's angle in degrees, in [0, 360)."""
    norms = W.norm(dim=0)
    angles = torch.rad2deg(torch.atan2(W[1], W[0])) % 360
    return norms, angles
