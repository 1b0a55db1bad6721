"""linop.dask: operators applied to Dask arrays, against the in-memory operators.

1. the large-image pattern: spatially chunked inputs (several chunks per axis, odd
   sizes, chunks smaller than the halo) for every operator class, stride, dilation,
   padding form and padding mode, forward and adjoint, explicit cases and a seeded sweep;
2. Upsample (every mode) chunked spatially;
3. the batch pattern, mixed batch + spatial chunks, other operators, errors;
4. small pickles: the task graph never carries the cached sparse matrices;
5. a real ``distributed.LocalCluster`` with two worker processes.

Everything is computed with the threaded scheduler except section 5. Results must
equal ``op.apply`` / ``op.apply_adjoint`` to floating-point precision (the sums are the
same; only their order may differ at chunk borders and folded padding).
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import linop  # noqa: E402
import linop.dask as ld  # noqa: E402
from linop._base import ShapedLinearOperator  # noqa: E402

RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.complex64): 2e-5,
        np.dtype(np.float64): 1e-12, np.dtype(np.complex128): 1e-12}
RTOL_MAX = max(RTOL.values())


def random_array(rng, shape, dtype=np.float64):
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def compute(a):
    return a.compute(scheduler="threads")


def check(op, xv, chunks, *, adjoint=False, spatial=True):
    """Dask result == in-memory result; returns the relative error."""
    x = da.from_array(xv, chunks=chunks)
    lazy = ld.apply_adjoint(op, x) if adjoint else ld.apply(op, x)
    ref = op.apply_adjoint(xv) if adjoint else op.apply(xv)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == ref.shape and lazy.dtype == ref.dtype, (lazy, ref.shape, ref.dtype)
    if spatial:  # the output is chunked too: nothing was gathered into one block
        assert any(len(c) > 1 for c in lazy.chunks[-1:]), lazy.chunks
    got = compute(lazy)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    err = float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))
    # a float32 operator's folded padding taps are float32 sums in the in-memory matrix
    tol = max(RTOL[np.dtype(ref.dtype)], RTOL[np.dtype(op.dtype)])
    assert err <= tol, f"relative error {err:.2e}"
    return err


def both_ways(op, rng, chunks, batch=(), dtype=np.float64):
    """`check` forward and adjoint; returns the larger relative error."""
    return max(
        check(op, random_array(rng, batch + op.input_shape, dtype), chunks),
        check(op, random_array(rng, batch + op.output_shape, dtype), chunks, adjoint=True),
    )


# ============================================================================
# 1. convolutions, spatially chunked
# ============================================================================
CONV_CASES = [
    # (nd, input spatial, kernel, keywords, chunks of the spatial axes)
    (1, (37,), (5,), dict(padding=2), (7,)),
    (1, (40,), (3,), dict(stride=2, padding=1, padding_mode="reflect"), (9,)),
    (1, (41,), (4,), dict(stride=3, dilation=2, padding=(5,), padding_mode="circular"), (6,)),
    (1, (33,), (3,), dict(stride=4, padding="valid"), (5,)),  # the stride skips pixels
    (1, (29,), (5,), dict(dilation=3, padding="same", padding_mode="replicate"), (2,)),
    (1, (30,), (2,), dict(padding=((0, 3),), padding_mode="reflect"), (4,)),
    (2, (23, 19), (3, 3), dict(padding=1), (6, 5)),
    (2, (23, 19), (5, 5), dict(padding="same", padding_mode="reflect"), (7, 4)),
    (2, (24, 21), (3, 2), dict(stride=2, padding=((1, 2), (0, 1)), padding_mode="replicate"),
     (5, 6)),
    (2, (25, 22), (3, 3), dict(stride=(3, 2), dilation=(2, 1), padding=(2, 1),
                               padding_mode="circular"), (8, 5)),
    (2, (19, 20), (5, 3), dict(dilation=2, padding="same", padding_mode="circular"), (3, 3)),
    (2, (21, 17), (4, 4), dict(stride=2, padding="valid"), (6, 5)),
    (3, (9, 10, 11), (3, 3, 3), dict(padding=1, padding_mode="reflect"), (4, 3, 5)),
    (3, (10, 9, 8), (2, 3, 2), dict(stride=(2, 1, 2), padding=((1, 0), (1, 1), (0, 1)),
                                    padding_mode="replicate"), (3, 4, 3)),
    (3, (8, 9, 10), (3, 3, 3), dict(dilation=2, padding="same", padding_mode="circular"),
     (3, 3, 4)),
]


def _ids(cases):
    return [f"{c[0]}d-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("nd,spatial,k,kw,chunks", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_bare_kernel(nd, spatial, k, kw, chunks):
    rng = np.random.default_rng(len(spatial) + sum(spatial))
    op = getattr(linop, f"Conv{nd}d")(rng.standard_normal(k), spatial, **kw)
    assert both_ways(op, rng, chunks) <= RTOL_MAX


@pytest.mark.parametrize("nd,spatial,k,kw,chunks", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_channels_groups_batch(nd, spatial, k, kw, chunks):
    rng = np.random.default_rng(sum(spatial))
    w = rng.standard_normal((4, 1) + k)  # 2 groups: 2 -> 4 channels
    op = getattr(linop, f"Conv{nd}d")(w, (2,) + spatial, groups=2, **kw)
    # batch axis chunked too, channel axis chunked (it is made one chunk)
    assert both_ways(op, rng, (1, 1) + chunks, batch=(2,)) <= RTOL_MAX


TCONV_CASES = [
    (1, (17,), (3,), dict(stride=2, padding=1, output_padding=1), (4,)),
    (1, (12,), (4,), dict(stride=3, dilation=2, padding=((2, 1),), output_padding=2), (3,)),
    (1, (21,), (3,), dict(stride=1, dilation=3, output_padding=2), (4,)),  # op >= stride
    (2, (9, 11), (4, 4), dict(stride=2, padding=1), (3, 4)),
    (2, (10, 8), (3, 5), dict(stride=(2, 3), dilation=(1, 2), padding=(1, 2),
                              output_padding=(1, 2)), (4, 3)),
    (2, (7, 9), (3, 3), dict(stride=4, padding=0, output_padding=3), (2, 2)),  # gaps
    (3, (5, 6, 4), (3, 2, 3), dict(stride=2, padding=(1, 0, 1), output_padding=(1, 1, 0)),
     (2, 3, 2)),
]


@pytest.mark.parametrize("nd,spatial,k,kw,chunks", TCONV_CASES, ids=_ids(TCONV_CASES))
def test_conv_transpose(nd, spatial, k, kw, chunks):
    rng = np.random.default_rng(sum(spatial) + 1)
    cls = getattr(linop, f"ConvTranspose{nd}d")
    assert both_ways(cls(rng.standard_normal(k), spatial, **kw), rng, chunks) <= RTOL_MAX
    w = rng.standard_normal((4, 3) + k)  # (C_in, C_out/groups, *k), 2 groups -> 6 out
    assert both_ways(cls(w, (4,) + spatial, groups=2, **kw), rng, (4,) + chunks) <= RTOL_MAX


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_transpose_and_adjoint_of_padded_conv(mode):
    """``Conv.T`` folds its padding mode's border back; ``.H`` of a complex conv."""
    rng = np.random.default_rng(5)
    w = random_array(rng, (3, 2, 3, 4), np.complex128)
    A = linop.Conv2d(w, (2, 19, 22), stride=(2, 1), padding=((2, 1), (3, 2)),
                     dilation=(1, 2), padding_mode=mode)
    for op in (A, A.T, A.H):
        assert both_ways(op, rng, (2, 4, 5), dtype=np.complex128) <= RTOL_MAX


