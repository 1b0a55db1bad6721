"""CSR helpers shared by the operators: sized transposes and canonical form."""

from __future__ import annotations

import scipy.sparse as sp

from linop._memory import check_nbytes, csr_nbytes
from linop._validation import index_dtype

__all__ = ["canonical_csr", "transpose_csr"]


def transpose_csr(matrix: sp.csr_array, what: str, advice: str = "") -> sp.csr_array:
    """``matrix.T`` in CSR with sorted indices, sized against the memory limit first.

    ``what`` names the transpose in the refusal message, e.g. ``"the
    explicit matrix of this transposed convolution (10 x 4, 36 stored
    entries)"``.
    """
    m, n = matrix.shape
    check_nbytes(csr_nbytes(matrix.nnz, n, matrix.dtype, m), what, advice)
    result = sp.csr_array(matrix.T)
    result.sort_indices()
    return result


def canonical_csr(a, dtype=None, *, copy: bool = True) -> sp.csr_array:
    """``a`` as a canonical csr_array: summed duplicates, sorted indices, no
    explicit zeros, int32 index arrays where they fit.

    ``a`` itself is left alone unless ``copy`` is False (a temporary).
    """
    a = sp.csr_array(a, copy=copy)
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    a.sum_duplicates()
    a.eliminate_zeros()
    a.sort_indices()
    idx_dtype = index_dtype(a.shape[0], a.shape[1], a.nnz)
    if a.indices.dtype != idx_dtype or a.indptr.dtype != idx_dtype:
        a = sp.csr_array(
            (a.data, a.indices.astype(idx_dtype), a.indptr.astype(idx_dtype)), shape=a.shape
        )
        a.has_sorted_indices = True
        a.has_canonical_format = True
    return a
