"""What machine made a number: recorded in every shipped table, compared when a rerun differs.

One CPU thread is deterministic on one machine, not across machines: ATen picks its vector
kernels (softmax, reductions) by what the CPU supports (AVX2, AVX-512, or the plain "default"
set) and MKL picks its matrix-multiply kernels by CPU model. A one-ulp difference is harmless on
a loss plateau and grows to a few hundredths of a nat through a phase change. So a table records
the kernel set, CPU and library versions that made it, and a mismatch names them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The facts a floating-point result depends on, for a table's meta."""
    import numpy
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": numpy.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
            "cpu": cpu_model(), "machine": platform.machine()}


def differences(recorded: dict) -> list[str]:
    """Which of the recorded facts differ on this machine, in words ('not recorded' for tables
    made before these facts were kept)."""
    here = machine()
    out = []
    for key in ("cpu_capability", "cpu", "torch", "threads"):
        if key not in recorded:
            out.append(f"{key}: not recorded (this machine: {here[key]})")
        elif str(recorded[key]) != str(here[key]):
            out.append(f"{key}: {recorded[key]} there, {here[key]} here")
    return out


def mismatch_message(what: str, recorded: dict) -> str:
    """A message for a rerun outside its tolerance that names the likely cause."""
    diff = differences(recorded)
    cause = ("; ".join(diff) if diff else "none of the recorded facts differ, so the cause is "
             "more likely a change of code or of a library not recorded")
    return (f"{what} does not match the shipped table within the tolerance measured across CPU "
            f"kernel sets. What differs from the machine that made the table: {cause}.")
