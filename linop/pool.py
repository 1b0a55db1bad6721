"""Average pooling (``torch.nn.AvgPool1d/2d/3d``) as sparse linear operators."""

__all__ = ["AvgPool1d", "AvgPool2d", "AvgPool3d"]


class AvgPool1d:  # placeholder: being written
    def __init__(self, *args, **kwargs):
        raise NotImplementedError


AvgPool2d = AvgPool3d = AvgPool1d
