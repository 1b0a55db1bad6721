"""Average pooling (``torch.nn.AvgPool1d/2d/3d``) as sparse linear operators.

Average pooling is separable: along every axis it sums a window of
entries, and the divisor of each output is a product of one count per axis
(or a fixed ``divisor_override``). An operator holds one 0/1 window-sum
matrix per axis (applied along its axis by
`linop._interp.axis.AxisInterpolation`) and the per-axis divisors, and
divides once per output, as PyTorch does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._interp.axis import AxisInterpolation
from linop._layer_engine import LayerEngine
from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import canonical_csr
from linop._validation import (
    MAX_SIZE,
    ParameterValueError,
    as_bool,
    as_int,
    as_operator_dtype,
    as_shape,
    index_dtype,
    per_axis,
)

__all__ = ["AvgPool1d", "AvgPool2d", "AvgPool3d", "pool_output_size"]


def pool_output_size(n: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """PyTorch's output size of pooling one axis (``pooling_output_shape``, dilation 1).

    ``floor`` (or ``ceil``) of ``(n + 2p - k) / s``, plus one; in ceil mode
    the last window must start inside the input or the left padding. May be
    below 1 (the caller refuses that).
    """
    out = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _windows(n: int, k: int, s: int, p: int, m: int):
    """Per output ``o`` of an axis: first input read, entries read, window size.

    The window of ``o`` covers ``[o s - p, min(o s - p + k, n + p))`` of the
    padded axis (the ceil-mode overhang past the right padding is not part
    of it); it reads the entries of the input inside it.
    """
    start = np.arange(m, dtype=np.int64) * s - p
    end = np.minimum(start + k, n + p)
    lo, hi = np.maximum(start, 0), np.minimum(end, n)
    return lo, hi - lo, end - start


class _AvgPoolNd(LayerEngine, ShapedLinearOperator):
    _ndim: int

    def __init__(
        self,
        input_shape: Sequence[int],
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        *,
        dtype=np.float64,
        engine="auto",
    ) -> None:
        d = self._ndim
        shape = as_shape(input_shape, ndims=(d, d + 1), what=(
            f"a tuple (C, *spatial) or spatial of ints with {d} spatial "
            f"{'axes' if d > 1 else 'axis'}"))
        bare = len(shape) == d
        spatial = shape[-d:]
        k = per_axis(kernel_size, d, "kernel_size", minimum=1)
        s = k if stride is None else per_axis(stride, d, "stride", minimum=1)
        p = per_axis(padding, d, "padding", minimum=0)
        if any(pi > ki // 2 for pi, ki in zip(p, k)):
            raise ParameterValueError(
                "padding", f"padding must be at most half of kernel_size on every axis, got "
                f"padding={padding!r} with kernel_size={kernel_size!r}")
        ceil_mode = as_bool(ceil_mode, "ceil_mode")
        count_include_pad = as_bool(count_include_pad, "count_include_pad")
        if divisor_override is not None:
            divisor_override = as_int(divisor_override, "divisor_override", minimum=-MAX_SIZE)
            if divisor_override == 0:
                raise ParameterValueError("divisor_override", "divisor_override must not be 0")
        dt = as_operator_dtype(dtype)
        out = tuple(pool_output_size(*a, ceil_mode) for a in zip(spatial, k, s, p))
        if min(out) < 1:
            raise ParameterValueError(
                "kernel_size", f"kernel_size={kernel_size!r} with padding={padding!r} does not "
                f"fit in the input: spatial size {spatial} gives an output of size {out}")
        # the 1-D tables: at most min(k, n) entries per output, and 3 vectors
        check_nbytes(
            sum(2 * csr_nbytes(m * min(ki, n), m, dt, n) + 32 * m
                for n, ki, m in zip(spatial, k, out)),
            f"the 1-D tables of this {type(self).__name__} ({shape} -> "
            f"{shape[:-d] + out})")

        self.kernel_size, self.stride, self.padding = k, s, p
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        real = np.dtype(np.float32 if dt.type in (np.float32, np.complex64) else np.float64)
        axes, divisors = [], []
        for i, (n, ki, si, pi, m) in enumerate(zip(spatial, k, s, p, out)):
            lo, count, size = _windows(n, ki, si, pi, m)
            idx = index_dtype(m, n, int(count.sum()))
            indptr = np.zeros(m + 1, dtype=idx)
            np.cumsum(count, out=indptr[1:])
            rows = np.repeat(np.arange(m, dtype=idx), count)
            cols = lo.astype(idx)[rows] + (np.arange(indptr[-1], dtype=idx) - indptr[rows])
            taps = sp.csr_array((np.ones(cols.size, dtype=real), cols, indptr), shape=(m, n))
            taps.has_sorted_indices = True
            taps.has_canonical_format = True
            axes.append(AxisInterpolation(taps))
            if divisor_override is not None:
                div = np.full(m, float(divisor_override) if i == 0 else 1.0)
            else:
                div = (size if count_include_pad else count).astype(np.float64)
            div.flags.writeable = False
            divisors.append(div)
        self.axes = tuple(axes)
        self.divisors = tuple(divisors)
        self.bare = bare
        # shrinking axes first: the intermediate arrays stay small
        self.axis_order = tuple(sorted(range(d), key=lambda a: out[a] / spatial[a]))
        super().__init__(shape, shape[:-d] + out, dt)
        self._set_engine(engine)

    # -- attributes ---------------------------------------------------------------------
    @property
    def matrices(self) -> tuple[sp.csr_array, ...]:
        """One ``(output size, input size)`` matrix per axis, divisors included (copies).

        Axis :math:`k`'s matrix is its window-sum matrix with row :math:`o`
        divided by the axis's divisor :math:`d_k(o)`; their Kronecker product
        is the operator (for each channel).
        """
        out = []
        for axis, div in zip(self.axes, self.divisors):
            m = axis.matrix()
            m.data /= np.repeat(div, np.diff(m.indptr))
            out.append(canonical_csr(m, self.dtype, copy=False))
        return tuple(out)

    def divisor(self) -> np.ndarray:
        """The divisor of every output pixel: the product of the per-axis divisors.

        Returns
        -------
        numpy.ndarray
            float64, of the output's spatial shape.

        Examples
        --------
        Without ``count_include_pad``, windows that hang over the padding
        count only the pixels they read:

        >>> import linop
        >>> linop.AvgPool2d((4, 4), 3, stride=1, padding=1,
        ...                 count_include_pad=False).divisor()
        array([[4., 6., 6., 4.],
               [6., 9., 9., 6.],
               [6., 9., 9., 6.],
               [4., 6., 6., 4.]])
        """
        check_nbytes(8 * math.prod(div.size for div in self.divisors),
                     f"the divisors of this {type(self).__name__}")
        return self._divisor(np.float64)

    def _divisor(self, dtype) -> np.ndarray:
        div = self.divisors[0]
        for other in self.divisors[1:]:
            div = np.multiply.outer(div, other)
        return div.astype(dtype, copy=False)

    def __repr__(self) -> str:
        extra = "".join([
            ", ceil_mode=True" if self.ceil_mode else "",
            ", count_include_pad=False" if not self.count_include_pad else "",
            f", divisor_override={self.divisor_override}"
            if self.divisor_override is not None else "",
        ])
        return (
            f"<{type(self).__name__} {self.input_shape} -> {self.output_shape}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
            f"{extra}, dtype={self.dtype}>"
        )

    # -- application ----------------------------------------------------------------------
    def _pool(self, x: np.ndarray, shape, adjoint: bool) -> np.ndarray:
        """Window sums along every axis (or their transposes) and one division."""
        complex_ = np.iscomplexobj(x)
        if complex_:  # the real and imaginary parts, as twice the columns
            x = x.view(x.real.dtype)
        k = x.shape[-1]
        x = x.reshape((1,) * self.bare + tuple(shape) + (k,))
        div = self._divisor(x.dtype)[..., None]
        if adjoint:
            x = x / div
            for a in self.axis_order[::-1]:
                x = self.axes[a].apply(x, 1 + a, transpose=True)
        else:
            for a in self.axis_order:
                x = self.axes[a].apply(x, 1 + a)
            x = x / div
        x = np.ascontiguousarray(x).reshape(-1, k)
        return x.view(np.result_type(x.dtype, np.complex64)) if complex_ else x

    def _apply_cols(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("A", x)
        return self._pool(x, self.input_shape, adjoint=False)

    def _apply_adjoint_cols(self, y: np.ndarray) -> np.ndarray:
        if self.engine == "torch":
            return self._torch_cols("AH", y)
        return self._pool(y, self.output_shape, adjoint=True)

    # real coefficients: the adjoint is the transpose
    _apply_transpose_cols = _apply_adjoint_cols
    _apply_conjugate_cols = _apply_cols

    # -- explicit matrix ------------------------------------------------------------------
    def tocsr(self) -> sp.csr_array:
        """The explicit sparse matrix: ``I_C`` times the per-axis window sums, over the divisor.

        Row :math:`(c, o)` holds :math:`1 / \\mathrm{div}(o)` in the columns of
        the input pixels of channel :math:`c` that window :math:`o` reads.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``, sorted indices,
            int32 indices where they fit.

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `linop.get_memory_limit`.

        Examples
        --------
        >>> import linop
        >>> linop.AvgPool1d((5,), 2).tocsr().toarray()
        array([[0.5, 0.5, 0. , 0. , 0. ],
               [0. , 0. , 0.5, 0.5, 0. ]])
        """
        channels = 1 if self.bare else self.input_shape[0]
        nnz = channels * math.prod(axis.taps.nnz for axis in self.axes)
        check_nbytes(
            2 * csr_nbytes(nnz, self.shape[0], self.dtype, self.shape[1]),
            f"the explicit matrix of this {type(self).__name__} ({self.shape[0]} x "
            f"{self.shape[1]}, {nnz} stored entries)")
        a = self.axes[0].matrix().astype(np.float64)
        for axis in self.axes[1:]:
            a = sp.kron(a, axis.matrix(), format="csr")
        a = sp.csr_array(a)
        a.data = np.repeat(1.0 / self._divisor(np.float64).ravel(), np.diff(a.indptr))
        if channels > 1:
            a = sp.kron(sp.eye_array(channels, format="csr"), a, format="csr")
        return canonical_csr(a, self.dtype, copy=False)


_DOC = r"""Average pooling ``torch.nn.AvgPool{n}d`` of one sample, as a sparse linear operator.

