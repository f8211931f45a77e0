"""Smoke runs of the benchmark scripts at tiny sizes, so they cannot rot unnoticed."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def test_cache_overhead_smoke():
    import cache_overhead
    text = cache_overhead.main(["--small"])
    assert "plain forward" in text and "run_with_cache, every name" in text
    assert "PyTorch forward hooks" in text


def test_kv_cache_smoke():
    import kv_cache
    text = kv_cache.main(["--small"])
    assert "hand-written cached decoder" in text and "per token (target <= 1.5x)" in text


def test_sae_training_smoke():
    import sae_training
    text = sae_training.main(["--small"])
    assert "mechinterp_course sae.train" in text and "held-out FVE" in text
    assert "latents rescaled by decoder norm" in text


def test_cache_memory_table_counts_every_cached_byte():
    import cache_overhead

    import mechinterp_course as mc
    model = mc.load_model("course", device="cpu")
    text = cache_overhead.memory_table(model, batch=1, seq=8)
    _, cache = model.run_with_cache(model.to_tokens("The capital of Texas is"))
    want = sum(v.numel() * v.element_size() for v in cache.values()) / 2**20
    assert abs(cache_overhead.cache_mebibytes(cache) - want) < 1e-9
    assert "every name" in text and "resid_post" in text and "the model's weights" in text


def test_harness_waits_for_the_device_around_every_timing():
    import harness

    calls = []
    rows = harness.compare({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           reps=3, warmup=1, sync=lambda: calls.append("sync"))
    assert [r["reps"] for r in rows] == [3, 3]
    timed = calls[2:]  # after the warm-up
    assert timed == ["sync", "a", "sync", "sync", "b", "sync"] * 3


def test_benchmarks_refuse_a_missing_gpu_clearly():
    import harness
    import pytest
    import torch

    assert harness.check_device("cpu") == "cpu" and harness.device_label("cpu") == "CPU"
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA GPU"):
            harness.check_device("cuda")


def stand_in_benchmarks(monkeypatch, gpu: bool) -> list:
    """run.py with each benchmark replaced by a stand-in that records the device it was asked
    for, and torch told whether a GPU is present. No GPU is lent to CI, so this is how the GPU
    branch is exercised."""
    import run
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Stand-in GPU")
    monkeypatch.setattr(run, "caching_with_allocator",
                        lambda env, label, device="cpu": calls.append(("cache", device)) or "")
    monkeypatch.setattr(run.kv_cache, "main", lambda argv: calls.append(("kv", argv)) or "")
    monkeypatch.setattr(run.sae_training, "main", lambda argv: calls.append(("sae", argv)) or "")
    monkeypatch.setattr(run, "notebooks", lambda rerun=True: "notebook table")
    monkeypatch.setattr(run.head_patching, "main", lambda argv: calls.append(("heads", argv)) or "")
    monkeypatch.setattr(run, "mc_models_available", lambda name: True)
    return calls


def test_run_repeats_every_benchmark_on_a_gpu_when_one_is_present(monkeypatch, tmp_path):
    import run

    calls = stand_in_benchmarks(monkeypatch, gpu=True)
    out = run.main(["--reuse-notebook-times", "--out", str(tmp_path / "RESULTS.md")])
    text = out.read_text()
    assert out.parent == tmp_path and "## On the GPU (Stand-in GPU)" in text
    assert "GPU: Stand-in GPU." in text
    assert calls == [("cache", "cpu"), ("cache", "cpu"), ("kv", []), ("sae", []), ("heads", []),
                     ("cache", "cuda"), ("kv", ["--device", "cuda"]),
                     ("sae", ["--device", "cuda"])]


def test_run_without_a_gpu_runs_the_cpu_benchmarks_only(monkeypatch, tmp_path):
    import run

    calls = stand_in_benchmarks(monkeypatch, gpu=False)
    text = run.main(["--reuse-notebook-times", "--out", str(tmp_path / "R.md")]).read_text()
    assert "On the GPU" not in text and "GPU: none." in text
    assert all("cuda" not in str(c) for c in calls) and len(calls) == 5


def test_head_patching_smoke():
    import head_patching
    text = head_patching.main(["--small"])
    assert "a forward pass per head" in text and "| capital |" in text and "| continent |" in text


def test_patched_effects_match_attribution_patching_to_first_order():
    """Putting each head's own z back changes nothing; a small change of every head's z moves
    the answer as attribution patching predicts (both measure the same effect)."""
    import head_patching

    import mechinterp_course as mc
    from mechinterp_course import steering
    model = mc.load_model("course", device="cpu")
    tokens, last = steering.prompts(model, ["The capital of Texas is"])
    answers = torch.tensor([model.to_single_token(" Austin")])
    own = steering.last_z(model, tokens, last)[0]  # (n_layers, n_heads, d_head)
    assert head_patching.patched_effects(model, tokens, last, answers, own).abs().max() < 1e-5
    nudged = own + 0.05 * torch.randn(own.shape, generator=torch.Generator().manual_seed(0))
    real = head_patching.patched_effects(model, tokens, last, answers, nudged)
    estimate = steering.head_attributions(model, tokens, last, answers, nudged)
    assert real.abs().max() > 1e-3  # the nudge moves something
    assert head_patching.correlation(real, estimate) > 0.95
