"""The training script: a 20-step smoke run of the real code, resuming, and the stream."""

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mechinterp_course import train


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer
    from mechinterp_course.models import COURSE_MODEL_DIR
    return AutoTokenizer.from_pretrained(COURSE_MODEL_DIR)


def test_tokenizer_is_rebuilt_identically(tokenizer):
    """The shipped tokenizer is exactly what build_tokenizer makes from the world."""
    assert train.build_tokenizer().get_vocab() == tokenizer.get_vocab()
    assert len(tokenizer(" Austin", add_special_tokens=False)["input_ids"]) == 1


def test_batches_are_a_function_of_seed_and_step(tokenizer):
    a = train.batch_tokens(tokenizer, 0, 7, 4, 64)
    assert a.shape == (4, 64)
    assert torch.equal(a, train.batch_tokens(tokenizer, 0, 7, 4, 64))
    assert not torch.equal(a, train.batch_tokens(tokenizer, 0, 8, 4, 64))


@pytest.mark.slow
def test_smoke_run_and_resume(tmp_path, monkeypatch):
    """20 steps in one go equal 10 steps, a stop, and 10 more on the same schedule: resuming is
    exact."""
    monkeypatch.setitem(train.MODEL_CONFIG, "n_positions", 128)
    kw = dict(batch_size=4, eval_every=10, stop_at_targets=False, progress=False)
    whole = train.train(tmp_path / "a", max_steps=20, **kw)
    assert whole["step"] == 20 and whole["tokens"] == 20 * 4 * 128
    assert set(whole["metrics"]) == {"capital_accuracy", "induction_score",
                                     "previous_token_score", "ioi_logit_diff"}
    first = train.train(tmp_path / "b", max_steps=20, stop_step=10, **kw)
    assert first["step"] == 10
    resumed = train.train(tmp_path / "b", max_steps=20, **kw)
    assert resumed["step"] == 20
    wa = load_file(tmp_path / "a/checkpoint/model.safetensors")
    wb = load_file(tmp_path / "b/checkpoint/model.safetensors")
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    with pytest.raises(ValueError, match="resume with the same value"):
        train.train(tmp_path / "b", max_steps=30, **kw)
    losses = [h["loss"] for h in json.loads((tmp_path / "a/checkpoint/state.json").read_text())["history"]]
    assert losses[-1] < 7.5  # it learns something: a random model scores ln(2048) = 7.62


def test_position_scale_sizes_the_initial_table_and_is_recorded(tmp_path, monkeypatch):
    """--position-scale reaches the weights, the model card's reproduce line, and the resume
    guard."""
    monkeypatch.setitem(train.MODEL_CONFIG, "n_positions", 64)
    monkeypatch.setattr(train.evaluate, "course_metrics",  # the metrics are not under test here
                        lambda model: dict.fromkeys(train.evaluate.TARGETS, 0.0))
    kw = dict(max_steps=1, batch_size=2, stop_at_targets=False, progress=False)
    norms = {}
    other = 0.03
    for scale in (train.POSITION_SCALE, other):
        state = train.train(tmp_path / str(scale), position_scale=scale, **kw)
        weights = load_file(tmp_path / str(scale) / "checkpoint/model.safetensors")
        wpe = weights["transformer.wpe.weight"]
        norms[scale] = wpe.norm(dim=-1).mean()
        card = train.model_card(state)
        assert f"sinusoids of size {scale}" in card
        reproduce_with_flag = f"--stop-step\n{state['step']} --position-scale {other}`" in card
        assert reproduce_with_flag == (scale == other)  # the default needs no flag
    assert "--threads 3`" in train.model_card({**state, "threads": 3})
    # one step at the first warm-up learning rate barely moves the table: the ratio is the scales'
    assert norms[other] / norms[train.POSITION_SCALE] == pytest.approx(
        other / train.POSITION_SCALE, rel=0.02)
    with pytest.raises(ValueError, match=f"--position-scale {other}"):
        train.train(tmp_path / str(other), position_scale=train.POSITION_SCALE, **kw)


