# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 07 Causal interventions and probing
#
# Chapters 03-06 read the model: where attention goes, what the residual stream says through
# the unembedding, which neurons and latents fire. Reading shows **correlation**. A head can
# stare at the subject of a sentence and contribute nothing; a probe can decode a fact from a
# layer that nothing downstream ever reads. To learn what the model *uses*, change something
# inside it and watch the output: an **intervention**. In this chapter you patch activations
# between a clean and a corrupted prompt to trace where a fact travels, compare three ways of
# removing a component, train linear probes, and then test whether the model uses what the
# probes find. Because the course model's world is known, you finish by checking the patching
# results against what the world says must be stored where, on every capital the model knows.
#
# **You will be able to:** set up clean and corrupted prompts with a normalised metric; write
# activation patching over layers and positions, and over heads; explain why attention weights
# are not importance, with examples; choose between zero, mean and resample ablation and say
# what each one tests; train probes without leaking subjects between training and test sets; and
# test whether a decodable direction is used, with a control.
#
# **Time:** about 185 minutes. **Prerequisites:** chapters 03 and 04.

# %%
import matplotlib.pyplot as plt

from mechinterp_course import claims, interventions, probes, viz, world
from mechinterp_course.checks import ch07

torch.set_grad_enabled(False)
model = mc.load_model("course", device=device)
n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
print(model)

# %% [markdown]
# ## 1. A clean prompt, a corrupted one, and a metric
#
# Take "The capital of Texas is" (the model answers " Austin") and a **corrupted** prompt that
# differs only in the subject, "The capital of Ohio is" (" Columbus"). Both are six tokens, so
# every position lines up. The **logit difference** `logit(" Austin") - logit(" Columbus")`
# measures which answer the model prefers: clearly positive on the clean prompt, clearly
# negative on the corrupted one.

# %%
by_subject = {p.attrs["subject"]: p for p in world.capital_prompts()}
texas, ohio = by_subject["Texas"], by_subject["Ohio"]
(pair,) = interventions.capital_pairs(model, [texas, ohio])  # Texas <-> Ohio, both ways
print(model.to_str_tokens(pair.clean[0]), "vs", model.to_str_tokens(pair.corrupt[0]))
clean_diff = interventions.answer_logit_diff(model(pair.clean), pair.answer, pair.wrong)
corrupt_diff = interventions.answer_logit_diff(model(pair.corrupt), pair.answer, pair.wrong)
print(f"logit(' Austin') - logit(' Columbus'): clean {clean_diff[0]:.2f}, "
      f"corrupted {corrupt_diff[0]:.2f}")
assert clean_diff[0] > 3 and corrupt_diff[0] < -3

# %% [markdown]
# An intervention on the corrupted run lands somewhere between the two. To compare
# interventions, rescale so that 0 means "as corrupted" and 1 means "as clean":
#
# $$\text{metric} = \frac{\text{patched} - \text{corrupted}}{\text{clean} - \text{corrupted}}$$
#
# ### Exercise 7.1: the normalised metric
# 🟢 Easy, 5 minutes. Write `patching_metric(patched, clean, corrupt)` for tensors of logit
# differences (any shape, elementwise).
#
# *Nudge:* The metric is 0 when patching changed nothing (the corrupted run) and 1 when it restored
# the clean run. Write the straight line through those two points.
#
# *Hint:* subtract the corrupted value, then divide by the gap between clean and corrupted.

# %%
def patching_metric(patched, clean, corrupt):
    # BEGIN SOLUTION
    return (patched - corrupt) / (clean - corrupt)
    # END SOLUTION


# %% tags=["check"]
ch07.check_patching_metric(patching_metric, model)

# %% [markdown]
# ## 2. Activation patching
#
# Run the corrupted prompt, but at one activation (say, the residual stream entering block 1 at
# the position of " Ohio") put back the value from the clean run. Everything downstream is
# recomputed. If the metric climbs back towards 1, that activation carried the information that
# separates Texas from Ohio. This direction, clean into corrupted, is called **denoising**: it
# asks what is *sufficient* to restore the answer. (The reverse, corrupted into clean, is
# **noising**, and asks what is *necessary*; the two can disagree when the model has backups.)
#
# ### Exercise 7.2: a hook that patches one position
# 🟢 Easy, 10 minutes. Write `patch_position(clean_act, pos)` returning a hook `hook(x)` that
# returns `x` with position `pos` replaced by `clean_act`'s. Activations here are (batch, pos, ...),
# so the position is the second axis. Never write into `clean_act`: it belongs to the clean cache.
#
# *Nudge:* The hook receives the current run's activation: change one position of a copy of it,
# using the clean run's values there.
#
# *Hint:* `x = x.clone()`, then assign `x[:, pos]`.

# %%
def patch_position(clean_act, pos):
    # BEGIN SOLUTION
    def hook(x):
        x = x.clone()
        x[:, pos] = clean_act[:, pos]  # (batch, pos, ...): the position is the second axis
        return x
    return hook
    # END SOLUTION


# %% tags=["check"]
ch07.check_patch_position(patch_position, model)

# %% [markdown]
# ### Exercise 7.3: patch the residual stream everywhere
# 🟠 Medium, 20 minutes. Write `patch_residual(model, pairs)`. `pairs` holds `clean` and
# `corrupt` token ids (n, pos) and the `answer` and `wrong` token ids (n,). For every layer and
# position, run the corrupted tokens with `("resid_pre", layer)` patched at that position from
# the clean run, and record the normalised metric averaged over the n prompts. Return
# (n_layers, pos). Use the package's copies of the earlier pieces: `interventions.patch_position`,
# `interventions.normalised` and `interventions.answer_logit_diff(logits, answer, wrong)`.
#
# *Nudge:* Some things happen once (the clean cache, the clean and corrupted baselines) and one
# thing happens for every (layer, position) cell: a patched forward pass, scored by the normalised
# metric.
#
# *Hint:* one `run_with_cache` of the clean tokens gives every layer's `resid_pre`; compute the
# clean and corrupted logit differences once, outside the loops.

