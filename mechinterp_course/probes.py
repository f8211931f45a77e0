"""Linear probes: can a world attribute be read off the residual stream with a linear map?
(chapter 07's reference answers).

A probe that reads an attribute says the information is *there*, linearly, not that the model
uses it. Two traps this module makes easy to avoid:

- **leakage**: with the same subjects in training and test sets, a probe can memorise each
  subject's vector and look perfect anywhere, even on the token embedding. `grouped_folds` holds
  out whole subjects, so the probe must generalise to subjects it never saw;
- **decodable is not used**: chapter 07 removes the probe's directions from the residual stream
  (`interventions.project_out`) and asks whether the model's answer changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import world

# Contexts that name a country before anything about it: the probe must read what the model
# recalls about the country, not a word that follows it.
COUNTRY_TEMPLATES = ["The capital of {} is", "People in {} speak", "{} is a country in",
                     "The main language of {} is", "Q: What is the capital of {}?",
                     "I visited {} last year", "We flew to {} and", "{} is", "In {}, the"]


@dataclass
class ProbeData:
    """Residual vectors at the last token of a subject, for every subject and template."""

    acts: Tensor            # (n_sites, n, d_model): resid_pre of each layer, then the last
                            # layer's resid_post
    labels: Tensor          # (n,) class index
    groups: Tensor          # (n,) subject index
    classes: list[str]
    subjects: list[str]
    site_labels: list[str]


def continents() -> list[str]:
    return sorted({continent for _, continent, _ in world.COUNTRIES.values()})


@torch.no_grad()
def country_activations(model, templates: list[str] | None = None) -> ProbeData:
    """The residual stream at each country's last token, in each template, labelled with the
    country's continent."""
    templates = templates or COUNTRY_TEMPLATES
    countries, classes = list(world.COUNTRIES), continents()
    n_layers = model.cfg.n_layers
    acts, labels, groups = [], [], []
    for template in templates:
        prefix = template.split("{}")[0]
        ends = torch.tensor([len(model.to_tokens(prefix + c)[0]) - 1 for c in countries])
        _, cache = model.run_with_cache([template.format(c) for c in countries],
                                        names=["resid_pre", ("resid_post", n_layers - 1)])
        rows = torch.arange(len(countries))
        sites = [cache["resid_pre", layer] for layer in range(n_layers)]
        sites.append(cache["resid_post", n_layers - 1])
        acts.append(torch.stack([s[rows, ends] for s in sites]).cpu())  # (sites, countries, d)
        labels += [classes.index(world.COUNTRIES[c][1]) for c in countries]
        groups += list(range(len(countries)))
    site_labels = [f"resid_pre {layer}" for layer in range(n_layers)]
    site_labels.append(f"resid_post {n_layers - 1}")
    return ProbeData(torch.cat(acts, dim=1), torch.tensor(labels), torch.tensor(groups), classes,
                     countries, site_labels)


@dataclass
class LinearProbe:
    """logits = x @ W + b, for raw residual vectors x (d_model,); W is (d_model, n_classes)."""

    W: Tensor
    b: Tensor

    def predict(self, x: Tensor) -> Tensor:
        return (x @ self.W + self.b).argmax(-1)

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        return float((self.predict(x) == y).float().mean())


def fit_probe(x: Tensor, y: Tensor, n_classes: int, l2: float = 1e-3,
              steps: int = 100) -> LinearProbe:
    """Multinomial logistic regression, fitted by L-BFGS on standardised features with a small L2
    penalty (deterministic), returned as weights on the raw features. A feature that barely
    varies (float rounding around a constant) is not blown up to unit variance: each feature's
    scale is at least a thousandth of the largest, so the probe cannot rest on rounding noise."""
    x = x.float()
    mean, std = x.mean(0), x.std(0)
    std = std.clamp_min(1e-3 * float(std.max()) + 1e-6)
    xs = (x - mean) / std
    W = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xs @ W + b, y) + l2 * W.pow(2).sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    W_raw = W.detach() / std[:, None]
    return LinearProbe(W_raw, b.detach() - mean @ W_raw)


def grouped_folds(groups: Tensor, k: int = 5, seed: int = 0) -> Tensor:
    """(n,) a fold index per example such that all examples of a group (a subject) share a fold:
    testing on a fold then means testing on subjects the probe never saw."""
    ids = groups.unique()
    order = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    fold_of_group = {int(g): i % k for i, g in enumerate(order)}
    return torch.tensor([fold_of_group[int(g)] for g in groups])


def random_folds(n: int, k: int = 5, seed: int = 0) -> Tensor:
    """(n,) a fold index per example, ignoring groups: the leaky split."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)) % k


def cross_val_accuracy(x: Tensor, y: Tensor, folds: Tensor, n_classes: int) -> float:
    """Mean test accuracy over folds, each probe trained on the other folds."""
    accs = []
    for f in folds.unique():
        test = folds == f
        probe = fit_probe(x[~test], y[~test], n_classes)
        accs.append(probe.accuracy(x[test], y[test]))
    return sum(accs) / len(accs)
