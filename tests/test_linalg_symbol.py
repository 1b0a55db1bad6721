"""The block diagonalisation of linop.linalg against dense linear algebra.

Every check compares with the explicit matrix ``tocsr().toarray()`` and
NumPy's dense routines, or with a plain definition of the transforms
(``numpy.fft`` applied channel by channel, written out below).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings

import linop
from linalg_cases import circulant_ops, weight
from linop.linalg._symbol import FrequencyOperator, circulant_symbol

SETTINGS = settings(max_examples=60, deadline=None, database=None)


def tol(dtype) -> float:
    return 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def columns(rng, n, k, dtype):
    return weight(rng, (n, k), dtype)


@SETTINGS
@given(circulant_ops())
def test_factorisation_against_dense(case):
    op, what = case
    S = circulant_symbol(op)
    M = op.tocsr().toarray().astype(np.complex128)
    rng = np.random.default_rng(0)
    x = columns(rng, op.shape[1], 2, op.dtype)
    y = columns(rng, op.shape[0], 2, op.dtype)
    scale = np.abs(M).sum() + 1
    forward = S.from_output_freq(S.blocks @ S.to_input_freq(x))
    BH = np.conj(S.blocks).swapaxes(-1, -2)
    backward = S.from_input_freq(BH @ S.to_output_freq(y))
    assert np.abs(forward - M @ x).max() <= tol(op.dtype) * scale, what
    assert np.abs(backward - M.conj().T @ y).max() <= tol(op.dtype) * scale, what
    if op.dtype.kind == "f":  # real operators give real arrays back
        assert forward.dtype.kind == "f" and backward.dtype.kind == "f", what
    F, G, m, n = S.blocks.shape
    assert (F * G * m, F * G * n) == op.shape, what
    assert S.input_shape == op.input_shape and S.output_shape == op.output_shape


@SETTINGS
@given(circulant_ops())
def test_blocks_have_the_dense_singular_values(case):
    op, what = case
    S = circulant_symbol(op)
    dense = np.linalg.svd(op.tocsr().toarray().astype(np.complex128), compute_uv=False)
    blocks = np.sort(np.linalg.svd(S.blocks.astype(np.complex128),
                                   compute_uv=False).ravel())[::-1]
    assert blocks.shape == dense.shape, what
    assert np.abs(blocks - dense).max() <= tol(op.dtype) * (dense[0] + 1) * 10, what


@SETTINGS
@given(circulant_ops(dtypes=(np.float64, np.complex128)))
def test_transforms_are_unitary_and_inverse(case):
    op, what = case
    S = circulant_symbol(op)
    rng = np.random.default_rng(1)
    for n, to, back in ((op.shape[1], S.to_input_freq, S.from_input_freq),
                        (op.shape[0], S.to_output_freq, S.from_output_freq)):
        x = columns(rng, n, 3, np.complex128)
        X = to(x)
        assert np.allclose(np.linalg.norm(X.reshape(-1, 3), axis=0), np.linalg.norm(x, axis=0))
        assert np.allclose(back(X, real=False), x), what
        # the adjoint identity <U x, X> = <x, U^H X>
        Z = columns(rng, X.size // 3, 3, np.complex128).reshape(X.shape)
        assert np.isclose(np.vdot(Z, X), np.vdot(back(Z, real=False), x)), what


def test_input_transform_is_the_aliased_dft_written_out():
    """U_in of a strided 1-D convolution, by numpy.fft and the layout rule."""
    rng = np.random.default_rng(2)
    c_in, n, s = 2, 6, 3
    op = linop.Conv1d(rng.standard_normal((1, c_in, 3)), (c_in, n), stride=s, padding=1,
                      padding_mode="circular")
    S = circulant_symbol(op)
    x = rng.standard_normal((c_in, n))
    X = np.fft.fft(x, axis=-1) / np.sqrt(n)
    m = n // s
    expected = np.empty((m, 1, s * c_in), complex)
    for mu in range(m):
        for j in range(s):
            for c in range(c_in):
                expected[mu, 0, j * c_in + c] = X[c, mu + j * m]
    got = S.to_input_freq(x.reshape(-1, 1))[..., 0]
    assert np.allclose(got, expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(padding=1), "padding_mode is 'zeros'"),
    (dict(padding=1, padding_mode="reflect"), "padding_mode is 'reflect'"),
    (dict(padding=((1, 0), (1, 1)), padding_mode="circular"), "axis 0 totals 1, not dilation"),
    (dict(padding=1, padding_mode="circular", stride=(3, 1)), "stride 3 on axis 0"),
    (dict(padding=0), "totals 0"),
])
def test_non_circulant_operators_are_refused(kwargs, message):
    op = linop.Conv2d(np.ones((2, 1, 3, 3)), (1, 8, 8), **kwargs)
    with pytest.raises(ValueError, match=message) as info:
        circulant_symbol(op)
    assert "opnorm" in str(info.value)


def test_other_operators_are_refused():
    with pytest.raises(ValueError, match="is not a convolution"):
        circulant_symbol(linop.Upsample((1, 4, 4), scale_factor=2))
    direct = linop.ConvTranspose1d(np.ones((1, 1, 3)), (1, 4), padding=1)
    with pytest.raises(ValueError, match="padding_mode is 'zeros'"):
        circulant_symbol(direct)


def test_one_by_one_kernels_are_circulant_whatever_the_mode():
    rng = np.random.default_rng(3)
    op = linop.Conv2d(rng.standard_normal((3, 2, 1, 1)), (2, 4, 4), stride=2)
    S = circulant_symbol(op)
    dense = np.linalg.svd(op.tocsr().toarray(), compute_uv=False)
    blocks = np.sort(np.linalg.svd(S.blocks, compute_uv=False).ravel())[::-1]
    assert np.allclose(blocks, dense)


def _inverse_case(dtype):
    rng = np.random.default_rng(4)
    w = weight(rng, (3, 3, 3, 3), dtype)
    w[:, :, 1, 1] += 4 * np.eye(3)
    return linop.Conv2d(w, (3, 4, 6), padding=1, padding_mode="circular")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_frequency_operator_inverse_and_adjoint(dtype):
    op = _inverse_case(dtype)
    S = circulant_symbol(op)
    inv = FrequencyOperator(S, np.linalg.inv(S.blocks), domain="output", codomain="input")
    dense = np.linalg.inv(op.tocsr().toarray().astype(np.complex128))
    assert inv.dtype == op.dtype
    assert inv.input_shape == op.output_shape and inv.output_shape == op.input_shape
    assert np.abs(inv.tocsr().toarray() - dense).max() <= tol(dtype) * np.abs(dense).max()
    assert np.abs(inv.H.tocsr().toarray() - dense.conj().T).max() <= tol(dtype) * np.abs(
        dense).max()
    assert inv.H.H.tocsr().shape == dense.shape
    copy = pickle.loads(pickle.dumps(inv.H))
    y = weight(np.random.default_rng(5), op.input_shape, np.complex128)
    assert np.allclose(copy.apply(y), (dense.conj().T @ y.ravel()).reshape(op.output_shape),
                       rtol=tol(dtype) * 10, atol=tol(dtype) * 10)


def test_real_frequency_operator_on_complex_input():
    op = _inverse_case(np.float64)
    S = circulant_symbol(op)
    inv = FrequencyOperator(S, np.linalg.inv(S.blocks), domain="output", codomain="input")
    dense = np.linalg.inv(op.tocsr().toarray())
    y = weight(np.random.default_rng(6), (op.shape[0],), np.complex128)
    got = inv @ y
    assert got.dtype == np.complex128 and np.allclose(got, dense @ y)


def test_frequency_operator_validates_and_sizes():
    op = _inverse_case(np.float64)
    S = circulant_symbol(op)
    with pytest.raises(ValueError, match="matrices must have shape"):
        FrequencyOperator(S, np.zeros((3, 1, 3, 3)), domain="output", codomain="input")
    with pytest.raises(ValueError, match="domain"):
        FrequencyOperator(S, S.blocks, domain="middle", codomain="input")
    inv = FrequencyOperator(S, np.linalg.inv(S.blocks), domain="output", codomain="input")
    with linop.memory_limit(10_000), pytest.raises(linop.MatrixTooLargeError):
        inv.tocsr()
    with linop.memory_limit(1000), pytest.raises(linop.MatrixTooLargeError):
        circulant_symbol(op)


def test_symbol_pickles_and_is_read_only():
    op = _inverse_case(np.float64)
    S = circulant_symbol(op)
    copy = pickle.loads(pickle.dumps(S))
    assert np.array_equal(copy.blocks, S.blocks) and not copy.blocks.flags.writeable
    x = np.random.default_rng(7).standard_normal((op.shape[1], 1))
    assert np.allclose(copy.from_output_freq(copy.blocks @ copy.to_input_freq(x)), op @ x)


def test_frequency_operator_is_a_value_across_copies_and_threads():
    import copy
    from concurrent.futures import ThreadPoolExecutor

    op = _inverse_case(np.float64)
    S = circulant_symbol(op)
    inv = FrequencyOperator(S, np.linalg.inv(S.blocks), domain="output", codomain="input")
    dense = np.linalg.inv(op.tocsr().toarray())
    rng = np.random.default_rng(8)
    ys = [rng.standard_normal(op.shape[0]) for _ in range(8)]
    twin = copy.deepcopy(inv)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda y: (inv @ y, twin.H @ y), ys))
    for y, (a, b) in zip(ys, results):
        assert np.allclose(a, dense @ y) and np.allclose(b, dense.T @ y)
