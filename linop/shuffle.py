"""Pixel shuffle and unshuffle (``torch.nn.PixelShuffle``) as permutation operators."""

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle:  # placeholder: being written
    def __init__(self, *args, **kwargs):
        raise NotImplementedError


PixelUnshuffle = PixelShuffle
