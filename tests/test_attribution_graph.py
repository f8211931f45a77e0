"""Attribution graphs on the course model: the local replacement model is the model at the
prompt; every edge is what removing its source does to its target in the frozen model, measured
through the real model with hooks (a second route, not the same arithmetic); influence and
pruning on a graph worked by hand; and interventions that recompute everything downstream."""

import pytest
import torch

from mechinterp_course import attribution_graph as ag
from mechinterp_course import transcoders

TEXT = "The capital of Texas is"


@pytest.fixture(scope="module")
def shipped(course_model):
    return transcoders.load(course_model)


@pytest.fixture(scope="module")
def graph(course_model, shipped):
    return ag.attribute(course_model, shipped, TEXT, course_model.to_single_token(" Austin"))


def frozen_run(model, local, features, errors, embed):
    """The frozen model through the real model's modules and hooks: patterns and norm scales
    from the prompt's run, MLPs replaced by the given latents and errors. Returns the latents'
    pre-activations per layer and the logits."""
    n = model.cfg.n_layers
    inputs, pre, hooks = {}, {}, {}
    blocks = model.parts["blocks"]
    hooks[("resid_pre", 0)] = lambda x: embed.to(x.dtype)
    for layer in range(n):
        hooks[("resid_pre", layer)] = (
            (lambda x, layer=layer: inputs.__setitem__(("pre", layer), embed) or embed)
            if layer == 0 else (lambda x, layer=layer: inputs.__setitem__(("pre", layer), x)))
        hooks[("ln1", layer)] = lambda x, layer=layer: ag.frozen_norm(
            inputs["pre", layer], local.ln1_scale[layer], blocks[layer].ln_1)
        hooks[("pattern", layer)] = lambda x, layer=layer: local.patterns[layer]
        hooks[("resid_mid", layer)] = lambda x, layer=layer: inputs.__setitem__(("mid", layer), x)

        def ln2(x, layer=layer):
            out = ag.frozen_norm(inputs["mid", layer], local.ln2_scale[layer], blocks[layer].ln_2)
            pre[layer] = local.transcoders[layer].pre_acts(out)
            return out
        hooks[("ln2", layer)] = ln2
        tc = local.transcoders[layer]
        hooks[("mlp_out", layer)] = lambda x, layer=layer, tc=tc: \
            features[layer] @ tc.W_dec + tc.b_dec + errors[layer]
    hooks[("resid_post", n - 1)] = lambda x: inputs.__setitem__("post", x)
    hooks["ln_final"] = lambda x: ag.frozen_norm(inputs["post"], local.final_scale,
                                                 model.parts["ln_final"])
    with torch.no_grad(), model.hooks(hooks):
        logits = model(local.tokens)
    return [pre[layer] for layer in range(n)], logits


def test_the_local_replacement_is_the_model_at_the_prompt(course_model, shipped):
    local = ag.LocalReplacement(course_model, shipped, TEXT)
    with torch.no_grad():
        pre, logits = local.forward(local.embed, local.features, local.errors)
        torch.testing.assert_close(logits, course_model(local.tokens), atol=1e-4, rtol=1e-4)
        for layer, f in enumerate(local.features):  # the active latents are relu(pre) there
            torch.testing.assert_close(torch.relu(pre[layer]) * (f != 0), f, atol=1e-4, rtol=0)
        again, via_hooks = frozen_run(course_model, local, local.features, local.errors,
                                      local.embed)
    torch.testing.assert_close(via_hooks, logits, atol=1e-4, rtol=1e-4)