Applied to one ``{shape}`` array ``x``, the operator equals

    ``torch.nn.functional.{torch_call}``

(and a bare ``{sdims}`` array without the channel axis is pooled the same
way): every channel is averaged over windows of ``kernel_size`` pixels
moved by ``stride``, with PyTorch's rules for the padding, ``ceil_mode``,
``count_include_pad`` and ``divisor_override``.{note}

Parameters
----------
input_shape : tuple of int
    ``{shape}``, or ``{sdims}`` without a channel axis.
kernel_size : int or tuple of {n} int
    The window size, one value or one per axis.
stride : int or tuple of {n} int, optional
    The step between windows; ``None`` (the default) means ``kernel_size``.
padding : int or tuple of {n} int, default 0
    Implicit zeros on both sides of each axis, at most ``kernel_size // 2``.
ceil_mode : bool, default False
    Round the number of windows up instead of down: one more window where a
    partial one fits, as long as it starts inside the input or the left
    padding.
count_include_pad : bool, default True
    Divide by the window size including the padded zeros it covers (but not
    the part of a ceil-mode window past the right padding), or only by the
    number of input pixels it reads.
divisor_override : int, optional
    A nonzero divisor used for every output instead.
dtype : dtype, default float64
    float32, float64, complex64 or complex128 (a complex operator averages
    the real and imaginary parts).
