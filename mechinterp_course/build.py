"""Build every chapter's two notebooks from its one source: ``python -m mechinterp_course.build``.

A chapter's source is ``source/NN_name.py``, a jupytext "percent" script (cells start with
``# %%``; markdown cells with ``# %% [markdown]``). Inside a code cell, the lines between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` are the answer to an exercise:

- ``solutions/NN_name.ipynb`` keeps them (marker lines dropped);
- ``chapters/NN_name.ipynb`` replaces them with ``raise NotImplementedError("Exercise N.M: ...")``
  at the marker's indentation, so the learner's notebook always runs and says what to do.

The exercise number and title come from the nearest markdown heading above that reads
"Exercise N.M: title". Its hints come in layers, as paragraphs of that markdown: first
``*Nudge:*`` (what to think about, never the answer's code), then one or more ``*Hint:*`` (more
specific). In the learner notebook each layer, and then the solution itself, is folded away.
A cell tagged ``check`` (``# %% tags=["check"]``) is an exercise check: in
the learner notebook it must fail until the exercise is done. The build also writes the first code
cell of every notebook (Colab install, imports, device) and the README's chapter table, so neither
is ever copied by hand. ``--check`` exits non-zero when a committed file differs from what the
build would write.

In the learner notebook, check, exercise and timing cells are tagged ``raises-exception``, so Run
All reads on past an unsolved exercise (or a timing claim that a busy machine fails), and each exercise heading links to its solution. Every
notebook records a digest of its cells; the build never overwrites a notebook whose cells no
longer match it (someone's edits), and the launcher's workspace relies on the same digest.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import workspace

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "mechinterp-course/mechinterp-course"  # GitHub owner/name: badges and Colab install
BRANCH = "main"

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
EXERCISE = re.compile(r"Exercise\s+(\d+\.\d+)\s*[:.-]?\s*(.*)")
LAYER = re.compile(r"^\*(Nudge|Hint):\*\s*(.*)$")  # a hint paragraph's first line

SETUP_CELL = f'''\
# Setup: on Colab this installs the course package; elsewhere it is already installed.
import sys

if "google.colab" in sys.modules:
    get_ipython().run_line_magic(  # noqa: F821  (Colab's IPython)
        "pip", "install -q 'mechinterp-course @ git+https://github.com/{REPOSITORY}@{BRANCH}'")

import torch

import mechinterp_course as mc

torch.manual_seed(0)
device = mc.pick_device()  # a GPU when there is one (Colab: Runtime > Change runtime type)
print(f"mechinterp_course {{mc.__version__}}, torch {{torch.__version__}}, device {{device}}")'''


class BuildError(ValueError):
    pass


def sources(root: Path = ROOT) -> list[Path]:
    return sorted((root / "source").glob("[0-9][0-9]_*.py"))


def strip_solutions(code: str, label: str) -> str:
    """The learner's version of a code cell: each solution block becomes a NotImplementedError."""
    out, inside = [], False
    for line in code.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise BuildError(f"nested {BEGIN} in {label}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{label}")')
        elif stripped == END:
            if not inside:
                raise BuildError(f"{END} without {BEGIN} in {label}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise BuildError(f"{BEGIN} without {END} in {label}")
    return "\n".join(out)


def keep_solutions(code: str) -> str:
    return "\n".join(line for line in code.splitlines() if line.strip() not in (BEGIN, END))


def build_pair(path: Path, text: str | None = None):
    """(learner, solution) notebooks for one source file (its text, when given: the source as
    the build is about to write it)."""
    import jupytext
    import nbformat

    nb = jupytext.read(path) if text is None else jupytext.reads(text, fmt="py:percent")
    stem = path.stem
    answers = solutions_by_exercise(nb.cells, path.name)
    learner, solution, exercise = [], [], None
    for cell in nb.cells:
        links = []  # in the learner's copy: where the solution is, one click away
        learner_md = cell.source
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = EXERCISE.search(line.lstrip("#* "))
                if m and line.lstrip().startswith("#"):
                    exercise = f"Exercise {m.group(1)}: {m.group(2).strip().rstrip('.')}"
                    links.append(solution_link(stem, line))
            if any(LAYER.match(line.strip()) for line in cell.source.splitlines()):
                if exercise is None:
                    raise BuildError(f"{path.name}: a hint comes before any exercise heading")
                number = EXERCISE.search(exercise).group(1)
                learner_md = fold_layers(cell.source, answers.get(number), f"{path.name}: "
                                         f"{exercise}")
        has_solution = cell.cell_type == "code" and BEGIN in cell.source
        if has_solution and exercise is None:
            raise BuildError(f"{path.name}: a solution block comes before any 'Exercise N.M' "
                             "heading")
        tags = list(cell.metadata.get("tags", []))
        meta = {"tags": tags} if tags else {}
        if cell.cell_type == "markdown":
            learner.append(nbformat.v4.new_markdown_cell(
                "\n\n".join([learner_md, *links]), metadata=meta))
            solution.append(nbformat.v4.new_markdown_cell(cell.source, metadata=meta))
            continue
        stub = strip_solutions(cell.source, f"{exercise}: replace this line with your code"
                               if has_solution else "")
        # Run All goes on past a cell tagged raises-exception (JupyterLab honours the tag): an
        # unsolved exercise or its failing check must not stop a learner reading ahead, nor a
        # timing claim that a busy laptop fails (the solution notebook stays strict)
        learner_tags = tags + ["exercise"] * has_solution
        if has_solution or {"check", "timing"} & set(tags):
            learner_tags.append("raises-exception")
        learner_meta = {"tags": learner_tags} if learner_tags else {}
        solution_meta = {"tags": tags + ["solution"]} if has_solution else meta
        learner.append(nbformat.v4.new_code_cell(stub, metadata=learner_meta))
        solution.append(nbformat.v4.new_code_cell(keep_solutions(cell.source),
                                                  metadata=solution_meta))
    if not learner or learner[0].cell_type != "markdown":
        raise BuildError(f"{path.name} must open with a markdown cell (title and goals)")
    notebooks = []
    for cells, kind in ((learner, "chapters"), (solution, "solutions")):
        setup = nbformat.v4.new_code_cell(SETUP_CELL, metadata={"tags": ["setup"]})
        cells = [cells[0], setup, *cells[1:]]
        for i, cell in enumerate(cells):
            cell.id = f"{stem[:2]}-{i:03d}"
        out = nbformat.v4.new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "colab": {"provenance": []},
        })
        # how the launcher and the build tell a learner's edited copy from the one built
        out.metadata[workspace.KEY] = {"cells_sha256": workspace.cells_digest(out)}
        notebooks.append((Path(kind) / f"{stem}.ipynb", out))
    return notebooks



