"""Tests of linop.testing: dottest, check_operator and the hypothesis strategies.

Layout:

1. hand-written operators, correct and deliberately broken (wrong adjoint by one
   pixel, a missing conjugate, a matmat that ignores a column, a wrong ``.T``,
   an affine map, a wrong dtype, a mutated input, a wrong ``tocsr``, results of
   the wrong shape, a matvec that raises);
2. ``dottest``: passes on correct operators in float32/float64/complex64/complex128
   (also large float32 ones), fails on wrong adjoints in every precision, reports
   honest numbers, reports a call that raised or returned the wrong shape, follows
   SciPy's ``rng`` convention, validates its arguments;
3. ``check_operator``: every broken operator is caught and the failing check is
   named exactly, every failure names the call and the shape and dtype of its
   input; the report and its exceptions; no ``matvec`` of an ``(n, 1)`` column
   (deprecated by SciPy 1.18);
4. the hypothesis strategies draw valid parameter sets (checked here with
   PyTorch's rules, independently of the strategies' code) covering the space;
5. ``check_operator`` over every linop operator class and, as property tests,
   over every configuration the strategies draw;
6. the docstring examples run, and hypothesis is imported only by strategies.
"""

from __future__ import annotations

import dataclasses
import doctest
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, Phase, find, given, settings
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import linop
import linop.testing as lt
from linop.testing import (
    CHECKS,
    CheckReport,
    CheckResult,
    DotTestResult,
    check_operator,
    default_rtol,
    dottest,
)
from linop.testing import strategies as S

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
COMPLEX = [np.complex64, np.complex128]
FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# ============================================================================
# 1. hand-written operators
# ============================================================================
def random_matrix(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


class Dense(LinearOperator):
    """A correct operator: a dense matrix, adjoint A^H, matmat A @ X."""

    def __init__(self, A):
        self.A = np.asarray(A)
        super().__init__(dtype=self.A.dtype, shape=self.A.shape)

    def _matvec(self, x):
        return self.A @ x

    def _rmatvec(self, y):
        return self.A.conj().T @ y

    def _matmat(self, X):
        return self.A @ X

    def _rmatmat(self, Y):
        return self.A.conj().T @ Y


class RolledAdjoint(Dense):
    """Wrong adjoint: the right values, one pixel off."""

    def _rmatvec(self, y):
        return np.roll(self.A.conj().T @ y, 1)

    def _rmatmat(self, Y):
        return np.roll(self.A.conj().T @ Y, 1, axis=0)


class MissingConjugate(Dense):
    """Wrong adjoint for complex operators: A^T instead of A^H."""

    def _rmatvec(self, y):
        return self.A.T @ y

    def _rmatmat(self, Y):
        return self.A.T @ Y


class IgnoresColumn(Dense):
    """matmat ignores the last column of its input (leaves zeros)."""

    def _matmat(self, X):
        out = np.zeros((self.shape[0], X.shape[1]), dtype=np.result_type(self.A, X))
        out[:, :-1] = self.A @ X[:, :-1]
        return out


class WrongTranspose(Dense):
    """``.T`` returns the Hermitian adjoint: wrong for complex operators."""

    def _transpose(self):
        return Dense(self.A.conj().T)


class Affine(Dense):
    """Not linear: adds a constant."""

    def _matvec(self, x):
        return self.A @ x + 1

    def _matmat(self, X):
        return self.A @ X + 1


class WrongDtype(Dense):
    """Declares the matrix's dtype but computes in float64/complex128."""

    def _matvec(self, x):
        return self.A.astype(np.complex128 if self.A.dtype.kind == "c" else np.float64) @ x


class MutatesInput(Dense):
    """Correct results, but scribbles over its input."""

    def _matvec(self, x):
        out = self.A @ x
        x[...] = 0
        return out


class WithCsr(Dense):
    """An operator with tocsr(); ``bad_entry`` perturbs one entry of the matrix."""

    def __init__(self, A, bad_entry=None):
        super().__init__(A)
        self.bad_entry = bad_entry

    def tocsr(self):
        M = self.A.copy()
        if self.bad_entry is not None:
            M[self.bad_entry] += 1
        return sp.csr_array(M)


class NoAdjoint(LinearOperator):
    """rmatvec is not implemented."""

    def __init__(self, A):
        self.A = A
        super().__init__(dtype=A.dtype, shape=A.shape)

    def _matvec(self, x):
        return self.A @ x


class ShortAdjoint(Dense):
    """rmatvec returns one entry too few: SciPy's wrapper cannot reshape it."""

    def _rmatvec(self, y):
        return (self.A.conj().T @ y)[:-1]


class ColumnAdjoint(Dense):
    """Overrides SciPy's rmatvec itself and returns an (n, 1) column for a 1-D input."""

    def rmatvec(self, y):
        return (self.A.conj().T @ y).reshape(-1, 1)


class RaisingMatvec(Dense):
    """matvec reshapes its input wrongly, so NumPy raises."""

    def _matvec(self, x):
        return self.A @ x.reshape(4, 4)


class TallMatmat(Dense):
    """matmat returns one row too many."""

    def _matmat(self, X):
        return np.vstack([self.A @ X, X[:1]])


class Recording(Dense):
    """Remembers the vectors it was applied to."""

    def _matvec(self, x):
        self.x = x.copy()
        return super()._matvec(x)

    def _rmatvec(self, y):
        self.y = y.copy()
        return super()._rmatvec(y)


# ============================================================================
# 2. dottest
# ============================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 7), (120, 90)])
def test_dottest_passes_on_correct_operators(dtype, shape):
    for seed in range(5):
        result = dottest(Dense(random_matrix(shape, dtype, seed)), n_trials=4, rng=seed)
        assert result.passed and bool(result)
        assert result.rel_error <= result.rtol
        assert result.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 2), (7, 3), (3, 7), (120, 90)])