def test_float32_and_mixed_dtypes():
    rng = np.random.default_rng(6)
    op = linop.Conv2d(rng.standard_normal((5, 5)).astype(np.float32), (30, 26),
                      padding="same", padding_mode="reflect")
    assert both_ways(op, rng, (7, 6), dtype=np.float32) <= RTOL_MAX  # float32 end to end
    check(op, rng.standard_normal((30, 26)), (8, 8))  # float64 data: float64 result
    check(op, rng.integers(0, 9, (30, 26)), (8, 8))  # ints: float result


def test_seeded_sweep_every_class_and_form():
    """Random operators (class, dims, stride, dilation, padding form, mode, groups,
    dtype, .T/.H) on random, often tiny, chunks; every one must match."""
    rng = np.random.default_rng(2024)
    forms = ["int", "axis", "pairs", "same", "valid"]
    done = 0
    while done < 30:
        nd = int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s = tuple(int(v) for v in rng.integers(1, 4, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        n = tuple(int(v) for v in rng.integers(5, 14 if nd < 3 else 8, nd))
        form = forms[rng.integers(5)]
        pad = {"int": int(rng.integers(0, 3)),
               "axis": tuple(int(v) for v in rng.integers(0, 3, nd)),
               "pairs": tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (nd, 2))),
               "same": "same", "valid": "valid"}[form]
        mode = ["zeros", "reflect", "replicate", "circular"][rng.integers(4)]
        groups = int(rng.integers(1, 3))
        dtype = [np.float64, np.complex128][rng.integers(2)]
        w = random_array(rng, (2 * groups, int(rng.integers(1, 3))) + k, dtype)
        try:
            if rng.random() < 0.35:
                op_ = tuple(int(rng.integers(0, max(a, b))) for a, b in zip(s, d))
                op = getattr(linop, f"ConvTranspose{nd}d")(
                    w, (2 * groups,) + n, stride=s, dilation=d, groups=groups,
                    padding=pad if form != "same" else 0, output_padding=op_)
            else:
                op = getattr(linop, f"Conv{nd}d")(
                    w, (w.shape[1] * groups,) + n, stride=s if form != "same" else 1,
                    dilation=d, padding=pad, padding_mode=mode, groups=groups)
                op = [op, op.T, op.H][rng.integers(3)]
        except ValueError:
            continue  # e.g. reflect padding >= size, or an empty output
        chunks = tuple(int(rng.integers(1, max(2, m // 2 + 1))) for m in op.input_shape[1:])
        out_chunks = tuple(int(rng.integers(1, max(2, m // 2 + 1))) for m in op.output_shape[1:])
        check(op, random_array(rng, op.input_shape, dtype), (1,) + chunks, spatial=False)
        check(op, random_array(rng, op.output_shape, dtype), (1,) + out_chunks, adjoint=True,
              spatial=False)
        done += 1


def test_chunks_smaller_than_the_halo_are_merged():
    rng = np.random.default_rng(7)
    # receptive field 1 + 3*(5-1) = 13 pixels; chunks of 1 and 2 pixels
    op = linop.Conv2d(rng.standard_normal((5, 5)), (40, 31), dilation=3, padding="same",
                      padding_mode="reflect")
    x = da.from_array(rng.standard_normal((40, 31)), chunks=((1,) * 40, (2,) * 15 + (1,)))
    y = ld.apply(op, x)
    assert 1 < len(y.chunks[0]) < 40 and min(y.chunks[0][:-1]) >= 12
    np.testing.assert_allclose(compute(y), op.apply(x.compute()), rtol=0, atol=1e-12)
    z = ld.apply_adjoint(op, x)
    np.testing.assert_allclose(compute(z), op.apply_adjoint(x.compute()), rtol=0, atol=1e-12)


def test_stride_aligned_output_chunks():
    """With stride 2 and 'same'-like padding every output chunk is half an input chunk."""
    rng = np.random.default_rng(8)
    op = linop.Conv2d(rng.standard_normal((3, 3)), (64, 48), stride=2, padding=1)
    x = da.from_array(rng.standard_normal((64, 48)), chunks=(16, 12))
    y = ld.apply(op, x)
    assert y.chunks == ((8,) * 4, (6,) * 4)
    np.testing.assert_allclose(compute(y), op.apply(x.compute()), rtol=0, atol=1e-12)


# ============================================================================
# 2. Upsample, spatially chunked
# ============================================================================
UPSAMPLE_CASES = [
    ((2, 19), dict(scale_factor=2.5, mode="nearest"), (1, 4)),
    ((2, 19), dict(size=7, mode="nearest-exact"), (2, 5)),
    ((2, 21), dict(scale_factor=1.6, mode="linear", align_corners=True), (1, 4)),
    ((1, 13, 11), dict(scale_factor=(2.0, 0.5), mode="bilinear"), (1, 4, 3)),
    ((2, 13, 11), dict(size=(29, 17), mode="bicubic"), (1, 3, 4)),
    ((2, 13, 11), dict(scale_factor=3, mode="bicubic", align_corners=True), (2, 5, 2)),
    ((1, 17, 15), dict(size=(5, 6), mode="area"), (1, 4, 4)),
    ((1, 7, 6, 8), dict(scale_factor=(1.5, 2.0, 0.75), mode="trilinear"), (1, 2, 3, 3)),
    ((1, 7, 6, 5), dict(size=(9, 4, 10), mode="nearest"), (1, 3, 2, 2)),
    # bare shapes, no channel axis (issue 20)
    ((21,), dict(scale_factor=1.6, mode="linear"), (4,)),
    ((13, 11), dict(size=(29, 17), mode="bicubic"), (3, 4)),
    ((7, 6, 8), dict(scale_factor=(1.5, 2.0, 0.75), mode="trilinear"), (2, 3, 3)),
    ((17, 15), dict(size=(5, 6), mode="area", bare=True), (4, 4)),
]


@pytest.mark.parametrize("shape,kw,chunks", UPSAMPLE_CASES,
                         ids=[c[1]["mode"] for c in UPSAMPLE_CASES])
def test_upsample(shape, kw, chunks):
    if not isinstance(linop.Upsample, type):
        pytest.skip("linop.Upsample is not available")
    rng = np.random.default_rng(len(shape))
    op = linop.Upsample(shape, **kw)
    assert both_ways(op, rng, chunks) <= RTOL_MAX
    assert both_ways(op, rng, (2,) + chunks, batch=(3,)) <= RTOL_MAX


# ============================================================================
# 3. the batch pattern, other operators, errors
# ============================================================================
def test_batch_pattern_keeps_batch_chunks():
    rng = np.random.default_rng(9)
    op = linop.Conv2d(rng.standard_normal((6, 3, 3, 3)), (3, 16, 16), stride=2, padding=1)
    x = da.from_array(rng.standard_normal((10, 3, 16, 16)), chunks=(3, 3, 16, 16))
    y = ld.apply(op, x)
    assert y.chunks == ((3, 3, 3, 1), (6,), (8,), (8,))
    np.testing.assert_allclose(compute(y), op.apply(x.compute()), rtol=0, atol=1e-12)
    z = ld.apply_adjoint(op, y)
    assert z.chunks == ((3, 3, 3, 1), (3,), (16,), (16,))
    np.testing.assert_allclose(compute(z), op.apply_adjoint(compute(y)), rtol=0, atol=1e-12)
    # several batch axes, chunked spatial axes too
    x = da.from_array(rng.standard_normal((2, 3, 3, 16, 16)), chunks=(1, 2, 3, 5, 7))
    np.testing.assert_allclose(compute(ld.apply(op, x)), op.apply(x.compute()),
                               rtol=0, atol=1e-12)


def test_numpy_input_is_accepted():
    op = linop.Conv1d([1.0, 2.0, 3.0], (5,), padding=1)
    y = ld.apply(op, np.ones(5))
    assert isinstance(y, da.Array)
    np.testing.assert_allclose(compute(y), [5.0, 6.0, 6.0, 6.0, 3.0])


class _Scale(ShapedLinearOperator):
    """A user operator with no chunked implementation."""

    def __init__(self, shape):
        super().__init__(shape, shape, np.float64)

    def _apply_cols(self, x):
        return 2.0 * x

    def _apply_adjoint_cols(self, y):
        return 2.0 * y


def test_other_operators():
    rng = np.random.default_rng(10)
    op = _Scale((4, 6))
    x = da.from_array(rng.standard_normal((5, 4, 6)), chunks=(2, 4, 6))
    np.testing.assert_allclose(compute(ld.apply(op, x)), 2 * x.compute())
    with pytest.warns(UserWarning, match="single chunk"):
        y = ld.apply_adjoint(op, x.rechunk((2, 2, 3)))
    np.testing.assert_allclose(compute(y), 2 * x.compute())
    # a plain SciPy LinearOperator on (*batch, n) arrays
    from scipy.sparse.linalg import aslinearoperator

    m = rng.standard_normal((3, 7))
    lo = aslinearoperator(m)
    v = da.from_array(rng.standard_normal((9, 7)), chunks=(4, 3))
    np.testing.assert_allclose(compute(ld.apply(lo, v)), v.compute() @ m.T)
    w = da.from_array(rng.standard_normal((9, 3)), chunks=(4, 3))
    np.testing.assert_allclose(compute(ld.apply_adjoint(lo, w)), w.compute() @ m)


def test_errors():
    op = linop.Conv2d(np.ones((3, 3)), (8, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 8, 8\)"):
        ld.apply(op, da.ones((8, 7)))
    with pytest.raises(ValueError, match=r"y must have shape \(\*batch, 6, 6\)"):
        ld.apply_adjoint(op, da.ones((8, 8)))
    with pytest.raises(TypeError, match="LinearOperator"):
        ld.apply(np.eye(3), da.ones(3))
    with pytest.raises(ValueError, match="nbytes"):
        ld.set_cache_size(-1)


def test_linop_does_not_import_dask():
    code = "import sys, linop; assert 'linop.dask' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


# ============================================================================
# 4. small pickles
# ============================================================================
def _used_conv():
    rng = np.random.default_rng(11)
    op = linop.Conv2d(rng.standard_normal((5, 5)), (256, 256), padding=2,
                      padding_mode="reflect", method="toeplitz")
    op.apply(np.ones((256, 256)))
    op.apply_adjoint(np.ones((256, 256)))  # the explicit matrix and its transpose are cached
    return op


def test_task_graph_is_small_for_a_used_operator():
    cloudpickle = pytest.importorskip("cloudpickle")
    op = _used_conv()
    x = da.ones((256, 256), chunks=64)
    for y in (ld.apply(op, x), ld.apply_adjoint(op, x), ld.apply(op, da.ones((4, 256, 256)))):
        size = len(cloudpickle.dumps(dict(y.__dask_graph__())))
        assert size < 200_000, size
    # Its cached matrices (two CSR matrices of 1.6e6 entries) are not shipped.
    memo = op._engine._impl._memo
    assert memo.peek("A").data.nbytes + memo.peek("AT").data.nbytes > 2_000_000


def test_cache_is_bounded():
    rng = np.random.default_rng(12)
    op = linop.Conv2d(rng.standard_normal((3, 3)), (40, 40), padding=1)
    x = da.from_array(rng.standard_normal((40, 40)), chunks=(7, 9))
    ld.clear_cache()
    try:
        ld.set_cache_size(0)  # keeps only the last operator
        np.testing.assert_allclose(compute(ld.apply(op, x)), op.apply(x.compute()),
                                   rtol=0, atol=1e-12)
        assert len(ld._cache._cache) == 1
    finally:
        ld.set_cache_size(512 * 2**20)
        ld.clear_cache()


def test_operator_pickles_small_after_use():
    op = _used_conv()
    data = pickle.dumps(op)
    assert len(data) < 20_000, len(data)
    back = pickle.loads(data)
    x = np.random.default_rng(13).standard_normal((256, 256))
    np.testing.assert_array_equal(back.apply(x), op.apply(x))


# ============================================================================
# 5. a real distributed cluster: two worker processes
# ============================================================================
def test_local_cluster_two_processes():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(14)
    conv = linop.Conv2d(rng.standard_normal((2, 3, 3, 3)), (3, 37, 41), stride=2, padding=1,
                        padding_mode="circular")
    conv.apply(np.ones(conv.input_shape))  # cached matrices: never shipped
    tconv = linop.ConvTranspose2d(rng.standard_normal((3, 2, 4, 4)), (3, 19, 21), stride=2,
                                  padding=1, output_padding=1)
    x = da.random.default_rng(15).standard_normal((3, 37, 41), chunks=(3, 10, 9))
    xb = da.random.default_rng(16).standard_normal((6, 3, 37, 41), chunks=(2, 3, 37, 41))
    t = da.random.default_rng(17).standard_normal((3, 19, 21), chunks=(3, 6, 5))
    with dask.config.set({"distributed.worker.daemon": True, "logging.distributed": "error"}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            y = ld.apply(conv, x)
            lazy = [x, xb, t, y, ld.apply_adjoint(conv, y), ld.apply(conv, xb),
                    ld.apply(tconv, t), ld.apply_adjoint(tconv, ld.apply(tconv, t))]
            if isinstance(linop.Upsample, type):
                ups = linop.Upsample((3, 37, 41), scale_factor=1.5, mode="bicubic")
                lazy.append(ld.apply_adjoint(ups, ld.apply(ups, x)))
            got = client.compute(lazy, sync=True)
            pids = client.run(lambda: __import__("os").getpid())
    assert len(set(pids.values())) == 2
    xv, xbv, tv, yv, zv, ybv, tyv, tzv = got[:8]
    np.testing.assert_allclose(yv, conv.apply(xv), rtol=0, atol=1e-12)
    np.testing.assert_allclose(zv, conv.apply_adjoint(yv), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ybv, conv.apply(xbv), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tyv, tconv.apply(tv), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tzv, tconv.apply_adjoint(tconv.apply(tv)), rtol=0, atol=1e-11)
    if len(got) > 8:
        np.testing.assert_allclose(got[8], ups.apply_adjoint(ups.apply(xv)), rtol=0,
                                   atol=1e-12)
