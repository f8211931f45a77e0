"""The course as a learner sees it: the README's launch command copies a checkout into its
workspace and starts JupyterLab there; a real browser (Debian's chromium, driven by Playwright)
opens the attention solution notebook and chapter 06's latent browser, runs every cell from the
UI, and the page shows no errors, a rendered circuitsvis view and widgets that redraw when used.
Learner notebooks run to the end with their exercises unsolved, a solution opens from its
exercise, and an answer typed and saved in the browser survives an update. Screenshots go to
test-artifacts/ in the working directory.

Run alone: `python3 -m pytest -m browser`. Skipped where chromium or Playwright is missing, unless
MECHINTERP_BROWSER_TEST=required (as `.ci/run` sets), where that is a failure.
"""

from __future__ import annotations

import sys

import nbformat
import pytest

from labdriver import (ARTIFACTS, NOTEBOOK, OPEN_PATH, chromium, copy_course, errors_on,
                       launched_lab, learner_run_all, open_solution_from_the_file_browser,
                       opened_page, publish_update, require_browser, run_all_cells,
                       type_an_answer)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of the course's notebooks, laid out as a checkout, so the launcher's workspace (and
    whatever the notebooks write) lands in a temporary folder, never in the repository."""
    course = copy_course(tmp_path_factory.mktemp("course"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('fine')"),
                                         nbformat.v4.new_code_cell("1 / 0"),
                                         nbformat.v4.new_code_cell("print('never run')")],
                                  metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nbformat.write(nb, course / "chapters" / "broken.ipynb")  # error detection must see it fail
    # chapter 06's latent browser on a small SAE, trained in a second (the chapter itself takes
    # a minute, and nbval runs it; what only a browser can show is the widget answering)
    widget = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\n"
        "import mechinterp_course as mc\n"
        "from mechinterp_course import neurons, sae, widgets\n"
        "model = mc.load_model('course', device='cpu')\n"
        "data = neurons.collect(model, docs_per_family=6, seed=300, site=('resid_post', 1),\n"
        "                       skip_first=1)\n"
        "small = sae.SAE(model.cfg.d_model, 256, k=8, seed=0)\n"
        "sae.train(small, sae.batches_from(data.acts, 256, seed=0), steps=50, lr=2e-3)\n"
        "with torch.no_grad():\n"
        "    latents = small.encode(data.acts)\n"
        "widgets.latent_browser(model, small, data, latents, labels=data.token_labels(),\n"
        "                       start=int((latents > 0).sum(0).argmax()))")],
        metadata=nb.metadata)
    nbformat.write(widget, course / "chapters" / "latent_browser.ipynb")
    return course


@pytest.fixture(scope="module")
def lab(tmp_path_factory, checkout):
    """JupyterLab started by the README's command in the checkout (so on its workspace)."""
    require_browser()
    launcher = [sys.executable, "-m", "mechinterp_course.cli"]
    with launched_lab(launcher, checkout, tmp_path_factory.mktemp("settings")) as lab:
        yield lab


@pytest.fixture(scope="module")
def browser(lab):
    with chromium() as b:
        yield b


def test_a_failing_cell_is_seen(lab, browser):
    with opened_page(browser) as page:
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            run_all_cells(page, *lab, "chapters/broken.ipynb", timeout_s=60)
        assert any("ZeroDivisionError" in e for e in errors_on(page))


def test_attention_notebook_runs_in_the_browser_with_circuitsvis(lab, browser):
    with opened_page(browser, "01_attention.png") as page:
        run_all_cells(page, *lab, "solutions/01_attention.ipynb", timeout_s=150)
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


def test_the_latent_browser_of_chapter_06_responds_in_the_browser(lab, browser):
    with opened_page(browser, "latent_browser.png") as page:
        run_all_cells(page, *lab, "chapters/latent_browser.ipynb", timeout_s=120)
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


def test_run_all_reaches_the_end_of_a_learner_notebook_with_its_exercises_unsolved(
        lab, browser):
    """Run All in the learner's copy runs every cell although no exercise is done: the unsolved
    exercises and their checks fail (they are tagged raises-exception), nothing else does. (The
    first-hour test runs every chapter so, in a fresh environment.)"""
    with opened_page(browser, "learner_03.png") as page:
        learner_run_all(page, *lab, "03_residual_stream.ipynb", timeout_s=300)


def test_a_solution_is_one_click_from_its_exercise_and_in_the_file_browser(lab, browser):
    base, token = lab
    with opened_page(browser, "solution_link.png") as page:
        page.set_default_timeout(60_000)
        page.goto(f"{base}/lab/tree/chapters/01_attention.ipynb?reset&token={token}")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
        link = page.get_by_role("link", name="The solution to Exercise 1.2")
        link.scroll_into_view_if_needed()
        link.click()
        page.wait_for_function(f"() => ({OPEN_PATH})() === 'solutions/01_attention.ipynb'")
        open_solution_from_the_file_browser(page, base, token, "08_capstone.ipynb")


def test_an_answer_saved_in_the_browser_survives_an_update(lab, browser, checkout):
    from mechinterp_course import workspace

    name = "04_induction_circuits.ipynb"
    with opened_page(browser, "saved_answer.png") as page:
        mine = type_an_answer(page, *lab, checkout, name, "\nmy_answer = 42  # typed here")
    sentence = publish_update(checkout, name)
    said = workspace.sync(checkout, checkout / "workspace")  # what the next launch does
    saved = checkout / "workspace" / "chapters" / name
    assert any(f"kept your edits in chapters/{name}" in s for s in said), said
    assert saved.read_text() == mine
    assert sentence in saved.with_name(name.replace(".ipynb", ".updated.ipynb")).read_text()
