# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 Sparse autoencoders
#
# Chapter 05 showed that neurons mix unrelated features, and why: a network stores more sparse
# features than it has dimensions. A **sparse autoencoder** (SAE) tries to undo that. It learns a
# dictionary of many more directions than the activation has dimensions, and explains each
# activation as a sum of only a few of them. If the network really stores sparse features as
# directions, the dictionary should find them. In this chapter you build an SAE, check on
# synthetic data with *known* features that it recovers them, then train one on the course
# model's residual stream and measure how good it is.
#
# **You will be able to:** write an SAE with ReLU latents and an L1 penalty, and the TopK
# variant; write its training step; measure reconstruction (fraction of variance explained),
# sparsity (L0), dead latents and the loss when the SAE replaces the activation; and check a
# dictionary against ground truth.
#
# **Time:** about 150 minutes. **Prerequisites:** chapters 03 and 05.

# %%
import collections

import matplotlib.pyplot as plt

from mechinterp_course import (claims, lens, neurons, provenance, sae, sae_sweep, viz, widgets,
                               world)
from mechinterp_course.checks import ch06, yours

model = mc.load_model("course", device=device)

# %% [markdown]
# ## 1. The autoencoder
#
# For an activation `x` (d_in), the SAE computes latents and a reconstruction:
#
# $$f = \sigma\big((x - b_{dec}) W_{enc} + b_{enc}\big), \qquad \hat x = f\, W_{dec} + b_{dec}$$
#
# with `W_enc` (d_in, d_sae), `W_dec` (d_sae, d_in), each row of `W_dec` one dictionary
# direction, and d_sae several times d_in. Two choices of σ keep `f` sparse:
#
# - **ReLU**, plus an L1 penalty on `f` in the loss (the first recipe, Bricken et al. 2023);
# - **TopK**: keep the `k` largest pre-activations (through a ReLU), zero the rest (Gao et al.
#   2024), so each input uses at most `k` latents by construction.
#
# ### Exercise 6.1: the encoder
# 🟢 Easy, 15 minutes. Write `encode(x, W_enc, b_enc, b_dec, k=None)`: ReLU latents when `k` is
# None, else TopK latents, shape (..., d_sae).
#
# *Nudge:* Subtract the decoder bias first, then the affine map. For TopK, keep each row's k largest
# pre-activations in place and zero the rest.
#
# *Hint:* `pre.topk(k, dim=-1)` gives values and indices; `torch.zeros_like(pre).scatter(-1,
# indices, values)` puts them back.

# %%
def encode(x, W_enc, b_enc, b_dec, k=None):
    # BEGIN SOLUTION
    pre = (x - b_dec) @ W_enc + b_enc  # (..., d_sae)
    if k is None:
        return torch.relu(pre)
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    # END SOLUTION


# %% tags=["check"]
ch06.check_encode(encode)

# %% [markdown]
# ### Exercise 6.2: the L1 loss
# 🟢 Easy, 10 minutes. Write `l1_loss(x, x_hat, f, W_dec, l1_coeff)`: the squared error summed
# over d_in, plus `l1_coeff` times the sum over latents of `f_i * ||W_dec[i]||`, both averaged over
# the batch. (Without the decoder norms, the SAE could make `f` tiny and `W_dec` huge and pay no
# penalty.)
#
# *Nudge:* Two terms, each averaged over the batch: the reconstruction error summed over input
# dimensions, and every latent's activation weighted by the length of its decoder row.
#
# *Hint:* `W_dec.norm(dim=1)` is each latent's decoder norm, (d_sae,).

# %%
def l1_loss(x, x_hat, f, W_dec, l1_coeff):
    # BEGIN SOLUTION
    mse = (x_hat - x).pow(2).sum(-1).mean()
    sparsity = (f * W_dec.norm(dim=1)).sum(-1).mean()
    return mse + l1_coeff * sparsity
    # END SOLUTION


# %% tags=["check"]
ch06.check_l1_loss(l1_loss)

# %% [markdown]
# ### Exercise 6.3: the training step
# 🟠 Medium, 15 minutes. Write `train_step(sae, opt, x, l1_coeff)` for an `sae.SAE` module
# (`sae(x)` returns `(x_hat, f)`; `sae.k` is None for ReLU): compute the loss (your L1 loss for
# ReLU, the plain squared error summed over d_in and averaged over the batch for TopK), take one
# optimiser step, and for ReLU renormalise the rows of `sae.W_dec` to unit norm afterwards.
# Return the loss.
#
# *Nudge:* One ordinary optimiser step, plus one thing after it for ReLU SAEs: the decoder rows go
# back to unit norm, outside autograd.
#
# *Hint:* `opt.zero_grad()`, `loss.backward()`, `opt.step()`; the renormalisation goes under
# `torch.no_grad()`.

