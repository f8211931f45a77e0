"""An assert that cannot fail is a defect: each claim a chapter asserts must fail on a null. The
solution notebook runs once more with every `assert` rewritten (an IPython AST transformer) to
record whether it held instead of stopping the notebook, and with the null in place of what the
claims are about:
- every model the chapter loads, untrained (`models.untrain`: GPT-2's initialisation, seed 0;
  the course model becomes "course-untrained"), same architecture and tokenizer;
- the toy models of superposition, before training;
- the shipped sweep tables, each run's settings shuffled among the runs;
- and a chapter's own null where its claims are about something else (CHAPTER_NULLS: chapter
  02's cache, removed).
nbval already runs each solution with the real things, where every assert must hold. Asserts
that hold on the null by construction (an identity of the code, the tokenizer, a negative claim
whose positive is asserted beside it) are listed in NOT_CLAIMS with why, so the list is the only
way to exempt one; a chapter that tells learners the untrained model does it too is held to it.
A negative claim ("no head writes the name") holds on an untrained model by nature, so it is
tested the other way round, on a mutant (MUTANTS): in the same run, the cells that compute it
run again with the positive planted (a head that does write the name), and there it must fail.
"""

from __future__ import annotations

import ast
import json

import nbformat
import pytest

from notebooks import ROOT, run_notebook

