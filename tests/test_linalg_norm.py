"""opnorm: exact values, Lanczos estimates and certified bounds, against the dense norm.

The reference is ``numpy.linalg.norm(A.tocsr().toarray(), 2)`` (the largest
singular value of the dense matrix). Every bound must contain it.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import given, settings

import linop
from linalg_cases import any_conv_ops, circulant_ops, weight
from linop import linalg
from linop.linalg._norm import norm_bound

SETTINGS = settings(max_examples=80, deadline=None, database=None)
SINGLE = (np.dtype(np.float32), np.dtype(np.complex64))


def dense_norm(op) -> float:
    return float(np.linalg.norm(op.tocsr().toarray().astype(np.complex128), 2))


def slack(dtype) -> float:
    return 1e-5 if np.dtype(dtype) in SINGLE else 1e-12


def check_contains(result, ref, dtype, what):
    assert result.lower <= ref * (1 + slack(dtype)) + 1e-30, (what, result, ref)
    assert result.upper >= ref * (1 - slack(dtype)), (what, result, ref)
    assert result.lower == result.value


@SETTINGS
@given(circulant_ops())
def test_exact_for_block_circulant_operators(case):
    op, what = case
    result = linalg.opnorm(op)
    ref = dense_norm(op)
    assert result.exact and result.nit == 0 and result.converged, what
    assert result.value == pytest.approx(ref, rel=10 * slack(op.dtype)), what
    assert result.lower == result.value == result.upper, what


@SETTINGS
@given(any_conv_ops())
def test_bounds_contain_the_dense_norm_for_every_padding(case):
    op, what = case
    result = linalg.opnorm(op)
    ref = dense_norm(op)
    check_contains(result, ref, op.dtype, what)
    if not result.exact:
        assert result.value == pytest.approx(ref, rel=1e-4 if op.dtype in SINGLE else 1e-5), \
            (what, result)
        assert np.isfinite(result.upper), what


@settings(max_examples=30, deadline=None, database=None)
@given(any_conv_ops(ndims=(3,), modes=("zeros", "replicate")))
def test_bounds_in_3d(case):
    op, what = case
    check_contains(linalg.opnorm(op), dense_norm(op), op.dtype, what)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_bounds_of_transposed_convolutions(mode, stride):
    rng = np.random.default_rng(stride)
    conv = linop.Conv2d(rng.standard_normal((3, 2, 3, 3)), (2, 7, 8), padding=1, stride=stride,
                        padding_mode=mode)
    for op in (conv.T, conv.H, linop.ConvTranspose2d(rng.standard_normal((2, 3, 3, 3)), (2, 4, 4),
                                                     stride=stride, padding=1)):
        result = linalg.opnorm(op)
        check_contains(result, dense_norm(op), op.dtype, repr(op))
        assert result.value == pytest.approx(dense_norm(op), rel=1e-5)


def test_zero_padding_is_not_bounded_by_the_circular_norm_of_the_same_size():
    """The difference kernel on 3 samples: circular norm sqrt(3), zero-padded 2cos(pi/8)."""
    w = np.array([1.0, -1.0])
    zero = linop.Conv1d(w, (3,), padding=1)
    circular = linop.Conv1d(w, (3,), padding=((0, 1),), padding_mode="circular")
    assert linalg.opnorm(circular).value == pytest.approx(np.sqrt(3))
    result = linalg.opnorm(zero)
    assert dense_norm(zero) == pytest.approx(2 * np.cos(np.pi / 8))
    assert dense_norm(zero) > np.sqrt(3)
    check_contains(result, dense_norm(zero), zero.dtype, "difference")


def test_products_multiply_and_sums_add_the_bounds():
    rng = np.random.default_rng(0)
    A = linop.Conv2d(rng.standard_normal((4, 2, 3, 3)), (2, 8, 8), padding=1)
    B = linop.Conv2d(rng.standard_normal((4, 4, 3, 3)), (4, 8, 8), padding=1, stride=2,
                     padding_mode="circular")
    up = linop.Upsample((4, 4, 4), scale_factor=2, mode="bilinear")
    a, b, u = (linalg.opnorm(op) for op in (A, B, up))
    assert b.exact and not a.exact
    net = up @ B @ A
    result = linalg.opnorm(net)
    ref = dense_norm(net)
    check_contains(result, ref, net.dtype, "product")
    assert result.upper == pytest.approx(a.upper * b.upper * u.upper, rel=1e-12)
    assert result.value == pytest.approx(ref, rel=1e-5)
    total = A.H @ A - 0.5 * linop.Conv2d(np.ones((2, 2, 1, 1)), (2, 8, 8))
    r = linalg.opnorm(total)
    check_contains(r, dense_norm(total), total.dtype, "sum")
    assert r.upper == pytest.approx(a.upper ** 2 + 0.5 * dense_norm(
        linop.Conv2d(np.ones((2, 2, 1, 1)), (2, 8, 8))), rel=1e-9)


def test_operators_without_structure():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((30, 20))
    plain = spla.aslinearoperator(M)
    result = linalg.opnorm(plain, rng=0)
    assert result.upper == np.inf and not result.exact
    assert result.value == pytest.approx(np.linalg.norm(M, 2), rel=1e-6)
    pool = linop.AvgPool2d((2, 6, 6), 2)
    r = linalg.opnorm(pool)
    check_contains(r, dense_norm(pool), pool.dtype, "pool")


def test_complex_and_single_precision():
    rng = np.random.default_rng(2)
    for dtype in (np.complex128, np.complex64, np.float32):
        w = weight(rng, (3, 2, 3), dtype)
        op = linop.Conv1d(w, (2, 9), padding=2, stride=2, dilation=2, padding_mode="reflect")
        result = linalg.opnorm(op)
        check_contains(result, dense_norm(op), op.dtype, str(dtype))


def test_tiny_operators():
    one = linop.Conv1d(np.array([3.0]), (1,))
    assert linalg.opnorm(one).value == pytest.approx(3.0)
    two = linop.Conv1d(np.array([1.0, 2.0]), (2,), padding=1)
    check_contains(linalg.opnorm(two), dense_norm(two), two.dtype, "two")


def test_result_fields_and_parameters():
    op = linop.Conv2d(np.ones((2, 1, 3, 3)), (1, 6, 6), padding=1)
    result = linalg.opnorm(op, rtol=1e-8, maxiter=50)
    assert result.iterations == result.nit > 0 and result.converged
    assert 0 <= result.gap < 0.5 and "embedding" in result.bound
    assert pickle.loads(pickle.dumps(result)) == result
    with pytest.raises(ValueError, match="rtol"):
        linalg.opnorm(op, rtol=0)
    with pytest.raises(TypeError, match="rtol"):
        linalg.opnorm(op, rtol="1e-6")
    with pytest.raises(ValueError, match="maxiter"):
        linalg.opnorm(op, maxiter=0)


def test_the_embedding_start_converges_fast():
    """From the top singular vector of the embedding, Lanczos needs few steps."""
    rng = np.random.default_rng(3)
    op = linop.Conv2d(rng.standard_normal((4, 4, 3, 3)), (4, 16, 16), padding=1)
    ref = float(np.linalg.norm(op.tocsr().toarray(), 2))
    structured = linalg.opnorm(op)
    assert structured.value == pytest.approx(ref, rel=1e-6)
    plain = linalg.opnorm(op @ linop.Conv2d(np.ones((4, 4, 1, 1)) * np.eye(4)[:, :, None, None],
                                            (4, 16, 16)), rng=0)  # the same matrix, no start
    assert plain.value == pytest.approx(ref, rel=1e-6)
    assert structured.nit < plain.nit


def test_the_lanczos_basis_is_cut_to_the_memory_limit():
    rng = np.random.default_rng(4)
    op = linop.Conv2d(rng.standard_normal((2, 2, 3, 3)), (2, 12, 12), padding=1,
                      method="im2col")
    vector = op.shape[1] * 8
    with linop.memory_limit(15 * vector):  # room for 12 basis vectors
        result = linalg.opnorm(op, rtol=1e-14)
    assert result.nit <= 12 and not result.converged
    assert result.lower <= dense_norm(op) * (1 + 1e-12)
    with linop.memory_limit(5 * vector), pytest.raises(linop.MatrixTooLargeError):
        linalg.opnorm(op)


def test_bounds_degrade_to_inf_not_errors():
    rng = np.random.default_rng(5)
    small = linop.Conv2d(rng.standard_normal((2, 2, 3, 3)), (2, 6, 6), padding=1)
    assert norm_bound(small.T @ small)[0] >= dense_norm(small.T @ small)
    conv = linop.Conv2d(rng.standard_normal((8, 8, 3, 3)), (8, 16, 16), padding=1)
    with linop.memory_limit(300_000):  # room for 15 Lanczos vectors, not for the blocks
        result = linalg.opnorm(conv @ conv.H)
        assert norm_bound(conv)[0] == np.inf
    assert result.upper == np.inf and result.lower > 0 and result.nit <= 15
    assert linalg.opnorm(0 * small).upper == 0.0
    assert linalg.opnorm(0 * small).value == 0.0
