"""Exercise checks, one module a chapter (`checks.ch00`, ...), built from the helpers here.

A check runs the learner's function on several cases, compares with the model's own computation
where it can, prints one line on success, and on failure raises an AssertionError that names the
likely mistake. It names it by computing the answers that the usual bugs produce (a missing
1/sqrt(d_head), a softmax over the wrong axis, ...) and saying which one the learner's output
matches, so the hint is evidence, not a guess.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class ExerciseFailed(AssertionError):
    """A check's verdict: what went wrong and what to try."""


def call(exercise: str, fn: Callable, *args, **kwargs):
    """Run the learner's function, turning its own errors into one clear message."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseFailed(f"{exercise} is not done yet: replace the "
                             "`raise NotImplementedError` line with your code.") from None
    except Exception as e:  # the learner's bug, reported without the check's own traceback
        raise ExerciseFailed(f"{exercise}: your function raised {type(e).__name__}: {e}") from None


def expect_tensor(exercise: str, out, like: Tensor, what: str = "the result") -> Tensor:
    """Type, shape, dtype, device and NaN checks, each with its own message."""
    if not isinstance(out, Tensor):
        raise ExerciseFailed(f"{exercise}: {what} should be a torch.Tensor, got "
                             f"{type(out).__name__}.")
    if out.shape != like.shape:
        raise ExerciseFailed(f"{exercise}: {what} has shape {tuple(out.shape)}, expected "
                             f"{tuple(like.shape)}.")
    if out.is_floating_point() != like.is_floating_point():
        raise ExerciseFailed(f"{exercise}: {what} has dtype {out.dtype}, expected {like.dtype}.")
    if out.device != like.device:
        raise ExerciseFailed(f"{exercise}: {what} is on {out.device}, expected {like.device}: "
                             "create new tensors on the input's device.")
    if out.is_floating_point() and torch.isnan(out).any():
        raise ExerciseFailed(f"{exercise}: {what} contains NaN (a 0 * inf, or a softmax over "
                             "a row that is all -inf?).")
    return out


def close(a: Tensor, b: Tensor, atol: float = 1e-4, rtol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol, rtol=rtol)


def compare(exercise: str, out: Tensor, want: Tensor, mistakes: dict[str, Tensor] | None = None,
            what: str = "the result", atol: float = 1e-4, rtol: float = 1e-4):
    """Pass if `out` matches `want`; else name the mistake whose output `out` matches."""
    expect_tensor(exercise, out, want, what)
    if close(out, want, atol, rtol):
        return
    for hint, wrong in (mistakes or {}).items():
        if close(out, wrong, atol, rtol):
            raise ExerciseFailed(f"{exercise}: {what} is wrong. {hint}")
    diff = (out.float() - want.float()).abs().max().item()
    raise ExerciseFailed(f"{exercise}: {what} differs from the reference (largest difference "
                         f"{diff:.3g}), and matches none of the usual mistakes. Print a small "
                         "case and compare by hand.")


def run_with_edit(model, tokens: Tensor, name, edit) -> Tensor:
    """Logits with activation `name` cloned and changed in place by edit(x): how a check
    computes what a plausible wrong answer would have given."""
    def hook(x: Tensor) -> Tensor:
        x = x.clone()
        edit(x)
        return x
    return model.run_with_hooks(tokens, {name: hook})


def passed(exercise: str, detail: str):
    print(f"\N{CHECK MARK} {exercise} passed: {detail}")
