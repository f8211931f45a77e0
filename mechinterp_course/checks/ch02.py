"""Checks for chapter 02, the KV cache."""

from __future__ import annotations

import torch

from .. import kvcache
from . import ExerciseFailed, call, compare, passed
from .ch00 import second_model

PROMPTS = ["The capital of Texas is", "When Mary and John went to the store, John gave a drink to"]


def _kv(batch, pos, heads=2, d_head=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, pos, heads, d_head, generator=g),
            torch.randn(batch, pos, heads, d_head, generator=g))


@torch.no_grad()
def check_append_kv(fn, model):
    """Exercise 2.1: fn(past_k, past_v, k, v) -> the cache after this step."""
    ex = "Exercise 2.1"
    for batch, past, new in ((2, 3, 3), (1, 5, 1), (2, 7, 3)):  # equal first: wrong axes show
        past_k, past_v = _kv(batch, past, seed=1)
        k, v = _kv(batch, new, seed=2)
        out = call(ex, fn, past_k.clone(), past_v.clone(), k.clone(), v.clone())
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ExerciseFailed(f"{ex}: return a pair (all_keys, all_values).")
        want_k, want_v = kvcache.append_kv(past_k, past_v, k, v)
        if torch.is_tensor(out[0]) and out[0].shape == k.shape and torch.equal(out[0], k):
            raise ExerciseFailed(f"{ex}: the cache is never updated: you return only the new "
                                 "keys and values, so each new token sees only itself. Return "
                                 "the cached ones followed by the new ones.")
        if torch.is_tensor(out[0]) and out[0].shape != want_k.shape:
            raise ExerciseFailed(f"{ex}: keys have shape {tuple(out[0].shape)}, expected "
                                 f"{tuple(want_k.shape)}: concatenate on the position axis "
                                 "(dim=1), not the batch or head axis.")
        compare(ex, out[0], want_k, {
            "Keys and values are swapped: return (keys, values).": want_v,
            "The new keys went before the cached ones: the cache holds the earlier positions, "
            "so concatenate (past, new) along the position axis.": torch.cat([k, past_k], 1),
        }, what="the keys")
        compare(ex, out[1], want_v, {}, what="the values")
    k, v = _kv(2, 4)
    out = call(ex, fn, None, None, k, v)
    if not (isinstance(out, tuple) and len(out) == 2 and torch.equal(out[0], k)
            and torch.equal(out[1], v)):
        raise ExerciseFailed(f"{ex}: with an empty cache (past_k is None), return the new keys "
                             "and values themselves.")
    passed(ex, "keys and values are appended along the position axis")


