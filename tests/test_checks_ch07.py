"""Chapter 07's checks pass the solution, fail the stub, and name the mistake in wrong answers."""

import torch

from mechinterp_course import interventions
from notebooks import exercise_functions, fails_with

NB = "07_causal_interventions.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def test_patching_metric(course_model):
    from mechinterp_course.checks import ch07
    check = ch07.check_patching_metric
    check(SOLUTION["patching_metric"], course_model)
    fails_with(check, STUB["patching_metric"], course_model, "not done yet")
    fails_with(check, lambda p, c, k: (p - c) / (k - c), course_model, "distance from the clean")
    fails_with(check, lambda p, c, k: (p - k) / (k - c), course_model, "sign is flipped")
    fails_with(check, lambda p, c, k: (p - k) / c, course_model, "clean value alone")
    fails_with(check, lambda p, c, k: p / c, course_model, "not normalised")


def _hook(edit, give_back=True):
    def make(clean_act, pos):
        def hook(x):
            x = x.clone()
            edit(x, clean_act, pos)
            return x if give_back else None
        return hook
    return make


def test_patch_position(course_model):
    from mechinterp_course.checks import ch07
    check = ch07.check_patch_position
    check(SOLUTION["patch_position"], course_model)
    fails_with(check, STUB["patch_position"], course_model, "not done yet")

    def every(x, c, p):
        x[:] = c

    def before(x, c, p):
        p = p % x.shape[1]
        x[:, p - 1] = c[:, p - 1]

    def right(x, c, p):
        x[:, p] = c[:, p]
    fails_with(check, _hook(every), course_model, "every position")
    fails_with(check, _hook(before), course_model, "Off by one")
    fails_with(check, _hook(right, give_back=False), course_model, "corrupted logits")

    def writes_into_clean(clean_act, pos):
        def hook(x):
            clean_act[:, pos + 1:] = x[:, pos + 1:]  # "saves a copy" in the wrong direction
            return clean_act.clone()
        return hook
    fails_with(check, writes_into_clean, course_model, "changed the clean activation")
    fails_with(check, lambda clean_act, pos: clean_act, course_model, "return a function")


def test_patch_residual(course_model):
    from mechinterp_course.checks import ch07
    check = ch07.check_patch_residual
    check(SOLUTION["patch_residual"], course_model)
    fails_with(check, STUB["patch_residual"], course_model, "not done yet")
    fails_with(check, lambda m, p: interventions.patch_positions(m, p, "resid_post").mean(-1),
               course_model, "resid_post")
    fails_with(check, lambda m, p: ch07._noising_grid(m, p), course_model, "noising")
    fails_with(check, lambda m, p: ch07._raw_grid(m, p), course_model, "raw logit")
    fails_with(check, lambda m, p: interventions.patch_positions(m, p).mean(-1).T, course_model,
               "\\(pos, n_layers\\)")
    fails_with(check, lambda m, p: interventions.patch_positions(m, p), course_model,
               "one grid per prompt")


def test_ablated_z(course_model):
    from mechinterp_course.checks import ch07
    check = ch07.check_ablated_z
    solution = SOLUTION["ablated_z"]
    check(solution, course_model)
    fails_with(check, STUB["ablated_z"], course_model, "not done yet")

    def in_place(z, head, kind, perm):
        out = solution(z, head, kind, perm)
        z.copy_(out)
        return out

    def every_head(z, head, kind, perm):
        if kind == "zero":
            return z * 0
        return solution(z, head, kind, perm)

    def variant(kind_to_change, value):
        def fn(z, head, kind, perm):
            if kind != kind_to_change:
                return solution(z, head, kind, perm)
            out = z.clone()
            out[:, :, head] = value(z, head, perm)
            return out
        return fn
    fails_with(check, in_place, course_model, "changed z itself")
    fails_with(check, every_head, course_model, "every head")
    fails_with(check, variant("mean", lambda z, h, p: z[:, :, h].mean((0, 1))), course_model,
               "over positions")
    fails_with(check, variant("mean", lambda z, h, p: z.mean((0, 2))), course_model, "heads too")
    fails_with(check, variant("resample", lambda z, h, p: z[p.argsort(), :, h]), course_model,
               "wrong way round")


def test_grouped_folds(course_model):
    from mechinterp_course.checks import ch07
    check = ch07.check_grouped_folds
    check(SOLUTION["grouped_folds"], course_model)
    fails_with(check, STUB["grouped_folds"], course_model, "not done yet")
    fails_with(check, lambda groups, k: torch.arange(len(groups)) % k, course_model,
               "different folds")
    fails_with(check, lambda groups, k: torch.zeros_like(groups), course_model, "all used")
    fails_with(check, lambda groups, k: groups.unique(return_inverse=True)[1].clamp(max=k - 1),
               course_model, "evenly")  # one subject in each fold but the last, which has all
    fails_with(check, lambda groups, k: [0] * len(groups), course_model, "one fold index")


