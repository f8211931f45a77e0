# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 10 Attribution and path patching
#
# Activation patching (chapter 07) costs one forward pass per cell: per layer and position, per
# head. On the course model that is a few hundred passes and a second. On a model of 30 layers
# and long prompts it is thousands, and on the models researchers study, millions. **Attribution
# patching** (Nanda 2023; Syed et al. 2023) estimates every cell at once from one forward and one
# backward pass, by a first-order Taylor expansion. In this chapter you write it, compare it
# with activation patching cell by cell, find where the approximation fails and why, judge the
# agreement of two methods against a null, and use it on SmolLM2, where patching every cell
# would take minutes. Then **path patching** narrows a patch the other way: not one activation
# for everything downstream, but one head's output into one input of one later head.
#
# **You will be able to:** write attribution patching with hooks and one backward pass; say
# what the first-order term estimates and when it is close; name the cells where it fails and
# show why with the response along the path from the corrupted to the clean activation; judge
# the agreement between two methods against a null that keeps what is shared by construction;
# choose between the two methods by cost; write the swap path patching makes, along the
# direct path and through components; and test one edge of a circuit by path patching,
# against matched control edges.
#
# **Time:** about 120 minutes. **Prerequisites:** chapter 07.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp_course import circuits, claims, interventions, method_scores, viz, world
from mechinterp_course.checks import ch10, yours

model = mc.load_model("course", device=device)
n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
pairs = interventions.capital_pairs(model)[0]  # chapter 07's one-token subjects
positions = ["<bos>", "The", " capital", " of", "X (subject)", " is"]
subject, final = 4, 5
print(len(pairs), "prompt pairs, e.g.", model.to_str_tokens(pairs.clean[0]), "vs",
      model.to_str_tokens(pairs.corrupt[0]))

# %% [markdown]
# ## 1. A patch, to first order
#
# Write the metric, the logit difference at the last position, as a function m(a) of one
# activation a (one layer, one position), everything else held as in the corrupted run.
# Patching sets a from a_corrupt to a_clean and measures m(a_clean) - m(a_corrupt). To first
# order,
#
# m(a_clean) - m(a_corrupt) ≈ (a_clean - a_corrupt) · ∇m(a_corrupt),
#
# and one backward pass gives the gradient with respect to *every* activation at once. Divide
# by each prompt's clean-minus-corrupted logit difference, as chapter 07 did, and the estimate
# is on the same scale as `interventions.patch_positions`: 0 for no effect, 1 for the whole
# answer.
#
# ### Exercise 10.1: attribution patching
# 🟠 Medium, 20 minutes. Write `attribution_positions(model, pairs, name)`, returning
# (n_layers, pos, n): for every layer, position and prompt, the first-order estimate of
# patching activation `name` (`"resid_pre"`, `"attn_out"`, ...: shaped (batch, pos, d_model))
# from the clean run into the corrupted one, normalised per prompt.
#
# *Nudge:* Attribution patching replaces each patch by a first-order step: the effect of moving an
# activation from corrupted to clean is about (clean minus corrupted) times the metric's gradient at
# the corrupted run.
#
# *Hint:* hooks that return `x + delta`, with `delta = torch.zeros_like(x, requires_grad=True)`
# kept for each layer: the gradient with respect to `delta` is the gradient with respect to the
# activation, and nothing is detached on the way. Run the corrupted tokens inside
# `torch.enable_grad()` and take `torch.autograd.grad(metric.sum(), deltas)`: each prompt's
# row of the gradient is its own. The clean activations come from `model.run_with_cache`.

# %%
def attribution_positions(model, pairs, name):
    # BEGIN SOLUTION
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(pairs.clean, names=[name])
    clean = interventions.answer_logit_diff(clean_logits, pairs.answer, pairs.wrong)
    acts, deltas = {}, {}

    def keep(layer):
        def hook(x):
            deltas[layer] = torch.zeros_like(x, requires_grad=True)
            acts[layer] = x.detach()
            return x + deltas[layer]
        return hook

    layers = range(model.cfg.n_layers)
    with torch.enable_grad(), model.hooks({(name, layer): keep(layer) for layer in layers}):
        corrupt = interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
        grads = torch.autograd.grad(corrupt.sum(), [deltas[layer] for layer in layers])
    estimate = torch.stack([((clean_cache[name, layer] - acts[layer]) * grads[layer]).sum(-1).T
                            for layer in layers])  # (n_layers, pos, n)
    return (estimate / (clean - corrupt.detach())).cpu()
    # END SOLUTION


# %% tags=["check"]
ch10.check_attribution_positions(attribution_positions, model)

