"""Convolution as a function of its kernel (``w -> conv(x, w)``) as a linear operator."""

__all__ = ["ConvFilter1d", "ConvFilter2d", "ConvFilter3d"]


class ConvFilter1d:  # placeholder: being written
    def __init__(self, *args, **kwargs):
        raise NotImplementedError


ConvFilter2d = ConvFilter3d = ConvFilter1d
