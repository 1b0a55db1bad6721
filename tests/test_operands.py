"""What an operator multiplies: sparse and non-numeric operands are refused as SciPy does.

SciPy's own `LinearOperator` raises ``TypeError: Unable to multiply a
LinearOperator with a sparse matrix. Wrap the matrix in aslinearoperator
first.`` for a sparse operand; linop's operators raise the same (a
`linop.ParameterTypeError`, which is a `TypeError`) from every entry point,
instead of wrapping the sparse matrix into a 0-d object array and then
complaining about its shape. The message is compared with SciPy's, drawn live
from a plain SciPy operator, and the advice it gives is followed: the wrapped
matrix multiplies, and the result is compared with dense NumPy products.
Object, string and datetime operands raise a `TypeError` naming the dtype.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import linop
from linop.testing import check_operator, dottest


def scipy_message() -> str:
    """SciPy's message for a sparse operand, from SciPy's own operator."""
    plain = LinearOperator((3, 3), matvec=lambda x: 2 * np.asarray(x), dtype=np.float64)
    with pytest.raises(TypeError) as info:
        plain @ sp.eye_array(3, format="csr")
    return str(info.value)


SCIPY_MESSAGE = scipy_message()


def _operators():
    rng = np.random.default_rng(20)
    conv = linop.Conv2d(rng.standard_normal((2, 1, 3, 3)), (1, 5, 4), padding=1)
    up = linop.Upsample((1, 5, 4), scale_factor=1.5, mode="bilinear")
    return {
        "Conv2d": conv,
        "ConvTranspose1d": linop.ConvTranspose1d(rng.standard_normal((1, 2, 3)), (1, 6),
                                                 stride=2),
        "Upsample": up,
        "AvgPool2d": linop.AvgPool2d((2, 6, 4), 2),
        "Pad": linop.Pad((3, 4), (1, 2, 0, 1)),
        "PixelShuffle": linop.PixelShuffle((4, 2, 3), 2),
        "product": conv.H @ conv,
        "sum": up.H @ up + 0.5 * linop.AvgPool2d((1, 5, 4), 1),
        "adjoint": up.H,
    }


OPERATORS = _operators()


def _entry_points(A, fmt):
    """Every way a sparse operand reaches ``A`` (name -> call)."""
    m, n = A.shape
    col = sp.random_array((n, 1), density=0.5, format=fmt, rng=np.random.default_rng(1))
    block = sp.random_array((n, 3), density=0.5, format=fmt, rng=np.random.default_rng(2))
    row = sp.random_array((1, m), density=0.5, format=fmt, rng=np.random.default_rng(3))
    out_block = sp.random_array((m, 2), density=0.5, format=fmt, rng=np.random.default_rng(4))
    out_col = sp.random_array((m, 1), density=0.5, format=fmt, rng=np.random.default_rng(9))
    shaped = sp.random_array((n, 1), density=0.5, format=fmt, rng=np.random.default_rng(5))
    return {
        "A @ S": lambda: A @ block,
        "A @ s": lambda: A @ col,
        "A * S": lambda: A * block,
        "A.dot(S)": lambda: A.dot(block),
        "A.matmat(S)": lambda: A.matmat(block),
        "A.matvec(s)": lambda: A.matvec(col),
        "A.rmatvec(s)": lambda: A.rmatvec(out_col),
        "A.rmatmat(S)": lambda: A.rmatmat(out_block),
        "A.apply(S)": lambda: A.apply(shaped),
        "A.apply_adjoint(S)": lambda: A.apply_adjoint(out_block),
        "A.H @ S": lambda: A.H @ out_block,
        "A.T.matvec(s)": lambda: A.T.matvec(out_col),
        "S @ A": lambda: row @ A,
    }


ENTRY_NAMES = tuple(_entry_points(OPERATORS["Conv2d"], "csr"))


@pytest.mark.parametrize("entry", ENTRY_NAMES)
@pytest.mark.parametrize("name", OPERATORS)
def test_sparse_operand_raises_scipys_type_error(name, entry):
    A = OPERATORS[name]
    with pytest.raises(TypeError) as info:
        _entry_points(A, "csr")[entry]()
    assert isinstance(info.value, linop.ParameterTypeError)
    assert str(info.value).startswith(SCIPY_MESSAGE), str(info.value)
    assert "csr_array" in str(info.value)  # and it says what it was given


@pytest.mark.parametrize("fmt", ["csc", "coo", "dia", "lil", "dok", "bsr"])
def test_every_sparse_format_and_the_matrix_classes(fmt):
    A = OPERATORS["Conv2d"]
    for call in _entry_points(A, fmt).values():
        with pytest.raises(TypeError, match="Unable to multiply a LinearOperator"):
            call()
    S = sp.random_array((A.shape[1], 2), density=0.5, format=fmt, rng=np.random.default_rng(0))
    matrix = getattr(sp, f"{fmt}_matrix")(S)  # the old sparse matrix classes too
    for call in (lambda: A @ matrix, lambda: A.matmat(matrix), lambda: matrix.T @ A.H,
                 lambda: matrix.T * A.H, lambda: A.apply(matrix)):
        with pytest.raises(TypeError, match="aslinearoperator"):
            call()


@pytest.mark.parametrize("name", ["Conv2d", "Upsample", "product", "sum"])
def test_the_advice_works(name):
    """``A @ aslinearoperator(S)`` multiplies: the same as the dense product."""
    A = OPERATORS[name]
    m, n = A.shape
    S = sp.random_array((n, 4), density=0.4, format="csr", rng=np.random.default_rng(6))
    dense_a = A.tocsr().toarray()
    v = np.random.default_rng(0).standard_normal(4)
    np.testing.assert_allclose((A @ aslinearoperator(S)).matvec(v), dense_a @ (S.toarray() @ v),
                               rtol=1e-12, atol=1e-12)
    R = sp.random_array((3, m), density=0.4, format="csr", rng=np.random.default_rng(7))
    w = np.random.default_rng(1).standard_normal(n)
    np.testing.assert_allclose((aslinearoperator(R) @ A).matvec(w), R.toarray() @ (dense_a @ w),
                               rtol=1e-12, atol=1e-12)


NON_NUMERIC = {
    "object": lambda shape: np.full(shape, None, dtype=object),
    "object of floats": lambda shape: np.ones(shape).astype(object),
    "str": lambda shape: np.full(shape, "a"),
    "bytes": lambda shape: np.full(shape, b"a"),
    "datetime64[D]": lambda shape: np.full(shape, np.datetime64("2026-12-04")),
    "timedelta64[s]": lambda shape: np.full(shape, np.timedelta64(3, "s")),
}


@pytest.mark.parametrize("kind", NON_NUMERIC)
def test_non_numeric_operands_name_their_dtype(kind):
    A = OPERATORS["Upsample"]
    m, n = A.shape
    make = NON_NUMERIC[kind]
    dtype = str(make(1).dtype)
    calls = {
        "matvec": lambda: A.matvec(make(n)),
        "matmat": lambda: A.matmat(make((n, 2))),
        "rmatvec": lambda: A.rmatvec(make(m)),
        "dot": lambda: A.dot(make(n)),
        "@": lambda: A @ make((n, 2)),
        "apply": lambda: A.apply(make(A.input_shape)),
        "apply_adjoint": lambda: A.apply_adjoint(make((2,) + A.output_shape)),
        "left": lambda: make((1, m)) @ A,
        "wrong shape": lambda: A.matvec(make(n + 1)),  # the dtype is checked first
    }
    for what, call in calls.items():
        with pytest.raises(TypeError, match=re.escape(f"dtype {dtype}")) as info:
            call()
        assert isinstance(info.value, linop.ParameterTypeError), what


def test_a_string_is_not_an_operand():
    A = OPERATORS["Pad"]
    for call in (lambda: A.matvec("x" * A.shape[1]), lambda: A.apply(b"abc")):
        with pytest.raises(TypeError, match="string of dtype"):
            call()


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_numeric_operands_still_multiply():
    """Bools, ints, lists and NumPy matrices: the dense product, as before."""
    A = OPERATORS["product"]
    dense_a = A.tocsr().toarray()
    n = A.shape[1]
    ints = np.arange(n) % 5 - 2
    np.testing.assert_allclose(A.matvec(ints), dense_a @ ints, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A @ list(ints), dense_a @ ints, rtol=1e-12, atol=1e-12)
    flags = ints > 0
    np.testing.assert_allclose(A.matvec(flags), dense_a @ flags, rtol=1e-12, atol=1e-12)
    block = np.stack([ints, ints[::-1]], axis=1)
    np.testing.assert_allclose(A.matmat(block), dense_a @ block, rtol=1e-12, atol=1e-12)
    got = A @ np.asmatrix(block)
    np.testing.assert_allclose(np.asarray(got), dense_a @ block, rtol=1e-12, atol=1e-12)


def test_dottest_and_check_operator_refuse_sparse_vectors_and_non_numeric_operators():
    vector = sp.coo_array(np.array([0.0, 1.0, 0.0, 2.0]))  # 1-D: a vector, not an operator
    for check in (dottest, check_operator):
        with pytest.raises(TypeError, match="sparse vector") as info:
            check(vector, rng=0)
        assert info.value.parameter == "op"
        for bad in (np.full((3, 2), None, dtype=object), np.full((2, 2), "a")):
            with pytest.raises(TypeError, match=re.escape(f"dtype {bad.dtype}")):
                check(bad, rng=0)
    # a 2-D sparse matrix is an operator: both pass on it (its adjoint is its transpose)
    S = sp.random_array((6, 4), density=0.5, format="csr", rng=np.random.default_rng(8))
    assert dottest(S, rng=0).passed
    assert check_operator(S, rng=0).passed


@pytest.mark.dask
def test_dask_apply_refuses_a_sparse_matrix():
    ld = pytest.importorskip("linop.dask")
    A = OPERATORS["Conv2d"]
    with pytest.raises(TypeError, match="Unable to multiply a LinearOperator"):
        ld.apply(A, sp.random_array(A.input_shape[1:], density=0.5, rng=np.random.default_rng(0)))
    with pytest.raises(TypeError, match="dtype object"):
        ld.apply_adjoint(A, np.full(A.output_shape, None, dtype=object))
