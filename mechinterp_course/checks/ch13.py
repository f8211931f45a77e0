"""Checks for chapter 13, the appendix on models larger than your machine. The trace a learner
stacks is built here from the course's own cache, so the check needs no nnsight."""

from __future__ import annotations

import torch

from .. import lens
from . import ExerciseFailed, call, compare, passed
from .ch00 import _models  # the course model and a random Llama


def check_residual_stack(fn, model):
    """Exercise 13.1: fn(trace, n_layers) -> (n_layers + 1, batch, pos, d_model): the residual
    stream before each block, then after the last, from a dict keyed ("resid_pre", layer) and
    ("resid_post", n_layers - 1). On the course model and a random Llama, whose layer counts
    differ."""
    ex = "Exercise 13.1"
    for m in _models(model):
        n = m.cfg.n_layers
        tokens = m.to_tokens(["The capital of Texas is", "When Mary and John went"])
        with torch.no_grad():
            _, cache = m.run_with_cache(tokens)
        trace = {("resid_pre", layer): cache["resid_pre", layer] for layer in range(n)}
        trace[("resid_post", n - 1)] = cache["resid_post", n - 1]
        want = lens.accumulated_resid(m, cache)
        before = [cache["resid_pre", layer] for layer in range(n)]
        out = call(ex, fn, dict(trace), n)
        compare(ex, out, want, {
            "The rows run backwards: the model makes resid_pre 0 first and the final "
            "resid_post last.": want.flip(0),
            "The last row repeats the last block's input: the last row is what leaves the "
            "last block, resid_post.": torch.stack(before + [before[-1]]),
            "The first row is the last block's output: put the stack in the order the model "
            "makes it, resid_pre 0 first.": torch.stack([want[-1]] + before),
        }, what=f"the residual stack on {m.cfg.model_name}", atol=1e-6, rtol=1e-6)
    passed(ex, "the stack matches lens.accumulated_resid on the course model and a random Llama")


def _one_pass(model, pairs, layers, source=0, block=2, every_position=False):
    """patch_positions_one_pass with a usual mistake: rows taken from another block (`source`
    1: the corrupted rows), copies offset by `block`, or every position of the layer at once."""
    from .. import interventions as iv

    n, n_pos = pairs.clean.shape
    cells = [(layer, pos) for layer in layers for pos in range(n_pos)]
    batch = torch.cat([pairs.clean, pairs.corrupt] + [pairs.corrupt] * len(cells))

    def put_back(layer):
        def hook(x):
            x = x.clone()
            for i, (at, pos) in enumerate(cells):
                if at == layer:
                    where = slice(None) if every_position else pos
                    x[(i + block) * n:(i + block + 1) * n, where] = \
                        x[source * n:(source + 1) * n, where]
            return x
        return hook

    with model.hooks({("resid_pre", layer): put_back(layer) for layer in set(layers)}):
        logits = model(batch)
    diff = iv.answer_logit_diff(logits, pairs.answer.repeat(len(cells) + 2),
                                pairs.wrong.repeat(len(cells) + 2)).view(len(cells) + 2, n)
    return iv.normalised(diff[2:], diff[0], diff[1]).view(len(layers), n_pos, n).cpu()


@torch.no_grad()
def check_grid_in_one_pass(fn, model):
    """Exercise 13.2: fn(model, pairs, layers) -> (len(layers), pos, n): chapter 07's grid for
    resid_pre as one batch, equal to one hooked pass per cell."""
    from .. import interventions
    from .ch07 import _pairs

    ex = "Exercise 13.2"
    for m in _models(model):
        pairs = _pairs(m)
        for layers in ([0, 1], [m.cfg.n_layers - 1]):
            out = call(ex, fn, m, pairs, list(layers))
            want = interventions.patch_positions(m, pairs)[layers]
            flat = (want.shape[0] * want.shape[1], want.shape[2])
            if torch.is_tensor(out) and out.shape == flat:
                raise ExerciseFailed(f"{ex}: reshape the cells into (len(layers), pos, n).")
            compare(ex, out, want, {
                "Your copies took the corrupted rows' residual, which changes nothing: put back "
                "the clean rows' (the first n rows of the batch).":
                    _one_pass(m, pairs, layers, source=1),
                "Each copy got the clean residual at every position of its layer: patch only "
                "the copy's own position.": _one_pass(m, pairs, layers, every_position=True),
                "Your copies are one block of n rows early: the first two blocks are the clean "
                "and corrupted baselines, so copy i is rows (i + 2) * n to (i + 3) * n.":
                    _one_pass(m, pairs, layers, block=1),
            }, what="the grid", atol=1e-4, rtol=1e-4)
    passed(ex, "one pass gives the grid of one hooked pass per cell, on the course model and a "
           "random Llama")


def check_forward_order(fn, model=None):
    """Exercise 13.3: fn(keys) -> the keys in the order a forward pass makes them: "embed"
    first, then block by block (in each, the order of remote.BLOCK_PATHS), "ln_final" last.
    Layers up to 11, so that sorting them as text shows."""
    from .. import remote

    ex = "Exercise 13.3"
    stages = list(remote.BLOCK_PATHS["gpt2"])
    cases = [
        [("mlp_out", 2), ("resid_pre", 2), "ln_final", ("attn_out", 0), "embed", ("z", 2)],
        [("resid_post", 10), ("resid_pre", 2), ("mlp_out", 11), ("ln1", 10), ("resid_pre", 1)],
        [("resid_post", 3), ("mlp_post", 3), ("ln2", 3), ("attn_out", 3), ("ln1", 3)],
    ]
    for keys in cases:
        out = call(ex, fn, list(keys))
        want = remote.forward_order(keys)
        if not isinstance(out, (list, tuple)) or sorted(map(str, out)) != sorted(map(str, keys)):
            raise ExerciseFailed(f"{ex}: return the same keys, reordered; got {out!r:.100}.")
        out = list(out)
        if out == want:
            continue
        def by(block_key):  # "embed", the blocks by block_key, "ln_final": never mixed types
            return sorted(keys, key=lambda k: (0, *block_key(("resid_pre", 0))) if k == "embed"
                          else (2, *block_key(("resid_pre", 0))) if isinstance(k, str)
                          else (1, *block_key(k)))
        mistakes = {
            "Your layers are sorted as text ('10' before '2'): sort them as numbers.":
                by(lambda k: (str(k[1]), stages.index(k[0]))),
            "Within a block, the names are sorted alphabetically: use the order the block "
            "computes them in (remote.BLOCK_PATHS).": by(lambda k: (k[1], k[0])),
            "The whole-model names are misplaced: 'embed' comes before every block, "
            "'ln_final' after them all.": [k for k in want if not isinstance(k, str)]
                + [k for k in keys if isinstance(k, str)],
        }
        for why, wrong in mistakes.items():
            if out == wrong:
                raise ExerciseFailed(f"{ex}: {why}")
        raise ExerciseFailed(f"{ex}: for {keys} your order differs from the forward pass's.")
    passed(ex, "keys in forward order, layers as numbers, each block in its own order")
