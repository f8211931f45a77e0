"""The course's methods, run on the planted models as a learner would run them, and scored
against the planted truth: which components (heads "L1H0", MLPs "MLP0") each method names, and
the precision and recall of that set against the components that implement the task (the
logit lens, which reads the residual stream between sublayers, names attention layers "attn1"
and MLPs, scored against the sublayers that hold the truth). Thresholds are fixed here, before
any model was looked at (PROBE_THRESHOLD with the probe row, and the lens's, before they ran).
`python -m mechinterp_course.method_scores` rewrites the tables chapters read: components, and
the edges between heads that composition scores and path patching name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "sweeps" / "planted_method_scores.json"
EDGE_RESULTS = Path(__file__).parent / "sweeps" / "planted_edge_scores.json"
SAE_RESULTS = Path(__file__).parent / "sweeps" / "planted_sae_scores.json"
PATTERN_THRESHOLD = 0.5  # a head "is" a previous-token, induction or mover head above this
ABLATION_THRESHOLD = 1.0  # nats of loss on the task that removing a component must add
DIRECT_THRESHOLD = 0.1  # share of the answer's direct logit a component must write
PROBE_THRESHOLD = 0.9  # held-out accuracy a probe must reach to read the answer from an output
MATCH_F1 = 0.9  # a latent "is" a planted feature when its firing predicts the feature this well
SAE_K = 3  # the planted L0 at resid_mid 0: the current word, its position, the previous word
WORD_FEATURE_MODELS = ("induction", "redundant", "superposition")  # where those three are planted


def repeated_distinct(model, n: int = 15, batch: int = 8, seed: int = 0) -> torch.Tensor:
    """BOS, n distinct random tokens, the same n again: (batch, 1 + 2n)."""
    g = torch.Generator().manual_seed(seed)
    half = torch.stack([torch.randperm(model.cfg.d_vocab - 1, generator=g)[:n] + 1
                        for _ in range(batch)])
    bos = torch.full((batch, 1), model.tokenizer.bos_token_id or 0)
    return torch.cat([bos, half, half], 1).to(model.cfg.device)


def task(name: str, model, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of a planted model's task: tokens (batch, pos) and scored (batch, pos - 1), True
    where the next token is the task's answer (for the fact lookup and the AND, the answer is
    appended; for superposition, chains of successors)."""
    from . import planted

    if name in ("fact-lookup", "and"):
        prompts, answers = (planted.fact_prompts(24, seed) if name == "fact-lookup" else
                            planted.and_prompts(36, seed))
        tokens = model.to_tokens([f"{p} {a}" for p, a in zip(prompts, answers)])
        scored = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
        scored[:, -1] = True  # the relation token predicts the answer
        return tokens, scored
    if name == "superposition":
        tokens = model.to_tokens(planted.chain_prompts(8, 20, seed))
        scored = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
        scored[:, 1:] = True  # every word predicts its successor; <bos> has nothing to go on
        return tokens, scored
    tokens = repeated_distinct(model, seed=seed)
    n = (tokens.shape[1] - 1) // 2
    scored = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
    scored[:, n + 1:] = True  # the repeat after its first token, which has nothing to copy
    return tokens, scored


def task_loss(model, tokens: torch.Tensor, scored: torch.Tensor, hooks: dict | None = None,
              targets: torch.Tensor | None = None):
    """Mean next-token loss at the scored positions. targets (batch, pos): the sequences whose
    next tokens are scored, where they are not the input (patching runs the corrupted tokens
    and scores the clean ones)."""
    targets = tokens if targets is None else targets
    if targets.shape != tokens.shape:
        raise ValueError(f"targets {tuple(targets.shape)} must have the shape of tokens "
                         f"{tuple(tokens.shape)}")
    with torch.no_grad(), model.hooks(hooks or {}):
        logits = model(tokens)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets[:, 1:],
                                             reduction="none")  # (batch, pos - 1)
    return float(loss[scored].mean())


def repeat_loss(model, tokens: torch.Tensor, hooks: dict | None = None) -> float:
    """Mean loss on the repeat's tokens after its first (which has nothing to copy)."""
    n = (tokens.shape[1] - 1) // 2
    scored = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
    scored[:, n + 1:] = True
    return task_loss(model, tokens, scored, hooks)


