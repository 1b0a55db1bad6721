"""The shaped linear operator that every linop operator derives from."""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__ = ["ShapedLinearOperator"]


class ShapedLinearOperator(LinearOperator):
    """A `~scipy.sparse.linalg.LinearOperator` between arrays of fixed shapes.

    The operator maps C-order flattened arrays of shape ``input_shape`` to
    flattened arrays of shape ``output_shape``. Subclasses implement the
    batched kernels ``_apply_batch`` and ``_apply_adjoint_batch`` on arrays of
    shape ``(batch, *input_shape)`` and ``(batch, *output_shape)``; this class
    derives ``matvec``, ``rmatvec``, ``matmat``, ``rmatmat`` and the shaped
    helpers :meth:`apply` and :meth:`apply_adjoint` from them.

    Parameters
    ----------
    input_shape, output_shape : tuple of int
        Shapes of the arrays the operator maps between.
    dtype : numpy.dtype
        The dtype of the operator.
    """

    def __init__(self, input_shape, output_shape, dtype):
        self.input_shape = tuple(int(n) for n in input_shape)
        self.output_shape = tuple(int(n) for n in output_shape)
        super().__init__(
            dtype=np.dtype(dtype),
            shape=(math.prod(self.output_shape), math.prod(self.input_shape)),
        )

    # -- what subclasses provide ---------------------------------------------
    def _apply_batch(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _apply_adjoint_batch(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- result dtype ------------------------------------------------------------
    def _result_dtype(self, x: np.ndarray) -> np.dtype:
        """The dtype of a result: the operator's, promoted by the input's."""
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise TypeError(f"input dtype {x.dtype} is not numeric")
        return np.result_type(self.dtype, x.dtype)

    # -- shaped helpers ------------------------------------------------------------
    def apply(self, x) -> np.ndarray:
        """Apply the operator to an array of shape ``(*batch, *input_shape)``.

        Parameters
        ----------
        x : array_like
            Input of shape ``(*batch, *input_shape)``; ``batch`` may be empty.

        Returns
        -------
        numpy.ndarray
            Output of shape ``(*batch, *output_shape)``, dtype
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
        return self._shaped(x, self.input_shape, self.output_shape, self._apply_batch, "x")

    def apply_adjoint(self, y) -> np.ndarray:
        """Apply the Hermitian adjoint to an array of shape ``(*batch, *output_shape)``.

        Parameters
        ----------
        y : array_like
            Input of shape ``(*batch, *output_shape)``; ``batch`` may be empty.

        Returns
        -------
        numpy.ndarray
            Output of shape ``(*batch, *input_shape)``, dtype
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
            y, self.output_shape, self.input_shape, self._apply_adjoint_batch, "y"
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
        dtype = self._result_dtype(a)
        flat = a.reshape((math.prod(batch),) + shape_in).astype(dtype, copy=False)
        return self._run(kernel, flat, shape_out, dtype).reshape(batch + shape_out)

    @staticmethod
    def _run(kernel, flat, shape_out, dtype):
        """``kernel(flat)``; an empty batch gives an empty result without calling it."""
        if flat.shape[0] == 0:
            return np.empty((0,) + shape_out, dtype=dtype)
        return kernel(flat)

    # -- the LinearOperator protocol -------------------------------------------
    def _matvec(self, x):
        return self._matmat(np.reshape(x, (-1, 1))).ravel()

    def _rmatvec(self, y):
        return self._rmatmat(np.reshape(y, (-1, 1))).ravel()

    def _matmat(self, X):
        X = np.asarray(X)
        dtype = self._result_dtype(X)
        batch = X.T.reshape((X.shape[1],) + self.input_shape).astype(dtype, copy=False)
        out = self._run(self._apply_batch, batch, self.output_shape, dtype)
        return out.reshape(X.shape[1], self.shape[0]).T

    def _rmatmat(self, Y):
        Y = np.asarray(Y)
        dtype = self._result_dtype(Y)
        batch = Y.T.reshape((Y.shape[1],) + self.output_shape).astype(dtype, copy=False)
        out = self._run(self._apply_adjoint_batch, batch, self.input_shape, dtype)
        return out.reshape(Y.shape[1], self.shape[1]).T
