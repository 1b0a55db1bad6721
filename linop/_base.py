"""The shaped linear operator that every linop operator derives from, and its algebra.

A `ShapedLinearOperator` maps C-order flattened arrays of shape
``input_shape`` to flattened arrays of shape ``output_shape``. Subclasses
write two kernels on blocks of *columns*, the layout of SciPy's ``matmat``:
an ``(n, k)`` C-contiguous array, one sample per column, is mapped to an
``(m, k)`` one. ``matvec`` is the case ``k = 1`` (a free reshape), ``matmat``
hands its block over as it is, and only `~ShapedLinearOperator.apply` with
several samples transposes once on the way in and once on the way out.

The transpose and the adjoint are shaped operators too: `OperatorView`
swaps the shapes and the kernels (as PyLops swaps ``dims`` and ``dimsd``), so
``A.T`` and ``A.H`` can ``apply`` and, where ``A`` has a matrix,
``tocsr()``; ``A.T.T`` and ``A.H.H`` are ``A`` again. Subclasses may return
a more specific operator (a convolution's transpose is a transposed
convolution).

So are products and linear combinations: ``A @ B``, ``A + B``, ``A - B``,
``-A``, ``c * A``, ``A * c``, ``A / c`` and ``A.H @ A`` between linop
operators give a `ProductOperator` or a `SumOperator`, with
``input_shape``, ``output_shape``, ``apply``, ``apply_adjoint``, shaped
``.T``/``.H`` and, when every factor has one, ``tocsr()`` (the sparse
product or sum of the factors' matrices, sized against the memory limit
first). Nested expressions are flattened: ``A @ (B @ C)`` has the three
factors ``A, B, C``. A plain SciPy operator in the expression gives SciPy's
own composite operator, as before. The shaped operators are closed under
all of these, which is why they live in one module.
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import canonical_csr, transpose_csr
from linop._torch_engine import tensors as torch_tensors
from linop._torch_engine.runtime import is_tensor
from linop._validation import check_numeric_operand

try:  # the symbolic phase of SciPy's sparse product: the exact nnz, no allocation
    from scipy.sparse._sparsetools import csr_matmat_maxnnz
except ImportError:  # pragma: no cover - a SciPy that moved it
    csr_matmat_maxnnz = None

__all__ = ["OperatorView", "ProductOperator", "ShapedLinearOperator", "SumOperator",
           "is_scalar"]


class ShapedLinearOperator(LinearOperator):
    """A `~scipy.sparse.linalg.LinearOperator` between arrays of fixed shapes.

    The operator maps C-order flattened arrays of shape ``input_shape`` to
    flattened arrays of shape ``output_shape``. Subclasses implement
    ``_apply_cols`` (``A X``) and ``_apply_adjoint_cols`` (``A^H Y``) on
    C-contiguous blocks of columns, ``(prod(input_shape), k) ->
    (prod(output_shape), k)``, already in the result dtype, and must not
    write to their input. ``_apply_transpose_cols`` (``A^T Y``) and
    ``_apply_conjugate_cols`` (``conj(A) X``) default to conjugating around
    the other two; real operators and operators with real coefficients
    override them. From these this class derives ``matvec``, ``rmatvec``,
    ``matmat``, ``rmatmat``, the shaped helpers :meth:`apply` and
    :meth:`apply_adjoint`, and shaped ``.T`` and ``.H``.

    Parameters
    ----------
    input_shape, output_shape : tuple of int
        Shapes of the arrays the operator maps between.
    dtype : numpy.dtype
        The dtype of the operator.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
    dims, dimsd : tuple of int
        ``input_shape`` and ``output_shape`` under PyLops' names, so that
        ``pylops.LinearOperator(op)`` applies the operator to shaped arrays.

    Examples
    --------
    A shaped operator of your own: the forward difference along the last axis
    of an image, and its adjoint. It gets ``apply``, ``.H``, products with
    linop's operators and the dot test for free.

    >>> import numpy as np, linop
    >>> class Diff(linop.ShapedLinearOperator):
    ...     def __init__(self, shape):
    ...         super().__init__(shape, shape[:-1] + (shape[-1] - 1,), np.float64)
    ...     def _apply_cols(self, x):                 # x: (prod(input_shape), k)
    ...         g = x.reshape(self.input_shape + (-1,))
    ...         return (g[..., 1:, :] - g[..., :-1, :]).reshape(-1, x.shape[1])
    ...     def _apply_adjoint_cols(self, y):
    ...         g = y.reshape(self.output_shape + (-1,))
    ...         pad = np.zeros(g.shape[:-2] + (1, g.shape[-1]))
    ...         z = np.concatenate([pad, g], axis=-2) - np.concatenate([g, pad], axis=-2)
    ...         return z.reshape(-1, y.shape[1])
    >>> D = Diff((4, 5))
    >>> D.apply(np.arange(20.0).reshape(4, 5))[0]
    array([1., 1., 1., 1.])
    >>> linop.dottest(D.H @ D, rng=0).passed
    True
    """

    def __init__(self, input_shape, output_shape, dtype):
        self.input_shape = tuple(int(n) for n in input_shape)
        self.output_shape = tuple(int(n) for n in output_shape)
        super().__init__(
            dtype=np.dtype(dtype),
            shape=(math.prod(self.output_shape), math.prod(self.input_shape)),
        )

    @property
    def dims(self) -> tuple[int, ...]:
        """``input_shape``, as PyLops names it."""
        return self.input_shape

    @property
    def dimsd(self) -> tuple[int, ...]:
        """``output_shape``, as PyLops names it (the data's dimensions)."""
        return self.output_shape

    @property
    def engine(self) -> str:
        """Who computes NumPy inputs: ``"numpy"``, ``"torch"``, or ``"mixed"`` for a composite.

        Tensors are computed by torch on their device whatever the engine.
        """
        return "numpy"

    # -- what subclasses provide -------------------------------------------------------
    def _torch_kernel(self, kind: str):
        """A torch kernel for a kind of product, or None (tensors then use the NumPy kernels).

        ``kind`` is ``"A"``, ``"AH"``, ``"AT"`` or ``"conjA"``; the kernel maps
        a batch-first tensor ``(k, *in)`` to ``(k, *out)`` (``in``, ``out`` the
        kind's shapes) on its device, in its dtype.
        """
        return None

    def _torch_cols(self, kind: str, cols: np.ndarray) -> np.ndarray:
        """A kind of product of NumPy columns by the torch kernel (``engine="torch"``)."""
        from linop._torch_engine.tensors import numpy_columns, shapes

        return numpy_columns(self._torch_kernel(kind), cols, *shapes(self, kind))

    def _apply_cols(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _apply_adjoint_cols(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _apply_transpose_cols(self, y: np.ndarray) -> np.ndarray:
        """``A^T y = conj(A^H conj(y))``."""
        if not np.iscomplexobj(np.empty(0, self.dtype)):
            return self._apply_adjoint_cols(y)
        return np.conj(self._apply_adjoint_cols(np.conj(y)))

    def _apply_conjugate_cols(self, x: np.ndarray) -> np.ndarray:
        """``conj(A) x = conj(A conj(x))``."""
        if not np.iscomplexobj(np.empty(0, self.dtype)):
            return self._apply_cols(x)
        return np.conj(self._apply_cols(np.conj(x)))

    # -- result dtype and the column kernels ------------------------------------------
    def _result_dtype(self, x: np.ndarray) -> np.dtype:
        """The dtype of a result: the operator's, promoted by the input's."""
        if x.dtype == self.dtype:
            return self.dtype
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise TypeError(f"input dtype {x.dtype} is not numeric")
        return np.result_type(self.dtype, x.dtype)

    @staticmethod
    def _run(kernel, cols: np.ndarray, n_out: int, dtype) -> np.ndarray:
        """``kernel(cols)`` as a C-contiguous ``(n_out, k)`` array; no call when ``k == 0``.

        The kernel sees a read-only view: it may be the caller's own array.
        """
        if cols.shape[1] == 0:
            return np.empty((n_out, 0), dtype=dtype)
        view = cols.view()
        view.flags.writeable = False
        return np.ascontiguousarray(kernel(view), dtype=dtype)

    def _cols(self, a: np.ndarray, kernel, n_out: int) -> np.ndarray:
        dtype = self._result_dtype(a)
        return self._run(kernel, np.ascontiguousarray(a, dtype=dtype), n_out, dtype)

    # -- shaped helpers ------------------------------------------------------------------
    def apply(self, x) -> np.ndarray:
        """Apply the operator to an array of shape ``(*batch, *input_shape)``.

        Parameters
        ----------
        x : array_like
            Input of shape ``(*batch, *input_shape)``; ``batch`` may be empty.

        Returns
        -------
        numpy.ndarray
            Output of shape ``(*batch, *output_shape)``, C-contiguous, of dtype
            ``result_type(self.dtype, x.dtype)``.

        See Also
        --------
        apply_adjoint : the Hermitian adjoint.

        Examples
        --------
        A 3x3 convolution from 1 to 2 channels on 5x5 images: on one image it
        is ``A @ x.ravel()`` reshaped; leading axes are a batch.

        >>> import numpy as np, linop
        >>> A = linop.Conv2d(np.ones((2, 1, 3, 3)), (1, 5, 5), padding=1)
        >>> x = np.ones((1, 5, 5))
        >>> A.apply(x).shape
        (2, 5, 5)
        >>> bool(np.allclose(A.apply(x).ravel(), A @ x.ravel()))
        True
        >>> A.apply(np.ones((4, 3, 1, 5, 5))).shape      # a (4, 3) batch
        (4, 3, 2, 5, 5)
        """
        if is_tensor(x):
            return self._tensor(x, "A", "shaped", "x")
        return self._shaped(x, self.input_shape, self.output_shape, self._apply_cols, "x")

    def apply_adjoint(self, y) -> np.ndarray:
        """Apply the Hermitian adjoint to an array of shape ``(*batch, *output_shape)``.

        Parameters
        ----------
        y : array_like
            Input of shape ``(*batch, *output_shape)``; ``batch`` may be empty.

        Returns
        -------
        numpy.ndarray
            Output of shape ``(*batch, *input_shape)``, C-contiguous, of dtype
            ``result_type(self.dtype, y.dtype)``.

        See Also
        --------
        apply : the operator itself.

        Examples
        --------
        The adjoint of a 3-point moving sum with zero padding: every input
        pixel receives from the outputs that read it (two at the borders).

        >>> import numpy as np, linop
        >>> A = linop.Conv1d(np.array([1.0, 1.0, 1.0]), (5,), padding=1)
        >>> A.apply_adjoint(np.ones(5))
        array([2., 3., 3., 3., 2.])
        >>> A.apply_adjoint(np.ones((2, 5))).shape
        (2, 5)
        """
        if is_tensor(y):
            return self._tensor(y, "AH", "shaped", "y")
        return self._shaped(
            y, self.output_shape, self.input_shape, self._apply_adjoint_cols, "y"
        )

    def _tensor(self, t, kind: str, form: str, name: str):
        """An entry point on a ``torch.Tensor``: a tensor of the same device, by torch."""
        return torch_tensors.call(self, t, kind, form, name)

    def _shaped(self, a, shape_in, shape_out, kernel, name):
        if type(a) is not np.ndarray or a.dtype.kind not in "biufc":
            check_numeric_operand(a, name)
            a = np.asarray(a)
        nd = len(shape_in)
        if a.ndim < nd or a.shape[a.ndim - nd :] != shape_in:
            raise ValueError(
                f"{name} must have shape (*batch, {', '.join(map(str, shape_in))}), "
                f"got {a.shape}"
            )
        batch = a.shape[: a.ndim - nd]
        k, n_in, n_out = math.prod(batch), math.prod(shape_in), math.prod(shape_out)
        out = self._cols(a.reshape(k, n_in).T, kernel, n_out)
        if k > 1:
            out = np.ascontiguousarray(out.T)
        return out.reshape(batch + shape_out)

    # -- the LinearOperator protocol, with messages that name the sizes ------------------
    def _check_operand(self, a, name: str, size: int, shape, columns: bool):
        if type(a) is not np.ndarray or a.dtype.kind not in "biufc":
            check_numeric_operand(a, f"the operand of {name}")
            a = np.asanyarray(a)
        ok = a.ndim == 2 and a.shape[0] == size if columns else a.shape in ((size,), (size, 1))
        if not ok:
            form = f"({size}, k)" if columns else f"({size},) or ({size}, 1)"
            raise ValueError(
                f"{name} of this {self.shape[0]}x{self.shape[1]} operator expects an array of "
                f"shape {form} (a C-order flattened array of shape {tuple(shape)}), got shape "
                f"{a.shape}"
            )
        return a

    # Every entry point first sends a tensor to torch (`_tensor`), then normalises a NumPy
    # operand with `_check_operand`. A plain ndarray vector, checked, goes straight to
    # `_matvec` (what SciPy's `matvec` would do next, without checking it twice); other
    # array types (np.matrix) keep SciPy's handling of their type.
    def matvec(self, x):
        if is_tensor(x):
            return self._tensor(x, "A", "vector", "matvec")
        x = self._check_operand(x, "matvec", self.shape[1], self.input_shape, False)
        if type(x) is not np.ndarray:
            return super().matvec(x)
        y = np.asarray(self._matvec(x))
        return y.reshape(self.shape[0]) if x.ndim == 1 else y.reshape(self.shape[0], 1)

    def rmatvec(self, x):
        if is_tensor(x):
            return self._tensor(x, "AH", "vector", "rmatvec")
        x = self._check_operand(x, "rmatvec", self.shape[0], self.output_shape, False)
        if type(x) is not np.ndarray:
            return super().rmatvec(x)
        y = np.asarray(self._rmatvec(x))
        return y.reshape(self.shape[1]) if x.ndim == 1 else y.reshape(self.shape[1], 1)

    def matmat(self, X):
        if is_tensor(X):
            return self._tensor(X, "A", "columns", "matmat")
        X = self._check_operand(X, "matmat", self.shape[1], self.input_shape, True)
        return super().matmat(X)

    def rmatmat(self, X):
        if is_tensor(X):
            return self._tensor(X, "AH", "columns", "rmatmat")
        X = self._check_operand(X, "rmatmat", self.shape[0], self.output_shape, True)
        return super().rmatmat(X)

    def _matvec(self, x):
        x = np.asarray(x)
        return self._cols(x.reshape(-1, 1), self._apply_cols, self.shape[0]).reshape(-1)

    def _rmatvec(self, y):
        y = np.asarray(y)
        return self._cols(y.reshape(-1, 1), self._apply_adjoint_cols, self.shape[1]).reshape(-1)

    def _matmat(self, X):
        return self._cols(np.asarray(X), self._apply_cols, self.shape[0])

    def _rmatmat(self, Y):
        return self._cols(np.asarray(Y), self._apply_adjoint_cols, self.shape[1])

    # -- transpose and adjoint -------------------------------------------------------------
    def _transpose(self):
        return OperatorView.of(self, transpose=True, conjugate=False)

    def _adjoint(self):
        return OperatorView.of(self, transpose=True, conjugate=True)

    def conj(self):
        """The operator ``conj(A)``: every coefficient conjugated (``A`` itself if real)."""
        return OperatorView.of(self, transpose=False, conjugate=True)

    # -- algebra that keeps shapes (ProductOperator, SumOperator) ------------------------
    # Between linop operators, products and combinations are shaped operators
    # with apply, tocsr, .T and .H; with a plain SciPy operator, SciPy's own.
    def dot(self, x):
        if isinstance(x, ShapedLinearOperator):
            return ProductOperator([self, x])
        if is_scalar(x):
            return SumOperator([(x, self)])
        if is_tensor(x):  # SciPy's rule: a vector or one column is a matvec
            if x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1):
                return self.matvec(x)
            if x.ndim == 2:
                return self.matmat(x)
            raise ValueError(f"expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
        check_numeric_operand(x, "the operand of dot")
        return super().dot(x)

    def _rdot(self, x):
        if isinstance(x, ShapedLinearOperator):
            return ProductOperator([x, self])
        if is_scalar(x):
            return SumOperator([(x, self)])
        check_numeric_operand(x, "the left operand")
        return super()._rdot(x)

    def __rmul__(self, x):
        if is_scalar(x):
            return SumOperator([(x, self)])
        return super().__rmul__(x)

    def __truediv__(self, other):
        if not is_scalar(other):
            raise ValueError("Can only divide a linear operator by a scalar.")
        return SumOperator([(1 / other, self)])

    def __add__(self, x):
        if isinstance(x, ShapedLinearOperator):
            return SumOperator([(1, self), (1, x)])
        return super().__add__(x)

    def __sub__(self, x):
        if isinstance(x, ShapedLinearOperator):
            return SumOperator([(1, self), (-1, x)])
        return super().__sub__(x)

    def __neg__(self):
        return SumOperator([(-1, self)])


#: The kind of product of ``A`` behind each kind of its view, by (transposed, conjugated).
_KIND_OF_BASE = {
    (True, False): {"A": "AT", "AH": "conjA", "AT": "A", "conjA": "AH"},
    (False, True): {"A": "conjA", "AH": "AT", "AT": "AH", "conjA": "A"},
    (True, True): {"A": "AH", "AH": "A", "AT": "conjA", "conjA": "AT"},
}


class OperatorView(ShapedLinearOperator):
    """``A^T``, ``conj(A)`` or ``A^H`` of a shaped operator ``A``, itself shaped.

    Built by ``A.T``, ``A.H`` and ``A.conj()``; never directly. It swaps the
    shapes and the kernels of ``A``, holds nothing else, and composes:
    ``A.T.H`` is ``conj(A)``, ``A.H.H`` is ``A`` itself. Where ``A`` has a
    ``tocsr()``, so does the view (``A``'s matrix transposed and/or
    conjugated, sized against the memory limit first).

    Attributes
    ----------
    base : ShapedLinearOperator
        The operator ``A``.
    transposed, conjugated : bool
        Which of ``A``, ``A^T``, ``conj(A)`` and ``A^H`` this is.
    """

    @classmethod
    def of(cls, base: ShapedLinearOperator, *, transpose: bool, conjugate: bool):
        """The view of ``base`` (which may be a view itself) with these flags, or ``base``."""
        if isinstance(base, OperatorView):
            transpose ^= base.transposed
            conjugate ^= base.conjugated
            base = base.base
        if not np.iscomplexobj(np.empty(0, base.dtype)):
            conjugate = False
        if not (transpose or conjugate):
            return base
        view_cls = _MatrixView if callable(getattr(base, "tocsr", None)) else cls
        return view_cls(base, transpose, conjugate)

    def __init__(self, base: ShapedLinearOperator, transpose: bool, conjugate: bool):
        self.base = base
        self.transposed = transpose
        self.conjugated = conjugate
        shapes = (base.output_shape, base.input_shape) if transpose else (
            base.input_shape, base.output_shape)
        super().__init__(*shapes, dtype=base.dtype)

    def _kernels(self):
        b = self.base
        return {
            (True, False): (b._apply_transpose_cols, b._apply_conjugate_cols),
            (False, True): (b._apply_conjugate_cols, b._apply_transpose_cols),
            (True, True): (b._apply_adjoint_cols, b._apply_cols),
        }[self.transposed, self.conjugated]


    @property
    def engine(self) -> str:
        return self.base.engine

    def _torch_kernel(self, kind):
        from linop._torch_engine.tensors import run

        base_kind = _KIND_OF_BASE[self.transposed, self.conjugated][kind]
        return lambda t: run(self.base, base_kind, t)

    def _apply_cols(self, x):
        return self._kernels()[0](x)

    def _apply_adjoint_cols(self, y):
        return self._kernels()[1](y)

    def _apply_transpose_cols(self, y):
        return OperatorView.of(self.base, transpose=not self.transposed,
                               conjugate=self.conjugated)._apply_cols(y)

    def _apply_conjugate_cols(self, x):
        return OperatorView.of(self.base, transpose=self.transposed,
                               conjugate=not self.conjugated)._apply_cols(x)

    def _transpose(self):
        return OperatorView.of(self, transpose=True, conjugate=False)

    def _adjoint(self):
        return OperatorView.of(self, transpose=True, conjugate=True)

    def __repr__(self) -> str:
        what = {(True, False): "transpose", (False, True): "conjugate",
                (True, True): "adjoint"}[self.transposed, self.conjugated]
        return f"<{what} of {self.base!r}>"


class _MatrixView(OperatorView):
    """An `OperatorView` of an operator with an explicit matrix."""

    def tocsr(self) -> sp.csr_array:
        """The explicit matrix of the view: ``A``'s, transposed and/or conjugated.

        Returns
        -------
        scipy.sparse.csr_array
            Shape ``(prod(output_shape), prod(input_shape))``, sorted indices.

        Raises
        ------
        MatrixTooLargeError
            If ``A``'s matrix, or its transpose, would exceed the memory limit.
        """
        matrix = self.base.tocsr()
        if self.transposed:
            m, n = matrix.shape
            matrix = transpose_csr(
                matrix, f"the transpose of {self.base!r} ({n} x {m}, {matrix.nnz} stored entries)")
        if self.conjugated:
            matrix = matrix.conj()
        return matrix


# -- products and linear combinations ------------------------------------------------------
def is_scalar(value) -> bool:
    """A Python or NumPy number (or 0-d numeric array), not a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Number):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iufc"


def _common_engine(ops) -> str:
    engines = {op.engine for op in ops}
    return engines.pop() if len(engines) == 1 else "mixed"


def _shapes(op) -> str:
    return f"{op.input_shape} -> {op.output_shape}"


def _require_matrices(ops, what: str) -> None:
    """AttributeError (so that ``getattr(op, "tocsr", None)`` is None) unless all have one."""
    missing = [op for op in ops if not callable(getattr(op, "tocsr", None))]
    if missing:
        raise AttributeError(f"{type(missing[0]).__name__} in this {what} has no tocsr()")


class ProductOperator(ShapedLinearOperator):
    """The product of shaped operators, ``A_1 @ A_2 @ A_3``, a shaped operator itself.

    Built by ``@`` (or ``*``, or ``.dot``) between linop operators; applies
    the factors from the last to the first. The sizes must chain:
    ``A_i.input_shape`` has as many elements as ``A_{i+1}.output_shape``
    (the shapes themselves may differ, e.g. ``(H, W)`` and ``(1, H, W)``).

    Attributes
    ----------
    factors : tuple of ShapedLinearOperator
        ``A_1, ..., A_n``, in the order they are written.

    Examples
    --------
    Super-resolution as one operator: up-sample by 2, then blur.

    >>> import numpy as np, linop
    >>> up = linop.Upsample((1, 8, 8), scale_factor=2, mode="bilinear")
    >>> blur = linop.Conv2d(np.full((1, 1, 3, 3), 1 / 9), (1, 16, 16), padding=1)
    >>> A = blur @ up
    >>> A
    <ProductOperator (1, 8, 8) -> (1, 16, 16): Conv2d @ Upsample>
    >>> A.apply(np.ones((1, 8, 8))).shape
    (1, 16, 16)
    >>> M = A.tocsr()                                # the product of the two matrices
    >>> bool(np.allclose(M @ np.ones(64), A @ np.ones(64)))
    True
    >>> (A.H @ A).input_shape                        # normal equations, still shaped
    (1, 8, 8)
    """

    def __init__(self, factors):
        flat = []
        for f in factors:
            flat.extend(f.factors if isinstance(f, ProductOperator) else [f])
        for left, right in itertools.pairwise(flat):
            if left.shape[1] != right.shape[0]:
                raise ValueError(
                    f"cannot compose {type(left).__name__} ({_shapes(left)}) with "
                    f"{type(right).__name__} ({_shapes(right)}): the left operator's input "
                    f"shape {left.input_shape} and the right operator's output shape "
                    f"{right.output_shape} have different sizes ({left.shape[1]} and "
                    f"{right.shape[0]})"
                )
        self.factors = tuple(flat)
        dtype = np.result_type(*(f.dtype for f in flat))
        super().__init__(flat[-1].input_shape, flat[0].output_shape, dtype)

    @property
    def engine(self) -> str:
        """The factors' engine, or ``"mixed"`` when they differ."""
        return _common_engine(self.factors)

    def _torch_kernel(self, kind):
        from linop._torch_engine.tensors import run

        order = reversed(self.factors) if kind in ("A", "conjA") else self.factors
        order = tuple(order)

        def kernel(t):
            for f in order:
                t = run(f, kind, t)
            return t

        return kernel

    def _apply_cols(self, x):
        for f in reversed(self.factors):
            x = f._matmat(x)
        return x

    def _apply_adjoint_cols(self, y):
        for f in self.factors:
            y = f._rmatmat(y)
        return y

    def _transpose(self):
        return ProductOperator([f.T for f in reversed(self.factors)])

    def _adjoint(self):
        return ProductOperator([f.H for f in reversed(self.factors)])

    @property
    def tocsr(self):
        """The sparse product of the factors' matrices (when every factor has one).

        Each partial product is sized before it is built: SciPy's symbolic
        phase counts its entries exactly without allocating them.

        Raises
        ------
        AttributeError
            When a factor has no explicit matrix.
        MatrixTooLargeError
            When a matrix would exceed the memory limit.
        """
        _require_matrices(self.factors, "product")
        return self._product_matrix

    def _product_matrix(self) -> sp.csr_array:
        matrix = self.factors[-1].tocsr()
        for f in reversed(self.factors[:-1]):
            left = sp.csr_array(f.tocsr())
            nnz = _product_nnz(left, matrix)
            dtype = np.result_type(left.dtype, matrix.dtype)
            check_nbytes(2 * csr_nbytes(nnz, left.shape[0], dtype, matrix.shape[1]),
                         f"the explicit matrix of {self!r} ({left.shape[0]} x "
                         f"{matrix.shape[1]}, up to {nnz} stored entries)")
            matrix = canonical_csr(left @ matrix, copy=False)
        return canonical_csr(matrix, self.dtype, copy=False)

    def __repr__(self) -> str:
        chain = " @ ".join(type(f).__name__ for f in self.factors)
        return f"<ProductOperator {self.input_shape} -> {self.output_shape}: {chain}>"


def _product_nnz(a: sp.csr_array, b: sp.csr_array) -> int:
    """Stored entries of ``a @ b`` before cancellation (an upper bound without SciPy's phase)."""
    if csr_matmat_maxnnz is not None:
        index = np.int64
        return int(csr_matmat_maxnnz(a.shape[0], b.shape[1], a.indptr.astype(index),
                                     a.indices.astype(index), b.indptr.astype(index),
                                     b.indices.astype(index)))
    row_lengths = np.diff(b.indptr)
    return int(row_lengths[a.indices].sum())


class SumOperator(ShapedLinearOperator):
    """A linear combination of shaped operators, ``c_1 A_1 + c_2 A_2``, a shaped operator.

    Built by ``+``, ``-``, unary ``-``, and multiplication or division by a
    scalar. The terms must have the same shape (as matrices); the operator
    takes the first term's ``input_shape`` and ``output_shape``.

    Attributes
    ----------
    terms : tuple of (scalar, ShapedLinearOperator)
        The coefficients and the operators.

    Examples
    --------
    A damped normal operator for Tikhonov regularisation:

    >>> import numpy as np, linop
    >>> A = linop.Conv1d(np.array([1.0, 2.0, 1.0]), (6,), padding=1)
    >>> N = A.H @ A + 0.1 * linop.Conv1d(np.array([1.0]), (6,))
    >>> N
    <SumOperator (6,) -> (6,): ProductOperator + 0.1 * Conv1d>
    >>> bool(np.allclose(N.tocsr().toarray(),
    ...                  A.tocsr().toarray().T @ A.tocsr().toarray() + 0.1 * np.eye(6)))
    True
    """

    def __init__(self, terms):
        flat = []
        for c, op in terms:
            if isinstance(op, SumOperator):
                flat.extend((c * ci, opi) for ci, opi in op.terms)
            else:
                flat.append((c, op))
        first = flat[0][1]
        for _, op in flat[1:]:
            if op.shape != first.shape:
                raise ValueError(
                    f"cannot add {type(first).__name__} ({_shapes(first)}) and "
                    f"{type(op).__name__} ({_shapes(op)}): shapes {first.shape} and "
                    f"{op.shape} differ"
                )
        self.terms = tuple(flat)
        dtype = np.result_type(*(op.dtype for _, op in flat), *(c for c, _ in flat))
        super().__init__(first.input_shape, first.output_shape, dtype)

    def _combine(self, x, apply, conjugate: bool):
        total = None
        for c, op in self.terms:
            term = apply(op, x)
            coefficient = c.conjugate() if conjugate else c
            term = term * coefficient if coefficient != 1 else term
            total = term.astype(self.dtype, copy=False) if total is None else total + term
        return total

    @property
    def engine(self) -> str:
        """The terms' engine, or ``"mixed"`` when they differ."""
        return _common_engine([op for _, op in self.terms])

    def _torch_kernel(self, kind):
        from linop._torch_engine.tensors import run

        conjugate = kind in ("AH", "conjA")

        def kernel(t):
            total = None
            for c, op in self.terms:
                term = run(op, kind, t)
                c = c.conjugate() if conjugate else c
                c = complex(c) if np.iscomplexobj(c) else float(c)
                if c != 1:
                    term = term * (c.real if isinstance(c, complex) and not term.is_complex()
                                   else c)
                total = term if total is None else total + term
            return total

        return kernel

    def _apply_cols(self, x):
        return self._combine(x, lambda op, v: op._matmat(v), conjugate=False)

    def _apply_adjoint_cols(self, y):
        return self._combine(y, lambda op, v: op._rmatmat(v), conjugate=True)

    def _transpose(self):
        return SumOperator([(c, op.T) for c, op in self.terms])

    def _adjoint(self):
        return SumOperator([(c.conjugate(), op.H) for c, op in self.terms])

    @property
    def tocsr(self):
        """The sum of the terms' matrices (when every term has one), sized first.

        Raises
        ------
        AttributeError
            When a term has no explicit matrix.
        MatrixTooLargeError
            When the sum would exceed the memory limit.
        """
        _require_matrices([op for _, op in self.terms], "sum")
        return self._sum_matrix

    def _sum_matrix(self) -> sp.csr_array:
        total = None
        for c, op in self.terms:
            matrix = op.tocsr()
            nnz = matrix.nnz + (0 if total is None else total.nnz)
            check_nbytes(2 * csr_nbytes(nnz, self.shape[0], self.dtype, self.shape[1]),
                         f"the explicit matrix of {self!r} ({self.shape[0]} x "
                         f"{self.shape[1]}, up to {nnz} stored entries)")
            matrix = matrix * c if c != 1 else matrix
            total = matrix if total is None else total + matrix
        return canonical_csr(total, self.dtype, copy=False)

    def __repr__(self) -> str:
        parts = []
        for i, (c, op) in enumerate(self.terms):
            name = type(op).__name__
            if c == 1:
                text = name
            elif c == -1:
                text = f"-{name}"
            else:
                text = f"{c} * {name}"
            if i and text.startswith("-"):
                parts.append(f"- {text[1:]}")
            else:
                parts.append(("+ " if i else "") + text)
        return f"<SumOperator {self.input_shape} -> {self.output_shape}: {' '.join(parts)}>"
