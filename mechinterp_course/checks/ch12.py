"""Checks for chapter 12, function vectors. They run on the course model and a random Llama
(rotary, grouped-query attention), whose layers and heads differ in number, so that a flattened
index unravelled the wrong way shows."""

from __future__ import annotations

import torch

from .. import steering
from . import call, compare, passed
from .ch00 import _models  # the course model and a random Llama


def _summed(m, mean_z, heads, bias=False):
    out = steering.function_vector(m, mean_z, heads)
    return out + m.attention_weights(heads[0][0])["b_O"] if bias else out


def check_function_vector(fn, model):
    """Exercise 12.2: fn(model, mean_z, scores, k) -> (d_model,): the sum over the k heads with
    the highest scores (n_layers, n_heads) of what each writes when its z is mean_z[layer,
    head] (n_layers, n_heads, d_head). Random mean_z and scores, some strongly negative, on the
    course model and a random Llama, for k of 1 and 3."""
    ex = "Exercise 12.2"
    g = torch.Generator().manual_seed(0)
    for m in _models(model):
        n_layers, n_heads = m.cfg.n_layers, m.cfg.n_heads
        mean_z = torch.randn(n_layers, n_heads, m.cfg.d_head, generator=g).to(m.cfg.device)
        scores = torch.randn(n_layers, n_heads, generator=g).to(m.cfg.device)
        scores[0, 1] = 5.0  # the largest effect
        scores[-1, 0] = -3.0  # the next largest, but the wrong way: it lowers the answer
        for k in (1, 3):
            out = call(ex, fn, m, mean_z.clone(), scores.clone(), k)
            ranked = [divmod(int(i), n_heads) for i in scores.flatten().argsort(descending=True)]
            by_size = [divmod(int(i), n_heads)
                       for i in scores.abs().flatten().argsort(descending=True)]
            heads = ranked[:k]
            want = steering.function_vector(m, mean_z, heads)
            compare(ex, out, want, {
                "These are the heads with the lowest scores: take the k highest, the heads whose "
                "mean output raises the right answer most.": _summed(m, mean_z, ranked[-k:]),
                "You ranked the heads by the size of their score. A head with a large negative "
                "score lowers the right answer: rank by the score itself.":
                    _summed(m, mean_z, by_size[:k]),
                "This sums every head: keep only the k highest-scoring ones.":
                    _summed(m, mean_z, ranked),
                "This is the mean of the heads' outputs: the function vector is their sum.":
                    want / k,
                "You added the attention's output bias b_O. It belongs to the whole layer, not to "
                "any head: a head writes z @ W_O.": _summed(m, mean_z, heads, bias=True),
                "This is the sum of the heads' z passed through W_O of layer 0 for every head: "
                "use each head's own layer.": sum(
                    mean_z[layer, head] @ m.attention_weights(0)["W_O"][head]
                    for layer, head in heads),
            }, what=f"the function vector for k = {k}", atol=1e-4, rtol=1e-4)
    passed(ex, "the function vector matches on the course model and a random Llama, for one "
               "head and for three")


@torch.no_grad()
def check_last_z(fn, model):
    """Exercise 12.3: fn(model, tokens, last) -> (n, n_layers, n_heads, d_head): every head's z
    at each prompt's last position, on right-padded prompts of three lengths."""
    from . import ExerciseFailed

    ex = "Exercise 12.3"
    texts = ["Japan: Tokyo\nSpain:", "Peru:", "Kenya: Nairobi\nChile: Santiago\nIndia:"]
    for m in _models(model):
        tokens, last = steering.prompts(m, texts)
        out = call(ex, fn, m, tokens.clone(), last.clone())
        want = steering.last_z(m, tokens, last)
        shape = (len(texts), m.cfg.n_layers, m.cfg.n_heads, m.cfg.d_head)
        if torch.is_tensor(out) and out.shape == (m.cfg.n_layers, *shape[:1], *shape[2:]):
            raise ExerciseFailed(f"{ex}: your result is (n_layers, n, ...): stack the layers on "
                                 "axis 1, for (n, n_layers, n_heads, d_head).")
        names = [("z", layer) for layer in range(m.cfg.n_layers)]
        _, cache = m.run_with_cache(tokens, names=names)
        compare(ex, out, want, {
            "You read the last column, which is padding for every prompt but the longest: "
            "read each prompt's own last position, `last`.":
                torch.stack([cache[n][:, -1] for n in names], 1),
            "You read the first position: read each prompt's last, `last`.":
                torch.stack([cache[n][:, 0] for n in names], 1),
        }, what="the z at the last positions", atol=1e-5)
    passed(ex, "z at each prompt's own last position, on the course model and a random Llama")


