"""Everything linop asks of PyTorch at run time, in one place.

torch is imported here and nowhere else, and only when asked for:
`torch_module` imports it (an operator built with ``engine="torch"``),
`is_tensor` recognises a tensor without importing anything (a tensor exists
only if torch is imported already).

Inside linop's own calls on a CUDA device, TensorFloat-32 is turned off for
matrix products and cuDNN convolutions (`precise`), so that float32 results
keep float32's precision; the user's settings are put back on the way out.
linop never changes torch's thread count: torch runs with the threads the
user gave it (``torch.set_num_threads``). Grad mode is left alone: NumPy
inputs make tensors that need no gradient, and tensors that need one go
through `linop._torch_engine.autograd`.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

import numpy as np

__all__ = ["from_numpy", "is_tensor", "precise", "to_numpy", "torch_dtype", "torch_module",
           "torch_loaded"]


def torch_loaded() -> bool:
    """Whether torch is imported in this process (nothing is imported to find out)."""
    return "torch" in sys.modules


def torch_module():
    """The torch module, imported now if it is not yet.

    Raises
    ------
    ImportError
        With a message that says what needs torch, when it is not installed.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is installed where tests run
        raise ImportError("engine='torch' needs PyTorch: pip install torch") from err
    return torch


def is_tensor(x) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (False, without importing torch, if torch is not)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


_DTYPES = {}


def torch_dtype(dtype):
    """The torch dtype of a NumPy dtype."""
    dtype = np.dtype(dtype)
    value = _DTYPES.get(dtype)
    if value is None:
        torch = torch_module()
        value = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                 np.dtype(np.complex64): torch.complex64,
                 np.dtype(np.complex128): torch.complex128}[dtype]
        _DTYPES[dtype] = value
    return value


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype of a torch dtype (``torch.float32`` -> ``float32``)."""
    name = str(dtype).rpartition(".")[2]
    if name == "bfloat16":
        raise TypeError("a bfloat16 tensor has no NumPy dtype: convert it with .float()")
    return np.dtype(name)


def from_numpy(a: np.ndarray):
    """A tensor that shares ``a``'s memory (no copy), for reading only.

    NumPy arrays with negative strides are copied (torch has none); read-only
    arrays are shared all the same (linop never writes to its inputs).
    """
    torch = torch_module()
    if any(s < 0 for s in a.strides):
        a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        view = a.view()
        try:
            view.flags.writeable = True
        except ValueError:  # truly read-only memory: share it, silence torch's warning
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(a)
        a = view
    return torch.from_numpy(a)


def to_numpy(t, dtype) -> np.ndarray:
    """A CPU tensor as a C-contiguous NumPy array of ``dtype`` (shared when it can be)."""
    return np.ascontiguousarray(t.numpy(), dtype=dtype)


@contextlib.contextmanager
def _no_tf32(torch):
    matmul = torch.backends.cuda.matmul
    cudnn = torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def precise(device):
    """A context for linop's own calls on ``device``: TF32 off on CUDA, nothing on the CPU."""
    if getattr(device, "type", "cpu") != "cuda":
        return contextlib.nullcontext()
    return _no_tf32(torch_module())
