"""The shaped linear operator that every linop operator derives from.

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
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from linop._sparse import transpose_csr

__all__ = ["OperatorView", "ShapedLinearOperator"]


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

    # -- what subclasses provide -------------------------------------------------------
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
        return self._shaped(
            y, self.output_shape, self.input_shape, self._apply_adjoint_cols, "y"
        )

    def _shaped(self, a, shape_in, shape_out, kernel, name):
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

    def matvec(self, x):
        x = self._check_operand(x, "matvec", self.shape[1], self.input_shape, False)
        return super().matvec(x)

    def rmatvec(self, x):
        x = self._check_operand(x, "rmatvec", self.shape[0], self.output_shape, False)
        return super().rmatvec(x)

    def matmat(self, X):
        X = self._check_operand(X, "matmat", self.shape[1], self.input_shape, True)
        return super().matmat(X)

    def rmatmat(self, X):
        X = self._check_operand(X, "rmatmat", self.shape[0], self.output_shape, True)
        return super().rmatmat(X)

    def _matvec(self, x):
        return self._matmat(np.reshape(x, (-1, 1))).reshape(-1)

    def _rmatvec(self, y):
        return self._rmatmat(np.reshape(y, (-1, 1))).reshape(-1)

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

    # -- algebra that keeps shapes (linop._algebra) ---------------------------------------
    # Between linop operators, products and combinations are shaped operators
    # with apply, tocsr, .T and .H; with a plain SciPy operator, SciPy's own.
    def dot(self, x):
        from linop import _algebra

        if isinstance(x, ShapedLinearOperator):
            return _algebra.product(self, x)
        if _algebra.is_scalar(x):
            return _algebra.scaled(self, x)
        return super().dot(x)

    def _rdot(self, x):
        from linop import _algebra

        if isinstance(x, ShapedLinearOperator):
            return _algebra.product(x, self)
        if _algebra.is_scalar(x):
            return _algebra.scaled(self, x)
        return super()._rdot(x)

    def __rmul__(self, x):
        from linop import _algebra

        if _algebra.is_scalar(x):
            return _algebra.scaled(self, x)
        return super().__rmul__(x)

    def __truediv__(self, other):
        from linop import _algebra

        if not _algebra.is_scalar(other):
            raise ValueError("Can only divide a linear operator by a scalar.")
        return _algebra.scaled(self, 1 / other)

    def __add__(self, x):
        from linop import _algebra

        if isinstance(x, ShapedLinearOperator):
            return _algebra.sum_of(self, x)
        return super().__add__(x)

    def __sub__(self, x):
        from linop import _algebra

        if isinstance(x, ShapedLinearOperator):
            return _algebra.sum_of(self, x, -1)
        return super().__sub__(x)

    def __neg__(self):
        from linop import _algebra

        return _algebra.scaled(self, -1)


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

