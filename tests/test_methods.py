"""The application methods: FFT against the naive reference, bounded workspaces, and "auto".

``tests/test_conv.py`` compares every method with the naive loop reference
over drawn configurations; this module adds what is particular to the
methods: the FFT's tiles and its fallback for non-finite data, the memory
every method holds while applying a large operator (measured with
tracemalloc), and the choices of ``method="auto"`` on a table of
geometries, against the cost model's documented rules.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linop
import linop._conv.fft
import linop._conv.im2col
from linop._conv import plan as P
from linop.testing.strategies import conv_configs

try:
    import reference as R
except ImportError:  # tests/ imported as a package
    from tests import reference as R

RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.complex64): 2e-5,
        np.dtype(np.float64): 1e-12, np.dtype(np.complex128): 1e-12}


def _high(dtype):
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


def _reference(config, x):
    """The naive loop reference of a drawn configuration, on a batch."""
    w = config.weight()
    if config.bare:
        w = w[None, None]
        x = x[:, None]
    kw = dict(stride=config.stride_tuple, padding=config.padding_pairs,
              dilation=config.dilation_tuple, groups=config.groups)
    hi = _high(config.dtype)
    if config.transpose:
        f = R.conv_transpose_nd
        kw["output_padding"] = config.output_padding_tuple
    else:
        f = R.conv_nd
        kw["padding_mode"] = config.padding_mode
    ref = np.stack([f(xi.astype(hi), w.astype(hi), **kw) for xi in x])
    bound = np.stack([f(np.abs(xi).astype(np.float64), np.abs(w).astype(np.float64), **kw)
                      for xi in x])
    if config.bare:
        ref, bound = ref[:, 0], bound[:, 0]
    return ref, bound


@settings(max_examples=120, deadline=None, derandomize=True)
@given(config=conv_configs(transpose=None, methods=["fft"], max_size=None),
       budget=st.sampled_from([None, 3000]))
def test_fft_matches_the_reference(config, budget):
    """Forward and adjoint of method="fft", also in tiles (a tiny FFT budget)."""
    op = config.build()
    rng = np.random.default_rng(config.seed % 2**32)
    x = config.weight().dtype.type(1) * rng.standard_normal((2,) + op.input_shape)
    x = x.astype(config.dtype)
    if budget is not None:
        saved = linop._conv.fft.FFT_BUFFER_BYTES
        linop._conv.fft.FFT_BUFFER_BYTES = budget
    try:
        got = op.apply(x)
        y = rng.standard_normal((2,) + op.output_shape).astype(config.dtype)
        got_adjoint = op.apply_adjoint(y)
    finally:
        if budget is not None:
            linop._conv.fft.FFT_BUFFER_BYTES = saved
    ref, bound = _reference(config, x)
    tol = RTOL[np.dtype(config.dtype)] * max(float(bound.max()), 1e-300)
    assert got.dtype == op.dtype and got.shape == ref.shape
    assert np.abs(got - ref).max() <= tol
    # the adjoint against the dense matrix of the reference, column by column
    dense = op.tocsr().toarray()
    want = (dense.conj().T @ y.reshape(2, -1).T).T.reshape(got_adjoint.shape)
    scale = float((np.abs(dense).T @ np.abs(y.reshape(2, -1)).T).max()) or 1.0
    assert np.abs(got_adjoint - want).max() <= RTOL[np.dtype(config.dtype)] * scale
    assert linop.dottest(op, rng=0, raise_error=False).passed


def test_fft_tiles_cover_the_output(monkeypatch):
    monkeypatch.setattr(linop._conv.fft, "FFT_BUFFER_BYTES", 20_000)
    w = np.random.default_rng(1).standard_normal((2, 3, 5, 4))
    op = linop.Conv2d(w, (3, 40, 33), padding=(2, 1), stride=(2, 1), dilation=(1, 2),
                      padding_mode="circular", method="fft")
    tile, _, rows = linop._conv.fft.fft_tile_shape(op.geometry, 3, 2, 1, 8)
    assert tile[0] < op.output_shape[1] // 4  # many tiles of the first axis ...
    assert rows < -(-op.output_shape[1] // tile[0])  # ... in several batches
    x = np.random.default_rng(2).standard_normal((3, 40, 33))
    ref = R.conv_nd(x, w, stride=(2, 1), padding=((2, 2), (1, 1)), dilation=(1, 2),
                    padding_mode="circular")
    np.testing.assert_allclose(op.apply(x), ref, rtol=1e-12, atol=1e-12)
    im2col = linop.Conv2d(w, (3, 40, 33), padding=(2, 1), stride=(2, 1), dilation=(1, 2),
                          padding_mode="circular", method="im2col")
    y = np.random.default_rng(3).standard_normal(op.output_shape)
    np.testing.assert_allclose(op.apply_adjoint(y), im2col.apply_adjoint(y), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("stride, taps", [(1, 31), (3, 301), (2, 4)])
def test_fft_segments_a_long_signal(stride, taps):
    """A long 1-D signal goes through short transforms (overlap-save and overlap-add)."""
    rng = np.random.default_rng(taps)
    n = 20_000
    w = rng.standard_normal((2, 3, taps))
    op = linop.Conv1d(w, (3, n), padding=((taps // 2, 5),), stride=stride, method="fft")
    tile, lengths, _ = linop._conv.fft.fft_tile_shape(op.geometry, 3, 2, 1, 8)
    assert tile[0] < op.output_shape[1] // 2 and lengths[0] < n  # several segments
    x = rng.standard_normal((3, n))
    ref = R.conv_nd(x, w, stride=stride, padding=((taps // 2, 5),))
    np.testing.assert_allclose(op.apply(x), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    im2col = linop.Conv1d(w, (3, n), padding=((taps // 2, 5),), stride=stride,
                          method="im2col")
    y = rng.standard_normal(op.output_shape)
    want = im2col.apply_adjoint(y)
    np.testing.assert_allclose(op.apply_adjoint(y), want, rtol=1e-10,
                               atol=1e-10 * np.abs(want).max())


def test_fft_keeps_float32_and_handles_non_finite_input():
    w = np.random.default_rng(4).standard_normal((5, 5)).astype(np.float32)
    op = linop.Conv2d(w, (30, 30), padding=2, method="fft")
    x = np.ones((30, 30), dtype=np.float32)
    assert op.apply(x).dtype == np.float32
    x[3, 4] = np.inf
    direct = linop.Conv2d(w, (30, 30), padding=2, method="im2col")
    got = op.apply(x)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(direct.apply(x)))
    assert np.isfinite(got).sum() == 30 * 30 - 25  # only the 5x5 window around the inf
    with pytest.raises(ValueError, match="finite") as info:
        linop.Conv2d(np.array([[1.0, np.inf]]), (4, 4), method="fft")
    assert info.value.parameter == "method"


def _workspace(op, x, adjoint):
    """Peak bytes allocated while applying, beyond the input and the output."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        out = op.apply_adjoint(x) if adjoint else op.apply(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before - out.nbytes


