"""Operators on Dask arrays chunked along their batch axes: every chunk through the operator."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np

__all__ = ["batch", "flat_batch", "ship"]


def ship(obj):
    """``obj`` as a single graph key, so that it is shipped once per worker, not per task.

    The operator travels by pickling, which carries its definition and none of
    its caches.
    """
    return dask.delayed(obj, pure=False, traverse=False)


def _batch_block(block, op, shape_in, shape_out, adjoint, dtype):
    lead = block.shape[: block.ndim - 1]
    x = block.reshape(lead + tuple(shape_in))
    y = op.apply_adjoint(x) if adjoint else op.apply(x)
    return np.asarray(y, dtype=dtype).reshape(lead + (math.prod(shape_out),))


def batch(op, a, nb, shape_in, shape_out, adjoint, dtype):
    """Every chunk of the batch axes through the operator; its own axes in one chunk."""
    a = a.rechunk(dict.fromkeys(range(nb, a.ndim), -1))
    lead = a.shape[:nb]
    flat = a.reshape(lead + (math.prod(shape_in),))
    out = da.map_blocks(
        _batch_block, flat, ship(op), tuple(shape_in), tuple(shape_out), adjoint, dtype,
        chunks=flat.chunks[:nb] + ((math.prod(shape_out),),), dtype=dtype,
    )
    return out.reshape(lead + tuple(shape_out))


def flat_batch(op, a, adjoint, name):
    """A plain SciPy operator on ``(*batch, n)`` arrays, through its ``matmat``."""
    n_in = op.shape[0] if adjoint else op.shape[1]
    n_out = op.shape[1] if adjoint else op.shape[0]
    if a.ndim < 1 or a.shape[-1] != n_in:
        raise ValueError(f"{name} must have shape (*batch, {n_in}), got {a.shape}")
    dtype = np.result_type(op.dtype, a.dtype)
    a = a.rechunk({a.ndim - 1: -1})
    return da.map_blocks(
        _flat_block, a, ship(op), adjoint, dtype,
        chunks=a.chunks[:-1] + ((n_out,),), dtype=dtype,
    )


def _flat_block(block, op, adjoint, dtype):
    cols = block.reshape(-1, block.shape[-1]).T
    out = op.rmatmat(cols) if adjoint else op.matmat(cols)
    return np.asarray(out.T, dtype=dtype).reshape(block.shape[:-1] + (out.shape[0],))
