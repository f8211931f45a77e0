"""Chapter 13's check passes the solution and other correct answers, fails the stub, and names
the mistake in wrong answers without showing the reference."""

import torch

from mechinterp_course.checks import ch13
from notebooks import exercise_functions, fails_with

NB = "13_remote.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def _stack(order="forward", last="post"):
    def fn(trace, n_layers):
        rows = [trace["resid_pre", layer] for layer in range(n_layers)]
        rows.append(trace["resid_post", n_layers - 1] if last == "post" else rows[-1])
        if order == "backward":
            rows = rows[::-1]
        if order == "last first":
            rows = [rows[-1]] + rows[:-1]
        return torch.stack(rows)
    return fn


def test_residual_stack(course_model):
    check = ch13.check_residual_stack
    check(SOLUTION["residual_stack"], course_model)
    check(_stack(), course_model)
    check(lambda trace, n: torch.cat([trace["resid_pre", i][None] for i in range(n)]
                                     + [trace["resid_post", n - 1][None]]), course_model)
    fails_with(check, STUB["residual_stack"], course_model, "not done yet")
    fails_with(check, _stack("backward"), course_model, "backwards")
    fails_with(check, _stack(last="pre"), course_model, "resid_post")
    fails_with(check, _stack("last first"), course_model, "resid_pre 0 first")
    fails_with(check, lambda trace, n: torch.stack([trace["resid_pre", i] for i in range(n)]),
               course_model, "shape")  # the last residual stream left out
    fails_with(check, lambda trace, n: None, course_model, "Tensor")
    fails_with(check, lambda trace, n: _stack()(trace, n) * torch.nan, course_model, "NaN")
    fails_with(check, lambda trace, n: _stack()(trace, n).double(), course_model, "dtype|float")
    fails_with(check, lambda trace, n: _stack()(trace, n) + 1e-3, course_model, "matches none")

    def raises(trace, n):
        return trace["resid_post", n]  # a key the trace does not have
    fails_with(check, raises, course_model, "raised KeyError")


def test_grid_in_one_pass(course_model):
    from mechinterp_course import interventions
    from mechinterp_course.checks import ch13
    check = ch13.check_grid_in_one_pass
    check(SOLUTION["grid_in_one_pass"], course_model)
    check(interventions.patch_positions_one_pass, course_model)
    check(lambda m, pairs, layers: interventions.patch_positions(m, pairs)[layers], course_model)
    fails_with(check, STUB["grid_in_one_pass"], course_model, "not done yet")
    for mistake, message in ((dict(source=1), "corrupted rows"),
                             (dict(every_position=True), "every position"),
                             (dict(block=1), "one block")):
        fails_with(check, lambda m, p, ls, kw=mistake: ch13._one_pass(m, p, ls, **kw),
                   course_model, message)
    fails_with(check, lambda m, p, ls: interventions.patch_positions_one_pass(m, p, ls).flatten(
        0, 1), course_model, "reshape")


def test_forward_order():
    from mechinterp_course import remote
    from mechinterp_course.checks import ch13
    check = ch13.check_forward_order
    stages = list(remote.BLOCK_PATHS["gpt2"])

    def by(keys, block_key):
        return sorted(keys, key=lambda k: (0, 0, "") if k == "embed" else (2, 0, "") if isinstance(
            k, str) else (1, *block_key(k)))

    check(SOLUTION["forward_order"], None)
    check(remote.forward_order, None)
    fails_with(check, STUB["forward_order"], None, "not done yet")
    fails_with(check, lambda ks: by(ks, lambda k: (str(k[1]), str(stages.index(k[0])))), None,
               "as text")
    fails_with(check, lambda ks: by(ks, lambda k: (k[1], k[0])), None, "alphabetically")
    fails_with(check, lambda ks: [k for k in remote.forward_order(ks) if not isinstance(k, str)]
               + [k for k in ks if isinstance(k, str)], None, "whole-model")
    fails_with(check, lambda ks: remote.forward_order(ks)[::-1], None, "differs")
    fails_with(check, lambda ks: remote.forward_order(ks)[1:], None, "same keys")
    fails_with(check, lambda ks: None, None, "same keys")
