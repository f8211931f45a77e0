"""Steering (chapters 11 and 12): a direction taken from the difference of mean activations
between two sets of prompts, added to the residual stream with a strength, or removed from
everything that writes to it; or a task, from a few heads' mean outputs over in-context prompts
(a function vector). Prompts of different lengths are padded on the right, so each prompt's own
last position is where its next token is read, and where it is steered."""

from __future__ import annotations

import random

import torch
from torch import Tensor

from . import interventions
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


# --- Function vectors (Todd et al. 2024): a task carried by a few heads' mean outputs -----------

def in_context_prompts(queries: list[str], answers: dict[str, str], k: int, seed: int = 0,
                       shuffle: bool = False, sep: str = ":", joiner: str = "\n") -> list[str]:
    """For each query, k demonstrations "X: answers[X]" drawn from `answers` (never the query
    itself), then "query:". shuffle: the demonstrations' answers shuffled among them (Todd et
    al.'s corrupted prompts): the pairing is gone, but not the task where the answers alone
    name it, as capitals do (chapter 12)."""
    if not 0 <= k < len(answers):
        raise ValueError(f"k must be between 0 and {len(answers) - 1}, got {k}")
    rng, shuffler = random.Random(seed), random.Random(seed + 1)  # the same demos either way
    texts = []
    for query in queries:
        demos = rng.sample([x for x in answers if x != query], k)
        shown = [answers[x] for x in demos]
        if shuffle:
            shuffler.shuffle(shown)
        texts.append("".join(f"{x}{sep} {y}{joiner}" for x, y in zip(demos, shown))
                     + f"{query}{sep}")
    return texts


@torch.no_grad()
def last_z(model, tokens: Tensor, last: Tensor) -> Tensor:
    """Every head's z (its output before W_O) at each prompt's last position:
    (n, n_layers, n_heads, d_head)."""
    names = [("z", layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names=names)
    rows = torch.arange(len(tokens), device=tokens.device)
    return torch.stack([cache[name][rows, last] for name in names], 1)


def head_attributions(model, tokens: Tensor, last: Tensor, answers: Tensor,
                      target_z: Tensor) -> Tensor:
    """(n_layers, n_heads): how much the log-probability of `answers` (n,) at each prompt's last
    position would rise if one head's z there were set to target_z[layer, head] (n_layers,
    n_heads, d_head), mean over prompts: Todd et al.'s indirect effect, estimated by
    attribution patching (chapter 10) from one forward and one backward pass instead of a
    forward pass per head. Linear, so trust its ranking, not its values, where effects are
    large."""
    n_layers, rows = model.cfg.n_layers, torch.arange(len(tokens), device=tokens.device)
    if target_z.shape != (n_layers, model.cfg.n_heads, model.cfg.d_head):
        raise ValueError(f"target_z must be (n_layers, n_heads, d_head) = "
                         f"{(n_layers, model.cfg.n_heads, model.cfg.d_head)}, got "
                         f"{tuple(target_z.shape)}")
    if answers.shape != (len(tokens),):
        raise ValueError(f"answers must be one token id per prompt, ({len(tokens)},), got "
                         f"{tuple(answers.shape)}")
    keys = [("z", layer) for layer in range(n_layers)]
    _, z, grads = interventions.metric_gradients(
        model, tokens, lambda logits: logits[rows, last].log_softmax(-1)[rows, answers], keys)
    return torch.stack([((target_z[layer] - z[key][rows, last]) * grads[key][rows, last])
                        .sum(-1).mean(0) for layer, key in enumerate(keys)]).detach()


@torch.no_grad()
def function_vector(model, mean_z: Tensor, heads: list[tuple[int, int]]) -> Tensor:
    """The function vector (d_model,): the sum over `heads`, (layer, head) pairs, of what each
    head writes to the residual stream when its z is mean_z[layer, head] (n_layers, n_heads,
    d_head), its mean over in-context prompts of the task."""
    if not heads:
        raise ValueError("name at least one (layer, head)")
    return sum(mean_z[layer, head] @ model.attention_weights(layer)["W_O"][head]
               for layer, head in heads)
