"""The planted models compute their task through the planted mechanism, and only through it:
ablate a planted component and the task fails; ablate a decoy and it does not."""

import json

import pytest
import torch
from safetensors.torch import load_file

import mechinterp_course as mc
from mechinterp_course import circuits, evaluate, lens, method_scores, planted


@pytest.fixture(scope="module")
def induction():
    return mc.load_model("planted-induction")


def second_half_loss(model, tokens, hooks=None):
    return method_scores.repeat_loss(model, tokens, hooks)


def test_zoo_lists_each_model_with_its_truth():
    assert set(planted.zoo()) == {"induction", "redundant", "fact-lookup", "superposition", "and"}
    truth = planted.truth("induction")
    assert truth["heads"] == {"previous token": [0, 0], "induction": [1, 0]}
    assert set(map(tuple, truth["decoys"].values())) == {(0, 1), (1, 1)}
    with pytest.raises(KeyError, match="the zoo: induction, redundant, fact-lookup, superposition, "
                                       "and"):
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
    fact, superposition = shipped["fact-lookup"], shipped["superposition"]
    ablation, direct = "zero ablation, one component at a time", "direct logit attribution"
    # attention patterns name the decoys with the real heads: recall 1, precision 1/2
    assert induction["attention pattern scores"]["recall"] == 1.0
    assert induction["attention pattern scores"]["precision"] == 0.5
    assert fact["attention pattern scores"]["named"] == ["L1H0", "L1H1"]  # mover and look-alike
    # one-at-a-time ablation finds the circuit, but misses both redundant induction heads
    assert induction[ablation]["precision"] == 1.0 == induction[ablation]["recall"]
    assert fact[ablation]["named"] == ["L1H0", "MLP0"]
    assert redundant[ablation]["named"] == ["L0H0"]
    # mean ablation falls into the same trap: the backup head still does the job
    mean = "mean ablation, one component at a time"
    assert redundant[mean]["named"] == ["L0H0"] and fact[mean]["named"] == ["L1H0", "MLP0"]
    # so does resample ablation; patching each head back alone (denoising) escapes it
    resample = "resample ablation, one component at a time"
    patching = "activation patching, one component at a time"
    assert redundant[resample]["named"] == ["L0H0"] and fact[resample]["named"] == ["L1H0", "MLP0"]
    assert redundant[patching]["named"] == ["L0H0", "L1H0", "L1H1"]
    assert all(rows[patching]["precision"] == 1.0 == rows[patching]["recall"]
               for name, rows in shipped.items() if name != "and")
    # ... but not the AND's: either operand's head alone restores nothing, so patching names
    # only the MLP, while every ablation names all three parts
    conjunction = shipped["and"]
    assert conjunction[patching]["named"] == ["MLP0"] == conjunction[direct]["named"]
    assert all(conjunction[f"{kind} ablation, one component at a time"]["recall"] == 1.0
               for kind in ("zero", "mean", "resample"))
    assert conjunction["attention pattern scores"]["named"] == ["L0H0", "L0H1", "L0H2"]
    # attribution patching misses the previous-token head behind saturated attention; probes
    # name what carries the answer, the decoys included, and miss what feeds it
    attribution = "attribution patching, one component at a time"
    probes = "linear probes of the answer, one component at a time"
    assert induction[attribution]["named"] == ["L1H0"]
    assert redundant[attribution]["named"] == ["L1H0", "L1H1"]
    assert induction[probes]["named"] == ["L1H0", "L1H1"]
    assert superposition[probes]["named"] == ["L0H0", "MLP0"]
    assert fact[probes]["named"] == ["L1H0"] and conjunction[probes]["named"] == ["MLP0"]
    # direct logit attribution sees only what writes the answer, not what makes it possible:
    # the previous-token head and the memory write nothing the unembedding reads
    assert induction[direct]["named"] == ["L1H0"]
    assert "L0H0" not in redundant[direct]["named"]
    assert fact[direct]["named"] == ["L1H0"]
    # a perfect previous-token head that nothing reads: patterns name it and nothing else
    assert superposition["attention pattern scores"] == {"named": ["L0H0"], "precision": 0.0,
                                                         "recall": 0.0}
    assert superposition[ablation]["named"] == superposition[direct]["named"] == ["MLP0"]
    # the logit lens sees where the answer becomes readable, one sublayer, never what feeds it
    lensed = "logit lens, one sublayer at a time"
    assert all(shipped[name][lensed] == {"named": ["attn1"], "precision": 1.0, "recall": 0.5}
               for name in ("induction", "redundant", "fact-lookup"))
    assert superposition[lensed]["named"] == conjunction[lensed]["named"] == ["MLP0"]


