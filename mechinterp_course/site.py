"""The course as a static website, built offline: ``python -m mechinterp_course.site``.

It writes Sphinx sources into build/site-src/ and the site into build/site/ (both ignored by
git), from what the repository already has, so no page is written by hand:

- a page per chapter: its solution notebook with the outputs of the last test run (nbval writes
  them to build/executed/; a notebook not there is shown without outputs, and the page says so),
  each exercise's solution and the set-up cell folded (myst-nb's hide-input), each hint folded
  (a dropdown), and on top the launch links (Colab, Binder, a local JupyterLab) and the
  notebook's measured run time and memory (docs/NOTEBOOK_TIMES.md);
- a landing page with the chapter map (what each teaches, how long, what comes first), from
  `teaching`; the workshop pages of docs/teaching/; "Common mistakes", from the checks' own
  messages; a glossary of the activation names with their shapes, measured on the course model;
  and a page per helper module from its docstrings.

Sphinx, myst-nb and sphinx-book-theme (the `site` extra) install from the package registry and
need no Node.js and no network when they build; MathJax comes from the sphinx-mathjax-offline
wheel and is served from the site itself, so the site works offline too.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from . import build, teaching

ROOT = build.ROOT
SRC, OUT, EXECUTED = (ROOT / "build" / "site-src", ROOT / "build" / "site",
                      ROOT / "build" / "executed")
MODULES = ["models", "hooked", "attention", "kvcache", "lens", "circuits", "neurons",
           "toy_models", "sae", "sae_sweep", "interventions", "probes", "claims", "evaluate",
           "planted", "method_scores", "steering", "remote", "transcoders", "attribution_graph",
           "viz", "widgets", "world", "train", "memory", "planner", "provenance", "sweep",
           "workspace", "doctor", "cli", "teaching", "build", "site"]
HINT = re.compile(r"^\*(Nudge|Hints?):\*\s*(.*)$")  # build.LAYER, and older "*Hints:*"
WIDGET = "application/vnd.jupyter.widget-view+json"


PACKAGES = ("sphinx", "myst_nb", "sphinx_book_theme", "sphinx_togglebutton",
            "sphinx-mathjax-offline")  # the `site` extra, by the names they import as


def missing_packages() -> list[str]:
    from importlib.util import find_spec

    return [m for m in PACKAGES if find_spec(m) is None]


def fold_hints(markdown: str) -> str:
    """Each "*Nudge:*" and "*Hint:* ..." paragraph of a markdown cell as a folded dropdown,
    numbered as the learner's notebook numbers them."""
    out, n = [], 0
    for segment in build.hint_segments(markdown, HINT):
        if isinstance(segment, str):
            out.append(segment)
            continue
        kind, body = segment
        n += 1
        title = f"Hint {n}" + (": a nudge" if kind == "Nudge" else "")
        out += ["", f":::{{admonition}} {title}", ":class: dropdown", *body, ":::", ""]
    return "\n".join(out)


def launch_cell(stem: str, times: dict) -> str:
    colab, binder = build.launch_urls(f"chapters/{stem}.ipynb")
    run = (f"Measured: the solution runs in {times[stem][0]:.0f} s on 2 CPU cores, its kernel "
           f"peaking at {times[stem][1]} MiB ([all notebooks](../NOTEBOOK_TIMES.md))."
           if stem in times else "Not measured yet.")
    return (f"**Open the exercises:** [Colab]({colab}) · [Binder]({binder}) · on your machine, "
            f"`mechinterp-course` then `chapters/{stem}.ipynb` in JupyterLab. {run}")


def chapter_page(stem: str, times: dict, executed: Path = EXECUTED):
    """The chapter's page as a notebook for myst-nb (never executed by the site build)."""
    import nbformat

    from . import workspace

    nb = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", as_version=4)
    run = executed / f"{stem}.ipynb"
    ran = False
    if run.exists():  # a run of this version of the notebook, not of an older one
        last = nbformat.read(run, as_version=4)
        if workspace.cells_digest(last) == workspace.recorded_digest(nb):
            nb, ran = last, True
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown":
            cell.source = fold_hints(cell.source)
            continue
        if tags & {"solution", "setup"}:
            cell.metadata["tags"] = sorted(tags | {"hide-input"})
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET in data:  # no widget state is kept: its picture (widgets.Explorer), or a note
                data.pop(WIDGET)
                plain = data.pop("text/plain", "")  # "VBox(children=...)", or a progress bar's
                if re.search(r"\d+%\|", "".join(plain)):
                    continue  # tqdm's bar, finished: nothing to see on a page
                if "image/png" in data:
                    kept.append(out)
                    note = "[Above: the widget's first view. Open the notebook to use it.]\n"
                else:
                    note = "[An interactive widget: it runs in the notebook, not on this page.]\n"
                kept.append(nbformat.v4.new_output("stream", name="stdout", text=note))
                continue
            kept.append(out)
        cell.outputs = kept
    notes = [launch_cell(stem, times)]
    if not ran:
        notes.append("*This build has no recorded run of this notebook: outputs are missing. "
                     "Run the tests (`python3 -m pytest solutions/`) before building the site.*")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("\n\n".join(notes)))
    nb.metadata["mystnb"] = {"execution_mode": "off"}
    return nb, ran


