"""The launch command copies the course into the learner's workspace and starts JupyterLab there,
as root too, with no network."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from labdriver import copy_course, free_port
from mechinterp_course import cli
from notebooks import ROOT


def test_command_opens_chapters_and_allows_root():
    cmd = cli.jupyter_command(ROOT / "chapters", ["--no-browser"])
    assert f"--notebook-dir={ROOT / 'chapters'}" in cmd and cmd[-1] == "--no-browser"
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
    assert cli.find_chapters(ROOT / "solutions") == ROOT / "chapters"


@pytest.fixture
def checkout(tmp_path):
    """A course checkout's notebooks, copied, so the launcher's workspace is made in tmp_path."""
    return copy_course(tmp_path / "course")


def test_outside_a_checkout_says_what_to_do(tmp_path, monkeypatch, capsys):
    """An editable install carries no notebooks: outside the checkout there is nothing to copy."""
    monkeypatch.setattr(cli, "packaged_notebooks", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert cli.main([]) == 2
    assert "install the course's wheel" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # and nothing was written


def test_installed_from_a_wheel_it_copies_into_a_folder_of_your_choice(checkout, tmp_path,
                                                                       monkeypatch, capsys):
    """The wheel's notebooks (here a copy laid out as the wheel lays them) go into
    ./mechinterp-course, or the folder given with --into; a launch from inside a workspace
    reuses it; --copy-only stops after copying."""
    monkeypatch.setattr(cli, "packaged_notebooks", lambda: checkout)
    launched = []
    monkeypatch.setattr(cli.os, "execv", lambda exe, cmd: launched.append(cmd))
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: launched.append(cmd) or 0)
    home = tmp_path / "anywhere"
    home.mkdir()
    monkeypatch.chdir(home)
    assert cli.main(["--copy-only"]) == 0 and not launched
    ws = home / "mechinterp-course"
    assert "copied chapters/00_forward_pass.ipynb" in capsys.readouterr().out
    assert sorted(p.name for p in (ws / "solutions").iterdir()) == sorted(
        p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    monkeypatch.chdir(ws / "chapters")
    cli.main(["--no-browser"])  # from inside the workspace: that workspace, nothing copied
    assert f"--notebook-dir={ws}" in launched[-1] and "copied" not in capsys.readouterr().out
    assert not (ws / "chapters" / "mechinterp-course").exists()
    mine = tmp_path / "my course"
    cli.main(["--into", str(mine), "--port", "8890"])
    assert f"--notebook-dir={mine}" in launched[-1] and launched[-1][-2:] == ["--port", "8890"]
    assert (mine / "chapters" / "14_circuit_tracing.ipynb").exists()
    assert cli.main(["--into", str(checkout)]) == 2  # never into the notebooks' own folder
    assert "copy them into another folder" in capsys.readouterr().err
    assert cli.main([str(mine), "--copy-only"]) == 2


def test_jupyterlab_options_with_a_space_are_not_taken_for_the_folder(tmp_path, monkeypatch,
                                                                     capsys):
    """`--port 8890` (as JupyterLab accepts it) used to fail with "8890 is not a folder"."""
    assert cli.split_args(["--port", "8890"]) == ([], ["--port", "8890"])
    assert cli.split_args(["--port=8890", "chapters"]) == (["chapters"], ["--port=8890"])
    assert cli.split_args(["--solutions", "--ip", "0.0.0.0", "--no-browser"]) == (
        ["--solutions"], ["--ip", "0.0.0.0", "--no-browser"])
    assert cli.split_args(["--no-browser", str(tmp_path)]) == ([str(tmp_path)], ["--no-browser"])
    launched = []
    monkeypatch.setattr(cli.os, "execv", lambda exe, cmd: launched.append(cmd))
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: launched.append(cmd) or 0)
    course = tmp_path / "course"
    for folder in ("chapters", "solutions"):
        (course / folder).mkdir(parents=True)
    monkeypatch.chdir(course / "chapters")  # from inside the checkout, too
    cli.main(["--port", "8890"])
    assert launched and launched[0][-2:] == ["--port", "8890"]
    assert f"--notebook-dir={course / 'workspace'}" in launched[0]
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "goes to JupyterLab" in capsys.readouterr().out


def test_launcher_makes_the_workspace_and_starts_in_its_chapters(checkout, monkeypatch, capsys):
    launched = []
    monkeypatch.setattr(cli.os, "execv", lambda exe, cmd: launched.append(cmd))
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: launched.append(cmd) or 0)
    monkeypatch.chdir(checkout)
    cli.main(["--no-browser"])
    said = capsys.readouterr().out
    assert "copied chapters/01_attention.ipynb" in said and "Your workspace" in said
    for folder in ("chapters", "solutions"):
        assert sorted(p.name for p in (checkout / "workspace" / folder).iterdir()) == sorted(
            p.name for p in (ROOT / folder).glob("*.ipynb"))
    assert "--LabApp.default_url=/lab/tree/chapters" in launched[-1]
    cli.main(["--solutions"])
    assert "copied" not in capsys.readouterr().out  # the second launch copies nothing
    assert "--LabApp.default_url=/lab/tree/solutions" in launched[-1]
    cli.main(["--LabApp.default_url=/lab/tree/solutions/08_capstone.ipynb"])  # the learner's wins
    assert [a for a in launched[-1] if "default_url" in a] == [
        "--LabApp.default_url=/lab/tree/solutions/08_capstone.ipynb"]
    monkeypatch.chdir(checkout / "workspace" / "chapters")  # from inside the workspace
    cli.main([])
    assert f"--notebook-dir={checkout / 'workspace'}" in launched[-1]  # not a workspace in it
    assert not (checkout / "workspace" / "workspace").exists()
    cli.main([str(checkout / "chapters")])  # a folder given is opened as it is, without a copy
    assert f"--notebook-dir={checkout / 'chapters'}" in launched[-1]
    assert not any("default_url" in a for a in launched[-1])


def _get(url, proc, log):
    for _ in range(120):
        try:
            return urllib.request.urlopen(url, timeout=2)
        except OSError:
            if proc.poll() is not None:
                pytest.fail(log.read_text()[-2000:])
            time.sleep(0.5)
    pytest.fail("JupyterLab did not answer within 60 s")


@pytest.mark.slow
def test_server_starts_in_the_workspace_with_chapters_and_solutions(tmp_path, checkout):
    port, token = free_port(), "course-test"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    log = tmp_path / "server.log"  # a file, not a pipe: a full pipe nobody reads blocks a server
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mechinterp_course.cli", "--no-browser", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={token}"],
            cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        root = json.load(_get(f"http://127.0.0.1:{port}/api/contents?token={token}", proc, log))
        assert {item["name"] for item in root["content"]} >= {"chapters", "solutions"}
        # the browser lands in chapters/ (a redirect from the server's root)
        landing = urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=5)
        assert landing.url.split("?")[0].endswith("/lab/tree/chapters"), landing.url
        url = f"http://127.0.0.1:{port}/api/contents/chapters?token={token}"
        listing = json.load(_get(url, proc, log))
        names = {item["name"] for item in listing["content"]}
        assert "00_forward_pass.ipynb" in names
        lab = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5)
        assert lab.status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("JupyterLab did not stop within 30 s of SIGTERM; its log ends:\n"
                        + log.read_text()[-2000:])
    # the launcher became the server, so stopping it stopped JupyterLab: the port is free again
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_workspace_that_cannot_be_made_is_a_clear_error(checkout, monkeypatch, capsys):
    (checkout / "workspace").write_text("a file where the folder should be")
    monkeypatch.chdir(checkout)
    assert cli.main(["--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "Could not copy the course into" in err and "mechinterp-course FOLDER" in err
