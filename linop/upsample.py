"""Interpolation (``torch.nn.functional.interpolate``) as a linear operator."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._interp import axis_matrix, finalize_csr
from linop._memory import check_matrix_size

__all__ = ["Upsample"]

_MODES_ANY = ("nearest", "nearest-exact", "area")
_MODES_NDIM = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
MODES = _MODES_ANY + tuple(_MODES_NDIM)
_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


# -- validation helpers ---------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check_input_shape(input_shape) -> tuple[int, ...]:
    if not isinstance(input_shape, (Sequence, np.ndarray)) or isinstance(input_shape, str):
        raise TypeError(
            f"input_shape must be a tuple (C, *spatial) of ints, got {input_shape!r}"
        )
    shape = tuple(input_shape)
    if not all(_is_int(n) for n in shape):
        raise TypeError(f"input_shape must contain ints, got input_shape={shape!r}")
    if not 2 <= len(shape) <= 4:
        raise ValueError(
            "input_shape must be (C, *spatial) with 1 to 3 spatial axes, "
            f"got input_shape={shape!r} ({len(shape) - 1} spatial axes)"
        )
    if any(n < 1 for n in shape):
        raise ValueError(f"input_shape entries must be >= 1, got input_shape={shape!r}")
    return tuple(int(n) for n in shape)


def _per_axis(value, d, name, check, kind):
    """``value`` as a tuple of length ``d``: one item for every axis, or one per axis."""
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        items = tuple(value)
        if len(items) != d:
            raise ValueError(
                f"{name} must have one entry per spatial axis ({d}), got {name}={value!r}"
            )
    else:
        items = (value,) * d
    for v in items:
        if not check(v):
            raise TypeError(f"{name} must be {kind} or a tuple of them, got {name}={value!r}")
    return items


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a floating or complex dtype, got dtype={dtype!r}") from exc
    if dt.type not in _DTYPES:
        raise TypeError(
            "dtype must be float32, float64, complex64 or complex128, "
            f"got dtype={dtype!r}"
        )
    return dt


class Upsample(ShapedLinearOperator):
    r"""Interpolation of ``(C, *spatial)`` arrays as a sparse linear operator.

    The operator equals ``torch.nn.functional.interpolate(x[None], size=size,
    scale_factor=scale_factor, mode=mode, align_corners=align_corners)[0]``
    (PyTorch's default ``recompute_scale_factor=None``, no antialiasing) for
    every mode, for up- and down-sampling alike. Each mode is separable: the
    operator is a Kronecker product of one sparse ``(n_out, n_in)`` matrix per
    spatial axis, repeated over the channels.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, *spatial)`` with 1, 2 or 3 spatial axes.
    size : int or tuple of int, optional
        Output spatial size, one value for every axis or one per axis.
    scale_factor : float or tuple of float, optional
        Multiplier of the spatial size, one value or one per axis; values below
        1 down-sample. Exactly one of ``size`` and ``scale_factor`` is given.
    mode : {"nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"}
        Interpolation mode. ``linear`` needs 1 spatial axis, ``bilinear`` and
        ``bicubic`` 2, ``trilinear`` 3; the others work for any number.
    align_corners : bool, optional
        Only for ``linear``, ``bilinear``, ``bicubic`` and ``trilinear`` (where
        ``None`` means ``False``): align the centres of the corner pixels
        instead of the corners of the pixel grid.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128. The float32 and complex64
        operators reproduce torch's float32 coordinate arithmetic.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(C, *spatial)`` and ``(C, *size)``.
    mode : str
    align_corners : bool or None
        The resolved value: ``False`` or ``True`` for the interpolating modes,
        ``None`` for ``nearest``, ``nearest-exact`` and ``area``.
    size : tuple of int
        The resolved output spatial size.
    scale_factor : tuple of float or None
        The scale factor per axis as given, ``None`` when ``size`` was given.
    matrices : tuple of scipy.sparse.csr_array
        The 1-D interpolation matrices, one ``(size[k], spatial[k])`` per axis.
    dtype : numpy.dtype

    Raises
    ------
    ValueError
        Both or neither of ``size`` and ``scale_factor``; a non-positive size or
        scale factor, or one that gives an empty output; a wrong number of
        entries; an unknown mode or one that does not fit the number of spatial
        axes; ``align_corners`` with ``nearest``, ``nearest-exact`` or ``area``;
        a bad ``input_shape``.
    TypeError
        Non-integer sizes, non-real scale factors, a non-bool ``align_corners``
        or an unsupported ``dtype``.

    See Also
    --------
    linop.Conv2d, linop.ConvTranspose2d

    Notes
    -----
    Along one axis of input size :math:`n` and output size :math:`m`, output
    pixel :math:`o` reads the input at the source coordinate :math:`s(o)`. With
    ``size`` given, :math:`m` is that size and the scale is :math:`r = n/m`;
    with ``scale_factor`` :math:`f` given, :math:`m = \lfloor n f \rfloor` and
    :math:`r = 1/f` (this is what PyTorch does with the default
    ``recompute_scale_factor=None``; ``area`` only uses :math:`m`).

    * ``nearest``: :math:`i(o) = \min(\lfloor o\,r \rfloor, n - 1)`.
    * ``nearest-exact``: :math:`i(o) = \min(\lfloor (o + \tfrac12)\,r \rfloor, n - 1)`.
    * ``linear`` family: with ``align_corners=False``,
      :math:`s = \max((o + \tfrac12)\,r - \tfrac12, 0)`; with ``True``,
      :math:`s = o\,(n - 1)/(m - 1)` (0 if :math:`m = 1`). Then
      :math:`i = \lfloor s \rfloor`, :math:`\lambda = s - i` and
      :math:`y_o = (1 - \lambda)\,x_i + \lambda\,x_{\min(i + 1, n - 1)}`; if
      :math:`m = n` the axis is copied.
    * ``bicubic``: :math:`s` as above but not clamped at 0, :math:`t = s - i`,
      :math:`y_o = \sum_{k=-1}^{2} w_k(t)\, x_{\mathrm{clip}(i + k, 0, n - 1)}` with
      Keys' cubic convolution kernel for :math:`a = -0.75`:
      :math:`W(d) = (a+2)|d|^3 - (a+3)|d|^2 + 1` for :math:`|d| \le 1`,
      :math:`W(d) = a|d|^3 - 5a|d|^2 + 8a|d| - 4a` for :math:`1 < |d| < 2`,
      :math:`w_k(t) = W(k - t)`. Taps outside the input are clamped to the
      border and their weights add up.
    * ``area`` (adaptive average pooling): :math:`y_o` is the mean of
      :math:`x_j` for :math:`\lfloor o n/m \rfloor \le j < \lceil (o+1) n/m \rceil`.

    With :math:`M_k` the matrix of axis :math:`k`, the operator on
    :math:`C` channels is

    .. math:: A = I_C \otimes M_1 \otimes \dots \otimes M_d ,

    in the C-order flattening of ``(C, *spatial)``; :meth:`tocsr` returns that
    product, while :meth:`apply` and ``matvec`` apply the :math:`M_k` one axis
    at a time (cost :math:`O(\sum_k \mathrm{nnz}(M_k) \cdot N / n_k)` rather than
    :math:`O(\mathrm{nnz}(A))`). The adjoint applies the :math:`M_k^T`.

    Floating-point details follow PyTorch's CPU kernels, so that even the
    nearest indices agree where a product lands exactly on an integer: indices
    of the nearest modes are computed in float32 for two spatial axes when
    ``size[0] + size[1] <= 128`` (torch's ``nearest_idx``, whose ``nearest``
    copies the axis when :math:`m = n` and halves indices when :math:`m = 2n`,
    even if the factor is not exactly 1 or 2), and otherwise in the precision of
    ``dtype`` rounded to float32 before the floor; float32 operators compute
    the coordinates of the linear modes in float32, as torch does for float32
    data.

    Examples
    --------
    >>> import numpy as np
    >>> import linop
    >>> op = linop.Upsample((1, 3), scale_factor=2, mode="linear")
    >>> op.output_shape
    (1, 6)
    >>> op.apply(np.array([[0.0, 1.0, 2.0]]))
    array([[0.  , 0.25, 0.75, 1.25, 1.75, 2.  ]])
    >>> op.tocsr().toarray()
    array([[1.  , 0.  , 0.  ],
           [0.75, 0.25, 0.  ],
           [0.25, 0.75, 0.  ],
           [0.  , 0.75, 0.25],
           [0.  , 0.25, 0.75],
           [0.  , 0.  , 1.  ]])

    Nearest-neighbour up-sampling of a 2-channel image, and its adjoint, which
    sums the copies:

    >>> op = linop.Upsample((2, 2, 2), scale_factor=2)
    >>> x = np.arange(8.0).reshape(2, 2, 2)
    >>> op.apply(x)[0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    >>> op.apply_adjoint(np.ones(op.output_shape))[1]
    array([[4., 4.],
           [4., 4.]])

    Down-sampling by area averaging (``scale_factor`` below 1):

    >>> op = linop.Upsample((1, 4), scale_factor=0.5, mode="area")
    >>> op.matvec(np.array([1.0, 3.0, 5.0, 7.0]))
    array([2., 6.])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        *,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        dtype=np.float64,
    ) -> None:
        input_shape = _check_input_shape(input_shape)
        channels, spatial = input_shape[0], input_shape[1:]
        d = len(spatial)
        dt = _check_dtype(dtype)

        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got mode={mode!r}")
        need = _MODES_NDIM.get(mode)
        if need is not None and need != d:
            raise ValueError(
                f"mode={mode!r} needs {need} spatial {'axes' if need > 1 else 'axis'}, "
                f"got input_shape={input_shape!r} with {d}"
            )

        if align_corners is not None and not isinstance(align_corners, (bool, np.bool_)):
            raise TypeError(f"align_corners must be a bool or None, got {align_corners!r}")
        if mode in _MODES_ANY:
            if align_corners is not None:
                raise ValueError(
                    f"align_corners can only be set with the interpolating modes "
                    f"linear, bilinear, bicubic, trilinear; got align_corners="
                    f"{align_corners!r} with mode={mode!r}"
                )
        else:
            align_corners = bool(align_corners) if align_corners is not None else False

        if size is not None and scale_factor is not None:
            raise ValueError(
                f"give only one of size and scale_factor, got size={size!r} and "
                f"scale_factor={scale_factor!r}"
            )
        if size is None and scale_factor is None:
            raise ValueError("give one of size and scale_factor (both are None)")

        if size is not None:
            sizes = _per_axis(size, d, "size", _is_int, "an int")
            if any(s < 1 for s in sizes):
                raise ValueError(f"size must be >= 1, got size={size!r}")
            out = tuple(int(s) for s in sizes)
            factors = None
        else:
            factors = _per_axis(scale_factor, d, "scale_factor", _is_real, "a real number")
            factors = tuple(float(f) for f in factors)
            if not all(math.isfinite(f) and f > 0 for f in factors):
                raise ValueError(
                    f"scale_factor must be positive and finite, got scale_factor={scale_factor!r}"
                )
            out = tuple(math.floor(float(n) * f) for n, f in zip(spatial, factors))
            if any(m < 1 for m in out):
                raise ValueError(
                    f"scale_factor={scale_factor!r} gives an empty output: input spatial "
                    f"size {spatial} -> {out}"
                )

        self.mode = mode
        self.align_corners = align_corners
        self.size = out
        self.scale_factor = factors
        single = dt.type in (np.float32, np.complex64)
        fast = d == 2 and out[0] + out[1] <= 128
        self.matrices = tuple(
            axis_matrix(
                mode, n, m, None if factors is None else factors[k],
                align_corners=bool(align_corners), single=single, fast=fast, dtype=dt,
            )
            for k, (n, m) in enumerate(zip(spatial, out))
        )
        self._matrices_T = tuple(finalize_csr(mat.T) for mat in self.matrices)
        self._taps = {id(mat): _gather_form(mat) for mat in self.matrices + self._matrices_T}
        # apply shrinking axes first: the intermediate arrays stay small
        self._order = sorted(range(d), key=lambda k: out[k] / spatial[k])
        self._is_identity = tuple(_is_identity(mat) for mat in self.matrices)
        super().__init__(input_shape, (channels,) + out, dt)

    def __repr__(self) -> str:
        what = f"size={self.size}" if self.scale_factor is None else (
            f"scale_factor={self.scale_factor}"
        )
        ac = "" if self.align_corners is None else f", align_corners={self.align_corners}"
        return (
            f"<Upsample {self.input_shape} -> {self.output_shape}, mode={self.mode!r}, "
            f"{what}{ac}, dtype={self.dtype}>"
        )

    # -- explicit matrix ------------------------------------------------------------
    def tocsr(self) -> sp.csr_array:
        """The explicit sparse matrix :math:`I_C \\otimes M_1 \\otimes \\dots \\otimes M_d`.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``, sorted indices,
            int32 indices where they fit.

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `get_memory_limit`.

        Examples
        --------
        Linear interpolation of 3 samples to 6 (one channel): each row holds
        the weights of the two nearest input samples.

        >>> import linop
        >>> linop.Upsample((1, 3), scale_factor=2, mode="linear").tocsr().toarray()
        array([[1.  , 0.  , 0.  ],
               [0.75, 0.25, 0.  ],
               [0.25, 0.75, 0.  ],
               [0.  , 0.75, 0.25],
               [0.  , 0.25, 0.75],
               [0.  , 0.  , 1.  ]])
        """
        nnz = self.input_shape[0] * math.prod(m.nnz for m in self.matrices)
        check_matrix_size(nnz, self.dtype, self.shape, "Upsample")
        a = self.matrices[0]
        for m in self.matrices[1:]:
            a = sp.kron(a, m, format="csr")
        channels = self.input_shape[0]
        if channels > 1:
            a = sp.kron(sp.eye_array(channels, dtype=self.dtype, format="csr"), a, format="csr")
        return finalize_csr(a, self.dtype)

    # -- application ------------------------------------------------------------------
    def _apply_axes(self, x: np.ndarray, mats, mats_t, order) -> np.ndarray:
        for k in order:
            if self._is_identity[k]:
                continue
            taps = self._taps[id(mats[k])]
            if taps is not None:
                x = _gather_along(x, 2 + k, *taps)
            else:
                x = _apply_along(x, 2 + k, mats[k], mats_t[k])
        return np.ascontiguousarray(x)

    def _apply_batch(self, x: np.ndarray) -> np.ndarray:
        return self._apply_axes(x, self.matrices, self._matrices_T, self._order)

    def _apply_adjoint_batch(self, y: np.ndarray) -> np.ndarray:
        # the matrices are real, so the Hermitian adjoint is the plain transpose
        return self._apply_axes(y, self._matrices_T, self.matrices, self._order[::-1])


