"""Chapter 10's check passes the solution and other correct answers, fails the stub, and names
the mistake in wrong answers without showing the reference."""

import torch

from mechinterp_course import interventions
from mechinterp_course.checks import ch10
from notebooks import exercise_functions, fails_with

NB = "10_attribution_patching.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def _learner(mistake=None):
    """Attribution patching as a learner writes it (with .backward on the deltas), with one
    mistake."""
    def fn(model, pairs, name):
        used = "resid_pre" if mistake == "ignores name" else name
        with torch.no_grad():
            clean_logits, cache = model.run_with_cache(pairs.clean, names=[used])
        clean = interventions.answer_logit_diff(clean_logits, pairs.answer, pairs.wrong)
        acts, deltas = [], []

        def hook(x):
            delta = torch.zeros_like(x, requires_grad=True)
            acts.append(x.detach())
            deltas.append(delta)
            return x + delta
        hooks = [((used, layer), hook) for layer in range(model.cfg.n_layers)]
        with torch.enable_grad(), model.hooks(hooks):
            corrupt = interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer,
                                                      pairs.wrong)
            (corrupt.mean() if mistake == "mean" else corrupt.sum()).backward()
        corrupt = corrupt.detach()
        layers = []
        for layer, (act, delta) in enumerate(zip(acts, deltas)):
            diff = act - cache[used, layer] if mistake == "sign" else cache[used, layer] - act
            layers.append((diff * delta.grad).sum(-1).T)
        out = torch.stack(layers)
        gap = clean - corrupt
        if mistake == "nats":
            return out
        if mistake == "mean gap":
            return out / gap.mean()
        out = out / gap
        if mistake == "averaged":
            return out.mean(-1)
        if mistake == "transposed":
            return out.transpose(0, 1)
        if mistake == "nan":
            out[0, 0, 0] = float("nan")
        return out
    return fn


def test_attribution_positions(course_model):
    check = ch10.check_attribution_positions
    check(SOLUTION["attribution_positions"], course_model)
    check(_learner(), course_model)  # another correct answer
    check(interventions.attribution_positions, course_model)  # the package's
    fails_with(check, STUB["attribution_positions"], course_model, "not done yet")
    fails_with(check, _learner("mean"), course_model, "divided by the number of prompts")
    fails_with(check, _learner("sign"), course_model, "sign is flipped")
    fails_with(check, lambda m, p, name: ch10._at_clean(m, p, name), course_model,
               "gradient at the clean run")
    fails_with(check, _learner("nats"), course_model, "in nats")
    fails_with(check, _learner("mean gap"), course_model, "its own")
    fails_with(check, _learner("ignores name"), course_model, "use the `name` argument")
    fails_with(check, _learner("averaged"), course_model, "averaged over the prompts")
    fails_with(check, _learner("transposed"), course_model, r"\(pos, n_layers, n\)")
    fails_with(check, _learner("nan"), course_model, "NaN|nan")
    fails_with(check, lambda m, p, name: None, course_model, "Tensor")
    fails_with(check, lambda m, p, name: interventions.attribution_positions(m, p, name).double(),
               course_model, "dtype|float")


def test_a_failed_check_does_not_show_the_reference(course_model):
    """The messages name the mistake; none prints the expected values."""
    from mechinterp_course.checks import ExerciseFailed

    for mistake in ("mean", "sign", "nats", "averaged"):
        try:
            ch10.check_attribution_positions(_learner(mistake), course_model)
        except ExerciseFailed as failed:
            assert "tensor(" not in str(failed) and "[" not in str(failed), str(failed)
        else:
            raise AssertionError(f"the check passed a wrong answer ({mistake})")


def _swap_learner(mistake=None):
    """The swap as a learner might write it, with a hook of its own and a cached source run,
    with one mistake."""
    def fn(model, base, source, sender, through):
        layer, head = sender
        with torch.no_grad():
            _, cache = model.run_with_cache(base, names=[("z", layer), *through])
            _, other = model.run_with_cache(source, names=[("z", layer), *through])
            W_O = model.attention_weights(layer)["W_O"]
            here = cache["z", layer][:, :, head] @ W_O[head]  # (n, pos, d_model)
            there = other["z", layer][:, :, head] @ W_O[head]
            swap = here - there if mistake == "sign" else there - here
            if mistake == "z":
                return other["z", layer][:, :, head] - cache["z", layer][:, :, head]
            if mistake == "no direct":
                swap = torch.zeros_like(swap)
            if mistake == "ignores through" or not through:
                return swap

            def patch(z):
                z = z.clone()
                z[:, :, head] = other["z", layer][:, :, head]
                return z
            with model.hooks([(("z", layer), patch)]):
                _, patched = model.run_with_cache(base, names=through)
            if mistake == "from source":
                patched = other
            return swap + sum(patched[c] - cache[c] for c in through)
    return fn


