"""A convolution ``A`` applied by PyTorch: ``A x``, ``A^T y``, ``A^H y`` and ``conj(A) x``.

`TorchConv` holds what defines ``A`` (the NumPy weight, the geometry, the
groups) and applies it to batch-first tensors, ``(k, C_in, *input_size)`` ->
``(k, C_out, *output_size)``, on whatever device they are:

- ``A x``: the padding mode by ``torch.nn.functional.pad`` (zeros padding
  with equal sides goes to the convolution itself), then
  ``torch.nn.functional.conv{n}d``;
- ``A^T y``: ``torch.nn.functional.conv_transpose{n}d`` onto the padded
  grid (``output_padding`` picks its exact size), then the adjoint of the
  padding (`fold`): the core, plus every border strip added onto the pixels
  it was copied from;
- ``A^H`` and ``conj(A)``: the same with the conjugated weight.

Each direction is a closure per device and dtype (`TorchConv.kernel`),
built on first use with the weight tensor, the functional call and its
arguments bound in it; neither the weights nor the closures are part of a
copy or a pickle (``__reduce__`` rebuilds from the definition, and the
tensors are made again where the copy runs).

`TorchConvMethod` serves NumPy blocks of columns (the layout of the NumPy
engine's methods) with a `TorchConv`: it wraps them as tensors without
copying, and returns NumPy arrays, through one prebuilt function per
direction and dtype.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from linop._memo import Memo
from linop._torch_engine.runtime import (
    from_numpy,
    precise,
    torch_dtype,
    torch_module,
)

__all__ = ["ConvSizes", "TorchConv", "TorchConvMethod", "fold", "pad"]

_MODES = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _pad_list(padding) -> list[int]:
    """``torch.nn.functional.pad``'s list: the last axis first, ``lo, hi`` each."""
    out = []
    for lo, hi in reversed(padding):
        out += [lo, hi]
    return out


def pad(x, padding, mode: str):
    """``x`` of shape ``(k, C, *spatial)`` padded on its spatial axes with PyTorch's mode."""
    torch = torch_module()
    if not any(lo or hi for lo, hi in padding):
        return x
    widths = _pad_list(padding)
    if mode == "zeros":
        return torch.nn.functional.pad(x, widths)
    return torch.nn.functional.pad(x, widths, mode=_MODES[mode])


def fold(z, padding, mode: str, input_size):
    """The adjoint of `pad`: ``z`` on the padded grid back on the input grid (in place in ``z``)."""
    for i, ((lo, hi), n) in enumerate(zip(padding, input_size)):
        if not (lo or hi):
            continue
        axis = 2 + i
        core = z.narrow(axis, lo, n)
        if mode != "zeros":
            left = z.narrow(axis, 0, lo)
            right = z.narrow(axis, lo + n, hi)
            if mode == "reflect":  # padded lo-1-t <- x[1+t]; padded lo+n+t <- x[n-2-t]
                if lo:
                    core.narrow(axis, 1, lo).add_(left.flip(axis))
                if hi:
                    core.narrow(axis, n - 1 - hi, hi).add_(right.flip(axis))
            elif mode == "replicate":
                if lo:
                    core.narrow(axis, 0, 1).add_(left.sum(axis, keepdim=True))
                if hi:
                    core.narrow(axis, n - 1, 1).add_(right.sum(axis, keepdim=True))
            else:  # circular: padded t <- x[n-lo+t]; padded lo+n+t <- x[t]
                if lo:
                    core.narrow(axis, n - lo, lo).add_(left)
                if hi:
                    core.narrow(axis, 0, hi).add_(right)
        z = core
    return z


class ConvSizes:
    """A convolution's weight, geometry and groups, and the sizes they give.

    What the torch engine's convolutions (`TorchConv`, the FFT's
    `~linop._torch_engine.fft.TorchFFT`) share: a copy or a pickle is rebuilt
    from the three (``__reduce__``), so whatever a subclass builds on first
    use starts empty there.

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    geometry : ConvGeometry
    groups : int
    """

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        self.weight = weight
        self.geometry = geometry
        self.groups = groups
        self.c_out, self.cin_g = weight.shape[:2]
        self.c_in = self.cin_g * groups
        self.n_in = self.c_in * math.prod(geometry.input_size)
        self.n_out = self.c_out * math.prod(geometry.output_size)

    def __reduce__(self):
        return type(self), (self.weight, self.geometry, self.groups)


