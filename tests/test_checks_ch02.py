"""Chapter 02's checks pass the solution, fail the stub, and name the mistake in wrong answers."""

import pytest
import torch

from mechinterp_course import kvcache
from mechinterp_course.checks import ExerciseFailed, ch02
from notebooks import exercise_functions, fails_with

NB = "02_kv_cache.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def test_append_kv(course_model):
    check = ch02.check_append_kv
    check(SOLUTION["append_kv"], course_model)
    fails_with(check, STUB["append_kv"], course_model, "not done yet")
    fails_with(check, lambda pk, pv, k, v: (k, v), course_model, "never updated")
    fails_with(check, lambda pk, pv, k, v: kvcache.append_kv(pk, pv, k, v)[::-1], course_model,
               "swapped")
    fails_with(check, lambda pk, pv, k, v: (k, v) if pk is None else
               (torch.cat([pk, k], 2), torch.cat([pv, v], 2)), course_model, "position axis")
    fails_with(check, lambda pk, pv, k, v: (torch.cat([pk, k], 1), torch.cat([pv, v], 1)),
               course_model, "raised TypeError")
    fails_with(check, lambda pk, pv, k, v: (k, v) if pk is None else
               (torch.cat([k, pk], 1), torch.cat([v, pv], 1)), course_model, "went before")


def test_attend_with_cache(course_model):
    check = ch02.check_attend_with_cache
    check(SOLUTION["attend_with_cache"], course_model)
    fails_with(check, STUB["attend_with_cache"], course_model, "not done yet")

    def make(offset=True, scale=True, mask=True, tile=False):
        def fn(q, k, v):
            new, total, h = q.shape[1], k.shape[1], q.shape[2]
            rep = h // k.shape[2]
            k = k.repeat(1, 1, rep, 1) if tile else k.repeat_interleave(rep, 2)
            v = v.repeat(1, 1, rep, 1) if tile else v.repeat_interleave(rep, 2)
            s = torch.einsum("bqhd,bkhd->bhqk", q, k) / (q.shape[-1] ** 0.5 if scale else 1)
            if mask:
                diag = total - new + 1 if offset else 1
                s = s.masked_fill(torch.ones(new, total, dtype=torch.bool).triu(diag), -torch.inf)
            return torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), v)
        return fn
    fails_with(check, make(offset=False), course_model, "ignores the cached positions")
    fails_with(check, make(scale=False), course_model, "1/sqrt")
    fails_with(check, make(mask=False), course_model, "No causal mask")
    fails_with(check, make(tile=True), course_model, "grouped wrong")


def test_cached_decoder(course_model, capsys):
    ch02.check_cached_decoder(SOLUTION["append_kv"], SOLUTION["attend_with_cache"], course_model)
    assert "same tokens" in capsys.readouterr().out
    with pytest.raises(ExerciseFailed, match="not done yet"):
        ch02.check_cached_decoder(STUB["append_kv"], SOLUTION["attend_with_cache"], course_model)
    with pytest.raises(ExerciseFailed):  # a cache that is never updated generates wrong tokens
        ch02.check_cached_decoder(lambda pk, pv, k, v: (k, v), SOLUTION["attend_with_cache"],
                                  course_model)


def test_cache_bytes(course_model):
    check = ch02.check_cache_bytes
    check(SOLUTION["cache_bytes"], course_model)
    fails_with(check, STUB["cache_bytes"], course_model, "not done yet")
    fails_with(check, lambda L, kv, d, n, b: L * kv * d * n * b, course_model, "only keys")
    fails_with(check, lambda L, kv, d, n, b: 2 * L * kv * d * n, course_model, "bytes per value")


def test_timing_repeats_scale_down_on_a_slow_machine():
    """Chapter 02's timings take the fastest of up to three runs, as many as fit in the budget:
    one on a machine where a run takes longer than the budget, never zero, never more than asked."""
    assert kvcache.repeats_that_fit(2.0, 20.0, most=3) == 3
    assert kvcache.repeats_that_fit(8.0, 20.0, most=3) == 2
    assert kvcache.repeats_that_fit(30.0, 20.0, most=3) == 1
    assert kvcache.repeats_that_fit(1e-6, 20.0, most=1) == 1
    for bad in ((0.0, 20.0), (float("nan"), 20.0), (1.0, -1.0)):
        with pytest.raises(ValueError, match="positive"):
            kvcache.repeats_that_fit(*bad)


