"""The dot test: ``<A x, y> == <x, A^H y>`` for random ``x`` and ``y``."""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from linop._validation import ParameterTypeError, ParameterValueError, as_count, is_sparse

__all__ = ["DotTestResult", "DotTestTrial", "default_rtol", "dottest"]

#: Safety factor of the default tolerance (see :func:`default_rtol`).
SAFETY = 10.0


# -- helpers shared with _check ------------------------------------------------
def as_operator(op) -> LinearOperator:
    """``aslinearoperator(op)``; a `ParameterTypeError` for what is no operator of numbers.

    A sparse matrix is an operator, but a sparse *vector* (a 1-D sparse
    array) is not, and neither is an array of objects or strings: SciPy would
    wrap or build them and the checks would fail for a reason that is not the
    operator's.
    """
    if is_sparse(op) and len(op.shape) != 2:
        raise ParameterTypeError(
            "op", f"op must be a LinearOperator or a 2-D array or sparse matrix, got a "
            f"{len(op.shape)}-D {type(op).__name__} of shape {tuple(op.shape)}: a sparse "
            f"vector is what an operator multiplies, not an operator")
    op = aslinearoperator(op)
    dtype = getattr(op, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind not in "biufc":
        raise ParameterTypeError(
            "op", f"op has dtype {dtype}, which is not numeric: the checks need an operator "
            f"of numbers (or bools)")
    return op


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
    """SciPy's ``rng`` convention: None, an int seed, a SeedSequence or a Generator.

    A bad ``rng`` raises linop's `ParameterTypeError` / `ParameterValueError`
    (a `TypeError` / `ValueError`) with ``parameter == "rng"``.
    """
    expected = "rng must be None, an int seed, a SeedSequence or a numpy.random.Generator"
    if isinstance(rng, np.random.RandomState):
        raise ParameterTypeError("rng", f"{expected}, got a legacy numpy.random.RandomState")
    try:
        return np.random.default_rng(rng)
    except TypeError as exc:
        raise ParameterTypeError("rng", f"{expected}, got {rng!r}") from exc
    except ValueError as exc:
        raise ParameterValueError("rng", f"{expected}, got {rng!r}") from exc


def check_tolerance(name: str, value) -> float:
    """Validate a tolerance: a finite-or-infinite non-negative real number.

    Raises `ParameterTypeError` / `ParameterValueError` (a `TypeError` /
    `ValueError`) with ``parameter == name``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(name, f"{name} must be a non-negative real number, got {value!r}")
    value = float(value)
    if not value >= 0:  # also rejects nan
        raise ParameterValueError(
            name, f"{name} must be a non-negative real number, got {value!r}"
        )
    return value


# -- calling the operator ----------------------------------------------------------
class OperatorCallError(Exception):
    """A call of the operator raised, or returned an array of the wrong shape.

    The message says what was called, on an input of which shape and dtype,
    and what went wrong, for example ``rmatvec of a (16,) float64 vector
    returned shape (15,), expected (16,)``.
    """


#: The axis of ``op.shape`` that gives the length of each method's result.
_OUTPUT_AXIS = {"matvec": 0, "matmat": 0, "rmatvec": 1, "rmatmat": 1}


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: message"``, or only the type for an exception without a message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_input(x) -> str:
    """``"a (16,) float64 vector"`` or ``"a (16, 3) float64 array"``."""
    x = np.asarray(x)
    return f"a {x.shape} {x.dtype} {'vector' if x.ndim == 1 else 'array'}"


def _shape_of(value) -> tuple[int, ...] | None:
    try:
        return tuple(int(s) for s in np.shape(value))
    except Exception:  # noqa: BLE001 (a ragged list, an object without a shape)
        return None


def _refused_shape(op, name: str, x, expected: tuple[int, ...]) -> tuple[int, ...] | None:
    """Why SciPy's ``op.<name>`` raised, if it is the shape of the operator's own result.

    SciPy's ``matvec`` and ``rmatvec`` reshape the result of the subclass's
    ``_matvec`` / ``_rmatvec`` to the expected shape, so that a result with
    the wrong number of elements surfaces as a bare "cannot reshape" error.
    Calls the subclass's method once more and returns the shape of its result
    when that has the wrong number of elements; None in every other case.
    """
    private = getattr(op, "_" + name, None)
    if not isinstance(op, LinearOperator) or not callable(private):
        return None
    try:
        shape = _shape_of(private(np.array(x, copy=True)))
    except Exception:  # noqa: BLE001 (it raises itself: the original error tells more)
        return None
    if shape is None or math.prod(shape) == math.prod(expected):
        return None
    return shape


def call_operator(op: LinearOperator, name: str, x, *, label: str | None = None):
    """``op.<name>(x)`` (``name`` one of matvec, rmatvec, matmat, rmatmat), checked.

    Returns the result, whose shape has been checked against the operator's
    shape. An exception raised by the call, or a result of the wrong shape,
    raises `OperatorCallError` naming the call (``label``, default ``name``),
    the shape and dtype of ``x``, and what went wrong.
    """
    what = f"{label or name} of {describe_input(x)}"
    expected = (int(op.shape[_OUTPUT_AXIS[name]]), *np.shape(x)[1:])
    try:
        out = getattr(op, name)(x)
    except Exception as exc:
        refused = _refused_shape(op, name, x, expected)
        if refused is not None:
            raise OperatorCallError(
                f"{what} returned shape {refused}, expected {expected}"
            ) from exc
        raise OperatorCallError(f"{what} raised {describe_exception(exc)}") from exc
    shape = _shape_of(out)
    if shape is None:
        raise OperatorCallError(
            f"{what} returned a {type(out).__name__} without a shape, expected shape {expected}"
        )
    if shape != expected:
        raise OperatorCallError(f"{what} returned shape {shape}, expected {expected}")
    return out


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
    error : str or None
        None when both products were computed. Otherwise what went wrong:
        which call (``matvec`` or ``rmatvec``) of an input of which shape and
        dtype raised what, or returned which shape instead of which, for
        example ``"rmatvec of a (16,) float64 vector returned shape (15,),
        expected (16,)"``. Then ``passed`` is False and the numbers are NaN.

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
    error: str | None = None

    def __bool__(self) -> bool:
        return self.passed


@dataclasses.dataclass(frozen=True)
class DotTestResult:
    """The outcome of :func:`dottest`.

    The headline fields (``lhs`` to ``tolerance``, and ``error``) are those
    of the worst trial: one whose call of the operator failed if any, else
    the one with the largest ``abs_error / tolerance``; all trials are in
    ``trials``. ``bool(result)`` is ``result.passed``.

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
    error : str or None
        The ``error`` of the worst trial: None when every call of
        ``matvec`` and ``rmatvec`` returned an array of the right shape,
        else which call failed and how (see :class:`DotTestTrial`).

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
    >>> print(result.error)
    None

    An operator whose ``rmatvec`` returns a vector of the wrong length fails,
    and ``error`` says which call returned what:

    >>> from scipy.sparse.linalg import LinearOperator
    >>> A = np.arange(6.0).reshape(2, 3)
    >>> short = LinearOperator(A.shape, matvec=lambda x: A @ x,
    ...                        rmatvec=lambda y: (A.T @ y)[:2], dtype=A.dtype)
    >>> result = dottest(short, rng=0, raise_error=False)
    >>> print(result.passed, result.error)
    False rmatvec of a (2,) float64 vector returned shape (2,), expected (3,)
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
    error: str | None = None

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
        head = f"dottest {verdict}: {m}x{n} operator, {self.dtype} vectors ({which})"
        if self.error is not None:
            return "\n".join([head, f"  {self.error}", f"  passed = {self.passed}"])
        return "\n".join(
            [
                head,
                f"  <A x, y>   = {fmt_number(self.lhs)}",
                f"  <x, A^H y> = {fmt_number(self.rhs)}",
                f"  |difference|   = {self.abs_error:.3e}",
                (f"  scale          = {self.scale:.3e}"
                 "  (||Ax|| ||y||/sqrt(m) + ||A^H y|| ||x||/sqrt(n))"),
                f"  relative error = {self.rel_error:.3e}  (|difference| / scale)",
                f"  rtol = {self.rtol:.3e}, atol = {self.atol:.3e}",
                f"  tolerance      = {self.tolerance:.3e}  (atol + rtol * scale)",
                f"  passed = {self.passed}",
            ]
        )


# -- the test --------------------------------------------------------------------
def _failed_trial(error: str, vdtype) -> DotTestTrial:
    """A trial whose products could not be computed: NaN numbers, and the error."""
    nan = complex(math.nan, math.nan) if np.dtype(vdtype).kind == "c" else math.nan
    return DotTestTrial(lhs=nan, rhs=nan, abs_error=math.nan, scale=math.nan,
                        rel_error=math.nan, tolerance=math.nan, passed=False, error=error)


def _trial(op: LinearOperator, rng, vdtype, rtol: float, atol: float) -> DotTestTrial:
    m, n = op.shape
    x = random_vector(rng, n, vdtype)
    y = random_vector(rng, m, vdtype)
    # copies: an operator that scribbles over its input must not change x or y
    try:
        ax = np.asarray(call_operator(op, "matvec", x.copy()))
        ahy = np.asarray(call_operator(op, "rmatvec", y.copy()))
    except OperatorCallError as exc:
        return _failed_trial(str(exc), vdtype)
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


def _badness(t: DotTestTrial) -> tuple[bool, float]:
    """Sort key of the trials: failed calls first, then by ``abs_error / tolerance``."""
    if t.error is not None or math.isnan(t.abs_error):
        return t.error is not None, math.inf
    if t.tolerance > 0:
        return False, t.abs_error / t.tolerance
    return False, 0.0 if t.abs_error == 0 else math.inf


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
        errors, the scale and the tolerance; or, when ``matvec`` or
        ``rmatvec`` raised or returned an array of the wrong shape, which
        call of an input of which shape failed, and how (``result.error``).
    TypeError, ValueError
        For an argument that is not an operator, a bad tolerance, ``n_trials``
        or ``rng`` (linop's `ParameterTypeError` / `ParameterValueError`,
        naming the parameter, for the last three); a `ParameterTypeError` for
        a sparse vector (1-D) or an operator whose dtype is not numeric.

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
    n_trials = as_count(n_trials, "n_trials")
    op = as_operator(op)
    gen = as_generator(rng)
    vdtype = vector_dtype(op.dtype)
    rtol = default_rtol(vdtype, op.shape) if rtol is None else check_tolerance("rtol", rtol)
    atol = 0.0 if atol is None else check_tolerance("atol", atol)

    trials = tuple(_trial(op, gen, vdtype, rtol, atol) for _ in range(n_trials))
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
        error=w.error,
    )
    if raise_error and not result.passed:
        raise AssertionError(str(result))
    return result
