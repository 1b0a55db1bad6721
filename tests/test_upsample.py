"""Tests of linop.Upsample against a per-pixel reference of torch's interpolate."""

from __future__ import annotations

import copy
import doctest
import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import linop
import linop.upsample
import reference_upsample as ref
from conftest import assert_csr
from linop import Upsample
from linop._interp.matrices import area_matrix, cubic_matrix, linear_matrix, nearest_matrix

MODES_BY_NDIM = {
    1: ("nearest", "nearest-exact", "linear", "area"),
    2: ("nearest", "nearest-exact", "bilinear", "bicubic", "area"),
    3: ("nearest", "nearest-exact", "trilinear", "area"),
}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


def _align_options(mode):
    return (False, True) if mode in INTERPOLATING else (None,)


def _cases():
    """(spatial, size-or-scale keywords) per number of axes: odd sizes, factors
    1.5, 2.5, 0.5, 2, 3, per-axis factors, sizes given (up and down)."""
    return {
        1: [
            ((7,), dict(scale_factor=1.5)),
            ((5,), dict(scale_factor=2.5)),
            ((9,), dict(scale_factor=0.5)),
            ((5,), dict(scale_factor=2)),
            ((3,), dict(scale_factor=3)),
            ((7,), dict(scale_factor=1.2)),  # output == input for a factor != 1
            ((11,), dict(scale_factor=0.29)),
            ((7,), dict(size=4)),
            ((5,), dict(size=13)),
            ((1,), dict(size=3)),
            ((6,), dict(size=1)),
        ],
        2: [
            ((5, 7), dict(scale_factor=1.5)),
            ((3, 5), dict(scale_factor=2.5)),
            ((7, 9), dict(scale_factor=0.5)),
            ((3, 4), dict(scale_factor=(2, 3))),
            ((5, 3), dict(scale_factor=(0.5, 2.5))),
            ((5, 5), dict(scale_factor=2.1)),  # out == 2n: torch's halving shortcut
            ((4, 7), dict(size=(9, 3))),
            ((3, 5), dict(size=5)),
        ],
        3: [
            ((3, 4, 5), dict(scale_factor=1.5)),
            ((3, 2, 3), dict(scale_factor=(2, 0.5, 2.5))),
            ((5, 3, 2), dict(size=(2, 4, 3))),
        ],
    }


def _all_configs():
    out = []
    for d, cases in _cases().items():
        for spatial, kw in cases:
            for mode in MODES_BY_NDIM[d]:
                for ac in _align_options(mode):
                    name = f"{mode}-{spatial}-{kw}-ac{ac}"
                    out.append(pytest.param(spatial, kw, mode, ac, id=name))
    return out


ALL_CONFIGS = _all_configs()


# -- agreement with the per-pixel reference --------------------------------------------
@pytest.mark.parametrize("spatial, kw, mode, ac", ALL_CONFIGS)
def test_apply_matches_reference_float64(spatial, kw, mode, ac, rng):
    x = rng.standard_normal((2, 2) + spatial)
    op = Upsample((2,) + spatial, mode=mode, align_corners=ac, **kw)
    want = ref.interpolate(x, mode=mode, align_corners=ac, **kw)
    got = op.apply(x)
    assert got.shape == want.shape == (2,) + op.output_shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spatial, kw, mode, ac", ALL_CONFIGS[::3])
