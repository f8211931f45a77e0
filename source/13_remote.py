# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 13 Appendix: models larger than your machine
#
# Every chapter so far ran on a model that fits a laptop. The papers study Llama-3.1-70B and
# larger, which fit no learner's machine. **nnsight** (Fiotto-Kaufman et al. 2025) reads and
# edits a model's activations inside a `with lm.trace(...)` block, and with `remote=True` it
# sends that block to **NDIF**, the National Deep Inference Fabric, which runs it on its own
# GPUs next to models that large and sends back what the block saved. The course's names
# (`("resid_post", 40)`) are TransformerLens's; nnsight's are the model's own module paths
# (`model.layers.40.output`). This appendix maps one onto the other, checks on the course model
# that nnsight reads what the course's cache holds, builds chapter 03's logit lens and chapter
# 07's patching grid from traces, and then runs both on Llama-3.1-70B, when you have an NDIF
# key and a network.
#
# **You will be able to:** find where a course name lives in a model's modules; read
# activations through nnsight in the order the model makes them; rebuild chapter 03's logit
# lens and chapter 07's patching grid from them; and run both remotely.
#
# **Time:** about 65 minutes (the remote run: a few minutes more, NDIF's queue permitting).
# **Prerequisites:** chapters 03 and 07, and nnsight (`pip install nnsight`, or the course's `remote`
# extra; the cells that need it say so and are skipped without it).

# %%
import importlib.util
import warnings

from mechinterp_course import interventions, lens, remote
from mechinterp_course.checks import ch13, yours

model = mc.load_model("course", device=device)
if importlib.util.find_spec("nnsight") is None:
    nnsight = None
    print("nnsight is not installed (pip install nnsight): the cells that use it are skipped")
else:
    with warnings.catch_warnings():  # its import and LanguageModel's deprecation: noise here
        warnings.simplefilter("ignore")
        import nnsight

        lm = nnsight.LanguageModel(model.hf, tokenizer=model.tokenizer)

# %% [markdown]
# ## 1. Where the names live
#
# A name is a module's input or output: `resid_pre` is a block's input, `attn_out` the first
# item of its attention's output, `z` the input of the attention's output projection (the heads
# side by side), `mlp_post` the input of the MLP's down projection. `resid_mid` is no module's
# input or output; it is `resid_pre + attn_out`. `remote.module_path` gives the path for the
# course model's family (GPT-2) and for Llama's, the family of the models NDIF serves.

# %%
def shown(model_type, name, layer):
    path, kind = remote.module_path(model_type, name, layer)
    return f"{path}.{'output[0]' if kind == 'output0' else kind}"


for name, layer in [("resid_pre", 2), ("z", 2), ("attn_out", 2), ("mlp_post", 2),
                    ("resid_post", 2), ("ln_final", None)]:
    print(f"{name:>10} {'' if layer is None else layer:>2}  GPT-2: "
          f"{shown('gpt2', name, layer):<32}  Llama: {shown('llama', name, layer)}")

# %% [markdown]
# nnsight runs the block's reads *while* the model runs, so it can only hand over an activation
# the model has not yet passed: ask for layer 3 before layer 1 and it refuses. So the reads must
# be asked for in the order the forward pass makes them.
#
# ### Exercise 13.3: the order of a forward pass
# 🟢 Easy, 10 minutes. Write `forward_order(keys)`: keys such as `("mlp_out", 2)`, `"embed"` and
# `"ln_final"`; return them in the order the forward pass makes them: `"embed"` first, then
# block by block, within a block in the order `list(remote.BLOCK_PATHS["gpt2"])` lists the
# names, and `"ln_final"` last.
#
# *Nudge:* give every key a position in time, something that sorts: which block, and where in
# the block; and where do the two whole-model names go?
#
# *Hint:* `sorted(keys, key=...)` with a tuple key: `(0, 0, 0)` for `"embed"`, `(1, layer,
# stages.index(name))` for a block's name, `(2, 0, 0)` for `"ln_final"`.

# %%
def forward_order(keys):
    # BEGIN SOLUTION
    stages = list(remote.BLOCK_PATHS["gpt2"])

    def when(key):
        if isinstance(key, str):
            return (0, 0, 0) if key == "embed" else (2, 0, 0)
        name, layer = key
        return (1, layer, stages.index(name))
    return sorted(keys, key=when)
    # END SOLUTION