# %% [markdown]
# ## 2. Against activation patching
#
# `interventions.attribution_positions` is the package's version of your function. Run both
# methods on the residual stream, over every layer and position, and time them.

# %% tags=["timing"]
start = time.perf_counter()
attribution = interventions.attribution_positions(model, pairs, "resid_pre")  # (layers, pos, n)
attribution_seconds = time.perf_counter() - start
start = time.perf_counter()
patching = interventions.patch_positions(model, pairs, "resid_pre")  # (layers, pos, n)
patching_seconds = time.perf_counter() - start
print(f"attribution patching {attribution_seconds:.2f} s (2 forward passes, 1 backward); "
      f"activation patching {patching_seconds:.2f} s ({n_layers * len(positions) + 2} forward "
      "passes)")

# %%
layer_names = [f"resid_pre {layer}" for layer in range(n_layers)]
fig, axes = plt.subplots(1, 3, figsize=(15, 2.8))
viz.heatmap(axes[0], patching.mean(-1), positions, layer_names, cmap="Blues", vmin=0, vmax=1,
            title="activation patching")
viz.heatmap(axes[1], attribution.mean(-1), positions, layer_names, cmap="Blues", vmin=0, vmax=1,
            title="attribution patching")
for layer in range(n_layers):
    for pos in (subject, final):
        axes[2].scatter(patching[layer, pos], attribution[layer, pos], s=6,
                        label=f"{layer_names[layer]}, {positions[pos].strip()}")
axes[2].plot([0, 1], [0, 1], color="grey", ls=":")
axes[2].set(xlabel="activation patching", ylabel="attribution patching",
            title="each prompt, from the subject on")
axes[2].legend(fontsize=6, ncol=2)
plt.tight_layout()
plt.show()

# %% [markdown]
# The two maps have the same shape: nothing before the subject (both are exactly zero there,
# by construction: the clean and corrupted activations are equal), the subject at block 0, the
# final position at the last block, a split in between. But attribution patching is paler
# everywhere: it **undershoots**. Where activation patching restores the whole answer,
# attribution gives a part of it (printed below). The misses are largest where the effects are.
#
# The claim, with round thresholds (a fifth, a half): a cell *fails* when the estimate
# misses activation patching by more than a fifth of the answer; the failing cells are exactly
# those where patching restores more than half. The clean-minus-corrupted gap must be real for
# any share of it to mean something (chapter 07), so the claim includes the gap, in nats with
# its interval.

# %%
gap = (interventions.answer_logit_diff(model(pairs.clean), pairs.answer, pairs.wrong)
       - interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong))
gap_interval = claims.bootstrap_ci(gap)
mean_patching, mean_attribution = patching.mean(-1), attribution.mean(-1)
cells = [(layer, pos) for layer in range(n_layers) for pos in range(len(positions))]
failing = [c for c in cells if mean_patching[c] - mean_attribution[c] > 0.2]
large = [c for c in cells if mean_patching[c] > 0.5]
print(f"clean minus corrupted: {gap_interval} nats")
for layer, pos in failing:
    print(f"{layer_names[layer]} at {positions[pos]!r}: patching {mean_patching[layer, pos]:.2f}, "
          f"attribution {mean_attribution[layer, pos]:.2f}")
assert (attribution[:, :subject] == 0).all() and (patching[:, :subject] == 0).all()
assert gap_interval.low > 1 and failing == large \
    and failing == [(0, subject), (1, final), (2, final), (3, final)]

# %% [markdown]
# ## 3. Why it undershoots: the path from corrupted to clean
#
# A first-order term misses the curvature of m along the way from a_corrupt to a_clean. Look
# at the way itself: put a_corrupt + α(a_clean - a_corrupt) at one cell, for α from 0 to 1, and
# measure m. Activation patching is the end of that curve, α = 1. Attribution patching is the
# tangent at α = 0. The tangent at α = 1, from a gradient taken at the clean run, is the same
# first-order idea from the other end. Do it for the two cells that attribution misses most.

# %%
alphas = torch.linspace(0, 1, 9)
_, clean_cache = model.run_with_cache(pairs.clean, names=["resid_pre"])
_, corrupt_cache = model.run_with_cache(pairs.corrupt, names=["resid_pre"])
_, _, clean_grads = interventions.gradients_at(model, pairs.clean, pairs, ["resid_pre"])
corrupt_diff = interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)


def along_path(layer, pos):
    """The mean normalised metric with the cell moved a share alpha of the way to clean."""
    start, end = corrupt_cache["resid_pre", layer], clean_cache["resid_pre", layer]
    out = []
    for alpha in alphas:
        moved = start + alpha * (end - start)
        with model.hooks({("resid_pre", layer): interventions.patch_position(moved, pos)}):
            value = interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer,
                                                    pairs.wrong)
        out.append(float(((value - corrupt_diff) / gap).mean()))
    return torch.tensor(out)