class TorchConv(ConvSizes):
    """The convolution ``A`` of a weight, a geometry and groups, applied by PyTorch.

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    geometry : ConvGeometry
    groups : int

    Notes
    -----
    Every call takes and returns batch-first tensors; any leading shape
    whose size is a multiple of the sample size is accepted (it is reshaped
    to ``(k, C, *size)``). The tensors' dtype is the dtype of the result:
    the caller promotes them first.

    Each direction is one closure per device, dtype and conjugation (`kernel`),
    built on first use with everything but the input bound in it: the weight
    tensor, the functional call and its arguments, the padding and cropping.
    A call is then the closure's few torch calls, which matters on small
    and depthwise layers, where torch's own convolution takes a few hundred
    microseconds.
    """

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        super().__init__(weight, geometry, groups)
        self._memo = Memo()
        # the built kernels, by (call, device, dtype): a plain dict, since a copy or a
        # pickle is rebuilt from the definition (`ConvSizes`), empty
        self._kernels = {}

    # -- the weight on a device, in a dtype --------------------------------------------------
    def _weight(self, device, dtype, conjugate: bool):
        """The weight as a tensor on ``device`` of ``dtype`` (conjugated if asked), built once."""
        def build():
            torch = torch_module()
            w = self.weight.conj() if conjugate else np.array(self.weight)
            return torch.from_numpy(w).to(device=device, dtype=dtype)

        return self._memo.get(("weight", str(device), dtype, conjugate), build)

    # -- the kernels -----------------------------------------------------------------------
    def kernel(self, call: str, device, dtype):
        """One direction as a function of batch-first tensors on ``device`` of ``dtype``.

        ``call`` is ``"forward"``, ``"conjugate"``, ``"transpose"`` or
        ``"adjoint"``; the function is built on the first request and kept.
        """
        kernel = self._kernels.get((call, device, dtype))
        if kernel is None:
            kernel = self._kernels.setdefault((call, device, dtype),
                                              self._build(call, device, dtype))
        return kernel

    def forward(self, x):
        """``A x``."""
        return self.kernel("forward", x.device, x.dtype)(x)

    def conjugate(self, x):
        """``conj(A) x``."""
        return self.kernel("conjugate", x.device, x.dtype)(x)

    def transpose(self, y):
        """``A^T y`` (no conjugation)."""
        return self.kernel("transpose", y.device, y.dtype)(y)

    def adjoint(self, y):
        """``A^H y``."""
        return self.kernel("adjoint", y.device, y.dtype)(y)

    def _build(self, call: str, device, dtype):
        torch = torch_module()
        conjugate = call in ("conjugate", "adjoint") and dtype.is_complex
        w = self._weight(device, dtype, conjugate)
        if call in ("forward", "conjugate"):
            kernel = self._forward_kernel(torch.nn.functional, w)
        else:
            kernel = self._backward_kernel(torch.nn.functional, w)
        if getattr(device, "type", device) != "cuda":
            return kernel

        def precise_kernel(x, kernel=kernel):
            with precise(x.device):
                return kernel(x)

        return precise_kernel

    # A kernel reshapes its input only when it is not in the batch-first shape already: every
    # torch call costs more than its own time just before a convolution (tens of microseconds
    # on a busy thread pool), so the few that a product needs are all it makes.
    def _forward_kernel(self, F, w):
        g, groups = self.geometry, self.groups
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[g.ndim]
        sample = (self.c_in,) + g.input_size
        shape = (-1,) + sample
        stride, dilation = g.stride, g.dilation
        # zeros padding with equal sides is the convolution's own padding argument
        inline = g.padding_mode == "zeros" and all(lo == hi for lo, hi in g.padding)
        padding = tuple(lo for lo, _ in g.padding) if inline else 0
        widths = None if inline or not any(lo or hi for lo, hi in g.padding) else _pad_list(
            g.padding)
        options = {} if g.padding_mode == "zeros" else {"mode": _MODES[g.padding_mode]}
        full = tuple((p - r) // s + 1 for p, r, s in zip(g.padded_size, g.reach, g.stride))
        # the geometry of a transposed convolution whose output_padding is at least its
        # stride (torch allows up to the dilation): A is the convolution's first outputs
        crop = None if full == g.output_size else (
            (slice(None), slice(None)) + tuple(slice(0, m) for m in g.output_size))

        def kernel(x):
            if x.shape[1:] != sample:
                x = x.reshape(shape)
            if widths is not None:
                x = F.pad(x, widths, **options)
            y = conv(x, w, None, stride, padding, dilation, groups)
            return y if crop is None else y[crop]

        return kernel

    def _backward_kernel(self, F, w):
        g, groups = self.geometry, self.groups
        conv_t = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[g.ndim]
        sample = (self.c_out,) + g.output_size
        shape = (-1,) + sample
        stride, dilation = g.stride, g.dilation
        if g.padding_mode == "zeros" and all(lo == hi for lo, hi in g.padding):
            padding, output_padding = tuple(lo for lo, _ in g.padding), g.output_padding

            def inline_kernel(y):
                if y.shape[1:] != sample:
                    y = y.reshape(shape)
                return conv_t(y, w, None, stride, padding, output_padding, groups, dilation)

            return inline_kernel
        # onto the padded grid: output_padding is what the floor of the strided size left
        rest = tuple(p - ((m - 1) * s + r + 1) for p, m, s, r in
                     zip(g.padded_size, g.output_size, g.stride, g.reach))
        mode, padding, size = g.padding_mode, g.padding, g.input_size

        def kernel(y):
            if y.shape[1:] != sample:
                y = y.reshape(shape)
            z = conv_t(y, w, None, stride, 0, rest, groups, dilation)
            return fold(z, padding, mode, size).contiguous()

        return kernel


class TorchConvMethod:
    """The torch engine's convolution on NumPy blocks of columns (the NumPy methods' layout).

    Columns ``(n, k)`` are shared with torch without a copy when ``k == 1``
    (a matvec) and transposed once into the batch-first layout otherwise.
    Results are NumPy arrays in the columns' dtype.
    """

    name = "im2col"
    #: The batch-first convolution that serves the columns.
    conv_class = TorchConv

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        self.conv = self.conv_class(weight, geometry, groups)
        self._runners = {}  # by (call, dtype); a copy or a pickle starts empty (__reduce__)

    def __reduce__(self):
        return type(self), (self.conv.weight, self.conv.geometry, self.conv.groups)

    def _run(self, call: str, cols: np.ndarray) -> np.ndarray:
        run = self._runners.get((call, cols.dtype))
        if run is None:
            run = self._runners.setdefault((call, cols.dtype), self._runner(call, cols.dtype))
        return run(cols)

    def _runner(self, call: str, dtype: np.dtype):
        """``call`` on C-contiguous NumPy columns of ``dtype``, as one function.

        Everything but the columns is bound in it: the work around torch's
        call is a few attribute lookups, which matters just after a
        convolution has left the caches cold.
        """
        torch = torch_module()
        conv = self.conv
        kernel = conv.kernel(call, "cpu", torch_dtype(dtype))
        g = conv.geometry
        if call in ("transpose", "adjoint"):
            sample, n_out = (1, conv.c_out) + g.output_size, conv.n_in
        else:
            sample, n_out = (1, conv.c_in) + g.input_size, conv.n_out
        tensor = torch.from_numpy

        def run(cols):
            if cols.shape[1] != 1:  # transposed once into the batch-first layout
                out = kernel(from_numpy(cols).T).reshape(-1, n_out).T
                return np.ascontiguousarray(out.numpy())
            one = cols.reshape(sample)  # a matvec: the column is the one sample
            try:  # a view of our own: torch.from_numpy wants it writeable; linop never writes
                one.flags.writeable = True
            except ValueError:  # the caller's memory is read-only
                return kernel(from_numpy(one)).numpy().reshape(n_out, 1)
            return kernel(tensor(one)).numpy().reshape(n_out, 1)

        return run

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._run("forward", x)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        return self._run("transpose", y)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self._run("adjoint", y)

    def conjugate(self, x: np.ndarray) -> np.ndarray:
        return self._run("conjugate", x)


class TorchCSRMethod:
    """The explicit matrix as ``torch.sparse_csr_tensor`` (``method="toeplitz"`` on torch).

    The matrix of ``A`` and that of ``A^T`` are built once by the NumPy
    engine's code (sized against the memory limit first), then multiplied by
    torch (on the CPU here; on a GPU by cuSPARSE for tensors that live there).
    """

    name = "toeplitz"

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        self.weight = weight
        self.geometry = geometry
        self.groups = groups
        self.conv = TorchConv(weight, geometry, groups)
        self._memo = Memo()

    def __reduce__(self):
        return TorchCSRMethod, (self.weight, self.geometry, self.groups)

    def _matrix(self, transposed: bool, conjugate: bool, dtype):
        def build():
            from linop._conv.toeplitz import ToeplitzMethod

            torch = torch_module()
            m = ToeplitzMethod(self.weight, self.geometry, self.groups).matrix(
                transposed=transposed)
            if conjugate:
                m = m.conj()
            index = torch.int64 if m.indices.dtype == np.int64 else torch.int32
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                return torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(m.indices.dtype)).to(index),
                    torch.from_numpy(m.indices).to(index),
                    torch.from_numpy(np.asarray(m.data, dtype=dtype)),
                    size=m.shape, check_invariants=False)

        return self._memo.get((transposed, conjugate, np.dtype(dtype)), build)

    def _run(self, cols: np.ndarray, transposed: bool, conjugate: bool) -> np.ndarray:
        conjugate = conjugate and np.iscomplexobj(self.weight)
        matrix = self._matrix(transposed, conjugate, cols.dtype)
        out = matrix @ from_numpy(np.ascontiguousarray(cols))
        return np.ascontiguousarray(out.numpy())

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, False, False)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        return self._run(y, True, False)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self._run(y, True, True)

    def conjugate(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, False, True)


#: The torch engine's methods, by the NumPy engine's names.
TORCH_METHODS = {"im2col": TorchConvMethod, "toeplitz": TorchCSRMethod}


def _fft_method(weight, geometry, groups):
    """The torch engine's FFT method (`linop._torch_engine.fft`, imported when used)."""
    from linop._torch_engine.fft import TorchFFTMethod

    return TorchFFTMethod(weight, geometry, groups)


TORCH_METHODS["fft"] = _fft_method