# %% tags=["check"]
ch13.check_forward_order(forward_order)

# %% [markdown]
# In your order, once its check has passed, the reads a trace of layer 3's and layer 1's
# activations makes:

# %%
in_order = yours("Exercise 13.3", forward_order, remote.forward_order)
print(in_order([("resid_post", 3), ("mlp_out", 1), "ln_final", ("resid_pre", 1), "embed"]))

# %% [markdown]
# `remote.trace_cache(lm, tokens, keys)` sorts the keys into that order, reads them in one
# trace, and returns a dict with those keys. The same call runs
# locally, on NDIF (`remote=True`), or in nnsight's local simulation of NDIF
# (`remote="local"`), which packs the block up as for the server and unpacks it here with your
# own modules hidden: a block that fails there would fail on the server, and nnsight's
# documentation calls a pass strong evidence that it will run there.
#
# First the check that the two tools agree. What nnsight reads at each path must be what the
# course's cache holds under the name (asserted; an identity, so a wrong path, not the model,
# is what it can catch).

# %%
text = "The capital of Texas is"
tokens = model.to_tokens(text)
n_layers = model.cfg.n_layers
keys = [("resid_pre", layer) for layer in range(n_layers)] + [("resid_post", n_layers - 1)]
if nnsight is not None:
    trace = remote.trace_cache(lm, tokens, keys, remote="local")
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    largest = max(float((trace[key] - cache[key]).abs().max()) for key in keys)
    print(f"nnsight against the course's cache, {len(keys)} activations: largest difference "
          f"{largest:.1e}")
    assert largest < 1e-4

# %% [markdown]
# ## 2. The logit lens, rebuilt from a trace
#
# Chapter 03's logit lens reads the residual stream before each block and after the last,
# (n_layers + 1, batch, pos, d_model), through the final norm and the unembedding
# (`lens.unembed`). From a cache that stack is `lens.accumulated_resid(model, cache)`; from a
# trace you build it.
#
# ### Exercise 13.1: the residual stack from a trace
# 🟢 Easy, 5 minutes. Write `residual_stack(trace, n_layers)`: from a dict with the keys
# `("resid_pre", layer)` for every layer and `("resid_post", n_layers - 1)`, each (batch, pos,
# d_model), the stack (n_layers + 1, batch, pos, d_model) in the order the model makes them.
#
# *Nudge:* how many residual streams does a model of n blocks have, and which is the last?
#
# *Hint:* `torch.stack` of the list of `trace["resid_pre", layer]`, then `trace["resid_post",
# n_layers - 1]`.

# %%
def residual_stack(trace, n_layers):
    # BEGIN SOLUTION
    return torch.stack([trace["resid_pre", layer] for layer in range(n_layers)]
                       + [trace["resid_post", n_layers - 1]])
    # END SOLUTION


# %% tags=["check"]
ch13.check_residual_stack(residual_stack, model)

# %% [markdown]
# `lens.accumulated_resid` is the package's version of your function: it takes a trace as well
# as a cache, since both are indexed by ("resid_pre", layer). The chapter uses it.
#
# Through the lens, the answer's log-probability at the last position, before each block and
# after the last (printed). Read it as in chapter 03: where " Austin" becomes readable, not how.

# %%
answer = model.to_single_token(" Austin")


def lens_logprobs(stack, lens_model):
    """(n_layers + 1,): the answer's log-probability at the last position of the first prompt."""
    with torch.no_grad():
        return lens.unembed(lens_model, stack[:, 0, -1]).log_softmax(-1)[:, answer]


if nnsight is not None:
    by_layer = lens_logprobs(lens.accumulated_resid(model, trace), model)
    print("log P(' Austin') through the lens, before each block and after the last:",
          [round(float(x), 2) for x in by_layer])