def test_scores_fail_on_a_null_table():
    """The table's asserts are about these models: on untrained models of the same shapes no
    method names the planted components (so the asserts above could fail)."""
    from mechinterp_course import models

    shipped = json.loads(method_scores.RESULTS.read_text())
    for name in planted.BUILDERS:
        model = mc.load_model(f"planted-{name}")
        models.untrain(model.hf, seed=0)
        named = method_scores.named_by(model, *method_scores.task(name, model),
                                       pattern_of=method_scores.PATTERN_OF.get(name, "repeat"))
        truth = set(method_scores.truth_components(name))
        for method in ("zero", "mean", "resample"):
            assert not truth <= set(named[f"{method} ablation, one component at a time"]), name
        assert not truth <= set(named["activation patching, one component at a time"]), name
        rises = method_scores.lens_effects(model, *method_scores.task(name, model))
        lensed = [c for c, d in rises.items() if d > method_scores.ABLATION_THRESHOLD]
        assert lensed != shipped[name]["logit lens, one sublayer at a time"]["named"], name


def test_scores_count_right_and_wrong_names():
    assert method_scores.score(["L0H0", "L0H1"], ["L0H0", "L1H0"]) == {
        "named": ["L0H0", "L0H1"], "precision": 0.5, "recall": 0.5}
    assert method_scores.score([], ["L0H0"])["precision"] is None
    with pytest.raises(ValueError, match="unknown pattern"):
        model = mc.load_model("planted-induction")
        method_scores.named_by(model, *method_scores.task("induction", model), pattern_of="x")


@pytest.fixture(scope="module")
def fact():
    return mc.load_model("planted-fact-lookup")


def fact_accuracy(model, prompts, answers, hooks=None):
    tokens = model.to_tokens(prompts)
    with torch.no_grad(), model.hooks(hooks or {}):
        best = model(tokens)[:, -1].argmax(-1)
    return float((best == torch.tensor([model.to_single_token(a) for a in answers])).float()
                 .mean())


def test_fact_lookup_runs_through_the_memory_and_the_mover_and_not_the_decoys(fact):
    prompts, answers = planted.fact_prompts(24)
    tokens, scored = method_scores.task("fact-lookup", fact)
    assert fact_accuracy(fact, prompts, answers) == 1.0
    assert method_scores.task_loss(fact, tokens, scored) < 0.01
    chance = float(torch.log(torch.tensor(float(len(planted.ATTRIBUTES)))))
    truth = planted.truth("fact-lookup")
    for label in method_scores.truth_components("fact-lookup"):  # planted: each is needed
        without = method_scores.ablation_hooks(label)
        assert method_scores.task_loss(fact, tokens, scored, without) > 0.8 * chance, label
        assert fact_accuracy(fact, prompts, answers, without) < 0.2
    decoys = list(circuits.ablate_heads([tuple(h) for h in truth["decoys"].values()] +
                                        [tuple(h) for h in truth["unused"]["heads"]]).items()) \
        + method_scores.ablation_hooks(f"MLP{truth['decoy mlps']['memory look-alike']}")
    assert method_scores.task_loss(fact, tokens, scored, decoys) < 0.01


def test_without_a_subject_there_is_no_fact(fact):
    """The task's null: the same prompts with the subject replaced by a filler."""
    prompts, _ = planted.fact_prompts(24)
    no_subject = [" ".join("Y" if w in planted.SUBJECTS else w for w in p.split())
                  for p in prompts]
    with torch.no_grad():
        probs = fact(fact.to_tokens(no_subject))[:, -1].softmax(-1)
    answers = [fact.to_single_token(a) for a in planted.ATTRIBUTES]
    assert float(probs[:, answers].max()) < 0.1


