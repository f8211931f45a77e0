"""Chapter 01's checks pass the solution, fail the stub, and name the mistake in wrong answers."""

import pytest
import torch

from mechinterp_course.checks import ch01
from notebooks import exercise_functions, fails_with

NB = "01_attention.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


@pytest.mark.parametrize("name,check", [
    ("split_heads", ch01.check_split_heads), ("attention_scores", ch01.check_attention_scores),
    ("causal_mask", ch01.check_causal_mask), ("attention_pattern", ch01.check_attention_pattern),
    ("attention_output", ch01.check_attention_output), ("apply_rotary", ch01.check_apply_rotary)])
def test_solution_passes_and_stub_fails(name, check, course_model, capsys):
    check(SOLUTION[name], course_model)
    assert "passed" in capsys.readouterr().out
    fails_with(check, STUB[name], course_model, "not done yet")


def test_split_heads_mistakes(course_model):
    check = ch01.check_split_heads
    fails_with(check, lambda x, h: x.view(*x.shape[:2], -1, h).transpose(-1, -2), course_model,
               "Wrong head split order")
    fails_with(check, lambda x, h: x.view(*x.shape[:2], h, -1).transpose(1, 2), course_model,
               "keeps heads after positions")


def test_attention_scores_mistakes(course_model):
    check = ch01.check_attention_scores
    raw = lambda q, k: torch.einsum("bqhd,bkhd->bhqk", q, k)  # noqa: E731
    fails_with(check, raw, course_model, "Missing 1/sqrt")
    fails_with(check, lambda q, k: raw(q, k) / q.shape[-1], course_model, "Scaled twice")
    fails_with(check, lambda q, k: raw(q, k) / (q.shape[-1] * q.shape[-2]) ** 0.5, course_model,
               "sqrt\\(d_model\\)")
    fails_with(check, lambda q, k: raw(k, q) / q.shape[-1] ** 0.5, course_model, "swapped")


def test_causal_mask_mistakes(course_model):
    check = ch01.check_causal_mask

    def mask_with(diagonal, lower=False):
        def fn(scores):
            n = scores.shape[-1]
            ones = torch.ones(n, n, dtype=torch.bool)
            m = ones.tril(diagonal) if lower else ones.triu(diagonal)
            return scores.masked_fill(m, float("-inf"))
        return fn
    fails_with(check, mask_with(0), course_model, "must also attend to itself")
    fails_with(check, mask_with(2), course_model, "can see the next token")
    fails_with(check, mask_with(-1, lower=True), course_model, "masked the past")
    fails_with(check, lambda s: s, course_model, "nothing is masked")
    fails_with(check, lambda s: s.masked_fill(torch.ones_like(s, dtype=torch.bool).triu(1), 0.0),
               course_model, "softmax\\(0\\) is not 0")
    fails_with(check, lambda s: mask_with(1)(s) * 2, course_model, "should stay visible")


def test_attention_pattern_mistakes(course_model):
    check = ch01.check_attention_pattern
    fails_with(check, lambda s: torch.nan_to_num(s.softmax(-2)), course_model, "query axis")
    fails_with(check, lambda s: s.exp(), course_model, "apply the softmax")


def test_attention_output_mistakes(course_model):
    check = ch01.check_attention_output

    def make(group="interleave", bias=True, transpose=False):
        def fn(pattern, v, W_O, b_O):
            rep = pattern.shape[1] // v.shape[2]
            v = v.repeat_interleave(rep, 2) if group == "interleave" else v.repeat(1, 1, rep, 1)
            eq = "bhkq,bkhd->bqhd" if transpose else "bhqk,bkhd->bqhd"
            z = torch.einsum(eq, pattern, v)
            return z, torch.einsum("bqhd,hdm->bqm", z, W_O) + (b_O if bias else 0)
        return fn
    fails_with(check, make(group="tile"), course_model, "grouped wrong")
    fails_with(check, make(bias=False), course_model, "output bias")
    fails_with(check, make(transpose=True), course_model, "transposed")
    fails_with(check, lambda p, v, W_O, b_O: p, course_model, "return a pair")


def test_apply_rotary_mistakes(course_model):
    check = ch01.check_apply_rotary

    def interleaved(x, cos, sin):
        x1, x2 = x[..., ::2], x[..., 1::2]
        rot = torch.stack([-x2, x1], -1).flatten(-2)
        return x * cos[:, :, None] + rot * sin[:, :, None]

    def wrong_way(x, cos, sin):
        x1, x2 = x.chunk(2, -1)
        return x * cos[:, :, None] + torch.cat([x2, -x1], -1) * sin[:, :, None]
    fails_with(check, interleaved, course_model, "Adjacent dimensions")
    fails_with(check, wrong_way, course_model, "wrong way")
    fails_with(check, lambda x, cos, sin: x * cos[:, :, None], course_model, "x \\* cos alone")
    fails_with(check, lambda x, cos, sin: x * cos, course_model, "raised RuntimeError")


def test_attention_by_distance(course_model):
    from mechinterp_course import attention
    from mechinterp_course.checks import ch01
    check = ch01.check_attention_by_distance
    check(SOLUTION["attention_by_distance"], course_model)
    check(attention.attention_by_distance, course_model)
    check(lambda p, d: torch.stack([torch.stack([p[..., q, q - k] for q in range(k, p.shape[-1])],
                                                -1).mean(-1) for k in range(d + 1)], -1),
          course_model)  # a loop, the same numbers
    fails_with(check, STUB["attention_by_distance"], course_model, "not done yet")
    fails_with(check, lambda p, d: torch.stack([p.diagonal(k, -2, -1).mean(-1)
                                                for k in range(d + 1)], -1), course_model,
               "above the diagonal")
    fails_with(check, lambda p, d: torch.stack([p.diagonal(-k, -2, -1).sum(-1) / p.shape[-1]
                                                for k in range(d + 1)], -1), course_model,
               "first d")
    fails_with(check, lambda p, d: torch.stack([p.diagonal(-k, -2, -1).mean(-1)
                                                for k in range(1, d + 2)], -1), course_model,
               "Distance 0")
    fails_with(check, lambda p, d: attention.attention_by_distance(p, d)[..., :-1], course_model,
               "shape")


def test_open_head_design(course_model):
    from mechinterp_course import claims
    from mechinterp_course.checks import ch01
    from mechinterp_course.checks import design as design_check

    check = ch01.check_head_design
    design_check._shown.pop("Exercise 1.8", None)
    assert check(SOLUTION["head_design"], course_model).passed
    fails_with(check, STUB["head_design"], course_model, "not done yet")
    measure = SOLUTION["attention_to"]

    def design(control=("L0H3", (0,)), measure=measure):
        return lambda: claims.Design(
            claims.Claim("L0H1 is a previous-token head", "attention", 0.5, "another head"),
            effect=claims.Site("L0H1", (0,)),
            control=None if control is None else claims.Site(*control), measure=measure)

    fails_with(check, design(control=None), course_model, "no control")
    fails_with(check, design(control=("L1H3", (1,))), course_model, "not matched")
    fails_with(check, design(measure=lambda site, s: torch.full((s.n,), 0.9 * (
        site.component == "L0H1"))), course_model, "untrained model")
    fails_with(check, design(measure=lambda site, s: measure(site, claims.Sample(
        course_model, s.data, "", s.n))), course_model, "sample.model")
    design_check._shown.pop("Exercise 1.8", None)
