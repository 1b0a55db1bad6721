"""linop.linalg.lstsq against dense least squares.

Every solution is compared with NumPy on the explicit matrix
``tocsr().toarray()``: ``numpy.linalg.solve`` of the damped normal
equations, or ``numpy.linalg.lstsq`` (minimum norm) without damping.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import aslinearoperator

import linop
from linalg_cases import any_conv_ops, circulant_ops
from linop.linalg import lstsq

SETTINGS = settings(max_examples=30, deadline=None, database=None)
SINGLE = (np.dtype(np.float32), np.dtype(np.complex64))


def dense_damped(op, b, damp):
    M = op.tocsr().toarray().astype(np.complex128)
    n = M.shape[1]
    return np.linalg.solve(M.conj().T @ M + damp**2 * np.eye(n), M.conj().T @ b.ravel())


def rel_err(x, ref) -> float:
    return float(np.linalg.norm(np.ravel(x) - ref) / max(np.linalg.norm(ref), 1e-300))


def data(rng, op):
    b = rng.standard_normal(op.shape[0])
    if op.dtype.kind == "c":
        b = b + 1j * rng.standard_normal(op.shape[0])
    return b.astype(op.dtype)


@SETTINGS
@given(circulant_ops(), st.sampled_from([0.3, 1.0]))
def test_block_circulant_is_exact(case, damp):
    op, what = case
    b = data(np.random.default_rng(1), op)
    res = lstsq(op, b, damp=damp)
    assert res.method == "exact" and res.form == "block-circulant" and res.iterations == 0, what
    assert res.x.shape == op.input_shape and res.x.dtype == op.dtype, what
    tol = 2e-4 if op.dtype in SINGLE else 1e-10
    assert rel_err(res.x, dense_damped(op, b, damp)) <= tol, what
    # the residuals it reports (measured in the frequency domain) against dense ones
    M = op.tocsr().toarray().astype(np.complex128)
    x = res.x.ravel().astype(np.complex128)
    r = b - M @ x
    assert abs(res.residual_norm - np.linalg.norm(r)) <= 10 * tol * np.linalg.norm(b), what
    s = M.conj().T @ r - damp**2 * x
    assert res.residuals[-1] <= 10 * tol * (1 + np.linalg.norm(s) / np.linalg.norm(
        M.conj().T @ b)), what


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels", [(1, 1), (2, 3), (4, 2)])
def test_block_circulant_undamped_is_the_minimum_norm_solution(rng, stride, channels):
    c_out, c_in = channels
    w = rng.standard_normal((c_out, c_in, 3, 3))
    op = linop.Conv2d(w, (c_in, 8, 8), stride=stride, padding=1, padding_mode="circular")
    b = rng.standard_normal(op.shape[0])
    res = lstsq(op, b)
    ref = np.linalg.lstsq(op.tocsr().toarray(), b, rcond=None)[0]
    assert res.method == "exact"
    assert rel_err(res.x, ref) <= 1e-8


def test_super_resolution_exact_in_one_pass(rng):
    """Stride-2 blur, circular: per coarse frequency a 1 x 4 block (Woodbury's form)."""
    g = np.exp(-0.5 * (np.arange(5) - 2) ** 2)
    A = linop.Conv2d(np.outer(g, g) / g.sum() ** 2, (16, 16), stride=2, padding=2,
                     padding_mode="circular")
    b = A @ rng.standard_normal(256)
    res = lstsq(A, b, damp=1e-2)
    assert res.method == "exact" and res.x.shape == (16, 16)
    assert rel_err(res.x, dense_damped(A, b, 1e-2).real) <= 1e-10
    ref = np.linalg.lstsq(A.tocsr().toarray(), b, rcond=None)[0]   # undamped: minimum norm
    assert rel_err(lstsq(A, b).x, ref) <= 1e-8


@settings(max_examples=40, deadline=None, database=None)
@given(any_conv_ops(dtypes=(np.dtype(np.float64), np.dtype(np.float32))),
       st.sampled_from(["auto", None]))
def test_every_padding_and_stride_against_dense(case, precond):
    op, what = case
    b = data(np.random.default_rng(2), op)
    damp = 0.5
    single = op.dtype in SINGLE
    res = lstsq(op, b, damp=damp, rtol=1e-5 if single else 1e-11, preconditioner=precond,
                maxiter=2000)
    assert res.x.shape == op.input_shape and res.x.dtype == op.dtype, what
    assert res.success, (what, res.message)
    assert rel_err(res.x, dense_damped(op, b, damp)) <= (2e-3 if single else 1e-8), what
    if precond is None:
        assert res.method == "cg", what
    assert len(res.residuals) == res.iterations + 1 or res.method == "exact", what


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("kernel", ["separable", "symmetric", "asymmetric"])
def test_images_every_padding_mode(rng, mode, kernel):
    g = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
    w = np.outer(g, g) / 256
    if kernel == "symmetric":
        w[2, 2] += 0.05
    elif kernel == "asymmetric":
        w = np.diag([5.0, 4.0, 3.0, 2.0, 1.0]) / 15
    A = linop.Conv2d(w, (12, 11), padding="same", padding_mode=mode)
    b = A @ rng.standard_normal(A.shape[1]) + 0.01 * rng.standard_normal(A.shape[0])
    res = lstsq(A, b.reshape(12, 11), damp=0.05, rtol=1e-12)
    assert rel_err(res.x, dense_damped(A, b, 0.05).real) <= 1e-8, res.method
    expected = {"circular": "exact"}.get(mode)
    if kernel == "separable":
        expected = "exact"
    if expected:
        assert res.method == expected


@pytest.mark.parametrize("mode, method", [("reflect", "pcg+dct1"), ("zeros", "pcg+dct2"),
                                          ("replicate", "pcg+kronecker")])
def test_three_dimensional_symmetric_kernels(rng, mode, method):
    g = np.array([1.0, 3.0, 1.0])
    w = np.multiply.outer(np.multiply.outer(g, g), g)
    w[1, 1, 1] += 2.0                               # symmetric, not separable
    A = linop.Conv3d(w / w.sum(), (6, 5, 4), padding="same", padding_mode=mode)
    b = rng.standard_normal(A.shape[0])
    res = lstsq(A, b, damp=0.1, rtol=1e-12)
    assert res.method == method and res.x.shape == (6, 5, 4)
    assert rel_err(res.x, dense_damped(A, b, 0.1).real) <= 1e-9


def test_auto_says_when_no_preconditioner_helps(rng):
    w = np.diag([5.0, 4.0, 3.0, 2.0, 1.0]) / 15
    A = linop.Conv2d(w, (16, 16), padding="same", padding_mode="replicate")
    res = lstsq(A, rng.standard_normal(256), damp=0.1)
    assert res.method == "cg" and res.form == "identity"
    assert "no preconditioner known to help" in res.message


def test_dct_preconditioner_cuts_iterations(rng):
    g = np.exp(-0.5 * (np.arange(9) - 4.0) ** 2 / 2.0)
    w = np.outer(g, g)
    w[4, 4] += 0.2 * w.max()           # symmetric, not separable
    w /= w.sum()
    for mode, kind in (("reflect", "pcg+dct1"), ("zeros", "pcg+dct2")):
        A = linop.Conv2d(w, (40, 40), padding="same", padding_mode=mode)
        b = A @ rng.standard_normal(A.shape[1])
        fast = lstsq(A, b, damp=0.02)
        plain = lstsq(A, b, damp=0.02, preconditioner=None)
        assert fast.method == kind
        assert fast.iterations * 2 < plain.iterations, (mode, fast.iterations, plain.iterations)
        assert rel_err(fast.x, plain.x.ravel()) <= 1e-4
        # the residual history is the normal-equation residual, measured independently
        M = A.tocsr().toarray()
        x = fast.x.ravel()
        s = M.T @ (b - M @ x) - 0.02**2 * x
        assert abs(np.linalg.norm(s) / np.linalg.norm(M.T @ b) - fast.residuals[-1]) <= 1e-9
        assert fast.residuals[-1] <= 1e-6 and abs(fast.residual_norm
                                                  - np.linalg.norm(b - M @ x)) <= 1e-9


def test_float32_stays_float32(rng):
    w = rng.random((3, 3))
    w = (w + w[::-1] + w[:, ::-1] + w[::-1, ::-1]).astype(np.float32)   # symmetric: DCT-I
    for mode in ("reflect", "circular", "replicate"):
        A = linop.Conv2d(w, (10, 10), padding="same", padding_mode=mode)
        b = rng.standard_normal(100).astype(np.float32)
        res = lstsq(A, b, damp=0.5, rtol=1e-4)
        assert res.x.dtype == np.float32 and res.success, res.message
        assert rel_err(res.x, dense_damped(A.tocsr().astype(np.float64), b, 0.5).real) <= 1e-3


def test_user_linear_operator_and_x0(rng):
    dense = rng.standard_normal((30, 20))
    op = aslinearoperator(dense)
    b = rng.standard_normal(30)
    res = lstsq(op, b, damp=0.1, rtol=1e-12)
    ref = np.linalg.solve(dense.T @ dense + 0.01 * np.eye(20), dense.T @ b)
    assert res.method == "cg" and res.x.shape == (20,)
    assert rel_err(res.x, ref) <= 1e-9
    warm = lstsq(op, b, damp=0.1, rtol=1e-12, x0=ref)
    assert warm.iterations == 0 and rel_err(warm.x, ref) <= 1e-12
    capped = lstsq(op, b, damp=0.1, maxiter=2)
    assert capped.iterations == 2 and not capped.success and capped.status == 1


def circular_products(rng):
    def C(w, shape, **kw):
        return linop.Conv2d(w, shape, padding_mode="circular", **kw)

    blur = C(rng.standard_normal((3, 2, 3, 3)), (2, 8, 8), padding=1)
    depthwise = C(rng.standard_normal((4, 1, 3, 3)), (4, 8, 8), padding=1, groups=4)
    mix = C(rng.standard_normal((4, 3, 1, 1)), (3, 8, 8))
    down = C(rng.standard_normal((2, 4, 2, 2)), (4, 8, 8), stride=2, padding=((0, 1), (1, 0)))
    box = C(np.ones((2, 2)) / 4, (8, 8), stride=2, padding=((0, 1), (0, 1)))
    gauss = C(rng.random((3, 3)), (8, 8), padding=1)
    return {"depthwise @ mix @ blur": depthwise @ mix @ blur, "strided @ mix @ blur":
            down @ mix @ blur, "A.H @ A": blur.H @ blur, "strided @ depthwise": down @ depthwise,
            "super-resolution (box stride 2 @ blur)": box @ gauss,
            "transposed @ conv": blur.T @ C(rng.standard_normal((3, 3, 3, 3)), (3, 8, 8),
                                            padding=1)}


@pytest.mark.parametrize("name", ["depthwise @ mix @ blur", "strided @ mix @ blur", "A.H @ A",
                                  "strided @ depthwise", "super-resolution (box stride 2 @ blur)",
                                  "transposed @ conv"])
def test_products_of_block_circulant_convolutions_are_exact(rng, name):
    A = circular_products(rng)[name]
    b = rng.standard_normal(A.shape[0])
    res = lstsq(A, b, damp=0.3)
    assert res.method == "exact" and res.form == "block-circulant product"
    assert rel_err(res.x, dense_damped(A, b, 0.3)) <= 1e-10
    M = linop.linalg.preconditioner(A, 0.3)
    P = M.matmat(np.eye(A.shape[1]))
    D = A.tocsr().toarray()
    assert M.exact and np.abs(P @ (D.T @ D + 0.09 * np.eye(A.shape[1])) - np.eye(A.shape[1])
                              ).max() <= 1e-9


def test_product_runs_unpreconditioned_cg(rng):
    up = linop.Upsample((1, 6, 6), scale_factor=2, mode="bilinear")
    blur = linop.Conv2d(np.full((1, 1, 3, 3), 1 / 9), (1, 12, 12), padding=1)
    A = blur @ up
    b = rng.standard_normal(A.shape[0])
    res = lstsq(A, b, damp=0.1, rtol=1e-12)
    assert res.method == "cg" and res.x.shape == (1, 6, 6)
    assert rel_err(res.x, dense_damped(A, b, 0.1).real) <= 1e-9


def test_forced_kinds_and_user_preconditioner(rng):
    g = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    w = np.outer(g, g)
    w[2, 2] += 1
    A = linop.Conv2d(w / w.sum(), (14, 14), padding="same", padding_mode="zeros")
    b = rng.standard_normal(A.shape[0])
    ref = dense_damped(A, b, 0.1).real
    for kind in ("dct2", "circulant", "none"):
        res = lstsq(A, b, damp=0.1, rtol=1e-11, preconditioner=kind)
        assert rel_err(res.x, ref) <= 1e-8, kind
    M = linop.linalg.preconditioner(A, 0.1, kind="dct2")
    res = lstsq(A, b, damp=0.1, rtol=1e-11, preconditioner=M)
    assert res.method == "pcg+dct2" and rel_err(res.x, ref) <= 1e-8


def test_too_big_for_exact_falls_back_to_cg(rng):
    w = rng.standard_normal((4, 4, 3, 3))
    A = linop.Conv2d(w, (4, 16, 16), padding=1, padding_mode="circular")
    b = rng.standard_normal(A.shape[0])
    with linop.memory_limit(20_000):            # the blocks need more than this
        res = lstsq(A, b, damp=1.0, rtol=1e-10)
    assert res.method == "cg" and "no exact solve" in res.message
    assert rel_err(res.x, dense_damped(A, b, 1.0).real) <= 1e-8


def test_result_pickles(rng):
    A = linop.Conv1d(np.array([1.0, 2.0, 1.0]), (8,), padding=1, padding_mode="reflect")
    res = lstsq(A, rng.standard_normal(8), damp=0.1)
    again = pickle.loads(pickle.dumps(res))
    assert np.array_equal(again.x, res.x) and again.method == res.method


@pytest.mark.parametrize("kwargs, name", [
    (dict(b=np.ones(5)), "b"),
    (dict(damp=-1.0), "damp"),
    (dict(damp="x"), "damp"),
    (dict(rtol=0.0), "rtol"),
    (dict(maxiter=-1), "maxiter"),
    (dict(x0=np.ones(3)), "x0"),
    (dict(preconditioner="bogus"), "preconditioner"),
    (dict(preconditioner="dct1"), "preconditioner"),      # asymmetric kernel: refused
    (dict(preconditioner=3), "preconditioner"),
])
def test_bad_arguments_name_the_parameter(kwargs, name):
    A = linop.Conv1d(np.array([1.0, 2.0, 3.0]), (8,), padding=1)
    args = dict(b=np.ones(8))
    args.update(kwargs)
    b = args.pop("b")
    with pytest.raises((ValueError, TypeError), match=name):
        lstsq(A, b, **args)
