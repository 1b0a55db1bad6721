"""Scale-out with Dask: linop operators applied to `dask.array` arrays.

The operator stays the same object; only the data is a Dask array. Two
patterns are covered, and can be mixed:

* **a batch** ``(*batch, *input_shape)`` chunked along the batch axes: every
  chunk goes through the operator itself (its ``matmat``);
* **one large image or volume** ``(*batch, C, *spatial)`` chunked along its
  spatial axes: every output chunk is computed exactly from its input chunk
  and a halo taken from the neighbouring chunks.

For the spatial pattern (convolutions, transposed convolutions and their
adjoints, and `~linop.Upsample`):

* a convolution ``y = V(pad(x))`` is a "valid" convolution ``V`` of the
  input padded by its padding mode. The padding is applied once, at the
  outer border of the Dask array (``dask.array.pad``: ``constant``,
  ``reflect``, ``edge`` and ``wrap`` are PyTorch's ``zeros``, ``reflect``,
  ``replicate`` and ``circular``). The padded array is rechunked so that
  every chunk boundary is a multiple of the stride; then output chunk ``j``
  is the valid convolution of input chunk ``j`` extended on its high side by
  the receptive-field halo ``dilation*(k-1) + 1 - stride`` (when positive),
  exchanged with ``dask.array.overlap.overlap``. Every output chunk is exact.
* an adjoint or transposed convolution ``x = pad^T(V^T y)`` scatters every
  input pixel over ``dilation*(k-1) + 1`` positions. Output chunk ``j`` covers
  the padded positions ``[a_j*stride, a_{j+1}*stride)`` for input chunk
  ``[a_j, a_{j+1})``, and every input pixel that contributes to it lies in
  that chunk or in the last ``dilation*(k-1) // stride`` pixels of the chunk
  before: with that halo each output chunk is again exact (the overlapping
  contributions across a chunk border are all summed inside the output chunk
  they land in). ``pad^T`` then crops the padding (``zeros``) or folds the
  border strips back onto the image (``reflect``, ``replicate``,
  ``circular``), exactly as the in-memory adjoint does.
* `~linop.Upsample` is separable: one sparse 1-D matrix per spatial axis.
  Every output chunk of an axis reads a contiguous input range, which is
  sliced from the Dask array (the halo) and multiplied by the matching rows
  of the 1-D matrix. The adjoint uses the transposed 1-D matrices.

Chunks smaller than the halo are merged with their neighbours (never
refused), chunk boundaries are moved to multiples of the stride, and the
channel axis is always one chunk (channels mix).

Workers never receive the operator's cached sparse matrices: the tasks carry
a small description (the weights and the geometry) and every worker process
rebuilds the small per-chunk operators it needs, once, in a bounded cache
(see `set_cache_size`).

Examples
--------
>>> import numpy as np, dask.array as da, linop, linop.dask
>>> A = linop.Conv2d(np.ones((3, 3)) / 9, (64, 64), padding=1, padding_mode="reflect")
>>> x = da.random.default_rng(0).standard_normal((64, 64), chunks=16)
>>> y = linop.dask.apply(A, x)             # lazy, chunked like x
>>> y.chunks
((16, 16, 16, 16), (16, 16, 16, 16))
>>> bool(np.allclose(y.compute(), A.apply(x.compute())))
True
"""

from __future__ import annotations

import hashlib
import math
import threading
import warnings
from collections import OrderedDict

import dask
import dask.array as da
import numpy as np
from scipy.sparse.linalg import LinearOperator

from linop._base import ShapedLinearOperator
from linop._engine import ConvEngine
from linop.conv import _CONV_BY_NDIM, _ConvNd, _ConvTransposeNd

__all__ = ["apply", "apply_adjoint", "clear_cache", "set_cache_size"]

# PyTorch padding modes -> numpy / dask.array.pad modes.
_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# -- a bounded, thread-safe cache of per-chunk operators (one per process) --------------------
_cache: OrderedDict = OrderedDict()
_cache_sizes: dict = {}
_cache_lock = threading.Lock()
_building: dict = {}
_cache_limit = 512 * 2**20


