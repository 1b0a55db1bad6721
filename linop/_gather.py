"""im2col by strided slices of the padded input.

``P x`` (the gathered patches) for every channel at once: pad the input as
the padding mode says, then copy one strided slice per kernel tap. This is
the patch matrix ``P`` applied without indices: tap ``k`` of output ``o``
reads padded position ``o*stride + k*dilation`` on every axis, the same rule
`linop._pattern.tap_table` writes down as a table.
"""

from __future__ import annotations

import itertools

import numpy as np

from linop._geometry import ConvGeometry

__all__ = ["NUMPY_PAD_MODES", "pad_input", "gather_patches"]

#: NumPy's names of PyTorch's padding modes: reflect without repeating the
#: edge, replicate the edge, wrap around.
NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap"}


def pad_input(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Pad the spatial axes (the trailing ones) of ``x`` by the geometry's padding mode."""
    lead = ((0, 0),) * (x.ndim - geometry.ndim)
    return np.pad(x, lead + geometry.padding, mode=NUMPY_PAD_MODES[geometry.padding_mode])


def gather_patches(xpad: np.ndarray, geometry: ConvGeometry, rows: slice) -> np.ndarray:
    """Patches of the outputs ``rows`` (along the first spatial axis).

    Parameters
    ----------
    xpad : ndarray, shape (B, C, *padded spatial)
    geometry : ConvGeometry
    rows : slice
        Outputs ``[rows.start, rows.stop)`` of the first spatial axis; all of
        the other axes.

    Returns
    -------
    ndarray, shape (B, C, K, n_rows * prod(output_size[1:]))
        Tap ``k`` of every output, for every sample and channel.
    """
    lead = xpad.shape[:2]
    sizes = (rows.stop - rows.start,) + tuple(geometry.output_size[1:])
    starts = (rows.start,) + (0,) * (geometry.ndim - 1)
    n_taps = int(np.prod(geometry.kernel_size))
    cols = np.empty(lead + (n_taps,) + sizes, dtype=xpad.dtype)
    for t, taps in enumerate(itertools.product(*map(range, geometry.kernel_size))):
        window = tuple(
            slice(o0 * s + j * d, o0 * s + j * d + (m - 1) * s + 1, s)
            for o0, m, j, s, d in zip(starts, sizes, taps, geometry.stride, geometry.dilation)
        )
        cols[:, :, t] = xpad[(slice(None), slice(None)) + window]
    return cols.reshape(lead + (n_taps, -1))