def test_dottest_fails_on_adjoint_off_by_one_pixel(dtype, shape):
    for seed in range(5):
        op = RolledAdjoint(random_matrix(shape, dtype, seed))
        result = dottest(op, rng=seed, raise_error=False)
        assert not result.passed and not bool(result)
        # a wrong adjoint is wrong by O(1), far above the tolerance
        assert result.rel_error > 100 * result.rtol
        with pytest.raises(AssertionError, match="dottest FAILED"):
            dottest(op, rng=seed)


@pytest.mark.parametrize("dtype", COMPLEX)
def test_dottest_fails_on_missing_conjugate(dtype):
    for seed in range(5):
        result = dottest(MissingConjugate(random_matrix((20, 30), dtype, seed)), rng=seed,
                         raise_error=False)
        assert not result.passed
        assert result.rel_error > 100 * result.rtol
        assert isinstance(result.lhs, complex) and isinstance(result.rhs, complex)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_missing_conjugate_is_harmless_for_real_operators(dtype):
    # A^T == A^H for real A: the same code must pass, the checker is not just failing
    assert dottest(MissingConjugate(random_matrix((20, 30), dtype)), rng=0).passed


def _banded_float32(n, seed):
    rng = np.random.default_rng(seed)
    offsets = [-300, -5, -1, 0, 1, 2, 77]
    diagonals = [rng.standard_normal(n - abs(o)).astype(np.float32) for o in offsets]
    return sp.diags_array(diagonals, offsets=offsets, format="csr", dtype=np.float32)


def test_dottest_float32_large_operators_pass_and_wrong_adjoint_fails():
    """The tolerance separates right from wrong at 200 000 pixels in single precision."""
    M = _banded_float32(200_000, 1)
    good = aslinearoperator(M)
    bad = LinearOperator(M.shape, matvec=lambda x: M @ x, dtype=np.float32,
                         rmatvec=lambda y: np.roll(M.T @ y, 1))
    for seed in range(3):
        ok = dottest(good, rng=seed)
        assert ok.passed and ok.dtype == np.float32
        # rounding of a correct float32 operator is far below the tolerance ...
        assert ok.rel_error < ok.rtol / 10
        wrong = dottest(bad, rng=seed, raise_error=False)
        # ... and a wrong adjoint far above it
        assert not wrong.passed and wrong.rel_error > 10 * wrong.rtol


def test_dottest_float32_many_seeds_never_false_alarm():
    A = random_matrix((300, 200), np.float32, 3)
    results = [dottest(Dense(A), rng=seed, n_trials=2) for seed in range(40)]
    assert all(r.passed for r in results)
    # the observed errors sit well inside the tolerance (the margin is the point)
    assert max(r.rel_error / r.rtol for r in results) < 0.2


def test_dottest_uses_vectors_of_the_operator_dtype():
    for dtype in DTYPES:
        op = Recording(random_matrix((6, 5), dtype))
        result = dottest(op, rng=0, n_trials=1)
        assert op.x.dtype == dtype and op.y.dtype == dtype
        if np.dtype(dtype).kind == "c":
            assert np.all(op.x.imag != 0) and np.all(op.y.imag != 0)
        # the reported inner products are y^H A x and (A^H y)^H x for those vectors
        A = op.A.astype(np.complex128)
        lhs = np.vdot(op.y, A @ op.x)
        rhs = np.vdot(A.conj().T @ op.y, op.x)
        assert result.lhs == pytest.approx(lhs, rel=1e-5)
        assert result.rhs == pytest.approx(rhs, rel=1e-5)
        assert type(result.lhs) is (complex if np.dtype(dtype).kind == "c" else float)


def test_dottest_result_fields_are_consistent():
    result = dottest(RolledAdjoint(random_matrix((9, 8), np.float64)), rng=1, n_trials=4,
                     atol=1e-3, raise_error=False)
    assert isinstance(result, DotTestResult)
    assert len(result.trials) == 4
    assert result.passed == all(t.passed for t in result.trials)
    worst = result.trials[result.worst]
    assert (result.lhs, result.rhs, result.abs_error) == (worst.lhs, worst.rhs, worst.abs_error)
    assert result.abs_error == pytest.approx(abs(result.lhs - result.rhs))
    assert result.rel_error == pytest.approx(result.abs_error / result.scale)
    assert result.tolerance == pytest.approx(result.atol + result.rtol * result.scale)
    assert result.atol == 1e-3
    assert result.rtol == default_rtol(np.float64, (9, 8))
    # the worst trial is the one furthest beyond its tolerance
    ratios = [t.abs_error / t.tolerance for t in result.trials]
    assert result.worst == int(np.argmax(ratios))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.passed = True


