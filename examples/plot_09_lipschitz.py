"""
The Lipschitz constant of a small network, layer by layer
=========================================================

The 2-norm of a linear layer is its Lipschitz constant: how much it can
stretch a perturbation of its input. For a stack of linear layers the
product of the layers' norms bounds the network's norm. This example
computes the norms of a small network's layers with :mod:`linop.linalg`
(exactly for the circular layer, with certified bounds for the others),
compares their product with the norm of the whole network found by power
iteration on the composed operator, and clips a layer's singular values to
make the network less sensitive (Sedghi, Gupta and Long, 2019).
"""

import matplotlib.pyplot as plt
import numpy as np

import linop
from linop import linalg

rng = np.random.default_rng(0)

# %%
# The network
# -----------
# A 32x32 image, a 3x3 convolution to 8 channels (zero padding), a 2x2
# average pooling, a 3x3 convolution with circular padding, and a strided
# 3x3 convolution to 4 channels: four linear layers, one operator.

conv1 = linop.Conv2d(rng.standard_normal((8, 1, 3, 3)) / 3, (1, 32, 32), padding=1)
pool = linop.AvgPool2d((8, 32, 32), 2)
conv2 = linop.Conv2d(rng.standard_normal((8, 8, 3, 3)) / 6, (8, 16, 16), padding=1,
                     padding_mode="circular")
conv3 = linop.Conv2d(rng.standard_normal((4, 8, 3, 3)) / 6, (8, 16, 16), padding=1, stride=2)
layers = {"conv1 (zeros)": conv1, "pool": pool, "conv2 (circular)": conv2,
          "conv3 (zeros, stride 2)": conv3}
net = conv3 @ conv2 @ pool @ conv1
print(net)

# %%
# The norm of every layer
# -----------------------
# ``opnorm`` returns the value and bounds on both sides. The circular layer
# is block-circulant, so its norm is exact; the zero-padded layers get the
# Lanczos estimate from below and the norm of their circular embedding on
# a slightly larger grid from above; the pooling, which is not a
# convolution here, gets Schur's test on its explicit matrix.

results = {name: linalg.opnorm(op) for name, op in layers.items()}
for name, r in results.items():
    print(f"{name:24} value {r.value:.6f}  upper {r.upper:.6f}  exact {r.exact}  ({r.bound})")

# %%
# The network's bound against its norm
# ------------------------------------
# The product of the upper bounds is a certified Lipschitz bound of the
# network. The network's own norm, from the power iteration on the
# composed operator ``net.H @ net``, is smaller: the layers' worst inputs
# do not line up.


def power_iteration(A, steps=300, seed=1):
    x = np.random.default_rng(seed).standard_normal(A.shape[1])
    for _ in range(steps):
        x = A.rmatvec(A.matvec(x))
        x /= np.linalg.norm(x)
    return np.linalg.norm(A.matvec(x))


product = np.prod([r.upper for r in results.values()])
power = power_iteration(net)
whole = linalg.opnorm(net)
print(f"product of the layers' bounds: {product:.6f}")
print(f"opnorm(net): value {whole.value:.6f}, upper {whole.upper:.6f}")
print(f"power iteration on net: {power:.6f}")

# %%
# Clipping a layer's norm
# -----------------------
# ``clip_singular_values`` clips every per-frequency singular value of the
# circular layer at 0.5 and crops the kernel back to 3x3. The crop makes the
# projection approximate: the new norm is above 0.5. Clipping again and again
# (alternating the two projections) brings it closer.

clipped = linalg.clip_singular_values(conv2, 0.5)
print(f"conv2 norm: {results['conv2 (circular)'].value:.4f} -> "
      f"{linalg.opnorm(clipped).value:.4f} (clipped at 0.5 once)")
again = clipped
for _ in range(9):
    again = linalg.clip_singular_values(again, 0.5)
print(f"after 10 clips: {linalg.opnorm(again).value:.4f}")
net_clipped = conv3 @ clipped @ pool @ conv1
bound_clipped = product / results["conv2 (circular)"].upper * linalg.opnorm(clipped).upper
print(f"network: bound {bound_clipped:.6f}, power iteration "
      f"{power_iteration(net_clipped):.6f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
names = list(results)
ax1.bar(names, [r.upper for r in results.values()], color="0.8", label="upper bound")
ax1.bar(names, [r.lower for r in results.values()], width=0.5, label="lower bound")
ax1.set_ylabel("2-norm")
ax1.set_title("the layers' norms")
ax1.tick_params(axis="x", labelrotation=20, labelsize=8)
ax1.legend()
ax2.plot(linalg.svdvals(conv2), label="conv2")
ax2.plot(linalg.svdvals(clipped), label="clipped at 0.5, kernel cropped")
ax2.axhline(0.5, color="k", lw=0.5)
ax2.set_xlabel("index")
ax2.set_ylabel("singular value")
ax2.set_title("all 2048 singular values of conv2")
ax2.legend()
fig.tight_layout()
plt.show()
