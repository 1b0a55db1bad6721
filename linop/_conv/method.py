"""What every way of applying a convolution shares.

A method applies the convolution ``A`` of a weight, a geometry and groups to
blocks of columns (``(C_in*n_in, k)`` for ``A x``, ``(C_out*n_out, k)`` for
``A^T y``) and caches what it builds in a `~linop._memo.Memo`, which copies
and pickles empty. A new method subclasses `ConvMethod`, implements
`~ConvMethod.forward` and `~ConvMethod.transpose`, registers itself in
`linop._conv.engine.METHODS` and tells `linop._conv.plan` what it costs.
"""

from __future__ import annotations

import numpy as np

from linop._conv.geometry import ConvGeometry
from linop._memo import Memo

__all__ = ["ConvMethod"]


class ConvMethod:
    """A way of applying one convolution; subclasses implement the two directions.

    Parameters
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
    geometry : ConvGeometry
    groups : int
    """

    name: str

    def __init__(self, weight: np.ndarray, geometry: ConvGeometry, groups: int):
        self.weight = weight
        self.geometry = geometry
        self.groups = groups
        self.c_out, self.cin_g = weight.shape[:2]
        self.c_in = self.cin_g * groups
        self._memo = Memo()

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``A x`` for columns ``(C_in*n_in, k)`` -> ``(C_out*n_out, k)``."""
        raise NotImplementedError

    def transpose(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``A^T y`` (no conjugation) for columns ``(C_out*n_out, k)`` -> ``(C_in*n_in, k)``."""
        raise NotImplementedError
