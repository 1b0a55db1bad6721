"""A bounded, thread-safe cache of per-chunk operators (one per process), keyed by content."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from linop._validation import as_nbytes

__all__ = ["cached", "clear_cache", "set_cache_size", "token"]

_cache: OrderedDict = OrderedDict()
_cache_sizes: dict = {}
_cache_lock = threading.Lock()
_building: dict = {}
_cache_limit = 512 * 2**20


def set_cache_size(nbytes: int) -> None:
    """Bound the memory of the per-process cache of per-chunk operators.

    Every process that computes chunks (the client with the threaded
    scheduler, every ``distributed`` worker) keeps the small operators it
    built for the chunk shapes it met, least recently used first out, up to
    about ``nbytes`` of sparse matrices (default 512 MiB; the most recent
    operator is always kept). On a cluster, call it on the workers, e.g.
    ``client.run(linop.dask.set_cache_size, 2**28)``.

    Parameters
    ----------
    nbytes : int
        The bound in bytes, ``>= 0`` (default 512 MiB).

    Raises
    ------
    TypeError
        If ``nbytes`` is not an int.
    ValueError
        If ``nbytes`` is negative.

    See Also
    --------
    clear_cache : empty the cache.

    Examples
    --------
    >>> import numpy as np, dask.array as da, linop, linop.dask
    >>> linop.dask.set_cache_size(64 * 2**20)        # 64 MiB in this process
    >>> A = linop.Conv1d(np.ones(3), (100,))
    >>> float(linop.dask.apply(A, da.ones(100, chunks=25)).sum().compute())
    294.0
    >>> linop.dask.set_cache_size(512 * 2**20)       # back to the default
    """
    global _cache_limit
    nbytes = as_nbytes(nbytes)
    with _cache_lock:
        _cache_limit = nbytes
        _evict()


def clear_cache() -> None:
    """Empty this process's cache of per-chunk operators.

    The operators are rebuilt when next needed; results do not change. On a
    cluster, call it on the workers: ``client.run(linop.dask.clear_cache)``.

    See Also
    --------
    set_cache_size : bound the cache instead.

    Examples
    --------
    >>> import numpy as np, dask.array as da, linop, linop.dask
    >>> A = linop.Conv1d(np.ones(3), (100,))
    >>> x = da.ones(100, chunks=25)
    >>> y1 = linop.dask.apply(A, x).compute()       # builds and caches
    >>> linop.dask.clear_cache()
    >>> y2 = linop.dask.apply(A, x).compute()       # builds again
    >>> bool(np.array_equal(y1, y2))
    True
    """
    with _cache_lock:
        _cache.clear()
        _cache_sizes.clear()


def _evict():
    while len(_cache) > 1 and sum(_cache_sizes.values()) > _cache_limit:
        key, _ = _cache.popitem(last=False)
        _cache_sizes.pop(key, None)


def cached(key, build, nbytes_of):
    """The cached value of ``key``, built once per process (other threads wait for it)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        value = build()
        with _cache_lock:
            _cache[key] = value
            _cache_sizes[key] = nbytes_of(value)
            _building.pop(key, None)
            _evict()
    return value


def token(*parts) -> str:
    """A digest of arrays (dtype, shape and bytes) and other values (their repr)."""
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()
