"""Is there an SAE latent for each of the world's labels? Chapter 06 finds that one TopK SAE has a
near-perfect single-latent detector (AUROC >= 0.95) for only a few labels. One SAE is one draw, so
this trains many with chapter 06's recipe over a grid of sites, widths, k and seeds, and counts
the labels each one detects, beside a null: as many random directions as the SAE has latents,
scored by projection on the same tokens. ``python -m mechinterp_course.sae_sweep`` reruns the
grid (about half an hour on 2 cores, activations cached under ``sae_activations/`` in the working
directory) and rewrites the table that ships with the package; chapter 06 checks three of its
rows against the SAEs it trains itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from . import claims, neurons, provenance, sae
from .train import atomic_write

RESULTS = Path(__file__).parent / "sweeps" / "sae_label_sweep.json"
SITES = [("resid_post", layer) for layer in range(4)] + [("mlp_post", 1), ("mlp_post", 2)]
WIDTHS = (128, 256, 512, 1024)
KS = (16, 24, 32)
SEEDS = (0, 1)
DETECTS = 0.95  # the AUROC at which a single latent counts as detecting a label


def train_topk(train_acts, width: int, k: int, seed: int, steps: int = 600, lr: float = 2e-3,
               progress: bool = False, desc: str = "TopK SAE") -> sae.SAE:
    """Chapter 06's recipe: decoder bias started at the mean activation, batches of 1,024."""
    model = sae.SAE(train_acts.shape[1], width, k=k, seed=seed)
    with torch.no_grad():
        model.b_dec.copy_(train_acts[:20_000].mean(0))
    sae.train(model, sae.batches_from(train_acts, 1024, seed=seed), steps=steps, lr=lr,
              progress=progress, desc=desc)
    return model


def best_aurocs(scores, labels: dict) -> dict[str, float]:
    """Each label's AUROC for the best of the columns of `scores` (tokens, candidates)."""
    best = neurons.auroc(scores, torch.stack(list(labels.values()), dim=1)).max(dim=1).values
    return {name: round(float(b), 4) for name, b in zip(labels, best)}


def label_aurocs(sae_module: sae.SAE, acts, labels: dict) -> dict[str, float]:
    """Each label's best single-latent AUROC on the labelled tokens' activations `acts`; `labels`
    is `NeuronData.token_labels()`, worked out once and passed in, since it searches every
    document."""
    with torch.no_grad():
        return best_aurocs(sae_module.encode(acts), labels)


def null_aurocs(acts, labels: dict, width: int, seed: int) -> dict[str, float]:
    """Each label's best AUROC among `width` random directions scored by projection (chapter
    06's null): what as many latents would reach if they had learned nothing."""
    directions = claims.random_directions(width, acts[0], torch.Generator().manual_seed(seed))
    return best_aurocs(acts @ directions.T, labels)  # (tokens, width) projections


