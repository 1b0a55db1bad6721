"""One-dimensional interpolation matrices with PyTorch's ``interpolate`` semantics.

Every function here returns the ``(n_out, n_in)`` matrix that maps one axis of
an input to the same axis of the output, as a `scipy.sparse.csr_array` with
sorted indices, summed duplicates, no explicit zeros and int32 indices where
they fit. All index arithmetic is vectorised (no Python loop over pixels).

The arithmetic follows PyTorch's CPU kernels (``aten/src/ATen/native/UpSample.h``
and ``cpu/UpSampleKernel.cpp``), including the precision in which coordinates
are computed:

* ``single=True`` (float32 / complex64 operators) reproduces torch's float32
  coordinate arithmetic, ``single=False`` its float64 arithmetic;
* the nearest modes have two kernels in torch: a "vectorised" one (used for two
  spatial axes when ``out_h + out_w <= 128``) built on ``nearest_idx`` /
  ``nearest_exact_idx`` (single precision, with a copy shortcut for
  ``n_out == n_in`` and a halving shortcut for ``n_out == 2 * n_in`` in
  ``nearest``), and a generic one (everything else) that works in the data
  precision and rounds to float32 before the floor. ``fast=True`` selects the
  former.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "area_matrix",
    "axis_matrix",
    "cubic_matrix",
    "finalize_csr",
    "linear_matrix",
    "nearest_matrix",
    "CUBIC_A",
]

#: The cubic convolution constant used by torch's bicubic mode (as OpenCV).
CUBIC_A = -0.75

_INT32_MAX = np.iinfo(np.int32).max


def finalize_csr(a, dtype=None) -> sp.csr_array:
    """Return ``a`` as a canonical csr_array: summed duplicates, sorted indices,
    explicit zeros removed, int32 index arrays where they fit."""
    a = sp.csr_array(a)
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    a.sum_duplicates()
    a.eliminate_zeros()
    a.sort_indices()
    fits = max(a.shape[0], a.shape[1], a.nnz) <= _INT32_MAX
    idx_dtype = np.int32 if fits else np.int64
    if a.indices.dtype != idx_dtype or a.indptr.dtype != idx_dtype:
        a = sp.csr_array(
            (a.data, a.indices.astype(idx_dtype), a.indptr.astype(idx_dtype)),
            shape=a.shape,
        )
        a.has_sorted_indices = True
        a.has_canonical_format = True
    return a


def _from_taps(rows, cols, vals, n_out, n_in, dtype) -> sp.csr_array:
    a = sp.coo_array(
        (np.asarray(vals).ravel(), (np.asarray(rows).ravel(), np.asarray(cols).ravel())),
        shape=(n_out, n_in),
    )
    return finalize_csr(a.tocsr(), dtype)


def _identity(n, dtype) -> sp.csr_array:
    return finalize_csr(sp.eye_array(n, dtype=dtype, format="csr"), dtype)


# -- scales ---------------------------------------------------------------------
def _compute_scale(n_in, n_out, factor, T):
    """torch's ``compute_scales_value`` in precision ``T``: ``1/factor`` when a
    scale factor was given, else ``n_in / n_out``."""
    if factor is not None and factor > 0:
        return T(1.0 / factor)
    return T(n_in) / T(n_out)


def _area_pixel_scale(n_in, n_out, factor, align_corners, T):
    """torch's ``area_pixel_compute_scale`` in precision ``T``."""
    if align_corners:
        return T(n_in - 1) / T(n_out - 1) if n_out > 1 else T(0.0)
    return _compute_scale(n_in, n_out, factor, T)


def _source_index(n_in, n_out, factor, align_corners, single, clamp):
    """Source coordinates of the output pixels (``area_pixel_compute_source_index``)."""
    T = np.float32 if single else np.float64
    scale = _area_pixel_scale(n_in, n_out, factor, align_corners, T)
    o = np.arange(n_out)
    if align_corners:
        src = o.astype(T) * scale
    elif single:
        # torch's float32 kernels evaluate scale*(o+0.5)-0.5 as one fused
        # multiply-add: one rounding of the exact value. The product of two
        # floats and the sum are exact in double, so round once from there.
        src = (np.float64(scale) * (o + 0.5) - 0.5).astype(np.float32)
    else:
        src = scale * (o + 0.5) - 0.5
    if clamp:
        src = np.maximum(src, T(0.0))
    return src


def _floor_and_lambda(src, n_in):
    """torch's ``guard_index_and_lambda``: index = floorf(src) (rounded to float32
    first) capped at ``n_in - 1``; lambda = src - index clipped to [0, 1]."""
    T = src.dtype.type
    idx = np.floor(src.astype(np.float32)).astype(np.int64)
    idx = np.minimum(idx, n_in - 1)
    lam = np.clip(src - idx.astype(T), T(0.0), T(1.0))
    return idx, lam


