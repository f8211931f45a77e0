# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 Neurons and superposition
#
# If every MLP neuron meant one thing, reading a model would be a matter of labelling neurons.
# They do not: some neurons respond to several unrelated things, they are **polysemantic**. This
# chapter first measures that in the course model, where the families of training text are
# known, against what chance alone gives, then explains one possible reason for it with toy
# models small enough to train here: when features are sparse, a network can store more
# features than it has dimensions, in **superposition** (Elhage et al., 2022).
#
# **You will be able to:** tell a neuron from a residual coordinate; count how many unrelated
# kinds of text a neuron fires for, against a null; read what a neuron writes through the
# unembedding; write and train the toy model of superposition; read its weights as
# geometry (orthogonal pairs, antipodal pairs, pentagons); and measure how many dimensions each
# feature gets as sparsity grows.
#
# **Time:** about 100 minutes. **Prerequisite:** chapter 03.

# %%
import matplotlib.pyplot as plt

from mechinterp_course import claims, lens, neurons, toy_models
from mechinterp_course.checks import ch05, yours

model = mc.load_model("course", device=device)

# %% [markdown]
# ## 1. Polysemantic neurons in the course model
#
# Run the model over 30 documents of each family of world text (country facts, state facts,
# name stories, Python, water words, concluding phrases, number and day sequences, rule
# strings) and keep every MLP neuron's activation (`mlp_post`) at every token.

# %%
with torch.no_grad():
    data = neurons.collect(model, docs_per_family=30)
print(f"{data.acts.shape[0]} tokens x {data.acts.shape[1]} neurons; families: {data.families}")

# %% [markdown]
# ### Exercise 5.1: neurons, not residual coordinates
# 🟢 Easy, 5 minutes. A snippet that circulates online ranks the entries of
# `cache["mlp_out", layer]` as "the layer's most active neurons". Those are not neurons:
# `mlp_out` is what the MLP *adds to the residual stream*, d_model = 128 numbers, each a mix of
# all 512 neurons. The neurons are `mlp_post` (d_mlp = 512). Write `top_neurons(cache, layer,
# k)`: the indices of the k neurons of block `layer` with the largest activation at the last
# position of the first prompt.
#
# *Nudge:* Which activation has one number per neuron, d_mlp of them? Read it at the last position
# of the first prompt.
#
# *Hint:* `cache["mlp_post", layer]` is (batch, pos, d_mlp); `topk(k)` gives the indices.

# %%
def top_neurons(cache, layer, k=5):
    # BEGIN SOLUTION
    return cache["mlp_post", layer][0, -1].topk(k).indices  # (k,) indices into d_mlp
    # END SOLUTION


# %% tags=["check"]
ch05.check_top_neurons(top_neurons, model)

# %% [markdown]
# The snippet's mistake, run: its "neurons" are numbers below 128, coordinates of the residual
# stream, and none is a neuron the block actually fires most.

# %%
_, texas = model.run_with_cache("The capital of Texas is")
wrong = texas["mlp_out", 2][0, -1].topk(5).indices
right = texas["mlp_post", 2][0, -1].topk(5).indices  # as in Exercise 5.1 (d_mlp indices)
print(f"mlp_out has {texas['mlp_out', 2].shape[-1]} entries, mlp_post "
      f"{texas['mlp_post', 2].shape[-1]}; the snippet's 'neurons' {wrong.tolist()}, the block's "
      f"strongest neurons {right.tolist()}")
assert texas["mlp_out", 2].shape[-1] == model.cfg.d_model != model.cfg.d_mlp