# %%
def patch_residual(model, pairs):
    # BEGIN SOLUTION
    _, cache = model.run_with_cache(pairs.clean, names=["resid_pre"])
    clean = interventions.answer_logit_diff(model(pairs.clean), pairs.answer, pairs.wrong)
    corrupt = interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong)
    grid = torch.zeros(model.cfg.n_layers, pairs.clean.shape[1])
    for layer in range(model.cfg.n_layers):
        for pos in range(pairs.clean.shape[1]):
            hook = interventions.patch_position(cache["resid_pre", layer], pos)
            with model.hooks({("resid_pre", layer): hook}):
                logits = model(pairs.corrupt)
            patched = interventions.answer_logit_diff(logits, pairs.answer, pairs.wrong)
            grid[layer, pos] = interventions.normalised(patched, clean, corrupt).mean()
    return grid  # (n_layers, pos)
    # END SOLUTION


# %% tags=["check"]
ch07.check_patch_residual(patch_residual, model)

# %% [markdown]
# Now every capital the model knows. `interventions.capital_pairs` pairs each "The capital of X
# is" prompt with another of the same length (the next subject, cyclically), grouped by length
# (the counts are printed below; most subjects are one token long). `interventions.patch_positions` is the package's version of your
# loop, keeping one value per prompt.

# %%
all_pairs = interventions.capital_pairs(model)
pairs = all_pairs[0]  # the one-token subjects
print([len(p) for p in all_pairs], "prompts, of", [p.clean.shape[1] for p in all_pairs],
      "tokens")
assert len(pairs) > sum(len(p) for p in all_pairs) / 2  # most subjects: one token
positions = ["<bos>", "The", " capital", " of", "X (subject)", " is"]
resid = interventions.patch_positions(model, pairs, "resid_pre")  # (layers, pos, prompts)
layer_names = [f"resid_pre {layer}" for layer in range(n_layers)]
fig, ax = plt.subplots(figsize=(6, 2.8))
viz.heatmap(ax, resid.mean(-1), positions, layer_names, cmap="Blues", vmin=0, vmax=1,
            title=f"Patching the residual stream: mean over {len(pairs)} prompts")
plt.show()

# %% [markdown]
# Read it column by column. Patching a position *before* the subject does exactly nothing, at
# any layer: those positions are identical in the two prompts, and attention only looks back, so
# they never see the subject. Entering block 0, only the subject position matters (patching it
# there simply swaps the token). Entering the last block, almost only the final position does.
# In between, the information **moves** to " is", where the prediction is made, in two steps.
# Block 0 already moves a part of it: entering block 1, the subject and the final position
# each restore a part and leave a part. Block 1 moves nothing. Block 2 moves the rest.
#
# A share is a ratio, and a ratio of two small numbers can be anything: in a model that had
# not learned the capital, the clean and corrupted runs would differ by noise, and so would
# every share. So the split is judged in **nats**, not in shares. A share times the prompt's
# clean-minus-corrupted gap is the logit difference the patch restores; the gap minus that is
# what it leaves. Each of the four amounts (subject and final position, restored and left)
# must be above 1 nat (a factor e in the odds of the answer over the other capital), a round
# unit rather than a value tuned to these numbers. The intervals are over the prompts,
# Bonferroni-corrected for the four judged together.

# %%
mean = resid.mean(-1)
subject, final = 4, 5
gap = (interventions.answer_logit_diff(model(pairs.clean), pairs.answer, pairs.wrong)
       - interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer, pairs.wrong))
split_level = claims.corrected_level(4)
split = {(where, part): claims.bootstrap_ci(share * gap, level=split_level)
         for where, position in [("subject", subject), ("final", final)]
         for part, share in [("restored", resid[1, position]),
                             ("left", 1 - resid[1, position])]}  # nats, over the prompts
print(f"clean minus corrupted: {claims.bootstrap_ci(gap)} nats; entering block 1, "
      f"at {split_level:.2%} each:")
for (where, part), interval in split.items():
    print(f"  patching the {where} position {part}: {interval} nats")
assert resid[:, :subject].abs().max() < 1e-4              # positions before the subject: nothing
assert mean[0, subject] > 0.99                             # entering block 0: all at the subject
assert all(interval.low > 1 for interval in split.values())  # entering block 1: split
assert (mean[2] - mean[1]).abs().max() < 0.05              # block 1 moves nothing
assert mean[3, final] > 0.9 and mean[3, subject] < 0.1     # entering block 3: at " is"
print("share restored at the subject / final position, entering each block:",
      [(round(float(mean[i, subject]), 2), round(float(mean[i, final]), 2))
       for i in range(n_layers)])

# %% [markdown]
# ## 3. Which components carry it
#
# The residual stream is a sum (chapter 03), so the same patching can be done on each term:
# each block's attention output and MLP output at each position, and each head's output
# (its `z`, at every position at once).

# %%
attn = interventions.patch_positions(model, pairs, "attn_out").mean(-1)
mlp_each = interventions.patch_positions(model, pairs, "mlp_out")  # (layers, pos, prompts)
mlp = mlp_each.mean(-1)
heads = interventions.patch_heads(model, pairs).mean(-1)  # (layers, heads)
fig, axes = plt.subplots(1, 3, figsize=(14, 2.8))
viz.heatmap(axes[0], attn, positions, [f"attn {i}" for i in range(n_layers)], vmin=-1, vmax=1,
            title="attention output patched")
viz.heatmap(axes[1], mlp, positions, [f"MLP {i}" for i in range(n_layers)], vmin=-1, vmax=1,
            title="MLP output patched")
