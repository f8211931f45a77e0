# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 09 Planted mechanisms: scoring the methods
#
# Every chapter so far judged its findings against the course model's world: the world knows
# that Austin is the capital of Texas, so it can say *whether* the model knows it. The world
# cannot say *how* the model computes it. When chapter 04 says "L0H1 feeds the induction heads of
# block 2", the evidence is another method's output, and a method can be wrong. This chapter
# tests the methods themselves, on models whose mechanism is known because their weights were
# set by hand: **planted mechanisms**.
#
# Each planted model is an ordinary GPT-2 checkpoint (one or two layers, four heads, a word-level
# vocabulary) that every tool of the course runs on unchanged. Its ground truth is data:
# `planted.truth(name)` says which heads and MLPs do which step, and which are **decoys**, built
# to look like the real thing to some method while nothing reads what they write. You will run
# six methods on a planted model with the truth hidden, write down a hypothesis, reveal the
# truth, and score yourself and the methods. Then you will use what the planted models teach to
# re-examine a claim about the course model.
#
# **You will be able to:** run attention-pattern scores, zero, mean and resample ablation,
# activation patching and direct logit attribution as component-finding methods; score a
# method's answer by precision and recall against a known mechanism; name the three ways these
# methods fail (look-alikes, redundancy, indirect effects) and the test that catches each; say
# what ablating (noising) and patching (denoising) each ask; and tell a probe that *decodes*
# something from a component that *uses* it.
#
# **Time:** about 125 minutes. **Prerequisites:** chapters 04, 07 and 08.

# %%
import json

import matplotlib.pyplot as plt

from mechinterp_course import (circuits, claims, interventions, method_scores, models, planted,
                               probes, viz)
from mechinterp_course.checks import ch09, yours

torch.set_grad_enabled(False)
for name, what in planted.zoo().items():
    print(f"planted-{name}: {what}")

# %% [markdown]
# ## 1. A model whose mechanism you do not know yet
#
# `planted-induction` does in-context copying: given a sequence that repeats, it predicts each
# token of the repeat from the first copy. `method_scores.task` gives its task as a batch of
# tokens (BOS, 15 distinct random tokens, the same 15 again) and a mask of the positions the
# task scores: the repeat after its first token, which has nothing to copy.
#
# Before looking inside, check that it does the task, and against what. The null is the same
# first half followed by fresh random tokens, not a repeat: there, copying cannot help, and the
# loss should be far above the task's.

# %%
model = mc.load_model("planted-induction", device=device)
tokens, scored = method_scores.task("induction", model)
n = (tokens.shape[1] - 1) // 2  # length of one copy
print("one prompt:", model.to_string(tokens[0]))
fresh = method_scores.repeated_distinct(model, seed=1)[:, n + 1:].to(tokens.device)
no_repeat = torch.cat([tokens[:, :n + 1], fresh], 1)  # the null: nothing to copy
copy_loss = method_scores.task_loss(model, tokens, scored)
null_loss = method_scores.task_loss(model, no_repeat, scored)
chance = float(torch.log(torch.tensor(float(model.cfg.d_vocab))))
print(f"loss on the repeat {copy_loss:.4f} nats; with no repeat {null_loss:.2f}; a uniform guess "
      f"{chance:.2f}")
assert copy_loss < 0.05 and null_loss > chance

# %% [markdown]
# The model copies almost perfectly, and without a repeat it is worse than a uniform guess (it
# confidently copies from the wrong place). Something in it implements induction. Which
# components?
#
# ## 2. Six methods, the truth hidden
#
# Each method below turns measurements into a list of named components, heads `"L1H0"` and MLPs
# `"MLP0"`, using a threshold fixed in `method_scores` before any planted model was built:
#
# - **attention-pattern scores** (chapter 04): a head is named when its previous-token score or
#   its induction score is above `PATTERN_THRESHOLD`;
# - **zero ablation, one component at a time** (chapters 04 and 07): a component is named when
#   removing it raises the task's loss by more than `ABLATION_THRESHOLD` nats;
# - **mean ablation, one component at a time** (chapter 04): the same, but the component's
#   output is replaced by its mean over the batch and positions (`method_scores.mean_outputs`),
#   not by zero;
# - **resample ablation, one component at a time** (chapter 07): the same, but the output is
#   replaced by the component's output on another sequence of the task (the batch's rows rolled
#   by one, `method_scores.resampled`);
# - **activation patching, one component at a time** (chapter 07): the other way round. Run the
#   other sequence, put back this one component's output from the real one, and name the
#   component when the loss on the real sequence's next tokens falls by more than
#   `ABLATION_THRESHOLD` nats (`method_scores.patching_effects`). Ablation asks what the task
#   cannot do without; patching asks what a component restores alone;
# - **direct logit attribution** (chapter 03): a component is named when it writes more than
#   `DIRECT_THRESHOLD` of the positive direct logit of the right answer.
#
# First the patterns, every head's two scores side by side:

# %%
print(f"thresholds: pattern {method_scores.PATTERN_THRESHOLD}, ablation "
      f"{method_scores.ABLATION_THRESHOLD} nats, direct share {method_scores.DIRECT_THRESHOLD}")
_, cache = model.run_with_cache(tokens, names=["pattern"])
n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
pattern_scores = torch.stack([torch.stack([circuits.previous_token_score(cache["pattern", layer]),
                                           circuits.induction_score(cache["pattern", layer], n)])
                              for layer in range(n_layers)])  # (layers, 2, heads)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.2))
for ax, kind, title in zip(axes, range(2), ("previous-token score", "induction score")):
    viz.heatmap(ax, pattern_scores[:, kind], [f"H{h}" for h in range(n_heads)],
                [f"L{layer}" for layer in range(n_layers)], cmap="Blues", vmin=0, vmax=1,
                title=title)
plt.tight_layout()
plt.show()

# %% [markdown]
# Two heads of block 0 look like previous-token heads and two of block 1 look like induction
# heads. Patterns say where a head looks, not whether anything uses what it writes. Ablation
# asks that.
#
# ### Exercise 9.1: an ablation sweep
# 🟢 Easy, 10 minutes. Write `ablation_effects(model, tokens, scored, labels)`: for each label
# in `labels`, remove that one component (`method_scores.ablation_hooks(label)` gives the hooks)
# and return `{label: increase}`, how many nats the task's mean loss at the `scored` positions
# rises above the clean loss (`method_scores.task_loss(model, tokens, scored, hooks)`).
#
# *Nudge:* Measure the clean loss once; then remove each component alone and compare with that clean
# loss.
#
# *Hint:* each component is removed alone, from the clean model: start every ablation from no
# hooks.