RECORDER = r'''
import ast, builtins, json, random, tempfile
from pathlib import Path
import mechinterp_course as mc
from mechinterp_course import models

SEEN = []  # (assert source, held: True / False / None when it raised)


def _seen(test, source):
    try:
        held = bool(test())
    except Exception:  # noqa: BLE001  (a claim that cannot even be evaluated did not hold)
        held = None
    SEEN.append((source, held))


builtins.__assert_seen__ = _seen


class _Record(ast.NodeTransformer):
    def visit_Assert(self, node):
        lam = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                            kw_defaults=[], defaults=[]), body=node.test)
        call = ast.Call(func=ast.Name("__assert_seen__", ast.Load()),
                        args=[lam, ast.Constant(ast.unparse(node.test))], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(ast.Expr(call), node))


get_ipython().ast_transformers.append(_Record())

# Mutants (MUTANTS, set by the test): a negative claim holds on the null by nature, so it is tested
# the other way round. Right after the cell that asserts it, the cells that compute it run again
# in a copy of the namespace, with the edits that plant the positive, and its asserts are
# recorded in MUTANT_SEEN instead of SEEN. The copy's lists, dicts and sets are copies, so an
# in-place `+=` on one leaves the chapter's own run as it was.
MUTANT_SEEN = []  # (mutant index, assert source, held: True / False / None when it raised)
_CELLS = []       # every cell's source, in the order run


def _asserts_of(code):
    try:
        tree = ast.parse(get_ipython().transform_cell(code))
    except SyntaxError:
        return set()
    return {ast.unparse(n.test) for n in ast.walk(tree) if isinstance(n, ast.Assert)}


def _run_mutant(index, mutant):
    import contextlib, io
    import matplotlib.pyplot as plt
    start = len(_CELLS) - 1
    for old, _ in mutant["edits"]:
        start = min(start, max((i for i, c in enumerate(_CELLS) if old in c), default=-1))
    cells = _CELLS[start:] if start >= 0 else []
    for old, new in mutant["edits"]:
        if sum(c.count(old) for c in cells) != 1:
            MUTANT_SEEN.append((index, f"edit not found exactly once: {old!r}", None))
            return
        cells = [c.replace(old, new) for c in cells]
    ns = {k: (v.copy() if type(v) in (list, dict, set) else v)
          for k, v in get_ipython().user_ns.items()}
    seen = lambda test, source: MUTANT_SEEN.append((index, source, _held(test)))  # noqa
    builtins.__assert_seen__ = seen
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(mutant.get("prelude", ""), ns)
            for code in cells:
                tree = _Record().visit(ast.parse(get_ipython().transform_cell(code)))
                exec(compile(ast.fix_missing_locations(tree), "<mutant>", "exec"), ns)
    except Exception as e:  # noqa: BLE001
        MUTANT_SEEN.append((index, f"the mutant raised {type(e).__name__}: {e}", None))
    finally:
        builtins.__assert_seen__ = _seen
        plt.close("all")


def _held(test):
    try:
        return bool(test())
    except Exception:  # noqa: BLE001
        return None


def _after_cell(result):
    code = result.info.raw_cell
    _CELLS.append(code)
    here = _asserts_of(code)
    for index, mutant in enumerate(MUTANTS):
        if not mutant.get("done") and set(mutant["targets"]) <= here:
            mutant["done"] = True
            _run_mutant(index, mutant)


get_ipython().events.register("post_run_cell", _after_cell)

if NULL:
    # every model the chapter loads, untrained (the course model becomes "course-untrained")
    _load = models.load_model

    def load_model(*args, **kwargs):
        model = _load(*args, **kwargs)
        models.untrain(model.hf)
        return model

    mc.load_model = models.load_model = load_model

    # the toy models of superposition, before training
    from mechinterp_course import toy_models
    _train = toy_models.train
    toy_models.train = lambda *args, steps=3000, **kwargs: _train(*args, steps=0, **kwargs)

    # the shipped sweep tables, each run's settings shuffled among the runs (seed 0): a claim
    # that a setting matters must fail when settings and outcomes are paired at random
    from mechinterp_course import sae_sweep, sweep

    def _shuffled(rows, keys, rng):
        settings = [{k: r[k] for k in keys} for r in rows]
        rng.shuffle(settings)
        return [{**r, **s} for r, s in zip(rows, settings)]

    _folder = Path(tempfile.mkdtemp(prefix="null-tables-"))
    for _name in ("RESULTS", "RESULTS_ROTARY", "RESULTS_GPT2"):
        _table = json.loads(getattr(sweep, _name).read_text())
        _table["runs"] = _shuffled(_table["runs"], ["knobs"], random.Random(0))
        (_folder / getattr(sweep, _name).name).write_text(json.dumps(_table))
        setattr(sweep, _name, _folder / getattr(sweep, _name).name)
    _sae_table = sae_sweep.load_results()
    _sae_table["runs"] = _shuffled(_sae_table["runs"], ["site", "width", "k", "seed"],
                                   random.Random(0))
    _sae_table["nulls"] = _shuffled(_sae_table["nulls"], ["site", "width", "seed"],
                                    random.Random(0))
    sae_sweep.load_results = lambda *args, **kwargs: _sae_table

    # the planted SAE table: each run's model shuffled among the runs
    from mechinterp_course import method_scores
    _planted_sae = json.loads(method_scores.SAE_RESULTS.read_text())
    _planted_rows = [r for rows in _planted_sae["runs"].values() for r in rows]
    random.Random(0).shuffle(_planted_rows)
    for _name, _rows in list(_planted_sae["runs"].items()):
        _planted_sae["runs"][_name] = [_planted_rows.pop() for _ in _rows]
    (_folder / method_scores.SAE_RESULTS.name).write_text(json.dumps(_planted_sae))
    method_scores.SAE_RESULTS = _folder / method_scores.SAE_RESULTS.name
'''

# What a chapter's null adds to the untrained models, the untrained toy models and the shuffled
# tables above, where its claims are about something else.
CHAPTER_NULLS = {
    # chapter 02's claims are about what a cache saves: its null is a decoder without one
    "02_kv_cache.ipynb": r"""
if NULL:
    from mechinterp_course import hooked, kvcache
    kvcache.generate_with_cache = lambda model, tokens, n_new, *args, **kwargs: (
        kvcache.generate_without_cache(model, tokens, n_new))
    kvcache.step_with_cache = kvcache.step_without_cache
    _generate = hooked.HookedModel.generate

    def _generate_without_cache(self, *args, **kwargs):
        return _generate(self, *args, **{**kwargs, "use_cache": False})

    hooked.HookedModel.generate = _generate_without_cache
""",
    # chapter 14's claims are about transcoders and what graphs built from them predict: the
    # model stays trained (the shipped transcoders are keyed to its weights); the shipped
    # transcoders write each latent's direction shuffled among the latents (seed 0), and the one
    # the chapter trains takes no steps
    "14_circuit_tracing.ipynb": r"""
if NULL:
    mc.load_model = models.load_model = _load
    from mechinterp_course import transcoders as _transcoders
    _load_transcoders, _train_transcoder = _transcoders.load, _transcoders.train

    _transcoders.load = lambda *args, **kwargs: _transcoders.shuffled_writes(
        _load_transcoders(*args, **kwargs))
    _transcoders.train = lambda tc, x, y, steps, *args, **kwargs: _train_transcoder(
        tc, x, y, 0, *args, **kwargs)
""",
}