def removal_effects(model, local, graph, node, targets):
    """What removing `node` (its activation, error or embedding set to 0) changes in each target
    node's pre-activation (or the logit target), through the hooked real model."""
    features = [f.clone() for f in local.features]
    errors = [e.clone() for e in local.errors]
    embed = local.embed.clone()
    if node[0] == "feature":
        features[node[1]][0, node[2], node[3]] = 0
    elif node[0] == "error":
        errors[node[1]][0, node[2]] = 0
    else:
        embed[0, node[1]] = 0
    base_pre, base_logits = frozen_run(model, local, local.features, local.errors, local.embed)
    pre, logits = frozen_run(model, local, features, errors, embed)
    out = []
    for t in targets:
        if t[0] == "logit":
            out.append(float(ag.logit_target(logits, graph.answer)
                             - ag.logit_target(base_logits, graph.answer)))
        else:
            out.append(float(pre[t[1]][0, t[2], t[3]] - base_pre[t[1]][0, t[2], t[3]]))
    return out


def test_every_kind_of_edge_is_what_removing_its_source_does(course_model, shipped, graph):
    local = ag.LocalReplacement(course_model, shipped, TEXT)
    index = {node: i for i, node in enumerate(graph.nodes)}
    logit = graph.nodes[-1]
    later = [n for n in graph.nodes if n[0] == "feature" and n[1] == 3][:5] + [logit]
    sources = (graph.top(3, "feature") + [n for n in graph.nodes if n[0] == "feature"
                                          and n[1] == 0][:2]
               + graph.top(2, "error") + graph.top(2, "embed"))
    checked = 0
    for s in sources:
        effects = removal_effects(course_model, local, graph, s, later)
        for t, effect in zip(later, effects):
            edge = float(graph.adjacency[index[t], index[s]])
            if t[0] == "feature" and s[0] in ("feature", "error") and s[1] >= t[1]:
                assert edge == 0 and abs(effect) < 1e-4  # nothing runs backwards
                continue
            assert effect == pytest.approx(-edge, abs=2e-3, rel=2e-3), (s, t)
            checked += abs(edge) > 0.01
    assert checked >= 10


def test_an_edge_without_its_source_activation_would_be_caught(course_model, shipped, graph):
    """The comparison above can fail: the gradient alone (the edge per unit of activation) is
    not what removing the latent does."""
    local = ag.LocalReplacement(course_model, shipped, TEXT)
    index = {node: i for i, node in enumerate(graph.nodes)}
    s = graph.top(1, "feature")[0]
    a = float(graph.activations[index[s]])
    assert abs(a - 1) > 0.1
    effect = removal_effects(course_model, local, graph, s, [graph.nodes[-1]])[0]
    per_unit = float(graph.adjacency[-1, index[s]]) / a
    assert effect != pytest.approx(-per_unit, abs=2e-3, rel=2e-3)


def test_influence_sums_paths_on_a_graph_worked_by_hand():
    """Nodes 0 -> 1 -> 3 and 0 -> 3, 2 -> 3 (3 is the target): normalised, node 1 and node 2
    each send a quarter of 3's input, node 0 half directly, and all of 1's input comes from 0,
    so 0's influence is 1/2 + 1/4 = 3/4."""
    a = torch.zeros(4, 4)
    a[1, 0] = 2.0
    a[3, 0], a[3, 1], a[3, 2] = -2.0, 1.0, 1.0
    got = ag.influence(a, 3)
    torch.testing.assert_close(got, torch.tensor([0.75, 0.25, 0.25, 0.0]))


def test_the_graph_is_complete_and_prunes_to_a_readable_few(graph):
    assert graph.nodes[-1] == ("logit", graph.answer)
    assert graph.influence[-1] == 0 and (graph.influence >= 0).all()
    assert graph.n_features == (graph.activations > 0).sum()
    kept = ag.prune(graph, 0.8)
    assert len(graph.nodes) - 1 in kept and len(kept) < len(graph.nodes) / 2
    share = float(graph.influence[kept].sum() / graph.influence.sum())
    assert share >= 0.8
    assert len(ag.prune(graph, 1.0)) >= len(kept)
    with pytest.raises(ValueError, match="share"):
        ag.prune(graph, 0)


