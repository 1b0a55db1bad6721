"""Tests for any linear operator: the dot test and a battery of checks.

:func:`dottest` checks that an operator's ``rmatvec`` is the Hermitian adjoint
of its ``matvec`` (``<A x, y> == <x, A^H y>`` for random vectors), with a
tolerance derived from the dtype's precision and the operator's size.
:func:`check_operator` runs the dot test and the other checks every
`scipy.sparse.linalg.LinearOperator` should pass (shapes and dtypes of
results, linearity, ``matmat`` against ``matvec``, ``.T`` against ``.H``,
``tocsr()`` against the operator) and reports what failed; :data:`CHECKS`
names and describes these checks.

Both work on any operator, not only linop's. Hypothesis strategies for
linop's parameter space are in :mod:`linop.testing.strategies`, which is not
imported here (hypothesis is an optional dependency).

Examples
--------
Testing your own operator: a periodic 3-point moving sum written by hand.

>>> import numpy as np
>>> from scipy.sparse.linalg import LinearOperator
>>> from linop.testing import check_operator, dottest
>>> class MovingSum(LinearOperator):
...     '''y[i] = x[i-1] + x[i] + x[i+1], indices modulo n.'''
...     def __init__(self, n, dtype=np.float32):
...         super().__init__(dtype=np.dtype(dtype), shape=(n, n))
...     def _matvec(self, x):
...         return np.roll(x, 1) + x + np.roll(x, -1)
...     def _rmatvec(self, y):        # symmetric: the adjoint is itself
...         return np.roll(y, 1) + y + np.roll(y, -1)
>>> op = MovingSum(100)
>>> print(dottest(op, rng=0).passed)
True
>>> report = check_operator(op, rng=0)
>>> print(report.passed)
True

A one-sided mistake (the adjoint shifted the same way as the operator)
is caught, and the report names the failing check:

>>> class Shift(MovingSum):
...     def _matvec(self, x):
...         return np.roll(x, 1)
...     def _rmatvec(self, y):        # wrong: the adjoint is np.roll(y, -1)
...         return np.roll(y, 1)
>>> report = check_operator(Shift(100), rng=0, raise_error=False)
>>> print(report.failed)
['dottest']
"""

from linop.testing._check import CHECKS, CheckReport, CheckResult, check_operator
from linop.testing._dottest import DotTestResult, DotTestTrial, default_rtol, dottest

# Autodoc documents linop.testing.CHECKS from ``#:`` comments in this module, and
# takes them only before an assignment or an annotation: this annotation binds nothing.

#: The checks of :func:`check_operator`, in order, with what each verifies.
#:
#: A dict from the name of each check (the ``name`` of its
#: :class:`CheckResult`, and what the ``skip`` argument of
#: :func:`check_operator` takes) to a one-line description.
#:
#: Examples
#: --------
#: >>> import numpy as np
#: >>> from linop.testing import CHECKS, check_operator
#: >>> print(*CHECKS)
#: shape matvec rmatvec dottest linearity matmat rmatmat adjoint transpose tocsr
#: >>> CHECKS["dottest"]
#: '<A x, y> == <x, A^H y> (see dottest)'
#: >>> report = check_operator(np.eye(3), rng=0, skip=["linearity"])
#: >>> [check.name for check in report.checks] == list(CHECKS)
#: True
#: >>> report.skipped
#: ['linearity', 'tocsr']
CHECKS: dict[str, str]

__all__ = [
    "CHECKS",
    "CheckReport",
    "CheckResult",
    "DotTestResult",
    "DotTestTrial",
    "check_operator",
    "default_rtol",
    "dottest",
]