# %% [markdown]
# ### When does a neuron respond to a family?
#
# A neuron that fires on " the" or "." fires in every family, but that is one meaning, not many.
# So a family counts for a neuron only through tokens *specific* to it (90% of their occurrences
# in that family): " def" for Python, " lake" for water, state capitals for state facts. A first
# rule: count how many of each neuron's top 100 activations land on each family's specific
# tokens, and say the neuron responds to a family when at least 8 do.
#
# Before believing any share this gives, run the same rule on a **null**: each neuron's top 100
# moved, all together, to a random other stretch of the text (`neurons.random_shifts`). That
# keeps how a neuron's strongest activations bunch together, in a few documents and at
# neighbouring tokens, and breaks only *which* tokens they land on.
#
# ### Exercise 5.6: where a neuron's strongest activations land
# 🟢 Easy, 10 minutes. Write `top_k_counts(acts, owner, n_families, k)`: acts (tokens, n_neurons),
# owner (tokens,), the family each token is specific to, or -1 for none. Return (n_families,
# n_neurons): how many of each neuron's `k` largest activations fall on each family's tokens.
#
# *Nudge:* for each neuron, find its k strongest tokens; then ask each of those tokens which
# family it belongs to, and tally. Tokens of no family count for none.
#
# *Hint:* `acts.topk(k, dim=0).indices` is (k, n_neurons), token indices; `owner[...]` of it
# gives their families; `(families == f).sum(0)` for each f, stacked.

# %%
def top_k_counts(acts, owner, n_families, k):
    # BEGIN SOLUTION
    top = acts.topk(k, dim=0).indices  # (k, n_neurons): each neuron's strongest tokens
    families = owner[top]  # (k, n_neurons)
    return torch.stack([(families == f).sum(0) for f in range(n_families)])
    # END SOLUTION


# %% tags=["check"]
ch05.check_top_k_counts(top_k_counts)

# %% [markdown]
# The counts, with your function once its check has passed:

# %%
count_top_k = yours("Exercise 5.6", top_k_counts, neurons.top_k_counts)
counts = count_top_k(data.acts, neurons.specific_family(data), len(data.families), 100)
shifted = lambda g: neurons.family_counts(data, shift=neurons.random_shifts(data, g))  # noqa
naive = neurons.share_responding(counts, 8, min_families=3)
naive_null = claims.null_interval(lambda g: neurons.share_responding(shifted(g), 8), n=20)
print(f"fixed count of 8: {naive:.1%} of neurons respond to 3 or more families; "
      f"with their top tokens moved at random, {naive_null.mean:.1%} "
      f"[{naive_null.low:.1%}, {naive_null.high:.1%}]")
assert naive < naive_null.high  # the first rule: no better than chance

# %% [markdown]
# The first rule finds no more polysemantic neurons than chance does. About half of all tokens
# are specific to some family, so 100 tokens taken anywhere reach 8 of three families easily:
# the rule counts noise. A count means something only against what chance gives *for that
# family*: the common families (rule strings, Python) need more hits than the rare ones.
# `neurons.family_thresholds` sets, for each family, the count that 100 random tokens reach
# with probability at most 0.001, fixed before looking at any neuron. The claim is then the
# share of neurons that respond to three or more families, minus what the null gives, with an
# interval from resampling whole documents.

# %%
thresholds = neurons.family_thresholds(data, k=100, alpha=1e-3)
print("counts needed, by family:", dict(zip(data.families, thresholds.tolist())))
by_docs = lambda m: lambda rows: neurons.share_responding(  # noqa
    neurons.family_counts(data, rows=rows), thresholds, m)
results = {}
for m in (1, 2, 3):
    observed = claims.cluster_bootstrap_ci(by_docs(m), data.doc, n_boot=40)
    null = claims.null_interval(lambda g: neurons.share_responding(shifted(g), thresholds, m),
                                n=20)
    results[m] = (observed, null, claims.excess_over(observed, null))
    print(f"respond to >= {m} families: {observed.mean:.1%} [{observed.low:.1%}, "
          f"{observed.high:.1%}]; null {null.mean:.1%}; excess {results[m][2].mean:.1%} "
          f"[{results[m][2].low:.1%}, {results[m][2].high:.1%}]")
assert results[1][2].low < 0 < results[1][2].high  # one family: no more than bursts give
assert results[2][2].low > 0.05 and results[3][2].low > 0.02  # several: beyond chance
assert results[3][0].high < 0.5  # and a minority

