"""check_operator: a battery of checks that any linear operator must pass."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from linop._validation import ParameterValueError, as_count, as_int
from linop.testing._dottest import (
    OperatorCallError,
    accumulation_dtype,
    as_generator,
    as_operator,
    call_operator,
    check_tolerance,
    default_rtol,
    describe_exception,
    describe_input,
    dottest,
    random_scalar,
    random_vector,
    vector_dtype,
)

__all__ = ["CHECKS", "CheckReport", "CheckResult", "check_operator"]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


# -- results -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of :func:`check_operator`.

    Attributes
    ----------
    name : str
        The check's name (one of :data:`CHECKS`).
    status : {"PASS", "FAIL", "SKIP"}
        The verdict.
    details : str
        What was compared, and on failure what went wrong and by how much.

    See Also
    --------
    CheckReport : all the results of one :func:`check_operator` run.

    Examples
    --------
    A NumPy array is an operator without ``tocsr()``: that check is skipped,
    which is not a failure.

    >>> import numpy as np
    >>> from linop.testing import check_operator
    >>> report = check_operator(np.arange(6.0).reshape(2, 3), rng=0)
    >>> result = report["tocsr"]
    >>> result.name, result.status, result.passed
    ('tocsr', 'SKIP', True)
    >>> print(result)
    [SKIP] tocsr      the operator has no tocsr()
    >>> print(report["shape"])
    [PASS] shape      shape (2, 3), dtype float64
    """

    name: str
    status: str
    details: str

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check did not fail)."""
        return self.status != FAIL

    def __str__(self) -> str:
        lines = self.details.splitlines() or [""]
        head = f"[{self.status}] {self.name:<10} {lines[0]}"
        return "\n".join([head] + ["                  " + line for line in lines[1:]])


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """The report of :func:`check_operator`: one :class:`CheckResult` per check.

    ``bool(report)`` is ``report.passed``; ``report["dottest"]`` is the result
    of the check of that name; ``str(report)`` is the readable report.

    Attributes
    ----------
    operator : str
        ``repr`` of the operator that was checked.
    checks : tuple of CheckResult
        Every check, in the order they ran.

    See Also
    --------
    check_operator : which returns it.
    CheckResult : the outcome of one check.

    Examples
    --------
    >>> import numpy as np
    >>> from linop.testing import check_operator
    >>> report = check_operator(np.arange(6.0).reshape(2, 3), rng=0)
    >>> bool(report), report.passed, report.failed, report.skipped
    (True, True, [], ['tocsr'])
    >>> len(report.checks), report["dottest"].status
    (10, 'PASS')
    >>> print(str(report).splitlines()[0])  # doctest: +ELLIPSIS
    check_operator: all 10 checks passed (1 skipped) for <2x3 MatrixLinearOperator ...>
    """

    operator: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [c.name for c in self.checks if c.status == FAIL]

    @property
    def skipped(self) -> list[str]:
        """The names of the checks that were skipped."""
        return [c.name for c in self.checks if c.status == SKIP]

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __str__(self) -> str:
        nfail = len(self.failed)
        verdict = (
            f"{nfail} of {len(self.checks)} checks FAILED"
            if nfail
            else f"all {len(self.checks)} checks passed"
            + (f" ({len(self.skipped)} skipped)" if self.skipped else "")
        )
        lines = [f"check_operator: {verdict} for {self.operator}"]
        lines += ["  " + line for c in self.checks for line in str(c).splitlines()]
        if nfail:
            lines.append("FAILED: " + ", ".join(self.failed))
        return "\n".join(lines)


# -- machinery -------------------------------------------------------------------
class _Failure(Exception):
    """Raised inside a check to fail it with a message."""


class _Skip(Exception):
    """Raised inside a check to skip it with a message."""


@dataclasses.dataclass
class _Context:
    op: LinearOperator
    rng: np.random.Generator
    rtol: float
    atol: float
    n_trials: int
    max_dense: int
    vdtype: np.dtype  # dtype of the test vectors

    @property
    def m(self) -> int:
        return int(self.op.shape[0])

    @property
    def n(self) -> int:
        return int(self.op.shape[1])

    def vec(self, size, *more) -> np.ndarray:
        return random_vector(self.rng, (size, *more), self.vdtype)

    def scalar(self):
        return random_scalar(self.rng, self.vdtype)

    def expected_dtype(self, *inputs) -> np.dtype:
        return np.result_type(self.op.dtype, *inputs)

    def call(self, name: str, x, *, on: LinearOperator | None = None, label: str | None = None):
        """``on.<name>(x)`` (``on`` defaults to the operator); a failure names the call.

        An exception, or a result of the wrong shape, fails the check with
        ``"<label> of a (16,) float64 vector raised ..."`` (see call_operator).
        """
        return call_operator(self.op if on is None else on, name, x, label=label)


def _view(op: LinearOperator, attr: str, label: str) -> LinearOperator:
    """``op.H`` or ``op.T``; an exception fails the check, naming the attribute."""
    try:
        return getattr(op, attr)
    except Exception as exc:
        raise _Failure(f"{label} raised {describe_exception(exc)}") from exc


def _shape_dtype(x) -> str:
    """``"(16,) float64"``: the shape and dtype of a test input, for messages."""
    return f"{x.shape} {x.dtype}"


def _norm(a) -> float:
    a = np.asarray(a)
    return float(np.linalg.norm(a.astype(accumulation_dtype(a.dtype), copy=False).ravel()))


def _compare(ctx: _Context, what: str, actual, expected, scale: float | None = None) -> str:
    """Fail unless ``||actual - expected|| <= atol + rtol * scale``; return a summary."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise _Failure(f"{what}: shape {actual.shape}, expected {expected.shape}")
    if scale is None:
        scale = _norm(expected)
    acc = accumulation_dtype(actual.dtype, expected.dtype)
    diff = _norm(actual.astype(acc) - expected.astype(acc))
    tol = ctx.atol + ctx.rtol * scale
    summary = f"||difference|| = {diff:.3e} <= {tol:.3e} (= atol + rtol * {scale:.3e})"
    if not diff <= tol:
        raise _Failure(
            f"{what}: ||difference|| = {diff:.3e} > tolerance {tol:.3e} "
            f"(= atol {ctx.atol:.1e} + rtol {ctx.rtol:.1e} * scale {scale:.3e})"
        )
    return summary


