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

The weight lives on each device and in each dtype it is used in, built on
first use and kept in a `~linop._memo.Memo` (which pickles and copies
empty: a copy rebuilds its tensors where it runs).

`TorchConvMethod` serves NumPy blocks of columns (the layout of the NumPy
engine's methods) with a `TorchConv`: it wraps them as tensors without
copying, and returns NumPy arrays.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from linop._memo import Memo
from linop._torch_engine.runtime import (
    LinearCalls,
    from_numpy,
    precise,
    torch_dtype,
    torch_module,
)

__all__ = ["TorchConv", "TorchConvMethod", "fold", "pad"]

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


class TorchConv(LinearCalls):
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
    """

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        self.weight = weight
        self.geometry = geometry
        self.groups = groups
        self.c_out, self.cin_g = weight.shape[:2]
        self.c_in = self.cin_g * groups
        self.n_in = self.c_in * math.prod(geometry.input_size)
        self.n_out = self.c_out * math.prod(geometry.output_size)
        nd = geometry.ndim
        g = geometry
        symmetric = all(lo == hi for lo, hi in g.padding)
        # zeros padding with equal sides is the convolution's own padding argument
        self._inline = g.padding_mode == "zeros" and symmetric
        self._conv_padding = tuple(lo for lo, _ in g.padding) if self._inline else 0
        self._memo = Memo()
        self._nd = nd

    def __reduce__(self):
        return TorchConv, (self.weight, self.geometry, self.groups)

    # -- the weight on a device, in a dtype --------------------------------------------------
    def weight_tensor(self, like, conjugate: bool = False):
        """The weight on ``like``'s device in ``like``'s dtype (conjugated if asked)."""
        key = (str(like.device), like.dtype, conjugate and like.is_complex())

        def build():
            torch = torch_module()
            w = np.array(self.weight)
            if key[2]:
                w = w.conj()
            return torch.from_numpy(w).to(device=like.device, dtype=like.dtype)

        return self._memo.get(key, build)

    def _functions(self):
        """``conv{n}d`` and ``conv_transpose{n}d`` (looked up once; a copy looks them up again)."""
        functions = self.__dict__.get("_calls")
        if functions is None:
            F = torch_module().nn.functional
            functions = self._calls = (
                {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self._nd],
                {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[self._nd])
        return functions

    # -- the four directions ---------------------------------------------------------------
    def _forward(self, x, conjugate: bool):
        g = self.geometry
        x = x.reshape((-1, self.c_in) + g.input_size)
        conv, _ = self._functions()
        w = self.weight_tensor(x, conjugate)
        with precise(x.device):
            if not self._inline:
                x = pad(x, g.padding, g.padding_mode)
            y = conv(x, w, None, g.stride, self._conv_padding, g.dilation, self.groups)
        if tuple(y.shape[2:]) != g.output_size:
            # the geometry of a transposed convolution whose output_padding is at least its
            # stride (torch allows up to the dilation): A is the convolution's first outputs
            y = y[(slice(None), slice(None)) + tuple(slice(0, m) for m in g.output_size)]
        return y

    def _backward(self, y, conjugate: bool):
        g = self.geometry
        y = y.reshape((-1, self.c_out) + g.output_size)
        _, conv_t = self._functions()
        w = self.weight_tensor(y, conjugate)
        with precise(y.device):
            if self._inline:
                return conv_t(y, w, None, g.stride, self._conv_padding, g.output_padding,
                              self.groups, g.dilation)
            # onto the padded grid: output_padding is what the floor of the strided size left
            rest = tuple(p - ((m - 1) * s + r + 1) for p, m, s, r in
                         zip(g.padded_size, g.output_size, g.stride, g.reach))
            z = conv_t(y, w, None, g.stride, 0, rest, self.groups, g.dilation)
            return fold(z, g.padding, g.padding_mode, g.input_size).contiguous()


class TorchConvMethod:
    """The torch engine's convolution on NumPy blocks of columns (the NumPy methods' layout).

    Columns ``(n, k)`` are shared with torch without a copy when ``k == 1``
    (a matvec) and transposed once into the batch-first layout otherwise.
    Results are NumPy arrays in the columns' dtype.
    """

    name = "im2col"

    def __init__(self, weight: np.ndarray, geometry, groups: int):
        self.conv = TorchConv(weight, geometry, groups)

    def _run(self, call, cols: np.ndarray, n_out: int) -> np.ndarray:
        torch_dtype(cols.dtype)  # a dtype torch serves (the operator's, promoted)
        t = from_numpy(cols)
        out = call(t.T if cols.shape[1] > 1 else t.reshape(1, -1))
        out = out.reshape(-1, n_out).T
        return np.ascontiguousarray(out.numpy())

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.conv.forward, x, self.conv.n_out)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        return self._run(self.conv.transpose, y, self.conv.n_in)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self._run(self.conv.adjoint, y, self.conv.n_in)

    def conjugate(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.conv.conjugate, x, self.conv.n_out)


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
