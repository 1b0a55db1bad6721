"""linop: convolution as a sparse matrix.

Convolutions, transposed convolutions and interpolations written as SciPy
sparse matrices and wrapped as `scipy.sparse.linalg.LinearOperator` objects,
with PyTorch's semantics.

Examples
--------
A 3x3 kernel on a 4x4 input is a 4x16 matrix; applying it is the "valid"
convolution (cross-correlation) of ``torch.nn.functional.conv2d``:

>>> import numpy as np, linop
>>> A = linop.Conv2d(np.array([[3., 2, 9], [-2, 1, 3], [-3, -2, 2]]), (4, 4))
>>> A.shape, A.input_shape, A.output_shape
((4, 16), (4, 4), (2, 2))
>>> A.apply(np.arange(1., 17).reshape(4, 4))
array([[26., 39.],
       [78., 91.]])
"""

__version__ = "0.1.0"

from linop import linalg
from linop._base import ProductOperator, ShapedLinearOperator, SumOperator
from linop._conv.geometry import ConvGeometry
from linop._conv.plan import Estimate, Plan
from linop._memory import (
    MatrixTooLargeError,
    get_memory_limit,
    memory_limit,
    set_memory_limit,
)
from linop._torch import from_torch
from linop._validation import ParameterError, ParameterTypeError, ParameterValueError
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
from linop.conv_filter import ConvFilter1d, ConvFilter2d, ConvFilter3d
from linop.pad import Pad
from linop.pool import AvgPool1d, AvgPool2d, AvgPool3d
from linop.shuffle import PixelShuffle, PixelUnshuffle
from linop.testing import dottest
from linop.upsample import Upsample

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "conv_matrix",
    "conv_transpose_matrix",
    "ConvGeometry",
    "Plan",
    "Estimate",
    "Upsample",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "Pad",
    "PixelShuffle",
    "PixelUnshuffle",
    "ConvFilter1d",
    "ConvFilter2d",
    "ConvFilter3d",
    "from_torch",
    "ShapedLinearOperator",
    "ProductOperator",
    "SumOperator",
    "MatrixTooLargeError",
    "ParameterError",
    "ParameterTypeError",
    "ParameterValueError",
    "get_memory_limit",
    "memory_limit",
    "set_memory_limit",
    "dottest",
    "linalg",
]