def test_dottest_error_message_holds_the_numbers():
    op = RolledAdjoint(random_matrix((12, 10), np.float32))
    result = dottest(op, rng=7, raise_error=False)
    with pytest.raises(AssertionError) as info:
        dottest(op, rng=7)
    message = str(info.value)
    assert message == str(result)
    for number in (f"{result.lhs:.17g}", f"{result.rhs:.17g}", f"{result.abs_error:.3e}",
                   f"{result.rel_error:.3e}", f"{result.tolerance:.3e}", f"{result.rtol:.3e}"):
        assert number in message
    assert "12x10" in message and "float32" in message and "passed = False" in message


def test_dottest_rng_convention():
    op = Dense(random_matrix((10, 8), np.float64))
    assert dottest(op, rng=3) == dottest(op, rng=3)
    assert dottest(op, rng=np.random.default_rng(3)) == dottest(op, rng=3)
    assert dottest(op, rng=np.random.SeedSequence(3)).passed
    assert dottest(op, rng=3).lhs != dottest(op, rng=4).lhs
    assert dottest(op).passed  # fresh entropy
    with pytest.raises(TypeError, match="rng"):
        dottest(op, rng=np.random.RandomState(0))
    with pytest.raises((TypeError, ValueError), match="rng"):
        dottest(op, rng="seed")


def test_dottest_validates_arguments():
    op = Dense(random_matrix((4, 4), np.float64))
    with pytest.raises(ValueError, match="n_trials"):
        dottest(op, n_trials=0)
    with pytest.raises(TypeError, match="n_trials"):
        dottest(op, n_trials=1.5)
    with pytest.raises(ValueError, match="rtol"):
        dottest(op, rtol=-1.0)
    with pytest.raises(ValueError, match="atol"):
        dottest(op, atol=float("nan"))
    with pytest.raises(TypeError, match="rtol"):
        dottest(op, rtol="1e-3")
    with pytest.raises(TypeError):
        dottest("not an operator")
    # linop's parameter errors, which name the parameter
    for kwargs, kind in ((dict(n_trials=0), ValueError), (dict(n_trials=True), TypeError),
                         (dict(rtol=-1.0), ValueError), (dict(atol="0"), TypeError),
                         (dict(rng="seed"), (TypeError, ValueError))):
        with pytest.raises(kind) as info:
            dottest(op, **kwargs)
        assert isinstance(info.value, linop.ParameterError)
        assert info.value.parameter == next(iter(kwargs))


def test_dottest_tolerances_are_used():
    op = RolledAdjoint(random_matrix((10, 10), np.float64))
    assert dottest(op, rng=0, rtol=1e3).passed
    assert dottest(op, rng=0, atol=np.inf).passed
    strict = dottest(op, rng=0, rtol=0.0, raise_error=False)
    assert strict.rtol == 0.0 and strict.tolerance == 0.0 and not strict.passed


def test_default_rtol_formula():
    assert default_rtol(np.float64, (100, 400)) == pytest.approx(
        10 * np.finfo(np.float64).eps * (10 + 20))
    assert default_rtol(np.complex64, (4, 9)) == pytest.approx(
        10 * np.finfo(np.float32).eps * 5)
    assert default_rtol(np.int64, (1, 1)) == pytest.approx(20 * np.finfo(np.float64).eps)


def test_dottest_accepts_whatever_aslinearoperator_accepts():
    A = random_matrix((6, 4), np.complex128)
    assert dottest(A, rng=0).passed
    assert dottest(sp.csr_array(A), rng=0).passed
    # an integer matrix is tested with float64 vectors
    result = dottest(np.arange(12).reshape(3, 4), rng=0)
    assert result.passed and result.dtype == np.float64


def test_dottest_degenerate_operators():
    zero = dottest(np.zeros((5, 3)), rng=0)
    assert zero.passed and zero.abs_error == 0 and zero.scale == 0 and zero.rel_error == 0
    for shape in [(0, 3), (3, 0)]:
        assert dottest(Dense(np.zeros(shape)), rng=0).passed
    nan = LinearOperator((3, 3), matvec=lambda x: np.full(3, np.nan), rmatvec=lambda y: y,
                         dtype=np.float64)
    result = dottest(nan, rng=0, raise_error=False)
    assert not result.passed


# a (13, 9) float64 operator: x has shape (9,), y (13,)
FAILING_CALLS = [
    (ShortAdjoint, "rmatvec of a (13,) float64 vector returned shape (8,), expected (9,)"),
    (ColumnAdjoint, "rmatvec of a (13,) float64 vector returned shape (9, 1), expected (9,)"),
    (RaisingMatvec, ("matvec of a (9,) float64 vector raised ValueError: "
                     "cannot reshape array of size 9 into shape (4,4)")),
]


@pytest.mark.parametrize("factory,message", FAILING_CALLS,
                         ids=[f.__name__ for f, _ in FAILING_CALLS])
