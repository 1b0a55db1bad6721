"""im2col: gather the patches by strided slices, then one GEMM per group.

``A x = W (P x)``: the patch matrix ``P`` gathers, for every output pixel,
the ``K`` input pixels its kernel taps read (``P x`` is the "im2col" array),
and the weights ``W`` mix channels and taps in one matrix product per group.
``P`` is never written down: tap ``k`` of every output reads the padded
input on a strided grid, ``o*stride + k*dilation`` per axis, so ``P x`` is
``K`` strided slices of the padded input, and ``P^T`` (the adjoint, "col2im")
is ``K`` strided *adds* into a zeroed padded buffer, folded back by the
adjoint of the padding.

Memory is bounded whatever the size: the outputs are processed in tiles
whose patches take at most `PATCH_BUFFER_BYTES`, so besides the input, the
output and the padded input, a product holds one patch buffer and one block
of results.

Arrays are blocks of columns, one sample per column: ``(C*n, k)`` in the
operators, seen here as ``(C, *spatial, k)``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from linop._conv.geometry import ConvGeometry
from linop._conv.method import ConvMethod
from linop._conv.padding import fold, pad

__all__ = ["PATCH_BUFFER_BYTES", "Im2colMethod", "tiles"]

#: Most bytes of gathered patches that im2col holds at once.
PATCH_BUFFER_BYTES = 64 * 2**20


def tiles(sizes, k: int, unit_bytes: int, budget: int):
    """Cover an ``(*sizes, k)`` grid of outputs with tiles of at most ``budget`` bytes.

    ``unit_bytes`` is what one output of one sample needs. Tiles are taken
    in C order: whole trailing axes and a range of one axis (and of the
    samples, when one output of every sample is already too much).

    Yields
    ------
    spatial : tuple of slice
        One slice per axis of ``sizes``.
    samples : slice
        The samples (columns) of the tile.
    """
    per_tile = max(1, budget // max(1, unit_bytes))  # outputs x samples
    kb = min(k, per_tile)
    pixels = max(1, per_tile // kb)
    nd = len(sizes)
    # the outermost axis whose trailing block still fits
    axis = next((a for a in range(nd) if math.prod(sizes[a + 1:]) <= pixels), nd - 1)
    step = max(1, pixels // math.prod(sizes[axis + 1:]))
    for b0 in range(0, k, kb):
        samples = slice(b0, min(b0 + kb, k))
        for prefix in itertools.product(*(range(n) for n in sizes[:axis])):
            for start in range(0, sizes[axis], step):
                spatial = tuple(slice(i, i + 1) for i in prefix) + (
                    slice(start, min(start + step, sizes[axis])),) + tuple(
                    slice(0, n) for n in sizes[axis + 1:])
                yield spatial, samples


def _windows(geometry: ConvGeometry, spatial):
    """For every tap (C order), the strided slices of the padded input it reads for a tile."""
    for taps in itertools.product(*map(range, geometry.kernel_size)):
        yield tuple(
            slice(o.start * s + j * d, (o.stop - 1) * s + j * d + 1, s)
            for o, j, s, d in zip(spatial, taps, geometry.stride, geometry.dilation)
        )


class Im2colMethod(ConvMethod):
    """A convolution applied by gathering patches and one GEMM per group.

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    geometry : ConvGeometry
    groups : int
    """

    name = "im2col"

    def __init__(self, weight: np.ndarray, geometry: ConvGeometry, groups: int):
        super().__init__(weight, geometry, groups)
        # (G, C_out/G, C_in/G * K): rows of W, columns ordered (channel, tap) like the patches
        self._w = weight.reshape(groups, self.c_out // groups, self.cin_g * geometry.n_taps)

    def _layout(self, a: np.ndarray, channels: int, sizes):
        return a.reshape((channels,) + tuple(sizes) + (a.shape[-1],))

    def _blocks(self, sizes, k, itemsize):
        unit = self.geometry.n_taps * self.c_in * itemsize
        return tiles(sizes, k, unit, PATCH_BUFFER_BYTES)

    @property
    def _pointwise(self) -> bool:
        """A 1x1 convolution without stride or padding: the patches are the input itself."""
        g = self.geometry
        return g.n_taps == 1 and g.input_size == g.output_size and g.padded_size == g.input_size

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for columns ``(C_in*n_in, k)`` -> ``(C_out*n_out, k)``."""
        g_ = self.geometry
        k = x.shape[-1]
        if self._pointwise:
            with np.errstate(invalid="ignore", over="ignore"):
                out = np.matmul(self._w, x.reshape(self.groups, self.cin_g, -1))
            return out.reshape(-1, k)
        dtype = np.result_type(x.dtype, self.weight.dtype)
        xpad = pad(self._layout(x, self.c_in, g_.input_size), g_.padding, g_.padding_mode)
        out = np.empty((self.c_out,) + g_.output_size + (k,), dtype=dtype)
        flat_out = out.reshape(self.groups, self.c_out // self.groups, -1)
        n_taps, g = g_.n_taps, self.groups
        with np.errstate(invalid="ignore", over="ignore"):
            for spatial, samples in self._blocks(g_.output_size, k, x.itemsize):
                shape = tuple(s.stop - s.start for s in spatial) + (samples.stop - samples.start,)
                cols = np.empty((self.c_in, n_taps) + shape, dtype=x.dtype)
                for t, window in enumerate(_windows(g_, spatial)):
                    cols[:, t] = xpad[(slice(None),) + window + (samples,)]
                cols = cols.reshape(g, -1, math.prod(shape))
                span = _contiguous_span(g_.output_size, k, spatial, samples)
                if span is not None:
                    np.matmul(self._w, cols, out=flat_out[:, :, span])
                else:
                    block = np.matmul(self._w, cols)
                    out[(slice(None),) + spatial + (samples,)] = block.reshape(
                        (self.c_out,) + shape)
        return out.reshape(-1, k)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``A^T y`` for columns ``(C_out*n_out, k)`` -> ``(C_in*n_in, k)``."""
        g_ = self.geometry
        k = y.shape[-1]
        if self._pointwise:
            with np.errstate(invalid="ignore", over="ignore"):
                x = np.matmul(self._w.transpose(0, 2, 1),
                              y.reshape(self.groups, self.c_out // self.groups, -1))
            return x.reshape(-1, k)
        dtype = np.result_type(y.dtype, self.weight.dtype)
        y_grid = self._layout(y, self.c_out, g_.output_size)
        flat_y = y.reshape(self.groups, self.c_out // self.groups, -1)
        w_t = self._w.transpose(0, 2, 1)  # (G, C_in/G * K, C_out/G)
        xpad = np.zeros((self.c_in,) + g_.padded_size + (k,), dtype=dtype)
        n_taps = g_.n_taps
        with np.errstate(invalid="ignore", over="ignore"):
            for spatial, samples in self._blocks(g_.output_size, k, np.dtype(dtype).itemsize):
                shape = tuple(s.stop - s.start for s in spatial) + (samples.stop - samples.start,)
                span = _contiguous_span(g_.output_size, k, spatial, samples)
                if span is not None:
                    block = flat_y[:, :, span]
                else:
                    block = np.ascontiguousarray(
                        y_grid[(slice(None),) + spatial + (samples,)]).reshape(
                        self.groups, -1, math.prod(shape))
                if w_t.shape[2] == 1:  # one output channel per group: an outer product
                    cols = np.multiply(w_t, block)  # (a matmul over 1 term is slow)
                else:
                    cols = np.matmul(w_t, block)
                cols = cols.reshape((self.c_in, n_taps) + shape)
                for t, window in enumerate(_windows(g_, spatial)):
                    xpad[(slice(None),) + window + (samples,)] += cols[:, t]
            x = fold(xpad, g_.padding, g_.padding_mode, g_.input_size)
        return np.ascontiguousarray(x).reshape(-1, k)


def _contiguous_span(sizes, k: int, spatial, samples) -> slice | None:
    """The tile as a range of the flattened ``(*sizes, k)`` grid, if it is one."""
    if samples.stop - samples.start != k:
        return None
    axis = next((a for a, s in enumerate(spatial) if s.stop - s.start != 1), len(spatial) - 1)
    if any(s.stop - s.start != n for s, n in zip(spatial[axis + 1:], sizes[axis + 1:])):
        return None
    start = sum(s.start * math.prod(sizes[a + 1:]) for a, s in enumerate(spatial))
    count = math.prod(s.stop - s.start for s in spatial)
    return slice(start * k, (start + count) * k)
