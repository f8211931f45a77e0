"""Checks for chapter 09, planted mechanisms: an ablation sweep, and precision and recall."""

from __future__ import annotations

import torch

from .. import method_scores
from . import ExerciseFailed, call, expect_number, passed


def _effects(ex, out, labels):
    """The learner's {label: number}, checked for its keys and its values."""
    if not isinstance(out, dict):
        raise ExerciseFailed(f"{ex}: return a dict {{label: loss increase}}, not "
                             f"{type(out).__name__}.")
    missing = [c for c in labels if c not in out]
    extra = [c for c in out if c not in labels]
    if missing:
        raise ExerciseFailed(f"{ex}: no value for {missing[:3]}: return one for every label in "
                             "`labels`, in the order given.")
    if extra:
        raise ExerciseFailed(f"{ex}: values for {extra[:3]}, which are not in `labels`: ablate "
                             "exactly the labels you were given.")
    return {c: expect_number(ex, out[c], f"the value for {c}") for c in labels}


def _close(got: dict, want: dict) -> bool:
    return all(abs(got[c] - want[c]) <= 1e-3 + 1e-3 * abs(want[c]) for c in want)


def check_ablation_effects(fn, model):
    """Exercise 9.1: fn(model, tokens, scored, labels) -> {label: nats the scored loss rises by
    with that one component zero-ablated}. Tried on two masks (the repeat, and every position,
    where the clean loss is far from zero) and two label lists, with the usual slips computed
    and named: the loss without subtracting the clean one, the sign flipped, ablations that
    accumulate, all labels removed at once, the mask ignored."""
    ex = "Exercise 9.1"
    tokens, scored = method_scores.task("induction", model)
    everywhere = torch.ones_like(scored)
    every = method_scores.components(model)
    g = torch.Generator().manual_seed(0)
    some = [every[i] for i in torch.randperm(len(every), generator=g)[:4].tolist()]
    for mask, labels in ((scored, every), (everywhere, some)):
        got = _effects(ex, call(ex, fn, model, tokens, mask.clone(), list(labels)), labels)
        want = method_scores.ablation_effects(model, tokens, mask, labels)
        if _close(got, want):
            continue
        clean = method_scores.task_loss(model, tokens, mask)
        hooks, cumulative = [], {}
        for c in labels:
            hooks += method_scores.ablation_hooks(c)
            cumulative[c] = method_scores.task_loss(model, tokens, mask, hooks) - clean
        all_at_once = method_scores.task_loss(model, tokens, mask,
                                              method_scores.ablation_hooks(labels)) - clean
        unmasked = method_scores.ablation_effects(model, tokens, everywhere, labels)
        if _close(got, {c: v + clean for c, v in want.items()}):
            raise ExerciseFailed(f"{ex}: these are the losses with each component removed, not "
                                 "how much they rise: subtract the clean model's loss.")
        if _close(got, {c: -v for c, v in want.items()}):
            raise ExerciseFailed(f"{ex}: the sign is flipped: the increase is the ablated loss "
                                 "minus the clean loss.")
        if _close(got, cumulative):
            raise ExerciseFailed(f"{ex}: your ablations accumulate: each component stays "
                                 "removed while you remove the next. Remove each one alone, "
                                 "from the clean model.")
        if _close(got, {c: all_at_once for c in labels}):
            raise ExerciseFailed(f"{ex}: every label got the same value, that of removing all of "
                                 "them at once: remove one component at a time.")
        if mask is scored and _close(got, unmasked):
            raise ExerciseFailed(f"{ex}: you averaged the loss over every position; the task "
                                 "is scored only where `scored` is True: pass it to "
                                 "method_scores.task_loss.")
        wrong = [c for c in labels if abs(got[c] - want[c]) > 1e-3 + 1e-3 * abs(want[c])]
        raise ExerciseFailed(f"{ex}: the values for {wrong[:3]} are not the loss increase their "
                             "removal causes. Use method_scores.ablation_hooks(label) for one "
                             "label, and method_scores.task_loss(model, tokens, scored, hooks).")
    passed(ex, "each component removed alone, measured against the clean loss on the scored "
           "positions, for every label asked")


def _pair(ex, out):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ExerciseFailed(f"{ex}: return two values, (precision, recall); got {out!r:.80}.")
    precision, recall = out
    if precision is not None:
        precision = expect_number(ex, precision, "precision")
    return precision, expect_number(ex, recall, "recall")