def _expect_array(what: str, a, shape, dtype) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise _Failure(f"{what} returned {type(a).__name__}, expected numpy.ndarray")
    if a.shape != tuple(shape):
        raise _Failure(f"{what} returned shape {a.shape}, expected {tuple(shape)}")
    if a.dtype != dtype:
        raise _Failure(f"{what} returned dtype {a.dtype}, expected {dtype}")
    if np.issubdtype(a.dtype, np.number) and not np.all(np.isfinite(a)):
        raise _Failure(f"{what} returned non-finite values for a finite input")
    return a


def _unchanged(what: str, a, copy) -> None:
    if not np.array_equal(a, copy):
        raise _Failure(f"{what} modified its input array in place")


# -- the checks ------------------------------------------------------------------
def _check_shape(ctx: _Context) -> str:
    op = ctx.op
    shape = op.shape
    if not (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape)
        and all(s >= 0 for s in shape)
    ):
        raise _Failure(f"shape must be a tuple of two non-negative ints, got {shape!r}")
    if not isinstance(op.dtype, np.dtype):
        raise _Failure(f"dtype must be a numpy.dtype, got {op.dtype!r}")
    msg = f"shape {shape}, dtype {op.dtype}"
    for attr, size in (("input_shape", ctx.n), ("output_shape", ctx.m)):
        if hasattr(op, attr):
            try:
                value = tuple(getattr(op, attr))
            except TypeError:
                raise _Failure(
                    f"{attr} must be a sequence of ints, got {getattr(op, attr)!r}"
                ) from None
            if math.prod(value) != size:
                raise _Failure(
                    f"{attr} {value} has {math.prod(value)} elements, "
                    f"but the operator's shape is {shape}"
                )
            msg += f", {attr} {value}"
    return msg


