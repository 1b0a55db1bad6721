"""Algebra that keeps shapes: products, sums and multiples of linop operators.

Every result is checked against the same expression on the factors' dense
matrices (built column by column from the factors' own products), with dot
tests, its ``.T``/``.H``, pickling, and the errors that name both shapes.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import linop
from linop.testing import check_operator
from linop.testing.strategies import operators


def dense(op):
    """The operator's matrix, column by column through matvec."""
    eye = np.eye(op.shape[1], dtype=op.dtype)
    return np.stack([op.matvec(eye[:, j]) for j in range(op.shape[1])], axis=1)


def _tol(*ops):
    single = any((np.dtype(op.dtype).itemsize <= 8 and np.dtype(op.dtype).kind == "c")
                 or np.dtype(op.dtype) == np.float32 for op in ops)
    return 2e-4 if single else 1e-10


def _check_against(op, expected, *factors):
    tol = _tol(op, *factors)
    scale = max(1.0, float(np.abs(expected).max()))
    assert op.shape == expected.shape
    np.testing.assert_allclose(dense(op), expected, atol=tol * scale, rtol=0)
    if callable(getattr(op, "tocsr", None)):
        np.testing.assert_allclose(op.tocsr().toarray(), expected, atol=tol * scale, rtol=0)
    np.testing.assert_allclose(dense(op.H), expected.conj().T, atol=tol * scale, rtol=0)
    np.testing.assert_allclose(dense(op.T), expected.T, atol=tol * scale, rtol=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2,) + op.input_shape)
    np.testing.assert_allclose(op.apply(x).reshape(2, -1), x.reshape(2, -1) @ expected.T,
                               atol=tol * scale * 10, rtol=0)
    assert linop.dottest(op, rng=1, rtol=tol * 10, raise_error=False).passed


SMALL = operators(kinds=("conv", "conv_transpose", "upsample"), ndim=1,
                  dtypes=[np.float64, np.complex128])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(a=SMALL, b=SMALL, c=st.sampled_from([2.0, -0.5, 1j, np.float32(3.0)]))
def test_expressions_equal_the_same_expressions_of_matrices(a, b, c):
    ma, mb = dense(a), dense(b)
    # combinations of one operator
    if not (np.dtype(a.dtype).kind != "c" and isinstance(c, complex)):
        _check_against(c * a, c * ma, a)
        _check_against(a * c, c * ma, a)
        _check_against(a / c, ma * (1 / c), a)  # A / c is (1 / c) * A
    _check_against(-a, -ma, a)
    _check_against(a.H @ a, ma.conj().T @ ma, a)
    _check_against(a @ a.T, ma @ ma.T, a)
    # and of two, where the shapes allow
    if a.shape[1] == b.shape[0]:
        _check_against(a @ b, ma @ mb, a, b)
        _check_against(a.dot(b), ma @ mb, a, b)
        _check_against(a * b, ma @ mb, a, b)
    if a.shape == b.shape:
        _check_against(a + b, ma + mb, a, b)
        _check_against(a - 2 * b, ma - 2 * mb, a, b)


def test_shapes_repr_pickle_and_nesting():
    rng = np.random.default_rng(3)
    up = linop.Upsample((2, 5, 4), scale_factor=2, mode="bilinear")
    conv = linop.Conv2d(rng.standard_normal((3, 2, 3, 3)), (2, 10, 8), padding=1)
    smooth = linop.Conv2d(rng.standard_normal((3, 3, 3, 3)), (3, 10, 8), padding=1)
    chain = smooth @ (conv @ up)
    assert len(chain.factors) == 3  # flattened
    assert (chain.input_shape, chain.output_shape) == ((2, 5, 4), (3, 10, 8))
    assert repr(chain) == "<ProductOperator (2, 5, 4) -> (3, 10, 8): Conv2d @ Conv2d @ Upsample>"
    expected = dense(smooth) @ dense(conv) @ dense(up)
    _check_against(chain, expected)
    back = pickle.loads(pickle.dumps(chain))
    x = rng.standard_normal((2, 5, 4))
    np.testing.assert_array_equal(back.apply(x), chain.apply(x))
    combo = chain - chain + 0.5 * chain
    assert len(combo.terms) == 3
    assert repr(combo) == ("<SumOperator (2, 5, 4) -> (3, 10, 8): ProductOperator "
                           "- ProductOperator + 0.5 * ProductOperator>")
    _check_against(combo, 0.5 * expected)
    assert check_operator(combo, rng=0).passed
    # the shapes and PyLops' names
    assert chain.dims == (2, 5, 4) and chain.dimsd == (3, 10, 8)
    assert chain.T.input_shape == (3, 10, 8) and chain.H.output_shape == (2, 5, 4)


def test_composition_errors_name_both_shapes():
    a = linop.Conv2d(np.ones((3, 3)), (8, 8))  # (8, 8) -> (6, 6)
    b = linop.Conv2d(np.ones((3, 3)), (5, 5))  # (5, 5) -> (3, 3)
    with pytest.raises(ValueError, match=r"\(8, 8\).*\(3, 3\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(8, 8\) -> \(6, 6\).*\(5, 5\) -> \(3, 3\)"):
        a + b
    with pytest.raises(ValueError, match="scalar"):
        a / np.ones(3)


def test_plain_scipy_operators_keep_scipys_algebra():
    a = linop.Conv1d(np.array([1.0, -1.0]), (5,))  # 4 x 5
    plain = aslinearoperator(np.arange(20.0).reshape(5, 4))
    for result in (a @ plain, plain @ a, a + aslinearoperator(np.ones((4, 5)))):
        assert isinstance(result, LinearOperator)
        assert not isinstance(result, linop._base.ShapedLinearOperator)
    np.testing.assert_allclose((a @ plain).matmat(np.eye(4)),
                               dense(a) @ np.arange(20.0).reshape(5, 4))


def test_tocsr_only_where_every_factor_has_one():
    class Scale(linop._base.ShapedLinearOperator):
        def __init__(self, n):
            super().__init__((n,), (n,), np.float64)

        def _apply_cols(self, x):
            return 2 * x

        _apply_adjoint_cols = _apply_cols

    a = linop.Conv1d(np.array([1.0, 2.0]), (5,))
    product = a @ Scale(5)
    assert getattr(product, "tocsr", None) is None
    np.testing.assert_allclose(product @ np.ones(5), 2 * (a @ np.ones(5)))
    with pytest.raises(AttributeError, match="Scale"):
        product.tocsr()
    assert check_operator(product, rng=0).skipped == ["tocsr"]


def test_products_are_sized_before_they_are_built():
    a = linop.Conv2d(np.ones((9, 9)), (256, 256), padding=4)
    with linop.memory_limit(2**20), pytest.raises(linop.MatrixTooLargeError):
        (a.H @ a).tocsr()
    with linop.memory_limit(2**20), pytest.raises(linop.MatrixTooLargeError):
        (a + a).tocsr()


def test_pylops_applies_linop_operators_to_shaped_arrays():
    pylops = pytest.importorskip("pylops")
    up = linop.Upsample((1, 6, 5), scale_factor=2, mode="bilinear")
    op = pylops.LinearOperator(up)
    assert tuple(op.dims) == (1, 6, 5) and tuple(op.dimsd) == (1, 12, 10)
    x = np.random.default_rng(7).standard_normal((1, 6, 5))
    y = op @ x  # PyLops reshapes with dims/dimsd
    np.testing.assert_allclose(np.asarray(y).reshape(1, 12, 10), up.apply(x), rtol=1e-12)
    assert pylops.utils.dottest(op, *op.shape, rtol=1e-10)
