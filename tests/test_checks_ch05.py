"""Chapter 05's checks pass the solution, fail the stub, and name the mistake in wrong answers;
the toy-model and neuron helpers do what they say."""

import pytest
import torch

from mechinterp_course import lens, neurons, toy_models
from notebooks import exercise_functions, fails_with

NB = "05_superposition.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def test_toy_forward():
    from mechinterp_course.checks import ch05
    check = ch05.check_toy_forward
    check(SOLUTION["toy_forward"], None)
    fails_with(check, STUB["toy_forward"], None, "not done yet")

    def h(W, x):
        return torch.einsum("imn,bin->bim", W, x)

    def back(W, h):
        return torch.einsum("imn,bim->bin", W, h)
    fails_with(check, lambda W, b, x: back(W, h(W, x)) + b, None, "No ReLU")
    fails_with(check, lambda W, b, x: torch.relu(back(W, h(W, x))), None, "bias is missing")
    fails_with(check, lambda W, b, x: torch.relu(back(W, torch.relu(h(W, x))) + b), None,
               "hidden layer")
    fails_with(check, lambda W, b, x: torch.relu(back(W, h(W, x))) + b, None, "after the ReLU")


def test_weighted_mse():
    from mechinterp_course.checks import ch05
    check = ch05.check_weighted_mse
    check(SOLUTION["weighted_mse"], None)
    fails_with(check, STUB["weighted_mse"], None, "not done yet")
    fails_with(check, lambda x, y, i: (x - y).pow(2).sum(-1).mean(0), None, "ignored")
    fails_with(check, lambda x, y, i: ((x - y) * i).pow(2).sum(-1).mean(0), None, "inside")
    fails_with(check, lambda x, y, i: ((x - y).pow(2) * i).mean(-1).mean(0), None, "averaged")
    fails_with(check, lambda x, y, i: ((x - y).pow(2) * i).sum(-1).sum(0), None, "summed over")
    fails_with(check, lambda x, y, i: ((x - y).pow(2) * i).sum(-1).mean(), None, "per instance")


def test_feature_dimensionality():
    from mechinterp_course.checks import ch05
    check = ch05.check_feature_dimensionality
    check(SOLUTION["feature_dimensionality"], None)
    fails_with(check, STUB["feature_dimensionality"], None, "not done yet")

    def unnormalised(W):
        n = W.norm(dim=-2)
        return n.pow(2) / torch.einsum("...mi,...mj->...ij", W, W).pow(2).sum(-1).clamp(min=1e-8)
    fails_with(check, unnormalised, None, "normalise")

    def no_clamp(W):
        n = W.norm(dim=-2, keepdim=True)
        u = W / n
        return n.squeeze(-2).pow(2) / torch.einsum("...mi,...mj->...ij", u, W).pow(2).sum(-1)
    fails_with(check, no_clamp, None, "not NaN")


def test_feature_geometry():
    from mechinterp_course.checks import ch05
    check = ch05.check_feature_geometry
    check(SOLUTION["feature_geometry"], None)
    fails_with(check, STUB["feature_geometry"], None, "not done yet")
    fails_with(check, lambda W: (W.norm(dim=0), torch.atan2(W[1], W[0]) % (2 * torch.pi)), None,
               "radians")
    fails_with(check, lambda W: (W.norm(dim=0), torch.rad2deg(torch.atan2(W[1], W[0]))), None,
               "modulo")
    fails_with(check, lambda W: (W.norm(dim=0), torch.rad2deg(torch.atan2(W[0], W[1])) % 360),
               None, "swapped")
    fails_with(check, lambda W: W.norm(dim=0), None, "pair")


def test_dimensionality_of_known_arrangements():
    square = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    assert torch.allclose(toy_models.feature_dimensionality(square),
                          torch.tensor([0.5, 0.5, 1.0, 0.0]))
    angles = torch.arange(5) * 2 * torch.pi / 5
    pentagon = torch.stack([angles.cos(), angles.sin()])
    assert torch.allclose(toy_models.feature_dimensionality(pentagon), torch.full((5,), 0.4),
                          atol=1e-5)
    assert torch.allclose(toy_models.dimensions_per_feature(pentagon), torch.tensor(0.4))


def test_sparse_toy_model_learns_superposition_and_dense_does_not():
    model = toy_models.ToyModel(5, 2, instances=2, seed=0)
    toy_models.train(model, 0.9 ** torch.arange(5.0), torch.tensor([[1.0], [0.01]]),
                     steps=1500, progress=False)
    norms = model.W.detach().norm(dim=1)  # (instances, 5)
    assert (norms[0] > 0.5).sum() == 2  # dense: two features, the rest dropped
    assert (norms[1] > 0.5).sum() == 5  # sparse: all five


