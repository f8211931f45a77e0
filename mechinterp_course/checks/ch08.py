"""Checks for chapter 08, the capstone: a bootstrap interval and a verdict rule."""

from __future__ import annotations

import torch

from .. import claims
from . import ExerciseFailed, call, expect_number, passed


def _as_interval(ex, out):
    if out is None or not hasattr(out, "__len__") or len(out) != 3:
        raise ExerciseFailed(f"{ex}: return three numbers, (mean, low, high); got "
                             f"{out!r:.80}.")
    mean, low, high = (expect_number(ex, v, what) for v, what in zip(out, ("the mean",
                                                                            "low", "high")))
    return mean, low, high


def check_bootstrap_ci(fn, model):
    """Exercise 8.1: fn(values, n_boot, level, seed) -> (mean, low, high), a percentile
    bootstrap interval for the mean. Compared by width with the reference (the learner's random
    draws differ), and on cases with known answers."""
    ex = "Exercise 8.1"
    g = torch.Generator().manual_seed(0)
    constant = torch.full((50,), 0.7)
    mean, low, high = _as_interval(ex, call(ex, fn, constant.clone(), 500, 0.95, 0))
    if abs(mean - 0.7) > 1e-6 or abs(low - 0.7) > 1e-6 or abs(high - 0.7) > 1e-6:
        raise ExerciseFailed(f"{ex}: values that are all 0.7 have mean 0.7 and an interval of "
                             f"width zero; you returned ({mean:.3g}, {low:.3g}, {high:.3g}).")
    for values in (torch.randn(400, generator=g), torch.rand(120, generator=g).pow(3) * 5):
        mean, low, high = _as_interval(ex, call(ex, fn, values.clone(), 4000, 0.95, 1))
        want = claims.bootstrap_ci(values, n_boot=4000, level=0.95, seed=1)
        if abs(mean - want.mean) > 1e-5:
            raise ExerciseFailed(f"{ex}: the first number should be the mean of the values, "
                                 f"{want.mean:.4f}; you returned {mean:.4f}.")
        if low > high:
            raise ExerciseFailed(f"{ex}: low ({low:.3f}) is above high ({high:.3f}): return "
                                 "(mean, low, high).")
        ratio = (high - low) / (want.high - want.low)
        if ratio < 0.05:
            raise ExerciseFailed(f"{ex}: your interval has no width: every resample has the "
                                 "same mean, so you probably drew *without* replacement (a "
                                 "permutation). Draw indices with replacement: "
                                 "torch.randint(0, n, (n_boot, n)).")
        if ratio > 4:
            raise ExerciseFailed(f"{ex}: your interval is {ratio:.0f} times too wide: it looks "
                                 "like the spread of the values themselves. The interval is for "
                                 "their *mean*: take the quantiles of the resampled means.")
        if 0.75 < ratio < 0.92:
            raise ExerciseFailed(f"{ex}: your interval is too narrow by the factor a 90% "
                                 "interval has: a 95% interval leaves 2.5% in each tail, "
                                 "quantiles 0.025 and 0.975.")
        if not 0.92 <= ratio <= 1.1 or not low < mean < high:
            raise ExerciseFailed(f"{ex}: expected about ({want.mean:.3f}, {want.low:.3f}, "
                                 f"{want.high:.3f}); you returned ({mean:.3f}, {low:.3f}, "
                                 f"{high:.3f}).")
    values = torch.rand(200, generator=g)
    mean, low, high = _as_interval(ex, call(ex, fn, values.clone(), 4000, 0.8, 3))
    want = claims.bootstrap_ci(values, n_boot=4000, level=0.8, seed=3)
    ratio = (high - low) / (want.high - want.low)
    if not 0.85 <= ratio <= 1.15:
        raise ExerciseFailed(f"{ex}: asked for an 80% interval (level=0.8), yours is {ratio:.2f} "
                             "times the width it should have: use the level argument for the "
                             "quantiles ((1 - level) / 2 in each tail).")
    first = _as_interval(ex, call(ex, fn, values.clone(), 500, 0.95, 7))
    again = _as_interval(ex, call(ex, fn, values.clone(), 500, 0.95, 7))
    other = _as_interval(ex, call(ex, fn, values.clone(), 500, 0.95, 8))
    if first != again:
        raise ExerciseFailed(f"{ex}: the same seed gave two different intervals: draw from a "
                             "generator seeded with the seed argument, "
                             "torch.Generator().manual_seed(seed).")
    if first == other:
        raise ExerciseFailed(f"{ex}: seeds 7 and 8 gave the same interval: the seed argument is "
                             "ignored. Seed the generator with it.")
    passed(ex, "the interval has the width of a bootstrap interval of the mean at levels 0.95 "
           "and 0.8, none on constant values, and the same seed gives the same interval")


