"""The learner's own copy of the course, which updates never overwrite.

The checkout's `chapters/` and `solutions/` belong to git: a learner who works in them loses the
work to the next build or gets a conflict from the next `git pull`. So the launcher copies both
into `workspace/` (ignored by git) and JupyterLab opens there. Each built notebook records a digest
of its cells (`metadata.mechinterp_course.cells_sha256`); a copy whose cells no longer match its
digest has been edited, and is never replaced: the newer version is written beside it instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FOLDERS = ("chapters", "solutions")
KEY = "mechinterp_course"  # the notebook metadata key the build writes
MARKER = ".mechinterp-workspace"  # in a workspace, so it is never taken for a checkout


def cells_digest(nb: dict) -> str:
    """SHA-256 of a notebook's cell types and sources: what a learner edits. Outputs, execution
    counts and metadata are left out, so running a notebook or reopening it does not count."""
    cells = [[c.get("cell_type"), _text(c.get("source", ""))] for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source  # nbformat allows either


def recorded_digest(nb: dict) -> str | None:
    """The digest the build wrote into the notebook, or None (not a built notebook)."""
    meta = nb.get("metadata", {}).get(KEY, {})
    return meta.get("cells_sha256") if isinstance(meta, dict) else None


def read(path: Path) -> dict | None:
    """A notebook's JSON, or None when it cannot be read (half-saved, not JSON)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return nb if isinstance(nb, dict) else None


def is_edited(nb: dict | None) -> bool:
    """Whether a notebook's cells differ from the version it was built as. A notebook without a
    digest, or one that cannot be read, counts as edited: when in doubt, keep it."""
    if nb is None or recorded_digest(nb) is None:
        return True
    return cells_digest(nb) != recorded_digest(nb)


def _write(dest: Path, text: str):
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest)  # whole or not at all


def sync(source: Path, workspace: Path) -> list[str]:
    """Bring `workspace` up to date with the chapters and solutions in `source` (a checkout, or
    the notebooks a wheel carries); return one line for each notebook it copied, updated or
    kept. A new notebook is copied; an unedited copy of an older version is replaced; an edited
    copy is left as it is and the newer version goes beside it as `<name>.updated.ipynb`.
    Nothing the learner made or edited is ever removed."""
    said = []
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / MARKER).write_text("A learner's copy of the course, made by mechinterp-course.\n")
    for folder in FOLDERS:
        (workspace / folder).mkdir(parents=True, exist_ok=True)
        for src in sorted((source / folder).glob("*.ipynb")):
            text = src.read_text(encoding="utf-8")
            new = cells_digest(json.loads(text))
            dest = workspace / folder / src.name
            rel = f"{folder}/{src.name}"
            if not dest.exists():
                _write(dest, text)
                said.append(f"copied {rel}")
                continue
            mine = read(dest)
            if mine is not None and recorded_digest(mine) == new:
                continue  # the copy is of this version, edited or not
            if not is_edited(mine):
                _write(dest, text)
                said.append(f"updated {rel} (you had not edited it)")
                continue
            beside = dest.with_name(f"{src.stem}.updated.ipynb")
            other = read(beside) if beside.exists() else None
            if beside.exists() and recorded_digest(other) != new and is_edited(other):
                said.append(f"kept {rel} and {beside.name}, which hold your edits; the newest "
                            f"version is {source / folder / src.name}")
                continue
            if not beside.exists() or recorded_digest(other) != new:
                _write(beside, text)
            said.append(f"kept your edits in {rel}; the updated version is "
                        f"{folder}/{beside.name}")
    return said
