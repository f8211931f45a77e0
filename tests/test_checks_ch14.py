"""Chapter 14's checks pass the solutions and other correct answers, fail the stubs, and name
the mistake in wrong answers without showing the reference."""

import torch

from mechinterp_course import attribution_graph as ag
from mechinterp_course.checks import ch14
from notebooks import exercise_functions, fails_with

NB = "14_circuit_tracing.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def _transcode(centre=True, relu=True, bias=True, topk="largest"):
    def fn(x, W_enc, b_enc, b_in, W_dec, b_dec, k):
        pre = ((x - b_in) if centre else x) @ W_enc + b_enc
        if topk == "all":
            f = torch.relu(pre)
        else:
            key = pre.abs() if topk == "abs" else pre
            idx = key.topk(k, dim=-1).indices
            vals = pre.gather(-1, idx)
            f = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals) if relu else vals)
        return f @ W_dec + (b_dec if bias else 0)
    return fn


def test_transcode():
    check = ch14.check_transcode
    check(SOLUTION["transcode"])
    check(_transcode())

    def via_mask(x, W_enc, b_enc, b_in, W_dec, b_dec, k):  # a rewrite: a mask, not a scatter
        pre = (x - b_in) @ W_enc + b_enc
        cut = pre.topk(k, dim=-1).values[..., -1:]
        return torch.where(pre >= cut, torch.relu(pre), 0) @ W_dec + b_dec
    check(via_mask)
    fails_with(check, STUB["transcode"], None, "not done yet")
    fails_with(check, _transcode(centre=False), None, "b_in")
    fails_with(check, _transcode(relu=False), None, "ReLU")
    fails_with(check, _transcode(bias=False), None, "b_dec")
    fails_with(check, _transcode(topk="all"), None, "every positive one")
    fails_with(check, _transcode(topk="abs"), None, "absolute value")
    fails_with(check, lambda *args: None, None, "Tensor")
    fails_with(check, lambda *args: _transcode()(*args) * torch.nan, None, "NaN")
    fails_with(check, lambda *args: _transcode()(*args).double(), None, "dtype")
    fails_with(check, lambda x, *args: x, None, "shape")  # the input back, not the output
    # k ignored: always 3 latents
    fails_with(check, lambda *args: _transcode()(*args[:-1], 3), None, "matches none")


def _edge(scale=1.0, per_unit=False, unfrozen=False):
    def fn(local, source, target):
        _, layer, pos, latent = source
        a = float(local.features[layer][0, pos, latent])
        if unfrozen:  # what removing the source does in the real model, nothing frozen
            base = ag.intervene(local.model, local.transcoders, local.tokens, [])
            gone = ag.intervene(local.model, local.transcoders, local.tokens,
                                [(layer, pos, latent, 0.0)])
            if target[0] == "logit":
                return float(ag.logit_target(base, target[1]) - ag.logit_target(gone, target[1]))
            return 0.123  # reading a later latent's pre-activation here is beside the point
        with torch.enable_grad():
            feats = [f.detach().clone().requires_grad_(True) for f in local.features]
            pre, logits = local.forward(local.embed, feats, local.errors)
            value = (ag.logit_target(logits, target[1]) if target[0] == "logit"
                     else pre[target[1]][0, target[2], target[3]])
            grad = float(torch.autograd.grad(value, feats[layer])[0][0, pos, latent])
        return scale * (grad if per_unit else grad * a)
    return fn


def _by_removal(local, source, target):  # a rewrite: the frozen model is linear
    feats = [f.clone() for f in local.features]
    pre, logits = local.forward(local.embed, feats, local.errors)
    before = (ag.logit_target(logits, target[1]) if target[0] == "logit"
              else pre[target[1]][0, target[2], target[3]])
    feats[source[1]][0, source[2], source[3]] = 0
    pre, logits = local.forward(local.embed, feats, local.errors)
    after = (ag.logit_target(logits, target[1]) if target[0] == "logit"
             else pre[target[1]][0, target[2], target[3]])
    return before - after  # a one-element tensor is accepted


