"""Sizes at the edge: everything big is sized before it is built, every bad value is named.

The guard counts the arrays that will actually be allocated (the CSR arrays
of the matrix being built, transposed or not, and the intermediates), with
exact integer arithmetic, so it refuses within microseconds and without
allocating; huge integers are refused at construction with a ValueError that
names the parameter.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

import linop


def _refused_quickly(build, limit=2**20):
    """``build()`` under ``limit`` raises MatrixTooLargeError, fast and with no allocation."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with linop.memory_limit(limit), pytest.raises(linop.MatrixTooLargeError) as info:
            build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 2**20, peak
    return str(info.value)


def test_transposed_matrices_are_sized_by_their_own_rows():
    # A: 4 rows, 10003**2 columns; A^T: 100060009 rows (an indptr of 382 MiB)
    message = _refused_quickly(
        lambda: linop.conv_transpose_matrix(np.ones((3, 3)), (2, 2), stride=10**4))
    assert "(100060009 x 4, 36 stored entries)" in message
    assert "382 MiB" in message
    message = _refused_quickly(
        lambda: linop.Conv2d(np.ones((3, 3)), (20000, 20000), stride=10**4).T.tocsr())
    assert "(400000000 x 4, 36 stored entries)" in message
    # the same through the transposed operator's apply (Toeplitz method)
    op = linop.ConvTranspose2d(np.ones((3, 3)), (2, 2), stride=10**4, method="toeplitz")
    _refused_quickly(lambda: op.apply(np.ones((2, 2))))


def test_astronomical_matrices_are_refused_by_the_guard_not_numpy():
    for limit in (2**20, None):  # None: the default limit, half the available memory
        with linop.memory_limit(limit):
            with pytest.raises(linop.MatrixTooLargeError, match="1000000006000000009 x 4"):
                linop.conv_transpose_matrix(np.ones((3, 3)), (2, 2), stride=10**9)


def test_the_adjoint_view_of_a_matrix_is_sized():
    up = linop.Upsample((1, 300, 300), size=(600, 600))
    assert up.H.tocsr().shape == (90000, 360000)
    _refused_quickly(lambda: up.H.tocsr(), limit=10**6)


def test_upsample_tables_are_sized_before_they_are_built():
    message = _refused_quickly(lambda: linop.Upsample((1, 4, 4), size=(10**8, 10**8)),
                               limit=2**30)
    assert "Upsample" in message and "(1, 100000000, 100000000)" in message
    assert "im2col" not in message  # Upsample has no method parameter
    # under the default limit too: tens of GiB of tables
    with pytest.raises(linop.MatrixTooLargeError):
        linop.Upsample((1, 4, 4), size=(10**9, 10**9))


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
def test_huge_integers_are_a_value_error_naming_the_parameter(name):
    with pytest.raises(ValueError, match=name) as info:
        linop.Conv1d(np.ones(3), (5,), **{name: 10**30})
    assert info.value.parameter == name
    with pytest.raises(ValueError, match="input_shape") as info:
        linop.Conv1d(np.ones(3), (10**19,))
    assert info.value.parameter == "input_shape"
    with pytest.raises(ValueError, match="output_padding"):
        linop.ConvTranspose1d(np.ones(3), (5,), stride=2, output_padding=10**30)
    with pytest.raises(ValueError, match="size"):
        linop.Upsample((1, 4), size=10**30)


def test_zero_dimensional_arrays_are_integers_and_none_is_named():
    a = linop.Conv1d(np.ones(3), (5,), padding=np.array(1), stride=np.int64(1))
    assert a.padding == ((1, 1),) and a.output_shape == (5,)
    np.testing.assert_array_equal(a.apply(np.arange(5.0)), [1, 3, 6, 9, 7])
    with pytest.raises(TypeError, match="input_shape") as info:
        linop.Conv1d(np.ones(3), None)
    assert info.value.parameter == "input_shape"
    with pytest.raises(TypeError, match="padding"):
        linop.Conv1d(np.ones(3), (5,), padding=np.array([1.5]))
    with pytest.raises(TypeError, match="input_shape"):
        linop.Upsample(None, size=3)


@pytest.mark.parametrize("call, size", [("matvec", 9), ("rmatvec", 4), ("matmat", 9),
                                        ("rmatmat", 4)])
def test_wrong_sizes_name_the_expected_and_received_shapes(call, size):
    op = linop.Conv2d(np.ones((2, 2)), (3, 3))  # 4 x 9
    bad = np.ones((size + 1, 2)) if call.endswith("mat") else np.ones(size + 1)
    with pytest.raises(ValueError) as info:
        getattr(op, call)(bad)
    message = str(info.value)
    assert f"({size}" in message and str(bad.shape) in message and "4x9" in message
    shape = (3, 3) if call in ("matvec", "matmat") else (2, 2)
    assert str(shape) in message
    with pytest.raises(ValueError, match=r"\(9,\) or \(9, 1\).*got shape \(8,\)"):
        op @ np.ones(8)
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 3, 3\), got \(4, 4\)"):
        op.apply(np.ones((4, 4)))
