"""Chunk planning: boundaries aligned to the stride, chunks no smaller than the halo."""

from __future__ import annotations

import numpy as np

__all__ = ["bounds", "common_window", "index", "plan_axis"]


def bounds(chunks) -> list[int]:
    return [int(b) for b in np.cumsum((0,) + tuple(chunks))]


def plan_axis(n, wanted, step, min_size, last_min):
    """Chunk sizes of an axis of length ``n`` close to the boundaries ``wanted``.

    Interior boundaries are multiples of ``step``; every chunk is at least
    ``min_size`` long and the last at least ``last_min``: chunks that would
    be smaller are merged with their neighbours.
    """
    min_size, last_min = max(min_size, 1), max(last_min, min_size, 1)
    candidates = sorted({round(b / step) * step for b in wanted if 0 < b < n})
    kept = [0]
    for b in candidates:
        if b - kept[-1] >= min_size and n - b >= last_min:
            kept.append(b)
    kept.append(n)
    return tuple(int(c) for c in np.diff(kept))


def index(ndim, axis, sl):
    idx = [slice(None)] * ndim
    idx[axis] = sl
    return tuple(idx)


def common_window(block, windows):
    """Zero-pad a chunk at its high end to the common window, when that is not wasteful.

    Chunks of one array then share one per-chunk operator (one cache entry)
    instead of one per distinct edge-chunk shape.
    """
    nd = len(windows)
    shape = block.shape[block.ndim - nd:]
    extra = [w - n if n < w <= 2 * n else 0 for n, w in zip(shape, windows)]
    if not any(extra):
        return block
    return np.pad(block, [(0, 0)] * (block.ndim - nd) + [(0, e) for e in extra])
