"""Every exercise check, fed the usual accidents (no return, NaN, half or double precision),
answers with a message naming the problem, never with its own traceback, and never passes a
NaN or a missing return."""

import importlib
from pathlib import Path

import pytest
import torch

from mechinterp_course.checks import ExerciseFailed
from notebooks import exercise_functions

NOTEBOOKS = sorted(p.name for p in (Path(__file__).parent.parent / "solutions").glob("*.ipynb"))
RENAMED = {"check_metrics": "sae_metrics", "07.check_design": "my_design",
           "04.check_design": "copy_design", "check_project": "my_claim",
           "check_head_design": "head_design", "check_knowledge_design": "knowledge_design",
           "check_lens_design": "lens_design", "check_component_design": "component_design",
           "10.check_head_design": "attribution_design"}
# (check name, or "chapter.check name" -> the exercise function, where they differ)
SKIP = {"check_cached_decoder"}  # takes a class the learner writes, not a function


def pairs():
    for nb in NOTEBOOKS:
        module = importlib.import_module(f"mechinterp_course.checks.ch{nb[:2]}")
        for name in sorted(n for n in dir(module) if n.startswith("check_")):
            if name not in SKIP:
                yield pytest.param(nb, module, name, id=f"{nb[:2]}-{name}")


def _map(out, fn):
    """out with every tensor and float in it replaced by fn(x)."""
    if isinstance(out, torch.Tensor) or isinstance(out, float):
        return fn(out)
    if isinstance(out, (tuple, list)):
        return type(out)(_map(o, fn) for o in out)
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b) is True


def _nan(x):
    if isinstance(x, float):
        return float("nan")
    return torch.full_like(x, float("nan")) if x.is_floating_point() else x


def _precision(dtype):
    return lambda x: x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


ACCIDENTS = {  # name: (turn the solution's output into this, must the check fail?)
    "no return": (lambda out: None, True),
    "NaN": (lambda out: _map(out, _nan), True),
    "float16": (lambda out: _map(out, _precision(torch.float16)), False),
    "float64": (lambda out: _map(out, _precision(torch.float64)), False),
}


@pytest.mark.parametrize("nb,module,name", list(pairs()))
def test_accidents_get_a_message_not_a_crash(nb, module, name, course_model):
    solution = exercise_functions("solutions", nb)[RENAMED.get(
        f"{nb[:2]}.{name}", RENAMED.get(name, name[len("check_"):]))]
    check = getattr(module, name)
    for accident, (turn, must_fail) in ACCIDENTS.items():
        changed = []

        def wrong(*args, **kwargs):
            out = solution(*args, **kwargs)
            new = turn(out)
            changed.append(new is not out and not _same(new, out))
            return new
        try:
            check(wrong, course_model)
        except ExerciseFailed as e:
            assert str(e).startswith("Exercise"), f"{accident}: {e}"
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{name} crashed on a learner function with {accident}: "
                        f"{type(e).__name__}: {e}")
        # an output with no float in it (indices, a bool, a hook editing in place) has no NaN
        assert not (must_fail and any(changed)), f"{name} passed an answer with {accident}"
