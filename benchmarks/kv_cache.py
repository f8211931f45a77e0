"""Generation speed: chapter 02's hand-written cached decoder against transformers' `generate`,
and no cache against a cache, per new token, on the course model and SmolLM2 (when installed).

Run: `python benchmarks/kv_cache.py`. Target (issue 4): the hand-written decoder within 1.5x of
transformers' cached `generate` per token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import check_device, compare, device_label, synchronizer, table  # noqa: E402

import mechinterp_course as mc  # noqa: E402
from mechinterp_course import kvcache  # noqa: E402


def measure(model, n_new: int, reps: int, with_uncached: bool = True) -> list[dict]:
    tokens = model.to_tokens("The capital of France is")
    contenders = {
        "transformers generate, cached": lambda: model.generate(
            tokens, max_new_tokens=n_new, stop_at_eos=False),
        "chapter 02 hand-written cached decoder": lambda: kvcache.generate_with_cache(
            model, tokens, n_new),
    }
    if with_uncached:
        contenders["transformers generate, use_cache=False"] = lambda: model.generate(
            tokens, max_new_tokens=n_new, use_cache=False, stop_at_eos=False)
        contenders["no cache, full rerun each step (chapter 00 loop)"] = \
            lambda: kvcache.generate_without_cache(model, tokens, n_new)
    with torch.inference_mode():
        rows = compare(contenders, reps=reps, warmup=1, sync=synchronizer(model.cfg.device))
    for r in rows:
        r["ms_per_token"] = 1e3 * r["median_s"] / n_new
    return rows


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--small", action="store_true", help="tiny sizes, for the smoke test")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    args = ap.parse_args(argv)
    device = check_device(args.device)
    n_new, reps = (4, 2) if args.small else (args.new, args.reps)
    names = ["course"] + ([] if args.small or "smollm2" not in mc.available_offline()
                          else ["smollm2"])
    out = []
    for name in names:
        model = mc.load_model(name, device=device)
        # SmolLM2 without a cache is slow on a CPU: fewer repetitions of that pair
        rows = measure(model, n_new, reps if name == "course" else max(2, reps // 3))
        out.append(table(rows, f"Generating {n_new} tokens with {model.cfg.model_name}, "
                               f"{device_label(device)}, "
                               f"greedy, median of {rows[0]['reps']}"))
        per_token = {r["name"]: r["ms_per_token"] for r in rows}
        ratio = (per_token["chapter 02 hand-written cached decoder"]
                 / per_token["transformers generate, cached"])
        out.append(f"Hand-written cached decoder / transformers generate: **{ratio:.2f}x** per "
                   f"token (target <= 1.5x).\n")
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