# Why an assert that holds on the null is not a claim the null should break. The kinds:
IDENTITY = "an identity of the code (one computation against another), true for any weights"
TOKENIZER = "about the tokenizer or the world's text, which the null shares"
MECHANICS = "how sampling, temperature or a seed work, for any model"
ARCHITECTURE = ("about the architecture, not training; the chapter says so and asserts it on the "
                "untrained model too")
NEGATIVE = ("a negative claim (the model does not do X): the untrained model does not do X either; "
            "the claim it qualifies, asserted beside it, fails on the null")
TABLE = ("about every run of a shipped sweep, not about a setting: shuffling the settings among "
         "the runs keeps it")

NOT_CLAIMS = {
    "00_forward_pass.ipynb": {
        "str_tokens == ['<|endoftext|>', 'The', ' capital', ' of', ' Texas', ' is']": TOKENIZER,
        "len(model.to_str_tokens(' Austin', prepend_bos=False)) == 1": TOKENIZER,
        "len(model.to_str_tokens(' supercalifragilistic', prepend_bos=False)) > 3": TOKENIZER,
        "torch.allclose(first, cache['resid_pre', 0][0], atol=1e-06)": IDENTITY,
        "torch.allclose(rebuilt, cache['resid_post', layer], atol=1e-05)": IDENTITY,
        "(growth > 3).all()": ARCHITECTURE,
        "len(shrinks) < norms[1:].numel() / 4": ARCHITECTURE,
        "(null_growth > 3).all()": ARCHITECTURE,
        "torch.equal(again, logits)": IDENTITY,
        "entropy[0] < entropy[1] < entropy[2]": MECHANICS,
        "len(set(samples)) > 1": MECHANICS,
        "samples == [model.generate('People in Kenya speak', max_new_tokens=4, temperature=1.5, "
        "seed=s) for s in range(3)]": MECHANICS,
        "smol_cache['resid_post', layer].shape == (1, len(smol.to_str_tokens(prompt)), "
        "smol.cfg.d_model)": IDENTITY,
        "torch.allclose(final, smol_logits, atol=0.001)": IDENTITY,
    },
    "01_attention.ipynb": {
        "torch.allclose(mine, cache[name, layer], atol=1e-05)": IDENTITY,
        "torch.allclose(mine['attn_out'], cache['attn_out', layer], atol=1e-05)": IDENTITY,
        "(c.n_heads, c.n_kv_heads) == (9, 3) and smol_cache['k', 0].shape[2] == 3": IDENTITY,
        "torch.allclose(mine['attn_out'], smol_cache['attn_out', layer], atol=0.0001)": IDENTITY,
        "torch.allclose(mine['pattern'], smol_cache['pattern', layer], atol=1e-05)": IDENTITY,
        "all((uniform[d] > uniform[d + 1] for d in range(1, 4)))":
            "the even head, a null made from positions alone: the chapter shows that the naive "
            "test of recency passes on it",
        "null['same token'] < 0.1 and null['induction'] < 0.1":
            "the chosen heads' scores on the chapter's own null (no repeat): " + NEGATIVE,
        "len(set(best[name].values())) == 4":
            "that four jobs' best heads are different heads; the jobs' scores, asserted above, "
            "are the claim and fail on the null",
        "jobs['course']['first token'].max() < 0.5":
            "a negative claim (the course model has no attention sink); the same score finds "
            "SmolLM2's sink, asserted next, which fails on the untrained SmolLM2",
    },
    "02_kv_cache.ipynb": {
        "torch.allclose(short['k', 2], long_['k', 2][:, :n], atol=1e-06)": IDENTITY,
        "torch.allclose(short['v', 2], long_['v', 2][:, :n], atol=1e-06)": IDENTITY,
        "torch.equal(out_none, out_hf) and torch.equal(out_mine, out_hf)": IDENTITY,
        "stepper.cache.nbytes() == kvcache.cache_bytes(model.cfg.n_layers, model.cfg.n_kv_heads, "
        "model.cfg.d_head, len(stepper.cache), bytes_per_value=4)": IDENTITY,
        "configs['SmolLM2-135M'] == (smol.cfg.n_layers, smol.cfg.n_kv_heads, smol.cfg.d_head)":
            IDENTITY,
        "mib['Llama 3 8B'] < mib['Phi-3-mini (3.8B)'] / 2":
            "arithmetic on published model configurations",
    },
    "03_residual_stream.ipynb": {
        "torch.allclose(rebuilt, final, atol=0.0001)": IDENTITY,
        "torch.allclose(lensed[-1], logits[0, -1], atol=0.001)": IDENTITY,
        "off_by > 0.15": "that the final norm rescales the stream, in any model: about the "
                         "architecture, as the chapter says",
        "torch.allclose(smol_lens[-1], smol_logits[0, -1], atol=0.001)": IDENTITY,
        "torch.allclose(total, want, atol=0.001)": IDENTITY,
        "counts['embed'] == 0":
            "a negative claim (never from the embeddings alone); the claim it qualifies, that "
            "every capital appears, is asserted above it and fails on the null",
    },
    "04_induction_circuits.ipynb": {
        "movers == [] and mean_contrib.abs().max() < 0.3":
            "a negative claim (no head writes much of the answer): untrained heads write nothing "
            "either; the effect it qualifies, the MLPs' share, is asserted beside it",
    },
    "05_superposition.ipynb": {
        "texas['mlp_out', 2].shape[-1] == model.cfg.d_model != model.cfg.d_mlp": IDENTITY,
        "results[2][2].low > 0.05 and results[3][2].low > 0.02":
            "beyond the shifted null, which rules out bursts, not beyond an untrained model: "
            "the chapter says that untrained neurons clear it too",
        "results[3][0].high < 0.5": "an upper bound (a minority): " + NEGATIVE,
        "all((writes[f] < cutoff[f] for f in range(len(data.families)) if responds[f, chosen]))":
            "a negative claim (the neuron writes none of its families); the positive control "
            "beside it, a direction built from the unembedding, shows the test can pass",
        "all((planted_writes[f] > cutoff[f] for f in range(len(data.families))))":
            "a positive control built from the unembedding, which passes for any weights",
    },
    "06_sparse_autoencoders.ipynb": {
        "mmcs[name] >= 0.95 > null_mmcs + 0.2": "an SAE on planted features, not on the model",
        "fve >= 0.9 and l0 <= 32 and (dead <= 0.05)":
            "the SAE's quality, not the model's: an SAE fits an untrained model's activations too",
        "recovered['recovered'] > 0.8":
            "a fraction of what zero ablation costs, which on the untrained model is next to "
            "nothing",
        "torch.equal(labelled.token_ids, neuron_data.token_ids)": IDENTITY,
        "upstream.shape[1] == latents.shape[1]": IDENTITY,
        "(random_auc > latent_auc).sum() > n / 2": NEGATIVE,
        "(encoder_auc - random_auc).median() < 0.02": NEGATIVE,
        "(encoder_auc > latent_auc - 0.01).all()": NEGATIVE,
        "(encoder_auc > latent_auc + 0.02).sum() > n / 2": NEGATIVE,
        "(neuron_auc > latent_auc).sum() > n / 2": NEGATIVE,
        "precision.median() < 0.5": NEGATIVE,
        "label_auc < 0.9": NEGATIVE,
        "worst >= 0.95": "which token is here, in any model's residual stream: the chapter says "
                         "that an untrained model's SAE has keyword latents too",
        "len(distinct) >= 0.8 * len(keyword_latents)":
            "the same: token identity, which the chapter says",
        "python_share[python_latent] >= 0.9": "the same: token identity, which the chapter says",
        "len(fair) > len(sweep_runs) / 2": TABLE,
        "sum((c >= majority for c in narrow_runs)) < len(narrow_runs) / 2": TABLE,
        "len(any_run) > n / 2 and 'Python keyword' not in any_run": TABLE,
        "sum((m <= spread['detected'] for m in margin.values())) > len(margin) / 2": TABLE,
        "clear and all((w == narrowest for _, w, _ in clear))":
            "few settings clear the margin, so a shuffle keeps 'all narrow' by chance; the "
            "claims beside it, that the widest never beat the null and most that do are narrow, "
            "fail on the shuffle",
        "(beaten['other latent'][1:] >= 0.9).all()":
            "the steering claim beside it, against equal-norm random directions, fails on the null",
    },
    "07_causal_interventions.ipynb": {
        "'passes on the same prompts on an untrained model' in refusal":
            "the open exercise's check refusing a design that cannot fail, for any weights (its "
            "other refusals are tested in test_checks_ch07): " + IDENTITY,
        "len(pairs) > sum((len(p) for p in all_pairs)) / 2": TOKENIZER,
        "resid[:, :subject].abs().max() < 0.0001": IDENTITY,
        "mean[0, subject] > 0.99": "entering block 0 the subject's position is all that differs: "
                                   + IDENTITY,
        "mlp_each[n_layers - 1, subject].abs().max() < 0.0001":
            "nothing after the last MLP reads the subject's position: " + IDENTITY,
        "grid[:, :span[0]].abs().max() < 0.0001": IDENTITY,
        "not_needed == ['South Korea', 'Saudi Arabia', 'New York', 'Rhode Island']": TOKENIZER,
    },
    "08_capstone.ipynb": {
        "[v.passed for v in verdicts] == [False, False, False]":
            "three claims shown failing under matched controls: " + NEGATIVE,
        "'layers' in refused and 'positions' in refused":
            "the claims module refusing an unmatched control: " + IDENTITY,
        "not latent_verdicts[0].passed and recall_rate < 0.2": NEGATIVE,
        "sorted((r['history'][-1][1] for r in three_layers))[-1] < "
        "three_layers[0]['history'][0][1]": "that training lowers the loss: " + TABLE,
    },
    "09_planted_mechanisms.ipynb": {
        "max(singles.values()) < 0.1 * method_scores.ABLATION_THRESHOLD":
            "each redundant head alone does nothing: " + NEGATIVE,
        "decoded['fact, shuffled labels (null)'] < 0.5": "the probe's own null: " + NEGATIVE,
        "decoded['fact'] > 0.95 and decoded['subject position'] > 0.95":
            "decodable in the untrained model too: " + ARCHITECTURE,
        "untrained_decoded['fact'] > 0.95 and untrained_decoded['subject position'] > 0.9":
            "on the untrained model: " + ARCHITECTURE,
        "edges['redundant']['path patching, one edge at a time']['named'] == []":
            "path patching names neither redundant edge: " + NEGATIVE,
        "max(and_alone.values()) < 0.1 * method_scores.ABLATION_THRESHOLD":
            "each operand's head patched back alone restores nothing: " + NEGATIVE,
        "not set(control_heads) & set(course_named['attention pattern scores'])":
            "the control heads have no induction pattern: " + NEGATIVE,
        "all((alone[h].high < threshold for h in swept_out))":
            "the sweep does not name these heads: " + NEGATIVE,
    },
    "10_attribution_patching.ipynb": {
        "(attribution[:, :subject] == 0).all() and (patching[:, :subject] == 0).all()":
            "positions before the subject are the same in both prompts: " + IDENTITY,
        "r.low >= 0.9 and excess.low > 0":
            "agreement measures how linear the model is along the patch, and the untrained "
            "model is more so: the chapter says so and asserts it on the untrained model too",
    },
    "11_steering.ipynb": {},
    "12_function_vectors.ipynb": {},
    "13_remote.ipynb": {"largest < 0.0001": IDENTITY, "worst < 0.0001": IDENTITY,
                        "torch.allclose(batched_grid, hooked_grid, atol=0.0001)": IDENTITY},
    "14_circuit_tracing.ipynb": {"gap < 0.001": IDENTITY},
}

