"""MLP neurons over labelled world text: activations, top contexts, and how many unrelated families
of text a neuron responds to (chapter 05).

The world's documents carry their family (country facts, Python, water words, ...), so "this
neuron fires for Python and for water words" is a count, not an impression. To keep a neuron that
simply fires on a common token (a full stop appears in every family) from counting as
polysemantic, a family only counts through tokens *specific* to it: tokens that occur (almost)
only in that family's text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import Tensor

from . import world


@dataclass
class NeuronData:
    """Every MLP neuron's activation at every token of a labelled sample of world text."""

    acts: Tensor          # (tokens, n_layers * d_mlp); neuron (layer, i) is column
                          # layer * d_mlp + i
    token_ids: Tensor     # (tokens,)
    family: Tensor        # (tokens,) index into `families`
    families: list[str]
    contexts: list[str]   # the few tokens up to and including each token
    d_mlp: int
    doc: Tensor | None = None       # (tokens,) index into `documents`
    documents: list | None = None   # the world documents, with their attributes
    spans: Tensor | None = None     # (tokens, 2) each token's characters in its document's text

    def labels(self) -> dict[str, Tensor]:
        """Boolean per-token labels: one per family, and one per continent for the tokens of
        country documents (the continent of the country mentioned)."""
        out = {name: self.family == f for f, name in enumerate(self.families)}
        if self.documents is not None:
            continent = [self.documents[int(i)].attrs.get("continent") for i in self.doc]
            for c in sorted({c for c in continent if c}):
                out[c] = torch.tensor([x == c for x in continent])
        return out

    def token_labels(self) -> dict[str, Tensor]:
        """Boolean labels of single tokens, from what the world put where: the country named
        (and one label per continent), its capital and language, state names and capitals,
        people's names, water nouns, Python keywords, days and months, numbers, rule symbols.
        Finer than `labels()`, which marks every token of a document."""
        if self.documents is None or self.spans is None:
            raise ValueError("token labels need the documents and spans that `collect` keeps")
        continents = sorted({c for _, c, _ in world.COUNTRIES.values()})
        names = (["country name"] + [f"country in {c}" for c in continents]
                 + ["capital of a country", "language", "state name", "state capital",
                    "person name", "water noun", "Python keyword", "day or month", "number",
                    "rule symbol"])
        out = {name: torch.zeros(len(self.family), dtype=torch.bool) for name in names}
        for d, doc in enumerate(self.documents):
            where = (self.doc == d).nonzero().flatten()
            for name, pattern in _label_patterns(doc).items():
                for start, end in (m.span() for m in re.finditer(pattern, doc.text)):
                    hit = (self.spans[where, 0] < end) & (self.spans[where, 1] > start)
                    out[name][where[hit]] = True
        return {name: v for name, v in out.items() if v.any()}

    def neuron(self, layer: int, index: int) -> Tensor:
        return self.acts[:, layer * self.d_mlp + index]


@torch.no_grad()
def collect(model, docs_per_family: int = 30, seed: int = 100, max_tokens: int = 128,
            skip_first: int = 2, families: list[str] | None = None,
            site: tuple[str, int] | None = None) -> NeuronData:
    """Run the model over world documents of each family and keep mlp_post of every layer (or
    the one activation `site`, e.g. ("resid_post", 1)) everywhere except the first `skip_first`
    positions (BOS and the first word, which many neurons mark)."""
    families = families or [f for f in world.FAMILIES if f != "repeat"]  # repeat mixes families
    acts, ids, fam, ctx, doc_index, docs, spans = [], [], [], [], [], [], []
    bos = 1 if model.default_prepend_bos else 0
    for fi, name in enumerate(families):
        for doc in world.documents(seed + fi, docs_per_family, name):
            docs.append(doc)
            tokens = model.to_tokens(doc.text)[:, :max_tokens]
            offsets = model.tokenizer(doc.text, return_offsets_mapping=True,
                                      add_special_tokens=False)["offset_mapping"]
            offsets = [(0, 0)] * bos + [tuple(o) for o in offsets]  # BOS covers no characters
            spans += offsets[skip_first: tokens.shape[1]]
            if site is None:
                _, cache = model.run_with_cache(tokens, names=["mlp_post"])
                a = cache.stack("mlp_post")[:, 0, skip_first:]  # (layers, pos, d_mlp)
            else:
                _, cache = model.run_with_cache(tokens, names=[site])
                a = cache[site][:, skip_first:]  # (1, pos, d)
            acts.append(a.permute(1, 0, 2).reshape(a.shape[1], -1).cpu())
            ids.append(tokens[0, skip_first:].cpu())
            fam += [fi] * a.shape[1]
            doc_index += [len(docs) - 1] * a.shape[1]
            strs = model.to_str_tokens(tokens)
            ctx += ["".join(strs[max(0, i - 6): i + 1]) for i in range(skip_first, len(strs))]
    return NeuronData(torch.cat(acts), torch.cat(ids), torch.tensor(fam), families, ctx,
                      model.cfg.d_mlp if site is None else model.cfg.d_model,
                      torch.tensor(doc_index), docs, torch.tensor(spans))


