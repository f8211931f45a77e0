"""The SAE label sweep behind chapter 06's "is there a latent per label?": a tiny rerun, and the
shipped table's consistency."""

import json
import os

import pytest

from mechinterp_course import sae_sweep


def test_sae_sweep_smoke_writes_inside_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = sae_sweep.main(["--small", "--out", str(tmp_path / "table.json")])
    runs = json.loads(out.read_text())["runs"]
    assert len(runs) == 1 and runs[0]["site"] == ["resid_post", 1]
    row = runs[0]
    assert row["detected"] == sum(a >= sae_sweep.DETECTS for a in row["aurocs"].values())
    assert row["labels"] == len(row["aurocs"]) > 5 and 0 < row["l0"] <= row["k"]
    assert sorted(os.listdir(tmp_path)) == ["sae_activations", "table.json"]


def test_label_aurocs_score_a_planted_detector(course_model):
    # an "SAE" whose first latent is the label itself must score 1.0 on that label
    import torch

    from mechinterp_course import neurons
    data = neurons.collect(course_model, docs_per_family=2, seed=300, site=("resid_post", 1),
                           skip_first=1)
    labels = data.token_labels()
    name, target = next(iter(labels.items()))
    target = target.float()

    class Planted(sae_sweep.sae.SAE):
        def encode(self, x):
            return torch.stack([target, torch.zeros_like(target)], dim=1)
    aucs = sae_sweep.label_aurocs(Planted(course_model.cfg.d_model, 2, k=1), data.acts, labels)
    assert aucs[name] == 1.0 and all(0.0 <= a <= 1.0 for a in aucs.values())


@pytest.fixture(scope="module")
def table():
    return sae_sweep.load_results()


def test_shipped_sweep_covers_the_grid(table):
    got = sorted((tuple(r["site"]), r["width"], r["k"], r["seed"]) for r in table["runs"])
    want = sorted((s, w, k, seed) for s in sae_sweep.SITES for w in sae_sweep.WIDTHS
                  for k in sae_sweep.KS for seed in sae_sweep.SEEDS)
    assert got == want


def test_shipped_sweep_counts_what_its_aurocs_say(table):
    for r in table["runs"]:
        assert r["detected"] == sum(a >= table["meta"]["detects"] for a in r["aurocs"].values())
        assert r["labels"] == len(r["aurocs"]) == 17
        assert 0 < r["fve"] <= 1 and 0 < r["l0"] <= r["k"] and 0 <= r["dead"] <= 1


def test_shipped_sweep_has_its_null_for_every_site_width_and_seed(table):
    got = sorted((tuple(r["site"]), r["width"], r["seed"]) for r in table["nulls"])
    want = sorted((s, w, seed) for s in sae_sweep.SITES for w in sae_sweep.WIDTHS
                  for seed in sae_sweep.SEEDS)
    assert got == want
    for r in table["nulls"]:
        assert r["detected"] == sum(a >= table["meta"]["detects"] for a in r["aurocs"].values())
        assert r["labels"] == len(r["aurocs"]) == 17
    assert "cpu_capability" in table["meta"] and "cpu" in table["meta"]
    spread = table["meta"]["cross_kernel"]  # measured, for chapter 06's tolerance
    assert spread["saes"] >= 20 and spread["kernel_sets"][0] == table["meta"]["cpu_capability"]


def test_null_aurocs_grow_with_the_number_of_directions(course_model):
    """The null is the best of `width` random directions: more directions, a higher best."""
    from mechinterp_course import neurons
    data = neurons.collect(course_model, docs_per_family=2, seed=300, site=("resid_post", 1),
                           skip_first=1)
    labels = data.token_labels()
    few = sae_sweep.null_aurocs(data.acts, labels, 4, seed=0)
    many = sae_sweep.null_aurocs(data.acts, labels, 256, seed=0)
    assert all(0.0 <= a <= 1.0 for a in few.values())
    assert sum(many.values()) > sum(few.values())
    assert sae_sweep.null_aurocs(data.acts, labels, 4, seed=0) == few  # a seed repeats it


def test_kernel_spread_is_the_largest_difference_and_needs_two_kernel_sets():
    row = dict(site=["resid_post", 1], width=128, k=32, seed=0, fve=0.95, l0=32.0, detected=9,
               aurocs={"a": 0.96, "b": 0.90})
    other_row = {**row, "fve": 0.948, "detected": 8, "aurocs": {"a": 0.949, "b": 0.905}}
    null = dict(site=["resid_post", 1], width=128, seed=0, detected=8, aurocs={})
    table = {"meta": {"cpu_capability": "AVX512"}, "runs": [row], "nulls": [null]}
    other = {"meta": {"cpu_capability": "DEFAULT"}, "runs": [other_row, {**row, "width": 256}],
             "nulls": [{**null, "detected": 7}]}
    spread = sae_sweep.kernel_spread(table, other)
    assert spread == {"kernel_sets": ["AVX512", "DEFAULT"], "saes": 1, "nulls": 1, "fve": 0.002,
                      "l0": 0.0, "detected": 1, "auroc": 0.011, "null_detected": 1}
    with pytest.raises(ValueError, match="kernel set"):
        sae_sweep.kernel_spread(table, {**other, "meta": {"cpu_capability": "AVX512"}})
    with pytest.raises(ValueError, match="share no SAE"):
        sae_sweep.kernel_spread(table, {**other, "runs": [{**row, "seed": 5}]})
