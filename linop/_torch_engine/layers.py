"""PyTorch kernels of the operators that are not convolutions.

`layer_kernels` returns, for a `linop.Upsample`, `linop.AvgPool1d`/``2d``/``3d``,
`linop.Pad`, `linop.PixelShuffle` or `linop.PixelUnshuffle`, two functions on
torch tensors: ``forward`` (``(batch, *input_shape) -> (batch,
*output_shape)``, the operator's `apply`) and ``adjoint`` (``(batch,
*output_shape) -> (batch, *input_shape)``, its exact Hermitian adjoint, the
operator's `apply_adjoint`). Both run on the tensor's device with torch
operations only (no NumPy round trip of the data) and are differentiable:
each is a `torch.autograd.Function` whose backward is the other one, so the
gradient of ``sum(forward(x) * g)`` is ``adjoint(g)`` exactly, and higher
derivatives follow.

How each operator runs:

* **Separable operators** (`Upsample`, average pooling): the operator is a
  product of one 1-D matrix per spatial axis (its public ``matrices``, applied
  in its ``axis_order``). Each matrix is applied along its axis either as a
  dense product (small axes, or many taps per row) or as ``T`` gathers:
  ``y[j] = sum_t w[t, j] x[idx[t, j]]`` with one `torch.Tensor.index_select`
  of all taps and a weighted sum; its transpose is the matching
  `torch.Tensor.index_add_`. Rows with fewer taps than the longest are
  padded with weight 0. The forward of average pooling uses
  ``torch.nn.functional.avg_pool*d`` itself where torch accepts the case
  (it computes the same windows and divisors as the operator); the adjoint
  always uses the matrices, because torch's own backward is not guaranteed
  to be the exact adjoint of the forward (for ``nearest`` interpolation it
  is not).
* `Pad`: zero padding is ``torch.nn.functional.pad`` and its adjoint the
  same call with the pads negated (padding and cropping are each other's
  transposes); the other modes gather each padded axis with the source
  index of every output entry (read from the operator's 0/1 ``matrices``)
  and their adjoint adds the copies back with ``index_add_``.
* `PixelShuffle` / `PixelUnshuffle`: ``torch.nn.functional.pixel_shuffle``
  and ``pixel_unshuffle``, each the other's adjoint (both are permutations).

The dtype of a result is the promotion of the operator's dtype and the
input's (``torch.promote_types``, NumPy's rule): a real operator maps a
complex tensor to a complex one, as the NumPy operators do. The small
tables (matrices, indices, weights) are moved to a device and dtype once
per kernel pair and kept in it.

This module imports torch at the top; nothing in linop imports it when linop
is imported.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from linop.pad import Pad
from linop.pool import AvgPool1d, AvgPool2d, AvgPool3d
from linop.shuffle import PixelShuffle, PixelUnshuffle
from linop.upsample import Upsample

__all__ = ["DENSE_INNER", "DENSE_LAST", "DENSE_MAX_ENTRIES", "DENSE_MAX_TAPS", "layer_kernels"]

#: The largest 1-D matrix (``n_out * n_in`` entries) applied as a dense product.
DENSE_MAX_ENTRIES = 1 << 20
#: Along the last axis, input sizes up to this are applied as a dense product ...
DENSE_LAST = 256
#: ... along the other axes, input sizes up to this, or rows of more than
#: ``DENSE_MAX_TAPS`` taps.
DENSE_INNER = 32
DENSE_MAX_TAPS = 8

_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.complex64): torch.complex64,
    np.dtype(np.complex128): torch.complex128,
}
_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


# -- the autograd pair ----------------------------------------------------------------------
class _Forward(torch.autograd.Function):
    """``kernels.forward_impl``, whose backward is `_Adjoint`."""

    @staticmethod
    def forward(ctx, x, kernels):
        ctx.kernels = kernels
        return _fresh(kernels.forward_impl(x), x)

    @staticmethod
    def backward(ctx, g):
        return _Adjoint.apply(g, ctx.kernels), None


class _Adjoint(torch.autograd.Function):
    """``kernels.adjoint_impl``, whose backward is `_Forward`."""

    @staticmethod
    def forward(ctx, y, kernels):
        ctx.kernels = kernels
        return _fresh(kernels.adjoint_impl(y), y)

    @staticmethod
    def backward(ctx, g):
        return _Forward.apply(g, ctx.kernels), None


def _fresh(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y``, copied if it shares memory with the input ``x`` (an identity step)."""
    if y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
        return y.clone(memory_format=torch.contiguous_format)
    return y


