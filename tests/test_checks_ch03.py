"""Chapter 03's checks pass the solution, fail the stub, and name the mistake in wrong answers."""

import torch

from mechinterp_course import lens
from notebooks import exercise_functions, fails_with

NB = "03_residual_stream.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def test_residual_components(course_model):
    from mechinterp_course.checks import ch03
    check = ch03.check_residual_components
    check(SOLUTION["residual_components"], course_model)
    fails_with(check, STUB["residual_components"], course_model, "not done yet")

    def without_bias(m, cache):  # forgets b_O: the heads alone
        comps = lens.residual_components(m, cache).clone()
        for i, label in enumerate(lens.component_labels(m)):
            if label.endswith("b_O"):
                comps[i] = 0
        return comps
    fails_with(check, without_bias, course_model, "bias b_O")

    def shared_attn_out(m, cache):  # gives every head an equal share of attn_out
        comps = lens.residual_components(m, cache).clone()
        for i, label in enumerate(lens.component_labels(m)):
            if "H" in label and label[0] == "L":
                layer = int(label[1:label.index("H")])
                comps[i] = cache["attn_out", layer] / m.cfg.n_heads
        return comps
    fails_with(check, shared_attn_out, course_model, "W_O\\[head\\]")

    def no_positions(m, cache):
        comps = lens.residual_components(m, cache)
        keep = [i for i, lb in enumerate(lens.component_labels(m)) if lb != "pos_embed"]
        return comps[keep]
    fails_with(check, no_positions, course_model, "components; .* has")

    def mlp_first(m, cache):  # MLP before the heads in each layer
        comps = lens.residual_components(m, cache).clone()
        labels = lens.component_labels(m)
        a, b = labels.index("L0H0"), labels.index("L0 MLP")
        comps[[a, b]] = comps[[b, a]]
        return comps
    fails_with(check, mlp_first, course_model, "keep the order")
    fails_with(check, lambda m, c: list(lens.residual_components(m, c)), course_model,
               "torch.stack")


def test_unembed(course_model):
    from mechinterp_course.checks import ch03
    check = ch03.check_unembed
    check(SOLUTION["unembed"], course_model)
    fails_with(check, STUB["unembed"], course_model, "not done yet")

    def make(centre=True, eps_inside=True, weight=True, unbiased=False, always_centre=False):
        def fn(m, resid):
            norm = m.parts["ln_final"]
            ln = m.cfg.normalization_type == "LN"
            eps = getattr(norm, "eps", None) or norm.variance_epsilon
            x = resid - resid.mean(-1, keepdim=True) if (ln and centre) or always_centre \
                else resid
            var = x.var(-1, keepdim=True) if unbiased else x.pow(2).mean(-1, keepdim=True)
            x = x / ((var + eps).sqrt() if eps_inside else var.sqrt() + eps)
            if weight:
                x = x * norm.weight + (norm.bias if ln else 0)
            return x @ m.W_U + m.b_U
        return fn
    fails_with(check, lambda m, r: r @ m.W_U, course_model, "no final norm")
    fails_with(check, make(centre=False), course_model, "No centring")
    fails_with(check, make(eps_inside=False), course_model, "outside the square root")
    fails_with(check, make(weight=False), course_model, "learned weight")
    fails_with(check, make(always_centre=True), course_model, "centred an RMSNorm")
    # torch.var is unbiased by default and centres by itself: for LayerNorm that is the only slip
    fails_with(check, make(unbiased=True), course_model, "unbiased")
    fails_with(check, lambda m, r: m.parts["ln_final"](r) @ m.W_U[:, :10], course_model,
               "shape")


