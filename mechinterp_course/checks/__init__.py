"""Exercise checks, one module a chapter (`checks.ch00`, ...), built from the helpers here.

A check runs the learner's function on several cases, compares with the model's own computation
where it can, prints one line on success, and on failure raises an AssertionError that names the
likely mistake. It names it by computing the answers that the usual bugs produce (a missing
1/sqrt(d_head), a softmax over the wrong axis, ...) and saying which one the learner's output
matches, so the hint is evidence, not a guess.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

PACKAGE = Path(__file__).resolve().parent.parent  # frames in here are the course's, not yours


class ExerciseFailed(AssertionError):
    """A check's verdict: what went wrong and what to try."""


def _your_lines(error: BaseException) -> str:
    """The frames of a traceback that are the learner's code (not the package's), as
    'line N in fn: source' lines, so a bug is found without reading the check."""
    lines = []
    for frame in traceback.extract_tb(error.__traceback__)[1:]:  # [0] is call() itself
        path = Path(frame.filename).resolve()
        if path.is_relative_to(PACKAGE) or {"site-packages", "dist-packages"} & set(path.parts):
            continue  # the course's frames and the libraries' (torch's autograd, ...)
        lines.append(f"  line {frame.lineno} in {frame.name}: {(frame.line or '').strip()}")
    return "\n" + "\n".join(lines[-3:]) if lines else ""


def call(exercise: str, fn: Callable, *args, **kwargs):
    """Run the learner's function, turning its own errors into one clear message."""
    if not callable(fn):
        raise ExerciseFailed(f"{exercise}: pass your function itself, not {type(fn).__name__} "
                             "(no brackets after its name).")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseFailed(f"{exercise}: not done yet. Replace the "
                             "`raise NotImplementedError` line with your code.") from None
    except Exception as e:  # the learner's bug, reported without the check's own traceback
        raise ExerciseFailed(f"{exercise}: your function raised {type(e).__name__}: {e}"
                             f"{_your_lines(e)}") from None


_hidden: list = []  # the last failed check's (type, value, traceback), for show_traceback()


def _brief(shell, etype, value, tb, tb_offset=None):
    """IPython's handler for a failed check: its message alone. The full traceback would show
    the check's source, with the reference answer and its list of mistakes, before the message."""
    _hidden[:] = [etype, value, tb]
    stb = [f"{etype.__name__}: {value}",
           "(The check's own code is hidden so that it does not give the answer away: "
           "mechinterp_course.checks.show_traceback() shows it.)"]
    show = getattr(shell, "_showtraceback", None)  # how IPython shows (and a kernel sends) one
    if show is not None:
        show(etype, value, stb)
    else:
        print("\n".join(stb), file=sys.stderr)
    return stb


def show_traceback():
    """Print the full traceback of the last failed check, which the notebook hid."""
    if not _hidden:
        print("No check has failed in this session.")
        return
    traceback.print_exception(*_hidden, file=sys.stdout)


def show_failures_briefly() -> bool:
    """In IPython, show failed checks as their message alone. Returns whether it could."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc((ExerciseFailed,), _brief)
    return True


show_failures_briefly()  # runs once, when a chapter imports its checks


def expect_tensor(exercise: str, out, like: Tensor, what: str = "the result") -> Tensor:
    """Type, shape, dtype, device and NaN checks, each with its own message."""
    if not isinstance(out, Tensor):
        raise ExerciseFailed(f"{exercise}: {what} should be a torch.Tensor, got "
                             f"{type(out).__name__}.")
    if out.shape != like.shape:
        raise ExerciseFailed(f"{exercise}: {what} has shape {tuple(out.shape)}, expected "
                             f"{tuple(like.shape)}.")
    if out.is_floating_point() != like.is_floating_point() or (
            like.is_floating_point() and out.dtype != like.dtype) or (
            (out.dtype == torch.bool) != (like.dtype == torch.bool)):
        raise ExerciseFailed(f"{exercise}: {what} has dtype {out.dtype}, expected {like.dtype}"
                             f"{_dtype_hint(out, like)}.")
    if out.device != like.device:
        raise ExerciseFailed(f"{exercise}: {what} is on {out.device}, expected {like.device}: "
                             "create new tensors on the input's device.")
    if out.is_floating_point() and torch.isnan(out).any():
        raise ExerciseFailed(f"{exercise}: {what} contains NaN (a 0 * inf, or a softmax over "
                             "a row that is all -inf?).")
    return out


def expect_number(exercise: str, out, what: str = "the result") -> float:
    """A Python number or a one-element tensor, finite, as a float; else a message saying
    which (a function that forgot its `return` gives None)."""
    if out is None:
        raise ExerciseFailed(f"{exercise}: your function returned None: did it forget its "
                             f"`return`? {what[0].upper() + what[1:]} should be a number.")
    if isinstance(out, Tensor):
        if out.numel() != 1:
            raise ExerciseFailed(f"{exercise}: {what} should be one number, got a tensor of "
                                 f"shape {tuple(out.shape)}.")
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        raise ExerciseFailed(f"{exercise}: {what} should be a number, got "
                             f"{type(out).__name__}.")
    if out != out or out in (float("inf"), float("-inf")):
        raise ExerciseFailed(f"{exercise}: {what} is {out}: look for a division by zero, a log "
                             "of zero, or a learning rate that blew up.")
    return float(out)


def _dtype_hint(out: Tensor, like: Tensor) -> str:
    if out.is_floating_point() and like.is_floating_point():
        return (": a tensor made inside your function takes its dtype from the inputs "
                "(dtype=x.dtype), and .half() or .double() changes the result's precision")
    return ""


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
            raise ExerciseFailed(f"{exercise}: check {what}. {hint}")
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


_done: set[str] = set()  # the exercises whose check has passed in this session


def passed(exercise: str, detail: str):
    _done.add(exercise)
    print(f"\N{CHECK MARK} {exercise} passed: {detail}")


def yours(exercise: str, fn, reference):
    """The learner's function once its check has passed in this session, else the package's
    reference, saying which. The rest of the chapter runs on the learner's own code when it can,
    and never waits for an exercise to be done."""
    if exercise in _done and callable(fn):
        print(f"(using your {getattr(fn, '__name__', 'function')} from {exercise})")
        return fn
    print(f"(using the package's {reference.__name__}: {exercise} is not done yet, so the "
          "chapter goes on with the reference)")
    return reference
