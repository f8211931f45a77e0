"""The copying task, the small-model training behind chapter 08's knobs, and the shipped table."""

import json

import pytest
import torch

from mechinterp_course import provenance, sweep


def test_copy_batch_labels_only_the_predictable_copy():
    g = torch.Generator().manual_seed(0)
    tokens, labels = sweep.copy_batch(g, 64)
    assert tokens.shape == labels.shape == (64, 1 + sweep.LENGTH)
    assert (tokens[:, 0] == sweep.BOS).all() and (tokens[:, 1:] >= 2).all()
    for row in range(64):
        where = (labels[row] != -100).nonzero().flatten()
        assert len(where) >= 3  # segments of at least 4 tokens: 3 predictable
        n = None
        for offset in range(4, 20):  # the copy's distance is the segment's length
            if (tokens[row, where - offset] == labels[row, where]).all():
                n = offset
                break
        assert n is not None
        assert torch.equal(labels[row, where], tokens[row, where])
        first = int(where[0]) - 1  # the copy's first token is left unlabelled
        assert labels[row, first] == -100 and tokens[row, first] == tokens[row, first - n]


def test_induction_offsets_find_sharp_and_late_heads():
    n, size = 6, 13
    sharp, late = torch.zeros(1, 1, size, size), torch.zeros(1, 1, size, size)
    sharp[..., 0], late[..., 0] = 1, 1
    for i in range(n):
        q = n + 1 + i
        sharp[0, 0, q] = 0
        sharp[0, 0, q, 2 + i] = 1
        late[0, 0, q] = 0
        late[0, 0, q, min(q, 4 + i)] = 1
    s = sweep.induction_offsets(torch.cat([sharp, late], dim=1), n)  # (2 heads, offsets)
    zero = 3  # offsets run from -3
    assert s[0, zero] == 1 and s[0].sum() == 1
    assert s[1, zero + 2] == 1 and s[1, zero] == 0


def test_training_is_deterministic_and_measured():
    knobs = sweep.Knobs(n_layers=2, n_heads=2, d_model=16, steps=20, norm="post")
    model, a = sweep.train(knobs, log_every=10, progress=False)
    _, b = sweep.train(knobs, log_every=10, progress=False)
    assert [s for s, _ in a["history"]] == [10, 20]
    assert a["history"] == b["history"]
    assert len(a["induction"]) == 2 and len(a["induction"][0]) == 2
    assert len(a["ablated_second_copy_loss"]) == 2 and len(a["induction_offsets"][0][0]) == 10
    assert not model.config.do_layer_norm_before


def test_shipped_table_covers_the_grid():
    runs = sweep.load_results()
    assert [sweep.Knobs(**r["knobs"]) for r in runs] == sweep.grid()
    for r in runs:
        assert [s for s, _ in r["history"]] == list(range(250, 3001, 250))


