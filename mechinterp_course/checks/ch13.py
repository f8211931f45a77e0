"""Checks for chapter 13, the appendix on models larger than your machine. The trace a learner
stacks is built here from the course's own cache, so the check needs no nnsight."""

from __future__ import annotations

import torch

from .. import lens
from . import call, compare, passed
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