def test_sender_swap(course_model):
    check = ch10.check_sender_swap
    check(SOLUTION["sender_swap"], course_model)
    check(_swap_learner(), course_model)  # another correct answer
    check(lambda m, b, s, se, t: interventions.sender_swap(m, b, s, se, t), course_model)
    fails_with(check, STUB["sender_swap"], course_model, "not done yet")
    fails_with(check, _swap_learner("sign"), course_model, "sign is flipped")
    fails_with(check, _swap_learner("z"), course_model, r"\(n, pos, d_head\)")
    fails_with(check, _swap_learner("no direct"), course_model, "direct path.*is missing")
    fails_with(check, _swap_learner("ignores through"), course_model, "ignored `through`")
    fails_with(check, _swap_learner("from source"), course_model, "source run outright")
    fails_with(check, lambda m, b, s, se, t: ch10._layer_swap(m, b, s, se[0]), course_model,
               "whole layer")
    fails_with(check, lambda m, b, s, se, t: None, course_model, "Tensor")
    fails_with(check, lambda m, b, s, se, t: interventions.sender_swap(m, b, s, se, t) * torch.nan,
               course_model, "NaN")
    fails_with(check, lambda m, b, s, se, t: interventions.sender_swap(m, b, s, se, t).double(),
               course_model, "dtype|float")
    fails_with(check, lambda m, b, s, se, t: 1 / 0, course_model, "ZeroDivisionError")


def test_shuffle_within_heads():
    import torch

    from mechinterp_course import claims
    from mechinterp_course.checks import ch10
    check = ch10.check_shuffle_within_heads
    check(SOLUTION["shuffle_within_heads"], None)
    check(claims.shuffle_last_axis, None)
    check(lambda g, gen: torch.stack([row[torch.randperm(len(row), generator=gen)]  # a rewrite
                                      for row in g.reshape(-1, g.shape[-1])]).reshape(g.shape),
          None)
    fails_with(check, STUB["shuffle_within_heads"], None, "not done yet")
    fails_with(check, lambda g, gen: g.clone(), None, "nothing was shuffled")
    fails_with(check, lambda g, gen: g.flatten()[torch.randperm(g.numel(), generator=gen)]
               .reshape(g.shape), None, "from one head to another")
    fails_with(check, lambda g, gen: g[:, torch.randperm(g.shape[1], generator=gen)], None,
               "from one head to another")
    fails_with(check, lambda g, gen: g[..., torch.randperm(g.shape[-1], generator=gen)], None,
               "same order")
    fails_with(check, lambda g, gen: claims.shuffle_last_axis(g, torch.Generator().manual_seed(
        int(torch.randint(0, 10**6, (1,))))), None, "same seed gave another")
    fails_with(check, lambda g, gen: claims.shuffle_last_axis(g, torch.Generator().manual_seed(5)),
               None, "another seed gave the same")
    fails_with(check, lambda g, gen: claims.shuffle_last_axis(g, gen) + 1, None, "same values")
    fails_with(check, lambda g, gen: None, None, "torch.Tensor")


def test_open_head_design(course_model):
    import torch

    from mechinterp_course import claims
    from mechinterp_course.checks import ch10
    from mechinterp_course.checks import design as design_check

    check = ch10.check_head_design
    design_check._shown.pop("Exercise 10.4", None)
    assert check(SOLUTION["attribution_design"], course_model).passed
    fails_with(check, STUB["attribution_design"], course_model, "not done yet")
    measure = SOLUTION["attributed_share"]

    def design(control=("L2H3", (2,)), measure=measure):
        return lambda: claims.Design(
            claims.Claim("L2H0 moves it", "attribution", 0.1, "another head"),
            effect=claims.Site("L2H0", (2,)),
            control=None if control is None else claims.Site(*control), measure=measure)

    fails_with(check, design(control=None), course_model, "no control")
    fails_with(check, design(control=("L0H3", (0,))), course_model, "not matched")
    fails_with(check, design(measure=lambda site, s: torch.full((s.n,), 0.5 * (
        site.component == "L2H0"))), course_model, "untrained model")
    fails_with(check, design(measure=lambda site, s: measure(site, claims.Sample(
        course_model, s.data, "", s.n))), course_model, "sample.model")
    design_check._shown.pop("Exercise 10.4", None)
