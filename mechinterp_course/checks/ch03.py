"""Checks for chapter 03, the residual stream. Each runs on the course model (LayerNorm, learned
positions) and a random Llama (RMSNorm, rotary), at batch 1 and 2."""

from __future__ import annotations

import torch

from .. import evaluate, lens
from . import ExerciseFailed, call, compare, expect_tensor, passed
from .ch00 import second_model

PROMPTS = ["The capital of Texas is", "When Mary and John went to the store, John gave a drink to"]


def _cases(model):
    for m in (model, second_model().to(model.cfg.device)):
        for prompts in (PROMPTS[:1], PROMPTS):
            with torch.no_grad():
                logits, cache = m.run_with_cache(m.to_tokens(prompts))
            yield m, logits, cache


@torch.no_grad()
def check_residual_components(fn, model):
    """Exercise 3.1: fn(model, cache) -> (n_components, batch, pos, d_model) in the order of
    lens.component_labels(model), summing to the final residual."""
    ex = "Exercise 3.1"
    for m, _, cache in _cases(model):
        labels = lens.component_labels(m)
        want = lens.residual_components(m, cache)
        out = call(ex, fn, m, cache)
        if isinstance(out, (list, tuple)) and out and all(torch.is_tensor(t) for t in out):
            raise ExerciseFailed(f"{ex}: return one tensor: torch.stack your list of components.")
        if torch.is_tensor(out) and out.ndim == 4 and out.shape[0] != len(labels):
            raise ExerciseFailed(
                f"{ex}: you returned {out.shape[0]} components; {m.cfg.model_name} has "
                f"{len(labels)}: {', '.join(labels[:3])}, ... {labels[-1]} (one per head, plus "
                "each layer's b_O and MLP, plus the embeddings).")
        expect_tensor(ex, out, want, "the components")
        final = cache["resid_post", m.cfg.n_layers - 1]
        for i, label in enumerate(labels):
            if torch.allclose(out[i], want[i], atol=1e-4):
                continue
            if label.endswith("b_O"):
                hint = ("a layer's attention output has a bias b_O on top of its heads' sum; "
                        "include it (model.attention_weights(layer)['b_O']), broadcast to "
                        "(batch, pos, d_model)")
            elif label.endswith("MLP"):
                hint = "an MLP's contribution is the cached mlp_out of its layer"
            elif label == "pos_embed":
                hint = "the learned position embedding is cache['pos_embed']"
            elif label == "embed":
                hint = "the token embedding is cache['embed']"
            else:
                hint = ("a head's contribution is its z (batch, pos, d_head) times its slice "
                        "W_O[head] (d_head, d_model); attn_out is the sum over heads, not a share")
            swapped = [j for j in range(len(labels)) if torch.allclose(out[i], want[j], atol=1e-4)]
            if swapped:
                hint = (f"it equals the reference '{labels[swapped[0]]}': keep the order of "
                        "lens.component_labels(model)")
            raise ExerciseFailed(f"{ex}: component {i} ('{label}') is wrong on "
                                 f"{m.cfg.model_name}: {hint}.")
        if not torch.allclose(out.sum(0), final, atol=1e-3):  # pragma: no cover (implied above)
            raise ExerciseFailed(f"{ex}: the components do not sum to the final residual.")
    passed(ex, "the components match and sum to the final residual (GPT-2 and Llama, batch 1 "
           "and 2)")