def _parse(ex, text, sep=":"):
    """A prompt's demonstration pairs and its query line."""
    from . import ExerciseFailed

    if not isinstance(text, str):
        raise ExerciseFailed(f"{ex}: each prompt should be a string, not {type(text).__name__}.")
    *demos, last = text.split("\n")
    pairs = []
    for line in demos:
        if f"{sep} " not in line:
            raise ExerciseFailed(f"{ex}: the demonstration line {line!r} is not 'X{sep} Y'.")
        x, y = line.split(f"{sep} ", 1)
        pairs.append((x, y))
    return pairs, last


def check_demonstrations(fn, model=None):
    """Exercise 12.1: fn(queries, answers, k, seed, shuffle, sep) -> one prompt per query: k
    demonstrations "X: answers[X]" (never the query), one a line, then "query:". Judged by
    properties, since any draw will do: the format, k distinct demonstrations without the
    query, true answers unless shuffled, the same demonstrations either way for one seed, the
    answers shuffled among them (kept as a set, moved off their countries), and the seed
    obeyed."""
    from . import ExerciseFailed

    ex = "Exercise 12.1"
    answers = {f"C{i}": f"A{i}" for i in range(30)}
    queries = ["C3", "C7", "C29", "C0"]
    plain = call(ex, fn, list(queries), dict(answers), 6, 0, False)
    mixed = call(ex, fn, list(queries), dict(answers), 6, 0, True)
    for out in (plain, mixed):
        if not isinstance(out, (list, tuple)) or len(out) != len(queries):
            raise ExerciseFailed(f"{ex}: return a list with one prompt per query "
                                 f"({len(queries)}); got {out!r:.80}.")
    moved = 0
    for query, text, shuffled in zip(queries, plain, mixed):
        pairs, last = _parse(ex, text)
        spairs, slast = _parse(ex, shuffled)
        if last != f"{query}:" or slast != f"{query}:":
            raise ExerciseFailed(f"{ex}: a prompt must end with the query and the separator, "
                                 f"{query + ':'!r}, with no answer; got {last!r}.")
        if len(pairs) != 6:
            raise ExerciseFailed(f"{ex}: {len(pairs)} demonstrations; k asks for 6.")
        xs = [x for x, _ in pairs]
        if query in xs:
            raise ExerciseFailed(f"{ex}: the query {query} is among its own demonstrations: "
                                 "the model could copy its answer from the prompt.")
        if len(set(xs)) != len(xs):
            raise ExerciseFailed(f"{ex}: a demonstration repeats: draw k distinct ones.")
        if any(answers[x] != y for x, y in pairs):
            raise ExerciseFailed(f"{ex}: without shuffling, every demonstration shows its own "
                                 "answer, answers[X].")
        if [x for x, _ in spairs] != xs:
            raise ExerciseFailed(f"{ex}: shuffling changed which demonstrations are shown: "
                                 "draw the same ones for the same seed, and shuffle only their "
                                 "answers among them.")
        if sorted(y for _, y in spairs) != sorted(y for _, y in pairs):
            raise ExerciseFailed(f"{ex}: the shuffled answers are not the demonstrations' own "
                                 "answers in another order.")
        moved += sum(answers[x] != y for x, y in spairs)
    if moved == 0:
        raise ExerciseFailed(f"{ex}: with shuffle=True every answer is still on its own "
                             "country: nothing was shuffled.")
    arrows = call(ex, fn, list(queries), dict(answers), 2, 0, False, " =")
    if not isinstance(arrows, (list, tuple)) or not all(
            isinstance(t, str) and t.endswith(f"{q} =") and " = " in t
            for q, t in zip(queries, arrows)):
        raise ExerciseFailed(f"{ex}: with sep=' =' the lines read 'X = Y' and the prompt ends "
                             f"'query ='; got {arrows!r:.100}.")
    again = call(ex, fn, list(queries), dict(answers), 6, 0, False)
    other = call(ex, fn, list(queries), dict(answers), 6, 1, False)
    if list(again) != list(plain) or list(other) == list(plain):
        raise ExerciseFailed(f"{ex}: the draw must follow the seed (random.Random(seed)): the "
                             "same seed, the same prompts; another seed, others.")
    passed(ex, "k distinct demonstrations without the query, shuffled answers among the same "
           "ones, following the seed")
