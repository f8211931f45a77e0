"""Side-by-side timing: every contender runs in the same process, alternating, after a warm-up,
and is reported as the median of its repetitions and its ratio to a baseline."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def synchronizer(device) -> Callable[[], None]:
    """What to call before reading the clock: a GPU runs asynchronously, so wait for it."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def device_label(device) -> str:
    """'CPU' or the GPU's name, for table titles."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type.upper()


def check_device(device: str) -> str:
    """The device, or a clear error when it is not there (the package's own `pick_device`)."""
    from mechinterp_course import pick_device

    try:
        return str(pick_device(device))
    except ValueError as e:
        raise SystemExit(f"--device {device}: {e}") from e


def compare(contenders: dict[str, Callable[[], object]], reps: int = 10, warmup: int = 2,
            baseline: str | None = None, sync: Callable[[], None] = lambda: None) -> list[dict]:
    """Run each contender `warmup` times, then `reps` rounds in which each runs once (in turn, so
    drift in machine load hits all alike). Returns rows with median seconds and ratio. sync: called
    before each clock reading (see `synchronizer`)."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[baseline or next(iter(contenders))])
    return [{"name": name, "median_s": statistics.median(t), "ratio": statistics.median(t) / base,
             "reps": len(t)} for name, t in times.items()]


def table(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "", "| contender | median (ms) | ratio to baseline |",
             "| --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['median_s'] * 1e3:.1f} | {r['ratio']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"