def _check_apply(ctx: _Context, name: str) -> str:
    """matvec (name == "matvec") or rmatvec of a 1-D vector: shape, dtype, finiteness, input.

    Never of an ``(n, 1)`` column: SciPy 1.18 deprecates that (a FutureWarning),
    and the matmat / rmatmat checks cover ``(n, 1)`` blocks.
    """
    size_in, size_out = (ctx.n, ctx.m) if name == "matvec" else (ctx.m, ctx.n)
    x = ctx.vec(size_in)
    x0 = x.copy()
    what = f"{name} of {describe_input(x)}"
    dtype = ctx.expected_dtype(x.dtype)
    _expect_array(what, ctx.call(name, x), (size_out,), dtype)
    _unchanged(what, x, x0)
    return f"returns shape ({size_out},) and dtype {dtype} for {describe_input(x)}; keeps its input"


def _check_dottest(ctx: _Context) -> str:
    result = dottest(
        ctx.op, rtol=ctx.rtol, atol=ctx.atol, n_trials=ctx.n_trials, rng=ctx.rng,
        raise_error=False,
    )
    if not result.passed:
        raise _Failure(str(result))
    return (
        f"relative error {result.rel_error:.2e} <= rtol {result.rtol:.2e} "
        f"({len(result.trials)} trials)"
    )


def _check_linearity(ctx: _Context) -> str:
    out = []
    for name, size in (("matvec", ctx.n), ("rmatvec", ctx.m)):
        x1, x2 = ctx.vec(size), ctx.vec(size)
        a, b = ctx.scalar(), ctx.scalar()
        f1 = np.asarray(ctx.call(name, x1.copy()))
        f2 = np.asarray(ctx.call(name, x2.copy()))
        combined = np.asarray(ctx.call(name, a * x1 + b * x2))
        scale = abs(a) * _norm(f1) + abs(b) * _norm(f2)
        _compare(ctx, f"{name} of {_shape_dtype(x1)} vectors: "
                 f"{name}(a x1 + b x2) vs a {name}(x1) + b {name}(x2)",
                 combined, a * f1 + b * f2, scale)
        out.append(name)
    return "A(a x1 + b x2) == a A x1 + b A x2 for " + " and ".join(out)


def _check_matmat(ctx: _Context, name: str, k: int = 3) -> str:
    """matmat (name == "matmat") or rmatmat against column-by-column matvec."""
    single = "matvec" if name == "matmat" else "rmatvec"
    size_in, size_out = (ctx.n, ctx.m) if name == "matmat" else (ctx.m, ctx.n)
    X = ctx.vec(size_in, k)
    X0 = X.copy()
    what = f"{name} of {describe_input(X)}"
    dtype = ctx.expected_dtype(X.dtype)
    Y = _expect_array(what, ctx.call(name, X), (size_out, k), dtype)
    _unchanged(what, X, X0)
    for j in range(k):
        _compare(ctx, f"column {j} of {k} of {name}(X) vs {single}(X[:, {j}]), "
                 f"X {_shape_dtype(X)}", Y[:, j], ctx.call(single, X[:, j].copy()))
    X1 = X[:, :1].copy()
    Y1 = _expect_array(f"{name} of {describe_input(X1)}", ctx.call(name, X1.copy()),
                       (size_out, 1), dtype)
    _compare(ctx, f"{name} of {describe_input(X1)} vs {single} of its column",
             Y1[:, 0], ctx.call(single, X1[:, 0].copy()))
    return f"{name}(X) == [{single}(x) for x in columns of X], {k} columns and 1"


def _check_adjoint(ctx: _Context) -> str:
    op = ctx.op
    H = _view(op, "H", "op.H")
    if tuple(H.shape) != (ctx.n, ctx.m):
        raise _Failure(f"op.H has shape {H.shape}, expected {(ctx.n, ctx.m)}")
    if H.dtype != op.dtype:
        raise _Failure(f"op.H has dtype {H.dtype}, expected {op.dtype}")
    x, y = ctx.vec(ctx.n), ctx.vec(ctx.m)
    c = np.copy
    HH = _view(H, "H", "op.H.H")
    _compare(ctx, f"op.H.matvec(y) vs op.rmatvec(y), y {_shape_dtype(y)}",
             ctx.call("matvec", c(y), on=H, label="op.H.matvec"),
             ctx.call("rmatvec", c(y), label="op.rmatvec"))
    _compare(ctx, f"op.H.rmatvec(x) vs op.matvec(x), x {_shape_dtype(x)}",
             ctx.call("rmatvec", c(x), on=H, label="op.H.rmatvec"),
             ctx.call("matvec", c(x), label="op.matvec"))
    _compare(ctx, f"op.H.H.matvec(x) vs op.matvec(x), x {_shape_dtype(x)}",
             ctx.call("matvec", c(x), on=HH, label="op.H.H.matvec"),
             ctx.call("matvec", c(x), label="op.matvec"))
    return "op.H.matvec == op.rmatvec, op.H.rmatvec == op.matvec, op.H.H == op"