class _Kernels:
    """The two implementations of one operator and the checks of their inputs."""

    def __init__(self, op, forward_impl, adjoint_impl):
        self.name = type(op).__name__
        self.dtype = _TORCH_DTYPES[np.dtype(op.dtype)]
        self.input_shape = tuple(op.input_shape)
        self.output_shape = tuple(op.output_shape)
        self.forward_impl = forward_impl
        self.adjoint_impl = adjoint_impl

    def _prepare(self, t, shape, name: str) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != shape:
            raise ValueError(
                f"{name} must have the shape (batch, *{shape}) for this {self.name}, got "
                f"{tuple(t.shape)}")
        dtype = torch.promote_types(self.dtype, t.dtype)
        return t if t.dtype == dtype else t.to(dtype)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return _Forward.apply(self._prepare(t, self.input_shape, "x"), self)

    def adjoint(self, t: torch.Tensor) -> torch.Tensor:
        return _Adjoint.apply(self._prepare(t, self.output_shape, "y"), self)


# -- tables on devices ----------------------------------------------------------------------
class _Tables:
    """NumPy tables moved to a (device, dtype) on first use, once."""

    def __init__(self, **arrays):
        self._arrays = arrays
        self._cache = {}
        self._lock = threading.Lock()

    def get(self, device, dtypes: dict) -> dict:
        key = (device, tuple(sorted(dtypes.items(), key=lambda kv: kv[0])))
        found = self._cache.get(key)
        if found is None:
            with self._lock:
                found = {name: torch.as_tensor(a).to(device=device, dtype=dtypes.get(name))
                         if dtypes.get(name) is not None
                         else torch.as_tensor(a).to(device=device)
                         for name, a in self._arrays.items()}
                self._cache[key] = found
        return found


def _real_dtype(dtype):
    return _REAL.get(dtype, dtype)


# -- one 1-D matrix along one axis ------------------------------------------------------------
class _AxisMap:
    """An ``(m, n)`` real matrix applied along one axis of a tensor, or its transpose.

    Seen as ``(lead, n, trail)``, the tensor is multiplied in one of three ways:

    * a dense product: ``X @ M.T`` on ``(lead, n)`` when the axis is the last
      one and ``n <= DENSE_LAST`` (one GEMM, which beats gathers along the
      contiguous axis), or ``M @ X`` per ``lead`` block when ``n <= DENSE_INNER``
      or the rows hold more than ``DENSE_MAX_TAPS`` taps (area and pooling
      windows);
    * ``T`` gathers of whole ``trail`` slabs, ``y = sum_t w[t] * X[:, idx[t]]``
      (`index_select` and `addcmul_`), and for the transpose ``T``
      `index_add_` of ``w[t] * Y``;
    * the same gathers on the transposed ``(n, lead)`` tensor when the axis is
      the last one and too long for a dense product.
    """

    def __init__(self, matrix: sp.csr_array):
        m = sp.csr_array(matrix)
        m.sum_duplicates()
        m.eliminate_zeros()
        data = np.real(m.data)
        self.shape = n_out, n_in = m.shape
        counts = np.diff(m.indptr)
        self.taps = taps = int(counts.max()) if m.nnz else 0
        self.identity = (n_out == n_in and m.nnz == n_out and bool(np.all(counts == 1))
                         and bool(np.all(m.indices == np.arange(n_in)))
                         and bool(np.all(data == 1)))
        rows = np.repeat(np.arange(n_out), counts)
        small = n_out * n_in <= DENSE_MAX_ENTRIES
        self.dense_last = small and n_in <= DENSE_LAST
        self.dense_inner = small and (n_in <= DENSE_INNER or taps > DENSE_MAX_TAPS or taps == 0)
        arrays = {}
        if self.dense_last or self.dense_inner:
            a = np.zeros(m.shape, dtype=data.dtype)
            a[rows, m.indices] = data
            arrays["matrix"] = a
        if not self.dense_inner:
            slot = np.arange(m.nnz) - m.indptr[rows]
            index = np.zeros((taps, n_out), dtype=np.int64)
            weight = np.zeros((taps, n_out), dtype=data.dtype)
            index[slot, rows] = m.indices
            weight[slot, rows] = data
            arrays["index"], arrays["weight"] = index, weight
        # one tap of weight 1 per row: a pure gather
        self.plain = taps == 1 and bool(np.all(counts == 1)) and bool(np.all(data == 1))
        self.tables = _Tables(**arrays)

    def apply(self, x: torch.Tensor, axis: int, transpose: bool) -> torch.Tensor:
        if self.identity:
            return x
        shape = x.shape
        n_out, n_in = self.shape
        n, m = (n_out, n_in) if transpose else (n_in, n_out)
        lead, trail = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
        out_shape = shape[:axis] + (m,) + shape[axis + 1:]
        if (self.dense_last and trail == 1) or self.dense_inner:
            a = self.tables.get(x.device, {"matrix": x.dtype})["matrix"]
            a = a.T if transpose else a
            if trail == 1:
                y = x.reshape(lead, n) @ a.T
            else:
                y = torch.matmul(a, x.reshape(lead, n, trail))
            return y.reshape(out_shape)
        if trail == 1:  # gathers of rows along a leading axis, not of single entries
            z = self._gather(x.reshape(lead, n).T.contiguous(), transpose, 1)
            return z.T.reshape(out_shape)
        return self._gather(x.reshape(lead, n, trail), transpose, trail).reshape(out_shape)

    def _gather(self, x: torch.Tensor, transpose: bool, trail: int) -> torch.Tensor:
        """The gathers along axis ``x.ndim - 2`` of ``x`` (``(..., n, trail)`` or ``(n, lead)``)."""
        tab = self.tables.get(x.device, {"weight": _real_dtype(x.dtype)})
        index, weight = tab["index"], tab["weight"]
        axis = x.ndim - 2 if trail > 1 else 0
        n_in = self.shape[1]
        if not transpose:
            if self.plain:
                return x.index_select(axis, index[0])
            y = x.index_select(axis, index[0]) * weight[0, :, None]
            for t in range(1, self.taps):
                y.addcmul_(x.index_select(axis, index[t]), weight[t, :, None])
            return y
        shape = list(x.shape)
        shape[axis] = n_in
        z = torch.zeros(shape, dtype=x.dtype, device=x.device)
        if self.plain:
            return z.index_add_(axis, index[0], x)
        for t in range(self.taps):
            z.index_add_(axis, index[t], x * weight[t, :, None])
        return z


