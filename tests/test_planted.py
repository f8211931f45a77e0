"""The planted models compute their task through the planted mechanism, and only through it:
ablate a planted component and the task fails; ablate a decoy and it does not."""

import json

import pytest
import torch
from safetensors.torch import load_file

import mechinterp_course as mc
from mechinterp_course import circuits, evaluate, method_scores, planted


@pytest.fixture(scope="module")
def induction():
    return mc.load_model("planted-induction")


def second_half_loss(model, tokens, hooks=None):
    return method_scores.repeat_loss(model, tokens, hooks)


def test_zoo_lists_each_model_with_its_truth():
    assert set(planted.zoo()) == {"induction", "redundant"}
    truth = planted.truth("induction")
    assert truth["heads"] == {"previous token": [0, 0], "induction": [1, 0]}
    assert set(map(tuple, truth["decoys"].values())) == {(0, 1), (1, 1)}
    with pytest.raises(KeyError, match="the zoo: induction, redundant"):
        planted.truth("no-such-model")
    with pytest.raises(KeyError, match="the zoo"):
        mc.load_model("planted-no-such-model")
    assert "planted-induction" in mc.available_offline()


@pytest.mark.parametrize("name", sorted(planted.BUILDERS))
def test_shipped_weights_are_what_the_builder_makes(name):
    hf, truth = planted.BUILDERS[name]()
    shipped = load_file(planted.FOLDER / name / "model.safetensors")
    built = {k: v.half() for k, v in hf.state_dict().items()}
    assert set(shipped) <= set(built)
    for key, weight in shipped.items():
        assert torch.equal(weight, built[key]), key
    assert truth == planted.truth(name)


def test_loads_offline_in_about_a_second(monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    model = mc.load_model("planted-induction")
    assert time.perf_counter() - start < 5  # generous for a loaded CI machine
    assert model.to_str_tokens("A B ab") == ["<bos>", "A", "B", "ab"]
    assert next(model.parameters()).dtype == torch.float32


def test_induction_runs_through_the_planted_heads_and_not_the_decoys(induction):
    tokens = method_scores.repeated_distinct(induction)
    intact = second_half_loss(induction, tokens)
    assert intact < 0.01  # it copies
    chance = float(torch.log(torch.tensor(float(induction.cfg.d_vocab))))
    truth = planted.truth("induction")
    for layer, head in truth["heads"].values():  # planted: without it, no better than chance
        assert second_half_loss(induction, tokens, circuits.ablate_heads([(layer, head)])) > \
            0.8 * chance, (layer, head)
    unused = [tuple(h) for h in truth["decoys"].values()] + [tuple(h) for h in
                                                            truth["unused"]["heads"]]
    assert second_half_loss(induction, tokens, circuits.ablate_heads(unused)) < 0.05


def test_unrepeated_tokens_are_not_predicted(induction):
    """The null of the task: with nothing to copy the model does no better than chance."""
    tokens = method_scores.repeated_distinct(induction)
    n = (tokens.shape[1] - 1) // 2
    tokens[:, 1 + n:] = method_scores.repeated_distinct(induction, seed=1)[:, 1 + n:]
    clash = (tokens[:, 1 + n:, None] == tokens[:, None, 1: 1 + n]).any(-1)  # a repeat by chance
    loss = torch.nn.functional.cross_entropy(induction(tokens)[:, :-1].transpose(1, 2),
                                             tokens[:, 1:], reduction="none")[:, n + 1:]
    assert float(loss[~clash[:, 1:]].mean()) > 2.0


def test_attention_scores_cannot_tell_the_decoys_from_the_real_heads(induction):
    """The trap the decoys are for: a pattern score names the decoy as surely as the real head."""
    # (layers, heads); random words repeat within a half too, which splits the attention
    scores = evaluate.induction_scores(induction, seq_len=20, batch=8)
    assert scores[1, 0] > 0.5 and scores[1, 1] > 0.5
    assert abs(float(scores[1, 0] - scores[1, 1])) < 1e-4
    assert scores[0].max() < 0.1 and scores[1, 2:].max() < 0.5


def test_redundant_heads_each_suffice():
    """Zero-ablate either induction head and the repeat is still copied; both, and it is not:
    a method that ablates one component at a time calls both unimportant."""
    model = mc.load_model("planted-redundant")
    tokens = method_scores.repeated_distinct(model)
    chance = float(torch.log(torch.tensor(float(model.cfg.d_vocab))))
    truth = planted.truth("redundant")
    (first, backup), = truth["redundant"]
    assert second_half_loss(model, tokens) < 0.01
    for head in (first, backup):
        assert second_half_loss(model, tokens, circuits.ablate_heads([tuple(head)])) < 0.01
    assert second_half_loss(model, tokens, circuits.ablate_heads([tuple(first), tuple(backup)])) \
        > 0.8 * chance
    previous = tuple(truth["heads"]["previous token"])
    assert second_half_loss(model, tokens, circuits.ablate_heads([previous])) > 0.8 * chance
    decoy = tuple(truth["decoys"]["previous token look-alike"])
    assert second_half_loss(model, tokens, circuits.ablate_heads([decoy])) < 0.01


def test_method_table_is_regenerated_by_its_command_and_shows_the_traps():
    """The shipped table is what `python -m mechinterp_course.method_scores` writes, and its
    rows say where each method fails against the planted truth."""
    shipped = json.loads(method_scores.RESULTS.read_text())
    assert json.loads(json.dumps(method_scores.table())) == shipped
    induction, redundant = shipped["induction"], shipped["redundant"]
    # attention patterns name the decoys with the real heads: recall 1, precision 1/2
    assert induction["attention pattern scores"]["recall"] == 1.0
    assert induction["attention pattern scores"]["precision"] == 0.5
    # one-at-a-time ablation finds the circuit, but misses both redundant induction heads
    assert induction["zero ablation, one head at a time"]["precision"] == 1.0 == \
        induction["zero ablation, one head at a time"]["recall"]
    assert redundant["zero ablation, one head at a time"]["named"] == [[0, 0]]
    # direct logit attribution sees only the heads that write the answer, not the one that
    # makes it possible (the previous-token head writes nothing the unembedding reads)
    assert induction["direct logit attribution"]["named"] == [[1, 0]]
    assert [0, 0] not in redundant["direct logit attribution"]["named"]


def test_scores_count_right_and_wrong_names():
    assert method_scores.score([(0, 0), (0, 1)], [[0, 0], [1, 0]]) == {
        "named": [[0, 0], [0, 1]], "precision": 0.5, "recall": 0.5}
    assert method_scores.score([], [[0, 0]])["precision"] is None