def glossary() -> str:
    """The activation names with their shapes, measured on the course model."""
    import mechinterp_course as mc
    from .hooked import GLOBAL_NAMES, LAYER_NAMES

    model = mc.load_model("course")
    cfg = model.cfg
    text = "The capital of Texas is"
    _, cache = model.run_with_cache(text)
    n_pos = model.to_tokens(text).shape[1]
    sizes = {1: "batch", n_pos: "pos", cfg.d_model: "d_model", cfg.n_heads: "n_heads",
             cfg.d_head: "d_head", cfg.d_mlp: "d_mlp", cfg.d_vocab: "d_vocab"}
    rows = ["| name | TransformerLens name | shape | on the course model |", "| --- | --- | --- | --- |"]

    def symbolic(shape, name):
        dims = [sizes.get(d, str(d)) for d in shape]
        if name in ("pattern", "attn_scores"):  # (batch, n_heads, query pos, key pos)
            dims = ["batch", "n_heads", "query_pos", "key_pos"]
        return "(" + ", ".join(dims) + ")"
    for short, full in LAYER_NAMES.items():
        try:
            x = cache[short, 0]
        except (KeyError, ValueError):
            rows.append(f"| `{short}` | `{full.format(l='L')}` | — | not in a GPT-2-style model |")
            continue
        rows.append(f"| `{short}` | `{full.format(l='L')}` | {symbolic(x.shape, short)} | "
                    f"{tuple(x.shape)} |")
    for short, full in GLOBAL_NAMES.items():
        x = cache[short]
        rows.append(f"| `{short}` | `{full}` | {symbolic(x.shape, short)} | {tuple(x.shape)} |")
    return "\n".join([
        "# Glossary: activation names", "",
        f"Each name as `cache[name, layer]` (or `cache[name]`) and `model.hooks`, with its shape "
        f"on the prompt {text!r} ({n_pos} tokens, batch 1) of the course model ({cfg.n_layers} "
        f"layers, d_model {cfg.d_model}, {cfg.n_heads} heads of d_head {cfg.d_head}, d_mlp "
        f"{cfg.d_mlp}, d_vocab {cfg.d_vocab}). Measured when this site was built.", "",
        *rows, ""])


def mistakes_page(course: list) -> str:
    found = teaching.check_messages(ROOT)
    out = ["# Common mistakes", "",
           "What each exercise's check says when it recognises a mistake, read from the checks' "
           "own source when this site was built, so this page cannot drift from them.", ""]
    for ch in course:
        rows = [(e, found.get(e.number, [])) for e in ch.exercises]
        rows = [(e, said) for e, said in rows if said]
        if not rows:
            continue
        out += [f"## Chapter {ch.number}: {ch.title}", ""]
        for e, said in rows:
            out.append(f"**Exercise {e.number}: {e.title}** "
                       f"([in the chapter](chapters/{ch.stem}.ipynb))")
            out += [""] + [f"- {m}" for m in said] + [""]
    return "\n".join(out)


def index_page(course: list) -> str:
    rows = ["| chapter | you will be able to | minutes | after |", "| --- | --- | --- | --- |"]
    for ch in course:
        rows.append(f"| [{ch.number} {ch.title}](chapters/{ch.stem}.ipynb) | {ch.objectives} | "
                    f"{ch.minutes} | {', '.join(ch.prerequisites) or '—'} |")
    toc = "\n".join(f"chapters/{ch.stem}" for ch in course)
    api = "\n".join(f"api/{m}" for m in MODULES)
    return "\n".join([
        "# mechinterp-course", "",
        "An open, Jupyter-native course on how transformers compute and how to look inside them "
        "(mechanistic interpretability). Every chapter is a notebook you work through on a laptop "
        "CPU, on Colab or on Binder, with or without internet; every claim a chapter makes about "
        "a model is an assert that could fail, tested against a null.", "",
        "**Start:** `pip install mechinterp-course` then `mechinterp-course` (the README has the "
        "details and the offline route), or open a chapter below on Colab or Binder.", "",
        "## The chapters", "",
        "Minutes: the exercises' estimates, the reading and the measured run time "
        "([how they are computed](teaching/README.md)).", "", *rows, "",
        "```{toctree}", ":caption: Chapters", ":hidden:", "", toc, "```", "",
        "```{toctree}", ":caption: Teaching and reference", ":hidden:", "",
        "teaching/README", "teaching/half_day", "teaching/one_day", "teaching/three_day",
        "mistakes", "glossary", "NOTEBOOK_TIMES", "```", "",
        "```{toctree}", ":caption: The helper package", ":hidden:", "", api, "```", ""])


