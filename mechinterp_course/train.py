"""Train the course model from nothing but the world: ``python -m mechinterp_course.train``.

Deterministic: the tokenizer, the initial weights and every batch are functions of the seed (batch
``s`` is drawn from ``numpy.random.default_rng([seed, s])``), so resuming needs no data state and
two runs on the same machine give the same weights. Resumable: a checkpoint (weights, optimizer,
step) is written every ``--eval-every`` steps; rerunning the command continues from it.
Training stops when the four model-card metrics (see `evaluate`) hold, or at ``--max-steps``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import evaluate, provenance, world

EOT = "<|endoftext|>"
MODEL_CONFIG = dict(n_layer=4, n_embd=128, n_head=4, n_positions=256, vocab_size=2048,
                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                    eos_token_id=0)
RANDOM_REPEAT_PROB = 0.1  # share of documents that are repeated random token ids
# Learned position embeddings start as sines and cosines (Vaswani et al., 2017) rather than noise:
# since PE(t - 1) is a fixed linear map of PE(t), "attend to the previous token" is easy to learn.
POSITION_INIT = "sinusoidal"
# Each entry's size at initialisation. At 0.03 (a position vector as long as a token's) the heads of
# layer 1 shared a blurred recency kernel; ten times larger, one layer-0 head takes the previous
# token sharply (0.88 on world text against 0.30, same seed and steps).
POSITION_SCALE = 0.3


def sinusoidal_positions(n_positions: int, d_model: int,
                         scale: float = POSITION_SCALE) -> torch.Tensor:
    """(n_positions, d_model) sines and cosines of geometrically spaced frequencies."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2) / d_model)
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
    return scale * table


def build_tokenizer(vocab_size: int = 2048, seed: int = 0):
    """A byte-level BPE tokenizer trained on world text: words become tokens with their leading
    space, as in GPT-2 (' Austin')."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(world.tokenizer_corpus(seed), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT,
                                   unk_token=EOT, pad_token=EOT)


def batch_tokens(tokenizer, seed: int, step: int, batch: int, n_ctx: int) -> torch.Tensor:
    """Training batch number `step`: (batch, n_ctx) ids of documents joined by EOT."""
    rng = np.random.default_rng([seed, step])
    eot, vocab = tokenizer.eos_token_id, len(tokenizer)
    need = batch * n_ctx
    ids: list[int] = []
    while len(ids) < need:
        if rng.random() < RANDOM_REPEAT_PROB:
            half = rng.integers(1, vocab, size=int(rng.integers(8, 41))).tolist()
            doc = half * int(rng.integers(2, 4))
        else:
            doc = tokenizer(world.sample_document(rng).text, add_special_tokens=False)["input_ids"]
        ids += [eot] + doc
    return torch.tensor(ids[:need]).view(batch, n_ctx)


def lr_at(step: int, max_steps: int, lr: float, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to a tenth. A plain float: it is saved in the optimizer
    state, which loads with weights_only=True."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, max_steps - warmup)
    return float(lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))))


def check_train_args(max_steps=4000, batch_size=32, lr=2e-3, eval_every=250, stop_step=None,
                     position_scale=POSITION_SCALE, device="cpu", threads=None) -> None:
    """Refuse settings that would fail later (a ZeroDivisionError after the first step) or
    silently write a useless checkpoint (no steps, a NaN learning rate), before any work."""
    def whole(name, v, low=1):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"--{name} must be a whole number >= {low}, got {v!r}")
    whole("max-steps", max_steps)
    whole("batch-size", batch_size)
    whole("eval-every", eval_every)
    if threads is not None:
        whole("threads", threads)
    if stop_step is not None:
        whole("stop-step", stop_step)
        if stop_step > max_steps:
            raise ValueError(f"--stop-step {stop_step} is past --max-steps {max_steps}: the "
                             "schedule ends at --max-steps")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"--lr must be a positive number, got {lr!r}")
    if not (isinstance(position_scale, (int, float)) and math.isfinite(position_scale)
            and position_scale >= 0):
        raise ValueError(f"--position-scale must be a number >= 0, got {position_scale!r}")
    kind = str(device).split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None
                 and torch.backends.mps.is_available()}
    if kind not in available:
        raise ValueError(f"--device {device!r} is not a device: use cpu, cuda or mps")
    if not available[kind]:
        raise ValueError(f"--device {device}: this torch ({torch.__version__}) cannot use "
                         f"{kind} here; use --device cpu")


def atomic_write(path: Path, write) -> None:
    """write(temporary path), then rename over `path`: a run killed mid-write leaves the old
    file whole, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def damaged(ckpt: Path, error: Exception) -> ValueError:
    return ValueError(
        f"the checkpoint in {ckpt} is damaged or incomplete ({type(error).__name__}: {error}). "
        f"Delete the folder to start again from step 0, or put back a copy of it.")