def set_cache_size(nbytes: int) -> None:
    """Bound the memory of the per-process cache of per-chunk operators.

    Every process that computes chunks (the client with the threaded
    scheduler, every ``distributed`` worker) keeps the small operators it
    built for the chunk shapes it met, least recently used first out, up to
    about ``nbytes`` of sparse matrices (default 512 MiB; the most recent
    operator is always kept). On a cluster, call it on the workers, e.g.
    ``client.run(linop.dask.set_cache_size, 2**28)``.

    Parameters
    ----------
    nbytes : int
        The bound in bytes, ``>= 0`` (default 512 MiB).

    Raises
    ------
    ValueError
        If ``nbytes`` is not an int ``>= 0``.

    See Also
    --------
    clear_cache : empty the cache.

    Examples
    --------
    >>> import numpy as np, dask.array as da, linop, linop.dask
    >>> linop.dask.set_cache_size(64 * 2**20)        # 64 MiB in this process
    >>> A = linop.Conv1d(np.ones(3), (100,))
    >>> float(linop.dask.apply(A, da.ones(100, chunks=25)).sum().compute())
    294.0
    >>> linop.dask.set_cache_size(512 * 2**20)       # back to the default
    """
    global _cache_limit
    if not isinstance(nbytes, (int, np.integer)) or isinstance(nbytes, bool) or nbytes < 0:
        raise ValueError(f"nbytes must be an int >= 0, got {nbytes!r}")
    with _cache_lock:
        _cache_limit = int(nbytes)
        _evict()


def clear_cache() -> None:
    """Empty this process's cache of per-chunk operators.

    The operators are rebuilt when next needed; results do not change. On a
    cluster, call it on the workers: ``client.run(linop.dask.clear_cache)``.

    See Also
    --------
    set_cache_size : bound the cache instead.

    Examples
    --------
    >>> import numpy as np, dask.array as da, linop, linop.dask
    >>> A = linop.Conv1d(np.ones(3), (100,))
    >>> x = da.ones(100, chunks=25)
    >>> y1 = linop.dask.apply(A, x).compute()       # builds and caches
    >>> linop.dask.clear_cache()
    >>> y2 = linop.dask.apply(A, x).compute()       # builds again
    >>> bool(np.array_equal(y1, y2))
    True
    """
    with _cache_lock:
        _cache.clear()
        _cache_sizes.clear()


def _evict():
    while len(_cache) > 1 and sum(_cache_sizes.values()) > _cache_limit:
        key, _ = _cache.popitem(last=False)
        _cache_sizes.pop(key, None)


def _cached(key, build, nbytes_of):
    """The cached value of ``key``, built once per process (other threads wait for it)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        value = build()
        with _cache_lock:
            _cache[key] = value
            _cache_sizes[key] = nbytes_of(value)
            _building.pop(key, None)
            _evict()
    return value


def _warm(op, adjoint=False):
    """Build whatever the operator's application needs, now (under the build lock)."""
    shape = op.output_shape if adjoint else op.input_shape
    zero = np.zeros((1,) + tuple(shape), dtype=op.dtype)
    op.apply_adjoint(zero) if adjoint else op.apply(zero)
    return op


def _conv_nbytes(op) -> int:
    """Roughly what an operator's cached sparse matrices take.

    One explicit matrix for the Toeplitz method; for im2col the channel-free
    patch matrix and its transpose.
    """
    e = op._engine
    nnz = e.toeplitz_nnz()
    if e.method != "toeplitz":
        nnz = 2 * nnz // (e.c_out * e.cin_group)
    return nnz * (e.weight.dtype.itemsize + 4)


