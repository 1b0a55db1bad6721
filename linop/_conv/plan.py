"""Choosing how to apply a convolution (``method="auto"``)."""

from __future__ import annotations

import numpy as np

from linop._conv.geometry import ConvGeometry
from linop._conv.toeplitz import explicit_matrix_nbytes
from linop._memory import get_memory_limit

__all__ = ["choose_method"]


def choose_method(weight: np.ndarray, geometry: ConvGeometry, groups: int) -> str:
    """The method ``"auto"`` picks for a convolution.

    The explicit matrix costs ``nnz_1 * C_out * C_in/groups`` multiply-adds
    through a memory-bound CSR product; im2col gathers ``nnz_1 * C_in``
    entries and hands the channel mixing to BLAS. With a single channel in
    and out per group there is no mixing to hand over, and the matrix is
    taken when it fits within the memory limit.
    """
    c_out, cin_g = weight.shape[:2]
    if c_out // groups * cin_g != 1:
        return "im2col"
    if explicit_matrix_nbytes(weight, geometry, groups) <= get_memory_limit():
        return "toeplitz"
    return "im2col"
