r"""Separable convolutions as Kronecker products, and their exact least squares.

Every padding mode of linop (zeros, reflect, replicate, circular) pads each
axis by its own index map, so a single-channel convolution whose kernel is
separable, ``w = c \, u_1 \otimes \dots \otimes u_d``, is the Kronecker
product of one-dimensional convolutions with the same stride, padding,
dilation and padding mode on every axis:

.. math::

    A = c \, A_1 \otimes \dots \otimes A_d .

With the per-axis SVDs ``A_a = U_a S_a V_a^H`` (dense, ``n_out_a x n_a``),
``A = (\otimes U_a)\, c \prod_a S_a \,(\otimes V_a)^H`` is an SVD of ``A``, so
the Tikhonov solution is one pass, exact for every padding mode:

.. math::

    x = (\otimes V_a)\, \frac{\bar c \sigma}{|c|^2 \sigma^2 + \delta^2}
        \, (\otimes U_a)^H b, \qquad \sigma = \textstyle\prod_a s_a ,

and ``(A^H A + \delta^2 I)^{-1} = (\otimes V_a) (|c|^2 \sigma^2 +
\delta^2)^{-1} (\otimes V_a)^H`` with the full bases (an orthogonal
transform and a positive diagonal: symmetric positive definite by
construction). The cost is one dense SVD per axis, ``O(n_a^3)``, and per
application one dense product along each axis, ``O(N \sum_a n_a)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from linop._memory import check_nbytes
from linop.conv import Conv1d
from linop.linalg._symbol import conv_form

__all__ = ["KroneckerSVD", "kronecker_svd", "separable_factors", "KRONECKER_MAX_SIZE"]

#: The largest axis for which the dense per-axis SVD is used (``O(n^3)`` to build,
#: ``O(N n)`` per application: beyond a few thousand the transforms win).
KRONECKER_MAX_SIZE = 2048


def separable_factors(kernel: np.ndarray, rtol: float | None = None):
    """``(c, [u_1, ..., u_d])`` with ``kernel == c * outer(u_1, ..., u_d)``, or None.

    Each ``u_a`` has unit norm; the kernel counts as separable when the
    rank-one reconstruction agrees to ``rtol`` (default: 100 machine
    epsilons of the kernel's dtype) relative to its Frobenius norm.
    """
    kernel = np.asarray(kernel)
    if rtol is None:
        rtol = 100 * np.finfo(kernel.dtype).eps
    norm = np.linalg.norm(kernel)
    if norm == 0:
        return None
    vectors = []
    for a in range(kernel.ndim):
        unfolded = np.moveaxis(kernel, a, 0).reshape(kernel.shape[a], -1)
        u, _, _ = np.linalg.svd(unfolded, full_matrices=False)
        vectors.append(u[:, 0])
    scale = kernel
    for u in vectors:  # contract the first remaining axis with conj(u)
        scale = np.tensordot(np.conj(u), scale, axes=([0], [0]))
    scale = complex(scale) if np.iscomplexobj(scale) else float(scale)
    rebuilt = scale * _outer(vectors)
    if np.linalg.norm(rebuilt - kernel) > rtol * norm:
        return None
    return scale, vectors


def _outer(vectors):
    out = np.array(1.0)
    for u in vectors:
        out = np.multiply.outer(out, u)
    return out


def _along(matrix: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """``matrix`` applied along ``axis`` of ``x``."""
    return np.moveaxis(np.tensordot(matrix, x, axes=([1], [axis])), 0, axis)


@dataclasses.dataclass(frozen=True, eq=False)
class KroneckerSVD:
    """The SVD ``A = (⊗ U_a) diag(c sigma) (⊗ V_a)^H`` of a separable convolution.

    Attributes
    ----------
    scale : complex or float
        ``c``.
    u, s, vh : tuple of ndarray
        Per axis the thin SVD of the one-dimensional operator ``A_a``.
    v_full : tuple of ndarray
        Per axis the full right basis (``n_a x n_a``), for the preconditioner.
    input_shape, output_shape : tuple of int
        ``A``'s shapes (a leading channel axis of size 1 where ``A`` has one).
    input_grid, output_grid : tuple of int
        The spatial sizes.
    dtype : numpy.dtype
    """

    scale: complex
    u: tuple
    s: tuple
    vh: tuple
    v_full: tuple
    input_shape: tuple
    output_shape: tuple
    input_grid: tuple
    output_grid: tuple
    dtype: np.dtype

    def singular_values(self) -> np.ndarray:
        """``|c| prod_a s_a`` on the grid of thin singular vectors (an outer product)."""
        return abs(self.scale) * _outer(self.s)

    def solve(self, b: np.ndarray, damp: float) -> np.ndarray:
        """The minimiser of ``||A x - b||^2 + damp^2 ||x||^2`` (minimum norm when ``damp == 0``).

        ``b`` has shape ``(prod(output_grid), k)``; returns ``(prod(input_grid), k)``.
        """
        k = b.shape[1]
        y = b.reshape(self.output_grid + (k,))
        for a, u in enumerate(self.u):
            y = _along(np.conj(u.T), y, a)
        sigma = self.singular_values()
        with np.errstate(divide="ignore", invalid="ignore"):
            if damp > 0:
                gain = sigma / (sigma**2 + damp**2)
            else:
                cut = max(max(self.input_grid), max(self.output_grid)) * np.finfo(
                    self.dtype).eps * sigma.max()
                gain = np.where(sigma > cut, 1 / np.where(sigma > cut, sigma, 1), 0)
        phase = np.conj(self.scale) / abs(self.scale)
        y = y * (phase * gain)[..., None]
        for a, vh in enumerate(self.vh):
            y = _along(np.conj(vh.T), y, a)
        return y.reshape(-1, k)

    def normal_inverse_eigenvalues(self, damp: float) -> np.ndarray:
        """``1 / (|c|^2 sigma^2 + damp^2)`` on the full input grid (see `inverse_eigenvalues`)."""
        full = []
        for s, n in zip(self.s, self.input_grid):
            padded = np.zeros(n)
            padded[: s.size] = s
            full.append(padded)
        from linop.linalg._precond import inverse_eigenvalues

        return inverse_eigenvalues(abs(self.scale) ** 2 * _outer(full) ** 2, damp, self.dtype)

    def apply_normal_inverse(self, x: np.ndarray, inverse_eigenvalues: np.ndarray):
        """``(⊗ V_a) diag(inverse_eigenvalues) (⊗ V_a)^H x`` for ``x`` of shape (N_in, k)."""
        k = x.shape[1]
        y = x.reshape(self.input_grid + (k,))
        for a, v in enumerate(self.v_full):
            y = _along(np.conj(v.T), y, a)
        y = y * inverse_eigenvalues[..., None]
        for a, v in enumerate(self.v_full):
            y = _along(v, y, a)
        return y.reshape(-1, k)


def kronecker_svd(A) -> KroneckerSVD | None:
    """The `KroneckerSVD` of a single-channel convolution with a separable kernel, or None.

    ``A`` is a convolution, a transposed convolution or a view of one (any
    padding mode, stride, dilation). None when the operator is of another
    kind, has several channels, a non-separable kernel, or an axis longer
    than `KRONECKER_MAX_SIZE`.
    """
    form = conv_form(A)
    if form is None or form.weight.shape[:2] != (1, 1):
        return None
    g = form.geometry
    if max(g.input_size) > KRONECKER_MAX_SIZE or max(g.output_size) > KRONECKER_MAX_SIZE:
        return None
    factors = separable_factors(form.weight[0, 0])
    if factors is None:
        return None
    scale, vectors = factors
    itemsize = np.dtype(np.result_type(form.weight.dtype, np.float64)).itemsize * (
        2 if np.iscomplexobj(form.weight) else 1)
    check_nbytes(sum(4 * n * n for n in g.input_size + g.output_size) * itemsize,
                 f"the per-axis SVDs of this separable {form.name}")
    us, ss, vhs, vfull = [], [], [], []
    for a, u in enumerate(vectors):
        matrix = Conv1d(u.astype(np.result_type(u.dtype, np.float64)), (g.input_size[a],),
                        stride=g.stride[a], padding=(g.padding[a],), dilation=g.dilation[a],
                        padding_mode=g.padding_mode).tocsr().toarray()
        if form.adjoint:
            matrix = np.conj(matrix.T)
        uu, s, vh = np.linalg.svd(matrix, full_matrices=True)
        r = s.size
        us.append(uu[:, :r])
        ss.append(s)
        vhs.append(vh[:r])
        vfull.append(np.conj(vh.T))
    if form.adjoint:
        scale = np.conj(scale)
        grid_in, grid_out = g.output_size, g.input_size
    else:
        grid_in, grid_out = g.input_size, g.output_size
    return KroneckerSVD(scale, tuple(us), tuple(ss), tuple(vhs), tuple(vfull),
                        tuple(A.input_shape), tuple(A.output_shape), tuple(grid_in),
                        tuple(grid_out), np.dtype(A.dtype))
