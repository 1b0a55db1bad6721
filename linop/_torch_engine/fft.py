"""The FFT method on the torch engine: a convolution as products of spectra, by ``torch.fft``.

The same algorithm as the NumPy engine's `linop._conv.fft` (see its module
docstring for the derivation), on batch-first tensors ``(k, C, *size)`` of
any device (CPU or CUDA; nothing is moved between devices):

- ``A x``: the padding mode by `linop._torch_engine.conv.pad`, then the
  "valid" correlation with the dilated kernel as a circular convolution
  with the flipped kernel ``h`` (``h[r - j*d] = w[j]``, ``r = d*(k-1)``),
  ``torch.fft.rfftn`` (``fftn`` for complex data), one channel mixing per
  frequency and group (one batched ``matmul``, frequency-major, as the
  NumPy method mixes), ``torch.fft.irfftn``; every
  ``stride``-th output is kept.
- ``A^T y``: the outputs put back on their strided grid (zeros between),
  the convolution with the unflipped dilated kernel ``g`` (``g[j*d] =
  w[j]``), and the adjoint of the padding (`linop._torch_engine.conv.fold`):
  the exact adjoint, computed by the same path.
- ``A^H`` and ``conj(A)``: the same with the conjugated weight.

Tiles: the outputs are cut into tiles along the first spatial axis only,
with the NumPy method's layout (`linop._conv.fft.fft_tile_shape`: a long
1-D signal in segments of about ``FFT_SEGMENT``, the first axis halved
while a batch of tiles exceeds ``FFT_BUFFER_BYTES``). The windows of a
batch are a strided view of the padded input (``Tensor.unfold``, no copy);
the transpose adds every window back into the padded buffer (overlap-add).
What one call holds at its peak is sized before anything is allocated and
refused beyond `linop.get_memory_limit` (`~linop.MatrixTooLargeError`).

Exact zeros: outputs that read only zero padding (and, for the transpose,
inputs that no output reads) are set to exact zeros, as the other methods
give. Non-finite input would spread through a whole transform: an input
that is not all finite is applied by the direct convolution
(`~linop._torch_engine.conv.TorchConv`, the same numbers as PyTorch), as
the NumPy method falls back to im2col; weights that are not all finite are
refused.
"""

from __future__ import annotations

import math

import numpy as np

from linop._conv.fft import fft_tile_shape, zero_lines
from linop._memo import Memo
from linop._memory import check_nbytes
from linop._torch_engine.conv import ConvSizes, TorchConv, TorchConvMethod, fold, pad
from linop._torch_engine.runtime import LinearCalls, precise, torch_module
from linop._validation import ParameterValueError

__all__ = ["TorchFFT", "TorchFFTMethod", "torch_fft_nbytes"]


