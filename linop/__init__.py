"""linop: convolution as a sparse matrix.

Convolutions, transposed convolutions and interpolations written as SciPy
sparse matrices and wrapped as `scipy.sparse.linalg.LinearOperator` objects,
with PyTorch's semantics.
"""

__version__ = "0.1.0"

from linop.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    conv_matrix,
    conv_transpose_matrix,
)
from linop._memory import (
    MatrixTooLargeError,
    get_memory_limit,
    memory_limit,
    set_memory_limit,
)
from linop.upsample import Upsample
from linop.testing import dottest

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "conv_matrix",
    "conv_transpose_matrix",
    "Upsample",
    "MatrixTooLargeError",
    "get_memory_limit",
    "memory_limit",
    "set_memory_limit",
    "dottest",
]
