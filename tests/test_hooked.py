"""The activation names must be right, not just present: each is checked against the wrapped
model's own computation, on GPT-2 and Llama (GQA + RoPE) configs and on the course model."""

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from conftest import fresh_copy

TEXT = ["The capital of Texas is Austin. When Mary and John went to the store,",
        "def add(x, y):\n    return x + y"]
ATOL = 1e-5
RTOL = 1e-5  # logits of size ~10 differ by ~1e-5 between eager and sdpa (transformers 4.56)


def tokens_of(model, batch=2):
    toks = model.to_tokens(TEXT[:batch])
    return toks[:, :20]


def test_resid_post_equals_hidden_states(any_model):
    toks = tokens_of(any_model)
    ref = fresh_copy(any_model.hf)
    with torch.no_grad():
        out = ref(toks, output_hidden_states=True)
        logits, cache = any_model.run_with_cache(toks)
    n = any_model.cfg.n_layers
    torch.testing.assert_close(logits, out.logits, atol=ATOL, rtol=RTOL)
    for layer in range(n - 1):
        torch.testing.assert_close(cache["resid_post", layer], out.hidden_states[layer + 1],
                                   atol=ATOL, rtol=0)
    # transformers applies the final norm to its last hidden state
    torch.testing.assert_close(cache["ln_final"], out.hidden_states[n], atol=ATOL, rtol=0)
    torch.testing.assert_close(cache["resid_pre", 0], out.hidden_states[0], atol=ATOL, rtol=0)


def test_pattern_equals_eager_attention_weights(any_model):
    toks = tokens_of(any_model)
    ref = fresh_copy(any_model.hf)
    with torch.no_grad():
        out = ref(toks, output_attentions=True)
        _, cache = any_model.run_with_cache(toks, names=["pattern"])
    for layer in range(any_model.cfg.n_layers):
        torch.testing.assert_close(cache["pattern", layer], out.attentions[layer], atol=ATOL,
                                   rtol=0)
        # causal: nothing above the diagonal, rows sum to one
        assert cache["pattern", layer].triu(1).abs().max() == 0
        torch.testing.assert_close(cache["pattern", layer].sum(-1),
                                   torch.ones(cache["pattern", layer].shape[:-1]))


def test_residual_stream_rebuilds(any_model):
    with torch.no_grad():
        _, cache = any_model.run_with_cache(tokens_of(any_model))
    for layer in range(any_model.cfg.n_layers):
        rebuilt = cache["resid_pre", layer] + cache["attn_out", layer] + cache["mlp_out", layer]
        torch.testing.assert_close(rebuilt, cache["resid_post", layer], atol=ATOL, rtol=0)
        torch.testing.assert_close(cache["resid_pre", layer] + cache["attn_out", layer],
                                   cache["resid_mid", layer], atol=ATOL, rtol=0)
        if layer:
            assert torch.equal(cache["resid_pre", layer], cache["resid_post", layer - 1])
    embed = cache["embed"] + (cache["pos_embed"] if "hook_pos_embed" in cache else 0)
    torch.testing.assert_close(embed, cache["resid_pre", 0], atol=ATOL, rtol=0)


