"""Cost of caching activations, relative to a plain forward pass of the same model.

Contenders, on one model and one batch (8 x 128 tokens by default): the plain transformers
forward; our `run_with_cache` with every name and with resid_post only; plain PyTorch forward hooks
storing every norm, attention and MLP output; TransformerLens's `run_with_cache` and nnsight's
tracing when they are installed (`pip install -e .[bench]`). Then the memory one full cache holds.
Run: `python benchmarks/cache_overhead.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import check_device, compare, device_label, synchronizer, table  # noqa: E402

import mechinterp_course as mc  # noqa: E402
from mechinterp_course.hooked import HookedModel  # noqa: E402


def gpt2_small_shaped(tokenizer, device="cpu"):
    """A randomly initialised model of GPT-2 small's shape (12 layers, d_model 768) with the course
    tokenizer's vocabulary, so no download is needed."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024,
                     vocab_size=len(tokenizer))
    return HookedModel(GPT2LMHeadModel(cfg).eval().requires_grad_(False), tokenizer,
                       "gpt2-small-shaped").to(device)


def torch_hooks_runner(model):
    """The baseline people write by hand: forward hooks storing each module's output."""
    store = {}
    modules = [m for name, m in model.hf.named_modules() if name.count(".") == 3]

    def run(tokens):
        handles = [m.register_forward_hook(lambda mod, i, o, k=k: store.__setitem__(k, o))
                   for k, m in enumerate(modules)]
        try:
            return model.hf(tokens).logits
        finally:
            for h in handles:
                h.remove()
    return run


def transformer_lens_runner(model):
    """TransformerLens HookedTransformer with the same weights (converted offline from ours)."""
    if importlib.util.find_spec("transformer_lens") is None:
        return None
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    c = model.cfg
    cfg = HookedTransformerConfig(n_layers=c.n_layers, d_model=c.d_model, d_head=c.d_head,
                                  n_heads=c.n_heads, d_mlp=c.d_mlp, d_vocab=c.d_vocab,
                                  n_ctx=c.n_ctx, act_fn="gelu_new", normalization_type="LN",
                                  device=str(model.cfg.device))
    tl = HookedTransformer(cfg)
    tl.load_state_dict(convert_gpt2_weights(model.hf, cfg), strict=False)
    tl.eval()
    probe = torch.randint(1, c.d_vocab, (1, 16), device=model.cfg.device)
    with torch.no_grad():  # the same model, or the comparison means nothing
        assert torch.allclose(tl(probe), model(probe), atol=1e-3), "TransformerLens conversion"
    return lambda tokens: tl.run_with_cache(tokens)


def nnsight_runner(model):
    if importlib.util.find_spec("nnsight") is None:
        return None
    from nnsight import LanguageModel

    lm = LanguageModel(model.hf, tokenizer=model.tokenizer)
    blocks = lm.transformer.h

    def run(tokens):
        saved = []  # filled inside the trace: nnsight cannot rebind a function's locals
        with lm.trace(tokens):
            for block in blocks:
                saved.append(block.output.save())
        return saved
    return run


def cache_mebibytes(cache) -> float:
    """What one cache holds: the bytes of every tensor in it."""
    values = cache.values() if hasattr(cache, "values") else cache
    return sum(v.numel() * v.element_size() for v in values if torch.is_tensor(v)) / 2**20


def memory_table(model, batch: int, seq: int) -> str:
    """The memory a full cache keeps alive, against the model's own weights: ours with every name
    and with resid_post only, and TransformerLens's with every name."""
    tokens = torch.randint(1, model.cfg.d_vocab, (batch, seq), device=model.cfg.device)
    rows = {"mechinterp_course, every name": lambda: model.run_with_cache(tokens)[1],
            "mechinterp_course, resid_post": lambda: model.run_with_cache(
                tokens, names=["resid_post"])[1]}
    tl = transformer_lens_runner(model)
    if tl is not None:
        rows["TransformerLens, every name"] = lambda: tl(tokens)[1]
    weights = sum(p.numel() * p.element_size() for p in model.hf.parameters()) / 2**20
    lines = [f"### Memory held by one cache on {model.cfg.model_name}, batch {batch} x {seq} "
             "tokens", "", "| cache | MiB | activations cached | ratio to the weights |",
             "| --- | --- | --- | --- |"]
    with torch.inference_mode():
        for name, make in rows.items():
            cache = make()
            mib = cache_mebibytes(cache)
            lines.append(f"| {name} | {mib:.1f} | {len(cache)} | {mib / weights:.2f} |")
    lines.append(f"| (the model's weights) | {weights:.1f} | | 1.00 |")
    return "\n".join(lines) + "\n"


def measure(model, batch: int, seq: int, reps: int) -> list[dict]:
    tokens = torch.randint(1, model.cfg.d_vocab, (batch, seq), device=model.cfg.device)
    contenders = {
        "plain forward (transformers)": lambda: model.hf(tokens),
        "mechinterp_course run_with_cache, every name": lambda: model.run_with_cache(tokens),
        "mechinterp_course run_with_cache, resid_post": lambda: model.run_with_cache(
            tokens, names=["resid_post"]),
        "PyTorch forward hooks, norm/attention/MLP outputs": (lambda run=torch_hooks_runner(model): run(tokens)),
    }
    for name, make in (("TransformerLens run_with_cache, every name", transformer_lens_runner),
                       ("nnsight trace, block outputs", nnsight_runner)):
        runner = make(model)
        if runner is not None:
            contenders[name] = (lambda r=runner: r(tokens))
    with torch.inference_mode():
        return compare(contenders, reps=reps, warmup=2, sync=synchronizer(model.cfg.device))


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--small", action="store_true", help="tiny sizes, for the smoke test")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    args = ap.parse_args(argv)
    device = check_device(args.device)
    course = mc.load_model("course", device=device)
    models = [course] if args.small else [course, gpt2_small_shaped(course.tokenizer, device)]
    batch, seq, reps = (2, 16, 2) if args.small else (args.batch, args.seq, args.reps)
    out = []
    for model in models:
        rows = measure(model, batch, seq, reps)
        out.append(table(rows, f"Activation caching on {model.cfg.model_name}, batch {batch} x "
                               f"{seq} tokens, {device_label(device)}, median of {reps}"))
        out.append(memory_table(model, batch, seq))
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
