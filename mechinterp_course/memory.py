"""Why caching every activation can cost more than the arithmetic, and the setting that fixes it.

A full cache keeps every activation of a forward pass alive (834 MiB for GPT-2 small on 8 x 128
tokens), so each run needs that much fresh memory. On Linux, glibc's malloc gives large freed
blocks back to the kernel (anything over its mmap threshold, and the top of the heap beyond its
trim threshold), and the next run faults the same pages in again, zero-filled. Measured on 2 CPU
cores, GPT-2-small shape: caching every name cost 1.4-1.9x a plain forward with glibc's defaults,
1.01-1.08x with malloc told to keep freed memory (benchmarks/RESULTS.md).

`keep_freed_memory` makes that change once per process, through ``mallopt``: the same knobs as the
``MALLOC_*_`` environment variables, which only take effect before the process starts. The cost:
memory a process has freed is kept for reuse (up to 1 GiB) rather than returned to the system.
``run_with_cache`` calls it; set ``MECHINTERP_COURSE_KEEP_MEMORY=0`` to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_TRIM_THRESHOLD: 1 << 30,   # keep up to 1 GiB of free memory at the top of the heap
            M_MMAP_THRESHOLD: 32 << 20,  # blocks up to 32 MiB (glibc's maximum) come from the heap
            M_TOP_PAD: 64 << 20}         # grow the heap 64 MiB at a time
OPT_OUT = "MECHINTERP_COURSE_KEEP_MEMORY"

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; True if the settings are in effect.

    Does nothing (False) off glibc (macOS, Windows, musl), when ``MECHINTERP_COURSE_KEEP_MEMORY=0``,
    or when the user already chose malloc settings (``MALLOC_*_`` or ``GLIBC_TUNABLES``).
    Applied at most once per process."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(OPT_OUT, "1") == "0":
        return False
    if (any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")):
        return False  # the user's own allocator settings win
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
