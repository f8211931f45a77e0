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