def test_a_probe_decodes_what_is_never_used(fact):
    """The probe-versus-use trap, planted: at the last position a linear probe reads the fact
    and the subject's position equally well (both far above probes fitted to shuffled labels),
    but projecting out the fact probe's directions takes the answer to chance, and projecting
    out the position probe's, or as many random directions, changes nothing."""
    from mechinterp_course import interventions, probes

    def last_residuals(seed):
        prompts, answers = planted.fact_prompts(240, seed)
        tokens = fact.to_tokens(prompts)
        _, cache = fact.run_with_cache(tokens, names=[("resid_post", 1)])
        facts = torch.tensor([planted.ATTRIBUTES.index(a) for a in answers])
        where = torch.tensor([[w in planted.SUBJECTS for w in p.split()].index(True) + 1
                              for p in prompts])  # + 1: the <bos>
        return prompts, answers, cache["resid_post", 1][:, -1], facts, where

    _, _, x, facts, where = last_residuals(0)
    prompts, answers, x_test, facts_test, where_test = last_residuals(1)
    fact_probe = probes.fit_probe(x, facts, len(planted.ATTRIBUTES))
    where_probe = probes.fit_probe(x, where, planted.N_POS)
    assert fact_probe.accuracy(x_test, facts_test) > 0.95
    assert where_probe.accuracy(x_test, where_test) > 0.95
    g = torch.Generator().manual_seed(0)
    for probe_labels, n_classes, test_labels in ((facts, len(planted.ATTRIBUTES), facts_test),
                                                 (where, planted.N_POS, where_test)):
        shuffled = probes.fit_probe(x, probe_labels[torch.randperm(len(x), generator=g)],
                                    n_classes)
        assert shuffled.accuracy(x_test, test_labels) < 0.5  # the null: no better than guessing

    def without(directions):  # (k, d_model) projected out at the last position
        remove = interventions.project_out(directions)
        return {("resid_post", 1): lambda r: torch.cat([r[:, :-1], remove(r[:, -1:])], 1)}

    assert fact_accuracy(fact, prompts, answers) == 1.0
    fact_dirs = fact_probe.W[:, facts.unique()].T  # the classes it was fitted on
    where_dirs = where_probe.W[:, where.unique()].T
    assert fact_accuracy(fact, prompts, answers, without(fact_dirs)) < 0.2
    assert fact_accuracy(fact, prompts, answers, without(where_dirs)) == 1.0
    for k in (len(fact_dirs), len(where_dirs)):  # matched: as many random directions
        assert fact_accuracy(fact, prompts, answers,
                             without(torch.randn(k, fact.cfg.d_model, generator=g))) == 1.0


@pytest.fixture(scope="module")
def superposition():
    return mc.load_model("planted-superposition")


