"""Tap tables: for every output pixel and kernel tap, the input pixel it reads.

The table is the channel-free pattern of a convolution (its "patch
matrix"): everything about *where* an output reads, independent of the
weights. The explicit matrix (`linop._conv.toeplitz`) is built from it. All
construction is vectorised index arithmetic on per-axis tables; time and
memory are O(n_out * K).

For one spatial axis, output pixel ``o`` reads with tap ``j`` the padded
input position ``i = o*stride + j*dilation - lo``. The padding mode maps
``i`` back into ``[0, n)``: ``zeros`` drops it, ``reflect`` mirrors it
without repeating the edge, ``replicate`` clamps it, ``circular`` wraps it.
The N-D tables are outer combinations of the per-axis ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linop._conv.geometry import ConvGeometry
from linop._validation import index_dtype

__all__ = ["TapTable", "axis_geometry", "dead_outputs", "tap_table", "tap_table_nbytes",
           "toeplitz_nnz", "unread_inputs", "valid_outputs"]


def axis_geometry(geometry: ConvGeometry):
    """Per axis: (n, m, k, stride, dilation, lo)."""
    return [
        (n, m, k, s, d, lo)
        for n, m, k, s, (lo, _), d in zip(
            geometry.input_size,
            geometry.output_size,
            geometry.kernel_size,
            geometry.stride,
            geometry.padding,
            geometry.dilation,
        )
    ]


def _border_rows(n, m, k, s, d, lo) -> np.ndarray:
    """Outputs on one axis with a tap outside ``[0, n)``: a few at each end."""
    a = min(m, -(-lo // s))  # first o with o*s - lo >= 0
    b = max(a, min(m, (n - 1 + lo - (k - 1) * d) // s + 1))  # past the last fitting o
    return np.r_[0:a, b:m]


def _axis_read(o, n, k, s, d, lo, mode):
    """Input index read by outputs ``o`` (1-D) with each tap on one axis, mode applied.

    Returns ``(index, valid)``, both ``(len(o), k)``; ``valid`` is None
    except for zero padding, where taps outside ``[0, n)`` are invalid.
    """
    padded = (o * s)[:, None] + (np.arange(k) * d)[None, :]
    return _map_padded(padded, n, lo, mode)


def _affine_rows(m: int, step: int, inner: np.ndarray) -> np.ndarray:
    """``out[o, t] = o*step + inner[t]``, shape ``(m, len(inner))``.

    A plain broadcast would run NumPy's inner loop over ``len(inner)``
    elements only (the taps: 3 or 9); blocks of ``B`` rows are affine too,
    so the inner loop runs over ``B*len(inner)`` elements instead.
    """
    width = inner.size
    out = np.empty((m, width), dtype=inner.dtype)
    block = max(1, -(-2048 // width))
    n_blocks = m // block
    if n_blocks:
        step_t = inner.dtype.type(step)
        first = (np.arange(block, dtype=inner.dtype) * step_t)[:, None] + inner[None, :]
        starts = np.arange(n_blocks, dtype=inner.dtype) * inner.dtype.type(block * step)
        np.add(
            starts[:, None], first.reshape(1, -1), out=out[: n_blocks * block].reshape(n_blocks, -1)
        )
    rest = np.arange(n_blocks * block, m, dtype=inner.dtype) * inner.dtype.type(step)
    np.add(rest[:, None], inner[None, :], out=out[n_blocks * block :])
    return out


@dataclass(frozen=True)
class TapTable:
    """For each output pixel and kernel tap, the flat input index it reads.

    Attributes
    ----------
    index : ndarray, shape (n_out, K)
        Flat (C-order) input index of tap ``k`` of output pixel ``o``;
        meaningless where ``valid`` is False.
    valid : ndarray of bool, shape (n_out, K), or None
        False where the tap falls on zero padding; None when all are valid.
    n_in : int
        Number of input pixels.
    row_counts : ndarray, shape (n_out,), or None
        Valid taps per output pixel; None when all are valid.
    """

    index: np.ndarray
    valid: np.ndarray | None
    n_in: int
    row_counts: np.ndarray | None = None

    @property
    def n_out(self) -> int:
        return self.index.shape[0]

    @property
    def n_taps(self) -> int:
        return self.index.shape[1]


def _axis_valid_count(n, m, k, s, d, lo) -> int:
    """Number of (output, tap) pairs reading a real pixel on one zero-padded axis."""
    j = np.arange(k) * d - lo
    first = np.maximum(0, -(j // s))  # smallest o with o*s + j >= 0
    last = np.minimum(m - 1, (n - 1 - j) // s)  # largest o with o*s + j <= n - 1
    return int(np.maximum(last - first + 1, 0).sum())


def toeplitz_nnz(geometry: ConvGeometry) -> int:
    """Stored entries of the one-channel Toeplitz matrix, counted in O(K) per axis.

    Exact for zero padding; for the other modes it counts the taps before
    duplicates are summed, an upper bound.
    """
    if geometry.padding_mode != "zeros":
        return math.prod(geometry.output_size) * math.prod(geometry.kernel_size)
    return math.prod(_axis_valid_count(*axis) for axis in axis_geometry(geometry))


def tap_table(geometry: ConvGeometry) -> TapTable:
    """Build the N-D tap table of a geometry in O(n_out * K).

    Away from the borders the flat index is affine in every output
    coordinate, ``sum_a (o_a*s_a + k_a*d_a - lo_a) * S_a`` for input strides
    ``S_a``, and is written with long vectorised loops (`_affine_rows`).
    Only the slabs of border rows are then corrected: marked invalid for
    zero padding, or pointed at the reflected, clamped or wrapped pixel.
    """
    nd = geometry.ndim
    axes = axis_geometry(geometry)
    sizes, kernel = geometry.output_size, geometry.kernel_size
    n_in, n_out, n_taps = math.prod(geometry.input_size), math.prod(sizes), math.prod(kernel)
    in_strides = [math.prod(geometry.input_size[a + 1 :]) for a in range(nd)]
    # Taps on zero padding hold out-of-range indices (masked): bound them too.
    reach = sum(
        (n + lo + hi) * st
        for n, (lo, hi), st in zip(geometry.input_size, geometry.padding, in_strides)
    )
    dtype = index_dtype(reach)

    # The tap part, sum_a (k_a*d_a - lo_a)*S_a, shape (K,), then the output
    # axes from the last to the first.
    taps = np.zeros((1,) * nd, dtype=dtype)
    for a, (_, _, k, _, d, lo) in enumerate(axes):
        shape = [1] * nd
        shape[a] = k
        taps = taps + ((np.arange(k) * d - lo) * in_strides[a]).astype(dtype).reshape(shape)
    index = taps.reshape(-1)
    for a in reversed(range(nd)):
        n, m, k, s, d, lo = axes[a]
        index = _affine_rows(m, s * in_strides[a], index.reshape(-1))
    full = tuple(sizes) + tuple(kernel)
    index = index.reshape(full)

    valid = None
    counts = []
    for a, (n, m, k, s, d, lo) in enumerate(axes):
        rows = _border_rows(n, m, k, s, d, lo)
        counts.append(np.full(m, k, dtype=np.int32))
        if rows.size == 0:
            continue
        read, ok = _axis_read(rows, n, k, s, d, lo, geometry.padding_mode)
        # Advanced indexing with (row, tap) pairs on axes a and nd + a
        # addresses the whole slab of those pairs across the other axes.
        o_idx, k_idx = np.broadcast_arrays(rows[:, None], np.arange(k)[None, :])
        where = [slice(None)] * (2 * nd)
        if ok is None:
            linear = (rows * s)[:, None] + (np.arange(k) * d - lo)[None, :]
            where[a], where[nd + a] = o_idx, k_idx
            # The paired index arrays are not adjacent: their axes come first.
            delta = ((read - linear) * in_strides[a]).astype(dtype)
            index[tuple(where)] += delta.reshape(delta.shape + (1,) * (2 * nd - 2))
        elif not ok.all():
            if valid is None:
                valid = np.ones(full, dtype=bool)
            where[a], where[nd + a] = o_idx[~ok], k_idx[~ok]
            valid[tuple(where)] = False
            counts[a][rows] = ok.sum(axis=1)
    index = index.reshape(n_out, n_taps)
    if valid is None:
        return TapTable(index, None, n_in)
    row_counts = counts[0]
    for c in counts[1:]:
        row_counts = np.multiply.outer(row_counts, c)
    return TapTable(index, valid.reshape(n_out, n_taps), n_in, row_counts.reshape(-1))


def tap_table_nbytes(geometry: ConvGeometry) -> int:
    """Bytes `tap_table` allocates at its peak: the index table and the validity mask."""
    n_out, n_taps = math.prod(geometry.output_size), geometry.n_taps
    reach = math.prod(geometry.padded_size)
    return n_out * n_taps * (2 * index_dtype(reach).itemsize + 1)


# -- per-axis reach, in O(outputs + taps) ---------------------------------------------------
def valid_outputs(n, m, k, s, d, lo) -> tuple[np.ndarray, np.ndarray]:
    """For each tap of one axis, the outputs ``[first, last]`` it reads a real pixel for.

    Zero padding: tap ``j`` of output ``o`` reads ``o*s + j*d - lo``, inside
    the input for ``first[j] <= o <= last[j]`` (an empty range when
    ``first > last``).
    """
    offset = np.arange(k, dtype=np.int64) * d - lo
    first = np.maximum(0, -(offset // s))  # smallest o with o*s + offset >= 0
    last = np.minimum(m - 1, (n - 1 - offset) // s)  # largest o with o*s + offset <= n - 1
    return first, last


def dead_outputs(n, m, k, s, d, lo) -> np.ndarray:
    """Outputs of one zero-padded axis whose every tap reads padding (sorted indices)."""
    first, last = valid_outputs(n, m, k, s, d, lo)
    keep = first <= last
    coverage = np.zeros(m + 1, dtype=np.int64)
    np.add.at(coverage, first[keep], 1)
    np.add.at(coverage, last[keep] + 1, -1)
    return np.flatnonzero(np.cumsum(coverage[:-1]) == 0)


def unread_inputs(n, m, k, s, d, lo, hi, mode) -> np.ndarray:
    """Inputs of one axis that no output reads through any tap (sorted indices).

    The taps read padded positions ``o*s + j*d``; grouped by their residue
    modulo the stride, each tap covers a contiguous range of the lattice, so
    the union is a difference array per residue: O(padded size + taps) time
    and memory, whatever the number of outputs times taps.
    """
    padded = n + lo + hi
    start = np.arange(k, dtype=np.int64) * d
    read = np.zeros(padded, dtype=bool)
    for residue in np.unique(start % s):
        first_q = start[start % s == residue] // s
        lattice = (padded - residue + s - 1) // s  # positions residue + s*q < padded
        coverage = np.zeros(lattice + 1, dtype=np.int64)
        np.add.at(coverage, np.minimum(first_q, lattice), 1)
        np.add.at(coverage, np.minimum(first_q + m, lattice), -1)
        read[residue::s] = np.cumsum(coverage[:-1]) > 0
    positions = np.flatnonzero(read)
    index, valid = _map_padded(positions, n, lo, mode)
    used = np.zeros(n, dtype=bool)
    used[index[valid] if valid is not None else index] = True
    return np.flatnonzero(~used)


def _map_padded(positions, n, lo, mode):
    """Input pixels of padded positions, by the padding mode; for zero padding also
    which of them are real (the others read the padding's zeros), else None."""
    i = positions - lo
    if mode == "zeros":
        return i, (i >= 0) & (i < n)
    if mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= n, 2 * (n - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, n - 1)
    else:  # circular
        i = np.mod(i, n)
    return i, None
