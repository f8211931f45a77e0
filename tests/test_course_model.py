"""What the shipped course model must do, measured on the bundled weights (see its model card)."""

import pytest

from mechinterp_course import evaluate, world


@pytest.fixture(scope="module")
def metrics(course_model):
    return evaluate.course_metrics(course_model)


def test_capitals(course_model, metrics):
    assert metrics["capital_accuracy"] >= evaluate.TARGETS["capital_accuracy"]
    logits = course_model("The capital of Texas is")[0, -1]
    assert course_model.to_string(logits.argmax()) == " Austin"


def test_induction_head(metrics):
    assert metrics["induction_score"] >= evaluate.TARGETS["induction_score"]


def test_previous_token_head(metrics):
    assert metrics["previous_token_score"] >= evaluate.TARGETS["previous_token_score"]


def test_indirect_object(metrics):
    assert metrics["ioi_logit_diff"] >= evaluate.TARGETS["ioi_logit_diff"]


def test_metrics_can_fail(course_model):
    """The metrics are not vacuous: a model with attention patterns scrambled scores low."""
    import torch
    with course_model.hooks({f"blocks.{i}.attn.hook_pattern": lambda p: p.flip(-1).tril()
                             for i in range(course_model.cfg.n_layers)}):
        assert evaluate.induction_scores(course_model).max() < 0.5
    assert evaluate.capital_accuracy(course_model, world.capital_prompts()[:3]) in (0, 1/3, 2/3, 1)
    assert torch.isfinite(evaluate.previous_token_scores(course_model, n_docs=2)).all()


def test_model_card_reports_the_shipped_metrics(metrics):
    from mechinterp_course.models import COURSE_MODEL_DIR
    card = (COURSE_MODEL_DIR / "MODEL_CARD.md").read_text()
    for name, value in metrics.items():
        assert f"| {name} | {value:.3f} |" in card, name


def test_unrepeated_tokens_are_the_matched_null_for_induction(course_model):
    """Same first half and length, fresh second half: the induction heads' score collapses there,
    while a score that only needs position (the previous-token head's) does not."""
    import torch

    from mechinterp_course import circuits
    rep = evaluate.repeated_tokens(course_model, 20, 4, seed=3)
    fresh = evaluate.unrepeated_tokens(course_model, 20, 4, seed=3)
    assert fresh.shape == rep.shape and torch.equal(fresh[:, :21], rep[:, :21])
    assert (fresh[:, 21:] != rep[:, 21:]).float().mean() > 0.9
    scores = {}
    for name, tokens in (("repeat", rep), ("fresh", fresh)):
        _, cache = course_model.run_with_cache(tokens, names=["pattern"])
        scores[name] = [(circuits.induction_score(cache["pattern", 2], 20).max(),
                         circuits.previous_token_score(cache["pattern", 0]).max())]
    (ind_rep, prev_rep), (ind_fresh, prev_fresh) = scores["repeat"][0], scores["fresh"][0]
    assert ind_rep > 0.8 and ind_fresh < 0.1
    assert abs(prev_rep - prev_fresh) < 0.05
