"""The explicit convolution matrix (a multi-level Toeplitz matrix), and applying it.

Block ``(co, ci)`` of the matrix ``A`` is ``sum_k weight[co, ci, k] P_k``,
where the 0/1 matrix ``P_k`` selects the pixels tap ``k`` reads (the tap
table of `linop._conv.taps`). One channel with zero padding is written
straight into CSR (`linop._conv.direct`); everything else from the tap table.
Construction is vectorised index arithmetic, O(nnz) time and memory, and is
sized against the memory limit before anything is allocated.

`ToeplitzMethod` applies a convolution with its explicit matrix: one sparse
product (on all cores, `linop._threads`) for ``A x`` and one with the cached
``A^T`` for ``A^T y``: the fastest way with one channel in and out per group.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from linop._conv.direct import one_channel_toeplitz
from linop._conv.geometry import ConvGeometry
from linop._conv.method import ConvMethod
from linop._conv.taps import (
    TapTable,
    axis_geometry,
    tap_table,
    tap_table_nbytes,
    toeplitz_nnz,
    valid_outputs,
)
from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import transpose_csr
from linop._threads import csr_matmul
from linop._validation import index_dtype

__all__ = ["ToeplitzMethod", "explicit_matrix", "explicit_matrix_nbytes", "toeplitz_matrix"]


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
        same pixel: the row then holds one entry per tap, in tap order (not
        sorted, duplicates kept), as PyTorch multiplies every tap.
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
    return matrix


# -- sizing and building ----------------------------------------------------------------
def _shape(weight, geometry, groups):
    c_out, cin_g = weight.shape[:2]
    return c_out * math.prod(geometry.output_size), cin_g * groups * math.prod(geometry.input_size)


def explicit_matrix_nbytes(weight: np.ndarray, geometry: ConvGeometry, groups: int, *,
                           transposed: bool = False) -> int:
    """Peak bytes of building the explicit matrix ``A`` (or ``A^T``), counted before building.

    Building ``A`` holds its CSR arrays and about as much again in
    temporaries (the tap table, the column and weight gathers); ``A^T`` is
    then converted from ``A``, so both exist at once.
    """
    nnz = explicit_matrix_nnz(weight, geometry)
    m, n = _shape(weight, geometry, groups)
    a = csr_nbytes(nnz, m, weight.dtype, n)
    build = 2 * a
    if not (weight.shape[:2] == (1, 1) and geometry.padding_mode == "zeros"):
        build = max(build, a + tap_table_nbytes(geometry))
    if transposed:
        build = max(build, a + csr_nbytes(nnz, n, weight.dtype, m))
    return build


def explicit_matrix_nnz(weight: np.ndarray, geometry: ConvGeometry) -> int:
    """Stored entries of the explicit matrix (an upper bound for padding modes with duplicates)."""
    return toeplitz_nnz(geometry) * weight.shape[0] * weight.shape[1]


def _refusal(weight, geometry, groups, transposed) -> str:
    m, n = _shape(weight, geometry, groups)
    if transposed:
        m, n = n, m
    kind = "transposed convolution" if transposed else "convolution"
    return (f"the explicit matrix of this {kind} ({m} x {n}, "
            f"{explicit_matrix_nnz(weight, geometry)} stored entries)")


def explicit_matrix(weight: np.ndarray, geometry: ConvGeometry, groups: int, *,
                    canonical: bool = True) -> sp.csr_array:
    """The explicit matrix ``A``, sized against the memory limit first.

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    geometry : ConvGeometry
    groups : int
    canonical : bool
        Sum the duplicate entries of padding modes other than zeros (sorted
        indices, what ``tocsr()`` returns). False keeps one entry per tap, for
        applying the matrix exactly as PyTorch multiplies.

    Raises
    ------
    MatrixTooLargeError
        If building it would exceed `linop.get_memory_limit`.
    """
    check_nbytes(explicit_matrix_nbytes(weight, geometry, groups),
                 _refusal(weight, geometry, groups, False), _ADVICE)
    return _build(weight, geometry, groups, canonical)


_ADVICE = "apply the operator with method='im2col' instead (it never builds this matrix)"


def _build(weight, geometry, groups, canonical):
    if weight.shape[:2] == (1, 1) and geometry.padding_mode == "zeros":
        kernel = weight.reshape(geometry.kernel_size)
        n_in, n_out = math.prod(geometry.input_size), math.prod(geometry.output_size)
        idx_dtype = index_dtype(toeplitz_nnz(geometry), n_in, n_out)
        matrix = one_channel_toeplitz(geometry, kernel, idx_dtype)
        if matrix is not None:
            return matrix
    w = weight.reshape(weight.shape[0], weight.shape[1], -1)
    matrix = toeplitz_matrix(tap_table(geometry), w, groups, geometry.padding_mode)
    if canonical and geometry.padding_mode != "zeros":
        matrix.sum_duplicates()
    return matrix


# -- applying -------------------------------------------------------------------------------
class ToeplitzMethod(ConvMethod):
    """A convolution applied with its explicit CSR matrix.

    ``A`` is built on the first ``forward``, ``A^T`` on the first
    ``transpose`` (from ``A`` if it is built already); both are cached in
    this object, and dropped when it is pickled or copied (a copy rebuilds
    them where it is used). Rows are kept one entry per tap (duplicates of
    padding modes are not summed) so that every product multiplies exactly
    the terms PyTorch multiplies, and zero padding read by a non-finite
    weight makes its output NaN (``inf * 0``), as in PyTorch.

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    geometry : ConvGeometry
    groups : int
    """

    name = "toeplitz"

    def _matrix(self) -> sp.csr_array:
        return self._memo.get("A", lambda: explicit_matrix(
            self.weight, self.geometry, self.groups, canonical=False))

    def _matrix_transpose(self) -> sp.csr_array:
        def build():
            return self._build_transpose(canonical=False)

        return self._memo.get("AT", build)

    def _poisoned_rows(self):
        """Output rows where a non-finite weight meets zero padding (None: there are none).

        Per bad tap, the outputs whose read of that tap is inside the input
        form a box (a range per axis, `valid_outputs`); the rest of the grid
        reads padding. O(bad taps x outputs), never a table of every tap.
        """
        def build():
            g = self.geometry
            w = self.weight.reshape(self.weight.shape[0], self.weight.shape[1], -1)
            bad = ~np.isfinite(w).all(axis=1)  # (C_out, K)
            if g.padding_mode != "zeros" or not bad.any():
                return ()
            ranges = [valid_outputs(*axis) for axis in axis_geometry(g)]
            rows = np.zeros((self.weight.shape[0],) + g.output_size, dtype=bool)
            for co, tap in zip(*np.nonzero(bad)):
                inside = tuple(slice(first[j], max(first[j], last[j] + 1)) for (first, last), j
                               in zip(ranges, np.unravel_index(tap, g.kernel_size)))
                reads_padding = np.ones(g.output_size, dtype=bool)
                reads_padding[inside] = False
                rows[co] |= reads_padding
            return np.flatnonzero(rows)

        rows = self._memo.get("poison", build)
        return rows if len(rows) else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for a block of columns ``(C_in*n_in, k)``."""
        y = _columns_product(self._matrix(), x)
        rows = self._poisoned_rows()
        if rows is not None:
            y[rows] = np.nan
        return y

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``A^T y`` for a block of columns ``(C_out*n_out, k)``."""
        return _columns_product(self._matrix_transpose(), y)

    def matrix(self, *, transposed: bool = False) -> sp.csr_array:
        """A fresh canonical copy of ``A`` (or ``A^T``): the cache's if built, else a new one."""
        cached = self._memo.peek("AT" if transposed else "A")
        if cached is not None:
            m, n = cached.shape
            check_nbytes(csr_nbytes(cached.nnz, m, cached.dtype, n),
                         _refusal(self.weight, self.geometry, self.groups, transposed), _ADVICE)
            matrix = cached.copy()
            if self.geometry.padding_mode != "zeros":
                matrix.sum_duplicates()
            return matrix
        if not transposed:
            return explicit_matrix(self.weight, self.geometry, self.groups)
        return self._build_transpose(canonical=True)

    def _build_transpose(self, *, canonical: bool) -> sp.csr_array:
        """``A^T``, from the cached ``A`` if there is one; sized before anything is built."""
        what = _refusal(self.weight, self.geometry, self.groups, True)
        matrix = self._memo.peek("A")
        if matrix is None:
            check_nbytes(explicit_matrix_nbytes(self.weight, self.geometry, self.groups,
                                                transposed=True), what, _ADVICE)
            matrix = _build(self.weight, self.geometry, self.groups, canonical)
        elif canonical and self.geometry.padding_mode != "zeros":
            matrix = matrix.copy()
            matrix.sum_duplicates()
        return transpose_csr(matrix, what, _ADVICE)


def _columns_product(matrix: sp.csr_array, x: np.ndarray) -> np.ndarray:
    """``matrix @ x`` for ``(n, k)`` columns; one column goes through the vector kernel."""
    if x.shape[1] == 1:
        return csr_matmul(matrix, x.reshape(-1)).reshape(-1, 1)
    return csr_matmul(matrix, x)