@pytest.mark.parametrize("method", ["im2col", "fft"])
@pytest.mark.parametrize("adjoint", [False, True])
def test_large_operators_apply_within_a_bounded_workspace(monkeypatch, method, adjoint):
    monkeypatch.setattr(linop._conv.im2col, "PATCH_BUFFER_BYTES", 2**20)
    monkeypatch.setattr(linop._conv.fft, "FFT_BUFFER_BYTES", 2**20)
    n, k = 768, 9
    op = linop.Conv2d(np.ones((k, k)) / k**2, (n, n), padding="same", padding_mode="reflect",
                      method=method)
    x = np.ones((n, n))
    padded = (n + k - 1) ** 2 * 8
    # the patches of the whole image would be 81 x 4.5 MiB = 365 MiB
    workspace = _workspace(op, x, adjoint)
    assert workspace <= padded + 4 * 2**20, workspace / 2**20
    # and the result is right: a constant image stays constant under a mean filter
    result = op.apply_adjoint(x) if adjoint else op.apply(x)
    if not adjoint:
        np.testing.assert_allclose(result, 1.0, rtol=1e-12)
    else:  # the adjoint of reflect padding sums to the same total
        assert abs(result.sum() - n * n) < 1e-6 * n * n


# -- "auto": the cost model's rules ------------------------------------------------------
AUTO_TABLE = [
    # (weight shape, input shape, kwargs, method "auto" must take, why)
    ((3, 3), (512, 512), dict(padding=1), "toeplitz",
     "one channel, a small kernel: the matrix fits the budget and is the fastest to apply"),
    ((31, 31), (1024, 1024), dict(padding="same"), "fft",
     "a large kernel: the FFT's cost does not grow with the taps"),
    ((1001,), (10**6,), dict(padding="same"), "fft",
     "1-D, a thousand taps: the matrix exceeds the budget, the FFT is fastest"),
    ((9, 9), (1024, 1024), dict(padding="same", padding_mode="reflect"), "fft",
     "9x9 on a megapixel: the matrix (1.9 GiB with its transpose) exceeds the budget"),
    ((32, 16, 3, 3), (16, 128, 128), dict(padding=1), "im2col",
     "many channels, a small kernel: one GEMM over the channels"),
]


@pytest.mark.parametrize("wshape, shape, kwargs, method, why", AUTO_TABLE,
                         ids=[t[3] + "-" + "x".join(map(str, t[1])) for t in AUTO_TABLE])
