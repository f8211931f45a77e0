"""Checks for chapter 14, circuit tracing: a transcoder's forward pass, and one edge of an
attribution graph against removing its source in the frozen model."""

from __future__ import annotations

import torch

from .. import attribution_graph as ag
from .. import transcoders
from . import ExerciseFailed, call, compare, expect_number, passed


def _case(batch=5, d_in=8, d_tc=20, d_out=6, seed=0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d_in, generator=g)
    W_enc = torch.randn(d_in, d_tc, generator=g) * 0.5
    b_enc = torch.randn(d_tc, generator=g) * 0.1 + shift
    b_in = torch.randn(d_in, generator=g) * 0.5
    W_dec = torch.randn(d_tc, d_out, generator=g)
    b_dec = torch.randn(d_out, generator=g) * 0.3
    return x, W_enc, b_enc, b_in, W_dec, b_dec


@torch.no_grad()
def check_transcode(fn, model=None):
    """Exercise 14.1: fn(x, W_enc, b_enc, b_in, W_dec, b_dec, k) -> y_hat (..., d_out)."""
    ex = "Exercise 14.1"
    for batch, k, shift in ((5, 3, 0.0), (1, 1, 0.0), (4, 6, -2.0), (3, 20, 0.0)):
        x, W_enc, b_enc, b_in, W_dec, b_dec = _case(batch, seed=batch + k, shift=shift)
        tc = transcoders.Transcoder(x.shape[1], W_enc.shape[1], W_dec.shape[1], k)
        for p, v in zip((tc.W_enc, tc.b_enc, tc.b_in, tc.W_dec, tc.b_dec),
                        (W_enc, b_enc, b_in, W_dec, b_dec)):
            p.copy_(v)
        want = tc(x)[0]
        pre = (x - b_in) @ W_enc + b_enc
        top = pre.topk(k, dim=-1)

        def kept(values, indices=top.indices):
            return torch.zeros_like(pre).scatter(-1, indices, values)
        f = kept(torch.relu(top.values))
        uncentred = (x @ W_enc + b_enc).topk(k, dim=-1)
        by_size = pre.abs().topk(k, dim=-1).indices
        mistakes = {
            "You did not subtract b_in from x: the encoder reads x - b_in, the input centred.":
                kept(torch.relu(uncentred.values), uncentred.indices) @ W_dec + b_dec,
            "The decoder adds b_dec: y_hat = f @ W_dec + b_dec.": f @ W_dec,
            "The kept values need a ReLU too (a top pre-activation can be negative).":
                kept(top.values) @ W_dec + b_dec,
            "TopK keeps only the k largest pre-activations; you kept every positive one.":
                torch.relu(pre) @ W_dec + b_dec,
            "You picked the k largest by absolute value: pick the k largest pre-activations.":
                kept(torch.relu(pre.gather(-1, by_size)), by_size) @ W_dec + b_dec,
        }
        if k == W_enc.shape[1]:  # every latent kept: only the ReLU and the biases can be wrong
            mistakes.pop("TopK keeps only the k largest pre-activations; you kept every "
                         "positive one.")
            mistakes.pop("You picked the k largest by absolute value: pick the k largest "
                         "pre-activations.")
        out = call(ex, fn, x.clone(), W_enc.clone(), b_enc.clone(), b_in.clone(),
                   W_dec.clone(), b_dec.clone(), k)
        compare(ex, out, want, mistakes, what="y_hat")
    passed(ex, "the transcoder's output matches, for k from 1 to every latent")


def _value(local, node, features):
    pre, logits = local.forward(local.embed, features, local.errors)
    if node[0] == "logit":
        return ag.logit_target(logits, node[1])
    _, layer, pos, latent = node
    return pre[layer][0, pos, latent]


@torch.no_grad()
def _removal(local, source, target):
    """What removing the source latent (its activation set to 0) takes from the target, in the
    frozen model: the edge, exactly, since the frozen model is linear in the latents."""
    features = [f.clone() for f in local.features]
    base = _value(local, target, features)
    features[source[1]][0, source[2], source[3]] = 0
    return float(base - _value(local, target, features))


