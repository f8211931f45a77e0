"""Checks for chapter 00, inside the forward pass."""

from __future__ import annotations

from functools import lru_cache

import torch

from .. import evaluate
from . import ExerciseFailed, call, compare, expect_tensor, passed

PROMPTS = ["The capital of Texas is", "When Mary and John went to the store, John gave a drink to",
           "def add(x, y):"]


@lru_cache(maxsize=1)
def second_model():
    """A small random Llama-family model (RMSNorm, rotary, grouped-query attention) that shares
    the course tokenizer: the second architecture every check also runs on."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ..hooked import HookedModel
    from ..models import load_model

    tok = load_model("course", device="cpu").tokenizer
    torch.manual_seed(0)
    cfg = LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, vocab_size=len(tok),
                      max_position_embeddings=256, initializer_range=0.2, bos_token_id=0,
                      eos_token_id=0, pad_token_id=0)
    return HookedModel(LlamaForCausalLM(cfg).eval().requires_grad_(False), tok, "random-llama")


def _models(model):
    return [model, second_model().to(model.cfg.device)]


@torch.no_grad()
def check_logits_from_resid(fn, model):
    """Exercise 0.1: fn(model, resid) turns the last layer's residual stream into logits."""
    ex = "Exercise 0.1"
    for m in _models(model):
        for prompts in (PROMPTS[:1], PROMPTS[1:]):  # batch 1, then batch 2 of odd lengths
            tokens = m.to_tokens(prompts)
            logits, cache = m.run_with_cache(tokens, names=[("resid_post", -1)])
            resid = cache["resid_post", -1]
            out = call(ex, fn, m, resid.clone())
            compare(ex, out, logits, {
                "It matches resid @ W_U without the final norm: apply "
                "model.parts[\"ln_final\"] before the unembedding.": resid @ m.W_U + m.b_U,
                "It looks like probabilities: return logits, before any softmax.":
                    logits.softmax(-1),
                "It matches the unembedding applied with W_E: use W_U (d_model, d_vocab).":
                    _final_norm(m, resid) @ m.W_E.T,
            }, what="the logits")
    passed(ex, "logits match the model's own on GPT-2 and Llama architectures, batch 1 and 2")


def _final_norm(model, resid):
    return model.parts["ln_final"](resid)


@torch.no_grad()
def check_greedy_generate(fn, model):
    """Exercise 0.2: fn(model, tokens, n_new) appends n_new greedy tokens to each row."""
    ex = "Exercise 0.2"
    for m in _models(model):
        for prompts, n_new in ((PROMPTS[:1], 6), (PROMPTS[1:], 3)):
            tokens = m.to_tokens(prompts)
            want = m.generate(tokens, max_new_tokens=n_new, stop_at_eos=False)
            out = call(ex, fn, m, tokens.clone(), n_new)
            if isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[0] == want.shape[0] \
                    and out.shape[1] != want.shape[1]:
                got = out.shape[1] - tokens.shape[1]
                raise ExerciseFailed(f"{ex}: asked for {n_new} new tokens, got {got}. Check the "
                                     "loop's range (an off-by-one?) and that you keep the prompt.")
            expect_tensor(ex, out, want, "the tokens")
            if not torch.equal(out[:, : tokens.shape[1]], tokens):
                raise ExerciseFailed(f"{ex}: the output should start with the prompt tokens.")
            first_pos = torch.cat([tokens, m(tokens)[:, :1].argmax(-1)], 1)
            if not torch.equal(out, want):
                if torch.equal(out[:, : tokens.shape[1] + 1], first_pos):
                    hint = ("Your first new token is the prediction at position 0: take the "
                            "logits at the last position, logits[:, -1].")
                else:
                    hint = ("The tokens differ from model.generate's greedy tokens. Take "
                            "argmax over the vocabulary (dim=-1) of the last position's logits, "
                            "and feed the growing sequence back in each step.")
                raise ExerciseFailed(f"{ex}: {hint}")
    passed(ex, "greedy tokens match model.generate on both architectures")