def test_dottest_reports_a_call_that_raised_or_returned_the_wrong_shape(factory, message):
    op = factory(random_matrix((13, 9), np.float64))
    result = dottest(op, rng=0, n_trials=2, raise_error=False)
    assert isinstance(result, DotTestResult)
    assert not result.passed and not bool(result)
    assert result.error == message
    assert len(result.trials) == 2
    assert all(not t.passed and t.error == message for t in result.trials)
    assert math.isnan(result.abs_error) and math.isnan(result.rel_error)
    with pytest.raises(AssertionError) as info:
        dottest(op, rng=0, n_trials=2)
    text = str(info.value)
    assert text == str(result)
    assert text.startswith("dottest FAILED: 13x9 operator, float64 vectors")
    assert message in text and "passed = False" in text


def test_dottest_error_is_none_when_the_calls_succeed():
    result = dottest(RolledAdjoint(random_matrix((6, 5), np.float64)), rng=0,
                     raise_error=False)
    assert not result.passed and result.error is None
    assert all(t.error is None for t in result.trials)
    assert dottest(Dense(random_matrix((6, 5), np.float64)), rng=0).error is None
    # the new field has a default: DotTestResult and DotTestTrial are built as before
    trial = result.trials[0]
    fields = [f.name for f in dataclasses.fields(trial)][:-1]
    assert type(trial)(*(getattr(trial, f) for f in fields)) == trial
    fields = [f.name for f in dataclasses.fields(result)][:-1]
    assert DotTestResult(*(getattr(result, f) for f in fields)) == result


# ============================================================================
# 3. check_operator
# ============================================================================
@pytest.mark.parametrize("dtype", DTYPES)
def test_check_operator_passes_correct_operators(dtype):
    A = random_matrix((15, 11), dtype)
    for op in (Dense(A), aslinearoperator(A), WithCsr(A), A, sp.csr_array(A)):
        report = check_operator(op, rng=0)
        assert report.passed and bool(report) and report.failed == []
        assert [c.name for c in report.checks] == list(CHECKS)
        assert "checks passed" in str(report)
    assert check_operator(WithCsr(A), rng=0)["tocsr"].status == "PASS"
    assert check_operator(WithCsr(A), rng=0, max_dense=0)["tocsr"].status == "PASS"
    assert check_operator(Dense(A), rng=0).skipped == ["tocsr"]


BROKEN = [
    # (operator factory, dtype, the exact set of checks that must fail)
    (RolledAdjoint, np.float32, {"dottest"}),
    (RolledAdjoint, np.float64, {"dottest"}),
    (RolledAdjoint, np.complex64, {"dottest"}),
    (MissingConjugate, np.complex64, {"dottest"}),
    (MissingConjugate, np.complex128, {"dottest"}),
    (IgnoresColumn, np.float32, {"matmat"}),
    (IgnoresColumn, np.complex128, {"matmat"}),
    (WrongTranspose, np.complex128, {"transpose"}),
    (WrongDtype, np.float32, {"matvec"}),
    (MutatesInput, np.float64, {"matvec"}),
]


@pytest.mark.parametrize("factory,dtype,expected", BROKEN,
                         ids=[f"{f.__name__}-{np.dtype(d).name}" for f, d, _ in BROKEN])
def test_check_operator_catches_broken_operators(factory, dtype, expected):
    op = factory(random_matrix((13, 9), dtype))
    report = check_operator(op, rng=0, raise_error=False)
    assert not report.passed
    assert set(report.failed) == expected
    for name in expected:
        assert report[name].status == "FAIL" and not report[name].passed
    with pytest.raises(AssertionError) as info:
        check_operator(op, rng=0)
    message = str(info.value)
    assert message == str(report)
    assert "FAILED: " + ", ".join(report.failed) in message
    assert f"{len(expected)} of {len(CHECKS)} checks FAILED" in message


def test_check_operator_failure_details_are_specific():
    rep = check_operator(IgnoresColumn(random_matrix((8, 6), np.float64)), rng=0,
                         raise_error=False)
    assert "column 2 of 3" in rep["matmat"].details
    rep = check_operator(MutatesInput(random_matrix((8, 6), np.float64)), rng=0,
                         raise_error=False)
    assert "modified its input" in rep["matvec"].details
    rep = check_operator(WrongDtype(random_matrix((8, 6), np.float32)), rng=0,
                         raise_error=False)
    assert "dtype float64, expected float32" in rep["matvec"].details
    rep = check_operator(RolledAdjoint(random_matrix((8, 6), np.float32)), rng=0,
                         raise_error=False)
    assert "relative error" in rep["dottest"].details and "<A x, y>" in rep["dottest"].details


def test_check_operator_catches_nonlinear_operator():
    report = check_operator(Affine(random_matrix((10, 7), np.float64)), rng=0,
                            raise_error=False)
    assert "linearity" in report.failed
    assert "||difference||" in report["linearity"].details


@pytest.mark.parametrize("max_dense", [10**6, 0])
def test_check_operator_catches_wrong_tocsr(max_dense):
    op = WithCsr(random_matrix((10, 7), np.float64), bad_entry=(3, 4))
    report = check_operator(op, rng=0, max_dense=max_dense, raise_error=False)
    assert report.failed == ["tocsr"]
    if max_dense:
        assert "entry (3, 4)" in report["tocsr"].details