# %%
def ablation_effects(model, tokens, scored, labels):
    # BEGIN SOLUTION
    clean = method_scores.task_loss(model, tokens, scored)
    return {label: method_scores.task_loss(model, tokens, scored,
                                           method_scores.ablation_hooks(label)) - clean
            for label in labels}
    # END SOLUTION


# %% tags=["check"]
ch09.check_ablation_effects(ablation_effects, model)

# %% [markdown]
# Patching is the sweep the other way round: the run on other sequences, with one component's
# output put back from the real ones.
#
# ### Exercise 9.3: a patching sweep
# 🟢 Easy, 10 minutes. Write `patching_effects(model, tokens, scored, labels)`: for each label,
# run the resampled sequences (`method_scores.resampled(tokens)`) with that one component's
# output on `tokens` put back (`method_scores.ablation_hooks(label, method_scores.outputs(model,
# tokens))`), and return `{label: fall}`, how many nats the loss at the `scored` positions of the
# *real* sequences' next tokens falls below the resampled run's.
#
# *Nudge:* which run is patched, where do the values come from, and whose next tokens is the
# loss about? Answer all three before writing a line.
#
# *Hint:* `method_scores.task_loss(model, corrupt, scored, hooks, targets=tokens)`; the base is
# the same call without hooks, and the fall is base minus patched.

# %%
def patching_effects(model, tokens, scored, labels):
    # BEGIN SOLUTION
    corrupt = method_scores.resampled(tokens)
    clean = method_scores.outputs(model, tokens)
    base = method_scores.task_loss(model, corrupt, scored, targets=tokens)
    return {label: base - method_scores.task_loss(model, corrupt, scored,
                                                  method_scores.ablation_hooks(label, clean),
                                                  targets=tokens)
            for label in labels}
    # END SOLUTION


# %% tags=["check"]
ch09.check_patching_effects(patching_effects, model)

# %% [markdown]
# Both sweeps, with your versions once their checks have passed (the package's,
# `method_scores.ablation_effects` and `method_scores.patching_effects`, until then):

# %%
labels = method_scores.components(model)
sweeps = {"zero-ablated alone: loss rise": yours("Exercise 9.1", ablation_effects,
                                                  method_scores.ablation_effects),
          "patched back alone: loss fall": yours("Exercise 9.3", patching_effects,
                                                  method_scores.patching_effects)}
fig, axes = plt.subplots(1, 2, figsize=(10, 2.2))
for ax, (title, sweep) in zip(axes, sweeps.items()):
    effects = sweep(model, tokens, scored, labels)
    ax.bar(labels, [effects[c] for c in labels], color="C3")
    ax.axhline(method_scores.ABLATION_THRESHOLD, color="grey", ls=":", label="threshold")
    ax.set(ylabel="nats", title=f"each component {title}")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
named = method_scores.named_by(model, tokens, scored)  # all six methods, at their thresholds
for method, found in named.items():
    print(f"{method:46} names {found}")

# %% [markdown]
# The methods disagree. Before reading on, write your hypothesis: the components you
# believe implement the task, and so would be in the planted truth. The list starts as what the
# patterns name; replace it with yours.

# %%
hypothesis = named["attention pattern scores"]  # your hypothesis: edit before the next section
print("hypothesis:", hypothesis)

# %% [markdown]
# ### Exercise 9.4 (open): one component, as a claim
# 🟠 Medium, 15 minutes. Before the truth is shown, put one component of your hypothesis to a
# test that could fail. Write `task_loss_rise(site, sample)`: `sample.data` is `(tokens,
# scored)` of the task and `sample.model` the model to run; remove the component
# `site.component` names (`method_scores.ablation_hooks(label)`) and return, per sequence, how
# much its mean loss at the scored positions rises, (n,). Then `component_design()`: your claim
# and threshold in nats, `effect=claims.Site("L1H0", (1,))` (or your component), and a matched
# control: another component of the same layer and kind. The check judges it on a batch drawn
# with another seed, and refuses a design that passes on an untrained copy of the model. The
# next section shows whether the truth agrees.
#
# *Nudge:* chapter 04's Exercise 4.6 again, with the task's own scored positions; which
# component of the same layer would you expect to do nothing?
#
# *Hint:* `torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:],
# reduction="none")` is (batch, pos - 1); with `scored` as a float mask, `(loss * mask).sum(1) /
# mask.sum(1)` per sequence, with and without the hooks (`with sample.model.hooks(hooks):`).

# %%
@torch.no_grad()
def task_loss_rise(site, sample):
    # BEGIN SOLUTION
    tokens, scored = sample.data
    mask = scored.float()
    rise = []
    for hooks in ([], method_scores.ablation_hooks(site.component)):
        with sample.model.hooks(hooks):
            logits = sample.model(tokens)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:],
                                                 reduction="none")  # (batch, pos - 1)
        rise.append((loss * mask).sum(1) / mask.sum(1))
    return (rise[1] - rise[0]).cpu()  # (batch,): nats, per sequence
    # END SOLUTION


def component_design():
    # BEGIN SOLUTION
    return claims.Design(
        claims.Claim("The task needs L1H0", "rise of the task's loss with L1H0 removed", 1.0,
                     "the same removal of L1H3, another head of block 1"),
        effect=claims.Site("L1H0", (1,)), control=claims.Site("L1H3", (1,)),
        measure=task_loss_rise)
    # END SOLUTION


# %% tags=["check"]
component_verdict = ch09.check_component_design(component_design, model)

