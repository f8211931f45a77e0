"""Checks for chapter 10, attribution and path patching. They run on the course model and a
random Llama (rotary, grouped-query attention): attribution on chapter 07's prompts that pair
two subjects, path patching on repeated sequences paired with each other."""

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


def _swap_cases(m):
    """(base, source, sender, through) cases: the direct path alone, through the sender's own
    MLP, and (on models deep enough) through every component of the next block."""
    from ..method_scores import repeated_distinct, resampled

    base = repeated_distinct(m, n=6, batch=3, seed=1)
    source = resampled(base)
    cases = [((0, 1), []), ((0, 1), [("mlp_out", 0)])]
    if m.cfg.n_layers > 2:
        cases += [((0, 2), [("mlp_out", 0), ("attn_out", 1), ("mlp_out", 1)]),
                  ((1, 3), [("mlp_out", 1)])]
    return base, source, cases


@torch.no_grad()
def _layer_swap(m, base, source, layer):
    """The mistake of swapping the whole layer's attention output, every head, not one head's."""
    _, a = m.run_with_cache(base, names=[("attn_out", layer)])
    _, b = m.run_with_cache(source, names=[("attn_out", layer)])
    return b["attn_out", layer] - a["attn_out", layer]


@torch.no_grad()
def _through_from_source(m, base, source, sender, through):
    """The mistake of taking each component's output from the source run outright, instead of
    the base run with only the sender patched."""
    direct = interventions.sender_swap(m, base, source, sender)
    if not through:
        return direct
    _, a = m.run_with_cache(base, names=through)
    _, b = m.run_with_cache(source, names=through)
    return direct + sum(b[t] - a[t] for t in map(tuple, through))


def check_sender_swap(fn, model):
    """Exercise 10.2: fn(model, base, source, sender, through) -> (n, pos, d_model): the change
    path patching makes to a later layer's residual stream."""
    ex = "Exercise 10.2"
    for m in _models(model):
        base, source, cases = _swap_cases(m)
        for sender, through in cases:
            with torch.no_grad():
                out = call(ex, fn, m, base, source, sender, list(through))
                want = interventions.sender_swap(m, base, source, sender, through)
                z_shape = (*base.shape, m.cfg.d_head)
                if torch.is_tensor(out) and tuple(out.shape) == z_shape:
                    raise ExerciseFailed(f"{ex}: your swap is (n, pos, d_head), the head's z. What "
                                         "the residual stream sees is z through the head's rows "
                                         "of W_O, (n, pos, d_model).")
                mistakes = {
                    "Your swap is zero everywhere: the direct path, the sender's own output on "
                    "source minus on base, is missing.": torch.zeros_like(want),
                    "The sign is flipped: the swap is the source run's output minus the base "
                    "run's, what patching puts in minus what was there.": -want,
                    "You swapped the whole layer's attention output, every head. Path patching "
                    "swaps one head's term: its z through its own rows of W_O.":
                        _layer_swap(m, base, source, sender[0])
                        + (want - interventions.sender_swap(m, base, source, sender)),
                }
                if through:
                    mistakes.update({
                        "You ignored `through`: this is the direct path alone. Add each "
                        "component's change when the sender is patched.":
                            interventions.sender_swap(m, base, source, sender),
                        "This is the paths through the components without the direct path. Add "
                        "the sender's own change as well.":
                            interventions.sender_swap(m, base, source, sender, through,
                                                      direct=False),
                        "You took each component's output from the source run outright. The "
                        "path through a component is its output on the base run with only the "
                        "sender's z patched, minus its output on the base run.":
                            _through_from_source(m, base, source, sender, through)})
                compare(ex, out, want, mistakes, what=f"the swap from L{sender[0]}H{sender[1]} "
                        f"through {through or 'nothing'}", atol=1e-4, rtol=1e-3)
    passed(ex, "the swap matches on the course model and a random Llama, along the direct path "
               "and through MLPs and attention")


def check_shuffle_within_heads(fn, model=None):
    """Exercise 10.3: fn(grid, generator) -> grid (layers, heads, n) with each head's prompts
    in an order of its own, drawn from the generator. Judged by properties, since any
    permutation will do: each head keeps its own values; the prompts move; heads get
    different orders; the same seed gives the same result; nothing else changes."""
    from . import expect_tensor

    ex = "Exercise 10.3"
    grid = torch.arange(3 * 4 * 30, dtype=torch.float32).reshape(3, 4, 30)  # every value unique
    out = call(ex, fn, grid.clone(), torch.Generator().manual_seed(0))
    expect_tensor(ex, out, grid, "the shuffled grid")
    if torch.equal(out, grid):
        raise ExerciseFailed(f"{ex}: the grid came back in its own order: nothing was shuffled.")
    if not torch.equal(out.sort(-1).values, grid):
        if torch.equal(out.flatten().sort().values, grid.flatten()):
            raise ExerciseFailed(f"{ex}: values moved from one head to another: shuffle each "
                                 "head's prompts among themselves (the last axis only), so "
                                 "every head keeps its own values.")
        raise ExerciseFailed(f"{ex}: the shuffled grid does not hold the same values as the "
                             "grid: permute, never draw or change values.")
    orders = (out - grid[..., :1]).reshape(-1, grid.shape[-1])  # each row's order, 0..n-1
    if all(torch.equal(orders[0], row) for row in orders[1:]):
        raise ExerciseFailed(f"{ex}: every head got the same order: draw one order per head, "
                             "so that no pattern across heads survives the shuffle.")
    again = call(ex, fn, grid.clone(), torch.Generator().manual_seed(0))
    other = call(ex, fn, grid.clone(), torch.Generator().manual_seed(1))
    if not (torch.is_tensor(again) and torch.equal(again, out)):
        raise ExerciseFailed(f"{ex}: the same seed gave another shuffle: draw from the "
                             "generator you are given (torch.randperm(n, generator=...)), so "
                             "the null is reproducible.")
    if torch.is_tensor(other) and torch.equal(other, out):
        raise ExerciseFailed(f"{ex}: another seed gave the same shuffle: the order must come "
                             "from the generator.")
    passed(ex, "each head's prompts in an order of its own, drawn from the generator")


def check_head_design(make_design, model):
    """Exercise 10.4 (open): make_design() -> claims.Design about one head, measured per prompt
    by attribution patching on capital patching pairs. Judged on prompts worded "The capital
    city of X is" with an untrained null."""
    from .ch07 import judge_capital_design

    return judge_capital_design("Exercise 10.4", make_design, model)
