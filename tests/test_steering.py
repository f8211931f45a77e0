"""The steering helpers do what chapter 11 says: a vector taken and added at each prompt's own
last position, and a direction removed from every write, so that no layer's residual stream
holds any of it."""

import pytest
import torch

from mechinterp_course import steering
from mechinterp_course.checks.ch00 import second_model

TEXTS = ["Japan is a country in", "South Korea is a country in", "India is in"]


@pytest.fixture(scope="module", params=["course", "llama"])
def model(request, course_model):
    return course_model if request.param == "course" else second_model()


def test_prompts_find_each_prompts_last_position(model):
    tokens, last = steering.prompts(model, TEXTS)
    for row, text in enumerate(TEXTS):
        alone = model.to_tokens(text)[0]
        assert int(last[row]) == len(alone) - 1
        assert torch.equal(tokens[row, : len(alone)], alone)
    with pytest.raises(ValueError, match="at least one"):
        steering.prompts(model, [])


def test_mean_difference_is_the_difference_of_each_prompts_last_activation(model):
    def alone(texts, layer):
        acts = []
        for text in texts:
            _, cache = model.run_with_cache(model.to_tokens(text), names=[("resid_pre", layer)])
            acts.append(cache["resid_pre", layer][0, -1])
        return torch.stack(acts).mean(0)
    for layer in range(model.cfg.n_layers):
        want = alone(TEXTS[:2], layer) - alone(TEXTS[2:], layer)
        got = steering.mean_difference(model, TEXTS[:2], TEXTS[2:], layer)
        assert torch.allclose(got, want, atol=1e-5)


def test_steering_changes_only_each_prompts_last_position(model):
    tokens, last = steering.prompts(model, TEXTS)
    vector = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    _, clean = model.run_with_cache(tokens, names=[("resid_pre", 1)])
    with model.hooks(steering.steering_hooks(vector, 1, last, strength=3.0)):
        _, steered = model.run_with_cache(tokens, names=[("resid_pre", 1)])
    change = steered["resid_pre", 1] - clean["resid_pre", 1]  # (n, pos, d_model)
    rows = torch.arange(len(TEXTS))
    assert torch.allclose(change[rows, last], 3.0 * vector.expand(len(TEXTS), -1), atol=1e-5)
    change[rows, last] = 0
    assert change.abs().max() == 0  # nowhere else


def test_write_names_add_up_to_the_residual_stream(model):
    tokens, _ = steering.prompts(model, TEXTS)
    last = model.cfg.n_layers - 1
    _, cache = model.run_with_cache(tokens, names=[*steering.write_names(model),
                                                   ("resid_post", last)])
    total = sum(cache[name] for name in steering.write_names(model))
    assert torch.allclose(total, cache["resid_post", last], atol=1e-4)


def test_ablation_leaves_none_of_the_direction_in_any_layer(model):
    tokens, _ = steering.prompts(model, TEXTS)
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(model.cfg.d_model, generator=g) * 7  # not normalised
    names = [("resid_pre", layer) for layer in range(model.cfg.n_layers)]
    names.append(("resid_post", model.cfg.n_layers - 1))
    unit = direction / direction.norm()
    _, before = model.run_with_cache(tokens, names=names)
    with model.hooks(steering.ablation_hooks(model, direction)):
        _, after = model.run_with_cache(tokens, names=names)
    for name in names:
        assert (before[name] @ unit).abs().max() > 1e-3  # there was some to remove
        assert (after[name] @ unit).abs().max() < 1e-4, name
    with pytest.raises(ValueError, match="d_model"):
        steering.ablation_hooks(model, torch.ones(3))
    for bad in (torch.zeros(model.cfg.d_model), torch.full((model.cfg.d_model,), torch.nan)):
        with pytest.raises(ValueError, match="finite and non-zero"):
            steering.ablation_hooks(model, bad)


def test_steered_logits_are_the_logits_with_the_hooks(model):
    tokens, last = steering.prompts(model, TEXTS)
    vector = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(2))
    with model.hooks(steering.steering_hooks(vector, 1, last, -0.5)):
        want = model(tokens)[torch.arange(len(TEXTS)), last]
    assert torch.allclose(steering.steered_logits(model, tokens, last, vector, 1, -0.5), want)
    plain = model(tokens)[torch.arange(len(TEXTS)), last]
    assert torch.allclose(steering.steered_logits(model, tokens, last, vector, 1, 0.0), plain)


ANSWERS = {"France": "Paris", "Japan": "Tokyo", "Spain": "Madrid", "Peru": "Lima", "Chad": "N"}