# %% [markdown]
# Read the table from the bottom. A minority of neurons respond to three or more unrelated
# families, more than the shifted null gives, by the printed excess. That rules out bursts; it
# does not show that training made these neurons. Run this chapter on an untrained model of the
# same shape (`mc.load_model("course-untrained")`; the course's tests do,
# `tests/test_asserts_can_fail.py`) and its neurons clear the shifted null too: whatever the
# weights, a neuron's 100 strongest activations sit on a handful of token types, and those can
# belong to any families. What training added is the difference from the untrained model, and
# that needs the untrained model's count with its own interval (a longer run than this chapter
# makes). Responding to two families is clearly more common than the null too. But responding
# to *one* family is no evidence of anything: a neuron whose top activations sit in one
# document passes the count too, and the null passes it as often. So this count cannot tell a
# monosemantic neuron from a burst of activation.
#
# And a family of text is not a feature. "State facts" holds two-word names, capitals, numbers
# and sentence frames; a neuron that responds only to state facts could respond to any of
# them. Families are labels we have, not the units the model uses. Chapter 06 looks for those.
#
# One neuron that responds to the most families (among neurons that fire strongly):

# %%
responds = counts >= thresholds[:, None]  # (families, neurons)
n_families = responds.sum(0)
peak = data.acts.max(0).values
candidates = torch.where(peak > 2.0, n_families * 100 + peak, torch.tensor(-1.0))
chosen = int(candidates.argmax())  # most families, then strongest, among strongly firing neurons
layer, index = divmod(chosen, data.d_mlp)
fired = [data.families[f] for f in range(len(data.families)) if responds[f, chosen]]
print(f"neuron L{layer}N{index} responds to {len(fired)} families: {fired}")
assert len(fired) >= 4

for f, name in enumerate(data.families):
    if name in fired:
        act, _, context = neurons.top_contexts(data, layer, index, k=1, family=f)[0]
        print(f"  {name:11} {act:5.2f}  ...{context!r}")

# %% [markdown]
# Its strongest context in each family, printed above, looks unrelated to the others. The
# activations by family:

# %%
acts = data.neuron(layer, index)
fig, ax = plt.subplots(figsize=(8, 2.8))
ax.boxplot([acts[data.family == f] for f in range(len(data.families))], showfliers=True,
           flierprops={"markersize": 2})
ax.set_xticks(range(1, len(data.families) + 1), data.families, rotation=30)
ax.set(ylabel="activation", title=f"Neuron L{layer}N{index} over each family of world text")
plt.show()

# %% [markdown]
# ### Where it fires is not what it writes
#
# Where a neuron fires is half of it. The other half is what it adds to the residual stream when
# it fires: its row of `model.W_out`. Through the final norm and the unembedding that row
# raises some next tokens and lowers others (the *direct* path only: later blocks may change
# it). Does this neuron push up the tokens of the families it responds to? Score each family
# by the mean standardised logit of its specific tokens, and compare with 500 random
# directions of the same norm. Four families are judged at once, so each is held to the
# Bonferroni-corrected level.

# %%
vocab_owner = neurons.vocab_family(data, model.cfg.d_vocab)
with torch.no_grad():
    row = model.W_out[layer, index]  # (d_model,) what the neuron writes per unit of activation
    writes = neurons.family_writes(lens.direction_logits(model, row), vocab_owner,
                                   len(data.families))  # (families,)
    randoms = claims.random_directions(500, row, torch.Generator().manual_seed(0))
    null_writes = neurons.family_writes(lens.direction_logits(model, randoms), vocab_owner,
                                        len(data.families))  # (500, families)
level = claims.corrected_level(len(fired))
cutoff = null_writes.quantile(level, dim=0)  # (families,)
for f, name in enumerate(data.families):
    if name in fired:
        print(f"  {name:11} writes {float(writes[f]):+.2f}; random directions reach "
              f"{float(cutoff[f]):+.2f} (upper {level:.2%})")
promoted = model.to_str_tokens(lens.direction_logits(model, row).topk(8).indices)
print("the tokens it raises most:", promoted)
assert all(writes[f] < cutoff[f] for f in range(len(data.families)) if responds[f, chosen])

