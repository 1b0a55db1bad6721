"""The seed blog's examples, through the public API, with exact equality.

The seed blog is the post that started the project, a Korean post on transposed
convolution for up-sampling ("[ML/DL] Transposed Convolution 연산을 이용한
Up-sampling"). It works in PyTorch, in float32, and shows:

* ``F.conv2d`` of the 4x4 input ``arange(1, 17).view(4, 4)`` with the 3x3 filter
  of its figure 3: the 2x2 output ``[[26, 39], [78, 91]]``;
* the same convolution as the 4x16 matrix of the flattened input (figure 4),
  whose product with the flattened input is the flattened output (figure 6);
* the up-sampling of ``[[1, 2], [3, 4]]`` to 4x4 by the 16x4 transposed matrix
  (figure 7), which is ``F.conv_transpose2d`` with a second 3x3 filter.

The filters, the matrix and the outputs are written out below. All the numbers are
small integers, so every result must be exact.
"""

import numpy as np
import pytest
import scipy.sparse

import linop
from reference import conv_nd, conv_transpose_nd

# the blog's convolution filter (figure 3)
KERNEL = np.array([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=np.float64)
# the blog's transposed-convolution filter
KERNEL2 = np.array([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=np.float64)
X = np.arange(1, 17, dtype=np.float64).reshape(4, 4)

# F.conv2d(x, conv_filter) as printed by the blog
CONV_OUT = np.array([[26.0, 39.0], [78.0, 91.0]])

# Figure 4, the 4x16 convolution matrix, written out by hand: output pixel (r, c) of the
# 2x2 output reads the 3x3 window whose top-left input pixel is (r, c); flattening the
# 4x4 input row-major, kernel row i lands on columns 4*(r+i)+c .. 4*(r+i)+c+2.
#                  x00 x01 x02 x03  x10 x11 x12 x13  x20 x21 x22 x23  x30 x31 x32 x33
CONV_MATRIX = np.array(
    [
        [3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2, 0, 0, 0, 0, 0],  # out (0, 0)
        [0, 3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2, 0, 0, 0, 0],  # out (0, 1)
        [0, 0, 0, 0, 3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2, 0],  # out (1, 0)
        [0, 0, 0, 0, 0, 3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2],  # out (1, 1)
    ],
    dtype=np.float64,
)

# F.conv_transpose2d([[1, 2], [3, 4]], KERNEL2) as printed by the blog ("Up-Sampled")
UPSAMPLED = np.array(
    [
        [1.0, 4.0, 11.0, 14.0],
        [1.0, 7.0, 31.0, 28.0],
        [-9.0, -10.0, 8.0, 4.0],
        [-9.0, -9.0, 10.0, 8.0],
    ]
)


def test_reference_reproduces_blog():
    """The reference itself reproduces the blog's printed numbers."""
    np.testing.assert_array_equal(conv_nd(X[None], KERNEL[None, None])[0], CONV_OUT)
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(conv_transpose_nd(y[None], KERNEL2[None, None])[0], UPSAMPLED)


def test_conv2d_blog_output():
    A = linop.Conv2d(KERNEL, (4, 4))
    assert A.input_shape == (4, 4)
    assert A.output_shape == (2, 2)
    assert A.shape == (4, 16)
    np.testing.assert_array_equal(A.apply(X), CONV_OUT)
    np.testing.assert_array_equal(A @ X.ravel(), CONV_OUT.ravel())
    np.testing.assert_array_equal(A.matvec(X.ravel()), CONV_OUT.ravel())


@pytest.mark.parametrize("method", ["auto", "toeplitz", "im2col"])
def test_conv2d_blog_output_channel_form(method):
    A = linop.Conv2d(KERNEL.reshape(1, 1, 3, 3), (1, 4, 4), method=method)
    assert A.output_shape == (1, 2, 2)
    np.testing.assert_array_equal(A.apply(X[None]), CONV_OUT[None])


def test_conv2d_blog_matrix():
    M = linop.Conv2d(KERNEL, (4, 4)).tocsr()
    assert isinstance(M, scipy.sparse.csr_array)
    assert M.shape == (4, 16)
    np.testing.assert_array_equal(M.toarray(), CONV_MATRIX)
    # figure 6: the matrix times the flattened input is the flattened output
    np.testing.assert_array_equal(M @ X.ravel(), CONV_OUT.ravel())
    np.testing.assert_array_equal(CONV_MATRIX @ X.ravel(), CONV_OUT.ravel())
    M2 = linop.conv_matrix(KERNEL, (4, 4))
    np.testing.assert_array_equal(M2.toarray(), CONV_MATRIX)


def test_blog_upsampling_by_transposed_matrix():
    """Figure 7: the 16x4 transposed matrix up-samples the flattened 2x2 input."""
    A = linop.Conv2d(KERNEL2, (4, 4))
    y = np.array([1.0, 2.0, 3.0, 4.0])
    up = A.T @ y
    assert up.shape == (16,)
    np.testing.assert_array_equal(up.reshape(4, 4), UPSAMPLED)
    # real weights: the Hermitian adjoint is the same
    np.testing.assert_array_equal(A.rmatvec(y).reshape(4, 4), UPSAMPLED)
    np.testing.assert_array_equal((A.T.tocsr() @ y).reshape(4, 4), UPSAMPLED)


def test_blog_conv_transpose2d():
    T = linop.ConvTranspose2d(KERNEL2.reshape(1, 1, 3, 3), (1, 2, 2))
    assert T.output_shape == (1, 4, 4)
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(T.apply(y[None]), UPSAMPLED[None])
    np.testing.assert_array_equal(T.apply(y[None, None]), UPSAMPLED[None, None])
    np.testing.assert_array_equal(T @ y.ravel(), UPSAMPLED.ravel())
    # bare-kernel form
    Tb = linop.ConvTranspose2d(KERNEL2, (2, 2))
    assert Tb.output_shape == (4, 4)
    np.testing.assert_array_equal(Tb.apply(y), UPSAMPLED)
    np.testing.assert_array_equal(
        linop.conv_transpose_matrix(KERNEL2, (2, 2)).toarray(),
        linop.conv_matrix(KERNEL2, (4, 4)).toarray().T,
    )


def test_blog_float32_like_torch():
    """The blog runs in float32; the numbers are exact there too."""
    A = linop.Conv2d(KERNEL.astype(np.float32), (4, 4))
    out = A.apply(X.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, CONV_OUT.astype(np.float32))
    T = linop.ConvTranspose2d(KERNEL2.astype(np.float32), (2, 2))
    up = T.apply(np.array([[1, 2], [3, 4]], dtype=np.float32))
    assert up.dtype == np.float32
    np.testing.assert_array_equal(up, UPSAMPLED.astype(np.float32))
