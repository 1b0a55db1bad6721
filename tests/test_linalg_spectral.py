"""svdvals, cond, slogdet, inv, pinv and clip_singular_values against dense NumPy.

The references are NumPy's dense routines on ``tocsr().toarray()`` (in
complex128), over the configuration space of `linalg_cases.circulant_ops`.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import assume, given, settings

import linop
from linalg_cases import circulant_ops, weight
from linop import linalg

SETTINGS = settings(max_examples=50, deadline=None, database=None)
SINGLE = (np.dtype(np.float32), np.dtype(np.complex64))


def tol(dtype) -> float:
    return 3e-5 if np.dtype(dtype) in SINGLE else 1e-11


def dense(op) -> np.ndarray:
    return op.tocsr().toarray().astype(np.complex128)


@SETTINGS
@given(circulant_ops())
def test_svdvals(case):
    op, what = case
    s = linalg.svdvals(op)
    ref = np.linalg.svd(dense(op), compute_uv=False)
    assert s.shape == ref.shape, what
    assert s.dtype == (np.float32 if op.dtype in SINGLE else np.float64), what
    assert np.all(np.diff(s) <= 0), what
    assert np.abs(s - ref).max() <= 10 * tol(op.dtype) * (ref[0] + 1), what


@SETTINGS
@given(circulant_ops(dtypes=(np.float64, np.complex128)))
def test_cond(case):
    op, what = case
    ref = np.linalg.cond(dense(op))
    assume(ref < 1e8)
    assert linalg.cond(op) == pytest.approx(ref, rel=1e-6), what


def test_cond_of_a_singular_operator_is_inf():
    op = linop.Conv1d(np.array([1.0, -1.0]), (6,), padding=((0, 1),), padding_mode="circular")
    assert linalg.cond(op) == np.inf
    assert np.linalg.svd(op.tocsr().toarray(), compute_uv=False)[-1] < 1e-15


@SETTINGS
@given(circulant_ops(square=True))
def test_slogdet(case):
    op, what = case
    sign, logabsdet = linalg.slogdet(op)
    ref_sign, ref_log = np.linalg.slogdet(dense(op))
    assume(ref_log > -20)
    assert logabsdet == pytest.approx(ref_log, abs=1e-3 if op.dtype in SINGLE else 1e-8), what
    assert abs(sign - ref_sign) <= (1e-3 if op.dtype in SINGLE else 1e-8), what
    if op.dtype.kind == "f":
        assert sign in (-1.0, 1.0), what


def test_slogdet_of_a_singular_operator():
    op = linop.Conv2d(np.ones((1, 1, 2, 2)), (1, 4, 4), padding=((0, 1), (0, 1)),
                      padding_mode="circular")
    assert np.linalg.matrix_rank(op.tocsr().toarray()) < 16
    # the symbol vanishes at (pi, 0), (0, pi), (pi, pi): det = 0 up to rounding, as for NumPy
    assert linalg.slogdet(op).logabsdet < -60
    assert np.linalg.slogdet(op.tocsr().toarray()).logabsdet < -60
    exact = linop.Conv1d(np.array([0.0]), (3,))  # an exactly zero block
    assert linalg.slogdet(exact) == (0.0, -np.inf)


@SETTINGS
@given(circulant_ops(square=True))
def test_inv(case):
    op, what = case
    M = dense(op)
    c = np.linalg.cond(M)
    assume(c < 1e3)
    A_inv = linalg.inv(op)
    ref = np.linalg.inv(M)
    scale = np.abs(ref).max()
    assert A_inv.dtype == op.dtype, what
    assert (A_inv.input_shape, A_inv.output_shape) == (op.output_shape, op.input_shape), what
    assert np.abs(A_inv.tocsr().toarray() - ref).max() <= 100 * c * tol(op.dtype) * scale, what
    assert np.abs(A_inv.H.tocsr().toarray() - ref.conj().T).max() <= 100 * c * tol(
        op.dtype) * scale, what


def test_inv_of_a_singular_operator_raises():
    op = linop.Conv1d(np.array([1.0, 2.0, 1.0]), (8,), padding=1, padding_mode="circular")
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        linalg.inv(op)


@SETTINGS
@given(circulant_ops())
def test_pinv(case):
    op, what = case
    M = dense(op)
    s = np.linalg.svd(M, compute_uv=False)
    assume(s[-1] > 1e-3 * s[0])  # no singular value near the cut-off
    ref = np.linalg.pinv(M)
    P = linalg.pinv(op)
    scale = np.abs(ref).max()
    assert (P.input_shape, P.output_shape) == (op.output_shape, op.input_shape), what
    assert np.abs(P.tocsr().toarray() - ref).max() <= 1e4 * tol(op.dtype) * scale, what


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_pinv_of_rank_deficient_operators(dtype):
    rng = np.random.default_rng(0)
    # three output channels, one the sum of the others: every block has rank 2 of 3
    w = weight(rng, (3, 3, 2, 2), dtype)
    w[2] = w[0] + w[1]
    op = linop.Conv2d(w, (3, 4, 4), padding=((0, 1), (0, 1)), padding_mode="circular",
                      stride=2)
    M = dense(op)
    # the reference pseudo-inverse from NumPy's SVD, written out (NumPy < 2.0
    # has no rtol= in matrix_rank and pinv)
    u, s, vh = np.linalg.svd(M, full_matrices=False)
    assert np.count_nonzero(s > 1e-5 * s[0]) < min(M.shape)
    keep = s > 1e-6 * s[0]
    ref = (vh[keep].conj().T / s[keep]) @ u[:, keep].conj().T
    got = linalg.pinv(op, rtol=1e-6)
    assert np.abs(got.tocsr().toarray() - ref).max() <= 1e-4 * np.abs(ref).max()
    y = weight(rng, op.output_shape, np.float64)
    assert np.allclose(got.apply(y).ravel(), ref @ y.ravel(), atol=1e-4)
    copy = pickle.loads(pickle.dumps(got))
    assert np.allclose(copy.apply(y), got.apply(y))


def _clip_dense(M, c):
    u, s, vh = np.linalg.svd(M)
    return (u[:, :s.size] * np.minimum(s, c)) @ vh[:s.size]


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("stride", [1, 2])
def test_clip_with_a_full_support_kernel_is_the_dense_clip(dtype, stride):
    """A kernel as large as the grid: the crop loses nothing, so the clip is exact."""
    rng = np.random.default_rng(1)
    op = linop.Conv2d(weight(rng, (2, 2, 4, 4), dtype), (2, 4, 4), padding=((1, 2), (2, 1)),
                      padding_mode="circular", stride=stride)
    c = 0.5 * np.linalg.norm(dense(op), 2)
    got = linalg.clip_singular_values(op, c)
    assert type(got) is type(op) and got.weight.dtype == op.weight.dtype
    assert np.allclose(dense(got), _clip_dense(dense(op), c), atol=1e-10)
    assert np.linalg.norm(dense(got), 2) == pytest.approx(c, rel=1e-9)


@pytest.mark.parametrize("view", ["none", "T", "conj", "transposed_class"])
def test_clip_is_the_projection_onto_the_kernel_support(view):
    """With a small kernel: the new operator is the Frobenius-nearest convolution of that
    support to the dense clip (a least-squares problem over the taps, solved densely)."""
    rng = np.random.default_rng(2)
    shape = (2, 1, 3, 2)
    base = linop.Conv2d(weight(rng, shape, np.complex128), (2, 5, 4), padding=((1, 1), (0, 1)),
                        padding_mode="circular", groups=2)
    op = {"none": base, "T": base.T, "conj": base.conj(), "transposed_class": base.H}[view]
    c = 0.6 * np.linalg.norm(dense(op), 2)
    got = linalg.clip_singular_values(op, c)
    target = _clip_dense(dense(op), c)
    # the span of the operator's matrices over its taps
    basis = []
    for index in np.ndindex(shape):
        e = np.zeros(shape)
        e[index] = 1
        unit = linop.Conv2d(e, (2, 5, 4), padding=((1, 1), (0, 1)), padding_mode="circular",
                            groups=2)
        unit_op = {"none": unit, "T": unit.T, "conj": unit, "transposed_class": unit.T}[view]
        basis.append(dense(unit_op).ravel())
    basis = np.array(basis).T
    coef = np.linalg.lstsq(basis, target.ravel(), rcond=None)[0]
    assert np.allclose(dense(got).ravel(), basis @ coef, atol=1e-10)
    if view == "none":
        assert type(got) is linop.Conv2d
    if view == "transposed_class":
        assert type(got) is linop.ConvTranspose2d


def test_clip_keeps_a_real_weight_real():
    rng = np.random.default_rng(3)
    op = linop.Conv1d(rng.standard_normal((3, 2, 3)).astype(np.float32), (2, 8), padding=1,
                      padding_mode="circular")
    got = linalg.clip_singular_values(op, 1.0)
    assert got.weight.dtype == np.float32 and got.padding_mode == "circular"
    assert got.input_shape == op.input_shape and got.output_shape == op.output_shape
    assert linalg.opnorm(got).value < linalg.opnorm(op).value


@pytest.mark.parametrize("call", [linalg.svdvals, linalg.cond, linalg.slogdet, linalg.inv,
                                  linalg.pinv, lambda op: linalg.clip_singular_values(op, 1)])
def test_non_circulant_operators_are_refused(call):
    op = linop.Conv2d(np.ones((1, 1, 3, 3)), (1, 6, 6), padding=1)
    with pytest.raises(ValueError, match=r"not block-circulant.*opnorm"):
        call(op)


@pytest.mark.parametrize("call", [linalg.slogdet, linalg.inv])
def test_non_square_operators_are_refused(call):
    op = linop.Conv2d(np.ones((2, 1, 3, 3)), (1, 6, 6), padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match="output shape equals its input shape"):
        call(op)


def test_bad_parameters():
    op = linop.Conv1d(np.array([1.0, 3.0, 1.0]), (6,), padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match="rtol"):
        linalg.pinv(op, rtol=-1)
    with pytest.raises(TypeError, match="rtol"):
        linalg.pinv(op, rtol="small")
    with pytest.raises(ValueError, match="max_value"):
        linalg.clip_singular_values(op, -1)
    with pytest.raises(TypeError, match="max_value"):
        linalg.clip_singular_values(op, None)


def test_memory_limit_is_respected():
    op = linop.Conv2d(np.ones((8, 8, 3, 3)), (8, 32, 32), padding=1, padding_mode="circular")
    with linop.memory_limit(2**16):
        for call in (linalg.svdvals, linalg.inv, linalg.pinv, linalg.slogdet):
            with pytest.raises(linop.MatrixTooLargeError):
                call(op)
