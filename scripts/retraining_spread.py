"""How far retraining the course model moves on another CPU: train its recipe to a step twice on
this machine, one thread each, once with ATen's native kernels and once with its "default" set
(ATEN_CPU_CAPABILITY=default), and write both histories to course_model/retraining_spread.json,
which the model card reports.

    python scripts/retraining_spread.py [--steps 2000]     # two runs side by side, ~100 min here
    python scripts/retraining_spread.py --from A B         # merge two finished runs' folders

At the shipped model's step (2000, where its card says it stopped) it also records how far each
run's weights are from the shipped ones: zero means that run reproduced the bundled model.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "mechinterp_course" / "course_model" / "retraining_spread.json"
SHIPPED = ROOT / "mechinterp_course" / "course_model" / "model.safetensors"
SHIPPED_STEP = 2000  # the card's "Stopped at step"


def train_both(steps: int, work: Path) -> list[Path]:
    args = [sys.executable, "-m", "mechinterp_course.train", "--max-steps", "4000",
            "--stop-step", str(steps), "--eval-every", "100", "--threads", "1", "--no-stop"]
    runs = []
    for name, env in (("native", {}), ("default", {"ATEN_CPU_CAPABILITY": "default"})):
        out = work / name
        log = open(work / f"{name}.log", "w")
        runs.append((out, subprocess.Popen(args + ["--out", str(out)], stdout=log,
                                           stderr=subprocess.STDOUT,
                                           env={**os.environ, **env})))
    for out, proc in runs:
        if proc.wait() != 0:
            raise SystemExit(f"training into {out} failed: see {out}.log")
    return [out for out, _ in runs]


def merge(folders: list[Path]) -> dict:
    states = [json.loads((Path(f) / "checkpoint" / "state.json").read_text()) for f in folders]
    kernels = [s["machine"]["cpu_capability"] for s in states]
    if kernels[0] == kernels[1]:
        raise SystemExit(f"both runs used the {kernels[0]} kernel set; one must run under "
                         "ATEN_CPU_CAPABILITY=default")
    runs = [{"machine": s["machine"], "history": s["history"]} for s in states]
    for run, state, folder in zip(runs, states, folders):
        if state["step"] == SHIPPED_STEP:
            run["weights_gap_to_shipped"] = weights_gap(Path(folder) / "checkpoint" /
                                                        "model.safetensors", SHIPPED)
    return {"shipped_step": SHIPPED_STEP, "runs": runs}


def weights_gap(a: Path, b: Path) -> float:
    """The largest absolute difference between two weight files' tensors (same names)."""
    from safetensors.torch import load_file

    x, y = load_file(a), load_file(b)
    if x.keys() != y.keys():
        raise SystemExit(f"{a} and {b} hold different tensors")
    return max(float((x[k].double() - y[k].double()).abs().max()) for k in x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=SHIPPED_STEP)
    parser.add_argument("--from", dest="folders", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args(argv)
    if args.folders:
        folders = args.folders
    else:
        work = ROOT / "runs" / "retraining_spread"  # runs/ is ignored by git
        work.mkdir(parents=True, exist_ok=True)
        folders = train_both(args.steps, work)
    OUT.write_text(json.dumps(merge(folders), indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
