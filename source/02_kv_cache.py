# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 The KV cache
#
# Generating text one token at a time with chapter 00's loop reruns the whole sequence at every
# step, though only one position is new. The keys and values of the earlier positions never
# change, so a model can keep them: the **KV cache**. In this chapter you build one, check it
# against transformers' own generation, time it, and work out what it costs in memory.
#
# **You will be able to:** explain why caching keys and values is exact, not an approximation;
# write the cache and the attention step that reads it; measure the speed-up and how time per
# token grows with position with and without a cache; and compute a cache's memory from a
# model's configuration.
#
# **Time:** about 85 minutes. **Prerequisites:** chapters 00 and 01.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp_course import kvcache, widgets
from mechinterp_course.checks import ch02, yours

model = mc.load_model("course", device=device)
prompt = "The capital of Texas is"
tokens = model.to_tokens(prompt)

# %% [markdown]
# ## 1. Why a cache is exact
#
# In a causal model, position `t`'s keys and values depend only on tokens `0..t` (the mask saw to
# that in chapter 01). Appending a token changes nothing at earlier positions, so their keys and
# values can be computed once and kept. Check it: run the model on a prompt and on the prompt plus
# one token, and compare layer 2's keys at the shared positions.

# %%
_, short = model.run_with_cache(tokens, names=[("k", 2), ("v", 2)])
longer = torch.cat([tokens, torch.tensor([[model.to_single_token(" Austin")]], device=device)], 1)
_, long_ = model.run_with_cache(longer, names=[("k", 2), ("v", 2)])
n = tokens.shape[1]
assert torch.allclose(short["k", 2], long_["k", 2][:, :n], atol=1e-6)
assert torch.allclose(short["v", 2], long_["v", 2][:, :n], atol=1e-6)
print("keys and values at the first", n, "positions are unchanged by the new token")

# %% [markdown]
# ## 2. The cache
#
# Each layer keeps its keys and values, shaped like the model's `k` and `v`:
# (batch, pos, n_kv_heads, d_head). A step appends the new token's keys and values.
#
# ### Exercise 2.1: append to the cache
# 🟢 Easy, 10 minutes. Write `append_kv(past_k, past_v, k, v)`, returning the keys and values of
# all positions so far, the cached ones first. `past_k` and `past_v` are `None` before the first
# step.
#
# *Nudge:* The cache grows along one axis only. Which one? And what is there to append to on the
# very first step?
#
# *Hint:* `torch.cat` along the position axis.

# %%
def append_kv(past_k, past_v, k, v):
    # BEGIN SOLUTION
    if past_k is None:
        return k, v
    return torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)  # (batch, pos, kv, d)
    # END SOLUTION


# %% tags=["check"]
ch02.check_append_kv(append_kv, model)

# %% [markdown]
# ## 3. Attending to the cache
#
# With a cache, a step computes queries only for the new positions, and each attends to every
# cached key up to its own position. The first step (the *prefill*) sends the whole prompt at
# once, so there the causal mask still matters; after that one new query sees everything.
#
# ### Exercise 2.2: attention over the cache
# 🟠 Medium, 20 minutes. Write `attend_with_cache(q, k, v)`: q (batch, new, n_heads, d_head) for
# the new positions; k and v (batch, total, n_kv_heads, d_head) for all positions so far. New query
# `i` sits at position `total - new + i`. Return z (batch, new, n_heads, d_head). Remember
# grouped-query attention and the `1/sqrt(d_head)` scale from chapter 01.
#
# *Nudge:* Exercises 1.2 to 1.5 again, except that queries and keys now have different lengths: the
# causal mask is no longer square, and new query i may see every key up to its own position.
#
# *Hint:* the future mask is `torch.ones(new, total).triu(total - new + 1)`.

