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
import os
import sys
import threading
import warnings

import numpy as np

__all__ = ["LinearCalls", "from_numpy", "is_tensor", "precise", "to_numpy", "torch_dtype",
           "torch_module", "torch_loaded"]


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
    if a.ndim and min(a.strides) < 0:
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


class _TF32Off:
    """TF32 off while any of linop's CUDA calls runs, the user's flags restored after the last.

    The flags are torch's process-wide settings: calls from several threads
    share one saved copy (a count of the calls inside, under a lock), so that
    no call can restore TF32 while another still needs it off. A child made
    by ``fork`` starts with a fresh lock and no call inside.
    """

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self.lock = threading.Lock()
        self.inside = 0
        self.saved = None

    @contextlib.contextmanager
    def __call__(self, torch):
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        with self.lock:
            if self.inside == 0:
                self.saved = matmul.allow_tf32, cudnn.allow_tf32
                matmul.allow_tf32 = cudnn.allow_tf32 = False
            self.inside += 1
        try:
            yield
        finally:
            with self.lock:
                self.inside -= 1
                if self.inside == 0:
                    matmul.allow_tf32, cudnn.allow_tf32 = self.saved


_no_tf32 = _TF32Off()  # the one owner of torch's TF32 flags inside linop's calls


def precise(device):
    """A context for linop's own calls on ``device``: TF32 off on CUDA, nothing on the CPU."""
    if getattr(device, "type", "cpu") != "cuda":
        return contextlib.nullcontext()
    return _no_tf32(torch_module())


class LinearCalls:
    """``forward``, ``conjugate``, ``transpose`` and ``adjoint`` of an operator from two kernels.

    A subclass defines ``_forward(x, conjugate)`` (``A x``, or ``conj(A) x``)
    and ``_backward(y, conjugate)`` (``A^T y``, or ``A^H y``) on batch-first
    tensors; the four calls that the engine's methods use follow from them.
    """

    def forward(self, x):
        """``A x``."""
        return self._forward(x, False)

    def conjugate(self, x):
        """``conj(A) x``."""
        return self._forward(x, True)

    def transpose(self, y):
        """``A^T y`` (no conjugation)."""
        return self._backward(y, False)

    def adjoint(self, y):
        """``A^H y``."""
        return self._backward(y, True)

    def kernel(self, call: str, device, dtype):
        """One direction as a function of batch-first tensors on ``device`` of ``dtype``.

        ``call`` is ``"forward"``, ``"conjugate"``, ``"transpose"`` or
        ``"adjoint"``. Here the bound method; a class may instead build and
        keep a closure per device and dtype with what the call needs bound
        in it (`linop._torch_engine.conv.TorchConv`).
        """
        return getattr(self, call)
