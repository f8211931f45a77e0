"""Checks for chapter 01, attention from scratch. Each compares with the model's own cache."""

from __future__ import annotations

import torch

from .. import attention as ref
from . import ExerciseFailed, call, compare, expect_tensor, passed
from .ch00 import second_model

PROMPTS = ["When Mary and John went to the store, John gave a drink to",
           "The capital of Texas is Austin. The capital of Texas is"]


def _cases(model):
    """(model, cache, layer) for the course model and a GQA + RoPE Llama, batch 1 and 2."""
    models = [model, second_model().to(model.cfg.device)]
    for m in models:
        for prompts in (PROMPTS[:1], PROMPTS):
            with torch.no_grad():
                _, cache = m.run_with_cache(m.to_tokens(prompts))
            for layer in (0, m.cfg.n_layers - 1):
                yield m, cache, layer


@torch.no_grad()
def check_split_heads(fn, model):
    """Exercise 1.1: fn(x, n_heads) splits (batch, pos, n_heads * d_head) into heads."""
    ex = "Exercise 1.1"
    for m, cache, layer in _cases(model):
        q = cache["q", layer]
        flat = ref.merge_heads(q)  # what the query projection outputs: (b, pos, h * d_head)
        b, p, h, d = q.shape
        out = call(ex, fn, flat.clone(), h)
        if isinstance(out, torch.Tensor) and out.shape == (b, h, p, d) and p != h:
            raise ExerciseFailed(f"{ex}: you returned (batch, n_heads, pos, d_head); this course "
                                 "keeps heads after positions: (batch, pos, n_heads, d_head).")
        compare(ex, out, q, {
            "Wrong head split order: head h owns columns h*d_head to (h+1)*d_head, so view as "
            "(batch, pos, n_heads, d_head), not (batch, pos, d_head, n_heads) then transpose.":
                flat.view(b, p, d, h).transpose(-1, -2),
        }, what="the split query")
    passed(ex, "heads split as the model splits them (GPT-2 and Llama, batch 1 and 2)")


@torch.no_grad()
def check_attention_scores(fn, model):
    """Exercise 1.2: fn(q, k) -> (batch, heads, q_pos, k_pos) scaled dot products."""
    ex = "Exercise 1.2"
    for m, cache, layer in _cases(model):
        rotary = m.cfg.positional_embedding_type == "rotary"
        q = cache["rot_q" if rotary else "q", layer]
        k = ref.repeat_kv(cache["rot_k" if rotary else "k", layer], m.cfg.n_heads)
        want = cache["attn_scores", layer]
        seen = torch.ones_like(want, dtype=torch.bool).tril()  # compare where unmasked
        out = call(ex, fn, q.clone(), k.clone())
        expect_tensor(ex, out, want, "the scores")
        raw = torch.einsum("bqhd,bkhd->bhqk", q, k)
        d = q.shape[-1]
        mistakes = {
            "Missing 1/sqrt(d_head): without it, scores grow with d_head and the softmax "
            "saturates.": raw,
            "Scaled twice (or by 1/d_head): divide by sqrt(d_head) once.": raw / d,
            "Scaled by sqrt(d_model): the scale is per head, sqrt(d_head).":
                raw / m.cfg.d_model ** 0.5,
            "Queries and keys are swapped: scores[b, h, q, k] is query q dotted with key k.":
                raw.transpose(-1, -2) / d ** 0.5,
        }
        compare(ex, torch.where(seen, out, 0), torch.where(seen, want, 0),
                {h: torch.where(seen, w, 0) for h, w in mistakes.items()}, what="the scores")
    passed(ex, "scores match the model's attn_scores, scale included")


def _masked(x: torch.Tensor) -> torch.Tensor:
    return (x < -1e4) | torch.isneginf(x)


