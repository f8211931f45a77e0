# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 11 Steering: adding and removing a direction
#
# Every chapter so far changed a model to *ask* it something: patch an activation, ablate a
# head, and see what breaks. **Steering** changes it to make it *do* something: add a direction
# to the residual stream and the model says what it would have said about something else
# (activation addition, Turner et al. 2023; contrastive steering vectors, Rimsky et al. 2024).
# **Directional ablation** removes a direction from everything that writes to the residual
# stream, so no layer can use it (the method behind ablating a "refusal direction", Arditi et
# al. 2024). Both are easy to run and easy to over-read. Here the world is the judge: it knows
# each country's continent, so it knows what the model should say when steered, and which
# countries the direction was never taken from.
#
# **You will be able to:** take a contrastive steering vector from two sets of prompts, at the
# right layer and position; add it with a strength at one position and read a dose-response
# curve against random directions of the same norm; judge it on held-out prompts and on a
# prompt it was not taken from; remove a direction from every write into the residual stream;
# say what a direction carries besides the behaviour it was named for; and carry the method to
# SmolLM2, premise first.
#
# **Time:** about 75 minutes. **Prerequisites:** chapters 03 and 07.

# %%
import functools

import matplotlib.pyplot as plt

from mechinterp_course import claims, method_scores, steering, world
from mechinterp_course.checks import ch11, yours

model = mc.load_model("course", device=device)
n_layers = model.cfg.n_layers
threshold = method_scores.ABLATION_THRESHOLD  # 1 nat, as in chapters 09 and 10: fixed before
europe = [c for c, (_, continent, _) in world.COUNTRIES.items() if continent == "Europe"]
asia = [c for c, (_, continent, _) in world.COUNTRIES.items() if continent == "Asia"]
# every other country takes the direction; the rest are held out to judge it
train = {"Europe": europe[::2], "Asia": asia[::2]}
test = {"Europe": europe[1::2], "Asia": asia[1::2]}
template = "{} is a country in"
print({k: len(v) for k, v in train.items()}, "countries take the direction;",
      {k: len(v) for k, v in test.items()}, "are held out")


def gap(lm, logits, sign):
    """(n,): sign times the logit of " Asia" less that of " Europe", at each prompt."""
    asia_token, europe_token = lm.to_single_token(" Asia"), lm.to_single_token(" Europe")
    return sign * (logits[:, asia_token] - logits[:, europe_token])


# %% [markdown]
# ## 1. A direction from two sets of prompts
#
# First the premise: of the two continents, the model puts the right one ahead, " Europe" after
# "France is a country in" and " Asia" after "Japan is a country in" (the share of countries is
# printed; at least nine in ten is asserted).

# %%
all_tokens, all_last = steering.prompts(model, [template.format(c) for c in europe + asia])
with torch.no_grad():
    all_logits = model(all_tokens)[torch.arange(len(all_tokens)), all_last]
sign = torch.tensor([-1.0] * len(europe) + [1.0] * len(asia))
right_ahead = float((gap(model, all_logits, sign) > 0).float().mean())
print(f"the right continent ahead of the other for {right_ahead:.0%} of the "
      f"{len(europe + asia)} countries")
assert right_ahead >= 0.9

# %% [markdown]
# Somewhere between the subject and the answer, then, the residual stream at the last
# position must differ between the two sets. The simplest guess at *how* it differs is the
# difference of the means: the mean activation over the Asian prompts minus the mean over the
# European ones. That vector is the contrastive steering vector.
#
# ### Exercise 11.1: a contrastive steering vector
# 🟢 Easy, 10 minutes. Write `steering_vector(model, positive, negative, layer)`: the mean of
# `resid_pre` at `layer` at each prompt's **last** position over the `positive` prompts (a list
# of strings) minus its mean over the `negative` ones, (d_model,).
#
# *Nudge:* A right-padded batch ends at a different position for each prompt: pick each prompt's own
# last position before averaging. Then a difference of two means.
#
# *Hint:* `steering.prompts(model, texts)` gives the tokens, padded on the right, and each
# prompt's last position: the last column of a padded batch is padding for all but the longest
# prompts. `model.run_with_cache(tokens, names=[("resid_pre", layer)])`.

