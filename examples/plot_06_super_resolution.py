"""
Super-resolution with ``Conv2d @ Upsample`` as one operator
===========================================================

A camera with coarse pixels sees a sharp scene through two linear maps:
the optics blur it (a convolution) and the sensor averages blocks of
pixels (down-sampling). Super-resolution inverts both. With linop the
forward model is written the way it is said, as a product of operators,

.. math:: y = D\\, B\\, x + \\text{noise},

and the product is itself an operator, with ``apply``, an exact adjoint,
an explicit sparse matrix and a shape, so that SciPy's
:func:`~scipy.sparse.linalg.lsqr` solves for the sharp image ``x`` with
nothing else.

This example also compares the two ways of applying the product: factor
by factor, or through its multiplied sparse matrix.
"""

import time

import matplotlib.cbook as cbook
import matplotlib.pyplot as plt
import numpy as np
from scipy.sparse.linalg import lsqr

import linop

# %%
# The scene and the camera
# ------------------------
# A 128x128 crop of Matplotlib's sample photograph is the sharp scene ``x``.
# The optics: a 5x5 Gaussian blur with reflected borders. The sensor: 2x2
# blocks averaged (``Upsample`` in ``"area"`` mode with half the size). The
# camera is their product, a 64x64 image from a 128x128 one.

with cbook.get_sample_data("grace_hopper.jpg") as f:
    rgb = plt.imread(f)
grey = rgb[100:356, 150:406, :3] @ np.array([0.299, 0.587, 0.114]) / 255
x_true = linop.Upsample((1, 256, 256), size=(128, 128), mode="area").apply(grey[None])[0]

g = np.exp(-0.5 * (np.arange(-2, 3) / 1.0) ** 2)
blur = linop.Conv2d(np.outer(g, g) / np.outer(g, g).sum(), (128, 128), padding="same",
                    padding_mode="reflect")
sensor = linop.Upsample((1, 128, 128), size=(64, 64), mode="area")
camera = sensor @ blur
print(camera)
print("input", camera.input_shape, "-> output", camera.output_shape, " matrix", camera.shape)

rng = np.random.default_rng(0)
y = camera.apply(x_true) + 0.002 * rng.standard_normal(camera.output_shape)

# %%
# Its adjoint is exact
# --------------------
# ``camera.H`` is the product of the factors' adjoints in reverse order; the
# dot test checks ``<A x, y> = <x, A^H y>`` on random vectors.

print(linop.dottest(camera, rng=0))

# %%
# Inverting it
# ------------
# ``lsqr`` with a little damping recovers detail that the coarse image has
# lost. For a reference, the coarse image up-sampled by bicubic
# interpolation (another linop operator) shows what interpolation alone
# can do.

solution = lsqr(camera, y.ravel(), damp=0.02, iter_lim=60)
x_hat = solution[0].reshape(128, 128)
bicubic = linop.Upsample((1, 64, 64), size=(128, 128), mode="bicubic").apply(y)[0]


def error(x):
    return np.linalg.norm(x - x_true) / np.linalg.norm(x_true)


print(f"lsqr: {solution[2]} iterations, relative error {error(x_hat):.3f}; "
      f"bicubic interpolation: {error(bicubic):.3f}")

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
for ax, image, title in zip(
        axes, [x_true, y[0], bicubic, x_hat],
        ["sharp scene (128x128)", "camera image (64x64)",
         f"bicubic up-sampling ({error(bicubic):.3f})",
         f"lsqr on the product ({error(x_hat):.3f})"]):
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")

# %%
# Factors, or their product's matrix
# ----------------------------------
# ``camera.tocsr()`` multiplies the factors' sparse matrices once. Applying
# that matrix is one sparse product; applying the factors is two cheaper
# steps. Which is faster depends on how many entries the product has
# compared with its factors: here each output pixel of the product reads a
# 6x6 window, 36 entries a row, while the blur has 25 and the sensor 4.

start = time.perf_counter()
matrix = camera.tocsr()
built = time.perf_counter() - start
x = rng.standard_normal(camera.shape[1])


def timed(f, repeat=50):
    start = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - start) / repeat


print(f"product matrix: {matrix.nnz} stored entries, built in {built * 1e3:.1f} ms; "
      f"factors: {blur.tocsr().nnz} + {sensor.tocsr().nnz}")
print(f"one application: factors {timed(lambda: camera @ x) * 1e3:.3f} ms, "
      f"product matrix {timed(lambda: matrix @ x) * 1e3:.3f} ms")
print("same numbers:", np.allclose(matrix @ x, camera @ x))