worst = sorted(failing, key=lambda c: float(mean_patching[c] - mean_attribution[c]))[-2:]
paths, slopes = {}, {}
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for ax, (layer, pos) in zip(axes, worst):
    paths[layer, pos] = along_path(layer, pos)
    difference = clean_cache["resid_pre", layer][:, pos] - corrupt_cache["resid_pre", layer][:, pos]
    slopes[layer, pos] = {
        "at corrupted": float(attribution[layer, pos].mean()),
        "at clean": float(((difference * clean_grads["resid_pre", layer][:, pos]).sum(-1)
                           / gap).mean()),
        "in the middle": float((paths[layer, pos][6] - paths[layer, pos][2]) / 0.5),
        "whole way": float(paths[layer, pos][-1])}
    ax.plot(alphas, paths[layer, pos], "o-", label="the metric along the way")
    ax.plot([0, 1], [0, slopes[layer, pos]["at corrupted"]], "--",
            label="tangent at the corrupted run (attribution)")
    end = float(paths[layer, pos][-1])
    ax.plot([0, 1], [end - slopes[layer, pos]["at clean"], end], "--",
            label="tangent at the clean run")
    ax.set(xlabel="alpha: share of the way to clean", ylabel="normalised logit difference",
           title=f"{layer_names[layer]} at {positions[pos]!r}")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
for cell, slope in slopes.items():
    print(f"{layer_names[cell[0]]} at {positions[cell[1]]!r}: slopes",
          {k: round(v, 2) for k, v in slope.items()})
# S-shaped: both ends rise more slowly than the whole way does, the middle faster
assert all(s["at corrupted"] < 0.8 * s["whole way"] and s["at clean"] < 0.8 * s["whole way"]
           and s["in the middle"] > s["whole way"] for s in slopes.values())

# %% [markdown]
# The curve is an **S**: flat at both ends, steep in the middle. So the tangent undershoots at
# either end, and taking the gradient at the clean run instead, or averaging the two ends, does
# not help: both ends are equally flat (printed). This is what "saturating" means here: the
# answer's logit difference moves little for the first and the last part of the way. What
# makes the curve S-shaped in this model is not tested here. A cure that is tested elsewhere:
# average the gradient over points along the way (integrated gradients; Kramár et al. 2024 use
# a cheaper variant), at the cost of one backward pass per point.
#
# ## 4. Heads, and what agreement is worth
#
# Attribution patching is mostly used to rank components. Per head (its z at every position),
# `interventions.attribution_heads` against `interventions.patch_heads`:

# %%
attribution_heads = interventions.attribution_heads(model, pairs)  # (layers, heads, n)
patching_heads = interventions.patch_heads(model, pairs)  # (layers, heads, n)
head_names = [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]
means = {"attribution": attribution_heads.mean(-1).flatten(),
         "patching": patching_heads.mean(-1).flatten()}
top_three = {k: sorted(head_names[i] for i in v.topk(3).indices) for k, v in means.items()}
above = {k: sorted(h for h, x in zip(head_names, v) if x > 0.1) for k, v in means.items()}
print("the top three heads:", top_three)
print("heads above 0.1:", above, "; L0H1:", {k: round(float(v[1]), 3) for k, v in means.items()})
assert top_three["attribution"] == top_three["patching"] == ["L0H1", "L0H2", "L2H0"]
assert above["patching"] == ["L0H1", "L0H2", "L2H0"] and above["attribution"] == ["L0H2", "L2H0"]

# %% [markdown]
# The same three heads at the top, chapter 07's three. But a threshold on the estimates
# inherits the undershoot: at 0.1, activation patching names L0H1 and attribution does not.
# Rank with attribution patching; do not threshold it as if it were the patch. How close are
# the values? A correlation across heads and prompts is
# the usual summary, and `r >= 0.9` the usual bar. But a correlation over cells counts twice
# what is shared by construction: most of it says *which heads* matter, the same for every
# prompt, and says nothing about whether the estimate follows each prompt. The null keeps the
# first and breaks the second: shuffle the prompts within each head. The claim is the excess
# of r over that null, with an interval from resampling whole prompts.
#
# ### Exercise 10.3: the null, a shuffle within heads
# 🟢 Easy, 10 minutes. Write `shuffle_within_heads(grid, generator)`: grid (layers, heads, n), one
# number per head and prompt; return it with each head's n prompts in an order of its own,
# drawn from `generator`. Any permutation is right; the check tests what a null needs.
#
# *Nudge:* what must the null keep (which values each head has) and what must it break (which
# prompt each value belongs to)? And a null you cannot rerun is no evidence: where does the
# randomness come from?
#
# *Hint:* flatten to (layers * heads, n); one `torch.randperm(n, generator=generator)` per row;
# `torch.gather` along the last axis; reshape back.

