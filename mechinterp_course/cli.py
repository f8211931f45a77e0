"""`mechinterp-course`: open the course in JupyterLab, offline, as any user (root included)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def find_chapters(start: Path) -> Path | None:
    """The chapters/ folder of a course checkout at or above `start`."""
    for folder in [start, *start.parents]:
        if (folder / "chapters").is_dir():
            return folder / "chapters"
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
        if arg in ("--solutions", "-h", "--help") or not arg.startswith("-"):
            ours.append(arg)
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
    ap.add_argument("folder", nargs="?", help="notebook folder (default: the checkout's chapters/)")
    ap.add_argument("--solutions", action="store_true", help="open solutions/ instead")
    ours, extra = split_args(argv)
    args = ap.parse_args(ours)
    if args.folder:
        folder = Path(args.folder)
    else:
        chapters = find_chapters(Path.cwd())
        if chapters is None:
            print("No chapters/ folder here. Clone the course repository and run this command "
                  "inside it, or pass the notebook folder.", file=sys.stderr)
            return 2
        folder = chapters.parent / "solutions" if args.solutions else chapters
    if not folder.is_dir():
        print(f"{folder} is not a folder", file=sys.stderr)
        return 2
    cmd = jupyter_command(folder.resolve(), extra)
    if os.name == "posix":  # become JupyterLab, so Ctrl-C and kill reach the server itself
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
