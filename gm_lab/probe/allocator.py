"""Keep freed memory in the process: refaulting freed pages costs a probe 10-20% otherwise.

A probe allocates and frees thousands of activation-sized tensors (0.1-8 MB). glibc serves
blocks above its mmap threshold (128 KB, adapting up to the largest block freed so far) with
fresh pages and trims the heap top when it is freed, so the next allocation faults every page in
again; on virtual machines that hand freed pages back to the host each fault is dear. Raising
the mmap threshold to its maximum (32 MB, above any TSS activation at batch 64) and never
trimming makes later probes reuse resident memory. Peak RSS barely changes (the peak is the live
set either way), but freed memory is not returned to the OS until the process ends, so this is
for probe worker processes and benchmarks, not for a long-lived notebook kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems
_NEVER_TRIM = 2**31 - 1


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc as the module docstring says; True if it applied (False on other C
    libraries, where nothing changes). Idempotent."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
    )
