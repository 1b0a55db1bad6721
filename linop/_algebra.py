"""Products, sums and multiples of shaped operators, shaped themselves.

``A @ B``, ``A + B``, ``A - B``, ``-A``, ``c * A``, ``A * c``, ``A / c`` and
``A.H @ A`` between linop operators give a `ProductOperator` or a
`SumOperator`: a shaped operator with ``input_shape``, ``output_shape``,
``apply``, ``apply_adjoint``, shaped ``.T``/``.H`` and, when every factor
has one, ``tocsr()`` (the sparse product or sum of the factors' matrices,
sized against the memory limit first). Nested expressions are flattened:
``A @ (B @ C)`` has the three factors ``A, B, C``. A plain SciPy operator in
the expression gives SciPy's own composite operator, as before.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from linop._base import ShapedLinearOperator
from linop._memory import check_nbytes, csr_nbytes
from linop._sparse import canonical_csr

try:  # the symbolic phase of SciPy's sparse product: the exact nnz, no allocation
    from scipy.sparse._sparsetools import csr_matmat_maxnnz
except ImportError:  # pragma: no cover - a SciPy that moved it
    csr_matmat_maxnnz = None

__all__ = ["ProductOperator", "SumOperator", "is_scalar", "product", "scaled", "sum_of"]


def is_scalar(value) -> bool:
    """A Python or NumPy number (or 0-d numeric array), not a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Number):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iufc"


def _shapes(op) -> str:
    return f"{op.input_shape} -> {op.output_shape}"


def _require_matrices(ops, what: str) -> None:
    """AttributeError (so that ``getattr(op, "tocsr", None)`` is None) unless all have one."""
    missing = [op for op in ops if not callable(getattr(op, "tocsr", None))]
    if missing:
        raise AttributeError(f"{type(missing[0]).__name__} in this {what} has no tocsr()")


class ProductOperator(ShapedLinearOperator):
    """The product ``A_1 @ A_2 @ ... @ A_n`` of shaped operators.

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
        for left, right in zip(flat[:-1], flat[1:]):
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
    """The linear combination ``c_1 A_1 + ... + c_n A_n`` of shaped operators.

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
            coefficient = np.conj(c) if conjugate else c
            term = term * coefficient if coefficient != 1 else term
            total = term.astype(self.dtype, copy=False) if total is None else total + term
        return total

    def _apply_cols(self, x):
        return self._combine(x, lambda op, v: op._matmat(v), conjugate=False)

    def _apply_adjoint_cols(self, y):
        return self._combine(y, lambda op, v: op._rmatmat(v), conjugate=True)

    def _transpose(self):
        return SumOperator([(c, op.T) for c, op in self.terms])

    def _adjoint(self):
        return SumOperator([(np.conj(c), op.H) for c, op in self.terms])

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


# -- what the operators of ShapedLinearOperator call ---------------------------------------
def product(left, right):
    return ProductOperator([left, right])


def scaled(op, c):
    return SumOperator([(c, op)])


def sum_of(left, right, sign: int = 1):
    return SumOperator([(1, left), (sign, right)])