# %%
def attend_with_cache(q, k, v):
    # BEGIN SOLUTION
    new, total, n_heads = q.shape[1], k.shape[1], q.shape[2]
    k = k.repeat_interleave(n_heads // k.shape[2], dim=2)  # (batch, total, n_heads, d_head)
    v = v.repeat_interleave(n_heads // v.shape[2], dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / q.shape[-1] ** 0.5  # (b, h, new, total)
    future = torch.ones(new, total, dtype=torch.bool, device=q.device).triu(total - new + 1)
    pattern = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    return torch.einsum("bhqk,bkhd->bqhd", pattern, v)  # (batch, new, n_heads, d_head)
    # END SOLUTION


# %% tags=["check"]
ch02.check_attend_with_cache(attend_with_cache, model)

# %% [markdown]
# `mechinterp_course.kvcache.forward_with_cache` runs a whole model from its own weights: embed the
# new tokens at their positions, and in every layer compute q, k, v for them, update the cache,
# attend, add the output, run the MLP. It takes your two functions; the check generates with them
# and compares with transformers' `generate`, on the course model and a grouped-query Llama.

# %% tags=["check"]
ch02.check_cached_decoder(append_kv, attend_with_cache, model)

# %% [markdown]
# ### Exercise 2.4: the decoding loop
# 🟢 Easy, 10 minutes. Write `generate_with_cache(model, tokens, n_new,
# forward=kvcache.forward_with_cache)`: greedy decoding with a cache. Make one
# `kvcache.KVCache(model.cfg.n_layers)`; `forward(model, new_tokens, cache)` returns the logits
# (batch, new, d_vocab) of tokens that follow what the cache holds, and grows the cache by them.
# Return the sequence with `n_new` tokens appended, (batch, pos + n_new).
#
# *Nudge:* Exercise 0.2's loop, except that the model never sees a token twice: what goes into
# the first pass, and what into each later one? Count the passes for one new token.
#
# *Hint:* the first pass takes the whole prompt; then each step takes the argmax of the last
# logits, appends it to the sequence, and only then, unless it was the last, feeds that one
# token, `(batch, 1)`, through `forward`.

# %%
@torch.no_grad()
def generate_with_cache(model, tokens, n_new, forward=kvcache.forward_with_cache):
    # BEGIN SOLUTION
    cache = kvcache.KVCache(model.cfg.n_layers)
    logits = forward(model, tokens, cache)  # the prompt, in one pass
    for step in range(n_new):
        next_token = logits[:, -1].argmax(-1, keepdim=True)  # (batch, 1)
        tokens = torch.cat([tokens, next_token], dim=1)
        if step < n_new - 1:  # the last token needs no pass
            logits = forward(model, next_token, cache)
    return tokens
    # END SOLUTION


# %% tags=["check"]
ch02.check_generate_with_cache(generate_with_cache, model)

# %% [markdown]
# ## 4. How much faster?
#
# Time 100 new tokens on the course model three ways: rerunning the whole sequence each step (no
# cache), the hand-written cached decoder (your loop once its check has passed, else the
# package's `kvcache.generate_with_cache`), and transformers' own cached `generate`. All three
# produce the same tokens.

# %% tags=["timing"]
def timed(fn, most=3, budget_s=10.0):
    """(seconds, output) of the fastest of up to `most` runs: as many as fit in `budget_s` after
    the first, so a slow laptop runs it once instead of waiting minutes."""
    start = time.perf_counter()
    out = fn()
    best = time.perf_counter() - start
    for _ in range(kvcache.repeats_that_fit(best, budget_s, most) - 1):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


n_new = 100
t_none, out_none = timed(lambda: kvcache.generate_without_cache(model, tokens, n_new))
cached = yours("Exercise 2.4", generate_with_cache, kvcache.generate_with_cache)
t_mine, out_mine = timed(lambda: cached(model, tokens, n_new))
t_hf, out_hf = timed(lambda: model.generate(tokens, max_new_tokens=n_new, stop_at_eos=False))
assert torch.equal(out_none, out_hf) and torch.equal(out_mine, out_hf)
print(f"course model, {n_new} tokens: no cache {t_none:.2f} s, hand-written cache {t_mine:.2f} s, "
      f"transformers generate {t_hf:.2f} s")

# %% [markdown]
# Where the time goes: per-token time against position. Without a cache, the step at length `n`
# runs all `n` tokens through the model, so its time should grow in a straight line with the
# length; with one, every step runs one token and only the attention over the cache grows, so the
# line should stay nearly flat. That is a prediction, so test it. Time one step at eleven lengths
# across 200 new tokens, both ways, and fit a line to each. A busy machine (another program, a
# background update) makes some readings slow, so the timing goes in rounds: each round times
# every length both ways in turn, and each point keeps its fastest of the rounds (at least 3, as
# many as fit in 10 seconds, up to 20). A busy moment then slows a few readings of one round, which
# the other rounds replace, instead of a stretch of consecutive steps.
#
# ### Exercise 2.5: a line through the timings
# 🟢 Easy, 10 minutes. Write `fit_line(x, y)`: x, a list of n lengths; y (..., n), one row of
# times per way of decoding. Return (..., 2): each row's least-squares line, (intercept, slope).
#
# *Nudge:* a line has two unknowns; each point gives one equation. What matrix, times the two
# unknowns, gives every point's predicted time at once?
#
# *Hint:* `X = torch.stack([torch.ones(n), torch.tensor(x).float()], 1)`, (n, 2);
# `torch.linalg.lstsq(X, y.T).solution.T` solves every row at once (for a single row, add and
# remove a leading axis).

# %%
def fit_line(x, y):
    # BEGIN SOLUTION
    x = torch.tensor(x, dtype=torch.float32)
    X = torch.stack([torch.ones_like(x), x], 1)  # (n, 2)
    rows = y.float().reshape(-1, len(x))  # (lines, n)
    return torch.linalg.lstsq(X, rows.T).solution.T.reshape(*y.shape[:-1], 2)
    # END SOLUTION


# %% tags=["check"]
ch02.check_fit_line(fit_line)

# %% tags=["timing"]
long_prompt = model.to_tokens("When Mary and John went to the store,")
n_steps, first = 200, long_prompt.shape[1]  # the first step runs the prompt's `first` tokens
sequence = kvcache.generate_with_cache(model, long_prompt, n_steps)  # (1, first + 200) to time on
lengths = torch.linspace(first, first + n_steps - 1, 11).round().long().tolist()
seconds, rounds = kvcache.step_seconds(model, sequence, lengths)  # (2, 11): no cache, cache
print(f"one step at each of {len(lengths)} lengths, both ways: the fastest of {rounds} rounds")
fit = yours("Exercise 2.5", fit_line, kvcache.fit_line)
fit_none, fit_mine = fit(lengths, seconds)  # each (2,): s, s per token
all_steps = torch.stack([torch.ones(n_steps), torch.arange(first, first + n_steps).float()], 1)

fig, ax = plt.subplots(figsize=(6, 3))
for row, fit, label in ((0, fit_none, "no cache"), (1, fit_mine, "KV cache")):
    points = ax.plot(lengths, 1e3 * seconds[row], "o", ms=4, label=label)[0]
    ax.plot(all_steps[:, 1], 1e3 * (all_steps @ fit), color=points.get_color(), ls="--")
ax.set(xlabel="tokens in the sequence at this step", ylabel="ms per step",
       title="Time of one decoding step (course model, CPU; dashed: fitted lines)")
ax.legend()
plt.show()

predicted = (all_steps @ fit_none).cumsum(0) / (all_steps @ fit_mine).cumsum(0)  # first n tokens
print(f"slope per token: no cache {1e6 * fit_none[1]:.1f} us, cache {1e6 * fit_mine[1]:.2f} us")
for n in (25, 50, 100, 200):
    print(f"  first {n:3} new tokens: speed-up {predicted[n - 1]:.2f} from the two lines")
print(f"  (section 4 measured {t_none / t_mine:.2f} for its 100 tokens, one noisier reading)")
assert fit_none[1] > 0 and abs(fit_mine[1]) < 0.25 * fit_none[1]  # one grows, one stays flat
assert predicted[-1] > 1.2 * predicted[24], (  # the speed-up grows with the number of new tokens
    f"speed-up from the lines {predicted[24]:.2f} after 25 tokens, {predicted[-1]:.2f} after "
    f"{n_steps}; ms per step at lengths {lengths}: no cache "
    f"{[round(1e3 * float(t), 2) for t in seconds[0]]}, cache "
    f"{[round(1e3 * float(t), 2) for t in seconds[1]]}")

# %% [markdown]
# ### On a real model
#
# A book's reference figure: Phi-3-mini (3.8B parameters) on a T4 GPU took 21.8 s for 100 tokens
# without a cache and 4.5 s with one, about 4.8 times faster. Here is SmolLM2-135M on this
# machine, its steps timed as above (five lengths across 100 new tokens, the fastest of at least
# three rounds), through the package's decoder, which runs SmolLM2 from its own weights
# (the check of section 3 compared it with transformers' `generate` on a grouped-query Llama).
# The lines give the time of the book's 100 tokens both ways; `benchmarks/kv_cache.py` times whole
# `generate` calls.

# %% tags=["timing"]
smol = mc.load_optional("smollm2", device=device)  # None, said in one line, if not installed
if smol is not None:
    smol_prompt = smol.to_tokens("The capital of France is")
    n_smol, first_smol = 100, smol_prompt.shape[1]
    smol_sequence = smol.generate(smol_prompt, max_new_tokens=n_smol, stop_at_eos=False)
    smol_lengths = torch.linspace(first_smol, first_smol + n_smol - 1, 5).round().long().tolist()
    smol_seconds, smol_rounds = kvcache.step_seconds(smol, smol_sequence, smol_lengths,
                                                     budget_s=3.0)  # (2, 5): no cache, cache
    X_smol = torch.stack([torch.ones(5), torch.tensor(smol_lengths).float()], 1)  # (5, 2)
    smol_fits = torch.linalg.lstsq(X_smol, smol_seconds.T).solution.T  # (2, 2): no cache, cache
    smol_steps = torch.stack([torch.ones(n_smol),
                              torch.arange(first_smol, first_smol + n_smol).float()], 1)
    smol_none, smol_cache = (smol_steps @ smol_fits.T).sum(0)  # seconds for the 100 tokens
    print(f"SmolLM2 on {device}, fastest of {smol_rounds} rounds: {n_smol} tokens take "
          f"{smol_none:.1f} s without a cache, {smol_cache:.1f} s with one, "
          f"x{smol_none / smol_cache:.1f}")
    assert smol_none > 1.2 * smol_cache  # clearly faster: equal work would tie

# %% [markdown]
# So a KV cache's speed-up is not one number. Without a cache the cost of step `t` grows
# linearly with `t` (the fitted slope), so the time for `n` new tokens after a prompt of `p`
# grows like `n * (p + n/2)`; with one, it grows like `n`. The speed-up therefore grows with
# the length of the generation, as asserted above. Section 4's total for 100 tokens is printed
# beside what the lines give for it: compare them, but the claims are asserted on the lines, since
# each total is a single stretch of consecutive steps (the fastest of up to three), which a busy
# moment slows as a whole, and a whole generation also pays for the argmax and the growing token
# tensor, which the timed steps leave out. The book's 4.8x is one point on such a curve, for
# another model, prompt and length. Why its curve sits where it does (a GPU runs the positions
# of an uncached step in parallel, which should narrow the gap on short sequences) is a
# hypothesis this CPU cannot test; `benchmarks/kv_cache.py` is where a GPU run would go.

# %% [markdown]
# To watch a cache at work, step through a generation one token a click: the text, the
# next-token distribution, and the cache's bytes per layer, which grow by one position a step.

# %%
stepper = widgets.generation_stepper(model, "The capital of France is")
for _ in range(3):
    stepper.step()
print(f"{len(stepper.cache)} positions cached, {stepper.cache.nbytes():,} bytes")
assert stepper.cache.nbytes() == kvcache.cache_bytes(  # the formula of section 5
    model.cfg.n_layers, model.cfg.n_kv_heads, model.cfg.d_head, len(stepper.cache),
    bytes_per_value=4)
stepper

# %% [markdown]
# ## 5. What a cache costs in memory
#
# Every layer stores a key and a value vector per key/value head per token:
#
# `bytes = 2 (keys and values) x n_layers x n_kv_heads x d_head x n_tokens x bytes per value`.
#
# ### Exercise 2.3: cache memory
# 🟢 Easy, 5 minutes. Write `cache_bytes(n_layers, n_kv_heads, d_head, n_tokens, bytes_per_value)`.
# The check compares with the bytes of transformers' real cache.
#
# *Nudge:* What does the cache store, per layer, per token and per key/value head? Count the kinds
# of tensor: there is more than one.
#
# *Hint:* keys and values: two tensors, each `n_kv_heads * d_head` numbers per layer per token, at
# `bytes_per_value` bytes each.

# %%
def cache_bytes(n_layers, n_kv_heads, d_head, n_tokens, bytes_per_value):
    # BEGIN SOLUTION
    return 2 * n_layers * n_kv_heads * d_head * n_tokens * bytes_per_value
    # END SOLUTION


# %% tags=["check"]
ch02.check_cache_bytes(cache_bytes, model)

# %% [markdown]
# The same formula for four configurations (from each model's published config), at 4,096 tokens
# in 16-bit precision. Grouped-query attention is why an 8B Llama 3 needs a third of the cache of
# the 3.8B Phi-3-mini: 8 key/value heads of 128 dimensions against 32 of 96.

# %%
configs = {  # n_layers, n_kv_heads, d_head
    "GPT-2 small": (12, 12, 64),
    "SmolLM2-135M": (30, 3, 64),
    "Phi-3-mini (3.8B)": (32, 32, 96),
    "Llama 3 8B": (32, 8, 128),
}
if smol is not None:  # the published numbers are the loaded model's
    assert configs["SmolLM2-135M"] == (smol.cfg.n_layers, smol.cfg.n_kv_heads, smol.cfg.d_head)
mib = {name: kvcache.cache_bytes(*c, n_tokens=4096, bytes_per_value=2) / 2**20
       for name, c in configs.items()}
for name, size in mib.items():
    print(f"{name:18} {size:8.0f} MiB")
assert mib["Llama 3 8B"] < mib["Phi-3-mini (3.8B)"] / 2

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.barh(list(mib), list(mib.values()))
ax.set(xlabel="MiB at 4,096 tokens, fp16", title="KV cache memory")
plt.show()

# %% [markdown]
# ## Summary
#
# - Keys and values of past positions never change in a causal model, so caching them is exact.
# - With a cache, each step runs the model on one new token; time per token stays nearly flat
#   instead of growing with the sequence.
# - The cache costs `2 x layers x kv_heads x d_head x tokens x bytes`; grouped-query attention
#   shrinks it by sharing key/value heads.
#
# **Next:** chapter 03 follows the residual stream, layer by layer, to see where the answer forms.
#
# **Further reading:** Pope et al. (2022), *Efficiently Scaling Transformer Inference*; Shazeer
# (2019), *Fast Transformer Decoding: One Write-Head is All You Need* (multi-query attention);
# Ainslie et al. (2023), *GQA*; Kwon et al. (2023), *Efficient Memory Management for Large
# Language Model Serving with PagedAttention*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** a sliding-window cache that keeps only the last W positions: find the smallest W
#   for which greedy generation on world documents is unchanged, and explain it with section 8 of
#   chapter 01.
# - **Extend:** store the cache in int8 (a scale per head) and measure the largest logit error and
#   whether greedy tokens change.
# - **Replicate:** the memory arithmetic of Pope et al. (2022), *Efficiently Scaling Transformer
#   Inference*, with your `cache_bytes`: a 7B model with multi-head against grouped-query attention
#   at 32k tokens.
# - **Open question:** does a cache ever change what the model says? Generate greedily from the
#   first sentence of 50 world documents with and without it, in float32 and in float16, and count
#   the documents whose tokens differ; say beforehand how many you expect, and why.
