"""
The blog post, reproduced: convolution and transposed convolution as matrices
==============================================================================

linop started from a blog post on up-sampling with transposed convolutions
("Transposed Convolution 연산을 이용한 Up-sampling"). It works two examples
with PyTorch:

1. ``F.conv2d`` of the 4x4 input ``1..16`` with a 3x3 kernel, which gives
   ``[[26, 39], [78, 91]]``, and the same convolution written as a 4x16
   matrix multiplying the flattened input;
2. ``F.conv_transpose2d`` of the 2x2 input ``[[1, 2], [3, 4]]`` with a
   second kernel, a 16x4 matrix that up-samples it to 4x4.

This example reproduces both with linop, numbers and figures, and checks
that the transposed convolution's matrix is the transpose of a convolution
matrix.
"""

import matplotlib.pyplot as plt
import numpy as np

import linop


def show_matrix(ax, m, title, fmt="{:g}"):
    """A heatmap of ``m`` with every value written in its cell."""
    m = np.asarray(m)
    lim = max(np.abs(m).max(), 1e-12)
    ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                color="0.65" if v == 0 else "black")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


# %%
# The convolution
# ---------------
# The blog's input holds 1 to 16 in a 4x4 grid, and its kernel is a 3x3
# array of small integers. A bare 3x3 kernel with a two-dimensional input
# shape is a convolution with one channel in and out.

x = np.arange(1, 17, dtype=float).reshape(4, 4)
kernel = np.array([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=float)

A = linop.Conv2d(kernel, x.shape)
print(A)
print(A.apply(x))

# %%
# These are PyTorch's numbers, ``F.conv2d(x, kernel)`` in the blog:
# ``[[26, 39], [78, 91]]``. The figure shows where they come from: each
# output pixel is the sum of a 3x3 window of the input, weighted by the
# kernel (no flip: a cross-correlation).

fig, axes = plt.subplots(1, 3, figsize=(8, 3), gridspec_kw={"width_ratios": [4, 3, 2]})
show_matrix(axes[0], x, "input x (4x4)")
show_matrix(axes[1], kernel, "kernel (3x3)")
show_matrix(axes[2], A.apply(x), "A.apply(x) (2x2)")
axes[0].add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, lw=2.5, color="crimson"))
axes[2].add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, lw=2.5, color="crimson"))
fig.tight_layout()

# %%
# The convolution matrix
# ----------------------
# Flattening the input row by row turns it into a vector of 16 numbers, and
# the convolution into a 4x16 matrix. ``tocsr()`` returns it as a
# :class:`scipy.sparse.csr_array`; each row holds the kernel, row by row,
# with a zero wherever the window stops short of the input's last column.

M = A.tocsr()
print(repr(M))
print(M.toarray())

fig, ax = plt.subplots(figsize=(9, 2.8))
show_matrix(ax, M.toarray(), "linop.Conv2d(kernel, (4, 4)).tocsr(): the 4x16 convolution matrix")
ax.set_xticks(range(16), [f"x{i}" for i in range(1, 17)], fontsize=7)
ax.set_yticks(range(4), [f"y{i}" for i in range(1, 5)], fontsize=7)
fig.tight_layout()

# %%
# The matrix-vector product
# -------------------------
# 4x16 times 16x1 is 4x1: the matrix times the flattened input is the
# flattened output. The operator itself does the same product (``A @ v`` is
# ``A.matvec(v)``), without being asked for the matrix.

y = M @ x.ravel()
print(y, "->", y.reshape(2, 2).tolist())
assert np.array_equal(y, A @ x.ravel())
assert np.array_equal(y.reshape(2, 2), [[26, 39], [78, 91]])

fig, axes = plt.subplots(1, 3, figsize=(9, 4.2), gridspec_kw={"width_ratios": [16, 1.5, 1.5]})
show_matrix(axes[0], M.toarray(), "M (4x16)")
show_matrix(axes[1], x.reshape(16, 1), "x (16x1)")
show_matrix(axes[2], y.reshape(4, 1), "M x (4x1)")
fig.tight_layout()

# %%
# The transposed convolution up-samples
# -------------------------------------
# The transpose of a 4x16 matrix is 16x4: it maps a 2x2 input to a 4x4
# output. That is the transposed convolution: every input pixel spreads a
# copy of the kernel, scaled by its value, over a 3x3 window of the output,
# and the copies add up. The blog up-samples ``[[1, 2], [3, 4]]`` with a
# second kernel.

kernel2 = np.array([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=float)
z = np.array([[1, 2], [3, 4]], dtype=float)

U = linop.ConvTranspose2d(kernel2, z.shape)
print(U)
print(U.apply(z))

# %%
# The output is ``F.conv_transpose2d(input, conv_filter)`` of the blog. Its
# matrix is exactly the transpose of the convolution matrix of the same
# kernel on a 4x4 input:

C = linop.conv_matrix(kernel2, (4, 4))
assert np.array_equal(U.tocsr().toarray(), C.T.toarray())
assert np.array_equal(
    U.apply(z),
    [[1, 4, 11, 14], [1, 7, 31, 28], [-9, -10, 8, 4], [-9, -9, 10, 8]],
)

fig, axes = plt.subplots(1, 4, figsize=(9, 4.6), gridspec_kw={"width_ratios": [4, 1.2, 1.2, 4]})
show_matrix(axes[0], U.tocsr().toarray(), "U.tocsr() (16x4)")
show_matrix(axes[1], z.reshape(4, 1), "z (4x1)")
show_matrix(axes[2], (U @ z.ravel()).reshape(16, 1), "U z (16x1)")
show_matrix(axes[3], U.apply(z), "reshaped: 4x4")
fig.tight_layout()

# %%
# Transpose and adjoint
# ---------------------
# Every linop operator knows its transpose: ``A.T`` of a ``Conv2d`` is the
# matching ``ConvTranspose2d`` and ``A.T.T`` a ``Conv2d`` again, sharing the
# same sparsity pattern. For real weights the transpose is also the adjoint
# (``A.H``, which SciPy's ``rmatvec`` applies), and the dot test
# :math:`\langle A x, y\rangle = \langle x, A^T y\rangle` holds to rounding.

print(A.T, A.T.T, sep="\n")
print(linop.testing.dottest(A, rng=0))

# %%
# With this, every linop operator can be handed to SciPy's solvers, which
# need nothing but ``matvec`` and ``rmatvec``: see the deblurring example.
# ``linop demo`` on the command line prints the same numbers.