def test_attribute(course_model):
    from mechinterp_course.checks import ch03
    check = ch03.check_attribute
    check(SOLUTION["attribute"], course_model)
    fails_with(check, STUB["attribute"], course_model, "not done yet")

    def own_scale(m, comps, final, direction):
        w, b, eps = lens.final_norm_parts(m)
        x = comps - comps.mean(-1, keepdim=True) if m.cfg.normalization_type == "LN" else comps
        return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() @ (w * direction)
    fails_with(check, own_scale, course_model, "its own scale")
    fails_with(check, lambda m, c, f, d: c @ d, course_model, "components @ direction")
    fails_with(check, lambda m, c, f, d: lens.attribute(m, c, f, d)
               + m.parts["ln_final"].bias @ d, course_model, "bias was added")

    def no_centre(m, comps, final, direction):
        w, _, _ = lens.final_norm_parts(m)
        return comps / lens.norm_scale(m, final) @ (w * direction)
    fails_with(check, no_centre, course_model, "No centring")

    def no_weight(m, comps, final, direction):
        x = comps - comps.mean(-1, keepdim=True)
        return x / lens.norm_scale(m, final) @ direction
    fails_with(check, no_weight, course_model, "weight is missing")


def test_attribution_sums_to_the_logit_difference_on_both_families(course_model, llama_model):
    for m in (course_model, llama_model):
        with torch.no_grad():
            logits, cache = m.run_with_cache("The capital of Texas is")
        comps = lens.residual_components(m, cache)
        final = cache["resid_post", m.cfg.n_layers - 1]
        assert torch.allclose(comps.sum(0), final, atol=1e-4)
        a, others = 5, [7, 9, 11]
        direction = lens.logit_direction(m, a, others)
        total = lens.attribute(m, comps, final, direction).sum(0) + lens.norm_bias_term(
            m, direction)
        assert torch.allclose(total, lens.logit_difference(logits, a, others), atol=1e-3)
        assert torch.allclose(lens.logit_lens(m, cache)[-1], logits, atol=1e-3)


def test_lens_accuracy(course_model):
    from mechinterp_course import lens
    from mechinterp_course.checks import ch03
    check = ch03.check_lens_accuracy
    check(SOLUTION["lens_accuracy"], course_model)
    check(lens.lens_accuracy, course_model)
    fails_with(check, STUB["lens_accuracy"], course_model, "not done yet")
    fails_with(check, lambda m, t, a: ch03._accuracy(m, t, a, lambda r: r @ m.W_U), course_model,
               "raw residual")
    fails_with(check, lambda m, t, a: ch03._accuracy(m, t, a, lambda r: lens.unembed(m, r), 0),
               course_model, "first position")
    fails_with(check, lambda m, t, a: ch03._accuracy(m, t, a, lambda r: lens.unembed(m, r),
                                                     mean=False), course_model, "one row per")
    fails_with(check, lambda m, t, a: lens.lens_accuracy(m, t, a)[:-1], course_model, "shape")
    fails_with(check, lambda m, t, a: (lens.lens_accuracy(m, t, a) * 100).round(),
               course_model, "differs")


def test_open_lens_design(course_model):
    import torch

    from mechinterp_course import claims
    from mechinterp_course.checks import ch03
    from mechinterp_course.checks import design as design_check

    check = ch03.check_lens_design
    design_check._shown.pop("Exercise 3.5", None)
    assert check(SOLUTION["lens_design"], course_model).passed
    fails_with(check, STUB["lens_design"], course_model, "not done yet")
    measure = SOLUTION["lens_probability"]

    def design(effect_row=3, control_row=3, measure=measure):
        return lambda: claims.Design(
            claims.Claim("Readable after block 2", "lens probability", 0.2, "another capital"),
            effect=claims.Site("capital", (effect_row,)),
            control=claims.Site("another capital", (control_row,)), measure=measure)

    fails_with(check, design(control_row=0), course_model, "not matched.*layers")
    fails_with(check, design(measure=lambda site, s: torch.full((s.n,), 0.9 * (
        site.component == "capital"))), course_model, "untrained model")
    fails_with(check, design(measure=lambda site, s: measure(site, claims.Sample(
        course_model, s.data, "", s.n))), course_model, "sample.model")
    fails_with(check, design(effect_row=4, control_row=4), course_model, "differs from the one")
    design_check._shown.pop("Exercise 3.5", None)
