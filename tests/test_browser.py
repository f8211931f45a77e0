"""The course as a learner sees it: the README's launch command starts JupyterLab, a real browser
(Debian's chromium, driven by Playwright) opens the attention and SAE solution notebooks, runs
every cell from the UI, and the page shows no errors, a rendered circuitsvis view and widgets that
redraw when used. Screenshots go to test-artifacts/ in the working directory.

Run alone: `python3 -m pytest -m browser`. Skipped where chromium or Playwright is missing, unless
MECHINTERP_BROWSER_TEST=required (as `.ci/run` sets), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = pytest.mark.browser


def _require_browser():
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab started by the README's command on a copy of the notebooks (so running them in
    the UI never writes into the repository), on loopback, with a token."""
    _require_browser()
    folder = tmp_path_factory.mktemp("lab")
    for name in ("01_attention.ipynb", "06_sparse_autoencoders.ipynb"):
        shutil.copy(ROOT / "solutions" / name, folder / name)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('fine')"),
                                         nbformat.v4.new_code_cell("1 / 0"),
                                         nbformat.v4.new_code_cell("print('never run')")],
                                  metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nbformat.write(nb, folder / "broken.ipynb")  # the error detection must see this one fail
    # every cell in the DOM (JupyterLab otherwise renders only the cells in view)
    settings = tmp_path_factory.mktemp("settings")
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "mechinterp_course.cli", str(folder), "--no-browser",
           "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
           "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}"]
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError((folder / "server.log").read_text())
            time.sleep(0.5)
    else:
        server.kill()
        raise RuntimeError("JupyterLab did not start:\n" + (folder / "server.log").read_text())
    yield base, token
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
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
    deadline = time.time() + 30
    while time.time() < deadline:
        texts = prompts.all_inner_texts()
        if len(texts) == n_code and all(t.strip()[1:-2].isdigit() for t in texts):
            return n_code
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


def test_a_failing_cell_is_seen(lab, browser):
    with opened_page(browser) as page:
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            run_all_cells(page, *lab, "broken.ipynb", timeout_s=60)
        assert any("ZeroDivisionError" in e for e in errors_on(page))


def test_attention_notebook_runs_in_the_browser_with_circuitsvis(lab, browser):
    with opened_page(browser, "01_attention.png") as page:
        run_all_cells(page, *lab, "01_attention.ipynb", timeout_s=150)
        assert errors_on(page) == []
        view = page.locator(f"{NOTEBOOK} [id^='circuits-vis']").first
        view.scroll_into_view_if_needed()
        # circuitsvis is a React app: rendered means it built elements inside its mount point
        page.wait_for_function(
            "() => [...document.querySelectorAll(\"[id^='circuits-vis']\")]"
            ".some(e => e.querySelectorAll('*').length > 5)", timeout=30_000)
        html_before = view.inner_html()
        # hovering a token shows where it attends, which restyles the view
        view.get_by_text("Mary", exact=True).last.hover()
        page.wait_for_timeout(300)
        view.get_by_text("John", exact=True).last.hover()
        page.wait_for_timeout(500)
        assert view.inner_html() != html_before, "circuitsvis did not respond to the pointer"
        view.screenshot(path=str(ARTIFACTS / "01_circuitsvis.png"))


def test_sae_notebook_runs_in_the_browser_and_its_widget_responds(lab, browser):
    with opened_page(browser, "06_sparse_autoencoders.png") as page:
        run_all_cells(page, *lab, "06_sparse_autoencoders.ipynb", timeout_s=240)
        assert errors_on(page) == []
        widget = page.locator(f"{NOTEBOOK} .jp-OutputArea-output .widget-vbox").first
        widget.scroll_into_view_if_needed()
        image = widget.locator("img").first
        image.wait_for(timeout=30_000)
        src_before = image.get_attribute("src")
        box = widget.locator("input[type='number']").first
        box.fill(str(int(box.input_value()) + 1))
        box.press("Enter")
        page.wait_for_function(
            "([el, before]) => el.getAttribute('src') !== before",
            arg=[image.element_handle(), src_before], timeout=30_000)
        assert "latent" in widget.inner_text()
        widget.screenshot(path=str(ARTIFACTS / "06_latent_browser.png"))