def test_step_seconds_times_the_same_step_both_ways(course_model):
    """Chapter 02's per-step timing: both steps give the logits of the same next token, the cached
    step leaves its cache as it was (so each round times the same work), every point is timed at
    least three times, and lengths outside the tokens are refused."""
    tokens = course_model.to_tokens("When Mary and John went to the store, John gave")
    n = tokens.shape[1]
    cache = kvcache.KVCache(course_model.cfg.n_layers)
    kvcache.forward_with_cache(course_model, tokens[:, :n - 1], cache)
    before = [k.clone() for k in cache.keys]
    cached = kvcache.step_with_cache(course_model, tokens, n, cache)
    assert len(cache) == n - 1 and all(torch.equal(a, b) for a, b in zip(before, cache.keys))
    uncached = kvcache.step_without_cache(course_model, tokens, n, cache)
    assert torch.allclose(cached, uncached, atol=1e-4)
    seconds, rounds = kvcache.step_seconds(course_model, tokens, [2, n], budget_s=0.0)
    assert seconds.shape == (2, 2) and rounds == 3 and (seconds > 0).all()
    for bad in ([], [1, n], [2, n + 1]):
        with pytest.raises(ValueError, match="lengths must lie"):
            kvcache.step_seconds(course_model, tokens, bad)


def _loop(extra_pass=False, whole=False, keep_new_only=False):
    """A cached decoding loop written by a learner, with one mistake."""
    @torch.no_grad()
    def fn(model, tokens, n_new, forward):
        cache = kvcache.KVCache(model.cfg.n_layers)
        prompt, logits = tokens, forward(model, tokens, cache)
        for step in range(n_new):
            tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], 1)
            if step < n_new - 1 or extra_pass:
                logits = forward(model, tokens if whole else tokens[:, -1:], cache)
        return tokens[:, prompt.shape[1]:] if keep_new_only else tokens
    return fn


def test_generate_with_cache(course_model):
    from mechinterp_course.checks import ch02
    check = ch02.check_generate_with_cache
    check(SOLUTION["generate_with_cache"], course_model)
    check(_loop(), course_model)
    fails_with(check, STUB["generate_with_cache"], course_model, "not done yet")
    fails_with(check, _loop(extra_pass=True), course_model, "needs no pass")
    fails_with(check, _loop(whole=True), course_model, "only the token just chosen")
    fails_with(check, _loop(keep_new_only=True), course_model, "shape")
    fails_with(check, lambda m, t, n, f: kvcache.generate_without_cache(m, t, n), course_model,
               "through the `forward`")
    fails_with(check, lambda m, t, n, f: kvcache.generate_with_cache(m, t, n), course_model,
               "through the `forward`")


def test_fit_line():
    check = ch02.check_fit_line

    def lstsq(x, y, intercept=True, flip=False):
        x = torch.tensor(x)
        X = torch.stack([torch.ones_like(x), x], 1) if intercept else x[:, None]
        sol = torch.linalg.lstsq(X, y.reshape(-1, len(x)).T).solution.T
        if not intercept:
            sol = torch.cat([torch.zeros(len(sol), 1), sol], 1)
        return (sol.flip(-1) if flip else sol).reshape(*y.shape[:-1], 2)

    check(SOLUTION["fit_line"], None)
    check(kvcache.fit_line, None)
    check(lstsq, None)
    fails_with(check, STUB["fit_line"], None, "not done yet")
    fails_with(check, lambda x, y: lstsq(x, y, intercept=False), None, "through the origin")
    fails_with(check, lambda x, y: lstsq(x, y, flip=True), None, "slope, intercept")
    fails_with(check, lambda x, y: lstsq(x, y)[..., 1], None, "shape")
    fails_with(check, lambda x, y: lstsq(x, y).double(), None, "dtype")