#: Rows with more stored entries than this go through sparse products, and
#: so do matrices with more than 2 taps that enlarge their axis: there, as
#: for bicubic up-sampling, the gathers cost more than one sparse product
#: with its transposed copies (measured in benchmarks/).
MAX_GATHER_TAPS = 4

#: At most this many rows shorter than the longest one (the borders of
#: linear and bicubic interpolation, and of their adjoints) are patched up
#: one by one after the gathers; more go through sparse products.
MAX_SHORT_ROWS = 32


def _gather_form(m: sp.csr_array):
    """A 1-D matrix as ``T`` gathers: ``y[j] = sum_t w[t, j] x[idx[t, j]]``.

    Interpolation matrices hold a few entries per row (1 for the nearest
    modes, 2 linear, 4 bicubic), so applying them as ``T`` gathers along an
    axis beats a sparse product, which needs the axis last and transposed
    copies. Rows shorter than ``T`` are padded with weight 0 and then
    recomputed from their own entries (`_gather_along`): a padded ``0 * x``
    would turn an infinite input into NaN.

    Returns
    -------
    tuple or None
        ``(index, weight, short)``: ``index`` and ``weight`` of shape ``(T,
        n_out)`` (``weight`` None when every entry is 1 and every row has one:
        a pure gather), and ``short``, a list of ``(row, indices, weights)``.
        None when a row is longer than `MAX_GATHER_TAPS`, more than
        `MAX_SHORT_ROWS` rows are short, or rows of more than 2 entries
        enlarge the axis.
    """
    counts = np.diff(m.indptr)
    taps = int(counts.max(initial=0))
    short_rows = np.flatnonzero(counts < taps)
    if taps == 0 or taps > MAX_GATHER_TAPS or short_rows.size > MAX_SHORT_ROWS:
        return None
    if taps > 2 and m.shape[0] > m.shape[1]:
        return None
    rows = np.repeat(np.arange(m.shape[0]), counts)
    slot = np.arange(m.nnz) - m.indptr[rows]
    index = np.zeros((taps, m.shape[0]), dtype=np.intp)
    weight = np.zeros((taps, m.shape[0]), dtype=m.dtype)
    index[slot, rows] = m.indices
    weight[slot, rows] = m.data
    short = [
        (int(j), m.indices[m.indptr[j] : m.indptr[j + 1]].astype(np.intp),
         m.data[m.indptr[j] : m.indptr[j + 1]])
        for j in short_rows
    ]
    if taps == 1 and not short and np.all(weight == 1):
        weight = None
    return index, weight, short


