"""Convolution and transposed convolution as sparse linear operators."""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._engine import METHODS, ConvEngine
from linop._geometry import conv_geometry, transpose_geometry

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "conv_matrix",
    "conv_transpose_matrix",
]

def _as_weight(weight) -> np.ndarray:
    """The weight as a read-only float32/float64/complex64/complex128 copy.

    Integers and booleans become float64, half precision float32, extended
    precision float64/complex128. The copy is read-only so that neither the
    caller's array nor ``op.weight`` can change an operator after the fact.
    """
    try:
        w = np.asarray(weight)
    except (TypeError, ValueError) as err:  # ragged nested sequences
        raise TypeError(f"weight must be an array of numbers: {err}") from None
    if w.dtype.kind not in "biufc":
        raise TypeError(f"weight must be a numeric array, got dtype {w.dtype}")
    if w.dtype.kind == "c":
        dtype = np.complex64 if w.dtype.itemsize <= 8 else np.complex128
    elif w.dtype.kind == "f":
        dtype = np.float32 if w.dtype.itemsize <= 4 else np.float64
    else:
        dtype = np.float64
    if w.size == 0:
        raise ValueError(f"weight must not be empty, got shape {w.shape}")
    w = np.array(w, dtype=dtype, copy=True)
    w.flags.writeable = False
    return w


def _as_shape(input_shape, name="input_shape") -> tuple[int, ...]:
    if isinstance(input_shape, (int, np.integer)) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in input_shape
    ):
        raise TypeError(f"{name} must be a tuple of ints, got {input_shape!r}")
    shape = tuple(int(n) for n in input_shape)
    if any(n < 1 for n in shape):
        raise ValueError(f"{name} must hold positive sizes, got {input_shape!r}")
    return shape


def _split_channels(weight, input_shape, ndim, cls_name, layout="(C_out, C_in/groups"):
    """Weight and input shape -> ``(C_out, C_in/g, *k)`` weight, channels, bare flag."""
    if weight.ndim == ndim + 2 and len(input_shape) == ndim + 1:
        return weight, input_shape[0], input_shape[1:], False
    if weight.ndim == ndim and len(input_shape) == ndim:
        return weight.reshape((1, 1) + weight.shape), 1, input_shape, True
    raise ValueError(
        f"{cls_name} takes a weight of shape {layout}, *{ndim} kernel sizes) with "
        f"input_shape (C_in, *{ndim} sizes), or a bare {ndim}-D kernel with a {ndim}-D "
        f"input_shape; got weight of shape {weight.shape} and input_shape {input_shape}"
    )


def _check_groups(groups, divides: dict) -> int:
    """``groups`` as an int >= 1 that divides every channel count in ``divides``."""
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    for what, count in divides.items():
        if count % groups:
            raise ValueError(f"groups={groups} must divide {what}={count}")
    return int(groups)


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


class _ConvOperatorBase(ShapedLinearOperator):
    """What convolutions and transposed convolutions share: an engine, shapes, CSR."""

    _ndim: int

    _transposed: bool  # a transposed convolution: the engine's A^T

    @classmethod
    def _from_engine(cls, engine: ConvEngine, bare: bool):
        """An operator on an existing engine: no validation, nothing rebuilt."""
        op = cls.__new__(cls)
        weight = engine.weight.reshape(engine.geometry.kernel_size) if bare else engine.weight
        op._init_from_engine(engine, weight, bare)
        return op

    def _init_from_engine(self, engine: ConvEngine, weight, bare: bool):
        self._engine = engine
        self._bare = bare
        self.weight = weight
        self.groups = engine.groups
        self.stride = engine.geometry.stride
        self.padding = engine.geometry.padding
        self.dilation = engine.geometry.dilation
        self.method = engine.method
        conv_in = (engine.c_in,) + engine.geometry.input_size
        conv_out = (engine.c_out,) + engine.geometry.output_size
        if bare:
            conv_in, conv_out = conv_in[1:], conv_out[1:]
        shapes = (conv_out, conv_in) if self._transposed else (conv_in, conv_out)
        super().__init__(*shapes, dtype=engine.weight.dtype)

    def _batch(self, a, channels):
        return a.reshape(a.shape[0], channels, -1)

    def _engine_matrix(self) -> sp.csr_array:
        """The explicit matrix, never the engine's cached object itself.

        The cache serves the Toeplitz method; handing it out would let a
        caller who edits the returned matrix change the operator.
        """
        engine = self._engine
        if "matrix" in engine.__dict__:
            return engine.matrix.copy()
        return engine.build_matrix()

    def _adjoint(self):
        if not np.iscomplexobj(self._engine.weight):
            return self._transpose()
        return self._from_engine(self._engine.conjugate(), self._bare)._transpose()

    def __repr__(self):
        return (
            f"<{type(self).__name__}: {self.input_shape} -> {self.output_shape}, "
            f"dtype={self.dtype}, method={self.method!r}>"
        )