def test_check_operator_reports_exceptions_instead_of_raising_them():
    report = check_operator(NoAdjoint(random_matrix((5, 4), np.float64)), rng=0,
                            raise_error=False)
    assert {"rmatvec", "dottest", "rmatmat"} <= set(report.failed)
    assert "shape" not in report.failed and "matvec" not in report.failed
    assert "raised NotImplementedError" in report["rmatvec"].details
    assert report["rmatvec"].details.startswith(
        "rmatvec of a (5,) float64 vector raised NotImplementedError")


BROKEN_CALLS = [
    # (operator factory, {failing check: its details})
    (ShortAdjoint, {
        "rmatvec": "rmatvec of a (13,) float64 vector returned shape (8,), expected (9,)",
        "dottest": "rmatvec of a (13,) float64 vector returned shape (8,), expected (9,)",
        "linearity": "rmatvec of a (13,) float64 vector returned shape (8,), expected (9,)",
        "rmatmat": "rmatvec of a (13,) float64 vector returned shape (8,), expected (9,)",
        "adjoint": "op.H.matvec of a (13,) float64 vector returned shape (8,), expected (9,)",
        "transpose": "op.T.matvec of a (13,) float64 vector returned shape (8,), expected (9,)",
    }),
    (ColumnAdjoint, {
        "rmatvec": "rmatvec of a (13,) float64 vector returned shape (9, 1), expected (9,)",
        "dottest": "rmatvec of a (13,) float64 vector returned shape (9, 1), expected (9,)",
        "linearity": "rmatvec of a (13,) float64 vector returned shape (9, 1), expected (9,)",
        "rmatmat": "rmatvec of a (13,) float64 vector returned shape (9, 1), expected (9,)",
        "adjoint": "op.rmatvec of a (13,) float64 vector returned shape (9, 1), expected (9,)",
    }),
    (RaisingMatvec, {
        name: f"{call} of a (9,) float64 vector raised ValueError: "
              "cannot reshape array of size 9 into shape (4,4)"
        for name, call in (("matvec", "matvec"), ("dottest", "matvec"),
                           ("linearity", "matvec"), ("matmat", "matvec"),
                           ("adjoint", "op.H.rmatvec"), ("transpose", "op.T.rmatvec"))
    }),
    (TallMatmat, {
        "matmat": "matmat of a (9, 3) float64 array returned shape (14, 3), expected (13, 3)",
    }),
]


@pytest.mark.parametrize("factory,details", BROKEN_CALLS,
                         ids=[f.__name__ for f, _ in BROKEN_CALLS])
def test_check_operator_failures_name_the_call_and_its_input(factory, details):
    """A call that raises or returns the wrong shape: what was called, with what shape."""
    report = check_operator(factory(random_matrix((13, 9), np.float64)), rng=0,
                            raise_error=False)
    assert set(report.failed) == set(details)
    for name, expected in details.items():
        if name == "dottest":
            assert report[name].details.startswith("dottest FAILED: 13x9 operator")
            assert f"\n  {expected}\n" in report[name].details
        else:
            assert report[name].details == expected


# "a (13,) float64 vector", "X (9, 3) float64", "the (9, 9) float64 identity", ...
INPUT_DESCRIPTION = re.compile(r"\((\d+, )*\d+,?\) (float|complex)\d+")


def _bad_csr(A):
    return WithCsr(A, bad_entry=(3, 4))


EVERY_BROKEN = (
    [(f, d, {}) for f, d, _ in BROKEN] + [(f, np.float64, {}) for f, _ in BROKEN_CALLS]
    + [(Affine, np.float64, {}), (NoAdjoint, np.float64, {}), (_bad_csr, np.float64, {}),
       (_bad_csr, np.float64, {"max_dense": 0})]
)


@pytest.mark.parametrize(
    "factory,dtype,kwargs", EVERY_BROKEN,
    ids=[f"{f.__name__}-{np.dtype(d).name}" + ("-probes" if kw else "")
         for f, d, kw in EVERY_BROKEN],
)
def test_every_failure_names_the_shape_and_dtype_of_the_input(factory, dtype, kwargs):
    report = check_operator(factory(random_matrix((13, 9), dtype)), rng=0, raise_error=False,
                            **kwargs)
    assert report.failed
    for name in report.failed:
        details = report[name].details
        if name == "dottest":  # the header gives the operator's shape and the vectors' dtype
            assert re.match(r"dottest FAILED: 13x9 operator, (float|complex)\d+ vectors",
                            details)
            lines = details.splitlines()[1:]
            if not lines[0].lstrip().startswith("<A x, y>"):  # a call failed
                assert INPUT_DESCRIPTION.search(lines[0]), details
        else:
            assert INPUT_DESCRIPTION.search(details), details