def test_apply_matches_reference_float32(spatial, kw, mode, ac, rng):
    x = rng.standard_normal((2,) + spatial).astype(np.float32)
    op = Upsample((2,) + spatial, mode=mode, align_corners=ac, dtype=np.float32, **kw)
    got = op.apply(x)
    assert got.dtype == np.float32
    want = ref.interpolate(x[None], mode=mode, align_corners=ac, **kw)[0]  # float32 rules
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "spatial, kw, mode, ac",
    [
        ((5,), dict(scale_factor=2.5), "linear", False),
        ((4,), dict(size=7), "linear", True),
        ((7,), dict(scale_factor=0.5), "area", None),
        ((6,), dict(size=4), "nearest-exact", None),
        ((3, 4), dict(scale_factor=1.5), "bicubic", False),
        ((4, 3), dict(size=(2, 5)), "bicubic", True),
        ((3, 3), dict(scale_factor=(2, 0.5)), "bilinear", True),
        ((3, 5), dict(scale_factor=2.5), "nearest", None),
        ((2, 3, 2), dict(scale_factor=1.5), "trilinear", False),
        ((3, 2, 3), dict(size=(2, 3, 4)), "area", None),
    ],
)
def test_tocsr_equals_reference_matrix(spatial, kw, mode, ac):
    shape = (2,) + spatial
    op = Upsample(shape, mode=mode, align_corners=ac, **kw)
    a = op.tocsr()
    assert_csr(a, np.float64)
    assert a.shape == op.shape
    want = ref.interpolate_matrix(shape, mode=mode, align_corners=ac, **kw)
    np.testing.assert_allclose(a.toarray(), want, rtol=1e-12, atol=1e-13)
    # explicit zeros are dropped: every stored entry matters
    assert np.all(a.data != 0)


# -- values recorded from torch 2.13 (CPU, float64 unless stated) ------------------------
def test_linear_scale_factor_uses_inverse_factor():
    x = np.array([[0.0, 1.0, 4.0, 9.0, 16.0]])
    by_factor = Upsample((1, 5), scale_factor=2.5, mode="linear").apply(x)[0]
    by_size = Upsample((1, 5), size=12, mode="linear").apply(x)[0]
    np.testing.assert_allclose(
        by_factor,
        [0.0, 0.1, 0.5, 0.9, 1.9, 3.1, 4.5, 6.5, 8.5, 11.1, 13.9, 16.0],
        rtol=1e-13, atol=1e-14,
    )
    np.testing.assert_allclose(
        by_size,
        [0.0, 0.125, 0.5416666666666667, 0.9583333333333334, 2.125, 3.375,
         5.041666666666668, 7.125, 9.291666666666668, 12.208333333333334, 15.125, 16.0],
        rtol=1e-13, atol=1e-14,
    )


def test_bicubic_recorded_values():
    x = np.array([[[0.0, 1.0, 4.0, 9.0]]])
    y = Upsample((1, 1, 4), scale_factor=(1, 2), mode="bicubic").apply(x)[0, 0]
    np.testing.assert_allclose(
        y, [-0.10546875, 0.12109375, 0.45703125, 1.609375, 2.828125, 5.44921875,
            7.97265625, 9.52734375], rtol=1e-13, atol=1e-14)
    y = Upsample((1, 1, 4), scale_factor=(1, 1.5), mode="bicubic",
                 align_corners=True).apply(x)[0, 0]
    np.testing.assert_allclose(y, [0.0, 0.288, 1.504, 3.016, 6.264, 9.0], rtol=1e-12, atol=1e-13)


def test_area_and_nearest_recorded_values():
    x = np.array([[0.0, 1.0, 4.0, 9.0, 16.0]])
    np.testing.assert_allclose(
        Upsample((1, 5), size=3, mode="area").apply(x)[0], [0.5, 14 / 3, 12.5], rtol=1e-14)
    np.testing.assert_array_equal(
        Upsample((1, 5), scale_factor=0.5, mode="nearest-exact").apply(x)[0], [1.0, 9.0])
    np.testing.assert_array_equal(
        Upsample((1, 5), scale_factor=0.5, mode="nearest").apply(x)[0], [0.0, 4.0])


def _nearest_indices(op, axis=-1):
    return op.matrices[axis].indices.tolist()


def test_nearest_kernels_of_torch():
    # 1-D (generic kernel): floor(o / 2.1), no shortcut for out == 2 * n
    op = Upsample((1, 5), scale_factor=2.1)
    assert _nearest_indices(op) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    # 2-D with out_h + out_w <= 128 (torch's nearest_idx): halving shortcut
    op = Upsample((1, 5, 5), scale_factor=2.1)
    assert _nearest_indices(op) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # ... and the copy shortcut when out == n although the factor is 1.2
    assert _nearest_indices(Upsample((1, 3, 3), scale_factor=1.2)) == [0, 1, 2]
    assert _nearest_indices(Upsample((1, 3), scale_factor=1.2)) == [0, 0, 1]
    # 2-D with a large output falls back to the generic kernel
    op = Upsample((1, 1, 97), scale_factor=(1.0, 2.007593446029402))
    assert op.size == (1, 194)
    assert _nearest_indices(op)[:11] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_nearest_index_precision_follows_dtype():
    # 23 * 14 / 46 == 7 exactly; torch's float32 arithmetic lands just below
    x = np.arange(14.0)
    y64 = Upsample((1, 14), size=46).apply(x[None])[0]
    y32 = Upsample((1, 14), size=46, dtype=np.float32).apply(x[None].astype(np.float32))[0]
    assert y64[23] == 7.0
    assert y32[23] == 6.0
    assert y32.dtype == np.float32