# %% [markdown]
# ## 3. The truth, and the methods scored
#
# A method's answer is a set of names; the truth is another. Two numbers compare them:
# **precision**, the share of the named components that are in the truth (a method that names
# decoys has low precision), and **recall**, the share of the truth that was named (a method
# that misses a step has low recall). A method that names nothing has no precision at all, not
# a precision of zero: it made no claim to be wrong about.
#
# ### Exercise 9.2: precision and recall
# 🟢 Easy, 10 minutes. Write `precision_recall(named, truth)`: two collections of labels (lists,
# possibly with repeats). Return `(precision, recall)` as floats, with precision `None` when
# nothing is named. Count each component once.
#
# *Nudge:* Think of both as sets first; then count what they share.
#
# *Hint:* `set(named) & set(truth)` is what they share; precision divides by what was named, recall
# by the truth.

# %%
def precision_recall(named, truth):
    # BEGIN SOLUTION
    named, truth = set(named), set(truth)
    hits = len(named & truth)
    return (hits / len(named) if named else None), hits / len(truth)
    # END SOLUTION


# %% tags=["check"]
ch09.check_precision_recall(precision_recall, model)

# %%
truth = planted.truth("induction")
print("the truth:", truth["heads"], "\ndecoys:", truth["decoys"])
planted_components = method_scores.truth_components("induction")
for method, found in {"your hypothesis": hypothesis, **named}.items():
    result = method_scores.score(found, planted_components)  # the package's precision_recall
    print(f"{method:46} precision {result['precision']}, recall {result['recall']:.2f}")

# %% [markdown]
# On this model ablation gets it right, patterns name both decoys, and direct logit attribution
# misses the previous-token head: L0H0 writes nothing the unembedding reads, it only changes what
# the induction head's keys see, an **indirect** effect, which a direct attribution cannot
# measure by construction.
#
# One model is one test. `method_scores.table()` runs every method on every planted model
# (`python -m mechinterp_course.method_scores` writes it to a file, which the course ships). It
# adds three methods to the six: **attribution patching, one component at a time** (chapter 10:
# activation patching's effect estimated from one backward pass, named at the same threshold),
# **linear probes of the answer** (chapter 07: a component is named when a probe reads the
# right next token from its output where the task scores it, on held-out batches, with accuracy
# above `PROBE_THRESHOLD`) and **the logit lens, one sublayer at a time** (chapter 03: read the
# residual stream through the final norm and the unembedding before and after each attention
# layer and each MLP, and name the sublayer across which the right token's log-probability
# rises by more than the ablation's threshold). The lens reads between sublayers, so it cannot
# name a head: it names `attn1` or `MLP0`, and is scored against the sublayers that hold the
# truth. Here the table is rerun live, and must equal the shipped one: a table that no longer
# matches the code that made it is a story, not a result.

# %%
shipped = json.loads(method_scores.RESULTS.read_text())
live = method_scores.table()
assert live == shipped, "stale table: rerun python -m mechinterp_course.method_scores"
methods = list(next(iter(live.values())))
fig, axes = plt.subplots(1, 2, figsize=(10, 2.6))
for ax, key in zip(axes, ("precision", "recall")):
    grid = torch.tensor([[float("nan") if live[m][k][key] is None else live[m][k][key]
                          for k in methods] for m in live])
    viz.heatmap(ax, grid, [k.split(",")[0] for k in methods], list(live), cmap="Greens",
                vmin=0, vmax=1, title=key)
plt.tight_layout()
plt.show()
for model_name, rows in live.items():
    for method, result in rows.items():
        print(f"{model_name:12} {method:46} names {result['named']}")

# %% [markdown]
# Each method fails somewhere, and each failure has a name:
#
# - **Look-alikes** (attention patterns): on `planted-induction` the patterns name both decoys,
#   which attend exactly as the real heads do; on `planted-fact-lookup` they name the decoy
#   mover L1H1, which attends from the relation token to the subject as the real mover does
#   but copies the subject's *position*, which nothing reads.
# - **Redundancy** (zero, mean or resample ablation, one at a time): `planted-redundant` has
#   two induction heads, each enough on its own. Removing either alone changes little, so each
#   sweep names only the previous-token head and calls both induction heads unimportant: the
#   trap behind "backup" heads. Replacing a head by its mean or by its output on another
#   sequence instead of zero does not help, as the other head still does the job.
# - **Patching escapes that trap, and has its own** (activation patching, one at a time): put
#   back either redundant head alone and it restores the answer, so patching names both. On
#   the first four models it names exactly the truth, which is less than it sounds. On
#   `planted-induction` it names the previous-token head L0H0, which alone leaves the right
#   answer *less* likely than a uniform guess over the vocabulary would (printed below): the
#   loss falls because the other sequence's confident wrong copy breaks, and a loss counts that
#   as restoring.
# - **Parts needed only together** (activation patching, one at a time, again): `planted-and`
#   answers from two tokens at once. L0H0 brings the first operand to the last position, L0H1
#   the second, and each neuron of MLP 0 fires only when both of its operands are there (an
#   AND). Patch either head back alone into the run on other operands and the MLP sees one
#   right operand and one wrong one: nothing is restored, so patching names neither head, only
#   the MLP that writes the answer. Ablation, which asks what the task cannot do without,
#   names all three. It is the redundancy trap turned round: there each part suffices and none
#   is needed alone; here each part is needed and none suffices.
# - **Indirect effects** (direct logit attribution, and the logit lens): they find only what
#   writes the answer itself, and miss what feeds it: the previous-token head, on the fact
#   lookup the MLP memory that the mover reads from, and on the AND the operand heads. The
#   lens sees the answer appear across one sublayer on every model, the one holding what
#   direct attribution names: where the answer becomes readable is not how it was made.
# - **A linear estimate of a saturated effect** (attribution patching): on both induction models
#   it names the induction heads and misses the previous-token head L0H0, whose patch restores
#   more than the threshold: its effect passes through the induction head's attention, a
#   softmax far into saturation, and the first-order estimate even has the wrong sign (printed
#   below). On `planted-and` it names all three parts, the truth, for a wrong reason: it
#   estimates that each operand's head alone restores several nats, where the patch restores
#   none. A linear estimate adds up effects that exist only together.
# - **Decodable is not used** (linear probes of the answer): a probe names what *carries* the
#   answer where it is read, used or not, and misses what *makes* it. It names the decoy L1H1 on
#   `planted-induction` and, on `planted-superposition`, the previous-token decoy (along a chain
#   the previous word gives away the answer). It misses the previous-token heads, the fact
#   lookup's memory (which acts at the subject, not where the answer is read) and the AND's
#   operand heads (one operand says nothing of the answer).
# - **A look-alike with no use at all** (attention patterns again): `planted-superposition`
#   has a perfect previous-token head, L0H0, and nothing reads what it writes; its successor
#   task runs through MLP 0 alone. Patterns name L0H0 and nothing else: precision 0, recall 0.
#   Section 4 comes back to this model.

