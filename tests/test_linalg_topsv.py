"""The exact 2-norm of block-circulant operators through pruned blocks (Gram-iteration bounds).

References: the dense ``numpy.linalg.norm(A.tocsr().toarray(), 2)`` and one
``numpy.linalg.svd`` of all blocks. The sizes have more blocks than the pruning's
threshold, so the bounds, not the plain SVD, decide which blocks are computed.
"""

from __future__ import annotations

import numpy as np
import pytest

import linop
from linop import linalg
from linop.linalg._spectral import top_singular_value


def dense_norm(op) -> float:
    return float(np.linalg.norm(op.tocsr().toarray().astype(np.complex128), 2))


def rel(dtype) -> float:
    return 1e-5 if np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.complex64)) else 1e-12


CASES = [
    # (c_out, c_in, kernel, size, stride, dilation, groups, complex, transposed, dtype)
    (4, 3, 3, 8, 1, 1, 1, False, False, np.float64),
    (6, 6, 3, 8, 2, 1, 2, False, False, np.float64),
    (3, 5, 3, 12, 1, 2, 1, True, False, np.complex128),
    (4, 4, 2, 8, 2, 1, 1, False, True, np.float64),
    (4, 2, 3, 8, 1, 1, 1, False, False, np.float32),
    (2, 4, 3, 10, 1, 1, 2, True, True, np.complex64),
]


@pytest.mark.parametrize("case", CASES)
def test_exact_norm_against_the_dense_norm(case):
    c_out, c_in, k, n, s, d, g, cplx, transposed, dtype = case
    rng = np.random.default_rng(sum(map(hash, map(str, case))) % 2**32)
    w = rng.standard_normal((c_out, c_in // g, k, k))
    if cplx:
        w = w + 1j * rng.standard_normal(w.shape)
    w = w.astype(dtype)
    r = d * (k - 1)
    pad = ((r // 2, r - r // 2),) * 2
    if transposed:
        op = linop.Conv2d(w, (c_in, n, n), padding=pad, padding_mode="circular", stride=s,
                          dilation=d, groups=g).H
    else:
        op = linop.Conv2d(w, (c_in, n, n), padding=pad, padding_mode="circular", stride=s,
                          dilation=d, groups=g)
    result = linalg.opnorm(op)
    assert result.exact
    assert result.value == pytest.approx(dense_norm(op), rel=rel(dtype))


def test_all_blocks_equal_ties():
    # a 1x1 kernel: every frequency has the same block, all bounds tie with the maximum
    w = np.random.default_rng(1).standard_normal((5, 3, 1, 1))
    op = linop.Conv2d(w, (3, 8, 8), padding_mode="circular")
    assert linalg.opnorm(op).value == pytest.approx(np.linalg.norm(w[:, :, 0, 0], 2), rel=1e-13)
    assert linalg.opnorm(op).value == pytest.approx(dense_norm(op), rel=1e-12)


def test_equal_norms_with_different_phases():
    # a shifted delta kernel: the blocks are W times a phase, the same singular values
    w = np.zeros((4, 4, 3, 3))
    w[:, :, 2, 0] = np.random.default_rng(2).standard_normal((4, 4))
    op = linop.Conv2d(w, (4, 9, 9), padding=1, padding_mode="circular")
    assert linalg.opnorm(op).value == pytest.approx(np.linalg.norm(w[:, :, 2, 0], 2), rel=1e-13)


def test_zero_operator():
    op = linop.Conv2d(np.zeros((3, 3, 3, 3)), (3, 8, 8), padding=1, padding_mode="circular")
    assert linalg.opnorm(op).value == 0.0
    assert top_singular_value(np.zeros((20, 1, 3, 3), complex)) == 0.0


def near_ties(rng, count, size, spread, dtype=np.complex128):
    """Blocks U diag(s) V^H whose top singular values are 1 - spread * u, u in [0, 1)."""
    def unitary():
        q, _ = np.linalg.qr(rng.standard_normal((count, size, size))
                            + 1j * rng.standard_normal((count, size, size)))
        return q
    s = np.sort(rng.uniform(0.1, 0.9, (count, size)), axis=1)[:, ::-1].copy()
    s[:, 0] = 1 - spread * rng.uniform(0, 1, count)
    blocks = (unitary() * s[:, None, :]) @ np.conj(unitary()).swapaxes(-1, -2)
    return blocks.astype(dtype)


@pytest.mark.parametrize("spread", [0.0, 1e-15, 1e-10, 1e-6, 1e-3, 0.3])
def test_pruning_is_exact_when_many_blocks_nearly_share_the_top(spread):
    rng = np.random.default_rng(3)
    blocks = near_ties(rng, 300, 12, spread)
    ref = float(np.linalg.svd(blocks, compute_uv=False).max())
    assert top_singular_value(blocks) == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize("shape", [(40, 3, 7), (40, 7, 3), (40, 1, 5), (5, 4, 4)])
def test_rectangular_and_single_precision(shape):
    rng = np.random.default_rng(4)
    blocks = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    ref = float(np.linalg.svd(blocks, compute_uv=False).max())
    assert top_singular_value(blocks) == pytest.approx(ref, rel=1e-14)
    single = blocks.astype(np.complex64)
    ref32 = float(np.linalg.svd(single, compute_uv=False).max())
    assert top_singular_value(single) == pytest.approx(ref32, rel=1e-6)


def test_large_and_tiny_scales():
    rng = np.random.default_rng(5)
    blocks = near_ties(rng, 50, 6, 1e-8)
    for scale in (1e-200, 1e200):
        ref = float(np.linalg.svd(blocks * scale, compute_uv=False).max())
        assert top_singular_value(blocks * scale) == pytest.approx(ref, rel=1e-14)
