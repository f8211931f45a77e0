"""Interpretability claims as tests: a statement, a metric, a threshold fixed in advance, a
control, and a verdict that takes uncertainty into account (chapter 08's reference answers).

A claim passes when the *lower* end of its effect's confidence interval clears the threshold and
the *upper* end of its control's interval does not: the effect is surely large enough, and the
control (the same measurement where the claim says nothing should happen) surely is not. Given
the per-prompt excess of effect over control, it must also be surely above zero. The intervals
come from the bootstrap: resample the prompts (or documents) with replacement and see how much
the statistic moves.

A control only means something when it is *matched* to the effect: the same layers, the same
positions, as many components, of another kind (another head, another component type, a random
direction of equal norm). `Site` says where an intervention acts and `check_matched` refuses a
control that differs in anything but the kind. When many claims are judged together, widen each
interval (`corrected_level`, Bonferroni) or step down their p-values (`holm`) so that all of
them hold together with the stated confidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


@dataclass
class Claim:
    statement: str   # what is claimed, in words
    metric: str      # what is measured, per prompt or document
    threshold: float  # the effect the claim needs, fixed before measuring
    control: str     # the same measurement where nothing should happen


class Interval(NamedTuple):
    """A statistic and its confidence interval; a plain (mean, low, high) tuple works too."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass
class Verdict:
    claim: Claim
    effect: Interval
    control: Interval
    passed: bool
    excess: Interval | None = None  # effect minus control, per prompt, when given


@dataclass(frozen=True)
class Site:
    """Where an intervention acts: the kind of component ("mlp_out", "attn_out", "head L2H0",
    "random direction"), its layers, its positions ("all" or a tuple) and how many components."""

    component: str
    layers: tuple[int, ...]
    positions: tuple[int, ...] | str = "all"
    count: int = 1


class UnmatchedControl(ValueError):
    """A control that differs from its effect in more than the kind of component."""


def check_matched(effect: Site, control: Site) -> None:
    """Raise UnmatchedControl unless the control acts at the same layers and positions, on as many
    components, of another kind. An unmatched control can be near zero only because it acts
    where nothing could happen, which says nothing about the claim."""
    problems = []
    if sorted(effect.layers) != sorted(control.layers):
        problems.append(f"layers {list(effect.layers)} vs {list(control.layers)}")
    pos = lambda s: s.positions if isinstance(s.positions, str) else sorted(s.positions)  # noqa
    if pos(effect) != pos(control):
        problems.append(f"positions {effect.positions} vs {control.positions}")
    if effect.count != control.count:
        problems.append(f"{effect.count} components vs {control.count}")
    if effect.component == control.component:
        problems.append(f"both act on {effect.component!r}: a control is another kind of "
                        "component or a random direction")
    if problems:
        raise UnmatchedControl(
            f"the control ({control.component}) is not matched to the effect "
            f"({effect.component}): {'; '.join(problems)}. Act at the same layers and positions "
            f"on as many components of another kind.")


def corrected_level(n_claims: int, level: float = 0.95) -> float:
    """The interval level for each of `n_claims` judged together (Bonferroni): with it, the
    chance that any of them is wrongly passed stays at most 1 - level."""
    if not (isinstance(n_claims, int) and n_claims >= 1):
        raise ValueError(f"n_claims must be a whole number >= 1, got {n_claims!r}")
    return 1 - (1 - level) / n_claims


def _resampled_means(values: Tensor, n_boot: int, seed: int) -> Tensor:
    """(n_boot,): the means of values resampled with replacement, the same for the same seed."""
    values = values.float().flatten()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(values), (n_boot, len(values)), generator=g)
    return values[idx].mean(1)


def bootstrap_ci(values: Tensor, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> Interval:
    """The mean of `values` (one per prompt) with a percentile bootstrap interval: resample the
    values with replacement n_boot times, and keep the middle `level` of the resampled means."""
    means = _resampled_means(values, n_boot, seed)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail])).tolist()
    return Interval(float(values.float().mean()), low, high)


