"""mechinterp_course.memory: run_with_cache's malloc setting takes effect, and can be refused."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")

# Allocates 8 MiB (over glibc's default mmap threshold) and reports whether malloc served it with
# mmap, from mallinfo2's count of mmapped bytes.
PROBE = r"""
import ctypes, sys
from mechinterp_course.memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "call" else False
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks "
                                               "fsmblks uordblks fordblks keepcost").split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblkhd
block = libc.malloc(8 << 20)
print(applied, libc.mallinfo2().hblkhd - before >= 8 << 20)
libc.free(ctypes.c_void_p(block))
"""


def probe(mode: str, **env) -> tuple[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**environ, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


def test_without_the_setting_large_blocks_are_mmapped():
    assert probe("skip") == ("False", "True")


def test_the_setting_keeps_large_blocks_on_the_heap():
    assert probe("call") == ("True", "False")


def test_opt_out_and_users_own_malloc_settings_are_respected():
    assert probe("call", MECHINTERP_COURSE_KEEP_MEMORY="0") == ("False", "True")
    assert probe("call", MALLOC_TRIM_THRESHOLD_="0")[0] == "False"
    assert probe("call", GLIBC_TUNABLES="glibc.malloc.trim_threshold=0")[0] == "False"


def test_run_with_cache_applies_it_once(course_model, monkeypatch):
    from mechinterp_course import memory

    calls = []
    monkeypatch.setattr(memory, "_applied", None)
    monkeypatch.setattr(memory, "_apply", lambda: calls.append(1) or True)
    for _ in range(2):
        course_model.run_with_cache("The capital of Texas is", names=["resid_post"])
    assert calls == [1]
