"""``w -> conv(x, w)`` (`linop.ConvFilter1d`/``2d``/``3d``) applied by PyTorch.

For a fixed input ``x`` (padded once by the padding mode, ``x~``):

- ``A w``: ``torch.nn.functional.conv{n}d(x~, w)``; a batch of ``k``
  weights is one convolution with ``k`` times the output channels, ordered
  group by group so that ``groups`` still reads the right inputs;
- ``A^T y``: ``dw[co, ci, t] = sum_o y[co, o] x~[ci, o*stride + t*dilation]``,
  itself a convolution: the channels of ``x~`` as a batch, ``y`` as the
  kernel, stride ``dilation`` and dilation ``stride`` (the output is cropped
  to the kernel's size; with groups, the blocks of each group are kept);
- ``A^H`` and ``conj(A)``: the same with ``conj(x~)``.

The padded ``x~`` lives on each device and in each dtype it is used in,
in a `~linop._memo.Memo` (which pickles and copies empty).
"""

from __future__ import annotations

import math

from linop._memo import Memo
from linop._torch_engine.conv import pad
from linop._torch_engine.runtime import LinearCalls, precise, torch_module

__all__ = ["TorchConvFilter"]


class TorchConvFilter(LinearCalls):
    """The four products of a `linop.ConvFilter1d`/``2d``/``3d`` on batch-first tensors.

    Reads the operator only through its public attributes (``x``,
    ``weight_shape``, ``geometry``, ``groups``).
    """

    def __init__(self, op):
        g = op.geometry
        self.geometry = g
        self.groups = op.groups
        self.x = op.x
        full = tuple(op.weight_shape)
        if len(full) == g.ndim:  # a bare kernel: one channel in and out
            full = (1, 1) + full
        self.full_shape = full
        self.c_out, self.cin_g = full[:2]
        self.c_in = self.cin_g * self.groups
        self._memo = Memo()

    def _xpad(self, like, conjugate: bool):
        key = (str(like.device), like.dtype, conjugate and like.is_complex())

        def build():
            torch = torch_module()
            g = self.geometry
            x = torch.from_numpy(self.x.copy()).reshape((1, self.c_in) + g.input_size)
            x = x.to(device=like.device, dtype=like.dtype)
            if key[2]:
                x = x.conj_physical()
            return pad(x, g.padding, g.padding_mode).contiguous()

        return self._memo.get(key, build)

    def _conv(self):
        F = torch_module().nn.functional
        return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self.geometry.ndim]

    def _forward(self, w, conjugate: bool):
        g, G = self.geometry, self.groups
        k = w.shape[0]
        cout_g = self.c_out // G
        w = w.reshape((k, G, cout_g, self.cin_g) + g.kernel_size)
        # group-major output channels: (G, k, C_out/G), so that group j reads input block j
        w = w.transpose(0, 1).reshape((G * k * cout_g, self.cin_g) + g.kernel_size)
        xpad = self._xpad(w, conjugate)
        with precise(w.device):
            y = self._conv()(xpad, w, None, g.stride, 0, g.dilation, G)
        y = y.reshape((G, k, cout_g) + g.output_size).transpose(0, 1)
        return y.reshape((k, self.c_out) + g.output_size)

    def _backward(self, y, conjugate: bool):
        g, G = self.geometry, self.groups
        k = y.shape[0]
        cout_g = self.c_out // G
        xpad = self._xpad(y, conjugate)
        kernel = y.reshape((k * self.c_out, 1) + g.output_size)
        with precise(y.device):
            # batch: the input channels; kernel: every (sample, output channel)
            z = self._conv()(xpad.transpose(0, 1), kernel, None, g.dilation, 0, g.stride, 1)
        # z: (C_in, k*C_out, *reach): crop to the kernel's taps
        z = z[(slice(None), slice(None)) + tuple(slice(0, n) for n in g.kernel_size)]
        z = z.reshape((G, self.cin_g, k, G, cout_g) + g.kernel_size)
        index = torch_module().arange(G, device=y.device)
        z = z[index, :, :, index]  # (G, C_in/G, k, C_out/G, *kernel): group j with group j
        z = z.permute((2, 0, 3, 1) + tuple(range(4, 4 + g.ndim)))
        return z.reshape((k, self.c_out, self.cin_g) + g.kernel_size)

    def kernel(self, kind: str):
        return {"A": self.forward, "AH": self.adjoint, "AT": self.transpose,
                "conjA": self.conjugate}[kind]

    @property
    def n_taps(self) -> int:
        return math.prod(self.geometry.kernel_size)
