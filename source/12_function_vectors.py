# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 12 Function vectors: a task in a vector
#
# Chapter 11 took a direction from prompts that differ in their *answer*. A **function
# vector** (Todd et al. 2024; task vectors, Hendel et al. 2023) is taken from prompts that show
# a *task*. After "Japan: Tokyo / Peru: Lima / Spain:" a model that learns in context answers
# " Madrid": nothing in the last line says "capital", the demonstrations do. Some heads carry
# the task from the demonstrations to the last position. Average what each head writes there
# over many such prompts, sum the heads that matter most, and add that sum to a prompt with no
# demonstrations at all, "Spain:". If the sum carries the task, the model now answers with the
# capital; which capital is the model's own knowledge, and the world knows the right one.
#
# **You will be able to:** check that a model learns a task in context before looking for it,
# and what its demonstrations teach; rank heads by their indirect effect on prompts with no
# demonstrations, estimated by attribution patching; build a function vector from the top
# heads; and judge it on held-out countries against random directions, random heads and
# another task's vector, and its accuracy against a null that keeps its answers and breaks
# their link to the countries.
#
# **Time:** about 65 minutes. **Prerequisites:** chapters 10 and 11, and SmolLM2 (the
# set-up line installs it): the course model barely learns these tasks in context
# (section 1), so from section 1 on this chapter is about SmolLM2.

# %%
from mechinterp_course import claims, method_scores, steering, world
from mechinterp_course.checks import ch12, yours

model = mc.load_model("course", device=device)
threshold = method_scores.ABLATION_THRESHOLD  # 1 nat, as in chapters 09 to 11: fixed before

# %% [markdown]
# ## 1. The premise: learning in context
#
# The prompts first. Each shows k demonstrations of a relation, "Japan: Tokyo", one a line, then
# the query, "Spain:". Their corrupted form (Todd et al.) keeps the same demonstrations and
# shuffles the answers among them, "Japan: Lima / Peru: Tokyo": the countries and the answers
# are all still there, only their pairing is gone.
#
# ### Exercise 12.1: demonstrations, and their shuffled twin
# 🟢 Easy, 10 minutes. Write `demonstrations(queries, answers, k, seed, shuffle, sep=":")`: for
# each query, k distinct demonstrations drawn from `answers` (a dict, country to answer), never
# the query itself, each `f"{x}{sep} {answers[x]}"` on a line of its own, then
# `f"{query}{sep}"`. With `shuffle=True`, the same demonstrations with their answers shuffled
# among them. Draw from `random.Random(seed)`, so a seed gives the same prompts.
#
# *Nudge:* the shuffled prompt must differ from the plain one in one thing only: which answer
# sits next to which country. What does that ask of the random draws for the two?
#
# *Hint:* one `random.Random(seed)` to `sample` the demonstrations (from the countries other
# than the query) and another, `random.Random(seed + 1)`, to `shuffle` the list of their
# answers; join the lines with `"\n"`.

# %%
import random


def demonstrations(queries, answers, k, seed, shuffle, sep=":"):
    # BEGIN SOLUTION
    pick, mix = random.Random(seed), random.Random(seed + 1)  # the same draws either way
    texts = []
    for query in queries:
        shown = pick.sample([x for x in answers if x != query], k)
        said = [answers[x] for x in shown]
        if shuffle:
            mix.shuffle(said)
        texts.append("".join(f"{x}{sep} {y}\n" for x, y in zip(shown, said)) + f"{query}{sep}")
    return texts
    # END SOLUTION


# %% tags=["check"]
ch12.check_demonstrations(demonstrations)

# %% [markdown]
# Then the premise, as in chapter 11: the model must learn the task in context. Two relations
# of the world, country to capital and country to continent, held-out countries, top answer
# against the world (printed), the prompts made by your `demonstrations` once its check has
# passed.

# %%
make_prompts = yours("Exercise 12.1", demonstrations, steering.in_context_prompts)
relations = {"capital": 0, "continent": 1}
answers = {name: {c: facts[i] for c, facts in world.COUNTRIES.items()}
           for name, i in relations.items()}
