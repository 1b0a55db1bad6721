"""Pixel shuffle and unshuffle (``torch.nn.PixelShuffle``) as permutation operators.

`PixelShuffle` moves ``r * r`` channels into an ``r x r`` block of pixels
(sub-pixel convolution's up-sampling step) and `PixelUnshuffle` moves them
back. Both only reorder the entries of an array: each is a permutation
matrix, applied as a reshape and a transpose, and each is the other's
transpose, adjoint and inverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._layer_engine import LayerEngine
from linop._memory import check_nbytes, csr_nbytes
from linop._validation import (
    ParameterValueError,
    as_int,
    as_operator_dtype,
    as_shape,
    index_dtype,
)

__all__ = ["PixelShuffle", "PixelUnshuffle"]

_SHAPE_WHAT = "a tuple (*batch, C, H, W) of ints (at least 3 axes)"


class _PixelPermutation(LayerEngine, ShapedLinearOperator):
    """What `PixelShuffle` and `PixelUnshuffle` share: a permutation of the entries.

    ``_split`` is the shape of the input seen with its factors apart and
    ``_axes`` the transpose that gives the output seen the same way.
    """

    _factor_name: str

    def _setup(self, input_shape, output_shape, factor: int, dtype, split, axes,
               engine="auto") -> None:
        self.factor = factor
        self._split = tuple(split)
        self._axes = tuple(axes)
        super().__init__(input_shape, output_shape, dtype)
        self._set_engine(engine)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.input_shape} -> {self.output_shape}, "
            f"{self._factor_name}={self.factor}, dtype={self.dtype}>"
        )

    # -- application: one transposed copy ------------------------------------------------
    def _permute(self, x: np.ndarray, split, axes) -> np.ndarray:
        k = x.shape[-1]
        moved = x.reshape(split + (k,)).transpose(axes + (len(split),))
        # np.array copies, so the result never shares memory with the (read-only) input
        return np.array(moved, order="C").reshape(-1, k)

    def _apply_cols(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("A", x)
        return self._permute(x, self._split, self._axes)

    def _apply_adjoint_cols(self, y: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("AH", y)
        inverse = tuple(int(a) for a in np.argsort(self._axes))
        split_out = tuple(self._split[a] for a in self._axes)
        return self._permute(y, split_out, inverse)

    # a permutation has real (0/1) coefficients
    _apply_transpose_cols = _apply_adjoint_cols
    _apply_conjugate_cols = _apply_cols

    # -- the explicit matrix -----------------------------------------------------------
    def permutation(self) -> np.ndarray:
        """The permutation as an index array: output entry ``i`` is input entry ``p[i]``.

        Returns
        -------
        numpy.ndarray
            Shape ``(prod(output_shape),)``, int32 or int64, of the C-order
            flat indices of the input; ``op @ x == x[p]``.

        Raises
        ------
        MatrixTooLargeError
            If the array would exceed `linop.get_memory_limit`.

        Examples
        --------
        >>> import linop
        >>> linop.PixelShuffle((4, 1, 1), 2).permutation()
        array([0, 1, 2, 3], dtype=int32)
        >>> linop.PixelShuffle((4, 1, 2), 2).permutation()
        array([0, 2, 1, 3, 4, 6, 5, 7], dtype=int32)
        """
        n = self.shape[1]
        idx = index_dtype(n)
        check_nbytes(2 * n * idx.itemsize,
                     f"the permutation of this {type(self).__name__} ({n} entries)")
        return self._permute(np.arange(n, dtype=idx).reshape(n, 1), self._split,
                             self._axes).reshape(n)

    def tocsr(self) -> sp.csr_array:
        """The explicit permutation matrix: one entry 1 in every row and every column.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))`` (square),
            canonical: sorted indices, int32 indices where they fit.

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `linop.get_memory_limit`.

        Examples
        --------
        >>> import linop
        >>> linop.PixelShuffle((4, 1, 2), 2).tocsr().toarray().astype(int)
        array([[1, 0, 0, 0, 0, 0, 0, 0],
               [0, 0, 1, 0, 0, 0, 0, 0],
               [0, 1, 0, 0, 0, 0, 0, 0],
               [0, 0, 0, 1, 0, 0, 0, 0],
               [0, 0, 0, 0, 1, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 1, 0],
               [0, 0, 0, 0, 0, 1, 0, 0],
               [0, 0, 0, 0, 0, 0, 0, 1]])
        """
        n = self.shape[0]
        check_nbytes(
            csr_nbytes(n, n, self.dtype, n) + n * index_dtype(n).itemsize,
            f"the explicit matrix of this {type(self).__name__} ({n} x {n}, {n} stored "
            "entries)"
        )
        idx = index_dtype(n)
        a = sp.csr_array(
            (np.ones(n, dtype=self.dtype), self.permutation().astype(idx, copy=False),
             np.arange(n + 1, dtype=idx)),
            shape=(n, n),
        )
        a.has_sorted_indices = True  # one entry per row
        a.has_canonical_format = True
        return a


def _check_shape(input_shape) -> tuple[int, ...]:
    shape = as_shape(input_shape, what=_SHAPE_WHAT)
    if len(shape) < 3:
        raise ParameterValueError("input_shape", f"input_shape must be {_SHAPE_WHAT}, got "
                                  f"{input_shape!r}")
    return shape


class PixelShuffle(_PixelPermutation):
    r"""Pixel shuffle: ``(*, C r^2, H, W) -> (*, C, H r, W r)``, a permutation operator.

    The operator equals ``torch.nn.functional.pixel_shuffle(x, r)`` (and
    ``torch.nn.PixelShuffle(r)``): every group of :math:`r^2` consecutive
    channels becomes one channel whose :math:`r \times r` blocks of pixels
    hold them. It only reorders the entries, so its matrix is a permutation
    matrix: ``op.T``, ``op.H`` and its inverse are all the
    `PixelUnshuffle` with the same factor.

    Parameters
    ----------
    input_shape : tuple of int
        ``(*batch, C * r**2, H, W)``: at least 3 axes, as PyTorch requires;
        leading axes are carried along unchanged.
    upscale_factor : int
        The factor :math:`r \ge 1`; the channel count must be divisible by
        :math:`r^2`.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.
    engine : {"auto", "numpy", "torch"}, default "auto"
        Who computes NumPy inputs: NumPy, or PyTorch's kernels on the same
        memory. ``"auto"`` is NumPy unless torch is imported and the layers'
        cost model expects its kernels to be faster by enough to matter
        (``linop._layer_costs``). Tensors are computed by torch on their
        device whatever the engine.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(*batch, C r^2, H, W)`` and ``(*batch, C, H r, W r)``.
    factor : int
        ``upscale_factor``.
    dims, dimsd : tuple of int
        ``input_shape`` and ``output_shape`` under PyLops' names.
    dtype : numpy.dtype

    Raises
    ------
    ParameterValueError
        A shape with fewer than 3 axes, a factor below 1, a channel count not
        divisible by :math:`r^2`.
    ParameterTypeError
        A non-integer factor or shape, an unsupported ``dtype``.

    See Also
    --------
    PixelUnshuffle : the inverse (and transpose) permutation.

    Notes
    -----
    With :math:`r` the factor,

    .. math:: y[c,\; h r + i,\; w r + j] = x[c r^2 + i r + j,\; h,\; w],
       \qquad 0 \le i, j < r,

    in every leading (batch) index. `apply` reshapes the input to
    ``(*, C, r, r, H, W)``, moves the axes to ``(*, C, H, r, W, r)`` and
    copies once. The matrix :math:`P` has one 1 per row and per column, so
    :math:`P^T = P^H = P^{-1}`: the adjoint undoes the shuffle exactly, and
    a dot test holds to rounding of the inner products alone.

    Examples
    --------
    >>> import numpy as np
    >>> import linop
    >>> op = linop.PixelShuffle((4, 2, 2), 2)
    >>> op.output_shape
    (1, 4, 4)
    >>> x = np.arange(16.0).reshape(4, 2, 2)
    >>> op.apply(x)[0]
    array([[ 0.,  4.,  1.,  5.],
           [ 8., 12.,  9., 13.],
           [ 2.,  6.,  3.,  7.],
           [10., 14., 11., 15.]])
    >>> op.T
    <PixelUnshuffle (1, 4, 4) -> (4, 2, 2), downscale_factor=2, dtype=float64>
    >>> bool(np.array_equal(op.T.apply(op.apply(x)), x))
    True
    """

    _factor_name = "upscale_factor"

    def __init__(self, input_shape: Sequence[int], upscale_factor: int, *,
                 dtype=np.float64, engine="auto") -> None:
        shape = _check_shape(input_shape)
        r = as_int(upscale_factor, "upscale_factor", minimum=1)
        dt = as_operator_dtype(dtype)
        *batch, c, h, w = shape
        if c % (r * r):
            raise ParameterValueError(
                "upscale_factor", f"the channel count {c} of input_shape={shape!r} must be "
                f"divisible by upscale_factor**2 = {r * r}"
            )
        lead = math.prod(batch) * (c // (r * r))
        super()._setup(shape, tuple(batch) + (c // (r * r), h * r, w * r), r, dt,
                       (lead, r, r, h, w), (0, 3, 1, 4, 2), engine)

    @property
    def upscale_factor(self) -> int:
        return self.factor

    def _transpose(self):
        return PixelUnshuffle(self.output_shape, self.factor, dtype=self.dtype,
                              engine=self.engine)

    _adjoint = _transpose


class PixelUnshuffle(_PixelPermutation):
    r"""Pixel unshuffle: ``(*, C, H r, W r) -> (*, C r^2, H, W)``, a permutation operator.

    The operator equals ``torch.nn.functional.pixel_unshuffle(x, r)`` (and
    ``torch.nn.PixelUnshuffle(r)``): every :math:`r \times r` block of
    pixels of a channel becomes :math:`r^2` consecutive channels. It is the
    inverse of `PixelShuffle`, and, being a permutation, also its transpose
    and adjoint: ``op.T`` and ``op.H`` are that `PixelShuffle`.

    Parameters
    ----------
    input_shape : tuple of int
        ``(*batch, C, H * r, W * r)``: at least 3 axes, as PyTorch requires.
    downscale_factor : int
        The factor :math:`r \ge 1`, which must divide the height and the width.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.
    engine : {"auto", "numpy", "torch"}, default "auto"
        Who computes NumPy inputs: NumPy, or PyTorch's kernels on the same
        memory. ``"auto"`` is NumPy unless torch is imported and the layers'
        cost model expects its kernels to be faster by enough to matter
        (``linop._layer_costs``). Tensors are computed by torch on their
        device whatever the engine.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(*batch, C, H r, W r)`` and ``(*batch, C r^2, H, W)``.
    factor : int
        ``downscale_factor``.
    dims, dimsd : tuple of int
        ``input_shape`` and ``output_shape`` under PyLops' names.
    dtype : numpy.dtype

    Raises
    ------
    ParameterValueError
        A shape with fewer than 3 axes, a factor below 1, a height or width
        not divisible by the factor.
    ParameterTypeError
        A non-integer factor or shape, an unsupported ``dtype``.

    See Also
    --------
    PixelShuffle : the inverse (and transpose) permutation.

    Notes
    -----
    With :math:`r` the factor,

    .. math:: y[c r^2 + i r + j,\; h,\; w] = x[c,\; h r + i,\; w r + j],
       \qquad 0 \le i, j < r.

    `apply` reshapes the input to ``(*, C, H, r, W, r)``, moves the axes to
    ``(*, C, r, r, H, W)`` and copies once; the matrix is a permutation
    matrix, the transpose of `PixelShuffle`'s.

    Examples
    --------
    >>> import numpy as np
    >>> import linop
    >>> op = linop.PixelUnshuffle((1, 4, 4), 2)
    >>> op.output_shape
    (4, 2, 2)
    >>> x = np.arange(16.0).reshape(1, 4, 4)
    >>> op.apply(x)[:, 0, 0]          # the top-left 2x2 block, as 4 channels
    array([0., 1., 4., 5.])
    >>> op.H
    <PixelShuffle (4, 2, 2) -> (1, 4, 4), upscale_factor=2, dtype=float64>
    """

    _factor_name = "downscale_factor"

    def __init__(self, input_shape: Sequence[int], downscale_factor: int, *,
                 dtype=np.float64, engine="auto") -> None:
        shape = _check_shape(input_shape)
        r = as_int(downscale_factor, "downscale_factor", minimum=1)
        dt = as_operator_dtype(dtype)
        *batch, c, h, w = shape
        if h % r or w % r:
            raise ParameterValueError(
                "downscale_factor", f"the height {h} and width {w} of input_shape={shape!r} "
                f"must be divisible by downscale_factor={r}"
            )
        lead = math.prod(batch) * c
        super()._setup(shape, tuple(batch) + (c * r * r, h // r, w // r), r, dt,
                       (lead, h // r, r, w // r, r), (0, 2, 4, 1, 3), engine)

    @property
    def downscale_factor(self) -> int:
        return self.factor

    def _transpose(self):
        return PixelShuffle(self.output_shape, self.factor, dtype=self.dtype,
                            engine=self.engine)

    _adjoint = _transpose