def _token(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


# -- small, picklable descriptions of what the tasks need ------------------------------------
class _Kernel:
    """A weight, groups, stride and dilation: the per-chunk valid convolutions.

    Pickles as the weight and a few ints; the operators are built (and
    cached) in the process that uses them.
    """

    def __init__(self, weight, groups, stride, dilation):
        self.weight = np.ascontiguousarray(weight)  # (C_out, C_in/groups, *k)
        self.groups = int(groups)
        self.stride = tuple(stride)
        self.dilation = tuple(dilation)
        self.kernel_size = self.weight.shape[2:]
        self.c_in = self.weight.shape[1] * self.groups
        self.c_out = self.weight.shape[0]
        self.token = _token(self.weight, self.groups, self.stride, self.dilation)

    def __getstate__(self):
        return {k: self.__dict__[k] for k in ("weight", "groups", "stride", "dilation", "token")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.kernel_size = self.weight.shape[2:]
        self.c_in = self.weight.shape[1] * self.groups
        self.c_out = self.weight.shape[0]

    @property
    def reach(self):
        """``dilation*(k-1)`` per axis: how far past its start an output reads."""
        return tuple(d * (k - 1) for d, k in zip(self.dilation, self.kernel_size))

    def conv(self, window):
        """The valid convolution of this kernel on ``(C_in, *window)``."""
        window = tuple(int(n) for n in window)
        cls = _CONV_BY_NDIM[len(window)]

        def build():
            return _warm(cls(self.weight, (self.c_in,) + window, stride=self.stride,
                             dilation=self.dilation, groups=self.groups))

        return _cached(("conv", self.token, window), build, _conv_nbytes)

    def conv_transpose(self, m):
        """The transpose of the valid convolution whose output is ``m`` long per axis.

        Only the transposed explicit matrix is built (the Toeplitz method of
        a transposed operator never caches the matrix it transposes).
        """
        m = tuple(int(v) for v in m)
        window = tuple((mi - 1) * s + r + 1 for mi, s, r in zip(m, self.stride, self.reach))
        cls = _CONV_BY_NDIM[len(window)]

        def build():
            return _warm(cls(self.weight, (self.c_in,) + window, stride=self.stride,
                             dilation=self.dilation, groups=self.groups).T)

        return _cached(("conv_transpose", self.token, window), build, _conv_nbytes)


class _ConvRef:
    """A convolution operator, rebuilt from its weight and geometry where it is used."""

    def __init__(self, op):
        e = op._engine
        self.cls = type(op)
        self.geometry = e.geometry
        self.weight = e.weight
        self.groups = e.groups
        self.method = e.method
        self.bare = op._bare
        self.token = _token(self.cls.__name__, self.weight, self.geometry, self.groups,
                            self.method, self.bare)

    def get(self):
        def build():
            engine = ConvEngine(self.geometry, self.weight, self.groups, self.method)
            return self.cls._from_engine(engine, self.bare)  # built lazily: used both ways

        return _cached(("op", self.token), build, _conv_nbytes)


class _PlainRef:
    """Any other operator, shipped as it is (once per worker, as a Dask dependency)."""

    def __init__(self, op):
        self.op = op

    def get(self):
        return self.op


def _delayed(obj):
    """``obj`` as a single graph key, so that it is shipped once per worker, not per task."""
    return dask.delayed(obj, pure=False, traverse=False)


# -- public entry points ---------------------------------------------------------------------
def apply(op, x):
    """Apply a linop operator to a Dask array: ``op.apply(x)``, chunk by chunk.

    Parameters
    ----------
    op : LinearOperator
        Any linop operator (`~linop.Conv2d`, `~linop.ConvTranspose2d`,
        `~linop.Upsample`, ...; their ``.T`` and ``.H``), any
        ``ShapedLinearOperator``, or a plain SciPy ``LinearOperator`` (then
        ``x`` has shape ``(*batch, op.shape[1])``).
    x : dask.array.Array or array_like
        Shape ``(*batch, *op.input_shape)``. Batch axes may be chunked
        freely. Spatial axes may be chunked for convolutions, transposed
        convolutions and `~linop.Upsample` (and their adjoints): their chunks
        are then realigned to the stride and merged where smaller than the
        halo; for other operators a warning is issued and the operator's
        axes are made one chunk. The channel axis is made one chunk.

    Returns
    -------
    dask.array.Array
        Shape ``(*batch, *op.output_shape)``, dtype
        ``result_type(op.dtype, x.dtype)``, lazy. Equal to ``op.apply(x)``
        to floating-point precision.

    See Also
    --------
    apply_adjoint : the Hermitian adjoint, chunk by chunk.

    Examples
    --------
    A batch of 10 images of 64x64, chunked along the batch (4 images per
    chunk) and along the image axes (32x32 tiles); the result keeps the
    chunks:

    >>> import numpy as np, dask.array as da, linop, linop.dask
    >>> A = linop.Conv2d(np.ones((3, 3)) / 9, (64, 64), padding=1)
    >>> x = da.ones((10, 64, 64), chunks=(4, 32, 32))
    >>> y = linop.dask.apply(A, x)                  # lazy
    >>> y.shape, y.chunks
    ((10, 64, 64), ((4, 4, 2), (32, 32), (32, 32)))
    >>> bool(np.allclose(y.compute(), A.apply(x.compute())))
    True
    """
    return _dispatch(op, x, adjoint=False)


def apply_adjoint(op, y):
    """Apply the Hermitian adjoint of a linop operator to a Dask array.

    Same as `apply` for ``op.apply_adjoint(y)``: ``y`` has shape
    ``(*batch, *op.output_shape)``, the result ``(*batch, *op.input_shape)``.
    For a convolution this is the exact transposed convolution (its padding
    mode's border folded back), computed chunk by chunk with the overlapping
    contributions summed across chunk borders.

    Parameters
    ----------
    op : LinearOperator
        As in `apply`.
    y : dask.array.Array or array_like
        Shape ``(*batch, *op.output_shape)``, chunked as in `apply`.

    Returns
    -------
    dask.array.Array
        Shape ``(*batch, *op.input_shape)``, dtype
        ``result_type(op.dtype, y.dtype)``, lazy. Equal to
        ``op.apply_adjoint(y)`` to floating-point precision.

    See Also
    --------
    apply : the operator itself, chunk by chunk.

    Examples
    --------
    The adjoint of a stride-2 convolution: every chunk of 10 outputs maps
    back to a chunk of 20 inputs.

    >>> import numpy as np, dask.array as da, linop, linop.dask
    >>> A = linop.Conv1d(np.array([1.0, 2.0, 3.0]), (100,), stride=2)
    >>> A.output_shape
    (49,)
    >>> y = da.ones(49, chunks=10)
    >>> x = linop.dask.apply_adjoint(A, y)
    >>> x.chunks
    ((20, 20, 20, 20, 20),)
    >>> bool(np.allclose(x.compute(), A.apply_adjoint(np.ones(49))))
    True
    """
    return _dispatch(op, y, adjoint=True)


def _dispatch(op, a, adjoint):
    if not isinstance(op, LinearOperator):
        raise TypeError(f"op must be a scipy.sparse.linalg.LinearOperator, got {type(op)!r}")
    a = a if isinstance(a, da.Array) else da.asarray(a)
    name = "y" if adjoint else "x"
    if not isinstance(op, ShapedLinearOperator):
        return _flat_batch(op, a, adjoint, name)
    shape_in, shape_out = (
        (op.output_shape, op.input_shape) if adjoint else (op.input_shape, op.output_shape)
    )
    nd = len(shape_in)
    if a.ndim < nd or tuple(a.shape[a.ndim - nd:]) != tuple(shape_in):
        raise ValueError(
            f"{name} must have shape (*batch, {', '.join(map(str, shape_in))}), got {a.shape}"
        )
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise TypeError(f"input dtype {a.dtype} is not numeric")
    dtype = np.result_type(op.dtype, a.dtype)
    nb = a.ndim - nd
    chunked = any(len(c) > 1 for c in a.chunks[nb:])
    if isinstance(op, (_ConvNd, _ConvTransposeNd)):
        if chunked and not _spatial_chunked(op, a, nb):
            chunked = False  # only the channel axis is chunked
        if chunked:
            return _conv_spatial(op, a, nb, adjoint, dtype)
        return _batch(_ConvRef(op), a, nb, shape_in, shape_out, adjoint, dtype)
    if _is_upsample(op) and chunked:
        return _upsample_spatial(op, a, nb, adjoint, dtype)
    if chunked:
        warnings.warn(
            f"{type(op).__name__} has no chunked (halo) implementation: its axes "
            f"{tuple(range(nb, a.ndim))} are rechunked to a single chunk",
            stacklevel=3,
        )
    return _batch(_PlainRef(op), a, nb, shape_in, shape_out, adjoint, dtype)


def _spatial_chunked(op, a, nb) -> bool:
    first_spatial = nb + (0 if op._bare else 1)
    return any(len(c) > 1 for c in a.chunks[first_spatial:])


# -- the batch pattern ------------------------------------------------------------------------
def _batch_block(block, ref, shape_in, shape_out, adjoint, dtype):
    op = ref.get()
    lead = block.shape[: block.ndim - 1]
    x = block.reshape(lead + tuple(shape_in))
    y = op.apply_adjoint(x) if adjoint else op.apply(x)
    return np.asarray(y, dtype=dtype).reshape(lead + (math.prod(shape_out),))


def _batch(ref, a, nb, shape_in, shape_out, adjoint, dtype):
    """Every chunk of the batch axes through the operator; its own axes in one chunk."""
    a = a.rechunk({ax: -1 for ax in range(nb, a.ndim)})
    batch = a.shape[:nb]
    flat = a.reshape(batch + (math.prod(shape_in),))
    out = da.map_blocks(
        _batch_block, flat, _delayed(ref), tuple(shape_in), tuple(shape_out), adjoint, dtype,
        chunks=flat.chunks[:nb] + ((math.prod(shape_out),),), dtype=dtype,
    )
    return out.reshape(batch + tuple(shape_out))


def _flat_batch(op, a, adjoint, name):
    n_in = op.shape[0] if adjoint else op.shape[1]
    n_out = op.shape[1] if adjoint else op.shape[0]
    if a.ndim < 1 or a.shape[-1] != n_in:
        raise ValueError(f"{name} must have shape (*batch, {n_in}), got {a.shape}")
    dtype = np.result_type(op.dtype, a.dtype)
    a = a.rechunk({a.ndim - 1: -1})
    return da.map_blocks(
        _flat_block, a, _delayed(_PlainRef(op)), adjoint, dtype,
        chunks=a.chunks[:-1] + ((n_out,),), dtype=dtype,
    )


def _flat_block(block, ref, adjoint, dtype):
    op = ref.get()
    cols = block.reshape(-1, block.shape[-1]).T
    out = op.rmatmat(cols) if adjoint else op.matmat(cols)
    return np.asarray(out.T, dtype=dtype).reshape(block.shape[:-1] + (out.shape[0],))


# -- chunk planning -----------------------------------------------------------------------------
def _bounds(chunks) -> list[int]:
    return [int(b) for b in np.cumsum((0,) + tuple(chunks))]


def _plan_axis(n, wanted, step, min_size, last_min):
    """Chunk sizes of an axis of length ``n`` close to the boundaries ``wanted``.

    Interior boundaries are multiples of ``step``; every chunk is at least
    ``min_size`` long and the last at least ``last_min``: chunks that would
    be smaller are merged with their neighbours.
    """
    min_size, last_min = max(min_size, 1), max(last_min, min_size, 1)
    candidates = sorted({int(round(b / step)) * step for b in wanted if 0 < b < n})
    kept = [0]
    for b in candidates:
        if b - kept[-1] >= min_size and n - b >= last_min:
            kept.append(b)
    kept.append(n)
    return tuple(int(c) for c in np.diff(kept))


def _index(ndim, axis, sl):
    idx = [slice(None)] * ndim
    idx[axis] = sl
    return tuple(idx)


# -- convolutions on spatially chunked arrays ---------------------------------------------------
def _conv_spatial(op, a, nb, adjoint, dtype):
    e = op._engine
    g = e.geometry
    transposed = isinstance(op, _ConvTransposeNd)
    # (adjoint of) Conv: forward = V pad; backward = pad^T V^H.
    # ConvTranspose: forward = pad^T V^T (zeros pad); its adjoint = conj(V) pad.
    backward = adjoint != transposed
    conjugate = adjoint and np.iscomplexobj(e.weight)
    weight = e.weight.conj() if conjugate else e.weight
    kernel = _Kernel(weight, e.groups, g.stride, g.dilation)
    if op._bare:
        a = da.expand_dims(a, nb)
    a = a.rechunk({nb: -1})
    out = (_conv_backward if backward else _conv_forward)(a, kernel, g, nb, dtype)
    if op._bare:
        out = out[_index(out.ndim, nb, 0)]
    return out


def _conv_forward(x, kernel, g, nb, dtype):
    """``V(pad(x))`` for ``x`` of shape ``(*batch, C_in, *input_size)``."""
    nd = g.ndim
    axes = range(nb + 1, nb + 1 + nd)
    # chunk boundaries stay where the user put them (then realigned to the
    # stride): with "same" padding, output chunks are input chunks.
    user_bounds = [_bounds(x.chunks[ax]) for ax in axes]
    if any(lo or hi for lo, hi in g.padding):
        pad_width = [(0, 0)] * (nb + 1) + [tuple(p) for p in g.padding]
        x = da.pad(x, pad_width, mode=_PAD_MODES[g.padding_mode])
    chunks, out_chunks, depth, windows = {}, [], {}, []
    for i, ax in enumerate(axes):
        s, r, m = g.stride[i], kernel.reach[i], g.output_size[i]
        needed = (m - 1) * s + r + 1  # the padded positions the outputs read
        if needed < x.shape[ax]:
            x = x[_index(x.ndim, ax, slice(0, needed))]
        halo = max(0, r + 1 - s)
        sizes = _plan_axis(needed, user_bounds[i], s, halo, r + 1)
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
        _forward_block, x, _delayed(kernel), tuple(out_chunks), tuple(windows),
        chunks=x.chunks[:nb] + ((kernel.c_out,),) + tuple(out_chunks), dtype=dtype,
    )


def _common_window(block, windows):
    """Zero-pad a chunk at its high end to the common window, when that is not wasteful.

    Chunks of one array then share one per-chunk operator (one cache entry)
    instead of one per distinct edge-chunk shape.
    """
    nd = len(windows)
    shape = block.shape[block.ndim - nd:]
    extra = [w - n if n < w <= 2 * n else 0 for n, w in zip(shape, windows)]
    if not any(extra):
        return block
    return np.pad(block, [(0, 0)] * (block.ndim - nd) + [(0, e) for e in extra])


def _forward_block(block, kernel, out_chunks, windows, block_id=None):
    """The valid convolution of one (haloed) chunk: exactly its output chunk."""
    nd = len(out_chunks)
    block = _common_window(block, windows)
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
        sizes = _plan_axis(m, _bounds(y.chunks[ax]), 1, halo, halo)
        chunks[ax] = sizes
        starts = _bounds(sizes)
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
        _backward_block, y, _delayed(kernel), tuple(plan), tuple(windows),
        chunks=y.chunks[:nb] + ((kernel.c_in,),) + tuple(out_chunks), dtype=dtype,
    )
    return _unpad(z, g, nb)