def _weighted_sum(x: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray):
    """``sum_t weight[t] * take(x, index[t], axis)``, in CSR order (by column)."""
    shape = [1] * x.ndim
    shape[axis] = index.shape[1]
    y = np.take(x, index[0], axis=axis)
    y *= weight[0].reshape(shape)
    for t in range(1, index.shape[0]):
        term = np.take(x, index[t], axis=axis)
        term *= weight[t].reshape(shape)
        y += term
    return y


def _gather_along(x: np.ndarray, axis: int, index: np.ndarray, weight, short) -> np.ndarray:
    """The 1-D matrix of `_gather_form` applied along ``axis`` of ``x``.

    Sums in the same order as a CSR row (entries by column), so the result
    is the sparse product's to the last bit, infinities and NaN included.
    """
    if weight is None:
        return np.take(x, index[0], axis=axis)
    # Like SciPy's sparse products, stay silent about inf * 0 and inf - inf:
    # IEEE gives NaN, and the padded slots of short rows are redone below.
    with np.errstate(invalid="ignore"):
        y = _weighted_sum(x, axis, index, weight)
    for row, cols, values in short:
        where = (slice(None),) * axis + (slice(row, row + 1),)
        if cols.size:
            with np.errstate(invalid="ignore"):
                y[where] = _weighted_sum(x, axis, cols[:, None], values[:, None])
        else:
            y[where] = 0
    return y