def run_site(model, site, configs, n_tokens: int = 200_000, held_out: int = 20_000,
             steps: int = 600, docs_per_family: int = 40, folder: str = "sae_activations",
             progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Train one SAE per (width, k, seed) in `configs` on `site` and score it; and score the
    random-direction null once per width and seed. Returns (SAE rows, null rows)."""
    from tqdm.auto import tqdm

    acts = sae.collect_activations(model, site, Path(folder) / f"{site[0]}_{site[1]}.bin",
                                   n_tokens=n_tokens, seed=1, progress=progress)
    train_acts, test_acts = acts[:-held_out], acts[-held_out:].clone()
    labelled = neurons.collect(model, docs_per_family=docs_per_family, seed=300, site=site,
                               skip_first=1)
    labels = labelled.token_labels()
    rows = []
    for width, k, seed in tqdm(configs, desc=f"SAEs on {site[0]} {site[1]}", disable=not progress):
        start = time.perf_counter()
        s = train_topk(train_acts, width, k, seed, steps=steps)
        with torch.no_grad():
            x_hat, f = s(test_acts)
        aucs = label_aurocs(s, labelled.acts, labels)
        rows.append(dict(
            site=list(site), width=width, k=k, seed=seed,
            fve=round(float(sae.fraction_of_variance_explained(test_acts, x_hat)), 4),
            l0=round(float(sae.mean_l0(f)), 2), dead=round(float(sae.dead_fraction(f)), 4),
            detected=sum(a >= DETECTS for a in aucs.values()), labels=len(aucs), aurocs=aucs,
            seconds=round(time.perf_counter() - start, 1)))
    nulls = []
    for width, seed in dict.fromkeys((width, seed) for width, _, seed in configs):
        aucs = null_aurocs(labelled.acts, labels, width, seed)
        nulls.append(dict(site=list(site), width=width, seed=seed,
                          detected=sum(a >= DETECTS for a in aucs.values()), labels=len(aucs),
                          aurocs=aucs))
    return rows, nulls


def load_results(path: Path = RESULTS) -> dict:
    return json.loads(Path(path).read_text())


def kernel_spread(table: dict, other: dict) -> dict:
    """The largest differences between the SAEs two tables share, one made under another CPU
    kernel set (``ATEN_CPU_CAPABILITY=default``): the measured part of a rerun's tolerance.
    Another CPU can also change MKL's kernels, so this is a lower bound, not the whole spread."""
    here, there = table["meta"].get("cpu_capability"), other["meta"].get("cpu_capability")
    if here is None or here == there:
        raise ValueError(f"both tables were made with the {here} kernel set: rerun one under "
                         "another, e.g. ATEN_CPU_CAPABILITY=default")
    def key(r):
        return tuple(r["site"]), r["width"], r.get("k"), r["seed"]
    mine = {key(r): r for r in table["runs"]}
    pairs = [(mine[key(r)], r) for r in other["runs"] if key(r) in mine]
    if not pairs:
        raise ValueError("the two tables share no SAE (same site, width, k and seed)")
    null_mine = {key(r): r for r in table.get("nulls", [])}
    null_pairs = [(null_mine[key(r)], r) for r in other.get("nulls", []) if key(r) in null_mine]
    def largest(name, rows):
        return round(max((abs(a[name] - b[name]) for a, b in rows), default=0.0), 4)
    return {"kernel_sets": [here, there], "saes": len(pairs), "nulls": len(null_pairs),
            "fve": largest("fve", pairs), "l0": largest("l0", pairs),
            "detected": largest("detected", pairs),
            "auroc": round(max(abs(a["aurocs"][n] - b["aurocs"][n])
                               for a, b in pairs for n in a["aurocs"]), 4),
            "null_detected": largest("detected", null_pairs)}


def main(argv=None):
    import mechinterp_course as mc

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--folder", default="sae_activations",
                        help="where activations are cached (inside the working directory)")
    parser.add_argument("--sites", nargs="+", metavar="NAME:LAYER",
                        help="only these sites, e.g. resid_post:1 (default: the whole grid's "
                        f"{len(SITES)})")
    parser.add_argument("--small", action="store_true", help="a tiny grid, for the smoke test")
    parser.add_argument("--record-spread", type=Path, metavar="OTHER.json",
                        help="train nothing: record in --out's meta how far OTHER.json, the same "
                        "SAEs trained under another CPU kernel set, differs from it")
    args = parser.parse_args(argv)
    if args.record_spread:
        table = load_results(args.out)
        table["meta"]["cross_kernel"] = kernel_spread(table, load_results(args.record_spread))
        atomic_write(args.out, lambda p: p.write_text(json.dumps(table, indent=1)))
        print(json.dumps(table["meta"]["cross_kernel"]))
        return args.out
    sites = SITES
    if args.sites:
        names = {f"{name}:{layer}": (name, layer) for name, layer in SITES}
        unknown = [x for x in args.sites if x not in names]
        if unknown:
            parser.error(f"unknown site {', '.join(unknown)}; the grid's sites are "
                         f"{', '.join(names)}")
        sites = [names[x] for x in args.sites]
    model = mc.load_model("course", device="cpu")
    configs = [(w, k, s) for w in WIDTHS for k in KS for s in SEEDS]
    sizes = dict(n_tokens=200_000, held_out=20_000, steps=600, docs_per_family=40)
    if args.small:
        sites, configs = SITES[1:2], [(32, 4, 0)]
        sizes = dict(n_tokens=3_000, held_out=1_000, steps=5, docs_per_family=2)
    meta = {**provenance.machine(), "date": time.strftime("%Y-%m-%d"), "detects": DETECTS,
            **sizes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs, nulls = [], []
    try:
        for site in sites:
            site_runs, site_nulls = run_site(model, site, configs, folder=args.folder,
                                             progress=not args.small, **sizes)
            runs, nulls = runs + site_runs, nulls + site_nulls
            table = json.dumps({"meta": meta, "runs": runs, "nulls": nulls}, indent=1)
            atomic_write(args.out, lambda p: p.write_text(table))  # as it goes, never half
    except KeyboardInterrupt:
        print(f"\nstopped after {len(runs)} SAEs; {args.out} holds them. Cached activations in "
              f"{args.folder} are reused when you run it again.", file=sys.stderr)
        raise SystemExit(130) from None
    print("wrote", args.out)
    return args.out


if __name__ == "__main__":
    main()
