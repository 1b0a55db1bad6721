"""``torch.Tensor`` inputs of every shaped operator: tensors in, tensors out, with autograd.

An operator serves four *kinds* of products on batch-first tensors
``(k, *shape)``: ``"A"`` (``A x``), ``"AH"`` (``A^H y``), ``"AT"``
(``A^T y``) and ``"conjA"`` (``conj(A) x``). Each operator says how through
``_torch_kernel(kind)`` (a convolution calls ``torch.nn.functional``, a
product chains its factors' kernels, a view swaps the kinds, ...). An
operator without torch kernels (a user's subclass with NumPy kernels only)
serves CPU tensors through its NumPy kernels on the tensor's memory, and
refuses tensors on other devices with a `TypeError`: linop never copies a
tensor to another device behind the user's back.

The result has the dtype the NumPy path would give (the operator's dtype
promoted by the input's: a tensor of the operator's dtype gives that dtype)
and lives on the input's device. When the input requires a gradient (and
grad mode is on), the product is a `torch.autograd.Function` whose backward
is the adjoint kind (``A`` <-> ``A^H``, ``A^T`` <-> ``conj(A)``), itself
differentiable, so second derivatives flow too.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from linop._torch_engine.runtime import numpy_dtype, precise, torch_dtype, torch_module

__all__ = ["ADJOINT_KIND", "KINDS", "call", "numpy_columns", "run"]

#: The four kinds of products, and which is the adjoint (the backward) of which.
ADJOINT_KIND = {"A": "AH", "AH": "A", "AT": "conjA", "conjA": "AT"}
KINDS = tuple(ADJOINT_KIND)



def shapes(op, kind: str):
    """The input and output shapes of a kind of product of ``op``."""
    if kind in ("A", "conjA"):
        return op.input_shape, op.output_shape
    return op.output_shape, op.input_shape


def n_out(op, kind: str) -> int:
    """The size of a kind of product's output (one sample)."""
    return op.shape[0] if kind in ("A", "conjA") else op.shape[1]


def conj(t):
    """``conj(t)`` as a plain tensor (no lazy conjugate bit)."""
    return t.conj_physical() if t.is_complex() else t


def run(op, kind: str, t):
    """``kind`` of ``op`` on the batch ``t`` of shape ``(k, ...)``: a ``(k, *out)`` tensor.

    ``t`` has the result's dtype already. No autograd here (see `call`).
    """
    kernel = op._torch_kernel(kind)
    if kernel is None:
        return _numpy_kernel(op, kind, t)
    shape_in, shape_out = shapes(op, kind)
    k = t.shape[0]
    if t.shape[1:] != shape_in:  # each torch call costs: none that changes nothing
        t = t.reshape((k,) + shape_in)
    out = kernel(t)
    return out if out.shape[1:] == shape_out else out.reshape((k,) + shape_out)


def _numpy_kernel(op, kind, t):
    """An operator without torch kernels on a CPU tensor: its NumPy kernels, same memory."""
    torch = torch_module()
    if t.device.type != "cpu":
        raise TypeError(
            f"{type(op).__name__} has no torch kernels, so it serves tensors on the CPU only; "
            f"got a tensor on {t.device} (move it with .cpu(), or give the operator torch "
            f"kernels)")
    shape_out = shapes(op, kind)[1]
    k = t.shape[0]
    cols = t.detach().reshape(k, -1).numpy().T
    kernels = {"A": op._apply_cols, "AH": op._apply_adjoint_cols,
               "AT": op._apply_transpose_cols, "conjA": op._apply_conjugate_cols}
    out = op._run(kernels[kind], np.ascontiguousarray(cols), math.prod(shape_out), cols.dtype)
    return torch.from_numpy(np.ascontiguousarray(out.T)).reshape((k,) + shape_out)


def result_dtype(op, t):
    """The dtype of ``op``'s product with the tensor ``t`` (as NumPy would promote)."""
    return _promote(op.dtype, t.dtype)


@functools.lru_cache(maxsize=64)
def _promote(op_dtype, tensor_dtype):
    """A pure function of two dtypes, cached: linop's rule for a tensor's result dtype."""
    try:
        dtype = np.result_type(op_dtype, numpy_dtype(tensor_dtype))
    except TypeError as err:
        raise TypeError(f"a tensor of dtype {tensor_dtype}: {err}") from None
    if dtype not in (np.float32, np.float64, np.complex64, np.complex128):
        raise TypeError(
            f"a tensor of dtype {tensor_dtype} with an operator of dtype {op_dtype} gives "
            f"{dtype}, "
            f"which linop does not compute in: convert the tensor to float32, float64, "
            f"complex64 or complex128")
    return torch_dtype(dtype)