# %%
def shuffle_within_heads(grid, generator):
    # BEGIN SOLUTION
    flat = grid.reshape(-1, grid.shape[-1])  # (layers * heads, n)
    order = torch.stack([torch.randperm(flat.shape[-1], generator=generator) for _ in flat])
    return torch.gather(flat, -1, order).reshape(grid.shape)
    # END SOLUTION


# %% tags=["check"]
ch10.check_shuffle_within_heads(shuffle_within_heads)

# %% [markdown]
# The agreement, with its null made by your shuffle once its check has passed:

# %%
shuffle = yours("Exercise 10.3", shuffle_within_heads, claims.shuffle_last_axis)


def head_r(attr, patch):
    """Correlation across (head, prompt) of two (layers, heads, n) grids."""
    return float(torch.corrcoef(torch.stack([attr.flatten(), patch.flatten()]))[0, 1])


def agreement(attr, patch, n_null=100):
    prompt_of = torch.arange(attr.shape[-1]).expand_as(attr).flatten()
    r = claims.cluster_bootstrap_ci(lambda i: head_r(attr.flatten()[i], patch.flatten()[i]),
                                    prompt_of)

    def shuffled(g):  # each head's prompts in another order
        return head_r(shuffle(attr, g), patch)
    null = claims.null_interval(shuffled, n=n_null)
    return r, null, claims.excess_over(r, null)


r, null, excess = agreement(attribution_heads, patching_heads)
print(f"course model: r {r}; prompts shuffled within heads {null}; excess {excess}")
assert r.low >= 0.9 and excess.low > 0

# %% [markdown]
# Most of the correlation is the null's: shuffling the prompts within heads keeps most of r.
# What attribution adds, following each prompt, is the excess. And one more control, the one
# this course keeps coming back to: the same comparison on the untrained model.

# %%
untrained = mc.load_model("course-untrained", device=device)
untrained_pairs = interventions.capital_pairs(untrained)[0]
untrained_r, untrained_null, untrained_excess = agreement(
    interventions.attribution_heads(untrained, untrained_pairs),
    interventions.patch_heads(untrained, untrained_pairs))
print(f"untrained model: r {untrained_r}; prompts shuffled within heads {untrained_null}; "
      f"excess {untrained_excess}")
assert untrained_r.low >= 0.9 and untrained_r.mean > r.mean

# %% [markdown]
# The untrained model agrees *better*. Its patches barely move anything, and for small moves a
# first-order term is nearly exact. Agreement between attribution and activation patching is a
# fact about how linear the model is along the patch, not about the model's mechanism: it is
# best where there is least to find. A high r is a reason to trust the *ranking* of
# attribution on this task, on this model. It is never a finding, and it does not carry over
# to another task or model without being measured again.
#
# ### Exercise 10.4 (open): a claim about one head, at the cost of one backward pass
# 🟠 Medium, 15 minutes. Attribution patching is cheap enough to test a claim about any head on
# many prompts. Write `attributed_share(site, sample)`: `sample.data` is a set of capital
# patching pairs and `sample.model` the model; return, per prompt, attribution patching's
# estimate of the share restored by patching the head `site.component` names ("L2H0"), (n,).
# Then `attribution_design()`: your claim with its threshold, the head as
# `claims.Site("L2H0", (2,))`, and another head of the same block as the matched control. The
# section above says what a threshold on these estimates inherits: choose it knowing that. The
# check judges the design on prompts worded "The capital city of X is", and refuses one that
# passes on an untrained model.
#
# *Nudge:* the estimate undershoots a real patch: is your bar one the estimate can reach if the
# claim is true, and that a head doing nothing would not?
#
# *Hint:* `interventions.attribution_heads(sample.model, sample.data)` is (layers, heads, n);
# read the head's row; `layer, head = (int(x) for x in re.findall(r"\d+", site.component))`.

# %%
import re


def attributed_share(site, sample):
    # BEGIN SOLUTION
    layer, head = (int(x) for x in re.findall(r"\d+", site.component))
    return interventions.attribution_heads(sample.model, sample.data)[layer, head]  # (n,)
    # END SOLUTION


def attribution_design():
    # BEGIN SOLUTION
    return claims.Design(
        claims.Claim("L2H0 moves a tenth of the capital, by attribution patching",
                     "attribution estimate of the share restored by patching L2H0", 0.1,
                     "the same estimate for L2H3, another head of block 2"),
        effect=claims.Site("L2H0", (2,)), control=claims.Site("L2H3", (2,)),
        measure=attributed_share)
    # END SOLUTION


