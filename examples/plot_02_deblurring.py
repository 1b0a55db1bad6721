"""
Deblurring a photograph with ``lsqr`` and a ``Conv2d`` blur
===========================================================

A blur is a convolution, so a blurred image is ``y = A x + noise`` with
``A`` a :class:`linop.Conv2d` operator. Getting ``x`` back is an inverse
problem: SciPy's :func:`scipy.sparse.linalg.lsqr` solves it with nothing
but ``A @ x`` and ``A.H @ y``, the convolution and its adjoint, which
linop provides exactly.

The problem is *ill-posed*: the blur all but erases the fine detail, so a
plain least-squares solution amplifies the noise without bound. This
example shows the two ways ``lsqr`` keeps it in check, damping
(``damp``, Tikhonov regularisation) and stopping early (``iter_lim``), and
how to choose them.

The photograph of Grace Hopper ships with Matplotlib, so nothing is
downloaded.
"""

import matplotlib.cbook as cbook
import matplotlib.pyplot as plt
import numpy as np
from scipy.sparse.linalg import lsqr

import linop

# %%
# The image
# ---------
# Read the sample photograph, convert it to grey levels in [0, 1] and crop a
# 512x512 square. To make it 128x128, average 4x4 blocks of pixels, which
# is itself a linear operator: :class:`linop.Upsample` in ``"area"`` mode
# (adaptive average pooling) with a smaller output size.

with cbook.get_sample_data("grace_hopper.jpg") as f:
    rgb = plt.imread(f)
grey = rgb[:512, :512, :3] @ np.array([0.299, 0.587, 0.114]) / 255

shrink = linop.Upsample((1, 512, 512), size=(128, 128), mode="area")
x_true = shrink.apply(grey[None])[0]
print(shrink)
print("image:", x_true.shape, f"values in [{x_true.min():.2f}, {x_true.max():.2f}]")

# %%
# The blur
# --------
# A Gaussian blur of standard deviation 1.5 pixels, on a 9x9 kernel that
# sums to 1. ``padding="same"`` keeps the image's size, and
# ``padding_mode="reflect"`` mirrors the image at its borders instead of
# darkening them with zeros. The operator is a 16384x16384 sparse matrix
# with 81 entries in a row (fewer near the borders, where mirrored taps land
# on the same pixel and add up), applied as one sparse matrix-vector
# product.

radius, width = 4, 1.5
g = np.exp(-0.5 * (np.arange(-radius, radius + 1) / width) ** 2)
kernel = np.outer(g, g) / np.outer(g, g).sum()

A = linop.Conv2d(kernel, x_true.shape, padding="same", padding_mode="reflect")
print(A, "  stored entries:", A.tocsr().nnz)

noise_level = 0.005
rng = np.random.default_rng(0)
y = A.apply(x_true) + noise_level * rng.standard_normal(x_true.shape)


def error(x):
    """Relative error of an estimate of the image."""
    return np.linalg.norm(x - x_true) / np.linalg.norm(x_true)


print(f"blurred image: relative error {error(y):.3f}")

# %%
# Why it is hard
# --------------
# The blur multiplies each spatial frequency of the image by the Fourier
# transform of the kernel, a product of one factor per axis. Along one axis
# that factor falls from 1 to about :math:`10^{-3}` at the highest
# frequencies, with near-zeros in between (the Gaussian is truncated to 9
# taps); along both axes the factors multiply, down to about
# :math:`10^{-6}`. Undoing the blur means dividing by it, and the noise, as
# strong at high frequencies as at low ones, would be multiplied by up to a
# million. Frequencies whose gain is below the noise-to-signal ratio (the
# dashed line, reached at about 0.3 cycles per pixel) cannot be recovered:
# a good solver has to leave them out.

freq = np.fft.rfftfreq(128)
response = np.abs(np.fft.rfft(g / g.sum(), 128))  # separable: one axis suffices
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogy(freq, response, label="blur response (one axis)")
ax.axhline(noise_level / x_true.std(), color="crimson", ls="--",
           label="noise / signal")
ax.set_xlabel("frequency (cycles per pixel)")
ax.set_ylabel("gain")
ax.legend()
fig.tight_layout()

# %%
# Stopping early
# --------------
# Without damping, ``lsqr`` converges to the least-squares solution, noise
# and all. But it builds its iterates from the large singular values first:
# the first iterates are smooth, later ones add ever finer detail and then
# noise. The error therefore falls, reaches a minimum, and grows again, an
# effect called *semi-convergence*. The number of iterations is a
# regularisation parameter.
#
# ``lsqr`` returns only its last iterate, so we run it several times with
# growing ``iter_lim`` (each run takes a fraction of a second: every
# iteration is one convolution and one adjoint).

iterations = [5, 10, 20, 40, 80, 160]
undamped = {n: lsqr(A, y.ravel(), iter_lim=n)[0].reshape(x_true.shape) for n in iterations}
for n, x in undamped.items():
    print(f"iter_lim={n:3d}  relative error {error(x):.3f}")