# %%
def steering_vector(model, positive, negative, layer):
    # BEGIN SOLUTION
    means = []
    for texts in (positive, negative):
        tokens, last = steering.prompts(model, texts)
        _, cache = model.run_with_cache(tokens, names=[("resid_pre", layer)])
        means.append(cache["resid_pre", layer][torch.arange(len(texts)), last].mean(0))
    return means[0] - means[1]
    # END SOLUTION


# %% tags=["check"]
ch11.check_steering_vector(steering_vector, model)

# %% [markdown]
# One vector per layer, from the training countries. Entering block 0 the last position holds
# the token " in" and its position, and nothing else: no layer has moved anything there yet, so
# the two means differ only by where " in" sits, and the vector is small (printed).

# %%
asian = [template.format(c) for c in train["Asia"]]
european = [template.format(c) for c in train["Europe"]]
vectors = {layer: steering.mean_difference(model, asian, european, layer)
           for layer in range(n_layers)}
print("norm of the vector at each layer:", {k: round(float(v.norm()), 2)
                                             for k, v in vectors.items()})
_, typical = model.run_with_cache(model.to_tokens(asian), names=["resid_pre"])
print("norm of the residual stream itself:", {
    layer: round(float(typical["resid_pre", layer].norm(dim=-1).mean()), 1)
    for layer in range(n_layers)})

# %% [markdown]
# ## 2. Adding it, with a strength
#
# Add `strength` times the vector at one layer, at the last position only, to a held-out
# European prompt (toward Asia), or subtract it from a held-out Asian one (toward Europe). The
# measure is how far the logit difference moves toward the other continent, in nats, averaged
# over a country's two phrasings ("X is a country in", and "X is in", which the vector was not
# taken from). The control is the same thing with random directions of the vector's norm, at
# the same layer and position. A dose-response curve shows both as the strength grows.
#
# The layer is chosen on the *training* countries, by the largest move at strength 1, before
# the held-out ones are looked at. The claim is the excess over the random directions, per
# country, above 1 nat: at strength 1, and at every strength from 0.5 on, those five judged
# together.
#
# ### Exercise 11.2: steering at the last position
# 🟢 Easy, 10 minutes. Write `steered_logits(model, tokens, last, vector, layer, strength)`:
# the logits (n, d_vocab) at each prompt's last position when `strength * vector` is added to
# `resid_pre` at `layer`, at each prompt's last position `last` (n,) only.
#
# *Nudge:* Add the vector at one position per prompt, not everywhere, and read the logits at those
# same positions.
#
# *Hint:* a hook on `("resid_pre", layer)` that returns a changed copy of x (batch, pos,
# d_model); `with model.hooks({name: hook}): logits = model(tokens)`.

# %%
def steered_logits(model, tokens, last, vector, layer, strength):
    # BEGIN SOLUTION
    rows = torch.arange(len(tokens))

    def add(x):
        x = x.clone()
        x[rows, last] = x[rows, last] + strength * vector
        return x

    with torch.no_grad(), model.hooks({("resid_pre", layer): add}):
        logits = model(tokens)
    return logits[rows, last]
    # END SOLUTION


# %% tags=["check"]
ch11.check_steered_logits(steered_logits, model)

