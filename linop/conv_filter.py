"""Convolution as a function of its kernel (``w -> conv(x, w)``) as a linear operator.

For a fixed input ``x`` a convolution is linear in its weight too. Per group
``g`` it is one matrix product,

    ``Y_g = W_g @ X_g``,

where ``W_g`` is the ``(C_out/G, C_in/G * K)`` block of the weight and
``X_g`` the ``(C_in/G * K, n_out)`` im2col patch matrix of ``x`` (row
``(ci, k)``, column ``o``: the padded input ``x~[ci, o*stride + k*dilation]``).
The adjoint is ``Y_g @ conj(X_g)^T``: PyTorch's weight gradient.

The patches are gathered by strided slices of the padded input
(`linop._conv.im2col`), in tiles of at most
`linop._conv.im2col.PATCH_BUFFER_BYTES`; when all of them are small (at most
`PATCH_CACHE_BYTES`) they are gathered once and cached. The explicit matrix
is built from the tap table (`linop._conv.taps`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._conv import im2col as _im2col
from linop._conv.geometry import ConvGeometry, conv_geometry
from linop._conv.im2col import _contiguous_span, _windows, tiles
from linop._conv.padding import pad
from linop._conv.taps import tap_table, tap_table_nbytes, toeplitz_nnz
from linop._memo import Memo
from linop._memory import check_nbytes, csr_nbytes
from linop._validation import (
    ParameterValueError,
    as_operator_dtype,
    as_shape,
    as_weight,
    check_groups,
    index_dtype,
)

__all__ = ["PATCH_CACHE_BYTES", "ConvFilter1d", "ConvFilter2d", "ConvFilter3d"]

#: Patch matrices of at most this many bytes are gathered once and kept (and
#: never more than `linop._conv.im2col.PATCH_BUFFER_BYTES`).
PATCH_CACHE_BYTES = 4 * 2**20

_ERRSTATE = dict(invalid="ignore", over="ignore", divide="ignore")


def _split_filter_channels(x: np.ndarray, weight_shape, nd: int, name: str):
    """``x`` and ``weight_shape`` -> ``(C_in, *spatial)`` x, ``(C_out, C_in/g, *k)``, bare."""
    if x.ndim == nd + 1 and len(weight_shape) == nd + 2:
        return x, weight_shape, False
    if x.ndim == nd and len(weight_shape) == nd:
        return x.reshape((1,) + x.shape), (1, 1) + weight_shape, True
    layouts = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}
    sizes = {1: "L", 2: "H, W", 3: "D, H, W"}
    what = (f"{name} takes x of shape (C_in, {sizes[nd]}) with weight_shape (C_out, "
            f"C_in/groups, {layouts[nd]}), or a {nd}-D x with a bare kernel size "
            f"({layouts[nd]}); got x of shape {x.shape} and weight_shape {weight_shape}")
    raise ParameterValueError("x" if x.ndim not in (nd, nd + 1) else "weight_shape", what)


class _ConvFilterNd(ShapedLinearOperator):
    _ndim: int

    def __init__(
        self,
        x,
        weight_shape,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        padding_mode="zeros",
        dtype=None,
        engine="auto",
    ):
        nd, name = self._ndim, type(self).__name__
        x = as_weight(x, "x")
        weight_shape = as_shape(weight_shape, "weight_shape")
        x3, full_shape, bare = _split_filter_channels(x, weight_shape, nd, name)
        c_in, c_out, cin_g = x3.shape[0], full_shape[0], full_shape[1]
        groups = check_groups(groups, {"C_in": c_in, "C_out": c_out})
        if cin_g * groups != c_in:
            raise ParameterValueError(
                "weight_shape", f"weight_shape {weight_shape} has {cin_g} input channels per "
                f"group, but x has C_in={c_in} channels and groups={groups} (needs "
                f"{c_in // groups})"
            )
        op_dtype = x.dtype
        if dtype is not None:
            op_dtype = np.result_type(x.dtype, as_operator_dtype(dtype, "dtype"))
        try:
            geometry = conv_geometry(x3.shape[1:], full_shape[2:], stride=stride,
                                     padding=padding, dilation=dilation,
                                     padding_mode=padding_mode)
        except ParameterValueError as err:
            if err.parameter != "input_shape":
                raise
            raise ParameterValueError("weight_shape", str(err)) from None
        if x.dtype != op_dtype:
            x = x.astype(op_dtype)
            x.flags.writeable = False
        self._init(x, weight_shape, full_shape, groups, geometry, bare, op_dtype)
        self._engine_name = _filter_engine(engine, full_shape, op_dtype, geometry, groups)

    def _init(self, x, weight_shape, full_shape, groups, geometry, bare, dtype):
        self._x = x
        self._weight_shape = tuple(weight_shape)
        self._full_shape = tuple(full_shape)
        self._groups = groups
        self._geometry = geometry
        self._bare = bare
        self._memo = Memo()  # the padded x and small patches; copies and pickles empty
        c_out = full_shape[0]
        output_shape = geometry.output_size if bare else (c_out,) + geometry.output_size
        super().__init__(weight_shape, output_shape, dtype)

    # -- a value: pickles and copies carry x and the geometry, never the memo --------------
    def __setstate__(self, state):
        self.__dict__.update(state)
        self._x.flags.writeable = False  # an unpickled array is writeable again

    # -- attributes ---------------------------------------------------------------------
    @property
    def engine(self) -> str:
        """Who computes NumPy inputs: ``"numpy"`` or ``"torch"``."""
        return self.__dict__.get("_engine_name", "numpy")

    @property
    def x(self) -> np.ndarray:
        """The fixed input, as given (a read-only copy, in the operator's dtype)."""
        return self._x

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The shape of the weights the operator takes (its ``input_shape``)."""
        return self._weight_shape

    @property
    def geometry(self) -> ConvGeometry:
        """The convolution's geometry (spatial sizes of x, kernel and output)."""
        return self._geometry

    @property
    def groups(self) -> int:
        return self._groups

    @property
    def stride(self) -> tuple[int, ...]:
        return self._geometry.stride

    @property
    def padding(self) -> tuple[tuple[int, int], ...]:
        return self._geometry.padding

    @property
    def dilation(self) -> tuple[int, ...]:
        return self._geometry.dilation

    @property
    def padding_mode(self) -> str:
        return self._geometry.padding_mode

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {self.input_shape} -> {self.output_shape}, "
            f"dtype={self.dtype}, x.shape={self._x.shape}>"
        )

    # -- the patches ----------------------------------------------------------------------
    @property
    def _sizes(self):
        """(G, C_out/G, C_in/G * K, n_out)."""
        c_out, cin_g = self._full_shape[:2]
        g = self._groups
        return g, c_out // g, cin_g * self._geometry.n_taps, math.prod(self._geometry.output_size)

    def _xpad(self) -> np.ndarray:
        """``x`` with a channel axis, padded by the padding mode: ``(C_in, *padded)``."""
        def build():
            g = self._geometry
            x = self._x.reshape((self._full_shape[1] * self._groups,) + g.input_size)
            return pad(x, g.padding, g.padding_mode)

        return self._memo.get("xpad", build)

    def _gather(self, spatial) -> np.ndarray:
        """The patches of the outputs ``spatial`` (a tile): ``(G, C_in/G * K, n_tile)``."""
        g_ = self._geometry
        xpad = self._xpad()
        shape = tuple(s.stop - s.start for s in spatial)
        c_in = xpad.shape[0]
        cols = np.empty((c_in, g_.n_taps) + shape, dtype=xpad.dtype)
        for t, window in enumerate(_windows(g_, spatial)):
            cols[:, t] = xpad[(slice(None),) + window]
        return cols.reshape(self._groups, -1, math.prod(shape))

    def _patch_tiles(self, dtype):
        """``(spatial, span, patches)`` per tile of outputs; ``span`` None unless contiguous.

        All the patches at once (and cached) when they take at most
        `PATCH_CACHE_BYTES` and `~linop._conv.im2col.PATCH_BUFFER_BYTES`;
        else tiles of at most ``PATCH_BUFFER_BYTES`` each.
        """
        g_ = self._geometry
        G, _, R, n_out = self._sizes
        itemsize = max(self._x.itemsize, np.dtype(dtype).itemsize)
        budget = _im2col.PATCH_BUFFER_BYTES
        everything = tuple(slice(0, n) for n in g_.output_size)
        if G * R * n_out * itemsize <= min(PATCH_CACHE_BYTES, budget):
            patches = self._memo.get("patches",
                                     lambda: self._readonly(self._gather(everything)))
            yield everything, slice(0, n_out), patches
            return
        for spatial, _ in tiles(g_.output_size, 1, G * R * itemsize, budget):
            yield spatial, _contiguous_span(g_.output_size, 1, spatial, slice(0, 1)), \
                self._gather(spatial)

    @staticmethod
    def _readonly(a: np.ndarray) -> np.ndarray:
        a.flags.writeable = False
        return a

    # -- the products ----------------------------------------------------------------------
    def _forward(self, w: np.ndarray, conjugate: bool) -> np.ndarray:
        """``A w`` (``conj(A) w``) for columns ``(C_out*C_in/G*K, k)`` -> ``(C_out*n_out, k)``."""
        G, cout_g, R, n_out = self._sizes
        k, dtype = w.shape[1], w.dtype
        sizes = self._geometry.output_size
        wm = w.reshape(G, cout_g, R, k)
        # rows (co, sample): W_g of every sample stacked, so one GEMM per group
        wm = wm.reshape(G, cout_g, R) if k == 1 else np.ascontiguousarray(
            wm.transpose(0, 1, 3, 2)).reshape(G, cout_g * k, R)
        out = np.empty((G, cout_g * k, n_out), dtype=dtype)
        grid = out.reshape((G, cout_g * k) + sizes)
        with np.errstate(**_ERRSTATE):
            for spatial, span, patches in self._patch_tiles(dtype):
                patches = self._prepare(patches, dtype, conjugate)
                if span is not None:
                    np.matmul(wm, patches, out=out[:, :, span])
                else:
                    block = np.matmul(wm, patches)
                    grid[(slice(None), slice(None)) + spatial] = block.reshape(
                        block.shape[:2] + tuple(s.stop - s.start for s in spatial))
        if k == 1:
            return out.reshape(-1, 1)
        out = out.reshape(G * cout_g, k, n_out).transpose(0, 2, 1)
        return np.ascontiguousarray(out).reshape(-1, k)

    def _backward(self, y: np.ndarray, conjugate: bool) -> np.ndarray:
        """``A^H y`` (conjugate) or ``A^T y`` for ``(C_out*n_out, k)`` -> ``(C_out*R, k)``."""
        G, cout_g, R, n_out = self._sizes
        k, dtype = y.shape[1], y.dtype
        sizes = self._geometry.output_size
        ym = y.reshape(G, cout_g, n_out, k)
        ym = ym.reshape(G, cout_g, n_out) if k == 1 else np.ascontiguousarray(
            ym.transpose(0, 1, 3, 2)).reshape(G, cout_g * k, n_out)
        grid = ym.reshape((G, cout_g * k) + sizes)
        acc = None
        with np.errstate(**_ERRSTATE):
            for spatial, span, patches in self._patch_tiles(dtype):
                patches = self._prepare(patches, dtype, conjugate)
                if span is not None:
                    block = ym[:, :, span]
                else:
                    block = grid[(slice(None), slice(None)) + spatial].reshape(
                        G, cout_g * k, -1)
                term = np.matmul(block, patches.transpose(0, 2, 1))
                if acc is None:
                    acc = term
                else:
                    acc += term
        if k == 1:
            return acc.reshape(-1, 1)
        acc = acc.reshape(G, cout_g, k, R).transpose(0, 1, 3, 2)
        return np.ascontiguousarray(acc).reshape(-1, k)

    def _prepare(self, patches: np.ndarray, dtype, conjugate: bool) -> np.ndarray:
        if conjugate and patches.dtype.kind == "c":
            patches = np.conj(patches)
        return patches.astype(dtype, copy=False)

    def _torch_kernel(self, kind):
        def build():
            from linop._torch_engine.conv_filter import TorchConvFilter

            return TorchConvFilter(self)

        return self._memo.get("torch", build).kernel(kind)

    def _apply_cols(self, w):
        if self.engine == "torch":
            return self._torch_cols("A", w)
        return self._forward(w, conjugate=False)

    def _apply_adjoint_cols(self, y):
        if self.engine == "torch":
            return self._torch_cols("AH", y)
        return self._backward(y, conjugate=True)

    def _apply_transpose_cols(self, y):
        if self.engine == "torch":
            return self._torch_cols("AT", y)
        return self._backward(y, conjugate=False)

    def _apply_conjugate_cols(self, w):
        if self.engine == "torch":
            return self._torch_cols("conjA", w)
        return self._forward(w, conjugate=True)

    # -- the explicit matrix ---------------------------------------------------------------
    def _matrix_parts(self):
        """Stored entries, shape, and the bytes building the matrix holds at its peak."""
        G, cout_g, R, n_out = self._sizes
        c_out, cin_g = G * cout_g, self._full_shape[1]
        nnz1 = toeplitz_nnz(self._geometry)  # (output, tap) pairs reading a real pixel
        nnz = c_out * cin_g * nnz1
        m, n = c_out * n_out, c_out * R
        itemsize = self.dtype.itemsize
        # the tap table, then per entry of one output channel: the mask, about six int64
        # index arrays and the gathered values of every group
        temporaries = tap_table_nbytes(self._geometry) + n_out * R + cin_g * nnz1 * (
            6 * 8 + G * itemsize)
        return nnz, (m, n), csr_nbytes(nnz, m, self.dtype, n) + temporaries

    def tocsr(self) -> sp.csr_array:
        """The explicit matrix as a `scipy.sparse.csr_array`.

        Shape ``(C_out*n_out, C_out*C_in/groups*K)``. Row ``(co, o)``,
        column ``(co, ci, k)`` holds the padded input ``x~[g*C_in/groups + ci,
        o*stride + k*dilation]`` (``g`` the group of ``co``); every other
        entry is absent. Reads of zero padding are absent; with the other
        padding modes they hold the mirrored, replicated or wrapped pixel's
        value. Zeros of ``x`` itself are kept as stored zeros, so the
        sparsity pattern does not depend on the values. Sorted indices,
        int32 indices where they fit.

        Returns
        -------
        scipy.sparse.csr_array

        Raises
        ------
        MatrixTooLargeError
            If building it would need more memory than `get_memory_limit`.

        Examples
        --------
        >>> import numpy as np, linop
        >>> A = linop.ConvFilter1d(np.array([1.0, 2.0, 3.0, 4.0]), (2,), padding=1)
        >>> A.tocsr().toarray()
        array([[0., 1.],
               [1., 2.],
               [2., 3.],
               [3., 4.],
               [4., 0.]])
        >>> A.tocsr().nnz   # the two reads of the zero padding are absent
        8
        """
        nnz, (m, n), nbytes = self._matrix_parts()
        check_nbytes(
            nbytes,
            f"the explicit matrix of this convolution as a function of its kernel ({m} x {n}, "
            f"{nnz} stored entries)",
            "apply the operator instead (it never builds this matrix)",
        )
        G, cout_g, R, n_out = self._sizes
        c_out, cin_g, n_taps = G * cout_g, self._full_shape[1], self._geometry.n_taps
        table = tap_table(self._geometry)
        valid = table.valid
        if valid is None:
            # every (o, ci, k) in C order: o major, then ci, then k
            o, local = np.divmod(np.arange(n_out * R, dtype=np.int64), R)
            counts = np.full(n_out, R, dtype=np.int64)
        else:
            mask = np.broadcast_to(valid[:, None, :], (n_out, cin_g, n_taps))
            o, local = np.divmod(np.flatnonzero(mask), R)
            counts = cin_g * table.row_counts.astype(np.int64)
        ci, tap = np.divmod(local, n_taps)
        read = table.index[o, tap].astype(np.int64)  # flat spatial index into x
        del o, tap
        n_in = math.prod(self._geometry.input_size)
        xs = self._x.reshape(G, cin_g, n_in)
        data = xs[:, ci, read]  # (G, entries of one output channel)
        del ci, read
        data = np.repeat(data, cout_g, axis=0).reshape(-1) if cout_g > 1 else data.reshape(-1)
        idx_dtype = index_dtype(nnz, m, n)
        local = local.astype(idx_dtype)
        if c_out == 1:
            indices = local
        else:
            indices = (np.arange(c_out, dtype=idx_dtype)[:, None] * idx_dtype.type(R)
                       + local[None, :]).reshape(-1)
        indptr = np.empty(m + 1, dtype=idx_dtype)
        indptr[0] = 0
        np.cumsum(np.tile(counts, c_out), out=indptr[1:])
        matrix = sp.csr_array((data, indices, indptr), shape=(m, n), copy=False)
        matrix.has_sorted_indices = True
        matrix.has_canonical_format = True
        return matrix


