"""Sparse matrix products on several cores.

SciPy's CSR product runs on one core, but its kernel releases the GIL, and
rows are independent: splitting the rows into blocks of equal work and
running the blocks in a thread pool multiplies the speed by the number of
cores (a sparse product is bound by memory bandwidth, which one core does
not saturate). Small products and unusual dtypes go through SciPy's plain
``@``; the results are the same to the last bit either way, since every
row is summed by the same kernel in the same order.

The number of threads is ``os.cpu_count()`` (at most 8), or the value of
the environment variable ``LINOP_NUM_THREADS`` when it is set; 1 turns the
threads off.

The pool belongs to one process. A child made by ``fork`` inherits the
parent's pool object but none of its threads, so a product there would wait
forever on tasks nobody runs: the child drops the inherited pool (and its
lock) at fork time and makes a fresh one when it first needs it.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

try:  # SciPy's compiled kernels: stable for a decade, but not public API
    from scipy.sparse._sparsetools import csr_matvec, csr_matvecs
except ImportError:  # pragma: no cover - a SciPy that moved them
    csr_matvec = csr_matvecs = None

__all__ = ["MIN_PARALLEL_NNZ", "csr_matmul", "num_threads"]

#: Below this many stored entries a product is too short to share out.
MIN_PARALLEL_NNZ = 1 << 18

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def num_threads() -> int:
    """Threads used for large sparse products (``LINOP_NUM_THREADS`` or the cores)."""
    value = os.environ.get("LINOP_NUM_THREADS")
    if value is not None:
        try:
            return max(1, int(value))
        except ValueError:
            return 1
    return max(1, min(8, os.cpu_count() or 1))


def _executor(workers: int) -> ThreadPoolExecutor:
    """The process's pool, with at least ``workers`` threads (made on first use)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="linop")
            _pool_size = workers
        return _pool


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's threads are gone, so is its pool."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size = None, 0
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def csr_matmul(matrix: sp.csr_array, dense: np.ndarray) -> np.ndarray:
    """``matrix @ dense`` for a 1-D or C-contiguous 2-D ``dense``, on several cores.

    Parameters
    ----------
    matrix : scipy.sparse.csr_array
    dense : ndarray, shape (n,) or (n, k)

    Returns
    -------
    ndarray, shape (m,) or (m, k)
        Exactly what ``matrix @ dense`` returns.
    """
    workers = num_threads()
    dtype = np.result_type(matrix.dtype, dense.dtype)
    if (
        workers < 2
        or csr_matvec is None
        or matrix.nnz < MIN_PARALLEL_NNZ
        or dense.ndim not in (1, 2)
        or matrix.data.dtype != dtype
        or dense.dtype != dtype
        or not dense.flags.c_contiguous
    ):
        return matrix @ dense
    n_rows, n_cols = matrix.shape
    # Row blocks of (nearly) equal numbers of stored entries.
    targets = (np.arange(1, workers) * (matrix.nnz // workers)).astype(matrix.indptr.dtype)
    cuts = np.searchsorted(matrix.indptr, targets)
    bounds = np.unique(np.r_[0, cuts, n_rows])
    out = np.zeros((n_rows,) + dense.shape[1:], dtype=dtype)
    flat_in, flat_out = dense.reshape(-1), out.reshape(-1)
    width = 1 if dense.ndim == 1 else dense.shape[1]

    def block(lo: int, hi: int) -> None:
        indptr = matrix.indptr[lo : hi + 1]
        target = flat_out[lo * width : hi * width]
        if dense.ndim == 1:
            csr_matvec(hi - lo, n_cols, indptr, matrix.indices, matrix.data, flat_in, target)
        else:
            csr_matvecs(hi - lo, n_cols, width, indptr, matrix.indices, matrix.data,
                        flat_in, target)

    pairs = list(itertools.pairwise(bounds))
    futures = [_executor(workers).submit(block, lo, hi) for lo, hi in pairs[1:]]
    block(*pairs[0])
    for future in futures:
        future.result()
    return out