# %% [markdown]
# ## 3. A patching grid in one trace
#
# Chapter 07's grid patches `resid_pre` of one layer at one position from a clean prompt into
# a corrupted one, one forward pass per cell. Remotely each pass is a request in NDIF's queue,
# so `remote.patching_grid` makes the grid one pass: the clean rows, the corrupted rows and one
# copy of the corrupted rows per (layer, position) go in as one batch, and at each layer every
# copy whose cell is there takes the clean rows' activation at its position. The metric
# (chapter 07's normalised logit difference) is computed inside the block, so only the grid
# comes back.
#
# The batch is the lesson, and it needs no nnsight: the course's hooks can patch the copies of
# one batch just as well.
#
# ### Exercise 13.2: the grid in one pass
# 🟠 Medium, 20 minutes. Write `grid_in_one_pass(model, pairs, layers)`: build the batch (the n
# clean rows, the n corrupted rows, then one copy of the corrupted rows per (layer, position)
# cell, layer by layer), run it once with a hook on `("resid_pre", layer)` for each layer that
# puts the clean rows' residual into the copies of that layer's cells, at their position only;
# return chapter 07's normalised logit difference per cell, (len(layers), pos, n).
#
# *Nudge:* number the cells first; cell i's copy occupies its own block of n rows, after the two
# blocks of baselines. Inside a hook, the clean rows are in the same tensor as the copies.
#
# *Hint:* `cells = [(layer, pos) for layer in layers for pos in range(n_pos)]`; copy i is rows
# `(i + 2) * n` to `(i + 3) * n`; in the hook, `x[rows, pos] = x[:n, pos]` on a clone. Then
# `interventions.answer_logit_diff` with the answers repeated, `.view(len(cells) + 2, n)`, and
# `interventions.normalised(diff[2:], diff[0], diff[1])`.

# %%
@torch.no_grad()
def grid_in_one_pass(model, pairs, layers):
    # BEGIN SOLUTION
    n, n_pos = pairs.clean.shape
    cells = [(layer, pos) for layer in layers for pos in range(n_pos)]
    batch = torch.cat([pairs.clean, pairs.corrupt] + [pairs.corrupt] * len(cells))

    def put_back(layer):
        def hook(x):  # (rows, pos, d_model)
            x = x.clone()
            for i, (at, pos) in enumerate(cells):
                if at == layer:
                    x[(i + 2) * n:(i + 3) * n, pos] = x[:n, pos]
            return x
        return hook

    with model.hooks({("resid_pre", layer): put_back(layer) for layer in set(layers)}):
        logits = model(batch)
    diff = interventions.answer_logit_diff(logits, pairs.answer.repeat(len(cells) + 2),
                                           pairs.wrong.repeat(len(cells) + 2))
    diff = diff.view(len(cells) + 2, n)
    return interventions.normalised(diff[2:], diff[0], diff[1]).view(len(layers), n_pos, n)
    # END SOLUTION


# %% tags=["check"]
ch13.check_grid_in_one_pass(grid_in_one_pass, model)

# %% [markdown]
# With nnsight the same batch runs as one trace (`remote.patching_grid`). The check of both:
# they must equal chapter 07's `interventions.patch_positions`, which runs one hooked pass per
# cell (asserted: your one pass once its check has passed, and nnsight's trace where nnsight is
# installed; like the first check, an identity that catches a wrong path or a patch put in the
# wrong rows, not a claim about the model).

# %%
pairs = interventions.capital_pairs(model)[0]
n_pairs = 4
pairs = interventions.PatchingPairs(pairs.clean[:n_pairs], pairs.corrupt[:n_pairs],
                                    pairs.answer[:n_pairs], pairs.wrong[:n_pairs],
                                    pairs.subject[:n_pairs], pairs.prompts[:n_pairs])
hooked_grid = interventions.patch_positions(model, pairs)
one_pass = yours("Exercise 13.2", grid_in_one_pass, interventions.patch_positions_one_pass)
batched_grid = one_pass(model, pairs, list(range(n_layers)))
print(f"one batch against one hooked pass per cell: largest difference "
      f"{float((batched_grid - hooked_grid).abs().max()):.1e}")
assert torch.allclose(batched_grid, hooked_grid, atol=1e-4)
if nnsight is not None:
    traced_grid = remote.patching_grid(lm, pairs.clean, pairs.corrupt, pairs.answer,
                                       pairs.wrong, remote="local")
    worst = float((traced_grid - hooked_grid).abs().max())
    print(f"one trace against one hooked pass per cell, {hooked_grid.numel()} numbers: largest "
          f"difference {worst:.1e}")
    assert worst < 1e-4
    print("restored, averaged over", n_pairs, "pairs (layers down, positions across):")
    print(traced_grid.mean(-1).numpy().round(2))

