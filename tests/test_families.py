"""Every architecture family the wrapper accepts, proven equal to the Hugging Face model it wraps,
on a tiny randomly initialised model built from the family's config class (no download); and
every family it does not accept refused with a clear error, never wrapped into wrong numbers."""

import copy

import pytest
import torch
import transformers as T
from transformers.activations import ACT2FN

from mechinterp_course import hooked
from mechinterp_course.hooked import HookedModel, block_part

ATOL = 1e-5
LLAMA_LIKE = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=128, max_position_embeddings=128,
                  head_dim=16)
NEOX = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=128)  # rotary on a quarter of each head, by default
OPT = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, ffn_dim=128,
           max_position_embeddings=128, word_embed_proj_dim=64)
SUPPORTED = {
    "gpt2": (T.GPT2Config, T.GPT2LMHeadModel,  # learned positions, Conv1D weights (in, out)
             dict(n_layer=2, n_embd=64, n_head=4, n_positions=128, n_inner=128)),
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, LLAMA_LIKE),  # Llama 2 and 3
    "gpt_neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM, NEOX),  # Pythia: parallel blocks
    "gpt_neox_sequential": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM,
                            {**NEOX, "use_parallel_residual": False}),
    "mistral": (T.MistralConfig, T.MistralForCausalLM, LLAMA_LIKE),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, LLAMA_LIKE),  # biases on q, k and v
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, LLAMA_LIKE),  # q and k norms
    "gemma": (T.GemmaConfig, T.GemmaForCausalLM, LLAMA_LIKE),  # scaled embeddings, GeGLU
    # sandwich norms, capped scores (capped hard here, so that it shows), a sliding window
    # shorter than the test's prompts, capped logits
    "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM,
               {**LLAMA_LIKE, "attn_logit_softcapping": 1.0, "sliding_window": 4}),
    "gemma3_text": (T.Gemma3TextConfig, T.Gemma3ForCausalLM,  # and q and k norms
                    {**LLAMA_LIKE, "sliding_window": 4}),
    "olmo2": (T.Olmo2Config, T.Olmo2ForCausalLM, LLAMA_LIKE),  # norms after the sublayers only
    "phi3": (T.Phi3Config, T.Phi3ForCausalLM, LLAMA_LIKE),  # fused qkv and gate-up
    "gptj": (T.GPTJConfig, T.GPTJForCausalLM,  # parallel, one norm, interleaved partial rotary
             dict(n_layer=2, n_embd=64, n_head=4, n_positions=128, rotary_dim=8)),
    # learned positions with an offset of 2, q scaled before attention, a flattened MLP
    "opt": (T.OPTConfig, T.OPTForCausalLM, OPT),
}
REFUSED = {  # OPT-350m: norms after the residual sums, and embeddings projected in and out
    "opt_post_norm": (T.OPTConfig, T.OPTForCausalLM, {**OPT, "do_layer_norm_before": False}),
    "opt_projected": (T.OPTConfig, T.OPTForCausalLM, {**OPT, "word_embed_proj_dim": 32}),
}


def build(family, tokenizer):
    config_class, model_class, sizes = {**SUPPORTED, **REFUSED}[family]
    torch.manual_seed(0)
    config = config_class(**sizes, vocab_size=len(tokenizer), bos_token_id=0, eos_token_id=0,
                          pad_token_id=0, initializer_range=0.2)
    model = model_class(config).eval()
    with torch.no_grad():  # biases and Gemma's norm offsets start at zero: a test must see them
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0, 0.2)
    return model


def eager_copy(hf):
    ref = type(hf)(copy.deepcopy(hf.config))
    ref.load_state_dict(hf.state_dict())
    ref.set_attn_implementation("eager")
    return ref.eval()


def make_family(name, tokenizer):
    """(name, the wrapped model, an eager copy of the model it wraps)."""
    hf = build(name, tokenizer)
    try:
        model = HookedModel(hf, tokenizer, name)
    except NotImplementedError as e:  # an older transformers, refused as it should be
        if "upgrade transformers" not in str(e):
            raise
        pytest.skip(str(e))
    return name, model, eager_copy(hf)


@pytest.fixture(scope="module", params=sorted(SUPPORTED))
def family(request, tokenizer):
    return make_family(request.param, tokenizer)


def tokens(model):
    return model.to_tokens(["The capital of Texas is Austin. When Mary and John went",
                            "def add(x, y):\n    return x + y"])[:, :12]