def components(model) -> list[str]:
    """Every head and MLP, labelled as `lens.component_labels` labels heads: L1H0, MLP0."""
    return [f"L{layer}H{head}" for layer in range(model.cfg.n_layers)
            for head in range(model.cfg.n_heads)] + [f"MLP{layer}"
                                                     for layer in range(model.cfg.n_layers)]


def ablation_hooks(labels, values: dict | None = None) -> list:
    """Hooks that ablate components, a label ("L1H0", "MLP0") or a list of them, as a list of
    (name, fn) pairs: lists add up, so two heads of one layer are both ablated (merging dicts of
    hooks would keep only the last hook of each layer). values: {label: what to put in place of
    its output}: its mean (`mean_outputs`) for mean ablation, its output on other sequences
    (`outputs` of the resampled tokens) for resample ablation or patching; without, zero."""
    from . import circuits

    hooks = []
    for label in [labels] if isinstance(labels, str) else labels:
        mlp = re.fullmatch(r"MLP(\d+)", str(label))
        head = re.fullmatch(r"L(\d+)H(\d+)", str(label))
        if values is not None and label not in values:
            raise KeyError(f"no value for {label!r} to put in its place: take values from "
                           "mean_outputs(model, tokens) or outputs(model, tokens)")
        value = 0.0 if values is None else values[label]
        if mlp:
            hooks.append((("mlp_out", int(mlp[1])), lambda x, v=value: torch.zeros_like(x) + v))
        elif head:
            hooks.append((("z", int(head[1])), circuits.replace_head(int(head[2]), value)))
        else:
            raise ValueError(f"unknown component {label!r}: label heads 'L1H0' and MLPs 'MLP0'")
    return hooks


@torch.no_grad()
def outputs(model, tokens: torch.Tensor) -> dict:
    """{label: output at every position}: a head's z (batch, pos, d_head), an MLP's output
    (batch, pos, d_model), what resample ablation and patching put in its place."""
    layers = range(model.cfg.n_layers)
    _, cache = model.run_with_cache(tokens, names=[(kind, layer) for layer in layers
                                                   for kind in ("z", "mlp_out")])
    out = {f"MLP{layer}": cache["mlp_out", layer] for layer in layers}
    for layer in layers:
        out.update({f"L{layer}H{head}": cache["z", layer][:, :, head]
                    for head in range(model.cfg.n_heads)})
    return out


def mean_outputs(model, tokens: torch.Tensor) -> dict:
    """{label: output averaged over the batch and positions}: a head's z (d_head,), an MLP's
    output (d_model,), what mean ablation puts in its place."""
    return {label: out.mean((0, 1)) for label, out in outputs(model, tokens).items()}


def resampled(tokens: torch.Tensor) -> torch.Tensor:
    """The batch's sequences rolled by one row: each sequence paired with another of the same
    task, the other run of resample ablation and of patching."""
    if len(tokens) < 2:
        raise ValueError("resampling needs a batch of at least two sequences")
    return tokens.roll(1, 0)


def ablation_effects(model, tokens: torch.Tensor, scored: torch.Tensor, labels,
                     values: dict | None = None) -> dict:
    """{label: nats} the task's loss rises by when that one component is ablated: zero
    ablation; with values, mean ablation (`mean_outputs`) or resample ablation (`outputs` of
    `resampled(tokens)`)."""
    base = task_loss(model, tokens, scored)
    return {c: task_loss(model, tokens, scored, ablation_hooks(c, values)) - base for c in labels}


def patching_effects(model, tokens: torch.Tensor, scored: torch.Tensor, labels) -> dict:
    """{label: nats} the task's loss falls by when that one component's output on `tokens` is
    patched into the run on `resampled(tokens)`, scoring the next tokens of `tokens`
    (activation patching from clean into corrupted, "denoising"): what it restores alone."""
    corrupt = resampled(tokens)
    clean = outputs(model, tokens)
    base = task_loss(model, corrupt, scored, targets=tokens)
    return {c: base - task_loss(model, corrupt, scored, ablation_hooks(c, clean), targets=tokens)
            for c in labels}


PATTERN_OF = {"fact-lookup": "fact", "and": "operands"}  # the others: "repeat"


