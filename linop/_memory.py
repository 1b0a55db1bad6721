"""Sizing before allocating, and the memory limit.

Every array that grows with the problem (an explicit matrix, a table of
indices, an interpolation table) is sized here before it is built, from the
arrays that will actually be allocated, with exact integer arithmetic (no
product can overflow). Whatever would exceed `get_memory_limit` is refused at
once with a `MatrixTooLargeError`, before anything big is allocated.

The limit has two levels, like NumPy's ``errstate`` and the ``decimal``
module's context: `set_memory_limit` sets the process-wide default, and the
`memory_limit` context manager overrides it for the current thread (or
asyncio task) only, in a `contextvars.ContextVar`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

import numpy as np

from linop._validation import as_nbytes, index_dtype

__all__ = [
    "MatrixTooLargeError",
    "check_nbytes",
    "csr_nbytes",
    "get_memory_limit",
    "memory_limit",
    "set_memory_limit",
]

#: The process-wide default set by `set_memory_limit` (None: half the available memory).
_default_limit: int | None = None

#: The override of `memory_limit`, local to a thread or task.
_context_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "linop_memory_limit", default=None
)


class MatrixTooLargeError(ValueError, MemoryError):
    """An explicit matrix or table would need more memory than the configured limit.

    Raised before anything big is allocated, by `conv_matrix`,
    `conv_transpose_matrix`, ``tocsr()`` (of an operator, its ``.T`` and
    ``.H``), operators that apply their explicit matrix
    (``method="toeplitz"``) and `Upsample`. It is both a `MemoryError` and a
    `ValueError`, so either ``except`` clause catches it.

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


MatrixTooLargeError.__module__ = "linop"  # shown where users import it from


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

    Returns
    -------
    int
        The limit in bytes: that of the innermost `memory_limit` block of
        the current thread or task, else the process default of
        `set_memory_limit`, else half of the memory available when asked.

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
    limit = _context_limit.get()
    if limit is None:
        limit = _default_limit
    return limit if limit is not None else _available_memory() // 2


def set_memory_limit(nbytes: int | None) -> None:
    """Set the process-wide limit (bytes) on explicit matrices; None restores the default.

    The default is half of the memory available at the time of each check.
    A `memory_limit` block overrides this value in its own thread or task.

    Parameters
    ----------
    nbytes : int or None
        The limit in bytes, ``>= 0``.

    Raises
    ------
    TypeError
        If ``nbytes`` is not an int or None.
    ValueError
        If ``nbytes`` is negative.

    Examples
    --------
    >>> import linop
    >>> linop.set_memory_limit(2**30)
    >>> linop.get_memory_limit()
    1073741824
    >>> linop.set_memory_limit(None)
    """
    global _default_limit
    _default_limit = as_nbytes(nbytes, allow_none=True)


@contextlib.contextmanager
def memory_limit(nbytes: int | None):
    """Limit explicit matrices to ``nbytes`` within a ``with`` block.

    The limit applies to the current thread (or asyncio task) only, and is
    restored on exit, whatever other threads do meanwhile; ``None`` means the
    process default (`set_memory_limit`) inside the block.

    Parameters
    ----------
    nbytes : int or None
        The limit in bytes, ``>= 0``.

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
    token = _context_limit.set(as_nbytes(nbytes, allow_none=True))
    try:
        yield
    finally:
        _context_limit.reset(token)


def csr_nbytes(nnz: int, n_rows: int, dtype, n_cols: int = 0) -> int:
    """Bytes of the data, indices and row pointer of a CSR matrix.

    The index dtype is int32 when ``nnz``, ``n_rows`` and ``n_cols`` fit in
    it, int64 otherwise, as linop builds them. Exact for any size (Python
    integers).
    """
    index_bytes = index_dtype(nnz, n_rows, n_cols).itemsize
    return nnz * (np.dtype(dtype).itemsize + index_bytes) + (n_rows + 1) * index_bytes


def check_nbytes(nbytes: int, what: str, advice: str = "") -> int:
    """Refuse ``nbytes`` (the arrays about to be built) beyond `get_memory_limit`.

    Parameters
    ----------
    nbytes : int
        What the construction will hold at its peak, in bytes.
    what : str
        What is being built, e.g. ``"the explicit matrix of this convolution
        (4 x 16, 36 stored entries)"``; the message starts with it.
    advice : str
        What to do instead, appended to the message.

    Returns
    -------
    int
        ``nbytes``.
    """
    limit = get_memory_limit()
    if nbytes > limit:
        raise MatrixTooLargeError(
            f"{what} needs about {_mib(nbytes)} MiB to build, more than the limit of "
            f"{_mib(limit)} MiB; " + (f"{advice}, or " if advice else "")
            + "raise the limit with linop.set_memory_limit"
        )
    return nbytes


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f}" if nbytes < 2**70 else f"{nbytes / 2**20:.3g}"
