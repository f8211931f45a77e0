"""Causal interventions: activation patching and ablations (chapter 07's reference answers; the
checks compare against these).

Attention patterns and probes say what is *in* the model; an intervention says what the model
*uses*. Change one activation, let the rest of the forward pass run, and measure the output:

- **activation patching** runs a corrupted prompt ("The capital of Ohio is") but puts back one
  activation from the clean run ("The capital of Texas is"). If the clean answer returns, that
  activation carried the difference between the two prompts;
- **ablation** replaces an activation with something uninformative and sees what breaks. Zero,
  mean and resample ablation differ only in *what* is put back: zeros (which the model never saw),
  the mean over a dataset, or the value from another prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import world
from .circuits import replace_head  # one head's output replaced: patching and every ablation


@dataclass
class PatchingPairs:
    """Clean prompts, each paired with a corrupted prompt of the same length that names another
    subject, so every position lines up. The metric is logit(answer) - logit(wrong): the clean
    subject's capital against the corrupting subject's."""

    clean: Tensor         # (n, pos) token ids
    corrupt: Tensor       # (n, pos)
    answer: Tensor        # (n,) first token of the clean prompt's capital
    wrong: Tensor         # (n,) first token of the corrupted prompt's capital
    subject: list[list[int]]  # positions of the clean subject's tokens, per prompt
    prompts: list[world.Prompt]

    def __len__(self) -> int:
        return len(self.prompts)


def capital_pairs(model, prompts: list[world.Prompt] | None = None) -> list[PatchingPairs]:
    """'The capital of X is' prompts (default: every country and US state), grouped by token
    length; within a group each prompt is corrupted with the next prompt's subject (cyclically).
    One `PatchingPairs` per length, longest group first."""
    prompts = prompts or world.capital_prompts()
    groups: dict[int, list] = {}
    for p in prompts:
        tokens = model.to_tokens(p.text)[0]
        groups.setdefault(len(tokens), []).append((p, tokens))
    out = []
    for _, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(group) < 2:
            continue  # nothing of the same length to corrupt it with
        ps = [p for p, _ in group]
        clean = torch.stack([t for _, t in group])
        answer = torch.stack([model.to_tokens(p.answer, prepend_bos=False)[0, 0] for p in ps])
        shift = [(i + 1) % len(ps) for i in range(len(ps))]
        if (answer == answer[shift]).any():
            raise ValueError("two paired prompts share the first token of their answers")
        before = ps[0].text[:ps[0].text.index(ps[0].attrs["subject"])].rstrip()
        prefix = len(model.to_tokens(before)[0])  # BOS and the template's words before X
        subject = [list(range(prefix, clean.shape[1] - 1)) for _ in ps]  # before the final " is"
        out.append(PatchingPairs(clean, clean[shift], answer, answer[shift], subject, ps))
    return out


def answer_logit_diff(logits: Tensor, answer: Tensor, wrong: Tensor) -> Tensor:
    """(n,): logit(answer) - logit(wrong) at the last position of each row of logits
    (n, pos, d_vocab)."""
    last = logits[:, -1]
    rows = torch.arange(len(last), device=last.device)
    return last[rows, answer] - last[rows, wrong]


def normalised(value: Tensor, clean: Tensor, corrupt: Tensor) -> Tensor:
    """0 where `value` equals the corrupted run's metric, 1 where it equals the clean run's: the
    share of the clean behaviour that a patch restores."""
    return (value - corrupt) / (clean - corrupt)


def patch_position(clean_act: Tensor, pos: int | list[int]):
    """A hook that puts back the clean activation at one position (axis 1), or at a list of
    positions, leaving the rest."""
    def hook(x: Tensor) -> Tensor:
        x = x.clone()
        x[:, pos] = clean_act[:, pos]
        return x
    return hook


@torch.no_grad()
def _baselines(model, pairs: PatchingPairs, names):
    clean_logits, cache = model.run_with_cache(pairs.clean, names=names)
    clean = answer_logit_diff(clean_logits, pairs.answer, pairs.wrong)
    corrupt = answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
    return cache, clean, corrupt


@torch.no_grad()
def patch_positions(model, pairs: PatchingPairs, name: str = "resid_pre",
                    positions: list[int] | None = None) -> Tensor:
    """(n_layers, pos, n): the normalised logit difference when activation `name` of one layer at
    one position is patched from the clean run into the corrupted one, per prompt. positions:
    only these (one forward pass each per layer, the cost of patching); the rest stay 0."""
    n_pos = pairs.clean.shape[1]
    positions = list(range(n_pos)) if positions is None else list(positions)
    if not all(isinstance(p, int) and -n_pos <= p < n_pos for p in positions):
        raise ValueError(f"positions must be whole numbers in [-{n_pos}, {n_pos}), got {positions}")
    cache, clean, corrupt = _baselines(model, pairs, [name])
    out = torch.zeros(model.cfg.n_layers, n_pos, len(pairs))
    for layer in range(model.cfg.n_layers):
        for pos in positions:
            with model.hooks({(name, layer): patch_position(cache[name, layer], pos)}):
                patched = answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
            out[layer, pos] = normalised(patched, clean, corrupt).cpu()
    return out


@torch.no_grad()
def patch_positions_one_pass(model, pairs: PatchingPairs, layers=None) -> Tensor:
    """`patch_positions` for resid_pre as ONE forward pass (chapter 13's way, for remote models):
    the clean rows, the corrupted rows and one copy of the corrupted rows per (layer, position)
    cell run as one batch; a hook at each layer puts the clean rows' residual into the copies
    whose cell is there. (len(layers), pos, n)."""
    n, n_pos = pairs.clean.shape
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    cells = [(layer, pos) for layer in layers for pos in range(n_pos)]
    batch = torch.cat([pairs.clean, pairs.corrupt] + [pairs.corrupt] * len(cells))

    def put_back(layer):
        def hook(x):  # (rows, pos, d_model)
            x = x.clone()
            for i, (at, pos) in enumerate(cells):
                if at == layer:
                    x[(i + 2) * n:(i + 3) * n, pos] = x[:n, pos]
            return x
        return hook

    with model.hooks({("resid_pre", layer): put_back(layer) for layer in set(layers)}):
        logits = model(batch)
    diff = answer_logit_diff(logits, pairs.answer.repeat(len(cells) + 2),
                             pairs.wrong.repeat(len(cells) + 2)).view(len(cells) + 2, n)
    return normalised(diff[2:], diff[0], diff[1]).view(len(layers), n_pos, n).cpu()


@torch.no_grad()
def patch_span(model, pairs: PatchingPairs, name: str, layer: int,
               positions: list[int]) -> Tensor:
    """(n,): the normalised logit difference when activation `name` of one layer is patched at
    several positions at once (a whole multi-token subject, say), per prompt."""
    cache, clean, corrupt = _baselines(model, pairs, [(name, layer)])
    with model.hooks({(name, layer): patch_position(cache[name, layer], positions)}):
        patched = answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
    return normalised(patched, clean, corrupt).cpu()


def named_positions(pairs: PatchingPairs, names) -> list[int]:
    """Positions by name, the same in every prompt of a group: "subject" (its tokens) and "last"
    (the final " is"), so one design fits prompts of any template."""
    where = {"subject": pairs.subject[0], "last": [pairs.clean.shape[1] - 1]}
    unknown = [n for n in names if n not in where]
    if unknown:
        raise ValueError(f"unknown position names {unknown}; use {sorted(where)}")
    return sorted({p for n in names for p in where[n]})


@torch.no_grad()
def restored_share(site, sample) -> Tensor:
    """(n,): the share of the logit difference restored per prompt when `site`'s component (an
    activation name such as "mlp_out") of each of its layers is patched from the clean run into
    the corrupted one at its named positions. The reference `measure` of a `claims.Design` on a
    `claims.Sample` of patching pairs (chapter 07's open exercise)."""
    model, pairs = sample.model, sample.data
    positions = named_positions(pairs, site.positions)
    names = [(site.component, layer) for layer in site.layers]
    cache, clean, corrupt = _baselines(model, pairs, names)
    hooks = {name: patch_position(cache[name], positions) for name in names}
    with model.hooks(hooks):
        patched = answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
    return normalised(patched, clean, corrupt).cpu()


@torch.no_grad()
def patch_heads(model, pairs: PatchingPairs) -> Tensor:
    """(n_layers, n_heads, n): the normalised logit difference when one head's output (its z at
    every position) is patched from the clean run into the corrupted one, per prompt."""
    cache, clean, corrupt = _baselines(model, pairs, ["z"])
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, len(pairs))
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            hook = replace_head(head, cache["z", layer][:, :, head])
            with model.hooks({("z", layer): hook}):
                patched = answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
            out[layer, head] = normalised(patched, clean, corrupt).cpu()
    return out