# %% [markdown]
# What the grid shows for the course model, and what it does not, is chapter 07's to say (with
# its controls); here it is the same grid by another route. The cost is memory, not passes: a
# batch of (2 + layers x positions) x pairs rows, which is why the remote cell below patches
# every 10th layer only.
#
# ## 4. The same lens and grid on Llama-3.1-70B, on NDIF
#
# NDIF's list of models changes (ndif.us lists them); the cell asks for Llama-3.1-70B. Running
# there needs an API key (from ndif.us, set as `NDIF_API_KEY`) and a network; without either the
# cell says which is missing and does nothing. Nothing of the model comes to your
# machine but its config and tokenizer (`dispatch=False` keeps the weights away), so the lens
# is computed inside the block, on the server (`remote.logit_lens`: the final norm and the
# unembedding applied to each block's output there), and only one number per layer comes back;
# then the patching grid with "Ohio" as the corrupting subject, every 10th layer. The tests
# run those same blocks through nnsight's local simulation of NDIF on the course model and a
# Llama, and check them against `lens.unembed` and `interventions.patch_positions`.

# %%
ok, why = remote.available() if nnsight is not None else (False, "nnsight is not installed")
print("NDIF:", why)
if ok:
    big = nnsight.LanguageModel("meta-llama/Llama-3.1-70B", dispatch=False)
    big_tokens = big.tokenizer(text, return_tensors="pt")["input_ids"]
    big_answer = big.tokenizer(" Austin", add_special_tokens=False)["input_ids"][0]
    lensed = remote.logit_lens(big, big_tokens, big_answer, remote=True)
    print("Llama-3.1-70B, log P(' Austin') through the lens after every 10th block:",
          [round(x, 2) for x in lensed[::10]], "and after the last:", round(lensed[-1], 2))
    big_corrupt = big.tokenizer("The capital of Ohio is", return_tensors="pt")["input_ids"]
    big_wrong = big.tokenizer(" Columbus", add_special_tokens=False)["input_ids"][0]
    if big_corrupt.shape != big_tokens.shape:
        print("the two prompts tokenise to different lengths here: pick another pair")
    else:
        big_grid = remote.patching_grid(big, big_tokens, big_corrupt, [big_answer], [big_wrong],
                                        layers=list(range(0, len(lensed), 10)), remote=True)
        print("Llama-3.1-70B, restored (every 10th layer down, positions across):")
        print(big_grid[..., 0].numpy().round(2))

# %% [markdown]
# Read the remote numbers as you read chapters 03 and 07: the lens says where the answer becomes
# readable in the residual stream of one prompt, not how it got there; the grid says where
# the subject's information sits for one pair of prompts, and one pair is an anecdote. Each is
# a claim to test the way the course tests it, with more pairs, a control and a null, and
# NDIF's queue is the cost of each run.
#
# ## Summary
#
# - A course name is a module's input or output; `remote.module_path` says which, for GPT-2 and
#   Llama. `resid_mid` is no module's: it is `resid_pre + attn_out`.
# - nnsight reads activations during the run, so in the order the model makes them;
#   `remote.trace_cache` asks in that order and returns a dict like the course's cache.
# - On the course model nnsight reads what the course's cache holds, through nnsight's local
#   simulation of NDIF, so the same block runs remotely.
# - Chapter 07's patching grid is one trace: a batch with a corrupted copy per cell, patched
#   inside the block; it equals one hooked pass per cell.
# - With a key and a network the same lens and grid run on Llama-3.1-70B; without, the cell
#   says which is missing.
#
# **Further reading:** Fiotto-Kaufman et al. (2025), *NNsight and NDIF: Democratizing Access
# to Open-Weight Foundation Model Internals*; nostalgebraist (2020), *interpreting GPT: the
# logit lens*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** run `remote.patching_grid` on SmolLM2 locally (nnsight's local simulation) and
#   measure the memory of the one batch against one pass per cell.
# - **Replicate:** Fiotto-Kaufman et al. (2024), *NNsight and NDIF*: one intervention of their
#   paper, in the course's vocabulary.
# - **Open question:** on Llama-3.1-70B, is " Austin" readable earlier, as a fraction of depth,
#   than on the course model? One prompt is an anecdote: say how many you would need.
