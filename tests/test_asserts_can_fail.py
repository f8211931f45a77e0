"""An assert that cannot fail is a defect: each claim a chapter asserts about the course model must
fail on a null model, the same architecture and tokenizer with untrained weights (GPT-2's
initialisation, a fixed seed). The solution notebook runs twice, with every `assert` rewritten
(an IPython AST transformer) to record whether it held instead of stopping the notebook: with the
trained model every assert holds; with the null, every claim fails (or cannot be evaluated).
Asserts that hold for any model by construction (one implementation against another, shapes)
are listed below with why, so the list is the only way to exempt one.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from notebooks import ROOT

RECORDER = r'''
import ast, builtins, json, torch
import mechinterp_course as mc

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

if NULL:
    _load = mc.load_model

    def load_model(name="course", *args, **kwargs):
        model = _load(name, *args, **kwargs)
        if name == "course":  # untrained: GPT-2's initialisation, LayerNorms at one and zero
            g = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for pname, p in model.hf.named_parameters():
                    if ".ln_" in pname or pname.startswith("transformer.ln_f"):
                        p.fill_(1.0 if pname.endswith("weight") else 0.0)
                    else:
                        p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        return model

    mc.load_model = load_model
'''

# Asserts that hold on any model, by construction; each with why it is not a claim.
NOT_CLAIMS = {
    "04_induction_circuits.ipynb": {
        "movers == [] and mean_contrib.abs().max() < 0.3":
            "a negative claim (no head writes much of the answer): untrained heads write nothing "
            "either; the effect it qualifies, the MLPs' share, is asserted beside it",
    },
}


def run_recorded(name: str, null: bool) -> list[tuple[str, bool | None]]:
    nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if "setup" in c.metadata.get("tags", []))
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(f"NULL = {null}\n{RECORDER}"))
    nb.cells.append(nbformat.v4.new_code_cell("print('SEEN=' + json.dumps(SEEN))"))
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "solutions")}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "SEEN=" in out, f"{name}: the recorder printed nothing: {nb.cells[-1].outputs}"
    return [tuple(x) for x in json.loads(out.split("SEEN=", 1)[1])]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOT_CLAIMS))
def test_every_claim_fails_on_an_untrained_model(name):
    trained = run_recorded(name, null=False)
    assert trained and all(held for _, held in trained), (
        f"{name}: with the trained model these did not hold: "
        f"{[s for s, held in trained if not held]}")
    null = run_recorded(name, null=True)
    exempt = NOT_CLAIMS[name]
    held_on_null = sorted({s for s, held in null if held} - set(exempt))
    assert not held_on_null, f"{name}: these claims hold on an untrained model too: {held_on_null}"
    unused = set(exempt) - {s for s, _ in trained}
    assert not unused, f"{name}: exemptions that match no assert: {unused}"
    reached = {s for s, _ in null}
    print(f"{name}: {len({s for s, _ in trained})} asserts; on the null "
          f"{len({s for s, held in null if held is False})} failed, "
          f"{len({s for s, held in null if held is None})} could not be evaluated, "
          f"{len({s for s, _ in trained} - reached)} were not reached")
