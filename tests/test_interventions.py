"""Patching, ablations and probes do what they claim, on the course model and on constructed
data where the right answer is known."""

import pytest
import torch

from mechinterp_course import interventions, probes, world


@pytest.fixture(scope="module")
def few_pairs(course_model):
    prompts = [p for p in world.capital_prompts()
               if p.attrs["subject"] in ("Texas", "Ohio", "France", "Peru")]
    (pairs,) = interventions.capital_pairs(course_model, prompts)
    return pairs


def test_pairs_differ_only_at_the_subject(course_model):
    groups = interventions.capital_pairs(course_model)
    assert sum(len(g) for g in groups) == len(world.capital_prompts())
    for g in groups:
        differ = (g.clean != g.corrupt).any(0).nonzero().flatten().tolist()
        assert set(differ) <= set(g.subject[0]) and differ
        assert (g.answer != g.wrong).all()
        assert course_model.to_string(g.clean[0, g.subject[0]]).strip() == \
            g.prompts[0].attrs["subject"]


def test_patching_the_whole_input_restores_everything(course_model, few_pairs):
    """Patching resid_pre 0 at the subject replaces the subject token: full recovery, exactly;
    positions before it are identical in both prompts: no effect, exactly."""
    grid = interventions.patch_positions(course_model, few_pairs, "resid_pre")
    subject = few_pairs.subject[0][0]
    assert torch.allclose(grid[0, subject], torch.ones(len(few_pairs)), atol=1e-4)
    assert grid[:, :subject].abs().max() < 1e-5
    span = interventions.patch_span(course_model, few_pairs, "resid_pre", 0,
                                    list(range(few_pairs.clean.shape[1])))
    assert torch.allclose(span, torch.ones(len(few_pairs)), atol=1e-4)


def test_patching_all_heads_of_a_layer_equals_patching_its_attention_output(course_model,
                                                                             few_pairs):
    """Heads sum (with one shared bias) to the attention output, so patching every head's z in a
    layer is patching attn_out at every position; and patching the embeddings patches the whole
    difference between the prompts."""
    _, cache = course_model.run_with_cache(few_pairs.clean, names=[("z", 2), ("attn_out", 2),
                                                                   "embed"])
    by_heads = course_model.run_with_hooks(few_pairs.corrupt, {("z", 2): lambda z: cache["z", 2]})
    by_output = course_model.run_with_hooks(few_pairs.corrupt,
                                            {("attn_out", 2): lambda x: cache["attn_out", 2]})
    assert torch.allclose(by_heads, by_output, atol=1e-4)
    embedded = course_model.run_with_hooks(few_pairs.corrupt, {"embed": lambda x: cache["embed"]})
    assert torch.allclose(embedded, course_model(few_pairs.clean), atol=1e-4)
    heads = interventions.patch_heads(course_model, few_pairs)
    assert heads.shape == (course_model.cfg.n_layers, course_model.cfg.n_heads, len(few_pairs))
    mean = heads.mean(-1)
    assert heads[1].abs().max() < 0.1  # block 1's heads move nothing of the subject...
    top = sorted(divmod(int(i), course_model.cfg.n_heads) for i in mean.flatten().topk(2).indices)
    assert top == [(0, 2), (2, 0)]     # ...L0H2 and L2H0 move it (chapter 07)
    assert mean[0, 2] > 0.2 and mean[2, 0] > 0.2 and heads[3].mean(-1).abs().max() < 0.1


def test_normalised_is_zero_at_corrupt_and_one_at_clean():
    clean, corrupt = torch.tensor([3.0, 5.0]), torch.tensor([-1.0, 1.0])
    assert torch.equal(interventions.normalised(corrupt, clean, corrupt), torch.zeros(2))
    assert torch.equal(interventions.normalised(clean, clean, corrupt), torch.ones(2))


def test_resample_order_moves_every_prompt():
    for n in (2, 3, 10, 107):
        perm = interventions.resample_order(n, seed=n)
        assert sorted(perm.tolist()) == list(range(n))
        assert (perm != torch.arange(n)).all()


def test_ablation_values(course_model, few_pairs):
    _, cache = course_model.run_with_cache(few_pairs.clean, names=[("z", 2)])
    z = cache["z", 2]
    assert torch.equal(interventions.replace_head(1, z[:, :, 1])(z), z)  # putting back: no-op
    mean = interventions.replace_head(1, interventions.ablation_values(z, 1, "mean"))(z)
    assert torch.allclose(mean[:, :, 1], z[:, :, 1].mean(0).expand_as(z[:, :, 1]))
    assert torch.equal(mean[:, :, 0], z[:, :, 0])
    perm = interventions.resample_order(len(z))
    resampled = interventions.replace_head(1, interventions.ablation_values(z, 1, "resample",
                                                                            perm))(z)
    assert torch.equal(resampled[:, :, 1], z[perm, :, 1])
    with pytest.raises(ValueError, match="unknown ablation"):
        interventions.ablation_values(z, 1, "random")