def check_precision_recall(fn, model=None):
    """Exercise 9.2: fn(named, truth) -> (precision, recall), precision None when nothing is
    named, each component counted once."""
    ex = "Exercise 9.2"
    cases = [  # named, truth, what a wrong answer here means
        (["L0H0", "L0H1", "L1H1", "MLP0"], ["L0H0", "L1H0"], None),
        (["L1H0"], ["L0H0", "L1H0", "L1H1"], None),
        (("L1H0", "L0H0"), {"L0H0", "L1H0"}, "Any collection of labels works: a tuple or a set "
                                            "as well as a list."),
        (["L1H0", "L1H0", "L0H1"], ["L1H0", "L0H0"],
         "Count each component once: a method that names L1H0 twice has not found two parts of "
         "the truth. Turn both into sets first."),
        (["L0H1", "MLP1"], ["L0H0", "L1H0"], None),
    ]
    for named, truth, hint in cases:
        got = _pair(ex, call(ex, fn, type(named)(named), type(truth)(truth)))
        hits = len(set(named) & set(truth))
        want = (hits / len(set(named)), hits / len(set(truth)))
        if got[0] is None:
            raise ExerciseFailed(f"{ex}: precision is None for named={list(named)}; None is "
                                 "only for a method that names nothing.")
        if all(abs(a - b) < 1e-9 for a, b in zip(got, want)):
            continue
        if all(abs(a - b) < 1e-9 for a, b in zip(got, want[::-1])):
            raise ExerciseFailed(f"{ex}: precision and recall are swapped: precision divides "
                                 "the hits by how many were named, recall by the size of the "
                                 "truth.")
        raise ExerciseFailed(f"{ex}: named={list(named)}, truth={sorted(truth)}: "
                             + (hint or "precision is the share of the named that are in the "
                                "truth, recall the share of the truth that is named."))
    try:
        got = _pair(ex, call(ex, fn, [], ["L0H0", "L1H0"]))
    except ExerciseFailed as e:
        if "ZeroDivisionError" in str(e):
            raise ExerciseFailed(f"{ex}: nothing named divided by zero: when `named` is empty, "
                                 "precision is None (no claim was made to be wrong about).") \
                from None
        raise
    if got[0] is not None:
        raise ExerciseFailed(f"{ex}: with nothing named, precision should be None, not "
                             f"{got[0]!r}: a method that names nothing made no claim to be "
                             "wrong about; a precision of 0 would say it named only wrong ones.")
    if got[1] != 0:
        raise ExerciseFailed(f"{ex}: with nothing named, recall is 0 (none of the truth was "
                             f"found), not {got[1]!r}.")
    passed(ex, "precision over the named, recall over the truth, each component once, and no "
           "precision when nothing is named")


def _patched(model, tokens, scored, labels, targets="clean", into="corrupt", cumulative=False):
    """method_scores.patching_effects, or a usual slip: the corrupted run scored on its own next
    tokens (targets="corrupt"), the patch put into the clean run (into="clean"), or patches that
    pile up."""
    corrupt = method_scores.resampled(tokens)
    run = corrupt if into == "corrupt" else tokens
    source = method_scores.outputs(model, tokens if into == "corrupt" else corrupt)
    scored_of = tokens if targets == "clean" else corrupt
    base = method_scores.task_loss(model, run, scored, targets=scored_of)
    out, hooks = {}, []
    for c in labels:
        hooks = (hooks if cumulative else []) + method_scores.ablation_hooks(c, source)
        out[c] = base - method_scores.task_loss(model, run, scored, hooks, targets=scored_of)
    return out


def check_patching_effects(fn, model):
    """Exercise 9.3: fn(model, tokens, scored, labels) -> {label: nats the scored loss on the
    real sequences' next tokens falls by when that one component's output on them is patched
    into the run on the resampled sequences}."""
    ex = "Exercise 9.3"
    tokens, scored = method_scores.task("induction", model)
    every = method_scores.components(model)
    for labels in (every, every[::-1][:3]):
        got = _effects(ex, call(ex, fn, model, tokens, scored.clone(), list(labels)), labels)
        want = method_scores.patching_effects(model, tokens, scored, labels)
        if _close(got, want):
            continue
        if _close(got, {c: -v for c, v in want.items()}):
            raise ExerciseFailed(f"{ex}: the sign is flipped: a patch that helps makes the loss "
                                 "fall, so the effect is the corrupted run's loss minus the "
                                 "patched run's.")
        for kwargs, why in (
                (dict(targets="corrupt"), "you scored the resampled run on its own next tokens: "
                 "score it on the real sequences' (targets=tokens), the ones the patch should "
                 "restore"),
                (dict(into="clean"), "you patched the other sequences' outputs into the real "
                 "run (noising): this exercise puts the real outputs into the resampled run"),
                (dict(cumulative=True), "your patches pile up: patch each component alone")):
            if _close(got, _patched(model, tokens, scored, labels, **kwargs)):
                raise ExerciseFailed(f"{ex}: {why}.")
        wrong = [c for c in labels if abs(got[c] - want[c]) > 1e-3 + 1e-3 * abs(want[c])]
        raise ExerciseFailed(f"{ex}: the values for {wrong[:3]} are not what patching that one "
                             "component restores. Run method_scores.resampled(tokens) with "
                             "method_scores.ablation_hooks(label, method_scores.outputs(model, "
                             "tokens)), scored with targets=tokens.")
    passed(ex, "each component patched alone into the resampled run, scored on the real "
           "sequences' next tokens")


def check_component_design(make_design, model):
    """Exercise 9.4 (open): make_design() -> claims.Design naming a component of the planted
    induction model, measured per sequence on (tokens, scored). Judged on a batch of the task
    drawn with another seed, with an untrained copy of the planted model as the null."""
    from .design import judge_against_untrained

    data = method_scores.task("induction", model, seed=5)
    return judge_against_untrained("Exercise 9.4", make_design, model, data, len(data[0]),
                                   f"{len(data[0])} held-out sequences of the task (seed 5)",
                                   "sequences", name="planted-induction")