viz.heatmap(axes[2], heads, range(n_heads), [f"layer {i}" for i in range(n_layers)], vmin=-1,
            vmax=1, title="one head's output patched (all positions)")
axes[2].set_xlabel("head")
plt.tight_layout()
plt.show()
early, late = sorted(divmod(int(i), n_heads) for i in heads.flatten().topk(2).indices)
clean_logits, clean_cache = model.run_with_cache(pairs.clean)
pattern0 = clean_cache["pattern", 0]  # (prompt, head, query, key)
to_previous = torch.stack([pattern0[:, :, q, q - 1] for q in range(1, final + 1)]).mean((0, 1))
print("MLP 0 at the subject:", round(float(mlp[0, subject]), 2), "and at the final position:",
      round(float(mlp[0, final]), 2))
print("attention 0, 1, 2, 3 at the final position:", [round(float(a), 2) for a in attn[:, final]])
print(f"strongest heads: L{early[0]}H{early[1]} {heads[early]:.2f}, "
      f"L{late[0]}H{late[1]} {heads[late]:.2f}; L0H1 {heads[0, 1]:.2f}, which puts "
      f"{to_previous[1]:.2f} of its attention on the previous token")
# MLP 0 at the subject, in nats as in section 2: ahead of MLPs 1 and 2 at the subject (the
# positions before it are unchanged, and the last MLP at the subject is zero by construction, as
# nothing after it reads that position), restoring and leaving a part: four amounts, each above
# 1 nat, Bonferroni-corrected for the four
assert mlp_each[n_layers - 1, subject].abs().max() < 1e-4  # not a control: zero by construction
mlp_level = claims.corrected_level(4)
mlp_nats = mlp_each[:, subject] * gap  # (layers, prompts): nats restored
mlp0 = {f"ahead of MLP {i}": claims.bootstrap_ci(mlp_nats[0] - mlp_nats[i], level=mlp_level)
        for i in range(1, n_layers - 1)}
mlp0["restored"] = claims.bootstrap_ci(mlp_nats[0], level=mlp_level)
mlp0["left"] = claims.bootstrap_ci(gap - mlp_nats[0], level=mlp_level)
print(f"MLP 0 at the subject, nats at {mlp_level:.2%} each:",
      {k: str(v) for k, v in mlp0.items()})
assert all(interval.low > 1 for interval in mlp0.values())
assert mlp[0, final] > 0.25                                  # MLP 0 works at " is" too
assert attn[0, final] > 0.4 and attn[2, final] > 0.3         # two moves: blocks 0 and 2...
assert attn[1, final].abs() < 0.05 and attn[3, final].abs() < 0.05  # ...and none in 1 or 3
assert (early, late) == ((0, 2), (2, 0))
assert heads[0, 1] > 0.1 and to_previous[1] > 0.9 and to_previous.argmax() == 1
assert 0.3 < mlp[n_layers - 1, final] < 0.9  # the last MLP: much, not all, restored alone

# %% [markdown]
# A picture of fact recall in the course model, each step measured and asserted above. There are
# two routes, and each alone restores a large share of the answer (the printed numbers):
#
# 1. **Block 0 works in two places at once.** At the subject, MLP 0 turns the token " Texas"
#    into a representation from which the capital can be read (the largest MLP effect before
#    the final position). At
#    " is", heads L0H2 and L0H1 read the subject's token straight from the embedding (L0H1 is
#    the previous-token head, and the subject is the previous token), and MLP 0 works on what
#    they brought (MLP 0 at the final position).
# 2. **Block 1 moves nothing. In block 2, head L2H0** moves the rest from the subject to the
#    final position.
# 3. The MLP of the last block, at the final position, writes most of the answer's logit
#    (chapter 03's attribution), but patching it alone restores only part of it: it depends on
#    what the heads brought.
#
# ## 4. Attention is not importance
#
# Which heads look at the subject from the final position? Most of chapter 04's reasoning
# started from patterns like these:

# %%
to_subject = torch.stack([clean_cache["pattern", layer][:, :, -1, subject].mean(0)
                          for layer in range(n_layers)])  # (layers, heads)
fig, axes = plt.subplots(1, 2, figsize=(10, 2.8))
viz.heatmap(axes[0], to_subject, range(n_heads), [f"layer {i}" for i in range(n_layers)],
            cmap="Blues", vmin=0, vmax=1, title="attention from ' is' to the subject")
axes[1].scatter(to_subject.flatten(), heads.flatten())
for i, (a, h) in enumerate(zip(to_subject.flatten(), heads.flatten())):
    if a > 0.5 or h > 0.2:  # label the heads worth a look
        axes[1].annotate(f"L{i // n_heads}H{i % n_heads}", (float(a), float(h)), fontsize=8)
axes[1].set(xlabel="attention to the subject", ylabel="restored by patching the head",
            title="looking is not using")
plt.tight_layout()
plt.show()
looking = [tuple(lh) for lh in (to_subject > 0.85).nonzero().tolist()]  # (layer, head) pairs
strongest = max(looking, key=lambda lh: heads[lh])
weakest = min(looking, key=lambda lh: heads[lh])
for lh in looking:
    print(f"L{lh[0]}H{lh[1]}: attention to the subject {to_subject[lh]:.2f}, "
          f"patching restores {heads[lh]:.2f}")
assert len(looking) == 5 and strongest == (0, 2) and weakest == (3, 0)
assert heads[weakest] < 0.1 and heads[strongest] > 3 * heads[weakest]
assert min(to_subject[2, 0], to_subject[2, 1]) > 0.85 and heads[2, 1] < heads[2, 0] / 3

