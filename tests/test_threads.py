"""Threaded sparse products equal SciPy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import linop._threads as threads


def _random_csr(rng, shape, density, dtype):
    matrix = sp.random_array(shape, density=density, format="csr", dtype=dtype, rng=rng)
    matrix.sort_indices()
    return matrix


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("columns", [None, 1, 5])
def test_threaded_product_is_scipys(monkeypatch, dtype, columns):
    rng = np.random.default_rng(3)
    monkeypatch.setattr(threads, "MIN_PARALLEL_NNZ", 10)
    monkeypatch.setenv("LINOP_NUM_THREADS", "3")
    matrix = _random_csr(rng, (997, 613), 0.02, dtype)
    shape = (613,) if columns is None else (613, columns)
    dense = rng.standard_normal(shape).astype(dtype)
    expected = matrix @ dense
    actual = threads.csr_matmul(matrix, dense)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def test_threads_can_be_turned_off_and_mixed_dtypes_fall_back(monkeypatch):
    rng = np.random.default_rng(4)
    monkeypatch.setattr(threads, "MIN_PARALLEL_NNZ", 10)
    matrix = _random_csr(rng, (300, 200), 0.05, np.float32)
    dense = rng.standard_normal(200)  # float64: SciPy's own product
    np.testing.assert_array_equal(threads.csr_matmul(matrix, dense), matrix @ dense)
    monkeypatch.setenv("LINOP_NUM_THREADS", "1")
    assert threads.num_threads() == 1
    dense32 = dense.astype(np.float32)
    np.testing.assert_array_equal(threads.csr_matmul(matrix, dense32), matrix @ dense32)
    monkeypatch.setenv("LINOP_NUM_THREADS", "many")
    assert threads.num_threads() == 1


def test_empty_rows_and_more_threads_than_rows(monkeypatch):
    monkeypatch.setattr(threads, "MIN_PARALLEL_NNZ", 1)
    monkeypatch.setenv("LINOP_NUM_THREADS", "8")
    matrix = sp.csr_array(np.array([[0.0, 2.0], [0.0, 0.0], [1.0, 0.0]]))
    dense = np.array([3.0, 5.0])
    np.testing.assert_array_equal(threads.csr_matmul(matrix, dense), [10.0, 0.0, 3.0])