def test_attention_internals_match_weights(any_model):
    """q, k, v from ln1 and the weights; rotary where the model has it; z and W_O give attn_out."""
    m, c = any_model, any_model.cfg
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens_of(m))
        for layer in range(c.n_layers):
            w = m.attention_weights(layer)
            x = cache["ln1", layer]
            q = torch.einsum("bpd,hde->bphe", x, w["W_Q"]) + w["b_Q"]
            k = torch.einsum("bpd,hde->bphe", x, w["W_K"]) + w["b_K"]
            v = torch.einsum("bpd,hde->bphe", x, w["W_V"]) + w["b_V"]
            torch.testing.assert_close(q, cache["q", layer], atol=ATOL, rtol=1e-4)
            torch.testing.assert_close(k, cache["k", layer], atol=ATOL, rtol=1e-4)
            torch.testing.assert_close(v, cache["v", layer], atol=ATOL, rtol=1e-4)
            assert cache["k", layer].shape[2] == c.n_kv_heads
            if c.positional_embedding_type == "rotary":
                pos = torch.arange(x.shape[1])[None]
                cos, sin = m.hf.model.rotary_emb(x, pos)
                rq, rk = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
                torch.testing.assert_close(rq.transpose(1, 2), cache["rot_q", layer], atol=ATOL,
                                           rtol=1e-4)
                torch.testing.assert_close(rk.transpose(1, 2), cache["rot_k", layer], atol=ATOL,
                                           rtol=1e-4)
                q, k = rq.transpose(1, 2), rk.transpose(1, 2)
            rep = c.n_heads // c.n_kv_heads
            k_full = k.repeat_interleave(rep, dim=2)
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k_full) / c.d_head ** 0.5
            n = scores.shape[-1]
            causal = torch.ones(n, n, dtype=torch.bool).tril()
            torch.testing.assert_close(scores.masked_fill(~causal, 0),
                                       cache["attn_scores", layer].masked_fill(~causal, 0),
                                       atol=1e-4, rtol=1e-4)
            z = torch.einsum("bhqk,bkhe->bqhe", cache["pattern", layer],
                             cache["v", layer].repeat_interleave(rep, dim=2))
            torch.testing.assert_close(z, cache["z", layer], atol=ATOL, rtol=1e-4)
            out = torch.einsum("bqhe,hed->bqd", z, w["W_O"]) + w["b_O"]
            torch.testing.assert_close(out, cache["attn_out", layer], atol=ATOL, rtol=1e-4)


def test_mlp_neurons(any_model):
    m = any_model
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens_of(m))
    for layer in range(m.cfg.n_layers):
        assert cache["mlp_pre", layer].shape[-1] == m.cfg.d_mlp
        assert cache["mlp_post", layer].shape[-1] == m.cfg.d_mlp
        if m.cfg.architecture == "gpt2":
            act = torch.nn.functional.gelu(cache["mlp_pre", layer], approximate="tanh")
        else:
            act = torch.nn.functional.silu(cache["mlp_pre", layer]) * cache["mlp_pre_linear", layer]
        torch.testing.assert_close(act, cache["mlp_post", layer], atol=ATOL, rtol=1e-4)


def test_zero_ablation_matches_hand_edited_forward(any_model):
    """Zeroing an MLP's output, or one head's z, through hooks gives exactly the logits of a
    model whose forward was edited by hand."""
    m, toks = any_model, tokens_of(any_model)
    layer, head = 1, 2
    with torch.no_grad():
        clean = m(toks)
        with m.hooks({("mlp_out", layer): lambda x: torch.zeros_like(x)}):
            hooked = m(toks)
        ref = fresh_copy(m.hf)
        mlp = m.parts["blocks"][layer].mlp.__class__
        block = (ref.transformer.h if m.cfg.architecture == "gpt2" else ref.model.layers)[layer]
        block.mlp.forward = lambda x, *a, **k: torch.zeros_like(x)
        torch.testing.assert_close(hooked, ref(toks).logits, atol=ATOL, rtol=RTOL)
        assert not torch.allclose(hooked, clean, atol=1e-3), f"{mlp} ablation changed nothing"

        def zero_head(z, hook):
            z[:, :, head] = 0  # in place, returning None, as TransformerLens allows
        with m.hooks([(f"blocks.{layer}.attn.hook_z", zero_head)]):
            hooked = m(toks)
        ref = fresh_copy(m.hf)
        dh = m.cfg.d_head
        if m.cfg.architecture == "gpt2":  # Conv1D weight: (in, out)
            ref.transformer.h[layer].attn.c_proj.weight[head * dh:(head + 1) * dh] = 0
        else:  # Linear weight: (out, in)
            ref.model.layers[layer].self_attn.o_proj.weight[:, head * dh:(head + 1) * dh] = 0
        torch.testing.assert_close(hooked, ref(toks).logits, atol=ATOL, rtol=RTOL)
        assert not torch.allclose(hooked, clean, atol=1e-3)


def test_resid_mid_patch_feeds_the_mlp(any_model):
    """A hook on resid_mid really replaces it: resid_post = patched + mlp(ln2(patched))."""
    m, toks = any_model, tokens_of(any_model)
    layer = 0
    with torch.no_grad():
        _, other = m.run_with_cache(toks.flip(0), names=[("resid_mid", layer)])
        patch = other["resid_mid", layer]
        with m.hooks({("resid_mid", layer): lambda x: patch}):
            _, cache = m.run_with_cache(toks)
        torch.testing.assert_close(cache["resid_mid", layer], patch)
        block = m.parts["blocks"][layer]
        ln2 = block.ln_2 if m.cfg.architecture == "gpt2" else block.post_attention_layernorm
        want = patch + block.mlp(ln2(patch))
        torch.testing.assert_close(cache["resid_post", layer], want, atol=ATOL, rtol=0)