PYTHON_KEYWORDS = ["def", "return", "class", "for", "in", "if", "print", "range", "sum", "self"]


def _label_patterns(doc) -> dict[str, str]:
    """Regular expressions for the words of one document that carry a token label, by label."""
    def words(ws):
        return r"\b(?:" + "|".join(re.escape(w) for w in ws) + r")\b"
    a, f = doc.attrs, doc.family
    if f == "country":
        return {"country name": words([a["country"]]),
                f"country in {a['continent']}": words([a["country"]]),
                "capital of a country": words([a["capital"]]), "language": words([a["language"]])}
    if f == "state":
        return {"state name": words([a["state"]]), "state capital": words([a["capital"]])}
    if f in ("ioi", "story"):
        return {"person name": words(world.NAMES)}
    if f == "water":
        return {"water noun": words(world.WATER_WORDS)}
    if f == "python":
        return {"Python keyword": words(PYTHON_KEYWORDS)}
    if f == "sequence":
        return {"day or month": words(world.DAYS + world.MONTHS), "number": r"\b\d+\b"}
    if f == "rule":
        return {"rule symbol": r"(?<= )[0-9a-f]\b"}  # after "rule:", the space-separated symbols
    return {}


def specific_family(data: NeuronData, purity: float = 0.9) -> Tensor:
    """(tokens,): the family a token belongs to if at least `purity` of its occurrences in the
    sample are in that family, else -1."""
    return vocab_family(data, int(data.token_ids.max()) + 1, purity)[data.token_ids]


def family_counts(data: NeuronData, k: int = 100, purity: float = 0.9,
                  shift: Tensor | None = None, rows: Tensor | None = None) -> Tensor:
    """(n_families, n_neurons): how many of each neuron's top-k activations fall on tokens
    specific to each family. shift (n_neurons,): move each neuron's top-k by that many tokens
    (the null of `random_shifts`). rows: use only these tokens (a bootstrap resample)."""
    owner = specific_family(data, purity)
    acts = data.acts
    if rows is not None:
        acts, owner = acts[rows], owner[rows]
    return top_k_counts(acts, owner, len(data.families), k, shift)


def top_k_counts(acts: Tensor, owner: Tensor, n_families: int, k: int,
                 shift: Tensor | None = None) -> Tensor:
    """(n_families, n_neurons): how many of each neuron's k largest activations (acts is
    (tokens, n_neurons)) fall on tokens that `owner` (tokens,) gives to each family (-1: to
    none). shift (n_neurons,): each neuron's top k moved by that many tokens (a null)."""
    top = acts.topk(k, dim=0).indices  # (k, neurons): token indices
    if shift is not None:
        top = (top + shift) % len(owner)
    owner = owner[top]
    return torch.stack([(owner == f).sum(0) for f in range(n_families)])


def random_shifts(data: NeuronData, generator: torch.Generator) -> Tensor:
    """(n_neurons,) random offsets for the null of `family_counts`: each neuron's top tokens
    moved, all together, to another stretch of the text. The null keeps how a neuron's strongest
    activations bunch together (in a few documents, at neighbouring tokens) and breaks only
    which tokens they land on, so bursts of activation cannot pass for selectivity."""
    return torch.randint(0, len(data.family), (data.acts.shape[1],), generator=generator)


def family_thresholds(data: NeuronData, k: int = 100, alpha: float = 1e-3,
                      purity: float = 0.9) -> Tensor:
    """(n_families,): for each family, the smallest count of its specific tokens that k random
    tokens reach with probability at most alpha (binomial, at the family's share of all
    tokens). A neuron responds to a family when its top-k hold at least that many: a count
    judged against chance, not a fixed number (half of all tokens belong to some family, so
    a fixed count is reached by noise)."""
    owner = specific_family(data, purity)
    ks = torch.arange(k + 1, dtype=torch.float64)
    out = []
    for f in range(len(data.families)):
        p = float((owner == f).double().mean().clamp(1e-12, 1 - 1e-12))
        log_pmf = (torch.lgamma(torch.tensor(k + 1.0, dtype=torch.float64))
                   - torch.lgamma(ks + 1) - torch.lgamma(k - ks + 1)
                   + ks * math.log(p) + (k - ks) * math.log1p(-p))
        tail = log_pmf.exp().flip(0).cumsum(0).flip(0)  # tail[c] = P(count >= c)
        out.append(int((tail <= alpha).nonzero()[0]) if (tail <= alpha).any() else k + 1)
    return torch.tensor(out)