# %%
def train_step(sae_module, opt, x, l1_coeff):
    # BEGIN SOLUTION
    x_hat, f = sae_module(x)
    if sae_module.k is None:
        loss = l1_loss(x, x_hat, f, sae_module.W_dec, l1_coeff)
    else:
        loss = (x_hat - x).pow(2).sum(-1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if sae_module.k is None:
        with torch.no_grad():
            sae_module.W_dec /= sae_module.W_dec.norm(dim=1, keepdim=True)
    return loss.detach()
    # END SOLUTION


# %% tags=["check"]
ch06.check_train_step(train_step)

# %% [markdown]
# ## 2. How good is a dictionary?
#
# Three numbers, read on held-out activations:
#
# - **fraction of variance explained** (FVE): 1 minus the squared error over the squared
#   deviations from the mean activation (explaining the mean alone scores 0);
# - **L0**: the mean number of active latents per input (sparsity);
# - **dead latents**: the fraction that never activate (wasted capacity).
#
# ### Exercise 6.4: the metrics
# 🟢 Easy, 10 minutes. Write `sae_metrics(x, x_hat, f)` returning `(fve, l0, dead)`.
#
# *Nudge:* Fraction of variance explained compares the error with the spread of x around its mean;
# L0 counts the active latents of an example; a dead latent is active for no example of the batch.
#
# *Hint:* `(f != 0)` is the activity mask: sum it over latents for L0, over the batch for dead
# latents.

# %%
def sae_metrics(x, x_hat, f):
    # BEGIN SOLUTION
    fve = 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    l0 = (f != 0).float().sum(-1).mean()
    dead = (f != 0).sum(0).eq(0).float().mean()
    return fve, l0, dead
    # END SOLUTION


# %% tags=["check"]
ch06.check_metrics(sae_metrics)

# %% [markdown]
# ## 3. Ground truth first: known features
#
# Before trusting an SAE on a real model, test it where the answer is known. Make 64 random
# unit-norm feature directions in 32 dimensions, and activations that are sums of about three of
# them at a time with random strengths. Train both variants (with `sae.train`, the loop around the
# package's copy of your step) and ask: for each true feature, how close is the nearest learned
# direction? The mean of those best cosine similarities (MMCS) is 1 for perfect recovery.

# %% tags=["timing"]
true_features = sae.synthetic_features(64, 32, seed=0)
toys = {"ReLU + L1": sae.SAE(32, 128, k=None, seed=0), "TopK (k=4)": sae.SAE(32, 128, k=4, seed=0)}
toy_results = {name: sae.train(s, sae.synthetic_batches(true_features, 512, active=3, seed=1),
                               steps=1500, lr=3e-3, l1_coeff=0.3, desc=name)
               for name, s in toys.items()}

# %% [markdown]
# ### Exercise 6.6: did the dictionary find the features?
# 🟢 Easy, 10 minutes. Write `mean_max_cosine(learned, true)`: learned (n_latents, d) and true
# (n_features, d), rows of any norm. For each true feature, its best cosine similarity with any
# learned direction; return their mean, a scalar tensor.
#
# *Nudge:* the question is asked of each *true* feature: did some latent find it? Cosines, so
# lengths must not matter; and a dictionary may have more latents than there are features.
#
# *Hint:* normalise the rows of both; `true_unit @ learned_unit.T` is (n_features, n_latents);
# `.max(dim=1).values.mean()`.

# %%
def mean_max_cosine(learned, true):
    # BEGIN SOLUTION
    a = learned / learned.norm(dim=1, keepdim=True).clamp(min=1e-8)
    b = true / true.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return (b @ a.T).max(dim=1).values.mean()  # (n_features, n_latents) -> best, averaged
    # END SOLUTION


# %% tags=["check"]
ch06.check_mean_max_cosine(mean_max_cosine)

# %% [markdown]
# Each SAE's score, with your function once its check has passed, and the null beside it: a
# dictionary of the same shape whose directions are random.

# %%
mmcs_of = yours("Exercise 6.6", mean_max_cosine, sae.mean_max_cosine)
random_dictionary = torch.randn(128, 32, generator=torch.Generator().manual_seed(1))  # seed: not 0
null_mmcs = float(mmcs_of(random_dictionary, true_features))
print(f"a random dictionary of {len(random_dictionary)} directions: MMCS {null_mmcs:.3f}")
mmcs = {}
for name, s in toys.items():
    mmcs[name] = float(mmcs_of(s.W_dec.detach(), true_features))
    r = toy_results[name]
    print(f"{name:11} MMCS {mmcs[name]:.3f}  FVE {r.fve:.3f}  L0 {r.l0:.1f}  dead {r.dead:.0%}")
    assert mmcs[name] >= 0.95 > null_mmcs + 0.2  # found, far beyond a random dictionary

best_cos = (true_features @ (toys["TopK (k=4)"].W_dec.detach().T
                             / toys["TopK (k=4)"].W_dec.detach().norm(dim=1))).max(1).values
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.hist(best_cos, bins=20, range=(0.5, 1))
ax.set(xlabel="best cosine with a learned direction", ylabel="true features",
       title="TopK SAE: every true feature is recovered")
plt.show()

# %% [markdown]
# Both recover the features almost exactly. The dictionary has twice as many latents as there are
# features, so recovery does not need every latent; the few dead ones cost nothing here.
#
# ## 4. The course model's residual stream
#
# Now activations whose features nobody wrote down: the residual stream after block 1 of the
# course model, over world text. They are collected once into a file in this folder
# (`sae_activations/`, about 100 MB) and read memory-mapped, so memory stays bounded; a second run
# reuses the file.

# %% tags=["timing"]
site = ("resid_post", 1)
acts = sae.collect_activations(model, site, "sae_activations/resid_post_1.bin",
                               n_tokens=200_000, seed=1)
train_acts, held_out = acts[:180_000], acts[180_000:].clone()
print(tuple(acts.shape), f"mean norm {acts[:10_000].norm(dim=1).mean():.1f}")

# %% [markdown]
# Train a TopK SAE with 1,024 latents (8x the residual width) and k = 24, starting `b_dec` at
# the mean activation.

# %% tags=["timing"]
topk = sae.SAE(model.cfg.d_model, 1024, k=24, seed=0)
with torch.no_grad():
    topk.b_dec.copy_(train_acts[:20_000].mean(0))
topk_run = sae.train(topk, sae.batches_from(train_acts, 1024, seed=0), steps=600, lr=2e-3,
                     desc="TopK SAE on resid_post 1")

# %%
with torch.no_grad():
    x_hat, f = topk(held_out)
    fve, l0, dead = (float(v) for v in (sae.fraction_of_variance_explained(held_out, x_hat),
                                        sae.mean_l0(f), sae.dead_fraction(f)))
print(f"held out: FVE {fve:.3f}, L0 {l0:.1f}, dead latents {dead:.1%}")
assert fve >= 0.90 and l0 <= 32 and dead <= 0.05

fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(topk_run.losses)
ax.set(xlabel="step", ylabel="squared error", yscale="log", title="TopK SAE training")
plt.show()

# %% [markdown]
# Reconstruction is only a proxy. What matters is whether the model still works when the SAE's
# reconstruction *replaces* the activation: splice it in with a hook and measure the next-token
# loss, against the clean model and against zero-ablating the whole residual stream at that
# point. The **loss recovered** is the fraction of the gap the SAE closes:
# `(zero - spliced) / (zero - clean)`.
#
# ### Exercise 6.5: the spliced loss
# 🟠 Medium, 15 minutes. Write `spliced_loss(model, sae_module, site, tokens)`: the mean
# next-token loss (cross-entropy of the logits at each position against the next token) when the
# activation at `site`, e.g. `("resid_post", 1)`, is replaced by `sae_module(x)[0]`.
#
# *Nudge:* Splice the SAE's reconstruction in place of the activation during the forward pass, then
# score each position's prediction of the next token.
#
# *Hint:* `with model.hooks({site: hook}): logits = model(tokens)`, with a hook `fn(x)` that
# returns the replacement.

# %%
def spliced_loss(model, sae_module, site, tokens):
    # BEGIN SOLUTION
    with torch.no_grad(), model.hooks({site: lambda x: sae_module(x)[0]}):
        logits = model(tokens)  # (batch, pos, d_vocab)
    logprobs = logits[:, :-1].log_softmax(-1)
    return -logprobs.gather(-1, tokens[:, 1:, None]).mean()
    # END SOLUTION


# %% tags=["check"]
ch06.check_spliced_loss(spliced_loss, model)

# %% [markdown]
# `sae.loss_recovered` measures all three losses with the package's version of your function:

# %%
eval_tokens = torch.stack([
    model.to_tokens(d.text)[0, :24] for d in world.documents(999, 200)
    if model.to_tokens(d.text).shape[1] >= 24][:64]).to(device)
recovered = sae.loss_recovered(model, topk, site, eval_tokens)
print({k: round(v, 3) for k, v in recovered.items()})
assert recovered["recovered"] > 0.8

# %% [markdown]
# The ReLU + L1 variant, for comparison, with the penalty set (by trying a few) to land near the
# same L0:

# %% tags=["timing"]
relu = sae.SAE(model.cfg.d_model, 1024, k=None, seed=0)
with torch.no_grad():
    relu.b_dec.copy_(train_acts[:20_000].mean(0))
relu_run = sae.train(relu, sae.batches_from(train_acts, 1024, seed=0), steps=600, lr=2e-3,
                     l1_coeff=3.0, desc="ReLU + L1 SAE on resid_post 1")

# %%
with torch.no_grad():
    rx, rf = relu(held_out)
    r_fve, r_l0, r_dead = (float(v) for v in (
        sae.fraction_of_variance_explained(held_out, rx), sae.mean_l0(rf), sae.dead_fraction(rf)))
print(f"ReLU + L1 held out: FVE {r_fve:.3f}, L0 {r_l0:.1f}, dead {r_dead:.1%}")
print(f"TopK      held out: FVE {fve:.3f}, L0 {l0:.1f}, dead {dead:.1%}")
assert r_l0 < 40 and fve > r_fve and l0 < r_l0  # TopK: more variance from fewer latents

# %% [markdown]
# At a comparable sparsity, TopK explains more of the variance with fewer active latents: the L1
# penalty also shrinks the latents it keeps, which costs reconstruction, while TopK only decides
# which latents fire. That, and not having to tune a penalty, is why recent SAEs use it.

# %% [markdown]
# ## 5. What does a latent mean? Ground truth per token
#
# The world knows what every token is: the country named in a sentence (and its continent), a
# capital, a language, a state, a person's name, a water noun, a Python keyword, a day or month,
# a number, a symbol of the rule sequences (`NeuronData.token_labels`). So "this latent means
# water" is a claim we can score: treat a unit's activation as a detector for a label and compute
# its **AUROC**, the chance that a random token with the label outscores a random token without
# it (1 is a perfect detector, 0.5 chance). For each label take the best single latent, and
# compare it with the best single MLP neuron on the same tokens: if superposition hides
# features from neurons, the SAE's latents should be the better detectors.
#
# The comparison must be like with like. The best of more candidates is higher by chance alone,
# so the neurons get as many candidates as the SAE has latents, 1,024, from the right place: the
# MLPs of blocks 0 and 1, the ones that write into `resid_post 1`, not later blocks that read
# it. And both are judged against a **null**: 1,024 random directions in the same residual
# stream, scored by projection. A latent that beats a random direction has found something; a
# latent that only matches one has not. (The table also shows the best of all 2,048 neurons of
# all four blocks, the unmatched comparison, to see what it changes.)

# %%
labelled = neurons.collect(model, docs_per_family=40, seed=300, site=site, skip_first=1)
neuron_data = neurons.collect(model, docs_per_family=40, seed=300, skip_first=1)
assert torch.equal(labelled.token_ids, neuron_data.token_ids)  # the same tokens
labels = labelled.token_labels()
with torch.no_grad():
    latents = topk.encode(labelled.acts)  # (tokens, 1024)
    pre_topk = (labelled.acts - topk.b_dec) @ topk.W_enc + topk.b_enc  # before TopK's cut

upstream = neuron_data.acts[:, : (site[1] + 1) * model.cfg.d_mlp]  # blocks 0-1: (tokens, 1024)
assert upstream.shape[1] == latents.shape[1]  # as many neurons as latents
random_dirs = claims.random_directions(latents.shape[1], topk.W_enc[:, 0],
                                       torch.Generator().manual_seed(0))  # (1024, d_model)
random_scores = labelled.acts @ random_dirs.T  # (tokens, 1024) projections, like pre_topk

label_matrix = torch.stack(list(labels.values()), dim=1)  # (tokens, labels)
best_auc = {name: neurons.auroc(scores, label_matrix).max(dim=1)  # each label's best unit
            for name, scores in dict(latent=latents, encoder=pre_topk, random=random_scores,
                                     neuron=upstream, all_neuron=neuron_data.acts).items()}
rows = []
for i, (name, is_label) in enumerate(labels.items()):
    best = int(best_auc["latent"].indices[i])
    fires = latents[:, best] > 0
    rows.append(dict(label=name, tokens=int(is_label.sum()), latent=best,
                     **{f"{kind}_auc": float(v.values[i]) for kind, v in best_auc.items()},
                     precision=float((fires & is_label).sum() / fires.sum()),
                     recall=float((fires & is_label).sum() / is_label.sum())))

print(f"{'label':25} {'tokens':>6} {'latent':>6} {'AUROC':>6} {'prec':>5} {'recall':>6} "
      f"{'encoder':>7} {'random':>6} {'neuron':>6} {'any neuron':>10}")
for r in rows:
    print(f"{r['label']:25} {r['tokens']:6} {r['latent']:6} {r['latent_auc']:6.3f} "
          f"{r['precision']:5.2f} {r['recall']:6.2f} {r['encoder_auc']:7.3f} "
          f"{r['random_auc']:6.3f} {r['neuron_auc']:6.3f} {r['all_neuron_auc']:10.3f}")

fig, ax = plt.subplots(figsize=(10, 3.2))
x = torch.arange(len(rows)).float()
for i, (key, text) in enumerate([("latent_auc", "best SAE latent"),
                                 ("encoder_auc", "best encoder score, before TopK"),
                                 ("neuron_auc", "best MLP neuron of blocks 0-1"),
                                 ("random_auc", "best random direction (null)")]):
    ax.bar(x + (i - 1.5) * 0.2, [r[key] for r in rows], width=0.2, label=text)
ax.axhline(0.95, color="grey", lw=0.8, ls="--")
ax.set_xticks(x, [r["label"] for r in rows], rotation=40, ha="right", fontsize=8)
ax.set(ylim=(0.6, 1.08), ylabel="AUROC", title="Best single detector of each world label")
ax.legend(fontsize=8, loc="upper left", ncol=4)
plt.show()

# %% [markdown]
# Read the table before believing the story in the paragraph above.

# %%
latent_auc = torch.tensor([r["latent_auc"] for r in rows])
encoder_auc = torch.tensor([r["encoder_auc"] for r in rows])
neuron_auc = torch.tensor([r["neuron_auc"] for r in rows])
all_neuron_auc = torch.tensor([r["all_neuron_auc"] for r in rows])
random_auc = torch.tensor([r["random_auc"] for r in rows])
precision = torch.tensor([r["precision"] for r in rows])
n = len(rows)
print(f"labels with a latent at AUROC >= 0.95: {int((latent_auc >= 0.95).sum())}/{n}; "
      f"with an encoder score >= 0.95: {int((encoder_auc >= 0.95).sum())}/{n}; "
      f"median precision of the best latent: {precision.median():.2f}")
print(f"best latent ahead of the best random direction: {int((latent_auc > random_auc).sum())}"
      f"/{n} (median excess {(latent_auc - random_auc).median():+.3f}); encoder score ahead: "
      f"{int((encoder_auc > random_auc).sum())}/{n} "
      f"(median excess {(encoder_auc - random_auc).median():+.3f})")
print(f"best neuron of blocks 0-1 ahead of the best latent: {int((neuron_auc > latent_auc).sum())}"
      f"/{n}; of any block: {int((all_neuron_auc > latent_auc).sum())}/{n}")
assert (random_auc > latent_auc).sum() > n / 2     # random directions beat the best latent
assert (encoder_auc - random_auc).median() < 0.02   # the encoder's directions: no better
assert (encoder_auc > latent_auc - 0.01).all()     # the cut never helps (beyond ties at 0) ...
assert (encoder_auc > latent_auc + 0.02).sum() > n / 2  # ... and on most labels it costs
assert (neuron_auc > latent_auc).sum() > n / 2     # matched neurons beat the best latent
assert precision.median() < 0.5                    # the best latents fire on much else too

# One broad label, token by token: each Python keyword seen at least 5 times, on its own
keyword = labels["Python keyword"]
counts = collections.Counter(labelled.token_ids[keyword].tolist())
keyword_latents = {}  # keyword token -> (best latent, its AUROC)
for keyword_id, count in counts.items():
    if count >= 5:
        auc = neurons.auroc(latents, keyword & (labelled.token_ids == keyword_id))
        keyword_latents[model.to_string(keyword_id)] = (int(auc.argmax()), float(auc.max()))
distinct = {lat for lat, _ in keyword_latents.values()}
worst = min(a for _, a in keyword_latents.values())
label_auc = next(r["latent_auc"] for r in rows if r["label"] == "Python keyword")
print(f"Python keyword as one label: best latent AUROC {label_auc:.3f}; its "
      f"{len(keyword_latents)} frequent tokens one by one: AUROC >= {worst:.3f} with "
      f"{len(distinct)} different latents")
assert label_auc < 0.9                              # no latent for the label as a whole ...
assert worst >= 0.95                                # ... but a clean one for each keyword
assert len(distinct) >= 0.8 * len(keyword_latents)  # ... almost always a different one

# %% [markdown]
# Findings, each asserted above:
#
# - **Against the null, the best latent is no better than chance.** On most labels the best of
#   1,024 random directions detects the label better than the best of the SAE's 1,024 latents.
#   AUROC's own chance level, 0.5, was the wrong yardstick: for the best of a thousand
#   candidates in a residual stream that still carries each token's embedding, chance is far
#   higher. These labels are mostly sets of tokens, and almost any direction separates some
#   tokens from others.
# - The latent's *encoder direction*, read before TopK's cut, does better than the latent, but
#   no better than random directions (the median excess printed above): TopK's competition
#   silences the latent on some of the label's tokens, and the direction itself is not special
#   for these labels.
# - Broad labels are split across several latents (**feature splitting**). "Python keyword"
#   shows it best. No latent detects the label as a whole well (AUROC below 0.9), yet almost
#   every keyword token that occurs often (`def`, `return`, `range`, ...) has a latent of its
#   own that detects it nearly perfectly. The label-shaped latent we hoped for does not exist;
#   the keyword-shaped ones do. They are not something the model learned, though: an SAE
#   trained on an *untrained* model's residual stream (`mc.load_model("course-untrained")`;
#   the course's tests run this chapter on it, `tests/test_asserts_can_fail.py`) has them too,
#   because which token sits at a position is in every model's residual stream.
# - The best MLP neuron beats the best latent on most labels, also when matched: as many
#   neurons as latents, from the two blocks that write the SAE's site. Pooling all four blocks
#   (the last column) changes little here, but it is the unmatched comparison.
#
# So on this model and site, "SAE latents are the monosemantic units that neurons are not" is
# *not* borne out for these labels, and a label detector has to beat random directions before
# it says anything. It is the kind of claim that the world's ground truth lets us test rather
# than illustrate; larger studies report similar results, for example that SAE latents rarely
# beat simple baselines as probes (Kantamneni et al. 2025). The keyword latents are what the SAE
# did find: units finer than our labels.
#
# How far a label is split depends on the dictionary's width: a wide dictionary can afford one
# latent for European countries and another for Asian ones, where a narrow one must use a single
# latent for "country name". Train two narrow TopK SAEs (128 latents, as many as the residual
# stream has dimensions, k = 32; two seeds) on the same activations and count again:

# %% tags=["timing"]
narrow_counts, narrow_fves = [], []
for seed in (0, 1):  # the recipe above, packaged as `sae_sweep.train_topk`
    narrow = sae_sweep.train_topk(train_acts, 128, k=32, seed=seed, progress=True,
                                  desc=f"narrow TopK SAE, seed {seed}")
    with torch.no_grad():
        narrow_fves.append(float(sae.fraction_of_variance_explained(held_out,
                                                                    narrow(held_out)[0])))
    aucs = sae_sweep.label_aurocs(narrow, labelled.acts, labels)  # best latent per label
    narrow_counts.append(sum(a >= 0.95 for a in aucs.values()))
    print(f"128 latents, seed {seed}: held-out FVE {narrow_fves[-1]:.3f}; labels with a latent "
          f"at AUROC >= 0.95: {narrow_counts[-1]}/{n}")
wide_count = int((latent_auc >= 0.95).sum())
print(f"1,024 latents: {wide_count}/{n}")
null_count = int((neurons.auroc(random_scores[:, :128], label_matrix).max(dim=1).values
                  >= 0.95).sum())
print(f"the null, 128 random directions: {null_count}/{n}")
assert min(narrow_counts) > wide_count  # narrower dictionary, broader latents
assert min(narrow_fves) > 0.9             # ... and still a good reconstruction
assert null_count > wide_count            # but 128 random directions beat the wide SAE too

# %% [markdown]
# The narrow dictionaries have single latents for more of the labels, and still reconstruct
# well; how many, and which, moves with the seed. But read the counts against their null: 128
# random directions (the printed line) reach AUROC 0.95 on more labels than the wide SAE's
# 1,024 latents do, and about as many as the narrow SAEs'. With two seeds and no interval, the
# narrow SAEs' lead over random directions is not established: "a latent at AUROC >= 0.95"
# is a weak criterion on this model, and the sweep below uses it.
#
# ### Is it this SAE, or SAEs? A sweep
#
# Three SAEs are three draws. Perhaps another site, width or k would give a latent per label.
# `python -m mechinterp_course.sae_sweep` trained SAEs with this section's recipe over a grid:
# six sites (the residual stream after each block, and the MLP neurons of blocks 1 and 2), four
# widths, three values of k and two seeds, each scored on the same labelled tokens. It takes
# about half an hour, so its table ships with the package. Three of its rows are the SAEs you
# just trained: check them before trusting the rest.

# %%
sweep_table = sae_sweep.load_results()
sweep_runs = sweep_table["runs"]


def sweep_row(site, width, k, seed):
    return next(r for r in sweep_runs
                if (tuple(r["site"]), r["width"], r["k"], r["seed"]) == (site, width, k, seed))


# Another processor sums in another order, so "the same" is within a tolerance, and the
# tolerance is measured: the table's meta records how far the same SAEs moved when trained under
# a second set of CPU kernels (`ATEN_CPU_CAPABILITY=default`). Another CPU can also change the
# matrix-multiply kernels, which that measurement does not cover, so allow twice the measured
# spread, and at least one label (a label at the 0.95 line may flip) and 0.005 of FVE.
spread = sweep_table["meta"]["cross_kernel"]
tol_labels, tol_fve = max(1, 2 * spread["detected"]), max(0.005, 2 * spread["fve"])
print(f"measured across kernel sets {spread['kernel_sets']} on {spread['saes']} SAEs: labels "
      f"{spread['detected']}, FVE {spread['fve']}; tolerance: {tol_labels} labels, FVE {tol_fve}")
trained_here = {(1024, 24, 0): (wide_count, fve), (128, 32, 0): (narrow_counts[0], narrow_fves[0]),
                (128, 32, 1): (narrow_counts[1], narrow_fves[1])}
for (width, k, seed), (count, here_fve) in trained_here.items():
    row = sweep_row(site, width, k, seed)
    print(f"{width:5} latents, k {k}, seed {seed}: labels {count} here, {row['detected']} in the "
          f"table; FVE {here_fve:.3f} here, {row['fve']:.3f} in the table")
    assert abs(count - row["detected"]) <= tol_labels and abs(here_fve - row["fve"]) <= tol_fve, (
        provenance.mismatch_message(f"the SAE with {width} latents, k {k}, seed {seed}",
                                    sweep_table["meta"]))

# %% [markdown]
# Now the whole grid, keeping the SAEs that meet this chapter's bar (FVE at least 0.90, L0 at
# most 32, dead latents at most 5%):

# %%
fair = [r for r in sweep_runs if r["fve"] >= 0.9 and r["l0"] <= 32 and r["dead"] <= 0.05]
sites = list(dict.fromkeys(tuple(r["site"]) for r in sweep_runs))
shapes = list(dict.fromkeys((r["width"], r["k"]) for r in sweep_runs))
counts = torch.full((len(sites), len(shapes)), float("nan"))
by_seed = collections.defaultdict(list)  # (site, width, k) -> labels detected, one per seed
for r in fair:
    by_seed[(tuple(r["site"]), r["width"], r["k"])].append(r["detected"])
for (where, width, k), found in by_seed.items():
    counts[sites.index(where), shapes.index((width, k))] = sum(found) / len(found)

fig, ax = plt.subplots(figsize=(10, 3.0))
viz.heatmap(ax, counts, xlabels=[f"{w}\nk={k}" for w, k in shapes],
            ylabels=[f"{name} {layer}" for name, layer in sites], cmap="Blues", vmin=0, vmax=n,
            fmt="{:.1f}", title=f"Labels (of {n}) with a latent at AUROC >= 0.95, mean over seeds")
ax.set_xlabel("latents and k (blank: no SAE there meets the FVE / L0 / dead bar)")
plt.show()

majority = n // 2 + 1
reliable = {c: found for c, found in by_seed.items() if len(found) == 2 and min(found) >= majority}
any_run = {name for r in fair for name, a in r["aurocs"].items() if a >= 0.95}
detected = torch.tensor([float(r["detected"]) for r in fair])
print(f"{len(fair)} of {len(sweep_runs)} SAEs meet the bar; labels with a latent: at most "
      f"{detected.max():.0f}/{n}, median {detected.median():.0f}")
for width in sae_sweep.WIDTHS:
    some = [r["detected"] for r in fair if r["width"] == width]
    print(f"{width:5} latents: {sum(c >= majority for c in some):2} of {len(some)} SAEs have a "
          f"latent for most labels ({majority}+)")
print("settings that manage it on both seeds:",
      {f"{name} {layer}, {width} latents, k={k}": found
       for ((name, layer), width, k), found in reliable.items()})
print(f"labels that some SAE detects: {len(any_run)}/{n}; none: {sorted(set(labels) - any_run)}")
narrowest = min(sae_sweep.WIDTHS)
assert len(fair) > len(sweep_runs) / 2              # most of the grid is a fair test
assert reliable and all(width == narrowest for _, width, _ in reliable)  # only the narrowest ...
assert (site, 128, 32) in reliable                  # ... this section's narrow setting among them
narrow_runs = [r["detected"] for r in fair if r["width"] == narrowest]
assert sum(c >= majority for c in narrow_runs) < len(narrow_runs) / 2  # ... but not most of them
assert all(r["detected"] < majority for r in fair if r["width"] >= 4 * model.cfg.d_model)
assert len(any_run) > n / 2 and "Python keyword" not in any_run  # most labels, in *some* SAE
fve_by_width = {w: torch.tensor([r["fve"] for r in fair if r["width"] == w]).median()
                for w in sae_sweep.WIDTHS}
assert fve_by_width[max(sae_sweep.WIDTHS)] > fve_by_width[narrowest]  # wider reconstructs better

# %% [markdown]
# So it is not one unlucky SAE, and the answer to "is there a latent for each label?" depends on
# the dictionary's width more than on anything else in the grid:
#
# - **Narrow dictionaries** (as many latents as the residual stream has dimensions) are the only
#   ones in which most labels get a near-perfect latent on both seeds. Even there it holds in a
#   few settings only, this section's among them, not in most of the narrow SAEs.
# - **Wider dictionaries** split the labels: from four times the stream's width on, no SAE in the
#   grid has a latent for most labels. Reconstruction does not suffer; the labels are simply
#   carved into finer pieces (the Python keywords above).
# - A few labels (printed above) get no such latent anywhere in the grid. "Python keyword" is one,
#   and section 5 showed why: each keyword has a latent of its own, finer than the label.
#
# There is no "right" width: each width carves the same activations at a different grain, and a
# label-shaped latent is one grain among several, not something training is bound to find.
#
# ### The sweep against its null
#
# Those counts say how the SAEs compare with one another, not with chance. As the narrow SAEs
# above showed, random directions reach AUROC 0.95 on many of these labels, and the more
# directions, the more labels. So the sweep also scored, for every site and width and two seeds,
# as many random directions as the SAE has latents, on the same tokens. The rule, fixed before
# the null was run: a setting (site, width, k) **beats its null** when on both seeds its SAE
# detects more labels than the better of the null's two seeds. With two seeds a side there is no
# interval; 72 settings are compared at once, so read the result as exploration, a count of
# settings, not as 72 confirmed claims.

# %%
null_found = collections.defaultdict(list)  # (site, width) -> labels detected, one per seed
for r in sweep_table["nulls"]:
    null_found[(tuple(r["site"]), r["width"])].append(r["detected"])
beats = {c: found for c, found in by_seed.items()
         if len(found) == 2 and min(found) > max(null_found[c[:2]])}
print(f"{'site':14} {'latents':>7} {'null (2 seeds)':>15} {'SAEs meeting the bar (k: seeds)'}")
for where in sites:
    for width in sae_sweep.WIDTHS:
        saes = {k: found for (w_site, w, k), found in by_seed.items()
                if (w_site, w) == (where, width)}
        print(f"{where[0] + ' ' + str(where[1]):14} {width:>7} "
              f"{str(null_found[(where, width)]):>15}  "
              + ", ".join(f"k={k}: {found}" + (" beats" if (where, width, k) in beats else "")
                          for k, found in sorted(saes.items())))
null_mean = {w: torch.tensor([float(sum(v) / len(v)) for (_, width), v in null_found.items()
                              if width == w]).mean() for w in sae_sweep.WIDTHS}
print("the null's mean count by width:", {w: round(float(m), 1) for w, m in null_mean.items()})
print(f"settings that beat their null: {len(beats)} of {len(by_seed)}; widths among them: "
      f"{sorted(collections.Counter(w for _, w, _ in beats).items())}")
margin = {c: min(found) - max(null_found[c[:2]]) for c, found in beats.items()}
clear = {c: m for c, m in margin.items() if m > spread["detected"]}  # beyond a kernel's reach
print(f"their margins over the null, in labels: {sorted(margin.values())}; a second kernel set "
      f"moved a count by up to {spread['detected']}; beyond that: "
      + ", ".join(f"{name} {layer}, {w} latents, k={k}" for (name, layer), w, k in clear))
widest = max(sae_sweep.WIDTHS)
assert all(null_mean[a] < null_mean[b] for a, b in zip(sae_sweep.WIDTHS, sae_sweep.WIDTHS[1:]))
assert all(sum(found) / len(found) < sum(null_found[c[:2]]) / 2  # the widest SAEs: below chance
           for c, found in by_seed.items() if c[1] == widest)
assert beats and not any(w == widest for _, w, _ in beats)
assert sum(w == narrowest for _, w, _ in beats) > len(beats) / 2  # most that beat it: narrow
assert sum(m <= spread["detected"] for m in margin.values()) > len(margin) / 2  # most: narrowly
assert clear and all(w == narrowest for _, w, _ in clear)  # and only narrow ones clearly

# %% [markdown]
# Against its null, the sweep's picture changes:
#
# - The null rises with the number of directions, and the SAEs do not keep up: every one of the
#   widest dictionaries detects fewer labels than as many random directions do. A wide SAE's
#   latents are, for these labels, worse than chance, the same finding as section 5's, now on
#   every site.
# - The settings that beat their null (printed above) are mostly the narrowest dictionaries, and
#   most of them by a label or two: no more than a count moved between two CPU kernel sets on
#   one machine (the table's `cross_kernel` meta). Only the narrow settings printed last beat
#   the null by more than that.
# - So "a latent per label" is, on this model, a property of a few narrow dictionaries at a few
#   sites, not of SAEs; and a count of detected labels says nothing until it is set beside the
#   same count for random directions.

# %% [markdown]
# Where a latent *does* look clean is in its strongest activations. The Python latent below has
# almost all of its top 50 activations in Python documents:

# %%
python = labelled.families.index("python")
top = latents.topk(50, dim=0).indices  # (50, latents)
python_share = (labelled.family[top] == python).float().mean(0)
python_share[latents.max(0).values == 0] = 0  # latents that never fire here
python_latent = int(python_share.argmax())
print(f"latent {python_latent}: {python_share[python_latent]:.0%} of its top 50 activations are "
      f"in Python; {int((python_share >= 0.9).sum())} latents are at least 90% Python")
assert python_share[python_latent] >= 0.9

# %% [markdown]
# Clean, but not learned: on an untrained model of the same shape, an SAE has such a latent too
# (the course's tests check it). A latent that fires on `def` and `import` is in Python
# documents whatever the model knows; top activations show which tokens a latent reads, not
# what the model made of them.

# %% [markdown]
# ## 6. Feature dashboards
#
# A dashboard shows, for one latent, what it fires on (its strongest contexts and the histogram
# of its activations) and what it writes (the tokens its decoder direction raises and lowers
# through the unembedding, `lens.direction_logits`). Take the latent that detects numbers best:

# %%
number_latent = next(r["latent"] for r in rows if r["label"] == "number")
summary = sae.summarise_latent(model, topk, labelled, latents, number_latent, labels=labels)
viz.plot_latent(summary)
plt.show()
top50 = latents[:, number_latent].topk(50).indices
top_labels = {name: int(labels[name][top50].sum()) for name in ("number", "day or month")}
next_ids = torch.cat([labelled.token_ids[1:], torch.tensor([-1])])  # the token after each one
next_ids[:-1][labelled.doc[1:] != labelled.doc[:-1]] = -1           # ... within its document
promoted = [t for t, _ in summary.promoted]
followed = float((next_ids[top50] == model.to_single_token(promoted[0])).float().mean())
print(f"its top 50 activations: {top_labels}")
print(f"tokens it promotes most: {promoted}")
print(f"{promoted[0]!r} comes next after {followed:.0%} of its top 50 activations")
assert top_labels["number"] >= 10 and top_labels["day or month"] >= 10
assert promoted[0] == "," and followed > 0.5

# %% [markdown]
# The latent that detects numbers best is just as much a latent for days and months: its
# strongest activations are items of the world's lists ("33, 34, 35", "January, February"),
# whatever the item is. What it writes is what comes next in a list, a comma, and in the text a
# comma does follow most of its strongest activations. It is closer to "an item of a list; a
# comma comes next" than to "number". The AUROC table could not tell you that; the dashboard
# can.
#
# To browse every latent, use the widget (type a number, or jump to the best latent for a label).
# It draws the same dashboard; the figure above is its static view.

# %%
browser = widgets.latent_browser(model, topk, labelled, latents, start=number_latent,
                                 labels=labels)
browser

# %% [markdown]
# ## 7. Steering with a latent
#
# If the latent writes a comma, adding its decoder direction to the residual stream should make
# the model put a comma where it otherwise would not. Add `scale` times the latent's largest
# activation times its decoder row to `resid_post 1` at the last position, with the model's
# `hooks`, and watch the next-token probability of the comma after prompts that are not lists:

# %%
token = promoted[0]  # the token the latent writes most: ","
token_id = model.to_single_token(token)
direction = topk.W_dec[number_latent].detach() * latents[:, number_latent].max()
prompts = ["The capital of France is", "When Mary and John went to the",
           "def add(x, y):\n    return", "People in Japan speak"]
prompt_tokens = [model.to_tokens(p) for p in prompts]
scales = [0, 4, 8, 12, 16]


def steer(scale):
    """A hook adding the scaled direction at the last position (in generation: each new token)."""
    def hook(x):
        x = x.clone()
        x[:, -1] += scale * direction
        return x
    return hook


def p_token(scale):
    with torch.no_grad(), model.hooks({site: steer(scale)}):
        return [float(model(t)[0, -1].softmax(-1)[token_id]) for t in prompt_tokens]


steered = torch.tensor([p_token(s) for s in scales])  # (scales, prompts)
fig, ax = plt.subplots(figsize=(6, 2.8))
for j, p in enumerate(prompts):
    ax.plot(scales, steered[:, j], marker="o", label=repr(p))
ax.set(xlabel="steering scale (x the latent's largest activation)",
       ylabel=f"P(next token = {token!r})", title=f"Steering with latent {number_latent}")
ax.legend(fontsize=7)
plt.show()
print(steered.T.round(decimals=3))
assert steered[0].max() < 0.01 and steered[-1].min() > 0.4

# %% [markdown]
# A push that strong might raise a comma whatever direction it came from. The matched controls
# push as hard in other directions: 50 random directions of the same norm, and the decoder rows
# of 50 other latents, each scaled to the same norm, at the same position and the same scales.
# The latent's claim is its margin over them: over the strongest random direction, and over
# nearly all of the other latents.

# %%
g = torch.Generator().manual_seed(1)
others = torch.tensor([i for i in torch.randperm(topk.W_dec.shape[0], generator=g).tolist()
                       if i != number_latent][:50])
other_rows = topk.W_dec[others].detach()  # (50, d_model)
controls = {"random direction": claims.random_directions(50, direction, g),
            "other latent": other_rows / other_rows.norm(dim=1, keepdim=True) * direction.norm()}


def p_token_along(vectors, scale):
    """(n, prompts): P(token) with each of the n vectors (n, d_model) added in turn, all n as
    one batch per prompt."""
    def hook(x):  # x: (n, pos, d_model), one row per vector
        x = x.clone()
        x[:, -1] += scale * vectors
        return x
    with torch.no_grad(), model.hooks({site: hook}):
        return torch.stack([model(t.expand(len(vectors), -1))[:, -1].softmax(-1)[:, token_id]
                            for t in prompt_tokens], -1)


control_p = {kind: torch.stack([p_token_along(vectors, s) for s in scales[1:]], 1)
             for kind, vectors in controls.items()}  # (50, scales, prompts)
latent_mean = steered[1:].mean(-1)  # (scales,) over the prompts
print(f"{'latent':17}: mean P({token!r}) over the prompts "
      f"{[round(float(v), 3) for v in latent_mean]} at scales {scales[1:]}")
beaten = {}
for kind, p in control_p.items():
    means = p.mean(-1)  # (50, scales)
    beaten[kind] = (latent_mean > means).float().mean(0)  # (scales,) share of controls beaten
    print(f"{kind:17}: the strongest of 50 reaches "
          f"{[round(float(v), 3) for v in means.max(0).values]}; the latent beats "
          f"{[f'{float(v):.0%}' for v in beaten[kind]]} of them")
strongest_other = int(others[control_p["other latent"].mean(-1)[:, 1].argmax()])
writes_most = model.to_str_tokens(lens.direction_logits(model, topk.W_dec[strongest_other])
                                  .topk(5).indices)
print(f"the strongest other latent, {strongest_other}, writes most: {writes_most}")
random_best = control_p["random direction"].mean(-1).max(0).values
assert (latent_mean[1:] > 2 * random_best[1:]).all()  # from scale 8: twice any random push
assert (beaten["other latent"][1:] >= 0.9).all()      # from scale 8: nearly all other latents

# %%
for scale in [0, 12]:
    with model.hooks({site: steer(scale)}):
        print(f"scale {scale}:", repr(model.generate("When Mary and John went to the",
                                                     max_new_tokens=12)))

# %% [markdown]
# Steering works, crudely: a strong enough push along the latent makes a comma the likely next
# token after any of these prompts, and generation drifts. It is the direction, not the size of
# the push: no random direction of the same norm comes close, and the latent beats nearly all
# of 50 other latents pushed as hard. The strongest of those writes a comma itself (printed
# above): the control found a second comma latent, which is what a good control is for.
# Steering is a causal test of what a direction *writes*; the dashboard's contexts only say what
# it *reads*, by correlation. Chapter 07 makes that difference the subject.

# %% [markdown]
# ## Summary
#
# - An SAE explains an activation with a few directions from a large dictionary; ReLU + L1 and
#   TopK are two ways to keep it sparse.
# - On synthetic activations with known features, both recover them (MMCS above 0.95).
# - On the course model's residual stream a TopK SAE explains over 90% of the variance with at
#   most 24 active latents and almost no dead ones, and splicing it into the model closes most
#   of the loss gap left by removing the activation.
# - The world's labels turn "this latent means X" into a measurement, and here the measurement
#   disagrees with the textbook story: the best latent is a worse label detector than the best
#   of as many random directions, and than the best of as many upstream neurons. A sweep over
#   sites, widths, k and seeds, set beside its random-direction null, finds the widest
#   dictionaries below chance everywhere and only a few narrow ones clearly above it; wide ones
#   split the labels into finer latents. And a latent's meaning (dashboards: what it fires on,
#   what it writes) can differ from the label it correlates with.
# - Adding a latent's decoder direction to the residual stream steers the model towards what
#   that direction writes: more than twice as much as the strongest of 50 random directions
#   pushed as hard, and more than nearly all of 50 other latents.
#
# **Next:** chapter 07 moves from reading to intervening: activation patching and probes.
#
# **Further reading:** Sharkey et al. (2022), *Taking features out of superposition with sparse
# autoencoders* (synthetic ground truth, MMCS); Bricken et al. (2023), *Towards Monosemanticity*;
# Cunningham et al. (2023), *Sparse Autoencoders Find Highly Interpretable Features in Language
# Models*; Gao et al. (2024), *Scaling and evaluating sparse autoencoders* (TopK); Kantamneni et
# al. (2025), *Are Sparse Autoencoders Useful? A Case Study in Sparse Probing*; Templeton et al.
# (2024), *Scaling Monosemanticity* (dashboards, steering).

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** a JumpReLU SAE (Rajamanoharan et al. 2024) on the same activations, compared with
#   the TopK SAE at a matched L0 on FVE and spliced loss.
# - **Replicate:** Bricken et al. (2023): feature dashboards for ten latents chosen at random (not
#   the best ones), with `sae.summarise_latent`, and a blind labelling by a partner.
# - **Open question:** is there a latent for "a state capital" as opposed to "a country's capital"?
#   The world labels both; test on held-out documents, against random latents, as section 5 does.