def api_page(name: str) -> str:
    """A helper module's page from its docstrings (written in the course's Markdown, not
    reStructuredText, so read as MyST): the module's, then each public function's and class's,
    with its signature, in the order the module defines them."""
    import importlib
    import inspect

    mod = importlib.import_module(f"mechinterp_course.{name}")
    out = [f"# `mechinterp_course.{name}`", "", inspect.cleandoc(mod.__doc__ or ""), ""]

    def entry(label: str, obj, level: str) -> list[str]:
        try:  # annotations are strings here (postponed evaluation): show them unquoted
            sig = re.sub(r"(: |-> )'([^']*)'", r"\1\2", str(inspect.signature(obj)))
            sig = re.sub(r"<class '([\w.]+)'>", r"\1", sig)
        except (TypeError, ValueError):
            sig = ""
        kind = "class" if inspect.isclass(obj) else "def"
        return [f"{level} `{label}`", "", "```python", f"{kind} {label.split('.')[-1]}{sig}",
                "```", "", inspect.getdoc(obj) or "", ""]
    for attr, obj in vars(mod).items():
        if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__ or not (
                inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        out += entry(attr, obj, "##")
        if inspect.isclass(obj):
            for m, member in vars(obj).items():
                if not m.startswith("_") and inspect.isfunction(member) and member.__doc__:
                    out += entry(f"{attr}.{m}", member, "###")
    return "\n".join(out)


CONF = '''\
# Written by mechinterp_course.site: edit that module, not this file.
project = "mechinterp-course"
author = "the mechinterp-course contributors"
# MathJax 3 from the sphinx-mathjax-offline wheel, served from the site itself
extensions = ["myst_nb", "sphinx_togglebutton", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"
html_theme = "sphinx_book_theme"
html_title = "mechinterp-course"
html_static_path = ["_static"]
html_context = {{"default_mode": "light"}}  # else the theme logs an error on a first visit
html_theme_options = {{
    "repository_url": "https://github.com/{repo}",
    "repository_branch": "{branch}",
    "use_repository_button": True,
    "launch_buttons": {{"colab_url": "https://colab.research.google.com",
                        "binderhub_url": "https://mybinder.org"}},
}}
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
exclude_patterns = ["_build"]
'''


def write_sources(src: Path = SRC) -> dict:
    """Every page's source under `src`; returns {"chapters": n, "executed": n}."""
    import nbformat

    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    (src / "api").mkdir()
    (src / "_static").mkdir()
    course = teaching.chapters(ROOT)
    times = teaching.notebook_times(ROOT)
    ran = 0
    for ch in course:
        nb, executed = chapter_page(ch.stem, times)
        ran += executed
        nbformat.write(nb, src / "chapters" / f"{ch.stem}.ipynb")
    (src / "index.md").write_text(index_page(course))
    (src / "mistakes.md").write_text(mistakes_page(course))
    (src / "glossary.md").write_text(glossary())
    shutil.copytree(ROOT / "docs" / "teaching", src / "teaching")
    shutil.copy(ROOT / "docs" / "NOTEBOOK_TIMES.md", src / "NOTEBOOK_TIMES.md")
    for m in MODULES:
        (src / "api" / f"{m}.md").write_text(api_page(m))
    (src / "conf.py").write_text(CONF.format(repo=build.REPOSITORY, branch=build.BRANCH))
    return {"chapters": len(course), "executed": ran}


def build_site(src: Path = SRC, out: Path = OUT) -> Path:
    """Sphinx, offline, with warnings as errors; the site's index.html."""
    from sphinx.cmd.build import build_main

    if out.exists():
        shutil.rmtree(out)
    # a warning (a broken cross-reference, an unknown directive) fails the build
    code = build_main(["-b", "html", "-q", "-W", "--keep-going", str(src), str(out)])
    if code:
        raise RuntimeError(f"sphinx failed (exit {code})")
    return out / "index.html"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the course's website into build/site/.")
    ap.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"missing {', '.join(missing)}: pip install -e '.[site]'", file=sys.stderr)
        return 2
    said = write_sources()
    index = build_site()
    print(f"wrote {index.parent} ({said['chapters']} chapters, {said['executed']} with the "
          "outputs of the last test run); open index.html in a browser")
    if said["executed"] < said["chapters"]:
        print("some chapters have no recorded outputs: run `python3 -m pytest solutions/` first",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