_DOC = """{n}-D convolution as a linear operator on its kernel: ``w -> conv{n}d(x, w)``.

For a fixed input ``x``, ``matvec`` of a C-order flattened weight ``w`` of
shape ``weight_shape`` is ``torch.nn.functional.conv{n}d(x, w)`` on one
sample (flattened), and ``rmatvec`` is its Hermitian adjoint, PyTorch's
weight gradient ``torch.nn.grad.conv{n}d_weight(x, weight_shape, y)``.
``tocsr()`` is the explicit matrix. It is the convolution seen from the
other side: ``ConvFilter{n}d(x, w.shape, ...).apply(w)`` equals
``Conv{n}d(w, x.shape, ...).apply(x)``. Uses: estimating a kernel from
known input and output (system identification, blind deconvolution's
kernel step), and the gradient of a loss with respect to a layer's weight.

Parameters
----------
x : array_like
    The fixed input, of shape ``(C_in, {sdims})``, or ``({sdims})`` with a
    bare ``weight_shape``. The operator's dtype is that of ``x``: float32,
    float64, complex64 or complex128 (integers and bools become float64,
    half precision float32, as for weights). The array is copied.
weight_shape : tuple of int
    ``(C_out, C_in/groups, {kdims})`` (PyTorch's layout of the weight), or a
    bare kernel size ``({kdims})`` with a bare ``x``, for one channel in and
    out; then the output has no channel axis either.
stride : int or tuple of int, default 1
padding : int, tuple, tuple of (int, int) pairs, "valid" or "same", default 0
dilation : int or tuple of int, default 1
groups : int, default 1
padding_mode : {{"zeros", "reflect", "replicate", "circular"}}, default "zeros"
    As for :class:`Conv{n}d`: ``x`` is padded by the padding mode.
dtype : dtype, optional
    Request a wider operator dtype: the operator's dtype is then
    ``numpy.result_type(x.dtype, dtype)`` (never narrower than ``x``), and
    ``x`` is stored in it; e.g. ``dtype=np.complex64`` with a float32 ``x``
    for complex kernels. One of float32, float64, complex64, complex128.
engine : {{"auto", "numpy", "torch"}}, default "auto"
    Who computes NumPy inputs: NumPy (the GEMMs above), or PyTorch's
    convolutions (``torch.nn.functional.conv{n}d`` of ``x`` with the weight,
    and the weight gradient as a convolution of ``x`` with ``y``).
    ``"auto"`` takes torch only when torch is imported already and the cost
    model of the convolutions expects it to be faster. Tensors are computed
    by torch on their device whatever the engine.

Attributes
----------
input_shape : tuple of int
    ``weight_shape``.
output_shape : tuple of int
    ``(C_out, {odims})``, or ``({odims})`` when bare.
x : numpy.ndarray
    The fixed input, as given (a read-only copy in the operator's dtype).
weight_shape : tuple of int
stride, dilation : tuple of int
    Per axis.
padding : tuple of (int, int)
    ``(lo, hi)`` per axis.
groups : int
padding_mode : str
geometry : ConvGeometry
    The validated per-axis sizes of ``x``, the kernel and the output, the
    stride, the ``(lo, hi)`` padding and the dilation.
dims, dimsd : tuple of int
    ``input_shape`` and ``output_shape`` under PyLops' names.

Raises
------
ParameterTypeError, ParameterValueError
    At construction, for any parameter out of its range or inconsistent
    with the others; the message names the parameter and its value, and
    ``.parameter`` holds its name (``"weight_shape"`` when the kernel does
    not fit the padded input).

See Also
--------
Conv{n}d : the same convolution as a function of its input.

Notes
-----
With :math:`\\tilde x` the input extended by the padding mode, output
channel :math:`c_o` of group :math:`g` (input channels :math:`g_0 + c`,
:math:`c < C_\\mathrm{{in}}/G`) is, per spatial axis with stride :math:`s`
and dilation :math:`d`,

.. math::

    y[c_o, o] = \\sum_{{c}} \\sum_{{k}} w[c_o, c, k]\\,
                \\tilde x[g_0 + c, o s + k d - p_\\mathrm{{lo}}].

Per group this is one matrix product :math:`Y_g = W_g X_g`, where
:math:`W_g` holds the weights of the group's output channels as rows
(columns ordered ``(c, k)``) and the im2col patch matrix :math:`X_g` has
row :math:`(c, k)` and column :math:`o` equal to :math:`\\tilde x[g_0 + c,
o s + k d - p_\\mathrm{{lo}}]`. The operator maps :math:`W \\mapsto Y`; its
Hermitian adjoint maps :math:`Y \\mapsto Y_g \\overline{{X_g}}^T` (PyTorch's
weight gradient), its transpose :math:`Y \\mapsto Y_g X_g^T`. The
patches are gathered by strided slices of :math:`\\tilde x`, in tiles of
bounded size unless they are small, and cached then. As in PyTorch, every
tap is multiplied, so an infinite ``x`` or weight times zero padding gives
NaN (``tocsr()`` stores no entry for zero padding).

The explicit matrix is block diagonal: one block :math:`X_g^T` of shape
``(n_out, C_in/G * K)`` per output channel.

Examples
--------
{example}
"""

