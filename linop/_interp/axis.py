"""One axis of an interpolation, applied along any axis of an array.

An `AxisInterpolation` holds the tap matrix of one axis
(`linop._interp.matrices.axis_taps`: PyTorch's taps, duplicates and zero
weights kept) and applies it, or its transpose, along a chosen axis of an
array, in one of two ways:

- as ``T`` *gathers* (``y[j] = sum_t w[t, j] x[idx[t, j]]``, `numpy.take`
  along the axis) when every row holds a few entries: no transposed copies of
  the data, which a sparse product along an inner axis would need;
- otherwise as a sparse product along the axis (`_apply_along`).

Both multiply exactly the entries of the tap matrix in CSR order, so they
agree to the last bit, infinities and NaN included, and follow PyTorch's
rule for non-finite values (``0 * inf`` is NaN).

The object is a value: it pickles as its tap matrix and rebuilds the rest.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from linop._memo import Memo
from linop._sparse import canonical_csr

__all__ = ["MAX_GATHER_TAPS", "MAX_SHORT_ROWS", "AxisInterpolation"]

#: Rows with more stored entries than this go through sparse products, and
#: so do matrices with more than 2 taps that enlarge their axis: there, as
#: for bicubic up-sampling, the gathers cost more than one sparse product
#: with its transposed copies (measured in benchmarks/).
MAX_GATHER_TAPS = 4

#: At most this many rows with another number of entries than the most
#: common one (the borders of the adjoints of linear and bicubic
#: interpolation) are patched up one by one after the gathers; more go
#: through sparse products.
MAX_SHORT_ROWS = 32


class AxisInterpolation:
    """The interpolation of one axis: ``(n_out, n_in)`` taps, applied along an axis.

    Parameters
    ----------
    taps : scipy.sparse.csr_array
        The tap matrix, one entry per tap in PyTorch's order.

    Attributes
    ----------
    taps : scipy.sparse.csr_array
    is_identity : bool
        One entry of weight 1 per row, on the diagonal: the axis is copied.
    """

    def __init__(self, taps: sp.csr_array):
        self.taps = taps
        self.is_identity = _is_identity(taps)
        self._memo = Memo()

    @property
    def shape(self) -> tuple[int, int]:
        return self.taps.shape

    def matrix(self) -> sp.csr_array:
        """The canonical matrix of the axis (summed duplicates, no zeros); a fresh copy."""
        return self._memo.get("matrix", lambda: canonical_csr(self.taps)).copy()

    def _transposed_taps(self) -> sp.csr_array:
        # csr -> csc -> csr keeps every entry (duplicates and zeros) in column order
        return self._memo.get("taps_t", lambda: sp.csr_array(self.taps.T))

    def _form(self, transpose: bool):
        """The gather form of the taps (or of their transpose), False when a product is better."""
        key = "gather_t" if transpose else "gather"
        matrix = self._transposed_taps() if transpose else self.taps
        return self._memo.get(key, lambda: _gather_form(matrix) or False)

    def apply(self, x: np.ndarray, axis: int, *, transpose: bool = False) -> np.ndarray:
        """The taps (or their transpose) applied along ``axis`` of ``x``."""
        if self.is_identity:
            return x
        form = self._form(transpose)
        if form:
            return _gather_along(x, axis, *form)
        if transpose:
            return _apply_along(x, axis, self._transposed_taps(), self.taps)
        return _apply_along(x, axis, self.taps, self._transposed_taps())


def _gather_form(m: sp.csr_array):
    """A 1-D matrix as ``T`` gathers: ``y[j] = sum_t w[t, j] x[idx[t, j]]``.

    ``T`` is the most common number of entries per row. Rows with another
    number (the borders of the adjoints of linear and bicubic interpolation,
    rows that nothing reads) are *irregular*: the gathers fill their first
    slots, and `_gather_along` recomputes them from their own entries, so a
    padded ``0 * x`` never turns an infinite input into NaN where no such
    term exists.

    Returns
    -------
    tuple or None
        ``(index, weight, irregular)``: ``index`` and ``weight`` of shape
        ``(T, n_out)`` (``weight`` None when every entry is 1 and every row
        has one: a pure gather), and ``irregular``, a list of ``(row,
        indices, weights)``. None when ``T`` is larger than
        `MAX_GATHER_TAPS`, more than `MAX_SHORT_ROWS` rows are irregular, or
        rows of more than 2 entries enlarge the axis.
    """
    counts = np.diff(m.indptr)
    nonzero = counts[counts > 0]
    if nonzero.size == 0:
        return None
    taps = int(np.argmax(np.bincount(nonzero)))
    irregular_rows = np.flatnonzero(counts != taps)
    if taps > MAX_GATHER_TAPS or irregular_rows.size > MAX_SHORT_ROWS:
        return None
    if taps > 2 and m.shape[0] > m.shape[1]:
        return None
    rows = np.repeat(np.arange(m.shape[0]), counts)
    slot = np.arange(m.nnz) - m.indptr[rows]
    keep = slot < taps
    index = np.zeros((taps, m.shape[0]), dtype=np.intp)
    weight = np.zeros((taps, m.shape[0]), dtype=m.dtype)
    index[slot[keep], rows[keep]] = m.indices[keep]
    weight[slot[keep], rows[keep]] = m.data[keep]
    irregular = [
        (int(j), m.indices[m.indptr[j] : m.indptr[j + 1]].astype(np.intp),
         m.data[m.indptr[j] : m.indptr[j + 1]])
        for j in irregular_rows
    ]
    if taps == 1 and not irregular and np.all(weight == 1):
        weight = None
    return index, weight, irregular


def _weighted_sum(x: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray):
    """``sum_t weight[t] * take(x, index[t], axis)``, in CSR order."""
    shape = [1] * x.ndim
    shape[axis] = index.shape[1]
    y = np.take(x, index[0], axis=axis)
    y *= weight[0].reshape(shape)
    for t in range(1, index.shape[0]):
        term = np.take(x, index[t], axis=axis)
        term *= weight[t].reshape(shape)
        y += term
    return y


def _gather_along(x: np.ndarray, axis: int, index: np.ndarray, weight, irregular) -> np.ndarray:
    """The 1-D matrix of `_gather_form` applied along ``axis`` of ``x``.

    Sums in the same order as a CSR row, so the result is the sparse
    product's to the last bit, infinities and NaN included.
    """
    if weight is None:
        return np.take(x, index[0], axis=axis)
    # Like SciPy's sparse products, stay silent about inf * 0 and inf - inf:
    # IEEE gives NaN, and the irregular rows are redone below.
    with np.errstate(invalid="ignore", over="ignore"):
        y = _weighted_sum(x, axis, index, weight)
        for row, cols, values in irregular:
            where = (slice(None),) * axis + (slice(row, row + 1),)
            if cols.size:
                y[where] = _weighted_sum(x, axis, cols[:, None], values[:, None])
            else:
                y[where] = 0
    return y


def _apply_along(x: np.ndarray, axis: int, m: sp.csr_array, m_t: sp.csr_array) -> np.ndarray:
    """Multiply the array ``x`` by ``m`` (``(n_out, n_in)``) along ``axis``.

    ``m_t`` is ``m.T`` as CSR. Three layouts, all sparse-times-dense products:
    the last axis as ``X @ m.T`` on ``(rest, n_in)``; a leading block count that
    is small compared with the trailing size as ``m @ X[i]`` per block; otherwise
    one transposed copy and a single product.
    """
    x = np.ascontiguousarray(x)
    shape = x.shape
    n_in, n_out = shape[axis], m.shape[0]
    lead = math.prod(shape[:axis])
    trail = math.prod(shape[axis + 1 :])
    out_shape = shape[:axis] + (n_out,) + shape[axis + 1 :]
    dtype = np.result_type(x.dtype, m.dtype)
    if trail == 1:
        y = np.asarray(x.reshape(lead, n_in) @ m_t)
    elif trail >= 256 and lead <= 64:
        xb = x.reshape(lead, n_in, trail)
        y = np.empty((lead, n_out, trail), dtype=dtype)
        for i in range(lead):  # a few large blocks: one sparse product each
            y[i] = m @ xb[i]
    else:
        xb = np.ascontiguousarray(x.reshape(lead, n_in, trail).transpose(1, 0, 2))
        y = np.asarray(m @ xb.reshape(n_in, lead * trail))
        y = y.reshape(n_out, lead, trail).transpose(1, 0, 2)
    return np.ascontiguousarray(y, dtype=dtype).reshape(out_shape)


def _is_identity(m: sp.csr_array) -> bool:
    n = m.shape[0]
    return (
        m.shape[0] == m.shape[1]
        and m.nnz == n
        and bool(np.all(np.diff(m.indptr) == 1))
        and bool(np.all(m.indices == np.arange(n)))
        and bool(np.all(m.data == 1))
    )