def test_in_context_prompts_show_k_demonstrations_and_never_the_query():
    texts = steering.in_context_prompts(["France", "Japan"], ANSWERS, k=3, seed=1)
    for query, text in zip(["France", "Japan"], texts):
        lines = text.split("\n")
        assert len(lines) == 4 and lines[-1] == f"{query}:"
        shown = [line.split(": ") for line in lines[:-1]]
        assert all(ANSWERS[x] == y for x, y in shown) and query not in dict(shown)
    shuffled = steering.in_context_prompts(["France", "Japan"], ANSWERS, k=3, seed=1,
                                           shuffle=True)
    for text, other in zip(texts, shuffled):  # the same demonstrations, answers moved about
        pairs = [line.split(": ") for line in text.split("\n")[:-1]]
        moved = [line.split(": ") for line in other.split("\n")[:-1]]
        assert [x for x, _ in pairs] == [x for x, _ in moved]
        assert sorted(y for _, y in pairs) == sorted(y for _, y in moved)
    assert steering.in_context_prompts(["Peru"], ANSWERS, k=0) == ["Peru:"]
    with pytest.raises(ValueError, match="k must be"):
        steering.in_context_prompts(["Peru"], ANSWERS, k=5)


def test_last_z_is_each_prompts_own_last_z(model):
    tokens, last = steering.prompts(model, TEXTS)
    got = steering.last_z(model, tokens, last)
    assert got.shape == (len(TEXTS), model.cfg.n_layers, model.cfg.n_heads, model.cfg.d_head)
    for row, text in enumerate(TEXTS):
        _, cache = model.run_with_cache(model.to_tokens(text), names=["z"])
        for layer in range(model.cfg.n_layers):
            assert torch.allclose(got[row, layer], cache["z", layer][0, -1], atol=1e-5)


def test_head_attributions_match_patching_each_head_for_a_small_change(model):
    """Against brute force, one prompt: setting one head's z a small step toward a target
    changes the answer's log-probability by the step times the attribution (central
    differences, so that the step's square does not count)."""
    tokens, last = steering.prompts(model, TEXTS[:1])
    answer = torch.tensor([model.to_single_token(" Asia")])
    z = steering.last_z(model, tokens, last)[0]  # (n_layers, n_heads, d_head)
    target = z + torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    step = 1e-2
    got = steering.head_attributions(model, tokens, last, answer, z + step * (target - z))

    def logprob(hooks=()):
        with torch.no_grad(), model.hooks(hooks):
            return model(tokens)[0, last[0]].log_softmax(-1)[answer[0]]
    for layer, head in [(0, 0), (model.cfg.n_layers - 1, model.cfg.n_heads - 1), (1, 1)]:
        def nudge(sign, layer=layer, head=head):
            def hook(x):
                x = x.clone()
                x[0, last[0], head] = z[layer, head] + sign * step * (target - z)[layer, head]
                return x
            return [(("z", layer), hook)]
        brute = (logprob(nudge(1)) - logprob(nudge(-1))) / 2  # central: no second-order term
        assert torch.allclose(got[layer, head], brute, rtol=0.02, atol=1e-5), (layer, head)
    assert not torch.allclose(got, torch.zeros_like(got))
    with pytest.raises(ValueError, match="target_z must be"):
        steering.head_attributions(model, tokens, last, answer, target[0])
    with pytest.raises(ValueError, match="one token id per prompt"):
        steering.head_attributions(model, tokens, last, answer.repeat(2), target)


def test_function_vector_of_every_head_is_the_mean_attention_output(model):
    tokens, last = steering.prompts(model, TEXTS)
    mean_z = steering.last_z(model, tokens, last).mean(0)
    _, cache = model.run_with_cache(tokens, names=["attn_out"])
    for layer in range(model.cfg.n_layers):
        want = cache["attn_out", layer][torch.arange(len(TEXTS)), last].mean(0)
        bias = model.attention_weights(layer)["b_O"]
        got = steering.function_vector(model, mean_z, [(layer, h) for h in range(
            model.cfg.n_heads)]) + bias
        assert torch.allclose(got, want, atol=1e-4), layer
    one = steering.function_vector(model, mean_z, [(1, 2)])
    assert torch.allclose(one, mean_z[1, 2] @ model.attention_weights(1)["W_O"][2])
    assert not one.requires_grad
    with pytest.raises(ValueError, match="at least one"):
        steering.function_vector(model, mean_z, [])