# A negative claim (the model does not do X) holds on the untrained model too, so the null cannot
# test it; a mutant does. Each plants X (a model, head, latent or label that does it) by editing
# the cells that compute the claim, `edits` (old text -> new, each found exactly once between the
# first cell edited and the cell that asserts the claim); `prelude` runs first in the copied
# namespace. In the null run `_load` is the loader that keeps a model trained, for the mutants
# whose X needs one. Every target must fail on its mutant.
MUTANTS = {
    "01_attention.ipynb": [
        dict(targets=["null['same token'] < 0.1 and null['induction'] < 0.1"],
             plants="the null's tokens given the repeat, on the trained course model",
             prelude="smol = None",
             edits=[('[("course", model), ("SmolLM2", smol)]',
                     '[("course", _load("course", device=device))]'),
                    ("nulls[name] = job_scores(m, evaluate.unrepeated_tokens(",
                     "nulls[name] = job_scores(m, evaluate.repeated_tokens(")]),
        dict(targets=["jobs['course']['first token'].max() < 0.5"],
             plants="a head of the course model that rests on the first token (an attention "
                    "sink, as SmolLM2's heads have)",
             prelude="smol = None",
             edits=[('pats = [c_jobs["pattern", layer] for layer in range(m.cfg.n_layers)]',
                     'pats = [c_jobs["pattern", layer] for layer in range(m.cfg.n_layers)]\n'
                     '    pats[-1] = pats[-1].clone()\n'
                     '    pats[-1][:, 0] = 0\n'
                     '    pats[-1][:, 0, :, 0] = 1')]),
    ],
    "03_residual_stream.ipynb": [
        dict(targets=["counts['embed'] == 0"],
             plants="an embedding of the prompt's last token that carries the capital's "
                    "unembedding",
             edits=[("    p_logits, p_cache = model.run_with_cache(p.text)\n",
                     "    _carry = lambda e: torch.cat([e[:, :-1], e[:, -1:] + 50 * e[:, -1:]"
                     ".norm() * model.W_U[:, answer] / model.W_U[:, answer].norm()], 1)\n"
                     "    with model.hooks({'embed': _carry}):\n"
                     "        p_logits, p_cache = model.run_with_cache(p.text)\n")]),
    ],
    "04_induction_circuits.ipynb": [
        dict(targets=["movers == [] and mean_contrib.abs().max() < 0.3"],
             plants="L2H1 made a name mover: at the last position it writes along the "
                    "unembedding of the indirect object minus the subject",
             edits=[("    p_logits, p_cache = model.run_with_cache(p.text)\n",
                     "    _w_o = model.attention_weights(2)['W_O'][1]\n"
                     "    _v = _w_o @ (model.W_U[:, a] - model.W_U[:, b])\n"
                     "    _v = _v / (_v @ _w_o).norm() * 20\n"
                     "    def _mover(z):\n"
                     "        z = z.clone()\n"
                     "        z[:, -1, 1] += _v\n"
                     "        return z\n"
                     "    with model.hooks({('z', 2): _mover}):\n"
                     "        p_logits, p_cache = model.run_with_cache(p.text)\n")]),
    ],
    "05_superposition.ipynb": [
        dict(targets=["results[3][0].high < 0.5"],
             plants="every neuron's top tokens reaching every family's threshold",
             edits=[("for m in (1, 2, 3):", "for m in (3,):"),  # the claim's m alone: faster
                    ("neurons.family_counts(data, rows=rows), thresholds, m)",
                     "torch.maximum(neurons.family_counts(data, rows=rows), "
                     "thresholds[:, None]), thresholds, m)")]),
        dict(targets=["all((writes[f] < cutoff[f] for f in range(len(data.families)) "
                      "if responds[f, chosen]))"],
             plants="the neuron's output row replaced by the mean unembedding of its families' "
                    "tokens, at its own norm",
             edits=[("    row = model.W_out[layer, index]  # (d_model,) what the neuron writes per "
                     "unit of activation\n",
                     "    row = model.W_out[layer, index]\n"
                     "    _own = torch.stack([model.W_U[:, vocab_owner == f].mean(1) for f in "
                     "range(len(data.families)) if responds[f, chosen]]).sum(0)\n"
                     "    row = _own / _own.norm() * row.norm()\n")]),
    ],
    "06_sparse_autoencoders.ipynb": [
        dict(targets=["(random_auc > latent_auc).sum() > n / 2",
                      "(encoder_auc > latent_auc - 0.01).all()",
                      "(encoder_auc > latent_auc + 0.02).sum() > n / 2",
                      "(neuron_auc > latent_auc).sum() > n / 2", "precision.median() < 0.5",
                      "label_auc < 0.9"],
             plants="an SAE with one latent for each world label (the label itself)",
             edits=[("    latents = topk.encode(labelled.acts)  # (tokens, 1024)\n",
                     "    latents = topk.encode(labelled.acts)\n"
                     "    latents = torch.cat([latents, torch.stack(list(labels.values()), 1)"
                     ".float()], 1)\n")]),
        dict(targets=["(encoder_auc - random_auc).median() < 0.02"],
             plants="an encoder direction that detects each world label perfectly (AUROC 1)",
             edits=[('encoder_auc = torch.tensor([r["encoder_auc"] for r in rows])',
                     "encoder_auc = torch.ones(len(rows))")]),
    ],
    "08_capstone.ipynb": [
        dict(targets=["[v.passed for v in verdicts] == [False, False, False]"],
             plants="an MLP patch that restores the whole answer (the last residual stream's "
                    "patch in its place), on the trained course model",
             prelude="model = _load('course', device=device)",
             edits=[('mlp, attn = restored_by("mlp_out", layers, pos), '
                     'restored_by("attn_out", layers, pos)',
                     'mlp, attn = restored_by("resid_post", [n_layers - 1], last), '
                     'restored_by("attn_out", layers, pos)')]),
        dict(targets=["not latent_verdicts[0].passed and recall_rate < 0.2"],
             plants="the latent made the held-out tokens' Python label itself",
             prelude="test_latents = test_latents.clone()\n"
                     "test_latents[:, latent] = (held_out.family == python).float()",
             edits=[]),
    ],
    "09_planted_mechanisms.ipynb": [
        dict(targets=["max(singles.values()) < 0.1 * method_scores.ABLATION_THRESHOLD"],
             plants="planted-induction in place of planted-redundant: L1H0 with no backup",
             edits=[('redundant = mc.load_model("planted-redundant", device=device)',
                     'redundant = _load("planted-induction", device=device)')]),
        dict(targets=["decoded['fact, shuffled labels (null)'] < 0.5"],
             plants="the null's labels left in order",
             edits=[("facts[torch.randperm(len(x), generator=g)]", "facts")]),
        dict(targets=["edges['redundant']['path patching, one edge at a time']['named'] == []"],
             plants="the trained planted-induction, whose edge has no backup, path-patched in "
                    "planted-redundant's place",
             edits=[("edges = method_scores.edge_table()\n",
                     "edges = method_scores.edge_table()\n"
                     "_m = _load('planted-induction', device='cpu')\n"
                     "_effects = method_scores.path_patching_effects(_m, *method_scores.task("
                     "'induction', _m))\n"
                     "edges['redundant']['path patching, one edge at a time'] = "
                     "method_scores.score([e for e, d in _effects.items() if d > 1.0], "
                     "method_scores.truth_edges('redundant'))\n")]),
        dict(targets=["max(and_alone.values()) < 0.1 * method_scores.ABLATION_THRESHOLD"],
             plants="on the trained planted-and, another run that differs in one operand only",
             edits=[('conjunction = mc.load_model("planted-and", device=device)',
                     'conjunction = _load("planted-and", device=device)'),
                    ("and_other = method_scores.resampled(and_tokens)",
                     "_y = torch.tensor([conjunction.to_single_token(w) for w in planted.Y_WORDS])"
                     "\nand_other = torch.where(torch.isin(and_tokens, _y), _y.roll(-1)[("
                     "and_tokens - _y[0]).clamp(0, len(_y) - 1)], and_tokens)")]),
        dict(targets=["not set(control_heads) & set(course_named['attention pattern scores'])",
                      "all((alone[h].high < threshold for h in swept_out))"],
             plants="on the trained course model, a control that takes two heads of block 2, and "
                    "the sweep's verdict extended to L2H0, the head it names",
             edits=[('course = mc.load_model("course", device=device)',
                     'course = _load("course", device=device)'),
                    ('swept_out = [h for h in block_2 if h not in course_named["zero ablation, '
                     'one component at a time"]]', "swept_out = list(block_2)"),
                    ('control_heads = ["L3H0", "L3H1", "L3H2"]',
                     'control_heads = ["L2H1", "L2H2", "L3H2"]')]),
    ],
}


