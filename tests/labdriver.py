"""Driving JupyterLab in a real browser (Debian's chromium, through Playwright) for the browser
tests: start the course's launcher, open a notebook, run all its cells from the UI, read what
the page shows."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def require_browser():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        if os.environ.get("MECHINTERP_BROWSER_TEST") == "required":
            pytest.fail(f"browser test required but missing: {', '.join(missing)}")
        pytest.skip(f"missing: {', '.join(missing)}")


def copy_course(dest: Path) -> Path:
    """The checkout's notebooks copied into `dest`, laid out as a checkout, so the launcher's
    workspace (and whatever the notebooks write) lands there, never in the repository."""
    for folder in ("chapters", "solutions"):
        shutil.copytree(ROOT / folder, dest / folder)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def launched_lab(launcher: list[str], cwd: Path, settings: Path, env: dict | None = None):
    """(base URL, token) of JupyterLab started by the course's launcher command in `cwd`, on
    loopback with a token, every cell kept in the page; stopped afterwards. Its output goes to
    cwd/server.log."""
    # every cell in the DOM (JupyterLab otherwise renders only the cells in view)
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"windowingMode": "none"}')
    port, token = free_port(), secrets.token_hex(16)
    cmd = [*launcher, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={settings}"]
    log = open(cwd / "server.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError((cwd / "server.log").read_text()) from None
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start:\n" + (cwd / "server.log").read_text())
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the notebook in view
# The notebook's kernel has started, connected and is idle (the toolbar shows "idle" earlier).
KERNEL_READY = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""


def run_all_cells(page, base: str, token: str, name: str, timeout_s: float) -> int:
    """Open a notebook, wait for its kernel, run every cell from the UI (JupyterLab's own "Run All
    Cells" command) and wait until each code cell shows its execution count. Returns the number
    of code cells."""
    page.set_default_timeout(timeout_s * 1000)
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")  # reset: no tabs from before
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_READY, timeout=90_000)
    result = page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
                           ".then(() => 'done', e => 'failed: ' + e)")
    assert result == "done", result
    prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt")
    n_code = page.locator(f"{NOTEBOOK} .jp-CodeCell").count()
    deadline = time.time() + timeout_s  # the command returns before the cells finish
    last, unchanged_since = None, time.time()
    while time.time() < deadline:
        texts = prompts.all_inner_texts()
        if len(texts) == n_code and all(t.strip()[1:-2].isdigit() for t in texts):
            return n_code
        if texts != last:
            last, unchanged_since = texts, time.time()
        elif (time.time() - unchanged_since > 3 and page.evaluate(KERNEL_READY)
              and errors_on(page)):
            break  # Run All stopped at an error, and the kernel is idle: nothing more will run
        time.sleep(0.5)
    raise AssertionError(f"{name}: not every cell ran: {texts}; errors: {errors_on(page)}")


def errors_on(page) -> list[str]:
    """The tracebacks shown in the open notebook (JupyterLab renders them as stderr text)."""
    texts = page.locator(f"{NOTEBOOK} .jp-OutputArea-output"
                         "[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    return [t for t in texts if "Traceback" in t]


@contextlib.contextmanager
def opened_page(browser, screenshot: str | None = None):
    """A browser tab, closed afterwards, with a screenshot of it saved even when the test fails."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        yield page
    finally:
        if screenshot:
            page.screenshot(path=str(ARTIFACTS / screenshot))
        page.close()


CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .filter(c => c.model.type === 'code')
    .map(c => { const outs = c.model.outputs.toJSON();
                const err = outs.find(o => o.output_type === 'error');
                return {tags: c.model.getMetadata('tags') || [], error: !!err,
                        message: err ? err.ename + ': ' + err.evalue : '',
                        source: c.model.sharedModel.getSource().slice(0, 80)}; })"""
OPEN_PATH = """() => { const w = window.jupyterapp.shell.currentWidget;
    return w && w.context ? w.context.path : null; }"""




def learner_run_all(page, base: str, token: str, name: str, timeout_s: float) -> list[dict]:
    """Run All in a learner notebook; assert that every cell ran, that every check failed (the
    exercises are unsolved) and that nothing outside the exercises and their checks failed."""
    try:
        run_all_cells(page, base, token, f"chapters/{name}", timeout_s)
        cells = page.evaluate(CELLS)
    finally:
        shut_down_kernels(base, token)  # an idle kernel still holds a gigabyte
    passed = [c["source"] for c in cells if "check" in c["tags"] and not c["error"]]
    assert not passed and any("check" in c["tags"] for c in cells), (
        f"{name}: checks passed on the stubs: {passed}")
    stray = [(i, c["source"], c["message"]) for i, c in enumerate(cells)
             if c["error"] and "raises-exception" not in c["tags"]]
    assert stray == [], f"{name}: code cells failed outside the exercises: {stray}"
    return cells


def shut_down_kernels(base: str, token: str):
    """Stop every kernel the server runs (closing a tab leaves its kernel running)."""
    import json

    sessions = json.load(urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10))
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={token}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=30)


def open_solution_from_the_file_browser(page, base: str, token: str, name: str):
    """From the launcher's landing page (the workspace's chapters/), up to the workspace and
    into solutions/, then open `name` there."""
    page.goto(f"{base}/?token={token}")
    listing = page.locator(".jp-DirListing-content")
    listing.get_by_text("00_forward_pass.ipynb", exact=True).wait_for()
    page.locator(".jp-BreadCrumbs-home").click()
    listing.get_by_text("solutions", exact=True).dblclick()
    listing.get_by_text(name, exact=True).dblclick()
    page.wait_for_function(f"() => ({OPEN_PATH})() === 'solutions/{name}'")


def type_an_answer(page, base: str, token: str, checkout: Path, name: str, text: str) -> str:
    """Type `text` at the end of the first unsolved exercise cell of the workspace's chapter
    `name`, save, and return the saved file's text once it holds the answer."""
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/chapters/{name}?reset&token={token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    stub = page.locator(f"{NOTEBOOK} .jp-CodeCell .cm-content",
                        has_text="raise NotImplementedError").first
    stub.scroll_into_view_if_needed()
    stub.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = checkout / "workspace" / "chapters" / name
    deadline = time.time() + 30
    while text.strip() not in saved.read_text() and time.time() < deadline:
        time.sleep(0.5)
    mine = saved.read_text()
    assert text.strip() in mine, "the answer typed in the browser was not saved"
    return mine


def publish_update(checkout: Path, name: str) -> str:
    """What a git pull brings: a new version of the checkout's chapter `name` (its first cell
    gains a sentence, its digest follows). Returns the sentence."""
    import nbformat

    from mechinterp_course import workspace

    sentence = "A sentence the update added."
    nb = nbformat.read(checkout / "chapters" / name, as_version=4)
    nb.cells[0].source += f"\n\n{sentence}"
    nb.metadata[workspace.KEY] = {"cells_sha256": workspace.cells_digest(nb)}
    nbformat.write(nb, checkout / "chapters" / name)
    return sentence
