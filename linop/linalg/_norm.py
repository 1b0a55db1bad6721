r"""The 2-norm of an operator: exact, or estimated from below and bounded from above.

`opnorm` returns an `OpnormResult`. Where the matrix is block-circulant the
value is exact (the largest singular value of the blocks). Otherwise the
value is a Lanczos estimate (ARPACK on ``A^H A``), which never exceeds the
norm, and the upper bound comes from the structure:

- a convolution with zero padding, any stride and dilation, is exactly a
  restriction of a *strided circular* convolution on a larger grid
  ``L`` applied to the zero-extended input, so its norm is at most that
  circular convolution's norm, computed exactly from its blocks (the proof is
  in the user guide and in `embedding_grid`);
- with reflect, replicate or circular padding (when not block-circulant) it
  is ``V P``: a padding operator ``P`` (a 0/1 matrix with one entry per
  row, of norm ``sqrt`` of the largest number of copies of one input pixel,
  a product over the axes) and a convolution ``V`` without padding, bounded
  as above;
- products multiply the bounds of their factors, linear combinations add
  ``|c|`` times theirs, ``.T``/``.H``/``.conj()`` keep the bound;
- any other operator with an explicit matrix that fits the memory limit:
  ``sqrt(||A||_1 ||A||_inf)`` (Schur's test); anything else: ``inf``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse.linalg as spla

from linop._base import OperatorView, ProductOperator, SumOperator
from linop._conv.geometry import ConvGeometry
from linop._memory import MatrixTooLargeError
from linop._validation import as_int
from linop.linalg._spectral import as_real, exact_norm
from linop.linalg._symbol import (
    ConvForm,
    FourierSide,
    circulant_failure,
    complex_dtype,
    conv_blocks,
    conv_form,
)

__all__ = ["OpnormResult", "embedding_grid", "norm_bound", "opnorm"]

#: Relative margin added to bounds computed in floating point (times the dtype's eps).
_ROUNDING = 64


@dataclasses.dataclass(frozen=True)
class OpnormResult:
    """The 2-norm of an operator, with certified bounds.

    Attributes
    ----------
    value : float
        The norm: exact when ``exact``, else the Lanczos estimate (never
        more than the norm, up to rounding).
    lower, upper : float
        ``lower <= ||A||_2 <= upper``. ``lower`` is ``value``; ``upper`` is
        a bound that holds for the operator's structure (``inf`` where none
        is known); both equal ``value`` when exact.
    exact : bool
        The value is the largest singular value of the block
        diagonalisation (to the dtype's rounding).
    nit : int
        Applications of ``A^H A`` used by the iteration (0 when exact).
    converged : bool
        The iteration met ``rtol`` (always True when exact).
    bound : str
        How ``upper`` was obtained.
    """

    value: float
    lower: float
    upper: float
    exact: bool
    nit: int
    converged: bool
    bound: str

    @property
    def iterations(self) -> int:
        """``nit``, under a longer name."""
        return self.nit

    @property
    def gap(self) -> float:
        """``upper / lower - 1``: how far the bound may be from the norm."""
        if self.lower == 0:
            return 0.0 if self.upper == 0 else math.inf
        return self.upper / self.lower - 1


# -- upper bounds -------------------------------------------------------------------------
def embedding_grid(geometry: ConvGeometry, axis: int) -> int:
    r"""The size ``L`` of the circular grid that embeds a zero-padded convolution's axis.

    With input size ``n``, low padding ``p``, stride ``s``, reach ``r =
    d(k-1)`` and ``n_out`` outputs, output ``o`` reads input indices ``o s +
    t d - p`` (``t`` the tap), all in ``[-p, R - p)`` with ``R = (n_out - 1)s
    + r + 1``. Place the input at the indices ``0..n-1`` of a circular grid
    of size ``L`` (zeros elsewhere). A read at index ``i`` then sees the
    cell ``i mod L``; it sees the right value (the input, or a zero of the
    padding) whenever ``L >= p + n`` (reads below 0 land on cells ``>= n``)
    and ``L >= R - p`` (reads above ``n`` do not wrap); the outputs ``o s``
    are distinct cells when ``L >= (n_out - 1)s + 1``. ``L`` is rounded up to
    a multiple of ``s``. Then ``A = S C E`` with ``E`` the zero extension
    (an isometry), ``C`` the circular convolution with stride ``s`` on the
    grid and ``S`` the selection of ``n_out`` of its outputs (norm 1), so
    ``||A|| <= ||C||``.
    """
    n, s, (lo, _), r = (geometry.input_size[axis], geometry.stride[axis],
                        geometry.padding[axis], geometry.reach[axis])
    n_out = geometry.output_size[axis]
    reads = (n_out - 1) * s + r + 1
    size = max(lo + n, reads - lo, (n_out - 1) * s + 1)
    return -(-size // s) * s


def _circular_norm(form: ConvForm, grid) -> float:
    """The exact norm of the strided circular convolution of ``form``'s weight on ``grid``."""
    g = form.geometry
    geometry = dataclasses.replace(
        g, input_size=tuple(grid), output_size=tuple(L // s for L, s in zip(grid, g.stride)),
        padding=tuple((lo, r - lo) for (lo, _), r in zip(g.padding, g.reach)),
        padding_mode="circular")
    blocks, _ = conv_blocks(dataclasses.replace(form, geometry=geometry),
                            half=form.weight.dtype.kind != "c")
    return float(np.linalg.svd(blocks, compute_uv=False).max()) if blocks.size else 0.0


def _padding_norm(geometry: ConvGeometry) -> float:
    """The norm of the padding operator (reflect, replicate, circular) of a geometry."""
    total = 1.0
    for n, (lo, hi) in zip(geometry.input_size, geometry.padding):
        index = np.arange(-lo, n + hi)
        if geometry.padding_mode == "reflect":
            period = 2 * (n - 1) if n > 1 else 1
            index = np.mod(index, period)
            index = np.where(index >= n, period - index, index)
        elif geometry.padding_mode == "replicate":
            index = np.clip(index, 0, n - 1)
        else:  # circular
            index = np.mod(index, n)
        total *= math.sqrt(np.bincount(index, minlength=n).max())
    return total


def _conv_bound(form: ConvForm) -> tuple[float, str, tuple]:
    """(bound, description, grid) for a convolution of any padding."""
    g = form.geometry
    eps = np.finfo(np.empty(0, complex_dtype(form.weight.dtype)).real.dtype).eps
    margin = 1 + _ROUNDING * eps
    if g.padding_mode == "zeros":
        grid = tuple(embedding_grid(g, a) for a in range(g.ndim))
        return (margin * _circular_norm(form, grid),
                f"circular embedding on grid {grid}", grid)
    # A = V P: V the convolution of the padded input without padding
    padded = dataclasses.replace(g, input_size=g.padded_size,
                                 padding=tuple((0, 0) for _ in g.padding), padding_mode="zeros")
    grid = tuple(embedding_grid(padded, a) for a in range(g.ndim))
    factor = _padding_norm(g)
    return (margin * factor * _circular_norm(dataclasses.replace(form, geometry=padded), grid),
            (f"{g.padding_mode} padding (norm {factor:.6g}) times the circular embedding of "
             f"the unpadded convolution on grid {grid}"), grid)


def norm_bound(A) -> tuple[float, str]:
    """A certified upper bound on ``||A||_2`` from the operator's structure.

    Returns
    -------
    bound : float
        ``inf`` where no bound is known.
    how : str
        How it was obtained.
    """
    if isinstance(A, OperatorView):
        return norm_bound(A.base)
    form = conv_form(A)
    if form is not None:
        if circulant_failure(form, A) is None:
            eps = np.finfo(np.empty(0, complex_dtype(A.dtype)).real.dtype).eps
            return (1 + _ROUNDING * eps) * exact_norm(A), "exact (block-circulant)"
        bound, how, _ = _conv_bound(form)
        return bound, how
    if isinstance(A, ProductOperator):
        parts = [norm_bound(f) for f in A.factors]
        return math.prod(b for b, _ in parts), "product of the factors' bounds"
    if isinstance(A, SumOperator):
        parts = [(abs(c), norm_bound(op)[0]) for c, op in A.terms]
        return sum(c * b for c, b in parts), "sum of the terms' bounds"
    tocsr = getattr(A, "tocsr", None)
    if callable(tocsr):
        try:
            matrix = tocsr()
        except (MatrixTooLargeError, AttributeError, NotImplementedError):
            return math.inf, "none known (the explicit matrix exceeds the memory limit)"
        magnitude = abs(matrix)
        one = float(magnitude.sum(axis=0).max()) if matrix.nnz else 0.0
        infinity = float(magnitude.sum(axis=1).max()) if matrix.nnz else 0.0
        eps = np.finfo(np.empty(0, complex_dtype(A.dtype)).real.dtype).eps
        return ((1 + _ROUNDING * eps) * math.sqrt(one * infinity),
                "Schur's test on the explicit matrix")
    return math.inf, "none known"


# -- the estimate -------------------------------------------------------------------------
def _start_vector(A, rng) -> np.ndarray:
    """A start close to the top right singular vector, where the structure gives one."""
    form = conv_form(A)
    if form is not None:
        try:
            return _embedding_start(form, A)
        except (MatrixTooLargeError, ValueError):
            pass
    n = A.shape[1]
    x = rng.standard_normal(n)
    if np.iscomplexobj(np.empty(0, A.dtype)):
        x = x + 1j * rng.standard_normal(n)
    return x


def _embedding_start(form: ConvForm, A) -> np.ndarray:
    """The top singular vector of the circular embedding, cut to the operator's input."""
    g = form.geometry
    if circulant_failure(form, A) is None:
        grid, conv = g.input_size, form
    elif g.padding_mode == "zeros":
        grid = tuple(embedding_grid(g, a) for a in range(g.ndim))
        conv = form
    else:
        padded = dataclasses.replace(g, input_size=g.padded_size,
                                     padding=tuple((0, 0) for _ in g.padding),
                                     padding_mode="zeros")
        grid = tuple(embedding_grid(padded, a) for a in range(g.ndim))
        conv = dataclasses.replace(form, geometry=padded)
    cg = conv.geometry
    geometry = dataclasses.replace(
        cg, input_size=tuple(grid), output_size=tuple(L // s for L, s in zip(grid, cg.stride)),
        padding=tuple((lo, r - lo) for (lo, _), r in zip(cg.padding, cg.reach)),
        padding_mode="circular")
    blocks, _ = conv_blocks(dataclasses.replace(conv, geometry=geometry))
    u, s, vh = np.linalg.svd(blocks, full_matrices=False)
    f, grp = np.unravel_index(np.argmax(s[..., 0]), s.shape[:2])
    c_out, cg_in = form.weight.shape[0], form.weight.shape[1] * form.groups
    if not form.adjoint:  # the top right singular vector on the input side
        side = FourierSide((cg_in,) + tuple(grid), cg_in, form.groups, tuple(grid),
                           cg.stride, np.dtype(np.complex128))
        X = np.zeros((side.n_freq, side.groups, side.block_size, 1), complex)
        X[f, grp, :, 0] = np.conj(vh[f, grp, 0])
        cut = g.input_size if conv is form else g.padded_size
        channels = cg_in
    else:  # A^H: the top left singular vector on the conv's output side
        coarse = tuple(L // s for L, s in zip(grid, cg.stride))
        side = FourierSide((c_out,) + coarse, c_out, form.groups, coarse,
                           (1,) * g.ndim, np.dtype(np.complex128))
        X = np.zeros((side.n_freq, side.groups, side.block_size, 1), complex)
        X[f, grp, :, 0] = u[f, grp, :, 0]
        cut = g.output_size
        channels = c_out
    full = side.from_freq(X, real=False).reshape((channels,) + side.grid)
    x = full[(slice(None),) + tuple(slice(0, c) for c in cut)]
    if conv is not form and not form.adjoint:  # padded coordinates -> input coordinates
        x = x[(slice(None),) + tuple(slice(lo, lo + n) for (lo, _), n in
                                     zip(g.padding, g.input_size))]
    x = x.reshape(-1)
    if x.size != A.shape[1]:
        raise ValueError("the embedding does not match the operator's input")
    if not np.iscomplexobj(np.empty(0, A.dtype)):
        x = x.real if np.linalg.norm(x.real) >= np.linalg.norm(x.imag) else x.imag
    if not np.any(x):
        raise ValueError("empty start")
    return np.ascontiguousarray(x)


def _normal_operator(A):
    """``A^H A`` as a SciPy operator, counting its applications."""
    count = [0]

    def matvec(x):
        count[0] += 1
        return A.rmatvec(A.matvec(x))

    dtype = np.result_type(A.dtype, np.float64)
    return spla.LinearOperator((A.shape[1], A.shape[1]), matvec=matvec, rmatvec=matvec,
                               dtype=dtype), count


def _estimate(A, rtol: float, maxiter: int | None, rng) -> tuple[float, int, bool]:
    n = A.shape[1]
    if n == 0 or A.shape[0] == 0:
        return 0.0, 0, True
    x0 = _start_vector(A, rng)
    if n <= 2:  # ARPACK needs k < n: the Rayleigh quotient over the whole space
        columns = A.matmat(np.eye(n, dtype=np.result_type(A.dtype, np.float32)))
        return float(np.linalg.norm(columns, 2)), n, True
    N, count = _normal_operator(A)
    try:
        theta = spla.eigsh(N, k=1, which="LA", v0=x0.astype(N.dtype), tol=rtol,
                           maxiter=maxiter, return_eigenvectors=False)
        converged = True
    except spla.ArpackNoConvergence as err:
        theta = err.eigenvalues
        converged = False
        if theta is None or len(theta) == 0:
            v = x0 / np.linalg.norm(x0)
            theta = [np.vdot(v, N.matvec(v)).real]
    value = float(np.sqrt(max(float(np.max(np.real(theta))), 0.0)))
    return value, count[0], converged


def opnorm(A, *, rtol: float = 1e-6, maxiter: int | None = None, rng=None) -> OpnormResult:
    r"""The 2-norm (largest singular value) of an operator, with certified bounds.

    Parameters
    ----------
    A : scipy.sparse.linalg.LinearOperator
        Any operator; convolutions, transposed convolutions, their views,
        products and sums of linop operators get structural bounds.
    rtol : float, default 1e-6
        Relative accuracy of the iterated estimate (ARPACK's ``tol`` on the
        eigenvalue of ``A^H A``); not used when the value is exact.
    maxiter : int, optional
        At most this many restarts of the iteration (ARPACK's ``maxiter``);
        by default ARPACK's.
    rng : numpy.random.Generator, int or None
        For the random start where the structure gives none.

    Returns
    -------
    OpnormResult
        ``value``, ``lower``, ``upper``, ``exact``, ``nit``, ``converged``
        and ``bound``.

    Raises
    ------
    ValueError
        If ``rtol`` is not positive.

    Notes
    -----
    For a block-circulant convolution (see `svdvals`) the value is exact.
    Otherwise the value is the largest Ritz value of ``A^H A``, started
    from the top singular vector of the circular embedding of a convolution
    (cut to its input), where the iteration converges in a few steps; a
    Ritz value never exceeds the largest eigenvalue, so ``lower = value``.
    The upper bound is certified for the operator's structure (see the
    module's notes and the user guide); the gap ``upper/lower - 1`` is a
    property of the padding and the size (it shrinks like the border's share
    of the pixels) and is reported, not iterated away. The circular norm at
    the *same* size is not an upper bound for zero padding.

    Examples
    --------
    >>> import numpy as np, linop
    >>> w = np.random.default_rng(0).standard_normal((8, 8, 3, 3))
    >>> A = linop.Conv2d(w, (8, 16, 16), padding=1)          # zero padding
    >>> r = linop.linalg.opnorm(A)
    >>> r.exact, bool(r.lower <= r.upper < 1.05 * r.lower)
    (False, True)
    >>> bool(abs(r.value - np.linalg.norm(A.tocsr().toarray(), 2)) < 1e-5 * r.value)
    True
    >>> C = linop.Conv2d(w, (8, 16, 16), padding=1, padding_mode="circular")
    >>> c = linop.linalg.opnorm(C)
    >>> c.exact, c.value == c.lower
    (True, True)
    """
    rtol = as_real(rtol, "rtol", positive=True)
    if maxiter is not None:
        maxiter = as_int(maxiter, "maxiter", minimum=1)
    form = conv_form(A)
    if form is not None and circulant_failure(form, A) is None:
        value = exact_norm(A)
        return OpnormResult(value, value, value, True, 0, True, "exact (block-circulant)")
    upper, how = norm_bound(A)
    value, nit, converged = _estimate(A, float(rtol), maxiter, np.random.default_rng(rng))
    return OpnormResult(value, value, upper, False, nit, converged, how)
