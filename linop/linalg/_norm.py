r"""The 2-norm of an operator: exact, or estimated from below and bounded from above.

`opnorm` returns an `OpnormResult`. Where the matrix is block-circulant the
value is exact (the largest singular value of the blocks). Otherwise the
value is a Lanczos estimate (on ``A^H A``, fully reorthogonalised), which
never exceeds the norm, and the upper bound comes from the structure:

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
from scipy.linalg import eigvalsh_tridiagonal

from linop._base import OperatorView, ProductOperator, SumOperator
from linop._conv.geometry import ConvGeometry
from linop._memory import MatrixTooLargeError, check_nbytes, get_memory_limit
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

#: The norm of the random part of a structured start vector, relative to the structured part.
_RANDOM_SHARE = 0.1

#: How many top singular vectors of the circular embedding make a start vector.
_MODES = 2

#: The Ritz value must have grown by at most rtol over this many steps (a plateau near a
#: second, close singular value can last several steps before the top one takes over).
_WINDOW = 10

#: Lanczos steps by default (each one application of ``A^H A``).
_DEFAULT_MAXITER = 300


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


@dataclasses.dataclass(frozen=True, eq=False)
class _Embedding:
    """A convolution of any padding as ``S C E P``, and the spectrum of ``C``.

    ``P`` is the padding operator (the identity for zero padding, where the
    zeros are part of the embedding), ``E`` the zero extension to the grid,
    ``C`` the strided circular convolution on the grid (``circular``, a
    `ConvForm` whose blocks are ``blocks``), ``S`` the selection of the
    outputs. ``inner`` is the geometry of ``C E`` (the padded input's, without
    padding, when ``P`` is not the identity); ``factor`` is ``||P||``.
    """

    circular: ConvForm
    inner: ConvGeometry
    factor: float
    blocks: np.ndarray  # half-spectrum for a real weight
    values: np.ndarray  # the singular values of blocks, (F', G, r)

    @property
    def norm(self) -> float:
        """``||C||``, exact."""
        return float(self.values.max()) if self.values.size else 0.0


def _embedding(form: ConvForm) -> _Embedding:
    g = form.geometry
    factor = 1.0
    inner = g
    if g.padding_mode != "zeros":  # A = V P: V the convolution of the padded input
        inner = dataclasses.replace(g, input_size=g.padded_size,
                                    padding=tuple((0, 0) for _ in g.padding),
                                    padding_mode="zeros")
        factor = _padding_norm(g)
    grid = tuple(embedding_grid(inner, a) for a in range(g.ndim))
    geometry = dataclasses.replace(
        inner, input_size=grid, output_size=tuple(L // s for L, s in zip(grid, g.stride)),
        padding=tuple((lo, r - lo) for (lo, _), r in zip(inner.padding, inner.reach)),
        padding_mode="circular")
    circular = dataclasses.replace(form, geometry=geometry)
    blocks, _ = conv_blocks(circular, half=form.weight.dtype.kind != "c")
    values = np.linalg.svd(blocks, compute_uv=False)
    return _Embedding(circular, inner, factor, blocks, values)


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


def _conv_bound(form: ConvForm, embedding: _Embedding | None = None) -> tuple[float, str]:
    """(bound, description) for a convolution of any padding."""
    if embedding is None:
        embedding = _embedding(form)
    eps = np.finfo(np.empty(0, complex_dtype(form.weight.dtype)).real.dtype).eps
    bound = (1 + _ROUNDING * eps) * embedding.factor * embedding.norm
    grid = embedding.circular.geometry.input_size
    if form.geometry.padding_mode == "zeros":
        return bound, f"circular embedding on grid {grid}"
    return bound, (f"{form.geometry.padding_mode} padding (norm {embedding.factor:.6g}) times "
                   f"the circular embedding of the unpadded convolution on grid {grid}")


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
        try:
            if circulant_failure(form, A) is None:
                eps = np.finfo(np.empty(0, complex_dtype(A.dtype)).real.dtype).eps
                return (1 + _ROUNDING * eps) * exact_norm(A), "exact (block-circulant)"
            return _conv_bound(form)
        except MatrixTooLargeError:
            return math.inf, "none known (the blocks exceed the memory limit)"
    if isinstance(A, ProductOperator):
        bounds = [norm_bound(f)[0] for f in A.factors]
        product = 0.0 if 0.0 in bounds else math.prod(bounds)  # no 0 * inf
        return product, "product of the factors' bounds"
    if isinstance(A, SumOperator):
        total = sum(abs(c) * norm_bound(op)[0] for c, op in A.terms if c != 0)
        return float(total), "sum of the terms' bounds"
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
def _random_vector(A, rng) -> np.ndarray:
    x = rng.standard_normal(A.shape[1])
    if np.iscomplexobj(np.empty(0, A.dtype)):
        x = x + 1j * rng.standard_normal(A.shape[1])
    return x


def _start_vector(A, rng, form: ConvForm | None = None,
                  embedding: _Embedding | None = None) -> np.ndarray:
    """A start close to the top right singular vector, where the structure gives one.

    For a convolution: the top singular vectors of its circular embedding
    (`_embedding_start`), plus a tenth of a random vector (a structured
    start can be orthogonal to the top singular vector, through the
    symmetries of small grids, and Lanczos would then never find it).
    """
    x = _random_vector(A, rng)
    if form is None or embedding is None:
        return x
    start = _embedding_start(form, embedding, A, rng)
    if start is None:
        return x
    return start + (_RANDOM_SHARE * np.linalg.norm(start) / np.linalg.norm(x)) * x


def _embedding_start(form: ConvForm, embedding: _Embedding, A, rng) -> np.ndarray | None:
    """The top singular vectors of the circular embedding, cut to the operator's input.

    A random combination of the ``_MODES`` singular vectors of the largest
    singular values (each the top one of its frequency; for a real operator
    the real part, which holds the frequencies ``mu`` and ``-mu``, cosines
    and sines): the cut breaks the degeneracies of the circular spectrum,
    and the operator's top vector may lie along any of them. Under the
    envelope of the lowest Dirichlet mode, ``sin(pi (i + 1) / (n + 1))``
    per axis, where the top singular vectors of a Toeplitz operator are
    close to a plane wave.
    """
    g, inner = form.geometry, embedding.inner
    circular = embedding.circular
    grid = circular.geometry.input_size
    top = embedding.values[..., 0].reshape(-1) if embedding.values.size else np.zeros(0)
    if top.size == 0 or not top.max() > 0:
        return None
    q = min(_MODES, top.size)
    f, grp = np.unravel_index(np.argpartition(-top, q - 1)[:q], embedding.values.shape[:2])
    u, _, vh = np.linalg.svd(embedding.blocks[f, grp], full_matrices=False)
    coarse = circular.geometry.output_size
    # the blocks may be the half-spectrum: their index in the full coarse grid
    half = list(coarse)
    if embedding.blocks.shape[0] != math.prod(coarse):
        half[-1] = coarse[-1] // 2 + 1
    f = np.ravel_multi_index(np.unravel_index(f, half), coarse)
    coef = rng.standard_normal(q) + 1j * rng.standard_normal(q)
    c_out, c_in = form.weight.shape[0], form.weight.shape[1] * form.groups
    if not form.adjoint:  # right singular vectors, on the input side
        side = FourierSide((c_in,) + grid, c_in, form.groups, grid, g.stride,
                           np.dtype(np.complex128))
        vectors, channels, cut = np.conj(vh[:, 0]), c_in, inner.input_size
    else:  # A^H: left singular vectors, on the convolution's output side
        side = FourierSide((c_out,) + coarse, c_out, form.groups, coarse, (1,) * g.ndim,
                           np.dtype(np.complex128))
        vectors, channels, cut = u[:, :, 0], c_out, g.output_size
    X = np.zeros((side.n_freq, side.groups, side.block_size, 1), complex)
    np.add.at(X[..., 0], (f, grp), coef[:, None] * vectors)
    full = side.from_freq(X, real=False).reshape((channels,) + side.grid)
    x = full[(slice(None),) + tuple(slice(0, c) for c in cut)]
    if inner is not g and not form.adjoint:  # padded coordinates -> input coordinates
        x = x[(slice(None),) + tuple(slice(lo, lo + n) for (lo, _), n in
                                     zip(g.padding, g.input_size))]
    for a, n in enumerate(x.shape[1:]):
        shape = [1] * x.ndim
        shape[a + 1] = n
        x = x * np.sin(np.pi * np.arange(1, n + 1) / (n + 1)).reshape(shape)
    x = x.reshape(-1)
    if x.size != A.shape[1]:  # pragma: no cover - a geometry this does not cover
        return None
    if not np.iscomplexobj(np.empty(0, A.dtype)):
        x = x.real
    return np.ascontiguousarray(x) if np.any(x) else None


def lanczos_norm(A, x0: np.ndarray, rtol: float, maxiter: int,
                 history: list | None = None) -> tuple[float, int, bool]:
    """The largest Ritz value of ``A^H A`` (square-rooted) by Lanczos from ``x0``.

    Full reorthogonalisation; stops when the estimated distance of the Ritz
    value to its limit, from the last two increases (a geometric tail
    ``d_k rho / (1 - rho)``, ``rho = d_k / d_{k-1}``), and its increase
    over the last ``_WINDOW`` steps are both at most ``rtol`` times the
    value, or when the Krylov space is invariant. Returns ``(value,
    applications of A^H A, converged)``.
    """
    n = A.shape[1]
    dtype = np.result_type(A.dtype, np.float64)
    steps = max(1, min(maxiter, n))
    vector = n * np.dtype(dtype).itemsize
    # as many steps as the memory limit holds (with two vectors of workspace), at least 10
    steps = max(min(steps, 10), min(steps, get_memory_limit() // vector - 3))
    check_nbytes((steps + 3) * vector,
                 f"the Lanczos basis of opnorm ({steps + 1} vectors of {n})",
                 "pass a smaller maxiter")
    basis = np.empty((steps + 1, n), dtype=dtype)
    complex_basis = np.dtype(dtype).kind == "c"
    v = x0.astype(dtype)
    norm = np.linalg.norm(v)
    if norm == 0:
        return 0.0, 0, True
    basis[0] = v / norm
    alpha, beta = [], []
    values = [] if history is None else history
    for k in range(steps):
        w = A.rmatvec(A.matvec(basis[k])).astype(dtype, copy=False)
        alpha.append(float(np.vdot(basis[k], w).real))
        done = basis[: k + 1]
        for _ in range(2):  # classical Gram-Schmidt, twice (conjugating vectors, not the basis)
            w = w - (np.conj(done @ np.conj(w)) if complex_basis else done @ w) @ done
        b = float(np.linalg.norm(w))
        theta = alpha[0] if k == 0 else float(
            eigvalsh_tridiagonal(np.array(alpha), np.array(beta), select="i",
                                 select_range=(k, k))[0])
        values.append(math.sqrt(max(theta, 0.0)))
        scale = max(abs(a) for a in alpha) + (max(beta) if beta else 0.0)
        if b <= 1e-13 * scale:  # an invariant subspace: the value is exact
            return values[-1], k + 1, True
        if k >= _WINDOW:
            d, d_prev = values[-1] - values[-2], values[-2] - values[-3]
            rho = min(d / d_prev, 0.99) if d_prev > 0 else 0.99
            tail = d * rho / (1 - rho) if d > 0 else 0.0
            window = values[-1] - values[-1 - _WINDOW]
            if tail <= rtol * values[-1] and window <= rtol * values[-1]:
                return values[-1], k + 1, True
        beta.append(b)
        basis[k + 1] = w / b
    return values[-1], steps, False


def _estimate(A, rtol: float, maxiter: int | None, x0: np.ndarray) -> tuple[float, int, bool]:
    if A.shape[1] == 0 or A.shape[0] == 0:
        return 0.0, 0, True
    return lanczos_norm(A, x0, rtol, _DEFAULT_MAXITER if maxiter is None else maxiter)


def opnorm(A, *, rtol: float = 1e-6, maxiter: int | None = None, rng=0) -> OpnormResult:
    r"""The 2-norm (largest singular value) of an operator, with certified bounds.

    Parameters
    ----------
    A : scipy.sparse.linalg.LinearOperator
        Any operator; convolutions, transposed convolutions, their views,
        products and sums of linop operators get structural bounds.
    rtol : float, default 1e-6
        Relative accuracy of the iterated estimate: the iteration stops
        when the estimated distance of the value to its limit is at most
        ``rtol`` times the value. Not used when the value is exact.
    maxiter : int, optional
        At most this many Lanczos steps (applications of ``A^H A``; the
        basis holds as many vectors of the input's size, and is cut to what
        `linop.get_memory_limit` allows, at least 10). Default 300.
    rng : numpy.random.Generator, int or None, default 0
        For the random part of the start vector (the whole of it where the
        structure gives none). The default seed makes the result
        reproducible; None draws fresh entropy.

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
    >>> w = np.random.default_rng(0).standard_normal((4, 4, 3, 3))
    >>> A = linop.Conv2d(w, (4, 12, 12), padding=1)          # zero padding
    >>> r = linop.linalg.opnorm(A)
    >>> r.exact, bool(r.lower <= r.upper < 1.05 * r.lower)
    (False, True)
    >>> bool(abs(r.value - np.linalg.norm(A.tocsr().toarray(), 2)) < 1e-6 * r.value)
    True
    >>> C = linop.Conv2d(w, (4, 12, 12), padding=1, padding_mode="circular")
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
        value = float(value)
        return OpnormResult(value, value, value, True, 0, True, "exact (block-circulant)")
    rng = np.random.default_rng(rng)
    embedding = None
    if form is not None:
        try:
            embedding = _embedding(form)
        except MatrixTooLargeError:
            embedding = None
    if embedding is not None:
        upper, how = _conv_bound(form, embedding)
    elif form is not None:
        upper, how = math.inf, "none (the circular embedding exceeds the memory limit)"
    else:
        upper, how = norm_bound(A)
    x0 = _start_vector(A, rng, form, embedding)
    value, nit, converged = _estimate(A, float(rtol), maxiter, x0)
    return OpnormResult(float(value), float(value), float(upper), False, int(nit),
                        bool(converged), how)