def test_edge(course_model):
    check = ch14.check_edge
    check(SOLUTION["edge"], course_model)
    check(_edge(), course_model)
    check(_by_removal, course_model)
    fails_with(check, STUB["edge"], course_model, "not done yet")
    fails_with(check, _edge(per_unit=True), course_model, "per unit")
    fails_with(check, _edge(scale=-1), course_model, "sign is flipped")
    fails_with(check, _edge(unfrozen=True), course_model, "frozen model")
    fails_with(check, _edge(scale=2), course_model, "matches none")
    fails_with(check, lambda local, s, t: None, course_model, "returned None")
    fails_with(check, lambda local, s, t: float("nan"), course_model, "nan")
    fails_with(check, lambda local, s, t: torch.zeros(3), course_model, "one number")
    fails_with(check, lambda local, s, t: local.features[9], course_model, "raised IndexError")


def test_shuffled_copy():
    import torch

    from mechinterp_course import transcoders
    from mechinterp_course.checks import ch14
    check = ch14.check_shuffled_copy
    check(SOLUTION["shuffled_copy"], None)
    check(transcoders.shuffled_copy, None)
    fails_with(check, STUB["shuffled_copy"], None, "not done yet")

    def copy_of(tc):
        return transcoders.shuffled_copy(tc, torch.Generator().manual_seed(0))

    def read_and_write(tc, g):  # the latents renumbered: the same function
        c, order = copy_of(tc), torch.randperm(len(tc.W_dec), generator=g)
        c.W_dec.data, c.W_enc.data = tc.W_dec.data[order].clone(), tc.W_enc.data[:, order].clone()
        c.b_enc.data = tc.b_enc.data[order].clone()
        return c

    def in_place(tc, g):
        tc.W_dec.data = tc.W_dec.data[torch.randperm(len(tc.W_dec), generator=g)]
        return tc

    def columns(tc, g):
        c = copy_of(tc)
        c.W_dec.data = tc.W_dec.data[:, torch.randperm(tc.W_dec.shape[1], generator=g)].clone()
        return c

    def reads(tc, g):
        c = transcoders.shuffled_copy(tc, g)
        c.W_enc.data = tc.W_enc.data[:, torch.randperm(tc.W_enc.shape[1], generator=g)].clone()
        return c

    fails_with(check, read_and_write, None, "exactly what the transcoder does")
    fails_with(check, in_place, None, "you were given changed")
    fails_with(check, columns, None, "columns")
    fails_with(check, reads, None, "W_enc changed")
    fails_with(check, lambda tc, g: copy_of(tc), None, "from the generator")
    fails_with(check, lambda tc, g: tc, None, "itself")
    fails_with(check, lambda tc, g: tc.state_dict(), None, "Transcoder")


def test_replacement_hooks(course_model):
    from mechinterp_course import transcoders
    from mechinterp_course.checks import ch14
    check = ch14.check_replacement_hooks
    check(SOLUTION["replacement_hooks"], course_model)
    check(transcoders.replacement_hooks, course_model)
    fails_with(check, STUB["replacement_hooks"], course_model, "not done yet")

    def reading(name, add=False):
        def fn(tcs):
            seen, hooks = {}, {}
            for layer, tc in tcs.items():
                hooks[(name, layer)] = lambda x, layer=layer: seen.__setitem__(layer, x)
                hooks[("mlp_out", layer)] = (lambda x, layer=layer, tc=tc: x + tc(seen.pop(
                    layer))[0] if add else tc(seen.pop(layer))[0])
            return hooks
        return fn

    check(reading("ln2"), course_model)
    fails_with(check, reading("resid_mid"), course_model, "before the norm")
    fails_with(check, reading("ln2", add=True), course_model, "in the MLP's place")
    fails_with(check, lambda tcs: {("mlp_out", layer): lambda x, tc=tc: tc(x)[0]
                                   for layer, tc in tcs.items()}, course_model, "MLP's output")
    fails_with(check, lambda tcs: None, course_model, "as a dict")
    fails_with(check, lambda tcs: {("mlp_out", 9): lambda x: x}, course_model, "raised")
