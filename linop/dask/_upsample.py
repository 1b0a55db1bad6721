"""`~linop.Upsample` on spatially chunked Dask arrays, one axis after the other."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np

import linop
from linop.dask._chunks import bounds, index

__all__ = ["upsample_spatial"]


def upsample_spatial(op: linop.Upsample, a, nb, adjoint, dtype):
    """Interpolation as one sparse 1-D matrix per spatial axis, axis after axis.

    Channels do not mix, so the channel and batch axes keep their chunks (a
    bare operator, ``op.bare``, has no channel axis).
    Along each spatial axis every output chunk reads a contiguous input
    range (the rows' columns), sliced from the Dask array: that slice is
    the chunk's halo. The matrices are PyTorch's taps (``op.axes[k].taps``),
    so non-finite values propagate as in memory.
    """
    mats = [axis.taps.T.tocsr() if adjoint else axis.taps for axis in op.axes]
    order = list(op.axis_order)
    if adjoint:
        order = order[::-1]
    first = nb + (0 if op.bare else 1)  # the first spatial axis of ``a``
    for k in order:
        a = _along_axis(a, first + k, mats[k], dtype)
    return a


def _along_axis(a, ax, m, dtype):
    """``m`` (``(n_out, n_in)``, CSR) applied along axis ``ax`` of ``a``, chunk by chunk."""
    n_out, n_in = m.shape
    scale = n_out / n_in
    edges = sorted({0, n_out} | {round(b * scale) for b in bounds(a.chunks[ax])})
    parts = []
    for r0, r1 in itertools.pairwise(edges):
        rows = m[r0:r1]
        if rows.nnz == 0:
            shape = a.shape[:ax] + (r1 - r0,) + a.shape[ax + 1:]
            chunks = a.chunks[:ax] + ((r1 - r0,),) + a.chunks[ax + 1:]
            parts.append(da.zeros(shape, chunks=chunks, dtype=dtype))
            continue
        c0, c1 = int(rows.indices.min()), int(rows.indices.max()) + 1
        piece = a[index(a.ndim, ax, slice(c0, c1))].rechunk({ax: -1})
        sub = rows[:, c0:c1].tocsr()
        parts.append(da.map_blocks(
            _along_block, piece, sub, ax, dtype,
            chunks=piece.chunks[:ax] + ((r1 - r0,),) + piece.chunks[ax + 1:], dtype=dtype,
        ))
    return da.concatenate(parts, axis=ax) if len(parts) > 1 else parts[0]


def _along_block(block, m, ax, dtype):
    x = np.moveaxis(np.asarray(block, dtype=dtype), ax, 0)
    rest = x.shape[1:]
    y = np.asarray(m @ x.reshape(x.shape[0], -1), dtype=dtype)
    return np.ascontiguousarray(np.moveaxis(y.reshape((m.shape[0],) + rest), 0, ax))