def test_project_out_removes_the_span_and_only_it():
    g = torch.Generator().manual_seed(0)
    directions = torch.randn(3, 10, generator=g) + 2
    remove = interventions.project_out(directions)
    x = torch.randn(7, 10, generator=g)
    out = remove(x)
    assert (out @ directions.T).abs().max() < 1e-4
    assert torch.allclose(remove(out), out, atol=1e-5)  # idempotent
    orthogonal = out - 0  # a vector already orthogonal to the span is left alone
    assert torch.allclose(remove(orthogonal), orthogonal, atol=1e-5)


def test_at_positions_edits_one_position_per_row():
    x = torch.zeros(3, 5, 2)
    out = interventions.at_positions(lambda v: v + 1, torch.tensor([0, 4, 2]))(x)
    assert out.sum() == 6 and out[1, 4].tolist() == [1.0, 1.0] and x.sum() == 0


def test_probes_leak_when_groups_are_split():
    """Labels that depend only on the group, and vectors that identify the group but carry no
    shared class direction: a random split memorises groups (high accuracy), a grouped split
    cannot (chance)."""
    g = torch.Generator().manual_seed(0)
    n_groups, per_group, d = 60, 8, 40
    centres = torch.randn(n_groups, d, generator=g) * 3
    labels_of = torch.randint(0, 3, (n_groups,), generator=g)
    groups = torch.arange(n_groups).repeat_interleave(per_group)
    x = centres[groups] + 0.1 * torch.randn(len(groups), d, generator=g)
    y = labels_of[groups]
    leaky = probes.cross_val_accuracy(x, y, probes.random_folds(len(y)), 3)
    honest = probes.cross_val_accuracy(x, y, probes.grouped_folds(groups), 3)
    assert leaky > 0.95 and honest < 0.6


def test_grouped_folds_keep_groups_together():
    groups = torch.tensor([5, 5, 2, 9, 9, 9, 2, 1, 0, 0])
    folds = probes.grouped_folds(groups, k=3)
    for grp in groups.unique():
        assert len(folds[groups == grp].unique()) == 1
    assert set(folds.tolist()) == {0, 1, 2}


def test_probe_reads_a_planted_direction():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (200,), generator=g)
    direction = torch.randn(16, generator=g)
    x = torch.randn(200, 16, generator=g) + 3 * (2 * y[:, None] - 1) * direction
    probe = probes.fit_probe(x, y, 2)
    assert probe.accuracy(x, y) == 1.0
    w = probe.W[:, 1] - probe.W[:, 0]
    assert torch.nn.functional.cosine_similarity(w, direction, dim=0) > 0.5


def test_country_activations_shapes(course_model):
    data = probes.country_activations(course_model, templates=["{} is", "People in {} speak"])
    n = 2 * len(world.COUNTRIES)
    assert data.acts.shape == (course_model.cfg.n_layers + 1, n, course_model.cfg.d_model)
    assert data.labels.shape == data.groups.shape == (n,)
    texas_like = data.subjects.index("France")
    assert data.classes[int(data.labels[texas_like])] == "Europe"
    # site 0 is the embedding of the country's last token (plus its position)
    _, cache = course_model.run_with_cache("France is")
    assert torch.allclose(data.acts[0, texas_like], cache["resid_pre", 0][0, 1], atol=1e-5)