fv_train, fv_test = list(world.COUNTRIES)[::2], list(world.COUNTRIES)[1::2]


def answer_tokens(lm, relation, queries):
    """(n,): the first token of each query's answer, which the world knows."""
    return torch.tensor([lm.to_tokens(" " + answers[relation][q], prepend_bos=False)[0, 0]
                         for q in queries])


def next_logprobs(lm, relation, queries, k=0, seed=0, shuffle=False, steer=None, sep=":"):
    """(n, d_vocab): log-probabilities of the token after each query's prompt, k demonstrations
    of the relation drawn from the training countries only, then "query:" (or query + sep).
    steer: (vector, layer, strength), added at each prompt's last position
    (`steering.steered_logits`)."""
    shown = {c: answers[relation][c] for c in fv_train}
    texts = make_prompts(queries, shown, k, seed, shuffle, sep=sep)
    tokens, last = steering.prompts(lm, texts)
    if steer is None:
        with torch.no_grad():
            logits = lm(tokens)[torch.arange(len(tokens)), last]
    else:
        vector, layer, strength = steer
        logits = steering.steered_logits(lm, tokens, last, vector.to(lm.cfg.device), layer,
                                         strength)
    return logits.log_softmax(-1).cpu()


def right(lm, relation, queries, logprobs):
    """(n,): 1 where the top answer is the right one's first token."""
    return (logprobs.argmax(-1) == answer_tokens(lm, relation, queries)).float()


shots = {"none": (0, False), "ten": (10, False), "ten shuffled": (10, True)}  # k, shuffle
course_icl = {}
for sep in (":", " ->", " ="):
    for relation in relations:
        course_icl[sep, relation] = {name: float(right(model, relation, fv_test, next_logprobs(
            model, relation, fv_test, k, shuffle=shuffle, sep=sep)).mean())
            for name, (k, shuffle) in shots.items()}
        print(f"course model, {relation}, 'country{sep}': held-out accuracy with demonstrations",
              {name: round(v, 2) for name, v in course_icl[sep, relation].items()})

# %% [markdown]
# In the chapter's format, "country:", ten demonstrations do not help the course model: it
# gives capitals with none and loses them with demonstrations (printed). Of the two other
# formats tried, " =" gets continents right for some countries with ten demonstrations
# (printed), more with true answers than shuffled ones; that is the one place the course model
# learns something in context, and whether a function vector can be read from it is left open
# (a bonus question below). Each of its training documents speaks of one country; whether that
# is why it learns so little in context, this chapter does not test. The rest of the chapter
# uses SmolLM2-135M (offline, from its wheel), whose premise in the plain format is asserted:
# five demonstrations make it right for at least half of the held-out countries, in both
# relations, where with none it is right for none (printed).
#
# Look at what the demonstrations teach, though. With their answers **shuffled** among them
# ("Japan: Lima / Peru: Tokyo / Spain:") SmolLM2 is still right for at least half (asserted):
# a list of capitals says "answer with a capital" whichever countries they are paired with.
# The pairing hardly matters; the *kind* of answer does.

# %%
lm = mc.load_model("smollm2", device=device)
premise = {relation: {name: round(float(right(lm, relation, fv_test, next_logprobs(
    lm, relation, fv_test, k, shuffle=shuffle)).mean()), 2)
    for name, (k, shuffle) in {"none": (0, False), "five": (5, False),
                               "five shuffled": (5, True)}.items()}
    for relation in relations}
print("SmolLM2, held-out accuracy with demonstrations:", premise)
assert all(by_shots["five"] >= 0.5 for by_shots in premise.values())
assert all(by_shots["five shuffled"] >= 0.5 for by_shots in premise.values())