def random_words(batch: int, seed: int, length: int = 20) -> torch.Tensor:
    """<bos> and random words (not chains): (batch, 1 + length)."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(1, planted.N_VOCAB, (batch, length), generator=g)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), words], 1)


def successor_accuracy(model, tokens, hooks=None):
    """How often the top prediction after each word is its planted successor."""
    succ = torch.zeros(planted.N_VOCAB, dtype=torch.long)
    for word, nxt in planted.SUCCESSOR.items():
        succ[model.to_single_token(word)] = model.to_single_token(nxt)
    with torch.no_grad(), model.hooks(hooks or {}):
        best = model(tokens)[:, 1:].argmax(-1)
    return float((best == succ[tokens[:, 1:]]).float().mean())


def test_superposition_stores_more_features_than_dimensions(superposition):
    truth = planted.truth("superposition")
    codes = truth["features"]["codes"]
    assert len(codes) == planted.N_VOCAB == 32 and truth["features"]["dimensions"] == 9
    assert len({tuple(c) for c in codes.values()}) == 32  # each token its own code
    start, stop = truth["blocks"]["token"]
    W_E = superposition.hf.transformer.wte.weight[:, start:stop]  # (vocab, 9)
    assert int(torch.linalg.matrix_rank(W_E)) == 9 < len(codes)
    overlaps = W_E @ W_E.T  # two-hot codes: 2 with itself, 0 or 1 with any other
    assert set(overlaps[~torch.eye(32, dtype=torch.bool)].tolist()) == {0.0, 1.0}
    assert sorted(planted.SUCCESSOR.values()) == sorted(planted.WORDS)  # a permutation
    assert all(word != nxt for word, nxt in planted.SUCCESSOR.items())  # no word repeats


def test_superposition_runs_through_the_memory_and_not_the_decoy(superposition):
    tokens, scored = method_scores.task("superposition", superposition)
    assert method_scores.task_loss(superposition, tokens, scored) < 0.01
    chance = float(torch.log(torch.tensor(float(superposition.cfg.d_vocab))))
    assert method_scores.task_loss(superposition, tokens, scored,
                                   method_scores.ablation_hooks("MLP0")) > 0.8 * chance
    truth = planted.truth("superposition")
    others = [f"L{layer}H{head}" for layer, head in
              list(truth["decoys"].values()) + truth["unused"]["heads"]]
    assert method_scores.task_loss(superposition, tokens, scored,
                                   method_scores.ablation_hooks(others)) < 0.01
    # the null of the task: random words are not chains, so the next word is not predicted,
    # though the model still answers every word's successor
    words = random_words(8, seed=0)
    loss = torch.nn.functional.cross_entropy(superposition(words)[:, 1:-1].transpose(1, 2),
                                             words[:, 2:])
    assert float(loss) > chance
    assert successor_accuracy(superposition, words) == 1.0


def probe_directions(probe, labels):
    """The directions a probe rests on: its weights' singular directions above half the largest
    singular value (a probe fitted to finite data also leans a little on every other
    coordinate, the tail of small singular values)."""
    W = probe.W[:, labels.unique()]  # (d_model, classes it was fitted on)
    U, S, _ = torch.linalg.svd(W, full_matrices=False)
    return U[:, S > 0.5 * S[0]].T  # (k, d_model)


def residual_labels(model, tokens):
    """Where MLP 0 reads (after block 0's attention), from the second word on: residuals
    (n, d_model), the current word and the previous word."""
    _, cache = model.run_with_cache(tokens, names=[("resid_mid", 0)])
    x = cache["resid_mid", 0][:, 2:].reshape(-1, model.cfg.d_model)
    return x, tokens[:, 2:].reshape(-1), tokens[:, 1:-1].reshape(-1)


def test_a_probe_in_superposition_reads_32_words_from_8_directions(superposition):
    """Probes read the current and the previous word perfectly (shuffled-label probes do not);
    each rests on 8 directions for 32 classes (the codes' 9 less the constant sum); projecting
    out the current word's breaks the task, and the previous word's, or 8 random directions,
    changes nothing: decodable is not used. On random words, so the two are independent."""
    from mechinterp_course import interventions, probes

    x, current, previous = residual_labels(superposition, random_words(256, seed=0))
    test_words = random_words(64, seed=1)
    x_test, current_test, previous_test = residual_labels(superposition, test_words)
    g = torch.Generator().manual_seed(0)
    where = ("resid_mid", 0)
    assert successor_accuracy(superposition, test_words) == 1.0
    directions = {}
    for name, y, y_test in (("current", current, current_test),
                            ("previous", previous, previous_test)):
        probe = probes.fit_probe(x, y, planted.N_VOCAB)
        assert probe.accuracy(x_test, y_test) > 0.95, name
        shuffled = probes.fit_probe(x, y[torch.randperm(len(y), generator=g)], planted.N_VOCAB)
        assert shuffled.accuracy(x_test, y_test) < 0.2, name  # the null: guessing
        directions[name] = probe_directions(probe, y)
        assert len(directions[name]) == planted.N_CODE - 1, name
    assert successor_accuracy(superposition, test_words,
                              {where: interventions.project_out(directions["current"])}) < 0.1
    assert successor_accuracy(superposition, test_words,
                              {where: interventions.project_out(directions["previous"])}) == 1.0
    for _ in range(3):  # matched: as many random directions
        randoms = torch.randn(planted.N_CODE - 1, superposition.cfg.d_model, generator=g)
        assert successor_accuracy(superposition, test_words,
                                  {where: interventions.project_out(randoms)}) == 1.0


def test_the_direction_count_is_not_always_eight():
    """The null of the count above: where tokens are one-hot (planted-induction), a probe of the
    current token rests on about as many directions as it has classes."""
    from mechinterp_course import probes

    model = mc.load_model("planted-induction")
    x, current, _ = residual_labels(model, random_words(256, seed=0))
    assert len(probe_directions(probes.fit_probe(x, current, planted.N_VOCAB), current)) > 20


def test_mean_ablation_puts_each_components_mean_in_its_place(induction):
    tokens, scored = method_scores.task("induction", induction)
    means = method_scores.mean_outputs(induction, tokens)
    assert set(means) == set(method_scores.components(induction))
    _, cache = induction.run_with_cache(tokens, names=[("z", 1)])
    assert torch.allclose(means["L1H2"], cache["z", 1][:, :, 2].mean((0, 1)))
    with induction.hooks(method_scores.ablation_hooks(["L1H0", "MLP1"], means)):
        _, ablated = induction.run_with_cache(tokens, names=[("z", 1), ("mlp_out", 1)])
    assert torch.equal(ablated["z", 1][:, :, 0], means["L1H0"].expand_as(ablated["z", 1][:, :, 0]))
    assert torch.equal(ablated["z", 1][:, :, 1], cache["z", 1][:, :, 1])  # the others untouched
    assert torch.allclose(ablated["mlp_out", 1], means["MLP1"].expand_as(ablated["mlp_out", 1]))
    # the planted heads are needed under mean ablation too; not every head's mean is zero
    effects = method_scores.ablation_effects(induction, tokens, scored, ["L0H0", "L1H0", "L1H1"],
                                             means)
    chance = float(torch.log(torch.tensor(float(induction.cfg.d_vocab))))
    assert effects["L0H0"] > 0.8 * chance and effects["L1H0"] > 0.8 * chance
    assert effects["L1H1"] < 0.05 and means["L1H1"].abs().max() > 0.01
    with pytest.raises(KeyError, match="mean_outputs"):
        method_scores.ablation_hooks("L1H0", {})


def test_resample_ablation_and_patching_put_the_other_sequences_outputs_in_place(induction):
    tokens, scored = method_scores.task("induction", induction)
    other = method_scores.resampled(tokens)
    assert torch.equal(other[1:], tokens[:-1]) and torch.equal(other[0], tokens[-1])
    with pytest.raises(ValueError, match="at least two"):
        method_scores.resampled(tokens[:1])
    with pytest.raises(ValueError, match="shape"):
        method_scores.task_loss(induction, tokens, scored, targets=tokens[:, 1:])
    outputs, elsewhere = (method_scores.outputs(induction, t) for t in (tokens, other))
    _, cache = induction.run_with_cache(tokens, names=[("z", 1), ("mlp_out", 0)])
    assert torch.equal(outputs["L1H2"], cache["z", 1][:, :, 2])
    assert torch.equal(outputs["MLP0"], cache["mlp_out", 0])
    with induction.hooks(method_scores.ablation_hooks(["L1H0", "MLP0"], elsewhere)):
        _, resampled = induction.run_with_cache(tokens, names=[("z", 1), ("mlp_out", 0)])
    assert torch.equal(resampled["z", 1][:, :, 0], elsewhere["L1H0"])
    assert torch.equal(resampled["mlp_out", 0], elsewhere["MLP0"])
    assert torch.equal(resampled["z", 1][:, :, 1], cache["z", 1][:, :, 1])  # the others untouched
    # patching scores the real sequences' next tokens, on the run on the other ones: the
    # induction head alone restores all of the loss, the decoy none (a version that scored the
    # other run's own next tokens, which it copies well, would find nothing to restore)
    chance = float(torch.log(torch.tensor(float(induction.cfg.d_vocab))))
    corrupted = method_scores.task_loss(induction, other, scored, targets=tokens)
    assert corrupted > chance and method_scores.task_loss(induction, other, scored) < 0.01
    effects = method_scores.patching_effects(induction, tokens, scored, ["L1H0", "L1H1"])
    clean = method_scores.task_loss(induction, tokens, scored)
    assert abs(effects["L1H0"] - (corrupted - clean)) < 0.01 and abs(effects["L1H1"]) < 0.01


def test_composition_scores_name_edges_by_weights_alone():
    """The edge table is what its command writes; composition scores name the edge into the
    decoy induction head as surely as the real one (they read weights, not use), and on
    untrained models of the same shapes they name no planted edge (their null)."""
    from mechinterp_course import models

    shipped = json.loads(method_scores.EDGE_RESULTS.read_text())
    assert json.loads(json.dumps(method_scores.edge_table())) == shipped
    assert set(shipped) == {"induction", "redundant"}  # the others have no head-to-head edge
    composition = {name: rows["composition scores"] for name, rows in shipped.items()}
    assert composition["induction"] == {"named": ["L0H0->L1H0 key", "L0H0->L1H1 key"],
                                        "precision": 0.5, "recall": 1.0}
    assert composition["redundant"]["precision"] == 1.0 == composition["redundant"]["recall"]
    for name in shipped:
        model = mc.load_model(f"planted-{name}")
        models.untrain(model.hf, seed=0)
        assert not set(method_scores.truth_edges(name)) & set(
            method_scores.edges_by_composition(model)), name
    null = method_scores.composition_null(mc.load_model("planted-induction"), n=50)
    assert null.std() > 0 and float(null.max()) < 0.1  # random matrices rarely compose


def test_path_patching_names_the_used_edge_and_falls_into_the_redundancy_trap(induction):
    """Path patching one edge at a time names the edge the task uses and not the decoy's, which
    composition scores name; on the redundant model it names neither real edge, each head
    still getting the real previous token while the other's edge is patched. On an untrained
    model of the same shape it names nothing (its null)."""
    from mechinterp_course import models

    shipped = json.loads(method_scores.EDGE_RESULTS.read_text())
    patching = {name: rows["path patching, one edge at a time"] for name, rows in shipped.items()}
    assert patching["induction"] == {"named": ["L0H0->L1H0 key"], "precision": 1.0,
                                     "recall": 1.0}
    assert patching["redundant"] == {"named": [], "precision": None, "recall": 0.0}
    effects = method_scores.path_patching_effects(induction,
                                                  *method_scores.task("induction", induction))
    assert effects["L0H0->L1H1 key"] < 0.01 < method_scores.ABLATION_THRESHOLD < effects[
        "L0H0->L1H0 key"]
    untrained = mc.load_model("planted-induction")
    models.untrain(untrained.hf, seed=0)
    null = method_scores.path_patching_effects(untrained,
                                               *method_scores.task("induction", untrained))
    assert max(null.values()) < method_scores.ABLATION_THRESHOLD


@pytest.mark.parametrize("name", ["induction", "and"])
def test_lens_effects_add_up_to_the_models_own_log_probability(name):
    """The lens's rises across every sublayer add up to the model's own log-probability of the
    right next token less the embeddings' (the lens on the final residual is the model), and
    the truth's sublayers are the heads' attention layers and the MLPs."""
    model = mc.load_model(f"planted-{name}")
    tokens, scored = method_scores.task(name, model)
    rises = method_scores.lens_effects(model, tokens, scored)
    assert list(rises) == method_scores.sublayers(model)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names=[("resid_pre", 0)])
        embedded = lens.unembed(model, cache["resid_pre", 0][:, :-1]).log_softmax(-1)
        own = model(tokens)[:, :-1].log_softmax(-1)
    right = tokens[:, 1:, None]
    expected = float((own.gather(-1, right) - embedded.gather(-1, right))[..., 0][scored].mean())
    assert sum(rises.values()) == pytest.approx(expected, abs=1e-4)
    assert method_scores.truth_sublayers(name) == {"induction": ["attn0", "attn1"],
                                                   "and": ["MLP0", "attn0"]}[name]
    assert method_scores.truth_sublayers("fact-lookup") == ["MLP0", "attn1"]


def test_attribution_patching_estimates_patching_and_misses_saturated_effects(induction):
    """The estimate is linear: close to the patch's sign where the effect is direct (the
    induction head), of the wrong sign through the induction head's saturated attention (the
    previous-token head), and on the AND it credits each operand's head with an effect that
    exists only with the other."""
    tokens, scored = method_scores.task("induction", induction)
    labels = ["L0H0", "L1H0", "L1H2"]
    estimate = method_scores.attribution_effects(induction, tokens, scored, labels)
    patched = method_scores.patching_effects(induction, tokens, scored, labels)
    assert estimate["L1H0"] > method_scores.ABLATION_THRESHOLD < patched["L1H0"]
    assert estimate["L0H0"] < 0 < method_scores.ABLATION_THRESHOLD < patched["L0H0"]
    assert abs(estimate["L1H2"]) < 1e-6 and abs(patched["L1H2"]) < 1e-6  # writes nothing
    conjunction = mc.load_model("planted-and")
    tokens, scored = method_scores.task("and", conjunction)
    estimate = method_scores.attribution_effects(conjunction, tokens, scored, ["L0H0", "L0H1"])
    patched = method_scores.patching_effects(conjunction, tokens, scored, ["L0H0", "L0H1"])
    assert min(estimate.values()) > method_scores.ABLATION_THRESHOLD > 100 * max(patched.values())
    with pytest.raises(ValueError, match="unknown component"):
        method_scores.attribution_effects(conjunction, tokens, scored, ["head 0"])


def test_attribution_effects_match_a_small_patch_to_first_order():
    """attribution_effects is the first-order term: for a patch scaled down by eps (the output
    moved eps of the way from the other run's to the real one) the loss changes by eps times
    the estimate, up to eps squared, on a random GPT-2 in float64."""
    from mechinterp_course import models

    model = mc.load_model("planted-induction")
    models.untrain(model.hf, seed=1)
    model.hf.double()
    tokens, scored = method_scores.task("induction", model)
    label, eps = "L1H0", 1e-4
    estimate = method_scores.attribution_effects(model, tokens, scored, [label])[label]
    clean = method_scores.outputs(model, tokens)[label]
    other = method_scores.outputs(model, method_scores.resampled(tokens))[label]
    nudged = {label: other + eps * (clean - other)}
    corrupt = method_scores.resampled(tokens)
    base = method_scores.task_loss(model, corrupt, scored, targets=tokens)
    moved = method_scores.task_loss(model, corrupt, scored,
                                    method_scores.ablation_hooks(label, nudged), targets=tokens)
    assert abs(estimate) > 1e-6
    assert abs((base - moved) / eps - estimate) < 1e-3 * max(1.0, abs(estimate))


def test_probes_name_what_carries_the_answer_used_or_not(induction):
    decoded = method_scores.probe_accuracies(induction, "induction", ["L0H0", "L1H0", "L1H1"])
    assert decoded["L1H0"] > method_scores.PROBE_THRESHOLD < decoded["L1H1"]  # the decoy too
    assert decoded["L0H0"] < 0.2  # the previous token is not the answer
    from mechinterp_course import models

    untrained = mc.load_model("planted-induction")
    models.untrain(untrained.hf, seed=0)
    null = method_scores.probe_accuracies(untrained, "induction", ["L1H0", "L1H1"])
    assert max(null.values()) < 0.5


@pytest.fixture(scope="module")
def conjunction():
    return mc.load_model("planted-and")


def test_and_needs_both_movers_and_the_memory_and_not_the_decoy(conjunction):
    prompts, answers = planted.and_prompts(36)
    tokens, scored = method_scores.task("and", conjunction)
    assert method_scores.task_loss(conjunction, tokens, scored) < 0.01
    with torch.no_grad():
        best = conjunction(conjunction.to_tokens(prompts))[:, -1].argmax(-1)
    assert [conjunction.to_string(int(t)) for t in best] == answers  # every pair of operands
    chance = float(torch.log(torch.tensor(float(len(planted.SUMS)))))
    for label in method_scores.truth_components("and"):  # each part is needed
        hooks = method_scores.ablation_hooks(label)
        assert method_scores.task_loss(conjunction, tokens, scored, hooks) > chance, label
    truth = planted.truth("and")
    unused = [f"L{layer}H{head}" for layer, head in
              list(truth["decoys"].values()) + truth["unused"]["heads"]]
    assert method_scores.task_loss(conjunction, tokens, scored,
                                   method_scores.ablation_hooks(unused)) < 0.01


def test_and_needs_both_operands(conjunction):
    """The task's null: with either operand replaced by a filler, no answer is likely."""
    prompts, _ = planted.and_prompts(36)
    for words in (planted.X_WORDS, planted.Y_WORDS):
        missing = [" ".join("Y" if w in words else w for w in p.split()) for p in prompts]
        with torch.no_grad():
            probs = conjunction(conjunction.to_tokens(missing))[:, -1].softmax(-1)
        sums = [conjunction.to_single_token(a) for a in planted.SUMS]
        assert float(probs[:, sums].max()) < 0.1


def test_and_prompts_cover_every_pair_and_neighbours_differ_in_both():
    prompts, answers = planted.and_prompts(36)
    pairs = [(next(w for w in p.split() if w in planted.X_WORDS),
              next(w for w in p.split() if w in planted.Y_WORDS)) for p in prompts]
    assert len(set(pairs)) == 36 and len({len(p.split()) for p in prompts}) == 1
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in zip(pairs, pairs[1:] + pairs[:1]))
    assert all(answers[k] == planted.SUMS[(planted.X_WORDS.index(x) + planted.Y_WORDS.index(y))
                                          % 6] for k, (x, y) in enumerate(pairs))


