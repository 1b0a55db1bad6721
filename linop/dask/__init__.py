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

Operators travel by pickling, which never carries their caches (an
operator pickles as its definition). For the spatial pattern the tasks carry
a small description (the weights and the geometry), and every worker process
rebuilds the small per-chunk operators it needs, once, in a bounded cache
keyed by content (see `set_cache_size`).

This package reads operators through their public attributes only
(``definition``, ``geometry`` of the convolutions; ``axes`` and
``axis_order`` of `~linop.Upsample`) and builds per-chunk operators with the
public constructors. Its modules: ``_batch`` (chunks of a batch),
``_chunks`` (chunk planning), ``_conv`` (halo convolutions and their
adjoints), ``_upsample`` (interpolation axis by axis), ``_cache`` (the
per-process cache).

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

import warnings

import dask.array as da
import numpy as np
from scipy.sparse.linalg import LinearOperator

import linop
from linop._base import ShapedLinearOperator
from linop._validation import check_numeric_operand
from linop.dask._batch import batch, flat_batch
from linop.dask._cache import clear_cache, set_cache_size
from linop.dask._conv import CONV_CLASSES, conv_spatial, spatially_chunked
from linop.dask._upsample import upsample_spatial

__all__ = ["apply", "apply_adjoint", "clear_cache", "set_cache_size"]


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
    name = "y" if adjoint else "x"
    if not isinstance(a, da.Array):
        check_numeric_operand(a, name)  # a sparse matrix: SciPy's TypeError, not a 0-d array
        a = da.asarray(a)
    if not isinstance(op, ShapedLinearOperator):
        return flat_batch(op, a, adjoint, name)
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
    if isinstance(op, CONV_CLASSES):
        if chunked and spatially_chunked(op, a, nb):
            return conv_spatial(op, a, nb, adjoint, dtype)
        return batch(op, a, nb, shape_in, shape_out, adjoint, dtype)
    if isinstance(op, linop.Upsample) and chunked:
        return upsample_spatial(op, a, nb, adjoint, dtype)
    if chunked:
        warnings.warn(
            f"{type(op).__name__} has no chunked (halo) implementation: its axes "
            f"{tuple(range(nb, a.ndim))} are rechunked to a single chunk",
            stacklevel=3,
        )
    return batch(op, a, nb, shape_in, shape_out, adjoint, dtype)