def check_edge(fn, model):
    """Exercise 14.2: fn(local, source, target) -> the direct effect of source on target, a
    float. source: ("feature", layer, pos, latent); target: the same, or ("logit", token)."""
    ex = "Exercise 14.2"
    shipped = transcoders.load(model)
    answer = model.to_single_token(" Austin")
    local = ag.LocalReplacement(model, shipped, "The capital of Texas is")
    graph = ag.attribute(model, shipped, "The capital of Texas is", answer)
    features = [n for n in graph.nodes if n[0] == "feature"]
    early = graph.top(2)
    late = [n for n in features if n[1] == model.cfg.n_layers - 1][:1]
    source0 = next(n for n in graph.top(40) if n[1] == 0)
    cases = [(early[0], ("logit", answer)), (source0, late[0]), (early[1], ("logit", answer))]
    for source, target in cases:
        want = _removal(local, source, target)
        out = expect_number(ex, call(ex, fn, local, source, target),
                            what=f"the edge {source} -> {target}")
        a = float(local.features[source[1]][0, source[2], source[3]])
        mistakes = {
            "You have the effect per unit of the source's activation: multiply the gradient by "
            "the source's activation, a_s * d(target)/d(a_s).": want / a,
            "The sign is flipped: the edge is what the source adds to the target, (with it) - "
            "(without it).": -want,
        }
        if abs(out - want) > 1e-3 * max(1.0, abs(want)):
            for why, wrong in mistakes.items():
                if abs(out - wrong) <= 1e-3 * max(1.0, abs(wrong)) and abs(want) > 1e-3:
                    raise ExerciseFailed(f"{ex}: for the edge {source} -> {target}: {why}")
            raise ExerciseFailed(
                f"{ex}: for the edge {source} -> {target} your value matches none of the usual "
                f"mistakes. Is everything but the source held at its value (the frozen model, "
                f"`local.forward`), and is the target a pre-activation (or for ('logit', t), "
                f"ag.logit_target)?")
    passed(ex, "three edges match removing their source in the frozen model")


