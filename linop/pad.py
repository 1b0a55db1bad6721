"""Padding and cropping (``torch.nn.functional.pad``) as a sparse linear operator.

`Pad` pads (and, with negative amounts, crops) the last axes of an array
the way ``torch.nn.functional.pad`` does, in its four modes. Every mode
copies entries of the input (or writes zeros), so the operator is a 0/1
matrix with at most one entry per row; its adjoint adds every copy back
onto the entry it came from. Both directions go through
`linop._conv.padding` (`~linop._conv.padding.pad` and its exact adjoint
`~linop._conv.padding.fold`), which the convolutions' padding modes use too.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._conv import padding as _padding
from linop._layer_engine import LayerEngine
from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import canonical_csr
from linop._validation import (
    MAX_SIZE,
    ParameterTypeError,
    ParameterValueError,
    as_choice,
    as_operator_dtype,
    as_shape,
    index_dtype,
    is_int,
)

__all__ = ["MODES", "Pad"]

#: The modes of ``torch.nn.functional.pad`` (a constant other than zero is
#: not linear, so ``"constant"`` pads with zeros).
MODES = ("constant", "reflect", "replicate", "circular")

#: The names of `linop._conv.padding` for the modes.
_PADDING_NAMES = {"constant": "zeros", "reflect": "reflect", "replicate": "replicate",
                  "circular": "circular"}


def _parse_pad(pad, ndim: int) -> tuple[int, ...]:
    """``pad`` as a tuple of an even number of ints, at most two per axis."""
    if isinstance(pad, np.ndarray) and pad.ndim == 1 and pad.dtype.kind in "iu":
        items = [int(v) for v in pad]
    elif isinstance(pad, (tuple, list)) and all(is_int(v) for v in pad):
        items = [operator.index(v) for v in pad]
    else:
        raise ParameterTypeError(
            "pad", f"pad must be a tuple of ints (left, right, top, bottom, ...), got {pad!r}")
    if len(items) % 2:
        raise ParameterValueError(
            "pad", f"pad must hold an even number of ints, (left, right) per axis, got {pad!r}")
    if len(items) // 2 > ndim:
        raise ParameterValueError(
            "pad", f"pad={pad!r} pads {len(items) // 2} axes, but input_shape has only {ndim}")
    if any(abs(v) > MAX_SIZE for v in items):
        raise ParameterValueError(
            "pad", f"pad must be at most 2**62 = {MAX_SIZE} in absolute value, got {pad!r}")
    return tuple(items)


def _check_axis(mode: str, n: int, lo: int, hi: int, axis: int, pad) -> None:
    """PyTorch's limits for one axis of size ``n`` padded by ``(lo, hi)``."""
    where = f"pad={pad!r} gives axis {axis} of size {n} the padding ({lo}, {hi})"
    if n + lo + hi < 1:
        raise ParameterValueError("pad", f"{where}: an output size {n + lo + hi} < 1")
    if mode == "constant" and n + min(lo, 0) + min(hi, 0) < 0:
        raise ParameterValueError(
            "pad", f"{where}: it crops {-min(lo, 0) - min(hi, 0)} entries of {n} (PyTorch "
            "crops before it pads, and cannot crop more than the axis holds)")
    if mode == "reflect" and not (lo < n and hi < n):
        raise ParameterValueError(
            "pad", f"{where}: reflect padding must be smaller than the size of the axis")
    if mode == "circular":
        kept = n - max(-lo, 0) - max(-hi, 0)
        if kept < 1 or max(lo, hi) > kept:
            raise ParameterValueError(
                "pad", f"{where}: circular padding wraps around at most once, so it must not "
                f"exceed the size left after cropping ({kept})")


def _steps(pairs, mode: str):
    """``(before, widths, after)`` for the pads ``pairs``: crops ``(lo, hi) >= 0``
    before padding, the padding ``(lo, hi) >= 0``, crops after, one pair per axis."""
    crops = tuple((max(-lo, 0), max(-hi, 0)) for lo, hi in pairs)
    widths = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
    none = ((0, 0),) * len(pairs)
    if mode in ("constant", "circular"):  # crop first, as PyTorch's kernels
        return crops, widths, none
    return none, widths, crops  # reflect and replicate read the uncropped axis


def _crop(crops, sizes, ndim: int, first: int) -> tuple:
    """The index that crops ``(lo, hi)`` off the axes ``first, first + 1, ...``."""
    where = [slice(None)] * ndim
    for i, ((lo, hi), n) in enumerate(zip(crops, sizes)):
        where[first + i] = slice(lo, n - hi)
    return tuple(where)


