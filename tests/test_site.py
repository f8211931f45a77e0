"""The website (`python -m mechinterp_course.site`), built from this tree into a temporary folder
and read twice: as files (every internal link and anchor resolves, nothing is loaded from another
host) and in a real browser (Debian's chromium through Playwright, the site served from
localhost with every other host blocked): every page loads without a console error or a failed
request, a chapter's images are drawn, its solutions and hints open and close, and search finds
"induction".

The chapters' outputs are those of this test run's nbval pass over solutions/ (written to
build/executed/ by conftest.py); run alone, the pages are checked without them. Skipped where
Sphinx, chromium or Playwright is missing, unless MECHINTERP_BROWSER_TEST=required (as `.ci/run`
sets), where that is a failure."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from labdriver import CHROMIUM, free_port, require_browser

REQUIRED = os.environ.get("MECHINTERP_BROWSER_TEST") == "required"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from mechinterp_course import site as site_module

    missing = site_module.missing_packages()
    if missing:
        if REQUIRED:
            pytest.fail(f"the site test is required but {missing} are missing (.[site])")
        pytest.skip(f"missing: {missing} (pip install -e '.[site]')")

    tmp = tmp_path_factory.mktemp("site")
    said = site_module.write_sources(tmp / "src")
    site_module.build_site(tmp / "src", tmp / "out")
    return tmp / "out", said


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") == "preconnect"):
                self.links.append((tag, attrs[key]))


@functools.cache
def parsed(path: Path) -> Links:
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def link_problems(out: Path) -> tuple[list[str], list[str]]:
    """(broken internal links and anchors, resources loaded from another host) of a built site."""
    pages = sorted(p for p in out.rglob("*.html")  # not the theme's templates in _static/
                   if "_static" not in p.relative_to(out).parts)
    broken, remote = [], []
    for page in pages:
        for tag, link in parsed(page).links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https"):
                if tag in ("script", "img", "link", "iframe"):  # loaded, not just linked
                    remote.append(f"{page.relative_to(out)}: {link}")
                continue
            if parts.scheme or link.startswith("#") and not parts.fragment:
                continue  # mailto:, javascript:, data:
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(out)}: {link}")
            elif parts.fragment and target.suffix == ".html" and \
                    unquote(parts.fragment) not in parsed(target).ids:
                broken.append(f"{page.relative_to(out)}: {link} (no such anchor)")
    return broken, remote


def test_the_link_check_finds_a_broken_link_an_anchor_and_a_remote_script(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text('<a href="a/b.html#there">b</a><a href="#top">top</a>'
                                         '<p id="top"></p><a href="https://example.org">ok</a>')
    (tmp_path / "a" / "b.html").write_text('<h1 id="there">b</h1><a href="../index.html#x">x'
                                           '</a><a href="c.html">c</a>'
                                           '<script src="https://cdn.example.org/m.js"></script>')
    broken, remote = link_problems(tmp_path)
    assert broken == ["a/b.html: ../index.html#x (no such anchor)", "a/b.html: c.html"]
    assert remote == ["a/b.html: https://cdn.example.org/m.js"]


def test_every_internal_link_and_anchor_resolves_and_nothing_comes_from_elsewhere(site):
    out, _ = site
    assert len(list(out.glob("**/*.html"))) >= 15 + 34 + 6  # chapters, modules, the rest
    broken, remote = link_problems(out)
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:30])
    assert not remote, "loaded from another host:\n" + "\n".join(remote[:30])


def test_the_pages_are_made_from_the_repository(site):
    """Each chapter page links to Colab, Binder and the local route and states its measured time;
    the landing page maps every chapter; the glossary and the mistakes come from the code."""
    out, said = site
    from mechinterp_course import site as site_module
    from mechinterp_course import teaching

    course = teaching.chapters(site_module.ROOT)
    index = (out / "index.html").read_text()
    times = teaching.notebook_times(site_module.ROOT)
    for ch in course:
        page = (out / "chapters" / f"{ch.stem}.html").read_text()
        assert "colab.research.google.com/github/" in page and "mybinder.org/v2/gh/" in page
        assert "on your machine" in page and f"chapters/{ch.stem}.ipynb</span>" in page
        assert f"runs in {times[ch.stem][0]:.0f} s" in page
        assert f"chapters/{ch.stem}.html" in index
        assert page.count("hide above-input") >= len(ch.exercises)  # solutions folded
        hints = len(re.findall(r"^# \*(?:Nudge|Hints?):\*", (site_module.ROOT / "source" /
                                                    f"{ch.stem}.py").read_text(), re.M))
        assert page.count('class="dropdown admonition"') == hints, ch.stem  # every hint folded
    glossary = (out / "glossary.html").read_text()
    assert "resid_post" in glossary and "(batch, pos, d_model)" in glossary
    assert "(batch, n_heads, query_pos, key_pos)" in glossary
    mistakes = (out / "mistakes.html").read_text()
    assert "(batch, pos, n_heads, d_head)" in mistakes  # a message of Exercise 1.1's check
    package = {p.stem for p in (site_module.ROOT / "mechinterp_course").glob("*.py")}
    assert set(site_module.MODULES) == package - {"__init__"}  # a new module gets its page
    for m in site_module.MODULES:
        assert (out / "api" / f"{m}.html").exists()
    if REQUIRED:  # after nbval's pass in the same run, every chapter has its outputs
        assert said["executed"] == said["chapters"], said
    for ch in course:
        page = (out / "chapters" / f"{ch.stem}.html").read_text()
        assert "Traceback (most recent call last)" not in page and 'class="output error"' \
            not in page, f"{ch.stem} shows an error"


@contextlib.contextmanager
def served(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(folder))
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


@pytest.mark.browser
def test_in_a_browser_every_page_loads_and_the_folds_and_search_work(site):
    require_browser()
    from playwright.sync_api import sync_playwright

    out, said = site
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")
                   if "_sources" not in p.parts and "_static" not in p.parts)
    problems = []
    with served(out) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: (
            problems.append(f"request to another host: {route.request.url}"), route.abort()))
        page.on("console", lambda m: m.type == "error" and problems.append(
            f"{page.url}: console error: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        page.on("requestfailed", lambda r: problems.append(
            f"{page.url}: failed {r.url}: {r.failure}"))
        for rel in pages:
            page.goto(f"{base}/{rel}", wait_until="load")
            if page.locator("span.math, div.math").count():  # typeset, before moving on
                try:
                    page.wait_for_function("window.MathJax && MathJax.startup && "
                                           "MathJax.startup.promise", timeout=15000)
                    page.evaluate("() => MathJax.startup.promise")
                except Exception as e:  # noqa: BLE001  (reported with the rest)
                    problems.append(f"{rel}: MathJax did not start: {e}")
                if not page.locator("mjx-container").count():
                    problems.append(f"{rel}: MathJax typeset nothing")
            if rel.startswith("chapters/") and said["executed"]:
                bad = page.evaluate("[...document.images].filter(i => !i.complete || "
                                    "i.naturalWidth === 0).map(i => i.src)")
                problems += [f"{rel}: image not drawn: {src}" for src in bad]
        assert not problems, "\n".join(problems[:30])

        # a chapter's solution: folded, opens with a click, folds again
        page.goto(f"{base}/chapters/01_attention.html", wait_until="load")
        fold = page.locator("details.hide.above-input").first
        assert fold.get_attribute("open") is None
        fold.locator("summary").click()
        assert fold.get_attribute("open") is not None
        assert fold.locator("pre").first.is_visible()
        fold.locator("summary").click()
        assert fold.get_attribute("open") is None
        # a hint: folded, one click opens it
        hint = page.locator(".admonition.dropdown").first
        body = hint.locator("p").nth(1)
        assert not body.is_visible()
        hint.locator("button.toggle-button").click()
        page.wait_for_timeout(300)
        assert body.is_visible()
        if said["executed"]:
            assert page.locator(".cell_output img").count() > 0  # the attention pictures

        # search
        page.goto(f"{base}/search.html?q=induction", wait_until="load")
        page.wait_for_selector("#search-results li", timeout=15000)
        found = page.locator("#search-results li a").evaluate_all("as => as.map(a => a.href)")
        assert any("04_induction_circuits" in href for href in found), found
        browser.close()
