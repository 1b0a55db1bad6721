"""One-dimensional interpolation matrices with PyTorch's ``interpolate`` semantics.

`axis_taps` returns the ``(n_out, n_in)`` *tap matrix* that maps one axis of
an input to the same axis of the output, exactly as PyTorch's kernels
compute it: row ``o`` holds one entry per tap PyTorch multiplies, in its
order, with the duplicates of clamped border taps and the zero weights kept
(1 tap for the nearest modes, 2 for linear, 4 for bicubic, the window for
area). Applying it multiplies the same terms as PyTorch, so non-finite
values propagate as they do there (``0 * inf`` is NaN). The named functions
(`nearest_matrix`, `linear_matrix`, ...) and `axis_matrix` return the same
linear map as a canonical `scipy.sparse.csr_array`: sorted indices, summed
duplicates, no explicit zeros and int32 indices where they fit. All index
arithmetic is vectorised (no Python loop over pixels).

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

from linop._sparse import canonical_csr
from linop._validation import index_dtype

__all__ = [
    "area_matrix",
    "axis_matrix",
    "axis_taps",
    "axis_taps_nbytes",
    "cubic_matrix",
    "finalize_csr",
    "linear_matrix",
    "nearest_matrix",
    "CUBIC_A",
]

#: The cubic convolution constant used by torch's bicubic mode (as OpenCV).
CUBIC_A = -0.75

def finalize_csr(a, dtype=None) -> sp.csr_array:
    """Return ``a`` as a canonical csr_array (see `linop._sparse.canonical_csr`)."""
    return canonical_csr(a, dtype)


def _tap_csr(cols, vals, n_in, dtype) -> sp.csr_array:
    """The tap matrix of ``(n_out, T)`` columns and weights: T entries per row, in order."""
    cols = np.asarray(cols)
    n_out, taps = cols.shape
    idx_dtype = index_dtype(n_out * taps, n_in, n_out)
    indptr = np.arange(0, n_out * taps + 1, taps, dtype=idx_dtype)
    data = np.asarray(vals).astype(dtype, copy=False).reshape(-1)
    return sp.csr_array((data, cols.reshape(-1).astype(idx_dtype), indptr), shape=(n_out, n_in))


def _identity_taps(n, dtype) -> sp.csr_array:
    return _tap_csr(np.arange(n)[:, None], np.ones((n, 1)), n, dtype)


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


# -- the modes: torch's taps -----------------------------------------------------------
def _nearest_taps(n_in, n_out, factor=None, *, exact=False, single=False, fast=False,
                  dtype=np.float64) -> sp.csr_array:
    o = np.arange(n_out)
    if fast:
        scale32 = _compute_scale(n_in, n_out, factor, np.float32)
        if not exact:
            if n_out == n_in:
                return _identity_taps(n_in, dtype)
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
    return _tap_csr(idx[:, None], np.ones((n_out, 1)), n_in, dtype)


def _linear_taps(n_in, n_out, factor=None, *, align_corners=False, single=False,
                 dtype=np.float64) -> sp.csr_array:
    if n_out == n_in:  # torch's copy: x[o] * 1 + x[o] * 0
        o = np.arange(n_out)
        return _tap_csr(np.stack([o, o], axis=1), np.tile([1.0, 0.0], (n_out, 1)), n_in, dtype)
    src = _source_index(n_in, n_out, factor, align_corners, single, clamp=True)
    i0, lam = _floor_and_lambda(src, n_in)
    T = lam.dtype.type
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    return _tap_csr(np.stack([i0, i1], axis=1), np.stack([T(1.0) - lam, lam], axis=1),
                    n_in, dtype)


def _cubic_near(x, A):
    """Cubic convolution kernel for ``|x| <= 1``."""
    return ((A + 2) * x - (A + 3)) * x * x + 1


def _cubic_far(x, A):
    """Cubic convolution kernel for ``1 < |x| < 2``."""
    return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A


def _cubic_taps(n_in, n_out, factor=None, *, align_corners=False, single=False,
                dtype=np.float64) -> sp.csr_array:
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
    return _tap_csr(cols, weights, n_in, dtype)


def _area_taps(n_in, n_out, *, dtype=np.float64) -> sp.csr_array:
    o = np.arange(n_out, dtype=np.int64)
    start = (o * n_in) // n_out
    end = -((-(o + 1) * n_in) // n_out)
    counts = end - start
    rows = np.repeat(o, counts)
    offsets = np.cumsum(counts) - counts
    cols = start[rows] + (np.arange(rows.size) - offsets[rows])
    idx_dtype = index_dtype(rows.size, n_in, n_out)
    indptr = np.zeros(n_out + 1, dtype=idx_dtype)
    np.cumsum(counts, out=indptr[1:])
    vals = (1.0 / counts[rows]).astype(dtype)
    return sp.csr_array((vals, cols.astype(idx_dtype), indptr), shape=(n_out, n_in))


def axis_taps(mode, n_in, n_out, factor=None, *, align_corners=False, single=False,
              fast=False, dtype=np.float64) -> sp.csr_array:
    """The ``(n_out, n_in)`` tap matrix of one axis for a torch ``interpolate`` mode.

    One entry per tap that PyTorch multiplies, in its order (duplicates and
    zero weights kept); `axis_matrix` is its canonical form.
    """
    if mode in ("nearest", "nearest-exact"):
        return _nearest_taps(n_in, n_out, factor, exact=mode == "nearest-exact",
                             single=single, fast=fast, dtype=dtype)
    if mode in ("linear", "bilinear", "trilinear"):
        return _linear_taps(n_in, n_out, factor, align_corners=bool(align_corners),
                            single=single, dtype=dtype)
    if mode == "bicubic":
        return _cubic_taps(n_in, n_out, factor, align_corners=bool(align_corners),
                           single=single, dtype=dtype)
    if mode == "area":
        return _area_taps(n_in, n_out, dtype=dtype)
    raise ValueError(f"unknown mode {mode!r}")


#: Taps per output of each mode (area: at most ``ceil(n_in / n_out) + 1``).
_TAPS = {"nearest": 1, "nearest-exact": 1, "linear": 2, "bilinear": 2, "trilinear": 2,
         "bicubic": 4}


def axis_taps_nbytes(mode: str, n_in: int, n_out: int, dtype) -> int:
    """Peak bytes of building and holding one axis's taps, counted before building.

    The tap matrix, its transpose, its canonical form and the gather tables
    are held; construction needs a few float64 and int64 arrays of the same
    length besides.
    """
    entries = _TAPS[mode] * n_out if mode in _TAPS else n_in + n_out
    per_entry = 2 * 8 + np.dtype(dtype).itemsize  # an index, a float64 temporary, a weight
    return 6 * entries * per_entry + 3 * (n_in + n_out + 2) * 8


# -- canonical matrices ---------------------------------------------------------------
def nearest_matrix(n_in, n_out, factor=None, *, exact=False, single=False, fast=False,
                   dtype=np.float64) -> sp.csr_array:
    """Nearest-neighbour selection matrix (``nearest`` or, with ``exact``, ``nearest-exact``).

    ``nearest``: ``src = floor(o * scale)``; ``nearest-exact``:
    ``src = floor((o + 0.5) * scale)``; both capped at ``n_in - 1``, where
    ``scale = 1/factor`` if ``factor`` is given else ``n_in / n_out``. ``single``
    and ``fast`` choose torch's arithmetic (see the module docstring).
    """
    return canonical_csr(_nearest_taps(n_in, n_out, factor, exact=exact, single=single,
                                       fast=fast, dtype=dtype), dtype)


def linear_matrix(n_in, n_out, factor=None, *, align_corners=False, single=False,
                  dtype=np.float64) -> sp.csr_array:
    """Linear interpolation matrix (two taps per row; torch's
    ``compute_source_index_and_lambda``, with its copy shortcut when ``n_out == n_in``)."""
    return canonical_csr(_linear_taps(n_in, n_out, factor, align_corners=align_corners,
                                      single=single, dtype=dtype), dtype)


def cubic_matrix(n_in, n_out, factor=None, *, align_corners=False, single=False,
                 dtype=np.float64) -> sp.csr_array:
    """Cubic convolution matrix (A = -0.75), four taps per row.

    The weights come from the unclamped fractional offset ``t``; the tap indices
    ``i - 1 .. i + 2`` are clamped to ``[0, n_in - 1]`` and duplicates summed.
    """
    return canonical_csr(_cubic_taps(n_in, n_out, factor, align_corners=align_corners,
                                     single=single, dtype=dtype), dtype)


def area_matrix(n_in, n_out, *, dtype=np.float64) -> sp.csr_array:
    """Adaptive average pooling matrix: row ``o`` averages
    ``[floor(o*n_in/n_out), ceil((o+1)*n_in/n_out))``."""
    return canonical_csr(_area_taps(n_in, n_out, dtype=dtype), dtype)


def axis_matrix(mode, n_in, n_out, factor=None, *, align_corners=False, single=False,
                fast=False, dtype=np.float64) -> sp.csr_array:
    """The ``(n_out, n_in)`` matrix of one axis for a torch ``interpolate`` mode (canonical)."""
    return canonical_csr(axis_taps(mode, n_in, n_out, factor, align_corners=align_corners,
                                   single=single, fast=fast, dtype=dtype), dtype)
