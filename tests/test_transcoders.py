"""The shipped transcoders (one a layer of the course model): they load offline, refuse other
weights, and stand in for the MLPs on tokens they were not trained on, to the issue's targets
(FVE >= 0.8 at L0 <= 32 per layer; the replacement model's top-1 agrees with the model on >= 95%
of the capital prompts). Each target is also shown to fail on a null: the same transcoders with
their latents' write directions shuffled."""

import copy

import pytest
import torch

from mechinterp_course import transcoders
from mechinterp_course.transcoders import Transcoder


@pytest.fixture(scope="module")
def shipped(course_model):
    return transcoders.load(course_model)


@pytest.fixture(scope="module")
def fresh_pairs(course_model, tmp_path_factory):
    """ln2 and mlp_out of every layer on 8,000 tokens of a seed training never saw."""
    folder = tmp_path_factory.mktemp("tc_acts")
    return {layer: [t.clone() for t in transcoders.collect_pairs(
        course_model, layer, folder, 8_000, seed=7, progress=False)]
        for layer in range(course_model.cfg.n_layers)}


def test_the_shipped_set_fits_each_mlp_on_fresh_tokens(shipped, fresh_pairs):
    assert sorted(shipped) == [0, 1, 2, 3]
    for layer, (x, y) in fresh_pairs.items():
        fit = transcoders.evaluate(shipped[layer], x, y)
        assert fit.fve >= 0.8 and fit.l0 <= 32, (layer, fit)
        null = transcoders.evaluate(transcoders.shuffled_writes(shipped)[layer], x, y)
        assert null.fve < 0.5, (layer, null)  # the target can fail


def test_the_replacement_model_agrees_on_the_capital_prompts(course_model, shipped):
    assert transcoders.capital_agreement(course_model, shipped) >= 0.95
    assert transcoders.capital_agreement(course_model, transcoders.shuffled_writes(shipped)) < 0.5


def test_the_spliced_loss_recovers_what_the_mlps_do(course_model, shipped):
    tokens = transcoders.eval_tokens(course_model, n=16)
    losses = transcoders.spliced_losses(course_model, shipped, tokens)
    assert losses["clean"] < losses["replaced"] < losses["zeroed"]
    assert losses["recovered"] > 0.9
    assert transcoders.spliced_losses(course_model, transcoders.shuffled_writes(shipped), tokens)["recovered"] < 0.9


def test_the_file_says_how_it_was_made_and_matches_what_it_says(shipped):
    rec = transcoders.record()
    assert rec["recipe"] == transcoders.RECIPE
    assert rec["capital_top1_agreement"] >= 0.95
    for layer, fit in rec["fits"].items():
        assert fit["fve"] >= 0.8 and fit["l0"] <= 32
        assert shipped[int(layer)].k == rec["recipe"]["k"]
    assert {"cpu", "cpu_capability", "torch", "threads"} <= set(rec["machine"])


def test_other_weights_are_refused(course_model, llama_model):
    with pytest.raises(ValueError, match="trained on other weights"):
        transcoders.load(llama_model)
    changed = copy.deepcopy(course_model)
    with torch.no_grad():
        changed.hf.transformer.h[2].mlp.c_fc.weight[0, 0] += 1e-3
    with pytest.raises(ValueError, match="trained on other weights"):
        transcoders.load(changed)


def test_a_missing_file_says_how_to_make_it(course_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m mechinterp_course.transcoders"):
        transcoders.load(course_model, tmp_path / "none.safetensors")


def test_save_and_load_round_trip(course_model, shipped, tmp_path):
    path = transcoders.save(shipped, course_model, tmp_path / "t.safetensors", {"note": "x"})
    again = transcoders.load(course_model, path)
    x = torch.randn(5, course_model.cfg.d_model)
    for layer in shipped:
        assert torch.equal(again[layer](x)[0], shipped[layer](x)[0])
    assert transcoders.record(path) == {"note": "x"}


def test_training_learns_an_mlp_and_revives_dead_latents(fresh_pairs):
    """A few hundred steps on layer 1's fresh pairs: far better than the mean; with the
    auxiliary loss, fewer dead latents than without it (the same seed otherwise)."""
    x, y = fresh_pairs[1]
    fits = {}
    for aux_k in (0, 64):
        tc = Transcoder(x.shape[1], 256, y.shape[1], k=8, seed=0)
        with torch.no_grad():
            tc.b_in.copy_(x.mean(0))
            tc.b_dec.copy_(y.mean(0))
        losses = transcoders.train(tc, x[:6000], y[:6000], steps=300, batch=256, aux_k=aux_k,
                                   progress=False)
        assert losses[-1] < losses[0] / 2
        fits[aux_k] = transcoders.evaluate(tc, x[6000:], y[6000:])
    assert fits[64].fve > 0.7, fits
    assert fits[64].dead < fits[0].dead, fits


def test_with_its_error_nodes_the_replacement_model_is_the_model(course_model, shipped):
    tokens = course_model.to_tokens(["The capital of Texas is", "The capital of Ohio is"])
    errors = transcoders.mlp_errors(course_model, shipped, tokens)
    with torch.no_grad():
        clean = course_model(tokens)
        with course_model.hooks(transcoders.replacement_hooks(shipped)):
            replaced = course_model(tokens)
        with course_model.hooks(transcoders.replacement_hooks(shipped, errors)):
            restored = course_model(tokens)
        swapped = {layer: e.flip(0) for layer, e in errors.items()}  # the other prompt's
        with course_model.hooks(transcoders.replacement_hooks(shipped, swapped)):
            wrong = course_model(tokens)
    assert not torch.allclose(replaced, clean, atol=1e-3)
    assert not torch.allclose(wrong, clean, atol=1e-3)
    torch.testing.assert_close(restored, clean, atol=1e-4, rtol=1e-4)


def test_bad_k_is_refused():
    with pytest.raises(ValueError, match="k must be"):
        Transcoder(8, 16, 8, k=0)
    with pytest.raises(ValueError, match="same tokens"):
        transcoders.train(Transcoder(8, 16, 8, k=2), torch.zeros(10, 8), torch.zeros(9, 8), 1)
