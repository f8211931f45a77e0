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
        prefix = len(model.to_tokens("The capital of")[0])
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
def patch_positions(model, pairs: PatchingPairs, name: str = "resid_pre") -> Tensor:
    """(n_layers, pos, n): the normalised logit difference when activation `name` of one layer at
    one position is patched from the clean run into the corrupted one, per prompt."""
    cache, clean, corrupt = _baselines(model, pairs, [name])
    out = torch.zeros(model.cfg.n_layers, pairs.clean.shape[1], len(pairs))
    for layer in range(model.cfg.n_layers):
        for pos in range(pairs.clean.shape[1]):
            with model.hooks({(name, layer): patch_position(cache[name, layer], pos)}):
                patched = answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
            out[layer, pos] = normalised(patched, clean, corrupt).cpu()
    return out


@torch.no_grad()
def patch_span(model, pairs: PatchingPairs, name: str, layer: int,
               positions: list[int]) -> Tensor:
    """(n,): the normalised logit difference when activation `name` of one layer is patched at
    several positions at once (a whole multi-token subject, say), per prompt."""
    cache, clean, corrupt = _baselines(model, pairs, [(name, layer)])
    with model.hooks({(name, layer): patch_position(cache[name, layer], positions)}):
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