# %%
induction_rows, redundant_rows, fact_rows, superposition_rows, and_rows = (
    live[m] for m in ("induction", "redundant", "fact-lookup", "superposition", "and"))
decoys = sorted(f"L{layer}H{head}" for layer, head in truth["decoys"].values())
assert set(decoys) <= set(induction_rows["attention pattern scores"]["named"])
assert fact_rows["attention pattern scores"]["named"] == ["L1H0", "L1H1"]
assert redundant_rows["zero ablation, one component at a time"]["named"] == ["L0H0"]
assert redundant_rows["mean ablation, one component at a time"]["named"] == ["L0H0"]
assert induction_rows["direct logit attribution"]["named"] == ["L1H0"]
assert fact_rows["direct logit attribution"]["named"] == ["L1H0"]
assert induction_rows["zero ablation, one component at a time"]["precision"] == 1.0
assert induction_rows["zero ablation, one component at a time"]["recall"] == 1.0
assert superposition_rows["attention pattern scores"]["named"] == ["L0H0"]
assert superposition_rows["zero ablation, one component at a time"]["named"] == ["MLP0"]
assert redundant_rows["resample ablation, one component at a time"]["named"] == ["L0H0"]
assert redundant_rows["activation patching, one component at a time"]["recall"] == 1.0
attribution, probed = ("attribution patching, one component at a time",
                       "linear probes of the answer, one component at a time")
assert induction_rows[attribution]["named"] == ["L1H0"] == fact_rows[probed]["named"][:1]
assert redundant_rows[attribution]["named"] == ["L1H0", "L1H1"]
assert induction_rows[probed]["named"] == ["L1H0", "L1H1"]  # the decoy carries the answer too
assert superposition_rows[probed]["named"] == ["L0H0", "MLP0"]
assert fact_rows[probed]["named"] == ["L1H0"] and and_rows[probed]["named"] == ["MLP0"]
lensed = "logit lens, one sublayer at a time"
for rows in (induction_rows, redundant_rows, fact_rows):
    assert rows[lensed]["named"] == ["attn1"] and rows[lensed]["recall"] == 0.5
assert superposition_rows[lensed]["named"] == and_rows[lensed]["named"] == ["MLP0"]
assert and_rows[lensed]["recall"] == 0.5  # the operand heads' layer is missed
for rows in live.values():  # on every model, the sublayer holding what direct attribution names
    directly = rows["direct logit attribution"]["named"]
    assert directly and rows[lensed]["named"] == sorted(
        {c if c.startswith("MLP") else f"attn{c[1]}" for c in directly})
# L0H0 patched alone on planted-induction: named, and still worse than a uniform guess
corrupted_loss = method_scores.task_loss(model, method_scores.resampled(tokens), scored,
                                         targets=tokens)
restored = method_scores.patching_effects(model, tokens, scored, ["L0H0"])["L0H0"]
# ...because it breaks the other sequence's own copy: that run's loss on its own next tokens
patched_l0h0 = method_scores.ablation_hooks("L0H0", method_scores.outputs(model, tokens))
own_copy = [method_scores.task_loss(model, method_scores.resampled(tokens), scored, hooks)
            for hooks in (None, patched_l0h0)]
print(f"planted-induction, run on other sequences: loss {corrupted_loss:.2f} nats; with L0H0 "
      f"patched back {corrupted_loss - restored:.2f}; a uniform guess {chance:.2f}; that run's "
      f"loss on its own copy {own_copy[0]:.3f}, with L0H0 patched back {own_copy[1]:.2f}")
assert restored > method_scores.ABLATION_THRESHOLD and corrupted_loss - restored > chance
assert own_copy[1] - own_copy[0] > chance
l0h0_estimate = method_scores.attribution_effects(model, tokens, scored, ["L0H0"])["L0H0"]
print(f"L0H0's patch restores {restored:.2f} nats; attribution patching estimates "
      f"{l0h0_estimate:.2f}")
assert l0h0_estimate < 0 < method_scores.ABLATION_THRESHOLD < restored  # the wrong sign

# %% [markdown]
# The AND, measured: each operand's head patched back alone, and both together, into the run
# on other operands (the batch's prompts are ordered so that the other run's prompt differs
# in both operands).

# %%
conjunction = mc.load_model("planted-and", device=device)
and_tokens, and_scored = method_scores.task("and", conjunction)
movers = [f"L{layer}H{head}" for layer, head in planted.truth("and")["heads"].values()]
and_other = method_scores.resampled(and_tokens)  # the other run: other operands
and_corrupted = method_scores.task_loss(conjunction, and_other, and_scored, targets=and_tokens)
and_outputs = method_scores.outputs(conjunction, and_tokens)


def and_restored(heads):
    """Nats the loss on the real answers falls when `heads` are patched back together."""
    back = method_scores.ablation_hooks(heads, and_outputs)
    return and_corrupted - method_scores.task_loss(conjunction, and_other, and_scored, back,
                                                   targets=and_tokens)


and_alone = {h: and_restored([h]) for h in movers}
and_together = and_restored(movers)
and_estimated = method_scores.attribution_effects(conjunction, and_tokens, and_scored, movers)
print(f"planted-and, run on other operands: loss {and_corrupted:.2f} nats; patched back alone "
      + ", ".join(f"{h} restores {v:.2f} (attribution patching's estimate {and_estimated[h]:.2f})"
                  for h, v in and_alone.items()) + f"; both together {and_together:.2f}")
print("patching one at a time names", and_rows["activation patching, one component at a time"],
      "\nzero ablation names", and_rows["zero ablation, one component at a time"])
assert and_rows["activation patching, one component at a time"]["named"] == ["MLP0"]
assert and_rows["zero ablation, one component at a time"]["recall"] == 1.0
assert max(and_alone.values()) < 0.1 * method_scores.ABLATION_THRESHOLD  # alone: nothing
assert and_together > 0.9 * and_corrupted  # together: everything
assert min(and_estimated.values()) > method_scores.ABLATION_THRESHOLD  # the estimate: each alone

