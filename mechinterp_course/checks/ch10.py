"""Checks for chapter 10, attribution patching. They run on the course model and a random Llama
(rotary, grouped-query attention), on chapter 07's prompts that pair two subjects."""

from __future__ import annotations

import torch

from .. import interventions
from . import ExerciseFailed, call, compare, passed
from .ch00 import _models  # the course model and a random Llama
from .ch07 import _pairs  # five subjects, each paired with the next


def _at_clean(m, pairs, name):
    """The mistake of taking the gradient at the clean run instead of the corrupted one."""
    with torch.no_grad():
        _, cache = m.run_with_cache(pairs.corrupt, names=[name])
        corrupt = interventions.answer_logit_diff(m(pairs.corrupt), pairs.answer, pairs.wrong)
    clean, acts, grads = interventions.gradients_at(m, pairs.clean, pairs, [name])
    out = torch.stack([((acts[name, layer] - cache[name, layer]) * grads[name, layer]).sum(-1).T
                       for layer in range(m.cfg.n_layers)])
    return (out / (clean - corrupt)).cpu()


def check_attribution_positions(fn, model):
    """Exercise 10.1: fn(model, pairs, name) -> (n_layers, pos, n): attribution patching's
    estimate of patching activation `name` at each layer and position, per prompt."""
    ex = "Exercise 10.1"
    for m in _models(model):
        pairs = _pairs(m)
        with torch.no_grad():
            clean = interventions.answer_logit_diff(m(pairs.clean), pairs.answer, pairs.wrong)
            corrupt = interventions.answer_logit_diff(m(pairs.corrupt), pairs.answer, pairs.wrong)
        gap = (clean - corrupt).cpu()
        for name in ("resid_pre", "attn_out"):  # a second name: is the argument used?
            out = call(ex, fn, m, pairs, name)
            want = interventions.attribution_positions(m, pairs, name)
            if torch.is_tensor(out) and out.shape == want.shape[:2]:
                raise ExerciseFailed(f"{ex}: you averaged over the prompts; return one value per "
                                     "prompt, (n_layers, pos, n), as patch_positions does.")
            if torch.is_tensor(out) and out.shape == (want.shape[1], want.shape[0], want.shape[2]) \
                    and out.shape != want.shape:
                raise ExerciseFailed(f"{ex}: your result is (pos, n_layers, n); return (n_layers, "
                                     "pos, n), one row per layer.")
            compare(ex, out, want, {
                "Your values are the true ones divided by the number of prompts: the gradient of "
                "the mean over prompts is each prompt's own gradient over n. Backpropagate the "
                "sum of the logit differences.": want / len(pairs),
                "The sign is flipped: the change a patch makes is clean minus corrupted "
                "activation, not corrupted minus clean.": -want,
                "You took the gradient at the clean run. Attribution patching estimates a patch "
                "into the corrupted run, so the gradient is taken there.":
                    _at_clean(m, pairs, name),
                "Your numbers are in nats: divide each prompt's estimate by its own clean minus "
                "corrupted logit difference, as patch_positions does.": want * gap,
                "You divided by the mean clean minus corrupted difference over the prompts; "
                "divide each prompt by its own.": want * gap / gap.mean(),
                f"These are the values for resid_pre, not for {name!r}: use the `name` argument.":
                    interventions.attribution_positions(m, pairs, "resid_pre"),
            }, what=f"the estimate for {name!r}", atol=1e-4, rtol=1e-3)
    passed(ex, "attribution patching matches on the course model and a random Llama, for "
               "resid_pre and attn_out")
