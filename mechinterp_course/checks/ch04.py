"""Checks for chapter 04, induction heads and circuits."""

from __future__ import annotations

import torch

from .. import circuits, evaluate
from . import ExerciseFailed, call, compare, expect_tensor, passed, run_with_edit
from .ch00 import second_model


@torch.no_grad()
def check_induction_score(fn, model):
    """Exercise 4.1: fn(pattern, seq_len) -> (heads,) induction scores."""
    ex = "Exercise 4.1"
    for seq_len, batch, layer in ((20, 1, 2), (50, 4, 2), (30, 2, 1)):
        tokens = evaluate.repeated_tokens(model, seq_len, batch, seed=seq_len)
        _, cache = model.run_with_cache(tokens, names=[("pattern", layer)])
        pattern = cache["pattern", layer]  # (batch, heads, q, k)
        out = call(ex, fn, pattern.clone(), seq_len)
        want = circuits.induction_score(pattern, seq_len)

        def stripe(offset, last=True):
            d = pattern.diagonal(offset=offset, dim1=-2, dim2=-1)
            return (d[..., -seq_len:] if last else d).mean(dim=(0, -1))
        if torch.is_tensor(out) and out.shape == (batch, pattern.shape[1]):
            raise ExerciseFailed(f"{ex}: you returned one score per sequence; average over the "
                                 "batch too, for one score per head.")
        compare(ex, out, want, {
            "That is the duplicate-token score: it measures attention to the earlier copy of "
            "the same token. An induction head attends to the token *after* it (one position "
            "further right).": stripe(-seq_len),
            "Off by one: that is the token two after the earlier occurrence.": stripe(2 - seq_len),
            "Your stripe includes queries from the first copy (which have nothing to look "
            "back to): keep only the last seq_len entries of the diagonal.":
                stripe(1 - seq_len, last=False),
        }, what="the result")
    passed(ex, "induction scores match on sequences of 20, 30 and 50 tokens, batch 1, 2 and 4")


def _pairs(out):
    try:
        return sorted((int(a), int(b)) for a, b in out)
    except (TypeError, ValueError):
        return None


@torch.no_grad()
def check_find_heads(fn, model):
    """Exercise 4.2: fn(scores, threshold) -> [(layer, head), ...] above the threshold."""
    ex = "Exercise 4.2"
    g = torch.Generator().manual_seed(0)
    cases = [(torch.rand(3, 5, generator=g), 0.7), (torch.rand(4, 2, generator=g), 0.5),
             (torch.zeros(2, 3), 0.5), (circuits.head_scores(model)["induction"], 0.5)]
    for scores, threshold in cases:
        out = call(ex, fn, scores.clone(), threshold)
        want = circuits.find_heads(scores, threshold)
        got = _pairs(out)
        if got is None:
            raise ExerciseFailed(f"{ex}: return a list of (layer, head) pairs, e.g. [(2, 0)]; "
                                 f"got {out!r:.80}.")
        if got == sorted(want):
            continue
        if got == sorted((h, layer) for layer, h in want):
            raise ExerciseFailed(f"{ex}: your pairs are (head, layer); scores are indexed "
                                 "[layer, head], so return (layer, head).")
        if got == sorted(circuits.find_heads(-scores, -threshold)):
            raise ExerciseFailed(f"{ex}: you found the heads *below* the threshold.")
        raise ExerciseFailed(f"{ex}: for scores of shape {tuple(scores.shape)} and threshold "
                             f"{threshold} expected {sorted(want)}, got {got}.")
    passed(ex, "finds every head above the threshold, as (layer, head) pairs")


@torch.no_grad()
def check_zero_head(fn, model):
    """Exercise 4.3: fn(head) -> a hook on z that zero-ablates that head."""
    ex = "Exercise 4.3"
    for m in (model, second_model().to(model.cfg.device)):
        tokens = m.to_tokens(["When Mary and John went to the store, John gave a drink to",
                              "The capital of Texas is"])
        clean = m(tokens)
        for layer, head in ((0, 1), (m.cfg.n_layers - 1, m.cfg.n_heads - 1)):
            hook = call(ex, fn, head)
            if not callable(hook):
                raise ExerciseFailed(f"{ex}: return a function (the hook), not "
                                     f"{type(hook).__name__}.")
            with m.hooks({("z", layer): hook}):
                out = call(ex, m, tokens)
            want = m.run_with_hooks(tokens, circuits.ablate_heads([(layer, head)]))
            if torch.allclose(out, clean):
                raise ExerciseFailed(f"{ex}: the ablated model gives the same logits as the "
                                     "clean one: return the edited z (or edit it in place).")

            def wrong(edit):
                return run_with_edit(m, tokens, ("z", layer), edit)
            compare(ex, out, want, {
                "You zeroed a position, not a head: z is (batch, pos, n_heads, d_head), so the "
                "head is the third index, z[:, :, head].":
                    wrong(lambda z: z[:, head].zero_()),
                "You zeroed every head from `head` on: index one head, z[:, :, head].":
                    wrong(lambda z: z[:, :, head:].zero_()),
                "You zeroed one dimension of every head: the head is z's third index, not its "
                "last.": wrong(lambda z: z[..., head].zero_()),
            }, what="the logits with the head ablated", atol=1e-4, rtol=1e-4)
    passed(ex, "zeroing a head's z changes the logits exactly as removing the head does (GPT-2 "
           "and Llama)")