class _ConvNd(_ConvOperatorBase):
    _transposed = False

    def __init__(
        self,
        weight,
        input_shape,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        padding_mode="zeros",
        method="auto",
    ):
        nd, name = self._ndim, type(self).__name__
        w = _as_weight(weight)
        input_shape = _as_shape(input_shape)
        w4, c_in, spatial, bare = _split_channels(w, input_shape, nd, name)
        groups = _check_groups(groups, {"C_in": c_in, "C_out": w4.shape[0]})
        if w4.shape[1] * groups != c_in:
            raise ValueError(
                f"weight has {w4.shape[1]} input channels per group, but input_shape has "
                f"C_in={c_in} channels and groups={groups} (needs {c_in // groups})"
            )
        _check_method(method)
        geometry = conv_geometry(
            spatial,
            w4.shape[2:],
            stride=stride,
            padding=padding,
            dilation=dilation,
            padding_mode=padding_mode,
        )
        self._init_from_engine(ConvEngine(geometry, w4, groups, method), w, bare)

    @property
    def padding_mode(self) -> str:
        return self._engine.geometry.padding_mode

    def _apply_batch(self, x):
        e = self._engine
        return e.forward(self._batch(x, e.c_in)).reshape((x.shape[0],) + self.output_shape)

    def _apply_adjoint_batch(self, y):
        e = self._engine
        return e.adjoint(self._batch(y, e.c_out)).reshape((y.shape[0],) + self.input_shape)

    def tocsr(self) -> sp.csr_array:
        """The explicit convolution matrix as a `scipy.sparse.csr_array`.

        Shape ``(prod(output_shape), prod(input_shape))``, sorted indices,
        int32 indices where they fit. Entries whose weight is zero are kept
        as stored zeros, so the sparsity pattern does not depend on values.

        Returns
        -------
        scipy.sparse.csr_array

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `get_memory_limit`.

        Examples
        --------
        A 2-tap kernel on 3 samples: one row per output, the kernel slid
        along the diagonal.

        >>> import numpy as np, linop
        >>> linop.Conv1d(np.array([1.0, 2.0]), (3,)).tocsr().toarray()
        array([[1., 2., 0.],
               [0., 1., 2.]])
        >>> linop.Conv1d(np.array([1.0, 0.0]), (3,)).tocsr().nnz   # zeros kept
        4
        """
        return self._engine_matrix()

    def _transpose(self):
        return _TRANSPOSED[type(self)]._from_engine(self._engine, self._bare)


