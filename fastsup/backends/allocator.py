"""glibc's allocator while the CPU trains: freed step buffers are kept for the next step, not handed back.

A step allocates and frees the same buffers every time.  By default glibc
returns freed memory at the top of its heap to the kernel (and serves large
blocks with mmap), so the next step faults the pages in again.  On the 2-core
AMD EPYC VM (2026-12-01) a 2→1 chunk of 2 048 instances ran at 25-27 ms per
compiled step for its first ~1 200 steps, then at 60-80 ms: from there on it
took ~15 000 minor page faults per step (60 MB).  With freed memory kept, the
same 4 000 steps stayed at 24-28 ms with no new faults.

While a run trains, ``keep_freed_memory`` serves blocks of up to 32 MiB (glibc's
largest mmap threshold) from the heap and never trims it; on exit it hands the
free memory back once (``malloc_trim``) and leaves glibc as its dynamic
thresholds end up after large blocks: mmap above 32 MiB, trim above 64 MiB.  On
other C libraries (musl, macOS) it does nothing.  The setting is the
process's: of two runs training at once in threads of one process, the first
to finish restores it, which costs the other speed, never results.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
NEVER = 2**31 - 1  # mallopt takes an int


@functools.cache
def _glibc():
    """The process's glibc, or None (another C library, or no Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None
    return libc


@contextlib.contextmanager
def keep_freed_memory():
    """Inside: freed memory stays with the process, so repeated steps reuse their pages."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
    libc.mallopt(M_TRIM_THRESHOLD, NEVER)
    try:
        yield
    finally:
        libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_MAX)
        libc.malloc_trim(0)