engine : {{"auto", "numpy", "torch"}}, default "auto"
    Who computes NumPy inputs: NumPy, or PyTorch's kernels on the same
    memory. ``"auto"`` is NumPy unless torch is imported and the layers'
    cost model expects its kernels to be faster by enough to matter
    (``linop._layer_costs``). Tensors are computed by torch on their
    device whatever the engine.

Attributes
----------
input_shape, output_shape : tuple of int
kernel_size, stride, padding : tuple of int
    One value per spatial axis.
ceil_mode, count_include_pad : bool
divisor_override : int or None
bare : bool
    True when ``input_shape`` has no channel axis.
axes : tuple of AxisInterpolation
    The 0/1 window-sum matrix of each spatial axis (``axes[k].taps``).
divisors : tuple of numpy.ndarray
    The divisor of each axis per output index (float64, read-only); an
    output's divisor is their product (`divisor`).
axis_order : tuple of int
    The order in which `apply` sums the axes (the adjoint goes backwards).
dims, dimsd : tuple of int
    ``input_shape`` and ``output_shape`` under PyLops' names.
dtype : numpy.dtype

Raises
------
ParameterValueError
    Non-positive sizes, kernel sizes or strides; negative padding or padding
    above ``kernel_size // 2``; a kernel that does not fit in the padded
    input; ``divisor_override=0``; a wrong number of entries.
