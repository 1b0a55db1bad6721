"""``engine=`` for the operators that are not convolutions (pooling, Upsample, Pad, shuffles).

Their NumPy kernels are strided sums, 1-D interpolation matrices along one
axis at a time, slices and one transposed copy: memory-bound work that torch
does faster on the CPU in some families and shapes (nearest up-sampling,
many planes, where its threads share the work) and slower in others.
``engine="auto"`` takes NumPy unless torch is already imported and the cost
model of `linop._layer_costs` expects the torch kernels to gain what a
convolution's would need; ``engine="torch"`` computes NumPy inputs with the
torch kernels of `linop._torch_engine.layer_kernels` (on NumPy memory,
without copies), which also serve ``torch.Tensor`` inputs whatever the
engine.
"""

from __future__ import annotations

from linop._layer_costs import choose_engine
from linop._memo import Memo
from linop._validation import ParameterValueError, as_choice

__all__ = ["LayerEngine"]

_ENGINES = ("auto", "numpy", "torch")


class LayerEngine:
    """A mixin for a `~linop.ShapedLinearOperator` with layer kernels in torch."""

    _engine_name = "numpy"

    def _set_engine(self, engine) -> None:
        """Validate ``engine=`` (after ``super().__init__``) and resolve "auto"."""
        engine = as_choice(engine, "engine", _ENGINES)
        if engine == "auto":
            engine = choose_engine(self)
            if engine == "torch" and self._layer_kernels() is None:
                engine = "numpy"
        if engine == "torch":
            from linop._torch_engine.runtime import torch_module

            torch_module()
            if self._layer_kernels() is None:
                raise ParameterValueError(
                    "engine", f"engine='torch': {type(self).__name__} has no torch kernels in "
                    f"this installation; use engine='numpy'")
        self._engine_name = "torch" if engine == "torch" else "numpy"

    @property
    def engine(self) -> str:
        """Who computes NumPy inputs: ``"numpy"`` or ``"torch"``."""
        return self._engine_name

    def _layer_kernels(self):
        memo = self.__dict__.get("_torch_memo")
        if memo is None:  # a memo copies and pickles empty: the kernels are rebuilt there
            memo = self.__dict__.setdefault("_torch_memo", Memo())

        def build():
            from linop._torch_engine import layer_kernels

            return layer_kernels(self) or ()

        return memo.get("kernels", build) or None

    def _torch_kernel(self, kind):
        kernels = self._layer_kernels()
        if kernels is None:
            return None
        forward, adjoint = kernels
        if kind == "A":
            return forward
        if kind == "AH":
            return adjoint
        from linop._torch_engine.tensors import conj

        inner = adjoint if kind == "AT" else forward
        return lambda t: conj(inner(conj(t)))
