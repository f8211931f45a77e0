"""Every notebook kernel started under pytest (nbval's and ours) runs with the network blocked, so
a notebook that would download anything fails its test instead of passing on a lucky machine."""

import os
from pathlib import Path

NONET = str(Path(__file__).parent / "tests" / "nonet")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (NONET, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# nbval runs every solution notebook; keep what each cell printed, so the learner-notebook test
# can compare against that run instead of executing every solution a second time.
import sys  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "tests"))
from notebooks import read_outputs  # noqa: E402  the same reading as the learner-notebook test


INLINE = "module://matplotlib_inline.backend_inline"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """nbval's kernels (started at a notebook's first cell) draw figures inline, so the runs kept
    in build/executed/ have them for the site; every other kernel and process draws with Agg."""
    os.environ["MPLBACKEND"] = INLINE if hasattr(item, "cell") else "Agg"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    text, error, message = read_outputs(item.test_outputs or [])
    if outcome.get_result().failed and error is None:
        error, message = "failed under nbval", str(call.excinfo.value if call.excinfo else "")
    runs = item.config.__dict__.setdefault("solution_runs", {})
    runs.setdefault(Path(str(item.fspath)).name, []).append(dict(
        tags=item.cell.metadata.get("tags", []), source=item.cell.source, text=text,
        error=error, message=message))
    executed = item.config.__dict__.setdefault("solution_outputs", {})
    path = Path(str(item.fspath))
    executed.setdefault(path, {})[item.cell.get("id")] = item.test_outputs or []
    write_executed(path, item.parent.nb, executed[path])


EXECUTED = Path(__file__).parent / "build" / "executed"


def write_executed(path: Path, notebook, outputs: dict):
    """Once nbval has run every code cell of a solution notebook (`notebook`, as nbval read
    it), a copy with its outputs goes to build/executed/ (ignored by git): the site
    (`python -m mechinterp_course.site`, and its test after this run) shows these runs instead
    of running every notebook again."""
    import copy

    import nbformat

    if {c.get("id") for c in notebook.cells if c.cell_type == "code"} != set(outputs):
        return
    nb = copy.deepcopy(notebook)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for count, cell in enumerate(code, 1):
        cell.outputs = [nbformat.from_dict(o) for o in outputs[cell.get("id")]]
        cell.execution_count = count
    EXECUTED.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, EXECUTED / path.name)