# %% [markdown]
# `steering.steered_logits` is the package's version of your function; the rest of the chapter
# uses it.
#
# A push of this size in *any* direction may move an answer. The control for a claim about one
# direction is random directions of the same norm, at the same layer and position.
#
# ### Exercise 11.4: the control, random directions of equal norm
# 🟢 Easy, 5 minutes. Write `random_directions(n, like, generator)`: (n, d) random directions,
# each with the norm of `like` (d,), drawn from `generator`, with `like`'s dtype and device.
#
# *Nudge:* which distribution gives a direction that favours none? Then fix its length: a control
# of another size would test the size, not the direction.
#
# *Hint:* `torch.randn(n, d, generator=generator)`, divided by each row's norm (`keepdim=True`),
# times `like.norm()`; `.to(like)` for its dtype and device.

# %%
def random_directions(n, like, generator):
    # BEGIN SOLUTION
    r = torch.randn(n, like.shape[-1], generator=generator).to(like)  # (n, d)
    return r / r.norm(dim=-1, keepdim=True) * like.norm()
    # END SOLUTION


# %% tags=["check"]
ch11.check_random_directions(random_directions)

# %%
phrasings = ["{} is a country in", "{} is in"]


@functools.cache
def unsteered(lm, texts):
    """Tokens, last positions and logits at them without steering, once per set of prompts."""
    tokens, last = steering.prompts(lm, list(texts))
    with torch.no_grad():
        return tokens, last, lm(tokens)[torch.arange(len(tokens)), last].cpu()


def phrased(countries):
    """The course model's prompts for these countries: a list per phrasing."""
    return [[phrasing.format(c) for c in countries] for phrasing in phrasings]


def moves(lm, prompt_sets, sign, vector, layer, strength):
    """Per country (n,): how far the logit difference moves toward the other continent, in
    nats, when sign * strength * vector is added at `layer`, mean over the prompt sets (each
    a prompt per country)."""
    out = []
    for texts in prompt_sets:
        tokens, last, before = unsteered(lm, tuple(texts))
        after = steering.steered_logits(lm, tokens, last, vector, layer, sign * strength).cpu()
        out.append(gap(lm, after, sign) - gap(lm, before, sign))
    return torch.stack(out).mean(0)


def moved(countries_by_continent, vector, layer, strength, lm=model, prompts_of=phrased):
    """Per country, European ones pushed toward Asia and Asian ones toward Europe."""
    return torch.cat([moves(lm, prompts_of(countries_by_continent[continent]), sign, vector,
                            layer, strength) for continent, sign in (("Europe", 1), ("Asia", -1))])


on_train = {layer: float(moved(train, vectors[layer], layer, 1.0).mean())
            for layer in range(n_layers)}
layer = max(on_train, key=on_train.get)
vector = vectors[layer]
print("mean move on the training countries at strength 1, by layer:",
      {k: round(v, 2) for k, v in on_train.items()}, "-> layer", layer)

g = torch.Generator().manual_seed(0)
random_of = yours("Exercise 11.4", random_directions, claims.random_directions)
randoms = random_of(10, vector, g)  # (10, d_model), each of the vector's norm
strengths = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
curve, control_curve = [], []
for strength in strengths:
    curve.append(moved(test, vector, layer, strength))  # (held-out countries,)
    control_curve.append(torch.stack([moved(test, r, layer, strength) for r in randoms]).mean(0))
at_one = strengths.index(1.0)
effect = claims.bootstrap_ci(curve[at_one])
control = claims.bootstrap_ci(control_curve[at_one])
excess = claims.bootstrap_ci(curve[at_one] - control_curve[at_one])  # paired, per country
print(f"held out, strength 1: the vector moves {effect} nats; random directions {control}; "
      f"the excess {excess}")

fig, ax = plt.subplots(figsize=(6, 3))
for values, label in [(curve, "the steering vector"), (control_curve, "random, same norm")]:
    cis = [claims.bootstrap_ci(v) for v in values]
    ax.plot(strengths, [c.mean for c in cis], "o-", label=label)
    ax.fill_between(strengths, [c.low for c in cis], [c.high for c in cis], alpha=0.2)