POSITION_SHAPED = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")


def metric_gradients(model, tokens: Tensor, metric, keys) -> tuple:
    """One forward and one backward pass on `tokens` (n, pos): metric(logits), one number per
    row (n,); the activation at each key, {(name, layer): tensor}; and the gradient of the
    summed metric with respect to each (row i's gradient is row i's own when rows do not
    interact, as prompts do not). A zero tensor added at each hook point carries the gradient,
    so no activation is detached."""
    acts, deltas = {}, {}

    def keep(key):
        def hook(x: Tensor) -> Tensor:
            delta = torch.zeros_like(x, requires_grad=True)  # d metric / d delta = d metric / d x
            acts[key], deltas[key] = x.detach(), delta
            return x + delta
        return hook

    keys = list(keys)
    with torch.enable_grad(), model.hooks({key: keep(key) for key in keys}):
        value = metric(model(tokens))
        grads = torch.autograd.grad(value.sum(), [deltas[key] for key in keys])
    return value.detach(), acts, dict(zip(keys, grads))


def gradients_at(model, tokens: Tensor, pairs: PatchingPairs, names) -> tuple:
    """`metric_gradients` of the logit difference (n,) at every layer's activation of `names`."""
    keys = [(name, layer) for name in names for layer in range(model.cfg.n_layers)]
    return metric_gradients(model, tokens,
                            lambda logits: answer_logit_diff(logits, pairs.answer, pairs.wrong),
                            keys)


