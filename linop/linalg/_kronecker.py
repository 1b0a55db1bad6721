r"""Separable convolutions as Kronecker products, and their exact least squares.

Every padding mode of linop (zeros, reflect, replicate, circular) pads each
axis by its own index map, so a single-channel convolution whose kernel is
separable, ``w = c \, u_1 \otimes \dots \otimes u_d``, is the Kronecker
product of one-dimensional convolutions with the same stride, padding,
dilation and padding mode on every axis:

.. math::

    A = c \, A_1 \otimes \dots \otimes A_d .

With the per-axis eigendecompositions ``A_a^H A_a = V_a \Lambda_a V_a^H``
(dense, ``n_a x n_a``), ``A^H A = (\otimes V_a)\, |c|^2 \otimes_a
\Lambda_a \,(\otimes V_a)^H``, so the Tikhonov solution is one pass, exact
for every padding mode:

.. math::

    x = (A^H A + \delta^2 I)^{-1} A^H b = (\otimes V_a)\,
        (|c|^2 \lambda + \delta^2)^{-1} (\otimes V_a)^H A^H b ,
        \qquad \lambda = \textstyle\bigotimes_a \Lambda_a ,

and the same operator is the exact preconditioner (an orthogonal transform
and a positive diagonal: symmetric positive definite by construction).
Without damping the inverse is the pseudo-inverse on the eigenvalues above
``N eps max(lambda)``. The cost is one dense symmetric eigendecomposition
per distinct axis, ``O(n_a^3)``, and per application one dense product
along each axis, ``O(N \sum_a n_a)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from linop._memory import check_nbytes
from linop.conv import Conv1d
from linop.linalg._symbol import conv_form

__all__ = ["KRONECKER_MAX_SIZE", "KRONECKER_MAX_ERROR", "KroneckerNormal", "kronecker_normal",
           "rank_one_error", "separable_factors"]

#: The longest axis for which the dense per-axis eigendecomposition is used: it costs
#: ``O(n^3)`` to build (about a second at 1024 on one core) and ``O(N n)`` per
#: application, against ``O(N log N)`` per iteration for the transforms.
KRONECKER_MAX_SIZE = 1024

#: ``preconditioner(kind="auto")`` models replicate padding by the Kronecker product of the
#: kernel's rank-one approximation when that approximation is this close (relative
#: Frobenius error). Measured on 512x512, replicate, damp^2 = 1e-3: a sum of two Gaussians
#: (error 0.05) 116 -> 8 CG iterations (0.21 of CG's time); a 15x15 disk (error 0.32)
#: 129 -> 50, but 0.88-1.14 of CG's time, so not used there.
KRONECKER_MAX_ERROR = 0.15


def separable_factors(kernel: np.ndarray, rtol: float | None = None):
    """``(c, [u_1, ..., u_d])`` with ``kernel == c * outer(u_1, ..., u_d)``, or None.

    Each ``u_a`` has unit norm; the kernel counts as separable when the
    rank-one reconstruction agrees to ``rtol`` (default: 100 machine
    epsilons of the kernel's dtype) relative to its Frobenius norm. With
    ``rtol=inf``: the rank-one approximation (the leading singular vector of
    every unfolding), whatever the kernel.
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
    if rtol != np.inf and np.linalg.norm(rebuilt - kernel) > rtol * norm:
        return None
    return scale, vectors


def rank_one_error(kernel: np.ndarray) -> float:
    """``||kernel - c outer(u_a)|| / ||kernel||`` of the rank-one approximation (0 if separable)."""
    kernel = np.asarray(kernel)
    norm = float(np.linalg.norm(kernel))
    factors = separable_factors(kernel, np.inf)
    if factors is None or norm == 0:
        return 1.0
    scale, vectors = factors
    return float(np.linalg.norm(kernel - scale * _outer(vectors))) / norm


def _outer(vectors):
    out = np.array(1.0)
    for u in vectors:
        out = np.multiply.outer(out, u)
    return out


def _along(matrix: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """``matrix`` applied along ``axis`` of ``x``."""
    return np.moveaxis(np.tensordot(matrix, x, axes=([1], [axis])), 0, axis)


@dataclasses.dataclass(frozen=True, eq=False)
class KroneckerNormal:
    """The eigendecomposition ``A^H A = (⊗ V_a) |c|^2 (⊗ Lambda_a) (⊗ V_a)^H``.

    Attributes
    ----------
    scale : complex or float
        ``c``.
    bases : tuple of ndarray
        Per axis the orthonormal eigenvectors ``V_a`` (``n_a x n_a``) of
        ``A_a^H A_a``.
    eigenvalues : tuple of ndarray
        Per axis its eigenvalues ``Lambda_a`` (``>= 0``).
    input_grid : tuple of int
        The spatial sizes of ``A``'s input.
    dtype : numpy.dtype
        ``A``'s dtype.
    """

    scale: complex
    bases: tuple
    eigenvalues: tuple
    input_grid: tuple
    dtype: np.dtype

    def normal_eigenvalues(self) -> np.ndarray:
        """The eigenvalues of ``A^H A`` on the input grid (an outer product)."""
        return abs(self.scale) ** 2 * _outer(self.eigenvalues)

    def inverse_eigenvalues(self, damp: float, *, pseudo: bool = False) -> np.ndarray:
        """``1/(lambda + damp^2)``; with ``pseudo`` and ``damp == 0``, 0 on the null space."""
        from linop.linalg._precond import inverse_eigenvalues

        lam = self.normal_eigenvalues()
        if pseudo and damp == 0:
            cut = lam.size * np.finfo(self.dtype).eps * float(lam.max(initial=0))
            return np.where(lam > cut, 1 / np.where(lam > cut, lam, 1), 0)
        return inverse_eigenvalues(lam, damp, self.dtype)

    def apply(self, x: np.ndarray, inverse_eigenvalues: np.ndarray) -> np.ndarray:
        """``(⊗ V_a) diag(inverse_eigenvalues) (⊗ V_a)^H x`` for ``x`` of shape (N_in, k)."""
        k = x.shape[1]
        y = x.reshape(self.input_grid + (k,))
        for a, v in enumerate(self.bases):
            y = _along(np.conj(v.T), y, a)
        y = y * inverse_eigenvalues[..., None]
        for a, v in enumerate(self.bases):
            y = _along(v, y, a)
        return y.reshape(-1, k)


def kronecker_normal(A, *, approximate: bool = False) -> KroneckerNormal | None:
    """The `KroneckerNormal` of a single-channel convolution with a separable kernel, or None.

    ``A`` is a convolution, a transposed convolution or a view of one (any
    padding mode, stride, dilation). None when the operator is of another
    kind, has several channels, a non-separable kernel, or an axis longer
    than `KRONECKER_MAX_SIZE`. Axes with the same one-dimensional operator
    share one eigendecomposition. With ``approximate``, any kernel: the
    decomposition of the operator of its rank-one approximation, with the
    same padding (a Kronecker-product model of ``A``, for preconditioning).
    """
    form = conv_form(A)
    if form is None or form.weight.shape[:2] != (1, 1):
        return None
    g = form.geometry
    if max(g.input_size) > KRONECKER_MAX_SIZE or max(g.output_size) > KRONECKER_MAX_SIZE:
        return None
    factors = separable_factors(form.weight[0, 0], np.inf if approximate else None)
    if factors is None:
        return None
    scale, vectors = factors
    complex_ = np.iscomplexobj(form.weight)
    itemsize = 16 if complex_ else 8
    check_nbytes(sum(4 * n * n for n in g.input_size + g.output_size) * itemsize,
                 f"the per-axis eigendecompositions of this separable {form.name}")
    bases, eigenvalues, done = [], [], {}
    for a, u in enumerate(vectors):
        u = u.astype(np.complex128 if complex_ else np.float64)
        key = (u.tobytes(), g.input_size[a], g.stride[a], g.padding[a], g.dilation[a])
        if key not in done:
            matrix = Conv1d(u, (g.input_size[a],), stride=g.stride[a], padding=(g.padding[a],),
                            dilation=g.dilation[a], padding_mode=g.padding_mode,
                            method="toeplitz").tocsr().toarray()
            if form.adjoint:  # A_a^H: its normal matrix is A_a A_a^H
                gram = matrix @ np.conj(matrix.T)
            else:
                gram = np.conj(matrix.T) @ matrix
            lam, v = np.linalg.eigh(gram)
            done[key] = (v, np.maximum(lam, 0))
        bases.append(done[key][0])
        eigenvalues.append(done[key][1])
    return KroneckerNormal(scale, tuple(bases), tuple(eigenvalues),
                           tuple(g.output_size if form.adjoint else g.input_size),
                           np.dtype(A.dtype))
