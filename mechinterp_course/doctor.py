"""`mechinterp-course doctor`: a preflight for a classroom. In a few seconds it checks what a
workshop needs on each learner's machine and prints one line per item, with what to do when an
item fails, so problems show up before the first chapter, not in the middle of it.

A failed item (✗) will break a chapter; a warning (!) limits what works (no internet: only the
bundled model and SmolLM2). The exit status is 1 when any item failed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "\N{CHECK MARK}", WARN: "!", FAIL: "\N{BALLOT X}"}
MIN_MEMORY_GIB, MIN_DISK_GIB = 2.0, 1.0  # the course model, SmolLM2 and the SAE chapter's files


@dataclass
class Item:
    name: str
    status: str     # OK, WARN or FAIL
    detail: str     # what was found
    fix: str = ""   # what to do, when it is not OK

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.status != OK and self.fix else ""
        return f"{MARKS[self.status]} {self.name}: {self.detail}{fix}"


def _requirements() -> dict[str, str]:
    """The package's declared ranges, {name: specifier}, from its installed metadata."""
    from packaging.requirements import Requirement
    out = {}
    for text in importlib.metadata.requires("mechinterp-course") or []:
        req = Requirement(text)
        if req.marker is None:  # extras (benchmarks, dev) are not needed to learn
            out[req.name.lower()] = str(req.specifier)
    return out


def check_python() -> Item:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 10):
        return Item("python", OK, version)
    return Item("python", FAIL, version, "install Python 3.10 or newer")


def check_versions(requirements: dict[str, str] | None = None) -> list[Item]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
    requirements = _requirements() if requirements is None else requirements
    items = []
    for name, spec in requirements.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            items.append(Item(name, FAIL, "not installed", f"pip install '{name}{spec}'"))
            continue
        if Version(found.split("+")[0]) in SpecifierSet(spec):
            items.append(Item(name, OK, f"{found} (declared range {spec or 'any'})"))
        else:
            items.append(Item(name, FAIL, f"{found}, outside the declared range {spec}",
                              f"pip install '{name}{spec}'"))
    return items


def check_course_model() -> tuple[Item, object | None]:
    from .models import load_model
    try:
        model = load_model("course", device="cpu")
        predicted = model.to_string(model("The capital of Texas is")[0, -1].argmax())
    except Exception as e:  # noqa: BLE001  (any failure is the finding)
        return Item("course model", FAIL, f"does not load: {type(e).__name__}: {e}",
                    "reinstall the package (pip install --force-reinstall mechinterp-course)"), None
    if predicted != " Austin":
        return Item("course model", FAIL, f"predicts {predicted!r} after 'The capital of Texas "
                    "is', not ' Austin'", "reinstall the package; if it persists, report your "
                    "torch and transformers versions"), model
    return Item("course model", OK, "loads and predicts ' Austin'"), model


def check_smollm2() -> Item:
    from .models import SMOLLM2_INSTALL, smollm2_gguf
    if smollm2_gguf() is None:
        return Item("SmolLM2", WARN, "not installed (chapters 00 to 03 skip the cells that use it)",
                    SMOLLM2_INSTALL)
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        return Item("SmolLM2", FAIL, f"its weights are here but {', '.join(missing)} is not",
                    SMOLLM2_INSTALL)
    return Item("SmolLM2", OK, "weights and loaders installed, works offline")


def check_device(model) -> Item:
    import torch

    from . import models
    device = models.pick_device()
    if device.type == "cpu":
        return Item("device", OK, f"cpu ({torch.get_num_threads()} threads; no GPU found)")
    if model is None:
        return Item("device", WARN, f"{device}, not checked (the course model did not load)")
    try:
        agrees = models.device_agrees_with_cpu(model, device)
    except Exception as e:  # noqa: BLE001
        return Item("device", FAIL, f"{device} fails: {type(e).__name__}: {e}",
                    "use device='cpu' in the setup cell")
    finally:
        model.to("cpu")
    if not agrees:
        return Item("device", FAIL, f"{device} gives other logits than the CPU",
                    "use device='cpu' in the setup cell, or update torch")
    return Item("device", OK, f"{device}, its logits agree with the CPU")


def check_visualisation() -> Item:
    import torch

    from . import viz
    try:
        html = viz.attention_heads(["a", "b"], torch.full((1, 2, 2), 0.5)).html
    except Exception as e:  # noqa: BLE001
        return Item("browser views", FAIL, f"circuitsvis fails: {type(e).__name__}: {e}",
                    "pip install 'circuitsvis>=1.43.3'")
    if viz.SOURCE == "inline" and len(html) < 100_000:
        return Item("browser views", FAIL, "circuitsvis's script is not bundled",
                    "pip install --force-reinstall 'circuitsvis>=1.43.3'")
    if viz.SOURCE != "inline":
        return Item("browser views", WARN, "circuitsvis loads its script from a CDN",
                    "needs internet; set viz.SOURCE = 'inline' to render offline")
    return Item("browser views", OK, f"circuitsvis's script is inlined ({len(html) // 1000} kB "
                "per view): renders offline")


def check_write_access(folder: Path) -> Item:
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as e:
        return Item("working folder", FAIL, f"cannot write in {folder}: {e.strerror}",
                    "run from a folder you own (chapters save activations and plots here)")
    return Item("working folder", OK, f"{folder} is writable")


def check_network() -> Item:
    from .models import is_online
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return Item("network", WARN, "HF_HUB_OFFLINE=1: offline by choice",
                    "the bundled model and SmolLM2 work; other Hugging Face models do not")
    if is_online():
        return Item("network", OK, "the Hugging Face hub answers")
    return Item("network", WARN, "the Hugging Face hub does not answer",
                "the bundled model and SmolLM2 work offline; other models need the internet")


def _available_memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(available: float | None = None) -> Item:
    available = _available_memory_gib() if available is None else available
    if available is None:
        return Item("memory", WARN, "could not read the free memory")
    if available < MIN_MEMORY_GIB:
        return Item("memory", FAIL, f"{available:.1f} GiB free", f"close other programs: the "
                    f"chapters need about {MIN_MEMORY_GIB:.0f} GiB")
    return Item("memory", OK, f"{available:.1f} GiB free")


def check_disk(folder: Path, free: float | None = None) -> Item:
    free = shutil.disk_usage(folder).free / 2**30 if free is None else free
    if free < MIN_DISK_GIB:
        return Item("disk", FAIL, f"{free:.1f} GiB free in {folder}",
                    f"free at least {MIN_DISK_GIB:.0f} GiB")
    return Item("disk", OK, f"{free:.1f} GiB free")


def run_checks(folder: Path | None = None) -> list[Item]:
    folder = Path.cwd() if folder is None else Path(folder)
    items = [check_python(), *check_versions()]
    model_item, model = check_course_model()
    items += [model_item, check_smollm2(), check_device(model), check_visualisation(),
              check_write_access(folder), check_network(), check_memory(), check_disk(folder)]
    return items


def main(argv: list[str] | None = None) -> int:
    start = time.time()
    print("mechinterp-course doctor: is this machine ready for the course?")
    items = []
    for item in run_checks():
        print(item.line(), flush=True)
        items.append(item)
    failed = [i for i in items if i.status == FAIL]
    print(f"{len(items) - len(failed)} of {len(items)} items ready "
          f"({time.time() - start:.0f} s)" + ("" if not failed else
                                              f"; fix the {len(failed)} marked \N{BALLOT X}"))
    return 1 if failed else 0
