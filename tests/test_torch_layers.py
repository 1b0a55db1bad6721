"""Tests of the torch kernels of the non-convolution operators (linop._torch_engine.layers).

For Upsample, AvgPool1d/2d/3d, Pad, PixelShuffle and PixelUnshuffle, over the
configuration strategies of `linop.testing.strategies` and a few hand-picked
cases, on batches of non-contiguous CPU tensors:

1. ``forward`` against the NumPy operator's ``apply`` and ``adjoint`` against its
   ``apply_adjoint`` (which are tested against PyTorch live and naive loops in
   the other test modules), in the operator's dtype and, for real operators, on
   complex tensors;
2. the dot test ``<F x, y> = <x, F^H y>`` of the torch kernels alone, in float64
   (and complex128);
3. autograd: the gradient of ``sum(forward(x) * g)`` is ``apply_adjoint(g)`` of
   the NumPy operator, and the gradient of ``sum(adjoint(y) * h)`` is
   ``apply(h)``;
4. the contract: None for other operators, dtype promotion, shape errors, and
   that ``import linop`` does not import the module (nor torch).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import linop
from linop.testing.strategies import (
    avg_pool_configs,
    pad_configs,
    pixel_shuffle_configs,
    upsample_configs,
)

torch = pytest.importorskip("torch")
from linop._torch_engine.layers import layer_kernels  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch_one_thread")]

SETTINGS = settings(deadline=None, derandomize=True, max_examples=40, database=None)
COMPLEX = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128}


def _tol(dtype) -> float:
    return 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12


def _random(rng, shape, dtype) -> np.ndarray:
    a = rng.standard_normal(shape)
    if np.iscomplexobj(np.empty(0, dtype)):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _strided(a: np.ndarray, how: int) -> torch.Tensor:
    """``a`` as a non-contiguous tensor with the same values: a permuted or a sliced view."""
    if how == 0:  # batch axis last in memory
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, 0, -1))).movedim(-1, 0)
    else:  # every other entry of a twice longer last axis
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        t = torch.from_numpy(big)[..., ::2]
    assert not t.is_contiguous() or t.numel() <= 1 or a.shape[-1] == 1
    return t


def _assert_close(got: torch.Tensor, want: np.ndarray, dtype) -> None:
    assert isinstance(got, torch.Tensor)
    assert tuple(got.shape) == want.shape
    got = got.detach().numpy()
    assert got.dtype == want.dtype
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=_tol(dtype), atol=_tol(dtype) * scale)


def check_kernels(op, rng, batch: int = 2) -> None:
    """Forward, adjoint and autograd of op's kernels (both forms) against the NumPy operator."""
    for native in (True, False):
        _check_kernels(op, rng, batch, layer_kernels(op, native=native))


def _check_kernels(op, rng, batch, kernels) -> None:
    assert kernels is not None
    forward, adjoint = kernels
    dtypes = [op.dtype] + ([COMPLEX[op.dtype]] if op.dtype in COMPLEX else [])
    for i, dt in enumerate(dtypes):
        x = _random(rng, (batch,) + op.input_shape, dt)
        y = _random(rng, (batch,) + op.output_shape, dt)
        _assert_close(forward(_strided(x, i % 2)), op.apply(x), dt)
        _assert_close(adjoint(_strided(y, (i + 1) % 2)), op.apply_adjoint(y), dt)
    # autograd: the gradient of Re <g, F x> is F^H g, that of Re <h, F^H y> is F h
    x = torch.from_numpy(_random(rng, (batch,) + op.input_shape, op.dtype)).requires_grad_()
    g = _random(rng, (batch,) + op.output_shape, op.dtype)
    (forward(x) * torch.from_numpy(g).conj()).real.sum().backward()
    _assert_close(x.grad, op.apply_adjoint(g), op.dtype)
    y = torch.from_numpy(_random(rng, (batch,) + op.output_shape, op.dtype)).requires_grad_()
    h = _random(rng, (batch,) + op.input_shape, op.dtype)
    (adjoint(y) * torch.from_numpy(h).conj()).real.sum().backward()
    _assert_close(y.grad, op.apply(h), op.dtype)


def dot_test(op, rng, batch: int = 2) -> None:
    """<F x, y> = <x, F^H y> with the torch kernels alone, in double precision."""
    for native in (True, False):
        forward, adjoint = layer_kernels(op, native=native)
        for dt in (np.float64, np.complex128):
            x = torch.from_numpy(_random(rng, (batch,) + op.input_shape, dt))
            y = torch.from_numpy(_random(rng, (batch,) + op.output_shape, dt))
            lhs = torch.vdot(y.reshape(-1), forward(x).reshape(-1)).item()
            rhs = torch.vdot(adjoint(y).reshape(-1), x.reshape(-1)).item()
            assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def _double(config):
    return dataclasses.replace(config, dtype=np.float64).build()