# %% [markdown]
# **Composition scores** (chapter 04) name edges, not components: how much of what an earlier
# head writes a later head can read into its keys, queries or values, from the weights alone.
# `method_scores.edge_table()` names an edge when its score is above every score of 200 random
# matrix pairs of the same shape, and scores the edges against the planted ones. Beside it,
# **path patching, one edge at a time** (chapter 10): the receiver's key, query or value sees the
# sender's output from the run on other sequences, along every path between them, and the edge
# is named when the task's loss rises by more than the ablation's threshold. Weights say what a
# head *could* read; path patching asks whether the task needs it:

# %%
edges = method_scores.edge_table()
assert edges == json.loads(method_scores.EDGE_RESULTS.read_text()), "stale edge table"
for model_name, rows in edges.items():
    for method, result in rows.items():
        print(f"{model_name:12} {method:34} names {result['named']}: precision "
              f"{result['precision']}, recall {result['recall']}")
assert edges["induction"]["composition scores"]["named"] == ["L0H0->L1H0 key", "L0H0->L1H1 key"]
assert edges["induction"]["path patching, one edge at a time"]["named"] == ["L0H0->L1H0 key"]
assert edges["redundant"]["path patching, one edge at a time"]["named"] == []

# %% [markdown]
# On `planted-induction` the edge into the decoy L1H1 scores as high as the edge into the real
# induction head: L1H1 reads the previous-token head's output exactly as L1H0 does, and nothing
# reads what L1H1 writes. Path patching names only the real edge. On `planted-redundant` the
# same two edges are both real, and path patching, one edge at a time, names neither: the
# redundancy trap again, as each induction head still gets the real previous token while the
# other's edge is patched.
#
# The redundancy trap has a test that catches it: remove the components *together*. If two
# heads each suffice, removing both breaks the task, and the loss rises by far more than the sum
# of the two single effects. The matched control is another pair of heads of the same layer.

# %%
redundant = mc.load_model("planted-redundant", device=device)
pair, control_pair = ["L1H0", "L1H1"], ["L1H2", "L1H3"]
singles = method_scores.ablation_effects(redundant, tokens, scored, pair)
clean_redundant = method_scores.task_loss(redundant, tokens, scored)
together = method_scores.task_loss(redundant, tokens, scored,
                                   method_scores.ablation_hooks(pair)) - clean_redundant
control = method_scores.task_loss(redundant, tokens, scored,
                                  method_scores.ablation_hooks(control_pair)) - clean_redundant
print(f"alone: {', '.join(f'{c} {v:.4f}' for c, v in singles.items())} nats; together "
      f"{together:.2f}; the control pair together {control:.4f}")
assert max(singles.values()) < 0.1 * method_scores.ABLATION_THRESHOLD
assert together > 0.8 * chance and control < 0.1 * method_scores.ABLATION_THRESHOLD

# %% [markdown]
# ## 4. Decodable is not used: the probe trap, planted
#
# `planted-fact-lookup` answers prompts like `"Y C Z ab"`: the relation token `ab` asks for the
# fact stored about the subject `C`. MLP 0 is a key-value memory that writes each subject's fact
# at the subject's position, and the mover head L1H0 copies it to the last position. The decoy
# mover L1H1 copies where the subject *was* (its position) to the last position too, and nothing
# reads it.
#
# So at the last position a linear probe (chapter 07) can decode both the fact and the subject's
# position. A probe's accuracy says the information is there; it cannot say the model uses it.
# The test of use is an intervention: project the probe's directions out of the residual stream
# and see whether the answer changes, with as many random directions as the control.

# %%
fact = mc.load_model("planted-fact-lookup", device=device)


def last_residuals(seed, model=fact):
    """Prompts, answers, the last position's residual after block 1 (batch, d_model), and two
    labels: the fact's index and the subject's position."""
    prompts, answers = planted.fact_prompts(240, seed)
    _, fact_cache = model.run_with_cache(model.to_tokens(prompts), names=[("resid_post", 1)])
    facts = torch.tensor([planted.ATTRIBUTES.index(a) for a in answers])
    where = torch.tensor([[w in planted.SUBJECTS for w in p.split()].index(True) + 1
                          for p in prompts])  # + 1 for <bos>
    return prompts, answers, fact_cache["resid_post", 1][:, -1].cpu(), facts, where


def accuracy(prompts, answers, hooks=()):
    with fact.hooks(list(hooks)):
        best = fact(fact.to_tokens(prompts))[:, -1].argmax(-1).cpu()
    return float((best == torch.tensor([fact.to_single_token(a) for a in answers])).float().mean())


def without(directions):
    """A hook projecting `directions` (k, d_model) out of block 1's output at the last position."""
    remove = interventions.project_out(directions.to(device))
    return [(("resid_post", 1), lambda r: torch.cat([r[:, :-1], remove(r[:, -1:])], 1))]


_, _, x, facts, where = last_residuals(0)
prompts, answers, x_test, facts_test, where_test = last_residuals(1)  # held out
fact_probe = probes.fit_probe(x, facts, len(planted.ATTRIBUTES))
where_probe = probes.fit_probe(x, where, planted.N_POS)
g = torch.Generator().manual_seed(0)
shuffled_probe = probes.fit_probe(x, facts[torch.randperm(len(x), generator=g)],
                                  len(planted.ATTRIBUTES))  # the null: labels at random
decoded = {"fact": fact_probe.accuracy(x_test, facts_test),
           "subject position": where_probe.accuracy(x_test, where_test),
           "fact, shuffled labels (null)": shuffled_probe.accuracy(x_test, facts_test)}
fact_dirs = fact_probe.W[:, facts.unique()].T  # (12, d_model): one direction per fact seen
where_dirs = where_probe.W[:, where.unique()].T  # (positions seen, d_model)
used = {"nothing removed": accuracy(prompts, answers),
        "fact directions removed": accuracy(prompts, answers, without(fact_dirs)),
        "position directions removed": accuracy(prompts, answers, without(where_dirs))}
