"""The memory planner is the cache it plans: its sizes equal a real cache's, name by name, on every
family; it plans a model from its config alone; run_with_cache warns before a cache that cannot
fit, and not before one that can."""

import warnings

import pytest
import torch
import transformers as T

from mechinterp_course import planner
from mechinterp_course.planner import MemoryWarning, plan

import test_families


@pytest.fixture(scope="module", params=sorted(test_families.SUPPORTED))
def family(request, tokenizer):
    return test_families.make_family(request.param, tokenizer)


def test_the_plan_is_the_cache(family):
    name, m, _ = family
    toks = m.to_tokens(["The capital of Texas is Austin.", "def f(x):"])
    batch, pos = toks.shape
    with torch.no_grad():
        _, cache = m.run_with_cache(toks)
    real = {}
    for full, x in cache.items():
        short = planner.SHORT_NAMES.get(full.split(".", 2)[-1], full)
        real[short] = real.get(short, 0) + x.numel() * x.element_size()
    planned = plan(m, batch=batch, pos=pos)
    assert planned.per_name == real, name
    assert planned.weights == sum(p.numel() * p.element_size() for p in m.hf.parameters())


def test_a_config_is_planned_without_its_weights(family):
    name, m, _ = family
    from_config = plan(m.hf.config, batch=2, pos=16)
    from_model = plan(m, batch=2, pos=16)
    assert from_config.per_name == from_model.per_name
    assert from_config.weights == from_model.weights


def test_a_big_model_in_seconds_and_in_its_dtype():
    """Llama-3-70B's shape, from its config: 70.6e9 parameters, 2 bytes each in bfloat16; one
    sequence of 8192 tokens caches 64 heads x 8192^2 scores a layer, twice (scores, pattern)."""
    cfg = T.LlamaConfig(num_hidden_layers=80, hidden_size=8192, num_attention_heads=64,
                        num_key_value_heads=8, intermediate_size=28672, vocab_size=128256,
                        max_position_embeddings=8192)
    p = plan(cfg, dtype=torch.bfloat16)
    assert p.pos == 8192 and p.dtype == torch.bfloat16
    assert p.weights == 2 * 70_553_706_496
    assert p.per_name["pattern"] == 80 * 64 * 8192 ** 2 * 2
    assert p.full_cache > p.per_name["pattern"] * 2
    assert "GiB" in str(p) and "pattern" in str(p)


def test_bad_sizes_are_refused(course_model):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            plan(course_model, batch=bad)
        with pytest.raises(ValueError):
            plan(course_model, pos=bad)


def test_run_with_cache_warns_before_a_cache_that_cannot_fit(course_model, monkeypatch):
    toks = torch.zeros(64, 256, dtype=torch.long)  # a full cache of about 200 MiB
    need = plan(course_model, batch=64, pos=256).full_cache
    assert need > 64 << 20
    monkeypatch.setattr(planner, "free_bytes", lambda device: need // 2)
    with pytest.warns(MemoryWarning, match="cache fewer names"), torch.no_grad():
        course_model.run_with_cache(toks)
    with warnings.catch_warnings(), torch.no_grad():  # one name of one token: no warning
        warnings.simplefilter("error", MemoryWarning)
        course_model.run_with_cache(toks[:, :1], names=[("resid_post", 0)])
    monkeypatch.setattr(planner, "free_bytes", lambda device: need * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryWarning)
        with torch.no_grad():
            course_model.run_with_cache(toks[:8])


def test_a_cache_left_unmade_by_bad_input_leaves_no_cache_behind(course_model):
    with pytest.raises(TypeError):
        course_model.run_with_cache(3.5)
    assert course_model._cache is None and course_model._cache_filter is None