class _ConvTransposeNd(_ConvOperatorBase):
    _transposed = True

    def __init__(
        self,
        weight,
        input_shape,
        *,
        stride=1,
        padding=0,
        output_padding=0,
        dilation=1,
        groups=1,
        method="auto",
    ):
        nd, name = self._ndim, type(self).__name__
        w = _as_weight(weight)
        input_shape = _as_shape(input_shape)
        w4, c_in, spatial, bare = _split_channels(
            w, input_shape, nd, name, layout="(C_in, C_out/groups"
        )
        # PyTorch's layout (C_in, C_out/groups, *k) is the layout of the
        # convolution this operator transposes: that convolution's C_out is
        # our C_in.
        if w4.shape[0] != c_in:
            raise ValueError(
                f"weight of shape {w.shape} expects C_in={w4.shape[0]} input channels "
                f"(PyTorch layout (C_in, C_out/groups, *k)), but input_shape has {c_in}"
            )
        groups = _check_groups(groups, {"C_in": c_in})
        _check_method(method)
        geometry, _ = transpose_geometry(
            spatial,
            w4.shape[2:],
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
        )
        self._init_from_engine(ConvEngine(geometry, w4, groups, method), w, bare)

    @property
    def output_padding(self) -> tuple[int, ...]:
        g = self._engine.geometry
        return tuple(
            n - ((m - 1) * s - lo - hi + d * (k - 1) + 1)
            for n, m, s, (lo, hi), d, k in zip(
                g.input_size, g.output_size, g.stride, g.padding, g.dilation, g.kernel_size
            )
        )

    def _apply_batch(self, x):
        e = self._engine
        return e.transpose(self._batch(x, e.c_out)).reshape((x.shape[0],) + self.output_shape)

    def _apply_adjoint_batch(self, y):
        e = self._engine
        out = e.forward_conjugate(self._batch(y, e.c_in))
        return out.reshape((y.shape[0],) + self.input_shape)

    def tocsr(self) -> sp.csr_array:
        """The explicit transposed-convolution matrix as a `scipy.sparse.csr_array`.

        Exactly the transpose of the matching convolution's matrix.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``.

        Raises
        ------
        MatrixTooLargeError
            If the matrix would need more memory than `get_memory_limit`.

        Examples
        --------
        >>> import numpy as np, linop
        >>> w = np.array([1.0, 2.0])
        >>> M = linop.ConvTranspose1d(w, (2,)).tocsr()
        >>> M.toarray()
        array([[1., 0.],
               [2., 1.],
               [0., 2.]])
        >>> bool((M != linop.Conv1d(w, (3,)).tocsr().T).nnz == 0)
        True
        """
        engine = self._engine
        if "matrix_transpose" in engine.__dict__:
            return engine.matrix_transpose.copy()
        return self._engine_matrix().T.tocsr()

    def _transpose(self):
        return _CONV[type(self)]._from_engine(self._engine, self._bare)


_CONV_DOC = """{n}-D convolution (cross-correlation) as a sparse linear operator.

Equal to ``torch.nn.functional.conv{n}d`` on one sample: ``matvec`` is the
convolution of the C-order flattened input, ``rmatvec`` its Hermitian
adjoint (for real dtypes, the transposed convolution), ``tocsr()`` the
explicit matrix.

Parameters
----------
weight : array_like
    Shape ``(C_out, C_in/groups, {kdims})`` (PyTorch's layout), or a bare
    kernel of shape ``({kdims})`` for one channel in and out. Its dtype is
    the operator's: float32, float64, complex64 or complex128 (other
    numeric dtypes become float64). The array is copied.
input_shape : tuple of int
    ``(C_in, {sdims})``, or ``({sdims})`` with a bare kernel, in which case
    the output has no channel axis either.
stride : int or tuple of int, default 1
dilation : int or tuple of int, default 1
padding : int, tuple, tuple of (int, int) pairs, "valid" or "same", default 0
    One value for every axis, one per axis, a ``(lo, hi)`` pair per axis,
    no padding, or ``"same"`` (stride 1 only; a total of
    ``dilation*(k-1)`` split as ``lo = total // 2``, ``hi = total - lo``).
groups : int, default 1
    Input and output channels are split into ``groups`` blocks; output
    block ``g`` reads input block ``g`` only. ``groups == C_in`` is a
    depthwise convolution.
padding_mode : {{"zeros", "reflect", "replicate", "circular"}}, default "zeros"
    What the padding holds, as in ``torch.nn.Conv{n}d``: zeros, the input
    mirrored without repeating the edge (needs padding < size), the edge
    repeated, or the input wrapped around (needs padding <= size).
method : {{"auto", "toeplitz", "im2col"}}, default "auto"
    How to apply the operator: with the explicit CSR matrix, or with the
    channel-free patch matrix followed by one GEMM per group. ``"auto"``
    takes the explicit matrix for one channel in and out per group (when it
    fits within `linop.get_memory_limit`), im2col otherwise. Both give the
    same numbers.

Attributes
----------
input_shape, output_shape : tuple of int
weight : numpy.ndarray
    The weight as given (a copy, in the operator's dtype).
stride, dilation : tuple of int
    Per axis.
padding : tuple of (int, int)
    ``(lo, hi)`` per axis.
groups : int
padding_mode : str
method : str
    The method in use, ``"toeplitz"`` or ``"im2col"``.

Raises
------
TypeError, ValueError
    At construction, for any parameter out of its range or inconsistent
    with the others; the message names the parameter and its value.

See Also
--------
ConvTranspose{n}d : its transpose, the up-sampling transposed convolution.
conv_matrix : the explicit matrix without an operator.

Notes
-----
For one spatial axis with stride :math:`s`, dilation :math:`d` and padding
:math:`(p_\\mathrm{{lo}}, p_\\mathrm{{hi}})`,

.. math::

    y[c_o, o] = \\sum_{{c_i \\in g(c_o)}} \\sum_{{k}} w[c_o, c_i - g_0, k]\\,
                \\tilde x[c_i, o s + k d - p_\\mathrm{{lo}}],

where :math:`\\tilde x` is the input extended by the padding mode; the
output size is :math:`\\lfloor (n + p_\\mathrm{{lo}} + p_\\mathrm{{hi}} -
d(k-1) - 1)/s \\rfloor + 1`. In {n}-D the same holds on every axis.
The matrix is a multi-level Toeplitz matrix cut by stride and padding:
block :math:`(c_o, c_i)` is :math:`\\sum_k w[c_o, c_i, k] P_k`, where the 0/1
matrix :math:`P_k` selects the pixels tap :math:`k` reads.

Examples
--------
{example}
"""