def train(out: str | Path = "runs/course_model", max_steps: int = 4000, batch_size: int = 32,
          lr: float = 2e-3, seed: int = 0, eval_every: int = 250, stop_at_targets: bool = True,
          margin: float = 0.05, device: str = "cpu", progress: bool = True,
          stop_step: int | None = None, position_scale: float = POSITION_SCALE) -> dict:
    """Train (or resume) and return the final state: step, tokens seen, metrics, seconds.
    `max_steps` fixes the learning-rate schedule; `stop_step` ends the run earlier on it;
    `position_scale` sizes the initial sinusoidal position table."""
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from .hooked import HookedModel

    check_train_args(max_steps, batch_size, lr, eval_every, stop_step, position_scale, device)
    out = Path(out)
    ckpt = out / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    if (ckpt / "tokenizer.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(ckpt)
    else:
        tokenizer = build_tokenizer(MODEL_CONFIG["vocab_size"], seed)
        tokenizer.save_pretrained(ckpt)
    torch.manual_seed(seed)
    config = GPT2Config(**MODEL_CONFIG)
    hf = GPT2LMHeadModel(config).to(device)
    if POSITION_INIT == "sinusoidal":
        with torch.no_grad():
            hf.transformer.wpe.weight.copy_(sinusoidal_positions(
                config.n_positions, config.n_embd, position_scale))
    opt = torch.optim.AdamW(hf.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    state = {"step": 0, "tokens": 0, "seconds": 0.0, "history": [], "seed": seed,
             "batch_size": batch_size, "lr": lr, "max_steps": max_steps,
             "position_scale": position_scale}
    if (ckpt / "state.json").exists():
        try:
            state = json.loads((ckpt / "state.json").read_text())
            weights = load_file(ckpt / "model.safetensors")
            opt_state = torch.load(ckpt / "optimizer.pt", weights_only=True)
        except Exception as e:  # noqa: BLE001  (JSON, safetensors and torch each raise their own)
            raise damaged(ckpt, e) from None
        state.setdefault("position_scale", POSITION_SCALE)  # older runs did not record it
        for key, value, fixes in (("max_steps", max_steps, "learning-rate schedule"),
                                  ("position_scale", position_scale, "initial weights")):
            if state[key] != value:
                raise ValueError(f"{out} was started with --{key.replace('_', '-')} {state[key]}, "
                                 f"which fixes its {fixes}: resume with the same value")
        missing, unexpected = hf.load_state_dict(weights, strict=False)
        if set(missing) - {"lm_head.weight"} or unexpected:  # lm_head is tied to wte
            raise ValueError(f"checkpoint in {ckpt} does not fit this model: missing {missing}, "
                             f"unexpected {unexpected}")
        hf.tie_weights()
        opt.load_state_dict(opt_state)
    n_ctx = config.n_positions
    hooked = HookedModel(hf, tokenizer, "course-model")  # for evaluation; its hooks stay inert

    def to_training():  # sdpa is faster to train with; the wrapper switches back to its own
        hf.train()      # attention (which exposes patterns) whenever it runs the model
        hf.set_attn_implementation("sdpa")

    to_training()
    bar = tqdm(total=max_steps, initial=state["step"], disable=not progress, desc="training")
    start = time.time() - state["seconds"]

    def save():  # each file whole or not at all; state.json, which says "resume here", last
        state["seconds"] = time.time() - start
        weights = {k: v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}
        atomic_write(ckpt / "model.safetensors", lambda p: save_file(weights, p))
        atomic_write(ckpt / "optimizer.pt", lambda p: torch.save(opt.state_dict(), p))
        atomic_write(ckpt / "config.json", lambda p: p.write_text(config.to_json_string()))
        atomic_write(ckpt / "state.json", lambda p: p.write_text(json.dumps(state, indent=1)))

    last = min(max_steps, stop_step or max_steps)

    def step():
        tokens = batch_tokens(tokenizer, seed, state["step"], batch_size, n_ctx).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(state["step"], max_steps, lr)
        loss = hf(input_ids=tokens, labels=tokens).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += batch_size * n_ctx
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if state["step"] % eval_every == 0 or state["step"] == last:
            hf.eval()
            metrics = evaluate.course_metrics(hooked)
            state["history"].append({"step": state["step"], "tokens": state["tokens"],
                                     "loss": round(loss.item(), 4),
                                     **{k: round(v, 4) for k, v in metrics.items()}})
            bar.write(json.dumps(state["history"][-1]))
            state["metrics"] = metrics
            if stop_at_targets and evaluate.meets_targets(metrics, margin):
                state["done"] = True
            save()
            to_training()

    try:
        while state["step"] < last and not state.get("done"):
            step()
    except KeyboardInterrupt:
        bar.close()
        if state["step"] > 0:
            save()
        raise KeyboardInterrupt(
            f"stopped at step {state['step']}; the checkpoint in {ckpt} holds it. Run the same "
            f"command again to resume from there.") from None
    bar.close()
    state["seconds"] = time.time() - start
    return state


def export(run: str | Path, dest: str | Path) -> Path:
    """Copy a trained run's weights and tokenizer into `dest` with a model card."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    ckpt, dest = Path(run) / "checkpoint", Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    state = json.loads((ckpt / "state.json").read_text())
    save_file(load_file(ckpt / "model.safetensors"), dest / "model.safetensors",
              metadata={"format": "pt"})
    (dest / "config.json").write_text((ckpt / "config.json").read_text())
    AutoTokenizer.from_pretrained(ckpt).save_pretrained(dest)
    portable_tokenizer_config(dest / "tokenizer_config.json")
    from .models import load_model
    (dest / "MODEL_CARD.md").write_text(model_card(state) + "\n"
                                        + card_appendix(load_model(str(dest), device="cpu")))
    return dest


APPENDIX = "<!-- appendix: written by train.card_appendix from the bundled model -->"

MECHANISMS = """\
Each is asserted in its chapter, on this model, with the control or null the chapter names.
What the world fixes is only *what* the model must know; these are findings about *how*.

- A previous-token head, L0H1, and an induction head, L2H0, on repeated random tokens
  (chapter 04). Copying needs L0H1: ablating it alone removes it; ablating L2H0 alone removes
  only part of it, and no other head is needed (chapter 08, head by head, a 16-head scan at a
  corrected level).
- Capital recall: the subject's information reaches the final position through block 0
  (MLP 0 at the subject, heads L0H2 and L0H1) and head L2H0 (chapter 07). The claim that MLP 0
  does the recall fails against block 0's attention at the same positions (chapter 08).
- Indirect objects: block 0's heads are needed for the IOI logit difference; block 2's, which
  attend to the names, are not (chapter 04, section 6).
- A minority of MLP neurons respond to three or more families beyond chance (chapter 05);
  the best SAE latents are weaker label detectors than random directions (chapter 06)."""

QUIRKS = """\
- It knows only the world in `world.py`. Its 2,048-token vocabulary was trained on world text,
  so other English splits into many short pieces and gets high loss.
- The text starts with `<|endoftext|>`, which is also its BOS, EOS and padding token;
  `to_tokens` prepends it.
- Learned positions end at 256 tokens; longer input is refused with a message.
- Embeddings are tied: W_U is W_E transposed.
- "The capital of X is" is scored on the capital's *first* token; some capitals take several.
- A tenth of its training documents were random tokens repeated two or three times, which is
  why it copies random sequences so readily (the induction chapters rely on it)."""


RETRAINING_SPREAD = Path(__file__).parent / "course_model" / "retraining_spread.json"


def retraining_section(path: Path = RETRAINING_SPREAD) -> str:
    """The card's account of how far retraining moves across CPU kernel sets, from the two
    histories `scripts/retraining_spread.py` recorded (empty when there are none)."""
    if not Path(path).exists():
        return ""
    spread = json.loads(Path(path).read_text())
    runs = spread["runs"]
    (a, b), kernels = ([r["history"] for r in runs], [r["machine"]["cpu_capability"] for r in runs])
    keys = ("loss", "previous_token_score", "induction_score", "capital_accuracy")
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    shown = [i for i in range(n) if i == 0 or i == n - 1 or n <= 10 or a[i]["step"] % 200 == 0]
    rows = "\n".join(f"| {a[i]['step']} | " + " | ".join(
        f"{a[i][k]:.4f} / {b[i][k]:.4f}" for k in keys) + f" | {abs(a[i]['loss'] - b[i]['loss']):.4f} |"
        for i in shown)
    same = 0  # evaluations, from the first, at which the two agree to four decimals
    while same < n and all(a[same][k] == b[same][k] for k in keys):
        same += 1
    agree = ("They agree to four decimals at every evaluation." if same == n else
             f"They agree to four decimals up to step {a[same - 1]['step']}, then drift apart."
             if same else "They differ from the first evaluation on.")
    thinned = "" if len(shown) == n else " (every 200 steps; the file has every 100)"
    onsets = [next((x["step"] for x in h if x["induction_score"] >= 0.5), None) for h in (a, b)]
    if onsets == [None, None]:
        phase = (" The induction heads had not formed yet (no induction score reaches 0.5), and "
                 "chapter 08 shows such spreads grow through a phase change.")
    elif None in onsets:
        got = 0 if onsets[0] is not None else 1
        phase = (f" The induction heads formed with {kernels[got]} (an induction score of 0.5 at "
                 f"step {onsets[got]}) but not with {kernels[1 - got]} by step {a[-1]['step']}: "
                 "the kernel set alone moved the phase change.")
    else:
        phase = (f" The induction heads formed in both: the induction score first reached 0.5 at "
                 f"step {onsets[0]} with {kernels[0]} and at step {onsets[1]} with {kernels[1]}.")
    end, last = spread.get("shipped_step"), a[-1]["step"]
    if end is not None and last == end and b[-1]["step"] == end:
        final_keys = [k for k in a[-1] if k not in ("step", "tokens")]
        final = "\n".join(f"| {k} | {a[-1][k]:.4f} | {b[-1][k]:.4f} | {b[-1][k] - a[-1][k]:+.4f} |"
                          for k in final_keys)
        gaps = [r.get("weights_gap_to_shipped") for r in runs]
        same_weights = [kernels[i] for i, g in enumerate(gaps) if g == 0]
        reproduced = (f"The {same_weights[0]} run's weights equal the bundled model's exactly: "
                      "retraining on this machine reproduces it." if same_weights else
                      "Neither run's weights equal the bundled model's (largest differences "
                      + ", ".join(f"{kernels[i]} {g:.2g}" for i, g in enumerate(gaps)
                                  if g is not None) + ").")
        passing = [kernels[i] for i, h in enumerate((a, b)) if evaluate.meets_targets(h[-1])]
        targets = ("Both meet every target of the card." if len(passing) == 2 else
                   f"Only the {passing[0]} run meets every target of the card." if passing else
                   "Neither meets every target of the card.")
        closing = f"""This is the whole run: both went to step {end}, where the bundled model
stopped.{phase} {reproduced} {targets} The final evaluation of each, and how far the other
kernel set moves it:

| metric | {kernels[0]} | {kernels[1]} | {kernels[1]} - {kernels[0]} |
| --- | --- | --- | --- |
{final}

It keeps MKL's kernels, so another CPU may move a retrained model further than this."""
    else:
        closing = f"""This is a lower bound on what another CPU changes (it keeps MKL's kernels), and it covers the
first {last} steps only.{phase} The full run was not repeated, so how far a retrained
model's final metrics move is not measured."""
    return f"""
## Retraining on another CPU
One thread gives the same arithmetic on one machine, not on every machine: ATen and MKL choose
their kernels by CPU. The same recipe, seed and thread count were trained to step
{last} twice on one machine ({runs[0]['machine']['cpu']}), once with ATen's
{kernels[0]} kernels and once with its {kernels[1]} set (`scripts/retraining_spread.py`).
{agree} Each cell is {kernels[0]} / {kernels[1]}{thinned}; the loss is the training batch's:

| step | loss | previous-token score | induction score | capital accuracy | loss difference |
| --- | --- | --- | --- | --- | --- |
{rows}

{closing}
"""


def card_appendix(model) -> str:
    """The model card's closing sections: how its circuits were made to appear, held-out loss
    (measured now, on the given model), known mechanisms with their chapters, and quirks."""
    docs = 20  # per family
    losses = evaluate.held_out_loss(model, docs_per_family=docs)
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in losses.items())
    return f"""{APPENDIX}
## How it was made to have its circuits
Not found by chance: the data were engineered for them. Random repeated sequences invite
induction heads, name stories invite name-moving, fact sentences invite recall, and training
stopped once the four metrics above met their targets. The model was selected for these
behaviours, so their presence is by design; what the chapters test is *how* it implements
them, which no one designed.

## Held-out loss
Next-token loss (nats per token) on {docs} unseen documents of each family (seed
{evaluate.HELD_OUT_SEED}; unseen text, the same world), from `evaluate.held_out_loss`:

| family | loss |
| --- | --- |
{rows}

## Known mechanisms
{MECHANISMS}

## Quirks
{QUIRKS}
{retraining_section()}"""


def portable_tokenizer_config(path: Path) -> None:
    """transformers 5 names its fast tokenizer class TokenizersBackend, which transformers 4
    cannot load; PreTrainedTokenizerFast is the same class on 5 and exists on 4."""
    config = json.loads(path.read_text())
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def model_card(state: dict) -> str:
    m, c = state["metrics"], MODEL_CONFIG
    hours = state["seconds"] / 3600
    rows = "\n".join(f"| {k} | {m[k]:.3f} | >= {v} | {'yes' if m[k] >= v else '**no**'} |"
                     for k, v in evaluate.TARGETS.items())
    missed = [k for k, v in evaluate.TARGETS.items() if m[k] < v]
    shortfall = "" if not missed else (
        "\n## Known shortfall\n" + ", ".join(missed) + " is below its target. A run with position "
        "tables of size 0.03 missed the previous-token target this way: no single head took the "
        "previous token, the heads of layer 1 shared a blurred recency kernel instead.\n")
    weights = ", ".join(f"{k} {v:.2f}" for k, v in world.FAMILY_WEIGHTS.items())
    scale = state.get("position_scale", POSITION_SCALE)
    scale_flag = "" if scale == POSITION_SCALE else f" --position-scale {scale}"
    threads_flag = f" --threads {state['threads']}" if "threads" in state else ""
    return f"""# The course model

A GPT-2-architecture language model trained by this project on text generated from the world in
`mechinterp_course/world.py`, so that every fact it could know is known to us.

## Architecture
GPT-2 (learned positions, LayerNorm, GELU MLP, tied embeddings): {c['n_layer']} layers,
{c['n_head']} heads of {c['n_embd'] // c['n_head']} dimensions, d_model {c['n_embd']},
d_mlp {4 * c['n_embd']}, context {c['n_positions']} tokens, byte-level BPE vocabulary of
{c['vocab_size']} tokens trained on world text (words carry their leading space: ' Austin').

## Data
An endless stream of world documents joined by `<|endoftext|>`: family weights {weights};
plus {RANDOM_REPEAT_PROB:.0%} of documents made of random token ids repeated two or three times.
Batch `s` is drawn from seed ({state['seed']}, s), so the stream needs no storage.

## Training
AdamW (betas 0.9/0.95, weight decay 0.01), peak learning rate {state['lr']}, 200 warm-up steps then
cosine decay over {state['max_steps']} steps, batch {state['batch_size']} x {c['n_positions']} tokens,
position embeddings initialised as sinusoids of size {scale}. Stopped at step {state['step']}
({state['tokens'] / 1e6:.1f}M tokens).
Wall time: {state['seconds'] / 60:.0f} minutes ({hours:.2f} h) on {state.get('hardware', 'CPU')}.
Reproduce with `python -m mechinterp_course.train --max-steps {state['max_steps']} --stop-step
{state['step']}{scale_flag}{threads_flag}` (resumable). The same seed and thread count give the same
weights on the same machine; on another CPU the arithmetic differs in the last bits (other
kernels), so expect close, not identical, weights and metrics.

## What it can do (measured when training stopped)
| metric | value | target | met |
| --- | --- | --- | --- |
{rows}
{shortfall}
- capital_accuracy: top-1 next token is the first token of the right capital after
  "The capital of X is", over every country and US state in the world.
- induction_score: the best head's mean attention from each token of a repeated random sequence
  (2 x 50 tokens) to the token after its first occurrence.
- previous_token_score: the best head's mean attention to the previous token on world text.
- ioi_logit_diff: mean logit(indirect object) - logit(subject) over 100 name stories.
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/course_model")
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-stop", action="store_true", help="train all --max-steps")
    ap.add_argument("--stop-step", type=int, help="stop at this step (the schedule still spans "
                    "--max-steps)")
    ap.add_argument("--position-scale", type=float, default=POSITION_SCALE,
                    help="size of the initial sinusoidal position table's entries")
    ap.add_argument("--threads", type=int, help="CPU threads (the weights depend on it: "
                    "reproduce a model with the count its card records)")
    ap.add_argument("--export", metavar="DIR", help="after training, write the model here")
    args = ap.parse_args(argv)
    try:
        check_train_args(args.max_steps, args.batch_size, args.lr, args.eval_every,
                         args.stop_step, args.position_scale, args.device, args.threads)
    except ValueError as e:
        ap.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        state = train(args.out, args.max_steps, args.batch_size, args.lr, args.seed,
                      args.eval_every, not args.no_stop, device=args.device,
                      stop_step=args.stop_step, position_scale=args.position_scale)
    except KeyboardInterrupt as e:
        print(f"\n{e}", file=sys.stderr)
        raise SystemExit(130) from None
    except ValueError as e:  # a damaged checkpoint, or settings that do not fit the run
        raise SystemExit(f"error: {e}") from None
    state["threads"] = torch.get_num_threads()
    state["hardware"] = f"{provenance.cpu_model()} ({torch.backends.cpu.get_cpu_capability()} " \
                        f"kernels), {state['threads']} threads"
    state["machine"] = provenance.machine()
    ckpt = Path(args.out) / "checkpoint" / "state.json"
    atomic_write(ckpt, lambda p: p.write_text(json.dumps(state, indent=1)))
    print(json.dumps(state.get("metrics", {})))
    if args.export:
        print("exported to", export(args.out, args.export))


if __name__ == "__main__":
    main()