# A test that can only say no is no test: a direction built to write each family (the mean
# unembedding of its specific tokens, at the neuron's norm) must pass it.
with torch.no_grad():
    planted = torch.stack([model.W_U[:, vocab_owner == f].mean(1)
                           for f in range(len(data.families))])  # (families, d_model)
    planted = planted / planted.norm(dim=-1, keepdim=True) * row.norm()
    planted_writes = neurons.family_writes(lens.direction_logits(model, planted), vocab_owner,
                                           len(data.families)).diagonal()  # (families,)
print("a direction built for each family writes", [round(float(w), 2) for w in planted_writes])
assert all(planted_writes[f] > cutoff[f] for f in range(len(data.families)))

# %% [markdown]
# It raises none of its families' tokens more than a random direction does; the tokens it
# raises most are common ones. Reading where a neuron fires, however carefully, says nothing
# about what it does. That takes its output, and in the end an intervention (chapter 07).
#
# %% [markdown]
# Why would training produce neurons like this? The course model has 2,048 MLP neurons and far
# more things worth knowing about its text. The toy models below show that a network *prefers*
# to share dimensions between features when the features are rarely active at the same time.
#
# ## 2. The toy model
#
# `n` features, each present with probability `1 - S` (sparsity `S`) and then uniform in [0, 1],
# pass through `m < n` hidden dimensions and back:
#
# $$h = W x, \qquad \hat x = \mathrm{ReLU}(W^\top h + b),$$
#
# with `W` (m, n): column `i` is feature `i`'s direction in the hidden space. The loss weights each
# feature's squared error by its **importance** `I_i`: $L = \mathbb{E}_x \sum_i I_i (x_i - \hat
# x_i)^2$. Many models ("instances") train at once, one per setting, along a leading axis.
#
# ### Exercise 5.2: the forward pass
# 🟢 Easy, 10 minutes. Write `toy_forward(W, b, x)`: W (instances, m, n), b (instances, n), x
# (batch, instances, n); return x_hat (batch, instances, n).
#
# *Nudge:* Compress, then decompress with the same matrix: n features to m hidden dimensions, back
# with its transpose, then the bias and the ReLU. Keep the instances axis apart all the way.
#
# *Hint:* two einsums: `"imn,bin->bim"` and back.

# %%
def toy_forward(W, b, x):
    # BEGIN SOLUTION
    h = torch.einsum("imn,bin->bim", W, x)  # (batch, instances, m)
    return torch.relu(torch.einsum("imn,bim->bin", W, h) + b)  # (batch, instances, n)
    # END SOLUTION


# %% tags=["check"]
ch05.check_toy_forward(toy_forward)

# %% [markdown]
# ### Exercise 5.3: the importance-weighted loss
# 🟢 Easy, 5 minutes. Write `weighted_mse(x, x_hat, importance)`: one loss per instance,
# (instances,): the squared error times importance (which broadcasts against (instances, n)),
# summed over features, averaged over the batch.
#
# *Nudge:* Three reductions in order: an error per feature, weighted by importance, summed over
# features, averaged over the batch. Which axis is which?
#
# *Hint:* `(x - x_hat).pow(2) * importance`, then sum the last axis and average the first.

# %%
def weighted_mse(x, x_hat, importance):
    # BEGIN SOLUTION
    return ((x - x_hat).pow(2) * importance).sum(-1).mean(0)  # (instances,)
    # END SOLUTION


# %% tags=["check"]
ch05.check_weighted_mse(weighted_mse)

# %% [markdown]
# ## 3. Five features in two dimensions
#
# Train five features into two dimensions, importance falling by 0.9 per feature, at four
# sparsities. `toy_models.train` is the loop you would write: sample a batch, reconstruct, weighted
# loss, Adam step (it uses the package's copies of your two functions).

# %% tags=["timing"]
sparsities = torch.tensor([0.0, 0.7, 0.9, 0.99])
importance = 0.9 ** torch.arange(5.0)
five = toy_models.ToyModel(n_features=5, d_hidden=2, instances=len(sparsities), seed=0)
final_loss = toy_models.train(five, importance, (1 - sparsities)[:, None], steps=3000)

