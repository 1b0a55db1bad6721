"""Convolutions on spatially chunked Dask arrays: halos, and folding the padding back.

A convolution ``y = V(pad(x))`` is a "valid" convolution ``V`` of the input
padded once at the outer border; every output chunk is the valid convolution
of its input chunk extended by the receptive-field halo. The adjoint
``x = pad^T(V^T y)`` scatters; every output chunk receives from its input
chunk and the halo before it, and ``pad^T`` folds the border back with the
same rule as the in-memory operators (`linop._conv.padding.fold`).
"""

from __future__ import annotations

import dask.array as da
import numpy as np

import linop
from linop._conv.padding import NUMPY_PAD_MODES, fold
from linop._conv.toeplitz import explicit_matrix_nnz
from linop.dask._batch import ship
from linop.dask._cache import cached, token
from linop.dask._chunks import bounds, common_window, index, plan_axis

__all__ = ["CONV_CLASSES", "conv_spatial", "spatially_chunked"]

#: The operators this module chunks spatially.
CONV_CLASSES = (linop.Conv1d, linop.Conv2d, linop.Conv3d,
                linop.ConvTranspose1d, linop.ConvTranspose2d, linop.ConvTranspose3d)


def _warm(op, adjoint=False):
    """Build whatever the operator's application needs, now (under the build lock)."""
    shape = op.output_shape if adjoint else op.input_shape
    zero = np.zeros((1,) + tuple(shape), dtype=op.dtype)
    op.apply_adjoint(zero) if adjoint else op.apply(zero)
    return op


def _conv_nbytes(op) -> int:
    """Roughly what an operator's caches take: its explicit matrix for the Toeplitz method."""
    if op.method != "toeplitz":
        return op.definition.weight.nbytes
    nnz = explicit_matrix_nnz(op.definition.weight, op.geometry)
    return nnz * (op.dtype.itemsize + 4)