def solutions_by_exercise(cells, name: str) -> dict[str, str]:
    """{"1.2": the solution's code cell, as the solution notebook shows it} for every exercise;
    BuildError for an exercise without its layered hints."""
    answers, hinted, exercise = {}, set(), None
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = EXERCISE.search(line.lstrip("#* "))
                if m and line.lstrip().startswith("#"):
                    exercise = m.group(1)
            if exercise and any(LAYER.match(ln.strip()) for ln in cell.source.splitlines()):
                hinted.add(exercise)
        elif BEGIN in cell.source and exercise is not None:
            answers[exercise] = keep_solutions(cell.source)
    unhinted = sorted(set(answers) - hinted, key=lambda n: [int(x) for x in n.split(".")])
    if unhinted:
        raise BuildError(f"{name}: Exercise {', '.join(unhinted)} has no *Nudge:* and *Hint:* "
                         "paragraphs")
    return answers


def hint_segments(markdown: str, pattern=LAYER) -> list:
    """The markdown's lines in order, each hint paragraph (a line matching `pattern`, up to the
    next blank line) as one (kind, [its lines]) item: what the build folds and the site folds."""
    out, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        m = pattern.match(lines[i].strip())
        if not m:
            out.append(lines[i])
            i += 1
            continue
        body = [m.group(2)]
        i += 1
        while i < len(lines) and lines[i].strip():
            body.append(lines[i])
            i += 1
        out.append((m.group(1), body))
    return out