def test_a_probe_does_not_rest_on_rounding_noise():
    """A feature that varies only at the scale of float rounding, but with the label, must not
    carry the probe: its weight on the raw feature stays small, and the probe reads the label
    from the feature that carries it at a visible scale."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=g)
    visible = y.float() + 0.3 * torch.randn(200, generator=g)  # the label, with noise
    rounding = 1.0 + 1e-6 * y.float()  # the label, exactly, in the seventh decimal
    x = torch.stack([visible, rounding, torch.randn(200, generator=g)], 1)
    probe = probes.fit_probe(x, y, 2)
    assert probe.accuracy(x, y) > 0.85
    weight = (probe.W[:, 1] - probe.W[:, 0]).abs()
    assert weight[1] * 1e-6 < 0.01 * weight[0] * visible.std()  # rounding moves no logit


def _double(hf, tokenizer):
    from mechinterp_course.hooked import HookedModel
    return HookedModel(hf.double(), tokenizer, "float64")


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_attribution_is_the_derivative_along_the_patch(family, tokenizer):
    """Brute force: attribution patching of a cell is the derivative of the logit difference as
    that cell moves from its corrupted to its clean value, here by a central finite difference
    on a float64 random model (its attention softmax runs in float32, hence the step of 1e-3),
    for every layer and position and for every head."""
    from conftest import random_gpt2, random_llama

    model = _double((random_gpt2 if family == "gpt2" else random_llama)(len(tokenizer)), tokenizer)
    prompts = [p for p in world.capital_prompts()
               if p.attrs["subject"] in ("Texas", "Ohio", "France", "Peru")]
    (pairs,) = interventions.capital_pairs(model, prompts)
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(pairs.clean, names=["resid_pre", "z"])
        _, corrupt_cache = model.run_with_cache(pairs.corrupt, names=["resid_pre", "z"])
        clean = interventions.answer_logit_diff(model(pairs.clean), pairs.answer, pairs.wrong)
        corrupt = interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
    gap, eps = clean - corrupt, 1e-3

    def derivative(key, edit):  # d metric / d t, the cell at corrupted + t (clean - corrupted)
        moved = []
        for t in (eps, -eps):
            def hook(x, t=t):
                x = x.clone()
                edit(x, t)
                return x
            with torch.no_grad(), model.hooks({key: hook}):
                moved.append(interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer,
                                                             pairs.wrong))
        return (moved[0] - moved[1]) / (2 * eps)

    estimate = interventions.attribution_positions(model, pairs, "resid_pre") * gap
    for layer in range(model.cfg.n_layers):
        start, end = corrupt_cache["resid_pre", layer], clean_cache["resid_pre", layer]
        for pos in range(pairs.clean.shape[1]):
            def edit(x, t, pos=pos, start=start, end=end):
                x[:, pos] = start[:, pos] + t * (end[:, pos] - start[:, pos])
            brute = derivative(("resid_pre", layer), edit)
            assert torch.allclose(estimate[layer, pos], brute, rtol=5e-3, atol=1e-3), (layer, pos)
    heads = interventions.attribution_heads(model, pairs) * gap
    for layer in range(model.cfg.n_layers):
        start, end = corrupt_cache["z", layer], clean_cache["z", layer]
        for head in range(model.cfg.n_heads):
            def edit(x, t, head=head, start=start, end=end):
                x[:, :, head] = start[:, :, head] + t * (end[:, :, head] - start[:, :, head])
            brute = derivative(("z", layer), edit)
            assert torch.allclose(heads[layer, head], brute, rtol=5e-3, atol=1e-3), (layer, head)
    assert estimate.abs().max() > 1e-3  # not vacuous: the random model's cells do move


def test_attribution_leaves_no_gradients_and_refuses_heads_by_position(course_model, few_pairs):
    interventions.attribution_positions(course_model, few_pairs, "mlp_out")
    assert all(p.grad is None and not p.requires_grad for p in course_model.parameters())
    with pytest.raises(ValueError, match="attribution_heads"):
        interventions.attribution_positions(course_model, few_pairs, "z")


def test_patching_some_positions_patches_only_those(course_model, few_pairs):
    full = interventions.patch_positions(course_model, few_pairs, "resid_pre")
    some = interventions.patch_positions(course_model, few_pairs, "resid_pre", positions=[-2, -1])
    assert torch.equal(some[:, -2:], full[:, -2:]) and (some[:, :-2] == 0).all()
    with pytest.raises(ValueError, match="positions"):
        interventions.patch_positions(course_model, few_pairs, positions=[9])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("via", ["q", "k", "v"])
def test_path_patching_through_every_component_is_the_receivers_input_in_the_patched_run(
        family, via, gpt2_model, llama_model):
    """Brute force: with every component between them passed `through`, the receiver's input
    is what it is in a run with the sender patched everywhere; the other heads' inputs and the
    rest of the run stay as in the base run; a source equal to the base changes nothing."""
    from mechinterp_course import method_scores

    model = gpt2_model if family == "gpt2" else llama_model
    base = method_scores.repeated_distinct(model, n=6, batch=4, seed=0)
    source = method_scores.resampled(base)
    sender, receiver = (0, 1), (2, 3)
    between = [("mlp_out", 0), ("attn_out", 1), ("mlp_out", 1)]
    group = model.cfg.n_heads // model.cfg.n_kv_heads
    index = receiver[1] if via == "q" else receiver[1] // group
    with torch.no_grad():
        _, other = model.run_with_cache(source, names=[("z", 0)])
        with model.hooks({("z", 0): interventions.replace_head(1, other["z", 0][:, :, 1])}):
            _, everywhere = model.run_with_cache(base, names=[(via, 2)])
        _, clean = model.run_with_cache(base, names=[(via, 2), ("resid_post", 1)])
        hooks = interventions.path_patch_hooks(model, base, source, sender, receiver, via,
                                               between)
        with model.hooks(hooks):
            _, patched = model.run_with_cache(base, names=[(via, 2), ("resid_post", 1)])
        same = interventions.path_patch_hooks(model, base, base, sender, receiver, via, between)
        with model.hooks(same):
            unchanged = model(base)
    assert torch.allclose(patched[via, 2][:, :, index], everywhere[via, 2][:, :, index],
                          atol=1e-5)
    assert not torch.allclose(patched[via, 2][:, :, index], clean[via, 2][:, :, index],
                              atol=1e-3)  # not vacuous: the sender does reach it
    others = [h for h in range(patched[via, 2].shape[2]) if h != index]
    assert torch.equal(patched[via, 2][:, :, others], clean[via, 2][:, :, others])
    assert torch.equal(patched["resid_post", 1], clean["resid_post", 1])
    assert torch.allclose(unchanged, model(base), atol=1e-5)


def test_path_patching_the_direct_path_is_every_path_when_nothing_lies_between(tokenizer):
    """Sender in layer 0, receiver in layer 1, MLP 0 set to write nothing: the direct path is
    the only one, so path patching it equals the receiver's input in the patched run. With an
    MLP in between it does not (the test could fail)."""
    from conftest import random_gpt2
    from mechinterp_course import method_scores
    from mechinterp_course.hooked import HookedModel

    hf = random_gpt2(len(tokenizer))
    model = HookedModel(hf, tokenizer, "random-gpt2")
    base = method_scores.repeated_distinct(model, n=6, batch=4, seed=0)
    source = method_scores.resampled(base)

    def gap():
        with torch.no_grad():
            _, other = model.run_with_cache(source, names=[("z", 0)])
            with model.hooks({("z", 0): interventions.replace_head(1, other["z", 0][:, :, 1])}):
                _, everywhere = model.run_with_cache(base, names=[("k", 1)])
            with model.hooks(interventions.path_patch_hooks(model, base, source, (0, 1), (1, 2),
                                                            "k")):
                _, patched = model.run_with_cache(base, names=[("k", 1)])
        return (patched["k", 1][:, :, 2] - everywhere["k", 1][:, :, 2]).abs().max()

    assert gap() > 1e-3
    with torch.no_grad():
        for param in hf.transformer.h[0].mlp.parameters():
            param.zero_()
    assert gap() < 1e-5


def test_receiver_hooks_change_only_the_receivers_input_by_the_swap(course_model):
    from mechinterp_course import method_scores

    base = method_scores.repeated_distinct(course_model, n=5, batch=2)
    names = [("k", 2), ("q", 2), ("k", 1)]
    _, clean = course_model.run_with_cache(base, names=names)
    zero = torch.zeros(*base.shape, course_model.cfg.d_model)
    with course_model.hooks(interventions.receiver_hooks(course_model, base, (2, 0), "k", zero)):
        _, same = course_model.run_with_cache(base, names=names)
    for name in names:  # a zero swap re-derives the receiver's keys unchanged
        assert torch.allclose(same[name], clean[name], atol=1e-5)
    swap = torch.randn(zero.shape, generator=torch.Generator().manual_seed(0))
    with course_model.hooks(interventions.receiver_hooks(course_model, base, (2, 0), "k", swap)):
        _, moved = course_model.run_with_cache(base, names=names)
    assert not torch.allclose(moved["k", 2][:, :, 0], clean["k", 2][:, :, 0], atol=1e-3)
    assert torch.allclose(moved["k", 2][:, :, 1:], clean["k", 2][:, :, 1:])  # other heads' keys
    assert torch.allclose(moved["q", 2], clean["q", 2]) and torch.allclose(moved["k", 1],
                                                                           clean["k", 1])
    for bad, match in [(dict(swap=zero[:, 1:]), "swap must be"), (dict(via="o"), "via")]:
        with pytest.raises(ValueError, match=match):
            interventions.receiver_hooks(course_model, base, **{
                **dict(receiver=(2, 0), via="k", swap=zero), **bad})


def test_path_patching_refuses_what_it_cannot_do(course_model):
    from mechinterp_course import method_scores

    base = method_scores.repeated_distinct(course_model, n=5, batch=2)
    other = method_scores.resampled(base)
    for bad, match in [(dict(via="z"), "via"), (dict(receiver=(0, 0)), "before"),
                       (dict(through=[("attn_out", 0)]), "through"),
                       (dict(through=[("resid_pre", 1)]), "through"),
                       (dict(through=[("mlp_out", 2)]), "before the receiver"),
                       (dict(direct=False), "direct=False")]:
        kwargs = {**dict(sender=(0, 1), receiver=(2, 0), via="k"), **bad}
        with pytest.raises(ValueError, match=match):
            interventions.path_patch_hooks(course_model, base, other, **kwargs)
    with pytest.raises(ValueError, match="one shape"):
        interventions.path_patch_hooks(course_model, base, other[:, 1:], (0, 1), (2, 0), "k")