# %% tags=["check"]
attribution_verdict = ch10.check_head_design(attribution_design, model)

# %% [markdown]
# ## 5. Path patching: one edge, not one node
#
# Chapter 04 drew the induction circuit as an edge: the previous-token head L0H1 writes "the
# token before me" at each position, and the induction head L2H0 reads it into its **keys**
# (K-composition). Activation patching cannot test an edge: patch L0H1's output and everything
# after it sees the change. Path patching does (Wang et al. 2022; Goldowsky-Dill et al. 2023):
# run the clean input, and let *only* L2H0's keys see L0H1's output from another run, every
# other component seeing the clean one. `interventions.path_patch_hooks` builds the hooks. Here
# the clean input is 32 repeated sequences and the other run is the other sequences of the
# batch (noising: how much of the copying the edge carries), measured as chapter 09 did, the
# loss rise on the repeat, per sequence, against the same threshold of 1 nat.
#
# ### Exercise 10.2: what the receiver sees
# 🟠 Medium, 15 minutes. Write `sender_swap(model, base, source, sender, through)`, returning
# (n, pos, d_model): the change path patching makes to the residual stream a later head reads.
# It is the sender head's output on `source` minus its output on `base` (the **direct path**:
# the head's z through its own rows of W_O), plus, for each component in `through`,
# `("mlp_out", layer)` or `("attn_out", layer)`, its output on `base` with only the sender's z
# patched in from `source`, minus its output on `base` (the **path through** it). The receiver's
# keys are then its own layer's norm and projection of `resid_pre + swap`, which
# `interventions.receiver_inputs(model, layer, resid)["k"]` computes.
#
# *Nudge:* Path patching changes only what the sender writes: the sender head's output on the source
# run minus its output on the base run, each pushed through its output matrix.
#
# *Hint:* `model.run_with_cache(base, names=[("z", layer), *through])` gives z (n, pos,
# n_heads, d_head) and the components' outputs; `model.attention_weights(layer)["W_O"]` is
# (n_heads, d_head, d_model); inside `with model.hooks({("z", layer):
# interventions.replace_head(head, value)}):` one head's z is `value`.

# %%
def sender_swap(model, base, source, sender, through):
    # BEGIN SOLUTION
    layer, head = sender
    with torch.no_grad():
        _, cache = model.run_with_cache(base, names=[("z", layer), *through])
        _, other = model.run_with_cache(source, names=[("z", layer)])
        sent = other["z", layer][:, :, head]  # (n, pos, d_head)
        W_O = model.attention_weights(layer)["W_O"][head]  # (d_head, d_model)
        swap = (sent - cache["z", layer][:, :, head]) @ W_O  # the direct path
        with model.hooks({("z", layer): interventions.replace_head(head, sent)}):
            _, patched = model.run_with_cache(base, names=through)
        for component in through:  # each path through a component
            swap = swap + patched[component] - cache[component]
    return swap
    # END SOLUTION


# %% tags=["check"]
ch10.check_sender_swap(sender_swap, model)

# %% [markdown]
# `interventions.path_patch_hooks` adds the package's version of this swap to the receiver
# layer's residual stream and puts the receiver's new keys (or queries, or values) in place of
# its own, for that head alone.
#
# Three versions of the edge: the **direct** path only (L0H1's output as it enters L2H0's
# layer); the direct path plus the path **through MLP 0**; and **all paths**, through MLP 0 and
# block 1. Two controls. The same swap, of the same size, along the same paths into L2H0's
# **queries** instead of its keys: this one differs from the claim only in the input read.
# And the same receiver, input and paths from another head of block 0, L0H2, the largest
# writer after L0H1 (no head of block 0 writes as much as L0H1: the sizes of the swaps are
# printed), which chapter 07 found carries the capital. And, so that size alone is ruled out,
# a random direction of the same norm as L0H1's swap at every position, into the same keys.
# Last, whether the paths add up: the direct path and MLP 0's together, minus each alone. The
# seven intervals are judged together (Bonferroni).

# %%
repeats = method_scores.repeated_distinct(model, n=20, batch=32, seed=0)
half = (repeats.shape[1] - 1) // 2
others = method_scores.resampled(repeats)  # each sequence paired with another
clean_loss = circuits.per_token_loss(model, repeats)
between = [("mlp_out", 0), ("attn_out", 1), ("mlp_out", 1)]  # every component in between


def rise_with(hooks):
    """Per sequence: the loss rise on the repeat with `hooks`."""
    return (circuits.per_token_loss(model, repeats, hooks) - clean_loss)[:, half + 1:].mean(1)