_CONV_EXAMPLES = {
    1: """>>> import numpy as np
>>> from linop import Conv1d
>>> A = Conv1d([1.0, 2.0, 3.0], (5,), padding=1)
>>> A.output_shape
(5,)
>>> A @ np.ones(5)
array([5., 6., 6., 6., 3.])
>>> A.tocsr().toarray()
array([[2., 3., 0., 0., 0.],
       [1., 2., 3., 0., 0.],
       [0., 1., 2., 3., 0.],
       [0., 0., 1., 2., 3.],
       [0., 0., 0., 1., 2.]])""",
    2: """The blog's example: a 3x3 kernel on a 4x4 input is a 4x16 matrix.

>>> import numpy as np
>>> from linop import Conv2d
>>> kernel = np.array([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=float)
>>> A = Conv2d(kernel, (4, 4))
>>> A.shape
(4, 16)
>>> x = np.arange(1, 17, dtype=float).reshape(4, 4)
>>> A.apply(x)
array([[26., 39.],
       [78., 91.]])
>>> A.tocsr().toarray()[0]
array([ 3.,  2.,  9.,  0., -2.,  1.,  3.,  0., -3., -2.,  2.,  0.,  0.,
        0.,  0.,  0.])

Several channels, as in ``torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)``:

>>> w = np.random.default_rng(0).standard_normal((8, 3, 3, 3))
>>> B = Conv2d(w, (3, 32, 32), stride=2, padding=1)
>>> B.output_shape
(8, 16, 16)
>>> B.apply(np.ones((5, 3, 32, 32))).shape
(5, 8, 16, 16)""",
    3: """>>> import numpy as np
>>> from linop import Conv3d
>>> w = np.ones((2, 1, 3, 3, 3))
>>> A = Conv3d(w, (1, 8, 8, 8), padding="same", padding_mode="replicate")
>>> A.output_shape
(2, 8, 8, 8)
>>> float(A.apply(np.ones((1, 8, 8, 8))).max())
27.0""",
}