class _Separable:
    """A product of 1-D matrices, one per trailing axis, in a given order."""

    def __init__(self, matrices, order):
        self.maps = tuple(_AxisMap(m) for m in matrices)
        self.order = tuple(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = x.ndim - len(self.maps)
        for k in self.order:
            x = self.maps[k].apply(x, first + k, False)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        first = y.ndim - len(self.maps)
        for k in self.order[::-1]:
            y = self.maps[k].apply(y, first + k, True)
        return y


# -- the operators -------------------------------------------------------------------------------
def _as_real_channels(fn):
    """``fn`` on real tensors applied to complex ones: real and imaginary parts side by side."""

    def run(x: torch.Tensor) -> torch.Tensor:
        if not x.is_complex():
            return fn(x)
        parts = torch.view_as_real(x).movedim(-1, 0)  # (2, *x.shape)
        y = fn(parts.reshape((2 * x.shape[0],) + x.shape[1:]))
        y = y.reshape((2,) + (x.shape[0],) + y.shape[1:]).movedim(0, -1)
        return torch.view_as_complex(y.contiguous())

    return run


def _upsample(op: Upsample, native: bool) -> _Kernels:
    sep = _Separable(op.matrices, op.axis_order)
    d = len(op.size)
    kwargs = {"mode": op.mode}
    if op.scale_factor is not None:  # as given: torch uses it in its coordinates
        kwargs["scale_factor"] = tuple(op.scale_factor)
    else:
        kwargs["size"] = tuple(op.size)
    if op.align_corners is not None:
        kwargs["align_corners"] = op.align_corners

    def interpolate(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: x.ndim - d]
        # (N, C, *spatial), contiguous: torch's channels-first CPU kernels, which the
        # operator reproduces (a channels-last input would take other kernels)
        flat = x.reshape((1, -1) + tuple(x.shape[x.ndim - d:])).contiguous()
        y = F.interpolate(flat, **kwargs)
        return y.reshape(lead + tuple(y.shape[-d:]))

    interpolate = _as_real_channels(interpolate)

    def forward(x: torch.Tensor) -> torch.Tensor:
        # on the CPU, torch's own kernel is the operator (same taps, same arithmetic);
        # elsewhere torch's kernels may round coordinates otherwise: the operator's taps
        return interpolate(x) if native and x.device.type == "cpu" else sep.forward(x)

    return _Kernels(op, forward, sep.adjoint)


def _avg_pool(op, native: bool) -> _Kernels:
    sep = _Separable(op.matrices, op.axis_order)
    d = len(op.kernel_size)
    spatial = op.input_shape[-d:]
    # avg_pool3d refuses inputs smaller than the kernel, even where the padding fits
    fits = all(n >= k for n, k in zip(spatial, op.kernel_size)) or d < 3
    if not (native and fits):
        return _Kernels(op, sep.forward, sep.adjoint)
    kwargs = dict(kernel_size=op.kernel_size, stride=op.stride, padding=op.padding,
                  ceil_mode=op.ceil_mode, count_include_pad=op.count_include_pad)
    override = op.divisor_override
    if d == 1 and override is not None:  # avg_pool1d has none: a height of 1 in 2-D
        kwargs = {k: ((1, v[0]) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
        kwargs["padding"] = (0, op.padding[0])
        pool = F.avg_pool2d
        d_call = 2
    else:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[d - 1]
        d_call = d
    if override is not None:
        kwargs["divisor_override"] = override

    def forward(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: x.ndim - d]
        flat = x.reshape((-1,) + (1,) * (d_call - d) + tuple(spatial))
        y = pool(flat, **kwargs)
        return y.reshape(lead + tuple(y.shape[-d:]))

    return _Kernels(op, _as_real_channels(forward), sep.adjoint)


def _pad(op: Pad) -> _Kernels:
    if op.mode == "constant":
        pads = tuple(op.pad)
        back = tuple(-p for p in pads)
        return _Kernels(op, lambda x: F.pad(x, pads), lambda y: F.pad(y, back))
    d = len(op.pad) // 2
    first = len(op.input_shape) - d
    sources = []
    for a in op.matrices:  # one entry per row in these modes: the entry each output reads
        src = np.empty(a.shape[0], dtype=np.int64)
        src[np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))] = a.indices
        sources.append(src)
    tables = _Tables(**{f"src{i}": s for i, s in enumerate(sources)})
    sizes = op.input_shape[first:]

    def forward(x: torch.Tensor) -> torch.Tensor:
        tab = tables.get(x.device, {})
        off = x.ndim - d
        for i in range(d):
            x = x.index_select(off + i, tab[f"src{i}"])
        return x

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        tab = tables.get(y.device, {})
        off = y.ndim - d
        for i in reversed(range(d)):
            axis = off + i
            shape = y.shape[:axis] + (sizes[i],) + y.shape[axis + 1:]
            y = torch.zeros(shape, dtype=y.dtype, device=y.device).index_add_(
                axis, tab[f"src{i}"], y)
        return y

    return _Kernels(op, forward, adjoint)


def _shuffle(op) -> _Kernels:
    r = int(op.factor)
    shuffle = lambda x: F.pixel_shuffle(x, r)  # noqa: E731
    unshuffle = lambda x: F.pixel_unshuffle(x, r)  # noqa: E731
    if isinstance(op, PixelShuffle):
        return _Kernels(op, shuffle, unshuffle)
    return _Kernels(op, unshuffle, shuffle)


def layer_kernels(op, *, native: bool = True):
    """The torch kernels ``(forward, adjoint)`` of a non-convolution operator, or None.

    Parameters
    ----------
    op : linop operator
        A `linop.Upsample`, `linop.AvgPool1d`, `linop.AvgPool2d`,
        `linop.AvgPool3d`, `linop.Pad`, `linop.PixelShuffle` or
        `linop.PixelUnshuffle`; anything else gives None.
    native : bool, default True
        Run the forward of `Upsample` (CPU tensors) and of average pooling with
        torch's own ``interpolate`` / ``avg_pool*d``. False applies the
        operator's 1-D matrices instead, as the adjoints always do (the same
        numbers to rounding; slower on the CPU).

    Returns
    -------
    tuple of callable or None
        ``forward(x)`` maps a tensor of shape ``(batch, *op.input_shape)`` to
        ``(batch, *op.output_shape)``, ``adjoint(y)`` back; same device, dtype
        ``torch.promote_types(op dtype, input dtype)``. Both are
        differentiable, each the other's backward.
    """
    if isinstance(op, Upsample):
        kernels = _upsample(op, bool(native))
    elif isinstance(op, (AvgPool1d, AvgPool2d, AvgPool3d)):
        kernels = _avg_pool(op, bool(native))
    elif isinstance(op, Pad):
        kernels = _pad(op)
    elif isinstance(op, (PixelShuffle, PixelUnshuffle)):
        kernels = _shuffle(op)
    else:
        return None
    return kernels.forward, kernels.adjoint