def _unembed_variants(m, resid):
    """What the usual mistakes compute."""
    weight, bias, eps = lens.final_norm_parts(m)
    b = bias if bias is not None else torch.zeros_like(weight)
    out = lambda x: x @ m.W_U + m.b_U  # noqa: E731
    centred = resid - resid.mean(-1, keepdim=True)
    x = centred if m.cfg.normalization_type == "LN" else resid
    other = resid if m.cfg.normalization_type == "LN" else centred
    ms = x.pow(2).mean(-1, keepdim=True)
    n = resid.shape[-1]
    v = {
        "It matches resid @ W_U with no final norm at all: an intermediate residual has its own "
        "size, so normalise it as the model normalises its last one.": out(resid),
        "Epsilon sits outside the square root: the norm divides by sqrt(mean square + eps), "
        "not sqrt(mean square) + eps.": out(x / (ms.sqrt() + eps) * weight + b),
        "The norm's learned weight (and bias, for LayerNorm) is missing: after dividing by the "
        "scale, multiply by ln_final.weight (and add ln_final.bias).": out(x / (ms + eps).sqrt()),
        "You used the unbiased (n - 1) variance, torch.var/std's default: normalisation layers "
        "use the biased one (unbiased=False, or mean of squares).":
            out(x / (x.pow(2).sum(-1, keepdim=True) / (n - 1) + eps).sqrt() * weight + b),
    }
    if m.cfg.normalization_type == "LN":
        v["No centring: LayerNorm subtracts the mean over d_model before scaling (RMSNorm does "
          "not; check model.cfg.normalization_type)."] = out(
            other / (other.pow(2).mean(-1, keepdim=True) + eps).sqrt() * weight + b)
    else:
        v["You centred an RMSNorm model: RMSNorm divides by the root mean square without "
          "subtracting the mean (check model.cfg.normalization_type)."] = out(
            other / (other.pow(2).mean(-1, keepdim=True) + eps).sqrt() * weight + b)
    return v


@torch.no_grad()
def check_unembed(fn, model):
    """Exercise 3.2: fn(model, resid) -> logits, each residual normalised by its own scale."""
    ex = "Exercise 3.2"
    for m, logits, cache in _cases(model):
        final = cache["resid_post", m.cfg.n_layers - 1]
        out = call(ex, fn, m, final.clone())
        compare(ex, out, logits, _unembed_variants(m, final), what="the logits of the final "
                "residual", atol=1e-3, rtol=1e-3)
        middle = cache["resid_pre", 1]
        out = call(ex, fn, m, middle.clone())
        want = lens.unembed(m, middle)
        compare(ex, out, want, _unembed_variants(m, middle),
                what="the logits of an intermediate residual", atol=1e-3, rtol=1e-3)
        tiny = final * 1e-3  # a residual so small that epsilon matters
        compare(ex, call(ex, fn, m, tiny.clone()), lens.unembed(m, tiny),
                _unembed_variants(m, tiny), what="the logits of a residual of tiny norm",
                atol=1e-3, rtol=1e-3)
        several = cache["resid_pre", 0][:, :3]  # a (batch, 3, d_model) slice: any leading shape
        compare(ex, call(ex, fn, m, several.clone()), lens.unembed(m, several), {},
                what="the logits of a slice of positions", atol=1e-3, rtol=1e-3)
    passed(ex, "final residuals give the model's logits and intermediate ones are normalised by "
           "their own scale (LayerNorm and RMSNorm)")