_CONV_TRANSPOSE_DOC = """{n}-D transposed convolution as a sparse linear operator.

Equal to ``torch.nn.functional.conv_transpose{n}d`` on one sample: the
transpose of the :class:`Conv{n}d` with the same weight, stride, padding,
dilation and groups, seen from the other side. It up-samples: with stride
:math:`s` every input pixel scatters a copy of the kernel, scaled by its
value, :math:`s` pixels apart.

Parameters
----------
weight : array_like
    Shape ``(C_in, C_out/groups, {kdims})`` (PyTorch's layout), or a bare
    kernel of shape ``({kdims})`` for one channel in and out. Its dtype is
    the operator's. The array is copied.
input_shape : tuple of int
    ``(C_in, {sdims})``, or ``({sdims})`` with a bare kernel.
stride : int or tuple of int, default 1
padding : int, tuple or tuple of (int, int) pairs, default 0
    The padding of the convolution this operator transposes: it crops
    ``dilation*(k-1) - padding`` pixels from each side of the full
    transposed convolution. ``"valid"`` means 0.
output_padding : int or tuple of int, default 0
    Extra size on the high side of each axis, ``0 <= output_padding <
    max(stride, dilation)``: it chooses among the input sizes that the
    strided convolution maps to the same output size.
dilation : int or tuple of int, default 1
groups : int, default 1
method : {{"auto", "toeplitz", "im2col"}}, default "auto"
    As for :class:`Conv{n}d`.

Attributes
----------
input_shape, output_shape : tuple of int
weight : numpy.ndarray
stride, dilation, output_padding : tuple of int
padding : tuple of (int, int)
groups : int
method : str

Raises
------
TypeError, ValueError
    At construction, naming the parameter and its value.

See Also
--------
Conv{n}d : the convolution it transposes.
conv_transpose_matrix : the explicit matrix without an operator.

Notes
-----
Per axis the output size is :math:`(n - 1)s - p_\\mathrm{{lo}} -
p_\\mathrm{{hi}} + d(k-1) + \\mathrm{{output\\_padding}} + 1`. The operator
is :math:`A^T` for the convolution matrix :math:`A` of the same weight
(no conjugation, as in PyTorch); ``rmatvec`` is its Hermitian adjoint
:math:`\\bar A`, a convolution. ``tocsr()`` is exactly
``conv_matrix(weight, output_shape, ...).T``.

Examples
--------
{example}
"""

_CONV_TRANSPOSE_EXAMPLES = {
    1: """>>> import numpy as np
>>> from linop import ConvTranspose1d
>>> A = ConvTranspose1d([1.0, 1.0], (3,), stride=2)
>>> A @ np.array([1.0, 2.0, 3.0])
array([1., 1., 2., 2., 3., 3.])""",
    2: """The blog's up-sampling of a 2x2 input to 4x4:

>>> import numpy as np
>>> from linop import ConvTranspose2d
>>> kernel = np.array([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=float)
>>> A = ConvTranspose2d(kernel.reshape(1, 1, 3, 3), (1, 2, 2))
>>> A.apply(np.array([[[1.0, 2.0], [3.0, 4.0]]]))
array([[[  1.,   4.,  11.,  14.],
        [  1.,   7.,  31.,  28.],
        [ -9., -10.,   8.,   4.],
        [ -9.,  -9.,  10.,   8.]]])

Strided up-sampling by 2, as in a decoder:

>>> w = np.random.default_rng(0).standard_normal((16, 8, 4, 4))
>>> B = ConvTranspose2d(w, (16, 32, 32), stride=2, padding=1)
>>> B.output_shape
(8, 64, 64)""",
    3: """>>> import numpy as np
>>> from linop import ConvTranspose3d
>>> A = ConvTranspose3d(np.ones((1, 1, 2, 2, 2)), (1, 4, 4, 4), stride=2)
>>> A.output_shape
(1, 8, 8, 8)
>>> float(A.apply(np.ones((1, 4, 4, 4))).sum())
512.0""",
}

_AXES = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}
_SIZES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _make_class(base, name, n, doc, example):
    cls = type(name, (base,), {"_ndim": n, "__module__": __name__})
    cls.__doc__ = doc.format(n=n, kdims=_AXES[n], sdims=_SIZES[n], example=example)
    return cls


Conv1d = _make_class(_ConvNd, "Conv1d", 1, _CONV_DOC, _CONV_EXAMPLES[1])
Conv2d = _make_class(_ConvNd, "Conv2d", 2, _CONV_DOC, _CONV_EXAMPLES[2])
Conv3d = _make_class(_ConvNd, "Conv3d", 3, _CONV_DOC, _CONV_EXAMPLES[3])
ConvTranspose1d = _make_class(
    _ConvTransposeNd, "ConvTranspose1d", 1, _CONV_TRANSPOSE_DOC, _CONV_TRANSPOSE_EXAMPLES[1]
)
ConvTranspose2d = _make_class(
    _ConvTransposeNd, "ConvTranspose2d", 2, _CONV_TRANSPOSE_DOC, _CONV_TRANSPOSE_EXAMPLES[2]
)
ConvTranspose3d = _make_class(
    _ConvTransposeNd, "ConvTranspose3d", 3, _CONV_TRANSPOSE_DOC, _CONV_TRANSPOSE_EXAMPLES[3]
)