def test_steering_adds_to_residual(gpt2_model):
    m, toks = gpt2_model, tokens_of(gpt2_model)
    direction = torch.randn(m.cfg.d_model)
    with torch.no_grad():
        _, clean = m.run_with_cache(toks, names=[("resid_pre", 2)])
        with m.hooks({"blocks.1.hook_resid_post": lambda x, hook: x + direction}):
            _, steered = m.run_with_cache(toks, names=[("resid_pre", 2)])
    assert not torch.allclose(clean["resid_pre", 2], steered["resid_pre", 2])


def test_hooks_are_removed_even_after_errors(gpt2_model):
    m, toks = gpt2_model, tokens_of(gpt2_model)
    with torch.no_grad():
        clean = m(toks)
        with pytest.raises(RuntimeError, match="boom"):
            with m.hooks({("resid_pre", 0): lambda x: x * 0}):
                raise RuntimeError("boom")
        assert not m._hook_fns and not m._active
        torch.testing.assert_close(m(toks), clean)


def test_hook_signatures(gpt2_model):
    """fn(x), TransformerLens's fn(x, hook), and fn(x) with defaults binding a loop variable
    (lambda x, v=v: ...) each get what they expect."""
    m, toks = gpt2_model, tokens_of(gpt2_model)
    seen = {}
    with torch.no_grad():
        clean = m(toks)
        zero = torch.zeros_like(m.run_with_cache(toks, names=[("mlp_out", 0)])[1]["mlp_out", 0])
        forms = {
            "one argument": lambda x: zero,
            "with a bound default": lambda x, value=zero: value,
            "with hook": lambda x, hook: seen.setdefault("name", hook.name) and zero,
            "with hook defaulted": lambda x, hook=None: seen.setdefault("layer", hook.layer)
            is not None and zero,
        }
        results = {k: m.run_with_hooks(toks, {("mlp_out", 0): fn}) for k, fn in forms.items()}
    assert seen == {"name": "blocks.0.hook_mlp_out", "layer": 0}
    first = results.pop("one argument")
    assert not torch.allclose(first, clean)
    for out in results.values():
        torch.testing.assert_close(out, first)


def test_hook_returning_wrong_shape_is_a_clear_error(gpt2_model):
    with pytest.raises(ValueError, match="must return None or a tensor of shape"):
        with gpt2_model.hooks({("mlp_out", 0): lambda x: x[:, :1]}):
            gpt2_model("hello")


def test_cache_indexing_and_filters(llama_model):
    m = llama_model
    with torch.no_grad():
        _, cache = m.run_with_cache("The capital of Texas is", names=["pattern", "embed"])
    assert set(cache) == {f"blocks.{i}.attn.hook_pattern" for i in range(3)} | {"hook_embed"}
    assert cache["pattern", 1] is cache["blocks.1.attn.hook_pattern"]
    assert cache["pattern", -1] is cache["pattern", 2]
    assert cache.stack("pattern").shape[:2] == (3, 1)
    with pytest.raises(KeyError, match="was not cached"):
        cache["resid_post", 0]
    with pytest.raises(KeyError, match="out of range"):
        cache["pattern", 3]
    with pytest.raises(KeyError, match="unknown activation"):
        cache["resid_middle", 0]
    with pytest.raises(KeyError, match="per-layer"):
        cache["pattern"]
    _, cache = m.run_with_cache("hi", names=lambda n: n.endswith("resid_post"))
    assert len(cache) == 3
    assert "blocks.0.attn.hook_rot_q" in m.hook_names and "hook_pos_embed" not in m.hook_names


