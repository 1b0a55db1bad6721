"""The one-channel, zero-padded Toeplitz matrix written directly into CSR.

The general construction (`linop._pattern.toeplitz_matrix`) builds a tap
table of ``n_out * K`` entries and compresses it with a mask. With one
channel and zero padding the matrix has more structure, which this module
uses to write the final ``indices`` and ``data`` arrays once, with no table
and no mask:

- On one axis, output ``o`` reads the contiguous tap range
  ``[jlo(o), jhi(o))``: all ``k`` taps in the interior, fewer at the borders.
  Consecutive outputs with the same range form a *run*; there are a few runs
  per axis (one for the interior, one per border row).
- A *class* is one run per axis. All its rows read the same tap box, so they
  hold the same number of entries ``c``, and the position of row ``o``'s
  entries in CSR order is affine in ``o`` within the class. The class is
  therefore a strided view of ``indices`` (and of ``data``), filled by one
  broadcast whose inner loop runs over a whole run of the last axis.

The number of classes is the product of the runs per axis: small for
ordinary kernels, large only when the kernel is as large as the image, where
`one_channel_toeplitz` declines and the general construction is used.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.sparse as sp
from numpy.lib.stride_tricks import as_strided

from linop._conv.geometry import ConvGeometry

__all__ = ["MAX_CLASSES", "one_channel_toeplitz"]

#: Beyond this many row classes the general (masked) construction is faster.
MAX_CLASSES = 64


def _axis_runs(n, m, k, s, d, lo):
    """Runs of outputs on one axis that read the same tap range.

    Returns the per-output tap counts and a list of ``(first, length, jlo,
    jhi)`` runs covering ``range(m)``.
    """
    start = np.arange(m) * s - lo  # input position of tap 0
    jlo = np.clip(-(start // d), 0, k)  # first tap with start + j*d >= 0
    jhi = np.clip((n - 1 - start) // d + 1, 0, k)  # past the last tap inside
    jhi = np.maximum(jhi, jlo)
    change = np.flatnonzero((np.diff(jlo) != 0) | (np.diff(jhi) != 0)) + 1
    firsts = np.r_[0, change]
    lengths = np.diff(np.r_[firsts, m])
    runs = [(int(f), int(n_), int(jlo[f]), int(jhi[f])) for f, n_ in zip(firsts, lengths)]
    return jhi - jlo, runs


def _class_view(target: np.ndarray, offset: int, shape, steps) -> np.ndarray:
    """The entries of one row class in ``target`` (CSR ``indices`` or ``data``), as a view."""
    item = target.itemsize
    strides = tuple(st * item for st in steps) + (item,)
    return as_strided(target[offset:], shape=shape, strides=strides)


def one_channel_toeplitz(geometry: ConvGeometry, kernel: np.ndarray, idx_dtype):
    """The explicit matrix of a one-channel zero-padded convolution, or None.

    Parameters
    ----------
    geometry : ConvGeometry
        With ``padding_mode == "zeros"``.
    kernel : ndarray
        The kernel, of shape ``geometry.kernel_size``.
    idx_dtype : numpy.dtype
        Index dtype of the result.

    Returns
    -------
    scipy.sparse.csr_array or None
        None when the geometry has more than `MAX_CLASSES` row classes.
    """
    nd = geometry.ndim
    in_strides = [math.prod(geometry.input_size[a + 1 :]) for a in range(nd)]
    axes = list(zip(geometry.input_size, geometry.output_size, geometry.kernel_size,
                    geometry.stride, geometry.dilation, (lo for lo, _ in geometry.padding)))
    per_axis = [_axis_runs(*axis) for axis in axes]
    if math.prod(len(runs) for _, runs in per_axis) > MAX_CLASSES:
        return None

    counts = [c.astype(idx_dtype) for c, _ in per_axis]
    row_counts = counts[0]
    for c in counts[1:]:
        row_counts = np.multiply.outer(row_counts, c)
    n_out = math.prod(geometry.output_size)
    indptr = np.zeros(n_out + 1, dtype=idx_dtype)
    np.cumsum(row_counts.reshape(-1), out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=kernel.dtype)
    totals = [int(c.sum()) for c in counts]  # entries per axis, summed over its outputs
    out_strides = [math.prod(geometry.output_size[a + 1 :]) for a in range(nd)]

    for runs in itertools.product(*(r for _, r in per_axis)):
        taps = [jhi - jlo for _, _, jlo, jhi in runs]
        per_row = math.prod(taps)
        if per_row == 0:
            continue
        first_row = sum(f * st for (f, _, _, _), st in zip(runs, out_strides))
        offset = int(indptr[first_row])
        # Entries between row o and row o + e_a: one hyperplane of axis a.
        steps = [
            math.prod(taps[: a + 1]) * math.prod(totals[a + 1 :]) for a in range(nd - 1)
        ]
        lengths = [length for _, length, _, _ in runs]
        # Flat input index of each tap of the box, then of each row of the
        # last axis's run: the contiguous inner block of the view.
        tap_index = np.zeros((1,) * nd, dtype=np.int64)
        for a, ((_, _, jlo, jhi), (_, _, _, _, d, lo)) in enumerate(zip(runs, axes)):
            shape = [1] * nd
            shape[a] = jhi - jlo
            j = (np.arange(jlo, jhi) * d - lo) * in_strides[a]
            tap_index = tap_index + j.reshape(shape)
        f_last, len_last = runs[-1][0], lengths[-1]
        s_last = axes[-1][3] * in_strides[-1]
        block = (np.arange(f_last, f_last + len_last) * s_last)[:, None] + tap_index.reshape(1, -1)
        boxes = tuple(slice(jlo, jhi) for _, _, jlo, jhi in runs)
        weights = np.tile(kernel[boxes].reshape(-1), len_last)
        outer = np.zeros((1,) * (nd - 1), dtype=np.int64)
        for a in range(nd - 1):
            f, length = runs[a][0], lengths[a]
            shape = [1] * (nd - 1)
            shape[a] = length
            outer = outer + (np.arange(f, f + length) * (axes[a][3] * in_strides[a])).reshape(shape)
        view_shape = tuple(lengths[:-1]) + (len_last * per_row,)

        # Written in place: one pass over the class's entries, no temporary.
        np.add(outer.astype(idx_dtype)[..., None], block.astype(idx_dtype).reshape(-1),
               out=_class_view(indices, offset, view_shape, steps))
        _class_view(data, offset, view_shape, steps)[...] = weights
    matrix = sp.csr_array(
        (data, indices, indptr), shape=(n_out, math.prod(geometry.input_size)), copy=False
    )
    matrix.has_sorted_indices = True
    return matrix