@pytest.mark.slow
def test_shipped_table_reproduces():
    """Rerunning the start of one configuration, on one thread as the table was made, gives its
    logged loss again (to a tolerance: other processors may round differently)."""
    record = sweep.load_results()[0]
    knobs = sweep.Knobs(**{**record["knobs"], "steps": 250})
    threads = torch.get_num_threads()
    torch.set_num_threads(sweep.THREADS)
    try:
        _, rerun = sweep.train(knobs, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert abs(rerun["history"][0][1] - record["history"][0][1]) < 0.02


def test_rotary_knob_trains_a_llama_and_measures_it():
    knobs = sweep.Knobs(n_layers=2, n_heads=2, d_model=16, steps=20, positions="rotary")
    model, a = sweep.train(knobs, log_every=10, progress=False)
    _, b = sweep.train(knobs, log_every=10, progress=False)
    assert model.config.model_type == "llama" and a["history"] == b["history"]
    assert len(a["ablated_second_copy_loss"]) == 2 and len(a["previous_token"][1]) == 2
    assert a["knobs"]["positions"] == "rotary" and "rotary" in knobs.name()
    assert {k.norm for k in sweep.grid(positions="rotary")} == {"pre"}
    with pytest.raises(ValueError, match="norm='pre'"):
        sweep.make_model(sweep.Knobs(norm="post", positions="rotary"))
    with pytest.raises(ValueError, match="positions must be"):
        sweep.make_model(sweep.Knobs(positions="alibi"))


def test_gpt2_knob_trains_a_gpt2_and_measures_it():
    """Learned positions and pre-norm, like the OPT grid's pre-norm half, in another
    implementation: what tells the norm's place from OPT's own set-up."""
    knobs = sweep.Knobs(n_layers=2, n_heads=2, d_model=16, steps=20, positions="gpt2")
    model, a = sweep.train(knobs, log_every=10, progress=False)
    _, b = sweep.train(knobs, log_every=10, progress=False)
    assert model.config.model_type == "gpt2" and a["history"] == b["history"]
    assert len(a["ablated_second_copy_loss"]) == 2 and len(a["induction"][1]) == 2
    assert a["ablated_second_copy_loss"] != [a["second_copy_loss"]] * 2  # the ablation bites
    assert "gpt2" in knobs.name() and {k.norm for k in sweep.grid(positions="gpt2")} == {"pre"}
    with pytest.raises(ValueError, match="GPT-2 models normalise before attention only"):
        sweep.make_model(sweep.Knobs(norm="post", positions="gpt2"))


@pytest.mark.parametrize("positions,path", [("rotary", sweep.RESULTS_ROTARY),
                                            ("gpt2", sweep.RESULTS_GPT2)])
def test_shipped_table_of_another_family_covers_its_grid_and_reproduces(positions, path):
    runs = sweep.load_results(path)
    assert [sweep.Knobs(**r["knobs"]) for r in runs] == sweep.grid(positions=positions)
    row = runs[6]  # 2 layers, 1 head, seed 0
    assert row["knobs"]["n_layers"] == 2 and row["knobs"]["n_heads"] == 1
    threads = torch.get_num_threads()
    torch.set_num_threads(sweep.THREADS)
    try:
        _, rerun = sweep.train(sweep.Knobs(**{**row["knobs"], "steps": 250}), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert abs(rerun["history"][0][1] - row["history"][0][1]) < 0.02

SHIPPED = [[250, 0.9229], [500, 0.0648]]
GOOD = [[25, 4.15]] + [[s, 3.9] for s in range(50, 226, 25)] + [[250, 0.9229], [275, 0.37],
                                                                 [500, 0.0701]]


def test_rerun_problems_accepts_a_reproduction_and_names_what_is_off():
    """Chapter 08's reproducibility assert: it passes on a rerun within the measured spread and
    fails on each way a rerun can be wrong, including one that never leaves the plateau."""
    assert sweep.rerun_problems(GOOD, SHIPPED) == []
    # measured on an Intel Xeon against the table's AMD EPYC: the same through step 250
    intel = GOOD[:-1] + [[500, 0.1076]]
    assert sweep.rerun_problems(intel, SHIPPED) == []
    plateau = [[s, 4.1] for s in range(25, 501, 25)]
    assert "never learned" in " ".join(sweep.rerun_problems(plateau, SHIPPED))
    late = [[s, 4.1 if s < 400 else 0.07] for s in range(25, 501, 25)]
    assert any("learned to copy at step 400" in p for p in sweep.rerun_problems(late, SHIPPED))
    drifted = [[s, v + 0.2 if s == 500 else v] for s, v in GOOD]
    assert any("step 500" in p for p in sweep.rerun_problems(drifted, SHIPPED))
    nan = [[s, float("nan") if s == 250 else v] for s, v in GOOD]
    assert any("step 250" in p for p in sweep.rerun_problems(nan, SHIPPED))
    assert "plateau" in " ".join(sweep.rerun_problems([[25, 1.0]] + GOOD[1:], SHIPPED))


def test_provenance_names_what_differs():
    here = provenance.machine()
    assert {"cpu_capability", "cpu", "torch", "transformers", "threads"} <= set(here)
    assert provenance.differences(here) == []
    old = {"torch": here["torch"], "threads": here["threads"]}  # a table from before
    message = provenance.mismatch_message("the rerun", old)
    assert "cpu_capability: not recorded" in message and "cpu: not recorded" in message
    elsewhere = "AVX2" if here["cpu_capability"] == "AVX512" else "AVX512"  # not this one
    other = {**here, "cpu_capability": elsewhere, "cpu": "Some Other CPU"}
    assert f"{elsewhere} there" in provenance.mismatch_message("the rerun", other)
    assert "more likely a change of code" in provenance.mismatch_message("x", here)


@pytest.mark.parametrize("path", [sweep.RESULTS, sweep.RESULTS_ROTARY, sweep.RESULTS_GPT2],
                         ids=["learned", "rotary", "gpt2"])
def test_every_shipped_sweep_table_records_the_machine_that_made_it(path):
    """A rerun elsewhere can name what differs (`provenance.mismatch_message`) only if the table
    says where it was made: kernel set, CPU, library versions and threads."""
    meta = json.loads(path.read_text())["meta"]
    recorded = {"cpu_capability", "cpu", "torch", "transformers", "numpy", "threads", "date"}
    assert recorded <= set(meta), f"{path.name} lacks {sorted(recorded - set(meta))}"
    assert meta["threads"] == sweep.THREADS


def test_sweep_refuses_no_seeds_and_stops_cleanly_on_ctrl_c(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--seeds", "0", "--out", str(tmp_path / "t.json")])
    assert stop.value.code == 2 and "--seeds must be at least 1" in capsys.readouterr().err
    calls = []

    def one_then_ctrl_c(k):
        if calls:
            raise KeyboardInterrupt
        calls.append(k)
        return None, {"run": 1}
    monkeypatch.setattr(sweep, "train", one_then_ctrl_c)
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--seeds", "1", "--out", str(tmp_path / "t.json")])
    assert stop.value.code == 130 and "stopped after 1 runs" in capsys.readouterr().err
    assert json.loads((tmp_path / "t.json").read_text())["runs"] == [{"run": 1}]
    assert not list(tmp_path.glob("*.tmp"))

