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


def _axis_taps(n, m, k, s, d, lo, mode):
    """Input index read by each (output, tap) pair on one axis, and its validity.

    Returns ``idx`` of shape ``(m, k)`` and ``valid`` (same shape) or None
    when every tap reads a real pixel.
    """
    i = (np.arange(m) * s)[:, None] + (np.arange(k) * d - lo)[None, :]
    if mode == "zeros":
        valid = (i >= 0) & (i < n)
        if valid.all():
            return i, None
        return np.where(valid, i, 0), valid
    if mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= n, 2 * (n - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, n - 1)
    else:  # circular
        i = np.mod(i, n)
    return i, None


@dataclass(frozen=True)
class TapTable:
    """For each output pixel and kernel tap, the flat input index it reads.

    Attributes
    ----------
    index : ndarray, shape (n_out, K)
        Flat (C-order) input index of tap ``k`` of output pixel ``o``.
    valid : ndarray of bool, shape (n_out, K), or None
        False where the tap falls on zero padding; None when all are valid.
    n_in : int
        Number of input pixels.
    """

    index: np.ndarray
    valid: np.ndarray | None
    n_in: int

    @property
    def n_out(self) -> int:
        return self.index.shape[0]

    @property
    def n_taps(self) -> int:
        return self.index.shape[1]


def _axis_valid_counts(geometry: ConvGeometry) -> list[int]:
    counts = []
    for n, m, k, s, (lo, _), d in zip(
        geometry.input_size,
        geometry.output_size,
        geometry.kernel_size,
        geometry.stride,
        geometry.padding,
        geometry.dilation,
    ):
        if geometry.padding_mode != "zeros":
            counts.append(m * k)
        else:
            i = (np.arange(m) * s)[:, None] + (np.arange(k) * d - lo)[None, :]
            counts.append(int(np.count_nonzero((i >= 0) & (i < n))))
    return counts


def toeplitz_nnz(geometry: ConvGeometry) -> int:
    """Stored entries of the one-channel Toeplitz matrix, counted per axis (cheap)."""
    return math.prod(_axis_valid_counts(geometry))


def tap_table(geometry: ConvGeometry) -> TapTable:
    """Build the N-D tap table of a geometry by broadcasting the per-axis ones."""
    nd = geometry.ndim
    n_in = math.prod(geometry.input_size)
    dtype = index_dtype(n_in)
    in_strides = np.cumprod((1,) + geometry.input_size[:0:-1])[::-1]
    flat = np.zeros((1,) * (2 * nd), dtype=dtype)
    valid = None
    for axis, (n, m, k, s, (lo, _), d) in enumerate(
        zip(
            geometry.input_size,
            geometry.output_size,
            geometry.kernel_size,
            geometry.stride,
            geometry.padding,
            geometry.dilation,
        )
    ):
        idx, ok = _axis_taps(n, m, k, s, d, lo, geometry.padding_mode)
        shape = [1] * (2 * nd)
        shape[axis], shape[nd + axis] = m, k
        flat = flat + (idx.astype(dtype) * dtype.type(in_strides[axis])).reshape(shape)
        if ok is not None:
            ok = ok.reshape(shape)
            valid = ok if valid is None else valid & ok
    n_out = math.prod(geometry.output_size)
    n_taps = math.prod(geometry.kernel_size)
    full = tuple(geometry.output_size) + tuple(geometry.kernel_size)
    index = np.broadcast_to(flat, full).reshape(n_out, n_taps)
    if valid is not None:
        valid = np.broadcast_to(valid, full).reshape(n_out, n_taps)
    return TapTable(index, valid, n_in)


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
    full = (c_out, n_out, cin_g, n_taps)
    n_full = math.prod(full)
    idx_dtype = index_dtype(n_full, groups * cin_g * n_in, c_out * n_out)

    group = np.arange(c_out) // (c_out // groups)
    channel = (group[:, None] * cin_g + np.arange(cin_g)[None, :]) * n_in  # (C_out, cin_g)
    cols = channel.astype(idx_dtype)[:, None, :, None] + table.index.astype(idx_dtype)[None, :, None, :]
    values = np.broadcast_to(weight[:, None, :, :], full)
    if table.valid is None:
        indices = cols.reshape(-1)
        data = values.reshape(-1)  # a copy: weight is broadcast over pixels
        indptr = np.arange(0, n_full + 1, cin_g * n_taps, dtype=idx_dtype)
    else:
        mask = np.broadcast_to(table.valid[None, :, None, :], full)
        indices = cols[mask]
        data = values[mask]
        per_row = np.count_nonzero(table.valid, axis=1).astype(idx_dtype) * cin_g
        indptr = np.zeros(c_out * n_out + 1, dtype=idx_dtype)
        np.cumsum(np.tile(per_row, c_out), out=indptr[1:])
    matrix = sp.csr_array(
        (data, indices, indptr), shape=(c_out * n_out, groups * cin_g * n_in), copy=False
    )
    if padding_mode == "zeros":
        matrix.has_sorted_indices = True
    else:
        matrix.sum_duplicates()
    return matrix