def test_lr_schedule_warms_up_and_decays():
    assert train.lr_at(0, 1000, 1.0) < train.lr_at(199, 1000, 1.0) == pytest.approx(1.0)
    assert train.lr_at(1000, 1000, 1.0) == pytest.approx(0.1)
    assert type(train.lr_at(500, 1000, 1.0)) is float  # numpy scalars break weights_only loading


def test_the_shipped_card_says_what_the_model_measures_now(course_model):
    """The card's closing sections (held-out loss, mechanisms, quirks) are what card_appendix
    writes from the bundled model today: no number in it is typed by hand."""
    from mechinterp_course import train
    card = (Path(train.__file__).parent / "course_model" / "MODEL_CARD.md").read_text()
    assert train.APPENDIX in card
    shipped, now = card[card.index(train.APPENDIX):], train.card_appendix(course_model)
    number = r"\d+\.\d+"
    assert re.sub(number, "#", shipped).strip() == re.sub(number, "#", now).strip()
    for a, b in zip(re.findall(number, shipped), re.findall(number, now)):
        assert abs(float(a) - float(b)) <= 2e-3  # another CPU's kernels move the last digit
    assert "weights on the same machine; on another CPU" in card


def test_the_bundled_tokenizer_loads_on_transformers_4_and_5(tmp_path):
    """transformers 5 saves its fast tokenizer as TokenizersBackend, a class transformers 4
    lacks; the bundled config and every exported one name PreTrainedTokenizerFast."""
    import json

    from mechinterp_course import train
    bundled = Path(train.__file__).parent / "course_model" / "tokenizer_config.json"
    assert json.loads(bundled.read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    config = tmp_path / "tokenizer_config.json"
    config.write_text(json.dumps({"tokenizer_class": "TokenizersBackend", "eos_token": "x"}))
    train.portable_tokenizer_config(config)
    assert json.loads(config.read_text()) == {"tokenizer_class": "PreTrainedTokenizerFast",
                                              "eos_token": "x"}


@pytest.mark.parametrize("argv,message", [
    (["--max-steps", "0"], "--max-steps must be a whole number >= 1"),
    (["--eval-every", "0"], "--eval-every must be"),
    (["--batch-size", "-4"], "--batch-size must be"),
    (["--lr", "nan"], "--lr must be a positive number"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--stop-step", "9000"], "past --max-steps"),
    (["--threads", "0"], "--threads must be"),
    (["--device", "tpu"], "is not a device"),
])
def test_bad_training_settings_are_refused_before_any_work(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(["--out", str(tmp_path / "run"), *argv])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written


def test_cuda_on_a_cpu_build_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="cannot use cuda here; use --device cpu"):
        train.check_train_args(device="cuda")


def test_a_damaged_checkpoint_says_so_and_what_to_do(tmp_path, monkeypatch):
    """A run cut off mid-write by an older version (or a disk that filled) leaves a truncated
    file: say the checkpoint is damaged and how to start again, not a safetensors traceback."""
    monkeypatch.setitem(train.MODEL_CONFIG, "n_positions", 128)
    kw = dict(batch_size=2, eval_every=2, stop_at_targets=False, progress=False)
    train.train(tmp_path / "r", max_steps=2, **kw)
    ckpt = tmp_path / "r" / "checkpoint"
    assert not list(ckpt.glob("*.tmp"))  # written through temporary files, all renamed
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="damaged or incomplete.*Delete the folder"):
        train.train(tmp_path / "r", max_steps=4, **kw)
    (ckpt / "state.json").write_text('{"step": 2')
    with pytest.raises(SystemExit, match="damaged or incomplete"):
        train.main(["--out", str(tmp_path / "r"), "--max-steps", "4", "--batch-size", "2",
                    "--eval-every", "2"])


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")

    def dies(path):
        path.write_text("half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train.atomic_write(target, dies)
    assert target.read_text() == "old"


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(train.MODEL_CONFIG, "n_positions", 64)
    calls = {"n": 0}
    real = train.batch_tokens

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 4:  # Ctrl-C during the fourth step
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(train, "batch_tokens", interrupted)
    with pytest.raises(SystemExit) as stop:
        train.main(["--out", str(tmp_path / "r"), "--max-steps", "10", "--batch-size", "2",
                    "--eval-every", "5"])
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert "stopped at step 3" in err and "Run the same command again to resume" in err
    state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3  # saved where it stopped, not at the last evaluation


def test_retraining_section_reports_both_kernel_sets(tmp_path):
    from mechinterp_course import train
    assert train.retraining_section(tmp_path / "none.json") == ""
    point = dict(step=100, loss=6.2965, previous_token_score=0.138, induction_score=0.0139,
                 capital_accuracy=0.0)
    runs = [{"machine": {"cpu_capability": cap, "cpu": "a CPU"},
             "history": [point, {**point, "step": 200, "loss": loss}]}
            for cap, loss in (("AVX512", 4.7472), ("DEFAULT", 4.7666))]
    (tmp_path / "spread.json").write_text(json.dumps({"runs": runs}))
    text = train.retraining_section(tmp_path / "spread.json")
    flat = " ".join(text.split())
    assert "AVX512 kernels" in flat and "DEFAULT set" in flat and "to step 200" in flat
    assert "agree to four decimals up to step 100" in flat
    assert "had not formed yet" in flat  # no induction score reached 0.5
    assert "| 200 | 4.7472 / 4.7666 |" in text and "| 0.0194 |" in text


def test_retraining_section_reports_the_whole_run_and_the_phase_change(tmp_path):
    """When both runs reach the shipped model's step, the card says when each formed its
    induction heads, whether a run reproduced the bundled weights, and how far the final metrics
    moved; when only one run formed them, it says the kernel set moved the phase change."""
    from mechinterp_course import train

    def history(onset, end=400, last_loss=2.0):
        return [dict(step=s, tokens=s * 10, loss=last_loss if s == end else 3.0,
                     previous_token_score=0.5, induction_score=0.9 if onset and s >= onset else
                     0.1, capital_accuracy=0.5, ioi_logit_diff=1.0) for s in range(100, end + 1, 100)]

    def section(onsets, gaps, shipped_step=400):
        runs = [{"machine": {"cpu_capability": cap, "cpu": "a CPU"}, "history": history(o),
                 **({"weights_gap_to_shipped": g} if g is not None else {})}
                for cap, o, g in zip(("AVX512", "DEFAULT"), onsets, gaps)]
        path = tmp_path / "spread.json"
        path.write_text(json.dumps({"shipped_step": shipped_step, "runs": runs}))
        return " ".join(train.retraining_section(path).split())

    flat = section([200, 300], [0.0, 0.013])
    assert "This is the whole run: both went to step 400" in flat
    assert "first reached 0.5 at step 200 with AVX512 and at step 300 with DEFAULT" in flat
    assert "The AVX512 run's weights equal the bundled model's exactly" in flat
    assert "Neither meets every target of the card." in flat  # capital accuracy 0.5
    assert "| loss | 2.0000 | 2.0000 | +0.0000 |" in flat and "| ioi_logit_diff |" in flat
    flat = section([200, None], [0.5, 0.013])
    assert "formed with AVX512 (an induction score of 0.5 at step 200) but not with DEFAULT" in flat
    assert "Neither run's weights equal the bundled model's (largest differences AVX512 0.5, "\
        "DEFAULT 0.013)" in flat
    flat = section([None, None], [None, None], shipped_step=2000)  # stopped short of the end
    assert "covers the first 400 steps only" in flat and "had not formed yet" in flat
