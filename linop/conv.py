"""Convolution and transposed convolution as sparse linear operators.

The public classes are thin: one builder (`_conv_definition`) validates the
parameters into a `~linop._conv.engine.ConvDefinition`, and the operator
applies it through a `~linop._conv.engine.ConvEngine` that it shares with
its transpose.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._conv.engine import ENGINE_NAMES, METHOD_NAMES, ConvDefinition, ConvEngine
from linop._conv.geometry import ConvGeometry, conv_geometry, transpose_geometry
from linop._conv.plan import Plan, make_plan
from linop._validation import (
    ParameterValueError,
    as_choice,
    as_shape,
    as_weight,
    check_groups,
)

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


def _split_channels(weight, input_shape, ndim, cls_name, transposed):
    """Weight and input shape -> ``(C_out, C_in/g, *k)`` weight, channels, spatial, bare."""
    if weight.ndim == ndim + 2 and len(input_shape) == ndim + 1:
        return weight, input_shape[0], input_shape[1:], False
    if weight.ndim == ndim and len(input_shape) == ndim:
        return weight.reshape((1, 1) + weight.shape), 1, input_shape, True
    layout = "(C_in, C_out/groups" if transposed else "(C_out, C_in/groups"
    raise ParameterValueError(
        "weight",
        f"{cls_name} takes a weight of shape {layout}, *{ndim} kernel sizes) with "
        f"input_shape (C_in, *{ndim} sizes), or a bare {ndim}-D kernel with a {ndim}-D "
        f"input_shape; got weight of shape {weight.shape} and input_shape {input_shape}"
    )


def _conv_definition(cls, weight, input_shape, *, stride, padding, dilation, groups, method,
                     padding_mode="zeros", output_padding=0, engine="auto") -> ConvDefinition:
    """Validate a (transposed) convolution's parameters into its definition.

    The order of the checks is the order of the parameters: the weight, the
    shape, the channels and groups, the method, then the geometry.
    """
    nd, name, transposed = cls._ndim, cls.__name__, cls._transposed
    w = as_weight(weight)
    input_shape = as_shape(input_shape)
    weight, c_in, spatial, bare = _split_channels(w, input_shape, nd, name, transposed)
    if transposed:
        # PyTorch's layout (C_in, C_out/groups, *k) is the layout of the
        # convolution this operator transposes: that convolution's C_out is
        # our C_in.
        if weight.shape[0] != c_in:
            raise ParameterValueError(
                "weight", f"weight of shape {w.shape} expects C_in={weight.shape[0]} input "
                f"channels (PyTorch layout (C_in, C_out/groups, *k)), but input_shape has {c_in}"
            )
        groups = check_groups(groups, {"C_in": c_in})
    else:
        groups = check_groups(groups, {"C_in": c_in, "C_out": weight.shape[0]})
        if weight.shape[1] * groups != c_in:
            raise ParameterValueError(
                "weight", f"weight has {weight.shape[1]} input channels per group, but "
                f"input_shape has C_in={c_in} channels and groups={groups} (needs "
                f"{c_in // groups})"
            )
    method = as_choice(method, "method", METHOD_NAMES)
    engine = as_engine(engine, method)
    kernel_size = weight.shape[2:]
    if transposed:
        geometry = transpose_geometry(spatial, kernel_size, stride=stride, padding=padding,
                                      output_padding=output_padding, dilation=dilation)
    else:
        geometry = conv_geometry(spatial, kernel_size, stride=stride, padding=padding,
                                 dilation=dilation, padding_mode=padding_mode)
    plan = make_plan(weight, geometry, groups, method, engine)
    return ConvDefinition(weight, geometry, groups, plan.method, bare, transposed, plan,
                          plan.engine)


#: The methods the torch engine has (``method=`` with ``engine="torch"``).
TORCH_METHOD_NAMES = ("auto", "im2col", "toeplitz", "fft")


def as_engine(engine, method: str = "auto") -> str:
    """``engine=`` validated; ``"torch"`` imports torch (and needs its method there)."""
    engine = as_choice(engine, "engine", ENGINE_NAMES)
    if engine == "torch":
        from linop._torch_engine.runtime import torch_module

        torch_module()
        if method not in TORCH_METHOD_NAMES:
            raise ParameterValueError(
                "method", f"method={method!r} has no torch engine; with engine='torch' use "
                f"one of {TORCH_METHOD_NAMES}, or engine='numpy'")
    return engine


class _ConvOperatorBase(ShapedLinearOperator):
    """What convolutions and transposed convolutions share: a definition, an engine, CSR."""

    _ndim: int
    _transposed: bool  # a transposed convolution: the engine's A^T

    @classmethod
    def _from_definition(cls, definition: ConvDefinition, engine: ConvEngine | None = None):
        """An operator on an existing definition: no validation, nothing rebuilt."""
        op = cls.__new__(cls)
        op._init(definition, engine)
        return op

    def _init(self, definition: ConvDefinition, engine: ConvEngine | None = None):
        self.definition = definition
        self._engine = ConvEngine(definition) if engine is None else engine
        super().__init__(*definition.shapes(), dtype=definition.weight.dtype)

    # -- attributes, all read from the definition ---------------------------------------
    @property
    def weight(self) -> np.ndarray:
        """The weight as given (a read-only copy, in the operator's dtype)."""
        return self.definition.user_weight()

    @property
    def geometry(self) -> ConvGeometry:
        """The convolution's geometry (for a transposed convolution, that of ``A``)."""
        return self.definition.geometry

    @property
    def groups(self) -> int:
        return self.definition.groups

    @property
    def stride(self) -> tuple[int, ...]:
        return self.definition.geometry.stride

    @property
    def padding(self) -> tuple[tuple[int, int], ...]:
        return self.definition.geometry.padding

    @property
    def dilation(self) -> tuple[int, ...]:
        return self.definition.geometry.dilation

    @property
    def method(self) -> str:
        """The method in use: ``"toeplitz"``, ``"im2col"`` or ``"fft"``."""
        return self.definition.method

    @property
    def engine(self) -> str:
        """Who computes: ``"numpy"`` (NumPy and SciPy) or ``"torch"`` (PyTorch's kernels)."""
        return self.definition.engine

    @property
    def plan(self) -> Plan:
        """How the method was chosen: every method's estimated build, apply and memory.

        ``print(op.plan)`` shows the table.
        """
        plan = self.definition.plan
        if plan is None:
            plan = make_plan(self.definition.weight, self.geometry, self.groups, self.method,
                             self.engine)
        return plan

    # -- applying --------------------------------------------------------------------------
    #: The engine's calls for ``A x``, ``A^H y``, ``A^T y`` and ``conj(A) x`` of this operator
    #: (a transposed convolution is the engine's ``A^T``).
    _engine_calls: tuple[str, str, str, str]

    def _torch_kernel(self, kind):
        call = self._engine_calls[("A", "AH", "AT", "conjA").index(kind)]
        return getattr(self._engine.torch_conv(), call)

    def _apply_cols(self, x):
        return getattr(self._engine, self._engine_calls[0])(x)

    def _apply_adjoint_cols(self, y):
        return getattr(self._engine, self._engine_calls[1])(y)

    def _apply_transpose_cols(self, y):
        return getattr(self._engine, self._engine_calls[2])(y)

    def _apply_conjugate_cols(self, x):
        return getattr(self._engine, self._engine_calls[3])(x)

    def _with(self, definition: ConvDefinition, engine: ConvEngine | None = None):
        cls = _CONV_CLASSES[definition.transposed][self._ndim]
        return cls._from_definition(definition, engine)

    def _transpose(self):
        return self._with(self.definition.transpose(), self._engine)

    def _adjoint(self):
        if not np.iscomplexobj(self.definition.weight):
            return self._transpose()
        return self._with(self.definition.conjugate().transpose())

    def tocsr(self) -> sp.csr_array:
        return self._engine.matrix(transposed=self._transposed)

    def __repr__(self):
        return (
            f"<{type(self).__name__}: {self.input_shape} -> {self.output_shape}, "
            f"dtype={self.dtype}, method={self.method!r}"
            + (f", engine={self.engine!r}>" if self.engine != "numpy" else ">")
        )


class _ConvNd(_ConvOperatorBase):
    _transposed = False
    _engine_calls = ("forward", "adjoint", "transpose", "conjugate")

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
        engine="auto",
    ):
        self._init(_conv_definition(
            type(self), weight, input_shape, stride=stride, padding=padding, dilation=dilation,
            groups=groups, padding_mode=padding_mode, method=method, engine=engine))

    @property
    def padding_mode(self) -> str:
        return self.definition.geometry.padding_mode

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
        return super().tocsr()


