"""Checks for chapter 11, steering. They run on the course model and a random Llama (rotary,
grouped-query attention), on prompts of different lengths, so that a batch is padded and each
prompt's last position is its own."""

from __future__ import annotations

import torch

from .. import steering
from . import ExerciseFailed, call, compare, passed
from .ch00 import _models  # the course model and a random Llama

POSITIVE = ["Japan is a country in", "South Korea is a country in", "India is in"]
NEGATIVE = ["France is a country in", "United Kingdom is a country in", "Italy is in",
            "The capital of Spain is"]


def _layers(m):
    return [0, m.cfg.n_layers - 1]  # two layers, so that an ignored `layer` shows


@torch.no_grad()
def _means(m, layer, of):
    """Each set's mean over its prompts of `of(cache, tokens, last)`, (n, d_model) from a cache
    of resid_pre and resid_post at `layer`."""
    out = []
    for texts in (POSITIVE, NEGATIVE):
        tokens, last = steering.prompts(m, texts)
        _, cache = m.run_with_cache(tokens, names=[("resid_pre", layer), ("resid_post", layer)])
        out.append(of(cache, tokens, last).mean(0))
    return out


def _vector(m, layer, of):
    positive, negative = _means(m, layer, of)
    return positive - negative


def check_steering_vector(fn, model):
    """Exercise 11.1: fn(model, positive, negative, layer) -> (d_model,): the mean of resid_pre
    at `layer` at each prompt's last position over `positive` minus over `negative`."""
    ex = "Exercise 11.1"
    for m in _models(model):
        for layer in _layers(m):
            out = call(ex, fn, m, list(POSITIVE), list(NEGATIVE), layer)
            want = steering.mean_difference(m, POSITIVE, NEGATIVE, layer)
            rows = lambda last: torch.arange(len(last), device=last.device)  # noqa: E731
            at_last = lambda c, t, last: c["resid_pre", layer][rows(last), last]  # noqa: E731
            other = _layers(m)[0] if layer != _layers(m)[0] else _layers(m)[1]
            positive, negative = _means(m, layer, at_last)
            compare(ex, out, want, {
                "It points the wrong way: the steering vector is the mean over the positive "
                "prompts minus the mean over the negative ones.": -want,
                "You read the last column of the padded batch. Prompts of different lengths are "
                "padded on the right, so for all but the longest the last column is padding: "
                "read each prompt at its own last position (steering.prompts gives them).":
                    _vector(m, layer, lambda c, t, last: c["resid_pre", layer][:, -1]),
                "You averaged over every position of each prompt. The answer is read at the last "
                "position, and that is where the vector is taken.":
                    _vector(m, layer, lambda c, t, last: torch.stack([
                        c["resid_pre", layer][i, : j + 1].mean(0) for i, j in enumerate(last)])),
                "You averaged over every position of the padded batch, padding included; take "
                "each prompt's last position.":
                    _vector(m, layer, lambda c, t, last: c["resid_pre", layer].mean(1)),
                "This is resid_post at `layer`, the stream after the block: take resid_pre, the "
                "stream entering it.":
                    _vector(m, layer, lambda c, t, last: c["resid_post", layer][rows(last), last]),
                "The vector has norm 1. Steering adds the difference of the means itself, with "
                "its size: do not normalise it.": want / want.norm(),
                "This is the positive prompts' mean alone; subtract the negative prompts' mean.":
                    positive,
                f"These are the values at layer {other}, not at `layer`: use the argument.":
                    steering.mean_difference(m, POSITIVE, NEGATIVE, other),
            }, what=f"the vector at layer {layer}", atol=1e-4, rtol=1e-4)
    passed(ex, "the steering vector matches on the course model and a random Llama, at two "
               "layers, on prompts of different lengths")


@torch.no_grad()
def _steer(m, tokens, last, vector, layer, strength, where="last", name="resid_pre",
           read="last"):
    """The mistakes: added at every position or at the padded last column, at another
    activation, or the logits read at the padded last column."""
    rows = torch.arange(len(tokens), device=tokens.device)

    def add(x):
        x = x.clone()
        if where == "all":
            x = x + strength * vector
        elif where == "column":
            x[:, -1] = x[:, -1] + strength * vector
        else:
            x[rows, last] = x[rows, last] + strength * vector
        return x

    with m.hooks({(name, layer): add}):
        logits = m(tokens)
    return logits[:, -1] if read == "column" else logits[rows, last]


