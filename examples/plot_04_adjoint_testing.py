"""
Testing the adjoint of your own operator with ``linop.testing``
===============================================================

SciPy's solvers (``lsqr``, ``lsmr``, ``cg`` on normal equations...) take any
:class:`scipy.sparse.linalg.LinearOperator`, and they trust it: they assume
that ``rmatvec`` is exactly the adjoint of ``matvec``, and that both accept
what SciPy passes them. A wrong adjoint does not raise an error; the solver
quietly converges to a wrong answer.

:mod:`linop.testing` checks operators, linop's and your own:

* :func:`linop.testing.dottest` compares :math:`\\langle A x, y\\rangle`
  with :math:`\\langle x, A^H y\\rangle` for random ``x`` and ``y``, with a
  tolerance derived from the dtype and the size;
* :func:`linop.testing.check_operator` runs the dot test and the other
  checks every operator should pass, and reports each one.

This example writes a 1-D blur by hand, finds three bugs in it, and shows
what the worst of them does to ``lsqr``.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.sparse.linalg import LinearOperator, lsqr

import linop
from linop.testing import check_operator, dottest

# %%
# A hand-written operator
# -----------------------
# A motion blur along one axis: cross-correlation with an asymmetric kernel,
# keeping the input's size (``np.correlate`` with ``mode="same"``). Its
# adjoint is the *convolution* with the same kernel, that is the correlation
# with the flipped kernel.

kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 0.5, 0.25])
kernel /= kernel.sum()
n = 100


class Blur(LinearOperator):
    """First attempt: matvec and rmatvec written for 1-D vectors."""

    def __init__(self, kernel, n):
        self.kernel = np.asarray(kernel, dtype=float)
        super().__init__(dtype=np.dtype(float), shape=(n, n))

    def _matvec(self, x):
        return np.correlate(x, self.kernel, mode="same")

    def _rmatvec(self, y):
        return np.convolve(y, self.kernel, mode="same")


# %%
# The dot test passes: the adjoint is right.

print(dottest(Blur(kernel, n), rng=0))

# %%
# Bug 1: column vectors
# ---------------------
# But the full battery of checks finds a problem. SciPy calls ``_matvec``
# with whatever shape the user passed, ``(n,)`` or ``(n, 1)``, and the
# default ``_matmat`` calls it on columns of shape ``(n, 1)``.
# ``np.correlate`` accepts only 1-D arrays, so ``A @ X`` with a 2-D ``X``
# raises. ``check_operator`` runs every check even when some fail, and
# reports all of them:

report = check_operator(Blur(kernel, n), rng=0, raise_error=False)
print(report)

# %%
# The fix is to flatten the input:


class FixedBlur(Blur):
    def _matvec(self, x):
        return np.correlate(np.ravel(x), self.kernel, mode="same")

    def _rmatvec(self, y):
        return np.convolve(np.ravel(y), self.kernel, mode="same")


print(check_operator(FixedBlur(kernel, n), rng=0))

# %%
# Bug 2: a wrong adjoint
# ----------------------
# The most common mistake in a hand-written convolution: the adjoint applies
# the same correlation again instead of flipping the kernel. With a
# symmetric kernel nobody would notice; with this one the dot test fails by
# a wide margin, and by default raises an :class:`AssertionError` whose
# message is the report:


class NoFlipBlur(FixedBlur):
    def _rmatvec(self, y):
        return np.correlate(np.ravel(y), self.kernel, mode="same")  # wrong


try:
    dottest(NoFlipBlur(kernel, n), rng=0)
except AssertionError as err:
    print(err)

# %%
# What it does to a solver
# ------------------------
# Deblur a signal with ``lsqr`` using each operator. The data come from
# ``linop.Conv1d(kernel, (n,), padding="same")``, which is the same blur
# (PyTorch's ``F.conv1d`` with ``padding="same"``) and whose adjoint is
# exact. With the wrong adjoint ``lsqr`` does not fail: it stops after a
# while, far from the solution.

conv = linop.Conv1d(kernel, (n,), padding="same")
probe = np.random.default_rng(1).standard_normal(n)
assert np.allclose(conv @ probe, FixedBlur(kernel, n) @ probe)

rng = np.random.default_rng(2)
x_true = np.cumsum(rng.standard_normal(n))
y = conv @ x_true

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(x_true, "k", lw=2.5, alpha=0.4, label="true signal")
for name, op in [("correct adjoint", FixedBlur(kernel, n)),
                 ("adjoint without the flip", NoFlipBlur(kernel, n))]:
    x, istop, itn = lsqr(op, y, damp=1e-3, iter_lim=500)[:3]
    err = np.linalg.norm(x - x_true) / np.linalg.norm(x_true)
    print(f"{name:<26} {itn:3d} iterations, relative error {err:.3f}")
    ax.plot(x, label=f"lsqr, {name} (error {err:.2f})")
ax.legend(fontsize=8)
ax.set_title("lsqr with a correct and a wrong adjoint")
fig.tight_layout()

# %%
# Bug 3: in-place updates and dtypes
# ----------------------------------
# Two more mistakes that only show up in some uses: a ``matvec`` that
# scales its input in place (harmless until the caller reuses its vector),
# and an ``rmatvec`` that returns float64 for a float32 operator (harmless
# until memory or speed matter). The dot test passes, the other checks do
# not:


class Sloppy(LinearOperator):
    def __init__(self, n):
        super().__init__(dtype=np.dtype(np.float32), shape=(n, n))

    def _matvec(self, x):
        x *= 2  # modifies the caller's array
        return x

    def _rmatvec(self, y):
        return 2 * y.astype(np.float64)  # float64 from a float32 operator


print(check_operator(Sloppy(10), rng=0, raise_error=False))

# %%
# linop's own operators
# ---------------------
# Every linop operator passes all the checks, including ``tocsr``: the
# explicit matrix agrees with the operator entry by entry, and
# ``op.H.tocsr()`` and ``op.T.tocsr()`` are its conjugate transpose and
# transpose. The tolerance follows the dtype: float32 operators are held to
# float32 rounding.

for op in [conv,
           linop.Conv2d(np.ones((4, 2, 3, 3), np.float32), (2, 16, 16), stride=2,
                        padding=1, padding_mode="circular"),
           linop.ConvTranspose2d(np.ones((2, 3, 4, 4)) * (1 + 1j), (2, 5, 5), stride=2),
           linop.Upsample((3, 8, 8), scale_factor=2, mode="bicubic")]:
    report = check_operator(op, rng=0)
    print(f"{op!r}\n    passed={report.passed}, skipped={report.skipped}, "
          f"dottest rtol={dottest(op, rng=0).rtol:.1e}")

# %%
# In a test suite
# ---------------
# ``check_operator`` raises an :class:`AssertionError` listing the failed
# checks, so a test is one line. With `hypothesis
# <https://hypothesis.readthedocs.io>`_ installed,
# ``linop.testing.strategies`` draws random valid parameters of every linop
# operator (this is how linop tests itself)::
#
#     from hypothesis import given, settings
#     from linop.testing import check_operator
#     from linop.testing.strategies import operators
#
#     def test_my_blur():
#         check_operator(FixedBlur(kernel, 100), rng=0)
#
#     @settings(max_examples=50, deadline=None)
#     @given(operators())
#     def test_every_linop_operator(op):
#         check_operator(op, rng=0)