ax.axhline(threshold, color="grey", ls=":", label="1 nat")
ax.set_xlabel("strength")
ax.set_ylabel("move toward the other\ncontinent (nats)")
ax.set_title(f"Held-out countries, resid_pre {layer}, last position")
ax.legend()
plt.tight_layout()
plt.show()
dose_level = claims.corrected_level(sum(s >= 0.5 for s in strengths))  # judged together
excess_curve = {s: claims.bootstrap_ci(c - r, level=dose_level)
                for s, c, r in zip(strengths, curve, control_curve) if s >= 0.5}
print("the excess over the random directions, by strength:",
      {s: str(e) for s, e in excess_curve.items()})
assert excess.low > threshold
assert all(e.low > threshold for e in excess_curve.values())  # from half the vector on

# %% [markdown]
# The vector moves held-out countries, in its own phrasing and in one it was not taken from
# (averaged), far past what a random direction of its size does. The random directions move
# the answer too (printed): a push this size in any direction tends to make the model less
# sure, and less sure is toward the other continent. So the claim is the **excess** over them,
# per country, against the threshold of 1 nat fixed before looking.
#
# ## 3. What the vector carries: a prompt it was not taken from
#
# The vector was taken from prompts whose answer is a continent's name. Does it carry the word
# " Asia", or something about the country? Add it to "The capital of X is" for the held-out
# European countries, a prompt whose answer is a city, and measure how far the log of the total
# probability of the Asian capitals moves against the European capitals' (the first token of
# each). Two controls, judged together: the same random directions, and a vector made the same
# way from two other continents, Africa minus South America, scaled to the same norm: a
# direction of the same kind that says nothing about Asia or Europe.

# %%
def first_token(country):
    return model.to_tokens(" " + world.COUNTRIES[country][0], prepend_bos=False)[0, 0].item()


asian_capitals = sorted({first_token(c) for c in asia})
european_capitals = sorted({first_token(c) for c in europe})


def capital_gap(logits):
    """(n,): log total probability of the Asian capitals minus of the European ones."""
    return logits[:, asian_capitals].logsumexp(-1) - logits[:, european_capitals].logsumexp(-1)


capital_tokens, capital_last = steering.prompts(
    model, [f"The capital of {c} is" for c in test["Europe"]])


def capital_steered(direction, strength=1.0):
    """The held-out European capital prompts' logits at the last position, steered."""
    return steering.steered_logits(model, capital_tokens, capital_last, direction, layer,
                                   strength)


before = capital_gap(capital_steered(vector, 0.0))
steered = capital_steered(vector)
capital_move = capital_gap(steered) - before  # (held-out European countries,)
capital_control = torch.stack([capital_gap(capital_steered(r)) - before
                               for r in randoms]).mean(0)
by_continent = {name: [template.format(c) for c, (_, continent, _) in world.COUNTRIES.items()
                       if continent == name] for name in ("Africa", "South America")}
other_contrast = steering.mean_difference(model, by_continent["Africa"],
                                          by_continent["South America"], layer)
other_contrast = other_contrast / other_contrast.norm() * vector.norm()  # the same norm
other_move = capital_gap(capital_steered(other_contrast)) - before
capital_level = claims.corrected_level(2)
capital_excess = {
    "over random directions": claims.bootstrap_ci(capital_move - capital_control,
                                                  level=capital_level),
    "over Africa - South America": claims.bootstrap_ci(capital_move - other_move,
                                                       level=capital_level)}
now_asian = sum(int(t) in asian_capitals for t in steered.argmax(-1))
print(f"Asian capitals against European ones: moved {claims.bootstrap_ci(capital_move)} nats; "
      f"random {claims.bootstrap_ci(capital_control)}; Africa - South America "
      f"{claims.bootstrap_ci(other_move)}")
print("the excess:", {k: str(v) for k, v in capital_excess.items()})
print(f"the top answer is now an Asian capital for {now_asian} of {len(test['Europe'])} "
      "countries")
