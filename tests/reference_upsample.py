"""A plain per-pixel reference for ``torch.nn.functional.interpolate``.

Written from the formulas (PyTorch's ``UpSample.h`` and ``interpolate``), with
plain Python loops over output pixels, independently of :mod:`linop.upsample`.
It is slow on purpose: every output pixel is computed on its own.

Public helpers
--------------
output_size(spatial, size, scale_factor)
    The output spatial size that ``interpolate`` produces.
interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None)
    ``x`` of shape ``(N, C, *spatial)``, like torch's functional.
interpolate_matrix(input_shape, ...)
    The dense matrix of the map ``(C, *spatial) -> (C, *out)``, column by column
    from the per-pixel rule, for comparison with ``tocsr()``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

A_CUBIC = -0.75


def output_size(spatial, size=None, scale_factor=None):
    """Output spatial size: ``size`` as given, or ``floor(n * scale_factor)``."""
    d = len(spatial)
    if size is not None:
        if isinstance(size, (tuple, list)):
            return tuple(int(s) for s in size)
        return (int(size),) * d
    if isinstance(scale_factor, (tuple, list)):
        factors = [float(s) for s in scale_factor]
    else:
        factors = [float(scale_factor)] * d
    return tuple(math.floor(float(n) * s) for n, s in zip(spatial, factors))


def _axis_factors(d, scale_factor):
    if scale_factor is None:
        return [None] * d
    if isinstance(scale_factor, (tuple, list)):
        return [float(s) for s in scale_factor]
    return [float(scale_factor)] * d


# -- one output coordinate on one axis -> list of (input index, weight) ------------
#
# PyTorch's CPU kernels compute nearest indices in two ways:
# * the "vectorised" 2-D path (2 spatial axes and out_h + out_w <= 128, contiguous input):
#   single precision scale and product (``nearest_idx``, which keeps a copy shortcut when
#   out == in and a halving shortcut when out == 2 * in; ``nearest_exact_idx``);
# * the generic path (1-D, 3-D, larger 2-D): the scale and the product in the input's
#   "opmath" precision (float32 for float32 data, float64 for float64 data), then the
#   result rounded to float32 before the floor.


def _scale32(n_in, n_out, factor):
    if factor is not None and factor > 0:
        return np.float32(1.0 / factor)
    return np.float32(n_in) / np.float32(n_out)


def _scale64(n_in, n_out, factor):
    if factor is not None and factor > 0:
        return 1.0 / factor
    return n_in / n_out


def _nearest_taps(o, n_in, n_out, factor, single, fast):
    if fast:
        if n_out == n_in:
            return [(o, 1.0)]
        if n_out == 2 * n_in:
            return [(o // 2, 1.0)]
        src = np.float32(o) * _scale32(n_in, n_out, factor)  # float32 product
    elif single:
        src = np.float32(o) * _scale32(n_in, n_out, factor)
    else:
        src = np.float32(o * _scale64(n_in, n_out, factor))  # double product, float floor
    i = min(math.floor(src), n_in - 1)
    return [(i, 1.0)]


def _nearest_exact_taps(o, n_in, n_out, factor, single, fast):
    if fast:
        # (o + 0.5) is a double, the product a double, rounded to float for the floor
        src = np.float32((o + 0.5) * float(_scale32(n_in, n_out, factor)))
    elif single:
        # a fused multiply-add in float32: one rounding of the exact value
        real = np.float32(float(_scale32(n_in, n_out, factor)) * (o + 0.5) - 0.5)
        if real < 0:
            real = np.float32(0.0)
        src = np.float32(float(real) + 0.5)
    else:
        real = _scale64(n_in, n_out, factor) * (o + 0.5) - 0.5
        if real < 0:
            real = 0.0
        src = np.float32(real + 0.5)
    i = min(math.floor(src), n_in - 1)
    return [(i, 1.0)]


# The linear family computes coordinates and weights in the "opmath" precision T of the
# data: float32 for float32 input, float64 otherwise.  floorf() rounds to float32 first.


def _linear_scale(n_in, n_out, factor, align_corners, T):
    if align_corners:
        return T(n_in - 1) / T(n_out - 1) if n_out > 1 else T(0.0)
    if factor is not None and factor > 0:
        return T(1.0 / factor)
    return T(n_in) / T(n_out)


def _source(o, n_in, n_out, factor, align_corners, T, clamp):
    scale = _linear_scale(n_in, n_out, factor, align_corners, T)
    if align_corners:
        return scale * T(o)
    if T is np.float32:
        # torch's float32 kernels fuse this into one multiply-add (a single rounding);
        # the product of two floats and the sum are exact in double precision
        src = np.float32(float(scale) * (o + 0.5) - 0.5)
    else:
        src = scale * (T(o) + T(0.5)) - T(0.5)
    if clamp and src < 0:
        src = T(0.0)
    return src


def _floor_and_fraction(src, n_in, T):
    i = min(math.floor(np.float32(src)), n_in - 1)
    lam = min(max(src - T(i), T(0.0)), T(1.0))
    return i, lam


def _linear_taps(o, n_in, n_out, factor, align_corners, T):
    if n_out == n_in:
        return [(o, 1.0)]
    src = _source(o, n_in, n_out, factor, align_corners, T, clamp=True)
    i0, lam = _floor_and_fraction(src, n_in, T)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    return [(i0, T(1.0) - lam), (i1, lam)]


def _cubic1(t, T):
    a = T(A_CUBIC)
    return ((a + T(2)) * t - (a + T(3))) * t * t + T(1)


def _cubic2(t, T):
    a = T(A_CUBIC)
    return ((a * t - T(5) * a) * t + T(8) * a) * t - T(4) * a


def _cubic_taps(o, n_in, n_out, factor, align_corners, T):
    src = _source(o, n_in, n_out, factor, align_corners, T, clamp=False)  # no clamp
    i, t = _floor_and_fraction(src, n_in, T)
    weights = [
        _cubic2(t + T(1), T),
        _cubic1(t, T),
        _cubic1(T(1) - t, T),
        _cubic2(T(1) - t + T(1), T),
    ]
    taps = []
    for k, w in enumerate(weights):
        j = min(max(i - 1 + k, 0), n_in - 1)  # border clamp
        taps.append((j, w))
    return taps


def _taps(mode, o, n_in, n_out, factor, align_corners, single, fast):
    T = np.float32 if single else np.float64
    if mode == "nearest":
        return _nearest_taps(o, n_in, n_out, factor, single, fast)
    if mode == "nearest-exact":
        return _nearest_exact_taps(o, n_in, n_out, factor, single, fast)
    if mode in ("linear", "bilinear", "trilinear"):
        return _linear_taps(o, n_in, n_out, factor, align_corners, T)
    if mode == "bicubic":
        return _cubic_taps(o, n_in, n_out, factor, align_corners, T)
    raise ValueError(mode)


def _area_pixel(xc, out_index, spatial, out):
    """Average of ``xc`` over the adaptive-pooling box of one output pixel."""
    ranges = []
    for o, n, m in zip(out_index, spatial, out):
        start = (o * n) // m  # floor(o * n / m)
        end = -((-(o + 1) * n) // m)  # ceil((o + 1) * n / m)
        ranges.append(range(start, end))
    total = 0.0
    count = 0
    for idx in itertools.product(*ranges):
        total = total + xc[idx]
        count += 1
    return total / count


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                single=None):
    """Per-pixel reference of ``torch.nn.functional.interpolate`` on ``(N, C, *spatial)``.

    ``single`` selects float32 coordinate arithmetic (indices of the nearest modes,
    coordinates and weights of the linear family); by default it follows ``x.dtype``
    (float32 or complex64), as torch does.  Values are accumulated in float64.
    """
    x = np.asarray(x)
    if single is None:
        single = x.dtype in (np.float32, np.complex64)
    spatial = x.shape[2:]
    d = len(spatial)
    out = output_size(spatial, size, scale_factor)
    factors = _axis_factors(d, scale_factor if size is None else None)
    if align_corners is None:
        align_corners = False
    fast = d == 2 and out[0] + out[1] <= 128
    dtype = np.result_type(x.dtype, np.float64)  # accumulate in double
    y = np.zeros(x.shape[:2] + out, dtype=dtype)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            xc = x[n, c]
            for oidx in itertools.product(*(range(m) for m in out)):
                if mode == "area":
                    y[(n, c) + oidx] = _area_pixel(xc, oidx, spatial, out)
                    continue
                per_axis = [
                    _taps(mode, o, spatial[a], out[a], factors[a], align_corners, single, fast)
                    for a, o in enumerate(oidx)
                ]
                value = 0.0
                for combo in itertools.product(*per_axis):
                    w = 1.0
                    for _, wa in combo:
                        w *= wa
                    value = value + w * xc[tuple(i for i, _ in combo)]
                y[(n, c) + oidx] = value
    return y


def interpolate_matrix(input_shape, size=None, scale_factor=None, mode="nearest",
                       align_corners=None, single=False):
    """Dense matrix of the interpolation ``(C, *spatial) -> (C, *out)`` (C order)."""
    input_shape = tuple(input_shape)
    n_in = math.prod(input_shape)
    cols = []
    for j in range(n_in):
        e = np.zeros(n_in)
        e[j] = 1.0
        y = interpolate(e.reshape((1,) + input_shape), size, scale_factor, mode, align_corners,
                        single=single)
        cols.append(y.ravel())
    return np.stack(cols, axis=1)
