"""Bad input, large sizes, int64 indices, non-finite values, no shared state.

Every expectation here is independent of linop's code: the naive reference
in ``reference.py``, dense arithmetic, IEEE rules, or an exception type.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import linop
import linop._conv.im2col
import linop._conv.taps
import linop._validation
from conftest import METHODS
from reference import conv_matrix_dense, conv_nd, conv_transpose_nd

# -- the size guard -----------------------------------------------------------


def test_tocsr_of_a_huge_operator_refuses_without_allocating():
    # 64 -> 64 channels, 3x3, 2048x2048: 64*64*9 entries per interior pixel.
    w = np.ones((64, 64, 3, 3), dtype=np.float32)
    op = linop.Conv2d(w, (64, 2048, 2048), padding=1)
    assert op.method == "im2col"
    tracemalloc.start()
    try:
        with pytest.raises(linop.MatrixTooLargeError) as info:
            op.tocsr()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # nothing of the matrix's size was allocated
    message = str(info.value)
    assert "154518175744 stored entries" in message  # 64*64*(2048*2048*9 - border taps)
    assert "im2col" in message
    # It is a ValueError (bad request) and a MemoryError (what it protects from).
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)


def test_memory_limit_is_configurable_and_restored():
    kernel = np.ones((3, 3))
    with linop.memory_limit(100):
        assert linop.get_memory_limit() == 100
        with pytest.raises(linop.MatrixTooLargeError):
            linop.conv_matrix(kernel, (32, 32))
    # Back to the default: the same matrix builds.
    matrix = linop.conv_matrix(kernel, (32, 32))
    assert matrix.shape == (900, 1024)
    with pytest.raises(TypeError, match="nbytes"):
        linop.set_memory_limit(1.5)
    with pytest.raises(ValueError, match="nbytes"):
        linop.set_memory_limit(-1)


def test_auto_method_avoids_an_explicit_matrix_over_the_limit(rng):
    kernel = rng.standard_normal((3, 3))
    with linop.memory_limit(1000):
        op = linop.Conv2d(kernel, (32, 32), padding=1)
        assert op.method == "im2col"
        x = rng.standard_normal((32, 32))
        expected = conv_nd(x[None], kernel[None, None], padding=1)[0]
        np.testing.assert_allclose(op.apply(x), expected, rtol=1e-12, atol=1e-12)


# -- index dtypes ----------------------------------------------------------------


def test_index_dtype_threshold():
    assert linop._validation.index_dtype(2**31 - 1) == np.int32
    assert linop._validation.index_dtype(2**31) == np.int64
    assert linop._validation.index_dtype(5, 2**40) == np.int64


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular"])
def test_int64_index_arithmetic_matches_int32(monkeypatch, padding_mode, rng):
    """Simulate matrices past 2**31 entries: every index array becomes int64."""
    w = rng.standard_normal((4, 2, 3, 3))
    kwargs = dict(stride=(1, 2), padding=(2, 1), groups=2, padding_mode=padding_mode)
    x = rng.standard_normal((4, 9, 11))
    dense = conv_matrix_dense(w, (4, 9, 11), **kwargs)

    monkeypatch.setattr(linop._validation, "_INT32_MAX", 40)
    assert linop._validation.index_dtype(41) == np.int64
    for method in METHODS:
        op = linop.Conv2d(w, (4, 9, 11), method=method, **kwargs)
        assert linop._conv.taps.tap_table(op.geometry).index.dtype == np.int64
        np.testing.assert_allclose(op @ x.ravel(), dense @ x.ravel(), rtol=1e-12, atol=1e-12)
        y = rng.standard_normal(op.shape[0])
        np.testing.assert_allclose(op.H @ y, dense.T @ y, rtol=1e-12, atol=1e-12)
    # Reflected taps that read one pixel are summed: equal up to rounding.
    np.testing.assert_allclose(op.tocsr().toarray(), dense, rtol=1e-13, atol=1e-13)


def test_small_matrices_use_int32_indices():
    matrix = linop.conv_matrix(np.ones((2, 3, 3, 3)), (3, 16, 16), padding=1)
    assert matrix.indices.dtype == np.int32 and matrix.indptr.dtype == np.int32


# -- im2col in blocks -------------------------------------------------------------


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_im2col_blocks_give_the_same_numbers(monkeypatch, padding_mode, rng):
    w = rng.standard_normal((6, 2, 3, 3))
    kwargs = dict(padding=1, padding_mode=padding_mode, groups=2)
    x = rng.standard_normal((5, 4, 10, 7))
    y = rng.standard_normal((5, 6, 10, 7))
    expected = conv_nd(x, w, **kwargs)
    dense = conv_matrix_dense(w, (4, 10, 7), **kwargs)
    expected_adjoint = (dense.T @ y.reshape(5, -1).T).T.reshape(x.shape)
    # A budget of a few hundred bytes forces many pixel blocks and batch slices.
    monkeypatch.setattr(linop._conv.im2col, "PATCH_BUFFER_BYTES", 2000)
    op = linop.Conv2d(w, (4, 10, 7), method="im2col", **kwargs)
    patch_bytes = 4 * 9 * 8  # one output pixel of one sample: C_in * K float64 values
    assert len(list(linop._conv.im2col.tiles(op.geometry.output_size, 5, patch_bytes,
                                             2000))) > 5
    np.testing.assert_allclose(op.apply(x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.apply_adjoint(y), expected_adjoint, rtol=1e-12, atol=1e-12)


def test_transposed_im2col_blocks(monkeypatch, rng):
    w = rng.standard_normal((3, 2, 3, 2))
    y = rng.standard_normal((2, 3, 6, 5))
    kwargs = dict(stride=2, padding=1, output_padding=1)
    expected = conv_transpose_nd(y, w, **kwargs)
    monkeypatch.setattr(linop._conv.im2col, "PATCH_BUFFER_BYTES", 1000)
    op = linop.ConvTranspose2d(w, (3, 6, 5), method="im2col", **kwargs)
    np.testing.assert_allclose(op.apply(y), expected, rtol=1e-12, atol=1e-12)


# -- non-finite values ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_inputs_propagate(method):
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]])
    op = linop.Conv2d(kernel[None, None], (1, 4, 4), method=method)
    x = np.ones((1, 4, 4))
    x[0, 1, 1] = np.nan
    x[0, 3, 3] = np.inf
    y = op.apply(x)[0]
    # Outputs whose window holds the NaN are NaN; the Inf reaches one output
    # (times a positive weight); every other output is finite: IEEE rules.
    assert np.isnan(y[:2, :2]).all()
    assert y[2, 2] == np.inf
    finite = np.ones((3, 3), dtype=bool)
    finite[:2, :2] = False
    finite[2, 2] = False
    assert np.isfinite(y[finite]).all()
    np.testing.assert_array_equal(y[finite], np.full(finite.sum(), 10.0))


def test_non_finite_weights_reach_the_outputs_that_read_them():
    kernel = np.array([1.0, np.nan, 1.0])
    y = linop.Conv1d(kernel, (5,)).apply(np.arange(5.0))
    assert np.isnan(y).all()
    # PyTorch's rule: the padded zeros are multiplied like any other number,
    # so an infinite weight that meets zero padding gives inf * 0 = NaN.
    kernel = np.array([np.inf, 1.0, 1.0])
    for method in METHODS:
        if method == "fft":  # a transform would spread the inf everywhere: refused
            with pytest.raises(ValueError, match="finite"):
                linop.Conv1d(kernel, (3,), padding=1, method=method)
            continue
        y = linop.Conv1d(kernel, (3,), padding=1, method=method).apply(np.ones(3))
        np.testing.assert_array_equal(y, [np.nan, np.inf, np.inf])


# -- nothing shared with the caller ---------------------------------------------


def test_weight_is_copied_and_read_only(rng):
    w = rng.standard_normal((2, 1, 3))
    op = linop.Conv1d(w, (1, 8))
    x = rng.standard_normal((1, 8))
    before = op.apply(x)
    w[:] = 0.0  # the caller's array
    np.testing.assert_array_equal(op.apply(x), before)
    with pytest.raises(ValueError):
        op.weight[0, 0, 0] = 1.0
    np.testing.assert_array_equal(op.apply(x), before)


def test_tocsr_result_can_be_edited_without_changing_the_operator(rng):
    kernel = rng.standard_normal((3, 3))
    op = linop.Conv2d(kernel, (6, 6), padding_mode="reflect", padding=1, method="toeplitz")
    x = rng.standard_normal((6, 6))
    before = op.apply(x)
    for _ in range(2):  # before and after the operator caches its matrix
        matrix = op.tocsr()
        matrix.data[:] = 0.0
        matrix.indices[:] = 0
        np.testing.assert_array_equal(op.apply(x), before)
    transposed = op.T.tocsr()
    transposed.data[:] = 0.0
    np.testing.assert_array_equal(op.apply(x), before)


def test_input_is_not_modified(rng):
    op = linop.Conv2d(rng.standard_normal((2, 3, 3, 3)), (3, 8, 8), padding=1)
    x = rng.standard_normal((3, 8, 8))
    copy = x.copy()
    op.apply(x)
    op.apply_adjoint(rng.standard_normal((2, 8, 8)))
    op @ x.ravel()
    np.testing.assert_array_equal(x, copy)


# -- bad input to apply / matvec -----------------------------------------------


def test_apply_rejects_wrong_shapes_and_dtypes():
    op = linop.Conv2d(np.ones((2, 3, 3, 3)), (3, 8, 8))
    with pytest.raises(ValueError, match=r"x must have shape"):
        op.apply(np.ones((3, 8, 9)))
    with pytest.raises(ValueError, match=r"y must have shape"):
        op.apply_adjoint(np.ones((3, 6, 6)))
    with pytest.raises(ValueError):
        op.matvec(np.ones(10))
    with pytest.raises(TypeError, match="not numeric"):
        op.apply(np.full((3, 8, 8), "a"))


@pytest.mark.parametrize(
    "weight, message",
    [
        (np.array(["a", "b"]), "weight"),
        (np.array([object(), object()]), "weight"),
        (np.ones((0, 3)), "weight"),
    ],
)
def test_non_numeric_or_empty_weights(weight, message):
    with pytest.raises((TypeError, ValueError), match=message):
        linop.Conv1d(weight, (8,))


def test_upsample_tocsr_is_sized_first():
    op = linop.Upsample((64, 4096, 4096), scale_factor=2, mode="bicubic")
    tracemalloc.start()
    try:
        with pytest.raises(linop.MatrixTooLargeError, match="Upsample"):
            op.tocsr()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20
