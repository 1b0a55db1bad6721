"""Hypothesis strategies of small convolutions for the tests of linop.linalg.

`circulant_ops` draws block-circulant operators over the whole space that
linop.linalg claims exact (1-3-D, channels, groups, stride dividing the
size, dilation, bare kernels, the four dtypes, convolutions, transposed
convolutions and the ``.T``, ``.H`` and ``.conj()`` views); `any_conv_ops`
draws convolutions with every padding mode and any stride. Sizes stay small
enough for a dense SVD of ``tocsr().toarray()`` (at most a few hundred rows).
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import linop

DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))
CONV = {1: linop.Conv1d, 2: linop.Conv2d, 3: linop.Conv3d}
VIEWS = ("none", "T", "H", "conj", "T.conj")


def weight(rng, shape, dtype) -> np.ndarray:
    w = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        w = w + 1j * rng.standard_normal(shape)
    return w.astype(dtype)


def view(op, kind: str):
    return {"none": op, "T": op.T, "H": op.H, "conj": op.conj(), "T.conj": op.T.conj()}[kind]


@st.composite
def circulant_ops(draw, ndims=(1, 2, 3), dtypes=DTYPES, views=VIEWS, square=False):
    """(operator, description) of a block-circulant convolution or a view of one.

    ``square``: stride 1 and as many output channels as input channels.
    """
    nd = draw(st.sampled_from(ndims))
    groups = draw(st.integers(1, 2))
    cog, cg = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    if square:
        cog = cg
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    stride = tuple(1 if square else draw(st.integers(1, 3 if nd == 1 else 2))
                   for _ in range(nd))
    coarse_max = {1: 4, 2: 3, 3: 2}[nd]
    sizes, pads = [], []
    for k, d, s in zip(kernel, dilation, stride):
        reach = d * (k - 1)
        n = s * draw(st.integers(1, coarse_max))
        while 2 * n < reach:  # circular padding needs lo, hi <= n
            n += s
        lo = draw(st.integers(max(0, reach - n), min(reach, n)))
        sizes.append(n)
        pads.append((lo, reach - lo))
    c_in, c_out = groups * cg, groups * cog
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**16))
    bare = c_in == c_out == 1 and draw(st.booleans())
    rng = np.random.default_rng(seed)
    shape = kernel if bare else (c_out, cg) + kernel
    input_shape = tuple(sizes) if bare else (c_in,) + tuple(sizes)
    op = CONV[nd](weight(rng, shape, dtype), input_shape, stride=stride, padding=tuple(pads),
                  dilation=dilation, groups=groups, padding_mode="circular")
    kind = draw(st.sampled_from(views))
    return view(op, kind), f"{op!r} stride={stride} dilation={dilation} pad={pads} view={kind}"


@st.composite
def any_conv_ops(draw, ndims=(1, 2), dtypes=DTYPES, modes=("zeros", "reflect", "replicate",
                                                           "circular")):
    """(operator, description) of a convolution with any padding and stride (or its .T)."""
    nd = draw(st.sampled_from(ndims))
    groups = draw(st.integers(1, 2))
    cog, cg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    mode = draw(st.sampled_from(modes))
    sizes, pads = [], []
    for k, d in zip(kernel, dilation):
        reach = d * (k - 1)
        n = draw(st.integers(max(2, reach // 2 + 1), {1: 12, 2: 6, 3: 4}[nd]))
        limit = n - 1 if mode == "reflect" else n
        lo = draw(st.integers(0, min(limit, reach + 1)))
        hi = draw(st.integers(0, min(limit, reach + 1)))
        assume(n + lo + hi >= reach + 1)
        sizes.append(n)
        pads.append((lo, hi))
    c_in, c_out = groups * cg, groups * cog
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    op = CONV[nd](weight(rng, (c_out, cg) + kernel, dtype), (c_in,) + tuple(sizes),
                  stride=stride, padding=tuple(pads), dilation=dilation, groups=groups,
                  padding_mode=mode)
    kind = draw(st.sampled_from(("none", "T")))
    what = f"{op!r} stride={stride} dilation={dilation} pad={pads} mode={mode} view={kind}"
    return view(op, kind), what