def check_steered_logits(fn, model):
    """Exercise 11.2: fn(model, tokens, last, vector, layer, strength) -> (n, d_vocab): logits at
    each prompt's last position with strength * vector added to resid_pre at `layer` there."""
    ex = "Exercise 11.2"
    for m in _models(model):
        tokens, last = steering.prompts(m, POSITIVE + NEGATIVE)
        for layer, strength in zip(_layers(m), (0.5, -2.0)):
            vector = steering.mean_difference(m, POSITIVE, NEGATIVE, layer)
            out = call(ex, fn, m, tokens.clone(), last.clone(), vector.clone(), layer, strength)
            want = steering.steered_logits(m, tokens, last, vector, layer, strength)
            if torch.is_tensor(out) and out.dim() == 3:
                raise ExerciseFailed(f"{ex}: your logits are (n, pos, d_vocab); return each "
                                     "prompt's logits at its own last position, (n, d_vocab).")
            compare(ex, out, want, {
                "You added the vector at every position. Steering here is meant at the last "
                "position only, where the answer is read: add it at `last`.":
                    _steer(m, tokens, last, vector, layer, strength, where="all"),
                "You added the vector at the last column of the padded batch, which is padding "
                "for all but the longest prompts: add it at each prompt's `last` position.":
                    _steer(m, tokens, last, vector, layer, strength, where="column"),
                "You read the logits at the last column of the padded batch: read each "
                "prompt's logits at its own `last` position.":
                    _steer(m, tokens, last, vector, layer, strength, read="column"),
                "These are the logits without steering: the hook did not change the "
                "activation (return the changed copy from the hook).":
                    steering.steered_logits(m, tokens, last, vector, layer, 0.0),
                "You ignored `strength`: add strength * vector.":
                    steering.steered_logits(m, tokens, last, vector, layer, 1.0),
                "You subtracted the vector: add strength * vector; a negative strength "
                "subtracts it.": steering.steered_logits(m, tokens, last, vector, layer,
                                                         -strength),
                "You steered resid_post at `layer`, after the block: steer resid_pre, the "
                "stream entering it.":
                    _steer(m, tokens, last, vector, layer, strength, name="resid_post"),
                "These are log-probabilities: return the logits, before any softmax.":
                    want.log_softmax(-1),
            }, what=f"the steered logits at layer {layer}, strength {strength}", atol=1e-3,
                rtol=1e-4)
    passed(ex, "the steered logits match on the course model and a random Llama, at two layers "
               "and strengths, on prompts of different lengths")


def check_remove_direction(fn, model):
    """Exercise 11.3: fn(x, direction) -> x (..., d) with its component along `direction` (d,),
    of any norm, removed: on (n, 16), and on (batch, pos, d_model) of the model's size."""
    ex = "Exercise 11.3"
    g = torch.Generator().manual_seed(0)
    for shape in [(5, 16), (2, 3, model.cfg.d_model)]:
        x = torch.randn(shape, generator=g)
        direction = torch.randn(shape[-1], generator=g) * 7  # far from norm 1
        out = call(ex, fn, x.clone(), direction.clone())
        unit = direction / direction.norm()
        along = (x @ unit)[..., None] * unit
        compare(ex, out, x - along, {
            "The direction was not normalised: x - (x . d) d removes |d|^2 times the component "
            "along d. Divide the direction by its norm first.":
                x - (x @ direction)[..., None] * direction,
            "This is the component along the direction, the part to remove: return x minus it.":
                along,
            "You added the component instead of subtracting it.": x + along,
            "You divided by the norm once, not twice: (x . d) d / |d| is still |d| times too "
            "long. Use the unit vector d / |d| on both sides.":
                x - (x @ direction)[..., None] * unit,
        }, what=f"the result for x of shape {shape}", atol=1e-4, rtol=1e-4)
    passed(ex, "the direction is removed for directions of any norm, on (n, d) and (b, pos, d)")


def check_random_directions(fn, model=None):
    """Exercise 11.4: fn(n, like, generator) -> (n, d): random directions, each of like's norm.
    Judged by properties (any random draw will do): shape, dtype and device of `like`, every
    norm equal to like's, directions spread out (not the vector's, not one repeated), drawn
    from the generator."""
    from . import expect_tensor

    ex = "Exercise 11.4"
    g = torch.Generator().manual_seed(7)  # not the learner's seeds: their first draw is not like
    like = torch.randn(256, generator=g) * 3.0
    out = call(ex, fn, 200, like.clone(), torch.Generator().manual_seed(0))
    expect_tensor(ex, out, torch.zeros(200, 256), "the directions")
    norms = out.norm(dim=-1)
    if not torch.allclose(norms, like.norm().expand(200), rtol=1e-4):
        raise ExerciseFailed(
            f"{ex}: the norms run from {float(norms.min()):.3g} to {float(norms.max()):.3g}; each "
            f"should be like's, {float(like.norm()):.3g}: divide each random vector by its own "
            "norm, then multiply by like's. A control of another size tests the size, not the "
            "direction.")
    unit = out / norms[:, None]
    toward = unit @ (like / like.norm())
    if toward.abs().mean() > 0.3:
        raise ExerciseFailed(f"{ex}: your directions lean toward the vector itself (mean |cos| "
                             f"{float(toward.abs().mean()):.2f}): random means unrelated to it.")
    if (unit @ unit.T).fill_diagonal_(0).abs().max() > 0.99:
        raise ExerciseFailed(f"{ex}: some of your directions repeat: draw each one afresh.")
    again = call(ex, fn, 200, like.clone(), torch.Generator().manual_seed(0))
    other = call(ex, fn, 200, like.clone(), torch.Generator().manual_seed(1))
    if not (torch.is_tensor(again) and torch.equal(again, out)) or (
            torch.is_tensor(other) and torch.equal(other, out)):
        raise ExerciseFailed(f"{ex}: draw from the generator you are given "
                             "(torch.randn(n, d, generator=...)): the same seed must give the "
                             "same directions, another seed others.")
    passed(ex, "random directions of the vector's norm, spread out, drawn from the generator")