def _attribution(model, pairs: PatchingPairs, name: str, reduce) -> Tensor:
    """(n_layers, ..., n): reduce((clean - corrupted activation) * gradient at the corrupted run)
    for each layer, normalised by each prompt's clean - corrupted logit difference."""
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(pairs.clean, names=[name])
    clean = answer_logit_diff(clean_logits, pairs.answer, pairs.wrong)
    corrupt, acts, grads = gradients_at(model, pairs.corrupt, pairs, [name])
    out = torch.stack([reduce((clean_cache[name, layer] - acts[name, layer]) * grads[name, layer])
                       for layer in range(model.cfg.n_layers)])
    return (out / (clean - corrupt)).cpu()


def attribution_positions(model, pairs: PatchingPairs, name: str = "resid_pre") -> Tensor:
    """(n_layers, pos, n): attribution patching's estimate of `patch_positions`, the first term
    of a Taylor expansion: (clean - corrupted activation) . gradient of the logit difference at
    the corrupted run, per layer and position, normalised the same way. Two forward passes and
    one backward pass, where activation patching takes one forward pass per cell."""
    if name not in POSITION_SHAPED:
        raise ValueError(f"attribution_positions takes one of {POSITION_SHAPED} (batch, pos, "
                         f"d_model), not {name!r}; for heads use attribution_heads")
    return _attribution(model, pairs, name, lambda x: x.sum(-1).T)  # (pos, n) per layer


