"""Run every benchmark and write benchmarks/RESULTS.md: `python benchmarks/run.py`.

Each benchmark runs its contenders side by side in one process (alternating, after a warm-up) and
reports medians and ratios. Not part of the test suite's pass/fail; tiny smoke runs are.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import head_patching  # noqa: E402
import kv_cache  # noqa: E402
import sae_training  # noqa: E402


CIRCUIT_TRACER_INTRO = (
    "## Attribution graphs against circuit-tracer\n\nChapter 14's graph and Anthropic's "
    "circuit-tracer on the same prompt, model and transcoders (circuit-tracer's TransformerLens "
    "backend, in its own environment: it needs transformers <= 4.57).\n")


def circuit_tracer_section() -> str:
    """benchmarks/circuit_tracer_graph.py, run in .venv-circuit-tracer when it is there."""
    python = HERE.parent / ".venv-circuit-tracer" / "bin" / "python"
    if not python.exists():
        return ("Not run here: no `.venv-circuit-tracer` (its docstring says how to make one).\n")
    done = subprocess.run([str(python), str(HERE / "circuit_tracer_graph.py")],
                          capture_output=True, text=True, check=True)
    return done.stdout[done.stdout.index("### "):]


def versions() -> str:
    names = ["torch", "transformers", "mechinterp-course", "transformer-lens", "nnsight",
             "sae-lens"]
    found = []
    for n in names:
        try:
            found.append(f"{n} {version(n)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


# run_with_cache tells glibc to keep freed memory (mechinterp_course.memory); this switches that
# off, to show what it buys.
GLIBC_DEFAULTS = {"MECHINTERP_COURSE_KEEP_MEMORY": "0"}


def caching_with_allocator(env_extra: dict, label: str, device: str = "cpu") -> str:
    """The caching benchmark in a fresh process, so allocator settings apply from the start."""
    out = subprocess.run([sys.executable, str(HERE / "cache_overhead.py"), "--device", device],
                         capture_output=True, text=True, env={**os.environ, **env_extra},
                         check=True).stdout
    return f"#### Allocator: {label}\n\n" + out[out.index("###"):]


def mc_models_available(name: str) -> bool:
    """Whether an optional model (SmolLM2's wheel) is installed here."""
    from mechinterp_course import models

    return models.load_optional(name) is not None


def notebooks(rerun: bool = True) -> str:
    """Every solution notebook's wall time and peak memory, measured by the build's timer (which
    also refreshes docs/NOTEBOOK_TIMES.md); rerun=False reuses that file's last measurement."""
    sys.path.insert(0, str(HERE.parent))
    from mechinterp_course import build

    doc = (build.time_notebooks() if rerun else build.ROOT / "docs" / "NOTEBOOK_TIMES.md")
    text = doc.read_text()
    measured = next(line for line in text.splitlines() if line.startswith("Machine:"))
    return f"{measured}\n\n" + text[text.index("| notebook"):]


def main(argv=None) -> Path:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reuse-notebook-times", action="store_true",
                    help="take the notebooks' table from docs/NOTEBOOK_TIMES.md instead of running "
                         "them again (about ten minutes)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md",
                    help="where to write the table (default benchmarks/RESULTS.md)")
    args = ap.parse_args(argv)
    sections = [
        "## Activation caching\n\nThe cost of caching every name is mostly memory: the kept "
        "activations need fresh pages, which glibc's default allocator returns to the system after "
        "each run and page-faults back in on the next. `run_with_cache` therefore tells malloc to "
        "keep freed memory for reuse (`mechinterp_course.memory`, once per process, so every "
        "contender in that process runs with it). The second run switches that off "
        "(`MECHINTERP_COURSE_KEEP_MEMORY=0`) to show what it buys.\n",
        caching_with_allocator({}, "as shipped (malloc keeps freed memory)"),
        caching_with_allocator(GLIBC_DEFAULTS, "glibc defaults"),
        "## Generation with and without a KV cache\n", kv_cache.main([]),
        "## Training a sparse autoencoder\n\nThe same activations, hyperparameters, starting "
        "decoder bias and batch order for both libraries, in two recipes: SAELens always clips the "
        "gradient norm at 1 and by default rescales TopK latents by their decoder norms, and ours "
        "is run with the same settings. (SAELens's auxiliary loss for dead latents counts a latent "
        "dead after 1,000 steps without firing, so in 600 steps it never applies.) Ours decodes "
        "from each input's k active latents only; SAELens multiplies by the whole decoder.\n",
        sae_training.main([])]
    if mc_models_available("smollm2"):  # chapter 12's head ranking, checked head by head
        sections += ["## Attribution patching against patching each head\n\nChapter 12 ranks "
                     "SmolLM2's heads by attribution patching's estimate; here every head is "
                     "also patched for real, on the same prompts.\n", head_patching.main([])]
    sections += [CIRCUIT_TRACER_INTRO, circuit_tracer_section()]
    if torch.cuda.is_available():  # the same benchmarks again on the GPU
        gpu = ["--device", "cuda"]
        sections += [f"## On the GPU ({torch.cuda.get_device_name()})\n",
                     caching_with_allocator({}, "as shipped", "cuda"),
                     kv_cache.main(gpu), sae_training.main(gpu)]
    sections += ["## Solution notebooks\n\nEach executed top to bottom in a fresh kernel, "
                 "network blocked (target: at most 90 s and 2 GB each on 2 CPU cores).\n",
                 notebooks(rerun=not args.reuse_notebook_times)]
    cpu = platform.processor() or platform.machine()
    header = (f"# Benchmark results\n\nGenerated by `python benchmarks/run.py` on "
              f"{time.strftime('%Y-%m-%d')}.\nMachine: {cpu}, {torch.get_num_threads()} torch "
              f"threads, Python {platform.python_version()}; {versions()}.\n"
              f"GPU: {'none' if not torch.cuda.is_available() else torch.cuda.get_device_name()}."
              "\n\n")
    args.out.write_text(header + "\n".join(sections))
    print("wrote", args.out)
    return args.out


if __name__ == "__main__":
    main()