assert all(e.low > threshold for e in capital_excess.values())

# %% [markdown]
# It carries more than a word. A vector taken only from "... is a country in" prompts pushes a
# capital prompt toward Asian cities, by more than random directions or another continents'
# contrast of the same size do. It does not carry a
# particular country: the top answer becomes an Asian capital for only some of the countries
# (printed), and strength 1 was the strength that moved the continent. What the world can say
# is *what* the vector moves; it cannot say that the model stores a "continent" anywhere. The
# next section asks what the model loses without it.
#
# ## 4. Removing it everywhere: directional ablation
#
# Steering asks what a direction can do when added. **Directional ablation** asks what the
# model can still do without it: project the direction out of every write into the residual
# stream, the embeddings and every attention and MLP output, at every position, so no layer
# can put it back (`steering.ablation_hooks`). The control is the same removal of a random
# direction. Three behaviours are measured, per country or per sequence, as the loss of each:
#
# - the **continent**, held out: the margin of the right continent over the other, in nats;
# - the **capital** of the same held-out countries, which the direction was not named for: the
#   log-probability of its first token;
# - two behaviours further away, printed, not claimed: capitals of countries on other
#   continents, and copying a repeated random sequence (chapter 04's induction).
#
# The two claims are judged together (Bonferroni): the continent's loss surely exceeds the
# random direction's by more than 1 nat, and the capitals' loss surely exceeds it at all.
#
# ### Exercise 11.3: removing a direction
# 🟢 Easy, 5 minutes. Write `remove_direction(x, direction)`: x (..., d_model) with its
# component along `direction` (d_model,), of any norm, taken out, so that what is left has
# nothing along it. Each write into the residual stream goes through this.
#
# *Nudge:* Only the direction's unit vector matters: normalise first, then subtract x's component
# along it.
#
# *Hint:* `(x @ unit)[..., None] * unit` is the component along the direction.

# %%
def remove_direction(x, direction):
    # BEGIN SOLUTION
    unit = direction / direction.norm()
    return x - (x @ unit)[..., None] * unit
    # END SOLUTION


# %% tags=["check"]
ch11.check_remove_direction(remove_direction, model)

# %%
def continent_margin(countries_by_continent, hooks=()):
    """Per country: the right continent's logit minus the other's, mean over the phrasings."""
    out = []
    for continent, sign in (("Europe", -1), ("Asia", 1)):
        per_phrasing = []
        for phrasing in phrasings:
            tokens, last = steering.prompts(
                model, [phrasing.format(c) for c in countries_by_continent[continent]])
            with torch.no_grad(), model.hooks(list(hooks)):
                logits = model(tokens)[torch.arange(len(tokens)), last]
            per_phrasing.append(gap(model, logits, sign))
        out.append(torch.stack(per_phrasing).mean(0))
    return torch.cat(out)


def capital_logprob(countries, hooks=()):
    """Per country: the log-probability of its capital's first token."""
    tokens, last = steering.prompts(model, [f"The capital of {c} is" for c in countries])
    with torch.no_grad(), model.hooks(list(hooks)):
        logprobs = model(tokens)[torch.arange(len(tokens)), last].log_softmax(-1)
    return logprobs[torch.arange(len(countries)), torch.tensor([first_token(c) for c in countries])]


held_out = test["Europe"] + test["Asia"]
elsewhere = [c for c, (_, continent, _) in world.COUNTRIES.items()
             if continent not in ("Europe", "Asia")]
repeats = method_scores.repeated_distinct(model, n=20, batch=16, seed=0)
direction_hooks = steering.ablation_hooks(model, vector)
random_hooks = [steering.ablation_hooks(model, r) for r in randoms]


def losses(measure, *args):
    """Per item: what removing the direction costs, and what removing a random one costs
    (mean over the random directions)."""
    clean = measure(*args)
    lost = clean - measure(*args, direction_hooks)
    lost_random = torch.stack([clean - measure(*args, h) for h in random_hooks]).mean(0)
    return lost, lost_random


