"""PyTorch's padding modes and their adjoints, along chosen axes.

Padding is linear: ``pad`` maps an array to a larger one whose border holds
zeros (``"zeros"``), the input mirrored without repeating the edge
(``"reflect"``), the edge repeated (``"replicate"``) or the input wrapped
around (``"circular"``). Its adjoint `fold` maps the padded array back: it
keeps the core and, for the last three modes, adds every border strip onto
the pixels it was copied from. Every method of every convolution pads with
`pad` and folds with `fold`, and so does ``linop.dask`` (on Dask arrays,
through its own ``add_at``), so that the rule of where a strip goes is
written once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["NUMPY_PAD_MODES", "fold", "pad"]

#: NumPy's names of PyTorch's padding modes (``numpy.pad`` and
#: ``dask.array.pad``): reflect without repeating the edge, replicate the
#: edge, wrap around.
NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap"}


def _widths(ndim: int, first_axis: int, padding) -> list:
    return [(0, 0)] * first_axis + [tuple(p) for p in padding] + [(0, 0)] * (
        ndim - first_axis - len(padding))


def pad(x: np.ndarray, padding, mode: str, first_axis: int = 1) -> np.ndarray:
    """``x`` padded on the axes ``first_axis, first_axis + 1, ...`` (one ``(lo, hi)`` each).

    Without any padding, ``x`` itself is returned (no copy).
    """
    if not any(lo or hi for lo, hi in padding):
        return x
    return np.pad(x, _widths(x.ndim, first_axis, padding), mode=NUMPY_PAD_MODES[mode])


def _take(a, axis: int, index):
    where = [slice(None)] * a.ndim
    where[axis] = index
    return a[tuple(where)]


def _numpy_add_at(core: np.ndarray, axis: int, start: int, piece: np.ndarray) -> np.ndarray:
    target = _take(core, axis, slice(start, start + piece.shape[axis]))
    target += piece
    return core


def fold(z, padding, mode: str, input_size, first_axis: int = 1,
         add_at: Callable | None = None):
    """The adjoint of `pad`: the padded array ``z`` back on the input grid.

    Parameters
    ----------
    z : array
        Padded along ``first_axis, first_axis + 1, ...``.
    padding : sequence of (int, int)
    mode : str
        One of PyTorch's padding modes.
    input_size : sequence of int
        The unpadded sizes of those axes.
    first_axis : int
    add_at : callable, optional
        ``add_at(core, axis, start, piece)`` returns ``core`` with ``piece``
        added at positions ``[start, start + len(piece))`` of ``axis``. The
        default adds in place into ``z``'s memory (a NumPy array, which is
        then a scratch buffer); ``linop.dask`` passes one for Dask arrays.

    Returns
    -------
    array
        A view of ``z`` (for NumPy arrays) of the input's size.
    """
    add_at = _numpy_add_at if add_at is None else add_at
    for i, ((lo, hi), n) in enumerate(zip(padding, input_size)):
        if not (lo or hi):
            continue
        axis = first_axis + i
        core = _take(z, axis, slice(lo, lo + n))
        if mode != "zeros":
            left = _take(z, axis, slice(0, lo))
            right = _take(z, axis, slice(lo + n, lo + n + hi))
            flip = slice(None, None, -1)
            if mode == "reflect":  # padded lo-1-t <- x[1+t]; padded lo+n+t <- x[n-2-t]
                if lo:
                    core = add_at(core, axis, 1, _take(left, axis, flip))
                if hi:
                    core = add_at(core, axis, n - 1 - hi, _take(right, axis, flip))
            elif mode == "replicate":  # every padded pixel copies the edge
                if lo:
                    core = add_at(core, axis, 0, left.sum(axis=axis, keepdims=True))
                if hi:
                    core = add_at(core, axis, n - 1, right.sum(axis=axis, keepdims=True))
            else:  # circular: padded t <- x[n-lo+t]; padded lo+n+t <- x[t]
                if lo:
                    core = add_at(core, axis, n - lo, left)
                if hi:
                    core = add_at(core, axis, 0, right)
        z = core
    return z
