"""Workshop plans and chapter times computed from the course's own numbers, never typed by hand.

A chapter's time is its reading (markdown words at READING_WPM, code lines at CODE_LINES_PER_MIN:
assumptions, stated on every page that uses them), its exercises' own estimates (the "🟢 Easy,
10 minutes." line under each "Exercise N.M" heading) and its solution notebook's measured run
time (docs/NOTEBOOK_TIMES.md), rounded up to 5 minutes. The build writes each chapter's
"**Time:**" line and docs/teaching/ from them, so a longer chapter changes its plans, and a plan
that no longer fits its day is a build error, not a surprise in the room.

What a learner can do when stuck comes from the checks themselves: each check's known mistakes
(the messages it prints) are read from its source, so the page cannot drift from them.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

READING_WPM = 120          # technical prose, read carefully (an assumption, not a measurement)
CODE_LINES_PER_MIN = 10    # given code, read and run (an assumption too)
BREAK_MIN, LUNCH_MIN, SETUP_MIN, WRAP_MIN = 15, 60, 20, 15

ESTIMATE = re.compile(r"(🟢|🟠|🔴)\s*(Easy|Medium|Hard),\s*(\d+)\s*minutes")
TIME_LINE = re.compile(r"\*\*Time:\*\* about \d+ minutes")


@dataclass
class Exercise:
    number: str
    title: str
    level: str
    minutes: int


@dataclass
class Chapter:
    stem: str                      # "04_induction_circuits"
    title: str
    objectives: str                # the "You will be able to:" sentence
    prerequisites: list[str]       # chapter numbers, "03"
    exercises: list[Exercise]
    words: int                     # markdown words
    code_lines: int
    run_s: float | None            # the solution notebook's measured run time

    @property
    def reading_min(self) -> float:
        return self.words / READING_WPM + self.code_lines / CODE_LINES_PER_MIN

    @property
    def exercise_min(self) -> int:
        return sum(e.minutes for e in self.exercises)

    @property
    def minutes(self) -> int:
        """Reading, exercises and running, rounded up to 5 minutes."""
        total = self.reading_min + self.exercise_min + (self.run_s or 0) / 60
        return 5 * math.ceil(total / 5)

    @property
    def number(self) -> str:
        return self.stem[:2]

    def minutes_without(self, later: list[str]) -> int:
        """`minutes`, less the exercises a plan leaves for after the workshop (the reading and
        running stay)."""
        left = sum(e.minutes for e in self.exercises if e.number in later)
        total = self.reading_min + self.exercise_min - left + (self.run_s or 0) / 60
        return 5 * math.ceil(total / 5)


def notebook_times(root: Path) -> dict[str, tuple[float, int]]:
    """{notebook stem: (seconds, kernel peak MiB)} from docs/NOTEBOOK_TIMES.md (empty when it
    is not there)."""
    doc = root / "docs" / "NOTEBOOK_TIMES.md"
    if not doc.exists():
        return {}
    rows = re.findall(r"^\| (\d\d_\w+) \| ([\d.]+) \| (\d+) \|", doc.read_text(), re.M)
    return {stem: (float(s), int(mib)) for stem, s, mib in rows}


def read_chapter(path: Path, text: str | None = None, run_s: float | None = None) -> Chapter:
    """A chapter's numbers from its source (jupytext percent format)."""
    import jupytext

    from .build import EXERCISE, title_of

    nb = jupytext.reads(path.read_text() if text is None else text, fmt="py:percent")
    first = nb.cells[0].source
    title = title_of(nb)
    flat = " ".join(first.split())
    goals = re.search(r"\*\*You will be able to:\*\*\s*(.*?)(?:\*\*Time|$)", flat)
    prereq = re.search(r"\*\*Prerequisites?:\*\*\s*([^.]*)", flat)
    exercises, words, code = [], 0, 0
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("## Bonus"):
            break  # for after the chapter: not in its time
        if cell.cell_type != "markdown":
            code += len([ln for ln in cell.source.splitlines() if ln.strip()])
            continue
        words += len(re.findall(r"\w+", cell.source))
        heading = None
        for line in cell.source.splitlines():  # an exercise heading, read as the build does
            m = EXERCISE.search(line.lstrip("#* ")) if line.lstrip().startswith("#") else None
            if m:
                heading = (m.group(1), m.group(2).strip().rstrip("."))
            e = ESTIMATE.search(line)
            if e and heading:
                exercises.append(Exercise(heading[0], heading[1], e.group(2), int(e.group(3))))
                heading = None
    return Chapter(path.stem, title, goals.group(1).strip() if goals else "",
                   re.findall(r"\b(\d\d)\b", prereq.group(1)) if prereq else [],
                   exercises, words, code, run_s)