def test_the_wrapper_equals_the_model_it_wraps(family):
    name, m, ref = family
    toks = tokens(m)
    with torch.no_grad():
        plain = m(toks)
        logits, cache = m.run_with_cache(toks)
        out = ref(toks, output_hidden_states=True, output_attentions=True)
    assert torch.equal(plain, logits), f"{name}: run_with_cache changed the logits"
    torch.testing.assert_close(logits, out.logits, atol=ATOL, rtol=1e-5)
    n = m.cfg.n_layers
    for layer in range(n):
        if layer < n - 1:
            torch.testing.assert_close(cache["resid_post", layer], out.hidden_states[layer + 1],
                                       atol=ATOL, rtol=0)
        pattern = cache["pattern", layer]
        torch.testing.assert_close(pattern, out.attentions[layer], atol=ATOL, rtol=0)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]))
        mid = cache["resid_pre", layer] + cache["attn_out", layer]
        torch.testing.assert_close(mid, cache["resid_mid", layer], atol=ATOL, rtol=0)
        torch.testing.assert_close(mid + cache["mlp_out", layer], cache["resid_post", layer],
                                   atol=ATOL, rtol=0)
        act = ACT2FN[m.cfg.act_fn](cache["mlp_pre", layer])
        if m.cfg.architecture in ("llama", "phi3"):  # gated
            act = act * cache["mlp_pre_linear", layer]
        torch.testing.assert_close(act, cache["mlp_post", layer], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(cache["ln_final"], out.hidden_states[n], atol=ATOL, rtol=0)
    # the embedding, scale included, is where the residual stream starts
    torch.testing.assert_close(m.W_E[toks], cache["embed"], atol=ATOL, rtol=1e-5)
    start = cache["embed"]
    if m.cfg.positional_embedding_type == "standard":  # OPT: W_pos row i is position i
        torch.testing.assert_close(cache["pos_embed"][0], m.W_pos[:toks.shape[1]], atol=0, rtol=0)
        start = start + cache["pos_embed"]
    torch.testing.assert_close(start, cache["resid_pre", 0], atol=0, rtol=0)


def attention_input(m, cache, layer):
    """What attention reads: ln1's output, or the residual stream itself where there is no ln1
    (OLMo 2)."""
    if block_part(m.parts, m.parts["blocks"][layer], "ln1") is None:
        with pytest.raises(KeyError, match="has no ln1"):
            cache["ln1", layer]
        return cache["resid_pre", layer]
    return cache["ln1", layer]


def test_attention_weights_rebuild_q_k_v_from_ln1(family):
    name, m, _ = family
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens(m))
        for layer in range(m.cfg.n_layers):
            w, x = m.attention_weights(layer), attention_input(m, cache, layer)
            for key in ("q", "k", "v"):
                rebuilt = torch.einsum("bpd,hde->bphe", x, w[f"W_{key.upper()}"]) + \
                    w[f"b_{key.upper()}"]
                torch.testing.assert_close(rebuilt, cache[key, layer], atol=ATOL, rtol=1e-4,
                                           msg=lambda s: f"{name} {key}{layer}: {s}")
            out = torch.einsum("bqhe,hed->bqd", cache["z", layer], w["W_O"]) + w["b_O"]
            if m.cfg.block_norms != "pre":  # Gemma 2, OLMo 2: normalised before it is added
                out = block_part(m.parts, m.parts["blocks"][layer], "attn_out")(out)
            torch.testing.assert_close(out, cache["attn_out", layer], atol=ATOL, rtol=1e-4)


def test_zeroing_a_heads_z_equals_zeroing_its_slice_of_o_proj(family):
    name, m, _ = family
    toks, layer, head, dh = tokens(m), 1, 2, m.cfg.d_head

    def zero(z):
        z[:, :, head] = 0
    with torch.no_grad(), m.hooks({("z", layer): zero}):
        hooked_logits = m(toks)
    ref = eager_copy(m.hf)
    out_proj = (ref.gpt_neox.layers[layer].attention.dense if name.startswith("gpt_neox")
                else ref.transformer.h[layer].attn.out_proj if name == "gptj"
                else ref.model.decoder.layers[layer].self_attn.out_proj if name == "opt"
                else ref.transformer.h[layer].attn.c_proj if name == "gpt2"
                else ref.model.layers[layer].self_attn.o_proj)
    with torch.no_grad():
        if name == "gpt2":  # Conv1D: (in, out)
            out_proj.weight[head * dh:(head + 1) * dh] = 0
        else:
            out_proj.weight[:, head * dh:(head + 1) * dh] = 0
        want = ref(toks).logits
    torch.testing.assert_close(hooked_logits, want, atol=ATOL, rtol=1e-5)
    assert not torch.allclose(hooked_logits, m(toks), atol=1e-3), f"{name}: nothing changed"


