"""The control-plane process's allocator policy: the one place that tunes glibc's malloc (it is
process-wide), installed by `mizzen control` at start-up beside the garbage-collection policy
(`ControlSettings.manage_memory`).

Why: a push without Sidecars writes a ~700 KB response to each of thousands of proxies, and
their requests are ~100 KB each; the buffers live for one write or one request. glibc serves an
allocation over its mmap threshold (128 KiB at first, raised on the fly as such blocks are
freed) with a fresh mapping, and gives the top of its heap back to the system once more than
the trim threshold is free there: either way every new buffer is memory the kernel maps and
zeroes again, a page fault per 4 KiB. The scale benchmark's no-Sidecar scenario took 2.7
million page faults per control-plane process with glibc's defaults against 0.3-0.6 million with
this policy, and 22-26 s of CPU for the full push after a restart against 16 s, with the same
peak RSS (0.9 GB). So:

- `MMAP_THRESHOLD`: 32 MiB (the most glibc's own dynamic threshold reaches on 64-bit): the
  buffers come from the heap and are reused there.
- `TRIM_THRESHOLD`: 128 MiB: up to that much free memory at the top of the heap stays with the
  process instead of being given back and faulted in again by the next push. The cost: a process
  whose load falls keeps up to that much more resident.

Setting either turns glibc's dynamic adjustment off for good, so there is no uninstall; tests
check it in a process of their own. Where the C library has no `mallopt` (not glibc) nothing
happens.
"""

from __future__ import annotations

import ctypes
from typing import Final

MiB: Final = 1024 * 1024
MMAP_THRESHOLD: Final = 32 * MiB
TRIM_THRESHOLD: Final = 128 * MiB
# glibc's <malloc.h> parameter numbers.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def install() -> bool:
    """Apply the policy to this process; whether the C library took both settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    took_mmap: int = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    took_trim: int = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return took_mmap == 1 and took_trim == 1
