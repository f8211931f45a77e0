"""`mechinterp-course`: open the course in JupyterLab, offline, as any user (root included).

It first copies the chapters and solutions into a workspace and opens JupyterLab there: installed
from a wheel, the notebooks the wheel carries go into `mechinterp-course/` under the current
folder (or the folder given with --into); run inside a checkout, the checkout's go into its
`workspace/` (ignored by git), so the learner's answers never sit where `git pull` or the build
would touch them. An update never overwrites a notebook the learner has edited (see
`mechinterp_course.workspace`)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from . import workspace


def find_chapters(start: Path) -> Path | None:
    """The chapters/ folder of a course checkout at or above `start` (a workspace's chapters/
    does not count: run from inside it, the launcher still finds the checkout)."""
    for folder in [start, *start.parents]:
        if (folder / "chapters").is_dir() and not (folder / workspace.MARKER).exists():
            return folder / "chapters"
    return None


def packaged_notebooks() -> Path | None:
    """The folder of notebooks a wheel carries (with chapters/ and solutions/, as a checkout),
    or None: an editable install from a checkout has none."""
    folder = Path(__file__).resolve().parent / "notebooks"
    return folder if all((folder / f).is_dir() for f in workspace.FOLDERS) else None


def find_workspace(start: Path) -> Path | None:
    """The learner's workspace at or above `start`, so a launch from inside one reuses it."""
    for folder in [start, *start.parents]:
        if (folder / workspace.MARKER).exists():
            return folder
    return None


def jupyter_command(notebook_dir: Path, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_dir}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses root without it (containers, Binder)
    return cmd + extra


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(ours, JupyterLab's). An option we do not know goes to JupyterLab with its value, written
    either way (``--port=8890`` or ``--port 8890``); a bare word after one is its value unless it
    is an existing folder. Otherwise "8890" would be taken for the notebook folder."""
    ours, extra, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--solutions", "--copy-only", "-h", "--help") or not arg.startswith("-"):
            ours.append(arg)
        elif arg == "--into" or arg.startswith("--into="):
            ours.append(arg)
            if arg == "--into" and i + 1 < len(argv):
                ours.append(argv[i + 1])
                i += 1
        else:
            extra.append(arg)
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if "=" not in arg and nxt is not None and not nxt.startswith("-") \
                    and not Path(nxt).is_dir():
                extra.append(nxt)
                i += 1
        i += 1
    return ours, extra


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["doctor"]:  # the preflight, for workshops
        from . import doctor
        return doctor.main(argv[1:])
    ap = argparse.ArgumentParser(
        prog="mechinterp-course", description=__doc__,
        epilog="Every other option goes to JupyterLab, for example --port 8890 or --no-browser. "
               "`mechinterp-course doctor` checks that this machine is ready for the course.")
    ap.add_argument("folder", nargs="?",
                    help="open this notebook folder as it is, without copying anything")
    ap.add_argument("--into", metavar="FOLDER",
                    help="the workspace to copy the notebooks into and open (default: the "
                         "workspace you are in, else ./mechinterp-course, or a checkout's "
                         "workspace/)")
    ap.add_argument("--solutions", action="store_true",
                    help="start in the workspace's solutions/ (they are always one click away "
                         "in the file browser too)")
    ap.add_argument("--copy-only", action="store_true",
                    help="copy the notebooks into the workspace and stop (to prepare machines "
                         "for a workshop)")
    ours, extra = split_args(argv)
    args = ap.parse_args(ours)
    if args.folder and (args.into or args.copy_only):
        print("give a folder to open as it is, or --into/--copy-only to copy the course, not "
              "both", file=sys.stderr)
        return 2
    if args.folder:
        folder = Path(args.folder)
        if not folder.is_dir():
            print(f"{folder} is not a folder", file=sys.stderr)
            return 2
    else:
        chapters = find_chapters(Path.cwd())
        source = chapters.parent if chapters is not None else packaged_notebooks()
        if source is None:
            print("No course notebooks here: this install has none (an editable install) and "
                  "this folder is not in a course checkout. Run this command inside the "
                  "checkout, install the course's wheel, or pass a notebook folder.",
                  file=sys.stderr)
            return 2
        if args.into:
            folder = Path(args.into).expanduser()
        elif chapters is not None:
            folder = chapters.parent / "workspace"
        else:
            folder = find_workspace(Path.cwd()) or Path.cwd() / "mechinterp-course"
        folder = folder.resolve()
        if folder == source.resolve():
            print(f"{folder} holds the course's own notebooks: copy them into another folder",
                  file=sys.stderr)
            return 2
        try:
            said = workspace.sync(source, folder)
        except OSError as e:  # a read-only checkout, a full disk
            print(f"Could not copy the course into {folder}: {e}. Make it writable, choose "
                  "another with --into FOLDER, or open a folder as it is: mechinterp-course "
                  "FOLDER", file=sys.stderr)
            return 2
        for line in said:
            print(line)
        print(f"Your workspace: {folder} (your answers are saved here; updates never overwrite "
              "a notebook you edited).")
        if args.copy_only:
            return 0
        start = "solutions" if args.solutions else "chapters"
        if not any(a.split("=")[0].endswith(".default_url") for a in extra):
            extra = [f"--LabApp.default_url=/lab/tree/{start}", *extra]
    cmd = jupyter_command(folder.resolve(), extra)
    if os.name == "posix":  # become JupyterLab, so Ctrl-C and kill reach the server itself
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