@pytest.fixture
def scipy_1_18_column_warning(monkeypatch):
    """On any SciPy, SciPy 1.18's FutureWarning for matvec/rmatvec of an (n, 1) column.

    Returns the list of the (method, shape) of such calls.
    """
    calls = []
    for name in ("matvec", "rmatvec"):
        original = getattr(LinearOperator, name)

        def warn_on_columns(self, x, _original=original, _name=name):
            if np.ndim(x) == 2:
                calls.append((_name, np.shape(x)))
                warnings.warn(f"{_name} of an (n, 1) column is deprecated", FutureWarning,
                              stacklevel=2)
            return _original(self, x)

        monkeypatch.setattr(LinearOperator, name, warn_on_columns)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_check_operator_never_calls_matvec_on_a_column(dtype, scipy_1_18_column_warning):
    A = random_matrix((7, 5), dtype)
    operators = [Dense(A), WithCsr(A), aslinearoperator(A), sp.csr_array(A),
                 linop.Conv1d(random_matrix((2, 3, 3), dtype), (3, 6), padding=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for op in operators:
            report = check_operator(op, rng=0)
            assert report.passed and report["matmat"].status == "PASS"
            assert dottest(op, rng=0).passed
    assert scipy_1_18_column_warning == []
    # the fixture does catch such a call
    with pytest.warns(FutureWarning, match="column"):
        Dense(A).matvec(np.ones((5, 1), dtype))
    assert scipy_1_18_column_warning == [("matvec", (5, 1))]


def test_checks_describe_vectors_and_blocks():
    assert "1-D" in CHECKS["matvec"] and "1-D" in CHECKS["rmatvec"]
    assert "k = 1" in CHECKS["matmat"] and "k = 1" in CHECKS["rmatmat"]
    assert "column" not in check_operator(np.eye(3), rng=0)["matvec"].details


def test_check_operator_validates_arguments():
    op = Dense(random_matrix((4, 3), np.float64))
    with pytest.raises(ValueError, match="n_trials"):
        check_operator(op, n_trials=0)
    with pytest.raises(TypeError, match="n_trials"):
        check_operator(op, n_trials=1.5)
    with pytest.raises(ValueError, match="max_dense"):
        check_operator(op, max_dense=-1)
    with pytest.raises(TypeError, match="max_dense"):
        check_operator(op, max_dense=1e6)
    with pytest.raises(ValueError, match="rtol"):
        check_operator(op, rtol=-1.0)
    with pytest.raises(TypeError, match="atol"):
        check_operator(op, atol="0")
    with pytest.raises(TypeError, match="rng"):
        check_operator(op, rng=np.random.RandomState(0))
    for kwargs in (dict(n_trials=0), dict(n_trials=True), dict(max_dense=-1),
                   dict(max_dense="big"), dict(rtol=float("nan")), dict(skip=["dotest"])):
        with pytest.raises(linop.ParameterError) as info:
            check_operator(op, **kwargs)
        assert info.value.parameter == next(iter(kwargs))
    # numpy integers are integers
    assert check_operator(op, rng=0, n_trials=np.int64(2), max_dense=np.int32(0)).passed


def test_check_operator_report_api():
    report = check_operator(RolledAdjoint(random_matrix((6, 5), np.float64)), rng=0,
                            skip=["tocsr", "linearity"], raise_error=False)
    assert isinstance(report, CheckReport)
    assert all(isinstance(c, CheckResult) for c in report.checks)
    assert report["linearity"].status == "SKIP" and report["linearity"].passed
    assert report.skipped == ["linearity", "tocsr"]
    assert report.failed == ["dottest"]
    with pytest.raises(KeyError):
        report["no such check"]
    with pytest.raises(ValueError, match="unknown check"):
        check_operator(np.eye(3), skip=["dotest"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.checks = ()
    text = str(report)
    assert text.splitlines()[0].startswith("check_operator: 1 of 10 checks FAILED")
    assert "[FAIL] dottest" in text and "[PASS] matvec" in text and "[SKIP] tocsr" in text


# ============================================================================
# 4. the strategies draw valid parameter sets (PyTorch's rules, checked here)
# ============================================================================
def _assert_valid_conv_config(c):
    nd = c.ndim
    k = c.weight_shape[-nd:]
    spatial = c.input_shape[-nd:]
    stride = c.stride if isinstance(c.stride, tuple) else (c.stride,) * nd
    dilation = c.dilation if isinstance(c.dilation, tuple) else (c.dilation,) * nd
    assert len(stride) == len(dilation) == len(k) == len(spatial) == nd
    assert min(stride) >= 1 and min(dilation) >= 1 and min(k) >= 1 and min(spatial) >= 1
    if c.bare:
        assert len(c.weight_shape) == nd and len(c.input_shape) == nd and c.groups == 1
    else:
        assert len(c.weight_shape) == nd + 2 and len(c.input_shape) == nd + 1
        c_in = c.input_shape[0]
        assert c_in % c.groups == 0
        if c.transpose:  # (C_in, C_out/groups, *k)
            assert c.weight_shape[0] == c_in
        else:  # (C_out, C_in/groups, *k)
            assert c.weight_shape[1] * c.groups == c_in
            assert c.weight_shape[0] % c.groups == 0
    p = c.padding
    if p == "same":
        assert not c.transpose and set(stride) == {1}
        pairs = [(d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2)
                 for d, kk in zip(dilation, k)]
    elif p == "valid":
        assert not c.transpose
        pairs = [(0, 0)] * nd
    elif isinstance(p, int):
        pairs = [(p, p)] * nd
    elif isinstance(p[0], tuple):
        pairs = list(p)
    else:
        pairs = [(v, v) for v in p]
    assert all(lo >= 0 and hi >= 0 for lo, hi in pairs)
    if c.transpose:
        assert c.padding_mode == "zeros"
        op = c.output_padding if isinstance(c.output_padding, tuple) else (c.output_padding,) * nd
        sizes = []
        for n, kk, s, (lo, hi), d, o in zip(spatial, k, stride, pairs, dilation, op):
            assert 0 <= o < max(s, d)
            sizes.append((n - 1) * s - lo - hi + d * (kk - 1) + o + 1)
    else:
        assert c.output_padding == 0
        sizes = []
        for n, kk, s, (lo, hi), d in zip(spatial, k, stride, pairs, dilation):
            if c.padding_mode == "reflect":
                assert max(lo, hi) < n
            if c.padding_mode == "circular":
                assert max(lo, hi) <= n
            sizes.append(math.floor((n + lo + hi - d * (kk - 1) - 1) / s) + 1)
    assert min(sizes) >= 1
    assert tuple(c.expected_output_shape[-nd:]) == tuple(sizes)
    w = c.weight()
    assert w.shape == tuple(c.weight_shape) and w.dtype == c.dtype
    np.testing.assert_array_equal(w, c.weight())  # deterministic


@FAST
@given(S.conv_configs(transpose=None))
def test_conv_configs_are_valid(config):
    _assert_valid_conv_config(config)


@pytest.mark.parametrize(
    "predicate",
    [
        lambda c: c.padding == "same" and c.padding_mode == "reflect",
        lambda c: c.padding == "valid",
        lambda c: isinstance(c.padding, tuple) and isinstance(c.padding[0], tuple)
        and any(lo != hi for lo, hi in c.padding),
        lambda c: isinstance(c.padding, tuple) and isinstance(c.padding[0], int),
        lambda c: c.padding_mode == "circular" and c.padding_pairs[0][0] == c.spatial_shape[0],
        lambda c: c.transpose and max(c.output_padding_tuple) > 0,
        lambda c: c.groups == 2 and c.ndim == 3,
        lambda c: c.bare and c.transpose,
        lambda c: c.dtype == np.complex64 and c.method == "im2col",
    ],
    ids=["same-reflect", "valid", "asymmetric-pairs", "per-axis", "circular-full",
         "output-padding", "groups-3d", "bare-transposed", "complex64-im2col"],
)
def test_conv_configs_cover_the_parameter_space(predicate):
    found = find(S.conv_configs(transpose=None), predicate,
                 settings=settings(max_examples=3000, database=None, derandomize=True,
                                   phases=[Phase.generate]))
    assert predicate(found)
    _assert_valid_conv_config(found)


@FAST
@given(S.upsample_configs())
def test_upsample_configs_are_valid(config):
    nd = config.ndim
    assert 1 <= nd <= 3 and config.input_shape[0] >= 1 and min(config.input_shape) >= 1
    assert config.mode in S.UPSAMPLE_MODES[nd]
    assert (config.size is None) != (config.scale_factor is None)
    if config.mode not in ("linear", "bilinear", "bicubic", "trilinear"):
        assert config.align_corners is None
    if config.scale_factor is not None:
        scales = (config.scale_factor if isinstance(config.scale_factor, tuple)
                  else (config.scale_factor,) * nd)
        out = [math.floor(n * s) for n, s in zip(config.input_shape[1:], scales)]
    else:
        out = list(config.size if isinstance(config.size, tuple) else (config.size,) * nd)
    assert min(out) >= 1
    assert config.expected_output_shape == (config.input_shape[0], *out)
    assert config.dtype in (np.float32, np.float64)


def test_strategy_arguments_are_validated():
    with pytest.raises(ValueError, match="ndim"):
        S.conv_configs(ndim=4)
    with pytest.raises(ValueError, match="padding_modes"):
        S.conv_configs(padding_modes=["mirror"])
    with pytest.raises(ValueError, match="max_kernel"):
        S.conv_configs(max_kernel=0)
    with pytest.raises(ValueError, match="no mode"):
        S.upsample_configs(ndim=1, modes=["bicubic"])
    with pytest.raises(ValueError, match="kinds"):
        S.operators(kinds=["pooling"])
    with pytest.raises(ValueError, match="exclude every dtype"):
        S.dtypes(real=False, complex=False)


@settings(max_examples=20, deadline=None, database=None)
@given(S.dtypes(complex=False, double=False), S.dtypes(real=False),
       S.conv_configs(ndim=2, transpose=True, dtypes=[np.float64], bare=False,
                      methods=["im2col"]))
def test_strategy_filters_are_honoured(single_real, complex_dtype, config):
    assert single_real == np.float32
    assert complex_dtype.kind == "c"
    assert config.ndim == 2 and config.transpose and not config.bare
    assert config.dtype == np.float64 and config.method == "im2col"
    assert config.class_name == "ConvTranspose2d"


# ============================================================================
# 5. check_operator over every linop operator
# ============================================================================
CONV_CASES = [
    # (ndim, weight shape, input shape, keywords)
    (1, (3, 2, 3), (2, 9), dict(stride=2, padding=1)),
    (1, (4,), (10,), dict(padding="same", dilation=2, padding_mode="reflect")),
    (1, (4, 1, 2), (2, 7), dict(groups=2, padding=((0, 2),), padding_mode="circular")),
    (2, (2, 3, 3, 3), (3, 6, 5), dict(stride=(2, 1), padding=(1, 0), padding_mode="replicate")),
    (2, (3, 2), (5, 6), dict(dilation=(1, 2), padding="valid")),
    (3, (2, 1, 2, 3, 2), (1, 4, 5, 3), dict(stride=(1, 2, 1), padding=1)),
]
TCONV_CASES = [
    (1, (2, 3, 3), (2, 5), dict(stride=2, padding=1, output_padding=1)),
    (1, (3,), (6,), dict(dilation=3, output_padding=2)),
    (2, (4, 1, 3, 2), (4, 3, 4), dict(groups=2, stride=(2, 3), padding=((1, 0), (0, 1)))),
    (2, (2, 2), (4, 3), dict(stride=2)),
    (3, (2, 2, 2, 2, 3), (2, 3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 0, 1))),
]


def _build(transpose, nd, wshape, ishape, kw, dtype, method):
    cls = getattr(linop, f"Conv{'Transpose' if transpose else ''}{nd}d")
    return cls(random_matrix(wshape, dtype, 5), ishape, method=method, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["toeplitz", "im2col"])
@pytest.mark.parametrize(
    "transpose,case",
    [(False, c) for c in CONV_CASES] + [(True, c) for c in TCONV_CASES],
    ids=[f"Conv{c[0]}d-{i}" for i, c in enumerate(CONV_CASES)]
    + [f"ConvTranspose{c[0]}d-{i}" for i, c in enumerate(TCONV_CASES)],
)
def test_check_operator_on_every_conv_class(transpose, case, method, dtype):
    op = _build(transpose, *case, dtype, method)
    assert op.dtype == dtype
    report = check_operator(op, rng=0)
    assert report.passed and report.skipped == []
    M = op.tocsr()
    assert isinstance(M, sp.csr_array) and M.has_sorted_indices
    # the transposed and adjoint operators are operators too
    check_operator(op.T, rng=1)
    check_operator(op.H, rng=2)


@pytest.mark.parametrize("transpose", [False, True])
def test_dottest_catches_a_one_pixel_error_in_a_linop_conv(transpose):
    """A linop operator whose adjoint is shifted by one pixel is caught in float32."""
    op = _build(transpose, *(TCONV_CASES if transpose else CONV_CASES)[3], np.float32, "auto")

    class Shifted(LinearOperator):
        def __init__(self):
            super().__init__(dtype=op.dtype, shape=op.shape)

        def _matvec(self, x):
            return op.matvec(x)

        def _rmatvec(self, y):
            return np.roll(op.rmatvec(y), 1)

    assert dottest(op, rng=0).passed
    report = check_operator(Shifted(), rng=0, raise_error=False)
    assert report.failed == ["dottest"]


UPSAMPLE_CASES = [
    ((2, 5), dict(scale_factor=2, mode="nearest")),
    ((1, 7), dict(size=4, mode="nearest-exact")),
    ((2, 6), dict(scale_factor=1.5, mode="linear", align_corners=False)),
    ((1, 4, 5), dict(size=(7, 3), mode="bilinear", align_corners=True)),
    ((2, 4, 3), dict(scale_factor=(2, 1.5), mode="bicubic")),
    ((1, 3, 2, 4), dict(size=(4, 4, 2), mode="trilinear")),
    ((2, 6, 5), dict(size=(4, 2), mode="area")),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kw", UPSAMPLE_CASES,
                         ids=[kw["mode"] for _, kw in UPSAMPLE_CASES])
def test_check_operator_on_upsample(shape, kw, dtype):
    op = linop.Upsample(shape, dtype=dtype, **kw)
    assert op.dtype == dtype
    report = check_operator(op, rng=0)
    assert report.passed
    check_operator(op.H, rng=1)


@FAST
@given(S.conv_configs(transpose=None))
def test_property_every_conv_config_builds_a_correct_operator(config):
    op = config.build()
    assert op.output_shape == config.expected_output_shape
    assert op.input_shape == tuple(config.input_shape)
    assert op.dtype == config.dtype
    check_operator(op, rng=0)


@FAST
@given(S.upsample_configs())
def test_property_every_upsample_config_builds_a_correct_operator(config):
    op = config.build()
    assert op.output_shape == config.expected_output_shape
    check_operator(op, rng=0)


@settings(max_examples=15, deadline=None, database=None)
@given(S.operators())
def test_property_operators_strategy(op):
    assert isinstance(op, LinearOperator)
    check_operator(op, rng=0)


# ============================================================================
# 6. documentation and packaging
# ============================================================================
@pytest.mark.parametrize("module", ["linop.testing", "linop.testing._dottest",
                                    "linop.testing._check", "linop.testing.strategies"])
def test_docstring_examples_run(module):
    mod = sys.modules[module] if module in sys.modules else __import__(module, fromlist=["_"])
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_hypothesis_is_only_imported_by_strategies():
    code = ("import sys, linop, linop.testing; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis imported'; "
            "linop.testing.check_operator(linop.testing.__name__ and __import__('numpy').eye(3)); "
            "assert 'hypothesis' not in sys.modules; "
            "import linop.testing.strategies; assert 'hypothesis' in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_public_names():
    assert linop.dottest is dottest
    for name in lt.__all__:
        assert hasattr(lt, name)
    assert {"dottest", "check_operator", "DotTestResult", "CheckReport", "CheckResult"} <= set(
        lt.__all__)
