"""The install route without a clone: a wheel built from this tree carries the notebooks and the
course model; installed into a new virtual environment, `mechinterp-course` run from any folder
copies the notebooks into a workspace there, never over a notebook the learner edited, and the
package loads the course model from the wheel, network blocked.

The environment is made with --system-site-packages and the wheel installed with --no-deps, so
the dependencies are this machine's; the package itself comes from the wheel (the test asserts
where it was imported from). A fresh environment installed from a wheelhouse alone, with a
notebook run in JupyterLab's kernel, is scripts/offline_classroom.sh (.ci/run runs it after
the tests)."""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from notebooks import ROOT

pytestmark = pytest.mark.slow
NONET = str(ROOT / "tests" / "nonet")


def tree_files() -> list[str]:
    """The files of this tree as git would commit them (tracked, and new files not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files a build takes")
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def run(cmd, cwd, env=None, timeout=300):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's bin folder, the wheel) with the wheel built from a copy of this tree (a build
    writes build/ and egg-info next to its sources: never in the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for rel in tree_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    isolation = []
    try:
        import setuptools
        if int(setuptools.__version__.split(".")[0]) >= 68:
            isolation = ["--no-build-isolation"]  # this machine's setuptools: no download
    except ImportError:
        pass
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w",
         str(tmp / "dist"), str(src)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("mechinterp_course-*.whl")
    venv.create(tmp / "venv", system_site_packages=True, with_pip=True)
    bin_dir = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin")
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         str(wheel)], cwd=tmp)
    return bin_dir, wheel


def test_the_wheel_carries_the_notebooks_and_the_course_model(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed[1]).namelist())
    for folder in ("chapters", "solutions"):
        for nb in (ROOT / folder).glob("*.ipynb"):
            assert f"mechinterp_course/notebooks/{folder}/{nb.name}" in names
    assert "mechinterp_course/course_model/model.safetensors" in names
    assert "mechinterp_course/transcoders/course_model.safetensors" in names
    assert not any("sae_activations" in n or "__pycache__" in n for n in names)


def test_from_any_folder_the_course_is_copied_and_runs_from_the_wheel(installed, tmp_path):
    bin_dir, _ = installed
    env = {**os.environ, "PYTHONPATH": NONET, "HOME": str(tmp_path)}
    anywhere = tmp_path / "somewhere"
    anywhere.mkdir()
    said = run([str(bin_dir / "mechinterp-course"), "--copy-only"], cwd=anywhere, env=env)
    ws = anywhere / "mechinterp-course"
    assert "copied chapters/00_forward_pass.ipynb" in said and f"Your workspace: {ws}" in said
    for folder in ("chapters", "solutions"):
        assert sorted(p.name for p in (ws / folder).glob("*.ipynb")) == sorted(
            p.name for p in (ROOT / folder).glob("*.ipynb"))
    where = run([str(bin_dir / "python"), "-c",
                 "import mechinterp_course as mc, mechinterp_course.transcoders as t;"
                 "m = mc.load_model(); t.load(m); print(mc.__file__)"], cwd=ws, env=env)
    assert Path(where.strip()).is_relative_to(bin_dir.parent), where  # the wheel, not the tree

    # the learner edits a notebook; a second launch keeps the edit
    nb_path = ws / "chapters" / "00_forward_pass.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["cells"][0]["source"] = "my notes"
    nb_path.write_text(json.dumps(nb))
    run([str(bin_dir / "mechinterp-course"), "--copy-only"], cwd=ws / "chapters", env=env)
    assert json.loads(nb_path.read_text())["cells"][0]["source"] == "my notes"
    assert not (ws / "chapters" / "mechinterp-course").exists()
