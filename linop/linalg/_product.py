r"""The block diagonalisation of products of block-circulant convolutions.

A product ``A = A_1 A_2 \cdots A_k`` of block-circulant convolutions on one
grid (``A_k`` applied first) is block-circulant again: at every frequency
its block is the product of the factors' blocks. When the last factor
applied, ``A_1``, has a stride ``s`` (super-resolution: blur, then
subsample), the fine-grid blocks of ``A_2 \cdots A_k`` at the ``s^d``
frequencies ``\mu + j M`` that alias onto the coarse frequency ``\mu`` form
a block-diagonal matrix, and ``A_1``'s ``m x (s^d C)`` block multiplies it:

.. math::

    B_A(\mu) = B_1(\mu)\, \operatorname{blockdiag}_j\big(B_{2..k}(\mu + j M)\big).

`product_symbol` returns this as a `CirculantSymbol` (groups merged into
full channel blocks), so the exact solve and the exact preconditioner of
`linop.linalg` apply to it unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from linop._base import ProductOperator
from linop._memory import check_nbytes
from linop.linalg._symbol import (
    CirculantSymbol,
    FourierSide,
    circulant_failure,
    circulant_symbol,
    conv_form,
)

__all__ = ["product_symbol"]


def _full(blocks: np.ndarray) -> np.ndarray:
    """``(F, G, m, n)`` -> ``(F, G*m, G*n)`` block-diagonal over groups."""
    F, G, m, n = blocks.shape
    if G == 1:
        return blocks[:, 0]
    out = np.zeros((F, G * m, G * n), dtype=blocks.dtype)
    for g in range(G):
        out[:, g * m:(g + 1) * m, g * n:(g + 1) * n] = blocks[:, g]
    return out


def product_symbol(A) -> CirculantSymbol | None:
    """The `CirculantSymbol` of a product of block-circulant convolutions, or None.

    ``A`` is a `~linop.ProductOperator` whose factors are block-circulant
    convolutions (or views of them) on the same grid, all of stride 1 except
    possibly the last one applied (the leftmost factor, without groups).
    None for anything else.
    """
    if not isinstance(A, ProductOperator):
        return None
    symbols = []
    for f in A.factors:
        form = conv_form(f)
        if form is None or circulant_failure(form, f) is not None:
            return None
        symbols.append(circulant_symbol(f))
    first, rest = symbols[0], symbols[1:]
    if any(any(s != 1 for s in S.input_side.stride) for S in rest):
        return None
    strided = any(s != 1 for s in first.input_side.stride)
    if strided and first.groups != 1:
        return None
    grids = {S.input_side.grid for S in symbols} | {S.output_side.grid for S in rest}
    if len(grids) != 1:
        return None
    fine = rest[-1].input_side.grid if rest else first.input_side.grid
    F_fine = math.prod(fine)
    chain = None  # the fine-grid product A_2 ... A_k, (F_fine, C_mid, C_in)
    for S in rest:
        block = _full(np.asarray(S.blocks, dtype=np.complex128))
        chain = block if chain is None else chain @ block
    head = np.asarray(first.blocks, dtype=np.complex128)
    if chain is None:
        return first
    c_mid, c_in = chain.shape[1:]
    if not strided:
        check_nbytes(16 * F_fine * head.shape[2] * head.shape[1] * c_in,
                     "the blocks of this product")
        blocks = (_full(head) @ chain)[:, None]
        stride = (1,) * len(fine)
    else:
        stride = first.input_side.stride
        coarse = first.input_side.coarse
        S_ = math.prod(stride)
        d = len(fine)
        # fine index (j_1 M_1 + mu_1, ...) in C order -> (mu..., j...)
        split = []
        for s, m in zip(stride, coarse):
            split += [s, m]
        chain = chain.reshape(tuple(split) + (c_mid, c_in))
        perm = [2 * a + 1 for a in range(d)] + [2 * a for a in range(d)] + [2 * d, 2 * d + 1]
        chain = chain.transpose(perm).reshape(math.prod(coarse), S_, c_mid, c_in)
        m = head.shape[2]
        check_nbytes(16 * math.prod(coarse) * m * S_ * c_in, "the blocks of this product")
        head = head[:, 0].reshape(math.prod(coarse), m, S_, c_mid)
        blocks = np.einsum("fmjc,fjci->fmji", head, chain).reshape(
            math.prod(coarse), 1, m, S_ * c_in)
    dtype = np.dtype(A.dtype)
    side_in = FourierSide(tuple(A.input_shape), c_in, 1, tuple(fine), tuple(stride), dtype)
    out = first.output_side
    side_out = FourierSide(tuple(A.output_shape), out.channels, 1, out.grid, out.stride, dtype)
    blocks = np.ascontiguousarray(blocks.astype(first.blocks.dtype))
    blocks.flags.writeable = False
    return CirculantSymbol(blocks, side_in, side_out, dtype)
