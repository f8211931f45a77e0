"""Chapter 04's checks pass the solution, fail the stub, and name the mistake in wrong answers;
and the circuits helpers agree with what they claim."""

import torch

from mechinterp_course import circuits, evaluate
from notebooks import exercise_functions, fails_with

NB = "04_induction_circuits.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def test_induction_score(course_model):
    from mechinterp_course.checks import ch04
    check = ch04.check_induction_score
    check(SOLUTION["induction_score"], course_model)
    fails_with(check, STUB["induction_score"], course_model, "not done yet")

    def stripe(offset, last=True, batch_mean=True):
        def fn(pattern, seq_len):
            d = pattern.diagonal(offset=offset(seq_len), dim1=-2, dim2=-1)
            d = d[..., -seq_len:] if last else d
            return d.mean(dim=(0, -1)) if batch_mean else d.mean(-1)
        return fn
    fails_with(check, stripe(lambda n: -n), course_model, "duplicate-token")
    fails_with(check, stripe(lambda n: 2 - n), course_model, "Off by one")
    fails_with(check, stripe(lambda n: 1 - n, last=False), course_model, "first copy")
    fails_with(check, stripe(lambda n: 1 - n, batch_mean=False), course_model, "batch too")


def test_find_heads(course_model):
    from mechinterp_course.checks import ch04
    check = ch04.check_find_heads
    check(SOLUTION["find_heads"], course_model)
    fails_with(check, STUB["find_heads"], course_model, "not done yet")
    fails_with(check, lambda s, t: [(h, layer) for layer, h in circuits.find_heads(s, t)],
               course_model, "\\(head, layer\\)")
    fails_with(check, lambda s, t: circuits.find_heads(-s, -t), course_model, "below")
    fails_with(check, lambda s, t: (s > t).nonzero().flatten().tolist(), course_model,
               "list of \\(layer, head\\) pairs")
    fails_with(check, lambda s, t: circuits.find_heads(s, t)[:1], course_model, "expected")


def test_zero_head(course_model):
    from mechinterp_course.checks import ch04
    check = ch04.check_zero_head
    check(SOLUTION["zero_head"], course_model)
    fails_with(check, STUB["zero_head"], course_model, "not done yet")

    def editing(edit, give_back=True):
        def make(head):
            def hook(z):
                z = z.clone()
                edit(z, head)
                return z if give_back else None
            return hook
        return make
    fails_with(check, editing(lambda z, h: z[:, h].zero_()), course_model, "a position")
    fails_with(check, editing(lambda z, h: z[:, :, h:].zero_()), course_model, "from `head` on")
    fails_with(check, editing(lambda z, h: z[..., h].zero_()), course_model, "one dimension")
    fails_with(check, editing(lambda z, h: z[:, :, h].zero_(), give_back=False), course_model,
               "same logits")
    fails_with(check, lambda head: None, course_model, "return a function")


def test_composition_score(course_model):
    from mechinterp_course.checks import ch04
    check = ch04.check_composition_score
    check(SOLUTION["composition_score"], course_model)
    fails_with(check, STUB["composition_score"], course_model, "not done yet")
    fails_with(check, lambda a, b: (a @ b).norm(), course_model, "Not normalised")
    spec = lambda x: torch.linalg.matrix_norm(x, ord=2)  # noqa: E731
    fails_with(check, lambda a, b: spec(a @ b) / (spec(a) * spec(b)), course_model, "spectral")
    fails_with(check, lambda a, b: (b @ a).norm() / (a.norm() * b.norm()), course_model,
               "wrong order")
    fails_with(check, lambda a, b: (a @ b).norm() ** 2 / (a.norm() * b.norm()) ** 2,
               course_model, "Squared")


def test_scores_on_constructed_patterns():
    """Each score reads the stripe it names: build patterns that attend exactly there."""
    seq_len, n = 5, 11  # BOS + 5 + 5
    prev = torch.zeros(1, 1, n, n)
    prev[0, 0, 0, 0] = 1
    prev[0, 0, torch.arange(1, n), torch.arange(n - 1)] = 1
    assert circuits.previous_token_score(prev).item() > 0.9
    assert circuits.first_token_score(prev).item() < 0.2
    ind = torch.zeros(1, 1, n, n)
    ind[0, 0, :, 0] = 1
    for i in range(seq_len):  # query seq_len + 1 + i attends to 2 + i
        ind[0, 0, seq_len + 1 + i] = 0
        ind[0, 0, seq_len + 1 + i, 2 + i] = 1
    assert circuits.induction_score(ind, seq_len).item() == 1.0
    assert circuits.duplicate_token_score(ind, seq_len).item() == 0.0
    dup = torch.zeros(1, 1, n, n)
    dup[0, 0, :, 0] = 1
    for i in range(seq_len):  # query seq_len + 1 + i attends to its earlier copy at 1 + i
        dup[0, 0, seq_len + 1 + i] = 0
        dup[0, 0, seq_len + 1 + i, 1 + i] = 1
    assert circuits.duplicate_token_score(dup, seq_len).item() == 1.0
    assert circuits.induction_score(dup, seq_len).item() == 0.0
    assert circuits.current_token_score(torch.eye(n)[None, None]).item() == 1.0