def run_recorded(name: str, null: bool, folder) -> tuple[list, list]:
    """Run a solution notebook in `folder` (its caches, built from untrained models, must not
    replace the real ones beside the solutions) and return what each assert did, and what each
    target of the chapter's mutants did: (source, held) and (mutant index, source, held)."""
    nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if "setup" in c.metadata.get("tags", []))
    mutants = json.dumps(MUTANTS.get(name, []) if null else [])
    recorder = (f"import json\nNULL = {null}\nMUTANTS = json.loads({mutants!r})\n"
                f"{RECORDER}{CHAPTER_NULLS.get(name, '')}")
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(recorder))
    nb.cells.append(nbformat.v4.new_code_cell(
        "print('SEEN=' + json.dumps([SEEN, MUTANT_SEEN]))"))
    run_notebook(nb, folder)
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "SEEN=" in out, f"{name}: the recorder printed nothing: {nb.cells[-1].outputs}"
    seen, mutant_seen = json.loads(out.split("SEEN=", 1)[1])
    return [tuple(x) for x in seen], [tuple(x) for x in mutant_seen]


def asserts_in(name: str) -> list[str]:
    """Every assert in the solution notebook, as the recorder names it (read, not run: nbval
    already runs each solution and fails on any assert that does not hold)."""
    nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = "\n".join(line for line in cell.source.splitlines()
                              if not line.lstrip().startswith(("%", "!")))
            found += [ast.unparse(n.test) for n in ast.walk(ast.parse(code))
                      if isinstance(n, ast.Assert)]
    return found


