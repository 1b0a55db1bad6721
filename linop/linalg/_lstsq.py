r"""Damped least squares ``min ||A x - b||^2 + damp^2 ||x||^2`` for convolutions.

`lstsq` solves in closed form where the operator's structure allows it,
and by preconditioned conjugate gradients on the normal equations
everywhere else:

- block-circulant convolutions (circular padding, stride dividing the size;
  any channels and groups), and products of them (``A.H @ A``, a strided
  convolution after blurs): one small dense solve per (coarse) frequency,
  ``X(\mu) = B^H (B B^H + \delta^2)^{-1} Y(\mu)`` through the SVD of the
  ``m x n`` block (the ``s^d`` aliased frequencies of a stride are its
  columns: this is the per-coarse-frequency Woodbury form of
  super-resolution);
- single-channel convolutions with a separable kernel, any padding mode:
  the per-axis eigendecompositions of ``A_a^H A_a`` (`linop.linalg._kronecker`);
- everything else: CG on ``(A^H A + \delta^2 I) x = A^H b`` in its CGLS
  form (two applications of ``A`` per iteration, the residuals updated
  without cancellation), preconditioned by `preconditioner`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.fft
from scipy.optimize import OptimizeResult
from scipy.sparse.linalg import LinearOperator

from linop._memory import MatrixTooLargeError, check_nbytes
from linop._threads import num_threads
from linop._validation import ParameterTypeError, ParameterValueError
from linop.linalg._kronecker import kronecker_normal
from linop.linalg._precond import Preconditioner, _as_damp, preconditioner
from linop.linalg._product import product_symbol
from linop.linalg._symbol import circulant_failure, circulant_symbol, conv_blocks, conv_form

__all__ = ["LstsqResult", "lstsq"]


class LstsqResult(OptimizeResult):
    """The result of `lstsq`, a `scipy.optimize.OptimizeResult`.

    Attributes
    ----------
    x : ndarray
        The solution, in ``A``'s input shape.
    success : bool
        The relative normal-equation residual reached ``rtol`` (always True
        for an exact solve).
    status : int
        0 converged (or exact), 1 ``maxiter`` reached.
    message : str
        What was done, and why (e.g. why no preconditioner was used).
    method : str
        ``"exact"``, ``"cg"`` (unpreconditioned) or ``"pcg+<kind>"`` with the
        preconditioner's kind (``dct1``, ``dct2``, ``circulant``, ``exact``,
        ``user``).
    form : str
        For ``"exact"``: ``"block-circulant"`` or ``"kronecker"``; else the
        preconditioner's form (``"identity"`` for none).
    iterations : int
        CG iterations (0 for an exact solve); each costs one application of
        ``A`` and one of ``A^H`` (and one of the preconditioner).
    residuals : ndarray
        ``||A^H (b - A x_k) - damp^2 x_k|| / ||A^H b||`` for ``k = 0 ..
        iterations`` (for an exact solve: the final one, measured).
    residual_norm : float
        ``||b - A x||`` at the solution.
    damp : float
    preconditioner : Preconditioner or LinearOperator or None
    """


def _as_rtol(rtol) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
        raise ParameterTypeError("rtol", f"rtol must be a real number, got {rtol!r}")
    if not (0 < rtol < 1):
        raise ParameterValueError("rtol", f"rtol must be in (0, 1), got {rtol!r}")
    return float(rtol)


def _as_maxiter(maxiter, n: int) -> int:
    if maxiter is None:
        return n
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral):
        raise ParameterTypeError("maxiter", f"maxiter must be an int or None, got {maxiter!r}")
    if maxiter < 0:
        raise ParameterValueError("maxiter", f"maxiter must be >= 0, got {maxiter!r}")
    return int(maxiter)


def _flat(value, name: str, shape, size: int, dtype) -> np.ndarray:
    a = np.asarray(value)
    if a.shape not in (tuple(shape), (size,)):
        raise ParameterValueError(
            name, f"{name} must have shape {tuple(shape)} or ({size},), got {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ParameterTypeError(name, f"{name} must be numeric, got dtype {a.dtype}")
    return np.ascontiguousarray(a.reshape(size), dtype=dtype)


def _norm(v) -> float:
    return float(np.linalg.norm(v))


def _dot(u, v) -> float:
    return float(np.vdot(u, v).real)


def lstsq(A, b, damp: float = 0.0, *, rtol: float = 1e-6, maxiter: int | None = None,
          x0=None, preconditioner="auto") -> LstsqResult:
    r"""Solve ``min ||A x - b||^2 + damp^2 ||x||^2``: exactly where possible, else by PCG.

    Parameters
    ----------
    A : linop operator or scipy.sparse.linalg.LinearOperator
        The operator (a convolution, a transposed convolution, a view of one,
        a product, or any LinearOperator).
    b : array_like
        The data, of shape ``A.output_shape`` or flat.
    damp : float
        Tikhonov damping ``\delta >= 0``. With ``damp = 0`` and a singular
        ``A``, the exact solves return the minimum-norm least-squares solution
        (NumPy's ``lstsq`` cut-off, relative to the largest singular value).
    rtol : float
        CG stops when ``||A^H (b - A x) - damp^2 x|| <= rtol ||A^H b||`` (the
        criterion of `scipy.sparse.linalg.cg` on the normal equations).
    maxiter : int, optional
        At most this many iterations (default: the number of unknowns).
    x0 : array_like, optional
        Starting point of CG (ignored by the exact solves).
    preconditioner : "auto", str, LinearOperator or None
        ``"auto"``: an exact solve for block-circulant convolutions and for
        single-channel separable kernels, else CG with
        ``linop.linalg.preconditioner(A, damp)`` (none where no form is known
        to help; ``message`` says so). A kind of `preconditioner`
        (``"exact"``, ``"dct1"``, ``"dct2"``, ``"circulant"``) runs CG with that
        form; ``None`` or ``"none"`` runs plain CG; a LinearOperator is used as
        given (it must be symmetric positive definite).

    Returns
    -------
    LstsqResult
        ``x`` (in ``A``'s input shape), ``method``, ``iterations``,
        ``residuals``, ``residual_norm``, ``success``, ``message``.

    Raises
    ------
    ValueError, TypeError
        For a ``b``, ``x0``, ``damp``, ``rtol``, ``maxiter`` or
        ``preconditioner`` that does not fit (the message names it).
    MatrixTooLargeError
        If the exact solve's blocks would exceed `linop.get_memory_limit`.

    Notes
    -----
    The iteration is CG on the normal equations in its CGLS form: with
    ``r = b - A x`` and ``s = A^H r - \delta^2 x``, each step applies ``A``
    to the search direction and ``A^H`` to the updated ``r``: two
    applications of ``A`` plus one of the preconditioner, and a handful of
    vectors of memory. Dot products and vectors keep the dtype of ``A`` and
    ``b`` (float32 stays float32).

    Examples
    --------
    A circular blur is solved exactly, in one pass:

    >>> import numpy as np, linop
    >>> rng = np.random.default_rng(0)
    >>> w = rng.random((1, 1, 5, 5))
    >>> A = linop.Conv2d(w, (1, 32, 32), padding="same", padding_mode="circular")
    >>> x_true = rng.standard_normal((1, 32, 32))
    >>> res = linop.linalg.lstsq(A, A.apply(x_true), damp=1e-3)
    >>> res.method, res.iterations, res.x.shape
    ('exact', 0, (1, 32, 32))
    >>> M = A.tocsr().toarray()
    >>> ref = np.linalg.solve(M.T @ M + 1e-6 * np.eye(1024), M.T @ A @ x_true.ravel())
    >>> bool(np.allclose(res.x.ravel(), ref))
    True

    Reflect padding with a symmetric, non-separable kernel: CG with the DCT-I
    preconditioner.

    >>> g = np.exp(-0.5 * (np.arange(7) - 3) ** 2); k = np.outer(g, g); k[3, 3] += 0.1
    >>> B = linop.Conv2d(k / k.sum(), (48, 48), padding="same", padding_mode="reflect")
    >>> y = B @ rng.standard_normal(48 * 48)
    >>> fast = linop.linalg.lstsq(B, y, damp=0.03)
    >>> plain = linop.linalg.lstsq(B, y, damp=0.03, preconditioner=None)
    >>> fast.method, plain.method, fast.iterations < plain.iterations / 3
    ('pcg+dct1', 'cg', True)
    """
    if not isinstance(A, LinearOperator):
        raise ParameterTypeError("A", f"A must be a LinearOperator, got {type(A).__name__}")
    damp = _as_damp(damp)
    rtol = _as_rtol(rtol)
    n_out, n_in = A.shape
    in_shape = tuple(getattr(A, "input_shape", (n_in,)))
    out_shape = tuple(getattr(A, "output_shape", (n_out,)))
    b_arr = np.asarray(b)
    dtype = np.result_type(A.dtype, b_arr.dtype, np.float32)
    b = _flat(b_arr, "b", out_shape, n_out, dtype)
    maxiter = _as_maxiter(maxiter, n_in)
    x0 = None if x0 is None else _flat(x0, "x0", in_shape, n_in, dtype)

    M, message = None, ""
    if isinstance(preconditioner, str):
        if preconditioner == "auto":
            try:
                exact = _exact(A, b, damp, dtype)
            except MatrixTooLargeError as error:  # too big to solve exactly: iterate
                exact, message = None, f"no exact solve ({error})"
            if exact is not None:
                x, form, measured = exact
                return _finish(A, b, x, damp, dtype, in_shape, "exact", form, 0, None,
                               f"exact solve ({form})", True, *measured)
            try:
                M = _make_preconditioner(A, damp)
            except MatrixTooLargeError as error:
                M = None
                message = "; ".join(filter(None, (
                    message, f"no preconditioner ({error}): unpreconditioned CG")))
        elif preconditioner == "none":
            message = "preconditioner='none': unpreconditioned CG"
        else:
            M = _make_preconditioner(A, damp, preconditioner)
    elif preconditioner is None:
        message = "preconditioner=None: unpreconditioned CG"
    elif isinstance(preconditioner, LinearOperator):
        if preconditioner.shape != (n_in, n_in):
            raise ParameterValueError(
                "preconditioner", f"preconditioner must be {n_in} x {n_in} (A's input space), "
                f"got shape {preconditioner.shape}")
        M = preconditioner
    else:
        raise ParameterTypeError(
            "preconditioner", f"preconditioner must be 'auto', a kind, a LinearOperator or "
            f"None, got {type(preconditioner).__name__}")
    if isinstance(M, Preconditioner):
        kind = M.kind
        message = "; ".join(filter(None, (message, M.reason)))
        if kind == "none":
            M = None
    elif M is not None:
        kind, message = "user", "the preconditioner given"
    method = "cg" if M is None else f"pcg+{kind}"
    form = "identity" if M is None else getattr(M, "form", "user")
    x, iterations, history, converged, r = _cgls(A, b, damp, rtol, maxiter, x0, M, dtype)
    status = "converged" if converged else f"stopped after maxiter={maxiter} iterations"
    return _finish(A, b, x, damp, dtype, in_shape, method, form, iterations, M,
                   f"{method}: {status}; {message}", converged, history, _norm(r))


def _make_preconditioner(A, damp, kind="auto"):
    """`preconditioner`, with its refusals naming lstsq's parameter."""
    try:
        return preconditioner(A, damp, kind=kind)
    except ParameterValueError as error:
        raise ParameterValueError("preconditioner", f"preconditioner={kind!r}: {error}") from None


def _finish(A, b, x, damp, dtype, in_shape, method, form, iterations, M, message, success,
            history=None, residual_norm=None):
    """The result; the residuals are measured here (two applications) unless given."""
    x = np.ascontiguousarray(x, dtype=dtype)
    if residual_norm is None:
        r = b - A.matvec(x)
        residual_norm = _norm(r)
        if history is None:
            rhs = _norm(A.rmatvec(b))
            s = A.rmatvec(r) - damp**2 * x
            history = [_norm(s) / rhs if rhs else 0.0]
    return LstsqResult(
        x=x.reshape(in_shape), success=bool(success), status=0 if success else 1,
        message=message, method=method, form=form, iterations=int(iterations),
        residuals=np.asarray(history, dtype=np.float64), residual_norm=float(residual_norm),
        damp=damp, preconditioner=M)


def _cgls(A, b, damp, rtol, maxiter, x0, M, dtype):
    """Preconditioned CG on the normal equations, CGLS form.

    Returns ``(x, iterations, history, converged, r)`` with ``r = b - A x``
    (updated by the recurrence, as CGLS does).
    """
    d2 = damp**2
    if x0 is None:
        x = np.zeros(A.shape[1], dtype=dtype)
        r = b.copy()
    else:
        x = x0.copy()
        r = b - A.matvec(x)
    s = A.rmatvec(r).astype(dtype, copy=False)
    if d2 and x0 is not None:
        s = s - d2 * x
    rhs = _norm(A.rmatvec(b)) if x0 is not None else _norm(s)
    if rhs == 0:
        return np.zeros_like(x), 0, [0.0], True, b
    history = [_norm(s) / rhs]
    if history[0] <= rtol:
        return x, 0, history, True, r
    z = s if M is None else np.asarray(M.matvec(s), dtype=dtype).reshape(-1)
    p = z.copy()
    gamma = _dot(s, z)
    work = np.empty_like(x)          # d2 * x, alpha * p
    s_buf = np.empty_like(x)         # s = A^H r - d2 x
    for it in range(1, maxiter + 1):
        q = np.asarray(A.matvec(p))
        denom = _dot(q, q) + (d2 * _dot(p, p) if d2 else 0.0)
        if denom <= 0 or gamma <= 0:
            return x, it - 1, history, False, r
        alpha = gamma / denom
        x += np.multiply(p, alpha, out=work)
        r -= alpha * q
        s = np.asarray(A.rmatvec(r))
        if d2 or s.dtype != dtype:
            s = np.subtract(s, np.multiply(x, d2, out=work), out=s_buf)
        s_norm2 = _dot(s, s)
        history.append(math.sqrt(s_norm2) / rhs)
        if history[-1] <= rtol:
            return x, it, history, True, r
        if M is None:
            z, gamma_new = s, s_norm2
        else:
            z = np.asarray(M.matvec(s), dtype=dtype).reshape(-1)
            gamma_new = _dot(s, z)
        p *= gamma_new / gamma
        p += z
        gamma = gamma_new
    return x, maxiter, history, False, r


# -- the exact solves ---------------------------------------------------------------------
def _exact(A, b, damp, dtype):
    """``(x, form, (history, residual_norm))`` by a closed form, or None.

    The residuals are measured in the frequency domain for block-circulant
    operators (Parseval: the transforms are unitary), else by `_finish`.
    """
    form = conv_form(A)
    if form is None:
        symbol = product_symbol(A)
        if symbol is None:
            return None
        eps = np.finfo(dtype).eps * max(A.shape)
        x, history, residual_norm = _symbol_solve(symbol, b, damp, dtype, eps, "product")
        return x, "block-circulant product", (history, residual_norm)
    if circulant_failure(form, A) is None:
        x, history, residual_norm = _circulant_solve(A, b, damp, dtype)
        return x, "block-circulant", (history, residual_norm)
    normal = kronecker_normal(A)
    if normal is not None:  # x = (A^H A + damp^2)^{-1} A^H b in the eigenbases
        rhs = A.rmatvec(b).astype(np.result_type(dtype, np.float64)).reshape(-1, 1)
        gain = normal.inverse_eigenvalues(damp, pseudo=True)
        return normal.apply(rhs, gain).reshape(-1), "kronecker", ()
    return None


def _block_solve(B, Y, damp, eps, weights=None):
    """Per block ``X = V diag(s / (s^2 + damp^2)) U^H Y``; the two residual norms.

    ``B`` (F, G, m, n), ``Y`` (F, G, m, 1); ``weights`` (F,) count the
    frequencies each block stands for (half spectra). Returns ``X``, the
    relative normal-equation residual and ``||Y - B X||``: by Parseval those
    of ``x`` and ``b`` (the transforms are unitary).
    """
    m, n = B.shape[-2:]
    BH = np.conj(B.swapaxes(-1, -2))
    if min(m, n) == 1:  # one singular value per block: its norm
        energy = np.sum(B.real**2 + B.imag**2, axis=(-2, -1), keepdims=True)
        keep = energy > eps**2 * float(energy.max(initial=0))
        gain = np.where(keep, 1 / np.where(keep, energy + damp**2, 1), 0)
        X = (BH @ Y) * gain
    else:
        U, s, Vh = np.linalg.svd(B, full_matrices=False)
        keep = s > eps * float(s.max(initial=0))
        gain = np.where(keep, s / np.where(keep, s**2 + damp**2, 1), 0)
        X = np.conj(Vh.swapaxes(-1, -2)) @ (gain[..., None] * (np.conj(U.swapaxes(-1, -2)) @ Y))
    R = Y - B @ X

    def norm(Z):
        sq = np.sum(Z.real**2 + Z.imag**2, axis=(1, 2, 3))
        return math.sqrt(float(sq.sum() if weights is None else sq @ weights))

    rhs = norm(BH @ Y)
    normal = norm(BH @ R - damp**2 * X)
    return X, (normal / rhs if rhs else 0.0), norm(R)


def _circulant_solve(A, b, damp, dtype):
    """``(x, [relative normal residual], ||b - A x||)`` of a block-circulant operator."""
    form = conv_form(A)
    eps = np.finfo(dtype).eps * max(A.shape)
    g = form.geometry
    if (not form.adjoint and all(s == 1 for s in g.stride) and np.dtype(dtype).kind == "f"
            and not np.iscomplexobj(form.weight)):
        return _real_circulant_solve(form, b, damp, dtype, eps)
    return _symbol_solve(circulant_symbol(A), b, damp, dtype, eps, type(A).__name__)


def _symbol_solve(S, b, damp, dtype, eps, name):
    """The per-frequency solve on a `CirculantSymbol` (full spectrum)."""
    F, G, m, n = S.blocks.shape
    check_nbytes(16 * F * G * (m * m + n * n + 2 * (m + n)),
                 f"the per-frequency solves of this {name} ({F * G} blocks of {m} x {n})")
    B = np.asarray(S.blocks, dtype=np.complex128)
    Y = S.to_output_freq(b.reshape(-1, 1)).astype(np.complex128)  # (F, G, m, 1)
    X, normal, residual = _block_solve(B, Y, damp, eps)
    x = S.from_input_freq(X, real=np.dtype(dtype).kind == "f" and not np.iscomplexobj(b))
    return x.reshape(-1), [normal], residual


def _real_circulant_solve(form, b, damp, dtype, eps):
    """The stride-1 real case on the half spectrum (``rfftn``): half the work."""
    g = form.geometry
    blocks, multiplicity = conv_blocks(form, half=True)  # (F', G, cog, cg), C order
    F, G, cog, cg = blocks.shape
    check_nbytes(16 * F * G * (cog * cog + cg * cg + 2 * (cog + cg)) + 32 * b.size,
                 f"the per-frequency solves of this {form.name} ({F * G} blocks of "
                 f"{cog} x {cg})")
    d = g.ndim
    axes = tuple(range(1, d + 1))
    spectrum = scipy.fft.rfftn(b.reshape((G * cog,) + tuple(g.output_size)), axes=axes,
                               norm="ortho", workers=num_threads())
    half = spectrum.shape[1:]
    Y = spectrum.reshape(G, cog, F).transpose(2, 0, 1)[..., None]
    X, normal, residual = _block_solve(np.asarray(blocks, dtype=np.complex128), Y, damp, eps,
                                       multiplicity.astype(np.float64))
    X = np.ascontiguousarray(X[..., 0].transpose(1, 2, 0)).reshape((G * cg,) + half)
    x = scipy.fft.irfftn(X, s=tuple(g.input_size), axes=axes, norm="ortho",
                         workers=num_threads())
    return x.reshape(-1), [normal], residual