ablation_level = claims.corrected_level(2)
results = {}
for name, measure, args in [("continent, held out", continent_margin, (test,)),
                            ("capital, same countries", capital_logprob, (held_out,)),
                            ("capital, other continents", capital_logprob, (elsewhere,))]:
    lost, lost_random = losses(measure, *args)
    results[name] = claims.bootstrap_ci(lost - lost_random, level=ablation_level)
    print(f"{name:26} (clean {float(measure(*args).mean()):.2f}) loses "
          f"{claims.bootstrap_ci(lost)}; a random direction {claims.bootstrap_ci(lost_random)}; "
          f"the excess {results[name]}")
clean_repeat = method_scores.repeat_loss(model, repeats)
repeat_rise = [method_scores.repeat_loss(model, repeats, h) - clean_repeat
               for h in [direction_hooks, *random_hooks]]
print(f"copying a repeated sequence: the loss rises {repeat_rise[0]:.2f} nats; with a random "
      f"direction removed, {sum(repeat_rise[1:]) / len(randoms):.2f}")
assert results["continent, held out"].low > threshold
assert results["capital, same countries"].low > 0

# %% [markdown]
# Removing the direction takes the continent away, far beyond what a random direction does, and
# it costs the capitals of the same countries too: surely more than a random direction, though
# not surely by a nat, some countries losing much and others little (the wide interval). The
# direction was named for the continent; it is not the continent's alone. This is the question
# to ask of every ablated "direction for X": what else did the model read from it? Here the
# world could answer, because it knows the capitals as well. The behaviours further away
# (printed) are the check a refusal-direction paper runs on benchmarks; here they are only
# printed, because nothing was claimed about them before looking.


# %% [markdown]
# ## 5. The same on SmolLM2
#
# Does the method carry to a model the project did not train? SmolLM2-135M (offline, from its
# wheel) puts either continent first after "France is a country in" for only some of the
# countries (printed): for the rest, the two continents' logits are not what it is about to
# say, and moving them would say little. Three demonstrations fix the format: "Kenya: Africa /
# Peru: South America / Chile: South America / France:", the demonstrations always from
# countries on other continents, so that neither answer is shown. The premise is asserted in
# this format: the right one of the two continents ahead for at least nine in ten countries.

# %%
lm = mc.load_optional("smollm2", device=device)  # None, said in one line, if not installed
if lm is not None:
    lm_asia, lm_europe = lm.to_single_token(" Asia"), lm.to_single_token(" Europe")
    plain_tokens, plain_last = steering.prompts(lm, [template.format(c) for c in europe + asia])
    with torch.no_grad():
        plain_top = lm(plain_tokens)[torch.arange(len(plain_tokens)), plain_last].argmax(-1)
    either_first = torch.isin(plain_top.cpu(), torch.tensor([lm_asia, lm_europe])).float().mean()
    print(f"SmolLM2 after '{template.format('X')}': Asia or Europe first for "
          f"{float(either_first):.0%} of the countries")
    shown = {c: continent for c, (_, continent, _) in world.COUNTRIES.items()
             if continent not in ("Europe", "Asia")}

    def in_context(countries):
        """SmolLM2's prompts: one set, three demonstrations then "country:"."""
        return [steering.in_context_prompts(list(countries), shown, 3)]

    _, _, lm_logits = unsteered(lm, tuple(in_context(europe + asia)[0]))
    lm_right = float((gap(lm, lm_logits, sign) > 0).float().mean())
    print(f"SmolLM2: the right continent ahead for {lm_right:.0%} of the {len(europe + asia)} "
          "countries")
    assert lm_right >= 0.9

# %% [markdown]
# The vector is taken as before, at every third layer, from the training countries' prompts;
# the layer is chosen on them by the largest move at strength 1, then the held-out countries
# are judged against five random directions of the vector's norm. The claim, fixed before
# looking: the excess above 1 nat.