def edge_rise(sender, through=(), direct=True, via="k"):
    """Per sequence: the loss rise on the repeat when only L2H0's keys (or `via`) see
    `sender`'s output from the other sequences, along the direct path (unless direct=False)
    and the paths `through`."""
    return rise_with(interventions.path_patch_hooks(model, repeats, others, sender, (2, 0), via,
                                                    through, direct))


l0h1_swap = interventions.sender_swap(model, repeats, others, (0, 1), between)  # all paths
random_swap = claims.random_like(l0h1_swap, torch.Generator().manual_seed(0))  # its norms
edge_level = claims.corrected_level(7)
edges = {"L0H1, direct": edge_rise((0, 1)),
         "L0H1, direct and through MLP 0": edge_rise((0, 1), [("mlp_out", 0)]),
         "L0H1, all paths": edge_rise((0, 1), between),
         "L0H2 (control), all paths": edge_rise((0, 2), between),
         "L0H1 into queries (control), all paths": edge_rise((0, 1), between, via="q"),
         "random, L0H1's norm (control)": rise_with(interventions.receiver_hooks(
             model, repeats, (2, 0), "k", random_swap))}
# both paths together, minus each alone: 0 if the two paths add up
edges["L0H1, interaction of direct and MLP 0"] = (
    edges["L0H1, direct and through MLP 0"] - edges["L0H1, direct"]
    - edge_rise((0, 1), [("mlp_out", 0)], direct=False))
edges = {k: claims.bootstrap_ci(v, level=edge_level) for k, v in edges.items()}
for k, v in edges.items():
    print(f"{k:38} -> L2H0: {v} nats")
_, head_cache = model.run_with_cache(repeats, names=[("z", 0)])
_, other_cache = model.run_with_cache(others, names=[("z", 0)])
swap_size = {f"L0H{h}": float(((other_cache["z", 0][:, :, h] - head_cache["z", 0][:, :, h])
                               @ model.attention_weights(0)["W_O"][h]).norm(dim=-1).mean())
             for h in range(n_heads)}
print("mean size of the swapped output:", {k: round(v, 2) for k, v in swap_size.items()})
threshold = method_scores.ABLATION_THRESHOLD
assert edges["L0H1, direct"].high < threshold and edges["L0H1, all paths"].low > threshold
assert edges["L0H1, direct and through MLP 0"].low > threshold
assert edges["L0H1, interaction of direct and MLP 0"].low > 0
for control in ("L0H2 (control), all paths", "L0H1 into queries (control), all paths",
                "random, L0H1's norm (control)"):
    assert edges[control].high < threshold < edges["L0H1, all paths"].low
# the control L0H2 writes less than L0H1, as every head of block 0 does
assert max(swap_size, key=swap_size.get) == "L0H1" and edges["L0H1, all paths"].low > threshold

# %% [markdown]
# The edge is real, and it is not the edge of the diagram. L0H1's output, swapped on the
# direct path alone, changes nothing L2H0's keys do with it; swapped on every path it breaks
# much of the copying; the same swap into the queries does not, nor does L0H2's, nor a random
# swap of the same size: what breaks the keys is what L0H1 writes, not how much. Most goes
# **through MLP 0**: the "previous token" that L2H0's keys match is L0H1's output as MLP 0
# rewrites it. A K-composition score (chapter 04) reads the direct path from the weights, so
# it cannot see this. And the paths do not add up: the direct path alone does nothing, yet
# added to MLP 0's path it adds surely more than nothing (the interaction), so "how much goes
# which way" has no single answer. What is shown is which counterfactuals break the copying.
#
# ## 6. A model too big to patch cell by cell: SmolLM2
#
# SmolLM2-135M has 30 layers. Attribution patching covers all of them, at every position, in
# one backward pass; activation patching is run here only from the subject on (two positions,
# 60 forward passes), which is already many times slower. Does the cheap method tell the same
# story, the layer where the answer leaves the subject for the final position?

