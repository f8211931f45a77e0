"""SAE training: the package's TopK SAE (chapter 06) against SAELens's, on the same course-model
activations with the same hyperparameters (d_sae, k, learning rate, batch, steps, batch order).

Each round trains one fresh SAE with each library, in turn, so machine load hits both alike;
reported: median training throughput (tokens per second) and the held-out fraction of variance
explained, L0 and dead latents of the last round's SAEs, for two training recipes (RECIPES).
SAELens is optional (`pip install -e ".[bench]"`); without it only ours runs.

Run: `python benchmarks/sae_training.py`. Target (issues 6 and 9): faster than SAELens at equal
fraction of variance explained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import check_device, compare, device_label, synchronizer  # noqa: E402

import mechinterp_course as mc  # noqa: E402
from mechinterp_course import sae  # noqa: E402

OUT = Path(__file__).parent / "_out"


# Two recipes, each run by both libraries. SAELens always clips the gradient norm at 1, and by
# default reads TopK latents as if decoder rows had unit norm; ours can do both.
RECIPES = {"gradient clipped at 1": False,
           "gradient clipped at 1, latents rescaled by decoder norm (SAELens default)": True}


def train_ours(acts: torch.Tensor, d_sae: int, k: int, lr: float, batch: int, steps: int,
               rescale: bool):
    s = sae.SAE(acts.shape[1], d_sae, k=k, seed=0, rescale_by_decoder_norm=rescale).to(acts.device)
    with torch.no_grad():  # chapter 06's recipe: the decoder bias starts at the mean activation
        s.b_dec.copy_(acts[:20_000].mean(0))
    sae.train(s, sae.batches_from(acts, batch, seed=0), steps=steps, lr=lr, progress=False,
              max_grad_norm=1.0)
    return s.encode, s.decode


def train_saelens(acts: torch.Tensor, d_sae: int, k: int, lr: float, batch: int, steps: int,
                  rescale: bool):
    from sae_lens import LoggingConfig, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    model = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=acts.shape[1], d_sae=d_sae, k=k,
                                                  device=str(acts.device),
                                                  rescale_acts_by_decoder_norm=rescale))
    with torch.no_grad():  # the same start for the decoder bias as ours
        model.b_dec.copy_(acts[:20_000].mean(0))
    cfg = SAETrainerConfig(total_training_samples=steps * batch, train_batch_size_samples=batch,
                           lr=lr, lr_end=lr, device=str(acts.device),
                           logger=LoggingConfig(log_to_wandb=False))
    SAETrainer(cfg, model, data_provider=sae.batches_from(acts, batch, seed=0)).fit()
    model.eval()
    return model.encode, model.decode


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="tiny sizes, for the smoke test")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    args = ap.parse_args(argv)
    device = check_device(args.device)
    sync = synchronizer(device)
    steps, reps, n_tokens = (20, 1, 8_192) if args.small else (args.steps, args.reps, 200_000)
    d_sae, k, lr, batch = (256, 8, 2e-3, 256) if args.small else (1024, 24, 2e-3, 1024)

    model = mc.load_model("course", device="cpu")
    acts = sae.collect_activations(model, ("resid_post", 1),
                                   OUT / f"resid_post_1_{n_tokens}.bin", n_tokens=n_tokens,
                                   seed=1, progress=False)
    n_train = int(len(acts) * 0.9)
    # on a GPU the whole set moves there (100 MB), as a GPU user would do
    train_acts = acts[:n_train].to(device)  # on the CPU: the memory-mapped file itself
    held_out = acts[n_train:].clone().to(device)
    try:
        import sae_lens  # noqa: F401
        libraries = {"mechinterp_course sae.train": train_ours,
                     "SAELens SAETrainer": train_saelens}
    except ImportError:
        libraries = {"mechinterp_course sae.train": train_ours}

    lines = [f"### Training a TopK SAE (d_sae {d_sae}, k {k}, lr {lr}, batch {batch}, {steps} "
             f"steps) on course-model resid_post 1, {device_label(device)}, median of {reps}", ""]
    for recipe, rescale in RECIPES.items():
        results = {}  # the last round's (encode, decode) of each library
        rows = compare({name: (lambda name=name, fn=fn: results.__setitem__(
            name, fn(train_acts, d_sae, k, lr, batch, steps, rescale)))
            for name, fn in libraries.items()}, reps=reps, warmup=0, sync=sync)
        lines += [f"Recipe: {recipe}.", "",
                  "| contender | median (s) | tokens / s | time relative to ours | held-out FVE "
                  "| L0 | dead latents |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in rows:
            name, med = row["name"], row["median_s"]
            encode, decode = results[name]
            with torch.no_grad():
                f = encode(held_out)
                fve = float(sae.fraction_of_variance_explained(held_out, decode(f)))
            lines.append(f"| {name} | {med:.2f} | {steps * batch / med:,.0f} | {row['ratio']:.2f} "
                         f"| {fve:.3f} | {float(sae.mean_l0(f)):.1f} | "
                         f"{float(sae.dead_fraction(f)):.3f} |")
        lines.append("")
    if len(libraries) == 1:
        lines.append("SAELens is not installed (`pip install -e \".[bench]\"`): ours only.")
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    main()
