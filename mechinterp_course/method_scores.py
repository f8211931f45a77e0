"""The course's methods, run on the planted models as a learner would run them, and scored
against the planted truth: which heads each method names, and the precision and recall of that
set against the heads that implement the task. Thresholds are fixed here, before any model was
looked at. `python -m mechinterp_course.method_scores` rewrites the table chapters read.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "sweeps" / "planted_method_scores.json"
PATTERN_THRESHOLD = 0.5  # a head "is" a previous-token or induction head above this score
ABLATION_THRESHOLD = 1.0  # nats of loss on the repeat that removing a head must add
DIRECT_THRESHOLD = 0.1  # share of the answer's direct logit a head must write


def repeated_distinct(model, n: int = 15, batch: int = 8, seed: int = 0) -> torch.Tensor:
    """BOS, n distinct random tokens, the same n again: (batch, 1 + 2n)."""
    g = torch.Generator().manual_seed(seed)
    half = torch.stack([torch.randperm(model.cfg.d_vocab - 1, generator=g)[:n] + 1
                        for _ in range(batch)])
    bos = torch.full((batch, 1), model.tokenizer.bos_token_id or 0)
    return torch.cat([bos, half, half], 1).to(model.cfg.device)


def repeat_loss(model, tokens: torch.Tensor, hooks: dict | None = None) -> float:
    """Mean loss on the repeat's tokens after its first (which has nothing to copy)."""
    n = (tokens.shape[1] - 1) // 2
    with torch.no_grad(), model.hooks(hooks or {}):
        logits = model(tokens)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:],
                                             reduction="none")  # (batch, pos - 1)
    return float(loss[:, n + 1:].mean())


def _heads(model):
    return [(layer, head) for layer in range(model.cfg.n_layers)
            for head in range(model.cfg.n_heads)]


@torch.no_grad()
def named_by(model, tokens: torch.Tensor) -> dict[str, list[tuple[int, int]]]:
    """For each method, the heads it names as doing the task on `tokens`."""
    from . import circuits, lens

    n = (tokens.shape[1] - 1) // 2
    _, cache = model.run_with_cache(tokens)
    pattern = {(layer, head): (circuits.previous_token_score(cache["pattern", layer])[head],
                               circuits.induction_score(cache["pattern", layer], n)[head])
               for layer, head in _heads(model)}
    base = repeat_loss(model, tokens)
    ablation = {h: repeat_loss(model, tokens, circuits.ablate_heads([h])) - base
                for h in _heads(model)}
    # direct logit attribution of each head to the right next token, over the repeat
    comps = lens.residual_components(model, cache)  # (components, batch, pos, d_model)
    labels = lens.component_labels(model)
    final = cache["resid_post", model.cfg.n_layers - 1]
    answers = tokens[:, n + 2:]  # (batch, n - 1): what positions n + 1 .. 2n - 1 must predict
    direct = {}
    for layer, head in _heads(model):
        part = comps[labels.index(f"L{layer}H{head}")][:, n + 1: 2 * n]  # (batch, n - 1, d)
        by_token = torch.stack([lens.attribute(model, part, final[:, n + 1: 2 * n],
                                               model.W_U[:, v])
                                for v in range(model.cfg.d_vocab)], -1)  # (b, n - 1, vocab)
        direct[(layer, head)] = float(by_token.gather(-1, answers[..., None]).mean())
    total = sum(max(v, 0.0) for v in direct.values()) or 1.0
    return {
        "attention pattern scores": sorted(h for h, s in pattern.items()
                                           if max(map(float, s)) > PATTERN_THRESHOLD),
        "zero ablation, one head at a time": sorted(h for h, d in ablation.items()
                                                    if d > ABLATION_THRESHOLD),
        "direct logit attribution": sorted(h for h, d in direct.items()
                                           if d / total > DIRECT_THRESHOLD),
    }


def score(named: list, truth: list) -> dict:
    named, truth = set(map(tuple, named)), set(map(tuple, truth))
    hits = len(named & truth)
    return {"named": sorted(map(list, named)), "precision": hits / len(named) if named else None,
            "recall": hits / len(truth)}


def table() -> dict:
    """{model: {method: score}} for every planted model."""
    from . import planted
    from .models import load_model

    out = {}
    for name in planted.BUILDERS:
        model = load_model(f"planted-{name}", device="cpu")
        truth = [h for h in planted.truth(name)["heads"].values()]
        out[name] = {method: score(heads, truth)
                     for method, heads in named_by(model, repeated_distinct(model)).items()}
    return out


if __name__ == "__main__":
    RESULTS.write_text(json.dumps(table(), indent=1) + "\n")
    print("wrote", RESULTS)
