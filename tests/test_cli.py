"""The launch command starts JupyterLab on the chapters, as root too, with no network."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from mechinterp_course import cli
from notebooks import ROOT


def test_command_opens_chapters_and_allows_root():
    cmd = cli.jupyter_command(ROOT / "chapters", ["--no-browser"])
    assert f"--notebook-dir={ROOT / 'chapters'}" in cmd and cmd[-1] == "--no-browser"
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
    assert cli.find_chapters(ROOT / "solutions") == ROOT / "chapters"


def test_outside_a_checkout_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main([]) == 2
    assert "Clone the course repository" in capsys.readouterr().err


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
    monkeypatch.chdir(ROOT)
    cli.main(["--port", "8890"])
    assert launched and launched[0][-2:] == ["--port", "8890"]
    assert f"--notebook-dir={ROOT / 'chapters'}" in launched[0]
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "goes to JupyterLab" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_server_starts_and_lists_the_chapters(tmp_path):
    port, token = free_port(), "course-test"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mechinterp_course.cli", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/contents?token={token}"
        for _ in range(120):
            try:
                listing = json.load(urllib.request.urlopen(url, timeout=2))
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(proc.stdout.read().decode()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        names = {item["name"] for item in listing["content"]}
        assert "00_forward_pass.ipynb" in names
        lab = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5)
        assert lab.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the launcher became the server, so stopping it stopped JupyterLab: the port is free again
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
