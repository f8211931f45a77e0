"""Reading the residual stream in the vocabulary: the final norm, the logit lens, and direct logit
attribution (chapter 03's reference answers; the checks compare against these).

The residual stream is a sum: embeddings, then every head's and MLP's output added on top. The
model turns its *final* value into logits with the final norm and the unembedding, so reading an
intermediate value, or one term of the sum, means choosing what to do about that norm:

- the logit lens normalises each intermediate residual by its *own* scale, as if the model stopped
  there;
- attribution divides every term by the *final* residual's scale, frozen, which makes the map
  linear, so the terms' contributions add up exactly to the final logits.
"""

from __future__ import annotations

import torch
from torch import Tensor


def final_norm_parts(model) -> tuple[Tensor, Tensor | None, float]:
    """The final norm's weight, bias (None for RMSNorm) and epsilon."""
    norm = model.parts["ln_final"]
    eps = getattr(norm, "eps", None) or getattr(norm, "variance_epsilon", None)
    if eps is None:
        raise AttributeError(f"cannot find the epsilon of {type(norm).__name__}")
    return norm.weight, getattr(norm, "bias", None), float(eps)


def _centre(model, x: Tensor) -> Tensor:
    """LayerNorm removes the mean across d_model first; RMSNorm does not."""
    return x - x.mean(-1, keepdim=True) if model.cfg.normalization_type == "LN" else x


def norm_scale(model, resid: Tensor) -> Tensor:
    """What the final norm divides by: sqrt(mean of squares (centred for LN) + eps), (..., 1)."""
    _, _, eps = final_norm_parts(model)
    return (_centre(model, resid).pow(2).mean(-1, keepdim=True) + eps).sqrt()


def unembed(model, resid: Tensor) -> Tensor:
    """Logits (..., d_vocab) from residual vectors (..., d_model), each normalised by its own
    scale as the model's final norm would: on the final residual this is the model's output."""
    weight, bias, _ = final_norm_parts(model)
    x = _centre(model, resid) / norm_scale(model, resid) * weight
    if bias is not None:
        x = x + bias
    return x @ model.W_U + model.b_U


def accumulated_resid(model, cache) -> Tensor:
    """(n_layers + 1, batch, pos, d_model): the residual before each block, then after the last,
    from a cache or any mapping with those keys (a `remote.trace_cache` trace)."""
    last = model.cfg.n_layers - 1
    return torch.stack([cache["resid_pre", i] for i in range(model.cfg.n_layers)]
                       + [cache["resid_post", last]])


def logit_lens(model, cache) -> Tensor:
    """(n_layers + 1, batch, pos, d_vocab): what the model would predict if it stopped before each
    block (row 0 is the embeddings alone), and its real prediction (the last row)."""
    return unembed(model, accumulated_resid(model, cache))


@torch.no_grad()
def lens_accuracy(model, tokens: Tensor, answers: Tensor) -> Tensor:
    """(n_layers + 1,): for each row of the logit lens, the share of prompts whose top guess at
    the last position is the answer. tokens (n, pos), prompts of one length; answers (n,)."""
    names = [("resid_pre", i) for i in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names=[*names, ("resid_post", model.cfg.n_layers - 1)])
    guesses = logit_lens(model, cache)[:, :, -1].argmax(-1)  # (rows, n)
    return (guesses == answers.to(guesses.device)).float().mean(-1).cpu()


def lens_row_labels(model) -> list[str]:
    """Names for the logit lens's rows."""
    return ["embed"] + [f"after block {i}" for i in range(model.cfg.n_layers)]


def component_labels(model) -> list[str]:
    """The terms whose sum is the final residual, in the order `residual_components` returns."""
    labels = ["embed"] + (["pos_embed"] if model.cfg.positional_embedding_type == "standard"
                          else [])
    for layer in range(model.cfg.n_layers):
        labels += [f"L{layer}H{h}" for h in range(model.cfg.n_heads)]
        labels += [f"L{layer} b_O", f"L{layer} MLP"]
    return labels


def residual_components(model, cache) -> Tensor:
    """(n_components, batch, pos, d_model), summing to the final residual: the embeddings, each
    head's output z_h @ W_O[h], each attention output bias and each MLP output."""
    parts = [cache["embed"]]
    if model.cfg.positional_embedding_type == "standard":
        parts.append(cache["pos_embed"].expand_as(cache["embed"]))
    for layer in range(model.cfg.n_layers):
        w = model.attention_weights(layer)
        z = cache["z", layer]  # (batch, pos, n_heads, d_head)
        heads = torch.einsum("bphd,hdm->hbpm", z, w["W_O"])
        parts += list(heads)
        parts.append(w["b_O"].expand_as(cache["embed"]))
        parts.append(cache["mlp_out", layer])
    return torch.stack(parts)


def attribute(model, components: Tensor, final_resid: Tensor, direction: Tensor) -> Tensor:
    """Each component's direct contribution to `direction` (d_model,) read through the final norm
    with the *final* residual's scale frozen: components (n, ..., d_model), final_resid
    (..., d_model) -> (n, ...). These plus `norm_bias_term` sum to final logits @ direction."""
    weight, _, _ = final_norm_parts(model)
    return (_centre(model, components) / norm_scale(model, final_resid)) @ (weight * direction)


def attribute_to_tokens(model, components: Tensor, final_resid: Tensor, tokens: Tensor) -> Tensor:
    """`attribute` with a direction per position, the unembedding of that position's token:
    components (n, ..., d_model), final_resid (..., d_model), tokens (...) -> (n, ...)."""
    weight, _, _ = final_norm_parts(model)
    read = _centre(model, components) / norm_scale(model, final_resid) * weight  # (n, ..., d)
    return (read * model.W_U.T[tokens]).sum(-1)


def norm_bias_term(model, direction: Tensor) -> Tensor:
    """The part of a logit difference no component owns: the final norm's bias (LayerNorm only)."""
    _, bias, _ = final_norm_parts(model)
    return bias @ direction if bias is not None else direction.new_zeros(())


def logit_direction(model, answer: int, other: int | Tensor) -> Tensor:
    """The residual direction (d_model,) whose final-norm output dotted gives
    logit(answer) - logit(other); `other` may be several tokens (their mean logit)."""
    other = torch.as_tensor(other, device=model.W_U.device).reshape(-1)
    return model.W_U[:, answer] - model.W_U[:, other].mean(-1)


def logit_difference(logits: Tensor, answer: int, other: int | Tensor) -> Tensor:
    """logit(answer) - mean logit(other) along the last axis: what `logit_direction` reads, plus
    any unembedding bias (GPT-2, SmolLM2 and the course model have none)."""
    other = torch.as_tensor(other, device=logits.device).reshape(-1)
    return logits[..., answer] - logits[..., other].mean(-1)


def direction_logits(model, direction: Tensor) -> Tensor:
    """(d_vocab,): how much a residual direction raises each token's logit through the
    unembedding alone, the final norm's weight applied and its scale ignored (a direction has
    no scale of its own). Used to read what an SAE latent or a neuron writes."""
    weight, _, _ = final_norm_parts(model)
    return (_centre(model, direction) * weight) @ model.W_U
