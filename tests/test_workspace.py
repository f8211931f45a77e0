"""The learner's workspace and the build never overwrite a notebook someone edited; updates to
notebooks nobody edited arrive; and a learner notebook's Run All reads on past unsolved
exercises while its headings link to the solutions."""

import json
import shutil

import nbformat
import pytest

from mechinterp_course import build, workspace
from notebooks import ROOT

NAME = "01_attention.ipynb"


def edit(path, text="# my answer"):
    nb = json.loads(path.read_text())
    nb["cells"][3]["source"] = text
    path.write_text(json.dumps(nb))


def run_it(path):
    """What JupyterLab does to a notebook it runs and saves: outputs, counts, metadata."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = 7
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    nb["metadata"]["language_info"]["version"] = "3.11.7"
    nb["cells"][0]["source"] = "".join(nb["cells"][0]["source"])  # one string, not lines
    path.write_text(json.dumps(nb, indent=2))


@pytest.fixture
def course(tmp_path):
    for folder in workspace.FOLDERS:
        (tmp_path / "course" / folder).mkdir(parents=True)
        shutil.copy(ROOT / folder / NAME, tmp_path / "course" / folder / NAME)
    return tmp_path / "course", tmp_path / "course" / "workspace"


def new_version(course_dir, text="# the chapter, improved"):
    """The checkout after an update: the chapter's cells changed, and its digest with them."""
    for folder in workspace.FOLDERS:
        path = course_dir / folder / NAME
        nb = nbformat.read(path, as_version=4)
        nb.cells[2].source = text
        nb.metadata[workspace.KEY] = {"cells_sha256": workspace.cells_digest(nb)}
        nbformat.write(nb, path)


def test_every_built_notebook_records_its_digest_and_is_unedited():
    for folder in workspace.FOLDERS:
        for path in (ROOT / folder).glob("*.ipynb"):
            nb = workspace.read(path)
            assert workspace.recorded_digest(nb) == workspace.cells_digest(nb), path
            assert not workspace.is_edited(nb)


def test_running_a_notebook_is_not_an_edit_but_changing_a_cell_is(tmp_path):
    path = tmp_path / NAME
    shutil.copy(ROOT / "chapters" / NAME, path)
    run_it(path)
    assert not workspace.is_edited(workspace.read(path))
    edit(path)
    assert workspace.is_edited(workspace.read(path))
    path.write_text('{"cells": [')  # half-saved: kept, as if edited
    assert workspace.read(path) is None and workspace.is_edited(None)


def test_sync_copies_updates_and_never_overwrites_an_edit(course):
    checkout, ws = course
    assert workspace.sync(checkout, ws) == [f"copied {f}/{NAME}" for f in workspace.FOLDERS]
    assert workspace.sync(checkout, ws) == []  # nothing new
    run_it(ws / "solutions" / NAME)   # run, not edited
    edit(ws / "chapters" / NAME)      # the learner's answer
    mine = (ws / "chapters" / NAME).read_text()
    assert workspace.sync(checkout, ws) == []  # the same version: nothing to say or do
    new_version(checkout)
    said = workspace.sync(checkout, ws)
    assert said == [f"kept your edits in chapters/{NAME}; the updated version is "
                    f"chapters/{NAME[:-6]}.updated.ipynb",
                    f"updated solutions/{NAME} (you had not edited it)"]
    assert (ws / "chapters" / NAME).read_text() == mine  # byte for byte
    beside = workspace.read(ws / "chapters" / f"{NAME[:-6]}.updated.ipynb")
    assert beside["cells"][2]["source"] == ["# the chapter, improved"]
    assert workspace.read(ws / "solutions" / NAME)["cells"][2]["source"] == [
        "# the chapter, improved"]
    # a second update while the learner works in the updated copy too: both are kept
    edit(ws / "chapters" / f"{NAME[:-6]}.updated.ipynb", "# more of my work")
    new_version(checkout, "# improved again")
    said = workspace.sync(checkout, ws)
    assert said[0].startswith(f"kept chapters/{NAME} and {NAME[:-6]}.updated.ipynb")
    assert workspace.read(ws / "chapters" / f"{NAME[:-6]}.updated.ipynb")["cells"][3][
        "source"] == "# more of my work"
    assert (ws / "chapters" / NAME).read_text() == mine
    # a notebook of the learner's own, and one the checkout no longer has, are left alone
    (ws / "chapters" / "mine.ipynb").write_text("{}")
    (checkout / "solutions" / NAME).unlink()
    workspace.sync(checkout, ws)
    assert (ws / "chapters" / "mine.ipynb").read_text() == "{}"
    assert (ws / "solutions" / NAME).exists()


def test_a_copy_without_a_digest_counts_as_edited(course):
    checkout, ws = course
    (ws / "chapters").mkdir(parents=True)
    (ws / "chapters" / NAME).write_text('{"cells": [], "metadata": {}}')  # an older course's
    said = workspace.sync(checkout, ws)
    assert said[0].startswith(f"kept your edits in chapters/{NAME}")
    assert (ws / "chapters" / NAME).read_text() == '{"cells": [], "metadata": {}}'


def test_the_build_never_overwrites_an_edited_notebook(tmp_path, monkeypatch, capsys):
    """The freshness check tells people to run the build: it must not erase a learner's answers
    in chapters/. It rebuilds what nobody edited and says which it kept."""
    for folder in ("source", "chapters", "solutions"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "README.md").write_text("no table here\n")
    monkeypatch.setattr(build, "ROOT", tmp_path)
    real = build.expected_files
    monkeypatch.setattr(build, "expected_files", lambda root=tmp_path: real(root))
    source = tmp_path / "source" / "01_attention.py"
    source.write_text(source.read_text().replace("# ### Exercise 1.1: split into heads",
                                                 "# ### Exercise 1.1: split into heads, again"))
    edit(tmp_path / "chapters" / NAME)
    mine = (tmp_path / "chapters" / NAME).read_text()
    assert build.main([]) == 1
    out = capsys.readouterr()
    assert f"kept chapters/{NAME}" in out.err and "workspace/" in out.err
    assert (tmp_path / "chapters" / NAME).read_text() == mine
    assert f"wrote solutions/{NAME}" in out.out  # nobody edited that one
    assert "again" in (tmp_path / "solutions" / NAME).read_text()
    (tmp_path / "chapters" / NAME).unlink()  # moved out of the way: now it is rebuilt
    assert build.main([]) == 0
    assert "again" in (tmp_path / "chapters" / NAME).read_text()


def test_run_all_reads_on_past_exercises_and_checks_only():
    """Learner notebooks tag exactly their exercise, check and timing cells raises-exception (so
    a cell that fails for another reason still stops Run All); solutions tag none (nbval stays strict);
    each exercise heading links to its solution at that heading."""
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            expected = cell.cell_type == "code" and bool({"exercise", "check", "timing"} &
                                                         set(tags))
            assert ("raises-exception" in tags) == expected, (path.name, cell.id)
        headings = [line for c in nb.cells if c.cell_type == "markdown"
                    for line in c.source.splitlines()
                    if line.startswith("#") and "Exercise" in line]
        links = [c.source for c in nb.cells if "*Stuck?*" in c.source]
        assert headings and sum(s.count("*Stuck?*") for s in links) == len(headings), path.name
        for heading in headings:
            anchor = heading.lstrip("#").strip().replace(" ", "-")
            assert any(f"(../solutions/{path.name}#{anchor})" in s for s in links), heading
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert not any("raises-exception" in c.metadata.get("tags", []) for c in nb.cells)
        assert not any("*Stuck?*" in c.source for c in nb.cells)