def share_responding(counts: Tensor, thresholds, min_families: int = 3) -> float:
    """The share of neurons whose counts (n_families, n_neurons) reach the thresholds (one per
    family, or one number) for at least `min_families` families."""
    thresholds = torch.as_tensor(thresholds).reshape(-1, 1)
    return float(((counts >= thresholds).sum(0) >= min_families).float().mean())


def vocab_family(data: NeuronData, d_vocab: int, purity: float = 0.9) -> Tensor:
    """(d_vocab,): the family each vocabulary token is specific to in the sample (at least
    `purity` of its occurrences), or -1 (never seen, or shared between families)."""
    counts = torch.zeros(d_vocab, len(data.families))
    counts.index_put_((data.token_ids, data.family), torch.ones(len(data.family)),
                      accumulate=True)
    seen = counts.sum(1)
    share = counts / seen.clamp(min=1).unsqueeze(1)
    return torch.where((share.max(1).values >= purity) & (seen > 0), share.argmax(1),
                       torch.tensor(-1))


def family_writes(logits: Tensor, owner: Tensor, n_families: int) -> Tensor:
    """(..., n_families): the mean standardised logit (z-score over the vocabulary) of each
    family's specific tokens, for logits (..., d_vocab) and owner from `vocab_family`. Above 0:
    the direction pushes that family's tokens up more than the average token."""
    z = (logits - logits.mean(-1, keepdim=True)) / logits.std(-1, keepdim=True)
    return torch.stack([z[..., owner == f].mean(-1) for f in range(n_families)], -1)


def top_contexts(data: NeuronData, layer: int, index: int, k: int = 5,
                 family: int | None = None) -> list[tuple[float, str, str]]:
    """The neuron's k strongest activations as (activation, family, context), optionally within
    one family."""
    a = data.neuron(layer, index)
    if family is not None:
        a = torch.where(data.family == family, a, torch.tensor(float("-inf")))
    top = a.topk(k).indices
    return [(float(a[i]), data.families[int(data.family[i])], data.contexts[i]) for i in top]


def auroc(scores: Tensor, labels: Tensor) -> Tensor:
    """Area under the ROC curve of each column of scores (n, units) for boolean labels (n,):
    the chance that a random positive outscores a random negative, ties counting half.
    Labels (n, k) score k labels at once, (k, units), ranking the scores only once."""
    if labels.dtype != torch.bool or labels.dim() not in (1, 2) or len(labels) != len(scores):
        raise ValueError(f"auroc needs boolean labels (n,) or (n, k) for scores (n, units); "
                         f"got {labels.dtype} {tuple(labels.shape)} for {tuple(scores.shape)}")
    one = labels.dim() == 1
    labels = labels.reshape(len(labels), -1)  # (n, k)
    n_pos = labels.sum(0).double()  # (k,)
    n_neg = len(labels) - n_pos
    if (n_pos == 0).any() or (n_neg == 0).any():
        raise ValueError("auroc needs at least one positive and one negative")
    if scores.isnan().any():
        raise ValueError("auroc got NaN scores, which have no rank")
    ordered, order = scores.T.contiguous().sort(dim=1)  # (units, n)
    n = ordered.shape[1]
    where = torch.arange(n, device=ordered.device).expand_as(ordered)  # each sorted index
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]  # a run of tied values begins here
    first = torch.where(starts, where, 0).cummax(dim=1).values  # where each value's run begins
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    last = torch.where(ends, where, n).flip(1).cummin(dim=1).values.flip(1)  # and ends
    exact = torch.float32 if n < 2 ** 23 else torch.float64  # halves are exact below 2**23
    ranks = torch.empty(ordered.shape, dtype=exact, device=ordered.device).scatter_(
        1, order, (first + last + 2).to(exact) / 2)  # (units, n): 1-based, ties share their mean
    u = labels.T.double() @ ranks.T.double() - (n_pos * (n_pos + 1) / 2)[:, None]  # Mann-Whitney
    out = (u / (n_pos * n_neg)[:, None]).to(scores.dtype if scores.is_floating_point()
                                            else torch.float32)  # (k, units)
    return out[0] if one else out