# %% [markdown]
# Five heads put more than 0.85 of their attention on the subject (the threshold, fixed in the
# code). Patching them restores anything from almost nothing (L3H0, below 0.1) to the most of
# any head (L0H2), as printed. Within one layer, L2H0 and L2H1 both look at the subject, yet
# patching L2H1 restores less than a third of what L2H0 does. An attention weight says where a head *reads*; what it *writes* depends on its value and
# output weights, and whether anything downstream uses it. And MLP 0, which matters at both
# positions, has no attention pattern at all.
#
# ### Three ways to remove a head
#
# Patching asked what restores the answer. **Ablation** asks what breaks it, on the clean
# prompts, by replacing a component's output with something uninformative. What to put back is
# a choice with consequences:
#
# - **zero ablation** sets the output to zero, a value the model never produced in training:
#   downstream components may react to the strangeness, not to the missing information;
# - **mean ablation** puts back the head's mean output over the dataset (at each position): the
#   typical value, with the prompt-specific part removed;
# - **resample ablation** puts back the head's output on *another* prompt: a realistic value
#   that carries the *wrong* information.
#
# ### Exercise 7.4: zero, mean and resample ablation
# 🟠 Medium, 15 minutes. Write `ablated_z(z, head, kind, perm)`: z is a cached (batch, pos,
# n_heads, d_head); return a *copy* with head `head` replaced: by zeros (`kind="zero"`), by
# its mean over the batch at each position (`"mean"`), or, for prompt i, by the head's z on
# prompt `perm[i]` (`"resample"`).
#
# *Nudge:* Copy first. Zero and mean ablation give every prompt the same replacement; resample
# ablation gives each prompt the head's value from another prompt.
#
# *Hint:* `z[:, :, head].mean(0)` broadcasts over the batch; `z[perm, :, head]` reorders the
# prompts.

# %%
def ablated_z(z, head, kind, perm):
    # BEGIN SOLUTION
    z = z.clone()  # never edit the cache you ablate from
    if kind == "zero":
        z[:, :, head] = 0.0
    elif kind == "mean":
        z[:, :, head] = z[:, :, head].mean(0)  # (pos, d_head), the same for every prompt
    elif kind == "resample":
        z[:, :, head] = z[perm, :, head]
    return z
    # END SOLUTION


# %% tags=["check"]
ch07.check_ablated_z(ablated_z, model)

# %% [markdown]
# Now every head under each ablation (with `interventions.replace_head` and
# `interventions.ablation_values`, the package's version of your function), measuring how often
# the capital is still the top prediction. MLPs are ablated the same three ways.

# %%
answers = pairs.answer
perm = interventions.resample_order(len(pairs))


def accuracy(logits):
    return float((logits[:, -1].argmax(-1) == answers).float().mean())


kinds = ["zero", "mean", "resample"]
head_acc = torch.zeros(len(kinds), n_layers, n_heads)
for k, kind in enumerate(kinds):
    for layer in range(n_layers):
        z = clean_cache["z", layer]
        for head in range(n_heads):
            hook = interventions.replace_head(head, interventions.ablation_values(z, head, kind,
                                                                                  perm))
            head_acc[k, layer, head] = accuracy(model.run_with_hooks(pairs.clean,
                                                                     {("z", layer): hook}))
def put_back(value):
    return lambda x: value  # a hook replacing the whole activation


mlp_acc = torch.zeros(len(kinds), n_layers)
for layer in range(n_layers):
    out = clean_cache["mlp_out", layer]
    for k, value in enumerate([torch.zeros_like(out), out.mean(0, keepdim=True).expand_as(out),
                               out[perm]]):
        mlp_acc[k, layer] = accuracy(model.run_with_hooks(pairs.clean,
                                                          {("mlp_out", layer): put_back(value)}))
print("accuracy with nothing removed:", accuracy(clean_logits))
fig, axes = plt.subplots(1, 4, figsize=(15, 2.6))
for ax, kind, acc in zip(axes, kinds, head_acc):
    viz.heatmap(ax, acc, range(n_heads), [f"layer {i}" for i in range(n_layers)], cmap="Blues",
                vmin=0, vmax=1, title=f"accuracy, one head {kind}-ablated")
viz.heatmap(axes[3], mlp_acc.T, kinds, [f"MLP {i}" for i in range(n_layers)], cmap="Blues",
            vmin=0, vmax=1, title="accuracy, one MLP ablated")
plt.tight_layout()
plt.show()

# %%
zero, mean_, resample = head_acc
fragile = divmod(int(zero.flatten().argmin()), n_heads)  # the head zero ablation hurts most
for lh in [weakest, late, fragile, early]:
    print(f"L{lh[0]}H{lh[1]}: zero {zero[lh]:.2f}, mean {mean_[lh]:.2f}, "
          f"resample {resample[lh]:.2f} | patching restored {heads[lh]:.2f}")
print("MLP 0 (zero, mean, resample):", [round(float(a), 2) for a in mlp_acc[:, 0]])
assert min(zero[weakest], mean_[weakest], resample[weakest]) > 0.95  # looks, is not needed
assert min(zero[late], mean_[late]) > 0.95 and resample[late] < 0.85  # has a backup
assert fragile == (0, 0) and zero[fragile] < 0.5 and heads[fragile].abs() < 0.05
assert min(mean_[fragile], resample[fragile]) > 0.95                 # zero overstates
assert max(zero[early], mean_[early]) < 0.9 and resample[early] < 0.5  # needed, every way
assert mlp_acc[:, 0].max() < 0.1