def _pad_crop(x: np.ndarray, pairs, mode: str, first: int) -> np.ndarray:
    """``x`` padded by ``pairs`` (signed) on the axes ``first, first + 1, ...``."""
    before, widths, after = _steps(pairs, mode)
    sizes = x.shape[first:first + len(pairs)]
    x = x[_crop(before, sizes, x.ndim, first)]
    x = _padding.pad(x, widths, _PADDING_NAMES[mode], first)
    return x[_crop(after, x.shape[first:first + len(pairs)], x.ndim, first)]


def _fold_crop(z: np.ndarray, pairs, mode: str, first: int, sizes) -> np.ndarray:
    """The adjoint of `_pad_crop` back onto axes of ``sizes``; may write into ``z``
    unless it is read-only, in which case a copy is made first."""
    before, widths, after = _steps(pairs, mode)
    cropped = tuple(n - a - b for n, (a, b) in zip(sizes, before))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(cropped, widths))
    lead, rest = z.shape[:first], z.shape[first + len(pairs):]
    if any(a or b for a, b in after):  # the adjoint of a crop puts back zeros
        full = np.zeros(lead + padded + rest, dtype=z.dtype)
        full[_crop(after, padded, full.ndim, first)] = z
        z = full
    elif mode != "constant" and any(lo or hi for lo, hi in widths) and not z.flags.writeable:
        z = z.copy()  # fold adds the border strips in place
    core = _padding.fold(z, widths, _PADDING_NAMES[mode], cropped, first)
    if any(a or b for a, b in before):
        full = np.zeros(lead + tuple(sizes) + rest, dtype=z.dtype)
        full[_crop(before, sizes, full.ndim, first)] = core
        core = full
    return core


