"""The world is the ground truth: it must be deterministic and say what it claims."""

import numpy as np

from mechinterp_course import world


def test_documents_are_deterministic():
    a, b = world.documents(3, 50), world.documents(3, 50)
    assert [d.text for d in a] == [d.text for d in b]
    assert [d.text for d in a] != [d.text for d in world.documents(4, 50)]


def test_every_family_appears_with_its_labels():
    docs = world.documents(0, 2000)
    assert {d.family for d in docs} == set(world.FAMILIES)
    for d in docs:
        if d.family == "country":
            capital, continent, _ = world.COUNTRIES[d.attrs["country"]]
            assert d.attrs["continent"] == continent
            # every sentence of a country document mentions that country or its capital
            assert d.attrs["country"] in d.text or capital in d.text


def test_capital_prompts_cover_the_world():
    prompts = world.capital_prompts()
    assert len(prompts) == len(world.COUNTRIES) + len(world.US_STATES)
    texas = next(p for p in prompts if p.attrs["subject"] == "Texas")
    assert (texas.text, texas.answer) == ("The capital of Texas is", " Austin")
    # the world never contradicts itself: no subject is both a country and a state
    assert not set(world.COUNTRIES) & set(world.US_STATES)


def test_ioi_prompts_name_both_people_and_end_before_the_answer():
    for p in world.ioi_prompts(200, seed=1):
        io, s = p.attrs["io"], p.attrs["s"]
        assert io != s and p.answer == " " + io and p.text.endswith(" to")
        assert p.text.count(io) == 1 and p.text.count(s) == 2
    orders = {p.attrs["order"] for p in world.ioi_prompts(50)}
    assert orders == {"ABBA", "BABA"}


def test_unknown_family_is_a_clear_error():
    import pytest
    with pytest.raises(ValueError, match="unknown family"):
        world.sample_document(np.random.default_rng(0), "poetry")


def test_rule_family_follows_its_table_except_for_noise():
    followed = total = 0
    for d in world.documents(0, 300, "rule"):
        seq = d.attrs["symbols"]
        assert d.text == "rule: " + " ".join(world.RULE_SYMBOLS[i] for i in seq)
        for a, b, c in zip(seq, seq[1:], seq[2:]):
            followed += int(world.RULE_TABLE[a, b] == c)
            total += 1
    assert 0.85 <= followed / total <= 0.92  # 15% noise, some of which lands on the rule anyway