ParameterTypeError
    Non-integer sizes, non-bool flags, an unsupported ``dtype``.
MatrixTooLargeError
    If the 1-D tables would exceed `linop.get_memory_limit`.

See Also
--------
linop.Upsample : ``mode="area"`` is adaptive average pooling.
linop.Conv{n}d : a pooling without padding is a convolution with a constant kernel.

Notes
-----
Along one axis of size :math:`n` with kernel :math:`k`, stride :math:`s`
and padding :math:`p`, the output size is

.. math:: m = \left\lfloor \frac{{n + 2p - k}}{{s}} \right\rfloor + 1

(with :math:`\lceil\cdot\rceil` in ceil mode, minus one if the last window
would start at or after :math:`n + p`). Window :math:`o` covers
:math:`[a_o, b_o)` with :math:`a_o = o s - p` and :math:`b_o = \min(a_o + k,
n + p)` and reads the input pixels :math:`\max(a_o, 0) \le i < \min(b_o, n)`;
its count is :math:`c_o = \min(b_o, n) - \max(a_o, 0) \ge 1` and its size
:math:`b_o - a_o`. On the :math:`d = {n}` spatial axes,

.. math:: y[c, o] = \frac{{1}}{{d(o)}} \sum_{{i \in W(o)}} x[c, i],
   \qquad d(o) = \prod_{{k}} d_k(o_k),

where :math:`W(o)` is the product of the per-axis windows and :math:`d_k`
is the window size (``count_include_pad=True``), the count, or
``divisor_override`` (on one axis, 1 on the others). With :math:`S_k` the
0/1 window-sum matrix of axis :math:`k` and :math:`D` the diagonal of the
divisors, the operator is

.. math:: A = I_C \otimes D^{{-1}} (S_1 \otimes \dots \otimes S_d),

and :math:`A^T = A^H = I_C \otimes (S_1^T \otimes \dots \otimes S_d^T) D^{{-1}}`.
`apply` sums along one axis at a time (cost :math:`O(\sum_k \mathrm{{nnz}}(S_k)
N / n_k)`) and divides each output once, as PyTorch does; the adjoint
divides first and spreads the sums back. Padded zeros are never read, so a
non-finite input pixel only reaches the outputs whose windows read it.

Examples
--------
{example}
"""

_EXAMPLES = {
    1: """>>> import numpy as np