def test_linear_copies_when_size_unchanged_but_bicubic_does_not(rng):
    op = Upsample((1, 3), scale_factor=1.2, mode="linear")
    assert op.size == (3,)
    np.testing.assert_array_equal(op.tocsr().toarray(), np.eye(3))
    x = rng.standard_normal((1, 3))
    np.testing.assert_array_equal(op.apply(x), x)
    op2 = Upsample((1, 3, 3), scale_factor=1.2, mode="bicubic")
    assert not np.allclose(op2.tocsr().toarray(), np.eye(9))
    want = ref.interpolate(np.eye(9).reshape(9, 1, 3, 3), scale_factor=1.2, mode="bicubic")
    np.testing.assert_allclose(op2.tocsr().toarray().T, want.reshape(9, 9), atol=1e-13)


# -- properties of the 1-D matrices -------------------------------------------------
@pytest.mark.parametrize("n_in, n_out", [(1, 4), (5, 3), (4, 9), (7, 7), (10, 1), (3, 11)])
def test_one_dimensional_matrices_are_canonical_and_preserve_constants(n_in, n_out):
    mats = [
        nearest_matrix(n_in, n_out),
        nearest_matrix(n_in, n_out, exact=True),
        linear_matrix(n_in, n_out),
        linear_matrix(n_in, n_out, align_corners=True),
        cubic_matrix(n_in, n_out),
        cubic_matrix(n_in, n_out, align_corners=True),
        area_matrix(n_in, n_out),
    ]
    for m in mats:
        assert_csr(m, np.float64)
        assert m.shape == (n_out, n_in)
        assert m.has_canonical_format
        assert np.all(m.data != 0)
        # interpolation reproduces constants: every row sums to one
        np.testing.assert_allclose(m.sum(axis=1), np.ones(n_out), rtol=1e-14)