def check_passes(fn, model):
    """Exercise 8.2: fn(effect, control, threshold) -> bool, where effect and control are
    (mean, low, high)."""
    ex = "Exercise 8.2"
    cases = [  # (effect, control, threshold, why it matters)
        ((0.9, 0.8, 1.0), (0.1, 0.0, 0.2), 0.5, None),
        ((0.6, 0.4, 0.8), (0.1, 0.0, 0.2), 0.5,
         "Use the effect's lower bound, not its mean or upper bound: an effect whose lower "
         "bound is below the threshold could be below it; it has not surely passed."),
        ((0.9, 0.8, 1.0), (0.9, 0.8, 1.0), 0.5,
         "You ignored the control: here it is as large as the effect, so the claim says "
         "nothing."),
        ((0.9, 0.8, 1.0), (0.4, 0.3, 0.6), 0.5,
         "The control's *upper* bound must stay below the threshold: a control that may reach "
         "it means the measurement moves even where the claim says it should not."),
        ((0.7, 0.5, 0.9), (0.1, 0.0, 0.2), 0.5,
         "At the boundary: an effect whose lower bound equals the threshold reaches it "
         "(low >= threshold)."),
        ((0.7, 0.6, 0.9), (0.3, 0.1, 0.5), 0.5,
         "At the boundary: a control whose upper bound equals the threshold may reach it, so "
         "the claim fails (control high < threshold)."),
    ]
    for effect, control, threshold, hint in cases:
        out = call(ex, fn, claims.Interval(*effect), claims.Interval(*control), threshold)
        if not isinstance(out, (bool, torch.Tensor)) and out not in (0, 1):
            raise ExerciseFailed(f"{ex}: return True or False, not {type(out).__name__}.")
        want = claims.passes(claims.Interval(*effect), claims.Interval(*control), threshold)
        if bool(out) != want:
            raise ExerciseFailed(f"{ex}: effect {effect}, control {control}, threshold "
                                 f"{threshold}: expected {want}, got {bool(out)}. "
                                 + (hint or "Check the rule: effect low >= threshold and "
                                    "control high < threshold."))
    passed(ex, "passes only when the effect surely clears the threshold and the control surely "
           "does not")


def check_project(make_design, model):
    """Exercise 8.3 (open, the capstone project): make_design() -> claims.Design, a claim of the
    learner's own measured on capital patching pairs. Refused without a matched control, with a
    threshold that is not in the design, if it passes on an untrained model, or if changed after
    its verdict; judged on held-out prompts ("The capital city of X is")."""
    from .ch07 import judge_capital_design

    return judge_capital_design("Exercise 8.3", make_design, model)


def judge_example(name: str, make_design, model):
    """A worked example judged by the same check as Exercise 8.3, under its own name."""
    from .ch07 import judge_capital_design

    return judge_capital_design(name, make_design, model)


def _holm_like(p, alpha, bound, stop=True):
    """Holm's rule with a usual slip: bound(rank, m) replaces alpha / (m - rank); without
    `stop`, later claims are judged after one has failed."""
    out = [False] * len(p)
    for rank, i in enumerate(sorted(range(len(p)), key=lambda j: p[j])):
        if p[i] > bound(rank, len(p)) * alpha:
            if stop:
                break
            continue
        out[i] = True
    return out