def attribution_effects(model, tokens: torch.Tensor, scored: torch.Tensor, labels) -> dict:
    """{label: nats} attribution patching's estimate of `patching_effects` (chapter 10): the
    loss's fall, to first order, when the component's output on `tokens` is put into the run
    on `resampled(tokens)`, (clean - corrupted output) . gradient of minus the loss there, from
    one forward and one backward pass for every component."""
    from .interventions import metric_gradients

    corrupt, clean = resampled(tokens), outputs(model, tokens)
    targets, count = tokens[:, 1:], scored.sum()

    def minus_loss(logits):  # (batch,): minus each row's share of the task's mean loss
        losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets,
                                                   reduction="none")
        return -(losses * scored).sum(1) / count

    keys = [(kind, layer) for layer in range(model.cfg.n_layers) for kind in ("z", "mlp_out")]
    _, acts, grads = metric_gradients(model, corrupt, minus_loss, keys)
    out = {}
    for label in labels:
        mlp, head = re.fullmatch(r"MLP(\d+)", label), re.fullmatch(r"L(\d+)H(\d+)", label)
        if mlp:
            key, part = ("mlp_out", int(mlp[1])), (...,)
        elif head:
            key, part = ("z", int(head[1])), (slice(None), slice(None), int(head[2]))
        else:
            raise ValueError(f"unknown component {label!r}: label heads 'L1H0' and MLPs 'MLP0'")
        out[label] = float(((clean[label] - acts[key][part]) * grads[key][part]).sum())
    return out


@torch.no_grad()
def probe_accuracies(model, name: str, labels, train_seeds=(1, 2, 3, 4),
                     test_seed: int = 5) -> dict:
    """{label: held-out accuracy} of a linear probe (chapter 07's `probes.fit_probe`) that reads
    the task's answer, the next token where the task scores it, from one component's output
    there: fitted on the batches of `task(name)` with `train_seeds`, tested on another."""
    from .probes import fit_probe

    def examples(seeds):
        xs, ys = {label: [] for label in labels}, []
        for seed in seeds:
            tokens, scored = task(name, model, seed)
            outs = outputs(model, tokens)
            ys.append(tokens[:, 1:][scored])
            for label in labels:
                xs[label].append(outs[label][:, :-1][scored])  # (examples, d)
        return {label: torch.cat(x).cpu() for label, x in xs.items()}, torch.cat(ys).cpu()

    (train_x, train_y), (test_x, test_y) = examples(train_seeds), examples([test_seed])
    return {label: fit_probe(train_x[label], train_y, model.cfg.d_vocab).accuracy(
        test_x[label], test_y) for label in labels}


def sublayers(model) -> list[str]:
    """Every attention layer and MLP, labelled "attn1" and "MLP0": the logit lens's resolution,
    which reads the residual stream between them and cannot tell one head from another."""
    return [f"{kind}{layer}" for layer in range(model.cfg.n_layers) for kind in ("attn", "MLP")]


@torch.no_grad()
def lens_effects(model, tokens: torch.Tensor, scored: torch.Tensor) -> dict:
    """{sublayer: nats} the right next token's mean log-probability under the logit lens
    (`lens.unembed`, the final norm and the unembedding applied to the residual stream so far)
    rises by across each attention layer and each MLP, where the task scores it."""
    from . import lens

    kinds = ("resid_pre", "resid_mid", "resid_post")
    _, cache = model.run_with_cache(tokens, names=[(kind, layer) for layer in
                                                   range(model.cfg.n_layers) for kind in kinds])
    targets = tokens[:, 1:, None]

    def read(resid):  # the lens's mean log-probability of the right next token
        logprobs = lens.unembed(model, resid[:, :-1]).log_softmax(-1)
        return float(logprobs.gather(-1, targets)[..., 0][scored].mean())

    out = {}
    for layer in range(model.cfg.n_layers):
        pre, mid, post = (read(cache[kind, layer]) for kind in kinds)
        out[f"attn{layer}"], out[f"MLP{layer}"] = mid - pre, post - mid
    return out


def truth_sublayers(name: str) -> list[str]:
    """The sublayers that hold a planted model's task: each true head's attention layer, each
    true MLP."""
    return sorted({re.sub(r"L(\d+)H\d+", r"attn\1", c) for c in truth_components(name)})


