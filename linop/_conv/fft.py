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

The outputs are cut into tiles, the same on every axis for every tile: a
tile reads its input window, halo included (overlap-save), and the
transpose adds every tile's window back into the padded buffer
(overlap-add). The tile size per axis minimises the work ``tiles x length x
log(length)``, as ``scipy.signal.oaconvolve`` does: a long signal with a
moderate kernel goes through many short transforms that stay in cache
rather than one long one. All tiles of a row are transformed in one batched
call (the windows are a strided view of the padded input, never copied
first), so Python's overhead does not grow with the number of tiles, and
the rows are bounded by `FFT_BUFFER_BYTES`. All tiles share one FFT shape,
so the kernel's spectra are computed once per direction and cached. float32
data stays float32 (``scipy.fft`` computes in single precision), and the
transforms run on all cores (``workers=``).

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


#: A 1-D signal much longer than its kernel goes through transforms of about this
#: length (at least 8 kernel reaches): short enough to stay in cache, long enough that
#: the overlaps and the per-transform overhead stay small (measured: 1001 taps on 10^6
#: samples, 2.7x faster than one transform; 31 taps on 10^5, 2.4x).
FFT_SEGMENT = 4096


def _length(t: int, s: int, r: int) -> int:
    """The FFT length of a tile of ``t`` outputs: its window ``(t-1)*s + r + 1``, made fast."""
    return scipy.fft.next_fast_len((t - 1) * s + r + 1, real=True)