def _backward_block(block, kernel, plan, windows, block_id=None):
    """The transposed valid convolution of one (haloed) chunk, cut to its output chunk.

    Zeros appended to the chunk (`_common_window`) scatter nothing.
    """
    nd = len(plan)
    block = _common_window(block, windows)
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
        parts.append(core[_index(core.ndim, axis, slice(0, start))])
    parts.append(core[_index(core.ndim, axis, slice(start, stop))] + piece)
    if stop < core.shape[axis]:
        parts.append(core[_index(core.ndim, axis, slice(stop, None))])
    return da.concatenate(parts, axis=axis) if len(parts) > 1 else parts[0]


def _unpad(z, g, nb):
    """The adjoint of the padding: ``z`` on the padded grid -> the input grid."""
    mode = g.padding_mode
    for i in range(g.ndim):
        ax = nb + 1 + i
        (lo, hi), n = g.padding[i], g.input_size[i]
        if not (lo or hi):
            continue
        core = z[_index(z.ndim, ax, slice(lo, lo + n))]
        if mode != "zeros":
            chunks = core.chunks
            left = z[_index(z.ndim, ax, slice(0, lo))]
            right = z[_index(z.ndim, ax, slice(lo + n, lo + n + hi))]
            flip = _index(z.ndim, ax, slice(None, None, -1))
            if mode == "reflect":  # padded lo-1-t <- x[1+t]; padded lo+n+t <- x[n-2-t]
                core = _add_at(core, ax, 1, left[flip])
                core = _add_at(core, ax, n - 1 - hi, right[flip])
            elif mode == "replicate":
                if lo:
                    core = _add_at(core, ax, 0, left.sum(axis=ax, keepdims=True))
                if hi:
                    core = _add_at(core, ax, n - 1, right.sum(axis=ax, keepdims=True))
            else:  # circular: padded t <- x[n-lo+t]; padded lo+n+t <- x[t]
                core = _add_at(core, ax, n - lo, left)
                core = _add_at(core, ax, 0, right)
            core = core.rechunk({ax: chunks[ax]})
        z = core
    return z