_EXAMPLES = {
    1: """A two-tap kernel applied to a signal, as a function of the kernel:

>>> import numpy as np
>>> from linop import ConvFilter1d, Conv1d
>>> x = np.array([1.0, 2.0, 3.0, 4.0])
>>> A = ConvFilter1d(x, (2,))
>>> A.shape, A.output_shape
((3, 2), (3,))
>>> A @ np.array([1.0, -1.0])
array([-1., -1., -1.])
>>> Conv1d(np.array([1.0, -1.0]), x.shape) @ x    # the same convolution
array([-1., -1., -1.])

The adjoint is the weight gradient: the correlation of ``y`` with ``x``.

>>> A.H @ np.array([1.0, 0.0, 0.0])
array([1., 2.])""",
    2: """The weight of ``torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)`` on one image:

>>> import numpy as np
>>> from linop import ConvFilter2d, Conv2d
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((3, 32, 32))
>>> A = ConvFilter2d(x, (8, 3, 3, 3), stride=2, padding=1)
>>> A.shape, A.output_shape
((2048, 216), (8, 16, 16))
>>> w = rng.standard_normal((8, 3, 3, 3))
>>> y = A.apply(w)
>>> bool(np.allclose(y, Conv2d(w, x.shape, stride=2, padding=1).apply(x)))
True
>>> A.apply_adjoint(y).shape                   # the weight gradient
(8, 3, 3, 3)

Estimating a kernel from an input and its blurred image by least squares:

>>> from scipy.sparse.linalg import lsqr
>>> image = rng.standard_normal((24, 24))
>>> kernel = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
>>> blurred = Conv2d(kernel, image.shape, padding="same").apply(image)
>>> B = ConvFilter2d(image, (3, 3), padding="same")
>>> estimate = lsqr(B, blurred.ravel(), atol=1e-12, btol=1e-12)[0].reshape(3, 3)
>>> bool(np.allclose(estimate, kernel))
True""",
    3: """>>> import numpy as np
>>> from linop import ConvFilter3d
>>> A = ConvFilter3d(np.ones((2, 4, 4, 4)), (4, 1, 3, 3, 3), groups=2,
...                  padding=1, padding_mode="replicate")
>>> A.input_shape, A.output_shape
((4, 1, 3, 3, 3), (4, 4, 4, 4))
>>> float(A.apply(np.ones((4, 1, 3, 3, 3))).max())
27.0""",
}

_SIZES = {1: "L", 2: "H, W", 3: "D, H, W"}
_AXES = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}
_OUT = {1: "L_out", 2: "H_out, W_out", 3: "D_out, H_out, W_out"}


def _filter_engine(engine, full_shape, dtype, geometry, groups) -> str:
    """``engine=`` of a ConvFilter: "auto" compares the convolutions' im2col estimates."""
    from linop._conv.plan import make_plan
    from linop.conv import as_engine

    engine = as_engine(engine)
    if engine != "auto":
        return engine
    plan = make_plan(np.zeros(full_shape, dtype), geometry, groups, "im2col", "auto")
    return plan.engine


def _make_class(name: str, n: int):
    cls = type(name, (_ConvFilterNd,), {"_ndim": n, "__module__": "linop.conv_filter"})
    cls.__doc__ = _DOC.format(n=n, sdims=_SIZES[n], kdims=_AXES[n], odims=_OUT[n],
                              example=_EXAMPLES[n])
    return cls


ConvFilter1d = _make_class("ConvFilter1d", 1)
ConvFilter2d = _make_class("ConvFilter2d", 2)
ConvFilter3d = _make_class("ConvFilter3d", 3)
