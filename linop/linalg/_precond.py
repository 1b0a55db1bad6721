r"""Preconditioners for the normal equations of convolutions.

`preconditioner` (``A``, ``damp``) returns a symmetric positive definite
`Preconditioner` ``M`` approximating ``(A^H A + damp^2 I)^{-1}``, usable as
``M=`` in `scipy.sparse.linalg.cg` or `~scipy.sparse.linalg.minres`. Every
form is ``M = W^H \Lambda^{-1} W`` with ``W`` an invertible transform
(orthogonal, times a positive diagonal for DCT-I) and ``\Lambda`` a positive
diagonal, or positive definite blocks per frequency: symmetric positive
definite by construction, whatever the operator.

The forms, and when ``kind="auto"`` chooses them (measured on a 512x512
image, 15x15 Gaussian and 5x5 motion blur, ``damp^2 = 10^{-3}``, CG to
``rtol = 10^{-6}``; see the user guide):

``"exact"``
    Block-circulant convolutions (circular padding of total
    ``dilation*(k-1)``, stride dividing the size; any channels and groups):
    ``U_in^H (B^H B + damp^2)^{-1} U_in`` per (coarse) frequency, and
    products of block-circulant convolutions (``A.H @ A``, a strided
    convolution after a blur), and
    single-channel convolutions with a separable kernel (any padding mode,
    stride, dilation): the per-axis eigendecompositions of ``A_a^H A_a``.
    Exact: CG converges in one step.
``"dct1"``
    ``reflect`` padding with a kernel symmetric about its centre (on every
    axis), stride 1, centred padding. PyTorch's reflect pad is the
    whole-sample symmetric extension, so ``A = D^{-1} Q^T \Lambda Q D`` with
    ``Q`` the orthonormal DCT-I, ``\Lambda`` the kernel's cosine symbol at
    ``\pi j/(n-1)`` and ``D`` the diagonal with ``1/\sqrt 2`` at both ends of
    every axis; then ``A^H A + \delta^2 = D (C D^{-2} C + \delta^2 D^{-2}) D``
    with ``C = Q^T \Lambda Q``, and ``D^{-2} = I`` up to the boundary, which
    gives ``M = D^{-1} Q^T (\Lambda^2 + \delta^2)^{-1} Q D^{-1}``. Measured:
    CG 109 -> 6 iterations.
``"dct2"``
    ``zeros`` padding with a symmetric kernel (stride 1, centred padding):
    ``M = Q^T (\Lambda^2 + \delta^2)^{-1} Q`` with the orthonormal DCT-II and
    the symbol at ``\pi j/n``. Measured: 109 -> 21 iterations.
``"circulant"``
    The exact form of the circular convolution with the same kernel (a
    Strang-type circulant preconditioner); for ``zeros`` padding with a
    non-symmetric kernel (one channel, stride 1: measured on motion blur,
    51 -> 32 iterations). On
    reflect padding it doubles CG's iterations, so ``auto`` never takes it there.
``"kronecker"``
    ``replicate`` padding with a symmetric single-channel kernel close to
    separable (rank-one relative error at most `KRONECKER_MAX_ERROR`): the
    exact inverse for the rank-one approximation of the kernel, with the same
    replicate padding (per-axis eigendecompositions). Measured: a sum of two
    Gaussians 116 -> 8 iterations.
``"none"``
    The identity, where no form is known to help: ``replicate`` padding with
    a kernel far from separable (DCT-II: 205 iterations and the reflect form
    576 against CG's 112; the Kronecker model of a disk 50 against 129 but
    at CG's cost), and non-symmetric kernels with reflect or replicate
    padding (every form measured was slower than CG). ``reason`` says why.

Multi-channel convolutions: the DCT forms take one ``C_in x C_in`` block
per frequency, ``(K(\omega)^T K(\omega) + \delta^2 I)^{-1}`` (block diagonal
over groups), where ``K(\omega)`` is the ``C_out x C_in`` cosine symbol.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from linop._base import ShapedLinearOperator
from linop._memory import check_nbytes
from linop._threads import num_threads
from linop._validation import ParameterTypeError, ParameterValueError, as_choice
from linop.linalg._kronecker import (
    KRONECKER_MAX_ERROR,
    KRONECKER_MAX_SIZE,
    KroneckerNormal,
    kronecker_normal,
    rank_one_error,
    separable_factors,
)
from linop.linalg._product import product_symbol
from linop.linalg._symbol import (
    FrequencyOperator,
    circulant_failure,
    circulant_symbol,
    conv_form,
)

__all__ = ["PRECONDITIONER_KINDS", "Preconditioner", "preconditioner", "structure"]

PRECONDITIONER_KINDS = ("auto", "exact", "dct1", "dct2", "circulant", "kronecker", "none")


# -- the operators ---------------------------------------------------------------------------
class Preconditioner(ShapedLinearOperator):
    """A symmetric positive definite approximation of ``(A^H A + damp^2 I)^{-1}``.

    Built by `preconditioner`; a shaped operator on ``A``'s input space
    (``input_shape == output_shape == A.input_shape``), its own adjoint.

    Attributes
    ----------
    kind : str
        ``"exact"``, ``"dct1"``, ``"dct2"``, ``"circulant"``, ``"kronecker"`` or ``"none"``.
    exact : bool
        ``M`` is exactly ``(A^H A + damp^2 I)^{-1}`` (up to rounding).
    form : str
        What the operator is built from, e.g. ``"block-circulant"``,
        ``"kronecker"``, ``"DCT-I"``, ``"identity"``.
    damp : float
    reason : str
        Why this kind (for ``"none"``: why no preconditioner is used).
    """

    kind = "none"
    form = "identity"

    def __init__(self, shape, dtype, damp: float, reason: str, exact: bool = False):
        super().__init__(shape, shape, dtype)
        self.damp = float(damp)
        self.reason = reason
        self.exact = bool(exact)

    def _apply_adjoint_cols(self, y):
        return self._apply_cols(y)

    def _adjoint(self):
        return self

    def _transpose(self):
        if np.dtype(self.dtype).kind == "f":
            return self
        return super()._transpose()

    def _apply_cols(self, x):  # the identity
        return np.array(x, copy=True)

    def __repr__(self) -> str:
        return (f"<Preconditioner {self.kind!r} ({self.form}) on {self.input_shape}, "
                f"damp={self.damp:g}, dtype={self.dtype}>")


class _FrequencyPreconditioner(Preconditioner):
    """``U_in^H (B^H B + damp^2)^{-1} U_in`` of a block-circulant operator (or a copy)."""

    form = "block-circulant"

    def __init__(self, A, symbol, damp, kind, reason, exact):
        super().__init__(tuple(A.input_shape), A.dtype, damp, reason, exact)
        self.kind = kind
        B = np.asarray(symbol.blocks, dtype=np.complex128)
        lam, V = np.linalg.eigh(np.conj(B.swapaxes(-1, -2)) @ B)
        inverse = (V * inverse_eigenvalues(lam, damp, A.dtype)[..., None, :]) @ np.conj(
            V.swapaxes(-1, -2))
        self.operator = FrequencyOperator(symbol, inverse, domain="input", codomain="input")

    def _apply_cols(self, x):
        return self.operator._matmat(x)


class _KroneckerPreconditioner(Preconditioner):
    """``(⊗ V_a) (|c|^2 lambda + damp^2)^{-1} (⊗ V_a)^H`` of a separable convolution.

    Exact for a separable kernel; for any other, the same of its rank-one
    approximation (``kind = "kronecker"``).
    """

    form = "kronecker"

    def __init__(self, A, normal: KroneckerNormal, damp, reason, exact=True):
        super().__init__(tuple(A.input_shape), A.dtype, damp, reason, exact=exact)
        self.kind = "exact" if exact else "kronecker"
        self.normal = normal
        self.inverse_eigenvalues = normal.inverse_eigenvalues(damp).astype(self.dtype)

    def _apply_cols(self, x):
        return self.normal.apply(x, self.inverse_eigenvalues)


class _CosinePreconditioner(Preconditioner):
    """``W^H blockdiag((K^T K + damp^2)^{-1}) W`` with ``W`` the DCT-I (weighted) or DCT-II."""

    def __init__(self, A, form, dct_type: int, damp, reason):
        super().__init__(tuple(A.input_shape), A.dtype, damp, reason)
        self.kind = f"dct{dct_type}"
        self.form = "DCT-I" if dct_type == 1 else "DCT-II"
        self.dct_type = dct_type
        g = form.geometry
        self.grid = tuple(g.input_size)
        self.groups = form.groups
        self.channels = form.weight.shape[1] * form.groups
        # DCT-I needs two points; an axis of one point is left alone (its symbol is at 0)
        self.axes = tuple(a for a, n in enumerate(self.grid) if n > 1 or dct_type == 2)
        self.inverse = _cosine_inverse_blocks(form, dct_type, damp, A.dtype)
        if dct_type == 1:
            weights = np.ones(self.grid)
            for a, n in enumerate(self.grid):
                if n > 1:
                    edge = np.ones(n)
                    edge[[0, -1]] = math.sqrt(2)
                    shape = [1] * len(self.grid)
                    shape[a] = n
                    weights = weights * edge.reshape(shape)
            self.weights = weights.astype(A.dtype)  # D^{-1}
        else:
            self.weights = None

    def _apply_cols(self, x):
        k = x.shape[1]
        G, cg = self.groups, self.channels // self.groups
        z = x.reshape((G, cg) + self.grid + (k,))
        if self.weights is not None:
            z = z * self.weights[..., None]
        axes = tuple(2 + a for a in self.axes)
        kw = dict(type=self.dct_type, norm="ortho", axes=axes, workers=num_threads())
        z = scipy.fft.dctn(z, **kw)
        if cg == 1:
            z = z * self.inverse.reshape((1, 1) + self.grid + (1,))
        else:
            F = math.prod(self.grid)
            moved = np.moveaxis(z.reshape(G, cg, F, k), 2, 0)  # (F, G, cg, k)
            moved = self.inverse @ moved
            z = np.moveaxis(moved, 0, 2).reshape((G, cg) + self.grid + (k,))
        z = scipy.fft.idctn(z, **kw)
        if self.weights is not None:
            z = z * self.weights[..., None]
        return z.reshape(-1, k)


def _cosine_inverse_blocks(form, dct_type, damp, dtype):
    """``(K^T K + damp^2)^{-1}`` per DCT frequency: ``grid`` (one channel) or (F, G, cg, cg)."""
    g = form.geometry
    w = np.asarray(form.weight, dtype=np.float64)
    c_out, cg = w.shape[:2]
    groups = form.groups
    cog = c_out // groups
    d = g.ndim
    F = math.prod(g.input_size)
    check_nbytes(8 * F * (c_out * cg + 3 * groups * cg * cg),
                 f"the cosine symbol of this {form.name} ({F} frequencies of {c_out} x "
                 f"{cg * groups})")
    values = np.moveaxis(w.reshape((c_out * cg,) + g.kernel_size), 0, -1)
    for a in reversed(range(d)):
        n = g.input_size[a]
        period = (n - 1 if n > 1 else 1) if dct_type == 1 else n
        omega = np.pi * np.arange(n) / period
        offset = np.arange(g.kernel_size[a]) * g.dilation[a] - g.padding[a][0]
        values = np.tensordot(np.cos(np.outer(omega, offset)), values, axes=([1], [d - 1]))
    K = values.reshape(F, groups, cog, cg)
    gram = np.einsum("fgoi,fgoj->fgij", K, K)
    if cg == 1:
        return inverse_eigenvalues(gram.reshape(g.input_size), damp, dtype).astype(dtype)
    lam, V = np.linalg.eigh(gram)
    inverse = (V * inverse_eigenvalues(lam, damp, dtype)[..., None, :]) @ V.swapaxes(-1, -2)
    return ((inverse + inverse.swapaxes(-1, -2)) / 2).astype(dtype)


def inverse_eigenvalues(lam: np.ndarray, damp: float, dtype) -> np.ndarray:
    """``1 / (lam + damp^2)``, positive and bounded: ``1 / max(lam)`` where that is ~ 0.

    ``lam >= 0`` are the eigenvalues of ``A^H A`` (or of its model); where
    ``lam + damp^2`` is below ``size * eps * max(lam)`` (the null space of a
    singular, undamped problem, which CG from ``x0 = 0`` never enters) the
    inverse is replaced by ``1 / max(lam)``, so that the preconditioner stays
    positive definite and well conditioned.
    """
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0)
    top = float(lam.max(initial=0)) + damp**2
    if top == 0:
        return np.ones_like(lam)
    total = lam + damp**2
    cut = lam.size * np.finfo(dtype).eps * top
    return np.where(total > cut, 1 / np.where(total > cut, total, 1), 1 / top)


# -- which form applies --------------------------------------------------------------------
def _symmetric_kernel(form) -> bool:
    """Symmetric about the centre on every axis, to a few epsilons of the largest tap."""
    w = form.weight
    tol = 8 * np.finfo(w.dtype).eps * float(np.abs(w).max(initial=0))
    return all(np.abs(w - np.flip(w, axis=2 + a)).max(initial=0) <= tol
               for a in range(form.geometry.ndim))


def _cosine_failure(form, A) -> str | None:
    """Why the DCT forms do not apply (a sentence), or None."""
    if form is None:
        return f"{type(A).__name__} is not a convolution"
    g = form.geometry
    if form.adjoint:
        return "it is a transposed convolution (or the adjoint of one)"
    if np.iscomplexobj(form.weight):
        return "its weight is complex"
    if any(s != 1 for s in g.stride):
        return f"its stride is {g.stride}, not 1"
    if g.output_size != g.input_size or any(lo != hi for lo, hi in g.padding):
        return f"its padding {g.padding} is not centred with output size = input size"
    if not _symmetric_kernel(form):
        return "its kernel is not symmetric about its centre on every axis"
    return None


def _circular_copy(A, form):
    """The circular convolution with ``A``'s kernel, stride and padding totals, or None."""
    if form is None or form.adjoint:
        return None
    from linop.conv import Conv1d, Conv2d, Conv3d

    g = form.geometry
    cls = (Conv1d, Conv2d, Conv3d)[g.ndim - 1]
    pads = tuple((r // 2, r - r // 2) for r in g.reach)
    try:
        copy = cls(form.weight, (form.weight.shape[1] * form.groups,) + tuple(g.input_size),
                   stride=g.stride, padding=pads, dilation=g.dilation, groups=form.groups,
                   padding_mode="circular")
    except ValueError:
        return None
    if circulant_failure(conv_form(copy), copy) is not None:
        return None
    return copy


def structure(A) -> tuple[str, str]:
    """``(kind, reason)``: the preconditioner ``kind="auto"`` takes for ``A``, and why."""
    form = conv_form(A)
    failure = circulant_failure(form, A)
    if failure is None:
        return "exact", "block-circulant: exact per (coarse) frequency"
    if form is None:
        if product_symbol(A) is not None:
            return "exact", "a product of block-circulant convolutions: exact per frequency"
        return "none", (f"{type(A).__name__} is not a convolution: no preconditioner is known "
                        f"for it, CG runs unpreconditioned")
    if kronecker_applies(form):
        return "exact", "single channel with a separable kernel: exact per-axis eigendecompositions"
    mode = form.geometry.padding_mode
    cosine = _cosine_failure(form, A)
    if cosine is None and mode == "reflect":
        return "dct1", "reflect padding, symmetric kernel: DCT-I (whole-sample symmetric)"
    if cosine is None and mode == "zeros":
        return "dct2", "zero padding, symmetric kernel: DCT-II"
    single = form.weight.shape[:2] == (1, 1)
    stride_1 = all(s == 1 for s in form.geometry.stride)
    if mode == "zeros" and single and stride_1 and _circular_copy(A, form) is not None:
        # measured on one channel, stride 1 (motion blur 51 -> 32 iterations); elsewhere
        # unmeasured, so not taken by auto
        return "circulant", "zero padding, non-symmetric kernel: circulant (Strang) form"
    if (cosine is None and mode == "replicate" and single
            and max(form.geometry.input_size) <= KRONECKER_MAX_SIZE
            and rank_one_error(form.weight[0, 0]) <= KRONECKER_MAX_ERROR):
        return "kronecker", ("replicate padding, symmetric kernel close to separable: the "
                             "Kronecker model of its rank-one approximation")
    why = cosine or "no form for its padding is known to beat CG"
    if cosine is None and mode == "replicate":
        why = ("replicate padding with a kernel far from separable (or several channels): "
               "the DCT, circulant and Kronecker forms measured no faster than "
               "unpreconditioned CG")
    return "none", f"no preconditioner known to help ({why}): CG runs unpreconditioned"


def kronecker_applies(form) -> bool:
    """A single-channel convolution form with a separable kernel (cheap test, no SVD of A)."""
    g = form.geometry
    return (form.weight.shape[:2] == (1, 1)
            and max(g.input_size + g.output_size) <= KRONECKER_MAX_SIZE
            and separable_factors(form.weight[0, 0]) is not None)


def _as_damp(damp) -> float:
    try:
        value = float(damp)
    except (TypeError, ValueError):
        raise ParameterTypeError("damp", f"damp must be a real number, got {damp!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise ParameterValueError("damp", f"damp must be finite and >= 0, got {damp!r}")
    return value


def preconditioner(A, damp: float = 0.0, *, kind: str = "auto") -> Preconditioner:
    r"""A symmetric positive definite preconditioner for ``A^H A + damp^2 I``.

    Parameters
    ----------
    A : linop convolution (or its ``.T``/``.H``), or any LinearOperator
        The operator of the least-squares problem ``min ||A x - b||^2 +
        damp^2 ||x||^2``.
    damp : float
        The Tikhonov damping ``\delta >= 0``.
    kind : {"auto", "exact", "dct1", "dct2", "circulant", "kronecker", "none"}
        The form (see the module's description); ``"auto"`` takes the one
        measured best for ``A``'s structure, and ``"none"`` (the identity)
        where none is known to help.

    Returns
    -------
    Preconditioner
        ``M`` on ``A``'s input space, with ``kind``, ``form``, ``exact`` and
        ``reason``. ``M`` approximates ``(A^H A + damp^2 I)^{-1}``; where
        ``damp == 0`` and ``A^H A`` is singular, the exact forms add the
        smallest shift that keeps ``M`` positive definite (a few machine
        epsilons of the largest eigenvalue).

    Raises
    ------
    ValueError
        If ``kind`` does not apply to ``A`` (the message says why), or
        ``damp`` is negative.

    Notes
    -----
    Every form is ``W^H \Lambda^{-1} W`` with ``W`` invertible (an
    orthogonal or unitary transform, times a positive diagonal for DCT-I)
    and ``\Lambda`` positive definite (a positive diagonal, or Hermitian
    positive definite blocks ``K^H K + \delta^2 I`` per frequency): for any
    ``v \ne 0``, ``v^H M v = (W v)^H \Lambda^{-1} (W v) > 0``. So ``M`` is
    symmetric positive definite by construction, as preconditioned CG
    requires (a similarity transform ``Q^T \Lambda Q D`` is not).

    Examples
    --------
    Deblurring with reflect padding: the DCT-I form takes CG from 30 to a
    handful of iterations here.

    >>> import numpy as np, linop
    >>> from scipy.sparse.linalg import cg
    >>> g = np.exp(-0.5 * (np.arange(7) - 3) ** 2); w = np.outer(g, g) / g.sum() ** 2
    >>> w[3, 3] += 0.01                                   # not separable
    >>> A = linop.Conv2d(w, (32, 32), padding="same", padding_mode="reflect")
    >>> M = linop.linalg.preconditioner(A, damp=0.03)
    >>> M.kind, M.exact
    ('dct1', False)
    >>> N = A.H @ A + 0.03**2 * linop.Conv2d(np.ones((1, 1)), (32, 32))
    >>> b = A @ np.random.default_rng(0).standard_normal(A.shape[1])
    >>> counts = []
    >>> for m in (None, M):
    ...     n = [0]
    ...     x, info = cg(N, A.H @ b, M=m, rtol=1e-6, callback=lambda xk: n.__setitem__(0, n[0] + 1))
    ...     counts.append(n[0])
    >>> counts[1] < counts[0] // 3
    True
    """
    damp = _as_damp(damp)
    kind = as_choice(kind, "kind", PRECONDITIONER_KINDS)
    if not hasattr(A, "shape") or not hasattr(A, "dtype"):
        raise ParameterTypeError("A", f"A must be a LinearOperator, got {type(A).__name__}")
    shape = tuple(getattr(A, "input_shape", (A.shape[1],)))
    dtype = np.result_type(A.dtype, np.float32)
    reason = None
    if kind == "auto":
        kind, reason = structure(A)
    form = conv_form(A)
    if kind == "none":
        return Preconditioner(shape, dtype, damp, reason or "requested: the identity")
    if form is None:
        symbol = product_symbol(A) if kind == "exact" else None
        if symbol is not None:
            return _FrequencyPreconditioner(A, symbol, damp, "exact",
                                            reason or "block-circulant product", True)
        raise ParameterValueError(
            "kind", f"kind={kind!r} needs a linop convolution (or a view of one"
            f"{', or a product of block-circulant ones' if kind == 'exact' else ''}), got "
            f"{type(A).__name__}")
    if kind == "exact":
        failure = circulant_failure(form, A)
        if failure is None:
            return _FrequencyPreconditioner(A, circulant_symbol(A), damp, "exact",
                                            reason or "block-circulant", True)
        normal = kronecker_normal(A)
        if normal is None:
            raise ParameterValueError(
                "kind", f"kind='exact' needs a block-circulant convolution ({failure}) or a "
                f"single-channel convolution with a separable kernel")
        return _KroneckerPreconditioner(A, normal, damp, reason or "separable kernel")
    if kind == "kronecker":
        normal = kronecker_normal(A, approximate=True)
        if normal is None:
            raise ParameterValueError(
                "kind", f"kind='kronecker' needs a single-channel convolution with at most "
                f"{KRONECKER_MAX_SIZE} samples per axis")
        return _KroneckerPreconditioner(A, normal, damp, reason or "requested", exact=False)
    if kind == "circulant":
        copy = _circular_copy(A, form)
        if copy is None:
            raise ParameterValueError(
                "kind", "kind='circulant' needs a convolution whose circular version is "
                "block-circulant (stride dividing the size, padding <= size)")
        return _FrequencyPreconditioner(A, circulant_symbol(copy), damp, "circulant",
                                        reason or "requested", False)
    failure = _cosine_failure(form, A)
    if failure is not None:
        raise ParameterValueError("kind", f"kind={kind!r} does not apply: {failure}")
    return _CosinePreconditioner(A, form, 1 if kind == "dct1" else 2, damp,
                                 reason or "requested")
