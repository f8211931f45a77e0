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
import pytest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    text, error, message = [], None, ""
    for out in item.test_outputs or []:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":  # progress bars differ when a
            text.append(out.get("text", ""))                 # cache is reused: leave them out
        elif kind in ("execute_result", "display_data") and \
                "application/vnd.jupyter.widget-view+json" not in out.get("data", {}):
            text.append(out.get("data", {}).get("text/plain", ""))  # not a widget's progress
        elif kind == "error":
            error, message = out.get("ename"), out.get("evalue", "")
    if outcome.get_result().failed and error is None:
        error, message = "failed under nbval", str(call.excinfo.value if call.excinfo else "")
    runs = item.config.__dict__.setdefault("solution_runs", {})
    runs.setdefault(Path(str(item.fspath)).name, []).append(dict(
        tags=item.cell.metadata.get("tags", []), source=item.cell.source, text="".join(text),
        error=error, message=message))