def test_tokens(course_model):
    m = course_model
    assert m.to_str_tokens("The capital of Texas is") == [
        "<|endoftext|>", "The", " capital", " of", " Texas", " is"]
    assert m.to_string(m.to_tokens("The capital")[0, 1:]) == "The capital"
    assert m.to_single_token(" Austin") == m.to_tokens(" Austin", prepend_bos=False)[0, 0]
    with pytest.raises(ValueError, match="not one"):
        m.to_single_token(" Salt Lake City")
    batch = m.to_tokens(["a b c", "a"])
    assert batch.shape == (2, 4) and batch[1, -1] == m.tokenizer.pad_token_id
    with pytest.raises(TypeError, match="float"):
        m(torch.randn(1, 4))
    with pytest.raises(ValueError, match="batch, pos"):
        m(torch.zeros(1, 1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="longer than"):
        m(torch.zeros(1, m.cfg.n_ctx + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="must lie in"):
        m(torch.tensor([[m.cfg.d_vocab]]))


def test_generate_greedy_matches_argmax_loop(any_model):
    m = any_model
    toks = m.to_tokens("The capital of Texas is")
    out = m.generate(toks, max_new_tokens=5, stop_at_eos=False)
    seq = toks
    with torch.no_grad():
        for _ in range(5):
            seq = torch.cat([seq, m(seq)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(out, seq)
    text = m.generate("The capital of Texas is", max_new_tokens=3)
    assert text.startswith("The capital of Texas is")


def test_config(llama_model, gpt2_model):
    assert (llama_model.cfg.n_heads, llama_model.cfg.n_kv_heads, llama_model.cfg.d_head) == (4, 2, 16)
    assert llama_model.cfg.normalization_type == "RMS"
    assert gpt2_model.cfg.positional_embedding_type == "standard"
    assert gpt2_model.W_U.shape == (64, gpt2_model.cfg.d_vocab)
    assert gpt2_model.W_Q.shape == (3, 4, 64, 16)
    assert llama_model.W_K.shape == (3, 2, 64, 16)
    assert not hasattr(llama_model, "W_pos")  # rotary models have no position embedding
    assert gpt2_model.W_pos.shape == (64, 64)


def test_attention_by_hand_matches_the_model(any_model):
    """mechinterp_course.attention recomputes every attention internal from the weights."""
    from mechinterp_course.attention import attention_layer
    m = any_model
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens_of(m))
    for layer in range(m.cfg.n_layers):
        mine = attention_layer(m, layer, cache["ln1", layer])
        for name, value in mine.items():
            if name == "attn_scores":  # compare where unmasked; masked entries differ by design
                keep = torch.isfinite(value)
                torch.testing.assert_close(value[keep], cache[name, layer][keep], atol=1e-4,
                                           rtol=1e-4)
            else:
                torch.testing.assert_close(value, cache[name, layer], atol=1e-5, rtol=1e-4)


def test_hand_written_kv_cache_matches_generate(any_model):
    from mechinterp_course import kvcache
    m = any_model
    toks = m.to_tokens(TEXT)[:, :12]
    want = m.generate(toks, max_new_tokens=6, stop_at_eos=False)
    assert torch.equal(kvcache.generate_with_cache(m, toks, 6), want)
    assert torch.equal(kvcache.generate_without_cache(m, toks, 6), want)
    cache = kvcache.KVCache(m.cfg.n_layers)
    logits = kvcache.forward_with_cache(m, toks[:, :7], cache)
    logits = torch.cat([logits, kvcache.forward_with_cache(m, toks[:, 7:], cache)], dim=1)
    torch.testing.assert_close(logits, m(toks), atol=1e-4, rtol=1e-4)
    assert cache.nbytes() == kvcache.cache_bytes(m.cfg.n_layers, m.cfg.n_kv_heads, m.cfg.d_head,
                                                 12, bytes_per_value=4, batch=2)


def test_a_builtin_is_a_hook_of_one_argument(course_model):
    """torch.zeros_like and torch.neg have no readable signature; given as hooks they get the
    activation alone, as a lambda of one argument would."""
    toks = course_model.to_tokens("The capital of Texas is")
    with torch.no_grad():
        for builtin in (torch.zeros_like, torch.neg):
            with course_model.hooks({("mlp_out", 1): builtin}):
                got = course_model(toks)
            with course_model.hooks({("mlp_out", 1): lambda x, f=builtin: f(x)}):
                want = course_model(toks)
            torch.testing.assert_close(got, want, atol=0, rtol=0)
        assert not torch.allclose(got, course_model(toks), atol=1e-3)