# %% [markdown]
# Four lessons, each from one row of the table:
#
# - **L3H0** puts most of its attention on the subject, and no ablation of it matters.
# - **L2H0**: removing its information (zero or mean) costs almost nothing, because the heads
#   of block 0 also move the fact and the model gets by. Replacing it with *another subject's*
#   information (resample) breaks about a quarter of the answers: L2H0 carries the fact, but
#   it has a **backup**. An ablation that only removes can miss a component that matters.
# - **L0H0**: zero ablation breaks about two answers in three; mean and resample ablation change
#   nothing, and patching it restored nothing: it carries nothing about the subject. Its
#   constant part (what it writes on every prompt) matters to what follows; zero ablation
#   removes that too and takes the model off its training distribution. Zero ablation
#   **overstates**.
# - **L0H2**, the strongest head in the patching, is needed under every ablation. Resample
#   ablation hurts most, because it also brings in the wrong subject.
#
# Mean and resample ablation are the usual defaults; report which one you used, and prefer a
# claim that survives both, like the one about L0H2.
#
# ## 5. Probing: decodable is not the same as used
#
# A **linear probe** is a classifier trained on activations to predict a label. If it works, the
# label is linearly decodable there. Here: the continent of a country, from the residual stream
# at the country's last token, in nine contexts that name the country before saying anything
# about it ("People in X speak", "I visited X last year", ...), at every layer.

# %%
data = probes.country_activations(model)
n_classes = len(data.classes)
print(data.acts.shape, "(sites, examples, d_model);", data.classes)
print("sites:", data.site_labels)

# %% [markdown]
# A probe must be tested on examples it did not train on. But examples of the same country (in
# different contexts) are nearly the same vector at early layers, so a random split lets the
# probe *memorise countries*: it would "decode the continent" from the token embedding of any
# country it has seen, which says nothing about what the model computed. The honest split holds
# out whole countries.
#
# ### Exercise 7.5: folds that hold out whole subjects
# 🟢 Easy, 10 minutes. Write `grouped_folds(groups, k)`: groups (n,) gives each example's subject
# (an integer id); return (n,) fold indices in `0..k-1` such that all examples of a subject share
# a fold and the folds hold nearly equal numbers of subjects.
#
# *Nudge:* Deal folds to subjects, not to examples; each example then inherits its subject's fold.
#
# *Hint:* `groups.unique()` lists the subjects; deal them out to folds in turn.

# %%
def grouped_folds(groups, k):
    # BEGIN SOLUTION
    fold_of = {int(g): i % k for i, g in enumerate(groups.unique())}
    return torch.tensor([fold_of[int(g)] for g in groups])
    # END SOLUTION


# %% tags=["check"]
ch07.check_grouped_folds(grouped_folds, model)

# %%
leaky = torch.tensor([probes.cross_val_accuracy(x, data.labels, probes.random_folds(len(
    data.labels)), n_classes) for x in data.acts])
held_out = torch.tensor([probes.cross_val_accuracy(x, data.labels, probes.grouped_folds(
    data.groups), n_classes) for x in data.acts])
majority = float((data.labels == data.labels.mode().values).float().mean())
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.plot(data.site_labels, leaky, "o-", label="random split (countries leak)")
ax.plot(data.site_labels, held_out, "o-", label="held-out countries")
ax.axhline(majority, color="grey", ls=":", label="always the commonest continent")
ax.set(ylim=(0, 1.05), ylabel="probe accuracy", title="Probing the continent at the country")
ax.legend(fontsize=8)
plt.show()
print("random split:", [round(float(a), 2) for a in leaky])
print("held-out countries:", [round(float(a), 2) for a in held_out], "| majority", majority)
assert (leaky > 0.9).all() and leaky[0] > 0.95  # memorisation, even from the embedding
assert (held_out > majority + 0.3).all() and (held_out < leaky - 0.1).all()

# %% [markdown]
# With countries leaking, the probe is nearly perfect everywhere, including the embedding
# layer, before the model has computed anything. Holding countries out costs it more than a
# tenth at every site, yet it still beats the majority baseline by far: countries of one
# continent have similar embeddings (they share languages and sentence patterns in the world's
# text), so even the embedding "encodes" continent. The curve is nearly flat. From probing
# alone you cannot tell where the model recalls the continent, or whether it reads these
# directions at all.
#
# ### Does the model use what the probe reads?
#
# Ask it. The world taught the model "X is a country in {continent}". Fit a probe at one site on
# all countries; its weights `W` (d_model, 6) span the directions it reads. Remove that span
# from the residual stream at the country's position, and see whether the model still names the
# continent. A control removes a random span of the same size.
#
# ### Exercise 7.6: remove a span of directions
# 🟠 Medium, 15 minutes. Write `project_out(directions)`: directions (k, d), not necessarily
# orthogonal or unit length; return a function `remove(x)` that maps vectors x (..., d) to x
# minus its projection onto the span of the directions.
#
# *Nudge:* Removing several directions one at a time goes wrong when they are not orthogonal. Build
# an orthonormal basis of their span first, then subtract the projection onto it.
#
# *Hint:* `torch.linalg.qr(directions.T).Q` is a (d, k) orthonormal basis of the span; then the
# projection is `(x @ Q) @ Q.T`.

# %%
def project_out(directions):
    # BEGIN SOLUTION
    Q = torch.linalg.qr(directions.T).Q  # (d, k): an orthonormal basis of the span

    def remove(x):
        return x - (x @ Q) @ Q.T
    return remove
    # END SOLUTION


# %% tags=["check"]
ch07.check_project_out(project_out, model)

# %%
countries = data.subjects
continent_prompts = model.to_tokens([f"{c} is a country in" for c in countries])
where = torch.tensor([len(model.to_tokens(c)[0]) - 1 for c in countries])  # country's last token
first_tokens = torch.tensor([model.to_tokens(" " + c, prepend_bos=False)[0, 0]
                             for c in data.classes])  # " Africa", " Asia", ..., " South"
last = torch.tensor([len(model.to_tokens(f"{c} is a country in")[0]) - 1 for c in countries])
truth = torch.tensor([data.classes.index(world.COUNTRIES[c][1]) for c in countries])
capital_prompts = model.to_tokens([f"The capital of {c} is" for c in countries])
capital_where = torch.tensor([len(model.to_tokens(f"The capital of {c}")[0]) - 1
                              for c in countries])