def test_feature_sampling_matches_its_probability():
    x = toy_models.sample_features(20000, 4, torch.tensor([[0.1], [0.9]]),
                                   torch.Generator().manual_seed(0))
    present = (x > 0).float().mean(dim=(0, 2))
    assert torch.allclose(present, torch.tensor([0.1, 0.9]), atol=0.01)
    assert x.max() <= 1 and x.min() >= 0


def test_family_counts_ignore_tokens_shared_by_families():
    data = neurons.NeuronData(
        acts=torch.tensor([[5.0], [4.0], [3.0], [2.0]]), token_ids=torch.tensor([7, 7, 8, 9]),
        family=torch.tensor([0, 1, 1, 0]), families=["a", "b"], contexts=list("wxyz"), d_mlp=1)
    counts = neurons.family_counts(data, k=4)
    # token 7 appears in both families, so it counts for neither; 8 is b's, 9 is a's
    assert counts[:, 0].tolist() == [1, 1]
    assert neurons.top_contexts(data, 0, 0, k=1, family=1)[0][2] == "x"


def test_auroc_counts_ties_as_half_and_orders_correctly():
    labels = torch.tensor([True, True, False, False])
    perfect = torch.tensor([[3.0], [2.0], [1.0], [0.0]])
    assert neurons.auroc(perfect, labels).item() == 1.0
    assert neurons.auroc(-perfect, labels).item() == 0.0
    assert neurons.auroc(torch.zeros(4, 1), labels).item() == 0.5  # all tied: chance
    mixed = torch.tensor([[2.0], [0.0], [1.0], [0.0]])  # pairs: 2>1, 2>0, 0<1, 0=0
    assert neurons.auroc(mixed, labels).item() == (1 + 1 + 0 + 0.5) / 4


def test_auroc_of_many_labels_at_once_equals_counting_pairs():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (60, 5), generator=g).float()  # many ties
    scores[:, 4] = torch.randn(60, generator=g)
    labels = torch.rand(60, 3, generator=g) > 0.6
    together = neurons.auroc(scores, labels)  # (labels, units)
    assert together.shape == (3, 5)
    for k in range(3):
        pos, neg = scores[labels[:, k]], scores[~labels[:, k]]  # brute force over pairs
        wins = (pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()
        assert torch.allclose(together[k], wins.mean((0, 1)), atol=1e-6)
        assert torch.allclose(neurons.auroc(scores, labels[:, k]), together[k])


def test_auroc_refuses_what_it_cannot_rank():
    scores = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-0.3, 1.0], [1.5, 0.2]])
    labels = torch.tensor([True, False, True, False])
    for bad_scores, bad_labels, says in [
            (scores, labels.float(), "boolean"), (scores, labels[:3], "boolean"),
            (scores, torch.ones(4, dtype=torch.bool), "one positive and one negative"),
            (scores.masked_fill(scores > 1, float("nan")), labels, "NaN")]:
        with pytest.raises(ValueError, match=says):
            neurons.auroc(bad_scores, bad_labels)


def test_collected_labels_follow_documents(course_model):
    data = neurons.collect(course_model, docs_per_family=1, seed=5)
    labels = data.labels()
    assert set(data.families) <= set(labels)
    for name in ("Africa", "Asia", "Europe", "North America", "South America"):
        if name in labels:  # continent labels only ever mark country documents' tokens
            assert not (labels[name] & ~labels["country"]).any()
    assert data.acts.shape == (len(data.family), course_model.cfg.n_layers
                               * course_model.cfg.d_mlp)
    assert len(data.contexts) == len(data.family) == len(data.doc)


def test_top_neurons(course_model):
    from mechinterp_course.checks import ch05
    check = ch05.check_top_neurons
    check(SOLUTION["top_neurons"], course_model)
    fails_with(check, STUB["top_neurons"], course_model, "not done yet")
    fails_with(check, lambda c, layer, k=5: c["mlp_out", layer][0, -1].topk(k).indices,
               course_model, "residual-stream coordinates")
    fails_with(check, lambda c, layer, k=5: c["mlp_post", layer][0, 0].topk(k).indices,
               course_model, "first position")
    fails_with(check, lambda c, layer, k=5: c["mlp_post", layer][-1, -1].topk(k).indices,
               course_model, "last prompt")
    fails_with(check, lambda c, layer, k=5: c["mlp_post", layer][0, -1].topk(
        k, largest=False).indices, course_model, "weakest")
    fails_with(check, lambda c, layer, k=5: c["mlp_post", layer][0, -1].topk(5).indices,
               course_model, "k argument")
    fails_with(check, lambda c, layer, k=5: c["mlp_post", layer][0, -1].topk(k).values,
               course_model, "integer tensor")
    fails_with(check, lambda c, layer, k=5: None, course_model, "integer tensor")
    fails_with(check, lambda c, layer, k=5: c["mlp_post", 0][0, -1].topk(k).indices,
               course_model, "not among")  # the layer argument ignored
    # equivalent answers pass: a list, another order
    check(lambda c, layer, k=5: c["mlp_post", layer][0, -1].argsort()[-k:].tolist(),
          course_model)


