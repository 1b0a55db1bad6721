"""The dot test: ``<A x, y> == <x, A^H y>`` for random ``x`` and ``y``."""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
from scipy.sparse.linalg import LinearOperator, aslinearoperator

__all__ = ["DotTestResult", "DotTestTrial", "default_rtol", "dottest"]

#: Safety factor of the default tolerance (see :func:`default_rtol`).
SAFETY = 10.0


# -- helpers shared with _check ------------------------------------------------
def vector_dtype(dtype) -> np.dtype:
    """The dtype of the random test vectors for an operator of dtype ``dtype``.

    Inexact dtypes are kept (float32 vectors for a float32 operator, complex
    vectors for a complex operator); integer and boolean operators get
    float64 vectors.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.inexact):
        return dtype
    return np.dtype(np.float64)


def accumulation_dtype(*dtypes) -> np.dtype:
    """At least double precision, complex if any of ``dtypes`` is complex."""
    return np.result_type(np.float64, *dtypes)


def random_vector(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Standard normal entries of dtype ``dtype`` (``E|v_i|^2 = 1``).

    Complex dtypes get independent real and imaginary parts, each of variance
    1/2.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        re = rng.standard_normal(shape)
        im = rng.standard_normal(shape)
        return ((re + 1j * im) / math.sqrt(2.0)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def random_scalar(rng: np.random.Generator, dtype):
    """A standard normal scalar of ``dtype`` (complex for complex dtypes)."""
    return random_vector(rng, (), dtype)[()]


def default_rtol(dtype, shape) -> float:
    """The default relative tolerance of :func:`dottest` and :func:`check_operator`.

    ``rtol = 10 * eps(dtype) * (sqrt(m) + sqrt(n))`` for an ``m x n``
    operator, with ``eps`` the machine epsilon of ``dtype`` (float64's for
    integer dtypes). See the Notes of :func:`dottest` for where it comes from.

    Parameters
    ----------
    dtype : dtype
        The operator's dtype.
    shape : tuple of int
        The operator's shape ``(m, n)``.

    Returns
    -------
    float

    Examples
    --------
    >>> from linop.testing import default_rtol
    >>> print(f"{default_rtol('float32', (100, 100)):.3e}")
    2.384e-05
    """
    m, n = (int(s) for s in shape)
    eps = float(np.finfo(vector_dtype(dtype)).eps)
    return SAFETY * eps * (math.sqrt(m) + math.sqrt(n))


def as_generator(rng) -> np.random.Generator:
    """SciPy's ``rng`` convention: None, an int seed, a SeedSequence or a Generator."""
    if isinstance(rng, np.random.RandomState):
        raise TypeError(
            "rng must be None, an int seed, a SeedSequence or a numpy.random.Generator, "
            "got a legacy numpy.random.RandomState"
        )
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"rng must be None, an int seed, a SeedSequence or a numpy.random.Generator, "
            f"got {rng!r}"
        ) from exc


