"""The convolution engine: a definition, a method, and both directions.

`ConvDefinition` is everything that defines a convolution operator and
nothing that is cached: the weight, the geometry, the groups, the method in
use, whether the kernel is bare (no channel axes) and whether the operator
is the transposed convolution. It is what travels when an operator is
pickled, copied or shipped to another process.

`ConvEngine` applies the convolution ``A`` of a definition with one of the
`METHODS` (`linop._conv.toeplitz`, `linop._conv.im2col`, `linop._conv.fft`): ``A x``,
``A^T y``, ``A^H y`` and ``conj(A) x`` on blocks of columns. A convolution
and its transpose share one engine, so the two directions can never
diverge and caches are built once.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse as sp

from linop._conv.fft import FFTMethod
from linop._conv.geometry import ConvGeometry
from linop._conv.im2col import Im2colMethod
from linop._conv.plan import Plan
from linop._conv.toeplitz import ToeplitzMethod, explicit_matrix
from linop._memo import Memo

__all__ = ["ENGINE_NAMES", "METHODS", "METHOD_NAMES", "ConvDefinition", "ConvEngine"]

#: The ways to apply a convolution, by name.
METHODS = {"toeplitz": ToeplitzMethod, "im2col": Im2colMethod, "fft": FFTMethod}

#: What ``method=`` accepts.
METHOD_NAMES = ("auto",) + tuple(METHODS)

#: What ``engine=`` accepts: who computes the method's arithmetic.
ENGINE_NAMES = ("auto", "numpy", "torch")


@dataclasses.dataclass(frozen=True, eq=False)
class ConvDefinition:
    """Everything that defines a convolution operator, and nothing cached.

    Attributes
    ----------
    weight : ndarray, shape (C_out, C_in // groups, *kernel_size)
        The convolution's weight (read-only). For a transposed convolution
        this is PyTorch's ``(C_in, C_out // groups, *k)`` layout, which is
        the layout of the convolution it transposes.
    geometry : ConvGeometry
        The convolution's geometry.
    groups : int
    method : str
        The method in use (never ``"auto"``: the choice travels with it).
    bare : bool
        The kernel has no channel axes, and neither have the shapes.
    transposed : bool
        The operator is the transposed convolution ``A^T``.
    plan : Plan or None
        The estimates behind the method (see `linop._conv.plan`).
    engine : str
        Who computes: ``"numpy"`` (NumPy and SciPy) or ``"torch"`` (PyTorch's
        kernels, `linop._torch_engine`); never ``"auto"``.
    """

    weight: np.ndarray
    geometry: ConvGeometry
    groups: int
    method: str
    bare: bool
    transposed: bool
    plan: Plan | None = None
    engine: str = "numpy"

    def __setstate__(self, state):
        # a pickle restores arrays writeable: the weight stays read-only (the
        # engine and the methods share this very array)
        state["weight"].flags.writeable = False
        for name, value in state.items():
            object.__setattr__(self, name, value)

    @property
    def c_out(self) -> int:
        """Output channels of the convolution ``A``."""
        return self.weight.shape[0]

    @property
    def c_in(self) -> int:
        """Input channels of the convolution ``A``."""
        return self.weight.shape[1] * self.groups

    def conv_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The input and output shapes of the convolution ``A``."""
        g = self.geometry
        if self.bare:
            return g.input_size, g.output_size
        return (self.c_in,) + g.input_size, (self.c_out,) + g.output_size

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The operator's input and output shapes (swapped for ``A^T``)."""
        conv_in, conv_out = self.conv_shapes()
        return (conv_out, conv_in) if self.transposed else (conv_in, conv_out)

    def user_weight(self) -> np.ndarray:
        """The weight in the layout the user gave: the kernel alone when bare."""
        return self.weight.reshape(self.geometry.kernel_size) if self.bare else self.weight

    def transpose(self) -> ConvDefinition:
        return dataclasses.replace(self, transposed=not self.transposed)

    def conjugate(self) -> ConvDefinition:
        """The definition of ``conj(A)`` (a read-only conjugated weight)."""
        weight = self.weight.conj()
        weight.flags.writeable = False
        return dataclasses.replace(self, weight=weight)


class ConvEngine:
    """Applies the convolution ``A`` of a definition with its method, both ways.

    Arrays are blocks of columns: ``(C_in*n_in, k)`` for ``A``'s input,
    ``(C_out*n_out, k)`` for its output, C-contiguous.

    Parameters
    ----------
    definition : ConvDefinition
    """

    def __init__(self, definition: ConvDefinition):
        self.weight = definition.weight
        self.geometry = definition.geometry
        self.groups = definition.groups
        self.method = definition.method
        self.engine = definition.engine
        if definition.engine == "torch":
            from linop._torch_engine.conv import TORCH_METHODS

            methods = TORCH_METHODS
        else:
            methods = METHODS
        self._impl = methods[definition.method](self.weight, self.geometry, self.groups)
        self._memo = Memo()

    @property
    def shape(self) -> tuple[int, int]:
        """The shape of ``A``."""
        g = self.geometry
        return (self.weight.shape[0] * math.prod(g.output_size),
                self.weight.shape[1] * self.groups * math.prod(g.input_size))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x``."""
        return self._impl.forward(x)

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``A^T y`` (no conjugation)."""
        return self._impl.transpose(y)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``A^H y = conj(A^T conj(y))``."""
        if hasattr(self._impl, "adjoint"):
            return self._impl.adjoint(y)
        if np.iscomplexobj(self.weight):
            return np.conj(self._impl.transpose(np.conj(y)))
        return self._impl.transpose(y)

    def conjugate(self, x: np.ndarray) -> np.ndarray:
        """``conj(A) x = conj(A conj(x))``, the adjoint of the transposed convolution."""
        if hasattr(self._impl, "conjugate"):
            return self._impl.conjugate(x)
        if np.iscomplexobj(self.weight):
            return np.conj(self._impl.forward(np.conj(x)))
        return self._impl.forward(x)

    def torch_conv(self):
        """The `~linop._torch_engine.conv.TorchConv` of ``A``, for tensors (built on first use)."""
        conv = getattr(self._impl, "conv", None)
        if conv is not None:
            return conv

        def build():
            from linop._torch_engine.conv import TorchConv

            return TorchConv(self.weight, self.geometry, self.groups)

        return self._memo.get("torch", build)

    def matrix(self, *, transposed: bool = False) -> sp.csr_array:
        """A fresh copy of the explicit matrix ``A`` (or ``A^T``), canonical CSR.

        The Toeplitz method copies its cached matrix when it has one; nothing
        returned is ever the cache itself, so editing it cannot change the
        operator. Sized against the memory limit before it is built.
        """
        if isinstance(self._impl, ToeplitzMethod):
            return self._impl.matrix(transposed=transposed)
        if transposed:
            return ToeplitzMethod(self.weight, self.geometry, self.groups).matrix(transposed=True)
        return explicit_matrix(self.weight, self.geometry, self.groups)