def _apply_along(x: np.ndarray, axis: int, m: sp.csr_array, m_t: sp.csr_array) -> np.ndarray:
    """Multiply the C-contiguous array ``x`` by ``m`` (``(n_out, n_in)``) along ``axis``.

    ``m_t`` is ``m.T`` as CSR. Three layouts, all sparse-times-dense products:
    the last axis as ``X @ m.T`` on ``(rest, n_in)``; a leading block count that
    is small compared with the trailing size as ``m @ X[i]`` per block; otherwise
    one transposed copy and a single product.
    """
    x = np.ascontiguousarray(x)
    shape = x.shape
    n_in, n_out = shape[axis], m.shape[0]
    lead = math.prod(shape[:axis])
    trail = math.prod(shape[axis + 1 :])
    out_shape = shape[:axis] + (n_out,) + shape[axis + 1 :]
    dtype = np.result_type(x.dtype, m.dtype)
    if trail == 1:
        y = np.asarray(x.reshape(lead, n_in) @ m_t)
    elif trail >= 256 and lead <= 64:
        xb = x.reshape(lead, n_in, trail)
        y = np.empty((lead, n_out, trail), dtype=dtype)
        for i in range(lead):  # a few large blocks: one sparse product each
            y[i] = m @ xb[i]
    else:
        xb = np.ascontiguousarray(x.reshape(lead, n_in, trail).transpose(1, 0, 2))
        y = np.asarray(m @ xb.reshape(n_in, lead * trail))
        y = y.reshape(n_out, lead, trail).transpose(1, 0, 2)
    return np.ascontiguousarray(y, dtype=dtype).reshape(out_shape)


def _is_identity(m: sp.csr_array) -> bool:
    n = m.shape[0]
    return (
        m.shape[0] == m.shape[1]
        and m.nnz == n
        and bool(np.all(np.diff(m.indptr) == 1))
        and bool(np.all(m.indices == np.arange(n)))
        and bool(np.all(m.data == 1))
    )