# -- Upsample ----------------------------------------------------------------------------------
@SETTINGS
@given(upsample_configs(max_size=6, max_out=9))
def test_upsample_configs(config):
    rng = np.random.default_rng(0)
    check_kernels(config.build(), rng)
    dot_test(_double(config), rng)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "area"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_upsample_any_mode(mode, ndim):
    rng = np.random.default_rng(1)
    spatial = (7, 5, 4)[:ndim]
    for kw in ({"scale_factor": 2.0}, {"scale_factor": 0.6}, {"size": (9, 3, 6)[:ndim]},
               {"scale_factor": 3.1}):
        for dt in (np.float32, np.float64):
            op = linop.Upsample((3,) + spatial, mode=mode, dtype=dt, **kw)
            check_kernels(op, rng, batch=3)
        dot_test(linop.Upsample((3,) + spatial, mode=mode, **kw), rng)


@pytest.mark.parametrize("mode,ndim", [("linear", 1), ("bilinear", 2), ("bicubic", 2),
                                       ("trilinear", 3)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_interpolating(mode, ndim, align_corners):
    rng = np.random.default_rng(2)
    spatial = {1: (300,), 2: (40, 27), 3: (40, 9, 6)}[ndim]  # 300: gathers (transposed)
    for kw in ({"scale_factor": 2.0}, {"scale_factor": 0.45}, {"size": (64, 4, 11)[:ndim]}):
        for dt in (np.float32, np.float64):
            op = linop.Upsample((2,) + spatial, mode=mode, align_corners=align_corners,
                                dtype=dt, **kw)
            check_kernels(op, rng)
        dot_test(linop.Upsample((2,) + spatial, mode=mode, align_corners=align_corners, **kw),
                 rng)


@pytest.mark.parametrize("mode,spatial,kw", [
    ("nearest", (700, 3), {"scale_factor": 2.0}),
    ("nearest-exact", (3, 700), {"scale_factor": 0.7}),
    ("bilinear", (600, 5), {"scale_factor": 1.5}),
    ("bicubic", (5, 900), {"size": (4, 1000)}),
    ("trilinear", (500, 2, 3), {"scale_factor": (0.8, 2.0, 1.0)}),
    ("area", (3, 800), {"size": (2, 350)}),
])
def test_upsample_long_axes(mode, spatial, kw):
    """Axes too long for dense products: gathers along inner axes, and along the last
    one on the transposed tensor (DENSE_PER_PASS)."""
    rng = np.random.default_rng(11)
    for dt in (np.float32, np.float64):
        check_kernels(linop.Upsample((2,) + spatial, mode=mode, dtype=dt, **kw), rng)
    dot_test(linop.Upsample((2,) + spatial, mode=mode, **kw), rng)


def test_upsample_complex_operator():
    rng = np.random.default_rng(3)
    for dt in (np.complex64, np.complex128):
        op = linop.Upsample((2, 33, 6), scale_factor=(1.5, 2), mode="bicubic", dtype=dt)
        check_kernels(op, rng)


# -- average pooling ---------------------------------------------------------------------------
@SETTINGS
@given(avg_pool_configs(max_kernel=4, max_stride=3))
def test_avg_pool_configs(config):
    rng = np.random.default_rng(4)
    check_kernels(config.build(), rng)
    dot_test(_double(config), rng)


@pytest.mark.parametrize("cls,shape", [(linop.AvgPool1d, (3, 300)), (linop.AvgPool2d, (2, 40, 9)),
                                       (linop.AvgPool3d, (2, 6, 37, 5)),
                                       (linop.AvgPool3d, (1, 2, 9, 9))])
def test_avg_pool_cases(cls, shape):
    rng = np.random.default_rng(5)
    for kw in ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
               {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},
               {"kernel_size": 2, "divisor_override": 3},
               {"kernel_size": 3, "stride": 2, "ceil_mode": True, "divisor_override": -2}):
        for dt in (np.float32, np.float64, np.complex128):
            check_kernels(cls(shape, dtype=dt, **kw), rng, batch=3)
        dot_test(cls(shape, **kw), rng)


# -- Pad ---------------------------------------------------------------------------------------
@SETTINGS
@given(pad_configs(max_size=6))
def test_pad_configs(config):
    rng = np.random.default_rng(6)
    check_kernels(config.build(), rng)
    dot_test(_double(config), rng)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_cases(mode):
    rng = np.random.default_rng(7)
    for shape, pad in (((3, 40), (5, -3)), ((2, 9, 30), (2, 3, -1, 4)),
                       ((2, 5, 6, 7), (1, 2, 3, -2, -1, 4)), ((4, 6, 7), (-2, -1)),
                       # no crops, 1 to 3 axes: torch's own kernels (native)
                       ((3, 40), (5, 3)), ((2, 9, 30), (2, 3, 0, 4)),
                       ((2, 5, 6, 7), (1, 2, 3, 2, 1, 4)), ((2, 2, 3, 4, 5), (1, 1, 2, 2, 0, 0))):
        for dt in (np.float32, np.float64, np.complex64):
            check_kernels(linop.Pad(shape, pad, mode, dtype=dt), rng, batch=3)
        dot_test(linop.Pad(shape, pad, mode), rng)


# -- PixelShuffle / PixelUnshuffle ---------------------------------------------------------------
@SETTINGS
@given(pixel_shuffle_configs(max_batch=2))
def test_pixel_shuffle_configs(config):
    rng = np.random.default_rng(8)
    check_kernels(config.build(), rng)
    dot_test(_double(config), rng)


# -- the contract ------------------------------------------------------------------------------
def test_other_operators_have_none():
    assert layer_kernels(linop.Conv1d(np.ones((1, 1, 3)), (1, 8))) is None
    assert layer_kernels(linop.Pad((4,), (1, 1), "reflect").H) is None  # a view, not a Pad
    assert layer_kernels("Upsample") is None


def test_dtype_promotion_and_errors():
    op = linop.Upsample((2, 5), scale_factor=2, mode="linear", dtype=np.float32)
    forward, adjoint = layer_kernels(op)
    x = torch.ones((1, 2, 5), dtype=torch.float64)
    assert forward(x).dtype == torch.float64  # NumPy's rule: float32 op, float64 input
    assert forward(x.to(torch.float32)).dtype == torch.float32
    assert forward(x.to(torch.complex64)).dtype == torch.complex64
    assert forward(torch.ones((1, 2, 5), dtype=torch.int64)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"x must have the shape \(batch, \*\(2, 5\)\)"):
        forward(torch.ones((2, 5)))
    with pytest.raises(ValueError, match="y must have the shape"):
        adjoint(torch.ones((1, 2, 5)))
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        forward(np.ones((1, 2, 5)))


def test_float32_operator_on_double_tensors():
    """NumPy's rule: a float64 result with the float32 operator's own taps (its float32
    coordinates), which torch's float64 kernels would not reproduce."""
    rng = np.random.default_rng(10)
    for op in (linop.Upsample((2, 7, 5), scale_factor=(1 / 3, 2.7), mode="nearest",
                              dtype=np.float32),
               linop.Upsample((2, 9, 5), size=(13, 4), mode="bilinear", dtype=np.float32),
               linop.AvgPool2d((2, 9, 9), 3, stride=2, padding=1, dtype=np.float32),
               linop.Pad((2, 9, 5), (1, 2, 3, 0), "reflect", dtype=np.float32)):
        forward, adjoint = layer_kernels(op)
        x = rng.standard_normal((2,) + op.input_shape)
        y = rng.standard_normal((2,) + op.output_shape)
        _assert_close(forward(torch.from_numpy(x)), op.apply(x), np.float64)
        _assert_close(adjoint(torch.from_numpy(y)), op.apply_adjoint(y), np.float64)


def test_tables_sized_against_the_memory_limit():
    op = linop.Upsample((1, 3000), size=5000, mode="linear")
    with linop.memory_limit(100_000), pytest.raises(linop.MatrixTooLargeError,
                                                    match="torch tables"):
        layer_kernels(op)
    assert layer_kernels(op) is not None


def test_empty_batch():
    for op in (linop.Upsample((2, 5, 6), scale_factor=0.5, mode="area"),
               linop.AvgPool1d((6,), 2), linop.Pad((2, 5), (1, 1), "reflect"),
               linop.PixelShuffle((4, 2, 2), 2)):
        for native in (True, False):
            forward, adjoint = layer_kernels(op, native=native)
            x = torch.zeros((0,) + op.input_shape, dtype=torch.float32, requires_grad=True)
            y = forward(x)
            assert y.shape == (0,) + op.output_shape and y.dtype == torch.float64
            y.sum().backward()
            assert x.grad.shape == x.shape
            assert adjoint(torch.zeros((0,) + op.output_shape)).shape == (0,) + op.input_shape


def test_identity_steps_return_fresh_tensors():
    for op in (linop.Upsample((2, 3, 3), size=(3, 3)), linop.PixelShuffle((2, 3, 3), 1),
               linop.Pad((2, 9), (0, 0), "reflect")):
        forward, adjoint = layer_kernels(op)
        x = torch.arange(18.0).reshape((1,) + op.input_shape)
        for f in (forward, adjoint):
            y = f(x)
            assert torch.equal(y, x)
            y += 1  # must not write into x
            assert torch.equal(x, torch.arange(18.0).reshape(x.shape))


def test_second_derivative_through_both():
    op = linop.AvgPool2d((1, 6, 6), 3, stride=2, padding=1)
    forward, _ = layer_kernels(op)
    rng = np.random.default_rng(9)
    x = torch.from_numpy(_random(rng, (1, 1, 6, 6), np.float64)).requires_grad_()
    loss = (forward(x) ** 2).sum()  # gradient 2 F^H F x, Hessian 2 F^H F
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    v = _random(rng, (1, 1, 6, 6), np.float64)
    (hv,) = torch.autograd.grad((grad * torch.from_numpy(v)).sum(), x)
    want = 2 * op.apply_adjoint(op.apply(v))
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-12, atol=1e-12)


def test_import_linop_imports_no_torch():
    code = ("import sys, linop; linop.Upsample((1, 4), scale_factor=2); "
            "print('torch' in sys.modules, 'linop._torch_engine.layers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