def test_ablating_a_head_equals_removing_its_output_weights(course_model):
    """Zeroing z for head h is the same as zeroing W_O's rows for h."""
    tokens = evaluate.repeated_tokens(course_model, 10, 2, seed=1)
    ablated = course_model.run_with_hooks(tokens, circuits.ablate_heads([(1, 2)]))
    proj = course_model.parts["blocks"][1].attn.c_proj
    saved = proj.weight.data.clone()
    try:
        d_head = course_model.cfg.d_head
        proj.weight.data[2 * d_head: 3 * d_head] = 0  # Conv1D: rows are inputs (head dims)
        assert torch.allclose(course_model(tokens), ablated, atol=1e-5)
    finally:
        proj.weight.data.copy_(saved)


def test_composition_scores_are_scale_free_and_bounded():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 6, generator=g), torch.randn(6, 6, generator=g)
    s = circuits.composition_score(a, b)
    assert torch.allclose(circuits.composition_score(3 * a, 0.1 * b), s)
    assert 0 < s <= 1
    assert torch.allclose(circuits.composition_score(torch.eye(6), torch.eye(6)),
                          torch.tensor(1 / 6 ** 0.5))
    base = circuits.random_composition_baseline(32, 4, n=20)
    assert 0.05 < base < 0.5


def test_ablation_sweep(course_model):
    from mechinterp_course import circuits
    from mechinterp_course.checks import ch04
    check = ch04.check_ablation_sweep
    check(SOLUTION["ablation_sweep"], course_model)
    check(circuits.ablation_sweep, course_model)
    fails_with(check, STUB["ablation_sweep"], course_model, "not done yet")
    fails_with(check, lambda m, t, s, ls: ch04._sweep(m, t, s, ls, cumulative=True),
               course_model, "pile up")
    fails_with(check, lambda m, t, s, ls: ch04._sweep(m, t, s, ls, slice(s, None)),
               course_model, "first token")
    fails_with(check, lambda m, t, s, ls: ch04._sweep(m, t, s, ls, slice(None)),
               course_model, "whole sequence")
    fails_with(check, lambda m, t, s, ls: ch04._sweep(m, t, s, range(len(list(ls)))),
               course_model, "layers you were given")
    fails_with(check, lambda m, t, s, ls: circuits.ablation_sweep(m, t, s, ls).T, course_model,
               "one row per layer")
    fails_with(check, lambda m, t, s, ls: circuits.ablation_sweep(m, t, s, ls).double(),
               course_model, "dtype")


def test_yours_hands_over_the_learners_function_only_once_its_check_passed(capsys):
    from mechinterp_course import checks

    def mine(x):
        return x + 1

    def reference(x):
        return x + 1

    checks._done.discard("Exercise 9.9")
    assert checks.yours("Exercise 9.9", mine, reference) is reference
    assert "Exercise 9.9 is not done yet" in capsys.readouterr().out
    checks.passed("Exercise 9.9", "ok")
    assert checks.yours("Exercise 9.9", mine, reference) is mine
    assert "using your mine" in capsys.readouterr().out
    checks._done.discard("Exercise 9.9")


def test_open_design_on_copying(course_model):
    """Exercise 4.6: the solution's design passes the check (and its claim, on held-out
    sequences); a design with no control, an unmatched one, a measure blind to the model, or
    one that reads the notebook's model instead of the sample's is refused."""
    from mechinterp_course import claims
    from mechinterp_course.checks import ch04
    from mechinterp_course.checks import design as design_check

    check = ch04.check_design
    design_check._shown.pop("Exercise 4.6", None)
    assert check(SOLUTION["copy_design"], course_model).passed
    fails_with(check, STUB["copy_design"], course_model, "not done yet")
    rise = SOLUTION["copy_loss_rise"]

    def design(control=("L0H3", (0,)), measure=rise, threshold=1.0):
        return lambda: claims.Design(
            claims.Claim("Copying needs L0H1", "loss rise", threshold, "another head"),
            effect=claims.Site("L0H1", (0,)),
            control=None if control is None else claims.Site(*control), measure=measure)

    fails_with(check, design(control=None), course_model, "no control")
    fails_with(check, design(control=("L1H3", (1,))), course_model, "not matched.*layers")
    fails_with(check, design(measure=lambda site, s: torch.full((s.n,), 5.0 * (
        site.component == "L0H1"))), course_model, "untrained model")
    fails_with(check, design(measure=lambda site, s: rise(site, claims.Sample(
        course_model, s.data, "", s.n))), course_model, "sample.model")
    fails_with(check, design(threshold=0.5), course_model, "differs from the one")
    design_check._shown.pop("Exercise 4.6", None)