@pytest.mark.parametrize("key", ["q", "k"])
def test_a_hook_on_q_or_k_reaches_its_head_only(family, key):
    """Zeroing one head's q (or k) before rotary makes that head's scores zero, so it attends
    evenly over the prefix, and leaves the other heads' patterns alone (for GPT-NeoX this
    writes back into a slice of the fused q/k/v projection)."""
    name, m, _ = family
    toks, head = tokens(m), 1
    kv_head = head // (m.cfg.n_heads // m.cfg.n_kv_heads) if key == "k" else head

    def zero(x):
        x = x.clone()
        x[:, :, kv_head] = 0
        return x
    with torch.no_grad():
        _, clean = m.run_with_cache(toks, names=[("pattern", 0)])
        with m.hooks({(key, 0): zero}):
            _, cache = m.run_with_cache(toks, names=[("pattern", 0)])
    pattern, before = cache["pattern", 0], clean["pattern", 0]
    changed = [h for h in range(m.cfg.n_heads) if not torch.allclose(pattern[:, h], before[:, h])]
    for h in [head] if name == "olmo2" else changed:
        seen = (before[:, h] > 0).float()  # the causal prefix, or the sliding window
        torch.testing.assert_close(pattern[:, h], seen / seen.sum(-1, keepdim=True), atol=ATOL,
                                   rtol=0, msg=lambda s: f"{name}: head {h} {s}")
    if name == "olmo2":  # its q and k norms span all heads: the others move too
        return
    assert head in changed and len(changed) == m.cfg.n_heads // (
        m.cfg.n_kv_heads if key == "k" else m.cfg.n_heads), f"{name}: heads changed {changed}"


def test_resid_mid_and_ln2_where_blocks_are_parallel_or_post_normed(family):
    """ln2 is what the MLP reads and resid_mid is resid_pre + attn_out, the sum the MLP's output
    is added to. In a parallel block (GPT-NeoX, Pythia; GPT-J) the MLP reads ln2(resid_pre) (GPT-J:
    ln1's output, it has no ln2), so a patch of resid_mid is kept and the MLP still sees the
    block's input; OLMo 2 has no ln2 (its MLP reads resid_mid itself) and says so; Gemma 2's
    mlp_out is normalised before it is added."""
    name, m, _ = family
    toks, layer = tokens(m), 0
    block = m.parts["blocks"][layer]
    parallel = getattr(block, "use_parallel_residual", name == "gptj")
    ln2 = block_part(m.parts, block, "ln2")
    mlp, after = block_part(m.parts, block, "mlp"), block_part(m.parts, block, "mlp_out")
    if name == "opt":  # no MLP module: the block's fc1 and fc2
        mlp = after = torch.nn.Sequential(block.fc1, block.activation_fn, block.fc2)
    with torch.no_grad():
        _, clean = m.run_with_cache(toks)
        read = clean["resid_pre" if parallel else "resid_mid", layer]
        if ln2 is None:  # OLMo 2's MLP reads resid_mid itself; GPT-J's reads ln1's output
            with pytest.raises(KeyError, match="has no ln2"):
                clean["ln2", layer]
            ln2 = block.ln_1 if name == "gptj" else torch.nn.Identity()
        else:
            torch.testing.assert_close(clean["ln2", layer], ln2(read), atol=ATOL, rtol=0)
        patch = clean["resid_mid", layer].flip(0)
        with m.hooks({("resid_mid", layer): lambda x: patch}):
            _, cache = m.run_with_cache(toks)
        mlp_out = mlp(ln2(clean["resid_pre", layer] if parallel else patch))
        if after is not mlp:
            mlp_out = after(mlp_out)
        torch.testing.assert_close(cache["resid_post", layer], patch + mlp_out, atol=ATOL, rtol=0)


@pytest.mark.parametrize("family_name", sorted(REFUSED))
def test_other_families_are_refused_by_name(family_name, tokenizer):
    hf = build(family_name, tokenizer)
    with pytest.raises(NotImplementedError, match="'opt' is not supported with (do_layer_norm"
                                                   "_before=False|word_embed_proj_dim 32)"):
        HookedModel(hf, tokenizer)


def test_an_unknown_family_is_refused_by_name(tokenizer):
    config = T.BloomConfig(n_layer=2, hidden_size=64, n_head=4, vocab_size=len(tokenizer))
    with pytest.raises(NotImplementedError, match="'bloom' is not supported yet"):
        HookedModel(T.BloomForCausalLM(config).eval(), tokenizer)