def chapters(root: Path) -> list[Chapter]:
    from .build import sources

    times = notebook_times(root)
    return [read_chapter(p, run_s=times.get(p.stem, (None,))[0]) for p in sources(root)]


def with_time_line(text: str, chapter: Chapter) -> str:
    """The source with its "**Time:** about N minutes" line set to the computed time."""
    return TIME_LINE.sub(f"**Time:** about {chapter.minutes} minutes", text, count=1)


# Which chapters each format teaches, block by block: a 15-minute break between blocks, lunch
# after `lunch_after` blocks of a day; `later` (and `open_later`, every open exercise): exercises
# a plan leaves for after the workshop.
# The minutes are computed; the build refuses a plan whose day runs past `day_min`.
PLANS = {
    "half_day": {
        "title": "A half-day workshop: what a transformer computes, and attention from scratch",
        "audience": "Python and some PyTorch; no interpretability needed.",
        "day_min": 240, "lunch_after": None,
        "days": [[["00_forward_pass"], ["01_attention"]]],
        "later": {"01_attention": ["1.6"]}, "open_later": True,  # rotary, on SmolLM2
    },
    "one_day": {
        "title": "A one-day workshop: from the forward pass to the first circuit",
        "audience": "Python and PyTorch; no interpretability needed.",
        "day_min": 540, "lunch_after": 2,
        "days": [[["00_forward_pass"], ["01_attention"], ["03_residual_stream"],
                  ["04_induction_circuits"]]],
        "later": {"01_attention": ["1.6"]}, "open_later": True,
    },
    "three_day": {
        "title": "A three-day workshop: from the forward pass to circuit tracing",
        "audience": "Python and PyTorch; linear algebra helps from day 2.",
        "day_min": 540, "lunch_after": 2,
        "days": [
            [["00_forward_pass"], ["01_attention"], ["03_residual_stream"],
             ["04_induction_circuits"]],
            [["05_superposition"], ["06_sparse_autoencoders"], ["07_causal_interventions"]],
            [["08_capstone"], ["14_circuit_tracing"], ["09_planted_mechanisms"],
             ["11_steering"]],
        ],
        # the first day's open exercises go home; days 2 and 3 keep theirs, the capstone's above all
        "later": {"00_forward_pass": ["0.5"], "01_attention": ["1.6", "1.8"],
                  "03_residual_stream": ["3.5"], "04_induction_circuits": ["4.6"],
                  "09_planted_mechanisms": ["9.4"]},
    },
}


class PlanError(ValueError):
    pass


def plan_later(plan: dict, ch: Chapter) -> list[str]:
    """The exercises of chapter `ch` a plan leaves for after the workshop: those it names, and
    with `open_later`, every open exercise (a design of the learner's own takes its time)."""
    named = list(plan.get("later", {}).get(ch.stem, []))
    if plan.get("open_later"):
        named += [e.number for e in ch.exercises
                  if e.title.startswith("(open)") and e.number not in named]
    return named


def _clock(minutes: int, start: int = 9 * 60) -> str:
    t = start + minutes
    return f"{t // 60:02d}:{t % 60:02d}"


