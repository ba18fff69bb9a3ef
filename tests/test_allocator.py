"""``keep_freed_memory``: a step's freed buffers are reused without new page faults, and handed back
when training ends (glibc only)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fastsup.backends.allocator import _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc's allocator only")

BLOCK = 24 << 20
PAGES = BLOCK // 4096

# Run in a fresh process, so that glibc starts from its own defaults: a 24 MiB block is allocated,
# written and freed twice; printed: the minor page faults of the second time, the resident memory
# (bytes) after it, and the resident memory after leaving the context.
_SCRIPT = textwrap.dedent(f"""
    import contextlib, ctypes, os, resource, sys
    from fastsup.backends.allocator import keep_freed_memory
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    def faults_of_one_block():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc({BLOCK})
        ctypes.memset(block, 1, {BLOCK})
        libc.free(block)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    with keep_freed_memory() if sys.argv[1] == "keep" else contextlib.nullcontext():
        faults_of_one_block()
        faults = faults_of_one_block()
        inside = resident()
    print(faults, inside, resident())
""")


def run(mode: str) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True)
    return tuple(map(int, out.stdout.split()))


def test_freed_memory_is_reused_without_page_faults():
    default_faults, _, _ = run("default")
    kept_faults, _, _ = run("keep")
    assert default_faults > PAGES // 2  # glibc's default: unmapped, then faulted in again
    assert kept_faults < PAGES // 20


def test_leaving_the_context_hands_the_free_memory_back():
    _, inside, after = run("keep")
    assert inside - after > BLOCK * 3 // 4
