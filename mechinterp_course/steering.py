"""Steering (chapter 11): a direction taken from the difference of mean activations between two
sets of prompts, added to the residual stream with a strength, or removed from everything that
writes to it. Prompts of different lengths are padded on the right, so each prompt's own last
position is where its next token is read, and where it is steered."""

from __future__ import annotations

import torch
from torch import Tensor

from .interventions import at_positions, project_out


def prompts(model, texts: list[str]) -> tuple[Tensor, Tensor]:
    """Tokens (n, pos), padded on the right, and each prompt's last position (n,)."""
    if not texts:
        raise ValueError("prompts needs at least one text")
    tokens = model.to_tokens(list(texts))
    last = torch.tensor([model.to_tokens(t).shape[1] - 1 for t in texts], device=tokens.device)
    return tokens, last


@torch.no_grad()
def last_activations(model, tokens: Tensor, last: Tensor, layer: int,
                     name: str = "resid_pre") -> Tensor:
    """Activation `name` at `layer`, at each prompt's last position: (n, d_model)."""
    _, cache = model.run_with_cache(tokens, names=[(name, layer)])
    return cache[name, layer][torch.arange(len(tokens), device=tokens.device), last]


def mean_difference(model, positive: list[str], negative: list[str], layer: int,
                    name: str = "resid_pre") -> Tensor:
    """The contrastive steering vector (d_model,): the mean of activation `name` at `layer`, at
    each prompt's last position, over the `positive` prompts minus over the `negative` ones."""
    means = [last_activations(model, *prompts(model, texts), layer, name).mean(0)
             for texts in (positive, negative)]
    return means[0] - means[1]


def steering_hooks(vector: Tensor, layer: int, last: Tensor, strength: float = 1.0,
                   name: str = "resid_pre") -> list:
    """Hooks adding strength * vector (d_model,) to activation `name` at `layer`, at each
    prompt's last position (n,) only."""
    return [((name, layer), at_positions(lambda x: x + strength * vector, last))]


@torch.no_grad()
def steered_logits(model, tokens: Tensor, last: Tensor, vector: Tensor, layer: int,
                   strength: float = 1.0) -> Tensor:
    """Logits (n, d_vocab) at each prompt's last position with strength * vector added to
    resid_pre at `layer` there (`steering_hooks`)."""
    with model.hooks(steering_hooks(vector, layer, last, strength)):
        logits = model(tokens)
    return logits[torch.arange(len(tokens), device=tokens.device), last]


def write_names(model) -> list:
    """Every activation that writes into the residual stream: the embeddings (token, and
    position where the model learns them), then each block's attention and MLP outputs."""
    names = ["embed"] + (["pos_embed"] if "hook_pos_embed" in model.hook_names else [])
    return names + [(part, layer) for layer in range(model.cfg.n_layers)
                    for part in ("attn_out", "mlp_out")]


def ablation_hooks(model, directions: Tensor, names: list | None = None) -> list:
    """Directional ablation (Arditi et al. 2024): hooks removing the span of `directions`
    (k, d_model), or one direction (d_model,), from every write into the residual stream (or
    the writes `names`), at every position, so that no layer can put it back."""
    directions = directions.reshape(-1, directions.shape[-1])
    if directions.shape[-1] != model.cfg.d_model:
        raise ValueError(f"directions must be (k, d_model = {model.cfg.d_model}), got "
                         f"{tuple(directions.shape)}")
    if not torch.isfinite(directions).all() or (directions.norm(dim=-1) == 0).any():
        raise ValueError("directions must be finite and non-zero")
    remove = project_out(directions.to(model.cfg.device))
    return [(name, remove) for name in (write_names(model) if names is None else names)]