# %% [markdown]
# ## 2. The heads that carry the task
#
# Which heads carry the task? Todd et al. patch each head's mean output into prompts whose
# demonstrations have their answers shuffled, where their tasks are gone, and measure how much
# the right answer's log-probability rises: the head's indirect effect. Here section 1 showed
# that shuffling leaves the task in place: SmolLM2 is as often right with shuffled answers.
# So the prompts patched into have **no demonstrations** ("Spain:"), where SmolLM2 is never
# right (printed in section 1): the format is there, the task is not. SmolLM2 has hundreds of
# heads (printed), a forward pass each; `steering.head_attributions` estimates all of them
# from one forward and one backward pass, by chapter 10's attribution patching. It is a linear
# estimate, used here only to rank. The ten heads ranked highest make the vector (the sum of
# what each writes when its z is its mean over the training countries' in-context prompts).
#
# ### Exercise 12.2: a function vector
# 🟢 Easy, 10 minutes. Write `function_vector(model, mean_z, scores, k)`: the sum, over the `k`
# heads with the highest `scores` (n_layers, n_heads), of what each head writes to the residual
# stream when its z is `mean_z[layer, head]` (mean_z is (n_layers, n_heads, d_head)), a
# (d_model,) vector.
#
# *Nudge:* Rank the heads of all layers together; each of the top k writes its mean z through its
# own output matrix into the residual stream; add up what they write.
#
# *Hint:* `scores.flatten().topk(k).indices`, and `divmod(i, n_heads)` gives (layer, head). A
# head writes `z @ W_O`, with `model.attention_weights(layer)["W_O"][head]` (d_head, d_model).

# %%
def function_vector(model, mean_z, scores, k):
    # BEGIN SOLUTION
    vector = torch.zeros(model.cfg.d_model, device=mean_z.device)
    for i in scores.flatten().topk(k).indices:
        layer, head = divmod(int(i), model.cfg.n_heads)
        vector += mean_z[layer, head] @ model.attention_weights(layer)["W_O"][head]
    return vector
    # END SOLUTION


# %% tags=["check"]
ch12.check_function_vector(function_vector, model)

# %% [markdown]
# The mean z comes from prompts of different lengths, padded on the right: each prompt's last
# token sits at its own position.
#
# ### Exercise 12.3: every head at the last position
# 🟢 Easy, 10 minutes. Write `last_z(model, tokens, last)`: tokens (n, pos), padded on the right,
# and `last` (n,), each prompt's last position (from `steering.prompts`). Return every head's z
# there, (n, n_layers, n_heads, d_head).
#
# *Nudge:* cache z in every layer, then pick one position per prompt, a different one for each;
# the last column of a padded batch is padding for all but the longest prompt.
#
# *Hint:* `model.run_with_cache(tokens, names=[("z", layer) for layer in ...])`; then
# `cache["z", layer][torch.arange(n), last]` is (n, n_heads, d_head); `torch.stack(..., 1)`.