class _Kernel:
    """A weight, groups, stride and dilation: the per-chunk valid convolutions.

    Pickles as the weight and a few ints; the operators are built (and
    cached, by content) in the process that uses them.
    """

    def __init__(self, weight, groups, stride, dilation):
        self.weight = np.ascontiguousarray(weight)  # (C_out, C_in/groups, *k)
        self.groups = int(groups)
        self.stride = tuple(stride)
        self.dilation = tuple(dilation)
        self.token = token(self.weight, self.groups, self.stride, self.dilation)

    @property
    def c_in(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def c_out(self) -> int:
        return self.weight.shape[0]

    @property
    def reach(self):
        """``dilation*(k-1)`` per axis: how far past its start an output reads."""
        return tuple(d * (k - 1) for d, k in zip(self.dilation, self.weight.shape[2:]))

    def _valid(self, window):
        cls = getattr(linop, f"Conv{len(window)}d")
        return cls(self.weight, (self.c_in,) + window, stride=self.stride,
                   dilation=self.dilation, groups=self.groups)

    def conv(self, window):
        """The valid convolution of this kernel on ``(C_in, *window)``."""
        window = tuple(int(n) for n in window)
        return cached(("conv", self.token, window), lambda: _warm(self._valid(window)),
                      _conv_nbytes)

    def conv_transpose(self, m):
        """The transpose of the valid convolution whose output is ``m`` long per axis."""
        m = tuple(int(v) for v in m)
        window = tuple((mi - 1) * s + r + 1 for mi, s, r in zip(m, self.stride, self.reach))
        return cached(("conv_transpose", self.token, window),
                      lambda: _warm(self._valid(window).T), _conv_nbytes)


def spatially_chunked(op, a, nb) -> bool:
    """Whether any spatial axis of ``a`` (batch axes first, ``nb`` of them) has chunks."""
    first_spatial = nb + (0 if op.definition.bare else 1)
    return any(len(c) > 1 for c in a.chunks[first_spatial:])


def conv_spatial(op, a, nb, adjoint, dtype):
    """``op.apply(a)`` (or its adjoint) for a spatially chunked Dask array."""
    definition, g = op.definition, op.geometry
    # (adjoint of) Conv: forward = V pad; backward = pad^T V^H.
    # ConvTranspose: forward = pad^T V^T (zeros pad); its adjoint = conj(V) pad.
    backward = adjoint != definition.transposed
    conjugate = adjoint and np.iscomplexobj(definition.weight)
    weight = definition.weight.conj() if conjugate else definition.weight
    kernel = _Kernel(weight, definition.groups, g.stride, g.dilation)
    if definition.bare:
        a = da.expand_dims(a, nb)
    a = a.rechunk({nb: -1})
    out = (_conv_backward if backward else _conv_forward)(a, kernel, g, nb, dtype)
    if definition.bare:
        out = out[index(out.ndim, nb, 0)]
    return out


def _conv_forward(x, kernel, g, nb, dtype):
    """``V(pad(x))`` for ``x`` of shape ``(*batch, C_in, *input_size)``."""
    nd = g.ndim
    axes = range(nb + 1, nb + 1 + nd)
    # chunk boundaries stay where the user put them (then realigned to the
    # stride): with "same" padding, output chunks are input chunks.
    user_bounds = [bounds(x.chunks[ax]) for ax in axes]
    if any(lo or hi for lo, hi in g.padding):
        pad_width = [(0, 0)] * (nb + 1) + [tuple(p) for p in g.padding]
        x = da.pad(x, pad_width, mode=NUMPY_PAD_MODES[g.padding_mode])
    chunks, out_chunks, depth, windows = {}, [], {}, []
    for i, ax in enumerate(axes):
        s, r, m = g.stride[i], kernel.reach[i], g.output_size[i]
        needed = (m - 1) * s + r + 1  # the padded positions the outputs read
        if needed < x.shape[ax]:
            x = x[index(x.ndim, ax, slice(0, needed))]
        halo = max(0, r + 1 - s)
        sizes = plan_axis(needed, user_bounds[i], s, halo, r + 1)
        chunks[ax] = sizes
        out_chunks.append(tuple(c // s for c in sizes[:-1]) + (m - sum(sizes[:-1]) // s,))
        if halo and len(sizes) > 1:
            depth[ax] = (0, halo)
            windows.append(max(c + halo * (j + 1 < len(sizes)) for j, c in enumerate(sizes)))
        else:
            windows.append(max(sizes))
    x = x.rechunk(chunks)
    if depth:
        x = da.overlap.overlap(x, depth=depth, boundary="none", allow_rechunk=False)
    return da.map_blocks(
        _forward_block, x, ship(kernel), tuple(out_chunks), tuple(windows),
        chunks=x.chunks[:nb] + ((kernel.c_out,),) + tuple(out_chunks), dtype=dtype,
    )


def _forward_block(block, kernel, out_chunks, windows, block_id=None):
    """The valid convolution of one (haloed) chunk: exactly its output chunk."""
    nd = len(out_chunks)
    block = common_window(block, windows)
    y = kernel.conv(block.shape[block.ndim - nd:]).apply(block)
    want = tuple(c[i] for c, i in zip(out_chunks, block_id[len(block_id) - nd:]))
    got = y.shape[y.ndim - nd:]
    if any(a < b for a, b in zip(got, want)):  # never expected: a bad plan must not pass
        raise RuntimeError(f"linop.dask: chunk output {got} is smaller than planned {want}")
    if got != want:  # the zero-padded tail of an edge chunk
        y = y[(Ellipsis, *[slice(0, w) for w in want])]
    return y


def _conv_backward(y, kernel, g, nb, dtype):
    """``pad^T(V^T y)`` for ``y`` of shape ``(*batch, C_out, *output_size)``."""
    nd = g.ndim
    axes = range(nb + 1, nb + 1 + nd)
    chunks, depth, plan, out_chunks, windows = {}, {}, [], [], []
    for i, ax in enumerate(axes):
        s, r, (lo, hi) = g.stride[i], kernel.reach[i], g.padding[i]
        m, padded = g.output_size[i], g.input_size[i] + lo + hi
        halo = r // s
        sizes = plan_axis(m, bounds(y.chunks[ax]), 1, halo, halo)
        chunks[ax] = sizes
        starts = bounds(sizes)
        axis_plan = []
        for j in range(len(sizes)):
            t0 = starts[j] * s
            t1 = starts[j + 1] * s if j + 1 < len(sizes) else padded
            axis_plan.append((max(starts[j] - halo, 0) * s, t0, t1))
        plan.append(tuple(axis_plan))
        out_chunks.append(tuple(t1 - t0 for _, t0, t1 in axis_plan))
        if halo and len(sizes) > 1:
            depth[ax] = (halo, 0)
            windows.append(max(c + halo * (j > 0) for j, c in enumerate(sizes)))
        else:
            windows.append(max(sizes))
    y = y.rechunk(chunks)
    if depth:
        y = da.overlap.overlap(y, depth=depth, boundary="none", allow_rechunk=False)
    z = da.map_blocks(
        _backward_block, y, ship(kernel), tuple(plan), tuple(windows),
        chunks=y.chunks[:nb] + ((kernel.c_in,),) + tuple(out_chunks), dtype=dtype,
    )
    return _unpad(z, g, nb)


def _backward_block(block, kernel, plan, windows, block_id=None):
    """The transposed valid convolution of one (haloed) chunk, cut to its output chunk.

    Zeros appended to the chunk (`_common_window`) scatter nothing.
    """
    nd = len(plan)
    block = common_window(block, windows)
    m = block.shape[block.ndim - nd:]
    r = kernel.conv_transpose(m).apply(block)
    ids = block_id[len(block_id) - nd:]
    lead = r.shape[: r.ndim - nd]
    spans = [p[i] for p, i in zip(plan, ids)]
    out = np.zeros(lead + tuple(t1 - t0 for _, t0, t1 in spans), dtype=r.dtype)
    dst, src = [], []
    for (w0, t0, t1), n in zip(spans, r.shape[r.ndim - nd:]):
        lo, hi = max(t0, w0), min(t1, w0 + n)
        if hi <= lo:
            return out
        dst.append(slice(lo - t0, hi - t0))
        src.append(slice(lo - w0, hi - w0))
    out[(Ellipsis, *dst)] = r[(Ellipsis, *src)]
    return out


# -- the adjoint of the padding: crop, or fold the border back ---------------------------------
def _add_at(core, axis, start, piece):
    """``core`` with ``piece`` added to positions ``[start, start + len)`` of ``axis``."""
    n = piece.shape[axis]
    if n == 0:
        return core
    stop = start + n
    parts = []
    if start > 0:
        parts.append(core[index(core.ndim, axis, slice(0, start))])
    parts.append(core[index(core.ndim, axis, slice(start, stop))] + piece)
    if stop < core.shape[axis]:
        parts.append(core[index(core.ndim, axis, slice(stop, None))])
    result = da.concatenate(parts, axis=axis) if len(parts) > 1 else parts[0]
    return result.rechunk(core.chunks)


def _unpad(z, g, nb):
    """The adjoint of the padding: ``z`` on the padded grid -> the input grid."""
    return fold(z, g.padding, g.padding_mode, g.input_size, first_axis=nb + 1, add_at=_add_at)