# %%
W5 = five.W.detach()  # (instances, 2, 5)
print("final loss per sparsity:", [round(v, 4) for v in final_loss.tolist()])

# %% [markdown]
# ### Exercise 5.4: feature geometry
# 🟢 Easy, 10 minutes. Write `feature_geometry(W)` for one instance's W (2, n): return each
# feature's norm (n,) and the angle of its direction in degrees in [0, 360).
#
# *Nudge:* Each column of W is a feature's 2-D vector: its length is the norm, and its direction is
# an angle measured from the first axis. Mind the quadrant and the range.
#
# *Hint:* `torch.atan2(y, x)` and `torch.rad2deg`.

# %%
def feature_geometry(W):
    # BEGIN SOLUTION
    angles = torch.rad2deg(torch.atan2(W[1], W[0])) % 360  # (n,)
    return W.norm(dim=0), angles
    # END SOLUTION


# %% tags=["check"]
ch05.check_feature_geometry(feature_geometry)

# %%
fig, axes = plt.subplots(1, len(sparsities), figsize=(3 * len(sparsities), 3))
colours = plt.cm.viridis(torch.linspace(0, 0.9, 5).numpy())
for ax, W, s in zip(axes, W5, sparsities):
    for i in range(5):
        ax.plot([0, W[0, i]], [0, W[1, i]], color=colours[i], lw=2)
        ax.scatter(W[0, i], W[1, i], color=colours[i], s=20)
    ax.set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal", xticks=[], yticks=[],
           title=f"sparsity {float(s):.2f}")
fig.suptitle("Columns of W: each feature's direction (darker = more important)")
plt.tight_layout()
plt.show()

# %%
def spacing(angles):
    """Angles between neighbouring directions around the circle."""
    a = angles.sort().values
    return torch.cat([a.diff(), (a[:1] + 360) - a[-1:]])


dense_norms, _ = toy_models.feature_geometry(W5[0])
kept = (dense_norms > 0.5).nonzero().flatten().tolist()
w0, w1 = W5[0][:, kept[0]], W5[0][:, kept[-1]]
dense_angle = float(torch.rad2deg(torch.acos(w0 @ w1 / (w0.norm() * w1.norm()))))
print(f"dense: features kept {kept}, at {dense_angle:.1f} degrees to each other")
assert kept == [0, 1] and abs(dense_angle - 90) < 5

sparse_norms, sparse_angles = toy_models.feature_geometry(W5[-1])
gaps = spacing(sparse_angles)
print(f"sparsity 0.99: norms {[round(v, 2) for v in sparse_norms.tolist()]}, "
      f"gaps {[round(v) for v in gaps.tolist()]} degrees")
assert (sparse_norms > 0.9).all() and (sparse_norms < 1.4).all()
assert ((gaps - 72).abs() < 6).all()

# %% [markdown]
# With dense features (every feature present at once) the model keeps the two most important
# features, at right angles, and drops the rest: interference would cost more than the missing
# features. With sparse features all five fit, as a **pentagon**, 72 degrees apart: two features
# rarely appear together, and when one appears alone the ReLU and a negative bias filter out the
# small projections it leaves on its neighbours. In between, the model uses antipodal pairs (two
# features on one line, opposite directions).
#
# ## 4. Dimensions per feature
#
# With many features and few dimensions the same thing happens at scale. A feature's
# **dimensionality** says how much of a dimension it owns:
#
# $$D_i = \frac{\lVert W_i \rVert^2}{\sum_j (\hat W_i \cdot W_j)^2},$$
#
# where $\hat W_i$ is the unit vector of $W_i$: 1 for a feature with its own dimension, 1/2 for
# each of an antipodal pair, 2/5 in a pentagon, 0 for a dropped feature.
#
# ### Exercise 5.5: feature dimensionality
# 🟠 Medium, 15 minutes. Write `feature_dimensionality(W)`: W (..., m, n) to (..., n). Features
# with zero norm get 0 (clamp before dividing).
#
# *Nudge:* The numerator is the feature's squared norm; the denominator adds up, over every feature
# (itself included), the square of how much of it lies along this feature's unit direction. Start
# from the unit directions.
#
# *Hint:* `torch.einsum("...mi,...mj->...ij", unit, W)` gives every $\hat W_i \cdot W_j$.