def attribution_heads(model, pairs: PatchingPairs) -> Tensor:
    """(n_layers, n_heads, n): attribution patching's estimate of `patch_heads`, one head's z at
    every position at once."""
    return _attribution(model, pairs, "z", lambda z: z.sum((1, 3)).T)  # (heads, n) per layer


@torch.no_grad()
def sender_swap(model, base: Tensor, source: Tensor, sender: tuple[int, int], through=(),
                direct: bool = True, keep=()) -> Tensor:
    """What path patching adds to a later layer's residual stream, (n, pos, d_model): the sender
    head's output on `source` tokens minus its output on `base` tokens (the direct path), plus,
    for each component `through`, ("mlp_out", layer) or ("attn_out", layer), how its output on
    `base` changes when the sender's output is patched (the paths through it). keep: more
    activations of the base run to return with it, (swap, cache), saving a forward pass."""
    s_layer, s_head = sender
    through = [tuple(t) for t in through]
    for name, layer in through:
        first = s_layer if name == "mlp_out" else s_layer + 1  # the sender's own layer's heads
        if name not in ("mlp_out", "attn_out") or not first <= layer < model.cfg.n_layers:
            raise ValueError(f"through takes ('mlp_out', {s_layer}...) or ('attn_out', "
                             f"{s_layer + 1}...), components after the sender; got {(name, layer)}")
    if not (direct or through):
        raise ValueError("with direct=False, name the paths `through` which the sender is seen")
    if base.shape != source.shape:
        raise ValueError(f"base {tuple(base.shape)} and source {tuple(source.shape)} must have "
                         "one shape, so that positions line up")
    _, cache = model.run_with_cache(base, names=[("z", s_layer), *through, *keep])
    _, other = model.run_with_cache(source, names=[("z", s_layer)])
    sent = other["z", s_layer][:, :, s_head]  # (n, pos, d_head)
    W_O = model.attention_weights(s_layer)["W_O"][s_head]  # (d_head, d_model)
    swap = (sent - cache["z", s_layer][:, :, s_head]) @ W_O  # the direct path
    swap = swap if direct else torch.zeros_like(swap)
    if through:
        with model.hooks({("z", s_layer): replace_head(s_head, sent)}):
            _, patched = model.run_with_cache(base, names=through)
        swap = swap + sum(patched[t] - cache[t] for t in through)
    return (swap, cache) if keep else swap


def receiver_inputs(model, layer: int, resid: Tensor) -> dict[str, Tensor]:
    """Layer `layer`'s queries, keys and values if its residual stream input were `resid`
    (batch, pos, d_model): normed by the layer's own norm, then projected (`project_qkv`)."""
    from .attention import _check_by_hand, project_qkv
    from .hooked import block_part

    _check_by_hand(model, layer, resid.shape[1])
    norm = block_part(model.parts, model.parts["blocks"][layer], "ln1")
    return project_qkv(model, layer, norm(resid))


