"""Generation with a key/value cache, written out by hand (chapter 02 builds it; later chapters use it).

Without a cache, each new token reruns the model on the whole sequence: step t costs t token
positions. With one, each layer keeps the keys and values it already computed; step t runs the
model on one new token, whose query attends to all cached keys. `forward_with_cache` is that
decoder on top of any wrapped model's own weights (GPT-2 or Llama family); its two cache steps,
`append_kv` and `attend_with_cache`, can be swapped for a learner's versions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from .attention import _check_by_hand, project_qkv, repeat_kv


def append_kv(past_k: Tensor | None, past_v: Tensor | None, k: Tensor, v: Tensor):
    """Add new keys and values (batch, new, kv_heads, d_head) after the cached ones, along pos."""
    if past_k is None:
        return k, v
    return torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)


def attend_with_cache(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """z for new queries q (batch, new, heads, d_head) over all keys and values so far
    (batch, total, kv_heads, d_head). New query i sits at position total - new + i and sees keys
    up to it."""
    new, total = q.shape[1], k.shape[1]
    k, v = repeat_kv(k, q.shape[2]), repeat_kv(v, q.shape[2])
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / q.shape[-1] ** 0.5  # (b, h, new, total)
    future = torch.ones(new, total, dtype=torch.bool, device=q.device).triu(total - new + 1)
    pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
    return torch.einsum("bhqk,bkhd->bqhd", pattern, v)  # (b, new, h, d_head)


class KVCache:
    """Per-layer keys and values, grown by an append function."""

    def __init__(self, n_layers: int, append: Callable = append_kv):
        self.keys: list[Tensor | None] = [None] * n_layers
        self.values: list[Tensor | None] = [None] * n_layers
        self.append = append

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        self.keys[layer], self.values[layer] = self.append(self.keys[layer], self.values[layer],
                                                           k, v)
        return self.keys[layer], self.values[layer]

    def __len__(self) -> int:
        """How many positions are cached."""
        return 0 if self.keys[0] is None else self.keys[0].shape[1]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.keys + self.values if t is not None)


@torch.no_grad()
def forward_with_cache(model, tokens: Tensor, cache: KVCache,
                       attend: Callable = attend_with_cache) -> Tensor:
    """Logits (batch, new, d_vocab) for `tokens` (batch, new), which follow the len(cache)
    positions already cached; the cache grows by `new` positions."""
    start, new = len(cache), tokens.shape[1]
    _check_by_hand(model, 0, start + new)  # GPT-2's and Llama's blocks, by hand
    positions = torch.arange(start, start + new, device=tokens.device)
    parts = model.parts
    x = parts["embed"](tokens)  # (b, new, d_model)
    if parts.get("pos_embed") is not None:
        x = x + parts["pos_embed"](positions)
    for layer, block in enumerate(parts["blocks"]):
        w = model.attention_weights(layer)
        ln1, ln2, mlp = _block_modules(model, block)
        new_qkv = project_qkv(model, layer, ln1(x), start)  # (b, new, heads or kv, d_head)
        q, k = new_qkv.get("rot_q", new_qkv["q"]), new_qkv.get("rot_k", new_qkv["k"])
        k_all, v_all = cache.update(layer, k, new_qkv["v"])
        z = attend(q, k_all, v_all)  # (b, new, heads, d_head)
        x = x + torch.einsum("bphd,hdm->bpm", z, w["W_O"]) + w["b_O"]
        x = x + mlp(ln2(x))
    return parts["ln_final"](x) @ model.W_U + model.b_U


def _block_modules(model, block):
    from .hooked import block_part

    return (block_part(model.parts, block, "ln1"), block_part(model.parts, block, "ln2"),
            block_part(model.parts, block, "mlp"))


@torch.no_grad()
def generate_with_cache(model, tokens: Tensor, n_new: int, append: Callable = append_kv,
                        attend: Callable = attend_with_cache):
    """Greedy generation with the hand-written cache: one prefill, then one token a step."""
    cache = KVCache(model.cfg.n_layers, append)
    logits = forward_with_cache(model, tokens, cache, attend)  # the prompt, in one pass
    for step in range(n_new):
        next_token = logits[:, -1].argmax(-1, keepdim=True)  # (b, 1)
        tokens = torch.cat([tokens, next_token], dim=1)
        if step < n_new - 1:  # the last new token needs no forward pass
            logits = forward_with_cache(model, next_token, cache, attend)
    return tokens


@torch.no_grad()
def generate_without_cache(model, tokens: Tensor, n_new: int):
    """Greedy generation that reruns the whole sequence every step."""
    for _ in range(n_new):
        next_token = model(tokens)[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, next_token], dim=1)
    return tokens


@torch.no_grad()
def step_without_cache(model, tokens: Tensor, n: int, cache: KVCache) -> Tensor:
    """The work of decoding step n without a cache: a forward pass over all n tokens."""
    return model(tokens[:, :n])[:, -1]


@torch.no_grad()
def step_with_cache(model, tokens: Tensor, n: int, cache: KVCache) -> Tensor:
    """Decoding step n with a cache of the first n - 1 tokens: token n - 1 alone goes through the
    model. The cache is left as it was, so that the same step can be timed again."""
    keys, values = list(cache.keys), list(cache.values)
    logits = forward_with_cache(model, tokens[:, n - 1:n], cache)[:, -1]
    cache.keys, cache.values = keys, values
    return logits


@torch.no_grad()
def step_seconds(model, tokens: Tensor, lengths: list[int], budget_s: float = 10.0,
                 most: int = 20) -> tuple[Tensor, int]:
    """Seconds (2, len(lengths)) of one decoding step at each length, row 0 without a cache and
    row 1 with one: the fastest of at least 3 and up to `most` rounds, as many as start within
    `budget_s`. Each round times every length both ways in turn, so a busy moment on the machine
    slows one reading of a few points, not a whole line. Also returns the number of rounds."""
    if not lengths or min(lengths) < 2 or max(lengths) > tokens.shape[1]:
        raise ValueError(f"lengths must lie in [2, {tokens.shape[1]}] (the tokens given), "
                         f"got {lengths}")
    caches = []
    for n in lengths:  # the first n - 1 tokens, cached once, before any timing
        caches.append(KVCache(model.cfg.n_layers))
        forward_with_cache(model, tokens[:, :n - 1], caches[-1])
    best = torch.full((2, len(lengths)), float("inf"))
    start, rounds = time.perf_counter(), 0
    while rounds < 3 or (rounds < most and time.perf_counter() - start < budget_s):
        for i, (n, cache) in enumerate(zip(lengths, caches)):
            for row, step in enumerate((step_without_cache, step_with_cache)):
                _finish(tokens)
                tick = time.perf_counter()
                step(model, tokens, n, cache)
                _finish(tokens)
                best[row, i] = min(best[row, i], time.perf_counter() - tick)
        rounds += 1
    return best, rounds


def _finish(tokens: Tensor) -> None:
    """Wait for the GPU to finish: its calls return before the work is done, so a clock read
    without this times the launch, not the step."""
    if tokens.is_cuda:
        torch.cuda.synchronize(tokens.device)


def fit_line(x, y: Tensor) -> Tensor:
    """Least-squares lines through the points (x, y[i]): x (n,), y (..., n) -> (..., 2), each row
    (intercept, slope)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    X = torch.stack([torch.ones_like(x), x], 1)  # (n, 2)
    y = torch.as_tensor(y, dtype=torch.float32)
    return torch.linalg.lstsq(X, y.reshape(-1, len(x)).T).solution.T.reshape(*y.shape[:-1], 2)


def cache_bytes(n_layers: int, n_kv_heads: int, d_head: int, n_tokens: int,
                bytes_per_value: int = 2, batch: int = 1) -> int:
    """Memory of a KV cache: keys and values (2) for every layer, kv head, head dimension and
    token."""
    return 2 * n_layers * n_kv_heads * d_head * n_tokens * bytes_per_value * batch


def repeats_that_fit(seconds_per_run: float, budget_s: float, most: int = 3) -> int:
    """How many runs of a timing to take the fastest of: as many as fit in `budget_s`, from one
    (a slow or busy machine, where the demo must not take minutes) to `most`."""
    if not seconds_per_run > 0 or not budget_s > 0 or most < 1:
        raise ValueError(f"need a positive run time and budget and most >= 1, got "
                         f"{seconds_per_run}, {budget_s}, {most}")
    return max(1, min(most, int(budget_s // seconds_per_run)))
