"""The course's names on nnsight's module paths: what nnsight reads at each path is what the
course's cache holds under that name, on GPT-2 (the course model) and Llama, run locally and
through nnsight's local simulation of NDIF (the remote path, serialized, with no server)."""

import pytest
import torch

from mechinterp_course import remote

KEYS = ["embed", ("resid_pre", 0), ("ln1", 0), ("z", 0), ("attn_out", 0), ("ln2", 0),
        ("mlp_post", 0), ("mlp_out", 0), ("resid_post", 0), ("resid_post", 1), "ln_final"]


def test_module_paths():
    assert remote.module_path("llama", "mlp_out", 40) == ("model.layers.40.mlp", "output")
    assert remote.module_path("gpt2", "resid_pre", 3) == ("transformer.h.3", "input")
    assert remote.module_path("mistral", "ln_final") == ("model.norm", "output")
    with pytest.raises(KeyError, match="resid_pre \\+ attn_out"):
        remote.module_path("llama", "resid_mid", 0)
    with pytest.raises(KeyError, match="no nnsight path"):
        remote.module_path("llama", "pattern", 0)
    with pytest.raises(ValueError, match="give a layer"):
        remote.module_path("llama", "z")
    with pytest.raises(NotImplementedError, match="'gpt_neox'"):
        remote.module_path("gpt_neox", "z", 0)


@pytest.mark.parametrize("which", ["course_model", "llama_model"])
@pytest.mark.parametrize("where", [False, "local"])
def test_what_nnsight_reads_is_the_course_cache(which, where, request):
    nnsight = pytest.importorskip("nnsight")
    m = request.getfixturevalue(which)
    lm = nnsight.LanguageModel(m.hf, tokenizer=m.tokenizer)
    tokens = m.to_tokens(["The capital of Texas is", "When Mary and John"])
    got = remote.trace_cache(lm, tokens, KEYS, remote=where)
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens)
    for key in KEYS:
        want = cache[key]
        if key[0] == "z":
            want = want.flatten(-2)  # o_proj's input: heads side by side
        torch.testing.assert_close(got[key], want, atol=1e-5, rtol=1e-5,
                                   msg=lambda s: f"{key}: {s}")


def test_a_wrong_path_reads_something_else(course_model, monkeypatch):
    """The comparison above can fail: with ln1 read where ln2 is, it does."""
    nnsight = pytest.importorskip("nnsight")
    lm = nnsight.LanguageModel(course_model.hf, tokenizer=course_model.tokenizer)
    tokens = course_model.to_tokens("The capital of Texas is")
    paths = dict(remote.BLOCK_PATHS["gpt2"], ln1=remote.BLOCK_PATHS["gpt2"]["ln2"])
    monkeypatch.setitem(remote.BLOCK_PATHS, "gpt2", paths)
    got = remote.trace_cache(lm, tokens, [("ln1", 0)])
    with torch.no_grad():
        _, cache = course_model.run_with_cache(tokens)
    assert not torch.allclose(got["ln1", 0], cache["ln1", 0], atol=1e-3)


def test_available_says_why_not(monkeypatch):
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    ok, why = remote.available()
    assert not ok and why


@pytest.mark.parametrize("which", ["course_model", "llama_model"])
def test_the_remote_logit_lens_is_chapter_03s(which, request):
    """remote.logit_lens computes inside the trace, through the same block the server would run
    (nnsight's local simulation of NDIF): after each block, what lens.unembed gives from the
    course's cache."""
    nnsight = pytest.importorskip("nnsight")
    from mechinterp_course import lens

    m = request.getfixturevalue(which)
    lm = nnsight.LanguageModel(m.hf, tokenizer=m.tokenizer)
    tokens = m.to_tokens(["The capital of Texas is"])
    answer = 7
    got = remote.logit_lens(lm, tokens, answer, remote="local")
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens)
        want = lens.unembed(m, cache.stack("resid_post")[:, 0, -1]).log_softmax(-1)[:, answer]
    torch.testing.assert_close(torch.tensor(got), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("which", ["course_model", "llama_model"])
def test_the_remote_patching_grid_is_chapter_07s(which, request):
    """remote.patching_grid (one trace, through nnsight's local simulation of NDIF) equals
    interventions.patch_positions (one hooked run per cell), on all layers and on a subset."""
    nnsight = pytest.importorskip("nnsight")
    from mechinterp_course import interventions

    m = request.getfixturevalue(which)
    lm = nnsight.LanguageModel(m.hf, tokenizer=m.tokenizer)
    pairs = interventions.capital_pairs(m)[0]
    n = 3
    pairs = interventions.PatchingPairs(pairs.clean[:n], pairs.corrupt[:n], pairs.answer[:n],
                                        pairs.wrong[:n], pairs.subject[:n], pairs.prompts[:n])
    want = interventions.patch_positions(m, pairs)
    assert want.abs().max() > 0.5  # a grid with something in it
    got = remote.patching_grid(lm, pairs.clean, pairs.corrupt, pairs.answer, pairs.wrong,
                               remote="local")
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    last = m.cfg.n_layers - 1
    some = remote.patching_grid(lm, pairs.clean, pairs.corrupt, pairs.answer, pairs.wrong,
                                layers=[last, 0])
    torch.testing.assert_close(some, want[[last, 0]], atol=1e-4, rtol=1e-4)


def test_the_patching_grid_refuses_bad_input(course_model):
    nnsight = pytest.importorskip("nnsight")
    lm = nnsight.LanguageModel(course_model.hf, tokenizer=course_model.tokenizer)
    tokens = course_model.to_tokens("The capital of Texas is")
    with pytest.raises(ValueError, match="one shape"):
        remote.patching_grid(lm, tokens, tokens[:, :-1], [0], [1])
    with pytest.raises(ValueError, match="layers must be"):
        remote.patching_grid(lm, tokens, tokens, [0], [1], layers=[course_model.cfg.n_layers])