@torch.no_grad()
def path_patch_hooks(model, base: Tensor, source: Tensor, sender: tuple[int, int],
                     receiver: tuple[int, int], via: str, through=(), direct: bool = True) -> list:
    """Hooks for a run on `base` tokens (n, pos) in which only the receiver head's `via` input
    ("q", "k" or "v") sees the sender head's output from the run on `source` tokens (path
    patching, Wang et al. 2022): the receiver's input is its layer's residual stream with the
    sender's term swapped (`sender_swap`), normed and projected again. Every other component
    sees the base run. through: components between them, ("mlp_out", layer) or ("attn_out",
    layer), whose outputs the receiver sees as they are when the sender is patched (the paths
    through them); without, the direct path only. direct=False leaves the direct path out, the
    paths through alone. With grouped-query attention a key or value belongs to a kv head,
    shared by its group."""
    (s_layer, _), (r_layer, _) = sender, receiver
    if via not in ("q", "k", "v"):
        raise ValueError(f"via must be 'q', 'k' or 'v', got {via!r}")
    if not 0 <= s_layer < r_layer < model.cfg.n_layers:
        raise ValueError(f"the sender's layer ({s_layer}) must come before the receiver's "
                         f"({r_layer}), both below {model.cfg.n_layers}")
    for name, layer in through:
        if layer >= r_layer:  # the receiver's layer reads its input before these run
            raise ValueError(f"through takes components before the receiver's layer {r_layer}, "
                             f"got {(name, layer)}")
    swap, cache = sender_swap(model, base, source, sender, through, direct,
                              keep=[("resid_pre", r_layer)])
    return receiver_hooks(model, base, receiver, via, swap, cache["resid_pre", r_layer])


@torch.no_grad()
def receiver_hooks(model, base: Tensor, receiver: tuple[int, int], via: str, swap: Tensor,
                   resid_pre: Tensor | None = None) -> list:
    """Hooks for a run on `base` tokens in which only the receiver head's `via` input reads its
    layer's residual stream plus `swap` (n, pos, d_model): what `path_patch_hooks` does with a
    sender's swap, or with any other, e.g. a random direction of the same norm (a control).
    resid_pre: the base run's, if already at hand."""
    r_layer, r_head = receiver
    if via not in ("q", "k", "v"):
        raise ValueError(f"via must be 'q', 'k' or 'v', got {via!r}")
    if swap.shape != (*base.shape, model.cfg.d_model):
        raise ValueError(f"swap must be (n, pos, d_model) = {(*base.shape, model.cfg.d_model)}, "
                         f"got {tuple(swap.shape)}")
    if resid_pre is None:
        _, cache = model.run_with_cache(base, names=[("resid_pre", r_layer)])
        resid_pre = cache["resid_pre", r_layer]
    new = receiver_inputs(model, r_layer, resid_pre + swap)[via]
    index = r_head if via == "q" else r_head // (model.cfg.n_heads // model.cfg.n_kv_heads)
    return [((via, r_layer), replace_head(index, new[:, :, index]))]


def resample_order(n: int, seed: int = 0) -> Tensor:
    """A permutation of n prompts that moves every one of them (no prompt keeps its own
    activation under resample ablation)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    return perm.roll(1)[perm.argsort()]  # a single cycle through a random order


def ablation_values(z: Tensor, head: int, kind: str,
                    perm: Tensor | None = None) -> Tensor | float:
    """What each ablation puts in place of one head's z (batch, pos, n_heads, d_head): zeros,
    the mean over prompts at each position, or for prompt i the head's z on prompt perm[i]
    (default `resample_order`)."""
    if kind == "zero":
        return 0.0
    if kind == "mean":
        return z[:, :, head].mean(0)  # (pos, d_head): the mean over prompts, per position
    if kind == "resample":
        perm = resample_order(len(z)) if perm is None else perm
        return z[perm, :, head]
    raise ValueError(f"unknown ablation {kind!r}: use 'zero', 'mean' or 'resample'")


def project_out(directions: Tensor):
    """A function removing from vectors (..., d) their component in the span of `directions`
    (k, d), which need not be orthogonal: it orthonormalises them first."""
    basis = torch.linalg.qr(directions.T.float()).Q.to(directions.dtype)  # (d, k) orthonormal

    def remove(x: Tensor) -> Tensor:
        return x - (x @ basis) @ basis.T
    return remove


def at_positions(fn, positions: Tensor):
    """A hook applying `fn` to one position per row: positions (batch,)."""
    def hook(x: Tensor) -> Tensor:
        x = x.clone()
        rows = torch.arange(len(x), device=x.device)
        x[rows, positions] = fn(x[rows, positions])
        return x
    return hook