@torch.no_grad()
def check_attend_with_cache(fn, model):
    """Exercise 2.2: fn(q, k, v) attends new queries to every cached key."""
    ex = "Exercise 2.2"
    g = torch.Generator().manual_seed(0)
    for batch, new, total, heads, kv in ((1, 1, 6, 4, 4), (2, 5, 5, 4, 2), (2, 3, 7, 4, 2)):
        q = torch.randn(batch, new, heads, 8, generator=g)
        k = torch.randn(batch, total, kv, 8, generator=g)
        v = torch.randn(batch, total, kv, 8, generator=g)
        out = call(ex, fn, q.clone(), k.clone(), v.clone())
        want = kvcache.attend_with_cache(q, k, v)
        rk, rv = k.repeat_interleave(heads // kv, 2), v.repeat_interleave(heads // kv, 2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, rk)

        def finish(s, mask_offset=None):
            if mask_offset is not None:
                s = s.masked_fill(torch.ones(new, total, dtype=torch.bool).triu(mask_offset),
                                  float("-inf"))
            return torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), rv)
        mistakes = {"Missing 1/sqrt(d_head) in the scores.": finish(scores, total - new + 1)}
        if total > new:
            mistakes["The mask ignores the cached positions: new query i sits at position "
                     "(total - new + i), so it may see every key up to there; shift the "
                     "diagonal by total - new."] = finish(scores / 8 ** 0.5, 1)
        if new > 1:
            mistakes["No causal mask: when several new tokens arrive at once (the prompt), "
                     "each may only see keys up to its own position."] = finish(scores / 8 ** 0.5)
        if heads != kv:
            tiled = k.repeat(1, 1, heads // kv, 1), v.repeat(1, 1, heads // kv, 1)
            mistakes["Key/value heads grouped wrong: use repeat_interleave on the head axis."] = \
                kvcache.attend_with_cache(q, *tiled)  # already n_heads wide: nothing to repeat
        compare(ex, out, want, mistakes, what=f"z for {new} new and {total} total positions")
    passed(ex, "new queries see exactly the cached keys up to their own position")


@torch.no_grad()
def check_cached_decoder(append, attend, model):
    """Both pieces inside a real decoder: the same greedy tokens and logits as transformers."""
    ex = "Exercises 2.1 and 2.2 together"
    for m in (model, second_model().to(model.cfg.device)):
        tokens = m.to_tokens(PROMPTS)[:, :6]
        want = m.generate(tokens, max_new_tokens=8, stop_at_eos=False)
        out = call(ex, kvcache.generate_with_cache, m, tokens, 8, append=append, attend=attend)
        if not torch.equal(out, want):
            raise ExerciseFailed(f"{ex}: the cached decoder's tokens differ from model.generate "
                                 "(the pieces pass alone: check that each step's new keys reach "
                                 "the cache before attending).")
        cache = kvcache.KVCache(m.cfg.n_layers, append)
        first = kvcache.forward_with_cache(m, tokens[:, :4], cache, attend)
        rest = kvcache.forward_with_cache(m, tokens[:, 4:], cache, attend)
        compare(ex, torch.cat([first, rest], 1), m(tokens), what="the logits", atol=1e-4)
    passed(ex, "your cache generates the same tokens and logits as transformers")


def check_cache_bytes(fn, model):
    """Exercise 2.3: fn(n_layers, n_kv_heads, d_head, n_tokens, bytes_per_value) -> bytes; checked
    against the bytes of transformers' real cache."""
    ex = "Exercise 2.3"
    for m in (model, second_model().to(model.cfg.device)):
        c = m.cfg
        tokens = m.to_tokens(PROMPTS[1:])
        with torch.no_grad():
            out = m.hf(tokens, use_cache=True)
            past = out["cache"] if "cache" in out else out["past_key_values"]  # 5.x, 4.x
        real = sum(t.numel() * t.element_size() for layer in past.layers
                   for t in (layer.keys, layer.values))
        n = tokens.shape[1]
        out = call(ex, fn, c.n_layers, c.n_kv_heads, c.d_head, n, 4)
        if out == real:
            continue
        hints = {real // 2: "You counted only keys (or only values): the cache holds both.",
                 real * c.n_heads // c.n_kv_heads: "Use the key/value heads, not the query "
                                                  "heads: with grouped-query attention they differ.",
                 real // 4: "Multiply by the bytes per value."}
        raise ExerciseFailed(f"{ex}: {out} bytes, but transformers' cache for {n} tokens of "
                             f"{c.model_name} takes {real}. {hints.get(out, '')}".strip())
    passed(ex, "the formula matches the bytes of transformers' own cache")


def check_generate_with_cache(fn, model):
    """Exercise 2.4: fn(model, tokens, n_new, forward) -> (batch, pos + n_new): greedy decoding
    with a cache, `forward(model, new_tokens, cache)` giving the logits of the new tokens. The
    same tokens as transformers, and the work a cache promises: the prompt once, then one token
    a step, and no pass after the last token."""
    ex = "Exercise 2.4"
    for m in (model, second_model().to(model.cfg.device)):
        tokens = m.to_tokens(PROMPTS)[:, :6]
        for n_new in (1, 7):
            fed = []

            def forward(lm, new, cache, fed=fed):
                fed.append(new.shape[1])
                return kvcache.forward_with_cache(lm, new, cache)
            want = m.generate(tokens, max_new_tokens=n_new, stop_at_eos=False)
            with torch.no_grad():
                out = call(ex, fn, m, tokens.clone(), n_new, forward)
            if fed and fed[0] != tokens.shape[1]:
                raise ExerciseFailed(f"{ex}: the first pass took {fed[0]} tokens; it should take "
                                     f"the whole prompt ({tokens.shape[1]}), once, to fill the "
                                     "cache.")
            if len(fed) > 1 and max(fed[1:]) > 1:
                raise ExerciseFailed(f"{ex}: after the first pass you fed the model "
                                     f"{max(fed[1:])} tokens at once: with a cache, each step "
                                     "feeds only the token just chosen.")
            if len(fed) == n_new + 1:
                raise ExerciseFailed(f"{ex}: {n_new + 1} forward passes for {n_new} new tokens: "
                                     "the last token chosen needs no pass (nothing comes after "
                                     "it).")
            if len(fed) != n_new:
                raise ExerciseFailed(f"{ex}: {len(fed)} forward passes through `forward` for "
                                     f"{n_new} new tokens; expected {n_new}: the prompt once, then "
                                     "one token a step, all through the `forward` you are given.")
            compare(ex, out, want, what="the generated sequence")
    passed(ex, "the same tokens as transformers, with the prompt fed once and one token a step")


def check_fit_line(fn, model=None):
    """Exercise 2.5: fn(x, y) -> (..., 2): least-squares (intercept, slope) of each row of y
    against x. On exact lines (where the answer is known), noisy ones, and two rows at once."""
    ex = "Exercise 2.5"
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([3.0, 5.0, 8.0, 13.0, 21.0, 34.0])
    exact = torch.stack([2.0 + 0.5 * x, -1.0 + 0.01 * x])  # (2, 6)
    noisy = exact + 0.05 * torch.randn(exact.shape, generator=g)
    for y in (exact, noisy, noisy[0]):
        out = call(ex, fn, x.tolist(), y.clone())
        want = kvcache.fit_line(x, y)
        through_origin = torch.stack([torch.zeros(y.shape[:-1]), (y * x).sum(-1) / (x * x).sum()],
                                     -1)
        swapped = want.flip(-1)
        if torch.is_tensor(out) and out.shape == want.shape and torch.allclose(
                out.float(), swapped, atol=1e-4) and not torch.allclose(want, swapped, atol=1e-4):
            raise ExerciseFailed(f"{ex}: you returned (slope, intercept): return (intercept, "
                                 "slope), in that order.")
        compare(ex, out, want, {
            "Your line goes through the origin: fit an intercept too (a column of ones beside "
            "x). A step has a cost even at length zero.": through_origin,
        }, what="the fitted lines", atol=1e-4, rtol=1e-3)
    passed(ex, "least-squares lines match, exact and noisy, one row and two")