def check_holm(fn, model=None):
    """Exercise 8.4: fn(p_values, alpha) -> a list of bools, in the order given: Holm's
    step-down. Cases chosen so that Bonferroni, no stopping, an off-by-one bar and the sorted
    order each give another answer."""
    ex = "Exercise 8.4"
    cases = [([0.015, 0.03, 0.04, 0.3], 0.05),    # fails at once; alpha/(m-1) would pass one
             ([0.01, 0.04, 0.03, 0.005], 0.05),   # stops at 0.03: going on would pass 0.04
             ([0.2, 0.001, 0.011, 0.02], 0.05),    # passes 0.02 at 0.05/2, Bonferroni does not
             ([0.03, 0.04], 0.05),                 # fails at once: 0.03 > 0.05/2
             ([0.012, 0.0001, 0.02, 0.013], 0.05), ([0.5], 0.05), ([0.04], 0.05)]
    for p, alpha in cases:
        out = call(ex, fn, list(p), alpha)
        want = claims.holm(p, alpha)
        if isinstance(out, torch.Tensor):
            out = out.tolist()
        if not isinstance(out, (list, tuple)) or len(out) != len(p) or not all(
                isinstance(x, bool) for x in out):
            raise ExerciseFailed(f"{ex}: return a list of True/False, one per p-value in the "
                                 f"order given; got {out!r:.80}.")
        out = list(out)
        if out == want:
            continue
        mistakes = {
            "That is Bonferroni: every p-value against alpha/m. Holm steps down: the smallest "
            "against alpha/m, the next against alpha/(m-1), ...":
                [x <= alpha / len(p) for x in p],
            "You go on after the first failure: Holm stops there, and every larger p-value "
            "fails too.": _holm_like(p, alpha, lambda r, m: 1 / (m - r), stop=False),
            "You judged every p-value against alpha itself: with several claims, some pass by "
            "luck. Holm's bars are alpha/m for the smallest, alpha/(m-1) for the next, ...":
                [x <= alpha for x in p],
            "Off by one: the smallest p-value is judged against alpha/m, where m is the number "
            "of claims.": _holm_like(p, alpha, lambda r, m: 1 / (m - r - 1) if m - r > 1 else 1),
            "Your answers are in the order of the sorted p-values: give them in the order the "
            "p-values came.": sorted(want, reverse=True),
        }
        for why, wrong in mistakes.items():
            if out == wrong:
                raise ExerciseFailed(f"{ex}: {why}")
        raise ExerciseFailed(f"{ex}: for p-values {p} at alpha {alpha} your answer differs from "
                             "Holm's step-down and from the usual slips.")
    passed(ex, "Holm's step-down, in the order given, on seven sets of p-values")


def check_cluster_bootstrap(fn, model=None):
    """Exercise 8.5: fn(statistic, groups, n_boot, level, seed) -> (value, low, high): the
    statistic on every item, and a percentile interval from resampling whole groups. On items
    that are near copies within a group, where resampling items gives far too narrow an
    interval; judged by width against the reference, as Exercise 8.1 is."""
    ex = "Exercise 8.5"
    g = torch.Generator().manual_seed(0)
    sizes = torch.randint(3, 40, (30,), generator=g)
    groups = torch.repeat_interleave(torch.arange(30), sizes)  # 30 documents of unequal length
    values = (torch.randn(30, generator=g)[groups] + 0.05 * torch.randn(len(groups),
                                                                        generator=g))

    def mean_of(idx):
        return float(values[idx].mean())
    value, low, high = _as_interval(ex, call(ex, fn, mean_of, groups.clone(), 1000, 0.95, 0))
    want = claims.cluster_bootstrap_ci(mean_of, groups, n_boot=1000, level=0.95, seed=0)
    if abs(value - want.mean) > 1e-6:
        per_group = float(torch.stack([values[groups == i].mean() for i in range(30)]).mean())
        why = (" That is the mean of the groups' means: the statistic is of the items, all of "
               "them (statistic(torch.arange(n)))." if abs(value - per_group) < 1e-6 else "")
        raise ExerciseFailed(f"{ex}: the first number should be the statistic on every item, "
                             f"{want.mean:.4f}; you returned {value:.4f}.{why}")
    if not low <= value <= high:
        raise ExerciseFailed(f"{ex}: the value {value:.3f} is outside your interval "
                             f"[{low:.3f}, {high:.3f}].")
    ratio = (high - low) / (want.high - want.low)
    if ratio < 0.5:
        raise ExerciseFailed(f"{ex}: your interval is {ratio:.2f} times the width it should "
                             "have: it looks like a resample of items. Items of one group are "
                             "near copies; resample whole groups, with replacement, and take "
                             "all their items.")
    if not 0.8 <= ratio <= 1.25:
        raise ExerciseFailed(f"{ex}: your interval is {ratio:.2f} times the width of the "
                             "reference's: resample the groups with replacement, as many as "
                             "there are, n_boot times, and take the quantiles at (1 - level) / 2 "
                             "and (1 + level) / 2.")
    again = _as_interval(ex, call(ex, fn, mean_of, groups.clone(), 300, 0.95, 5))
    if again != _as_interval(ex, call(ex, fn, mean_of, groups.clone(), 300, 0.95, 5)):
        raise ExerciseFailed(f"{ex}: the same seed gave two different intervals: draw from "
                             "torch.Generator().manual_seed(seed).")
    passed(ex, "the statistic on every item, with an interval the width of a resample of whole "
           "groups")
