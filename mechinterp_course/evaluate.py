"""What the course model must be able to do, measured: the four numbers in its model card.

Training watches these and stops when they hold; a test checks them on the shipped weights; the
chapters reuse them (chapter 04 writes its own induction score and compares with this one).
"""

from __future__ import annotations

import torch

from . import world

# What the shipped model must reach (the model card and tests read these).
TARGETS = {"capital_accuracy": 0.95, "induction_score": 0.8, "previous_token_score": 0.8,
           "ioi_logit_diff": 2.0}


@torch.no_grad()
def capital_accuracy(model, prompts: list[world.Prompt] | None = None) -> float:
    """Fraction of 'The capital of X is' prompts whose top next token starts the right capital."""
    prompts = prompts or world.capital_prompts()
    right = 0
    for p in prompts:
        logits = model(p.text)[0, -1]
        first = model.to_tokens(p.answer, prepend_bos=False)[0, 0]
        right += int(logits.argmax() == first)
    return right / len(prompts)


def _random_ids(model, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    """(batch, seq_len) random token ids, never BOS when BOS is id 0."""
    low = 1 if model.tokenizer.bos_token_id == 0 else 0
    return torch.randint(low, model.cfg.d_vocab, (batch, seq_len),
                         generator=torch.Generator().manual_seed(seed))


def repeated_tokens(model, seq_len: int = 50, batch: int = 10, seed: int = 0) -> torch.Tensor:
    """BOS, then seq_len random tokens, then the same tokens again: (batch, 1 + 2 * seq_len)."""
    half = _random_ids(model, batch, seq_len, seed)
    bos = torch.full((batch, 1), model.tokenizer.bos_token_id or 0)
    return torch.cat([bos, half, half], dim=1).to(model.cfg.device)


def unrepeated_tokens(model, seq_len: int = 50, batch: int = 10, seed: int = 0) -> torch.Tensor:
    """`repeated_tokens` with fresh random tokens in place of the repeat: the null for scores that
    need the repeat (induction, same token). The positions and the first half are the same, so a
    head that attends at a fixed distance scores as much here as there."""
    tokens = repeated_tokens(model, seq_len, batch, seed)
    tokens[:, 1 + seq_len:] = _random_ids(model, batch, seq_len, seed + 1).to(tokens.device)
    return tokens


@torch.no_grad()
def induction_scores(model, seq_len: int = 50, batch: int = 10, seed: int = 0) -> torch.Tensor:
    """(n_layers, n_heads): mean attention from each second-half token to the token right after
    its first occurrence, on repeated random tokens."""
    from .circuits import induction_score  # circuits builds on this module

    tokens = repeated_tokens(model, seq_len, batch, seed)
    _, cache = model.run_with_cache(tokens, names=["pattern"])
    return torch.stack([induction_score(cache["pattern", layer], seq_len)
                        for layer in range(model.cfg.n_layers)])


@torch.no_grad()
def previous_token_scores(model, n_docs: int = 20, seed: int = 0) -> torch.Tensor:
    """(n_layers, n_heads): mean attention from each token to the one just before it, on world
    text."""
    from .circuits import previous_token_score  # circuits builds on this module

    scores = []
    for doc in world.documents(seed, n_docs):
        tokens = model.to_tokens(doc.text)[:, : model.cfg.n_ctx]
        _, cache = model.run_with_cache(tokens, names=["pattern"])
        scores.append(torch.stack([previous_token_score(cache["pattern", layer])
                                   for layer in range(model.cfg.n_layers)]))
    return torch.stack(scores).mean(0)


@torch.no_grad()
def ioi_logit_diff(model, n: int = 100, seed: int = 0) -> float:
    """Mean logit(indirect object) - logit(subject) at the end of n name stories."""
    diffs = []
    for p in world.ioi_prompts(n, seed):
        logits = model(p.text)[0, -1]
        diffs.append(logits[model.to_single_token(" " + p.attrs["io"])]
                     - logits[model.to_single_token(" " + p.attrs["s"])])
    return float(torch.stack(diffs).mean())


HELD_OUT_SEED = 1_000_003  # training batches use seeds (0, step): these documents are unseen


@torch.no_grad()
def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The mean next-token cross-entropy (nats), the loss a language model is trained on: the
    logits at position t (batch, pos, d_vocab) scored against token t + 1 of tokens (batch, pos)."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(),
                                             tokens[:, 1:].flatten())


def held_out_loss(model, docs_per_family: int = 20, seed: int = HELD_OUT_SEED) -> dict:
    """Mean next-token loss (nats per token) on world documents the model never trained on, per
    family and over all tokens. Unseen text, not an unseen world: the facts are the same."""
    losses, counts = {}, {}
    for i, family in enumerate(f for f in world.FAMILIES):
        total, n = 0.0, 0
        for doc in world.documents(seed + i, docs_per_family, family):
            tokens = model.to_tokens(doc.text)[:, : model.cfg.n_ctx]
            logp = model(tokens)[0, :-1].float().log_softmax(-1)
            total += float(-logp.gather(-1, tokens[0, 1:, None]).sum())
            n += tokens.shape[1] - 1
        losses[family], counts[family] = total / n, n
    losses["all"] = sum(losses[f] * counts[f] for f in counts) / sum(counts.values())
    return losses


def course_metrics(model) -> dict[str, float]:
    """The four model-card numbers."""
    return {
        "capital_accuracy": capital_accuracy(model),
        "induction_score": float(induction_scores(model).max()),
        "previous_token_score": float(previous_token_scores(model).max()),
        "ioi_logit_diff": ioi_logit_diff(model),
    }


def meets_targets(metrics: dict[str, float], margin: float = 0.0) -> bool:
    """True when every metric reaches its target (plus a relative margin)."""
    return all(metrics[k] >= v * (1 + margin) for k, v in TARGETS.items())