# %%
smol = mc.load_optional("smollm2", device=device)  # None, said in one line, if not installed
if smol is not None:
    known = ["France", "Japan", "Italy", "Germany", "Spain", "Egypt", "Canada", "Russia",
             "China", "Peru", "Kenya", "Greece", "Texas", "Ohio", "Brazil", "India"]
    (smol_pairs,) = interventions.capital_pairs(
        smol, [p for p in world.capital_prompts() if p.attrs["subject"] in known])
    start = time.perf_counter()
    smol_attribution = interventions.attribution_positions(smol, smol_pairs).mean(-1)
    smol_attribution_seconds = time.perf_counter() - start
    start = time.perf_counter()
    smol_patching = interventions.patch_positions(smol, smol_pairs, positions=[-2, -1]).mean(-1)
    smol_patching_seconds = time.perf_counter() - start
    moves = {method: int((grid[:, -1] > grid[:, -2]).float().argmax())  # first such layer
             for method, grid in [("attribution", smol_attribution), ("patching", smol_patching)]}
    print(f"{len(smol_pairs)} pairs, {smol.to_str_tokens(smol_pairs.clean[0])}; the answer "
          f"moves to the final position entering layer: {moves}")
    print(f"at the subject, layers 0-{moves['patching'] - 1}: patching "
          f"{smol_patching[:moves['patching'], -2].mean():.2f}, attribution "
          f"{smol_attribution[:moves['patching'], -2].mean():.2f}")
    fig, axes = plt.subplots(2, 1, figsize=(10, 3.2), sharex=True)
    for ax, grid, title in [(axes[0], smol_patching, "activation patching"),
                            (axes[1], smol_attribution, "attribution patching")]:
        viz.heatmap(ax, grid[:, -2:].T, range(smol.cfg.n_layers), ["subject", "final"],
                    cmap="Blues", vmin=0, vmax=1, title=f"SmolLM2, resid_pre: {title}")
    plt.tight_layout()
    plt.show()
    before = slice(0, moves["patching"])  # the layers where the answer is at the subject
    assert moves == {"attribution": 24, "patching": 24} \
        and smol_attribution[before, -2].mean() < 0.8 * smol_patching[before, -2].mean()

# %% tags=["timing"]
if smol is not None:
    print(f"SmolLM2: attribution patching {smol_attribution_seconds:.1f} s for every layer and "
          f"position; activation patching {smol_patching_seconds:.1f} s for two positions")

# %% [markdown]
# Both methods put the move at the same layer, and attribution undershoots the subject's cells
# here too (printed), as it did on the course model. The ranking is what survives the
# approximation; the sizes do not.
#
# ## 7. An edge in SmolLM2
#
# SmolLM2 copies repeated random tokens too. Chapter 04's scores find its heads: the receiver
# is its best induction head, the sender its best previous-token head in an earlier layer, both
# chosen by code, not by eye. The edge is tested as in section 5: only the receiver's keys see
# the sender's output from the other sequences, along the direct path, then along every path
# through the components between. Three matched controls: the same swap into the receiver's
# queries; the **second** previous-token head before the receiver, a head that looks just as
# much like a previous-token head, into the same keys along the same paths; and a random
# direction of the sender's norm at every position (the two senders' swaps differ in size,
# printed). The five intervals are judged together, against the same threshold of 1 nat.