# -- Upsample -----------------------------------------------------------------------------------
def _is_upsample(op) -> bool:
    from linop import upsample

    cls = getattr(upsample, "Upsample", None)
    return isinstance(cls, type) and isinstance(op, cls)


def _upsample_spatial(op, a, nb, adjoint, dtype):
    """Interpolation as one sparse 1-D matrix per spatial axis, axis after axis.

    Channels do not mix, so the channel and batch axes keep their chunks.
    Along each spatial axis every output chunk reads a contiguous input
    range (the rows' columns), sliced from the Dask array: that slice is
    the chunk's halo.
    """
    mats = [m.conj().T.tocsr() if adjoint else m.tocsr() for m in op.matrices]
    order = list(getattr(op, "_order", range(len(mats))))
    if adjoint:
        order = order[::-1]
    for k in order:
        a = _along_axis(a, nb + 1 + k, mats[k], dtype)
    return a


def _along_axis(a, ax, m, dtype):
    """``m`` (``(n_out, n_in)``, CSR) applied along axis ``ax`` of ``a``, chunk by chunk."""
    n_out, n_in = m.shape
    scale = n_out / n_in
    bounds = sorted({0, n_out} | {int(round(b * scale)) for b in _bounds(a.chunks[ax])})
    parts = []
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        rows = m[r0:r1]
        if rows.nnz == 0:
            shape = a.shape[:ax] + (r1 - r0,) + a.shape[ax + 1:]
            chunks = a.chunks[:ax] + ((r1 - r0,),) + a.chunks[ax + 1:]
            parts.append(da.zeros(shape, chunks=chunks, dtype=dtype))
            continue
        c0, c1 = int(rows.indices.min()), int(rows.indices.max()) + 1
        piece = a[_index(a.ndim, ax, slice(c0, c1))].rechunk({ax: -1})
        sub = rows[:, c0:c1].tocsr()
        parts.append(da.map_blocks(
            _along_block, piece, sub, ax, dtype,
            chunks=piece.chunks[:ax] + ((r1 - r0,),) + piece.chunks[ax + 1:], dtype=dtype,
        ))
    return da.concatenate(parts, axis=ax) if len(parts) > 1 else parts[0]


def _along_block(block, m, ax, dtype):
    x = np.moveaxis(np.asarray(block, dtype=dtype), ax, 0)
    rest = x.shape[1:]
    y = np.asarray(m @ x.reshape(x.shape[0], -1), dtype=dtype)
    return np.ascontiguousarray(np.moveaxis(y.reshape((m.shape[0],) + rest), 0, ax))