def plan_page(name: str, course: dict[str, Chapter]) -> str:
    """One workshop's page: a timetable per day, objectives per block, live demos, and which
    prerequisites the plan assumes rather than teaches."""
    plan = PLANS[name]
    taught: list[str] = []
    out = [f"# {plan['title']}", "",
           f"**Who:** {plan['audience']} **Before:** every machine passes "
           "`mechinterp-course doctor` (see [the checklist](README.md#before-the-day)).", "",
           "Every time on this page is computed by the build (`mechinterp_course.teaching`) from "
           "each exercise's estimate, the reading (markdown at "
           f"{READING_WPM} words a minute, code at {CODE_LINES_PER_MIN} lines a minute: "
           "assumptions) and the solution notebooks' run times measured on 2 CPU cores "
           "([NOTEBOOK_TIMES](../NOTEBOOK_TIMES.md)). Learners who finish a chapter early go on "
           "to its bonus exercises where it has them, or to the next chapter.", ""]
    for d, blocks in enumerate(plan["days"], 1):
        if len(plan["days"]) > 1:
            out += [f"## Day {d}", ""]
        out += ["| time | what | minutes |", "| --- | --- | --- |"]
        t = 0
        if d == 1:
            out.append(f"| {_clock(t)} | Set-up check: `mechinterp-course doctor`, launch, "
                       f"open chapter {blocks[0][0][:2]} | {SETUP_MIN} |")
            t += SETUP_MIN
        notes = []
        for b, block in enumerate(blocks):
            for stem in block:
                ch = course.get(stem)
                if ch is None:
                    raise PlanError(f"plan {name!r} names {stem}, which is not a chapter")
                later = plan_later(plan, ch)
                unknown = sorted(set(later) - {e.number for e in ch.exercises})
                if unknown:
                    raise PlanError(f"plan {name!r} leaves exercises {unknown} of {stem} for "
                                    "later, which it does not have")
                kept = [e for e in ch.exercises if e.number not in later]
                left = (f"; left for after the workshop: Exercise{'s' * (len(later) > 1)} "
                        f"{', '.join(later)}" if later else "")
                out.append(f"| {_clock(t)} | Chapter {ch.number}: {ch.title} ({len(kept)}"
                           f" exercises, {sum(e.minutes for e in kept)} min; reading "
                           f"{ch.reading_min:.0f} min; runs in {ch.run_s or 0:.0f} s{left}) | "
                           f"{ch.minutes_without(later)} |")
                t += ch.minutes_without(later)
                missing = [p for p in ch.prerequisites
                           if not any(s.startswith(p) for s in taught)]
                notes.append((ch, missing))
                taught.append(stem)
            if b + 1 < len(blocks):
                pause = LUNCH_MIN if plan["lunch_after"] == b + 1 else BREAK_MIN
                out.append(f"| {_clock(t)} | {'Lunch' if pause == LUNCH_MIN else 'Break'} | "
                           f"{pause} |")
                t += pause
        out.append(f"| {_clock(t)} | Wrap-up: what each claim rested on, questions | "
                   f"{WRAP_MIN} |")
        t += WRAP_MIN
        out += ["", f"Ends at {_clock(t)} ({t} minutes with breaks; the day's budget is "
                f"{plan['day_min']}).", ""]
        if t > plan["day_min"]:
            raise PlanError(f"plan {name!r} day {d} takes {t} minutes, over its {plan['day_min']}:"
                            " move a chapter, or make the day longer")
        out += ["### What each block teaches", ""]
        for ch, missing in notes:
            first = ch.exercises[0] if ch.exercises else None
            demo = (f" **Live demo:** read and run the chapter up to Exercise {first.number} "
                    f"({first.title}) on the projector, then hand over." if first else "")
            assumed = (f" **Assumes** chapter{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)} (not taught here: a short recap, or reading "
                       "beforehand)." if missing else "")
            out.append(f"- **Chapter {ch.number}.** {ch.objectives}{demo}{assumed}")
        out.append("")
    rest = [ch for stem, ch in course.items() if stem not in taught]
    if rest:
        out += ["## Not in this plan", "",
                "For learners who want more, after the workshop (same computed times):", ""]
        out += [f"- Chapter {ch.number}: {ch.title}, about {ch.minutes} minutes"
                + (f" (after chapter{'s' * (len(ch.prerequisites) > 1)} "
                   f"{', '.join(ch.prerequisites)})" if ch.prerequisites else "")
                for ch in rest]
        out.append("")
    return "\n".join(out)