# %%
if smol is not None:
    smol_scores = circuits.head_scores(smol, seq_len=20, batch=8)
    flat = smol_scores["induction"].flatten().argmax()
    smol_receiver = (int(flat // smol.cfg.n_heads), int(flat % smol.cfg.n_heads))
    earlier = smol_scores["previous token"][:smol_receiver[0]]  # (layers before, heads)
    ranked = earlier.flatten().argsort(descending=True)[:2]
    smol_sender, smol_control = [(int(i // smol.cfg.n_heads), int(i % smol.cfg.n_heads))
                                 for i in ranked]
    print("receiver (induction score):", smol_receiver,
          f"{smol_scores['induction'][smol_receiver]:.2f}; senders (previous-token score):",
          {h: round(float(smol_scores["previous token"][h]), 2) for h in (smol_sender,
                                                                           smol_control)})
    smol_repeats = method_scores.repeated_distinct(smol, n=20, batch=8, seed=0)
    smol_others = method_scores.resampled(smol_repeats)
    smol_half = (smol_repeats.shape[1] - 1) // 2
    smol_clean_loss = circuits.per_token_loss(smol, smol_repeats)
    print(f"clean loss on the first copy {smol_clean_loss[:, :smol_half].mean():.2f}, on the "
          f"repeat {smol_clean_loss[:, smol_half + 1:].mean():.2f} nats")

    def smol_swap(sender, every_path=True):
        """The sender's swap into the receiver's layer: every path, or the direct one alone."""
        between = [(name, layer) for layer in range(sender[0], smol_receiver[0])
                   for name in ("attn_out", "mlp_out") if (name, layer) != ("attn_out", sender[0])]
        return interventions.sender_swap(smol, smol_repeats, smol_others, sender,
                                         between if every_path else [])

    def smol_rise(swap, via="k"):
        """Per sequence: the loss rise on the repeat when only the receiver's `via` input reads
        its residual stream plus `swap`."""
        hooks = interventions.receiver_hooks(smol, smol_repeats, smol_receiver, via, swap)
        rise = circuits.per_token_loss(smol, smol_repeats, hooks) - smol_clean_loss
        return rise[:, smol_half + 1:].mean(1)

    sender_all, control_all = smol_swap(smol_sender), smol_swap(smol_control)
    print("mean size of the swap, all paths:", {h: round(float(x.norm(dim=-1).mean()), 1) for h, x
                                                in [(smol_sender, sender_all),
                                                    (smol_control, control_all)]})
    smol_level = claims.corrected_level(6)
    smol_edges = {
        "sender, direct": smol_rise(smol_swap(smol_sender, every_path=False)),
        "sender, all paths": smol_rise(sender_all),
        "sender into queries (control), all paths": smol_rise(sender_all, via="q"),
        "second sender (control), all paths": smol_rise(control_all),
        "random, the sender's norm (control)": smol_rise(
            claims.random_like(sender_all, torch.Generator().manual_seed(0)))}
    smol_edges["sender, all paths minus direct"] = (smol_edges["sender, all paths"]
                                                    - smol_edges["sender, direct"])
    smol_edges = {k: claims.bootstrap_ci(v, level=smol_level) for k, v in smol_edges.items()}
    for k, v in smol_edges.items():
        print(f"{k:42} -> receiver's keys: {v} nats")
    assert smol_edges["sender, all paths"].low > threshold \
        and smol_edges["sender, direct"].low > threshold
    for control in ("sender into queries (control), all paths",
                    "second sender (control), all paths", "random, the sender's norm (control)"):
        assert smol_edges[control].high < threshold < smol_edges["sender, all paths"].low
    through_others = smol_edges["sender, all paths minus direct"]  # the direct path carries it
    assert -threshold < through_others.low and through_others.high < threshold \
        < smol_edges["sender, direct"].low
    cut = smol_clean_loss[:, smol_half + 1:].mean() + smol_edges["sender, all paths"].high
    print(f"the repeat's loss with the edge cut, at most {cut:.2f} nats; the first copy's "
          f"{smol_clean_loss[:, :smol_half].mean():.2f}")
    assert cut < smol_clean_loss[:, :smol_half].mean() - threshold  # copying survives the cut

# %% [markdown]
# In SmolLM2 the edge is there, and unlike the course model's it runs along the **direct**
# path: every path together raises the loss by less than a nat more than the direct path alone
# (printed, both ways). The controls carry nothing: not the same swap into the queries, not a
# head that looks just as much like a previous-token head, not a random swap of the same size.
# Two models, two ways to wire one circuit, and only path patching told them apart. One edge is
# not the circuit, though: with it cut, the repeat is still predicted far better than the
# first copy (asserted), so the rest of the copying goes through other heads, and finding them
# all is a search over many more pairs than one.
#
# ## Summary
#
# - Attribution patching is the first-order term of activation patching: (clean - corrupted
#   activation) · gradient at the corrupted run, for every cell from one backward pass.
# - On the course model it finds the same cells and heads, and undershoots every large effect:
#   the response along the way from corrupted to clean is S-shaped, flat at both ends, so a
#   tangent at either end misses.
# - Agreement between two methods is judged against a null that keeps what is shared by
#   construction (which heads matter), and against the untrained model, which agrees better:
#   agreement measures linearity, not mechanism.
# - Use it to rank and to choose where to patch; confirm what matters with activation patching
#   on the cells it ranks first.
# - Path patching tests an edge, one head's output into one input of another, against a control
#   edge with the same receiver and paths, and a random swap of the same size. The course
#   model's induction edge runs mostly through MLP 0, not along the direct path a composition
#   score reads; SmolLM2's runs along the direct path.
#
# **Further reading:** Nanda (2023), *Attribution Patching: Activation Patching At Industrial
# Scale*; Syed, Rager and Conmy (2023), *Attribution Patching Outperforms Automated Circuit
# Discovery*; Kramár, Lieberum, Shah and Nanda (2024), *AtP\*: An efficient and scalable method
# for localizing LLM behaviour to components*; Heimersheim and Nanda (2024), *How to use and
# interpret activation patching*; Wang et al. (2022), *Interpretability in the Wild: a Circuit
# for Indirect Object Identification in GPT-2 small*; Goldowsky-Dill, MacLeod, Sato and Arora
# (2023), *Localizing Model Behavior with Path Patching*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** integrated gradients from the corrupted to the clean activation (average the
#   gradient over 10 points on the path) and how much of the undershoot of section 3 it removes.
# - **Replicate:** AtP* (Kramár et al. 2024): its fix for attention saturation, on the heads of
#   section 4.
# - **Open question:** at which layer is attribution patching furthest from activation patching on
#   the course model, and is that where the patches are largest?