def test_best_f1_scores_each_latent_as_a_detector_of_each_feature():
    fires = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0]]).bool()  # (n, latents)
    present = torch.tensor([[1], [1], [0], [0]]).bool()  # (n, features)
    f1 = method_scores.best_f1(fires, present)
    assert f1.shape == (1, 2)
    assert f1[0, 0] == pytest.approx(1.0) and f1[0, 1] == pytest.approx(0.5)
    assert method_scores.best_f1(torch.zeros(4, 2).bool(), present).max() == 0


def test_sae_table_records_its_machine_and_reruns_within_the_measured_tolerance():
    """Seed 0 of the shipped SAE table reruns within tolerance. Measured: the same five seeds
    under ATEN_CPU_CAPABILITY=default against AVX-512 differed by at most 1/31 in recall, 0.027
    in precision and 0.015 in variance explained; the tolerance is about twice that."""
    shipped = json.loads(method_scores.SAE_RESULTS.read_text())
    for key in ("cpu_capability", "cpu", "torch", "transformers", "numpy", "threads", "date"):
        assert key in shipped["meta"], key
    assert shipped["meta"]["k"] == method_scores.SAE_K
    tolerance = {"recall": 0.07, "precision": 0.06, "fve": 0.03}
    for name, runs in shipped["runs"].items():
        assert len(runs) == len(shipped["meta"]["seeds"])
        rerun = method_scores.sae_recovery(name, seed=shipped["meta"]["seeds"][0])
        for key, tol in tolerance.items():
            assert abs(rerun[key] - runs[0][key]) <= tol, (name, key, rerun, runs[0])


def test_sae_recovery_refuses_a_model_without_the_planted_word_features():
    with pytest.raises(ValueError, match="no planted word"):
        method_scores.sae_recovery("fact-lookup")


def test_an_untrained_sae_detects_no_words():
    """The recall is not high by construction: one step of training leaves the control's words
    undetected."""
    untrained = method_scores.sae_recovery("induction", steps=1)
    assert untrained["recall"] < 0.2
