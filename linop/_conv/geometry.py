"""Convolution geometry: parameters -> validated per-axis sizes.

Everything here is independent of channels and weights. A `ConvGeometry`
says, per spatial axis, how many input pixels there are, how many output
pixels, and where each tap of each output pixel reads:

    tap ``j`` of output ``o`` reads padded position ``o*stride + j*dilation``,
    that is input pixel ``o*stride + j*dilation - lo``.

A transposed convolution is described by the geometry of the convolution it
transposes (its input size is that convolution's output size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from linop._validation import (
    MAX_SIZE,
    ParameterValueError,
    as_choice,
    padding_pairs,
    per_axis,
)

__all__ = [
    "PADDING_MODES",
    "ConvGeometry",
    "conv_geometry",
    "conv_output_size",
    "transpose_geometry",
]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class ConvGeometry:
    """Per-axis geometry of a convolution, normalised and validated.

    Built by the convolution operators from PyTorch's parameters; a
    transposed convolution holds the geometry of the convolution it is the
    transpose of.

    Attributes
    ----------
    input_size, output_size, kernel_size : tuple of int
        Spatial sizes of the convolution's input, its output and the kernel.
    stride, dilation : tuple of int
    padding : tuple of (int, int)
        ``(lo, hi)`` padding per axis.
    padding_mode : str
        One of ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"``.

    Examples
    --------
    >>> import numpy as np, linop
    >>> g = linop.Conv2d(np.ones((3, 3)), (8, 8), stride=2, padding=1).geometry
    >>> g.output_size, g.padding, g.padded_size
    ((4, 4), ((1, 1), (1, 1)), (10, 10))
    >>> linop.ConvTranspose2d(np.ones((3, 3)), (4, 4), stride=2, padding=1,
    ...                       output_padding=1).geometry.input_size
    (8, 8)
    """

    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    padding_mode: str = "zeros"

    __module__ = "linop"  # public as linop.ConvGeometry

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.input_size)

    @property
    def padded_size(self) -> tuple[int, ...]:
        """``input_size + lo + hi`` per axis."""
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.input_size, self.padding))

    @property
    def reach(self) -> tuple[int, ...]:
        """``dilation*(k - 1)`` per axis: how far past its first tap an output reads."""
        return tuple(d * (k - 1) for d, k in zip(self.dilation, self.kernel_size))

    @property
    def n_taps(self) -> int:
        """Taps of the kernel, ``prod(kernel_size)``."""
        return math.prod(self.kernel_size)

    @property
    def output_padding(self) -> tuple[int, ...]:
        """The ``output_padding`` of the transposed convolution with this geometry.

        ``input_size - ((m - 1)*s - lo - hi + d*(k - 1) + 1)`` per axis: the
        extra size on the high side that the transposed convolution from
        ``output_size`` back to ``input_size`` needs.
        """
        return tuple(
            n - ((m - 1) * s - lo - hi + r + 1)
            for n, m, s, (lo, hi), r in zip(
                self.input_size, self.output_size, self.stride, self.padding, self.reach
            )
        )


def conv_output_size(n: int, k: int, stride: int, lo: int, hi: int, dilation: int) -> int:
    """``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1`` (may be < 1)."""
    return (n + lo + hi - dilation * (k - 1) - 1) // stride + 1


def _check_padded_size(input_size, pairs) -> None:
    padded = [n + lo + hi for n, (lo, hi) in zip(input_size, pairs)]
    if math.prod(padded) > MAX_SIZE:
        raise ParameterValueError(
            "padding", f"padding {pairs} makes the padded input {tuple(padded)} larger than "
            f"2**62 elements"
        )


def _check_padding_mode(padding_mode, padding, input_size):
    as_choice(padding_mode, "padding_mode", PADDING_MODES)
    for axis, ((lo, hi), n) in enumerate(zip(padding, input_size)):
        if padding_mode == "reflect" and max(lo, hi) >= n:
            raise ParameterValueError(
                "padding_mode", f"padding_mode='reflect' needs padding < input size on every axis; "
                f"axis {axis} has padding {(lo, hi)} and size {n}"
            )
        if padding_mode == "circular" and max(lo, hi) > n:
            raise ParameterValueError(
                "padding_mode", f"padding_mode='circular' needs padding <= input size on every "
                f"axis; axis {axis} has padding {(lo, hi)} and size {n}"
            )


def conv_geometry(
    input_size, kernel_size, *, stride=1, padding=0, dilation=1, padding_mode="zeros"
) -> ConvGeometry:
    """Validate the parameters of a convolution and compute its output size.

    ``input_size`` and ``kernel_size`` are validated shapes.

    Raises
    ------
    ParameterTypeError, ParameterValueError
        With a message naming the offending parameter and its value.
    """
    ndim = len(kernel_size)
    stride = per_axis(stride, ndim, "stride", minimum=1)
    dilation = per_axis(dilation, ndim, "dilation", minimum=1)
    pairs = padding_pairs(padding, kernel_size, dilation, stride)
    _check_padding_mode(padding_mode, pairs, input_size)
    _check_padded_size(input_size, pairs)
    output_size = tuple(
        conv_output_size(n, k, s, lo, hi, d)
        for n, k, s, (lo, hi), d in zip(input_size, kernel_size, stride, pairs, dilation)
    )
    if any(m < 1 for m in output_size):
        raise ParameterValueError(
            "input_shape",
            f"the kernel (size {tuple(kernel_size)}, dilation {dilation}) does not fit the "
            f"padded input (size {tuple(input_size)}, padding {pairs}): "
            f"output size would be {output_size}"
        )
    return ConvGeometry(
        tuple(input_size), output_size, tuple(kernel_size), stride, pairs, dilation, padding_mode
    )


def transpose_geometry(
    input_size, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1
) -> ConvGeometry:
    """The geometry of the convolution whose transpose is a transposed convolution.

    A transposed convolution with input size ``n`` per axis has output size
    ``N = (n - 1)*s - lo - hi + d*(k - 1) + output_padding + 1``. It is the
    transpose of the convolution from size ``N`` to size ``n`` with the same
    stride, padding and dilation. When ``output_padding >= stride`` (allowed
    while ``output_padding < dilation``), that convolution would produce more
    than ``n`` outputs; the extra ones are cut, as PyTorch does. The
    ``output_padding`` is then `ConvGeometry.output_padding`.

    Returns
    -------
    ConvGeometry
        The convolution's geometry (its ``output_size`` is ``input_size`` here).
    """
    ndim = len(kernel_size)
    stride = per_axis(stride, ndim, "stride", minimum=1)
    dilation = per_axis(dilation, ndim, "dilation", minimum=1)
    pairs = padding_pairs(padding, kernel_size, dilation, stride, allow_same=False)
    output_padding = per_axis(output_padding, ndim, "output_padding", minimum=0)
    for axis, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if op >= max(s, d):
            raise ParameterValueError(
                "output_padding",
                f"output_padding must be smaller than max(stride, dilation) on every axis; "
                f"axis {axis} has output_padding={op}, stride={s}, dilation={d}"
            )
    conv_input_size = tuple(
        (n - 1) * s - lo - hi + d * (k - 1) + op + 1
        for n, k, s, (lo, hi), d, op in zip(
            input_size, kernel_size, stride, pairs, dilation, output_padding
        )
    )
    if any(m < 1 for m in conv_input_size):
        raise ParameterValueError(
            "padding",
            f"the transposed convolution's output size would be {conv_input_size}: padding "
            f"{pairs} is too large for input size {tuple(input_size)} and kernel size "
            f"{tuple(kernel_size)}"
        )
    if math.prod(conv_input_size) > MAX_SIZE:
        raise ParameterValueError(
            "stride", f"the transposed convolution's output size {conv_input_size} has more "
            f"than 2**62 elements (stride {stride}, dilation {dilation})"
        )
    _check_padded_size(conv_input_size, pairs)
    return ConvGeometry(
        conv_input_size, tuple(input_size), tuple(kernel_size), stride, pairs, dilation, "zeros"
    )