capital_last = torch.tensor([len(model.to_tokens(f"The capital of {c} is")[0]) - 1
                             for c in countries])
capitals = torch.tensor([model.to_tokens(" " + world.COUNTRIES[c][0], prepend_bos=False)[0, 0]
                         for c in countries])


def continent_accuracy(hooks=None):
    logits = model.run_with_hooks(continent_prompts, hooks or {})
    guesses = logits[torch.arange(len(countries)), last][:, first_tokens].argmax(-1)
    return float((guesses == truth).float().mean())


def site_hook(site, remove, positions=where):
    name = ("resid_pre", site) if site < n_layers else ("resid_post", n_layers - 1)
    return {name: interventions.at_positions(remove, positions)}


def capital_accuracy(hooks):
    logits = model.run_with_hooks(capital_prompts, hooks)
    return float((logits[torch.arange(len(countries)), capital_last].argmax(-1) == capitals)
                 .float().mean())


g = torch.Generator().manual_seed(0)
clean_acc = continent_accuracy()
with_probe, with_random, capital_without_probe = [], [], []
for site, x in enumerate(data.acts):
    probe = probes.fit_probe(x, data.labels, n_classes)
    random_span = torch.randn(n_classes, model.cfg.d_model, generator=g)
    remove = interventions.project_out(probe.W.T)
    with_probe.append(continent_accuracy(site_hook(site, remove)))
    capital_without_probe.append(capital_accuracy(site_hook(site, remove, capital_where)))
    with_random.append(continent_accuracy(site_hook(site, interventions.project_out(
        random_span))))
print(f"continent named correctly: {clean_acc:.2f} of {len(countries)} countries")
print("probe's span removed:", [round(a, 2) for a in with_probe])
print("random span removed: ", [round(a, 2) for a in with_random])
fig, ax = plt.subplots(figsize=(7, 2.8))
w = 0.35
ax.bar(torch.arange(len(with_probe)) - w / 2, with_probe, w, label="probe's directions removed")
ax.bar(torch.arange(len(with_probe)) + w / 2, with_random, w, label="random directions removed")
ax.axhline(clean_acc, color="grey", ls=":", label="nothing removed")
ax.set_xticks(range(len(with_probe)), data.site_labels)
ax.set(ylabel="continent accuracy", title="Is the decodable continent used?")
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %%
drop = clean_acc - torch.tensor(with_probe)
control = clean_acc - torch.tensor(with_random)
assert clean_acc > 0.9
assert drop[0] > 0.2 and (control[:3] < 0.1).all()           # used at the embedding
assert (drop[1:3] > 0.05).all() and drop[1:3].max() < drop[0] / 2  # less entering blocks 1-2
assert (drop[1:3] > control[1:3] + 0.05).all()              # ...but more than chance
assert (drop[3:].abs() < 0.02).all() and (held_out[3:] > 0.7).all()  # decodable, not used
print("capital accuracy with the probe's span removed at the country:",
      [round(a, 2) for a in capital_without_probe])
assert capital_without_probe[0] < 0.7 and min(capital_without_probe[1:]) > 0.9
print(f"at resid_pre {n_layers - 1} and after: the probe reads the continent with "
      f"{float(held_out[3]):.2f} and {float(held_out[4]):.2f} held-out accuracy, and removing "
      f"it changes the answer by {float(drop[3:].abs().max()):.2f}")

# %% [markdown]
# Entering block 0, the model reads the directions the probe found: removing them from the
# country's embedding costs about a third of the answers, and removing random directions costs
# almost nothing. Entering blocks 1 and 2, removing them at the country costs much less (a few
# countries in seventy, still more than the random control). As section 2 found, block 0's
# attention has already copied the country's token to the later positions, and we remove the
# directions only at the country.
# From the last block on, the continent is still decodable at the country (the probe is as
# accurate as before) and removing it changes **nothing**. Section 2 showed why: by then the
# fact has been copied to the final position, and the last block's residual at the country is
# not read by anything that reaches the answer (after the last block, only the final position's
# residual makes the prediction). A probe finds what is *there*; only an intervention finds
# what is *used*.
#
# One caveat in the other direction: the probe's six directions are not purely "continent".
# Removing them from the embedding also costs about half the capitals ("The capital of X is",
# printed above): there, the directions that separate continents also help tell countries
# apart. An ablation is only as specific as the directions it removes.
#
# ## 6. Every capital, checked one prompt at a time
#
# The world is ground truth for *what* the model must know: the right capital of each subject.
# It is no ground truth for *where* or *how* the model computes it; only interventions say
# that. So this section holds each prompt to what section 2 found on average, and labels which
# asserts are claims about the model and which only check the code.
#
# - (a) No position before the subject restores anything. This is **not a finding**: a prompt
#   and its corruption share every token before the subject, and in a causal model those
#   positions are then identical in both runs. The assert checks the patching code (patch the
#   wrong positions and it fails); it could not fail for any model.
# - (b) Entering block 1, the fact is split between the subject and the final position: a
#   claim, which could fail on any prompt.
# - (c) Entering the last block, most of it is at the final position: a claim.
#
# Each prompt must pass on its own, including the thirteen two-token subjects ("New York",
# "South Korea"), for which "the subject" means its tokens together.