class _ConvTransposeNd(_ConvOperatorBase):
    _transposed = True
    _engine_calls = ("transpose", "conjugate", "forward", "adjoint")

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
        engine="auto",
    ):
        self._init(_conv_definition(
            type(self), weight, input_shape, stride=stride, padding=padding, dilation=dilation,
            groups=groups, output_padding=output_padding, method=method, engine=engine))

    @property
    def output_padding(self) -> tuple[int, ...]:
        return self.definition.geometry.output_padding

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
        return super().tocsr()


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
method : {{"auto", "toeplitz", "im2col", "fft"}}, default "auto"
    How to apply the operator: with the explicit CSR matrix; with strided
    gathers of the patches and one GEMM per group; or with FFTs of
    overlapping tiles. ``"auto"`` takes the method with the least expected
    time over a few applications, estimated from the geometry by a cost
    model, never an explicit matrix beyond a modest budget, and never
    ``"fft"`` for weights that are not finite: see `plan`. Every method
    gives the same numbers to the dtype's precision, and holds a bounded
    workspace besides its cached matrix or spectra.
engine : {{"auto", "numpy", "torch"}}, default "auto"
    Who computes: NumPy and SciPy, or PyTorch's kernels
    (``torch.nn.functional.conv{n}d`` and ``conv_transpose{n}d`` for
    ``"im2col"``, ``torch.sparse_csr_tensor`` for ``"toeplitz"``,
    ``torch.fft`` for ``"fft"``) on NumPy
    arrays wrapped without copies. ``"auto"`` takes torch only when torch is
    imported already and the cost model expects it to be faster (see
    `plan`). Tensors are computed by torch on their own device whatever the
    engine.

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
    The method in use, ``"toeplitz"``, ``"im2col"`` or ``"fft"``.