def test_auto_choices(wshape, shape, kwargs, method, why):
    w = np.ones(wshape, dtype=np.float32 if len(wshape) == 4 else np.float64)
    op = getattr(linop, f"Conv{len(shape) if len(wshape) != 4 else 2}d")(w, shape, **kwargs)
    assert op.method == method, (why, str(op.plan))
    plan = op.plan
    assert plan.chosen_by == "auto" and plan.method == method
    # the documented rule: least build + APPLICATIONS * apply among the eligible methods of
    # the engine in use
    eligible = [e for e in plan.estimates if e.eligible and e.engine == plan.engine]
    assert min(eligible, key=lambda e: e.expected()).method == method
    assert all(e.build >= 0 and e.apply > 0 and e.memory > 0 for e in plan.estimates)


def test_auto_never_builds_a_matrix_beyond_its_budget():
    w = np.ones((3, 3))
    # 2048^2, 3x3: 37.7 million entries, about 860 MiB with the transpose
    op = linop.Conv2d(w, (2048, 2048), padding=1)
    assert op.method != "toeplitz"
    assert op.plan["toeplitz"].memory > P.AUTO_MATRIX_BYTES and not op.plan["toeplitz"].eligible
    assert "exceed the budget" in op.plan["toeplitz"].note
    # a tight memory limit excludes it too, even for a small one
    with linop.memory_limit(10_000):
        assert linop.Conv2d(w, (256, 256), padding=1).method != "toeplitz"
    # ... while asking for it still works (and tocsr builds it on request)
    assert linop.Conv2d(w, (64, 64), padding=1, method="toeplitz").method == "toeplitz"


def test_auto_never_takes_fft_for_non_finite_weights():
    w = np.ones((31, 31))
    w[3, 3] = np.nan
    op = linop.Conv2d(w, (256, 256), padding="same")
    assert op.method != "fft" and not op.plan["fft"].eligible
    assert "finite" in op.plan["fft"].note


def test_plan_says_why():
    op = linop.Conv2d(np.ones((31, 31)), (512, 512), padding="same")
    text = str(op.plan)
    assert text.startswith("method fft, chosen by auto: least expected time over 10 applications")
    assert all(m in text for m in ("toeplitz", "im2col", "fft"))
    user = linop.Conv2d(np.ones((31, 31)), (64, 64), method="im2col").plan
    assert user.chosen_by == "user" and "requested" in str(user)
    # the plan travels with the operator, to its transpose and to its copies
    import pickle

    assert pickle.loads(pickle.dumps(op)).plan.method == op.T.plan.method == "fft"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(n=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 5), d=st.integers(1, 4),
       lo=st.integers(0, 4), hi=st.integers(0, 4),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
def test_dead_outputs_and_unread_inputs_by_brute_force(n, k, s, d, lo, hi, mode):
    """The FFT's exact zeros: outputs that read only zero padding, inputs that nothing reads."""
    from linop._conv.taps import dead_outputs, unread_inputs

    if mode == "reflect":
        lo, hi = min(lo, n - 1), min(hi, n - 1)
    elif mode == "circular":
        lo, hi = min(lo, n), min(hi, n)
    padded, reach = n + lo + hi, d * (k - 1)
    if padded - reach < 1:
        return
    m = (padded - reach - 1) // s + 1
    # the padded signal's pixel of every padded position, by PyTorch's modes
    source = R.pad_nd(np.arange(n, dtype=float), [(lo, hi)], mode)
    if mode == "zeros":  # -1: no pixel
        source[:lo] = -1
        source[lo + n:] = -1
    dead, read = [], set()
    for o in range(m):
        pixels = [int(source[o * s + j * d]) for j in range(k)]
        if all(p < 0 for p in pixels):
            dead.append(o)
        read.update(p for p in pixels if p >= 0)
    if mode == "zeros":
        assert dead_outputs(n, m, k, s, d, lo).tolist() == dead
    assert unread_inputs(n, m, k, s, d, lo, hi, mode).tolist() == sorted(set(range(n)) - read)


def test_fft_bookkeeping_scales_with_outputs_plus_taps():
    """1-D, a million samples and 1001 taps: the exact-zero bookkeeping stays small."""
    op = linop.Conv1d(np.ones(1001) / 1001, (10**6,), padding="same", method="fft")
    x = np.ones(10**6)
    tracemalloc.start()
    try:
        y = op.apply(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 120 * 2**20, peak / 2**20  # 8 MB in, 8 MB out, the FFT tiles
    np.testing.assert_allclose(y[500:-500], 1.0, rtol=1e-9)
    np.testing.assert_allclose(y[0], 501 / 1001, rtol=1e-9)