# %%
per_prompt = {}
for group in all_pairs:
    grid = interventions.patch_positions(model, group, "resid_pre")  # (layers, pos, prompts)
    span = group.subject[0]
    per_prompt[group.clean.shape[1]] = grid
    at_subject = interventions.patch_span(model, group, "resid_pre", 1, span)  # entering block 1
    at_final = grid[1, -1]
    moved = grid[n_layers - 1, -1]  # entering the last block, at the final position
    print(f"{len(group)} prompts of {group.clean.shape[1]} tokens: before the subject, largest "
          f"effect {grid[:, : span[0]].abs().max():.1e}; entering block 1, the subject's tokens "
          f"restore {at_subject.min():.2f} to {at_subject.max():.2f} and the final position "
          f"{at_final.min():.2f} to {at_final.max():.2f}; entering block {n_layers - 1}, the "
          f"final position restores {moved.min():.2f} to {moved.max():.2f}")
    assert grid[:, : span[0]].abs().max() < 1e-4                  # (a) a check of the code
    assert (at_subject > 0.1).all() and (at_subject < 0.9).all()  # (b) split on every prompt
    assert (at_final > 0.1).all() and (at_final < 0.9).all()
    assert (moved > 0.5).all()                                    # (c)
assert per_prompt[6][n_layers - 1, -1].min() > 0.8  # (c) one-token subjects: nearly all of it
assert per_prompt[7][n_layers - 1, -1].min() < per_prompt[6][n_layers - 1, -1].min() - 0.1

# %% [markdown]
# Every prompt passes. The split entering block 1 is not an average of prompts that do one
# thing and prompts that do the other: every prompt splits. But some two-token subjects reach
# the last block with clearly less of the fact at the final position than the one-token
# subjects (the printed ranges). Where is the rest?
#
# Which of a two-token subject's tokens carries the fact? The world needs the first word only
# where the last word is ambiguous: " Mexico", " Dakota", " Carolina" and " Virginia" each end
# two subjects. Where the last word ends just one subject (" Korea", " Island"), the last word
# alone would do.
# Below is what the first word's position alone restores, entering the last block. Where a
# prompt and its corruption share the first word ("New Jersey", "New Mexico"), it is zero: that
# position is the same in both runs.

# %%
two = per_prompt[7]  # positions: <bos> The capital of A B is
group = all_pairs[1]
subjects = [p.attrs["subject"] for p in group.prompts]
same_first = torch.tensor([s.split()[0] == subjects[(i + 1) % len(group)].split()[0]
                           for i, s in enumerate(subjects)])
endings = [p.attrs["subject"].split()[-1] for p in world.capital_prompts()]
ambiguous = torch.tensor([endings.count(s.split()[-1]) > 1 for s in subjects])
first_word = two[n_layers - 1, 4]  # entering the last block, the first word's position alone
last_attn = interventions.patch_span(model, group, "attn_out", n_layers - 1, [6])  # at " is"
for s, v, a, same, amb in zip(subjects, first_word, last_attn, same_first, ambiguous):
    print(f"{s:>14}: first word restores {v:5.2f}, last block's attention at ' is' {a:5.2f}"
          f"{'  (same first word as its corruption)' if same else ''}"
          f"{'  (its last word ends another subject too)' if amb else ''}")
_, two_cache = model.run_with_cache(group.clean, names=[("pattern", n_layers - 1)])
to_first = two_cache["pattern", n_layers - 1][:, :, -1, 4].mean(0)  # (heads,), from " is"
print("last block, attention from ' is' to the first word:", [round(float(a), 2)
                                                              for a in to_first])
differ = ~same_first
not_needed = [s for s, d, amb in zip(subjects, differ, ambiguous) if d and not amb]
assert not_needed == ["South Korea", "Saudi Arabia", "New York", "Rhode Island"]
assert (first_word[differ] > 0.05).all()    # the first word still counts, wherever it differs
assert (last_attn[differ] > 0.05).all() and (to_first > 0.7).sum() >= 2  # read by the last block

# %% [markdown]
# The model does not do the minimum. For every pair whose first words differ, the first word's
# own position still carries a share of the fact entering the last block (above 0.05 on every
# such pair, as printed).
# That includes South Korea, Saudi Arabia, New York and Rhode Island, where the world does not
# need it. The last block's attention reads it: two of its heads look from " is" at the first
# word, and patching that attention output alone restores about the same share. The world says
# what the model *must* use; only the intervention says what it *does*. Meng et al. (2022)
# found a similar shape in GPT-2 XL with causal tracing: facts about a subject are recalled
# around its last token, then moved to the end by attention. The course model does that too,
# but it also moves half the fact in its first block, and reads a two-token subject's first
# word again at the end.

# %% [markdown]
# ## 7. Your experiment: which component carries the capital?
#
# So far the chapter chose what to patch and how to judge it. Now you do, and a check judges
# your *design*, not one number. A design, `claims.Design`, is written down before anything is
# run: a claim with its threshold, the site the intervention acts on (`claims.Site`: a component,
# its layers, its positions, how many), a matched control site, and a `measure(site, sample)`
# that returns one number a prompt. Positions are named, `"subject"` and `"last"`, so the same
# design fits prompts of any wording.
#
# ### Exercise 7.7: the measurement
# 🟠 Medium, 15 minutes. Write `restored_share(site, sample)`: `sample.model` is a model and
# `sample.data` a `PatchingPairs`; patch `site.component` (an activation name such as
# `"mlp_out"`) of *every* layer in `site.layers`, at the positions
# `interventions.named_positions(pairs, site.positions)`, from the clean run into the corrupted
# one, and return the normalised logit difference per prompt, (n,).
#
# *Nudge:* Exercise 7.3's loop body, once, with several layers patched together instead of one.
# Everything must come from the sample: a check runs your function on another model.
#
# *Hint:* cache the clean run with `names=[(site.component, layer) for layer in site.layers]`;
# one hook a layer, `interventions.patch_position(cache[name], positions)`, all in one
# `model.hooks({...})`; then Exercise 7.1's metric with the clean and corrupted baselines.