engine : str
    The engine in use, ``"numpy"`` or ``"torch"``.
plan : Plan
    The estimated build time, time per application and memory of every
    method, and how the method was chosen; ``print(op.plan)`` shows them.
geometry : ConvGeometry
    The validated per-axis sizes, stride, ``(lo, hi)`` padding and dilation.
definition : ConvDefinition
    Everything that defines the operator (weight, geometry, groups, method,
    bare kernel or not, transposed or not): what a pickle or a copy carries.
dims, dimsd : tuple of int
    ``input_shape`` and ``output_shape`` under PyLops' names.

Raises
------
ParameterTypeError, ParameterValueError
    At construction, for any parameter out of its range or inconsistent
    with the others (subclasses of `TypeError` and `ValueError`); the message
    names the parameter and its value, and ``.parameter`` holds its name.

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
method : {{"auto", "toeplitz", "im2col", "fft"}}, default "auto"
    As for :class:`Conv{n}d`.
engine : {{"auto", "numpy", "torch"}}, default "auto"
    As for :class:`Conv{n}d`.

Attributes
----------
input_shape, output_shape : tuple of int
weight : numpy.ndarray
stride, dilation, output_padding : tuple of int
padding : tuple of (int, int)
groups : int
method : str
engine : str
plan : Plan
geometry : ConvGeometry
    The geometry of the convolution this operator transposes: its
    ``input_size`` is this operator's output size.
definition : ConvDefinition
dims, dimsd : tuple of int

Raises
------
ParameterTypeError, ParameterValueError
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
_CONV_CLASSES = {False: _CONV_BY_NDIM, True: _CONV_TRANSPOSE_BY_NDIM}


def _spatial_ndim(weight: np.ndarray, input_shape) -> int:
    """Spatial dims from the weight and input shape (channels or a bare kernel)."""
    input_shape = as_shape(input_shape)
    nd = weight.ndim - 2 if len(input_shape) == weight.ndim - 1 else weight.ndim
    if nd not in _CONV_BY_NDIM:
        raise ParameterValueError(
            "weight", f"weight of shape {weight.shape} with input_shape {tuple(input_shape)} "
            f"does not describe a 1-D, 2-D or 3-D convolution"
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
    w = as_weight(weight)
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
    w = as_weight(weight)
    cls = _CONV_TRANSPOSE_BY_NDIM[_spatial_ndim(w, input_shape)]
    return cls(w, input_shape, **kwargs).tocsr()