@torch.no_grad()
def check_attribute(fn, model):
    """Exercise 3.3: fn(model, components, final_resid, direction) -> (n, ...) contributions,
    summing (with lens.norm_bias_term) to the final logit difference."""
    ex = "Exercise 3.3"
    for m, logits, cache in _cases(model):
        comps = lens.residual_components(m, cache)[:, :, -1]  # last position: (n, batch, d)
        final = cache["resid_post", m.cfg.n_layers - 1][:, -1]
        answer, other = m.to_single_token(" Austin"), m.to_single_token(" Boston")
        direction = lens.logit_direction(m, answer, other)
        out = call(ex, fn, m, comps.clone(), final.clone(), direction.clone())
        want = lens.attribute(m, comps, final, direction)
        weight, bias, eps = lens.final_norm_parts(m)
        centred = comps - comps.mean(-1, keepdim=True) if m.cfg.normalization_type == "LN" \
            else comps
        scale = lens.norm_scale(m, final)
        mistakes = {
            "Each component was normalised by its own scale: attribution must divide every term "
            "by the final residual's scale, frozen, so the terms add up.":
                (centred / (centred.pow(2).mean(-1, keepdim=True) + eps).sqrt()) @ (weight
                                                                                     * direction),
            "It matches components @ direction: divide by the final residual's norm scale and "
            "multiply by the norm's weight first.": comps @ direction,
            "The norm's weight is missing: multiply by ln_final.weight (elementwise) before "
            "the dot product.": (centred / scale) @ direction,
        }
        if bias is not None:
            mistakes["The norm's bias was added to every component: it belongs to none of them "
                     "(lens.norm_bias_term counts it once)."] = want + bias @ direction
            mistakes["No centring: LayerNorm subtracts each vector's mean over d_model, and "
                     "since that is linear, each component can be centred on its own."] = (
                comps / scale) @ (weight * direction)
        compare(ex, out, want, mistakes, what="the contributions", atol=1e-3, rtol=1e-3)
        total = out.sum(0) + lens.norm_bias_term(m, direction)
        diff = lens.logit_difference(logits[:, -1], answer, other)
        assert torch.allclose(total, diff, atol=1e-3), (total, diff)
    passed(ex, "contributions sum exactly to the final logit difference (LayerNorm and RMSNorm, "
           "batch 1 and 2)")


def _accuracy(m, tokens, answers, read, pos=-1, mean=True, read_only=False):
    """The lens accuracy with a usual mistake: `read` maps the stacked residual to logits."""
    names = [("resid_pre", i) for i in range(m.cfg.n_layers)]
    _, cache = m.run_with_cache(tokens, names=[*names, ("resid_post", m.cfg.n_layers - 1)])
    if read_only:
        return read(lens.accumulated_resid(m, cache)[:, :, pos])
    hits = (read(lens.accumulated_resid(m, cache)[:, :, pos]).argmax(-1) == answers).float()
    return hits.mean(-1).cpu() if mean else hits.cpu()


@torch.no_grad()
def check_lens_accuracy(fn, model):
    """Exercise 3.4: fn(model, tokens, answers) -> (n_layers + 1,): per lens row, the share of
    prompts whose top guess at the last position is the answer."""
    from .ch07 import _pairs

    ex = "Exercise 3.4"
    for m in (model, second_model().to(model.cfg.device)):
        pairs = _pairs(m)
        cases = [(pairs.clean, pairs.answer), (pairs.corrupt, pairs.wrong)]
        if m is model:  # answers that the normalised lens gets right after block 0 and raw not
            tokens = evaluate.repeated_tokens(m, 6, 40, seed=1)
            normed = _accuracy(m, tokens, None, lambda r: lens.unembed(m, r).argmax(-1)[1],
                               read_only=True)
            cases.append((tokens, normed))
        for tokens, answers in cases:
            out = call(ex, fn, m, tokens.clone(), answers.clone())
            want = lens.lens_accuracy(m, tokens, answers)
            unembed = lambda r: lens.unembed(m, r)  # noqa: E731
            if torch.is_tensor(out) and out.shape == (want.shape[0], len(answers)):
                raise ExerciseFailed(f"{ex}: you returned one row per prompt; return the share "
                                     "of prompts, the mean over them, for each lens row.")
            compare(ex, out, want, {
                "You read the raw residual (resid @ W_U): normalise it first, as the model's "
                "final norm would (lens.unembed).": _accuracy(m, tokens, answers,
                                                              lambda r: r @ m.W_U),
                "You read the first position: the model's guess for the answer is at the last.":
                    _accuracy(m, tokens, answers, unembed, pos=0),
            }, what="the accuracy per lens row", atol=1e-6)
    passed(ex, "the lens accuracy matches on the course model and a random Llama")


def check_lens_design(make_design, model):
    """Exercise 3.5 (open): make_design() -> claims.Design about where in the stack the capital
    becomes readable, measured per prompt through the logit lens on capital patching pairs.
    Judged on prompts worded "The capital city of X is" with an untrained null."""
    from .ch07 import judge_capital_design

    return judge_capital_design("Exercise 3.5", make_design, model)
