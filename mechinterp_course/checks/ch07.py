"""Checks for chapter 07, causal interventions and probing. The patching checks run on the course
model and a random Llama (rotary, grouped-query attention), on prompts that pair two subjects."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import torch

from .. import claims, interventions, world
from . import design
from . import ExerciseFailed, call, close, compare, expect_tensor, passed, run_with_edit
from .ch00 import _models  # the course model and a random Llama

SUBJECTS = ["Texas", "France", "Ohio", "Japan", "Peru"]  # one token each for the course tokenizer


@lru_cache(maxsize=4)
def _pairs(model) -> interventions.PatchingPairs:
    prompts = [p for p in world.capital_prompts() if p.attrs["subject"] in SUBJECTS]
    (pairs,) = interventions.capital_pairs(model, prompts)
    return pairs


@torch.no_grad()
def check_patching_metric(fn, model):
    """Exercise 7.1: fn(patched, clean, corrupt) -> the normalised metric, 0 at the corrupted
    run's value and 1 at the clean run's."""
    ex = "Exercise 7.1"
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(5, generator=g), torch.full((5,), 3.0), torch.full((5,), -1.0)),
             (torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g) + 5,
              torch.randn(4, 6, generator=g) - 2),
             (torch.tensor([2.0, -1.0, 0.5]), torch.tensor([2.0, 4.0, 1.0]),
              torch.tensor([-1.0, -1.0, 0.5 - 1e-3 - 1.5]))]
    for patched, clean, corrupt in cases:
        out = call(ex, fn, patched.clone(), clean.clone(), corrupt.clone())
        want = interventions.normalised(patched, clean, corrupt)
        compare(ex, out, want, {
            "You measured the distance from the clean run, (patched - clean) / (corrupt - "
            "clean): that is 1 minus the metric. Subtract the corrupted run's value.":
                (patched - clean) / (corrupt - clean),
            "The sign is flipped: divide by (clean - corrupt), not (corrupt - clean).":
                (patched - corrupt) / (corrupt - clean),
            "You divided by the clean value alone: the scale is clean - corrupt, the whole "
            "distance a patch could recover.": (patched - corrupt) / clean,
            "patched / clean is not normalised against the corrupted run: a patch that does "
            "nothing should score 0.": patched / clean,
        }, what="the metric", atol=1e-5)
    passed(ex, "0 at the corrupted run, 1 at the clean run, elementwise")


@torch.no_grad()
def check_patch_position(fn, model):
    """Exercise 7.2: fn(clean_act, pos) -> a hook that puts the clean activation back at one
    position."""
    ex = "Exercise 7.2"
    for m in _models(model):
        pairs = _pairs(m)
        _, cache = m.run_with_cache(pairs.clean, names=["resid_pre", "attn_out"])
        corrupt = m(pairs.corrupt)
        for name, layer, pos in (("attn_out", 1, -1), ("resid_pre", 0, pairs.subject[0][-1]),
                                 ("resid_pre", m.cfg.n_layers - 1, 2)):
            clean_act = cache[name, layer]
            saved = clean_act.clone()
            hook = call(ex, fn, clean_act, pos)
            if not callable(hook):
                raise ExerciseFailed(f"{ex}: return a function (the hook), not "
                                     f"{type(hook).__name__}.")
            with m.hooks({(name, layer): hook}):
                out = call(ex, m, pairs.corrupt)
            if not torch.equal(clean_act, saved):
                raise ExerciseFailed(f"{ex}: your hook changed the clean activation itself: "
                                     "copy from it, never write into it.")

            def run(edit):
                return run_with_edit(m, pairs.corrupt, (name, layer), edit)
            want = m.run_with_hooks(pairs.corrupt, {
                (name, layer): interventions.patch_position(clean_act, pos)})
            if close(out, corrupt) and not close(want, corrupt):
                raise ExerciseFailed(f"{ex}: the patched run gives exactly the corrupted logits: "
                                     "does your hook return the edited activation, and does it "
                                     "patch position `pos` (x[:, pos])?")
            p = pos % pairs.clean.shape[1]

            def all_positions(x):
                x[:] = clean_act

            def next_one(x):
                x[:, p - 1] = clean_act[:, p - 1]
            compare(ex, out, want, {
                "You patched every position: put back the clean activation at `pos` only, "
                "x[:, pos] (batch first, then position).": run(all_positions),
                "Off by one: you patched the position before `pos`.": run(next_one),
            }, what="the logits after patching", atol=1e-4, rtol=1e-4)
    passed(ex, "patching one position gives the reference logits (residual and attention "
           "outputs, GPT-2 and Llama)")


@torch.no_grad()
def _noising_grid(m, pairs):
    """The mistake of patching the other way, corrupted activations into the clean run, scored
    with the same metric: 1 minus the grid of the swapped pairs."""
    swapped = replace(pairs, clean=pairs.corrupt, corrupt=pairs.clean)
    return 1 - interventions.patch_positions(m, swapped, "resid_pre").mean(-1)


@torch.no_grad()
def _raw_grid(m, pairs):
    """The mistake of leaving the logit differences unnormalised."""
    clean = interventions.answer_logit_diff(m(pairs.clean), pairs.answer, pairs.wrong)
    corrupt = interventions.answer_logit_diff(m(pairs.corrupt), pairs.answer, pairs.wrong)
    share = interventions.patch_positions(m, pairs, "resid_pre")  # (layers, pos, prompts)
    return (share * (clean - corrupt) + corrupt).mean(-1)


@torch.no_grad()
def check_patch_residual(fn, model):
    """Exercise 7.3: fn(model, pairs) -> (n_layers, pos): the mean normalised logit difference
    after patching resid_pre of each layer at each position."""
    ex = "Exercise 7.3"
    for m in _models(model):
        pairs = _pairs(m)
        out = call(ex, fn, m, pairs)
        want = interventions.patch_positions(m, pairs, "resid_pre").mean(-1)
        if torch.is_tensor(out) and out.shape == want.T.shape and out.shape != want.shape:
            raise ExerciseFailed(f"{ex}: your grid is (pos, n_layers); return (n_layers, pos), "
                                 "one row per layer.")
        if torch.is_tensor(out) and out.shape == (*want.shape, len(pairs)):
            raise ExerciseFailed(f"{ex}: you returned one grid per prompt; average over the "
                                 "prompts.")
        compare(ex, out, want, {
            "You patched resid_post: the grid is shifted by one layer. Patch ('resid_pre', "
            "layer), the residual stream *entering* each block.":
                interventions.patch_positions(m, pairs, "resid_post").mean(-1),
            "You patched corrupted activations into the clean run (noising). This exercise "
            "patches clean activations into the corrupted run (denoising).":
                _noising_grid(m, pairs),
            "Your numbers are raw logit differences: normalise each with the clean and "
            "corrupted runs' values, so 0 means no effect and 1 full recovery.":
                _raw_grid(m, pairs),
        }, what="the patching grid", atol=1e-3, rtol=1e-3)
    passed(ex, "the residual patching grid matches on the course model and a random Llama")


def check_ablated_z(fn, model):
    """Exercise 7.4: fn(z, head, kind, perm) -> a copy of z with one head's output replaced by
    zeros, its mean over the batch, or its value on prompt perm[i]."""
    ex = "Exercise 7.4"
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        _, cache = model.run_with_cache(_pairs(model).clean, names=[("z", 1)])
    for z, head in ((cache["z", 1], 3), (torch.randn(6, 7, 4, 5, generator=g), 1)):
        perm = interventions.resample_order(len(z), seed=3)
        for kind in ("zero", "mean", "resample"):
            original = z.clone()
            out = call(ex, fn, z, head, kind, perm)
            if not torch.equal(z, original):
                raise ExerciseFailed(f"{ex}: your function changed z itself ({kind} ablation): "
                                     "clone it first, or the clean cache you ablate from is "
                                     "ruined for every later experiment.")
            want = interventions.replace_head(head, interventions.ablation_values(
                z, head, kind, perm))(z)

            def wrong(value):
                return interventions.replace_head(head, value)(z)
            expect_tensor(ex, out, want, f"z after {kind} ablation")
            if kind == "mean" and close(out, wrong(z[:, :, head].mean((0, 1)))):
                raise ExerciseFailed(f"{ex}: your mean also runs over positions; mean-ablate "
                                     "with the mean over prompts at each position, "
                                     "z[:, :, head].mean(0).")
            everything = {"zero": z * 0, "mean": z.mean(0, keepdim=True).expand_as(z),
                          "resample": z[perm]}[kind]
            mistakes = {"You replaced every head, not one: index z[:, :, head].": everything}
            if kind == "mean":
                mistakes["Your mean ran over heads too: average that one head's z over the "
                         "batch."] = wrong(z.mean((0, 2)))
            if kind == "resample":
                mistakes["Resampled the wrong way round: prompt i takes the head's z from "
                         "prompt perm[i], z[perm, :, head]."] = wrong(z[perm.argsort(), :, head])
            compare(ex, out, want, mistakes, what=f"z after {kind} ablation", atol=1e-5)
    passed(ex, "zero, mean and resample ablation replace one head's output as they should")


def check_grouped_folds(fn, model):
    """Exercise 7.5: fn(groups, k) -> a fold per example, whole groups held out together,
    k folds of nearly equal numbers of groups."""
    ex = "Exercise 7.5"
    g = torch.Generator().manual_seed(0)
    cases = [(torch.arange(69).repeat(9), 5), (torch.randint(0, 20, (300,), generator=g), 4),
             (torch.tensor([3, 3, 7, 7, 7, 9, 1, 1]), 2)]
    for groups, k in cases:
        out = call(ex, fn, groups.clone(), k)
        if not torch.is_tensor(out) or out.shape != groups.shape:
            raise ExerciseFailed(f"{ex}: return a tensor of one fold index per example, shape "
                                 f"{tuple(groups.shape)}.")
        split = [int(gr) for gr in groups.unique() if len(out[groups == gr].unique()) > 1]
        if split:
            raise ExerciseFailed(f"{ex}: the examples of subject {split[0]} fall in different "
                                 "folds, so the probe is tested on subjects it trained on and "
                                 "can score well by memorising them: give every example of a "
                                 "group the same fold.")
        if set(out.tolist()) != set(range(k)):
            raise ExerciseFailed(f"{ex}: expected the folds 0..{k - 1} all used, got "
                                 f"{sorted(set(out.tolist()))}.")
        per_fold = [len(groups[out == f].unique()) for f in range(k)]
        if max(per_fold) - min(per_fold) > 1:
            raise ExerciseFailed(f"{ex}: folds hold {per_fold} groups; spread the groups evenly "
                                 "(sizes differing by at most one).")
    passed(ex, "every subject sits in one fold, and the folds are balanced")


def check_project_out(fn, model):
    """Exercise 7.6: fn(directions) -> a function removing the span of directions (k, d)."""
    ex = "Exercise 7.6"
    g = torch.Generator().manual_seed(0)
    for k, d in ((1, 8), (3, 16), (6, model.cfg.d_model)):
        directions = torch.randn(k, d, generator=g) * 3 + 1  # neither unit nor orthogonal
        x = torch.randn(5, 2, d, generator=g)
        remove = call(ex, fn, directions.clone())
        if not callable(remove):
            raise ExerciseFailed(f"{ex}: return a function of x, not {type(remove).__name__}.")
        out = call(ex, remove, x.clone())
        want = interventions.project_out(directions)(x)
        unit = directions / directions.norm(dim=1, keepdim=True)
        naive = x - sum((x @ u)[..., None] * u for u in unit)
        compare(ex, out, want, {
            "You kept only the projection onto the directions; remove it instead: "
            "x - projection.": x - want,
            "Your directions are not normalised: project on unit vectors (or an orthonormal "
            "basis from torch.linalg.qr).": x - (x @ directions.T) @ directions,
            "You removed each direction's projection separately, which is wrong when they are "
            "not orthogonal: orthonormalise them first (torch.linalg.qr(directions.T).Q).":
                naive if k > 1 else want + 1,
        }, what="x with the directions removed", atol=1e-4, rtol=1e-4)
    passed(ex, "removes exactly the span of non-orthogonal directions")


def held_out_pairs(model) -> interventions.PatchingPairs:
    """Capital prompts in a wording the chapters never patch, one-token subjects: where the
    open exercises judge a design."""
    return interventions.capital_pairs(model, world.capital_prompts(HELD_OUT))[0]


HELD_OUT = "The capital city of {} is"  # in the training text; the chapter never patches it


@torch.no_grad()
def check_restored_share(fn, model):
    """Exercise 7.7: fn(site, sample) -> (n,): the share restored per prompt when the site's
    component is patched clean into corrupted at each of its layers and named positions."""
    ex = "Exercise 7.7"
    pairs = _pairs(model)
    sample = claims.Sample(model, pairs, "five capitals", len(pairs))
    null = claims.Sample(design.untrained("course", str(model.cfg.device)), pairs,
                         "five capitals, untrained model", len(pairs))
    sites = [claims.Site("mlp_out", (0,), ("subject",)),
             claims.Site("attn_out", (1, 2), ("last",), count=2),
             claims.Site("resid_pre", (1,), ("subject", "last"))]
    ref = interventions.restored_share
    for site in sites:
        out = call(ex, fn, site, sample)
        want = ref(site, sample)
        first_layer = replace(site, layers=site.layers[:1], count=1)
        everywhere = _everywhere(site, sample)
        mistakes = {
            "You patched only the first of the site's layers: patch every layer in "
            "site.layers.": ref(first_layer, sample),
            "You patched every position: patch only the site's positions "
            "(interventions.named_positions(pairs, site.positions)).": everywhere,
            "Your numbers are raw logit differences: normalise them with the clean and "
            "corrupted runs' values (Exercise 7.1).": _raw_share(site, sample),
        }
        mistakes = {k: v for k, v in mistakes.items() if not close(v, want, 1e-3, 1e-3)}
        compare(ex, out, want, mistakes, what=f"the shares for {site}", atol=1e-3, rtol=1e-3)
    site = sites[0]
    out = call(ex, fn, site, null)
    if torch.is_tensor(out) and close(out.float(), ref(site, sample), 1e-3, 1e-3):
        raise ExerciseFailed(f"{ex}: on a sample with another model your function gave the "
                             "course model's numbers: run sample.model, not the notebook's "
                             "model.")
    compare(ex, out, ref(site, null), what="the shares on an untrained model", atol=1e-3,
            rtol=1e-3)
    passed(ex, "your measure matches the reference on three sites and on another model")


def _everywhere(site, sample):
    every = replace(sample.data, subject=[list(range(sample.data.clean.shape[1]))])
    return interventions.restored_share(replace(site, positions=("subject",)),
                                        claims.Sample(sample.model, every, "", sample.n))


def _raw_share(site, sample):
    model, pairs = sample.model, sample.data
    positions = interventions.named_positions(pairs, site.positions)
    names = [(site.component, layer) for layer in site.layers]
    _, cache = model.run_with_cache(pairs.clean, names=names)
    with model.hooks({n: interventions.patch_position(cache[n], positions) for n in names}):
        return interventions.answer_logit_diff(model(pairs.corrupt), pairs.answer,
                                               pairs.wrong).cpu()


def check_design(make_design, model):
    """Exercise 7.8 (open): make_design() -> claims.Design for "which component carries the
    capital?". Judged as a design: matched control, a threshold fixed in the design, fails on an
    untrained model, then run on held-out prompts of another template."""
    return judge_capital_design("Exercise 7.8", make_design, model)


def judge_capital_design(ex: str, make_design, model):
    """Any design measured on capital patching pairs (chapters 00, 03, 07, 08 and 10): the
    untrained model as the null, the verdict on the held-out wording."""
    pairs = held_out_pairs(model)
    return design.judge_against_untrained(
        ex, make_design, model, pairs, len(pairs),
        f"{len(pairs)} held-out prompts '{HELD_OUT.format('X')}'", "prompts")