>>> import linop
>>> op = linop.AvgPool1d((1, 5), 2)
>>> op.apply(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]))
array([[1.5, 3.5]])
>>> op = linop.AvgPool1d((5,), 2, ceil_mode=True)      # a last, partial window
>>> op.apply(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
array([1.5, 3.5, 5. ])
>>> op.tocsr().toarray()
array([[0.5, 0.5, 0. , 0. , 0. ],
       [0. , 0. , 0.5, 0.5, 0. ],
       [0. , 0. , 0. , 0. , 1. ]])

With padding, ``count_include_pad`` decides whether the padded zeros count:

>>> x = np.array([3.0, 3.0, 3.0, 3.0])
>>> linop.AvgPool1d((4,), 3, stride=1, padding=1).apply(x)
array([2., 3., 3., 2.])
>>> linop.AvgPool1d((4,), 3, stride=1, padding=1, count_include_pad=False).apply(x)
array([3., 3., 3., 3.])""",
    2: """>>> import numpy as np
>>> import linop
>>> op = linop.AvgPool2d((1, 4, 4), 2)
>>> op.output_shape
(1, 2, 2)
>>> x = np.arange(16.0).reshape(1, 4, 4)
>>> op.apply(x)
array([[[ 2.5,  4.5],
        [10.5, 12.5]]])
>>> op.apply_adjoint(np.ones((1, 2, 2)))[0]       # each pixel gets 1/4 back
array([[0.25, 0.25, 0.25, 0.25],
       [0.25, 0.25, 0.25, 0.25],
       [0.25, 0.25, 0.25, 0.25],
       [0.25, 0.25, 0.25, 0.25]])

A 3x3 window with stride 1 and padding 1, summed instead of averaged:

>>> linop.AvgPool2d((3, 3), 3, stride=1, padding=1, divisor_override=1).apply(np.ones((3, 3)))
array([[4., 6., 4.],
       [6., 9., 6.],
       [4., 6., 4.]])""",
    3: """>>> import numpy as np
>>> import linop
>>> op = linop.AvgPool3d((2, 4, 4, 4), (2, 2, 2))
>>> op.output_shape
(2, 2, 2, 2)
>>> op.apply(np.ones((2, 4, 4, 4)))[1]
array([[[1., 1.],
        [1., 1.]],
<BLANKLINE>
       [[1., 1.],
        [1., 1.]]])
>>> op.tocsr().nnz                         # 8 entries of 1/8 per output
128""",
}

_NOTE_1D = """

``torch.nn.functional.avg_pool1d`` has no ``divisor_override``; here it
acts as in ``avg_pool2d`` on the array with a height of 1."""


_SHAPES = {1: ("(C, L)", "(L,)"), 2: ("(C, H, W)", "(H, W)"), 3: ("(C, D, H, W)", "(D, H, W)")}


_NOTE_3D = """

``torch.nn.functional.avg_pool3d`` also refuses inputs smaller than the
kernel on some axis, even when the padding makes the kernel fit; linop
pools them by the same rule as in 1-D and 2-D."""


def _doc(n: int) -> str:
    shape, sdims = _SHAPES[n]
    torch_call = (f"avg_pool{n}d(x[None], kernel_size, stride, padding, ceil_mode, "
                  f"count_include_pad{'' if n == 1 else ', divisor_override'})[0]")
    return _DOC.format(n=n, shape=shape, sdims=sdims, torch_call=torch_call,
                       note={1: _NOTE_1D, 3: _NOTE_3D}.get(n, ""), example=_EXAMPLES[n])


class AvgPool1d(_AvgPoolNd):
    __doc__ = _doc(1)
    _ndim = 1


class AvgPool2d(_AvgPoolNd):
    __doc__ = _doc(2)
    _ndim = 2


class AvgPool3d(_AvgPoolNd):
    __doc__ = _doc(3)
    _ndim = 3