def check_tolerance(name: str, value) -> float:
    """Validate a tolerance: a finite-or-infinite non-negative real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative real number, got {value!r}")
    value = float(value)
    if not value >= 0:  # also rejects nan
        raise ValueError(f"{name} must be a non-negative real number, got {value!r}")
    return value


def fmt_number(z) -> str:
    """Format a real or complex number with all 17 significant digits."""
    if isinstance(z, complex):
        return f"{z.real:.17g}{z.imag:+.17g}j"
    return f"{z:.17g}"


def _inner(u: np.ndarray, v: np.ndarray, acc: np.dtype):
    """``<u, v> = v^H u`` accumulated in ``acc`` by pairwise summation."""
    return np.sum(u.astype(acc, copy=False) * np.conj(v.astype(acc, copy=False)))


def _norm(u: np.ndarray, acc: np.dtype) -> float:
    return float(np.linalg.norm(u.astype(acc, copy=False)))


# -- results -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DotTestTrial:
    """One dot test: two inner products that must agree.

    Attributes
    ----------
    lhs : float or complex
        ``<A x, y> = y^H (A x)``.
    rhs : float or complex
        ``<x, A^H y> = (A^H y)^H x``.
    abs_error : float
        ``|lhs - rhs|``.
    scale : float
        ``||A x|| ||y|| / sqrt(m) + ||A^H y|| ||x|| / sqrt(n)``, the size that
        the rounding errors are measured against (see :func:`dottest`).
    rel_error : float
        ``abs_error / scale`` (0 when both are 0, inf when only the scale is).
    tolerance : float
        The absolute tolerance ``atol + rtol * scale``.
    passed : bool
        ``abs_error <= tolerance`` (False for NaN).

    See Also
    --------
    DotTestResult : all the trials of one :func:`dottest` run.

    Examples
    --------
    An operator whose adjoint is twice too large fails every trial, and in
    each one ``<x, A^H y>`` is twice ``<A x, y>``:

    >>> import numpy as np
    >>> from scipy.sparse.linalg import LinearOperator
    >>> from linop.testing import dottest
    >>> A = np.arange(6.0).reshape(2, 3)
    >>> wrong = LinearOperator(A.shape, matvec=lambda x: A @ x,
    ...                        rmatvec=lambda y: 2 * A.T @ y, dtype=A.dtype)
    >>> result = dottest(wrong, rng=0, raise_error=False)
    >>> [bool(trial) for trial in result.trials]
    [False, False, False]
    >>> trial = result.trials[result.worst]
    >>> print(f"{trial.rhs / trial.lhs:.3f}", trial.abs_error > trial.tolerance)
    2.000 True
    """

    lhs: float | complex
    rhs: float | complex
    abs_error: float
    scale: float
    rel_error: float
    tolerance: float
    passed: bool

    def __bool__(self) -> bool:
        return self.passed


@dataclasses.dataclass(frozen=True)
class DotTestResult:
    """The outcome of :func:`dottest`.

    The headline fields (``lhs`` to ``tolerance``) are those of the worst
    trial, the one with the largest ``abs_error / tolerance``; all trials are
    in ``trials``. ``bool(result)`` is ``result.passed``.

    Attributes
    ----------
    passed : bool
        True when every trial passed.
    lhs, rhs : float or complex
        ``<A x, y>`` and ``<x, A^H y>`` of the worst trial.
    abs_error, rel_error, scale, tolerance : float
        See :class:`DotTestTrial`; of the worst trial.
    rtol, atol : float
        The tolerances used (``tolerance = atol + rtol * scale``).
    shape : tuple of int
        The operator's shape ``(m, n)``.
    dtype : numpy.dtype
        The dtype of the random vectors (the operator's for inexact dtypes).
    trials : tuple of DotTestTrial
        Every trial, in order.
    worst : int
        The index of the worst trial in ``trials``.

    See Also
    --------
    dottest : which returns it.
    DotTestTrial : one of the trials.

    Examples
    --------
    >>> import numpy as np
    >>> from linop.testing import default_rtol, dottest
    >>> result = dottest(np.arange(6.0).reshape(2, 3), rng=0)
    >>> bool(result), result.shape, result.dtype, len(result.trials)
    (True, (2, 3), dtype('float64'), 3)
    >>> result.rtol == default_rtol(result.dtype, result.shape), result.atol
    (True, 0.0)
    >>> worst = result.trials[result.worst]
    >>> result.rel_error == worst.rel_error <= result.rtol
    True
    """

    passed: bool
    lhs: float | complex
    rhs: float | complex
    abs_error: float
    rel_error: float
    scale: float
    tolerance: float
    rtol: float
    atol: float
    shape: tuple[int, int]
    dtype: np.dtype
    trials: tuple[DotTestTrial, ...]
    worst: int

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        m, n = self.shape
        verdict = "passed" if self.passed else "FAILED"
        nfail = sum(not t.passed for t in self.trials)
        which = (
            f"trial {self.worst + 1} of {len(self.trials)}"
            + (f", {nfail} failed" if nfail else "")
        )
        return "\n".join(
            [
                f"dottest {verdict}: {m}x{n} operator, {self.dtype} vectors ({which})",
                f"  <A x, y>   = {fmt_number(self.lhs)}",
                f"  <x, A^H y> = {fmt_number(self.rhs)}",
                f"  |difference|   = {self.abs_error:.3e}",
                f"  scale          = {self.scale:.3e}"
                "  (||Ax|| ||y||/sqrt(m) + ||A^H y|| ||x||/sqrt(n))",
                f"  relative error = {self.rel_error:.3e}  (|difference| / scale)",
                f"  rtol = {self.rtol:.3e}, atol = {self.atol:.3e}",
                f"  tolerance      = {self.tolerance:.3e}  (atol + rtol * scale)",
                f"  passed = {self.passed}",
            ]
        )


# -- the test --------------------------------------------------------------------
def _trial(op: LinearOperator, rng, vdtype, rtol: float, atol: float) -> DotTestTrial:
    m, n = op.shape
    x = random_vector(rng, n, vdtype)
    y = random_vector(rng, m, vdtype)
    # copies: an operator that scribbles over its input must not change x or y
    ax = np.asarray(op.matvec(x.copy()))
    ahy = np.asarray(op.rmatvec(y.copy()))
    acc = accumulation_dtype(ax.dtype, ahy.dtype, vdtype)
    lhs = _inner(ax, y, acc)  # y^H (A x)
    rhs = _inner(x, ahy, acc)  # (A^H y)^H x
    abs_error = float(abs(lhs - rhs))
    scale = 0.0
    if m:
        scale += _norm(ax, acc) * _norm(y, acc) / math.sqrt(m)
    if n:
        scale += _norm(ahy, acc) * _norm(x, acc) / math.sqrt(n)
    tolerance = atol + rtol * scale
    if scale > 0:
        rel_error = abs_error / scale
    else:
        rel_error = 0.0 if abs_error == 0 else (math.nan if math.isnan(abs_error) else math.inf)
    cast = complex if np.issubdtype(acc, np.complexfloating) else float
    return DotTestTrial(
        lhs=cast(lhs),
        rhs=cast(rhs),
        abs_error=abs_error,
        scale=scale,
        rel_error=rel_error,
        tolerance=tolerance,
        passed=bool(abs_error <= tolerance),
    )


def _badness(t: DotTestTrial) -> float:
    if math.isnan(t.abs_error):
        return math.inf
    if t.tolerance > 0:
        return t.abs_error / t.tolerance
    return 0.0 if t.abs_error == 0 else math.inf


def dottest(
    op,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    n_trials: int = 3,
    rng: int | np.random.Generator | np.random.SeedSequence | None = None,
    raise_error: bool = True,
) -> DotTestResult:
    """Check that an operator's ``rmatvec`` is the adjoint of its ``matvec``.

    For random ``x`` and ``y`` the *dot test* compares the two inner products
    ``<A x, y> = y^H (A x)`` and ``<x, A^H y> = (A^H y)^H x``, which are
    equal for every ``x`` and ``y`` exactly when ``rmatvec`` is the Hermitian
    adjoint of ``matvec``.

    Parameters
    ----------
    op : LinearOperator or array_like or sparse matrix
        Anything :func:`scipy.sparse.linalg.aslinearoperator` accepts, real or
        complex.
    rtol : float, optional
        Relative tolerance with respect to ``scale`` (see Notes). Default
        ``10 * eps * (sqrt(m) + sqrt(n))``, see :func:`default_rtol`.
    atol : float, optional
        Absolute tolerance on ``|<A x, y> - <x, A^H y>|``. Default 0.
    n_trials : int, optional
        Number of independent pairs ``(x, y)``; all must pass. Default 3.
    rng : {None, int, numpy.random.Generator, numpy.random.SeedSequence}, optional
        Source of the random vectors, as in SciPy: None draws fresh entropy,
        an int seeds :func:`numpy.random.default_rng`, a Generator is used as
        is.
    raise_error : bool, optional
        If True (default) raise :class:`AssertionError` when the test fails.

    Returns
    -------
    DotTestResult
        Inner products, errors and tolerance of the worst trial, every trial,
        and ``passed``. ``bool(result)`` is ``result.passed``.

    Raises
    ------
    AssertionError
        If a trial fails and ``raise_error`` is True. The message is
        ``str(result)``: both inner products, the absolute and relative
        errors, the scale and the tolerance.
    TypeError, ValueError
        For an argument that is not an operator, a bad tolerance, ``n_trials``
        or ``rng``.

    See Also
    --------
    check_operator : the full battery of operator checks.

    Notes
    -----
    The vectors have the operator's dtype, standard normal entries (complex
    ones, with random real and imaginary parts, for a complex operator;
    float64 for integer operators). The inner products are accumulated in at
    least double precision, so that in single precision the test measures the
    operator's rounding errors, not those of the test.

    **Tolerance.** Write ``fl(A x) = A x + d1`` and ``fl(A^H y) = A^H y + d2``
    for the computed products. Then ``lhs - rhs = y^H d1 - d2^H x`` up to the
    rounding of the inner products themselves. ``y`` is drawn independently
    of ``x``, so of ``d1``: ``y^H d1`` is a random variable of standard
    deviation ``||d1|| ||y|| / sqrt(m)``, and likewise for ``d2^H x``. A row
    of ``A`` has at most ``n`` nonzeros, and the rounding error of a sum of
    ``k`` terms of random sign grows like ``eps * sqrt(k)`` relative to the
    result, so ``||d1|| <~ eps sqrt(n) ||A x||`` and
    ``||d2|| <~ eps sqrt(m) ||A^H y||``. Hence, with ::

        scale = ||A x|| ||y|| / sqrt(m) + ||A^H y|| ||x|| / sqrt(n)

    a correct operator gives ``|lhs - rhs| <~ eps (sqrt(m) + sqrt(n)) scale``,
    and the test passes when ::

        |lhs - rhs| <= atol + rtol * scale,
        rtol = 10 * eps * (sqrt(m) + sqrt(n))  (default)

    The factor 10 covers the tails of the random variables and summation
    orders that are worse than random. ``scale`` is also the typical size of
    the inner products themselves (about ``||A x|| + ||A^H y||``), but unlike
    ``|lhs|`` it does not vanish when the inner product happens to cancel.

    A wrong adjoint (a shifted pixel, a missing conjugate, a wrong weight)
    makes ``rhs`` an unrelated random number of size ``~ scale``, so
    ``rel_error = |lhs - rhs| / scale`` is of order 1, against ``rtol`` of
    about ``2.4e-3`` for a float32 operator with ``10**6`` rows and columns:
    the test separates correct and wrong operators in single precision up to
    very large sizes. Operators that compute through intermediates much larger
    than their results (strong cancellation) may need a larger ``rtol``.

    Examples
    --------
    A hand-written operator with a correct adjoint, and one whose adjoint is
    off by one pixel:

    >>> import numpy as np
    >>> from scipy.sparse.linalg import LinearOperator
    >>> from linop.testing import dottest
    >>> def diff(x):                          # forward differences
    ...     return x[1:] - x[:-1]
    >>> def diff_adjoint(y):
    ...     return np.concatenate([[0], y]) - np.concatenate([y, [0]])
    >>> D = LinearOperator((9, 10), matvec=diff, rmatvec=diff_adjoint,
    ...                    dtype=np.float32)
    >>> result = dottest(D, rng=0)
    >>> print(result.passed)
    True
    >>> wrong = LinearOperator((9, 10), matvec=diff, dtype=np.float32,
    ...                        rmatvec=lambda y: np.roll(diff_adjoint(y), 1))
    >>> result = dottest(wrong, rng=0, raise_error=False)
    >>> print(result.passed, result.rel_error > 100 * result.rtol)
    False True
    >>> dottest(wrong, rng=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    AssertionError: dottest FAILED: 9x10 operator, float32 vectors (...)
    ...
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral):
        raise TypeError(f"n_trials must be a positive integer, got {n_trials!r}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    op = aslinearoperator(op)
    gen = as_generator(rng)
    vdtype = vector_dtype(op.dtype)
    rtol = default_rtol(vdtype, op.shape) if rtol is None else check_tolerance("rtol", rtol)
    atol = 0.0 if atol is None else check_tolerance("atol", atol)

    trials = tuple(_trial(op, gen, vdtype, rtol, atol) for _ in range(int(n_trials)))
    worst = max(range(len(trials)), key=lambda i: _badness(trials[i]))
    w = trials[worst]
    result = DotTestResult(
        passed=all(t.passed for t in trials),
        lhs=w.lhs,
        rhs=w.rhs,
        abs_error=w.abs_error,
        rel_error=w.rel_error,
        scale=w.scale,
        tolerance=w.tolerance,
        rtol=rtol,
        atol=atol,
        shape=(int(op.shape[0]), int(op.shape[1])),
        dtype=vdtype,
        trials=trials,
        worst=worst,
    )
    if raise_error and not result.passed:
        raise AssertionError(str(result))
    return result