def bootstrap_p(values: Tensor, threshold: float, n_boot: int = 2000, seed: int = 0) -> float:
    """How surely the mean of `values` is above `threshold`, as a p-value: twice the share of
    resampled means at or below it, counting the data itself as one more resample (so it is
    never below 2 / (n_boot + 1), all that n_boot resamples can show). It is the dual of
    `bootstrap_ci` with the same resamples: the interval at `level` has its low end above the
    threshold when p <= 1 - level, up to that one resample."""
    means = _resampled_means(values, n_boot, seed)
    at_or_below = int((means <= threshold).sum())
    return min(1.0, 2 * (at_or_below + 1) / (n_boot + 1))


def holm(p_values, alpha: float = 0.05) -> list[bool]:
    """Which of several claims judged together pass, by Holm's step-down: compare the smallest
    p-value with alpha/m, the next with alpha/(m-1), and so on, stopping at the first that
    fails. The chance that any true null passes stays at most alpha, as with Bonferroni
    (`corrected_level`), and it passes every claim Bonferroni passes, often more."""
    p = torch.as_tensor(p_values, dtype=torch.float64).flatten()
    if len(p) == 0 or p.isnan().any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must be numbers in [0, 1], one per claim; got {p_values!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    passed = [False] * len(p)
    for rank, i in enumerate(torch.argsort(p, stable=True).tolist()):
        if p[i] > alpha / (len(p) - rank):
            break
        passed[i] = True
    return passed


def cluster_bootstrap_ci(statistic: Callable[[Tensor], float], groups: Tensor,
                         n_boot: int = 200, level: float = 0.95, seed: int = 0) -> Interval:
    """A statistic of items (tokens) that come in groups (documents), with an interval from
    resampling whole groups: tokens of one document are not independent evidence.
    statistic(indices) computes the statistic on the items at `indices`."""
    g = torch.Generator().manual_seed(seed)
    ids = groups.unique()
    members = [torch.nonzero(groups == i).flatten() for i in ids]
    stats = []
    for _ in range(n_boot):
        pick = torch.randint(0, len(ids), (len(ids),), generator=g)
        stats.append(statistic(torch.cat([members[int(i)] for i in pick])))
    tail = (1 - level) / 2
    low, high = torch.quantile(torch.tensor(stats), torch.tensor([tail, 1 - tail])).tolist()
    return Interval(statistic(torch.arange(len(groups))), low, high)


def null_interval(statistic: Callable[[torch.Generator], float], n: int = 100,
                  level: float = 0.95, seed: int = 0) -> Interval:
    """A statistic under its null: statistic(generator) computes it once on data randomised
    with that generator (shuffled labels, random tokens, a random direction). Returns the mean
    of n draws and the middle `level` of them: what chance alone gives."""
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be a whole number >= 2, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    draws = torch.tensor([float(statistic(g)) for _ in range(n)])
    if draws.isnan().any():
        raise ValueError("the statistic gave NaN on a null draw")
    tail = (1 - level) / 2
    low, high = torch.quantile(draws, torch.tensor([tail, 1 - tail])).tolist()
    return Interval(float(draws.mean()), low, high)


def shuffle_last_axis(x: Tensor, generator: torch.Generator) -> Tensor:
    """x with the last axis permuted independently for every index of the others (each head's
    prompts in an order of its own): the null that keeps what every row holds, its values, and
    breaks which prompt each value belongs to."""
    flat = x.reshape(-1, x.shape[-1])
    order = torch.stack([torch.randperm(flat.shape[-1], generator=generator) for _ in flat])
    return torch.gather(flat, -1, order.to(flat.device)).reshape(x.shape)


def excess_over(observed, null) -> Interval:
    """The observed statistic minus its null, conservatively: the low end is the observed low
    minus the null's high, so a claim on the excess needs both to be clearly apart."""
    (m, lo, hi), (nm, nlo, nhi) = observed, null
    return Interval(m - nm, lo - nhi, hi - nlo)


def random_directions(n: int, like: Tensor, generator: torch.Generator) -> Tensor:
    """(n, d): random directions of the same norm as `like` (d,), the matched control for a
    claim about one direction (a neuron's output, a latent, a probe)."""
    r = torch.randn(n, like.shape[-1], generator=generator).to(like)
    return r / r.norm(dim=-1, keepdim=True) * like.norm()


def random_like(x: Tensor, generator: torch.Generator) -> Tensor:
    """x (..., d) with every vector replaced by a random direction of its own norm: the matched
    control for a change made at many positions (a patch, a path's swap, a steering vector)."""
    r = torch.randn(x.shape, generator=generator).to(x)
    return r / r.norm(dim=-1, keepdim=True) * x.norm(dim=-1, keepdim=True)


def passes(effect: Interval, control: Interval, threshold: float) -> bool:
    """The effect surely clears the threshold and the control surely does not."""
    (_, effect_low, _), (_, _, control_high) = effect, control
    return effect_low >= threshold and control_high < threshold


def judge(claim: Claim, effect, control, excess=None, effect_site: Site | None = None,
          control_site: Site | None = None) -> Verdict:
    """The verdict on one claim. effect, control, excess: intervals (mean, low, high); excess is
    the effect minus the control measured on the same prompts (`bootstrap_ci(e - c)`). With both
    sites given, an unmatched control is refused before anything is judged."""
    if (effect_site is None) != (control_site is None):
        raise ValueError("give both effect_site and control_site, or neither")
    if effect_site is not None:
        check_matched(effect_site, control_site)
    effect, control = Interval(*effect), Interval(*control)
    excess = None if excess is None else Interval(*excess)
    passed = passes(effect, control, claim.threshold) and (excess is None or excess.low > 0)
    return Verdict(claim, effect, control, passed, excess)


@dataclass
class Sample:
    """What a design is measured on: a model and its inputs (patching pairs, token batches...)
    holding n prompts, named for messages. A null sample is one where the claim is false by
    construction."""

    model: object
    data: object
    name: str
    n: int


@dataclass(frozen=True)
class Design:
    """An experiment written down before it is run: the claim (with its threshold), where the
    intervention acts (`effect`), where its matched control acts, and `measure(site, sample)`,
    which returns one number a prompt, (n,). Run it with `run_design` on data it has not seen."""

    claim: Claim
    effect: Site
    control: Site
    measure: Callable


def run_design(design: Design, sample: Sample, level: float = 0.95, n_boot: int = 2000,
               seed: int = 0) -> Verdict:
    """Measure the effect and the control on the same prompts and judge the claim: its effect
    surely above the threshold, its control surely below, and their per-prompt excess surely
    above zero. An unmatched control is refused before anything is measured."""
    check_matched(design.effect, design.control)
    effect = torch.as_tensor(design.measure(design.effect, sample)).float().flatten().cpu()
    control = torch.as_tensor(design.measure(design.control, sample)).float().flatten().cpu()
    if effect.shape != control.shape or not len(effect):
        raise ValueError(f"measure must return one number a prompt for both sites; got "
                         f"{tuple(effect.shape)} and {tuple(control.shape)}")
    ci = lambda v: bootstrap_ci(v, n_boot=n_boot, level=level, seed=seed)  # noqa: E731
    return judge(design.claim, ci(effect), ci(control), ci(effect - control))


def report(verdicts: list[Verdict]) -> str:
    """A plain-text table of verdicts, one line a claim."""
    lines = [f"{'claim':58} {'threshold':>9} {'effect [95% CI]':>20} {'control':>20} "
             f"{'excess':>20}  verdict"]
    for v in verdicts:
        lines.append(f"{v.claim.statement[:58]:58} {v.claim.threshold:>9.2f} "
                     f"{str(v.effect):>20} {str(v.control):>20} "
                     f"{str(v.excess) if v.excess else '-':>20}  "
                     f"{'PASS' if v.passed else 'FAIL'}")
    return "\n".join(lines)
