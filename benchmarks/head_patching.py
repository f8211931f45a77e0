"""Attribution patching against patching each head for real, on chapter 12's task: how far the
right answer's log-probability rises when one head's z at the last position is set to its mean
over in-context prompts (Todd et al.'s indirect effect), on prompts with no demonstrations
(chapter 12 explains why not Todd et al.'s shuffled ones). Chapter 12 ranks SmolLM2's heads by
the estimate, one forward and one backward pass; this checks the ranking against a forward pass
per head, and times both.

Run: `python benchmarks/head_patching.py` (SmolLM2: about 4 minutes a relation on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import torch

import mechinterp_course as mc
from mechinterp_course import steering, world


def ranks(values: torch.Tensor) -> torch.Tensor:
    return values.flatten().argsort().argsort().float()


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@torch.no_grad()
def patched_effects(model, tokens, last, answers, target_z) -> torch.Tensor:
    """(n_layers, n_heads): the mean log-probability rise of `answers` at `last` when one head's
    z there is set to target_z[layer, head], a forward pass per head."""
    rows = torch.arange(len(tokens), device=tokens.device)

    def logprob(hooks=()):
        with model.hooks(list(hooks)):
            return float(model(tokens)[rows, last].log_softmax(-1)[rows, answers].mean())

    base = logprob()
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            def put(z, layer=layer, head=head):
                z = z.clone()
                z[rows, last, head] = target_z[layer, head]
                return z
            out[layer, head] = logprob([(("z", layer), put)]) - base
    return out


def measure(model, relation: str, n_prompts: int, top: int = 10) -> dict:
    index = {"capital": 0, "continent": 1}[relation]
    countries = list(world.COUNTRIES)
    shown = {c: world.COUNTRIES[c][index] for c in countries[::2]}
    queries = countries[::2][:n_prompts]
    tokens, last = steering.prompts(model, steering.in_context_prompts(list(shown), shown, 5,
                                                                       seed=1))
    mean_z = steering.last_z(model, tokens, last).mean(0)  # (n_layers, n_heads, d_head)
    tokens, last = steering.prompts(model, steering.in_context_prompts(queries, shown, 0))
    answers = torch.tensor([model.to_tokens(" " + shown[q], prepend_bos=False)[0, 0]
                            for q in queries], device=tokens.device)
    start = time.perf_counter()
    estimate = steering.head_attributions(model, tokens, last, answers, mean_z).cpu()
    estimated_s = time.perf_counter() - start
    start = time.perf_counter()
    real = patched_effects(model, tokens, last, answers, mean_z)
    patched_s = time.perf_counter() - start
    k = min(top, real.numel())
    shared = set(estimate.flatten().topk(k).indices.tolist()) & set(
        real.flatten().topk(k).indices.tolist())
    return {"relation": relation, "heads": real.numel(), "prompts": len(queries),
            "estimate_s": estimated_s, "patched_s": patched_s,
            "spearman": correlation(ranks(estimate), ranks(real)),
            "pearson": correlation(estimate, real), "top": k, "shared": len(shared)}


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--prompts", type=int, default=12, help="prompts per relation")
    ap.add_argument("--small", action="store_true", help="the course model, 2 prompts")
    args = ap.parse_args(argv)
    name, n = ("course", 2) if args.small else (args.model, args.prompts)
    model = mc.load_model(name, device="cpu")
    rows = [measure(model, relation, n) for relation in ("capital", "continent")]
    lines = [f"### Attribution patching against a forward pass per head, {name}, {n} prompts "
             "per relation, CPU\n",
             "| relation | heads | attribution patching (s) | a forward pass per head (s) | "
             "Spearman | Pearson | top heads shared |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['relation']} | {r['heads']} | {r['estimate_s']:.1f} | {r['patched_s']:.1f} | "
              f"{r['spearman']:.3f} | {r['pearson']:.3f} | {r['shared']}/{r['top']} |"
              for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    main()