_FUNCTION = None


def _function():
    """The `torch.autograd.Function` of a product (defined once torch is imported)."""
    global _FUNCTION  # a class, built once per process: no state of any operator
    if _FUNCTION is None:
        torch = torch_module()

        class LinearProduct(torch.autograd.Function):
            """``kind`` of ``op`` on a batch; its backward is the adjoint kind."""

            @staticmethod
            def forward(ctx, x, op, kind, dtype):
                ctx.op, ctx.kind, ctx.input_dtype, ctx.input_shape = op, kind, x.dtype, x.shape
                return run(op, kind, x.to(dtype))

            @staticmethod
            def backward(ctx, grad):
                g = batch(ctx.op, ADJOINT_KIND[ctx.kind], grad)
                if g.is_complex() and not ctx.input_dtype.is_complex:
                    g = g.real
                return g.to(ctx.input_dtype).reshape(ctx.input_shape), None, None, None

        _FUNCTION = LinearProduct
    return _FUNCTION


def batch(op, kind: str, t):
    """``kind`` of ``op`` on a batch ``(k, *in)`` -> ``(k, *out)``, autograd when it is needed."""
    cuda = t.is_cuda
    if not (cuda or t.is_cpu):
        raise TypeError(f"linop computes on CPU and CUDA tensors, got a tensor on {t.device}")
    dtype = result_dtype(op, t)
    if t.shape[0] == 0:
        return t.new_zeros((0,) + shapes(op, kind)[1], dtype=dtype)
    if t.requires_grad and torch_module().is_grad_enabled():
        with precise(t.device):
            return _function().apply(t, op, kind, dtype)
    if t.dtype != dtype:
        t = t.to(dtype)
    if not cuda:
        return run(op, kind, t)
    with precise(t.device):
        return run(op, kind, t)


def call(op, t, kind: str, form: str, name: str):
    """An entry point (``matvec``, ``matmat``, ``apply``, ...) on a tensor.

    ``form`` is ``"vector"`` (``(n,)`` or ``(n, 1)``), ``"columns"``
    (``(n, k)``) or ``"shaped"`` (``(*batch, *shape)``).
    """
    shape_in, shape_out = shapes(op, kind)
    if form == "vector":  # the common case first: a matvec, shape (n,) or (n, 1)
        n = op.shape[1] if kind in ("A", "conjA") else op.shape[0]
        if t.shape == (n,):
            return batch(op, kind, t.reshape((1,) + shape_in)).reshape(n_out(op, kind))
        if t.shape == (n, 1):
            return batch(op, kind, t.reshape((1,) + shape_in)).reshape(n_out(op, kind), 1)
    n = math.prod(shape_in)
    if form == "shaped":
        nd = len(shape_in)
        if t.ndim < nd or tuple(t.shape[t.ndim - nd:]) != shape_in:
            raise ValueError(
                f"{name} must have shape (*batch, {', '.join(map(str, shape_in))}), got "
                f"{tuple(t.shape)}")
        lead = tuple(t.shape[:t.ndim - nd])
        out = batch(op, kind, t.reshape((math.prod(lead),) + shape_in))
        return out.reshape(lead + shape_out)
    columns = form == "columns"
    ok = (t.ndim == 2 and t.shape[0] == n) if columns else tuple(t.shape) in ((n,), (n, 1))
    if not ok:
        wanted = f"({n}, k)" if columns else f"({n},) or ({n}, 1)"
        raise ValueError(
            f"{name} of this {op.shape[0]}x{op.shape[1]} operator expects a tensor of shape "
            f"{wanted} (a C-order flattened array of shape {tuple(shape_in)}), got shape "
            f"{tuple(t.shape)}")
    k = t.shape[1]
    out = batch(op, kind, t.T.reshape(k, n))
    return out.reshape(k, -1).T.contiguous()


def numpy_columns(kernel, cols: np.ndarray, shape_in, shape_out) -> np.ndarray:
    """A batch-first torch kernel on NumPy columns ``(n, k)`` -> ``(m, k)``, no copy in.

    For the NumPy inputs of an operator with ``engine="torch"``; ``shape_in``
    and ``shape_out`` are the shapes of one sample.
    """
    from linop._torch_engine.runtime import from_numpy

    k = cols.shape[1]
    t = from_numpy(cols)
    t = t.T.reshape((k,) + tuple(shape_in)) if k > 1 else t.reshape((1,) + tuple(shape_in))
    out = kernel(t)
    return np.ascontiguousarray(out.reshape(k, math.prod(shape_out)).T.numpy())