def _check_transpose(ctx: _Context) -> str:
    op = ctx.op
    T = _view(op, "T", "op.T")
    if tuple(T.shape) != (ctx.n, ctx.m):
        raise _Failure(f"op.T has shape {T.shape}, expected {(ctx.n, ctx.m)}")
    if T.dtype != op.dtype:
        raise _Failure(f"op.T has dtype {T.dtype}, expected {op.dtype}")
    x, y = ctx.vec(ctx.n), ctx.vec(ctx.m)
    c = np.copy
    H, TT = _view(op, "H", "op.H"), _view(T, "T", "op.T.T")
    _compare(ctx, f"op.T.matvec(y) vs conj(op.H.matvec(conj(y))), y {_shape_dtype(y)}",
             ctx.call("matvec", c(y), on=T, label="op.T.matvec"),
             np.conj(ctx.call("matvec", np.conj(y), on=H, label="op.H.matvec")))
    _compare(ctx, f"op.T.rmatvec(x) vs conj(op.matvec(conj(x))), x {_shape_dtype(x)}",
             ctx.call("rmatvec", c(x), on=T, label="op.T.rmatvec"),
             np.conj(ctx.call("matvec", np.conj(x), label="op.matvec")))
    _compare(ctx, f"op.T.T.matvec(x) vs op.matvec(x), x {_shape_dtype(x)}",
             ctx.call("matvec", c(x), on=TT, label="op.T.T.matvec"),
             ctx.call("matvec", c(x), label="op.matvec"))
    return "op.T y == conj(op.H conj(y)), op.T.H == conj(op), op.T.T == op"


def _sparse_close(ctx: _Context, what: str, actual, expected) -> None:
    if not sp.issparse(actual):
        raise _Failure(f"{what} is a {type(actual).__name__}, not a scipy sparse array")
    if actual.shape != expected.shape:
        raise _Failure(f"{what} has shape {actual.shape}, expected {expected.shape}")
    diff = abs(sp.csr_array(actual) - sp.csr_array(expected))
    worst = float(diff.max()) if diff.nnz else 0.0
    ref = float(abs(expected).max()) if expected.nnz else 0.0
    tol = ctx.atol + ctx.rtol * ref
    if not worst <= tol:
        raise _Failure(f"{what}: largest entry difference {worst:.3e} > tolerance {tol:.3e}")


