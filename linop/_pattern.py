"""Geometry -> sparse patterns: the patch (im2col) matrix and the Toeplitz matrix.

All construction is vectorised index arithmetic on per-axis tap tables;
time and memory are O(nnz).

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
import scipy.sparse as sp

from linop._geometry import ConvGeometry

__all__ = [
    "TapTable",
    "index_dtype",
    "tap_table",
    "patch_matrix",
    "toeplitz_matrix",
    "toeplitz_nnz",
]

_INT32_MAX = np.iinfo(np.int32).max


def index_dtype(*extents: int) -> np.dtype:
    """int32 when every extent (sizes, nnz) fits in it, else int64."""
    return np.dtype(np.int32 if max(extents, default=0) <= _INT32_MAX else np.int64)


def _axis_geometry(geometry: ConvGeometry):
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
    i = (o * s)[:, None] + (np.arange(k) * d - lo)[None, :]
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
    return math.prod(_axis_valid_count(*axis) for axis in _axis_geometry(geometry))


def tap_table(geometry: ConvGeometry) -> TapTable:
    """Build the N-D tap table of a geometry in O(n_out * K).

    Away from the borders the flat index is affine in every output
    coordinate, ``sum_a (o_a*s_a + k_a*d_a - lo_a) * S_a`` for input strides
    ``S_a``, and is written with long vectorised loops (`_affine_rows`).
    Only the slabs of border rows are then corrected: marked invalid for
    zero padding, or pointed at the reflected, clamped or wrapped pixel.
    """
    nd = geometry.ndim
    axes = _axis_geometry(geometry)
    sizes, kernel = geometry.output_size, geometry.kernel_size
    n_in, n_out, n_taps = math.prod(geometry.input_size), math.prod(sizes), math.prod(kernel)
    in_strides = [math.prod(geometry.input_size[a + 1 :]) for a in range(nd)]
    # Taps on zero padding hold out-of-range indices (masked): bound them too.
    reach = sum(
        (n + lo + hi) * st for n, (lo, hi), st in zip(geometry.input_size, geometry.padding, in_strides)
    )
    dtype = index_dtype(reach)

    # The tap part, sum_a (k_a*d_a - lo_a)*S_a, shape (K,), then the output
    # axes from the last to the first.
    taps = np.zeros((1,) * nd, dtype=dtype)
    for a, (n, m, k, s, d, lo) in enumerate(axes):
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


def patch_matrix(table: TapTable, dtype) -> sp.csr_array:
    """The 0/1 patch (im2col) matrix ``P`` of shape ``(n_out*K, n_in)``.

    Row ``o*K + k`` selects the input pixel read by tap ``k`` of output
    pixel ``o``; a tap on zero padding is an empty row.
    """
    rows = table.n_out * table.n_taps
    idx_dtype = index_dtype(rows, table.n_in)
    if table.valid is None:
        indices = table.index.ravel().astype(idx_dtype, copy=False)
        indptr = np.arange(rows + 1, dtype=idx_dtype)
    else:
        mask = table.valid.ravel()
        indices = table.index.ravel()[mask].astype(idx_dtype, copy=False)
        indptr = np.zeros(rows + 1, dtype=idx_dtype)
        np.cumsum(mask, out=indptr[1:])
    data = np.ones(indices.size, dtype=dtype)
    matrix = sp.csr_array((data, indices, indptr), shape=(rows, table.n_in))
    # Several taps of a reflected/replicated/circular row may read one pixel:
    # each row still holds one entry, so the rows are trivially sorted.
    matrix.has_sorted_indices = True
    return matrix


def _one_channel_entries(table: TapTable):
    """The one-channel Toeplitz pattern: row pointer, columns, and the entry mask.

    Columns are a fresh array (never a view of the table), in row order.
    """
    n_out, n_taps = table.index.shape
    if table.valid is None:
        indptr = np.arange(0, n_out * n_taps + 1, n_taps, dtype=np.int64)
        return indptr, table.index.reshape(-1).copy(), None
    mask = table.valid.reshape(-1)
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(table.row_counts, out=indptr[1:])
    return indptr, table.index.reshape(-1)[mask], mask


def _tap_of_entries(n_out: int, n_taps: int, mask) -> np.ndarray:
    taps = np.tile(np.arange(n_taps, dtype=np.intp), n_out)
    return taps if mask is None else taps[mask]


def toeplitz_matrix(table: TapTable, weight: np.ndarray, groups: int, padding_mode: str):
    """The explicit convolution matrix, ``C_out*n_out`` by ``C_in*n_in``.

    Block ``(co, ci)`` is ``sum_k weight[co, ci - g0, k] * P_k`` for the
    input channels ``ci`` of the group of ``co``. Row ``(co, o)`` holds its
    entries in ``(input channel, tap)`` order, which is column order for zero
    padding: the indices come out sorted without a sort.

    Parameters
    ----------
    table : TapTable
    weight : ndarray, shape (C_out, C_in // groups, K)
    groups : int
    padding_mode : str
        For modes other than ``"zeros"`` several taps of a row can read the
        same pixel; their entries are summed.
    """
    c_out, cin_g, n_taps = weight.shape
    n_in, n_out = table.n_in, table.n_out
    ptr1, cols1, mask = _one_channel_entries(table)
    nnz1 = cols1.size
    per_channel = cin_g * nnz1  # entries of one output channel
    nnz = c_out * per_channel
    idx_dtype = index_dtype(nnz, groups * cin_g * n_in, c_out * n_out)
    group_base = (np.arange(c_out) // (c_out // groups) * (cin_g * n_in)).astype(idx_dtype)

    if c_out == 1 and cin_g == 1:
        w = weight.reshape(-1)
        if mask is None:
            data = np.tile(w, n_out)
        else:  # select from the broadcast weight: no temporary of nnz values
            data = np.broadcast_to(w, (n_out, n_taps))[mask.reshape(n_out, n_taps)]
        local_cols, channel_weights = cols1, None
    elif cin_g == 1:
        local_cols = cols1
        channel_weights = weight[:, 0, :], _tap_of_entries(n_out, n_taps, mask)
    else:
        # Entry e of row o, input channel c, goes to position
        # cin_g*ptr1[o] + c*len(o) + (e - ptr1[o]) of its output channel.
        lengths = np.diff(ptr1)
        row_of = np.repeat(np.arange(n_out), lengths)
        dest = ((cin_g - 1) * ptr1[row_of] + np.arange(nnz1))[None, :] + (
            np.arange(cin_g)[:, None] * lengths[row_of][None, :]
        )
        source = np.empty(per_channel, dtype=np.int64)
        source[dest.reshape(-1)] = np.arange(per_channel)
        channel_of, entry_of = np.divmod(source, nnz1)
        local_cols = channel_of * n_in + cols1[entry_of]
        taps = _tap_of_entries(n_out, n_taps, mask)[entry_of]
        channel_weights = weight.reshape(c_out, -1), channel_of * n_taps + taps

    local_cols = local_cols.astype(idx_dtype, copy=False)
    if c_out == 1:
        indices = local_cols if group_base[0] == 0 else local_cols + group_base[0]
    else:
        indices = (group_base[:, None] + local_cols[None, :]).reshape(-1)
    if channel_weights is not None:
        rows, which = channel_weights
        data = rows[:, which].reshape(-1)
    indptr = np.empty(c_out * n_out + 1, dtype=idx_dtype)
    starts = (np.arange(c_out, dtype=np.int64) * per_channel)[:, None] + cin_g * ptr1[None, :-1]
    indptr[:-1] = starts.reshape(-1)
    indptr[-1] = nnz
    matrix = sp.csr_array(
        (data, indices, indptr), shape=(c_out * n_out, groups * cin_g * n_in), copy=False
    )
    if padding_mode == "zeros":
        matrix.has_sorted_indices = True
    else:
        matrix.sum_duplicates()
    return matrix
