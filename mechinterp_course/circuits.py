"""Heads and how they connect: attention-pattern scores, ablations and composition scores
(chapter 04's reference answers; the checks compare against these).

A score says where a head *looks*; an ablation says whether the model *needs* it; a composition
score says whether one head's output can reach another's inputs at all. Chapter 04 uses all three
on the course model's induction circuit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import evaluate


def per_token_loss(model, tokens: Tensor, fwd_hooks=None) -> Tensor:
    """(batch, pos - 1): the loss of predicting each next token, optionally with hooks."""
    with torch.no_grad(), model.hooks(fwd_hooks or {}):
        logits = model(tokens)
    logprobs = logits[:, :-1].log_softmax(-1)
    return -logprobs.gather(-1, tokens[:, 1:, None])[..., 0]


def induction_score(pattern: Tensor, seq_len: int) -> Tensor:
    """pattern (batch, heads, q, k) on BOS + a random sequence of seq_len + its repeat -> (heads,):
    mean attention from each token of the repeat to the token after its first occurrence."""
    # the token at q = seq_len + 1 + i first appeared at 1 + i; its successor sits at 2 + i
    stripe = pattern.diagonal(offset=1 - seq_len, dim1=-2, dim2=-1)[..., -seq_len:]
    return stripe.mean(dim=(0, -1))


def duplicate_token_score(pattern: Tensor, seq_len: int) -> Tensor:
    """pattern (batch, heads, q, k) on BOS + a random sequence of seq_len + its repeat -> (heads,):
    mean attention from each token of the repeat to the same token's earlier occurrence."""
    stripe = pattern.diagonal(offset=-seq_len, dim1=-2, dim2=-1)[..., -seq_len:]
    return stripe.mean(dim=(0, -1))


def previous_token_score(pattern: Tensor) -> Tensor:
    """(batch, heads, q, k) -> (heads,): mean attention to the token just before."""
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))


def current_token_score(pattern: Tensor) -> Tensor:
    """(batch, heads, q, k) -> (heads,): mean attention to the token itself."""
    return pattern.diagonal(dim1=-2, dim2=-1).mean(dim=(0, -1))


def first_token_score(pattern: Tensor) -> Tensor:
    """(batch, heads, q, k) -> (heads,): mean attention to position 0 (BOS), from position 1 on."""
    return pattern[..., 1:, 0].mean(dim=(0, -1))


@torch.no_grad()
def head_scores(model, seq_len: int = 50, batch: int = 10, seed: int = 0) -> dict[str, Tensor]:
    """Every head's four scores on repeated random tokens, each (n_layers, n_heads)."""
    tokens = evaluate.repeated_tokens(model, seq_len, batch, seed)
    _, cache = model.run_with_cache(tokens, names=["pattern"])
    pats = [cache["pattern", layer] for layer in range(model.cfg.n_layers)]
    return {
        "previous token": torch.stack([previous_token_score(p) for p in pats]),
        "first token": torch.stack([first_token_score(p) for p in pats]),
        "current token": torch.stack([current_token_score(p) for p in pats]),
        "induction": torch.stack([induction_score(p, seq_len) for p in pats]),
    }


def find_heads(scores: Tensor, threshold: float) -> list[tuple[int, int]]:
    """(n_layers, n_heads) scores -> [(layer, head), ...] above threshold, in model order."""
    return [(int(layer), int(head)) for layer, head in (scores > threshold).nonzero()]


def replace_head(head: int | list[int], value: Tensor | float):
    """A hook on `z` (batch, pos, n_heads, d_head) that puts `value` in place of one head's
    output (or several heads'): 0.0 (zero ablation), its mean over a dataset, broadcast (mean
    ablation), or its value on other prompts (resample ablation, or patching a head)."""
    def hook(z: Tensor) -> Tensor:
        z = z.clone()
        z[:, :, head] = value
        return z
    return hook


def zero_head(head: int | list[int]):
    """A hook on `z` that removes one head's output, or several heads' (zero ablation)."""
    return replace_head(head, 0.0)


def ablation_sweep(model, tokens: Tensor, seq_len: int, layers) -> Tensor:
    """(len(layers), n_heads): the mean loss on the second copy of BOS + a random sequence of
    seq_len + its repeat (the copy's tokens after its first, which nothing predicts), with each
    head of `layers` zero-ablated alone (chapter 04's sweep)."""
    layers = list(layers)
    out = torch.zeros(len(layers), model.cfg.n_heads)
    for i, layer in enumerate(layers):
        for head in range(model.cfg.n_heads):
            loss = per_token_loss(model, tokens, {("z", layer): zero_head(head)})
            out[i, head] = loss[:, seq_len + 1:].mean()  # predicting tokens seq_len + 2, ...
    return out


def ablate_heads(heads: list[tuple[int, int]]) -> dict:
    """Hooks that zero-ablate each (layer, head) in `heads`."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    return {("z", layer): zero_head(hs) for layer, hs in by_layer.items()}


def ov_circuit(model, layer: int, head: int) -> Tensor:
    """(d_model, d_model): what a head writes for each direction it reads, W_V[h] @ W_O[h]."""
    w = model.attention_weights(layer)
    kv = head // (model.cfg.n_heads // model.cfg.n_kv_heads)
    return w["W_V"][kv] @ w["W_O"][head]


def qk_circuit(model, layer: int, head: int) -> Tensor:
    """(d_model, d_model): the bilinear form query_resid @ QK @ key_resid.T, W_Q[h] @ W_K[h].T."""
    w = model.attention_weights(layer)
    kv = head // (model.cfg.n_heads // model.cfg.n_kv_heads)
    return w["W_Q"][head] @ w["W_K"][kv].T


def composition_score(first: Tensor, second: Tensor) -> Tensor:
    """||first @ second||_F / (||first||_F ||second||_F): how much of what `first` writes the
    matrix `second` can read. Near 1/sqrt(d_model)-ish for unrelated random matrices."""
    return (first @ second).norm() / (first.norm() * second.norm())


def k_composition(model, earlier: tuple[int, int], later: tuple[int, int]) -> Tensor:
    """How much the earlier head's output can change the later head's keys: the earlier OV
    feeds the key side of the later QK, so compare OV with QK.T."""
    return composition_score(ov_circuit(model, *earlier), qk_circuit(model, *later).T)


def q_composition(model, earlier: tuple[int, int], later: tuple[int, int]) -> Tensor:
    """How much the earlier head's output can change the later head's queries."""
    return composition_score(ov_circuit(model, *earlier), qk_circuit(model, *later))


def v_composition(model, earlier: tuple[int, int], later: tuple[int, int]) -> Tensor:
    """How much the earlier head's output can change what the later head moves."""
    return composition_score(ov_circuit(model, *earlier), ov_circuit(model, *later))


def random_composition_scores(d_model: int, d_head: int, n: int = 50, seed: int = 0) -> Tensor:
    """(n,) composition scores of pairs of random rank-d_head matrices of a model's shape."""
    g = torch.Generator().manual_seed(seed)

    def low_rank():
        return torch.randn(d_model, d_head, generator=g) @ torch.randn(d_head, d_model,
                                                                        generator=g)
    return torch.stack([composition_score(low_rank(), low_rank()) for _ in range(n)])


def random_composition_baseline(d_model: int, d_head: int, n: int = 50, seed: int = 0) -> float:
    """The mean composition score of random low-rank matrices of a model's shape: the floor that
    real scores should be read against."""
    return float(random_composition_scores(d_model, d_head, n, seed).mean())