def _small_transcoder(seed=0):
    tc = transcoders.Transcoder(12, 40, 10, k=4, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in tc.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return tc.eval().requires_grad_(False)


def check_shuffled_copy(fn, model=None):
    """Exercise 14.3: fn(tc, generator) -> a copy of the transcoder whose latents read as
    before and write another latent's direction. Judged by properties (any permutation will
    do), on a small random transcoder: the original untouched, the reads and biases kept, the
    writes a permutation of the rows, the function changed, the shuffle drawn from the
    generator."""
    ex = "Exercise 14.3"
    tc = _small_transcoder()
    before = {k: v.clone() for k, v in tc.state_dict().items()}
    out = call(ex, fn, tc, torch.Generator().manual_seed(0))
    if any(not torch.equal(v, tc.state_dict()[k]) for k, v in before.items()):
        raise ExerciseFailed(f"{ex}: the transcoder you were given changed: make a copy and "
                             "shuffle the copy (the real one is still needed).")
    if not isinstance(out, transcoders.Transcoder):
        raise ExerciseFailed(f"{ex}: return a transcoders.Transcoder, not "
                             f"{type(out).__name__}.")
    if out is tc:
        raise ExerciseFailed(f"{ex}: you returned the transcoder itself: return a copy.")
    got = {k: v.detach() for k, v in out.state_dict().items()}
    x = torch.randn(64, 12, generator=torch.Generator().manual_seed(2))
    if torch.allclose(out(x)[0], tc(x)[0], atol=1e-5):
        raise ExerciseFailed(f"{ex}: the copy computes exactly what the transcoder does: if you "
                             "moved each latent's read together with its write, nothing changed. "
                             "Keep the reads (W_enc, b_enc) and shuffle only the writes (W_dec's "
                             "rows).")
    for name in ("W_enc", "b_enc", "b_in", "b_dec"):
        if not torch.equal(got[name], before[name]):
            raise ExerciseFailed(f"{ex}: {name} changed: each latent must read as before; "
                                 "shuffle only W_dec's rows.")
    rows = lambda w: sorted(map(tuple, w.tolist()))  # noqa: E731
    if rows(got["W_dec"]) != rows(before["W_dec"]):
        if torch.equal(got["W_dec"].sort(0).values, before["W_dec"].sort(0).values) or \
                torch.equal(got["W_dec"].sort(1).values, before["W_dec"].sort(1).values):
            raise ExerciseFailed(f"{ex}: you shuffled W_dec's columns (the output dimensions) "
                                 "or each column on its own: shuffle whole rows, one row a "
                                 "latent, so each latent writes another latent's direction.")
        raise ExerciseFailed(f"{ex}: W_dec's rows are not the original rows in another order.")
    again = call(ex, fn, tc, torch.Generator().manual_seed(0))
    other = call(ex, fn, tc, torch.Generator().manual_seed(1))
    if not torch.equal(again.W_dec, out.W_dec) or torch.equal(other.W_dec, out.W_dec):
        raise ExerciseFailed(f"{ex}: the shuffle must come from the generator you are given "
                             "(torch.randperm(d_tc, generator=...)): the same seed, the same "
                             "copy; another seed, another.")
    passed(ex, "reads kept, writes shuffled among the latents, the original untouched, drawn "
           "from the generator")


@torch.no_grad()
def check_replacement_hooks(fn, model):
    """Exercise 14.4: fn(transcoders) -> hooks that replace each layer's mlp_out by its
    transcoder's output on that layer's ln2. Run on the course model with the shipped
    transcoders (all layers, and one), compared by the logits they give."""
    ex = "Exercise 14.4"
    shipped = transcoders.load(model)
    tokens = model.to_tokens(["The capital of Texas is", "The capital of Japan is"])
    for chosen in (shipped, {1: shipped[1]}):
        hooks = call(ex, fn, dict(chosen))
        if not isinstance(hooks, (dict, list)):
            raise ExerciseFailed(f"{ex}: return the hooks as a dict {{name: function}}, not "
                                 f"{type(hooks).__name__}.")
        try:
            with model.hooks(hooks):
                out = model(tokens)
        except Exception as e:  # noqa: BLE001  (the learner's hooks, run by the model)
            raise ExerciseFailed(f"{ex}: running the model with your hooks raised "
                                 f"{type(e).__name__}: {e}") from None
        with model.hooks(transcoders.replacement_hooks(chosen)):
            want = model(tokens)

        def variant(read_name, add=False):
            seen, hs = {}, {}
            for layer, tc in chosen.items():
                hs[(read_name, layer)] = lambda x, layer=layer: seen.__setitem__(layer, x)
                hs[("mlp_out", layer)] = (lambda x, layer=layer, tc=tc:
                                          x + tc(seen.pop(layer))[0] if add
                                          else tc(seen.pop(layer))[0])
            with model.hooks(hs):
                return model(tokens)
        with model.hooks({("mlp_out", layer): lambda x, tc=tc: tc(x)[0]
                          for layer, tc in chosen.items()}):
            from_output = model(tokens)
        compare(ex, out, want, {
            "Your transcoders read the MLP's output: they read what the MLP reads, ln2 (a hook "
            "on ('ln2', layer) can keep it for the mlp_out hook).": from_output,
            "Your transcoders read the residual stream before the norm (resid_mid): they were "
            "trained on the MLP's input, ln2.": variant("resid_mid"),
            "You added the transcoder's output to the MLP's: the replacement model puts it in "
            "the MLP's place.": variant("ln2", add=True),
        }, what="the replacement model's logits", atol=1e-4, rtol=1e-4)
    passed(ex, "the replacement model's logits match, with every layer replaced and with one")
