"""The torch engine: linop's methods computed with PyTorch's kernels, and tensors in and out.

Nothing here imports torch at import time. `runtime` is the one place that
imports it (lazily), wraps NumPy arrays and sets the precision of linop's
calls; `conv` applies convolutions with ``torch.nn.functional``;
`autograd` and `tensors` serve ``torch.Tensor`` inputs of every operator;
``layers`` (when present) holds the kernels of the operators that are not
convolutions (`layer_kernels`).
"""

from __future__ import annotations

import importlib.util

__all__ = ["layer_kernels"]

_LAYERS = "linop._torch_engine.layers"


def layer_kernels(op):
    """``(forward, adjoint)`` torch kernels of a layer operator, or None.

    ``forward`` maps batch-first tensors ``(k, *op.input_shape)`` to
    ``(k, *op.output_shape)`` on their device, ``adjoint`` is its Hermitian
    adjoint. None for operators that have no such kernels (and when the
    module with them is absent).
    """
    if importlib.util.find_spec(_LAYERS) is None:
        return None
    from linop._torch_engine.layers import layer_kernels as kernels

    return kernels(op)