_CONV_BY_NDIM = {1: Conv1d, 2: Conv2d, 3: Conv3d}
_CONV_TRANSPOSE_BY_NDIM = {1: ConvTranspose1d, 2: ConvTranspose2d, 3: ConvTranspose3d}
_TRANSPOSED = {_CONV_BY_NDIM[n]: _CONV_TRANSPOSE_BY_NDIM[n] for n in (1, 2, 3)}
_CONV = {v: k for k, v in _TRANSPOSED.items()}


def _spatial_ndim(weight: np.ndarray, input_shape) -> int:
    """Spatial dims from the weight and input shape (channels or a bare kernel)."""
    nd = weight.ndim - 2 if len(input_shape) == weight.ndim - 1 else weight.ndim
    if nd not in _CONV_BY_NDIM:
        raise ValueError(
            f"weight of shape {weight.shape} with input_shape {tuple(input_shape)} does not "
            f"describe a 1-D, 2-D or 3-D convolution"
        )
    return nd


def conv_matrix(weight, input_shape, **kwargs) -> sp.csr_array:
    """The explicit matrix of a convolution, as a `scipy.sparse.csr_array`.

    Same as ``Conv{n}d(weight, input_shape, **kwargs).tocsr()``, with the
    number of spatial axes taken from the weight: ``weight.ndim - 2`` when
    ``input_shape`` has a channel axis, ``weight.ndim`` for a bare kernel.

    Parameters
    ----------
    weight : array_like
        ``(C_out, C_in/groups, *k)`` or a bare kernel ``k``.
    input_shape : tuple of int
        ``(C_in, *spatial)``, or ``spatial`` with a bare kernel.
    **kwargs
        ``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``
        as for :class:`Conv2d`.

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(prod(output_shape), prod(input_shape))``, sorted indices,
        int32 indices where they fit and int64 where they do not.

    Examples
    --------
    >>> import numpy as np
    >>> from linop import conv_matrix
    >>> conv_matrix(np.array([1.0, -1.0]), (4,)).toarray()
    array([[ 1., -1.,  0.,  0.],
           [ 0.,  1., -1.,  0.],
           [ 0.,  0.,  1., -1.]])
    """
    w = _as_weight(weight)
    return _CONV_BY_NDIM[_spatial_ndim(w, input_shape)](w, input_shape, **kwargs).tocsr()


def conv_transpose_matrix(weight, input_shape, **kwargs) -> sp.csr_array:
    """The explicit matrix of a transposed convolution, as a `scipy.sparse.csr_array`.

    Same as ``ConvTranspose{n}d(weight, input_shape, **kwargs).tocsr()``,
    which is ``conv_matrix(weight, output_shape, ...).T``.

    Parameters
    ----------
    weight : array_like
        ``(C_in, C_out/groups, *k)`` or a bare kernel ``k``.
    input_shape : tuple of int
        ``(C_in, *spatial)``, or ``spatial`` with a bare kernel.
    **kwargs
        ``stride``, ``padding``, ``output_padding``, ``dilation``,
        ``groups`` as for :class:`ConvTranspose2d`.

    Returns
    -------
    scipy.sparse.csr_array

    Examples
    --------
    >>> import numpy as np
    >>> from linop import conv_transpose_matrix
    >>> conv_transpose_matrix(np.array([1.0, -1.0]), (3,)).toarray()
    array([[ 1.,  0.,  0.],
           [-1.,  1.,  0.],
           [ 0., -1.,  1.],
           [ 0.,  0., -1.]])
    """
    w = _as_weight(weight)
    cls = _CONV_TRANSPOSE_BY_NDIM[_spatial_ndim(w, input_shape)]
    return cls(w, input_shape, **kwargs).tocsr()
