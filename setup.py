"""Only what pyproject.toml cannot say: the wheel carries the learner and solution notebooks.

They live in chapters/ and solutions/ at the top of the checkout (where git, the build and
nbval want them); a wheel can only carry files inside its package, so building one copies them
into mechinterp_course/notebooks/ in the build folder, never into the checkout. An editable
install has no copy: run from a checkout, the launcher uses the checkout's own notebooks."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FOLDERS = ("chapters", "solutions")  # as mechinterp_course.workspace.FOLDERS


class build_py_with_notebooks(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        root = Path(__file__).resolve().parent
        for folder in FOLDERS:
            notebooks = sorted((root / folder).glob("*.ipynb"))
            if not notebooks:
                raise SystemExit(f"no notebooks in {root / folder}: build them first "
                                 "(python -m mechinterp_course.build)")
            dest = Path(self.build_lib) / "mechinterp_course" / "notebooks" / folder
            dest.mkdir(parents=True, exist_ok=True)
            for nb in notebooks:
                shutil.copyfile(nb, dest / nb.name)


setup(cmdclass={"build_py": build_py_with_notebooks})
