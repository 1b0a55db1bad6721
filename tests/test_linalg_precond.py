"""linop.linalg.preconditioner on its dense matrix.

Symmetry and positivity are checked with ``numpy.linalg.eigvalsh`` of the
preconditioner's dense matrix (its columns, applied to the identity);
exactness against ``inv(A^H A + damp^2 I)`` of ``tocsr().toarray()``; and
the approximate forms by the spectrum of ``M (A^H A + damp^2 I)``: in one
dimension the DCT forms differ from the normal matrix by a boundary term of
small rank, so all but a few eigenvalues are exactly 1.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linop
from linalg_cases import any_conv_ops, circulant_ops
from linop.linalg import preconditioner


def dense(op) -> np.ndarray:
    n = op.shape[1]
    return op.matmat(np.eye(n, dtype=op.dtype))


def normal(A, damp) -> np.ndarray:
    M = A.tocsr().toarray().astype(np.complex128)
    return M.conj().T @ M + damp**2 * np.eye(M.shape[1])


def preconditioned_eigenvalues(P, N) -> np.ndarray:
    """The eigenvalues of ``P N`` for SPD ``P``: those of ``L^H N L`` with ``P = L L^H``."""
    L = np.linalg.cholesky((P + P.conj().T) / 2)
    return np.linalg.eigvalsh(L.conj().T @ N @ L)


def assert_spd(P, what=""):
    sym = np.abs(P - P.conj().T).max()
    scale = np.abs(P).max()
    tol = 1e-5 if P.dtype in (np.float32, np.complex64) else 1e-12
    assert sym <= tol * scale, (what, sym / scale)
    assert np.linalg.eigvalsh((P + P.conj().T) / 2).min() > 0, what


def symmetric_kernel(rng, shape):
    w = rng.random(shape)
    for axis in range(2, w.ndim):
        w = w + np.flip(w, axis=axis)
    return w


@settings(max_examples=30, deadline=None, database=None)
@given(circulant_ops(), st.sampled_from([0.0, 0.5]))
def test_block_circulant_is_exact_and_spd(case, damp):
    op, what = case
    M = preconditioner(op, damp)
    assert M.kind == "exact" and M.exact, what
    P = dense(M)
    assert_spd(P, what)
    N = normal(op, damp)
    if damp > 0:
        err = np.abs(P @ N - np.eye(len(N))).max()
        assert err <= (1e-3 if op.dtype in (np.float32, np.complex64) else 1e-9), what


@settings(max_examples=40, deadline=None, database=None)
@given(any_conv_ops(dtypes=(np.dtype(np.float64), np.dtype(np.float32))),
       st.sampled_from([0.0, 0.2]))
def test_auto_is_always_spd(case, damp):
    op, what = case
    M = preconditioner(op, damp)
    assert M.input_shape == op.input_shape == M.output_shape, what
    assert_spd(dense(M), f"{what} kind={M.kind}")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("stride", [1, 2])
def test_separable_kernels_are_exact_for_every_padding(rng, mode, stride):
    g = np.array([1.0, 3.0, 4.0, 2.0])  # not symmetric
    w = np.outer(g, 0.5 * g[::-1] + 1)
    A = linop.Conv2d(w, (9, 10), stride=stride, padding=((1, 2), (2, 1)), padding_mode=mode)
    M = preconditioner(A, 0.3)
    assert M.kind == "exact" and M.exact
    N = normal(A, 0.3)
    assert np.abs(dense(M) @ N - np.eye(len(N))).max() <= 1e-10
    assert_spd(dense(M))
    MT = preconditioner(A.T, 0.3)                 # the transposed convolution too
    assert np.abs(dense(MT) @ normal(A.T, 0.3) - np.eye(A.shape[0])).max() <= 1e-10


@pytest.mark.parametrize("mode, kind, n_off", [("reflect", "dct1", 4), ("zeros", "dct2", 8)])
def test_dct_forms_differ_by_a_boundary_term_1d(rng, mode, kind, n_off):
    """1-D: M^{-1} - (A^T A + d^2) has rank <= 4 (DCT-I: the ends of D) or 4p (DCT-II)."""
    w = np.array([1.0, 2.0, 5.0, 2.0, 1.0])       # p = 2
    A = linop.Conv1d(w, (24,), padding="same", padding_mode=mode)
    M = preconditioner(A, 0.1, kind=kind)
    P = dense(M)
    assert_spd(P)
    eig = preconditioned_eigenvalues(P, normal(A, 0.1))
    assert np.sum(np.abs(eig - 1) > 1e-8) <= n_off


@pytest.mark.parametrize("channels, groups", [((1, 1), 1), ((3, 2), 1), ((4, 4), 2)])
@pytest.mark.parametrize("mode, kind", [("reflect", "dct1"), ("zeros", "dct2")])
def test_dct_forms_multi_channel_spd_and_close(rng, channels, groups, mode, kind):
    c_out, c_in = channels
    w = symmetric_kernel(rng, (c_out, c_in // groups, 3, 5))
    A = linop.Conv2d(w, (c_in, 10, 11), padding="same", padding_mode=mode, groups=groups)
    M = preconditioner(A, 0.3)
    assert M.kind == kind and not M.exact
    P = dense(M)
    assert_spd(P)
    # a model of the normal matrix: many eigenvalues of M N cluster at 1 (none of N's
    # do); with reflect padding M N is also far better conditioned than N (with zero
    # padding a few boundary outliers remain, and CG handles those in a few steps)
    N = normal(A, 0.3)
    ev = preconditioned_eigenvalues(P, N)
    evn = np.linalg.eigvalsh(N)
    assert np.mean(np.abs(ev - 1) < 1e-2) > 0.1
    assert np.mean(np.abs(evn / np.median(evn) - 1) < 1e-2) < 0.05
    if mode == "reflect":
        assert ev[-1] / ev[0] < 0.01 * evn[-1] / evn[0]


def test_reflect_dct1_clusters_the_spectrum_2d():
    g = np.exp(-0.5 * (np.arange(7) - 3.0) ** 2)
    w = np.outer(g, g)
    w[3, 3] += 0.3
    A = linop.Conv2d(w / w.sum(), (20, 20), padding="same", padding_mode="reflect")
    P = dense(preconditioner(A, 0.05))
    ev = preconditioned_eigenvalues(P, normal(A, 0.05))
    assert np.mean(np.abs(ev - 1) < 1e-6) > 0.5          # most eigenvalues are exactly 1
    assert ev.min() > 0.99 and ev.max() < 5                # and none far away


def test_circulant_kind_matches_the_circular_operator(rng):
    w = rng.random((3, 4))
    A = linop.Conv2d(w, (8, 8), padding=((1, 1), (2, 1)), padding_mode="zeros")
    C = linop.Conv2d(w, (8, 8), padding=((1, 1), (2, 1)), padding_mode="circular")
    M = preconditioner(A, 0.2, kind="circulant")
    assert M.kind == "circulant" and not M.exact
    assert np.abs(dense(M) - np.linalg.inv(normal(C, 0.2))).max() <= 1e-10


def test_kronecker_model_for_replicate():
    """Replicate, symmetric, nearly separable: the rank-one Kronecker model, SPD, and close."""
    g = np.exp(-0.5 * (np.arange(7) - 3.0) ** 2 / 1.5)
    h = np.exp(-0.5 * (np.arange(7) - 3.0) ** 2 / 0.5)
    w = np.outer(g, g) + 0.2 * np.outer(h, h)     # symmetric, rank 2
    A = linop.Conv2d(w / w.sum(), (12, 11), padding="same", padding_mode="replicate")
    M = preconditioner(A, 0.05)
    assert M.kind == "kronecker" and not M.exact
    P = dense(M)
    assert_spd(P)
    ev = preconditioned_eigenvalues(P, normal(A, 0.05))
    evn = np.linalg.eigvalsh(normal(A, 0.05))
    assert ev[-1] / ev[0] < 0.05 * evn[-1] / evn[0]
    disk = (np.add.outer((np.arange(7) - 3.0) ** 2, (np.arange(7) - 3.0) ** 2) <= 9.5) * 1.0
    far = linop.Conv2d(disk, (12, 11), padding="same", padding_mode="replicate")
    assert preconditioner(far, 0.05).kind == "none"        # far from separable
    forced = preconditioner(far, 0.05, kind="kronecker")   # still SPD when forced
    assert_spd(dense(forced))


def test_none_where_nothing_helps(rng):
    w = np.diag([5.0, 4.0, 3.0, 2.0, 1.0])
    A = linop.Conv2d(w, (10, 10), padding="same", padding_mode="replicate")
    M = preconditioner(A, 0.1)
    assert M.kind == "none" and "no preconditioner known to help" in M.reason
    x = rng.standard_normal(100)
    assert np.array_equal(M @ x, x)


def test_usable_in_scipy_cg_and_pickles(rng):
    from scipy.sparse.linalg import cg

    g = np.array([1.0, 2.0, 4.0, 2.0, 1.0])
    w = np.outer(g, g)
    w[2, 2] += 3
    A = linop.Conv2d(w / w.sum(), (20, 20), padding="same", padding_mode="reflect")
    M = pickle.loads(pickle.dumps(preconditioner(A, 0.05)))
    N = A.H @ A + 0.05**2 * linop.Conv2d(np.ones((1, 1)), (20, 20))
    b = A.H @ rng.standard_normal(400)
    x, info = cg(N, b, M=M, rtol=1e-10)
    ref = np.linalg.solve(normal(A, 0.05).real, b)
    assert info == 0 and np.linalg.norm(x - ref) <= 1e-8 * np.linalg.norm(ref)


def test_float32_stays_float32(rng):
    w = symmetric_kernel(rng, (1, 1, 3, 3)).astype(np.float32)
    for mode in ("reflect", "zeros", "circular"):
        A = linop.Conv2d(w, (1, 6, 6), padding="same", padding_mode=mode)
        M = preconditioner(A, 0.1)
        assert M.dtype == np.float32 and (M @ np.ones(36, np.float32)).dtype == np.float32
        assert_spd(dense(M))


@pytest.mark.parametrize("kwargs, name", [
    (dict(kind="dct1"), "kind"),          # asymmetric kernel: refused, with the reason
    (dict(kind="nope"), "kind"),
    (dict(damp=-0.1), "damp"),
])
def test_refusals_name_the_parameter(kwargs, name):
    A = linop.Conv2d(np.arange(9.0).reshape(3, 3), (6, 6), padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match=name):
        preconditioner(A, **({"damp": 0.1} | kwargs))


def test_kind_exact_refused_without_a_closed_form():
    A = linop.Conv2d(np.arange(9.0).reshape(3, 3) ** 2, (6, 6), padding=1)
    with pytest.raises(ValueError, match="kind='exact'"):
        preconditioner(A, 0.1, kind="exact")
