"""Helpers shared by the test modules (pytest loads this file before any of them).

Plain helpers are imported by name, ``from conftest import assert_close, high``;
fixtures are requested by argument name, as usual.

The test modules import the helper modules of ``tests/`` by name too
(``import reference as R``, ``import reference_upsample``, ``import golden``).
pytest's default import mode puts ``tests/`` on ``sys.path`` for this file;
it is put there below as well, so that the other import modes (``importlib``)
find them, and so that no test module needs an ``ImportError`` fallback.

``reference.py`` and ``reference_upsample.py`` stay independent of linop (and
of this file): they are the naive loop references the operators are checked
against.

Constants
---------
DTYPES
    The four dtypes of linop's operators.
METHODS
    The methods of the convolutions ("auto" aside).
RTOL
    Relative tolerance by dtype, for :func:`assert_close`.

Functions
---------
high(dtype)
    The dtype the references compute in for an operator dtype.
random_array(rng, shape, dtype)
    Standard normal entries (complex: random real and imaginary parts).
assert_close(got, ref, bound, dtype, what)
    ``max |got - ref| <= RTOL[dtype] * max(bound)``, shapes equal.
assert_csr(S, dtype)
    A ``scipy.sparse.csr_array`` of ``dtype`` with int32 indices, sorted rows.
forked_product(op, x, timeout)
    ``(op @ x).tobytes()`` computed in a forked child, and its exit code.

Fixtures
--------
rng
    A NumPy ``Generator`` seeded from the test's id.

Markers
-------
Tests marked ``torch`` compare with PyTorch live; without PyTorch they are
skipped, with a reason, by :func:`pytest_collection_modifyitems`.
``.ci/run`` installs PyTorch and runs them with ``pytest -m torch``.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
import zlib

import numpy as np
import pytest
import scipy.sparse

_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

__all__ = ["DTYPES", "METHODS", "RTOL", "assert_close", "assert_csr", "forked_product", "high",
           "random_array"]

DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))
METHODS = ("toeplitz", "im2col", "fft")

#: Relative tolerance against the sum of the absolute values of the terms of each
#: output (``|M| @ |x|``, see :func:`assert_close`): a few hundred epsilon covers any
#: summation order of the (at most a few hundred) terms of one output.
RTOL = {
    np.dtype(np.float32): 1e-5,
    np.dtype(np.complex64): 1e-5,
    np.dtype(np.float64): 1e-12,
    np.dtype(np.complex128): 1e-12,
}


def high(dtype) -> type:
    """The reference precision for an operator dtype: complex128 or float64."""
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


def random_array(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    """Standard normal entries of ``dtype`` (complex: random real and imaginary parts)."""
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def assert_close(got, ref, bound, dtype, what: str = "") -> None:
    """``max |got - ref| <= RTOL[dtype] * max(bound)`` with matching shapes.

    ``bound`` is the reference computed on absolute values (``|M| @ |x|``, or
    the operation on ``|w|`` and ``|x|``), so the tolerance is tight yet
    independent of the order of summation.
    """
    got = np.asarray(got)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = float(np.max(np.abs(bound))) if np.size(bound) else 0.0
    err = float(np.max(np.abs(got - ref))) if got.size else 0.0
    tol = RTOL[np.dtype(dtype)] * max(scale, np.finfo(np.float64).tiny)
    assert err <= tol, f"{what}: max error {err:.3e} > tolerance {tol:.3e}"


def assert_csr(S, dtype) -> None:
    """``S`` is a ``scipy.sparse.csr_array`` of ``dtype``, int32 ``indices`` and
    ``indptr``, and strictly increasing column indices in every row."""
    assert isinstance(S, scipy.sparse.csr_array), type(S)
    assert S.dtype == dtype, (S.dtype, dtype)
    assert S.indices.dtype == np.int32 and S.indptr.dtype == np.int32
    assert S.has_sorted_indices
    # check sortedness by hand too (the flag could be stale)
    for r in range(S.shape[0]):
        row = S.indices[S.indptr[r]:S.indptr[r + 1]]
        assert np.all(np.diff(row) > 0), f"row {r} indices not strictly increasing: {row}"


def _product_to_queue(queue, op, x):
    queue.put((op @ x).tobytes())


def forked_product(op, x, timeout: float = 60):
    """``(op @ x).tobytes()`` computed in a child made by ``fork``, and the child's exit code.

    The bytes are None when the child never answered within ``timeout``
    seconds (it is killed then): the caller asserts on both.
    """
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_product_to_queue, args=(queue, op, x))
    child.start()
    try:  # read before joining: a child with queued data waits for its reader
        data = queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - the queue's Empty: the child never answered
        data = None
    child.join(timeout)
    if child.is_alive():
        child.kill()
    return data, child.exitcode


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A NumPy Generator seeded from the test's id (its node id).

    The same numbers on every run, and independent of which other tests run
    and in which order (unlike a module-level generator).
    """
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(scope="module")
def torch_one_thread():
    """PyTorch on one thread for the module that asks, restored after it.

    torch's thread pool costs milliseconds per call on the tiny arrays of the
    tests; without torch this does nothing (those tests are skipped).
    """
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``torch`` when PyTorch is not installed."""
    try:
        if importlib.util.find_spec("torch") is not None:
            return
    except (ImportError, ValueError):  # a blocked or half-installed torch
        pass
    skip = pytest.mark.skip(reason="needs PyTorch: pip install torch==2.13.0 (CPU)")
    for item in items:
        if "torch" in item.keywords:
            item.add_marker(skip)
