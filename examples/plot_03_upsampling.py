"""
Up-sampling compared: nearest, bilinear, bicubic and transposed convolution
===========================================================================

The blog post that started linop lists the interpolation methods a network
can use to up-sample (nearest neighbour, bilinear, bicubic) and then argues
for the transposed convolution, whose kernel is learnt. With linop all of
them are sparse linear operators with PyTorch's semantics, so they can be
compared on the same image, as matrices, and through their adjoints.
"""

import matplotlib.cbook as cbook
import matplotlib.pyplot as plt
import numpy as np

import linop
from linop.testing import dottest

# %%
# A low-resolution image
# ----------------------
# Grace Hopper's photograph (shipped with Matplotlib) in grey, 256x256, and
# a 64x64 version made by averaging 4x4 blocks: ``Upsample`` in ``"area"``
# mode with a smaller size is adaptive average pooling. The task: get the
# 256x256 image back from the 64x64 one.

with cbook.get_sample_data("grace_hopper.jpg") as f:
    rgb = plt.imread(f)
grey = rgb[:512, :512, :3] @ np.array([0.299, 0.587, 0.114]) / 255
hi = linop.Upsample((1, 512, 512), size=(256, 256), mode="area").apply(grey[None])[0]
shrink = linop.Upsample((1, 256, 256), size=(64, 64), mode="area")
lo = shrink.apply(hi[None])[0]
print(hi.shape, "->", lo.shape)

# %%
# Five ways up by 4
# -----------------
# Three interpolation modes of ``torch.nn.functional.interpolate``, and two
# transposed convolutions with stride 4 (``torch.nn.ConvTranspose2d``):
#
# * one with the *bilinear kernel*, the usual initialisation of up-sampling
#   layers: an 8x8 tent, ``1 - |i - 3.5| / 4`` along each axis, with
#   padding 2. Away from the image's border it *is* bilinear interpolation;
# * one whose 12x12 kernel is fitted to the image by least squares, as
#   training would fit it. The output of a transposed convolution is linear
#   in its kernel as well as in its input, so the fit is one ``lstsq``: a
#   single ``ConvTranspose2d`` with the identity as weight (one output
#   channel per kernel tap) computes all the columns of the problem at once.

s = 4
tent = 1 - np.abs(np.arange(2 * s) - (s - 0.5)) / s
bilinear_kernel = np.outer(tent, tent)

k, pad = 12, 4
taps = linop.ConvTranspose2d(np.eye(k * k).reshape(1, k * k, k, k), (1, 64, 64),
                             stride=s, padding=pad)
columns = taps.apply(lo[None]).reshape(k * k, -1).T  # (256*256, 144)
fitted_kernel = np.linalg.lstsq(columns, hi.ravel(), rcond=None)[0].reshape(k, k)

ops = {
    "nearest": linop.Upsample((1, 64, 64), scale_factor=s, mode="nearest"),
    "bilinear": linop.Upsample((1, 64, 64), scale_factor=s, mode="bilinear"),
    "bicubic": linop.Upsample((1, 64, 64), scale_factor=s, mode="bicubic"),
    "ConvTranspose2d, bilinear kernel": linop.ConvTranspose2d(
        bilinear_kernel[None, None], (1, 64, 64), stride=s, padding=2),
    "ConvTranspose2d, fitted kernel": linop.ConvTranspose2d(
        fitted_kernel[None, None], (1, 64, 64), stride=s, padding=pad),
}
results = {name: op.apply(lo[None])[0] for name, op in ops.items()}

inner = (slice(s, -s), slice(s, -s))
same = np.allclose(results["bilinear"][inner], results["ConvTranspose2d, bilinear kernel"][inner])
print("bilinear kernel == bilinear interpolation away from the border:", same)


def error(img):
    return np.linalg.norm(img - hi) / np.linalg.norm(hi)


for name, img in results.items():
    print(f"{name:<34} {ops[name].shape[0]}x{ops[name].shape[1]} matrix, "
          f"relative error {error(img):.4f}")

# %%
# The results, and a close-up of the eyes:

crop = (slice(70, 134), slice(90, 154))
fig, axes = plt.subplots(2, 7, figsize=(14, 4.6))
panels = [("original 256x256", hi), ("input 64x64", lo)] + list(results.items())
for col, (name, img) in enumerate(panels):
    full = img if img.shape == hi.shape else np.kron(img, np.ones((s, s)))
    axes[0, col].imshow(img, cmap="gray", vmin=0, vmax=1)
    axes[1, col].imshow(full[crop], cmap="gray", vmin=0, vmax=1)
    title = name.replace("ConvTranspose2d, ", "ConvT2d,\n")
    if img.shape == hi.shape and name != "original 256x256":
        title += f"\nerror {error(img):.3f}"
    axes[0, col].set_title(title, fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()

# %%
# Bicubic interpolation beats bilinear, which beats nearest neighbour. The
# transposed convolution with the bilinear kernel darkens the border (a
# quarter of its weight falls outside the output there), and the fitted
# kernel edges out bicubic interpolation, but it was fitted to this very
# image, so that comparison flatters it.
#
# Impulse responses
# -----------------
# Each operator's columns are copies of one *impulse response*: what a
# single bright pixel becomes. Along one line through it:

delta = np.zeros((64, 64))
delta[32, 32] = 1.0
fig, ax = plt.subplots(figsize=(7, 3.2))
cols = np.arange(116, 148)
for name, op in ops.items():
    response = op.apply(delta[None])[0]
    row = np.unravel_index(np.argmax(np.abs(response)), response.shape)[0]
    dashed = name.startswith("ConvTranspose2d, bilinear")
    ax.plot(cols, response[row, cols], "--" if dashed else ".-", lw=2.5 if dashed else 1.5,
            label=name)
ax.axhline(0, color="0.6", lw=0.8)
ax.set_xlabel("output column")
ax.set_title("Response to one input pixel (the row through its peak)")
ax.legend(fontsize=7)
fig.tight_layout()

# %%
# Nearest neighbour copies the pixel into a 4-pixel box, bilinear
# interpolation spreads it as a tent over 8 pixels (the dashed transposed
# convolution with the bilinear kernel lies on top of it), and bicubic as a
# smoother bump over 16 with small negative lobes, which sharpen edges (and
# overshoot them). The fitted kernel found a bump of its own.
#
# Adjoints
# --------
# Each up-sampling operator ``U`` has an adjoint ``U.H`` that goes back down,
# from 256x256 to 64x64. It is not an inverse: it *spreads back* each output
# pixel onto the input pixels that made it. For nearest neighbour it sums
# the 4x4 block of copies, which is 16 times the area down-sampling we
# started from:

nearest = ops["nearest"]
v = np.random.default_rng(0).standard_normal((1, 256, 256))
print("nearest.H == 16 * area down-sampling:",
      np.allclose(nearest.apply_adjoint(v), s**2 * shrink.apply(v)))

# %%
# The adjoints of the smoother operators are smoother down-samplings:
# weighted averages over larger windows, the weights being the impulse
# responses above. Divided by 16 they keep the brightness:

fig, axes = plt.subplots(1, 5, figsize=(12, 2.9))
for ax, (name, op) in zip(axes, ops.items()):
    ax.imshow(op.apply_adjoint(hi[None])[0] / s**2, cmap="gray", vmin=0, vmax=1)
    ax.set_title(name.replace("ConvTranspose2d, ", "ConvT2d, ") + "\nU.H @ original / 16",
                 fontsize=8)
    ax.axis("off")
fig.tight_layout()

# %%
# The adjoints are exact, which the dot test checks: for random ``x`` and
# ``y``, :math:`\langle U x, y\rangle = \langle x, U^H y\rangle` to rounding.

for name, op in ops.items():
    result = dottest(op, rng=0)
    print(f"{name:<34} relative error {result.rel_error:.1e}  passed={result.passed}")

# %%
# Checkerboards
# -------------
# A transposed convolution whose kernel size is not a multiple of its
# stride covers the output unevenly: some output pixels receive more kernel
# copies than their neighbours. Even a constant input then comes out as a
# checkerboard, a well-known artefact of learnt up-sampling layers. The
# 12x12 and 8x8 kernels above, multiples of the stride 4, do not have it.

flat = np.ones((8, 8))
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, size in zip(axes, (3, 4)):
    out = linop.ConvTranspose2d(np.ones((size, size)), flat.shape, stride=2).apply(flat)
    ax.imshow(out[2:-2, 2:-2], cmap="viridis", vmin=0, vmax=4)
    ax.set_title(f"{size}x{size} kernel, stride 2\nvalues {out[2:-2, 2:-2].min():g} to "
                 f"{out[2:-2, 2:-2].max():g}", fontsize=9)
    ax.axis("off")
fig.tight_layout()
