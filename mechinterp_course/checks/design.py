"""The check of an open exercise: it judges a design, not one number.

A design (`claims.Design`) is a claim with its threshold, the site where it intervenes, a
matched control and a per-prompt measurement. The check refuses a design that cannot be judged
(no control, an unmatched one, a threshold that is not a number) and then runs it itself:

- on **nulls**, samples where the claim is false by construction (the same prompts on an
  untrained model of the same architecture). A design that passes on a null cannot fail, so its
  pass on the real model would mean nothing;
- on **held-out prompts** the learner has not measured (another template of the same facts),
  so the threshold was fixed before this result. The verdict follows from the intervals alone.

Once a verdict has been shown, a changed design (threshold, sites or measurement) is refused:
tuned after seeing the result, it would pass by construction. `look_again(exercise)` allows a new
design, and every later verdict of that exercise is labelled exploratory.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .. import claims
from . import ExerciseFailed, call, passed

_shown: dict[str, tuple] = {}  # exercise -> the fingerprint of the design whose verdict was shown
_looked_again: set[str] = set()


def look_again(exercise: str) -> None:
    """Forget the design judged for `exercise`, so that a changed one can be judged. Its verdicts
    are exploratory from now on: the held-out prompts have been seen once."""
    _shown.pop(exercise, None)
    _looked_again.add(exercise)
    print(f"{exercise}: a new design may be judged; its verdict will be labelled exploratory "
          "(judged on prompts whose result you have seen). A confirmatory test needs new data.")


def _fingerprint(design: claims.Design) -> tuple:
    code = getattr(design.measure, "__code__", None)
    measure = (code.co_code, repr(code.co_consts)) if code is not None else repr(design.measure)
    return (float(design.claim.threshold), design.effect, design.control, measure)


def _validate(ex: str, design) -> None:
    if not isinstance(design, claims.Design):
        raise ExerciseFailed(f"{ex}: return a claims.Design(claim=..., effect=..., control=..., "
                             f"measure=...), not {type(design).__name__}.")
    claim = design.claim
    if not isinstance(claim, claims.Claim):
        raise ExerciseFailed(f"{ex}: the design's claim should be a claims.Claim(statement, "
                             f"metric, threshold, control), not {type(claim).__name__}.")
    if design.control is None or not str(claim.control or "").strip():
        raise ExerciseFailed(f"{ex}: the claim has no control. Without one, an effect cannot be "
                             "told from what any intervention of that size does: name a control "
                             "(claim.control, in words) and give its site (design.control).")
    t = claim.threshold
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ExerciseFailed(f"{ex}: the threshold must be a plain, finite number written in "
                             f"the design, fixed before any result; got {t!r:.60}.")
    for what, site in (("effect", design.effect), ("control", design.control)):
        if not isinstance(site, claims.Site):
            raise ExerciseFailed(f"{ex}: design.{what} should be a claims.Site(component, "
                                 f"layers, positions, count), not {type(site).__name__}.")
    if not callable(design.measure):
        raise ExerciseFailed(f"{ex}: design.measure should be your function measure(site, "
                             "sample), itself (no brackets after its name).")
    try:
        claims.check_matched(design.effect, design.control)
    except claims.UnmatchedControl as e:
        raise ExerciseFailed(f"{ex}: the control is not matched to the effect: {e}") from None


def _measured(ex: str, design, site, sample) -> torch.Tensor:
    out = call(ex, design.measure, site, sample)
    try:
        values = torch.as_tensor(out).detach().float().flatten().cpu()
    except Exception:  # noqa: BLE001  (whatever the learner returned)
        raise ExerciseFailed(f"{ex}: measure should return one number a prompt (a tensor of "
                             f"shape (n,)); it returned {type(out).__name__}.") from None
    n = sample.n
    if values.shape != (n,):
        raise ExerciseFailed(f"{ex}: measure returned shape {tuple(values.shape)} on "
                             f"{sample.name}; expected ({n},), one number for each of its "
                             f"{n} prompts.")
    if not torch.isfinite(values).all():
        bad = int((~torch.isfinite(values)).sum())
        raise ExerciseFailed(f"{ex}: measure returned {bad} NaN or infinite values on "
                             f"{sample.name} (a division by a difference that is zero?).")
    return values


def _values(ex, design, sample) -> tuple[torch.Tensor, torch.Tensor]:
    """(effect, control): the measure at both sites, one number a prompt."""
    return (_measured(ex, design, design.effect, sample),
            _measured(ex, design, design.control, sample))


def _verdict(design, values, level, n_boot) -> claims.Verdict:
    effect, control = values
    ci = lambda v: claims.bootstrap_ci(v, n_boot=n_boot, level=level)  # noqa: E731
    return claims.judge(design.claim, ci(effect), ci(control), ci(effect - control))


def judge_design(ex: str, make_design, held_out: claims.Sample, nulls: list[claims.Sample],
                 level: float = 0.95, n_boot: int = 1000) -> claims.Verdict:
    """The open exercise's check: validate the design, refuse it if it passes on a null, then
    judge it on the held-out sample and print the verdict."""
    design = call(ex, make_design)
    _validate(ex, design)
    real = None  # the held-out values, measured once, when a null shares its data
    for null in nulls:
        values = _values(ex, design, null)
        verdict = _verdict(design, values, level, n_boot)
        if null.model is not held_out.model and null.data is held_out.data:
            real = real or _values(ex, design, held_out)
            # (one site may give the same everywhere, as a patch that restores everything in
            # any model does; both sites the same on another model means the model is unused)
            if all(torch.allclose(a, b) for a, b in zip(values, real)):
                raise ExerciseFailed(
                    f"{ex}: measure gives the same numbers on {null.name} as on the trained "
                    "model, for both sites: it does not use sample.model (the notebook's own "
                    "model, read from outside, stays the same whatever the check passes).")
        if verdict.passed:
            raise ExerciseFailed(
                f"{ex}: your design passes on {null.name}, where the claim is false by "
                "construction. A design that cannot fail proves nothing when it passes: raise "
                "the threshold, choose a control that does what the effect does except the "
                "claimed part, or measure something the claim is about.")
    fingerprint = _fingerprint(design)  # the nulls say nothing of the held-out result
    if ex in _shown and _shown[ex] != fingerprint:
        raise ExerciseFailed(
            f"{ex}: this design differs from the one whose verdict you have seen (threshold, "
            "sites or measurement). Changed after the result, it can be made to pass whatever "
            "the model does. Keep your first design; or call "
            f"mechinterp_course.checks.design.look_again({ex!r}) and the new verdict will be "
            "labelled exploratory.")
    verdict = _verdict(design, real or _values(ex, design, held_out), level, n_boot)
    _shown[ex] = fingerprint
    label = " (exploratory: a second look at the same prompts)" if ex in _looked_again else ""
    print(claims.report([verdict]))
    passed(ex, f"your design can fail: it fails on {' and on '.join(n.name for n in nulls)}. "
           f"Judged on {held_out.name}, which you had not measured: "
           f"{'PASS' if verdict.passed else 'FAIL'}{label}. Either verdict is a result.")
    return verdict


@lru_cache(maxsize=4)
def untrained(name: str, device: str):
    """Model `name` with GPT-2's initial weights: the null where nothing was learned (seed 1:
    never the same weights as a notebook's own untrained model, which uses seed 0)."""
    from .. import models

    null = models.load_model(name, device=device)
    models.untrain(null.hf, seed=1)
    return null


def judge_against_untrained(ex: str, make_design, model, data, n: int, what: str, same: str,
                            name: str = "course") -> claims.Verdict:
    """The usual open exercise: held-out `data` (n of `same`, described by `what`) on the
    notebook's model, and the same data on an untrained copy of model `name` as the null."""
    held_out = claims.Sample(model, data, what, n)
    null = claims.Sample(untrained(name, str(model.cfg.device)), data,  # the same data object
                         f"the same {same} on an untrained model", n)
    return judge_design(ex, make_design, held_out, [null])