# -- the modes ------------------------------------------------------------------------
def nearest_matrix(n_in, n_out, factor=None, *, exact=False, single=False, fast=False,
                   dtype=np.float64) -> sp.csr_array:
    """Nearest-neighbour selection matrix (``nearest`` or, with ``exact``, ``nearest-exact``).

    ``nearest``: ``src = floor(o * scale)``; ``nearest-exact``:
    ``src = floor((o + 0.5) * scale)``; both capped at ``n_in - 1``, where
    ``scale = 1/factor`` if ``factor`` is given else ``n_in / n_out``. ``single``
    and ``fast`` choose torch's arithmetic (see the module docstring).
    """
    o = np.arange(n_out)
    if fast:
        scale32 = _compute_scale(n_in, n_out, factor, np.float32)
        if not exact:
            if n_out == n_in:
                return _identity(n_in, dtype)
            if n_out == 2 * n_in:
                idx = o // 2
            else:
                idx = np.floor(o.astype(np.float32) * scale32).astype(np.int64)
        else:
            # (o + 0.5) * scale in double, rounded to float32 by floorf
            real = ((o + 0.5) * np.float64(scale32)).astype(np.float32)
            idx = np.floor(real).astype(np.int64)
    else:
        T = np.float32 if single else np.float64
        scale = _compute_scale(n_in, n_out, factor, T)
        if not exact:
            real = o.astype(T) * scale
        else:
            if single:
                real = (np.float64(scale) * (o + 0.5) - 0.5).astype(np.float32)  # fused
            else:
                real = scale * (o + 0.5) - 0.5
            real = np.maximum(real, T(0.0)).astype(np.float64) + 0.5
        idx = np.floor(real.astype(np.float32)).astype(np.int64)
    idx = np.minimum(idx, n_in - 1)
    return _from_taps(o, idx, np.ones(n_out), n_out, n_in, dtype)


def linear_matrix(n_in, n_out, factor=None, *, align_corners=False, single=False,
                  dtype=np.float64) -> sp.csr_array:
    """Linear interpolation matrix (two taps per row; torch's
    ``compute_source_index_and_lambda``, with its copy shortcut when ``n_out == n_in``)."""
    if n_out == n_in:
        return _identity(n_in, dtype)
    src = _source_index(n_in, n_out, factor, align_corners, single, clamp=True)
    i0, lam = _floor_and_lambda(src, n_in)
    T = lam.dtype.type
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    o = np.arange(n_out)
    rows = np.stack([o, o], axis=1)
    cols = np.stack([i0, i1], axis=1)
    vals = np.stack([T(1.0) - lam, lam], axis=1)
    return _from_taps(rows, cols, vals, n_out, n_in, dtype)


def _cubic_near(x, A):
    """Cubic convolution kernel for ``|x| <= 1``."""
    return ((A + 2) * x - (A + 3)) * x * x + 1


def _cubic_far(x, A):
    """Cubic convolution kernel for ``1 < |x| < 2``."""
    return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A


def cubic_matrix(n_in, n_out, factor=None, *, align_corners=False, single=False,
                 dtype=np.float64) -> sp.csr_array:
    """Cubic convolution matrix (A = -0.75), four taps per row.

    The weights come from the unclamped fractional offset ``t``; the tap indices
    ``i - 1 .. i + 2`` are clamped to ``[0, n_in - 1]`` and duplicates summed.
    """
    src = _source_index(n_in, n_out, factor, align_corners, single, clamp=False)
    i, t = _floor_and_lambda(src, n_in)
    T = t.dtype.type
    A = T(CUBIC_A)
    one = T(1.0)
    u = one - t
    weights = np.stack(
        [_cubic_far(t + one, A), _cubic_near(t, A), _cubic_near(u, A), _cubic_far(u + one, A)],
        axis=1,
    )
    cols = np.clip(i[:, None] + np.arange(-1, 3), 0, n_in - 1)
    rows = np.repeat(np.arange(n_out), 4)
    return _from_taps(rows, cols, weights, n_out, n_in, dtype)


def area_matrix(n_in, n_out, *, dtype=np.float64) -> sp.csr_array:
    """Adaptive average pooling matrix: row ``o`` averages
    ``[floor(o*n_in/n_out), ceil((o+1)*n_in/n_out))``."""
    o = np.arange(n_out, dtype=np.int64)
    start = (o * n_in) // n_out
    end = -((-(o + 1) * n_in) // n_out)
    counts = end - start
    rows = np.repeat(o, counts)
    offsets = np.cumsum(counts) - counts
    cols = start[rows] + (np.arange(rows.size) - offsets[rows])
    vals = 1.0 / counts[rows]
    return _from_taps(rows, cols, vals, n_out, n_in, dtype)


def axis_matrix(mode, n_in, n_out, factor=None, *, align_corners=False, single=False,
                fast=False, dtype=np.float64) -> sp.csr_array:
    """The ``(n_out, n_in)`` matrix of one axis for a torch ``interpolate`` mode."""
    if mode == "nearest":
        return nearest_matrix(n_in, n_out, factor, single=single, fast=fast, dtype=dtype)
    if mode == "nearest-exact":
        return nearest_matrix(n_in, n_out, factor, exact=True, single=single, fast=fast,
                              dtype=dtype)
    if mode in ("linear", "bilinear", "trilinear"):
        return linear_matrix(n_in, n_out, factor, align_corners=bool(align_corners),
                             single=single, dtype=dtype)
    if mode == "bicubic":
        return cubic_matrix(n_in, n_out, factor, align_corners=bool(align_corners),
                            single=single, dtype=dtype)
    if mode == "area":
        return area_matrix(n_in, n_out, dtype=dtype)
    raise ValueError(f"unknown mode {mode!r}")
