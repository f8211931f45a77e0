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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mechinterp-course", description=__doc__)
    ap.add_argument("folder", nargs="?", help="notebook folder (default: the checkout's chapters/)")
    ap.add_argument("--solutions", action="store_true", help="open solutions/ instead")
    args, extra = ap.parse_known_args(argv)
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
