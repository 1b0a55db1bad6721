"""Padding and cropping (``torch.nn.functional.pad``) as a sparse linear operator."""

__all__ = ["Pad"]


class Pad:  # placeholder: being written
    def __init__(self, *args, **kwargs):
        raise NotImplementedError