@torch.no_grad()
def word_residuals(model, batch: int, seed: int) -> tuple[torch.Tensor, dict]:
    """resid_mid 0 on random words (BOS then 20 words), from the second word on, where a word,
    its position and the word before it are all there: (n, d_model), and {feature kind: (n,)
    which one is present}: "current word", "previous word", "position"."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(1, model.cfg.d_vocab, (batch, 20), generator=g)
    tokens = torch.cat([torch.zeros(batch, 1, dtype=torch.long), words], 1)
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names=[("resid_mid", 0)])
    x = cache["resid_mid", 0][:, 2:].reshape(-1, model.cfg.d_model).cpu()
    positions = torch.arange(2, tokens.shape[1]).expand(batch, -1)
    return x, {"current word": tokens[:, 2:].reshape(-1), "previous word": tokens[:, 1:-1]
               .reshape(-1), "position": positions.reshape(-1)}


def best_f1(fires: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(features, latents): the F1 of each latent's firing (n, latents, bool) as a detector of
    each feature's presence (n, features, bool)."""
    fires, present = fires.float(), present.float()
    hits = present.T @ fires  # (features, latents)
    precision = hits / fires.sum(0).clamp(min=1)
    recall = hits / present.sum(0)[:, None].clamp(min=1)
    return 2 * precision * recall / (precision + recall).clamp(min=1e-9)


def sae_recovery(name: str, seed: int = 0, k: int = SAE_K, d_sae: int = 256,
                 steps: int = 1000) -> dict:
    """Chapter 06's TopK SAE trained on planted-`name`'s resid_mid 0 over random words, scored
    by firing on held-out words: recall, the share of the current words some latent detects
    (F1 above MATCH_F1); precision, the share of the latents that fire at all that detect a
    planted feature (a current word, a previous word or a position); fve and dead as trained."""
    from . import sae
    from .models import load_model

    if name not in WORD_FEATURE_MODELS:
        raise ValueError(f"planted-{name!r} has no planted word, position and previous word at "
                         f"resid_mid 0 to score an SAE against; use one of {WORD_FEATURE_MODELS}")
    model = load_model(f"planted-{name}", device="cpu")
    x, _ = word_residuals(model, 1024, seed=0)
    held_out, which = word_residuals(model, 256, seed=1)
    trained = sae.SAE(model.cfg.d_model, d_sae, k=k, seed=seed)
    result = sae.train(trained, sae.batches_from(x, 512, seed=seed), steps=steps, lr=2e-3,
                       progress=False)
    with torch.no_grad():
        fires = trained.encode(held_out) > 0  # (n, d_sae)
    one_hot = torch.nn.functional.one_hot
    words = one_hot(which["current word"], model.cfg.d_vocab)[:, 1:].bool()  # (n, 31): no BOS
    present = torch.cat([words, one_hot(which["previous word"], model.cfg.d_vocab)[:, 1:],
                         one_hot(which["position"] - 2)], 1).bool()  # (n, 31 + 31 + 19)
    alive = fires.any(0)
    matched = best_f1(fires, present).max(0).values[alive] > MATCH_F1  # (alive latents,)
    recovered = best_f1(fires, words).max(1).values > MATCH_F1  # (31,)
    return {"fve": round(result.fve, 4), "dead": round(result.dead, 4),
            "recall": round(float(recovered.float().mean()), 4),
            "precision": round(float(matched.float().mean()), 4) if alive.any() else None}


def sae_table(seeds=range(5)) -> dict:
    """{"meta": the machine and settings, "runs": {model: [`sae_recovery` per seed]}} for the
    model whose words are one-hot (planted-induction, the control) and the one whose words share
    9 coordinates (planted-superposition). Training differs a little between CPUs (chapter 08),
    so this table keeps its machine, and rerunning it is compared with a tolerance."""
    import time

    from . import provenance

    runs = {name: [sae_recovery(name, seed) for seed in seeds]
            for name in ("induction", "superposition")}
    return {"meta": {**provenance.machine(), "date": time.strftime("%Y-%m-%d"), "k": SAE_K,
                     "match_f1": MATCH_F1, "seeds": list(seeds)}, "runs": runs}


def _pattern_names(model, cache, tokens, pattern_of: str) -> list[str]:
    """Heads whose attention looks like the task's: previous-token or induction scores on a
    repeat; on the fact lookup, attention from the relation token to the subject; on the AND,
    from the relation token to either operand."""
    from . import circuits, planted

    named = []
    targets = {"fact": planted.SUBJECTS, "operands": planted.X_WORDS + planted.Y_WORDS}
    for layer in range(model.cfg.n_layers):
        pattern = cache["pattern", layer]  # (batch, heads, query, key)
        if pattern_of in targets:
            words = torch.tensor([model.to_single_token(w) for w in targets[pattern_of]])
            target = torch.isin(tokens, words.to(tokens.device)).float()  # (batch, pos)
            to_target = (pattern[:, :, -2] * target[:, None]).sum(-1).mean(0)  # (heads,)
            scores = [float(s) for s in to_target]
        elif pattern_of == "repeat":
            n = (tokens.shape[1] - 1) // 2
            scores = [max(float(a), float(b)) for a, b in
                      zip(circuits.previous_token_score(pattern),
                          circuits.induction_score(pattern, n))]
        else:
            raise ValueError(f"unknown pattern {pattern_of!r}: use 'repeat', 'fact' or "
                             "'operands'")
        named += [f"L{layer}H{h}" for h, s in enumerate(scores) if s > PATTERN_THRESHOLD]
    return named


