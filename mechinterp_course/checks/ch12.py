"""Checks for chapter 12, function vectors. They run on the course model and a random Llama
(rotary, grouped-query attention), whose layers and heads differ in number, so that a flattened
index unravelled the wrong way shows."""

from __future__ import annotations

import torch

from .. import steering
from . import call, compare, passed
from .ch00 import _models  # the course model and a random Llama


def _summed(m, mean_z, heads, bias=False):
    out = steering.function_vector(m, mean_z, heads)
    return out + m.attention_weights(heads[0][0])["b_O"] if bias else out


def check_function_vector(fn, model):
    """Exercise 12.1: fn(model, mean_z, scores, k) -> (d_model,): the sum over the k heads with
    the highest scores (n_layers, n_heads) of what each writes when its z is mean_z[layer,
    head] (n_layers, n_heads, d_head). Random mean_z and scores, some strongly negative, on the
    course model and a random Llama, for k of 1 and 3."""
    ex = "Exercise 12.1"
    g = torch.Generator().manual_seed(0)
    for m in _models(model):
        n_layers, n_heads = m.cfg.n_layers, m.cfg.n_heads
        mean_z = torch.randn(n_layers, n_heads, m.cfg.d_head, generator=g).to(m.cfg.device)
        scores = torch.randn(n_layers, n_heads, generator=g).to(m.cfg.device)
        scores[0, 1] = 5.0  # the largest effect
        scores[-1, 0] = -3.0  # the next largest, but the wrong way: it lowers the answer
        for k in (1, 3):
            out = call(ex, fn, m, mean_z.clone(), scores.clone(), k)
            ranked = [divmod(int(i), n_heads) for i in scores.flatten().argsort(descending=True)]
            by_size = [divmod(int(i), n_heads)
                       for i in scores.abs().flatten().argsort(descending=True)]
            heads = ranked[:k]
            want = steering.function_vector(m, mean_z, heads)
            compare(ex, out, want, {
                "These are the heads with the lowest scores: take the k highest, the heads whose "
                "mean output raises the right answer most.": _summed(m, mean_z, ranked[-k:]),
                "You ranked the heads by the size of their score. A head with a large negative "
                "score lowers the right answer: rank by the score itself.":
                    _summed(m, mean_z, by_size[:k]),
                "This sums every head: keep only the k highest-scoring ones.":
                    _summed(m, mean_z, ranked),
                "This is the mean of the heads' outputs: the function vector is their sum.":
                    want / k,
                "You added the attention's output bias b_O. It belongs to the whole layer, not to "
                "any head: a head writes z @ W_O.": _summed(m, mean_z, heads, bias=True),
                "This is the sum of the heads' z passed through W_O of layer 0 for every head: "
                "use each head's own layer.": sum(
                    mean_z[layer, head] @ m.attention_weights(0)["W_O"][head]
                    for layer, head in heads),
            }, what=f"the function vector for k = {k}", atol=1e-4, rtol=1e-4)
    passed(ex, "the function vector matches on the course model and a random Llama, for one "
               "head and for three")


@torch.no_grad()
def check_last_z(fn, model):
    """Exercise 12.2: fn(model, tokens, last) -> (n, n_layers, n_heads, d_head): every head's z
    at each prompt's last position, on right-padded prompts of three lengths."""
    from . import ExerciseFailed

    ex = "Exercise 12.2"
    texts = ["Japan: Tokyo\nSpain:", "Peru:", "Kenya: Nairobi\nChile: Santiago\nIndia:"]
    for m in _models(model):
        tokens, last = steering.prompts(m, texts)
        out = call(ex, fn, m, tokens.clone(), last.clone())
        want = steering.last_z(m, tokens, last)
        shape = (len(texts), m.cfg.n_layers, m.cfg.n_heads, m.cfg.d_head)
        if torch.is_tensor(out) and out.shape == (m.cfg.n_layers, *shape[:1], *shape[2:]):
            raise ExerciseFailed(f"{ex}: your result is (n_layers, n, ...): stack the layers on "
                                 "axis 1, for (n, n_layers, n_heads, d_head).")
        names = [("z", layer) for layer in range(m.cfg.n_layers)]
        _, cache = m.run_with_cache(tokens, names=names)
        compare(ex, out, want, {
            "You read the last column, which is padding for every prompt but the longest: "
            "read each prompt's own last position, `last`.":
                torch.stack([cache[n][:, -1] for n in names], 1),
            "You read the first position: read each prompt's last, `last`.":
                torch.stack([cache[n][:, 0] for n in names], 1),
        }, what="the z at the last positions", atol=1e-5)
    passed(ex, "z at each prompt's own last position, on the course model and a random Llama")
