"""The workshop pages and the chapters' Time lines are computed, so they can be wrong only in the
computation: each part of it is checked here on made-up sources, a plan that stops fitting its
day stops the build, and every exercise of every chapter carries the estimate the times add."""

import re
import textwrap

import pytest

from mechinterp_course import build, teaching
from notebooks import ROOT

SOURCE = textwrap.dedent('''\
    # %% [markdown]
    # # 98 A made-up chapter
    #
    # **You will be able to:** count words.
    #
    # **Time:** about 999 minutes. **Prerequisites:** chapters 00 and 03.

    # %%
    x = 1
    y = 2

    # %% [markdown]
    # ### Exercise 98.1: the first
    #
    # 🟢 Easy, 10 minutes. Do it.

    # %%
    # BEGIN SOLUTION
    z = 3
    # END SOLUTION

    # %% [markdown]
    # ### Exercise 98.2: the second
    #
    # 🔴 Hard, 20 minutes. Do it too.
    ''')


def chapter(tmp_path, text=SOURCE, run_s=None):
    path = tmp_path / "98_made_up.py"
    path.write_text(text)
    return teaching.read_chapter(path, run_s=run_s)


def test_a_chapter_is_read_from_its_source(tmp_path):
    ch = chapter(tmp_path, run_s=90.0)
    assert ch.title == "A made-up chapter" and ch.objectives == "count words."
    assert ch.prerequisites == ["00", "03"]
    assert [(e.number, e.title, e.level, e.minutes) for e in ch.exercises] == [
        ("98.1", "the first", "Easy", 10), ("98.2", "the second", "Hard", 20)]
    assert ch.code_lines == 5  # non-blank lines of the code cells
    assert ch.words == 21 + 10 + 11  # counted by hand, cell by cell
    total = ch.words / teaching.READING_WPM + 5 / teaching.CODE_LINES_PER_MIN + 30 + 1.5
    assert ch.minutes == 5 * -(-total // 5) and ch.minutes % 5 == 0 and ch.minutes >= total
    assert chapter(tmp_path, run_s=None).minutes <= ch.minutes


def test_bonus_material_is_not_in_the_chapters_time(tmp_path):
    base = chapter(tmp_path, SOURCE)
    more = chapter(tmp_path, SOURCE.rstrip("\n") + "\n\n# %% [markdown]\n# ## Bonus\n#\n# - **Extend:** "
                   + "many more words to read " * 50 + "\n")
    assert more.words == base.words and more.minutes == base.minutes


def test_the_time_line_is_written_from_the_numbers(tmp_path):
    ch = chapter(tmp_path)
    text = teaching.with_time_line(SOURCE, ch)
    assert f"**Time:** about {ch.minutes} minutes." in text and "999" not in text
    assert text.replace(str(ch.minutes), "999", 1) == SOURCE


def test_an_exercise_without_its_estimate_is_not_silently_free(tmp_path):
    """Every exercise heading of every chapter has its estimate (an exercise without one would
    add nothing to the chapter's time)."""
    for src in build.sources():
        headings = {m.group(1) for line in src.read_text().splitlines()
                    if line.startswith("# #") and (m := build.EXERCISE.search(line))}
        estimated = {e.number for e in teaching.read_chapter(src).exercises}
        assert headings == estimated, f"{src.name}: no estimate for {headings - estimated}"
    missing = chapter(tmp_path, SOURCE.replace("🔴 Hard, 20 minutes. ", ""))
    assert [e.number for e in missing.exercises] == ["98.1"]  # what the check above catches


def test_a_plan_that_no_longer_fits_its_day_stops_the_build(monkeypatch):
    course = {ch.stem: ch for ch in teaching.chapters(ROOT)}
    page = teaching.plan_page("one_day", course)
    assert "Ends at" in page and "Set-up check" in page and "Lunch" in page
    monkeypatch.setitem(teaching.PLANS["one_day"], "day_min", 60)
    with pytest.raises(teaching.PlanError, match="takes .* minutes, over its 60"):
        teaching.plan_page("one_day", course)
    with pytest.raises(build.BuildError, match="over its 60"):
        build.expected_files()


def test_exercises_left_for_later_leave_the_plan_and_are_named(monkeypatch):
    course = {ch.stem: ch for ch in teaching.chapters(ROOT)}
    attention = course["01_attention"]
    monkeypatch.setitem(teaching.PLANS["half_day"], "day_min", 10_000)
    monkeypatch.setitem(teaching.PLANS["half_day"], "later", {})
    monkeypatch.setitem(teaching.PLANS["half_day"], "open_later", False)
    full = teaching.plan_page("half_day", course)
    left = attention.exercises[0]
    monkeypatch.setitem(teaching.PLANS["half_day"], "later", {"01_attention": [left.number]})
    page = teaching.plan_page("half_day", course)
    assert f"left for after the workshop: Exercise {left.number})" in page
    assert f"| {attention.minutes_without([left.number])} |" in page and page != full
    assert attention.minutes_without([left.number]) <= attention.minutes - 5 * (left.minutes // 5)
    monkeypatch.setitem(teaching.PLANS["half_day"], "later", {"01_attention": ["1.99"]})
    with pytest.raises(teaching.PlanError, match="does not have"):
        teaching.plan_page("half_day", course)
    opened = [e.number for e in attention.exercises if e.title.startswith("(open)")]
    assert opened and teaching.plan_later({"open_later": True}, attention) == opened
    assert teaching.plan_later({}, attention) == []


def test_a_plan_says_which_prerequisites_it_assumes(monkeypatch):
    course = {ch.stem: ch for ch in teaching.chapters(ROOT)}
    monkeypatch.setitem(teaching.PLANS["half_day"], "days", [[["04_induction_circuits"]]])
    page = teaching.plan_page("half_day", course)
    assert "**Assumes** chapters 01, 03" in page
    assert "Chapter 00: Inside the forward pass" in page.split("## Not in this plan")[1]
    assert "**Assumes**" not in teaching.plan_page("one_day", course)  # it teaches them in order


def test_every_plan_fits_and_the_timetable_adds_up():
    course = {ch.stem: ch for ch in teaching.chapters(ROOT)}
    for name, plan in teaching.PLANS.items():
        page = teaching.plan_page(name, course)
        ends = [int(m) for m in re.findall(r"\((\d+) minutes with breaks", page)]
        assert len(ends) == len(plan["days"]) and max(ends) <= plan["day_min"]
        for day, total in zip(plan["days"], ends):
            chapters = sum(course[stem].minutes_without(teaching.plan_later(plan, course[stem]))
                           for block in day for stem in block)
            pauses = (len(day) - 1) * teaching.BREAK_MIN + (
                teaching.LUNCH_MIN - teaching.BREAK_MIN) * (plan["lunch_after"] is not None)
            extra = teaching.WRAP_MIN + (teaching.SETUP_MIN if day is plan["days"][0] else 0)
            assert total == chapters + pauses + extra


def test_what_a_check_says_is_read_from_the_checks(tmp_path):
    found = teaching.check_messages(ROOT)
    assert any("(batch, pos, n_heads, d_head)" in m for m in found["1.1"])
    assert all(not m.startswith("Exercise") for ms in found.values() for m in ms)
    checks = tmp_path / "mechinterp_course" / "checks"
    checks.mkdir(parents=True)
    (checks / "ch98.py").write_text(textwrap.dedent('''\
        def check_first(fn):
            """Exercise 98.1: the first."""
            compare("Exercise 98.1", fn(), 1, {"You added one too many: " + "off by one.": 2})
            if fn() is None:
                raise ExerciseFailed(f"{ex}: you returned None, not {type(1)}.")
            raise ExerciseFailed(f"{ex}: {fn} got {fn()}")  # mostly fields: left out
        def helper():
            raise ExerciseFailed("not an exercise's check")
        '''))
    assert teaching.check_messages(tmp_path) == {
        "98.1": ["You added one too many: off by one.", "you returned None, not …."]}