@torch.no_grad()
def named_by(model, tokens: torch.Tensor, scored: torch.Tensor,
             pattern_of: str = "repeat") -> dict[str, list[str]]:
    """For each method, the components it names as doing the task on `tokens`; pattern_of: the
    attention pattern the task calls for ("repeat": previous-token or induction; "fact": from
    the relation token to the subject; "operands": from it to either operand)."""
    from . import lens

    _, cache = model.run_with_cache(tokens)
    ablation = ablation_effects(model, tokens, scored, components(model))
    mean_ablation = ablation_effects(model, tokens, scored, components(model),
                                     mean_outputs(model, tokens))
    resample_ablation = ablation_effects(model, tokens, scored, components(model),
                                         outputs(model, resampled(tokens)))
    patching = patching_effects(model, tokens, scored, components(model))
    # direct logit attribution of each component to the right next token, where it is scored
    labels = lens.component_labels(model)
    parts = lens.residual_components(model, cache)[:, :, :-1]  # (components, batch, pos - 1, d)
    final = cache["resid_post", model.cfg.n_layers - 1][:, :-1]
    each = lens.attribute_to_tokens(model, parts, final, tokens[:, 1:])  # (comps, b, pos - 1)
    direct = {c: float(each[labels.index(f"L{c[3:]} MLP" if c.startswith("MLP") else c)][scored]
                       .mean()) for c in components(model)}
    total = sum(max(v, 0.0) for v in direct.values()) or 1.0
    return {
        "attention pattern scores": sorted(_pattern_names(model, cache, tokens, pattern_of)),
        "zero ablation, one component at a time": sorted(c for c, d in ablation.items()
                                                         if d > ABLATION_THRESHOLD),
        "mean ablation, one component at a time": sorted(c for c, d in mean_ablation.items()
                                                         if d > ABLATION_THRESHOLD),
        "resample ablation, one component at a time": sorted(
            c for c, d in resample_ablation.items() if d > ABLATION_THRESHOLD),
        "activation patching, one component at a time": sorted(
            c for c, d in patching.items() if d > ABLATION_THRESHOLD),
        "direct logit attribution": sorted(c for c, d in direct.items()
                                           if d / total > DIRECT_THRESHOLD),
    }


def score(named: list, truth: list) -> dict:
    named, truth = set(named), set(truth)
    hits = len(named & truth)
    return {"named": sorted(named), "precision": hits / len(named) if named else None,
            "recall": hits / len(truth)}


def truth_components(name: str) -> list[str]:
    """The components that implement a planted model's task, as labels."""
    from . import planted

    facts = planted.truth(name)
    return [f"L{layer}H{head}" for layer, head in facts["heads"].values()] + [
        f"MLP{layer}" for layer in facts.get("mlps", {}).values()]


def composition_null(model, n: int = 200, seed: int = 0) -> torch.Tensor:
    """(n,) composition scores of random pairs of rank-d_head matrices of the model's shape: the
    null an edge's score must beat (the course names an edge above its largest)."""
    from . import circuits

    return circuits.random_composition_scores(model.cfg.d_model, model.cfg.d_head, n, seed)


@torch.no_grad()
def edges_by_composition(model) -> list[str]:
    """Head-to-head edges whose K, Q or V composition score is above every score of the random
    null, labelled "L0H0->L1H0 key" (what the later head reads the earlier one's output into).
    A head that writes or reads nothing has no score, so no edge."""
    from . import circuits

    ceiling = float(composition_null(model).max())
    kinds = {"key": circuits.k_composition, "query": circuits.q_composition,
             "value": circuits.v_composition}
    heads = [(layer, head) for layer in range(model.cfg.n_layers)
             for head in range(model.cfg.n_heads)]
    named = []
    for earlier in heads:
        for later in (h for h in heads if h[0] > earlier[0]):
            for via, score in kinds.items():
                value = float(score(model, earlier, later))  # NaN where a circuit is all zero
                if value == value and value > ceiling:
                    named.append(f"L{earlier[0]}H{earlier[1]}->L{later[0]}H{later[1]} {via}")
    return named