# %%
def feature_dimensionality(W):
    # BEGIN SOLUTION
    norms = W.norm(dim=-2, keepdim=True)  # (..., 1, n)
    unit = W / norms.clamp(min=1e-8)
    overlap = torch.einsum("...mi,...mj->...ij", unit, W).pow(2).sum(-1)  # (..., n)
    return norms.squeeze(-2).pow(2) / overlap.clamp(min=1e-8)
    # END SOLUTION


# %% tags=["check"]
ch05.check_feature_dimensionality(feature_dimensionality)

# %% [markdown]
# Fifty features of equal importance in ten dimensions, at twenty sparsities. The overall measure
# is `m / ||W||_F^2`, the hidden dimensions spent per (fully represented) feature.

# %% tags=["timing"]
one_minus_s = torch.logspace(0, -2, 20)  # feature probability from 1 down to 0.01
many = toy_models.ToyModel(n_features=50, d_hidden=10, instances=len(one_minus_s), seed=1)
toy_models.train(many, torch.ones(50), one_minus_s[:, None], steps=2500, batch=256)

# %%
Wm = many.W.detach()
per_feature = toy_models.dimensions_per_feature(Wm)  # (instances,)
dims = toy_models.feature_dimensionality(Wm)  # (instances, 50)

x = (1 / one_minus_s).numpy()
fig, ax = plt.subplots(figsize=(7, 3.2))
for i in range(len(x)):
    ax.scatter([x[i]] * 50, dims[i], s=4, color="C1", alpha=0.3)
ax.plot(x, per_feature, "o-", color="C0", label="m / ||W||_F^2")
for level in (1, 1 / 2, 2 / 5, 1 / 3):
    ax.axhline(level, color="grey", lw=0.5, ls=":")
ax.set_xscale("log")
ax.set(xlabel="1 / (1 - S)", ylabel="dimensions per feature",
       title="50 features in 10 dimensions (dots: each feature's dimensionality)")
ax.legend(fontsize=8)
plt.show()

values = [round(v, 2) for v in per_feature.tolist()]
print("dimensions per feature, dense to sparse:", values)
assert abs(per_feature[0] - 1) < 0.05  # dense: one dimension per kept feature
half = ((per_feature - 0.5).abs() < 0.05).nonzero().flatten()
print("sparsities on the 1/2 plateau (1/(1-S)):", [round(float(x[i]), 1) for i in half])
assert len(half) >= 2 and (half.diff() == 1).all()  # a plateau: consecutive settings
assert per_feature[-1] < 0.2  # very sparse: many features share each dimension

# %% [markdown]
# Dense: exactly one dimension per unit of represented feature. The model learns a plain
# projection onto ten dimensions, as PCA would; with all features equally important it need not
# line up with any of them, which is why the dots scatter. As features get sparser the curve
# sticks at 1/2 for a while (antipodal pairs: the dots sit at 1/2, the dropped features at 0),
# then falls through 2/5 and below as features pack ever more tightly, the arrangements the paper
# calls tegum products of small polytopes.
#
# ## 5. A phase diagram: two features, one dimension
#
# The simplest case shows the three possible outcomes. Feature 1 has importance 1, feature 2 a
# relative importance `r`; both share sparsity `S`; one hidden dimension. The extra feature can be
# **not represented**, get the **dedicated dimension** (pushing feature 1 out), or share it in
# **superposition** (antipodal: `W = [+a, -b]`). Train a grid of settings, three seeds each, keep
# the seed with the lowest loss.