def reference_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """Next-token probabilities as transformers' own logits warpers compute them."""
    from transformers.generation.logits_process import (TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p is not None:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return scores.softmax(-1)


def _keep_top(probs, keep):
    out = torch.where(keep, probs, torch.zeros_like(probs))
    return out / out.sum(-1, keepdim=True)


def _mistakes(logits, temperature, top_k, top_p):
    """What the usual bugs produce for these arguments."""
    ref = lambda **kw: reference_probs(logits, **{"temperature": temperature, "top_k": top_k,  # noqa: E731
                                                  "top_p": top_p, **kw})
    m = {"It matches multiplying the logits by the temperature: divide by it instead (a "
         "higher temperature should flatten the distribution).":
         reference_probs(logits * temperature ** 2, temperature, top_k, top_p),
         "It matches a softmax over the batch axis: take the softmax over the vocabulary "
         "(dim=-1).": (logits / temperature).softmax(0)}
    if top_k is not None:
        m["It keeps one token too many: top-k keeps exactly k tokens (an off-by-one?)."] = \
            ref(top_k=top_k + 1)
        if top_k > 1:
            m["It keeps one token too few: top-k keeps exactly k tokens (an off-by-one?)."] = \
                ref(top_k=top_k - 1)
        scaled = (logits / temperature).softmax(-1)
        kth = scaled.topk(top_k, -1).values[..., -1:]
        m["It is not normalised: after dropping tokens, renormalise so the probabilities sum to "
          "1."] = torch.where(scaled >= kth, scaled, torch.zeros_like(scaled))
    if top_p is not None:
        probs = ref(top_p=None)
        sorted_p, idx = probs.sort(-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p
        excl = torch.zeros_like(probs, dtype=torch.bool).scatter(
            -1, idx, (sorted_p.cumsum(-1) < top_p) | (before == 0))
        m["It drops the token that crosses top_p: keep the smallest set of tokens whose "
          "probabilities reach top_p, including the one that crosses it."] = _keep_top(probs, excl)
        unnorm = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, idx, before < top_p)
        m["It is not normalised after top-p: renormalise the kept probabilities."] = \
            torch.where(unnorm, probs, torch.zeros_like(probs))
        if temperature != 1.0:
            from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper
            early = logits.clone()
            if top_k is not None:
                early = TopKLogitsWarper(top_k)(None, early)
            early = TopPLogitsWarper(top_p)(None, early)  # the nucleus of the unscaled logits
            m["Top-p was applied before the temperature: the nucleus depends on the "
              "temperature, so divide the logits by it first, then keep the top-p tokens."] = \
                (early / temperature).softmax(-1)
    return m


@torch.no_grad()
def check_next_token_probs(fn, model=None):
    """Exercise 0.3: fn(logits, temperature, top_k, top_p) -> next-token probabilities."""
    ex = "Exercise 0.3"
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 50, generator=g) * 3
    if model is not None:
        real = model(model.to_tokens(PROMPTS[:2]))[:, -1]
        logits_cases = [logits, real]
    else:
        logits_cases = [logits]
    cases = [dict(temperature=1.0), dict(temperature=0.5), dict(temperature=2.0),
             dict(temperature=1.0, top_k=5), dict(temperature=0.7, top_k=1),
             dict(temperature=1.0, top_p=0.9), dict(temperature=0.5, top_p=0.9),
             dict(temperature=1.5, top_k=20, top_p=0.8)]
    for lg in logits_cases:
        for kw in cases:
            kw = {"top_k": None, "top_p": None, **kw}
            out = call(ex, fn, lg.clone(), **kw)
            compare(ex, out, reference_probs(lg, **kw), _mistakes(lg, **kw),
                    what=f"the probabilities for {kw}", atol=1e-5)
    passed(ex, f"{len(cases) * len(logits_cases)} cases match transformers' temperature, "
               "top-k and top-p warpers")


@torch.no_grad()
def check_next_token_loss(fn, model):
    """Exercise 0.4: fn(logits, tokens) -> a scalar, the mean loss of predicting each next
    token. Compared with cross_entropy and with the Hugging Face model's own loss."""
    ex = "Exercise 0.4"
    F = torch.nn.functional
    for m in _models(model):
        for prompts in (PROMPTS[1:2], [PROMPTS[0], PROMPTS[0].replace("Texas", "Japan")]):
            tokens = m.to_tokens(prompts)  # one length: no padding to score
            logits = m(tokens)  # (batch, pos, d_vocab)
            out = call(ex, fn, logits.clone(), tokens.clone())
            if torch.is_tensor(out) and out.numel() == 1:
                out = out.reshape(())
            want = evaluate.next_token_loss(logits, tokens)
            logp = logits.log_softmax(-1)
            compare(ex, out, want, {
                "No shift: you scored position t's logits against token t itself. The logits "
                "at position t predict token t + 1.":
                    F.cross_entropy(logits.flatten(0, 1), tokens.flatten()),
                "You shifted the wrong way: logits[:, 1:] against tokens[:, :-1].":
                    F.cross_entropy(logits[:, 1:].flatten(0, 1), tokens[:, :-1].flatten()),
                "You summed the losses: take the mean over every predicted token.":
                    -logp[:, :-1].gather(-1, tokens[:, 1:, None]).sum(),
                "You used the logits as log-probabilities: take log_softmax first.":
                    -logits[:, :-1].gather(-1, tokens[:, 1:, None]).mean(),
                "Your log_softmax is over the positions: it goes over the vocabulary (the last "
                "axis).": -logits.log_softmax(1)[:, :-1].gather(-1, tokens[:, 1:, None]).mean(),
            }, what="the loss", atol=1e-4, rtol=1e-4)
    passed(ex, "the loss matches cross_entropy and transformers' own loss, on two models")


def check_knowledge_design(make_design, model):
    """Exercise 0.5 (open): make_design() -> claims.Design about what the model knows, measured
    per prompt on capital patching pairs (each prompt's capital, `answer`, and another prompt's,
    `wrong`). Judged on prompts worded "The capital city of X is" with an untrained null."""
    from .ch07 import judge_capital_design

    return judge_capital_design("Exercise 0.5", make_design, model)