def _burst_data(selective: bool):
    """Two families of 200 tokens each, every token specific to its family; 40 neurons that are
    either strong on 20 tokens scattered over family a (selective) or random."""
    g = torch.Generator().manual_seed(0)
    n = 400
    acts = torch.rand(n, 40, generator=g)
    if selective:
        for j in range(40):  # strong on 20 tokens scattered over family a
            acts[torch.randperm(200, generator=g)[:20], j] += 5
    family = torch.tensor([0] * 200 + [1] * 200)
    token_ids = torch.cat([torch.arange(100).repeat(2), 100 + torch.arange(100).repeat(2)])
    return neurons.NeuronData(acts, token_ids, family, ["a", "b"], ["x"] * n, 40)


def test_family_thresholds_and_the_shift_null_tell_selectivity_from_chance():
    from mechinterp_course import claims
    for selective in (True, False):
        data = _burst_data(selective)
        thresholds = neurons.family_thresholds(data, k=20, alpha=1e-3)
        assert thresholds.tolist() == [18, 18]  # P(count >= 18 of 20 at p = 0.5) = 0.0002
        counts = neurons.family_counts(data, k=20)
        observed = neurons.share_responding(counts, thresholds, min_families=1)
        null = claims.null_interval(lambda g: neurons.share_responding(neurons.family_counts(
            data, k=20, shift=neurons.random_shifts(data, g)), thresholds, 1), n=20)
        if selective:  # all respond; moved at random, their top tokens rarely stay in family a
            assert observed == 1 and observed - null.high > 0.5
        else:  # random activations: none responds, observed or moved
            assert observed == 0 and null.high < 0.1
    # the chapter's first rule (a fixed count) is passed by random activations
    assert neurons.share_responding(neurons.family_counts(_burst_data(False), k=20), 8, 2) > 0.5


def test_family_writes_find_a_planted_direction(course_model):
    from mechinterp_course import claims
    data = neurons.collect(course_model, docs_per_family=3, seed=5)
    owner = neurons.vocab_family(data, course_model.cfg.d_vocab)
    python = data.families.index("python")
    with torch.no_grad():
        planted = course_model.W_U[:, owner == python].mean(1)  # (d_model,) writes Python
        writes = neurons.family_writes(lens.direction_logits(course_model, planted), owner,
                                       len(data.families))
        randoms = claims.random_directions(200, planted, torch.Generator().manual_seed(0))
        null = neurons.family_writes(lens.direction_logits(course_model, randoms), owner,
                                     len(data.families))
    assert randoms.norm(dim=1).sub(planted.norm()).abs().max() < 1e-4
    assert writes[python] > null[:, python].quantile(0.99) and writes[python] > 1
    assert course_model.W_out.shape == (4, 512, 128)
    # W_out is what a neuron adds: mlp_out equals mlp_post @ W_out + the bias
    _, cache = course_model.run_with_cache("The capital of Texas is")
    bias = course_model.parts["blocks"][1].mlp.c_proj.bias
    assert torch.allclose(cache["mlp_post", 1] @ course_model.W_out[1] + bias,
                          cache["mlp_out", 1], atol=1e-4)


def test_top_k_counts():
    from mechinterp_course.checks import ch05
    check = ch05.check_top_k_counts
    check(SOLUTION["top_k_counts"], None)
    check(neurons.top_k_counts, None)
    check(lambda a, o, n, k: neurons.top_k_counts(a, o, n, k).float(), None)  # whole numbers
    check(lambda a, o, n, k: torch.nn.functional.one_hot(o[a.topk(k, 0).indices] + 1, n + 1)
          .sum(0).T[1:], None)  # one-hot with "no family" as an extra column, dropped
    fails_with(check, STUB["top_k_counts"], None, "not done yet")
    fails_with(check, lambda a, o, n, k: neurons.top_k_counts(-a, o, n, k), None, "smallest")
    fails_with(check, lambda a, o, n, k: neurons.top_k_counts(a, o, n, k).T, None, "one row a")
    fails_with(check, lambda a, o, n, k: neurons.top_k_counts(a, o, n, k) / k, None, "shares")
    fails_with(check, lambda a, o, n, k: torch.stack([(o == f).sum().expand(a.shape[1])
                                                      for f in range(n)]), None, "every token")
    fails_with(check, lambda a, o, n, k: torch.nn.functional.one_hot(
        o[a.topk(k, 0).indices] + 1, n + 1).sum(0).T[:n], None, "differs")  # off by one family
