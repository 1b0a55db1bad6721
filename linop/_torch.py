"""``linop.from_torch``: the linear layers of a PyTorch module as one linop operator.

torch is never imported here: a module is recognised by its class name in
``torch.nn``, and its parameters are read through their attributes
(weights are detached by `linop._validation.as_weight`).
"""

from __future__ import annotations

import numpy as np

from linop._base import ProductOperator, ShapedLinearOperator
from linop._validation import ParameterTypeError, ParameterValueError, as_shape

__all__ = ["from_torch"]


def _is_torch_module(obj) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def _torch_class(module) -> str:
    """The name of the ``torch.nn`` class the module is (or derives from)."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules"):
            return cls.__name__
    return type(module).__name__


def _no_bias(module, where: str) -> None:
    if getattr(module, "bias", None) is not None:
        raise ParameterValueError(
            "module", f"{where} has a bias: a linear operator has none (y = A x + b is affine). "
            f"Build the layer with bias=False, or drop it with `layer.bias = None` (then add "
            f"b yourself), and convert again"
        )


def _padding(module):
    padding = module.padding
    return padding if isinstance(padding, str) else tuple(padding)


class Identity(ShapedLinearOperator):
    """The identity on arrays of a shape (``torch.nn.Identity``).

    Examples
    --------
    >>> import numpy as np
    >>> from linop._torch import Identity
    >>> Identity((2, 3)).apply(np.arange(6.0).reshape(2, 3))
    array([[0., 1., 2.],
           [3., 4., 5.]])
    """

    def __init__(self, shape, dtype=np.float64):
        super().__init__(shape, shape, dtype)

    def _apply_cols(self, x):
        return x

    _apply_adjoint_cols = _apply_transpose_cols = _apply_conjugate_cols = _apply_cols

    def _torch_kernel(self, kind):
        return lambda t: t.clone()

    def tocsr(self):
        """The identity matrix, as a `scipy.sparse.csr_array`."""
        import scipy.sparse as sp

        return sp.eye_array(self.shape[0], dtype=self.dtype, format="csr")

    def __repr__(self) -> str:
        return f"<Identity {self.input_shape}, dtype={self.dtype}>"


def _convert(module, shape, dtype, where):
    import linop

    name = _torch_class(module)
    if name == "Sequential":
        layers = []
        for i, layer in enumerate(module):
            op = _convert(layer, shape, dtype, f"{_torch_class(layer)} (layer {i} of {where})")
            layers.append(op)
            shape = op.output_shape
        if not layers:
            return Identity(shape, dtype)
        return layers[0] if len(layers) == 1 else ProductOperator(layers[::-1])
    if name == "Identity":
        return Identity(shape, dtype)
    if name in ("Conv1d", "Conv2d", "Conv3d"):
        _no_bias(module, where)
        return getattr(linop, name)(
            module.weight, shape, stride=tuple(module.stride), padding=_padding(module),
            dilation=tuple(module.dilation), groups=module.groups,
            padding_mode=module.padding_mode)
    if name in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"):
        _no_bias(module, where)
        if module.padding_mode != "zeros":
            raise ParameterValueError(
                "module", f"{where} has padding_mode={module.padding_mode!r}: PyTorch's "
                f"transposed convolutions pad with zeros only")
        return getattr(linop, name)(
            module.weight, shape, stride=tuple(module.stride), padding=_padding(module),
            output_padding=tuple(module.output_padding), dilation=tuple(module.dilation),
            groups=module.groups)
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        mode, align = module.mode, module.align_corners
        if name == "UpsamplingBilinear2d":
            align = True
        if mode in ("nearest", "nearest-exact", "area"):
            align = None
        size, factor = module.size, module.scale_factor
        op = linop.Upsample(shape, size=size, scale_factor=factor, mode=mode,
                            align_corners=align, dtype=dtype)
        if factor is not None and getattr(module, "recompute_scale_factor", None):
            # the same output size, floor(n * factor), but read as a size (scale n_in/n_out)
            op = linop.Upsample(shape, size=op.size, mode=mode, align_corners=align,
                                dtype=dtype, bare=op.bare)
        return op
    if name in ("AvgPool1d", "AvgPool2d", "AvgPool3d"):
        kwargs = dict(stride=module.stride, padding=module.padding, ceil_mode=module.ceil_mode,
                      count_include_pad=module.count_include_pad, dtype=dtype)
        if getattr(module, "divisor_override", None) is not None:
            kwargs["divisor_override"] = module.divisor_override
        return getattr(linop, name)(shape, module.kernel_size, **kwargs)
    if name == "PixelShuffle":
        return linop.PixelShuffle(shape, module.upscale_factor)
    if name == "PixelUnshuffle":
        return linop.PixelUnshuffle(shape, module.downscale_factor)
    raise ParameterValueError(
        "module", f"{where} is not one of the linear layers linop converts (Conv1d/2d/3d, "
        f"ConvTranspose1d/2d/3d, Upsample, UpsamplingNearest2d, UpsamplingBilinear2d, "
        f"AvgPool1d/2d/3d, PixelShuffle, PixelUnshuffle, Identity, Sequential): "
        + ("it is not linear" if name in _NONLINEAR else
           "it changes the shape of the batch" if name in ("Flatten", "Unflatten") else
           "it has no conversion")
    )


_NONLINEAR = {"ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax",
              "LogSoftmax", "MaxPool1d", "MaxPool2d", "MaxPool3d", "Dropout", "BatchNorm1d",
              "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "Hardtanh", "Softplus"}


def from_torch(module, input_shape, *, dtype=None) -> ShapedLinearOperator:
    """The linear layers of a PyTorch module as one linop operator.

    Converts ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d`` (with
    ``output_padding``), ``nn.Upsample``, ``nn.UpsamplingNearest2d``,
    ``nn.UpsamplingBilinear2d``, ``nn.AvgPool1d/2d/3d``, ``nn.PixelShuffle``,
    ``nn.PixelUnshuffle``, ``nn.Identity`` and ``nn.Sequential`` containers of
    these into the operator that maps one sample of shape ``input_shape`` as
    the module does (a `~linop.ProductOperator` for a Sequential).
    torch itself is not imported: weights are read (and detached) through
    the array protocol.

    Parameters
    ----------
    module : torch.nn.Module
    input_shape : tuple of int
        One sample's shape, ``(C, *spatial)`` (no batch axis). Layers that
        take a bare shape without the channel axis take it here too: pooling,
        and up-sampling in ``linear``, ``bilinear``, ``bicubic`` and
        ``trilinear`` mode (as `~linop.Upsample` decides).
    dtype : dtype, optional
        The dtype of the layers without weights (up-sampling, pooling,
        shuffles). Default: the dtype of the module's first parameter, else
        float64.

    Returns
    -------
    ShapedLinearOperator
        ``op.apply(x[i])`` equals ``module(x)[i]``; ``op.tocsr()`` is the
        layers' matrix product.

    Raises
    ------
    ParameterValueError
        For a layer with a bias (the message names the layer and says how to
        drop the bias), a layer that is not linear, or any other layer linop
        does not convert; the message names the layer and its position.
    ParameterTypeError
        If ``module`` is not a torch module.

    Examples
    --------
    >>> import numpy as np, linop
    >>> torch = __import__("pytest").importorskip("torch")
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),
    ...     torch.nn.AvgPool2d(2),
    ...     torch.nn.ConvTranspose2d(4, 1, 2, stride=2, bias=False))
    >>> A = linop.from_torch(net, (1, 8, 8))
    >>> A.input_shape, A.output_shape
    ((1, 8, 8), (1, 8, 8))
    >>> x = torch.randn(1, 1, 8, 8)
    >>> bool(np.allclose(A.apply(x[0].numpy()), net(x)[0].detach().numpy(), atol=1e-5))
    True
    """
    if not _is_torch_module(module):
        raise ParameterTypeError("module", f"module must be a torch.nn.Module, got {module!r}")
    shape = as_shape(input_shape)
    if dtype is None:
        first = next(iter(module.parameters()), None)
        dtype = np.float64 if first is None else np.asarray(first.detach().cpu()).dtype
        if dtype not in (np.float32, np.float64, np.complex64, np.complex128):
            dtype = np.float64
    return _convert(module, shape, np.dtype(dtype), _torch_class(module))
