"""FFT: a convolution as products of spectra, in overlapping tiles.

A convolution is ``y = S(V(pad(x)))``: ``pad`` applies the padding mode,
``V`` is the full-resolution "valid" correlation with the dilated kernel,
``z[p] = sum_j w[j] xpad[p + j*d]``, and ``S`` keeps every ``stride``-th
output. With the flipped dilated kernel ``h`` (``h[r - j*d] = w[j]``, ``r =
d*(k-1)``), ``z[p]`` is the circular convolution of ``xpad`` and ``h`` at
``p + r`` for any FFT length that covers ``xpad``: the wrap-around only
touches positions below ``r``, which are never read. Channels mix per
frequency (one small matrix product per frequency and group).

The transpose runs the same steps backwards: ``S^T`` puts the outputs back
on the strided grid (zeros in between), ``V^T`` is the convolution with the
dilated kernel ``g`` (``g[j*d] = w[j]``, no conjugation), and the padding's
adjoint (`linop._conv.padding.fold`) folds the border back, exactly as the
other methods do.

Memory is bounded: the outputs are cut into tiles whose FFTs take at most
`FFT_BUFFER_BYTES`; a tile reads its input window, halo included
(overlap-save), and the transpose adds every tile's window into the padded
buffer (overlap-add). All tiles share one FFT shape, so the kernel's spectra
are computed once per direction and cached. float32 data stays float32
(``scipy.fft`` computes in single precision), and the transforms run on all
cores (``workers=``).

Where the matrix has an empty row (an output that reads only zero padding)
or an empty column (an input pixel that no output reads), the result is set
to an exact zero, as the other methods give, rather than to the transforms'
round-off.

Non-finite data would spread through a whole FFT: an input that is not all
finite is applied with `~linop._conv.im2col.Im2colMethod` instead (the same
numbers as PyTorch, see the guarantees), and weights that are not all finite
are refused.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from linop._conv.geometry import ConvGeometry
from linop._conv.im2col import Im2colMethod
from linop._conv.method import ConvMethod
from linop._conv.padding import fold, pad
from linop._conv.taps import axis_geometry, dead_outputs, unread_inputs
from linop._threads import num_threads
from linop._validation import ParameterValueError

__all__ = ["FFT_BUFFER_BYTES", "FFTMethod", "fft_tile_shape"]

#: Most bytes the transforms of one tile hold at once.
FFT_BUFFER_BYTES = 64 * 2**20


def _tile_bytes(lengths, c_in: int, c_out: int, k: int, itemsize: int) -> int:
    """The workspace of one tile: the window and the output block, real and as spectra,
    and the frequency-major copies of the channel mixing."""
    return 4 * (c_in + c_out) * math.prod(lengths) * k * itemsize


def fft_tile_shape(geometry: ConvGeometry, c_in: int, c_out: int, k: int, itemsize: int,
                   budget: int | None = None) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Output tile sizes, their FFT lengths, and samples per tile within ``budget``.

    Starts from the whole output and halves the axis with the longest FFT
    until a tile fits (or every tile is one output wide).

    Returns
    -------
    tile : tuple of int
        Outputs per tile along each axis.
    lengths : tuple of int
        FFT length per axis (`scipy.fft.next_fast_len` of the tile's input
        window, ``(tile - 1)*stride + reach + 1``).
    samples : int
        Columns (samples) transformed together.
    """
    budget = FFT_BUFFER_BYTES if budget is None else budget
    tile = list(geometry.output_size)

    def lengths_of(t):
        return tuple(scipy.fft.next_fast_len((ti - 1) * s + r + 1, real=True)
                     for ti, s, r in zip(t, geometry.stride, geometry.reach))

    lengths = lengths_of(tile)
    while _tile_bytes(lengths, c_in, c_out, 1, itemsize) > budget and max(tile) > 1:
        axis = max((a for a in range(len(tile)) if tile[a] > 1), key=lambda a: lengths[a])
        tile[axis] = (tile[axis] + 1) // 2
        lengths = lengths_of(tile)
    samples = max(1, min(k, budget // max(1, _tile_bytes(lengths, c_in, c_out, 1, itemsize))))
    return tuple(tile), lengths, samples


def _tiles(sizes, tile):
    """Slices of ``sizes`` in blocks of ``tile``, C order."""
    starts = np.stack(np.meshgrid(*(np.arange(0, n, t) for n, t in zip(sizes, tile)),
                                  indexing="ij"), axis=-1).reshape(-1, len(sizes))
    for start in starts:
        yield tuple(slice(int(a), int(min(a + t, n))) for a, t, n in zip(start, tile, sizes))


class FFTMethod(ConvMethod):
    """A convolution applied by FFTs of overlapping tiles (see the module docstring).

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
        All finite.
    geometry : ConvGeometry
    groups : int

    Raises
    ------
    ParameterValueError
        If the weight holds an infinity or NaN.
    """

    name = "fft"

    def __init__(self, weight: np.ndarray, geometry: ConvGeometry, groups: int):
        if not np.isfinite(weight).all():
            raise ParameterValueError(
                "method", "method='fft' needs finite weights (an infinity or NaN would spread "
                "through every output of a transform); use method='im2col' or 'toeplitz'"
            )
        super().__init__(weight, geometry, groups)
        self._direct = Im2colMethod(weight, geometry, groups)

    def _zero_lines(self, transpose: bool):
        """Per axis, the outputs (or, for the transpose, inputs) that are exact zeros."""
        g = self.geometry

        def build():
            lines = []
            for axis, (_, hi) in zip(axis_geometry(g), g.padding):
                if transpose:
                    lines.append(unread_inputs(*axis, hi, g.padding_mode))
                elif g.padding_mode == "zeros":
                    lines.append(dead_outputs(*axis))
                else:  # every tap reads a pixel
                    lines.append(np.array([], dtype=np.intp))
            return lines

        return self._memo.get(("dead", transpose), build)

    @staticmethod
    def _clear(a: np.ndarray, lines) -> None:
        for axis, index in enumerate(lines, start=1):
            if index.size:
                where = [slice(None)] * a.ndim
                where[axis] = index
                a[tuple(where)] = 0

    # -- the kernel's spectra ------------------------------------------------------------
    @property
    def _axes(self) -> tuple[int, ...]:
        return tuple(range(1, self.geometry.ndim + 1))

    def _spectra(self, lengths, flipped: bool, complex_data: bool) -> np.ndarray:
        """Spectra of the dilated kernel, flipped (forward) or not (transpose).

        Shape ``(F, G, C_out/G, C_in/G)``, frequency first, for the channel
        mixing as one batched matrix product (``F`` the flattened frequencies).
        """
        return self._memo.get(("H" if flipped else "G", lengths, complex_data),
                              lambda: self._build_spectra(lengths, flipped, complex_data))

    def _build_spectra(self, lengths, flipped: bool, complex_data: bool) -> np.ndarray:
        g_ = self.geometry
        w = self.weight
        kernel = np.zeros((self.c_out, self.cin_g) + tuple(r + 1 for r in g_.reach), dtype=w.dtype)
        where = tuple(slice(None, None, d) for d in g_.dilation)
        kernel[(slice(None), slice(None)) + where] = w
        if flipped:
            kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * g_.ndim]
        spatial = tuple(range(2, 2 + g_.ndim))
        transform = scipy.fft.fftn if complex_data else scipy.fft.rfftn
        spectrum = transform(kernel, s=lengths, axes=spatial, workers=num_threads())
        g, cout_g = self.groups, self.c_out // self.groups
        spectrum = spectrum.reshape(g, cout_g, self.cin_g, -1)
        return np.ascontiguousarray(spectrum.transpose(3, 0, 1, 2))

    def _mix(self, spectra: np.ndarray, data: np.ndarray, transpose: bool) -> np.ndarray:
        """Channel mixing per frequency: ``(C_a, *F, k) -> (C_b, *F, k)``."""
        g = self.groups
        c_from = self.c_out if transpose else self.c_in
        c_to = self.c_in if transpose else self.c_out
        freq_shape, k = data.shape[1:-1], data.shape[-1]
        if self.cin_g == 1 and self.c_out == g:  # one channel per group: elementwise
            factor = spectra[:, :, 0, 0].T.reshape((c_to,) + freq_shape + (1,))
            return data * factor
        n_freq = math.prod(freq_shape)
        x = data.reshape(g, c_from // g, n_freq, k).transpose(2, 0, 1, 3)  # (F, G, c, k)
        mixing = spectra.transpose(0, 1, 3, 2) if transpose else spectra
        y = np.matmul(mixing, x)  # (F, G, c_to/G, k)
        return np.ascontiguousarray(y.transpose(1, 2, 0, 3)).reshape(
            (c_to,) + freq_shape + (k,))

    # -- applying -------------------------------------------------------------------------
    def _transforms(self, dtype):
        complex_data = np.iscomplexobj(np.empty(0, dtype)) or np.iscomplexobj(self.weight)
        if complex_data:
            return True, scipy.fft.fftn, scipy.fft.ifftn
        return False, scipy.fft.rfftn, scipy.fft.irfftn

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for columns ``(C_in*n_in, k)`` -> ``(C_out*n_out, k)``."""
        if not np.isfinite(x).all():
            return self._direct.forward(x)
        g_ = self.geometry
        k = x.shape[-1]
        dtype = np.result_type(x.dtype, self.weight.dtype)
        complex_data, transform, inverse = self._transforms(dtype)
        grid = x.reshape((self.c_in,) + g_.input_size + (k,))
        xpad = pad(grid, g_.padding, g_.padding_mode)
        tile, lengths, kb = fft_tile_shape(g_, self.c_in, self.c_out, k, x.itemsize)
        spectra = self._spectra(lengths, True, complex_data)
        out = np.empty((self.c_out,) + g_.output_size + (k,), dtype=dtype)
        workers = num_threads()
        for spatial in _tiles(g_.output_size, tile):
            window = tuple(slice(o.start * s, (o.stop - 1) * s + r + 1)
                           for o, s, r in zip(spatial, g_.stride, g_.reach))
            keep = tuple(slice(r, r + (o.stop - o.start - 1) * s + 1, s)
                         for o, s, r in zip(spatial, g_.stride, g_.reach))
            for b0 in range(0, k, kb):
                samples = slice(b0, min(b0 + kb, k))
                block = xpad[(slice(None),) + window + (samples,)]
                spectrum = transform(block, s=lengths, axes=self._axes, workers=workers)
                mixed = self._mix(spectra, spectrum, transpose=False)
                z = inverse(mixed, s=lengths, axes=self._axes, workers=workers)
                out[(slice(None),) + spatial + (samples,)] = z[(slice(None),) + keep]
        self._clear(out, self._zero_lines(transpose=False))
        return out.reshape(-1, k)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``A^T y`` for columns ``(C_out*n_out, k)`` -> ``(C_in*n_in, k)``."""
        if not np.isfinite(y).all():
            return self._direct.transpose(y)
        g_ = self.geometry
        k = y.shape[-1]
        dtype = np.result_type(y.dtype, self.weight.dtype)
        complex_data, transform, inverse = self._transforms(dtype)
        grid = y.reshape((self.c_out,) + g_.output_size + (k,))
        tile, lengths, kb = fft_tile_shape(g_, self.c_in, self.c_out, k, y.itemsize)
        spectra = self._spectra(lengths, False, complex_data)
        xpad = np.zeros((self.c_in,) + g_.padded_size + (k,), dtype=dtype)
        workers = num_threads()
        for spatial in _tiles(g_.output_size, tile):
            counts = tuple(o.stop - o.start for o in spatial)
            # the tile's outputs on the strided grid, zeros in between
            stuffed_shape = tuple((c - 1) * s + 1 for c, s in zip(counts, g_.stride))
            grid_slots = tuple(slice(None, None, s) for s in g_.stride)
            target = tuple(slice(o.start * s, o.start * s + n + r)
                           for o, s, n, r in zip(spatial, g_.stride, stuffed_shape, g_.reach))
            for b0 in range(0, k, kb):
                samples = slice(b0, min(b0 + kb, k))
                stuffed = np.zeros((self.c_out,) + stuffed_shape + (samples.stop - b0,),
                                   dtype=dtype)
                stuffed[(slice(None),) + grid_slots] = grid[(slice(None),) + spatial + (samples,)]
                spectrum = transform(stuffed, s=lengths, axes=self._axes, workers=workers)
                mixed = self._mix(spectra, spectrum, transpose=True)
                window = inverse(mixed, s=lengths, axes=self._axes, workers=workers)
                crop = tuple(slice(0, t.stop - t.start) for t in target)
                xpad[(slice(None),) + target + (samples,)] += window[(slice(None),) + crop]
        x = np.ascontiguousarray(fold(xpad, g_.padding, g_.padding_mode, g_.input_size))
        self._clear(x, self._zero_lines(transpose=True))
        return x.reshape(-1, k)
