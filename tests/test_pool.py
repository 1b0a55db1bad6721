"""Tests of linop.AvgPool1d/2d/3d: PyTorch live, a per-window reference, adjoints, values.

1. forward against ``torch.nn.functional.avg_pool{n}d`` and the adjoint against
   torch's autograd, over the configurations of ``avg_pool_configs``;
2. the matrix: built column by column from ``matvec`` and ``rmatvec``, against a
   per-window reference written here, and ``tocsr()`` against it;
3. PyTorch's rules one by one (stride default, ceil mode, divisors, limits);
4. dtypes, non-finite values, dot tests, ``check_operator``, pickles;
5. validation errors and the memory limit.
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import Phase, find, given, settings

import linop
from conftest import random_array
from linop.testing import check_operator, dottest
from linop.testing.strategies import AvgPoolConfig, avg_pool_configs

try:
    import torch
except ImportError:  # the tests marked torch are skipped (conftest.py)
    torch = None
F = None if torch is None else torch.nn.functional

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SETTINGS = settings(deadline=None, derandomize=True, max_examples=100, database=None)
MORE = settings(SETTINGS, max_examples=200)
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
RTOL = {np.dtype(np.float32): 2e-6, np.dtype(np.complex64): 2e-6,
        np.dtype(np.float64): 1e-14, np.dtype(np.complex128): 1e-14}


def _per_axis(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _torch_pool(config: AvgPoolConfig, x, *, grad=None):
    """torch's avg_pool on one sample (a 1-D divisor_override through avg_pool2d),
    and with ``grad``, the gradient of ``<pool(x), grad>`` (the adjoint)."""
    nd = config.ndim
    t = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(grad is not None)
    batch = t.reshape((1, -1) + t.shape[len(t.shape) - nd:])  # (1, C, *spatial)
    kw = dict(kernel_size=config.kernel_size, stride=config.stride, padding=config.padding,
              ceil_mode=config.ceil_mode, count_include_pad=config.count_include_pad)
    if nd == 1 and config.divisor_override is not None:
        # avg_pool1d has no divisor_override: avg_pool2d with a height of 1
        k = _per_axis(config.kernel_size, 1)[0]
        st = k if config.stride is None else _per_axis(config.stride, 1)[0]
        p = _per_axis(config.padding, 1)[0]
        y = F.avg_pool2d(batch[:, :, None], (1, k), (1, st), (0, p), config.ceil_mode,
                         config.count_include_pad, config.divisor_override)[:, :, 0]
    elif nd == 1:
        y = F.avg_pool1d(batch, **kw)
    else:
        fn = F.avg_pool2d if nd == 2 else F.avg_pool3d
        y = fn(batch, divisor_override=config.divisor_override, **kw)
    y = y.reshape(tuple(config.expected_output_shape))
    if grad is None:
        return y.detach().numpy(), None
    y.backward(torch.from_numpy(np.ascontiguousarray(grad)))
    return y.detach().numpy(), t.grad.numpy()


def _torch_accepts(config: AvgPoolConfig) -> bool:
    """avg_pool3d also refuses inputs smaller than the kernel (even with padding)."""
    if config.ndim != 3:
        return True
    k = _per_axis(config.kernel_size, 3)
    return all(n >= kk for n, kk in zip(config.input_shape[-3:], k))


def reference_matrix(config: AvgPoolConfig) -> np.ndarray:
    """The dense matrix by PyTorch's per-window rule, one output pixel at a time."""
    nd = config.ndim
    k = _per_axis(config.kernel_size, nd)
    s = k if config.stride is None else _per_axis(config.stride, nd)
    p = _per_axis(config.padding, nd)
    spatial = config.input_shape[-nd:]
    channels = 1 if config.bare else config.input_shape[0]
    out = config.expected_output_shape[-nd:]
    n_in = math.prod(spatial)
    block = np.zeros((math.prod(out), n_in))
    for row, o in enumerate(itertools.product(*map(range, out))):
        ranges, size, count = [], 1, 1
        for oi, n, ki, si, pi in zip(o, spatial, k, s, p):
            start = oi * si - pi
            end = min(start + ki, n + pi)
            lo, hi = max(start, 0), min(end, n)
            assert hi > lo, "an empty window"
            ranges.append(range(lo, hi))
            size *= end - start
            count *= hi - lo
        if config.divisor_override is not None:
            div = config.divisor_override
        else:
            div = size if config.count_include_pad else count
        for i in itertools.product(*ranges):
            block[row, np.ravel_multi_index(i, spatial)] = 1.0 / div
    return np.kron(np.eye(channels), block)


