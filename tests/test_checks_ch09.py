"""Chapter 09's checks pass the solution and other correct answers, fail the stub, and name the
mistake in wrong answers; and the ablation hooks they rest on do what they say."""

import pytest

import mechinterp_course as mc
from mechinterp_course import method_scores
from notebooks import exercise_functions, fails_with

NB = "09_planted_mechanisms.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


@pytest.fixture(scope="module")
def planted_induction():
    return mc.load_model("planted-induction")


def _sweep(mistake=None):
    """An ablation sweep written by a learner, with one mistake."""
    def fn(model, tokens, scored, labels):
        mask = scored if mistake != "unmasked" else scored | True
        clean = method_scores.task_loss(model, tokens, mask)
        out, hooks = {}, []
        for label in labels:
            if mistake == "cumulative":
                hooks += method_scores.ablation_hooks(label)
            else:
                hooks = method_scores.ablation_hooks(labels if mistake == "at once" else label)
            loss = method_scores.task_loss(model, tokens, mask, hooks)
            out[label] = {"no baseline": loss, "flipped": clean - loss}.get(mistake, loss - clean)
        if mistake == "missing":
            out.pop(labels[-1])
        if mistake == "extra":
            out["L9H9"] = 0.0
        if mistake == "nan":
            out[labels[0]] = float("nan")
        return out
    return fn


@pytest.mark.parametrize("model_name", ["planted-induction", "course"])
def test_ablation_effects(model_name, course_model, planted_induction):
    from mechinterp_course.checks import ch09
    model = course_model if model_name == "course" else planted_induction
    check = ch09.check_ablation_effects
    check(SOLUTION["ablation_effects"], model)
    check(_sweep(), model)  # another correct answer
    check(method_scores.ablation_effects, model)  # the package's
    fails_with(check, STUB["ablation_effects"], model, "not done yet")
    fails_with(check, _sweep("no baseline"), model, "subtract the clean")
    fails_with(check, _sweep("flipped"), model, "sign is flipped")
    fails_with(check, _sweep("cumulative"), model, "accumulate")
    fails_with(check, _sweep("at once"), model, "all of them at once")
    fails_with(check, _sweep("unmasked"), model, "every position")
    fails_with(check, _sweep("missing"), model, "no value for")
    fails_with(check, _sweep("extra"), model, "not in `labels`")
    fails_with(check, _sweep("nan"), model, "nan")
    fails_with(check, lambda *a: [0.0] * 10, model, "return a dict")
    fails_with(check, lambda m, t, s, labels: {c: 0.0 for c in labels}, model,
               "not the loss increase")


def _precision_recall(mistake=None):
    def fn(named, truth):
        if mistake == "lists":  # counts repeats
            hits = sum(c in truth for c in named)
            return hits / len(named), min(hits / len(truth), 1.0) if named else 0.0
        named, truth = set(named), set(truth)
        hits = len(named & truth)
        if not named:
            if mistake == "zero":
                return 0.0, 0.0
            if mistake == "divide":
                return hits / len(named), 0.0
            return None, 0.0
        precision, recall = hits / len(named), hits / len(truth)
        return (recall, precision) if mistake == "swapped" else (precision, recall)
    return fn


def test_precision_recall():
    from mechinterp_course.checks import ch09
    check = ch09.check_precision_recall
    check(SOLUTION["precision_recall"], None)
    check(_precision_recall(), None)  # another correct answer
    check(lambda named, truth: tuple(method_scores.score(named, truth)[k]
                                     for k in ("precision", "recall")), None)  # the package's
    fails_with(check, STUB["precision_recall"], None, "not done yet")
    fails_with(check, _precision_recall("swapped"), None, "swapped")
    fails_with(check, _precision_recall("zero"), None, "should be None")
    fails_with(check, _precision_recall("divide"), None, "precision is None")
    fails_with(check, _precision_recall("lists"), None, "Count each component once")
    fails_with(check, lambda named, truth: 0.5, None, "two values")
    fails_with(check, lambda named, truth: (float("nan"), 0.5), None, "nan")
    fails_with(check, lambda named, truth: (None, 0.5), None, "only for a method that names")
    fails_with(check, lambda named, truth: (0.5, 0.5), None, "share of the named")


def test_ablation_hooks_remove_every_label_and_refuse_unknown_ones(planted_induction):
    """Two heads of one layer are both removed (a dict of hooks would keep one), and a label
    that names no component is an error, not a silent no-op."""
    model = planted_induction
    tokens, scored = method_scores.task("induction", model)
    redundant = mc.load_model("planted-redundant")
    clean = method_scores.task_loss(redundant, tokens, scored)
    both = method_scores.task_loss(redundant, tokens, scored,
                                   method_scores.ablation_hooks(["L1H0", "L1H1"]))
    assert both - clean > 3.0  # each alone suffices: only removing both breaks the copying
    for bad in ("L1", "mlp0", "H1L0", 3):
        with pytest.raises(ValueError, match="unknown component"):
            method_scores.ablation_hooks([bad])


def test_patching_effects(planted_induction):
    from mechinterp_course.checks import ch09
    model, check = planted_induction, ch09.check_patching_effects
    check(SOLUTION["patching_effects"], model)
    check(method_scores.patching_effects, model)
    fails_with(check, STUB["patching_effects"], model, "not done yet")
    fails_with(check, lambda m, t, s, ls: {c: -v for c, v in method_scores.patching_effects(
        m, t, s, ls).items()}, model, "sign is flipped")
    for kwargs, message in ((dict(targets="corrupt"), "own next tokens"),
                            (dict(into="clean"), "noising"), (dict(cumulative=True), "pile up")):
        fails_with(check, lambda m, t, s, ls, kw=kwargs: ch09._patched(m, t, s, ls, **kw), model,
                   message)
    fails_with(check, lambda m, t, s, ls: method_scores.ablation_effects(m, t, s, ls), model,
               "not what patching")
    fails_with(check, lambda m, t, s, ls: list(method_scores.patching_effects(m, t, s, ls)
                                               .values()), model, "return a dict")


def test_open_component_design(planted_induction):
    import torch

    from mechinterp_course import claims
    from mechinterp_course.checks import ch09
    from mechinterp_course.checks import design as design_check

    model, check = planted_induction, ch09.check_component_design
    design_check._shown.pop("Exercise 9.4", None)
    assert check(SOLUTION["component_design"], model).passed
    fails_with(check, STUB["component_design"], model, "not done yet")
    measure = SOLUTION["task_loss_rise"]

    def design(control=("L1H3", (1,)), measure=measure):
        return lambda: claims.Design(
            claims.Claim("The task needs L1H0", "loss rise", 1.0, "another head"),
            effect=claims.Site("L1H0", (1,)),
            control=None if control is None else claims.Site(*control), measure=measure)

    fails_with(check, design(control=None), model, "no control")
    fails_with(check, design(control=("L0H3", (0,))), model, "not matched")
    fails_with(check, design(measure=lambda site, s: torch.full((s.n,), 3.0 * (
        site.component == "L1H0"))), model, "untrained model")
    fails_with(check, design(measure=lambda site, s: measure(site, claims.Sample(
        model, s.data, "", s.n))), model, "sample.model")
    design_check._shown.pop("Exercise 9.4", None)