# %%
# Damping
# -------
# ``damp=λ`` makes ``lsqr`` solve :math:`\min_x \|A x - y\|^2 + \lambda^2
# \|x\|^2` instead. The penalty stops the frequencies whose gain is well
# below λ: they stay near zero instead of filling with amplified noise. The
# iterates then converge, and ``lsqr`` stops by itself when they have (its
# ``atol``/``btol`` tests), so the number of iterations no longer matters.

damp = 0.03
damped = {}
for n in iterations:
    x, istop, itn = lsqr(A, y.ravel(), damp=damp, iter_lim=n)[:3]
    damped[n] = x.reshape(x_true.shape)
    print(f"damp={damp}, iter_lim={n:3d}: {itn:3d} iterations, "
          f"relative error {error(damped[n]):.3f}")

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(iterations, [error(undamped[n]) for n in iterations], "o-", label="damp=0")
ax.plot(iterations, [error(damped[n]) for n in iterations], "s-", label=f"damp={damp}")
ax.axhline(error(y), color="0.5", ls=":", label="blurred image")
ax.set_xscale("log")
ax.set_xlabel("iter_lim")
ax.set_ylabel("relative error")
ax.set_title("Semi-convergence without damping, convergence with it")
ax.legend()
fig.tight_layout()

# %%
# Choosing the damping
# --------------------
# In practice the true image is unknown, so the error cannot guide the
# choice. The noise level often is known, and the *discrepancy principle*
# uses it: choose the λ whose residual :math:`\|A x_\lambda - y\|` matches
# the norm of the noise, :math:`\sqrt{N}\,\sigma` for :math:`N` pixels of
# standard deviation :math:`\sigma`. A smaller residual means fitting the
# noise; a larger one means ignoring part of the signal.

damps = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2]
sweep = []
for lam in damps:
    x, istop, itn, r1norm = lsqr(A, y.ravel(), damp=lam, iter_lim=200)[:4]
    residual = np.linalg.norm(A @ x - y.ravel())
    sweep.append((lam, residual, error(x.reshape(x_true.shape)), itn))
    print(f"damp={lam:<6} {itn:3d} iterations  residual {residual:.3f}  error {sweep[-1][2]:.3f}")
target = np.sqrt(x_true.size) * noise_level
print(f"noise norm sqrt(N) sigma = {target:.3f}")

lam_, res_, err_, _ = map(np.array, zip(*sweep))
chosen = float(np.interp(target, res_, lam_))  # the residual grows with the damping
print(f"discrepancy principle: damp = {chosen:.3f}")

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.semilogx(lam_, res_, "o-", label="residual ||A x - y||")
ax.axhline(target, color="crimson", ls="--", label="noise norm")
ax.axvline(chosen, color="0.5", ls=":")
ax.set_xlabel("damp")
ax.set_ylabel("residual")
ax2 = ax.twinx()
ax2.semilogx(lam_, err_, "s-", color="tab:green", label="relative error")
ax2.set_ylabel("relative error (unknown in practice)", color="tab:green")
fig.tight_layout()
fig.legend(loc="upper center", ncols=3, fontsize=8, frameon=False,
           handles=ax.get_lines()[:2] + ax2.get_lines())
fig.subplots_adjust(top=0.85)

# %%
# The results
# -----------

x_damped = lsqr(A, y.ravel(), damp=chosen, iter_lim=200)[0].reshape(x_true.shape)
best_n = min(undamped, key=lambda n: error(undamped[n]))
panels = [
    (x_true, "original (128x128)"),
    (y, f"blurred + noise\nerror {error(y):.3f}"),
    (undamped[160], f"lsqr, no damping, 160 iterations\nerror {error(undamped[160]):.3f}"),
    (undamped[best_n],
     f"lsqr, stopped at {best_n} iterations\nerror {error(undamped[best_n]):.3f}"),
    (x_damped, f"lsqr, damp={chosen:.3f}\nerror {error(x_damped):.3f}"),
]
fig, axes = plt.subplots(1, 5, figsize=(12, 3.2))
for ax, (img, title) in zip(axes, panels):
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %%
# Discussion
# ----------
# * **Damping vs. stopping.** Both keep the noisy, barely-measured
#   frequencies out of the solution and reach similar errors here. Early
#   stopping is cheap but fragile: the best iteration count depends on the
#   noise and on the image, and one iteration too many starts to add noise.
#   Damping makes the result independent of the iteration count (the solver
#   converges and stops by itself), at the price of choosing λ, for which the
#   discrepancy principle needs only the noise level.
# * **What damping assumes.** ``damp`` penalises the size of ``x``, so it
#   pulls the estimate towards zero (black) as well as suppressing noise; with
#   a large λ the image is smooth and slightly dark. A penalty on the image's
#   *gradient* or *Laplacian* assumes smoothness instead, and usually does
#   better on photographs: build it with PyLops and a linop blur, as in the
#   PyLops example.
# * **Borders.** The blur operator mirrors the image at its borders. Had we
#   used zero padding, the model would blur black into the border pixels,
#   and the solver would add spurious detail there to explain data that a
#   real camera blurs differently.
# * **An inverse crime.** The data were made with the very operator we
#   invert. A real blurred photograph has a blur that is only approximately
#   Gaussian and known only approximately, which raises the noise floor:
#   expect a larger best λ, and fewer useful iterations.