def _check_tocsr(ctx: _Context) -> str:
    op = ctx.op
    tocsr = getattr(op, "tocsr", None)
    if not callable(tocsr):
        raise _Skip("the operator has no tocsr()")
    try:
        M = tocsr()
    except Exception as exc:
        raise _Failure(f"tocsr() raised {describe_exception(exc)}") from exc
    if not sp.issparse(M):
        raise _Failure(f"tocsr() returned {type(M).__name__}, not a scipy sparse array")
    if M.shape != op.shape:
        raise _Failure(f"tocsr() has shape {M.shape}, expected {op.shape}")
    if M.dtype != op.dtype:
        raise _Failure(f"tocsr() has dtype {M.dtype}, expected {op.dtype}")
    M = sp.csr_array(M)
    m, n = ctx.m, ctx.n
    if 0 < m * n <= ctx.max_dense and n * n <= ctx.max_dense:
        # every column of the operator against the matrix, entry by entry
        eye = np.eye(n, dtype=ctx.vdtype)
        dense = np.asarray(ctx.call("matmat", eye, label="op.matmat"))
        ref = M.toarray()
        err = np.abs(dense.astype(accumulation_dtype(dense.dtype)) - ref)
        err[np.isnan(err)] = np.inf
        tol = ctx.atol + ctx.rtol * float(np.abs(ref).max())
        if not err.max() <= tol:
            i, j = np.unravel_index(np.argmax(err), err.shape)
            raise _Failure(
                f"entry ({i}, {j}): op.matmat of the {_shape_dtype(eye)} identity gives "
                f"{dense[i, j]!r}, tocsr() {ref[i, j]!r}; "
                f"largest entry difference {err.max():.3e} > tolerance {tol:.3e}"
            )
        how = f"every entry ({m}x{n})"
    else:
        how = "random probes"
    X, Y = ctx.vec(n, 3), ctx.vec(m, 3)
    _compare(ctx, f"tocsr() @ X vs op.matmat(X), X {_shape_dtype(X)}",
             M @ X, ctx.call("matmat", X.copy(), label="op.matmat"))
    _compare(ctx, f"tocsr().conj().T @ Y vs op.rmatmat(Y), Y {_shape_dtype(Y)}",
             M.conj().T @ Y, ctx.call("rmatmat", Y.copy(), label="op.rmatmat"))
    extra = []
    for attr, expected in (("H", lambda: M.conj().T), ("T", lambda: M.T)):
        other = _view(op, attr, f"op.{attr}")
        if callable(getattr(other, "tocsr", None)):
            try:
                other_csr = other.tocsr()
            except Exception as exc:
                raise _Failure(f"op.{attr}.tocsr() raised {describe_exception(exc)}") from exc
            _sparse_close(ctx, f"op.{attr}.tocsr()", other_csr, sp.csr_array(expected()))
            extra.append(f"op.{attr}.tocsr()")
    return f"tocsr() agrees with the operator on {how} and adjoint probes" + (
        "; " + ", ".join(extra) + " consistent" if extra else ""
    )


#: The checks of :func:`check_operator`, in order, with what each verifies.
#:
#: A dict from the name of each check (the ``name`` of its
#: :class:`CheckResult`, and what the ``skip`` argument of
#: :func:`check_operator` takes) to a one-line description.
#:
#: Examples
#: --------
#: >>> from linop.testing import CHECKS
#: >>> print(*CHECKS)
#: shape matvec rmatvec dottest linearity matmat rmatmat adjoint transpose tocsr
#: >>> CHECKS["dottest"]
#: '<A x, y> == <x, A^H y> (see dottest)'
CHECKS: dict[str, str] = {
    "shape": "shape is two non-negative ints, dtype a numpy dtype, input/output_shape agree",
    "matvec": "matvec of a 1-D vector: shape (m,), the operator's dtype, input kept",
    "rmatvec": "rmatvec of a 1-D vector: shape (n,), the operator's dtype, input kept",
    "dottest": "<A x, y> == <x, A^H y> (see dottest)",
    "linearity": "A(a x1 + b x2) == a A x1 + b A x2, for matvec and rmatvec",
    "matmat": "matmat(X) == matvec of each column, shape (m, k), dtype, for k = 3 and k = 1",
    "rmatmat": "rmatmat(Y) == rmatvec of each column, shape (n, k), dtype, for k = 3 and k = 1",
    "adjoint": "op.H agrees with rmatvec/matvec; op.H.H with op",
    "transpose": "op.T y == conj(op.H conj(y)); op.T.T agrees with op",
    "tocsr": "tocsr() (when present) is sparse, of the right shape/dtype, equal to the operator",
}

_RUNNERS: dict[str, Callable[[_Context], str]] = {
    "shape": _check_shape,
    "matvec": lambda ctx: _check_apply(ctx, "matvec"),
    "rmatvec": lambda ctx: _check_apply(ctx, "rmatvec"),
    "dottest": _check_dottest,
    "linearity": _check_linearity,
    "matmat": lambda ctx: _check_matmat(ctx, "matmat"),
    "rmatmat": lambda ctx: _check_matmat(ctx, "rmatmat"),
    "adjoint": _check_adjoint,
    "transpose": _check_transpose,
    "tocsr": _check_tocsr,
}


def _run(name: str, ctx: _Context) -> CheckResult:
    try:
        return CheckResult(name, PASS, _RUNNERS[name](ctx))
    except (_Failure, OperatorCallError) as exc:
        return CheckResult(name, FAIL, str(exc))
    except _Skip as exc:
        return CheckResult(name, SKIP, str(exc))
    except Exception as exc:  # noqa: BLE001 (a failure of this check, not of the others)
        return CheckResult(name, FAIL, f"raised {describe_exception(exc)}")


