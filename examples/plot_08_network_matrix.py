"""
The matrix behind a small network's linear layers
=================================================

A stack of convolutions, poolings and pixel shuffles without biases or
activations is one linear map, so it is one matrix. :func:`linop.from_torch`
turns a ``torch.nn.Sequential`` of such layers into a single linop operator:
the product of the layers' operators, with the layers' own weights. This
example looks at that matrix, and computes the network's largest singular
values (its Lipschitz constant, the gain of its worst-case input) two ways:
with SciPy's :func:`~scipy.sparse.linalg.svds` on the linop operator, and
with power iteration on the PyTorch module itself, through autograd.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.sparse.linalg import svds

import linop

try:
    import torch
except ImportError:  # the rest needs PyTorch
    torch = None
    print("This example needs PyTorch: pip install torch")

# %%
# The network
# -----------
# A 32x32 image goes through a 3x3 convolution to 8 channels, a 2x2 average
# pooling, a 3x3 convolution to 4 channels and a pixel shuffle back to one
# 32x32 channel: an encoder-decoder in miniature.

if torch is not None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1, bias=False),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(8, 4, 3, padding=1, bias=False),
        torch.nn.PixelShuffle(2),
    ).double()
    A = linop.from_torch(net, (1, 32, 32))
    print(A)
    for layer in A.factors[::-1]:
        print("  ", layer)

    x = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    same = np.allclose(A.apply(x[0].numpy()), net(x)[0].detach().numpy())
    print("linop operator == network:", same)

# %%
# Its matrix
# ----------
# ``A.tocsr()`` multiplies the four layers' sparse matrices. Every output
# pixel depends only on a small window of the input (the receptive field of
# the two convolutions and the pooling), so the matrix is sparse and
# banded; the pixel shuffle decides which output rows sit next to each
# other.

if torch is not None:
    M = A.tocsr()
    print(f"{M.shape[0]} x {M.shape[1]} matrix, {M.nnz} stored entries "
          f"({M.nnz / M.shape[0]:.0f} per row)")
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    ax.spy(M, markersize=0.2)
    ax.set_title("the network's matrix (1024 x 1024)", fontsize=9)

# %%
# Its largest singular values
# ---------------------------
# ``svds`` needs nothing but ``A @ x`` and ``A.H @ y``. Power iteration on
# the module does the same with PyTorch's autograd: for a linear network,
# the gradient of ``|net(v)|^2 / 2`` is ``A^T A v``.

if torch is not None:
    sigma = np.sort(svds(A, k=4, return_singular_vectors=False, rng=0))[::-1]
    print("svds on the linop operator:", np.round(sigma, 6))

    v = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    for _ in range(200):
        v = v / v.norm()
        v.requires_grad_(True)
        (0.5 * net(v).pow(2).sum()).backward()
        v = v.grad.detach()  # A^T A v
    power = float(v.norm()) ** 0.5
    print(f"power iteration on the torch module: {power:.6f}")
    print(f"relative difference: {abs(power - sigma[0]) / sigma[0]:.1e}")