def hint_layers(markdown: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(the markdown's other lines, [(kind, text)] of its *Nudge:* / *Hint:* paragraphs)."""
    segments = hint_segments(markdown)
    rest = [x for x in segments if isinstance(x, str)]
    layers = [(kind, "\n".join(body).strip()) for kind, body in
              (x for x in segments if not isinstance(x, str))]
    while rest and not rest[-1].strip():
        rest.pop()
    return rest, layers


CODE_SPAN = re.compile(r"`([^`]+)`")


def check_nudge(nudge: str, answer: str, label: str) -> None:
    """A nudge says what to think about, not what to type: its code spans may only be plain names
    (a variable, a shape's axis), never an expression, and never a function the answer calls."""
    called = set(re.findall(r"(\w+)\s*\(", answer)) | set(re.findall(r"\.(\w+)", answer))
    for span in CODE_SPAN.findall(nudge):
        if not re.fullmatch(r"\w+", span.strip()) or span.strip() in called:
            raise BuildError(f"{label}: the nudge shows code (`{span}`); put it in a *Hint:*")


def fold_layers(markdown: str, answer: str | None, label: str) -> str:
    """The learner's exercise text: each hint layer, then the solution, folded away."""
    rest, layers = hint_layers(markdown)
    kinds = [k for k, _ in layers]
    if kinds[:1] != ["Nudge"] or kinds.count("Nudge") != 1 or len(kinds) < 2:
        raise BuildError(f"{label}: hints must be one *Nudge:* first, then at least one *Hint:*")
    if answer is None:
        raise BuildError(f"{label}: hints without a solution block")
    check_nudge(layers[0][1], answer, label)
    out = ["\n".join(rest)]
    for i, (kind, body) in enumerate(layers, 1):
        title = f"Hint {i}" + (": a nudge" if kind == "Nudge" else "")
        out.append(f"<details><summary><b>{title}</b></summary>\n\n{body}\n\n</details>")
    out.append(f"<details><summary><b>Solution</b></summary>\n\n```python\n{answer}\n```"
               "\n\n</details>")
    return "\n\n".join(out)


def solution_link(stem: str, heading: str) -> str:
    """A markdown line linking an exercise to its solution. The anchor is JupyterLab's id for the
    heading (its text, spaces as dashes), so the solution notebook opens at the exercise."""
    text = heading.lstrip("#").strip().replace("*", "")
    number = EXERCISE.search(text).group(1)
    anchor = text.replace(" ", "-")
    return (f"*Stuck?* [The solution to Exercise {number}](../solutions/{stem}.ipynb#{anchor}) "
            "opens in a tab of its own; your work here stays as it is.")


def notebook_text(nb) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def title_of(nb) -> str:
    first = nb.cells[0].source.splitlines()[0]
    return re.sub(r"^#+\s*(\d+\s+)?", "", first).strip()


def launch_urls(rel: str) -> tuple[str, str]:
    """(Colab, Binder) links that open the repository's notebook at `rel` ("chapters/....ipynb")."""
    return (f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{rel}",
            f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?labpath={rel}")


def readme_table(built: list) -> str:
    rows = ["| # | chapter | open |", "| --- | --- | --- |"]
    for rel, nb in built:
        if rel.parts[0] != "chapters":
            continue
        colab, binder = launch_urls(rel.as_posix())
        rows.append(
            f"| {rel.stem[:2]} | [{title_of(nb)}]({rel.as_posix()}) "
            f"([solution](solutions/{rel.name})) | "
            f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder}) |")
    return "\n".join(rows)


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """Every file the build writes, with its contents: the notebooks, each source's Time line
    and docs/teaching/ (computed by `teaching`), and the README's chapter table."""
    from . import teaching

    times = teaching.notebook_times(root)
    texts, course = {}, []
    for src in sources(root):
        chapter = teaching.read_chapter(src, run_s=times.get(src.stem, (None,))[0])
        texts[src] = teaching.with_time_line(src.read_text(), chapter)
        course.append(chapter)
    built = [pair for src in sources(root) for pair in build_pair(src, texts[src])]
    files = {root / rel: notebook_text(nb) for rel, nb in built}
    files.update(texts)
    try:
        files.update(teaching.pages(root, course))
    except teaching.PlanError as e:
        raise BuildError(str(e)) from None
    readme = (root / "README.md").read_text()
    start, end = "<!-- chapters:start -->", "<!-- chapters:end -->"
    if start in readme and end in readme:
        head, rest = readme.split(start, 1)
        _, tail = rest.split(end, 1)
        files[root / "README.md"] = f"{head}{start}\n{readme_table(built)}\n{end}{tail}"
    return files


def stale_files(root: Path = ROOT) -> list[Path]:
    return [p for p, text in expected_files(root).items()
            if not p.exists() or p.read_text() != text]


def time_notebooks(root: Path = ROOT, budget: float = 90.0) -> Path:
    """Run every solution notebook in a fresh kernel with the network blocked; write wall time and
    the kernel's peak memory to docs/NOTEBOOK_TIMES.md."""
    import os
    import platform
    import subprocess
    import time

    rows = []
    for nb in sorted((root / "solutions").glob("*.ipynb")):
        script = ("import resource, sys, time, nbformat\n"
                  "from nbclient import NotebookClient\n"
                  "nb = nbformat.read(sys.argv[1], as_version=4)\n"
                  "t = time.perf_counter()\n"
                  "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': "
                  "{'path': sys.argv[2]}}).execute()\n"
                  "print(time.perf_counter() - t, "
                  "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(root / "tests" / "nonet"), os.environ.get("PYTHONPATH", "")]), "MPLBACKEND": "Agg"}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", script, str(nb), str(nb.parent)], env=env,
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{nb.name} failed:\n{out.stderr[-3000:]}")
        seconds, kib = out.stdout.split()[-2:]
        rows.append(f"| {nb.stem} | {float(seconds):.1f} | {int(kib) / 1024:.0f} | "
                    f"{'yes' if float(seconds) <= budget else '**no**'} |")
        print(f"{nb.stem}: {float(seconds):.1f} s ({time.perf_counter() - start:.0f} s with start-up)")
    doc = root / "docs" / "NOTEBOOK_TIMES.md"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(
        "# Solution notebook run times\n\nEach solution notebook executed top to bottom in a fresh "
        "kernel, network blocked, by `python -m mechinterp_course.build --time`.\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}; date {time.strftime('%Y-%m-%d')}.\n\n"
        f"| notebook | seconds | kernel peak memory (MiB) | within {budget:.0f} s |\n"
        "| --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build learner and solution notebooks from source/.")
    ap.add_argument("--check", action="store_true", help="only report stale files")
    ap.add_argument("--time", action="store_true",
                    help="run every solution notebook and write docs/NOTEBOOK_TIMES.md")
    args = ap.parse_args(argv)
    if args.time:
        print("wrote", time_notebooks())
        return 0
    if args.check:
        stale = stale_files()
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)}")
        if stale:
            print("run: python -m mechinterp_course.build")
        return 1 if stale else 0
    kept = []
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            if path.suffix == ".ipynb" and path.exists() and workspace.is_edited(
                    workspace.read(path)):
                kept.append(path.relative_to(ROOT))  # someone's work: never overwritten
                continue
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    for rel in kept:
        print(f"kept {rel}: it has edits that the build did not make, so it was not rebuilt. "
              "Work in workspace/, which `mechinterp-course` creates; to rebuild this file, "
              "move it out of the way first.", file=sys.stderr)
    return 1 if kept else 0


if __name__ == "__main__":
    sys.exit(main())