def torch_fft_nbytes(weight_shape, geometry, groups: int, k: int, itemsize: int,
                     complex_data: bool) -> int:
    """What one application of `TorchFFT` holds at its peak, in bytes.

    The padded input (or, for the transpose, the padded buffer), the output,
    one batch of tiles' transforms (at most about ``FFT_BUFFER_BYTES``, see
    `linop._conv.fft.fft_tile_shape`) and the kernel's spectra.
    """
    g = geometry
    c_out, cin_g = weight_shape[:2]
    c_in = cin_g * groups
    tile, lengths, rows = fft_tile_shape(g, c_in, c_out, k, itemsize)
    n_tiles = -(-g.output_size[0] // tile[0])
    step = tile[0] * g.stride[0]
    spill = -(-lengths[0] // step)
    padded0 = max(g.padded_size[0], (n_tiles + spill) * step)
    padded = padded0 * math.prod(g.padded_size[1:])
    points = math.prod(lengths)
    spectrum = points if complex_data else points // lengths[-1] * (lengths[-1] // 2 + 1)
    real = itemsize // 2 if complex_data else itemsize
    batch = 4 * (c_in + c_out) * points * k * itemsize * min(rows, n_tiles)
    spectra = c_out * cin_g * spectrum * 2 * real
    return (2 * c_in * padded * k * itemsize + c_out * math.prod(g.output_size) * k * itemsize
            + batch + spectra)


class TorchFFT(ConvSizes, LinearCalls):
    """The convolution ``A`` of a weight, a geometry and groups, applied by ``torch.fft``.

    The same calls as `~linop._torch_engine.conv.TorchConv` (``forward``,
    ``transpose``, ``adjoint``, ``conjugate`` on batch-first tensors of the
    result's dtype), on the device of the tensors.

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

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        if not np.isfinite(weight).all():
            raise ParameterValueError(
                "method", "method='fft' needs finite weights (an infinity or NaN would spread "
                "through every output of a transform); use method='im2col' or 'toeplitz'")
        super().__init__(weight, geometry, groups)
        self.direct = TorchConv(weight, geometry, groups)
        self._depthwise = self.cin_g == 1 and self.c_out == groups
        self._memo = Memo()

    # -- what is built once --------------------------------------------------------------
    def _zero_lines(self, transpose: bool):
        """Per spatial axis, the outputs (transpose: inputs) that are exact zeros (NumPy)."""
        return self._memo.get(("dead", transpose), lambda: zero_lines(self.geometry, transpose))

    def _clear(self, t, transpose: bool) -> None:
        torch = torch_module()
        for i, index in enumerate(self._zero_lines(transpose)):
            if index.size:
                t.index_fill_(2 + i, torch.as_tensor(index, device=t.device), 0)

    def _spectra(self, lengths, flipped: bool, conjugate: bool, like):
        """The dilated kernel's spectra on ``like``'s device, from ``rfftn`` (``fftn`` for
        complex data): flipped for the forward, as frequency-major matrices ``(F, G, C_out/G,
        C_in/G)``; unflipped for the transpose, ``(F, G, C_in/G, C_out/G)``; one channel per
        group: ``(1, C, 1, *frequencies)``."""
        complex_data = like.is_complex()
        key = ("spectra", lengths, flipped, conjugate and complex_data, str(like.device),
               like.dtype)

        def build():
            torch = torch_module()
            g = self.geometry
            w = self.weight.conj() if key[3] else self.weight
            kernel = np.zeros((self.c_out, self.cin_g) + tuple(r + 1 for r in g.reach),
                              dtype=np.result_type(w.dtype, np.float32))
            kernel[(slice(None), slice(None)) + tuple(slice(None, None, d)
                                                      for d in g.dilation)] = w
            if flipped:
                kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * g.ndim]
            t = torch.from_numpy(np.ascontiguousarray(kernel)).to(device=like.device,
                                                                    dtype=like.dtype)
            dims = tuple(range(2, 2 + g.ndim))
            transform = torch.fft.fftn if complex_data else torch.fft.rfftn
            spectrum = transform(t, s=lengths, dim=dims)
            if self._depthwise:  # (1, C, 1, *frequencies), for elementwise products
                return spectrum.reshape((1, self.c_out, 1) + spectrum.shape[2:])
            g = self.groups
            # frequency-major matrices (F, G, to, from): forward C_out <- C_in, else back
            spectrum = spectrum.reshape(g, self.c_out // g, self.cin_g, -1).permute(3, 0, 1, 2)
            return (spectrum if flipped else spectrum.transpose(2, 3)).contiguous()

        return self._memo.get(key, build)

    def _layout(self, k: int, like):
        g = self.geometry
        itemsize = like.element_size()
        check_nbytes(
            torch_fft_nbytes(self.weight.shape, g, self.groups, k, itemsize, like.is_complex()),
            f"method='fft' on {k} sample{'s' * (k != 1)} of this convolution",
            "apply it to fewer columns at a time, use method='im2col'")
        tile, lengths, rows = fft_tile_shape(g, self.c_in, self.c_out, k, itemsize)
        return tile, lengths, rows, -(-g.output_size[0] // tile[0])

    def _mix(self, spectra, data, transpose: bool):
        """Channel mixing per frequency: ``data`` ``(k, C_a, n0, *F)`` -> ``(k, C_b, n0, *F)``."""
        if self._depthwise:  # one channel per group: elementwise
            return data * spectra
        g = self.groups
        k, _, n0 = data.shape[:3]
        freqs = data.shape[3:]
        c_from = self.c_out if transpose else self.c_in
        x = data.reshape(k, g, c_from // g, n0, -1).permute(3, 4, 1, 2, 0)  # (n0, F, G, from, k)
        y = spectra @ x  # (n0, F, G, to, k)
        return y.permute(4, 2, 3, 0, 1).reshape((k, -1, n0) + freqs)

    @staticmethod
    def _transforms(like):
        torch = torch_module()
        if like.is_complex():
            return torch.fft.fftn, torch.fft.ifftn
        return torch.fft.rfftn, torch.fft.irfftn

    # -- the two directions ------------------------------------------------------------------
    def _forward(self, x, conjugate: bool):
        torch = torch_module()
        g = self.geometry
        x = x.reshape((-1, self.c_in) + g.input_size)
        if not bool(torch.isfinite(x).all()):
            return self.direct.conjugate(x) if conjugate else self.direct.forward(x)
        k, nd = x.shape[0], g.ndim
        tile, lengths, rows, n_tiles = self._layout(k, x)
        transform, inverse = self._transforms(x)
        dims = tuple(range(3, 3 + nd))
        t0, step = tile[0], tile[0] * g.stride[0]
        with precise(x.device):
            spectra = self._spectra(lengths, True, conjugate, x)
            xpad = pad(x, g.padding, g.padding_mode)
            # the other axes: one window each, zero-extended by the transform
            for i in range(1, nd):
                xpad = xpad.narrow(2 + i, 0, min(g.padded_size[i], lengths[i]))
            if n_tiles == 1:
                windows = xpad.narrow(2, 0, min(g.padded_size[0], lengths[0])).unsqueeze(2)
            else:  # overlap-save: the windows of the first axis, a strided view
                needed = (n_tiles - 1) * step + lengths[0]
                if needed > g.padded_size[0]:
                    widths = [0, 0] * (nd - 1) + [0, needed - g.padded_size[0]]
                    xpad = torch.nn.functional.pad(xpad, widths)
                else:
                    xpad = xpad.narrow(2, 0, needed)
                windows = xpad.unfold(2, lengths[0], step).movedim(-1, 3)
            out = x.new_empty((k, self.c_out) + g.output_size)
            keep = (slice(None),) * 3 + tuple(
                slice(r, r + (t - 1) * s + 1, s)
                for r, t, s in zip(g.reach, (t0,) + g.output_size[1:], g.stride))
            for j0 in range(0, n_tiles, rows):
                n0 = min(rows, n_tiles - j0)
                spectrum = transform(windows.narrow(2, j0, n0), s=lengths, dim=dims)
                z = inverse(self._mix(spectra, spectrum, False), s=lengths, dim=dims)
                block = z[keep]  # (k, C_out, n0, t0, *out[1:])
                block = block.reshape((k, self.c_out, n0 * t0) + g.output_size[1:])
                first, last = j0 * t0, min((j0 + n0) * t0, g.output_size[0])
                out[:, :, first:last] = block[:, :, : last - first]
            self._clear(out, transpose=False)
        return out

    def _backward(self, y, conjugate: bool):
        torch = torch_module()
        g = self.geometry
        y = y.reshape((-1, self.c_out) + g.output_size)
        if not bool(torch.isfinite(y).all()):
            return self.direct.adjoint(y) if conjugate else self.direct.transpose(y)
        k, nd = y.shape[0], g.ndim
        tile, lengths, rows, n_tiles = self._layout(k, y)
        transform, inverse = self._transforms(y)
        dims = tuple(range(3, 3 + nd))
        t0, step = tile[0], tile[0] * g.stride[0]
        spill = -(-lengths[0] // step)  # the steps one window covers
        rest = g.padded_size[1:]
        inside = tuple(slice(0, min(p, n)) for p, n in zip(rest, lengths[1:]))
        stuffed_shape = ((t0 - 1) * g.stride[0] + 1,) + tuple(
            (m - 1) * s + 1 for m, s in zip(g.output_size[1:], g.stride[1:]))
        slots = (slice(None),) * 3 + tuple(slice(None, None, s) for s in g.stride)
        with precise(y.device):
            spectra = self._spectra(lengths, False, conjugate, y)
            if n_tiles == 1:
                x = self._conv_t_one_tile(y, spectra, lengths, transform, inverse)
                self._clear(x, transpose=True)
                return x
            xgrid = y.new_zeros((k, self.c_in, n_tiles + spill, step) + rest)
            for j0 in range(0, n_tiles, rows):
                n0 = min(rows, n_tiles - j0)
                first, last = j0 * t0, min((j0 + n0) * t0, g.output_size[0])
                stuffed = y.new_zeros((k, self.c_out, n0) + stuffed_shape)
                tiles = y.new_zeros((k, self.c_out, n0 * t0) + g.output_size[1:])
                tiles[:, :, : last - first] = y[:, :, first:last]
                stuffed[slots] = tiles.reshape((k, self.c_out, n0, t0) + g.output_size[1:])
                del tiles
                spectrum = transform(stuffed, s=lengths, dim=dims)
                del stuffed
                windows = inverse(self._mix(spectra, spectrum, True), s=lengths, dim=dims)
                for q in range(spill):  # segment q of window j lands on step j + q
                    width = min(step, lengths[0] - q * step)
                    xgrid[(slice(None), slice(None), slice(j0 + q, j0 + q + n0),
                           slice(0, width)) + inside] += windows[
                        (slice(None), slice(None), slice(None), slice(q * step, q * step + width))
                        + inside]
            xpad = xgrid.reshape((k, self.c_in, (n_tiles + spill) * step) + rest)
            xpad = xpad[:, :, : g.padded_size[0]]
            x = fold(xpad, g.padding, g.padding_mode, g.input_size).contiguous()
            self._clear(x, transpose=True)
        return x

    def _conv_t_one_tile(self, y, spectra, lengths, transform, inverse):
        """``A^T y`` when one tile covers every axis: no overlap-add buffer."""
        torch = torch_module()
        g = self.geometry
        nd = g.ndim
        dims = tuple(range(3, 3 + nd))
        if all(s == 1 for s in g.stride):  # the transform zero-extends y itself
            stuffed = y.unsqueeze(2)
        else:
            stuffed = y.new_zeros((y.shape[0], self.c_out, 1) + tuple(
                (m - 1) * s + 1 for m, s in zip(g.output_size, g.stride)))
            stuffed[(slice(None),) * 3 + tuple(slice(None, None, s) for s in g.stride)] = \
                y.unsqueeze(2)
        window = inverse(self._mix(spectra, transform(stuffed, s=lengths, dim=dims), True),
                         s=lengths, dim=dims)[:, :, 0]
        for i, (p, n) in enumerate(zip(g.padded_size, lengths)):
            window = window.narrow(2 + i, 0, min(p, n))
        short = [max(0, p - n) for p, n in zip(g.padded_size, lengths)]
        if any(short):  # the window ends before the padded grid: zeros there
            widths = []
            for extra in reversed(short):
                widths += [0, extra]
            window = torch.nn.functional.pad(window, widths)
        return fold(window, g.padding, g.padding_mode, g.input_size).contiguous()


class TorchFFTMethod(TorchConvMethod):
    """The torch engine's FFT method on NumPy blocks of columns (the NumPy methods' layout).

    Columns ``(n, k)`` are shared with torch without a copy; results are
    NumPy arrays in the columns' dtype. Tensors of the operator go to
    `conv` (a `TorchFFT`) on their own device.

    Examples
    --------
    >>> import numpy as np, linop
    >>> op = linop.Conv2d(np.ones((5, 5)), (16, 16), padding=2, method="fft",
    ...                   engine="torch")
    >>> ref = linop.Conv2d(np.ones((5, 5)), (16, 16), padding=2, engine="numpy")
    >>> x = np.random.default_rng(0).standard_normal(256)
    >>> bool(np.allclose(op @ x, ref @ x)), op.method, op.engine
    (True, 'fft', 'torch')
    """

    name = "fft"
    conv_class = TorchFFT