# %%
if lm is not None:
    lm_layers = list(range(0, lm.cfg.n_layers, 3))
    lm_vectors = {layer: steering.mean_difference(
        lm, steering.in_context_prompts(train["Asia"], shown, 3),
        steering.in_context_prompts(train["Europe"], shown, 3), layer) for layer in lm_layers}

    def lm_moved(countries_by_continent, vector, layer):
        """Per country: the move toward the other continent, in nats, at strength 1."""
        return moved(countries_by_continent, vector, layer, 1.0, lm, in_context)

    lm_on_train = {layer: float(lm_moved(train, v, layer).mean())
                   for layer, v in lm_vectors.items()}
    lm_layer = max(lm_on_train, key=lm_on_train.get)
    print("SmolLM2, mean move on the training countries by layer:",
          {k: round(v, 2) for k, v in lm_on_train.items()}, "-> layer", lm_layer)
    print("the vector's norm by layer:",
          {k: round(float(v.norm()), 1) for k, v in lm_vectors.items()})
    lm_move = lm_moved(test, lm_vectors[lm_layer], lm_layer)
    lm_random = torch.stack([lm_moved(test, r, lm_layer) for r in claims.random_directions(
        5, lm_vectors[lm_layer], torch.Generator().manual_seed(0))]).mean(0)
    lm_excess = claims.bootstrap_ci(lm_move - lm_random)
    print(f"held out, layer {lm_layer}: the vector moves {claims.bootstrap_ci(lm_move)} nats; "
          f"random directions {claims.bootstrap_ci(lm_random)}; the excess {lm_excess}")
    assert lm_excess.low > threshold

# %% [markdown]
# It carries over, held out and far past random directions of its size. But look at where
# (printed by layer): taken at SmolLM2's earlier layers the vector moves almost nothing, and
# then, within a few layers, everything. Until then the continent has not reached the last
# position, or the difference of the means there is too small at strength 1 (its norm is
# printed), or it is not the direction the later layers read; the layer profile alone cannot
# tell which, and "SmolLM2 represents the continent at that layer" would be the story this
# chapter warns of. Chapter 07's patching asks where the answer arrives; here the profile is
# only printed.


# %% [markdown]
# ## Summary
#
# - A contrastive steering vector is a difference of means, at one layer and at the position
#   where the answer is read; at a layer where nothing has reached that position yet, it is
#   nothing.
# - Judge steering on held-out prompts, against random directions of the same norm at the same
#   layer and position, and claim the excess: random pushes move answers too.
# - What a vector moves is more than what it was named for: the continent vector moves capital
#   prompts toward Asian cities.
# - Directional ablation removes a direction from every write into the residual stream. It
#   removed the continent and, with it, the same countries' capitals: ask what else a direction
#   carries before calling it the direction for one thing.
# - The same method steers SmolLM2, held out and beyond random directions, once a format makes
#   its premise hold; where along the layers it works is printed, not explained.
#
# **Further reading:** Turner et al. (2023), *Steering Language Models With Activation
# Engineering*; Rimsky et al. (2024), *Steering Llama 2 via Contrastive Activation Addition*;
# Arditi et al. (2024), *Refusal in Language Models Is Mediated by a Single Direction*; Marks and
# Tegmark (2023), *The Geometry of Truth*; Todd et al. (2024), *Function Vectors in Large
# Language Models* (chapter 12).

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** take the vector from one phrasing and steer the other; then steer with the vector
#   at two layers at once, at half strength each.
# - **Replicate:** Turner et al. (2023), ActAdd, and Rimsky et al. (2023), contrastive activation
#   addition: one prompt pair against many, on the same held-out countries.
# - **Open question:** does the continent vector change the capital the model names, beyond what
#   random directions do (section 3's test, with your own threshold first)?