for k in (len(fact_dirs), len(where_dirs)):  # the matched control: as many random directions
    used[f"{k} random directions removed"] = accuracy(
        prompts, answers, without(torch.randn(k, fact.cfg.d_model, generator=g)))
print("probe accuracy on held-out prompts:", {k: round(v, 3) for k, v in decoded.items()})
print("the model's accuracy:", {k: round(v, 3) for k, v in used.items()})
assert decoded["fact"] > 0.95 and decoded["subject position"] > 0.95
assert decoded["fact, shuffled labels (null)"] < 0.5
assert used["nothing removed"] == 1.0 and used["fact directions removed"] < 0.2
assert min(v for k, v in used.items() if "fact" not in k) == 1.0

# %% [markdown]
# Both probes decode their label almost perfectly, far above the shuffled-label null. Only one
# of the two is used: removing the fact's directions takes the answer to chance, removing the
# position's directions, or as many random ones, changes nothing. `planted.truth` lists the
# position under "decodable, never read". In a model whose truth you do not have, a probe result
# alone can only say "decodable".
#
# How much does "decodable" say even about what the weights *do*? Fit the same probes on the
# same architecture with random weights (`models.untrain`, GPT-2's initialisation), which
# computes nothing:

# %%
random_fact = mc.load_model("planted-fact-lookup", device=device)
models.untrain(random_fact.hf, seed=0)
_, _, rx, rfacts, rwhere = last_residuals(0, random_fact)
_, _, rx_test, rfacts_test, rwhere_test = last_residuals(1, random_fact)
untrained_decoded = {
    "fact": probes.fit_probe(rx, rfacts, len(planted.ATTRIBUTES)).accuracy(rx_test, rfacts_test),
    "subject position": probes.fit_probe(rx, rwhere, planted.N_POS).accuracy(rx_test,
                                                                             rwhere_test)}
print("probe accuracy on the untrained model:",
      {k: round(v, 3) for k, v in untrained_decoded.items()})
assert untrained_decoded["fact"] > 0.95 and untrained_decoded["subject position"] > 0.9

# %% [markdown]
# The untrained model decodes both too. Its attention averages the context into every position,
# and the subject is in the context, so its embedding, and with it anything that is a function
# of the subject (its fact, where it stands), reaches the last position in a linearly readable
# form. (The bound on the position was set after measuring three random initialisations while
# writing this, just under the lowest of them, which is this one.) A high probe accuracy is the
# *start* of a claim: compare it with the untrained model, and show use by intervention.
#
# ### Superposition: 32 words in 9 dimensions
#
# `planted-superposition` stores each of its 32 tokens as a *two-hot* code: a 1 at two of 9
# coordinates of its token block, so 32 features share 9 dimensions, and two codes overlap in
# one coordinate or none (chapter 05's superposition, planted). Its task: each word's fixed
# successor. MLP 0 decodes: its neuron t fires for token t's code alone, and the nonlinearity
# removes the interference from codes that share a coordinate (their pre-activation is -10).
# L0H0, the decoy, copies the previous word's code into a block nothing reads.
#
# Probe both words where MLP 0 reads them, on random words (so the two are independent), and
# count the directions each probe rests on: the singular directions of its weights above half
# the largest singular value (a probe fitted to finite data leans a little on every coordinate;
# that tail is small).

# %%
sup = mc.load_model("planted-superposition", device=device)
sup_truth = planted.truth("superposition")
start, stop = sup_truth["blocks"]["token"]
W_E_code = sup.hf.transformer.wte.weight[:, start:stop].cpu()  # (32 tokens, 9)
fig, ax = plt.subplots(figsize=(9, 3))
viz.heatmap(ax, W_E_code.T, sup.to_str_tokens(torch.arange(sup.cfg.d_vocab)),
            [str(i) for i in range(stop - start)], cmap="Greys", vmin=0, vmax=1,
            title="each token's code: 32 tokens, 9 coordinates", fmt="{:.0f}")
plt.show()
successor = torch.zeros(sup.cfg.d_vocab, dtype=torch.long)
for word, next_word in planted.SUCCESSOR.items():
    successor[sup.to_single_token(word)] = sup.to_single_token(next_word)


def random_words(batch, seed, length=20):
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(1, sup.cfg.d_vocab, (batch, length), generator=g)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), words], 1).to(device)


def successor_accuracy(tokens, hooks=()):
    with sup.hooks(list(hooks)):
        best = sup(tokens)[:, 1:].argmax(-1).cpu()
    return float((best == successor[tokens[:, 1:].cpu()]).float().mean())


def mid_residuals(tokens):
    """After block 0's attention, from the second word on: (n, d_model), current, previous."""
    _, sup_cache = sup.run_with_cache(tokens, names=[("resid_mid", 0)])
    x = sup_cache["resid_mid", 0][:, 2:].reshape(-1, sup.cfg.d_model).cpu()
    return x, tokens[:, 2:].reshape(-1).cpu(), tokens[:, 1:-1].reshape(-1).cpu()


x, current, previous = mid_residuals(random_words(256, seed=0))
test_words = random_words(64, seed=1)
x_test, current_test, previous_test = mid_residuals(test_words)
sup_probes, sup_directions, sup_singular = {}, {}, {}
for label, y, y_test in (("current", current, current_test),
                         ("previous", previous, previous_test)):
    probe = probes.fit_probe(x, y, sup.cfg.d_vocab)
    U, S, _ = torch.linalg.svd(probe.W[:, y.unique()], full_matrices=False)
    sup_probes[label] = probe.accuracy(x_test, y_test)
    sup_directions[label] = U[:, S > 0.5 * S[0]].T  # (k, d_model)
    sup_singular[label] = S
shuffled_sup = probes.fit_probe(x, current[torch.randperm(len(x), generator=g)],
                                sup.cfg.d_vocab).accuracy(x_test, current_test)
n_dirs = {k: len(v) for k, v in sup_directions.items()}
print("probe accuracy:", {k: round(v, 3) for k, v in sup_probes.items()},
      f"shuffled labels (null) {shuffled_sup:.3f}; directions per probe: {n_dirs}")
mid = ("resid_mid", 0)
sup_used = {"nothing removed": successor_accuracy(test_words)}
for label, dirs in sup_directions.items():
    sup_used[f"{label} word's directions removed"] = successor_accuracy(
        test_words, [(mid, interventions.project_out(dirs.to(device)))])
