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