class Pad(LayerEngine, ShapedLinearOperator):
    r"""Padding and cropping (``torch.nn.functional.pad``) as a sparse linear operator.

    The operator equals ``torch.nn.functional.pad(x, pad, mode=mode)`` for
    arrays ``x`` of shape ``input_shape``: ``pad`` lists ``(left, right)``
    amounts for the *last* axis first, then for the axis before it, and so
    on; negative amounts crop. Only zero padding is linear, so
    ``mode="constant"`` pads with zeros and there is no ``value``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of the arrays to pad, e.g. ``(C, H, W)`` or just ``(H, W)``.
    pad : tuple of int
        ``(left, right)`` for the last axis, then ``(top, bottom)`` for the
        one before, ...: an even number of ints, covering the last
        ``len(pad) // 2`` axes of ``input_shape``. Negative values crop.
    mode : {"constant", "reflect", "replicate", "circular"}
        Zeros; the input mirrored without repeating the edge entry; the edge
        entry repeated; the input wrapped around.
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
        ``output_shape`` adds ``left + right`` to each padded axis.
    pad : tuple of int
        As given.
    mode : str
    padding : tuple of (int, int)
        One ``(lo, hi)`` pair per axis of ``input_shape``, in axis order
        (``(0, 0)`` for the axes ``pad`` does not cover).
    matrices : tuple of scipy.sparse.csr_array
        One ``(output size, input size)`` 0/1 matrix per padded axis, in axis
        order.
    dims, dimsd : tuple of int
        ``input_shape`` and ``output_shape`` under PyLops' names.
    dtype : numpy.dtype

    Raises
    ------
    ParameterValueError
        An odd number of pads or more pairs than axes; an axis left with
        fewer than one entry; PyTorch's limits per mode (below).
    ParameterTypeError
        Non-integer pads or sizes, an unsupported ``dtype``.

    See Also
    --------
    linop.Conv2d : its ``padding_mode`` pads the same way.

    Notes
    -----
    Along one axis of size :math:`n` padded by :math:`(l, r)` (each may be
    negative), output entry :math:`j`, :math:`0 \le j < n + l + r`, reads the
    input at

    * ``constant``: :math:`t = j - l` if :math:`0 \le t < n`, else it is 0;
    * ``reflect``: :math:`|t|` for :math:`t < 0`, :math:`2(n - 1) - t` for
      :math:`t \ge n`, else :math:`t`;
    * ``replicate``: :math:`\min(\max(t, 0), n - 1)`;
    * ``circular``: the input is cropped first, to the :math:`m = n -
      \max(-l, 0) - \max(-r, 0)` entries from :math:`a = \max(-l, 0)` on, and
      then wrapped: :math:`a + (j - \max(l, 0)) \bmod m`.

    (``reflect`` and ``replicate`` pad first and crop after, ``circular`` the
    other way round, as PyTorch's kernels do; ``constant`` is the same
    either way.) PyTorch's limits follow: ``reflect`` needs :math:`l, r < n`,
    ``circular`` needs :math:`\max(l, r) \le m` (it wraps around at most
    once; PyTorch checks :math:`l, r \le n` and reads uninitialised memory
    for the rest), ``constant`` cannot crop more than :math:`n` entries, and
    every output size must be at least 1 (PyTorch allows empty outputs in
    ``constant`` and ``circular`` modes, an operator cannot have them).

    Every mode acts on each axis separately: with :math:`P_k` the 0/1
    matrix of padded axis :math:`k` (one row per output entry, a single 1 in
    the column it reads, or an empty row for a zero), the operator is

    .. math:: A = I_L \otimes P_1 \otimes \dots \otimes P_d ,

    with :math:`L` the product of the sizes of the axes ``pad`` leaves
    alone; :meth:`tocsr` returns it. Rows hold at most one entry, so
    :math:`A^T = A^H` adds each padded entry back onto the entry it copies.
    For ``constant`` mode :math:`A^T` is itself a `Pad`, with the pads
    negated (padding and cropping are each other's transposes).

    PyTorch implements the non-constant modes for 1 to 3 padded axes of
    arrays with one or two more axes; linop applies the same rule per axis
    to any number of axes.

    Examples
    --------
    >>> import numpy as np
    >>> import linop
    >>> x = np.arange(1.0, 6.0)
    >>> linop.Pad((5,), (2, 1), mode="reflect").apply(x)
    array([3., 2., 1., 2., 3., 4., 5., 4.])
    >>> linop.Pad((5,), (2, 1), mode="replicate").apply(x)
    array([1., 1., 1., 2., 3., 4., 5., 5.])
    >>> linop.Pad((5,), (2, 1), mode="circular").apply(x)
    array([4., 5., 1., 2., 3., 4., 5., 1.])
    >>> linop.Pad((5,), (-1, 2)).apply(x)          # crop one, pad two zeros
    array([2., 3., 4., 5., 0., 0.])

    The adjoint adds the copies back where they came from:

    >>> op = linop.Pad((5,), (2, 1), mode="reflect")
    >>> op.apply_adjoint(np.ones(8))
    array([1., 2., 2., 2., 1.])
    >>> op.tocsr().toarray().astype(int)
    array([[0, 0, 1, 0, 0],
           [0, 1, 0, 0, 0],
           [1, 0, 0, 0, 0],
           [0, 1, 0, 0, 0],
           [0, 0, 1, 0, 0],
           [0, 0, 0, 1, 0],
           [0, 0, 0, 0, 1],
           [0, 0, 0, 1, 0]])

    Zero padding of the height and width of a ``(C, H, W)`` image, and its
    transpose, which crops:

    >>> op = linop.Pad((3, 4, 4), (1, 1, 2, 0))
    >>> op.output_shape
    (3, 6, 6)
    >>> op.T
    <Pad (3, 6, 6) -> (3, 4, 4), pad=(-1, -1, -2, 0), mode='constant', dtype=float64>
    """

    def __init__(self, input_shape: Sequence[int], pad: Sequence[int],
                 mode: str = "constant", *, dtype=np.float64, engine="auto") -> None:
        shape = as_shape(input_shape, what="a tuple of positive ints")
        pads = _parse_pad(pad, len(shape))
        mode = as_choice(mode, "mode", MODES)
        dt = as_operator_dtype(dtype)
        d = len(pads) // 2
        first = len(shape) - d
        # pad[0:2] is the last axis: reverse the pairs into axis order
        pairs = tuple((pads[2 * i], pads[2 * i + 1]) for i in reversed(range(d)))
        for i, (n, (lo, hi)) in enumerate(zip(shape[first:], pairs)):
            _check_axis(mode, n, lo, hi, first + i, pad)
        out = shape[:first] + tuple(n + lo + hi for n, (lo, hi) in zip(shape[first:], pairs))
        if math.prod(out) > MAX_SIZE:
            raise ParameterValueError(
                "pad", f"pad={pad!r} gives an output of shape {out}, more than 2**62 entries")
        self.pad = pads
        self.mode = mode
        self.padding = ((0, 0),) * first + pairs
        self._first = first
        self._pairs = pairs
        super().__init__(shape, out, dt)
        self._set_engine(engine)

    def __repr__(self) -> str:
        return (f"<Pad {self.input_shape} -> {self.output_shape}, pad={self.pad}, "
                f"mode={self.mode!r}, dtype={self.dtype}>")

    def _apply_cols(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("A", x)
        k = x.shape[-1]
        y = _pad_crop(x.reshape(self.input_shape + (k,)), self._pairs, self.mode, self._first)
        # a fresh array, never a view of the (read-only) input
        y = np.array(y, order="C") if np.may_share_memory(y, x) else np.ascontiguousarray(y)
        return y.reshape(-1, k)

    def _apply_adjoint_cols(self, y: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("AH", y)
        k = y.shape[-1]
        x = _fold_crop(y.reshape(self.output_shape + (k,)), self._pairs, self.mode,
                       self._first, self.input_shape[self._first:])
        x = np.array(x, order="C") if np.may_share_memory(x, y) else np.ascontiguousarray(x)
        return x.reshape(-1, k)

    # 0/1 coefficients: the adjoint is the transpose
    _apply_transpose_cols = _apply_adjoint_cols
    _apply_conjugate_cols = _apply_cols

    def _transpose(self):
        if self.mode != "constant":
            return super()._transpose()
        return Pad(self.output_shape, tuple(-p for p in self.pad), "constant", dtype=self.dtype,
                   engine=self.engine)

    def _adjoint(self):
        return self._transpose() if self.mode == "constant" else super()._adjoint()

    # -- explicit matrices -------------------------------------------------------------
    def _sources(self, i: int) -> np.ndarray:
        """Padded axis ``i``: the input entry each output entry reads, -1 for a zero."""
        n = self.input_shape[self._first + i]
        src = np.arange(1, n + 1, dtype=np.int64)  # 0 marks the zeros of constant mode
        return _pad_crop(src, (self._pairs[i],), self.mode, 0) - 1

    def _axis_nnz(self, i: int) -> int:
        n = self.input_shape[self._first + i]
        lo, hi = self._pairs[i]
        return n + min(lo, 0) + min(hi, 0) if self.mode == "constant" else n + lo + hi

    def _axis_matrix(self, i: int) -> sp.csr_array:
        src = self._sources(i)
        keep = src >= 0
        m, n = src.size, self.input_shape[self._first + i]
        idx = index_dtype(m, n)
        indptr = np.zeros(m + 1, dtype=idx)
        np.cumsum(keep, out=indptr[1:])
        a = sp.csr_array((np.ones(int(indptr[-1]), dtype=self.dtype),
                          src[keep].astype(idx), indptr), shape=(m, n))
        a.has_sorted_indices = True  # at most one entry per row
        a.has_canonical_format = True
        return a

    @property
    def matrices(self) -> tuple[sp.csr_array, ...]:
        """The 0/1 matrix of each padded axis, in axis order (fresh copies)."""
        check_nbytes(
            sum(csr_nbytes(self._axis_nnz(i), self.output_shape[self._first + i], self.dtype)
                + 16 * self.output_shape[self._first + i] for i in range(len(self._pairs))),
            f"the 1-D matrices of this Pad ({self.input_shape} -> {self.output_shape})")
        return tuple(self._axis_matrix(i) for i in range(len(self._pairs)))

    def tocsr(self) -> sp.csr_array:
        """The explicit sparse matrix :math:`I_L \\otimes P_1 \\otimes \\dots \\otimes P_d`.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``, at most one
            entry 1 per row, sorted indices, int32 indices where they fit.

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `linop.get_memory_limit`.

        Examples
        --------
        Cropping is a matrix of selected rows of the identity, zero padding
        one with empty rows:

        >>> import linop
        >>> linop.Pad((4,), (-1, 1)).tocsr().toarray()
        array([[0., 1., 0., 0.],
               [0., 0., 1., 0.],
               [0., 0., 0., 1.],
               [0., 0., 0., 0.]])
        """
        lead = math.prod(self.input_shape[:self._first])
        nnz = lead * math.prod(self._axis_nnz(i) for i in range(len(self._pairs)))
        check_nbytes(
            2 * csr_nbytes(nnz, self.shape[0], self.dtype, self.shape[1]),
            f"the explicit matrix of this Pad ({self.shape[0]} x {self.shape[1]}, {nnz} "
            "stored entries)")
        matrices = self.matrices
        if not matrices:
            return canonical_csr(sp.eye_array(self.shape[0], dtype=self.dtype, format="csr"),
                                 self.dtype, copy=False)
        a = matrices[0]
        for m in matrices[1:]:
            a = sp.kron(a, m, format="csr")
        if lead > 1:
            a = sp.kron(sp.eye_array(lead, dtype=self.dtype, format="csr"), a, format="csr")
        return canonical_csr(a, self.dtype, copy=False)