randoms = torch.randn(n_dirs["current"], sup.cfg.d_model, generator=g)  # matched in number
sup_used[f"{len(randoms)} random directions removed"] = successor_accuracy(
    test_words, [(mid, interventions.project_out(randoms.to(device)))])
print("successor accuracy:", {k: round(v, 3) for k, v in sup_used.items()})
fig, ax = plt.subplots(figsize=(5, 2.5))
for label, S in sup_singular.items():
    ax.plot(S / S[0], "o-", label=f"{label} word's probe")
ax.axhline(0.5, color="grey", lw=0.5)
ax.set(xlabel="singular direction", ylabel="singular value / largest", yscale="log")
ax.legend()
plt.show()
assert min(sup_probes.values()) > 0.95 and shuffled_sup < 0.2
assert n_dirs == {"current": 8, "previous": 8}
assert sup_used["nothing removed"] - sup_used["current word's directions removed"] > 0.9
assert sup_used["previous word's directions removed"] == 1.0
assert sup_used[f"{len(randoms)} random directions removed"] == 1.0

# %% [markdown]
# Both probes read their word perfectly, and each rests on 8 directions for 32 classes: the 9
# coordinates less their constant sum. A probe's directions are not the model's features: 32
# features live in those 8 directions, and MLP 0, not a linear read, is what separates them.
# Removing the current word's 8 directions breaks the task; removing the previous word's, as
# decodable, or 8 random ones, changes nothing. The test suite checks the count against a
# null: on `planted-induction`, whose tokens are one-hot, the same probe rests on more than 20
# directions.
#
# ### An SAE on the same residual
#
# Chapter 06's sparse autoencoder looks for features without being told what they are. Here
# they are known: at `resid_mid 0` each position holds three planted features, its word, its
# position and the word before it, so a TopK SAE with k = 3 (`method_scores.SAE_K`) has room
# for exactly those. A latent *detects* a feature when its firing predicts the feature's
# presence on held-out words with an F1 above `method_scores.MATCH_F1`. The recipe, k and the
# claim's thresholds below were fixed after one exploration (three seeds at k = 3, 4 and 5) and
# before the five seeds shipped, which confirm them. Recall is the share of the 31 current words
# some latent detects. The same
# recipe runs on `planted-induction` as the control: its words are one-hot, the case an SAE is
# built for, while `planted-superposition`'s words share 9 coordinates. One seed runs here
# (about 10 seconds); `python -m mechinterp_course.method_scores` ships five.

# %%
sae_live = {name: method_scores.sae_recovery(name, seed=0) for name in ("induction",
                                                                        "superposition")}
for name, row in sae_live.items():
    print(f"planted-{name:13} words detected {row['recall']:.2f}; latents that detect a planted "
          f"feature {row['precision']:.2f}; variance explained {row['fve']:.3f}")
sae_shipped = json.loads(method_scores.SAE_RESULTS.read_text())
word_recall = {name: torch.tensor([run["recall"] for run in runs])
               for name, runs in sae_shipped["runs"].items()}
recall_gap = claims.bootstrap_ci(word_recall["induction"] - word_recall["superposition"])
print(f"shipped, {len(sae_shipped['meta']['seeds'])} seeds: words detected, one-hot "
      f"{word_recall['induction'].tolist()}, superposed {word_recall['superposition'].tolist()}; "
      f"the gap {recall_gap}")
assert sae_live["induction"]["recall"] >= 0.8 and sae_live["superposition"]["recall"] <= 0.3
assert word_recall["induction"].min() >= 0.8 and word_recall["superposition"].max() <= 0.3
assert recall_gap.low > 0.5
assert sae_live["superposition"]["fve"] < sae_live["induction"]["fve"]

# %% [markdown]
# With one-hot words the SAE finds a latent for almost every word, on every seed; with the
# same words in superposition it finds few, and reconstructs the residual less well than the
# control (the variance explained, printed and asserted). Superposition is what an SAE is
# meant to undo, and here, with this recipe, it does not: the words are decodable (the probe
# above reads them perfectly) and used (MLP 0's neurons read them), and still no latent stands
# for most of them. A larger k, a longer run or another SAE may do better; on a planted model
# that is a question you can answer by measuring, while a trained model has no truth to measure
# the latents against.
#
# ## 5. Back to the course model: what the sweep leaves out
#
# The planted models showed that a one-at-a-time ablation sweep misses components that share a
# job. Run the same six methods, at the same thresholds, on the course model's copying task:

# %%
course = mc.load_model("course", device=device)
course_tokens, course_scored = method_scores.task("induction", course)
course_named = method_scores.named_by(course, course_tokens, course_scored)
for method, found in course_named.items():
    print(f"{method:46} names {found}")
block_2 = [f"L2H{h}" for h in range(course.cfg.n_heads)]
swept_out = [h for h in block_2 if h not in course_named["zero ablation, one component at a time"]]
mean_swept_out = [h for h in block_2
                  if h not in course_named["mean ablation, one component at a time"]]
print("block 2's heads with induction patterns that the sweep does not name:", swept_out,
      "(mean ablation:", mean_swept_out, ")")
assert set(block_2) <= set(course_named["attention pattern scores"]) and len(swept_out) == 3 \
    and mean_swept_out == swept_out
resample_swept_out = [h for h in block_2
                      if h not in course_named["resample ablation, one component at a time"]]
course_corrupted = method_scores.task_loss(course, method_scores.resampled(course_tokens),
                                           course_scored, targets=course_tokens)
course_patched = method_scores.patching_effects(course, course_tokens, course_scored, block_2)
course_chance = float(torch.log(torch.tensor(float(course.cfg.d_vocab))))
print("resample ablation leaves out:", resample_swept_out)
print(f"run on other sequences: loss {course_corrupted:.2f} nats (a uniform guess "
      f"{course_chance:.2f}); with one head of block 2 patched back:",
      {h: round(course_corrupted - course_patched[h], 2) for h in block_2})
assert resample_swept_out == ["L2H1", "L2H3"]
# patching names every head of block 2, and the three the sweep leaves out stay above chance
assert set(block_2) <= set(course_named["activation patching, one component at a time"]) \
    and all(course_corrupted - course_patched[h] > course_chance for h in swept_out)

