"""
Blind deconvolution: alternating ``Conv2d`` and ``ConvFilter2d``
================================================================

In *blind* deconvolution the blur is unknown too: ``y = conv(x, h) +
noise`` with both the image ``x`` and the kernel ``h`` to find. The problem
is bilinear, and each half is linear:

- with the kernel fixed, ``y`` is linear in the image: the operator
  :class:`linop.Conv2d` built from ``h``;
- with the image fixed, ``y`` is linear in the kernel: the operator
  :class:`linop.ConvFilter2d` built from ``x``, whose adjoint is the
  weight gradient of PyTorch's convolution.

Alternating least squares solves the two halves in turn with SciPy's
:func:`~scipy.sparse.linalg.lsqr`, each step a few matrix-free products
with exact adjoints. Alternation alone drifts towards "no blur at all"; a
prior on the image keeps it honest. Here the image is a field of stars
(sparse and positive), and the prior is a soft threshold after each image
step. Real schemes add priors on both unknowns and multi-scale starts, but
every step is one of these two linear problems.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.sparse.linalg import lsqr

import linop

# %%
# The data
# --------
# Sixty stars of random brightness on a 96x96 sky, blurred by a tilted,
# elongated 9x9 Gaussian, with a little noise.

rng = np.random.default_rng(1)
shape = (96, 96)
x_true = np.zeros(shape)
x_true.flat[rng.choice(x_true.size, 60, replace=False)] = rng.uniform(0.3, 1.0, 60)

u, v = np.meshgrid(np.arange(-4, 5), np.arange(-4, 5), indexing="ij")
h_true = np.exp(-0.5 * ((u + 0.6 * v) ** 2 / 3.0 + v**2 / 0.8))
h_true /= h_true.sum()

blur = linop.Conv2d(h_true, shape, padding="same")
y = blur.apply(x_true) + 0.002 * rng.standard_normal(shape)


def kernel_error(h):
    return np.linalg.norm(h - h_true) / np.linalg.norm(h_true)


# %%
# Alternating least squares
# -------------------------
# Start from a round Gaussian guess of the kernel. The image step solves a
# damped least-squares problem with ``Conv2d(h)``, then keeps the image
# positive and sparse (a soft threshold); the kernel step solves a
# least-squares problem with ``ConvFilter2d(x)`` on the 81 kernel weights,
# then keeps the kernel non-negative and summing to one (the blur's scale
# cannot be told from the image's).

h = np.exp(-0.5 * (u**2 + v**2) / 3.0)
h /= h.sum()
errors = [kernel_error(h)]
for _ in range(6):
    A = linop.Conv2d(h, shape, padding="same")
    x = lsqr(A, y.ravel(), damp=0.01, iter_lim=20)[0].reshape(shape)
    x = np.maximum(x - 0.08, 0)
    K = linop.ConvFilter2d(x, h.shape, padding="same")
    h = lsqr(K, y.ravel(), iter_lim=100)[0].reshape(h.shape)
    h = np.maximum(h, 0)
    h /= h.sum()
    errors.append(kernel_error(h))
print("kernel error by round:", " ".join(f"{e:.3f}" for e in errors))
print(K)
print("the kernel step's adjoint passes the dot test:", linop.dottest(K, rng=0).passed)

# %%
# What came out
# -------------
# The estimated kernel has found the tilt and the elongation of the true
# blur. With it, a plain damped ``lsqr`` deblurs the sky nearly as well as
# with the true kernel.

deblurred = {
    name: lsqr(linop.Conv2d(k, shape, padding="same"), y.ravel(), damp=0.01,
               iter_lim=40)[0].reshape(shape)
    for name, k in (("estimated", h), ("true", h_true))
}
fig, axes = plt.subplots(1, 5, figsize=(14, 3.2), layout="constrained")
panels = [(x_true, "stars"), (y, "blurred data"),
          (deblurred["estimated"], "deblurred, estimated kernel"),
          (h_true, "true kernel"), (h, f"estimated kernel ({errors[-1]:.3f})")]
for ax, (image, title) in zip(axes, panels):
    ax.imshow(image, cmap="magma")
    ax.set_title(title, fontsize=9)
    ax.axis("off")

fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
ax.plot(errors, "o-")
ax.set_xlabel("round")
ax.set_ylabel("relative kernel error")
