"""Parameter sets of linop's operators, with independently computed output shapes.

The hypothesis strategies in :mod:`linop.testing.strategies` draw these; they
live here so that they can be used (and printed by hypothesis) without it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["ConvConfig", "UpsampleConfig", "random_array"]


def random_array(shape, dtype, seed: int) -> np.ndarray:
    """Standard normal entries (complex: random real and imaginary parts)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _per_axis(value, ndim: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """A valid parameter set of a (transposed) convolution.

    The keyword values are stored in the form they are passed to the
    constructor (an int, a per-axis tuple, ``(lo, hi)`` pairs or a string
    for ``padding``). :attr:`expected_output_shape` is computed here from
    PyTorch's formulas, independently of linop.

    Attributes
    ----------
    ndim : int
        Number of spatial axes (1, 2 or 3).
    transpose : bool
        A ``ConvTransposeNd`` (True) or a ``ConvNd`` (False).
    bare : bool
        A bare kernel without channel axes (``weight_shape`` is the kernel
        size, ``input_shape`` the spatial size).
    weight_shape, input_shape : tuple of int
        PyTorch layouts: ``(C_out, C_in/groups, *k)`` for a convolution,
        ``(C_in, C_out/groups, *k)`` for a transposed one; input
        ``(C_in, *spatial)``.
    stride, padding, dilation, output_padding
        As passed to the constructor (``output_padding`` only when
        ``transpose``; ``padding_mode`` only when not).
    groups : int
    padding_mode : str
    method : str
    dtype : numpy.dtype
    seed : int
        Seed of the random weight, see :meth:`weight`.

    See Also
    --------
    conv_configs : the hypothesis strategy that draws them.

    Examples
    --------
    A 3x3 convolution from 3 to 4 channels with stride 2 and padding 1:

    >>> import numpy as np
    >>> from linop.testing.strategies import ConvConfig
    >>> config = ConvConfig(
    ...     ndim=2, transpose=False, bare=False, weight_shape=(4, 3, 3, 3),
    ...     input_shape=(3, 32, 32), stride=2, padding=1, dilation=1, groups=1,
    ...     padding_mode="zeros", output_padding=0, method="auto",
    ...     dtype=np.dtype(np.float32), seed=0)
    >>> config.class_name, config.expected_output_shape   # by PyTorch's formulas
    ('Conv2d', (4, 16, 16))
    >>> config.padding_pairs
    ((1, 1), (1, 1))
    >>> op = config.build()
    >>> op.output_shape, op.dtype
    ((4, 16, 16), dtype('float32'))
    """

    ndim: int
    transpose: bool
    bare: bool
    weight_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    stride: Any
    padding: Any
    dilation: Any
    groups: int
    padding_mode: str
    output_padding: Any
    method: str
    dtype: np.dtype
    seed: int

    # -- normalised parameters ------------------------------------------------
    @property
    def kernel_size(self) -> tuple[int, ...]:
        return tuple(self.weight_shape[-self.ndim :])

    @property
    def stride_tuple(self) -> tuple[int, ...]:
        return _per_axis(self.stride, self.ndim)

    @property
    def dilation_tuple(self) -> tuple[int, ...]:
        return _per_axis(self.dilation, self.ndim)

    @property
    def output_padding_tuple(self) -> tuple[int, ...]:
        return _per_axis(self.output_padding, self.ndim)

    @property
    def padding_pairs(self) -> tuple[tuple[int, int], ...]:
        """``padding`` as one ``(lo, hi)`` pair per axis."""
        p, nd = self.padding, self.ndim
        if p == "valid":
            return ((0, 0),) * nd
        if p == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation_tuple, self.kernel_size)]
            return tuple((t // 2, t - t // 2) for t in totals)
        if isinstance(p, tuple) and p and isinstance(p[0], tuple):
            return tuple((int(lo), int(hi)) for lo, hi in p)
        return tuple((int(v), int(v)) for v in _per_axis(p, nd))

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape[-self.ndim :])

    @property
    def channels_in(self) -> int:
        return 1 if self.bare else self.input_shape[0]

    @property
    def channels_out(self) -> int:
        if self.bare:
            return 1
        if self.transpose:
            return self.weight_shape[1] * self.groups
        return self.weight_shape[0]

    @property
    def expected_output_shape(self) -> tuple[int, ...]:
        """The output shape by PyTorch's formulas."""
        sizes = []
        for n, k, s, (lo, hi), d, op in zip(
            self.spatial_shape, self.kernel_size, self.stride_tuple, self.padding_pairs,
            self.dilation_tuple, self.output_padding_tuple,
        ):
            if self.transpose:
                sizes.append((n - 1) * s - lo - hi + d * (k - 1) + op + 1)
            else:
                sizes.append((n + lo + hi - d * (k - 1) - 1) // s + 1)
        return tuple(sizes) if self.bare else (self.channels_out, *sizes)

    # -- building ---------------------------------------------------------------
    def weight(self) -> np.ndarray:
        """The weight: standard normal entries of ``dtype``, seeded by ``seed``.

        Returns
        -------
        numpy.ndarray
            Shape ``weight_shape``, dtype ``dtype``; the same on every call.

        Examples
        --------
        >>> import numpy as np
        >>> from linop.testing.strategies import ConvConfig
        >>> config = ConvConfig(
        ...     ndim=1, transpose=True, bare=True, weight_shape=(3,), input_shape=(5,),
        ...     stride=2, padding=1, dilation=1, groups=1, padding_mode="zeros",
        ...     output_padding=1, method="auto", dtype=np.dtype(np.float64), seed=0)
        >>> w = config.weight()
        >>> w.shape, w.dtype, bool(np.array_equal(w, config.weight()))
        ((3,), dtype('float64'), True)
        """
        return random_array(self.weight_shape, self.dtype, self.seed)

    def kwargs(self) -> dict:
        """The constructor's keyword arguments.

        Returns
        -------
        dict
            ``stride``, ``padding``, ``dilation``, ``groups`` and ``method``,
            with ``output_padding`` for a transposed convolution and
            ``padding_mode`` otherwise.

        Examples
        --------
        >>> import numpy as np
        >>> from linop.testing.strategies import ConvConfig
        >>> config = ConvConfig(
        ...     ndim=1, transpose=True, bare=True, weight_shape=(3,), input_shape=(5,),
        ...     stride=2, padding=1, dilation=1, groups=1, padding_mode="zeros",
        ...     output_padding=1, method="auto", dtype=np.dtype(np.float64), seed=0)
        >>> config.kwargs()["output_padding"], "padding_mode" in config.kwargs()
        (1, False)
        """
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                  groups=self.groups, method=self.method)
        if self.transpose:
            kw["output_padding"] = self.output_padding
        else:
            kw["padding_mode"] = self.padding_mode
        return kw

    @property
    def class_name(self) -> str:
        return f"Conv{'Transpose' if self.transpose else ''}{self.ndim}d"

    def build(self):
        """The linop operator: ``linop.<class_name>(weight(), input_shape, **kwargs())``.

        Returns
        -------
        ShapedLinearOperator
            A ``ConvNd`` or ``ConvTransposeNd`` of ``ndim`` axes.

        Examples
        --------
        >>> import numpy as np
        >>> from linop.testing.strategies import ConvConfig
        >>> config = ConvConfig(
        ...     ndim=1, transpose=True, bare=True, weight_shape=(3,), input_shape=(5,),
        ...     stride=2, padding=1, dilation=1, groups=1, padding_mode="zeros",
        ...     output_padding=1, method="auto", dtype=np.dtype(np.float64), seed=0)
        >>> op = config.build()
        >>> type(op).__name__, op.input_shape, op.output_shape
        ('ConvTranspose1d', (5,), (10,))
        >>> op.output_shape == config.expected_output_shape
        True
        """
        import linop

        cls = getattr(linop, self.class_name)
        return cls(self.weight(), self.input_shape, **self.kwargs())


@dataclasses.dataclass(frozen=True)
class UpsampleConfig:
    """A valid parameter set of :class:`linop.Upsample`.

    Attributes
    ----------
    input_shape : tuple of int
        ``(C, *spatial)`` with 1 to 3 spatial axes.
    size : int or tuple of int or None
    scale_factor : float or tuple of float or None
        Exactly one of ``size`` and ``scale_factor`` is set.
    mode : str
    align_corners : bool or None
        None unless ``mode`` is linear, bilinear, bicubic or trilinear.
    dtype : numpy.dtype

    See Also
    --------
    upsample_configs : the hypothesis strategy that draws them.

    Examples
    --------
    >>> import numpy as np
    >>> from linop.testing.strategies import UpsampleConfig
    >>> config = UpsampleConfig(
    ...     input_shape=(3, 5, 4), size=None, scale_factor=1.5, mode="bilinear",
    ...     align_corners=False, dtype=np.dtype(np.float64))
    >>> config.expected_output_shape      # floor(n * scale_factor) per axis
    (3, 7, 6)
    >>> config.build().output_shape
    (3, 7, 6)
    """

    input_shape: tuple[int, ...]
    size: Any
    scale_factor: Any
    mode: str
    align_corners: bool | None
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.input_shape) - 1

    @property
    def expected_output_shape(self) -> tuple[int, ...]:
        """``(C, *size)``, or ``floor(n * scale_factor)`` per axis (in double)."""
        c, spatial = self.input_shape[0], self.input_shape[1:]
        if self.size is not None:
            out = _per_axis(self.size, self.ndim)
        else:
            out = tuple(
                math.floor(float(n) * float(s))
                for n, s in zip(spatial, _per_axis(self.scale_factor, self.ndim))
            )
        return (c, *(int(v) for v in out))

    def kwargs(self) -> dict:
        """The constructor's keyword arguments.

        Returns
        -------
        dict
            ``size``, ``scale_factor``, ``mode``, ``align_corners`` and
            ``dtype``.

        Examples
        --------
        >>> import numpy as np
        >>> from linop.testing.strategies import UpsampleConfig
        >>> config = UpsampleConfig(
        ...     input_shape=(1, 4), size=7, scale_factor=None, mode="linear",
        ...     align_corners=True, dtype=np.dtype(np.float32))
        >>> sorted(config.kwargs())
        ['align_corners', 'dtype', 'mode', 'scale_factor', 'size']
        """
        return dict(size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                    align_corners=self.align_corners, dtype=self.dtype)

    def build(self):
        """The linop operator: ``linop.Upsample(input_shape, **kwargs())``.

        Returns
        -------
        Upsample

        Examples
        --------
        >>> import numpy as np
        >>> from linop.testing.strategies import UpsampleConfig
        >>> config = UpsampleConfig(
        ...     input_shape=(1, 4), size=7, scale_factor=None, mode="linear",
        ...     align_corners=True, dtype=np.dtype(np.float32))
        >>> op = config.build()
        >>> op.output_shape, op.dtype
        ((1, 7), dtype('float32'))
        >>> op.apply(np.arange(4, dtype=np.float32)[None])   # corners aligned
        array([[0. , 0.5, 1. , 1.5, 2. , 2.5, 3. ]], dtype=float32)
        """
        import linop

        return linop.Upsample(self.input_shape, **self.kwargs())