# %%
@torch.no_grad()
def last_z(model, tokens, last):
    # BEGIN SOLUTION
    names = [("z", layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names=names)
    rows = torch.arange(len(tokens), device=tokens.device)
    return torch.stack([cache[name][rows, last] for name in names], 1)  # (n, layers, heads, d)
    # END SOLUTION


# %% tags=["check"]
ch12.check_last_z(last_z, model)

# %% [markdown]
# `steering.function_vector(model, mean_z, heads)` is the package's version, taking the heads
# as (layer, head) pairs; the chapter uses it, with your `last_z` once its check has passed.

# %%
z_at_last = yours("Exercise 12.3", last_z, steering.last_z)
n_top, n_heads = 10, lm.cfg.n_heads
print(f"SmolLM2 has {lm.cfg.n_layers * n_heads} heads; the vector takes the top {n_top}")
mean_z, function_vectors = {}, {}
for relation in relations:
    tokens, last = steering.prompts(lm, make_prompts(
        fv_train, {c: answers[relation][c] for c in fv_train}, 5, 1, False))
    mean_z[relation] = z_at_last(lm, tokens, last).mean(0)  # (n_layers, n_heads, d_head)
    tokens, last = steering.prompts(lm, [f"{c}:" for c in fv_train])  # no demonstrations
    effect = steering.head_attributions(lm, tokens, last,
                                        answer_tokens(lm, relation, fv_train), mean_z[relation])
    heads = [divmod(int(i), n_heads) for i in effect.flatten().topk(n_top).indices]
    function_vectors[relation] = steering.function_vector(lm, mean_z[relation], heads)
    print(f"{relation}: the top {n_top} heads (layer, head) {heads}; the vector's norm "
          f"{float(function_vectors[relation].norm()):.1f}")

# %% [markdown]
# ## 3. The vector, held out
#
# The vector goes into "query:" at the last position, at one layer and with a strength, both
# chosen on the *training* countries by accuracy, from a small grid fixed before looking. Then
# the held-out countries, three controls of the vector's norm at the same layer, position and
# strength, and a null:
#
# - random directions (five);
# - the sum of **ten random heads'** mean outputs (five draws): the same number of components,
#   chosen without the ranking;
# - the **other relation's** function vector: does the capital vector give capitals and not
#   continents, and the continent vector the reverse?
# - for accuracy, the null of **shuffled countries**: each country scored against the answers
#   the steered model gave the others. A vector that made the model say " Europe" every time
#   would be right for every European country and would score as well on this null.
#
# The claims are judged together, Bonferroni over eight: for each relation, the right answer's
# log-probability rises more than under each control by more than 1 nat (six); and accuracy,
# pooled over the two relations, rises above no demonstrations and above the shuffled
# countries (two). Accuracy is pooled because half the world's countries, per relation, are
# too few to bound a small accuracy away from zero; each relation's is printed.

# %%
def as_long_as(direction, like):
    return direction / direction.norm() * like.norm()


grid = [(layer, strength) for layer in (12, 14, 16, 18) for strength in (2.0, 4.0)]
chosen = {}
for relation, vector in function_vectors.items():
    on_train = {(layer, strength): float(right(lm, relation, fv_train, next_logprobs(
        lm, relation, fv_train, steer=(vector, layer, strength))).mean())
        for layer, strength in grid}
    chosen[relation] = max(on_train, key=on_train.get)
    print(f"{relation}: layer and strength chosen on the training countries {chosen[relation]}"
          f", accuracy there {on_train[chosen[relation]]:.2f}")

g_fv = torch.Generator().manual_seed(0)
fv_level = claims.corrected_level(8)
logprob_excess, pooled = {}, {"own": [], "none": [], "shuffled": []}
for relation, vector in function_vectors.items():
    layer, strength = chosen[relation]
    want = answer_tokens(lm, relation, fv_test)

    def steered(direction):
        """The right answer's log-probability (n,) and the top answer (n,), held out."""
        logprobs = next_logprobs(lm, relation, fv_test, steer=None if direction is None
                                 else (direction, layer, strength))
        return logprobs[torch.arange(len(want)), want], logprobs.argmax(-1)

    def mean_over(directions):
        return torch.stack([steered(d)[0] for d in directions]).mean(0)

    other = next(r for r in relations if r != relation)
    random_heads = [steering.function_vector(lm, mean_z[relation], [
        divmod(int(i), n_heads) for i in torch.randperm(lm.cfg.n_layers * n_heads,
                                                        generator=g_fv)[:n_top]])
        for _ in range(5)]
    own, top = steered(vector)
    controls = {
        "random directions": mean_over(claims.random_directions(5, vector, g_fv)),
        "ten random heads": mean_over([as_long_as(v, vector) for v in random_heads]),
        f"the {other} vector": steered(as_long_as(function_vectors[other], vector))[0]}
    none, top_none = steered(None)
    for name, control in controls.items():
        logprob_excess[relation, name] = claims.bootstrap_ci(own - control, level=fv_level)
    others = torch.arange(len(want))
    shuffled = torch.stack([(top[others != i] == want[i]).float().mean() for i in others])
    pooled["own"].append((top == want).float())
    pooled["none"].append((top_none == want).float())
    pooled["shuffled"].append(shuffled)
    print(f"{relation}: the right answer's log-probability {claims.bootstrap_ci(own)} with the "
          f"vector, {claims.bootstrap_ci(none)} without; the controls "
          + ", ".join(f"{k} {claims.bootstrap_ci(v)}" for k, v in controls.items()))
    print(f"  accuracy with the vector {float((top == want).float().mean()):.2f}, without "
          f"{float((top_none == want).float().mean()):.2f}; shuffled countries "
          f"{float(shuffled.mean()):.2f}")
print("the excess in log-probability:", {f"{r}, over {c}": str(e)
                                         for (r, c), e in logprob_excess.items()})
own_right = torch.cat(pooled["own"])
accuracy_excess = {
    "over no demonstrations": claims.bootstrap_ci(own_right - torch.cat(pooled["none"]),
                                                  level=fv_level),
    "over shuffled countries": claims.bootstrap_ci(own_right - torch.cat(pooled["shuffled"]),
                                                   level=fv_level)}
print(f"accuracy, both relations pooled: {float(own_right.mean()):.2f}; the excess",
      {k: str(v) for k, v in accuracy_excess.items()})
assert all(e.low > threshold for e in logprob_excess.values())
assert all(e.low > 0 for e in accuracy_excess.values())

# %% [markdown]
# Ten heads' mean outputs, added at one position of a prompt with no demonstrations, make
# SmolLM2 answer the relation they were taken from, on countries they were never taken from:
# the right answer's log-probability rises far more than under a random direction, ten other
# heads, or the other relation's vector of the same size, and the top answer is sometimes the
# right one where without the vector it never was (printed). A random push this size *lowers*
# the right answer's log-probability (printed), so the excess over it is larger than the rise
# over no vector at all; that is why accuracy is judged against no demonstrations too. The
# other relation's vector does not do it: the vector carries *which* task, not only "answer
# something". Read the accuracy next to what demonstrations give (the premise): the vector
# recovers part of in-context learning, not all of it, and for capitals little (printed), so
# "the task is in these ten heads" is more than the evidence says. The evidence is an
# intervention on ten heads chosen by a linear estimate, in one prompt format; another format
# or more heads might do better, and each is a claim to test the same way. (The linear estimate
# is not the weak link here: patching each head for real ranks them almost as it does, measured
# in `benchmarks/head_patching.py`.)


# %% [markdown]
# ## Summary
#
# - Check the premise first: a function vector is read from in-context learning, and the
#   course model barely learns these tasks in context, so there is little to read.
# - Check what the demonstrations teach: shuffled answers still show *which* task when the
#   answers alone name it (capitals, continents), so prompts with no demonstrations are the
#   ones without the task here.
# - Rank heads by their indirect effect on prompts with no demonstrations; attribution
#   patching estimates all of them from one backward pass, good enough to rank.
# - The sum of the top ten heads' mean outputs carried each relation to prompts with no
#   demonstrations, on held-out countries, beyond random directions, ten random heads and the
#   other relation's vector of the same norm; and not the other relation.
# - It recovered only part of what demonstrations give: say what was shown (these heads, this
#   format, this layer), not that the task lives in them.
#
# **Bonus.** The course model learns continents a little in context in the " =" format
# (section 1). Read a function vector from it as in sections 2 and 3, and judge it against the
# null that matters most there: a vector that makes the model say the commonest continent every
# time is right for that continent's share of the countries, and the shuffled-countries null
# catches it.
#
# **Further reading:** Todd et al. (2024), *Function Vectors in Large Language Models*; Hendel et
# al. (2023), *In-Context Learning Creates Task Vectors*; Liu et al. (2023), *In-Context
# Vectors*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** the function vector of a third relation (country to language, `world.COUNTRIES`),
#   judged as sections 2 and 3 judge the first two.
# - **Replicate:** Hendel et al. (2023): the task vector read from one layer's residual stream
#   instead of from heads, against the same nulls.
# - **Open question:** the **Bonus** paragraph above, on the course model's " =" format.