CHAPTERS = sorted(p.name for p in (ROOT / "solutions").glob("[0-9]*.ipynb"))


def test_every_chapter_is_judged_or_says_why_not():
    assert set(CHAPTERS) == set(NOT_CLAIMS) and set(MUTANTS) <= set(NOT_CLAIMS)
    for name, exempt in NOT_CLAIMS.items():
        unused = set(exempt) - set(asserts_in(name))
        assert not unused, f"{name}: exemptions that match no assert: {unused}"
        # a negative claim is exempt from the null only if a mutant shows it can fail
        targets = {t for m in MUTANTS.get(name, []) for t in m["targets"]}
        untested = [s for s, why in exempt.items() if "negative claim" in why and s not in targets]
        assert not untested, f"{name}: negative claims with no mutant: {untested}"
        assert targets <= set(exempt), (
            f"{name}: mutants of claims not exempt: {targets - set(exempt)}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOT_CLAIMS))
def test_every_claim_fails_on_the_null(name, tmp_path):
    null, mutated = run_recorded(name, null=True, folder=tmp_path)
    outcomes: dict[str, list] = {}
    for source, held in null:
        outcomes.setdefault(source, []).append(held)
    # in a loop, a claim is all of its iterations: it fails on the null if any one fails
    held_on_null = sorted(s for s, held in outcomes.items() if all(held)
                          and s not in NOT_CLAIMS[name])
    assert not held_on_null, f"{name}: these claims hold on the null too: {held_on_null}"
    # where the chapter tells learners that the untrained model does it too, that must be so
    said = [s for s, why in NOT_CLAIMS[name].items() if "the chapter says" in why]
    untrue = [s for s in said if not all(outcomes.get(s, [False]))]
    assert not untrue, f"{name}: the chapter says these hold on the null, and they do not: {untrue}"
    # each negative claim fails on its mutant, where the positive is planted
    for i, mutant in enumerate(MUTANTS.get(name, [])):
        held = {}
        for index, source, h in mutated:
            if index == i:
                held.setdefault(source, []).append(h)
        broken = [s for s in held if s.startswith(("edit not found", "the mutant raised"))]
        assert not broken, f"{name}: the mutant planting {mutant['plants']!r}: {broken}"
        kept = [t for t in mutant["targets"] if False not in held.get(t, [])]
        assert not kept, (f"{name}: these claims hold on the mutant planting {mutant['plants']!r}"
                          f" too (or were not reached): {kept}")
    everything = set(asserts_in(name))
    print(f"{name}: {len(everything)} asserts, {len(NOT_CLAIMS[name])} exempt; on the null "
          f"{sum(not all(h) for h in outcomes.values())} failed, "
          f"{len(everything - set(outcomes))} were not reached")
