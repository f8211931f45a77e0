"""`mechinterp-course doctor`, the classroom preflight: one line per item, a fix for each failure,
quick, and each check really fails when its condition is not met."""

import time

import torch

from mechinterp_course import cli, doctor, models


def test_doctor_runs_quickly_and_prints_one_line_per_item(capsys):
    start = time.time()
    code = cli.main(["doctor"])
    took = time.time() - start
    lines = capsys.readouterr().out.splitlines()
    items = lines[1:-1]
    names = [line[2:].split(":")[0] for line in items]
    for name in ("python", "torch", "transformers", "course model", "SmolLM2", "device",
                 "browser views", "working folder", "network", "memory", "disk"):
        assert name in names
    assert all(line[0] in doctor.MARKS.values() for line in items)
    assert code == (1 if any(line.startswith(doctor.MARKS[doctor.FAIL]) for line in items)
                    else 0)
    assert "course model: loads and predicts ' Austin'" in "\n".join(items)
    assert took < 20


def test_version_outside_the_range_fails_with_the_install_line():
    (item,) = doctor.check_versions({"torch": ">=99"})
    assert item.status == doctor.FAIL and "pip install 'torch>=99'" in item.line()
    (item,) = doctor.check_versions({"no-such-package-here": ">=1"})
    assert item.status == doctor.FAIL and "not installed" in item.detail
    (item,) = doctor.check_versions({"torch": ">=2.1"})
    assert item.status == doctor.OK


def test_a_broken_course_model_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("model.safetensors: truncated")
    monkeypatch.setattr(models, "load_model", broken)
    item, model = doctor.check_course_model()
    assert item.status == doctor.FAIL and model is None and "truncated" in item.detail


def test_a_device_that_disagrees_with_the_cpu_fails(course_model, monkeypatch):
    monkeypatch.setattr(models, "pick_device", lambda: torch.device("cuda"))  # not moved: the check is faked
    monkeypatch.setattr(models, "device_agrees_with_cpu", lambda model, device: False)
    item = doctor.check_device(course_model)
    assert item.status == doctor.FAIL and "device='cpu'" in item.fix
    assert course_model.cfg.device == "cpu"


def test_resource_checks_fail_below_their_floors(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert doctor.check_write_access(not_a_folder).status == doctor.FAIL
    assert doctor.check_write_access(tmp_path).status == doctor.OK
    assert doctor.check_memory(available=0.5).status == doctor.FAIL
    assert doctor.check_memory(available=8.0).status == doctor.OK
    assert doctor.check_disk(tmp_path, free=0.1).status == doctor.FAIL


def test_offline_by_choice_is_a_warning_not_a_failure(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    item = doctor.check_network()
    assert item.status == doctor.WARN and "bundled model" in item.fix