@torch.no_grad()
def check_causal_mask(fn, model):
    """Exercise 1.3: fn(scores) hides every key after its query."""
    ex = "Exercise 1.3"
    for m, cache, layer in _cases(model):
        scores = cache["attn_scores", layer]
        raw = torch.where(_masked(scores), torch.randn_like(scores), scores)  # unmasked input
        out = call(ex, fn, raw.clone())
        expect_tensor(ex, out, raw, "the masked scores")
        n = raw.shape[-1]
        got, want = _masked(out), _masked(scores)
        pos = torch.arange(n)
        if not got.any():
            raise ExerciseFailed(f"{ex}: nothing is masked. Set scores of keys after the query "
                                 "to -inf. (If you used 0, note softmax(0) is not 0.)")
        shapes = {
            "Off-by-one causal mask: a position must also attend to itself; mask only keys "
            "after the query (k > q), e.g. triu(diagonal=1).": pos[None] >= pos[:, None],
            "Off-by-one causal mask: each position can see the next token, the very one it is "
            "trained to predict; mask every key after the query (k > q).":
                pos[None] > pos[:, None] + 1,
            "You masked the past instead of the future: keep k <= q, mask k > q.":
                pos[None] < pos[:, None],
        }
        if not torch.equal(got, want.expand_as(got)):
            for hint, shape in shapes.items():
                if torch.equal(got, shape.expand_as(got)):
                    raise ExerciseFailed(f"{ex}: {hint}")
            raise ExerciseFailed(f"{ex}: the masked positions are wrong: mask exactly the keys "
                                 "after each query (k > q).")
        if not torch.equal(out[~got], raw[~got]):
            raise ExerciseFailed(f"{ex}: scores that should stay visible were changed: only "
                                 "replace the masked positions.")
    passed(ex, "exactly the future is masked, as in the model")


@torch.no_grad()
def check_attention_pattern(fn, model):
    """Exercise 1.4: fn(masked_scores) -> attention probabilities."""
    ex = "Exercise 1.4"
    for m, cache, layer in _cases(model):
        scores = ref.causal_mask(cache["attn_scores", layer].masked_fill(
            _masked(cache["attn_scores", layer]), 0.0))
        out = call(ex, fn, scores.clone())
        compare(ex, out, cache["pattern", layer], {
            "Softmax over the query axis: each query's weights over the keys must sum to 1, "
            "so take the softmax over the last axis (dim=-1).":
                torch.nan_to_num(scores.softmax(dim=-2)),
            "It matches the pattern before normalising: apply the softmax.": scores.exp(),
        }, what="the pattern")
    passed(ex, "patterns match the model's own")


@torch.no_grad()
def check_attention_output(fn, model):
    """Exercise 1.5: fn(pattern, v, W_O, b_O) -> (z, attn_out), with grouped-query attention."""
    ex = "Exercise 1.5"
    for m, cache, layer in _cases(model):
        w = m.attention_weights(layer)
        pattern, v = cache["pattern", layer], cache["v", layer]
        out = call(ex, fn, pattern.clone(), v.clone(), w["W_O"], w["b_O"])
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ExerciseFailed(f"{ex}: return a pair (z, attn_out).")
        z, attn_out = out
        group = m.cfg.n_heads // v.shape[2]
        tiled = v.repeat(1, 1, group, 1)
        z_tiled = torch.einsum("bhqk,bkhd->bqhd", pattern, tiled)
        compare(ex, z, cache["z", layer], {
            "Key/value heads grouped wrong: query head h uses kv head h // (n_heads / n_kv_heads); "
            "use repeat_interleave on the head axis, not repeat (which tiles).": z_tiled,
            "The pattern is transposed: z[q] sums pattern[q, k] * v[k] over keys k.":
                torch.einsum("bhkq,bkhd->bqhd", pattern, ref.repeat_kv(v, m.cfg.n_heads)),
        }, what="z")
        compare(ex, attn_out, cache["attn_out", layer], {
            "Forgot the output bias b_O.": cache["attn_out", layer] - w["b_O"],
        }, what="attn_out")
    passed(ex, "z and attn_out match the model's, grouped-query attention included")


