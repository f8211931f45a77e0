"""Chapter 12's check passes the solution and other correct answers, fails the stub, and names
the mistake in wrong answers without showing the reference."""

import torch

from mechinterp_course import steering
from mechinterp_course.checks import ch12
from notebooks import exercise_functions, fails_with

NB = "12_function_vectors.ipynb"
SOLUTION = exercise_functions("solutions", NB)
STUB = exercise_functions("chapters", NB)


def _fv_learner(mistake=None):
    """The function vector as a learner might write it: rank, unravel, sum."""
    def fn(model, mean_z, scores, k):
        n_heads = model.cfg.n_heads
        ranked = (scores.abs() if mistake == "size" else scores).flatten().argsort(
            descending=mistake != "lowest")
        picked = ranked if mistake == "every head" else ranked[:k]
        parts = []
        for i in picked:
            layer, head = divmod(int(i), n_heads)
            W_O = model.attention_weights(0 if mistake == "layer 0" else layer)["W_O"][head]
            z = mean_z[layer, head]
            parts.append(z if mistake == "no W_O" else z @ W_O)
        out = torch.stack(parts).mean(0) if mistake == "mean" else torch.stack(parts).sum(0)
        if mistake == "bias":
            out = out + model.attention_weights(0)["b_O"]
        return out
    return fn


def test_function_vector(course_model):
    check = ch12.check_function_vector
    check(SOLUTION["function_vector"], course_model)
    check(_fv_learner(), course_model)  # argsort and a stack: another correct answer
    check(lambda m, z, s, k: steering.function_vector(
        m, z, [divmod(int(i), m.cfg.n_heads) for i in s.flatten().topk(k).indices]), course_model)
    fails_with(check, STUB["function_vector"], course_model, "not done yet")
    fails_with(check, _fv_learner("lowest"), course_model, "lowest scores")
    fails_with(check, _fv_learner("size"), course_model, "size of their score")
    fails_with(check, _fv_learner("every head"), course_model, "every head")
    fails_with(check, _fv_learner("mean"), course_model, "their sum")
    fails_with(check, _fv_learner("bias"), course_model, "b_O")
    fails_with(check, _fv_learner("layer 0"), course_model, "own layer")
    fails_with(check, _fv_learner("no W_O"), course_model, "shape")
    fails_with(check, lambda m, z, s, k: None, course_model, "Tensor")
    fails_with(check, lambda m, z, s, k: _fv_learner()(m, z, s, k) * torch.nan, course_model,
               "NaN")
    fails_with(check, lambda m, z, s, k: _fv_learner()(m, z, s, k).double(), course_model,
               "dtype|float")
    fails_with(check, lambda m, z, s, k: _fv_learner()(m, z, s, 1), course_model,
               "matches none")  # k ignored: right for k = 1, not for 3

    def raises(m, z, s, k):
        raise KeyError("W_0")
    fails_with(check, raises, course_model, "raised KeyError")


def test_last_z(course_model):
    from mechinterp_course import steering
    from mechinterp_course.checks import ch12
    check = ch12.check_last_z
    check(SOLUTION["last_z"], course_model)
    check(steering.last_z, course_model)
    fails_with(check, STUB["last_z"], course_model, "not done yet")

    def read_at(pick, axis=1):
        def fn(m, tokens, last):
            names = [("z", layer) for layer in range(m.cfg.n_layers)]
            _, cache = m.run_with_cache(tokens, names=names)
            return torch.stack([pick(cache[n], last) for n in names], axis)
        return fn
    rows = lambda z, last: z[torch.arange(len(last)), last]  # noqa: E731
    check(read_at(rows), course_model)
    fails_with(check, read_at(lambda z, last: z[:, -1]), course_model, "padding")
    fails_with(check, read_at(lambda z, last: z[:, 0]), course_model, "first position")
    fails_with(check, read_at(rows, axis=0), course_model, "axis 1")
    fails_with(check, read_at(lambda z, last: z[:, last]), course_model, "shape")


def test_demonstrations():
    import random

    check = ch12.check_demonstrations
    check(SOLUTION["demonstrations"], None)
    check(steering.in_context_prompts, None)
    fails_with(check, STUB["demonstrations"], None, "not done yet")

    def written(with_query=False, reshuffle=False, unseeded=False, shuffle_all=False,
                no_shuffle=False, answer_in_query=False):
        def fn(queries, answers, k, seed, shuffle, sep=":"):
            pick = random.Random(None if unseeded else seed)
            mix = random.Random(seed + 1)
            texts = []
            for q in queries:
                pool = list(answers) if with_query else [x for x in answers if x != q]
                if with_query and q in pool:
                    pool.remove(q)
                    shown = [q] + pick.sample(pool, k - 1)
                else:
                    shown = pick.sample(pool, k)
                if shuffle and reshuffle:
                    shown = random.Random(seed + 7).sample(pool, k)
                said = [answers[x] for x in shown]
                if shuffle and shuffle_all:
                    said = [answers[x] for x in random.Random(seed + 3).sample(list(answers), k)]
                elif shuffle and not no_shuffle:
                    mix.shuffle(said)
                end = f"{q}{sep} {answers[q]}" if answer_in_query else f"{q}{sep}"
                texts.append("".join(f"{x}{sep} {y}\n" for x, y in zip(shown, said)) + end)
            return texts
        return fn

    check(written(), None)  # the solution's way, written again
    fails_with(check, written(with_query=True), None, "among its own")
    fails_with(check, written(reshuffle=True), None, "changed which demonstrations")
    fails_with(check, written(shuffle_all=True), None, "own answers in another order")
    fails_with(check, written(no_shuffle=True), None, "nothing was shuffled")
    fails_with(check, written(unseeded=True), None, "for the same seed")
    fails_with(check, written(answer_in_query=True), None, "with no answer")
    fails_with(check, lambda q, a, k, seed, shuffle, sep=":": "\n".join(
        steering.in_context_prompts(q, a, k, seed, shuffle, sep=sep)), None, "one prompt per")