def test_project_out(course_model):
    from mechinterp_course.checks import ch07
    check = ch07.check_project_out
    check(SOLUTION["project_out"], course_model)
    fails_with(check, STUB["project_out"], course_model, "not done yet")

    def onto(directions):
        remove = interventions.project_out(directions)
        return lambda x: x - remove(x)

    def unnormalised(directions):
        return lambda x: x - (x @ directions.T) @ directions

    def one_by_one(directions):
        unit = directions / directions.norm(dim=1, keepdim=True)
        return lambda x: x - sum((x @ u)[..., None] * u for u in unit)
    fails_with(check, onto, course_model, "kept only the projection")
    fails_with(check, unnormalised, course_model, "not normalised")
    fails_with(check, one_by_one, course_model, "separately")
    fails_with(check, lambda directions: directions, course_model, "return a function")


def test_restored_share(course_model):
    from mechinterp_course import claims
    from mechinterp_course.checks import ch07
    check = ch07.check_restored_share
    check(SOLUTION["restored_share"], course_model)
    check(interventions.restored_share, course_model)  # the package's version, an equivalent
    fails_with(check, STUB["restored_share"], course_model, "not done yet")
    solution = SOLUTION["restored_share"]
    fails_with(check, lambda site, s: solution(
        claims.Site(site.component, site.layers[:1], site.positions), s), course_model,
        "only the first")
    fails_with(check, lambda site, s: ch07._everywhere(site, s), course_model, "every position")
    fails_with(check, lambda site, s: ch07._raw_share(site, s), course_model, "raw logit")
    fails_with(check, lambda site, s: solution(site, claims.Sample(course_model, s.data, "", s.n)),
               course_model, "run sample.model")
    fails_with(check, lambda site, s: None, course_model, "torch.Tensor")
    fails_with(check, lambda site, s: solution(site, s).double(), course_model, "dtype")


def _design(threshold=0.3, effect=("mlp_out", (0,), ("subject",)),
            control=("attn_out", (0,), ("subject",)), measure=None, words="the attention output"):
    from mechinterp_course import claims

    def make():
        return claims.Design(
            claims.Claim("MLP 0 at the subject carries the capital", "share restored", threshold,
                         words),
            effect=claims.Site(*effect), control=None if control is None else claims.Site(*control),
            measure=measure or interventions.restored_share)
    return make


def test_open_design_is_judged_as_a_design(course_model):
    """Exercise 7.8: the solution and another sound design pass the check (with any verdict);
    designs without a control, with an unmatched one, with a threshold that is not a number,
    one that passes on the untrained model, one that ignores sample.model, and one changed
    after its verdict was shown are refused, each with its reason."""
    import math

    from mechinterp_course import claims
    from mechinterp_course.checks import design as design_check
    from mechinterp_course.checks import ch07
    check = ch07.check_design
    design_check._shown.clear()
    verdict = check(SOLUTION["my_design"], course_model)
    assert verdict.passed  # MLP 0 at the subject, on the held-out template
    fails_with(check, STUB["my_design"], course_model, "not done yet")
    fails_with(check, lambda: 0.3, course_model, "claims.Design")
    fails_with(check, _design(control=None), course_model, "no control")
    fails_with(check, _design(words=""), course_model, "no control")
    fails_with(check, _design(control=("attn_out", (0, 1), ("subject",), 2)), course_model,
               "not matched.*layers")
    fails_with(check, _design(control=("attn_out", (0,), ("last",))), course_model,
               "not matched.*positions")
    for bad in (None, math.nan, "0.3", True, torch.tensor(0.3)):
        fails_with(check, _design(threshold=bad), course_model, "plain, finite number")
    fails_with(check, _design(threshold=0.9, effect=("resid_pre", (0,), ("subject",))),
               course_model, "passes on the same prompts on an untrained model")
    fails_with(check, _design(measure=lambda site, s: torch.full(  # a measure blind to it all
        (s.n,), float(site.component == "mlp_out"))), course_model, "sample.model")
    fails_with(check, _design(measure=lambda site, s: interventions.restored_share(
        site, claims.Sample(course_model, s.data, "", s.n))), course_model, "sample.model")
    fails_with(check, _design(measure=lambda site, s: torch.ones(3)), course_model, "shape")
    fails_with(check, _design(measure=lambda site, s: torch.full((s.n,), math.nan)),
               course_model, "NaN")
    # the solution's verdict was shown: a changed threshold is post hoc, until look_again
    fails_with(check, _design(threshold=0.2), course_model, "differs from the one")
    another = _design(effect=("mlp_out", (1, 2, 3), ("subject",), 3),
                      control=("attn_out", (1, 2, 3), ("subject",), 3), threshold=0.3)
    design_check.look_again("Exercise 7.8")
    assert not check(another, course_model).passed  # sound design, negative verdict
    design_check._shown.clear()
    design_check._looked_again.clear()