def check_operator(
    op,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    rng: int | np.random.Generator | np.random.SeedSequence | None = None,
    n_trials: int = 3,
    max_dense: int = 1_000_000,
    skip: Iterable[str] = (),
    raise_error: bool = True,
) -> CheckReport:
    """Run a battery of checks that every linear operator must pass.

    In the spirit of scikit-learn's ``check_estimator``: each check runs
    independently (an exception raised by the operator fails that check
    only), and the report lists every check with its verdict and details.
    A failure names the call that failed and the shape and dtype of its
    input, for example ``rmatvec of a (16,) float64 vector raised
    ValueError: ...`` or ``... returned shape (15,), expected (16,)``.

    The checks, in order (see also :data:`CHECKS`):

    ``shape``
        ``op.shape`` is two non-negative ints, ``op.dtype`` a numpy dtype, and
        ``input_shape`` / ``output_shape`` (when present) have ``n`` / ``m``
        elements.
    ``matvec``, ``rmatvec``
        Of a 1-D vector, return ndarrays of shape ``(m,)`` / ``(n,)`` whose
        dtype is ``result_type(op.dtype, input)``, finite for finite input,
        and do not modify their input. They are never called on an ``(n, 1)``
        column (SciPy 1.18 deprecates that); ``matmat`` and ``rmatmat`` are,
        below.
    ``dottest``
        :func:`dottest`: ``rmatvec`` is the Hermitian adjoint of ``matvec``.
    ``linearity``
        ``A(a x1 + b x2) == a A x1 + b A x2`` for ``matvec`` and ``rmatvec``,
        random (complex for complex operators) ``a`` and ``b``.
    ``matmat``, ``rmatmat``
        Agree with ``matvec`` / ``rmatvec`` column by column, for an
        ``(n, 3)`` / ``(m, 3)`` block and for an ``(n, 1)`` / ``(m, 1)``
        column; right shape and dtype; input not modified.
    ``adjoint``
        ``op.H`` has shape ``(n, m)`` and the operator's dtype, its
        ``matvec`` / ``rmatvec`` agree with ``op.rmatvec`` / ``op.matvec``,
        and ``op.H.H`` agrees with ``op``.
    ``transpose``
        ``op.T`` has shape ``(n, m)`` and the operator's dtype, ``op.T y ==
        conj(op.H conj(y))`` (``op.T == op.H`` for real operators),
        ``op.T.H x == conj(op x)``, and ``op.T.T`` agrees with ``op``. This
        matters for operators that implement ``.T`` themselves.
    ``tocsr``
        Only for operators with a ``tocsr()`` method: it returns a scipy
        sparse array of the operator's shape and dtype, equal entry by entry
        to the operator applied to the identity when ``m * n`` and ``n * n``
        are at most ``max_dense``,
        and on random probes of ``matmat`` and ``rmatmat``; ``op.H.tocsr()``
        and ``op.T.tocsr()``, when present, are its conjugate transpose and
        transpose.

    Parameters
    ----------
    op : LinearOperator or array_like or sparse matrix
        Anything :func:`scipy.sparse.linalg.aslinearoperator` accepts.
    rtol, atol : float, optional
        Tolerances of every comparison: ``||difference|| <= atol + rtol *
        scale``, where ``scale`` is the norm of the reference result. The
        default ``rtol`` is that of :func:`dottest`,
        ``10 * eps * (sqrt(m) + sqrt(n))``; the default ``atol`` is 0.
    rng : {None, int, numpy.random.Generator, numpy.random.SeedSequence}, optional
        Source of the random test vectors (SciPy convention).
    n_trials : int, optional
        Number of trials of the dot test, at least 1. Default 3.
    max_dense : int, optional
        ``tocsr()`` is compared entry by entry with the operator applied to
        the ``n x n`` identity when ``m * n`` and ``n * n`` are at most
        ``max_dense`` (an int >= 0, default ``10**6``), on random probes only
        otherwise.
    skip : iterable of str, optional
        Names of checks not to run (they are reported as skipped).
    raise_error : bool, optional
        If True (default) raise :class:`AssertionError`, whose message is the
        full report, when any check failed.

    Returns
    -------
    CheckReport
        One :class:`CheckResult` per check; ``report.passed``,
        ``report.failed`` (names of failed checks), ``str(report)``.

    Raises
    ------
    AssertionError
        If a check failed and ``raise_error`` is True.
    ValueError, TypeError
        For an unknown check name in ``skip``, a bad ``n_trials``,
        ``max_dense``, tolerance or ``rng``: linop's `ParameterValueError` /
        `ParameterTypeError`, whose ``parameter`` names the argument. Also a
        `ParameterTypeError` for an ``op`` that is a sparse vector (1-D) or
        has a dtype that is not numeric (objects, strings).

    See Also
    --------
    dottest : the adjoint test alone.

    Notes
    -----
    The test vectors have the operator's dtype (float64 for integer
    operators), with standard normal entries, complex for complex operators.
    Comparisons between two ways of computing the same product allow for
    rounding errors of order ``eps * sqrt(n)`` relative to the result, hence
    the default ``rtol``. The checks are cheap: a few dozen products with the
    operator, plus ``n`` columns for the entry-by-entry ``tocsr`` check.

    Examples
    --------
    Testing a hand-written operator, the cumulative sum and its adjoint:

    >>> import numpy as np
    >>> from scipy.sparse.linalg import LinearOperator
    >>> from linop.testing import check_operator
    >>> class CumSum(LinearOperator):
    ...     def __init__(self, n, dtype=np.float64):
    ...         super().__init__(dtype=np.dtype(dtype), shape=(n, n))
    ...     def _matvec(self, x):
    ...         return np.cumsum(x)
    ...     def _rmatvec(self, y):
    ...         return np.cumsum(y[::-1])[::-1]
    >>> report = check_operator(CumSum(50), rng=0)
    >>> print(report.passed, report.skipped)
    True ['tocsr']

    A version whose adjoint forgets the last entry fails the dot test, and
    the report says so:

    >>> class BadCumSum(CumSum):
    ...     def _rmatvec(self, y):
    ...         out = np.cumsum(y[::-1])[::-1]
    ...         out[-1] = 0
    ...         return out
    >>> report = check_operator(BadCumSum(50), rng=0, raise_error=False)
    >>> print(report.failed)
    ['dottest']
    >>> print(report["dottest"].status)
    FAIL

    A failure says what was called, with what: here ``rmatvec`` returns one
    entry too many.

    >>> class LongCumSum(CumSum):
    ...     def _rmatvec(self, y):
    ...         return np.append(np.cumsum(y[::-1])[::-1], 0.0)
    >>> report = check_operator(LongCumSum(50), rng=0, raise_error=False)
    >>> print(report["rmatvec"])
    [FAIL] rmatvec    rmatvec of a (50,) float64 vector returned shape (51,), expected (50,)
    """
    op = as_operator(op)
    skip = set(skip)
    unknown = skip - set(CHECKS)
    if unknown:
        raise ParameterValueError(
            "skip", f"skip contains unknown check names {sorted(unknown)}; known: {list(CHECKS)}"
        )
    max_dense = as_int(max_dense, "max_dense", minimum=0, maximum=None)
    n_trials = as_count(n_trials, "n_trials")
    vdtype = vector_dtype(op.dtype)
    ctx = _Context(
        op=op,
        rng=as_generator(rng),
        rtol=default_rtol(vdtype, op.shape) if rtol is None else check_tolerance("rtol", rtol),
        atol=0.0 if atol is None else check_tolerance("atol", atol),
        n_trials=n_trials,
        max_dense=max_dense,
        vdtype=vdtype,
    )
    checks = tuple(
        CheckResult(name, SKIP, "skipped by request") if name in skip else _run(name, ctx)
        for name in CHECKS
    )
    report = CheckReport(operator=_describe(op), checks=checks)
    if raise_error and not report.passed:
        raise AssertionError(str(report))
    return report


def _describe(op: LinearOperator) -> str:
    try:
        text = repr(op)
    except Exception:  # noqa: BLE001 (a broken __repr__ must not hide the report)
        text = f"<{op.shape[0]}x{op.shape[1]} {type(op).__name__} with dtype={op.dtype}>"
    return text if len(text) <= 200 else text[:197] + "..."