# %% tags=["timing"]
probs, ratios = torch.logspace(0, -2, 9), torch.logspace(-1, 1, 9)
P, R = torch.meshgrid(probs, ratios, indexing="ij")
seeds = 3
grid_imp = torch.stack([torch.ones(P.numel()), R.flatten()], -1).repeat(seeds, 1)
pairs = toy_models.ToyModel(n_features=2, d_hidden=1, instances=P.numel() * seeds, seed=2)
pair_loss = toy_models.train(pairs, grid_imp, P.flatten()[:, None].repeat(seeds, 1),
                             steps=2000, batch=256)

# %%
Wp = pairs.W.detach()[:, 0].reshape(seeds, -1, 2)
best = pair_loss.reshape(seeds, -1).argmin(0)
Wp = Wp[best, torch.arange(P.numel())]  # (settings, 2)
phase = torch.where(Wp[:, 1].abs() < 0.5, 0,
                    torch.where(Wp[:, 0].abs() < 0.5, 1, 2)).reshape(P.shape)

fig, ax = plt.subplots(figsize=(5, 4))
cmap = plt.matplotlib.colors.ListedColormap(["#dddddd", "#4c72b0", "#dd8452"])
ax.imshow(phase, cmap=cmap, vmin=0, vmax=2, origin="lower", aspect="auto")
ax.set_xticks(range(len(ratios)), [f"{r:.1f}" for r in ratios.tolist()], rotation=45)
ax.set_yticks(range(len(probs)), [f"{1 - p:.2f}" for p in probs.tolist()])
ax.set(xlabel="relative importance of feature 2", ylabel="sparsity S",
       title="grey: not represented, blue: dedicated, orange: superposition")
plt.show()

print(phase)
assert phase[0, 0] == 0 and phase[0, -1] == 1  # dense: the more important feature wins
assert (phase[-3:, len(ratios) // 2] == 2).all()  # sparse, equal importance: superposition
assert (phase[0] == 2).sum() <= 1 and (phase[-1] == 2).sum() >= 7

# %% [markdown]
# Dense features never share: the more important one takes the dimension. As features get
# sparser, superposition takes over, first for features of similar importance and then almost
# everywhere, just as in the paper's phase diagrams.
#
# Back to the course model: 2,048 neurons, and world text with thousands of sparse features
# (every country, every capital, Python keywords, names, days). Superposition predicts neurons
# that respond to several unrelated, rarely co-occurring things; section 1 found a minority
# that do, beyond chance. The toy models show that superposition *can* arise, not that it is why
# those neurons are as they are: that would need the course model's features, which chapter 06
# tries to recover with sparse autoencoders.
#
# ## Summary
#
# - `mlp_out` is what an MLP writes into the residual stream (d_model numbers); its neurons are
#   `mlp_post` (d_mlp).
# - A count means something only against its null: a fixed count of family tokens is reached by
#   chance. Judged against chance, a minority of course-model neurons respond to three or more
#   unrelated families; responding to one family is no evidence, and a family is not a feature.
# - Where a neuron fires is not what it writes: the showcase neuron raises none of its families'
#   tokens more than a random direction does.
# - A toy model with sparse features stores more features than dimensions: pentagons, antipodal
#   pairs, plateaus of dimensionality at 1 and 1/2 and below.
# - Dense features get orthogonal dimensions or none; sparse ones share; the phase diagram shows
#   the switch.
#
# **Next:** chapter 06, sparse autoencoders: recovering features from superposition, checked
# against ground truth.
#
# **Further reading:** Elhage et al. (2022), *Toy Models of Superposition*; Olah et al. (2020),
# *Zoom In: An Introduction to Circuits* (polysemantic neurons); Gurnee et al. (2023), *Finding
# Neurons in a Haystack*; Bricken et al. (2023), *Towards Monosemanticity*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** train the toy model with correlated features (two features that are always on
#   together) and see whether they share a direction or are antipodal.
# - **Replicate:** the phase diagram of Elhage et al. (2022), section 5, at other importances and
#   sparsities than the chapter's, with `toy_models.train`.
# - **Open question:** are there neurons that respond to exactly one family beyond the null of
#   section 1, and what do they write (the logits of `lens.direction_logits`)?