def test_opt_unscaled_q_gives_the_scores(tokenizer):
    """OPT multiplies q by 1/sqrt(d_head) before attention and tells attention not to scale;
    hook_q is taken before that, as TransformerLens defines it, so scores = q.k / sqrt(d_head)
    (a q hooked after the scaling would be off by sqrt(d_head) = 4 here)."""
    _, m, _ = make_family("opt", tokenizer)
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens(m))
    for layer in range(m.cfg.n_layers):
        scores = torch.einsum("bqhe,bkhe->bhqk", cache["q", layer], cache["k", layer])
        scores = scores / m.cfg.d_head ** 0.5
        causal = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
        torch.testing.assert_close(scores[..., causal], cache["attn_scores", layer][..., causal],
                                   atol=1e-4, rtol=1e-4)


def test_opt_hooks_see_batch_and_positions(tokenizer):
    """OPT runs its MLP on (batch * pos, d_model); ln2, mlp_pre, mlp_post and mlp_out are given
    to hooks and caches as (batch, pos, d), and a patch of one position lands there only."""
    _, m, _ = make_family("opt", tokenizer)
    toks = tokens(m)
    with torch.no_grad():
        _, clean = m.run_with_cache(toks)
        for key in ("ln2", "mlp_pre", "mlp_post", "mlp_out"):
            assert clean[key, 0].shape[:2] == toks.shape, key

        def bump(x):
            x = x.clone()
            x[1, 3] += 1.0
            return x
        with m.hooks({("mlp_out", 0): bump}):
            _, cache = m.run_with_cache(toks)
    moved = (cache["resid_post", 0] - clean["resid_post", 0]).abs().sum(-1) > 1e-4
    assert moved.nonzero().tolist() == [[1, 3]]


def test_post_norms_matter(tokenizer, monkeypatch):
    """OLMo 2 (like Gemma 2) has Llama's module names but norms after its sublayers: read by
    Llama's mapping (attn_out and mlp_out the sublayers' own outputs), its residual stream would
    not add up."""
    hf = build("olmo2", tokenizer)
    llama_mapping = {"attn_out": "attn", "mlp_out": "mlp"}
    real = hooked.block_part
    monkeypatch.setattr(hooked, "block_part",
                        lambda parts, block, what: real(parts, block, llama_mapping.get(what, what)))
    m = HookedModel(hf, tokenizer)
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens(m))
    rebuilt = cache["resid_pre", 0] + cache["attn_out", 0] + cache["mlp_out", 0]
    assert not torch.allclose(rebuilt, cache["resid_post", 0], atol=1e-3)


def test_an_old_gemma_without_a_scaled_embedding_module_is_refused(tokenizer, monkeypatch):
    hf = build("gemma", tokenizer)
    hf.model.embed_tokens = torch.nn.Embedding.from_pretrained(hf.model.embed_tokens.weight)
    with pytest.raises(NotImplementedError, match="upgrade transformers"):
        HookedModel(hf, tokenizer)


@pytest.mark.parametrize("family_name", ["gpt_neox", "qwen3"])
def test_load_model_takes_a_local_folder_of_each_family(family_name, tokenizer, tmp_path):
    import mechinterp_course as mc

    hf = build(family_name, tokenizer)
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    m = mc.load_model(str(tmp_path), device="cpu")
    toks = m.to_tokens("The capital of Texas is")
    with torch.no_grad():
        torch.testing.assert_close(m(toks), hf(toks).logits, atol=ATOL, rtol=1e-5)


def test_the_hand_written_attention_matches_or_refuses(family):
    """attention.attention_layer recomputes a layer from its weights: equal to the cache where
    the family's attention is GPT-2's or Llama's, a clear refusal where it is not."""
    from mechinterp_course import attention

    name, m, _ = family
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens(m))
        if name.startswith("gpt_neox") or name in ("qwen3", "gemma2", "gemma3_text", "olmo2",
                                                    "phi3", "gptj", "opt"):
            with pytest.raises(NotImplementedError, match="run_with_cache"):
                attention.attention_layer(m, 0, attention_input(m, cache, 0))
            return
        for layer in range(m.cfg.n_layers):
            mine = attention.attention_layer(m, layer, cache["ln1", layer])
            rotary = m.cfg.positional_embedding_type == "rotary"
            for key in ("rot_q", "rot_k") * rotary + ("q", "k", "pattern", "z", "attn_out"):
                torch.testing.assert_close(mine[key], cache[key, layer], atol=1e-4, rtol=1e-4,
                                           msg=lambda s: f"{name} {key}{layer}: {s}")