def _segment_tile(m: int, s: int, r: int) -> int:
    """Outputs per tile of a long 1-D signal (`FFT_SEGMENT`), or ``m`` (one transform)."""
    length = scipy.fft.next_fast_len(max(FFT_SEGMENT, 8 * (r + 1)), real=True)
    return max(1, min(m, (length - r - 1) // s + 1))


def fft_tile_shape(geometry: ConvGeometry, c_in: int, c_out: int, k: int, itemsize: int,
                   budget: int | None = None) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Output tile sizes, their FFT lengths, and tiles of the first axis per batch.

    One tile covers a whole axis, except along a long 1-D signal, which is cut
    into segments of about `FFT_SEGMENT` (measured: in 2-D and 3-D, batches of
    small transforms are slower than one large one). While one row of tiles
    (one tile of the first axis, all of the others, every sample) exceeds
    ``budget``, the first axis's tile is halved.

    Returns
    -------
    tile : tuple of int
        Outputs per tile along each axis.
    lengths : tuple of int
        FFT length per axis (a `scipy.fft.next_fast_len` of at least the
        tile's input window, ``(tile - 1)*stride + reach + 1``).
    rows : int
        Tiles of the first axis transformed together (at least 1).
    """
    budget = FFT_BUFFER_BYTES if budget is None else budget
    g = geometry
    tile = list(g.output_size)
    if g.ndim == 1:
        tile[0] = _segment_tile(g.output_size[0], g.stride[0], g.reach[0])

    def row_bytes(tile):
        lengths = [_length(t, s, r) for t, s, r in zip(tile, g.stride, g.reach)]
        others = math.prod(-(-m // t) for m, t in zip(g.output_size[1:], tile[1:]))
        return _tile_bytes(lengths, c_in, c_out, k, itemsize) * others

    while row_bytes(tile) > budget and tile[0] > 1:
        tile[0] = (tile[0] + 1) // 2
    lengths = tuple(_length(t, s, r) for t, s, r in zip(tile, g.stride, g.reach))
    rows = max(1, min(-(-g.output_size[0] // tile[0]), budget // max(1, row_bytes(tile))))
    return tuple(tile), lengths, rows


def zero_lines(geometry: ConvGeometry, transpose: bool) -> list[np.ndarray]:
    """Per spatial axis, the indices that a transform would not leave exactly zero.

    For ``A x`` these are the outputs that read only zero padding; for
    ``A^T y`` the inputs that no output reads. An FFT spreads rounding over
    every point, so both engines' FFT methods set these lines to exact zeros
    afterwards, as the other methods give.
    """
    lines = []
    for axis, (_, hi) in zip(axis_geometry(geometry), geometry.padding):
        if transpose:
            lines.append(unread_inputs(*axis, hi, geometry.padding_mode))
        elif geometry.padding_mode == "zeros":
            lines.append(dead_outputs(*axis))
        else:  # every tap reads a pixel
            lines.append(np.array([], dtype=np.intp))
    return lines


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
        return self._memo.get(("dead", transpose), lambda: zero_lines(self.geometry, transpose))

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
        """Channel mixing per frequency of a batch of tiles.

        ``data`` is ``(C_a, tiles, *frequencies, k)``; the result
        ``(C_b, tiles, *frequencies, k)``, the same mixing for every tile.
        """
        g = self.groups
        c_from = self.c_out if transpose else self.c_in
        c_to = self.c_in if transpose else self.c_out
        n_tiles, freqs, k = data.shape[1], data.shape[2:-1], data.shape[-1]
        if self.cin_g == 1 and self.c_out == g:  # one channel per group: elementwise
            factor = spectra[:, :, 0, 0].T.reshape((c_to, 1) + freqs + (1,))
            return data * factor
        n_freq = math.prod(freqs)
        x = data.reshape(g, c_from // g, n_tiles, n_freq, k).transpose(2, 3, 0, 1, 4)
        mixing = spectra.transpose(0, 1, 3, 2) if transpose else spectra  # (F, G, to, from)
        y = np.matmul(mixing, x)  # (tiles, F, G, c_to/G, k)
        return np.ascontiguousarray(y.transpose(2, 3, 0, 1, 4)).reshape(
            (c_to, n_tiles) + freqs + (k,))

    # -- applying -------------------------------------------------------------------------
    def _transforms(self, dtype):
        complex_data = np.iscomplexobj(np.empty(0, dtype)) or np.iscomplexobj(self.weight)
        if complex_data:
            return True, scipy.fft.fftn, scipy.fft.ifftn
        return False, scipy.fft.rfftn, scipy.fft.irfftn

    def _layout(self, k: int, itemsize: int):
        """Tiles, FFT lengths, and tile rows per batch (only the first axis has several tiles)."""
        tile, lengths, rows = fft_tile_shape(self.geometry, self.c_in, self.c_out, k, itemsize)
        return tile, lengths, rows, -(-self.geometry.output_size[0] // tile[0])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for columns ``(C_in*n_in, k)`` -> ``(C_out*n_out, k)``.

        Overlap-save along the first axis: the windows of a batch of tiles are
        a strided view of the padded input (copied only where the last ones
        run past its end); every other axis is one window, which the
        transform zero-extends to its FFT length.
        """
        if not np.isfinite(x).all():
            return self._direct.forward(x)
        g_ = self.geometry
        k = x.shape[-1]
        dtype = np.result_type(x.dtype, self.weight.dtype)
        complex_data, transform, inverse = self._transforms(dtype)
        tile, lengths, rows, n_tiles = self._layout(k, x.itemsize)
        xpad = pad(x.reshape((self.c_in,) + g_.input_size + (k,)), g_.padding, g_.padding_mode)
        used = tuple(min(p, length) for p, length in zip(g_.padded_size[1:], lengths[1:]))
        xpad = xpad[(slice(None), slice(None)) + tuple(slice(0, u) for u in used)]
        spectra = self._spectra(lengths, True, complex_data)
        out = np.empty((self.c_out,) + g_.output_size + (k,), dtype=dtype)
        t0, step = tile[0], tile[0] * g_.stride[0]
        keep = tuple(slice(r, r + (t - 1) * s + 1, s)
                     for r, t, s in zip(g_.reach, (t0,) + g_.output_size[1:], g_.stride))
        axes = tuple(range(2, 2 + g_.ndim))
        workers = num_threads()
        for j0 in range(0, n_tiles, rows):
            n0 = min(rows, n_tiles - j0)
            region = xpad[:, j0 * step: j0 * step + (n0 - 1) * step + lengths[0]]
            short = (n0 - 1) * step + lengths[0] - region.shape[1]
            if short > 0:  # the last windows run past the padded input: zeros there
                region = np.pad(region, [(0, 0), (0, short)] + [(0, 0)] * (region.ndim - 2))
            st = region.strides
            windows = np.lib.stride_tricks.as_strided(  # (C, n0, window, *rest, k), read only
                region, shape=(self.c_in, n0, lengths[0]) + region.shape[2:],
                strides=(st[0], st[1] * step) + st[1:], writeable=False)
            spectrum = transform(windows, s=lengths, axes=axes, workers=workers)
            z = inverse(self._mix(spectra, spectrum, transpose=False), s=lengths, axes=axes,
                        workers=workers)
            block = z[(slice(None), slice(None)) + keep]  # (C_out, n0, t0, *out[1:], k)
            first, last = j0 * t0, min((j0 + n0) * t0, g_.output_size[0])
            block = block.reshape((self.c_out, n0 * t0) + block.shape[3:])
            out[:, first:last] = block[:, : last - first]
        self._clear(out, self._zero_lines(transpose=False))
        return out.reshape(-1, k)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``A^T y`` for columns ``(C_out*n_out, k)`` -> ``(C_in*n_in, k)``.

        Overlap-add along the first axis: every tile of outputs, put back on
        its strided grid, is transformed with its neighbours of the batch, and
        its window is added into a zeroed padded buffer; the padding is then
        folded back.
        """
        if not np.isfinite(y).all():
            return self._direct.transpose(y)
        g_, nd = self.geometry, self.geometry.ndim
        k = y.shape[-1]
        dtype = np.result_type(y.dtype, self.weight.dtype)
        complex_data, transform, inverse = self._transforms(dtype)
        tile, lengths, rows, n_tiles = self._layout(k, y.itemsize)
        spectra = self._spectra(lengths, False, complex_data)
        y_grid = y.reshape((self.c_out,) + g_.output_size + (k,))
        t0, step = tile[0], tile[0] * g_.stride[0]
        spill = -(-lengths[0] // step)  # the steps one window covers
        rest = g_.padded_size[1:]
        xgrid = np.zeros((self.c_in, n_tiles + spill, step) + rest + (k,), dtype=dtype)
        stuffed_shape = ((t0 - 1) * g_.stride[0] + 1,) + tuple(
            (m - 1) * s + 1 for m, s in zip(g_.output_size[1:], g_.stride[1:]))
        grid_slots = tuple(slice(None, None, s) for s in g_.stride)
        axes = tuple(range(2, 2 + nd))
        workers = num_threads()
        for j0 in range(0, n_tiles, rows):
            n0 = min(rows, n_tiles - j0)
            first, last = j0 * t0, min((j0 + n0) * t0, g_.output_size[0])
            tiles = np.zeros((self.c_out, n0 * t0) + g_.output_size[1:] + (k,), dtype=dtype)
            tiles[:, : last - first] = y_grid[:, first:last]
            tiles = tiles.reshape((self.c_out, n0, t0) + g_.output_size[1:] + (k,))
            stuffed = np.zeros((self.c_out, n0) + stuffed_shape + (k,), dtype=dtype)
            stuffed[(slice(None), slice(None)) + grid_slots] = tiles
            spectrum = transform(stuffed, s=lengths, axes=axes, workers=workers)
            windows = inverse(self._mix(spectra, spectrum, transpose=True), s=lengths, axes=axes,
                              workers=workers)  # (C_in, n0, L0, *lengths[1:], k)
            # along the other axes the window starts at 0; what lies past the padded
            # input (or past the window) is zero
            inside = tuple(slice(0, min(p, length)) for p, length in zip(rest, lengths[1:]))
            for q in range(spill):  # segment q of window j lands on step j + q
                width = min(step, lengths[0] - q * step)
                xgrid[(slice(None), slice(j0 + q, j0 + q + n0), slice(0, width)) + inside] += \
                    windows[(slice(None), slice(None), slice(q * step, q * step + width))
                            + inside]
        xpad = xgrid.reshape((self.c_in, (n_tiles + spill) * step) + rest + (k,))
        xpad = xpad[:, : g_.padded_size[0]]
        x = np.ascontiguousarray(fold(xpad, g_.padding, g_.padding_mode, g_.input_size))
        self._clear(x, self._zero_lines(transpose=True))
        return x.reshape(-1, k)