@torch.no_grad()
def path_patching_effects(model, tokens: torch.Tensor, scored: torch.Tensor) -> dict:
    """{edge: nats} the task's loss rises by when one head-to-head edge, "L0H0->L1H0 key",
    carries the sender's output from the run on `resampled(tokens)` into the receiver's key,
    query or value, along every path between them (chapter 10's `path_patch_hooks`, through
    every MLP and attention layer in between); everything else sees the real run."""
    from .interventions import path_patch_hooks

    base = task_loss(model, tokens, scored)
    source = resampled(tokens)
    heads = [(layer, head) for layer in range(model.cfg.n_layers)
             for head in range(model.cfg.n_heads)]
    out = {}
    for sender in heads:
        for receiver in (h for h in heads if h[0] > sender[0]):
            through = [("mlp_out", layer) for layer in range(sender[0], receiver[0])] + [
                ("attn_out", layer) for layer in range(sender[0] + 1, receiver[0])]
            for via, kind in (("k", "key"), ("q", "query"), ("v", "value")):
                hooks = path_patch_hooks(model, tokens, source, sender, receiver, via, through)
                edge = f"L{sender[0]}H{sender[1]}->L{receiver[0]}H{receiver[1]} {kind}"
                out[edge] = task_loss(model, tokens, scored, hooks) - base
    return out


def truth_edges(name: str) -> list[str]:
    """A planted model's head-to-head edges, labelled as `edges_by_composition` labels them."""
    from . import planted

    return [f"L{e['from'][0]}H{e['from'][1]}->L{e['to'][0]}H{e['to'][1]} {e['via']}"
            for e in planted.truth(name).get("edges", [])
            if isinstance(e["from"], list) and isinstance(e["to"], list)]


def edge_table() -> dict:
    """{model: {method: score}} of composition scores and of path patching one edge at a time
    (at the ablation's threshold) against the planted edges, for every planted model with an
    edge between two heads (the others' edges run through MLPs or the embedding)."""
    from . import planted
    from .models import load_model

    out = {}
    for name in planted.BUILDERS:
        if truth_edges(name):
            model = load_model(f"planted-{name}", device="cpu")
            patched = path_patching_effects(model, *task(name, model))
            out[name] = {
                "composition scores": score(edges_by_composition(model), truth_edges(name)),
                "path patching, one edge at a time": score(
                    [e for e, d in patched.items() if d > ABLATION_THRESHOLD], truth_edges(name))}
    return out


def table() -> dict:
    """{model: {method: score}} for every planted model: `named_by`'s methods, attribution
    patching (`attribution_effects`, at the ablation's threshold), linear probes
    (`probe_accuracies`, at PROBE_THRESHOLD) and the logit lens (`lens_effects`, at the
    ablation's threshold, against `truth_sublayers`: it cannot name a head)."""
    from . import planted
    from .models import load_model

    out = {}
    for name in planted.BUILDERS:
        model = load_model(f"planted-{name}", device="cpu")
        tokens, scored = task(name, model)
        labels = components(model)
        named = named_by(model, tokens, scored, pattern_of=PATTERN_OF.get(name, "repeat"))
        estimated = attribution_effects(model, tokens, scored, labels)
        named["attribution patching, one component at a time"] = sorted(
            c for c, d in estimated.items() if d > ABLATION_THRESHOLD)
        decoded = probe_accuracies(model, name, labels)
        named["linear probes of the answer, one component at a time"] = sorted(
            c for c, a in decoded.items() if a > PROBE_THRESHOLD)
        out[name] = {method: score(found, truth_components(name))
                     for method, found in named.items()}
        rises = lens_effects(model, tokens, scored)  # scored at its own resolution
        out[name]["logit lens, one sublayer at a time"] = score(
            [c for c, d in rises.items() if d > ABLATION_THRESHOLD], truth_sublayers(name))
    return out


if __name__ == "__main__":
    RESULTS.write_text(json.dumps(table(), indent=1) + "\n")
    EDGE_RESULTS.write_text(json.dumps(edge_table(), indent=1) + "\n")
    SAE_RESULTS.write_text(json.dumps(sae_table(), indent=1) + "\n")
    print("wrote", RESULTS, EDGE_RESULTS, "and", SAE_RESULTS)
