"""A guard against explicit matrices that would not fit in memory.

Every explicit matrix is sized before it is built: its stored entries are
counted cheaply per axis, and a matrix whose CSR arrays would exceed the
limit is refused at once, before anything big is allocated.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = [
    "MatrixTooLargeError",
    "check_matrix_size",
    "csr_nbytes",
    "get_memory_limit",
    "memory_limit",
    "set_memory_limit",
]

_limit: int | None = None


class MatrixTooLargeError(ValueError, MemoryError):
    """An explicit matrix would need more memory than the configured limit.

    Raised before anything big is allocated, by `conv_matrix`,
    `conv_transpose_matrix`, ``tocsr()`` and operators that apply their
    explicit matrix (``method="toeplitz"``). It is both a `MemoryError` and
    a `ValueError`, so either ``except`` clause catches it.

    See Also
    --------
    get_memory_limit, set_memory_limit, memory_limit

    Examples
    --------
    The 3x3 convolution matrix of a 512x512 image, with a limit of 1 MiB:

    >>> import numpy as np, linop
    >>> with linop.memory_limit(2**20):
    ...     try:
    ...         linop.conv_matrix(np.ones((3, 3)), (512, 512))
    ...     except linop.MatrixTooLargeError as err:
    ...         print(err)  # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
    the explicit matrix of this convolution (260100 x 262144, 2340900 stored
    entries) needs about 56 MiB to build, more than the limit of 1 MiB; apply
    the operator with method='im2col' instead ...
    >>> E = linop.MatrixTooLargeError
    >>> issubclass(E, MemoryError), issubclass(E, ValueError)
    (True, True)
    """


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def get_memory_limit() -> int:
    """The largest explicit matrix, in bytes, that linop will build.

    By default half of the memory available when asked; see
    `set_memory_limit`.

    Returns
    -------
    int
        The limit in bytes: the one set by `set_memory_limit` or
        `memory_limit`, else half of the currently available memory.

    See Also
    --------
    set_memory_limit, memory_limit, MatrixTooLargeError

    Examples
    --------
    >>> import linop
    >>> with linop.memory_limit(2**20):
    ...     print(linop.get_memory_limit())
    1048576
    >>> linop.get_memory_limit() > 0    # the default: half of what is available
    True
    """
    return _limit if _limit is not None else _available_memory() // 2


def set_memory_limit(nbytes: int | None) -> None:
    """Set the largest explicit matrix (bytes) linop will build; None restores the default.

    Examples
    --------
    >>> import linop
    >>> linop.set_memory_limit(2**30)
    >>> linop.get_memory_limit()
    1073741824
    >>> linop.set_memory_limit(None)
    """
    global _limit
    if nbytes is not None:
        if not isinstance(nbytes, (int, np.integer)) or isinstance(nbytes, bool):
            raise TypeError(f"nbytes must be an int or None, got {nbytes!r}")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        nbytes = int(nbytes)
    _limit = nbytes


@contextlib.contextmanager
def memory_limit(nbytes: int | None):
    """Context manager form of `set_memory_limit`.

    Examples
    --------
    >>> import numpy as np, linop
    >>> with linop.memory_limit(1000):
    ...     try:
    ...         linop.conv_matrix(np.ones((3, 3)), (64, 64))
    ...     except linop.MatrixTooLargeError as err:
    ...         print("refused")
    refused
    """
    global _limit
    previous = _limit
    set_memory_limit(nbytes)
    try:
        yield
    finally:
        _limit = previous


def csr_nbytes(nnz: int, n_rows: int, dtype) -> int:
    """Bytes of a CSR matrix's data, indices and row pointer arrays."""
    index_bytes = 4 if max(nnz, n_rows) <= np.iinfo(np.int32).max else 8
    return nnz * (np.dtype(dtype).itemsize + index_bytes) + (n_rows + 1) * index_bytes


def check_matrix_size(nnz: int, dtype, shape, what: str) -> int:
    """Refuse to build an explicit matrix larger than `get_memory_limit`.

    Construction needs a few index arrays of the same length besides the
    result, so the estimate counts the CSR arrays twice.
    """
    estimate = 2 * csr_nbytes(nnz, shape[0], dtype)
    limit = get_memory_limit()
    if estimate > limit:
        raise MatrixTooLargeError(
            f"the explicit matrix of this {what} ({shape[0]} x {shape[1]}, {nnz} stored "
            f"entries) needs about {estimate / 2**20:.0f} MiB to build, more than the limit "
            f"of {limit / 2**20:.0f} MiB; apply the operator with method='im2col' instead "
            f"(it never builds this matrix), or raise the limit with linop.set_memory_limit"
        )
    return estimate