def check_messages(root: Path) -> dict[str, list[str]]:
    """{exercise number: the mistakes its check names} read from mechinterp_course/checks/:
    the keys of the `mistakes` dicts passed to `compare`, and the messages of the
    ExerciseFailed it raises (an f-string's fields shown as "…"; a message of fewer than four
    words besides its fields is left out)."""
    def text(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = text(node.left), text(node.right)
            return None if left is None or right is None else left + right
        return None

    found: dict[str, list[str]] = {}
    for path in sorted((root / "mechinterp_course" / "checks").glob("ch*.py")):
        for fn in ast.parse(path.read_text()).body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            doc = ast.get_docstring(fn) or ""
            m = re.match(r"Exercise (\d+\.\d+)", doc)
            if not m:
                continue
            said = found.setdefault(m.group(1), [])
            for node in ast.walk(fn):
                msgs = []
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "compare":
                    mistakes = node.args[3] if len(node.args) > 3 else next(
                        (k.value for k in node.keywords if k.arg == "mistakes"), None)
                    if isinstance(mistakes, ast.Dict):
                        msgs = [text(k) for k in mistakes.keys]
                elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                        getattr(node.exc.func, "id", None) == "ExerciseFailed" and node.exc.args:
                    msgs = [text(node.exc.args[0])]
                for msg in msgs:  # a message that is mostly fields says little on a page
                    if msg and len(re.findall(r"[A-Za-z]{3,}", msg)) >= 4:
                        msg = re.sub(r"^Exercise \d+\.\d+:\s*|^…:\s*", "", " ".join(msg.split()))
                        if msg not in said:
                            said.append(msg)
    return found


def index_page(course: list[Chapter], mistakes: dict[str, list[str]]) -> str:
    total = sum(ch.minutes for ch in course)
    out = ["# Teaching the course", "",
           "Plans for a [half day](half_day.md), [one day](one_day.md) and "
           "[three days](three_day.md). This folder is written by the build "
           "(`python -m mechinterp_course.build`) from the chapters' sources, the checks and the "
           "measured run times: edit those, not these pages.", "",
           "## Before the day", "",
           "1. Choose the install route (README): the wheel, or for a room without network, a "
           "wheelhouse (`bash scripts/wheelhouse.sh wheelhouse/`, checked by "
           "`bash scripts/offline_classroom.sh wheelhouse/`) on a USB stick or a share.",
           "2. Every learner runs `mechinterp-course doctor`: one line per item, and for each ✗ "
           "what to do; a ! says what will be skipped (SmolLM2's cells, for example) and how to "
           "add it.",
           "3. Every learner runs `mechinterp-course` and opens chapter 00; the first cell "
           "prints the package and torch versions and the device.",
           "4. Run the plan's solution notebooks once on the machine you will project from: "
           "what the learners will see, and how long it takes there.", "",
           "## The chapters", "",
           f"Computed as on the plans' pages; all {len(course)} chapters take about "
           f"{total // 60} h {total % 60:02d} min without breaks.", "",
           "| chapter | minutes | exercises (min) | reading (min) | run (s) | prerequisites |",
           "| --- | --- | --- | --- | --- | --- |"]
    for ch in course:
        out.append(f"| {ch.number} {ch.title} | {ch.minutes} | {len(ch.exercises)} "
                   f"({ch.exercise_min}) | {ch.reading_min:.0f} | "
                   f"{'—' if ch.run_s is None else f'{ch.run_s:.0f}'} | "
                   f"{', '.join(ch.prerequisites) or '—'} |")
    out += ["", "## When a learner is stuck", "",
            "In this order, each a step further towards the answer:", "",
            "1. **Read the check's message.** A failed check names the mistake it recognises "
            "(the list below) without printing the answer; `mechinterp_course.checks."
            "show_traceback()` shows the check's code when the message is not enough.",
            "2. **The hint** under the exercise's heading.",
            "3. **The solution**: each exercise links to it (it opens in a tab of its own, the "
            "learner's work stays as it is). *Run All* goes on past an unsolved exercise, so a "
            "learner who is stuck can read on and come back.", "",
            "What each check says when it recognises a mistake (read from the checks' source):",
            ""]
    numbers = {e.number: (ch, e) for ch in course for e in ch.exercises}
    for number in sorted(mistakes, key=lambda n: tuple(int(x) for x in n.split("."))):
        if not mistakes[number] or number not in numbers:
            continue
        _, e = numbers[number]
        out.append(f"- **Exercise {number}** ({e.title}):")
        out += [f"  - {m}" for m in mistakes[number]]
    out.append("")
    return "\n".join(out)


def pages(root: Path, course: list[Chapter] | None = None) -> dict[Path, str]:
    """{path: text} of docs/teaching/."""
    course = chapters(root) if course is None else course
    by_stem = {ch.stem: ch for ch in course}
    folder = root / "docs" / "teaching"
    out = {folder / "README.md": index_page(course, check_messages(root))}
    for name in PLANS:
        out[folder / f"{name}.md"] = plan_page(name, by_stem)
    return out