@torch.no_grad()
def check_composition_score(fn, model):
    """Exercise 4.4: fn(first, second) -> ||first @ second||_F / (||first||_F ||second||_F)."""
    ex = "Exercise 4.4"
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g)),
             (torch.randn(16, 4, generator=g) @ torch.randn(4, 16, generator=g),
              torch.randn(16, 16, generator=g)),
             (circuits.ov_circuit(model, 1, 2), circuits.qk_circuit(model, 2, 0).T)]
    for a, b in pairs:
        out = call(ex, fn, a.clone(), b.clone())
        if isinstance(out, float):
            out = torch.tensor(out)
        want = circuits.composition_score(a, b)
        expect_tensor(ex, out, want, "the score")
        fro = lambda x: x.norm()  # noqa: E731
        spec = lambda x: torch.linalg.matrix_norm(x, ord=2)  # noqa: E731
        compare(ex, out, want, {
            "Not normalised: divide ||first @ second|| by ||first|| * ||second||, so that the "
            "score does not grow with the weights' size.": fro(a @ b),
            "You used spectral norms (largest singular value); the score uses Frobenius norms, "
            "torch.linalg.norm(x) or x.norm().": spec(a @ b) / (spec(a) * spec(b)),
            "The product is in the wrong order: the earlier head writes, so it comes first, "
            "first @ second.": fro(b @ a) / (fro(a) * fro(b)),
            "Squared norms: use the norms themselves.": fro(a @ b) ** 2 / (fro(a) ** 2
                                                                           * fro(b) ** 2),
        }, what="the composition score", atol=1e-5, rtol=1e-4)
    passed(ex, "composition scores match on random and real circuits")


def _sweep(model, tokens, seq_len, layers, columns=None, cumulative=False):
    """circuits.ablation_sweep, or a usual mistake: other loss columns, or ablations that pile up
    instead of each head alone."""
    layers = list(layers)
    columns = columns or slice(seq_len + 1, None)
    out = torch.zeros(len(layers), model.cfg.n_heads)
    hooks: dict = {}
    for i, layer in enumerate(layers):
        removed = []
        for head in range(model.cfg.n_heads):
            removed = removed + [head] if cumulative else [head]
            hooks = {**(hooks if cumulative else {}), ("z", layer): circuits.zero_head(removed)}
            out[i, head] = circuits.per_token_loss(model, tokens, hooks)[:, columns].mean()
    return out


@torch.no_grad()
def check_ablation_sweep(fn, model):
    """Exercise 4.5: fn(model, tokens, seq_len, layers) -> (len(layers), n_heads): the mean loss
    on the second copy (after its first token) with each head zero-ablated alone."""
    ex = "Exercise 4.5"
    for seq_len, batch, layers in ((12, 2, (0, 1)), (9, 3, (2,))):
        tokens = evaluate.repeated_tokens(model, seq_len, batch, seed=seq_len)
        out = call(ex, fn, model, tokens.clone(), seq_len, layers)
        want = circuits.ablation_sweep(model, tokens, seq_len, layers)
        if torch.is_tensor(out) and out.shape == want.T.shape and out.shape != want.shape:
            raise ExerciseFailed(f"{ex}: your result is (n_heads, layers); return "
                                 "(len(layers), n_heads), one row per layer.")
        compare(ex, out, want, {
            "Your ablations pile up: each head must be removed alone, from the unablated "
            "model (new hooks for every head).": _sweep(model, tokens, seq_len, layers,
                                                        cumulative=True),
            "Your mean includes the copy's first token, which nothing predicts: start one "
            "column later.": _sweep(model, tokens, seq_len, layers, slice(seq_len, None)),
            "Your mean covers the whole sequence: measure only the second copy.":
                _sweep(model, tokens, seq_len, layers, slice(None)),
            "Your rows are for layers 0, 1, ... rather than for the layers you were given: "
            "ablate layer `layers[i]` in row i.": _sweep(model, tokens, seq_len,
                                                         range(len(layers))),
        }, what="the sweep", atol=1e-4, rtol=1e-4)
    passed(ex, "the sweep matches over blocks 0 and 1 and over block 2 alone, on two batches")


def check_design(make_design, model):
    """Exercise 4.6 (open): make_design() -> claims.Design about which heads in-context copying
    needs, measured per sequence on (tokens, seq_len). Refused without a matched control, if
    it passes on an untrained model, or if changed after its verdict; judged on repeated
    sequences of another length and seed than the chapter's."""
    from .design import judge_against_untrained

    data = (evaluate.repeated_tokens(model, seq_len=30, batch=40, seed=101), 30)
    return judge_against_untrained("Exercise 4.6", make_design, model, data, len(data[0]),
                                   "40 held-out sequences (30 random tokens, repeated; a seed "
                                   "the chapter never used)", "sequences")