def test_intervene_with_no_edits_is_the_model_and_edits_move_it(course_model, shipped, graph):
    tokens = course_model.to_tokens(TEXT)
    with torch.no_grad():
        clean = course_model(tokens)
    torch.testing.assert_close(ag.intervene(course_model, shipped, tokens, []), clean,
                               atol=1e-4, rtol=1e-4)
    off = [(layer, pos, latent, 0.0) for _, layer, pos, latent in graph.top(30)]
    edited = ag.intervene(course_model, shipped, tokens, off)
    assert int(edited[0, -1].argmax()) != graph.answer  # the graph's top latents carry it


def test_bad_input_is_refused(course_model, shipped, llama_model):
    with pytest.raises(ValueError, match="one prompt at a time"):
        ag.LocalReplacement(course_model, shipped, [TEXT, TEXT])
    with pytest.raises(ValueError, match="one transcoder for every layer"):
        ag.LocalReplacement(course_model, {0: shipped[0]}, TEXT)
    with pytest.raises(NotImplementedError, match="GPT-2-style"):
        ag.LocalReplacement(llama_model, shipped, TEXT)
    other = ag.LocalReplacement(course_model, shipped, "The capital of Ohio is")
    with pytest.raises(ValueError, match="built for another prompt"):
        ag.attribute(course_model, shipped, TEXT, 0, local=other)
    with pytest.raises(ValueError, match="built for another prompt"):
        ag.attribute(course_model, dict(shipped), "The capital of Ohio is", 0, local=other)


def test_a_local_replacement_built_beforehand_gives_the_same_graph(course_model, shipped, graph):
    local = ag.LocalReplacement(course_model, shipped, TEXT)
    again = ag.attribute(course_model, shipped, TEXT, graph.answer, local=local)
    assert again.nodes == graph.nodes
    assert torch.equal(again.adjacency, graph.adjacency)


def test_subject_swaps_records_each_pair(course_model, shipped, monkeypatch):
    """On two pairs (the whole run, and its claim, are chapter 14's, under nbval and its null):
    one row per pair, the top token after the swap kept, moved exactly when it is Y's."""
    from mechinterp_course import interventions

    real = interventions.capital_pairs

    def two(model):
        p = real(model)[0]
        return [interventions.PatchingPairs(p.clean[:2], p.corrupt[:2], p.answer[:2],
                                            p.wrong[:2], p.subject[:2], p.prompts[:2])]
    monkeypatch.setattr(interventions, "capital_pairs", two)
    swaps = ag.subject_swaps(course_model, shipped, progress=False)
    assert len(swaps.prompts) == len(swaps.got) == len(swaps.moved) == 2
    assert swaps.moved.tolist() == [g == w for g, w in zip(swaps.got, swaps.wanted)]


def test_subject_labels_pay_for_picking_the_best_label(course_model, shipped, graph):
    rows = ag.subject_labels(course_model, shipped, graph, k=3, n_perm=99)
    assert [r["node"] for r in rows] == graph.top(3)
    for r in rows:
        assert 0 < r["p"] <= 1 and 0 <= r["auroc"] <= 1 and r["fires_on"] <= r["prompts"] == 120
        assert r["p"] >= 1 / 100  # 99 shuffles: no smaller p-value can be claimed
    silent = ("feature", 0, graph.nodes[0][2], 0)  # a latent made never to fire
    tcs = dict(shipped)
    quiet = transcoders.Transcoder(128, 512, 128, 16)
    quiet.load_state_dict(shipped[0].state_dict())
    with torch.no_grad():
        quiet.W_enc[:, 0] = 0
        quiet.b_enc[0] = -1e3
    tcs[0] = quiet
    fake = ag.Graph(graph.tokens, graph.answer, [silent, ("logit", graph.answer)],
                    torch.ones(1), torch.zeros(2, 2), torch.tensor([1.0, 0.0]))
    row = ag.subject_labels(course_model, tcs, fake, k=1, n_perm=99)[0]
    assert row["fires_on"] == 0 and row["auroc"] == 0.5 and row["p"] == 1.0
