"""Run a notebook in a fresh kernel and report, per cell, what it printed and whether it failed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
WIDGET = "application/vnd.jupyter.widget-view+json"  # tqdm's progress bars in a kernel are widgets


@dataclass
class CellRun:
    index: int
    tags: list
    source: str
    text: str          # what the cell printed to stdout, and its text/plain results
    error: str | None  # exception name, if the cell raised
    message: str


def read_outputs(outputs) -> tuple[str, str | None, str]:
    """A cell's outputs as (text, error name, error message). The text is what it printed to
    stdout and its text/plain results; progress bars (stderr, or tqdm's widgets in a kernel) are
    left out, since they differ when a cached file is reused, and so are figures ("<Figure size
    ...>": nbval's kernels draw them inline, other runs with Agg)."""
    text, error, message = [], None, ""
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":
            text.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data") and not (
                {WIDGET, "image/png"} & set(out.get("data", {}))):  # a figure's repr: not text
            text.append(out.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            error, message = out.get("ename"), out.get("evalue", "")
    return "".join(text), error, message


def run_notebook(notebook, folder: Path | None = None,
                 timeout: int = 600) -> tuple[list[CellRun], float]:
    """Run a notebook (a path, or a notebook already read, which is executed in place) with its
    working folder `folder` (default: the notebook's own); every cell runs, even after an error."""
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    folder = folder if folder is not None else Path(notebook).parent
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    runs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text, error, message = read_outputs(cell.get("outputs", []))
        runs.append(CellRun(i, cell.metadata.get("tags", []), cell.source, text, error, message))
    return runs, seconds


def fails_with(check, fn, model, pattern):
    """The check rejects fn, and its message matches pattern (the named mistake)."""
    import pytest

    from mechinterp_course.checks import ExerciseFailed

    with pytest.raises(ExerciseFailed, match=pattern):
        check(fn, model)


def exercise_functions(folder: str, name: str) -> dict:
    """The functions a notebook's exercise cells define: the solutions (folder "solutions") or
    the learner stubs (folder "chapters"), straight from the built notebook."""
    import importlib
    import pkgutil

    import torch

    import mechinterp_course as mc

    tag = "solution" if folder == "solutions" else "exercise"
    nb = nbformat.read(ROOT / folder / name, as_version=4)
    namespace = {"torch": torch, "mc": mc}  # and the package's modules, as notebooks import them
    namespace |= {m.name: importlib.import_module(f"mechinterp_course.{m.name}")
                  for m in pkgutil.iter_modules(mc.__path__) if not m.ispkg}
    namespace["ag"] = namespace["attribution_graph"]  # chapter 14 imports it by this name
    for cell in nb.cells:
        if tag in cell.metadata.get("tags", []):
            exec(compile(cell.source, f"{name}:{tag}", "exec"), namespace)
    return {k: v for k, v in namespace.items() if callable(v) and not k.startswith("_")
            and getattr(v, "__module__", None) is None}