def dense_columns(op) -> tuple[np.ndarray, np.ndarray]:
    """The matrices of ``matvec`` and ``rmatvec``, one unit vector at a time."""
    m, n = op.shape
    a = np.stack([op.matvec(e) for e in np.eye(n)], axis=1)
    b = np.stack([op.rmatvec(e) for e in np.eye(m)], axis=1)
    return a, b


# -- 1. PyTorch live ------------------------------------------------------------------
@pytest.mark.torch
@MORE
@given(avg_pool_configs(dtypes=[np.float64]))
def test_forward_and_adjoint_match_torch(config):
    op = config.build()
    assert op.input_shape == config.input_shape
    assert op.output_shape == config.expected_output_shape
    if not _torch_accepts(config):
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal(config.input_shape)
    g = rng.standard_normal(op.output_shape)
    want, grad = _torch_pool(config, x, grad=g)
    np.testing.assert_allclose(op.apply(x), want, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(op.apply_adjoint(g), grad, rtol=1e-14, atol=1e-14)
    # a batch of two samples at once
    xx = np.stack([x, -2 * x])
    np.testing.assert_allclose(op.apply(xx), np.stack([want, -2 * want]), rtol=1e-14,
                               atol=1e-14)


@pytest.mark.torch
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_float32_matches_torch_float32(nd, rng):
    shape = (3,) + (7, 6, 5)[:nd]
    op = getattr(linop, f"AvgPool{nd}d")(shape, 3, 2, 1, True, False, dtype=np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    config = AvgPoolConfig(nd, shape, 3, 2, 1, True, False, None, np.dtype(np.float32))
    y = op.apply(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _torch_pool(config, x)[0], rtol=1e-6, atol=1e-6)
    assert op.apply_adjoint(y).dtype == np.float32
    assert (op @ x.ravel()).dtype == np.float32
    assert op.tocsr().dtype == np.float32


@pytest.mark.torch
def test_non_finite_values_reach_only_the_windows_that_read_them():
    x = np.ones((1, 6, 6))
    x[0, 0, 0] = np.inf
    x[0, 5, 5] = np.nan
    config = AvgPoolConfig(2, (1, 6, 6), 3, 2, 1, True, False, None, np.dtype(np.float64))
    want = _torch_pool(config, x)[0]
    got = config.build().apply(x)
    np.testing.assert_array_equal(got, want)  # inf, nan and 1 in the same places
    # pixel 0 is in window 0 of each axis; pixel 5 in windows 2 and 3 ([3, 6) and [5, 8))
    assert np.isinf(got).sum() == 1 and np.isnan(got).sum() == 4


def _ceil_mode_drops_a_window(c: AvgPoolConfig) -> bool:
    """The ceil-mode correction fires: one more window would start past the input."""
    k = _per_axis(c.kernel_size, c.ndim)
    s = k if c.stride is None else _per_axis(c.stride, c.ndim)
    for n, ki, si, pi in zip(c.input_shape[-c.ndim:], k, s, _per_axis(c.padding, c.ndim)):
        if c.ceil_mode and (-(-(n + 2 * pi - ki) // si)) * si >= n + pi:
            return True
    return False


@pytest.mark.torch
@pytest.mark.parametrize("predicate", [
    _ceil_mode_drops_a_window,
    lambda c: c.ceil_mode and not c.count_include_pad and max(_per_axis(c.padding, c.ndim)) > 0,
    lambda c: c.ndim == 3 and (c.divisor_override or 0) < 0,
    lambda c: c.stride is None and isinstance(c.kernel_size, tuple) and c.ndim == 2,
    lambda c: not _torch_accepts(c),
], ids=["ceil-correction", "ceil-padding-count", "3d-negative-divisor",
        "default-stride", "3d-smaller-than-kernel"])
def test_strategy_covers_the_corners(predicate):
    found = find(avg_pool_configs(), predicate, settings=settings(
        max_examples=2000, database=None, derandomize=True, phases=[Phase.generate]))
    assert found.build().output_shape == found.expected_output_shape


# -- 2. the matrix, column by column ------------------------------------------------------
@SETTINGS
@given(avg_pool_configs(dtypes=[np.float64], max_size=5))
def test_matrix_against_per_window_reference(config):
    op = config.build()
    ref = reference_matrix(config)
    a, b = dense_columns(op)
    np.testing.assert_allclose(a, ref, rtol=1e-15, atol=0)
    np.testing.assert_allclose(b, ref.T, rtol=1e-15, atol=0)
    csr = op.tocsr()
    assert isinstance(csr, sp.csr_array) and csr.has_canonical_format
    assert csr.indices.dtype == np.int32 and csr.indptr.dtype == np.int32
    assert all(np.all(np.diff(csr.indices[csr.indptr[r]:csr.indptr[r + 1]]) > 0)
               for r in range(csr.shape[0]))
    np.testing.assert_allclose(csr.toarray(), ref, rtol=1e-15, atol=0)
    assert csr.nnz == np.count_nonzero(ref)
    # the per-axis factors multiply out to the operator
    kron = np.ones((1, 1))
    for m in op.matrices:
        kron = np.kron(kron, m.toarray())
    channels = 1 if config.bare else config.input_shape[0]
    np.testing.assert_allclose(np.kron(np.eye(channels), kron), ref, rtol=1e-14, atol=0)


# -- 3. PyTorch's rules ---------------------------------------------------------------------
def test_stride_defaults_to_kernel_size():
    op = linop.AvgPool2d((2, 9, 8), (3, 2))
    assert op.stride == (3, 2) and op.output_shape == (2, 3, 4)
    assert linop.AvgPool2d((2, 9, 8), (3, 2), stride=1).output_shape == (2, 7, 7)


def test_ceil_mode_windows_start_inside_the_input_or_left_padding():
    # n=5, k=2, s=2, p=1: floor -> 3 outputs; ceil -> 4 would start at 6 >= n + p = 6
    assert linop.AvgPool1d((5,), 2, 2, 1).output_shape == (3,)
    assert linop.AvgPool1d((5,), 2, 2, 1, ceil_mode=True).output_shape == (3,)
    # n=6, k=3, s=2, p=0: floor 2, ceil 3 (the last window starts at 4 < 6)
    op = linop.AvgPool1d((6,), 3, 2, ceil_mode=True)
    assert op.output_shape == (3,)
    # the overhang past the input is not counted, even with count_include_pad
    np.testing.assert_allclose(op.apply(np.arange(6.0)), [1.0, 3.0, 4.5])
    np.testing.assert_allclose(op.divisor(), [3, 3, 2])


@pytest.mark.torch
def test_count_include_pad_counts_padding_but_not_the_ceil_overhang():
    # n=5, k=3, s=2, p=1, ceil: windows [-1,2) [1,4) [3,6): sizes 3 3 3; the
    # third window reaches n + p = 6, so its overhang is 0 but it covers one zero
    x = np.arange(1.0, 6.0)
    op = linop.AvgPool1d((5,), 3, 2, 1, ceil_mode=True)
    np.testing.assert_allclose(op.apply(x), [1.0, 3.0, 3.0])
    op = linop.AvgPool1d((5,), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(op.apply(x), [1.5, 3.0, 4.5])
    # n=6, k=3, s=3, p=1, ceil: windows [-1,2) [2,5) [5,8), the last cut at n + p = 7:
    # it covers one input pixel and one padded zero
    op = linop.AvgPool1d((6,), 3, 3, 1, ceil_mode=True)
    np.testing.assert_allclose(op.divisor(), [3, 3, 2])
    x = np.arange(1.0, 7.0)
    np.testing.assert_allclose(op.apply(x), [1.0, 4.0, 3.0])
    op = linop.AvgPool1d((6,), 3, 3, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(op.divisor(), [2, 3, 1])
    np.testing.assert_allclose(op.apply(x), [1.5, 4.0, 6.0])
    want = F.avg_pool1d(torch.from_numpy(x)[None], 3, 3, 1, True, False)[0].numpy()
    np.testing.assert_allclose(op.apply(x), want)


def test_divisor_is_a_product_of_per_axis_counts():
    op = linop.AvgPool2d((5, 4), 3, 2, 1, count_include_pad=False)
    np.testing.assert_array_equal(op.divisor(), np.outer([2, 3, 2], [2, 3]))
    assert [d.tolist() for d in op.divisors] == [[2, 3, 2], [2, 3]]
    with pytest.raises(ValueError, match="read-only"):
        op.divisors[0][0] = 5


@pytest.mark.parametrize("divisor", [1, 3, -2])
def test_divisor_override_replaces_every_divisor(divisor, rng):
    x = rng.standard_normal((2, 5, 5))
    op = linop.AvgPool2d((2, 5, 5), 3, 2, 1, divisor_override=divisor)
    sums = linop.AvgPool2d((2, 5, 5), 3, 2, 1, divisor_override=1).apply(x)
    np.testing.assert_allclose(op.apply(x), sums / divisor, rtol=1e-15)
    np.testing.assert_array_equal(op.divisor(), np.full((3, 3), float(divisor)))


@pytest.mark.torch
def test_one_dimensional_divisor_override_is_avg_pool2d_with_height_one(rng):
    x = rng.standard_normal((3, 9))
    want = F.avg_pool2d(torch.from_numpy(x)[:, None], (1, 4), (1, 3), (0, 2),
                        divisor_override=5)[:, 0].numpy()
    np.testing.assert_allclose(linop.AvgPool1d((3, 9), 4, 3, 2, divisor_override=5).apply(x),
                               want, rtol=1e-15)


def test_bare_and_channel_shapes_agree(rng):
    x = rng.standard_normal((4, 5))
    bare = linop.AvgPool2d((4, 5), 2, 1)
    chan = linop.AvgPool2d((1, 4, 5), 2, 1)
    assert bare.bare and not chan.bare
    np.testing.assert_array_equal(bare.apply(x), chan.apply(x[None])[0])
    assert bare.output_shape == (3, 4)
    assert (bare.tocsr() != chan.tocsr()).nnz == 0


@pytest.mark.torch
def test_3d_accepts_inputs_smaller_than_the_kernel_that_torch_refuses():
    op = linop.AvgPool3d((1, 1, 2, 4), 3, 1, 1)
    assert op.output_shape == (1, 1, 2, 4)
    with pytest.raises(RuntimeError, match="smaller than"):
        F.avg_pool3d(torch.ones(1, 1, 1, 2, 4), 3, 1, 1)
    # the same numbers as the 2-D pooling of the padded (D=1) slice times the depth rule
    x = np.arange(8.0).reshape(1, 1, 2, 4)
    want = F.avg_pool2d(torch.from_numpy(x[:, 0]), 3, 1, 1).numpy() / 3  # 1 of 3 depth taps
    np.testing.assert_allclose(op.apply(x)[:, 0], want, rtol=1e-15)


# -- 4. dtypes, adjoints, operator checks, copies ------------------------------------------------
@SETTINGS
@given(avg_pool_configs())
def test_dottest_and_check_operator(config):
    op = config.build()
    assert op.dtype == config.dtype
    assert dottest(op, rng=0).passed
    report = check_operator(op, rng=0)
    assert report.passed and report.skipped == []


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_operators_average_real_and_imaginary_parts(dtype, rng):
    op = linop.AvgPool2d((2, 6, 5), (3, 2), 2, 1, ceil_mode=True, dtype=dtype)
    z = random_array(rng, (2, 6, 5), dtype)
    y = op.apply(z)
    assert y.dtype == dtype
    real = linop.AvgPool2d((2, 6, 5), (3, 2), 2, 1, ceil_mode=True)
    tol = RTOL[np.dtype(dtype)]
    np.testing.assert_allclose(y.real, real.apply(z.real), rtol=tol, atol=tol)
    np.testing.assert_allclose(y.imag, real.apply(z.imag), rtol=tol, atol=tol)
    w = random_array(rng, op.output_shape, dtype)
    np.testing.assert_allclose(op.apply_adjoint(w), op.H.apply(w), rtol=tol)
    np.testing.assert_allclose(op.H.apply(w), op.T.apply(w), rtol=tol)  # real coefficients
    # a real operator on complex data gives complex results
    assert real.apply(z).dtype == np.result_type(np.float64, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pickle_and_deepcopy_give_identical_results(dtype, rng):
    op = linop.AvgPool3d((2, 4, 5, 3), (2, 3, 2), (1, 2, 2), (1, 1, 0), ceil_mode=True,
                         count_include_pad=False, dtype=dtype)
    x = random_array(rng, op.input_shape, dtype)
    y = op.apply(x)
    for other in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op),
                  pickle.loads(pickle.dumps(op.T)).T):
        np.testing.assert_array_equal(other.apply(x), y)
        assert repr(other) == repr(op)
    back = pickle.loads(pickle.dumps(op.H))
    np.testing.assert_array_equal(back.apply(y), op.apply_adjoint(y))


def test_repr_and_attributes():
    op = linop.AvgPool2d((3, 8, 8), 3, 2, 1, ceil_mode=True, count_include_pad=False,
                         divisor_override=4, dtype=np.float32)
    assert repr(op) == (
        "<AvgPool2d (3, 8, 8) -> (3, 5, 5), kernel_size=(3, 3), stride=(2, 2), "
        "padding=(1, 1), ceil_mode=True, count_include_pad=False, divisor_override=4, "
        "dtype=float32>")
    assert repr(linop.AvgPool1d((5,), 2)) == (
        "<AvgPool1d (5,) -> (2,), kernel_size=(2,), stride=(2,), padding=(0,), dtype=float64>")
    assert (op.kernel_size, op.stride, op.padding) == ((3, 3), (2, 2), (1, 1))
    assert op.ceil_mode and not op.count_include_pad and op.divisor_override == 4
    assert op.dims == (3, 8, 8) and op.dimsd == (3, 5, 5)
    assert len(op.matrices) == 2 and op.matrices[0].shape == (5, 8)


def test_apply_never_returns_a_view_of_its_input(rng):
    op = linop.AvgPool1d((6,), 1)  # the identity
    x = rng.standard_normal(6)
    y = op.apply(x)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)
    assert not np.shares_memory(op.apply_adjoint(x), x)


# -- 5. validation and memory -------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, args, kwargs, exc, parameter",
    [
        (linop.AvgPool2d, ((3, 8, 8, 8), 2), {}, ValueError, "input_shape"),
        (linop.AvgPool2d, ((8,), 2), {}, ValueError, "input_shape"),
        (linop.AvgPool1d, ((0, 8), 2), {}, ValueError, "input_shape"),
        (linop.AvgPool1d, ((8,), 0), {}, ValueError, "kernel_size"),
        (linop.AvgPool2d, ((8, 8), (2, 2, 2)), {}, ValueError, "kernel_size"),
        (linop.AvgPool1d, ((8,), 2.0), {}, TypeError, "kernel_size"),
        (linop.AvgPool1d, ((8,), 2, 0), {}, ValueError, "stride"),
        (linop.AvgPool1d, ((8,), 3, 1, 2), {}, ValueError, "padding"),
        (linop.AvgPool2d, ((8, 8), (4, 3), 1, (2, 2)), {}, ValueError, "padding"),
        (linop.AvgPool1d, ((8,), 3, 1, -1), {}, ValueError, "padding"),
        (linop.AvgPool1d, ((2,), 5), {}, ValueError, "kernel_size"),
        (linop.AvgPool3d, ((2, 9, 9), 5, 1, 1), {}, ValueError, "kernel_size"),
        (linop.AvgPool1d, ((8,), 2), dict(ceil_mode=1), TypeError, "ceil_mode"),
        (linop.AvgPool1d, ((8,), 2), dict(count_include_pad="no"), TypeError,
         "count_include_pad"),
        (linop.AvgPool1d, ((8,), 2), dict(divisor_override=0), ValueError, "divisor_override"),
        (linop.AvgPool1d, ((8,), 2), dict(divisor_override=1.5), TypeError,
         "divisor_override"),
        (linop.AvgPool1d, ((8,), 2), dict(dtype=np.int64), TypeError, "dtype"),
    ],
)
def test_validation_errors_name_the_parameter(cls, args, kwargs, exc, parameter):
    with pytest.raises(exc) as info:
        cls(*args, **kwargs)
    assert isinstance(info.value, linop.ParameterError)
    assert info.value.parameter == parameter
    assert parameter in str(info.value)


@pytest.mark.torch
def test_torch_refuses_what_linop_refuses():
    with pytest.raises(RuntimeError, match="half"):
        F.avg_pool1d(torch.ones(1, 1, 8), 3, 1, 2)
    with pytest.raises(RuntimeError, match="too small"):
        F.avg_pool1d(torch.ones(1, 1, 2), 5)
    with pytest.raises(RuntimeError, match="zero"):
        F.avg_pool2d(torch.ones(1, 1, 8, 8), 2, divisor_override=0)


def test_tocsr_beyond_the_memory_limit_is_refused_before_allocating():
    op = linop.AvgPool2d((512, 1024, 1024), 4, 1)  # about 2.1e9 stored entries
    with linop.memory_limit(2**20):
        with pytest.raises(linop.MatrixTooLargeError, match="AvgPool2d"):
            op.tocsr()
        with pytest.raises(linop.MatrixTooLargeError):
            op.T.tocsr()
    with linop.memory_limit(10**4), pytest.raises(linop.MatrixTooLargeError, match="1-D"):
        linop.AvgPool1d((10**6,), 1000, 1)


def test_public_names_and_docstrings():
    for name in ("AvgPool1d", "AvgPool2d", "AvgPool3d"):
        cls = getattr(linop, name)
        assert cls.__module__ == "linop.pool" and name in linop.__all__
        assert f"avg_pool{name[-2]}d" in cls.__doc__