# %% [markdown]
# Every head of block 2 is an induction head by its pattern (chapter 04), but the sweep names
# only one of them, with zero or with mean ablation. Resample ablation names one more, L2H2,
# and still leaves two out. Patching names all four: each, put back alone into the run on other
# sequences, lowers the loss by more than a nat. But each of the three the sweep left out,
# alone, leaves the loss above a uniform guess, as L0H0 did on `planted-induction`: patching
# one at a time says that a head moves the output, not that it suffices. The methods' lists
# disagree, and none of them is a statement about the heads together.
#
# On `planted-redundant` the sweep left out heads that each sufficed alone. Is that what
# happens here: do the other heads cover for each one removed alone? Remove the three
# together, on 32 fresh repeated sequences, per sequence
# with bootstrap intervals. The threshold is the sweep's own, fixed before: one nat. The
# matched control is three heads of the next block (same kind, same number), which the
# patterns do not name. All the intervals of this section are judged together, so each is
# widened (Bonferroni, chapter 08).

# %%
repeats = method_scores.repeated_distinct(course, n=20, batch=32, seed=0)
half = (repeats.shape[1] - 1) // 2


def loss_rise(heads):
    """Per sequence: the loss on the repeat (after its first token) with `heads` removed,
    minus the clean loss."""
    ablated = circuits.per_token_loss(course, repeats, method_scores.ablation_hooks(heads))
    return (ablated - clean_per_token)[:, half + 1:].mean(1)  # (sequences,)


clean_per_token = circuits.per_token_loss(course, repeats)
control_heads = ["L3H0", "L3H1", "L3H2"]
assert not set(control_heads) & set(course_named["attention pattern scores"])
level = claims.corrected_level(len(block_2) + 4)  # all eight intervals below, judged together
alone = {h: claims.bootstrap_ci(loss_rise([h]), level=level) for h in block_2}
others = claims.bootstrap_ci(loss_rise(swept_out), level=level)
control = claims.bootstrap_ci(loss_rise(control_heads), level=level)
excess = claims.bootstrap_ci(loss_rise(swept_out) - loss_rise(["L2H0"]), level=level)
# removing L2H0 on top of the others, minus removing each part alone: 0 if the effects add up
interaction = claims.bootstrap_ci(loss_rise(block_2) - loss_rise(swept_out) - loss_rise(["L2H0"]),
                                  level=level)
for h, interval in alone.items():
    print(f"{h} alone: {interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}] nats")
print(f"{' + '.join(swept_out)} together: {others.mean:.2f} [{others.low:.2f}, {others.high:.2f}]; "
      f"control L3H0-2: {control.mean:.2f} [{control.low:.2f}, {control.high:.2f}]; together "
      f"minus L2H0 alone: {excess.mean:.2f} [{excess.low:.2f}, {excess.high:.2f}]")
print(f"interaction of L2H0 with the others: {interaction.mean:.2f} [{interaction.low:.2f}, "
      f"{interaction.high:.2f}] nats")
threshold = method_scores.ABLATION_THRESHOLD
assert all(alone[h].high < threshold for h in swept_out)  # the sweep's verdict, with intervals
assert others.low >= threshold and control.high < threshold and excess.low > 0
assert interaction.high < 0

# %% [markdown]
# Each of the three, removed alone, surely costs less than the threshold; removed together they
# surely cost more, and more than L2H0 alone (the excess is measured on the same sequences), while
# three heads of block 3 cost less. The sweep's list is a statement about single removals, not
# about the circuit: read as "L2H0 is the induction head", it is the redundancy trap again.
# Chapter 08 reached the same place by another road (mean-ablating L2H0 alone loses less than
# half of the copying; keeping all four heads of block 2 keeps it). What the planted model adds
# is the reason to expect it, and the test that shows it.
#
# What this section does not show: *how* the four heads share the work. Removing L2H0 on top of
# the other three adds surely less than removing it alone (the interaction's interval is below
# zero): the effects do not add up, so no split of "credit" between the four heads means
# anything. The heads overlap, as the planted backup did, but only in part: unlike on
# `planted-redundant`, L2H0 alone is not covered by the others.
#
# ## Summary
#
# - A planted model's truth is data, so a method's answer can be scored: precision (did it name
#   decoys?) and recall (did it miss steps?).
# - Attention patterns name look-alikes; one-at-a-time ablation (zero, mean or resample)
#   misses redundant components; direct logit attribution and the logit lens miss indirect
#   effects. Each failure was shown on a model built to have it, and each has a test that
#   catches it: ablate what the pattern names, ablate together, and trace effects through later
#   components.
# - Patching one component at a time finds redundant components, but a loss also falls when a
#   patch only breaks the other run's answer: a head named by patching has moved the output,
#   which is not the same as restoring it.
# - A probe decodes; an intervention along the probe's directions, against random directions of
#   equal number, shows use.
# - An SAE's latents are a hypothesis too: trained at the planted number of active features, the
#   same recipe detects almost every one-hot word and few of the same words in superposition.
# - On the course model, the heads a sweep leaves out of block 2 carry, together, more of the
#   copying than the one it names.
#
# **Further reading:** Gupta et al. (2024), *InterpBench*; Lindner et al. (2023), *Tracr:
# Compiled Transformers as a Laboratory for Interpretability*; McGrath et al. (2023), *The Hydra
# Effect: Emergent Self-repair in Language Model Computations*; Belinkov (2022), *Probing
# Classifiers: Promises, Shortcomings, and Advances*; Zhang and Nanda (2024), *Towards Best
# Practices of Activation Patching*.

# %% [markdown]
# ## Bonus
#
# For after the chapter: extensions, a paper to replicate, and a question the course model's
# world can answer. No checks here; the course's rules still hold (a matched control, a null,
# a threshold fixed first).
#
# - **Extend:** score the six methods on planted-redundant with mean ablation, and with two
#   components removed at a time.
# - **Replicate:** ACDC (Conmy et al. 2023) in its simplest form: prune edges of planted-induction
#   greedily while the task's loss stays within a threshold, and score what is left against the
#   truth.
# - **Open question:** which method finds the AND model's operand heads, and why do the others miss
#   them (their effect alone, or together)?