# %%
@torch.no_grad()
def restored_share(site, sample):
    # BEGIN SOLUTION
    model, pairs = sample.model, sample.data
    positions = interventions.named_positions(pairs, site.positions)
    names = [(site.component, layer) for layer in site.layers]
    _, cache = model.run_with_cache(pairs.clean, names=names)

    def diff(tokens):  # (n,): logit(answer) - logit(wrong) at the last position
        return interventions.answer_logit_diff(model(tokens), pairs.answer, pairs.wrong)

    clean, corrupt = diff(pairs.clean), diff(pairs.corrupt)
    with model.hooks({name: interventions.patch_position(cache[name], positions)
                      for name in names}):
        patched = diff(pairs.corrupt)
    return interventions.normalised(patched, clean, corrupt).cpu()
    # END SOLUTION


# %% tags=["check"]
ch07.check_restored_share(restored_share, model)

# %% [markdown]
# ### Exercise 7.8 (open): design the test
# 🔴 Hard, 20 minutes. Pick a question this chapter raised (does MLP 0 at the subject carry the
# capital? do the heads of blocks 1 to 3 move it to the end?) and write `my_design()`, returning a
# `claims.Design` whose `measure` is your `restored_share`. The check then:
#
# - refuses a design without a control, or with a control that differs from the effect in
#   anything but the kind of component (`claims.check_matched`);
# - runs it on an **untrained** course model, where no component carries any capital: a design
#   that passes there cannot fail, and is refused;
# - runs it on the prompts worded **"The capital city of X is"**, which this chapter never patched:
#   your threshold was fixed before this result. The verdict follows from the intervals (the
#   effect's lower end at or above the threshold, the control's upper end below it, their
#   per-prompt excess above zero). PASS and FAIL are both results.
#
# Once you have seen a verdict, a changed design is refused: a threshold moved after the result
# can always be made to pass. Several designs pass the check; the solution shows one.
#
# *Nudge:* decide what "carries" should mean as a number before you look, and what the same
# intervention on another component of those layers and positions would show if the claim were
# false.
#
# *Hint:* `claims.Design(claims.Claim(statement, metric, threshold, control), effect=claims.Site(
# "mlp_out", (0,), ("subject",)), control=claims.Site("attn_out", (0,), ("subject",)),
# measure=restored_share)`, with a threshold you would defend before seeing the result.

# %%
def my_design():
    # BEGIN SOLUTION
    return claims.Design(
        claims.Claim("MLP 0 at the subject carries a share of the capital",
                     "share of the logit difference restored by patching MLP 0 at the subject",
                     0.3, "the same patch of block 0's attention output at the subject"),
        effect=claims.Site("mlp_out", (0,), ("subject",)),
        control=claims.Site("attn_out", (0,), ("subject",)),
        measure=restored_share)
    # END SOLUTION


# %% tags=["check"]
my_verdict = ch07.check_design(my_design, model)

# %% [markdown]
# A design that cannot fail, kept here because it looks so good. Patching the whole residual
# stream entering block 0 at the subject restores everything, with a matched control near zero:
# but the subject is the only token in which the two prompts differ, so that patch *is* the clean
# prompt, in any model. The check finds it by running it where nothing was learned:

# %%
import textwrap

from mechinterp_course.checks import ExerciseFailed


def too_good():
    return claims.Design(
        claims.Claim("The residual stream at the subject carries the capital",
                     "share restored by patching resid_pre of block 0 at the subject", 0.9,
                     "the same patch of block 0's attention output"),
        effect=claims.Site("resid_pre", (0,), ("subject",)),
        control=claims.Site("attn_out", (0,), ("subject",)),
        measure=interventions.restored_share)  # the package's version of Exercise 7.7


refusal = ""
try:
    ch07.check_design(too_good, model)
except ExerciseFailed as e:
    refusal = str(e)
print(textwrap.fill(refusal, 96))
assert "passes on the same prompts on an untrained model" in refusal

# %% [markdown]
# ## Summary
#
# - Activation patching (clean into corrupted, normalised) traced the capital from the subject
#   token to the final position along two routes: in block 0 (MLP 0 at the subject, and heads
#   L0H2 and L0H1 reading the subject's token from " is") and in block 2 (head L2H0).
# - Attention is not importance: five heads look at the subject, and patching them restores
#   from almost nothing to the most of any head; L2H1 looks almost as hard as L2H0 and
#   restores less than a third as much.
# - Ablations differ: zero ablation overstated L0H0; zero and mean ablation missed L2H0, which
#   has a backup; resample ablation exposed it. L0H2 is needed under all three.
# - Probes must hold out subjects; even then, a probe shows what is decodable, and only removing
#   its directions (with a random control) shows what the model uses: continent information at
#   the country is used in the embedding, much less once block 0 has copied the country onward,
#   and is decodable but unused from the last block on.
# - Across all 120 capitals, each prompt follows the route found on average (the world says what
#   the answer is, not where it is computed); two-token subjects also have their first word read
#   by the last block.
#
# **Next:** chapter 08 turns these tools into a method: claims stated as tests, and findings
# checked across architectures and seeds.
#
# **Further reading:** Meng et al. (2022), *Locating and Editing Factual Associations in GPT*
# (causal tracing); Wang et al. (2022), the IOI circuit (path patching, backups); Heimersheim
# and Nanda (2024), *How to use and interpret activation patching*; Zhang and Nanda (2024),
# *Towards Best Practices of Activation Patching*; Belinkov (2022), *Probing Classifiers:
# Promises, Shortcomings, and Advances*; Elazar et al. (2021), *Amnesic Probing*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** the noising grid (corrupted into clean) beside the denoising grid of Exercise 7.3,
#   and where they disagree.
# - **Extend:** a control task for the probe (Hewitt and Liang 2019): the same probe on labels
#   assigned to subjects at random; report selectivity, the accuracy above it.
# - **Replicate:** Meng et al. (2022)'s causal tracing with Gaussian noise on the subject's
#   embedding instead of a corrupted subject, and compare with section 3's grid.
# - **Open question:** for two-token subjects, which token carries more of the capital? Design it
#   with Exercise 7.8's check in mind: effect, matched control, threshold first.