def test_bicubic_border_taps_are_clamped_and_summed():
    m = cubic_matrix(4, 8).toarray()
    # the first output reads taps -2..1 -> clamped to 0, 0, 0, 1 with summed weights
    t = 0.75  # src = 0.25 - 0.5 = -0.25 -> floor -1, t = 0.75
    a = -0.75

    def w(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a

    weights = [w(1 + t), w(t), w(1 - t), w(2 - t)]
    np.testing.assert_allclose(m[0], [weights[0] + weights[1] + weights[2], weights[3], 0, 0],
                               atol=1e-15)


def test_align_corners_maps_corners_to_corners(rng):
    x = rng.standard_normal((2, 5, 4))
    for mode in ("bilinear", "bicubic"):
        y = Upsample((2, 5, 4), size=(9, 7), mode=mode, align_corners=True).apply(x)
        for i, j in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
            np.testing.assert_allclose(y[:, i, j], x[:, i, j], atol=1e-13)
    # a single output pixel reads the first input pixel
    y = Upsample((1, 6), size=1, mode="linear", align_corners=True).apply(np.arange(6.0)[None])
    np.testing.assert_array_equal(y, [[0.0]])


def test_area_downsampling_is_block_average(rng):
    x = rng.standard_normal((3, 6, 9))
    y = Upsample((3, 6, 9), scale_factor=(0.5, 1 / 3), mode="area").apply(x)
    assert y.shape == (3, 3, 3)
    np.testing.assert_allclose(y, x.reshape(3, 3, 2, 3, 3).mean(axis=(2, 4)), rtol=1e-13)


# -- the LinearOperator protocol ---------------------------------------------------------
@pytest.mark.parametrize(
    "shape, kw, mode",
    [
        ((3, 7), dict(scale_factor=2.5), "linear"),
        ((2, 4, 5), dict(scale_factor=1.5), "bicubic"),
        ((2, 3, 4, 2), dict(size=(2, 5, 3)), "trilinear"),
        ((2, 5, 4), dict(scale_factor=0.5), "area"),
    ],
)
def test_matvec_matmat_apply_with_batch_dims(shape, kw, mode, rng):
    op = Upsample(shape, mode=mode, **kw)
    a = op.tocsr()
    x = rng.standard_normal((2, 3) + shape)
    y = op.apply(x)
    assert y.shape == (2, 3) + op.output_shape
    np.testing.assert_allclose(
        y.reshape(6, -1), (a @ x.reshape(6, -1).T).T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.matvec(x[0, 0].ravel()), a @ x[0, 0].ravel(), atol=1e-12)
    X = x.reshape(6, -1).T
    np.testing.assert_allclose(op.matmat(X), a @ X, atol=1e-12)
    np.testing.assert_allclose(op @ X, a @ X, atol=1e-12)
    g = rng.standard_normal((4,) + op.output_shape)
    np.testing.assert_allclose(
        op.apply_adjoint(g).reshape(4, -1), (a.T @ g.reshape(4, -1).T).T, atol=1e-12)
    G = g.reshape(4, -1).T
    np.testing.assert_allclose(op.rmatvec(G[:, 0]), a.T @ G[:, 0], atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(G), a.T @ G, atol=1e-12)
    # a single unbatched array
    np.testing.assert_allclose(op.apply(x[1, 2]), y[1, 2], atol=1e-14)


@pytest.mark.parametrize("batch", [1, 3, 70])
def test_all_axis_layouts_agree_with_explicit_matrix(batch, rng):
    # small and large leading blocks, long and short trailing axes
    op = Upsample((2, 3, 17, 16), scale_factor=(2, 1.5, 0.5), mode="trilinear")
    x = rng.standard_normal((batch,) + op.input_shape)
    a = op.tocsr()
    np.testing.assert_allclose(
        op.apply(x).reshape(batch, -1), (a @ x.reshape(batch, -1).T).T, atol=1e-12)
    y = rng.standard_normal((batch,) + op.output_shape)
    np.testing.assert_allclose(
        op.apply_adjoint(y).reshape(batch, -1), (a.T @ y.reshape(batch, -1).T).T, atol=1e-12)


def test_tocsr_is_kronecker_with_channel_blocks():
    op = Upsample((3, 4, 5), scale_factor=(1.5, 2), mode="bilinear")
    a = op.tocsr()
    m_h, m_w = op.matrices
    block = sp.kron(m_h, m_w).toarray()
    dense = a.toarray()
    n_out, n_in = block.shape
    for c in range(3):
        for c2 in range(3):
            sub = dense[c * n_out:(c + 1) * n_out, c2 * n_in:(c2 + 1) * n_in]
            np.testing.assert_allclose(sub, block if c == c2 else 0.0, atol=0)


# -- adjoints ------------------------------------------------------------------------------
ADJOINT_CASES = [
    ((2, 9), dict(scale_factor=1.5), "nearest"),
    ((2, 5, 7), dict(scale_factor=2.5), "nearest-exact"),
    ((3, 11), dict(scale_factor=0.5), "linear"),
    ((2, 5, 6), dict(size=(8, 3)), "bilinear"),
    ((2, 6, 5), dict(scale_factor=(2, 1.5)), "bicubic"),
    ((1, 3, 4, 5), dict(scale_factor=1.5), "trilinear"),
    ((2, 7, 5), dict(size=(3, 4)), "area"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kw, mode, align",
    [case + (ac,) for case in ADJOINT_CASES for ac in _align_options(case[2])],
)
def test_adjoint_identity(shape, kw, mode, dtype, align, rng):
    op = Upsample(shape, mode=mode, align_corners=align, dtype=dtype, **kw)
    eps = np.finfo(dtype).eps
    for _ in range(3):
        x = rng.standard_normal(op.input_shape).astype(dtype)
        y = rng.standard_normal(op.output_shape).astype(dtype)
        ax = op.apply(x)
        aty = op.apply_adjoint(y)
        assert ax.dtype == dtype and aty.dtype == dtype
        lhs = np.vdot(ax.astype(np.float64), y.astype(np.float64))
        rhs = np.vdot(x.astype(np.float64), aty.astype(np.float64))
        scale = np.linalg.norm(ax) * np.linalg.norm(y) + np.linalg.norm(x) * np.linalg.norm(aty)
        assert abs(lhs - rhs) <= 50 * eps * scale


def test_complex_dtype_acts_on_real_and_imaginary_parts(rng):
    op = Upsample((2, 4, 5), scale_factor=1.5, mode="bicubic", dtype=np.complex128)
    op_r = Upsample((2, 4, 5), scale_factor=1.5, mode="bicubic")
    z = rng.standard_normal((2, 4, 5)) + 1j * rng.standard_normal((2, 4, 5))
    out = op.apply(z)
    assert out.dtype == np.complex128
    np.testing.assert_allclose(out, op_r.apply(z.real) + 1j * op_r.apply(z.imag), atol=1e-13)
    w = rng.standard_normal(op.output_shape) + 1j * rng.standard_normal(op.output_shape)
    np.testing.assert_allclose(np.vdot(op.apply(z), w), np.vdot(z, op.apply_adjoint(w)),
                               rtol=1e-12)
    assert op.tocsr().dtype == np.complex128


def test_float32_operator_stays_float32():
    op = Upsample((2, 6, 5), scale_factor=1.5, mode="bilinear", dtype=np.float32)
    assert op.dtype == np.float32
    assert all(m.dtype == np.float32 for m in op.matrices)
    assert op.tocsr().dtype == np.float32
    x = np.ones(op.input_shape, dtype=np.float32)
    assert op.apply(x).dtype == np.float32
    assert op.matvec(x.ravel()).dtype == np.float32
    assert op.apply_adjoint(op.apply(x)).dtype == np.float32
    # float64 data promotes the result, as for any LinearOperator
    assert op.apply(x.astype(np.float64)).dtype == np.float64
    np.testing.assert_allclose(op.apply(x), 1.0, rtol=1e-6)


# -- attributes and output sizes ----------------------------------------------------------
def test_attributes():
    op = Upsample((3, 5, 7), scale_factor=(1.5, 0.5), mode="bilinear")
    assert op.input_shape == (3, 5, 7)
    assert op.output_shape == (3, 7, 3)
    assert op.size == (7, 3)
    assert op.scale_factor == (1.5, 0.5)
    assert op.mode == "bilinear"
    assert op.align_corners is False
    assert op.shape == (3 * 7 * 3, 3 * 5 * 7)
    assert op.dtype == np.float64
    assert [m.shape for m in op.matrices] == [(7, 5), (3, 7)]
    assert "Upsample" in repr(op) and "bilinear" in repr(op)

    op = Upsample([2, 4], size=6)
    assert op.size == (6,) and op.scale_factor is None
    assert op.align_corners is None and op.mode == "nearest"
    op = Upsample((1, 4, 4, 4), size=(2, 3, 4), mode="trilinear", align_corners=True)
    assert op.align_corners is True and op.output_shape == (1, 2, 3, 4)


@pytest.mark.parametrize(
    "spatial, factor, expected",
    [((7,), 1.5, (10,)), ((5,), 2.5, (12,)), ((9,), 0.5, (4,)), ((100,), 0.29, (28,)),
     ((10,), 0.7, (7,)), ((3, 5), (2.5, 1 / 3), (7, 1)), ((4, 4, 4), 1.25, (5, 5, 5))],
)
def test_output_size_is_floor_of_product(spatial, factor, expected):
    op = Upsample((1,) + spatial, scale_factor=factor)
    assert op.size == expected
    assert op.size == ref.output_size(spatial, scale_factor=factor)


def test_docstring_examples_run():
    result = doctest.testmod(linop.upsample, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# -- validation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (((1, 4),), dict(size=8, scale_factor=2), ValueError, "size.*scale_factor"),
        (((1, 4),), dict(), ValueError, "size.*scale_factor"),
        (((1, 4),), dict(size=0), ValueError, "size"),
        (((1, 4, 4),), dict(size=(3, -1)), ValueError, "size"),
        (((1, 4, 4),), dict(size=(3, 3, 3)), ValueError, "size"),
        (((1, 4),), dict(size=2.5), TypeError, "size"),
        (((1, 4),), dict(size=True), TypeError, "size"),
        (((1, 4),), dict(scale_factor=0), ValueError, "scale_factor"),
        (((1, 4),), dict(scale_factor=-2.0), ValueError, "scale_factor"),
        (((1, 4),), dict(scale_factor=float("inf")), ValueError, "scale_factor"),
        (((1, 4),), dict(scale_factor=float("nan")), ValueError, "scale_factor"),
        (((1, 4),), dict(scale_factor=0.2), ValueError, "scale_factor=0.2"),
        (((1, 4, 4),), dict(scale_factor=(2, 2, 2)), ValueError, "scale_factor"),
        (((1, 4),), dict(scale_factor="2"), TypeError, "scale_factor"),
        (((4,),), dict(size=8, mode="bilinear"), ValueError, "mode='bilinear'"),
        (((4,),), dict(size=8, mode="bicubic"), ValueError, "mode='bicubic'"),
        (((1, 4, 4),), dict(size=8, mode="linear"), ValueError, "mode='linear'"),
        (((4, 4),), dict(size=8, mode="trilinear"), ValueError, "mode='trilinear'"),
        (((1, 4, 4, 4),), dict(size=8, mode="bilinear"), ValueError, "mode='bilinear'"),
        # bare shapes (no channel axis) must fit the mode as well
        (((1, 4),), dict(size=8, mode="bilinear", bare=False), ValueError, "bare=False"),
        (((2, 4),), dict(size=8, mode="linear", bare=True), ValueError, "bare=True"),
        (((1, 4, 4),), dict(size=8, mode="bilinear", bare=True), ValueError, "mode='bilinear'"),
        (((1, 2, 2, 2),), dict(size=8, bare=True), ValueError, "input_shape"),
        (((4,),), dict(size=8, mode="area"), ValueError, "bare=True"),
        (((4,),), dict(size=8, bare="yes"), TypeError, "bare"),
        (((4,),), dict(size=8, bare=1), TypeError, "bare"),
        (((1, 4),), dict(size=8, mode="cubic"), ValueError, "mode"),
        (((1, 4),), dict(size=8, align_corners=True), ValueError, "align_corners"),
        (((1, 4),), dict(size=8, mode="nearest-exact", align_corners=False), ValueError,
         "align_corners"),
        (((1, 4, 4),), dict(size=8, mode="area", align_corners=True), ValueError,
         "align_corners"),
        (((1, 4),), dict(size=8, mode="linear", align_corners="yes"), TypeError,
         "align_corners"),
        (((4,),), dict(size=8), ValueError, "input_shape"),
        (((1, 2, 2, 2, 2),), dict(size=8), ValueError, "input_shape"),
        (((1, 0),), dict(size=8), ValueError, "input_shape"),
        (((1, 4.0),), dict(size=8), TypeError, "input_shape"),
        ((4,), dict(size=8), TypeError, "input_shape"),
        (((1, 4),), dict(size=8, dtype=np.int64), TypeError, "dtype"),
        (((1, 4),), dict(size=8, dtype="float16"), TypeError, "dtype"),
    ],
)
def test_validation_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Upsample(*args, **kwargs)


def test_apply_checks_the_input_shape():
    op = Upsample((2, 4), scale_factor=2)
    with pytest.raises(ValueError, match="shape"):
        op.apply(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="shape"):
        op.apply_adjoint(np.zeros((2, 4)))


def test_public_name():
    assert linop.Upsample is Upsample


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear", "area"])
@pytest.mark.parametrize("factor", [0.3, 0.5, 1.5, 2.0, 3.0, 7.0])
def test_gathered_and_sparse_application_agree_bit_for_bit(mode, factor, rng):
    """The gather path (few taps per row) equals the sparse product of PyTorch's taps
    (duplicates and zero weights kept, as in ``F.interpolate``), inf and NaN included."""
    assert linop._interp.axis.MAX_GATHER_TAPS >= 2  # the gathers are what is tested here
    kwargs = {} if mode in ("nearest", "nearest-exact", "area") else {"align_corners": False}
    op = linop.Upsample((2, 7), scale_factor=factor, mode=mode, **kwargs)
    m = op.axes[0].taps
    x = rng.standard_normal((3, 2, 7))
    x[0, 0, 0], x[1, 1, -1], x[2, 0, 3] = np.inf, np.nan, -np.inf
    expected = (m @ x.reshape(-1, 7).T).T.reshape(3, 2, -1)
    np.testing.assert_array_equal(op.apply(x), expected)
    y = rng.standard_normal((3,) + op.output_shape)
    y[0, 1, 0] = np.inf
    expected_adjoint = (m.T @ y.reshape(-1, op.output_shape[-1]).T).T.reshape(3, 2, 7)
    np.testing.assert_array_equal(op.apply_adjoint(y), expected_adjoint)


# -- bare shapes: no channel axis (issue 20) ------------------------------------------------
# linear, bilinear, bicubic and trilinear fix the number of spatial axes, so a shape with
# exactly that many sizes is bare; nearest, nearest-exact and area take bare=True.
BARE_CONFIGS = [
    pytest.param(spatial, kw, mode, ac,
                 dict(bare=True) if mode in ("nearest", "nearest-exact", "area") else {},
                 id=f"{mode}-{spatial}-{kw}-ac{ac}")
    for spatial, kw, mode, ac in (p.values for p in ALL_CONFIGS[::4])
]


@pytest.mark.parametrize("spatial, kw, mode, ac, bare", BARE_CONFIGS)
def test_bare_shape_matches_reference(spatial, kw, mode, ac, bare, rng):
    op = Upsample(spatial, mode=mode, align_corners=ac, **bare, **kw)
    assert op.bare is True
    out = ref.output_size(spatial, **kw)
    assert op.input_shape == spatial and op.output_shape == out
    assert op.shape == (math.prod(out), math.prod(spatial))
    x = rng.standard_normal((3,) + spatial)
    want = ref.interpolate(x[:, None], mode=mode, align_corners=ac, **kw)[:, 0]
    np.testing.assert_allclose(op.apply(x), want, rtol=1e-12, atol=1e-12)  # a batch of 3
    np.testing.assert_allclose(op.apply(x[0]), want[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op @ x[1].ravel(), want[1].ravel(), rtol=1e-12, atol=1e-12)
    dense = ref.interpolate_matrix((1,) + spatial, mode=mode, align_corners=ac, **kw)
    a = op.tocsr()
    assert_csr(a, np.float64)
    np.testing.assert_allclose(a.toarray(), dense, rtol=1e-12, atol=1e-13)
    # .T and .H: shaped, with the transposed matrix, and the adjoint of the reference
    y = rng.standard_normal((2,) + out)
    for view in (op.T, op.H):
        assert view.input_shape == out and view.output_shape == spatial
        np.testing.assert_allclose(view.apply(y), (y.reshape(2, -1) @ dense).reshape(
            (2,) + spatial), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(view.tocsr().toarray(), dense.T, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.apply_adjoint(y[0]), op.H.apply(y[0]), rtol=0, atol=0)


@pytest.mark.parametrize("shape, kw, bare, expected", [
    ((5, 6), dict(mode="bilinear"), None, True),
    ((5, 6), dict(mode="bicubic"), None, True),
    ((3, 5, 6), dict(mode="bilinear"), None, False),
    ((7,), dict(mode="linear"), None, True),
    ((2, 7), dict(mode="linear"), None, False),
    ((4, 5, 6), dict(mode="trilinear"), None, True),
    ((1, 4, 5, 6), dict(mode="trilinear"), None, False),
    ((5, 6), dict(mode="nearest"), None, False),      # (C, n), as before
    ((5, 6), dict(mode="nearest"), True, True),
    ((5, 6), dict(mode="area"), False, False),
    ((5, 6), dict(mode="nearest-exact"), True, True),
    ((5, 6), dict(mode="bilinear"), True, True),
    ((3, 5, 6), dict(mode="bilinear"), False, False),
])
def test_bare_is_resolved_from_the_mode(shape, kw, bare, expected):
    op = Upsample(shape, scale_factor=2, bare=bare, **kw)
    assert op.bare is expected
    spatial = shape if expected else shape[1:]
    size = tuple(2 * n for n in spatial)
    assert op.size == size
    assert op.output_shape == (size if expected else shape[:1] + size)


def test_bare_and_channel_forms_agree_channel_by_channel(rng):
    # the channel form is the bare operator on every channel: I_C kron A_bare
    bare = Upsample((4, 5), size=(7, 3), mode="bicubic", align_corners=True)
    chan = Upsample((3, 4, 5), size=(7, 3), mode="bicubic", align_corners=True)
    x = rng.standard_normal((3, 4, 5))
    want = ref.interpolate(x[None], size=(7, 3), mode="bicubic", align_corners=True)[0]
    np.testing.assert_allclose(np.stack([bare.apply(c) for c in x]), want, atol=1e-12)
    np.testing.assert_allclose(chan.apply(x), want, atol=1e-12)
    np.testing.assert_allclose(chan.tocsr().toarray(),
                               np.kron(np.eye(3), bare.tocsr().toarray()), atol=0)


def test_bare_operator_pickles_and_copies(rng):
    op = Upsample((6, 5), scale_factor=1.5, mode="area", bare=True)
    x = rng.standard_normal((6, 5))
    want = ref.interpolate(x[None, None], scale_factor=1.5, mode="area")[0, 0]
    for other in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op)):
        assert other.bare is True and other.input_shape == (6, 5)
        np.testing.assert_allclose(other.apply(x), want, rtol=1e-12, atol=1e-12)
        dense = ref.interpolate_matrix((1, 6, 5), scale_factor=1.5, mode="area")
        np.testing.assert_allclose(other.H.apply(other.apply(x)),
                                   (dense.T @ dense @ x.ravel()).reshape(6, 5),
                                   rtol=1e-12, atol=1e-12)
    assert linop.dottest(op, rng=1).passed


@pytest.mark.torch
@pytest.mark.parametrize("shape, kw", [
    ((5, 6), dict(scale_factor=1.5, mode="bilinear")),
    ((5, 6), dict(size=(9, 4), mode="bicubic", align_corners=True)),
    ((11,), dict(scale_factor=0.6, mode="linear")),
    ((3, 4, 5), dict(scale_factor=(2, 0.5, 1.5), mode="trilinear")),
    ((7, 6), dict(scale_factor=1.7, mode="nearest-exact", bare=True)),
    ((7, 6), dict(size=(3, 4), mode="area", bare=True)),
])
def test_bare_shape_matches_torch_live(shape, kw, rng, torch_one_thread):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    kw = dict(kw)
    bare = kw.pop("bare", None)
    op = Upsample(shape, bare=bare, **kw)
    x = rng.standard_normal((2,) + shape)
    want = F.interpolate(torch.from_numpy(x)[:, None], **kw)[:, 0].numpy()
    np.testing.assert_allclose(op.apply(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("module_kw", [
    dict(scale_factor=1.5, mode="bilinear"),
    dict(scale_factor=1.7, mode="bicubic", recompute_scale_factor=True),
    dict(size=(4, 9), mode="bilinear", align_corners=True),
])
def test_from_torch_on_a_bare_shape(module_kw, rng, torch_one_thread):
    torch = pytest.importorskip("torch")
    module = torch.nn.Upsample(**module_kw)
    op = linop.from_torch(module, (5, 6))
    assert op.bare is True and op.input_shape == (5, 6)
    x = rng.standard_normal((5, 6))
    want = module(torch.from_numpy(x)[None, None])[0, 0].numpy()
    assert op.output_shape == want.shape
    np.testing.assert_allclose(op.apply(x), want, rtol=1e-12, atol=1e-12)
    y = rng.standard_normal(want.shape)
    xt = torch.from_numpy(x)[None, None].requires_grad_(True)
    (module(xt) * torch.from_numpy(y)).sum().backward()  # the adjoint, by autograd
    np.testing.assert_allclose(op.apply_adjoint(y), xt.grad[0, 0].numpy(), rtol=1e-12,
                               atol=1e-12)