def test_the_hand_written_attention_refuses_past_a_sliding_window(tokenizer):
    from mechinterp_course import attention

    hf = build("mistral", tokenizer)
    hf.config.sliding_window = 4
    m = HookedModel(hf, tokenizer, "mistral")
    with torch.no_grad():
        _, cache = m.run_with_cache(tokens(m))
        short = attention.attention_layer(m, 0, cache["ln1", 0][:, :4])
        torch.testing.assert_close(short["pattern"], cache["pattern", 0][:, :, :4, :4])
        with pytest.raises(NotImplementedError, match="sliding window of 4"):
            attention.attention_layer(m, 0, cache["ln1", 0])


@pytest.mark.parametrize("key", ["mlp_pre", "mlp_post"])
def test_zeroing_a_neuron_equals_zeroing_its_column_of_the_down_projection(family, key):
    """Every family's activation is 0 at 0 (SiLU, GELU), so a neuron zeroed before it (mlp_pre,
    a slice of Phi-3's fused gate/up projection) or after it (mlp_post) writes nothing."""
    name, m, _ = family
    toks, layer, neuron = tokens(m), 1, 5

    def zero(x):
        x = x.clone()
        x[..., neuron] = 0
        return x
    with torch.no_grad(), m.hooks({(key, layer): zero}):
        hooked_logits = m(toks)
    ref = eager_copy(m.hf)
    ref_block = (ref.gpt_neox.layers if name.startswith("gpt_neox") else ref.transformer.h
                 if name in ("gptj", "gpt2") else ref.model.decoder.layers if name == "opt"
                 else ref.model.layers)[layer]
    down = block_part(m.parts, ref_block, "mlp_down")
    with torch.no_grad():
        if name == "gpt2":  # Conv1D: (in, out)
            down.weight[neuron] = 0
        else:
            down.weight[:, neuron] = 0
        want = ref(toks).logits
    torch.testing.assert_close(hooked_logits, want, atol=ATOL, rtol=1e-5)
    assert not torch.allclose(hooked_logits, m(toks), atol=1e-4), f"{name}: nothing changed"


def test_a_model_spread_over_devices_hooks_and_caches_as_one(tokenizer, tmp_path):
    """device_map through accelerate, on CPU: layer 1 offloaded to disk (its weights loaded for
    each forward pass by accelerate's hooks), the rest on the CPU. Logits, the cache and a hook
    are those of the same model on one device."""
    import mechinterp_course as mc

    hf = build("mistral", tokenizer)
    hf.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    whole = mc.load_model(str(tmp_path / "model"), device="cpu")
    placement = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
                 "model.layers.1": "disk", "model.norm": "cpu", "lm_head": "cpu"}
    spread = mc.load_model(str(tmp_path / "model"), device_map=placement,
                           offload_folder=tmp_path / "offload")
    assert spread.hf.hf_device_map["model.layers.1"] == "disk" and spread.cfg.device == "cpu"
    assert next(spread.hf.model.layers[1].parameters()).device.type == "meta"  # not loaded
    toks = tokens(whole)
    with torch.no_grad():
        want, want_cache = whole.run_with_cache(toks)
        got, got_cache = spread.run_with_cache(toks)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-5)
        for key in ("resid_post", "pattern", "z", "mlp_post"):
            torch.testing.assert_close(got_cache[key, 1], want_cache[key, 1], atol=ATOL, rtol=1e-5)

        def zero(z):
            z[:, :, 2] = 0
        for m in (whole, spread):
            with m.hooks({("z", 1): zero}):
                m.patched = m(toks)
        torch.testing.assert_close(spread.patched, whole.patched, atol=ATOL, rtol=1e-5)
        assert not torch.allclose(spread.patched, got, atol=1e-3)
        _, elsewhere = whole.run_with_cache(toks, names=[("resid_post", 0)], device="meta")
    assert elsewhere["resid_post", 0].device.type == "meta"  # gathered where asked


def test_device_and_device_map_are_not_both_given():
    import mechinterp_course as mc

    with pytest.raises(ValueError, match="not both"):
        mc.load_model("course", device="cpu", device_map="auto")
    with pytest.raises(ValueError, match="give a device_map too"):
        mc.load_model("course", offload_folder="offload")


def test_attention_computed_outside_the_interface_is_refused(tokenizer, monkeypatch):
    """Our hook points for q, k, pattern and z live in the attention function transformers
    calls; a family version that computes attention itself (GPT-J before transformers 5) would
    run without them, its patterns silently missing from every cache. Refused by name."""
    hf = build("mistral", tokenizer)
    monkeypatch.setattr(hooked.inspect, "getsource",
                        lambda obj: "def forward(self, x):\n    return self._attn(x)\n")
    with pytest.raises(NotImplementedError, match="computes attention itself"):
        HookedModel(hf, tokenizer)
