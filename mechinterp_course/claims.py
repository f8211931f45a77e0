"""Interpretability claims as tests: a statement, a metric, a threshold fixed in advance, a
control, and a verdict that takes uncertainty into account (chapter 08's reference answers).

A claim passes when the *lower* end of its effect's confidence interval clears the threshold and
the *upper* end of its control's interval does not: the effect is surely large enough, and the
control (the same measurement where the claim says nothing should happen) surely is not. The
intervals come from the bootstrap: resample the prompts (or documents) with replacement and see
how much the statistic moves.
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


def bootstrap_ci(values: Tensor, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> Interval:
    """The mean of `values` (one per prompt) with a percentile bootstrap interval: resample the
    values with replacement n_boot times, and keep the middle `level` of the resampled means."""
    values = values.float().flatten()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(values), (n_boot, len(values)), generator=g)
    means = values[idx].mean(1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail])).tolist()
    return Interval(float(values.mean()), low, high)


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


def passes(effect: Interval, control: Interval, threshold: float) -> bool:
    """The effect surely clears the threshold and the control surely does not."""
    (_, effect_low, _), (_, _, control_high) = effect, control
    return effect_low >= threshold and control_high < threshold


def judge(claim: Claim, effect: Interval, control: Interval) -> Verdict:
    effect, control = Interval(*effect), Interval(*control)
    return Verdict(claim, effect, control, passes(effect, control, claim.threshold))


def report(verdicts: list[Verdict]) -> str:
    """A plain-text table of verdicts, one line a claim."""
    lines = [f"{'claim':58} {'threshold':>9} {'effect [95% CI]':>20} {'control':>20}  verdict"]
    for v in verdicts:
        lines.append(f"{v.claim.statement[:58]:58} {v.claim.threshold:>9.2f} "
                     f"{str(v.effect):>20} {str(v.control):>20}  "
                     f"{'PASS' if v.passed else 'FAIL'}")
    return "\n".join(lines)
