"""Attention written out by hand, one step a function: what chapter 01 teaches, for later chapters.

Shapes follow TransformerLens: activations are (batch, pos, heads, d_head); scores and patterns are
(batch, heads, query_pos, key_pos). `attention_layer` recomputes a whole attention block from a
model's weights and matches the model's own `attn_out` (a test checks this on GPT-2 and Llama).
"""

from __future__ import annotations

import torch
from torch import Tensor


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(batch, pos, n_heads * d_head) -> (batch, pos, n_heads, d_head): head h owns the h-th
    block of d_head columns."""
    batch, pos, width = x.shape
    return x.view(batch, pos, n_heads, width // n_heads)


def merge_heads(z: Tensor) -> Tensor:
    """(batch, pos, n_heads, d_head) -> (batch, pos, n_heads * d_head), the inverse of split."""
    batch, pos, n_heads, d_head = z.shape
    return z.reshape(batch, pos, n_heads * d_head)


def attention_scores(q: Tensor, k: Tensor) -> Tensor:
    """q.k / sqrt(d_head) for every query and key: (batch, heads, q_pos, k_pos). k must already
    have as many heads as q (see `repeat_kv`)."""
    d_head = q.shape[-1]
    return torch.einsum("bqhd,bkhd->bhqk", q, k) / d_head ** 0.5  # (b, h, q, k)


def causal_mask(scores: Tensor) -> Tensor:
    """Set every score of a key after its query to -inf: a position sees itself and the past."""
    q_pos, k_pos = scores.shape[-2:]
    future = torch.ones(q_pos, k_pos, dtype=torch.bool, device=scores.device).triu(
        k_pos - q_pos + 1)  # (q, k): True above the diagonal
    return scores.masked_fill(future, float("-inf"))


def attention_pattern(masked_scores: Tensor) -> Tensor:
    """Softmax over keys: each query's weights sum to 1."""
    return masked_scores.softmax(dim=-1)


def attention_by_distance(pattern: Tensor, max_distance: int) -> Tensor:
    """pattern (..., q, k) -> (..., max_distance + 1): the mean attention from a query to the key
    d positions before it, over the queries that have one, for d = 0 (itself) to max_distance."""
    return torch.stack([pattern.diagonal(-d, -2, -1).mean(-1) for d in range(max_distance + 1)],
                       -1)


def repeat_kv(x: Tensor, n_heads: int) -> Tensor:
    """Grouped-query attention: (batch, pos, n_kv_heads, d_head) -> (batch, pos, n_heads, d_head),
    query head h using kv head h // (n_heads // n_kv_heads)."""
    return x.repeat_interleave(n_heads // x.shape[2], dim=2)


def attention_output(pattern: Tensor, v: Tensor, W_O: Tensor, b_O: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted sum of values per head (z), then the output projection summed over heads.
    pattern (b, h, q, k), v (b, k, kv_heads, d_head), W_O (h, d_head, d_model), b_O (d_model)."""
    v = repeat_kv(v, pattern.shape[1])  # (b, k, h, d_head)
    z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)  # (b, q, h, d_head)
    out = torch.einsum("bqhd,hdm->bqm", z, W_O) + b_O  # (b, q, d_model)
    return z, out


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) over the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary position embedding as Llama applies it: dimension i is paired with i + d_head / 2 and
    the pair is rotated by an angle that grows with position. x (b, pos, heads, d_head);
    cos and sin (b, pos, d_head)."""
    cos, sin = cos[:, :, None], sin[:, :, None]  # broadcast over heads
    return x * cos + rotate_half(x) * sin


def _check_by_hand(model, layer: int, n_positions: int = 0) -> None:
    """The attention written by hand here is GPT-2's and Llama's: refuse a model whose attention
    differs (GPT-NeoX's partial rotary, q and k norms, Gemma 2's capped scores and post-norms),
    or a sliding window shorter than the n_positions attended over, rather than recompute it
    wrongly."""
    from .hooked import block_part

    attn = block_part(model.parts, model.parts["blocks"][layer], "attn")
    if model.cfg.architecture not in ("gpt2", "llama") or hasattr(attn, "q_norm") or \
            model.cfg.block_norms != "pre":
        raise NotImplementedError(
            f"{model.cfg.model_name}: the hand-written attention follows GPT-2 and Llama; this "
            f"model's differs (GPT-NeoX's partial rotary, q and k norms, or norms after the "
            f"sublayers). Read its q, k, v, pattern and z from run_with_cache instead")
    window = getattr(model.hf.config, "sliding_window", None)
    if window and getattr(model.hf.config, "use_sliding_window", True) and n_positions > window:
        raise NotImplementedError(
            f"{model.cfg.model_name} attends over a sliding window of {window} positions; the "
            f"hand-written attention attends over all {n_positions}: use at most {window}")


def project_qkv(model, layer: int, x: Tensor, start: int = 0) -> dict[str, Tensor]:
    """One layer's queries, keys and values for its input x = ln1 output (batch, pos, d_model),
    named as in the cache: q (b, pos, heads, d_head), k and v (b, pos, kv_heads, d_head), and for
    rotary models rot_q and rot_k, rotated for positions start .. start + pos - 1 (start > 0 when
    earlier positions sit in a KV cache)."""
    _check_by_hand(model, layer, start + x.shape[1])
    w = model.attention_weights(layer)
    q = torch.einsum("bpm,hmd->bphd", x, w["W_Q"]) + w["b_Q"]  # (b, pos, h, d_head)
    k = torch.einsum("bpm,hmd->bphd", x, w["W_K"]) + w["b_K"]  # (b, pos, kv, d_head)
    v = torch.einsum("bpm,hmd->bphd", x, w["W_V"]) + w["b_V"]  # (b, pos, kv, d_head)
    out = {"q": q, "k": k, "v": v}
    if model.cfg.positional_embedding_type == "rotary":
        positions = torch.arange(start, start + x.shape[1], device=x.device)[None]
        cos, sin = model.hf.model.rotary_emb(x, positions)
        out.update(rot_q=apply_rotary(q, cos, sin), rot_k=apply_rotary(k, cos, sin))
    return out


@torch.no_grad()
def attention_layer(model, layer: int, x: Tensor) -> dict[str, Tensor]:
    """Recompute attention block `layer` from its weights, given its input x = ln1 output
    (batch, pos, d_model). Returns q, k, v (pre-rotary), rot_q, rot_k, attn_scores, pattern, z and
    attn_out, named as in the model's cache."""
    w = model.attention_weights(layer)
    out = project_qkv(model, layer, x)
    q, k, v = out.get("rot_q", out["q"]), out.get("rot_k", out["k"]), out["v"]
    scores = causal_mask(attention_scores(q, repeat_kv(k, model.cfg.n_heads)))
    pattern = attention_pattern(scores)
    z, attn_out = attention_output(pattern, v, w["W_O"], w["b_O"])
    return {**out, "attn_scores": scores, "pattern": pattern, "z": z, "attn_out": attn_out}