@torch.no_grad()
def check_apply_rotary(fn, model):
    """Exercise 1.6: fn(x, cos, sin) applies rotary embeddings to q or k, checked on `model` when
    it is a rotary (Llama-family) model and always on a random Llama (alone when `model` is None:
    SmolLM2 not installed)."""
    ex = "Exercise 1.6"
    models = [second_model().to("cpu" if model is None else model.cfg.device)]
    if model is not None and model.cfg.positional_embedding_type == "rotary":
        models.insert(0, model)
    for m in models:
        tokens = m.to_tokens(PROMPTS)
        _, cache = m.run_with_cache(tokens, names=["q", "k", "rot_q", "rot_k", "ln1"])
        positions = torch.arange(tokens.shape[1], device=tokens.device)[None]
        cos, sin = m.hf.model.rotary_emb(cache["ln1", 0], positions)
        for name in ("q", "k"):
            x = cache[name, 0]
            out = call(ex, fn, x.clone(), cos, sin)
            x1, x2 = x[..., ::2], x[..., 1::2]
            c, s = cos[:, :, None], sin[:, :, None]
            interleaved = torch.stack([-x2, x1], dim=-1).flatten(-2)
            compare(ex, out, cache["rot_" + name, 0], {
                "Adjacent dimensions were paired (GPT-J style): this model pairs dimension i with "
                "i + d_head/2; rotate the two halves.": x * c + interleaved * s,
                "Rotated the wrong way: rotate_half(x) is (-x2, x1), not (x2, -x1).":
                    x * c - ref.rotate_half(x) * s,
                "It matches x * cos alone: add rotate_half(x) * sin.": x * c,
            }, what=f"rotated {name}")
    on = " and ".join("a random Llama" if m is models[-1] else m.cfg.model_name for m in models)
    passed(ex, f"rotary q and k match the model's (rot_q, rot_k), on {on}")


@torch.no_grad()
def check_attention_by_distance(fn, model):
    """Exercise 1.7: fn(pattern, max_distance) -> (..., max_distance + 1): mean attention to the
    key d positions back, over the queries that have one. On real patterns (layer, head, q, k)
    and on an even pattern (q, k), where the answer is known."""
    ex = "Exercise 1.7"
    tokens = model.to_tokens("When Mary and John went to the store, John gave a drink to Mary")
    _, cache = model.run_with_cache(tokens, names=["pattern"])
    real = cache.stack("pattern")[:, 0]  # (layer, head, q, k)
    n = 9
    even = torch.ones(n, n).tril()
    even = even / even.sum(-1, keepdim=True)
    for pattern, d in ((real, 4), (even, 3), (real[0, 0], 0)):
        out = call(ex, fn, pattern.clone(), d)
        want = ref.attention_by_distance(pattern, d)
        compare(ex, out, want, {
            "You read above the diagonal, where the causal mask leaves nothing: the key d "
            "positions *back* is the diagonal at offset -d.": torch.stack(
                [pattern.diagonal(k, -2, -1).mean(-1) for k in range(d + 1)], -1),
            "Your means are over every query, counting the first d, which have no key that far "
            "back, as zeros: average over the queries that have one (the diagonal's length).":
                torch.stack([pattern.diagonal(-k, -2, -1).sum(-1) / pattern.shape[-1]
                             for k in range(d + 1)], -1),
            "Distance 0 is missing: d runs from 0 (the query itself) to max_distance.":
                torch.stack([pattern.diagonal(-k, -2, -1).mean(-1) for k in range(1, d + 2)], -1),
        }, what="the attention by distance", atol=1e-5)
    passed(ex, "attention by distance matches on every head and on an even pattern")


def check_head_design(make_design, model):
    """Exercise 1.8 (open): make_design() -> claims.Design about what a head of layer 0 attends
    to, measured per document on a list of token tensors. Judged on documents of a seed the
    chapter never used, with an untrained model as the null."""
    from .. import world
    from .design import judge_against_untrained

    docs = [model.to_tokens(d.text)[:, :model.cfg.n_ctx] for d in world.documents(seed=7, n=20)]
    return judge_against_untrained("Exercise 1.8", make_design, model, docs, len(docs),
                                   f"{len(docs)} held-out documents (seed 7)", "documents")
