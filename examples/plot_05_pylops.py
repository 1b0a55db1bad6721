"""
linop operators in PyLops and SciPy's solvers
=============================================

A linop operator is a :class:`scipy.sparse.linalg.LinearOperator`, so it
plugs into anything built on that interface. This example solves the
deblurring problem of the :ref:`deblurring example
<sphx_glr_auto_examples_plot_02_deblurring.py>` again, with a better
regulariser:

* with `PyLops <https://pylops.readthedocs.io>`_, which wraps the linop blur
  with ``pylops.aslinearoperator``, stacks it with its own Laplacian, and
  solves with its regularised-inversion routine;
* with SciPy alone, where the Laplacian is itself a linop convolution and
  SciPy's operator algebra builds the normal equations for
  :func:`scipy.sparse.linalg.cg`;
* and :func:`scipy.sparse.linalg.svds` measures the blur's largest singular
  value.
"""

import matplotlib.cbook as cbook
import matplotlib.pyplot as plt
import numpy as np
import pylops
from scipy.sparse.linalg import cg, lsqr, svds

import linop

# %%
# The problem
# -----------
# The 128x128 grey Grace Hopper, blurred by a 9x9 Gaussian (standard
# deviation 1.5 pixels, mirrored borders), plus noise of standard deviation
# 0.005: the set-up of the deblurring example.

with cbook.get_sample_data("grace_hopper.jpg") as f:
    rgb = plt.imread(f)
grey = rgb[:512, :512, :3] @ np.array([0.299, 0.587, 0.114]) / 255
x_true = linop.Upsample((1, 512, 512), size=(128, 128), mode="area").apply(grey[None])[0]

g = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
A = linop.Conv2d(np.outer(g, g) / np.outer(g, g).sum(), x_true.shape,
                 padding="same", padding_mode="reflect")
y = A.apply(x_true) + 0.005 * np.random.default_rng(0).standard_normal(x_true.shape)


def error(x):
    return np.linalg.norm(np.reshape(x, x_true.shape) - x_true) / np.linalg.norm(x_true)


print(A)
print(f"blurred image: relative error {error(y):.3f}")

# %%
# Into PyLops
# -----------
# ``pylops.aslinearoperator`` wraps any SciPy linear operator. The wrapped
# blur passes PyLops' own dot test.

Aop = pylops.aslinearoperator(A)
print(Aop)
print("pylops dottest:", pylops.utils.dottest(Aop, *Aop.shape))

# %%
# The deblurring example damped the size of the image, :math:`\lambda^2
# \|x\|^2`, which pulls it towards black. A photograph is better described
# as *smooth almost everywhere*: penalise its Laplacian instead,
#
# .. math::
#
#     \min_x \; \|A x - y\|^2 + \varepsilon^2 \|\Delta x\|^2 .
#
# ``regularized_inversion`` stacks ``A`` and ``ε Δ`` and solves the stacked
# least-squares problem with SciPy's ``lsqr``. We try a few ``ε``.

laplacian = pylops.Laplacian(dims=x_true.shape, edge=True, dtype="float64")
solutions = {}
for eps in [0.01, 0.02, 0.04, 0.08]:
    x, istop, itn = pylops.optimization.leastsquares.regularized_inversion(
        Aop, y.ravel(), [laplacian], epsRs=[eps], iter_lim=300)[:3]
    solutions[eps] = x
    print(f"eps={eps:<5} {itn:3d} lsqr iterations, relative error {error(x):.3f}")
best_eps = min(solutions, key=lambda e: error(solutions[e]))
x_pylops = solutions[best_eps]

# %%
# PyLops operators go the other way too: they have ``matvec``, ``rmatvec``,
# ``shape`` and ``dtype``, so SciPy's solvers take them. Stacking by hand
# with ``pylops.VStack`` and calling SciPy's ``lsqr`` gives the same image:

stacked = pylops.VStack([Aop, best_eps * laplacian])
rhs = np.concatenate([y.ravel(), np.zeros(laplacian.shape[0])])
x_stacked = lsqr(stacked, rhs, iter_lim=300)[0]
print("VStack + scipy lsqr vs regularized_inversion: max difference "
      f"{np.abs(x_stacked - x_pylops).max():.1e}")

# %%
# SciPy alone
# -----------
# Without PyLops, the Laplacian is a convolution too: the 3x3 stencil
# ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` as a linop ``Conv2d`` (replicated
# borders, so that constant images have a zero Laplacian everywhere).
# SciPy's operator algebra (``@``, ``+``, scalar ``*``, ``.H``) builds the
# normal equations
#
# .. math::
#
#     (A^H A + \varepsilon^2 \Delta^H \Delta)\, x = A^H y,
#
# a symmetric positive definite system for :func:`scipy.sparse.linalg.cg`.
# No matrix is formed: each ``cg`` iteration applies the four convolutions.
# (The normal equations square the condition number, so ``lsqr`` on the
# stacked system is the more robust choice when the problem is hard.)

stencil = np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])
L = linop.Conv2d(stencil, x_true.shape, padding="same", padding_mode="replicate")
normal = A.H @ A + best_eps**2 * (L.H @ L)
print(normal)
x_cg, info = cg(normal, A.H @ y.ravel(), rtol=1e-6, maxiter=500)
print(f"cg: info={info}, relative error {error(x_cg):.3f}")

x_damped = lsqr(A, y.ravel(), damp=0.05, iter_lim=300)[0]
print(f"for comparison, lsqr with damp=0.05: relative error {error(x_damped):.3f}")

# %%
# Singular values
# ---------------
# :func:`scipy.sparse.linalg.svds` finds the largest singular values of an
# operator with a few dozen products, the number that gradient-based
# solvers (ISTA, FISTA, Landweber) need for their step size. A blur whose
# kernel sums to one has a largest singular value of 1, up to the border:
# mirroring folds taps onto the same pixels, which lifts it a little above 1.

sigma_max = svds(A, k=1, return_singular_vectors=False)[0]
print(f"largest singular value of the blur: {sigma_max:.4f}")

# %%
# The images
# ----------

panels = [
    (x_true, "original"),
    (y, f"blurred + noise\nerror {error(y):.3f}"),
    (x_damped, f"scipy lsqr, damp=0.05\nerror {error(x_damped):.3f}"),
    (x_pylops, f"PyLops, Laplacian, eps={best_eps}\nerror {error(x_pylops):.3f}"),
    (x_cg, f"SciPy cg, linop Laplacian\nerror {error(x_cg):.3f}"),
]
fig, axes = plt.subplots(1, 5, figsize=(12, 3.2))
for ax, (img, title) in zip(axes, panels):
    ax.imshow(np.reshape(img, x_true.shape), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %%
# The smoothness prior beats plain damping, and the PyLops and the SciPy-only
# solutions agree closely (their Laplacians differ only at the border).
# Everything above used the linop blur through the standard interface
# alone: ``matvec`` for the convolution and ``rmatvec`` for its adjoint.
