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

* **Separable operators** (`Upsample`, average pooling) have two forms.
  The *tables* form multiplies by the operator's public 1-D ``matrices``, one
  per spatial axis, in its ``axis_order`` (the adjoint by their transposes,
  backwards): a dense product for small axes or long rows, otherwise ``T``
  gathers ``y[j] = sum_t w[t, j] x[idx[t, j]]`` (`torch.Tensor.index_select`
  of whole slabs and `torch.Tensor.addcmul_`; a transpose is gathered the
  same way from its own table, with no scatter). It is exact by construction
  on every device. The *native* form calls torch's own kernels where they
  are the operator: ``F.interpolate`` on CPU tensors (the operator
  reproduces torch's CPU arithmetic, including its float32 coordinates),
  ``avg_pool2d``/``avg_pool3d`` (windows and divisors are integer rules),
  and, for the adjoint, torch's backward kernels where they are the exact
  transposes of the forwards: average pooling, ``area`` (adaptive average
  pooling) and the linear modes on the CPU. Torch's backward of ``nearest``
  (1-D and 3-D) and of float32 ``bicubic`` reads other indices or weights
  than its forward, so those adjoints always use the tables.
* `Pad`: zero padding is ``torch.nn.functional.pad`` and its adjoint the
  same call with the pads negated (padding and cropping are each other's
  transposes). The other modes gather each padded axis with the source
  index of every output entry (read from the operator's 0/1 ``matrices``)
  and their adjoint adds the copies back with ``index_add_``; natively,
  where torch implements the pads (1 to 3 axes, none negative), the forward
  is ``F.pad`` and the adjoint of ``reflect`` and ``replicate`` torch's
  backward kernel, which adds the copies back at the same indices.
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

from linop._memory import check_nbytes
from linop.pad import Pad
from linop.pool import AvgPool1d, AvgPool2d, AvgPool3d
from linop.shuffle import PixelShuffle, PixelUnshuffle
from linop.upsample import Upsample

__all__ = ["DENSE_MAX_ENTRIES", "DENSE_PER_PASS", "layer_kernels"]

#: The largest 1-D matrix (``n_out * n_in`` entries) applied as a dense product.
DENSE_MAX_ENTRIES = 1 << 18
#: A dense product costs about ``2 n_in`` flops per output, ``T`` gathers about
#: ``2 T + 1`` passes over the output (1 for a pure gather), plus 2 transposes
#: along the last axis: the product is taken when ``n_in <= DENSE_PER_PASS *
#: passes`` (measured in benchmarks/torch_layers.py on 2 CPU threads).
DENSE_PER_PASS = 40

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
        if x.shape[0] == 0:  # an empty batch, which some of torch's kernels refuse
            return x.new_zeros((0,) + kernels.output_shape)
        return _fresh(kernels.forward_impl(x), x)

    @staticmethod
    def backward(ctx, g):
        return _Adjoint.apply(g, ctx.kernels), None


class _Adjoint(torch.autograd.Function):
    """``kernels.adjoint_impl``, whose backward is `_Forward`."""

    @staticmethod
    def forward(ctx, y, kernels):
        ctx.kernels = kernels
        if y.shape[0] == 0:
            return y.new_zeros((0,) + kernels.input_shape)
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
class _Form:
    """An ``(m, n)`` real matrix applied along one axis of a tensor.

    Seen as ``(lead, n, trail)``, the tensor is multiplied in one of three ways:

    * a dense product, where it is cheaper than the gathers (`DENSE_PER_PASS`):
      ``X @ M.T`` on ``(lead, n)`` along the last axis (one GEMM), ``M @ X``
      per ``lead`` block along the others;
    * ``T`` gathers of whole ``trail`` slabs, ``y = sum_t w[t] * X[:, idx[t]]``
      (`index_select` and `addcmul_`), rows with fewer taps padded with weight 0;
    * the same gathers on the transposed ``(n, lead)`` tensor when the axis is
      the last one and too long for a dense product (gathers of rows, not of
      single entries).
    """

    def __init__(self, m: sp.csr_array):
        data = np.real(m.data)
        self.shape = n_out, n_in = m.shape
        counts = np.diff(m.indptr)
        self.taps = taps = int(counts.max()) if m.nnz else 0
        rows = np.repeat(np.arange(n_out), counts)
        # one tap of weight 1 per row: a pure gather
        self.plain = taps == 1 and bool(np.all(counts == 1)) and bool(np.all(data == 1))
        small = n_out * n_in <= DENSE_MAX_ENTRIES
        passes = 1 if self.plain else 2 * taps + 1
        self.dense_inner = small and (n_in <= DENSE_PER_PASS * passes or taps == 0)
        self.dense_last = small and n_in <= DENSE_PER_PASS * (passes + 2)
        # rows padded to the longest: sized first (a matrix, its copy on a device, and
        # the tables for a second dtype)
        check_nbytes(3 * 16 * (0 if self.dense_inner else max(taps, 1) * n_out)
                     + 3 * 8 * (n_out * n_in if self.dense_last or self.dense_inner else 0),
                     f"the torch tables of a ({n_out}, {n_in}) 1-D matrix")
        arrays = {}
        if self.dense_last or self.dense_inner:
            a = np.zeros(m.shape, dtype=data.dtype)
            a[rows, m.indices] = data
            arrays["matrix"] = a
        if not self.dense_inner:
            slot = np.arange(m.nnz) - m.indptr[rows]
            index = np.zeros((max(taps, 1), n_out), dtype=np.int64)
            weight = np.zeros((max(taps, 1), n_out), dtype=data.dtype)
            index[slot, rows] = m.indices
            weight[slot, rows] = data
            arrays["index"], arrays["weight"] = index, weight
        self.tables = _Tables(**arrays)

    def apply(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        shape = x.shape
        m, n = self.shape
        lead, trail = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
        out_shape = shape[:axis] + (m,) + shape[axis + 1:]
        if (self.dense_last and trail == 1) or self.dense_inner:
            a = self.tables.get(x.device, {"matrix": x.dtype})["matrix"]
            if trail == 1:
                y = x.reshape(lead, n) @ a.T
            else:
                y = torch.matmul(a, x.reshape(lead, n, trail))
            return y.reshape(out_shape)
        if trail == 1:
            y = self._gather(x.reshape(lead, n).T.contiguous(), 0)
            return y.T.reshape(out_shape)
        return self._gather(x.reshape(lead, n, trail), 1).reshape(out_shape)

    def _gather(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        """The gathers along ``axis`` (0 of ``(n, lead)`` or 1 of ``(lead, n, trail)``)."""
        tab = self.tables.get(x.device, {"weight": _real_dtype(x.dtype)})
        index, weight = tab["index"], tab["weight"]
        if self.plain:
            return x.index_select(axis, index[0])
        y = x.index_select(axis, index[0]) * weight[0, :, None]
        for t in range(1, self.taps):
            y.addcmul_(x.index_select(axis, index[t]), weight[t, :, None])
        return y


class _AxisMap:
    """A real 1-D matrix and its transpose, each as a `_Form`; the identity is skipped."""

    def __init__(self, matrix: sp.csr_array):
        m = sp.csr_array(matrix)
        m.sum_duplicates()
        m.eliminate_zeros()
        n_out, n_in = m.shape
        self.identity = (n_out == n_in and m.nnz == n_out
                         and bool(np.all(np.diff(m.indptr) == 1))
                         and bool(np.all(m.indices == np.arange(n_in)))
                         and bool(np.all(m.data == 1)))
        # every input entry copied r times in a row (nearest up-sampling by an integer):
        # an expanded view copied once, and its transpose a sum over the copies
        r = n_out // n_in
        self.repeat = r if (r > 1 and n_out == r * n_in and m.nnz == n_out
                            and bool(np.all(np.diff(m.indptr) == 1))
                            and bool(np.all(m.indices == np.arange(n_out) // r))
                            and bool(np.all(m.data == 1))) else 0
        self.forward = _Form(m)
        self.transpose = _Form(sp.csr_array(m.T))

    def apply(self, x: torch.Tensor, axis: int, transpose: bool) -> torch.Tensor:
        if self.identity:
            return x
        if self.repeat:
            r, shape = self.repeat, x.shape
            if transpose:  # strided adds: faster in torch than a sum over a short axis
                v = x.reshape(shape[:axis] + (shape[axis] // r, r) + shape[axis + 1:])
                z = v.select(axis + 1, 0) + v.select(axis + 1, 1)
                for j in range(2, r):
                    z.add_(v.select(axis + 1, j))
                return z
            wide = x.unsqueeze(axis + 1).expand(shape[:axis + 1] + (r,) + shape[axis + 1:])
            return wide.reshape(shape[:axis] + (shape[axis] * r,) + shape[axis + 1:])
        return (self.transpose if transpose else self.forward).apply(x, axis)


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


#: The backward of torch's kernels that are the exact transposes of their forwards
#: (same indices and weights), by mode of `Upsample`: not those of ``nearest`` (1-D and
#: 3-D) nor ``bicubic`` (float32), whose gradients read other indices or weights.
_UPSAMPLE_BACKWARD = {
    "linear": "upsample_linear1d_backward",
    "bilinear": "upsample_bilinear2d_backward",
    "trilinear": "upsample_trilinear3d_backward",
}


def _upsample(op: Upsample, native: bool) -> _Kernels:
    sep = _Separable(op.matrices, op.axis_order)
    d = len(op.size)
    in_spatial, out_spatial = tuple(op.input_shape[-d:]), tuple(op.size)
    kwargs = {"mode": op.mode}
    if op.scale_factor is not None:  # as given: torch uses it in its coordinates
        kwargs["scale_factor"] = tuple(op.scale_factor)
    else:
        kwargs["size"] = out_spatial
    if op.align_corners is not None:
        kwargs["align_corners"] = op.align_corners

    @_as_real_channels
    def interpolate(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: x.ndim - d]
        # (1, N, *spatial), contiguous: torch's channels-first CPU kernels, which the
        # operator reproduces (a channels-last input would take other kernels)
        y = F.interpolate(x.reshape((1, -1) + in_spatial).contiguous(), **kwargs)
        return y.reshape(lead + out_spatial)

    backward = _UPSAMPLE_BACKWARD.get(op.mode)
    scales = [None] * d if op.scale_factor is None else [float(f) for f in op.scale_factor]

    @_as_real_channels
    def interpolate_backward(y: torch.Tensor) -> torch.Tensor:
        lead = y.shape[: y.ndim - d]
        flat = y.reshape((1, -1) + out_spatial).contiguous()
        if op.mode == "area":  # adaptive average pooling (1-D as 2-D of height 1)
            extra = (1,) if d == 1 else ()
            like = torch.empty((1, flat.shape[1]) + extra + in_spatial, dtype=y.dtype,
                               device=y.device)
            fn = torch.ops.aten._adaptive_avg_pool3d_backward if d == 3 else (
                torch.ops.aten._adaptive_avg_pool2d_backward)
            x = fn(flat.reshape(like.shape[:2] + extra + out_spatial), like)
        else:
            x = getattr(torch.ops.aten, backward)(
                flat, list(out_spatial), [1, flat.shape[1], *in_spatial],
                bool(op.align_corners), *scales)
        return x.reshape(lead + in_spatial)

    precision = _real_dtype(_TORCH_DTYPES[np.dtype(op.dtype)])

    def is_native(t: torch.Tensor) -> bool:
        # On the CPU, torch's own kernel is the operator (same taps, same arithmetic)
        # when it computes in the operator's precision (a float64 tensor would take
        # float64 coordinates where the float32 operator has float32 ones); other
        # devices' kernels may round coordinates otherwise: the operator's taps there.
        return native and t.device.type == "cpu" and _real_dtype(t.dtype) == precision

    exact_backward = backward is not None or op.mode == "area"

    def forward(x: torch.Tensor) -> torch.Tensor:
        return interpolate(x) if is_native(x) else sep.forward(x)

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        return interpolate_backward(y) if exact_backward and is_native(y) else sep.adjoint(y)

    return _Kernels(op, forward, adjoint)


def _avg_pool(op, native: bool) -> _Kernels:
    sep = _Separable(op.matrices, op.axis_order)
    d = len(op.kernel_size)
    spatial = tuple(op.input_shape[-d:])
    out_spatial = tuple(op.output_shape[-d:])
    # avg_pool3d refuses inputs smaller than the kernel, even where the padding fits
    fits = all(n >= k for n, k in zip(spatial, op.kernel_size)) or d < 3
    if not (native and fits):
        return _Kernels(op, sep.forward, sep.adjoint)
    # 1-D as 2-D of height 1 (avg_pool1d has no divisor_override and no backward)
    extra = (1,) if d == 1 else ()
    args = (((1,) * (d == 1)) + tuple(op.kernel_size), ((1,) * (d == 1)) + tuple(op.stride),
            ((0,) * (d == 1)) + tuple(op.padding), op.ceil_mode, op.count_include_pad,
            op.divisor_override)
    pool = torch.ops.aten.avg_pool3d if d == 3 else torch.ops.aten.avg_pool2d
    pool_backward = (torch.ops.aten.avg_pool3d_backward if d == 3
                     else torch.ops.aten.avg_pool2d_backward)

    @_as_real_channels
    def forward(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: x.ndim - d]
        y = pool(x.reshape((-1,) + extra + spatial), *args)
        return y.reshape(lead + out_spatial)

    @_as_real_channels
    def adjoint(y: torch.Tensor) -> torch.Tensor:
        lead = y.shape[: y.ndim - d]
        flat = y.reshape((-1,) + extra + out_spatial)
        like = torch.empty(flat.shape[:1] + extra + spatial, dtype=y.dtype, device=y.device)
        return pool_backward(flat, like, *args).reshape(lead + spatial)

    return _Kernels(op, forward, adjoint)


def _pad(op: Pad, native: bool) -> _Kernels:
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

    # torch's own kernels for the pads it implements: 1 to 3 axes, no crops
    if not native or d > 3 or min(op.pad) < 0:
        return _Kernels(op, forward, adjoint)
    pads = list(op.pad)
    padded, in_padded = tuple(op.output_shape[first:]), tuple(sizes)
    mode = op.mode

    @_as_real_channels
    def pad(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: x.ndim - d]
        return F.pad(x.reshape((1, -1) + in_padded), pads, mode=mode).reshape(lead + padded)

    backward = {"reflect": "reflection_pad", "replicate": "replication_pad"}.get(mode)
    if backward is None:  # circular: torch's backward is its autograd of slices
        return _Kernels(op, pad, adjoint)
    backward = getattr(torch.ops.aten, f"{backward}{d}d_backward")

    @_as_real_channels
    def pad_backward(y: torch.Tensor) -> torch.Tensor:
        lead = y.shape[: y.ndim - d]
        flat = y.reshape((1, -1) + padded)
        like = torch.empty((1, flat.shape[1]) + in_padded, dtype=y.dtype, device=y.device)
        return backward(flat, like, pads).reshape(lead + in_padded)

    return _Kernels(op, pad, pad_backward)


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
        Call torch's own kernels where they are the operator (see the module
        notes: ``interpolate`` and its linear-mode backward on CPU tensors,
        ``avg_pool*d`` and its backward, ``pad`` and the backward of its
        reflect and replicate modes). False applies the operator's 1-D
        matrices (or source indices) everywhere, as on other devices and for
        the other adjoints: the same numbers to rounding, slower on the CPU.

    Returns
    -------
    tuple of callable or None
        ``forward(x)`` maps a tensor of shape ``(batch, *op.input_shape)`` to
        ``(batch, *op.output_shape)``, ``adjoint(y)`` back; same device, dtype
        ``torch.promote_types(op dtype, input dtype)``. Both are
        differentiable, each the other's backward.

    Raises
    ------
    MatrixTooLargeError
        If the 1-D tables would exceed `linop.get_memory_limit`.

    Examples
    --------
    >>> import torch, linop
    >>> from linop._torch_engine.layers import layer_kernels
    >>> forward, adjoint = layer_kernels(linop.Upsample((1, 3), scale_factor=2, mode="linear"))
    >>> forward(torch.tensor([[[0.0, 1.0, 2.0]]]))
    tensor([[[0.0000, 0.2500, 0.7500, 1.2500, 1.7500, 2.0000]]],
           dtype=torch.float64)
    >>> adjoint(torch.ones(1, 1, 6))                 # the column sums of the matrix
    tensor([[[2., 2., 2.]]], dtype=torch.float64)
    >>> x = torch.ones(1, 1, 3, dtype=torch.float64, requires_grad=True)
    >>> forward(x).sum().backward()                  # the gradient is the adjoint
    >>> x.grad
    tensor([[[2., 2., 2.]]], dtype=torch.float64)
    >>> layer_kernels(linop.Conv1d(torch.ones(1, 1, 3).numpy(), (1, 8))) is None
    True
    """
    if isinstance(op, Upsample):
        kernels = _upsample(op, bool(native))
    elif isinstance(op, (AvgPool1d, AvgPool2d, AvgPool3d)):
        kernels = _avg_pool(op, bool(native))
    elif isinstance(op, Pad):
        kernels = _pad(op, bool(native))
    elif isinstance(op, (PixelShuffle, PixelUnshuffle)):
        kernels = _shuffle(op)
    else:
        return None
    return kernels.forward, kernels.adjoint
