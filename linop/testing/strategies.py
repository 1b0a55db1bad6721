"""Hypothesis strategies for the parameter space of linop's operators.

This module imports `hypothesis <https://hypothesis.readthedocs.io>`_ (an
optional dependency); :mod:`linop.testing` itself does not.

Every strategy draws only *valid* parameter sets (PyTorch's limits, output
size at least 1 on every axis), small enough for fast tests:

- :func:`dtypes`: float32, float64, complex64, complex128;
- :func:`conv_configs`: :class:`ConvConfig` of ``Conv{1,2,3}d`` and
  ``ConvTranspose{1,2,3}d`` (weight shape, input shape, stride, every form of
  padding, dilation, groups, padding mode, output padding, method, dtype,
  weight seed);
- :func:`upsample_configs`: :class:`UpsampleConfig` of ``Upsample``;
- :func:`avg_pool_configs`: :class:`AvgPoolConfig` of ``AvgPool{1,2,3}d``;
- :func:`pad_configs`: :class:`PadConfig` of ``Pad``;
- :func:`pixel_shuffle_configs`: :class:`PixelShuffleConfig` of
  ``PixelShuffle`` and ``PixelUnshuffle``;
- :func:`operators`: linop operators built from the configurations.

Configurations carry an ``expected_output_shape`` computed from PyTorch's
formulas independently of linop, and a ``build()`` method.

Examples
--------
>>> from hypothesis import given, settings
>>> from linop.testing.strategies import conv_configs
>>> @settings(max_examples=20, deadline=None, database=None)
... @given(conv_configs(ndim=2, transpose=None))
... def test_output_size(config):
...     assert min(config.expected_output_shape) >= 1
>>> test_output_size()

A property test of every operator (as in linop's own test suite)::

    @settings(max_examples=50, deadline=None)
    @given(operators())
    def test_every_operator(op):
        check_operator(op, rng=0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from linop._conv.engine import METHOD_NAMES
from linop.testing._configs import ConvConfig, UpsampleConfig, random_array

__all__ = [
    "AvgPoolConfig",
    "ConvConfig",
    "PadConfig",
    "PixelShuffleConfig",
    "UpsampleConfig",
    "avg_pool_configs",
    "conv_configs",
    "conv_filters",
    "dtypes",
    "operators",
    "pad_configs",
    "pixel_shuffle_configs",
    "upsample_configs",
]

ALL_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
METHODS = METHOD_NAMES  # "auto", "toeplitz", "im2col", "fft"
#: Upsample modes by number of spatial axes (PyTorch's restrictions).
UPSAMPLE_MODES = {
    1: ("nearest", "nearest-exact", "linear", "area"),
    2: ("nearest", "nearest-exact", "bilinear", "bicubic", "area"),
    3: ("nearest", "nearest-exact", "trilinear", "area"),
}
_ALIGNABLE = ("linear", "bilinear", "bicubic", "trilinear")
_DEFAULT_MAX_SIZE = {1: 8, 2: 6, 3: 4}


def dtypes(
    *, real: bool = True, complex: bool = True, single: bool = True, double: bool = True
) -> st.SearchStrategy[np.dtype]:
    """The dtypes of linop's operators.

    Parameters
    ----------
    real, complex : bool, optional
        Include float32/float64, complex64/complex128.
    single, double : bool, optional
        Include float32/complex64, float64/complex128.

    Returns
    -------
    SearchStrategy of numpy.dtype

    Raises
    ------
    ValueError
        If the filters exclude every dtype.

    Examples
    --------
    >>> from linop.testing.strategies import dtypes
    >>> dtypes(complex=False)
    sampled_from([dtype('float32'), dtype('float64')])
    >>> dtypes(double=False)
    sampled_from([dtype('float32'), dtype('complex64')])

    In a property test:

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=10, database=None)
    ... @given(dtypes(real=False))
    ... def test_complex(dtype):
    ...     assert dtype.kind == "c"
    >>> test_complex()
    """
    singles = (np.dtype(np.float32), np.dtype(np.complex64))
    chosen = [
        d for d in ALL_DTYPES
        if (complex if d.kind == "c" else real) and (single if d in singles else double)
    ]
    if not chosen:
        raise ValueError("dtypes(): the filters exclude every dtype")
    return st.sampled_from(chosen)


def _as_dtype_strategy(value, default) -> st.SearchStrategy[np.dtype]:
    if value is None:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, (str, type, np.dtype)):
        value = [value]
    return st.sampled_from([np.dtype(v) for v in value])


def _choices(name: str, value, allowed: Sequence) -> tuple:
    if value is None:
        return tuple(allowed)
    if isinstance(value, (str, int, bool)):
        value = [value]
    value = tuple(value)
    bad = [v for v in value if v not in allowed]
    if bad or not value:
        raise ValueError(f"{name} must be a non-empty subset of {tuple(allowed)}, got {value!r}")
    return value


@st.composite
def _per_axis(draw, nd: int, lo: int, hi: int):
    """An int or a tuple of ``nd`` ints in [lo, hi]; returns (as passed, per-axis tuple)."""
    if draw(st.booleans()):
        v = draw(st.integers(lo, hi))
        return (v if draw(st.booleans()) else (v,) * nd), (v,) * nd
    values = tuple(draw(st.integers(lo, hi)) for _ in range(nd))
    return values, values


@st.composite
def _conv_config(
    draw, *, ndims, transposes, dtype_st, bares, padding_modes, methods, max_channels,
    max_groups, max_kernel, max_stride, max_dilation, max_padding, max_size,
) -> ConvConfig:
    nd = draw(st.sampled_from(ndims))
    transpose = draw(st.sampled_from(transposes))
    bare = draw(st.sampled_from(bares))
    dtype = draw(dtype_st)
    method = draw(st.sampled_from(methods))
    seed = draw(st.integers(0, 2**32 - 1))
    if bare:
        groups, cin_g, cout_g = 1, 1, 1
    else:
        groups = draw(st.integers(1, max_groups))
        cin_g = draw(st.integers(1, max_channels))
        cout_g = draw(st.integers(1, max_channels))
    k = tuple(draw(st.integers(1, max_kernel)) for _ in range(nd))
    forms = ["int", "tuple", "pairs"] + ([] if transpose else ["valid", "same"])
    form = draw(st.sampled_from(forms))
    # padding="same" needs stride 1 on every axis
    stride, s = draw(_per_axis(nd, 1, 1 if form == "same" else max_stride))
    dilation, d = draw(_per_axis(nd, 1, max_dilation))
    padding_mode = "zeros" if transpose else draw(st.sampled_from(padding_modes))
    if form == "int":
        p = draw(st.integers(0, max_padding))
        padding, pairs = p, ((p, p),) * nd
    elif form == "tuple":
        padding = tuple(draw(st.integers(0, max_padding)) for _ in range(nd))
        pairs = tuple((p, p) for p in padding)
    elif form == "pairs":
        padding = tuple(
            (draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding)))
            for _ in range(nd)
        )
        pairs = padding
    elif form == "valid":
        padding, pairs = "valid", ((0, 0),) * nd
    else:  # same
        totals = [di * (ki - 1) for di, ki in zip(d, k)]
        padding, pairs = "same", tuple((t // 2, t - t // 2) for t in totals)

    if transpose:
        ops = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
        output_padding = ops[0] if len(set(ops)) == 1 and draw(st.booleans()) else ops
    else:
        ops, output_padding = (0,) * nd, 0

    limit = _DEFAULT_MAX_SIZE[nd] if max_size is None else max_size
    spatial = []
    for ki, si, di, (lo, hi), op in zip(k, s, d, pairs, ops):
        if transpose:
            # (n - 1)*s - lo - hi + d*(k - 1) + op + 1 >= 1
            deficit = lo + hi - di * (ki - 1) - op
            min_n = 1 + max(0, -(-deficit // si))
        else:
            # n + lo + hi - d*(k - 1) - 1 >= 0, and the padding-mode limits
            min_n = max(1, di * (ki - 1) + 1 - lo - hi)
            if padding_mode == "reflect":
                min_n = max(min_n, max(lo, hi) + 1)
            elif padding_mode == "circular":
                min_n = max(min_n, max(lo, hi))
        spatial.append(draw(st.integers(min_n, max(min_n, limit))))

    if transpose:
        weight_shape = (groups * cin_g, cout_g, *k)
    else:
        weight_shape = (groups * cout_g, cin_g, *k)
    if bare:
        weight_shape, input_shape = k, tuple(spatial)
    else:
        input_shape = (groups * cin_g, *spatial)
    return ConvConfig(
        ndim=nd, transpose=transpose, bare=bare, weight_shape=tuple(weight_shape),
        input_shape=input_shape, stride=stride, padding=padding, dilation=dilation,
        groups=groups, padding_mode=padding_mode, output_padding=output_padding,
        method=method, dtype=dtype, seed=seed,
    )


def conv_configs(
    *,
    ndim: int | Sequence[int] | None = None,
    transpose: bool | None = False,
    dtypes: st.SearchStrategy | Sequence | None = None,
    bare: bool | None = None,
    padding_modes: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    max_channels: int = 2,
    max_groups: int = 2,
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    max_padding: int = 2,
    max_size: int | None = None,
) -> st.SearchStrategy[ConvConfig]:
    """Valid parameter sets of ``Conv{1,2,3}d`` / ``ConvTranspose{1,2,3}d``.

    Parameters
    ----------
    ndim : int or sequence of int, optional
        Number(s) of spatial axes to draw from (default 1, 2 and 3).
    transpose : bool or None, optional
        False (default): convolutions; True: transposed convolutions; None:
        both.
    dtypes : strategy or sequence of dtypes, optional
        Default: all four (:func:`dtypes`).
    bare : bool or None, optional
        True: bare kernels (no channel axes); False: ``(C_out, C_in/groups,
        *k)`` weights; None (default): both.
    padding_modes : sequence of str, optional
        Subset of ``zeros, reflect, replicate, circular`` for convolutions
        (transposed convolutions always use zeros). Default: all.
    methods : sequence of str, optional
        Subset of ``auto, toeplitz, im2col, fft``. Default: all.
    max_channels : int, optional
        Largest number of input and of output channels per group.
    max_groups, max_kernel, max_stride, max_dilation, max_padding : int, optional
        Largest groups, kernel size, stride, dilation and padding (per side)
        drawn.
    max_size : int, optional
        Largest spatial input size, unless the kernel needs more (default 8,
        6, 4 for 1, 2, 3 axes).

    Returns
    -------
    SearchStrategy of ConvConfig

    Notes
    -----
    Guarantees, per axis: output size ``>= 1``; ``groups`` divides both
    channel counts; ``padding="same"`` only with stride 1; ``"same"`` and
    ``"valid"`` only for convolutions; ``reflect`` padding below the input
    size and ``circular`` padding at most the input size; for transposed
    convolutions ``0 <= output_padding < max(stride, dilation)``. Padding is
    drawn as an int, a per-axis tuple, per-axis ``(lo, hi)`` pairs, or a
    string; stride and dilation as an int or a per-axis tuple.

    Examples
    --------
    Every drawn configuration builds, and its operator has the output shape
    of PyTorch's formulas:

    >>> from hypothesis import find, given, settings
    >>> from linop.testing.strategies import conv_configs
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(conv_configs(ndim=2, transpose=True))
    ... def test_output_shape(config):
    ...     assert config.build().output_shape == config.expected_output_shape
    >>> test_output_shape()

    `hypothesis.find` gives a configuration with a wanted property, here
    ``padding="same"``, which comes with stride 1:

    >>> config = find(conv_configs(), lambda c: c.padding == "same",
    ...               settings=settings(database=None, derandomize=True))
    >>> config.padding, set(config.stride_tuple)
    ('same', {1})
    """
    ndims = _choices("ndim", ndim, (1, 2, 3))
    transposes = (False, True) if transpose is None else (bool(transpose),)
    bares = (False, True) if bare is None else (bool(bare),)
    for name, value in (("max_channels", max_channels), ("max_groups", max_groups),
                        ("max_kernel", max_kernel), ("max_stride", max_stride),
                        ("max_dilation", max_dilation)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if int(max_padding) < 0:
        raise ValueError(f"max_padding must be >= 0, got {max_padding!r}")
    return _conv_config(
        ndims=ndims,
        transposes=transposes,
        dtype_st=_as_dtype_strategy(dtypes, globals()["dtypes"]()),
        bares=bares,
        padding_modes=_choices("padding_modes", padding_modes, PADDING_MODES),
        methods=_choices("methods", methods, METHODS),
        max_channels=int(max_channels),
        max_groups=int(max_groups),
        max_kernel=int(max_kernel),
        max_stride=int(max_stride),
        max_dilation=int(max_dilation),
        max_padding=int(max_padding),
        max_size=None if max_size is None else int(max_size),
    )


_NICE_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 1 / 3, 4 / 3)


@st.composite
def _scale(draw, n: int):
    """A scale factor ``s`` with ``floor(n * s) >= 1``."""
    s = draw(st.one_of(st.sampled_from(_NICE_SCALES),
                       st.floats(0.2, 3.5, allow_nan=False, allow_infinity=False)))
    if int(float(n) * s) < 1:  # too small for this size: the smallest that fits
        s = draw(st.sampled_from([1.0, 1.5, 2.0]))
    return s


@st.composite
def _upsample_config(draw, *, ndims, modes, dtype_st, max_channels, max_size, max_out):
    feasible = [nd for nd in ndims if set(UPSAMPLE_MODES[nd]) & set(modes)]
    nd = draw(st.sampled_from(feasible))
    mode = draw(st.sampled_from([m for m in UPSAMPLE_MODES[nd] if m in modes]))
    channels = draw(st.integers(1, max_channels))
    spatial = tuple(draw(st.integers(1, max_size)) for _ in range(nd))
    size = scale_factor = None
    if draw(st.booleans()):
        sizes = tuple(draw(st.integers(1, max_out)) for _ in range(nd))
        size = sizes[0] if len(set(sizes)) == 1 and draw(st.booleans()) else sizes
    else:
        scales = tuple(draw(_scale(n)) for n in spatial)
        uniform = all(int(float(n) * scales[0]) >= 1 for n in spatial)
        if uniform and draw(st.booleans()):
            scale_factor = scales[0]
        else:
            scale_factor = scales
    align_corners = draw(st.sampled_from([None, False, True])) if mode in _ALIGNABLE else None
    return UpsampleConfig(
        input_shape=(channels, *spatial), size=size, scale_factor=scale_factor, mode=mode,
        align_corners=align_corners, dtype=draw(dtype_st),
    )


def upsample_configs(
    *,
    ndim: int | Sequence[int] | None = None,
    modes: Sequence[str] | None = None,
    dtypes: st.SearchStrategy | Sequence | None = None,
    max_channels: int = 2,
    max_size: int = 5,
    max_out: int = 8,
) -> st.SearchStrategy[UpsampleConfig]:
    """Valid parameter sets of :class:`linop.Upsample`.

    Parameters
    ----------
    ndim : int or sequence of int, optional
        Numbers of spatial axes (default 1, 2, 3).
    modes : sequence of str, optional
        Subset of ``nearest, nearest-exact, linear, bilinear, bicubic,
        trilinear, area`` (default all); each is drawn only with the number of
        axes PyTorch allows it (linear 1, bilinear and bicubic 2, trilinear 3).
    dtypes : strategy or sequence of dtypes, optional
        Default float32 and float64.
    max_channels, max_size : int, optional
        Largest number of channels and spatial input size.
    max_out : int, optional
        Largest ``size`` drawn.

    Returns
    -------
    SearchStrategy of UpsampleConfig

    Notes
    -----
    Exactly one of ``size`` (an int or a per-axis tuple) and ``scale_factor``
    (a float or a per-axis tuple; "nice" values and arbitrary floats in
    ``[0.2, 3.5]``) is set, with ``floor(n * scale_factor) >= 1`` on every
    axis. ``align_corners`` is None, False or True for the linear modes and
    None otherwise, as PyTorch requires.

    Examples
    --------
    >>> from hypothesis import find, given, settings
    >>> from linop.testing.strategies import upsample_configs
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(upsample_configs(modes=["nearest", "area"]))
    ... def test_output_shape(config):
    ...     assert config.build().output_shape == config.expected_output_shape
    >>> test_output_shape()

    A mode is drawn only with the number of axes PyTorch allows it, and
    ``align_corners`` only for the linear modes:

    >>> config = find(upsample_configs(), lambda c: c.mode == "bicubic",
    ...               settings=settings(database=None, derandomize=True))
    >>> config.ndim
    2
    >>> config = find(upsample_configs(), lambda c: c.mode == "area",
    ...               settings=settings(database=None, derandomize=True))
    >>> print(config.align_corners)
    None
    """
    ndims = _choices("ndim", ndim, (1, 2, 3))
    all_modes = tuple(dict.fromkeys(m for nd in (1, 2, 3) for m in UPSAMPLE_MODES[nd]))
    modes = _choices("modes", modes, all_modes)
    if not any(set(UPSAMPLE_MODES[nd]) & set(modes) for nd in ndims):
        raise ValueError(f"no mode in {modes} is valid with ndim in {ndims}")
    return _upsample_config(
        ndims=ndims, modes=modes,
        dtype_st=_as_dtype_strategy(dtypes, globals()["dtypes"](complex=False)),
        max_channels=int(max_channels), max_size=int(max_size), max_out=int(max_out),
    )


# -- average pooling, padding, pixel shuffle ----------------------------------------------
#: The modes of ``linop.Pad`` (``torch.nn.functional.pad``).
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _as_tuple(value, ndim: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


@dataclasses.dataclass(frozen=True)
class AvgPoolConfig:
    """A valid parameter set of ``linop.AvgPool{1,2,3}d``.

    The keyword values are stored as they are passed to the constructor (an
    int or a per-axis tuple; ``stride`` may be None).
    :attr:`expected_output_shape` follows PyTorch's formula, written here
    independently of linop.

    Attributes
    ----------
    ndim : int
        Number of spatial axes (1, 2 or 3).
    input_shape : tuple of int
        ``(C, *spatial)``, or ``spatial`` when ``bare``.
    kernel_size, stride, padding
        As passed to the constructor.
    ceil_mode, count_include_pad : bool
    divisor_override : int or None
    dtype : numpy.dtype

    See Also
    --------
    avg_pool_configs : the hypothesis strategy that draws them.

    Examples
    --------
    >>> import numpy as np
    >>> from linop.testing.strategies import AvgPoolConfig
    >>> config = AvgPoolConfig(
    ...     ndim=2, input_shape=(3, 7, 6), kernel_size=3, stride=2, padding=1,
    ...     ceil_mode=True, count_include_pad=False, divisor_override=None,
    ...     dtype=np.dtype(np.float32))
    >>> config.class_name, config.expected_output_shape
    ('AvgPool2d', (3, 4, 4))
    >>> config.build().output_shape
    (3, 4, 4)
    """

    ndim: int
    input_shape: tuple[int, ...]
    kernel_size: Any
    stride: Any
    padding: Any
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None
    dtype: np.dtype

    @property
    def bare(self) -> bool:
        """No channel axis in ``input_shape``."""
        return len(self.input_shape) == self.ndim

    @property
    def class_name(self) -> str:
        return f"AvgPool{self.ndim}d"

    @property
    def expected_output_shape(self) -> tuple[int, ...]:
        """The output shape by PyTorch's formula (``pooling_output_shape``)."""
        k = _as_tuple(self.kernel_size, self.ndim)
        s = k if self.stride is None else _as_tuple(self.stride, self.ndim)
        p = _as_tuple(self.padding, self.ndim)
        sizes = []
        for n, ki, si, pi in zip(self.input_shape[-self.ndim:], k, s, p):
            span = n + 2 * pi - ki
            m = (-(-span // si) if self.ceil_mode else span // si) + 1
            if self.ceil_mode and (m - 1) * si >= n + pi:
                m -= 1
            sizes.append(m)
        return tuple(self.input_shape[:-self.ndim]) + tuple(sizes)

    def kwargs(self) -> dict:
        """The constructor's keyword arguments (all but ``input_shape``)."""
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override, dtype=self.dtype)

    def build(self):
        """The operator: ``linop.AvgPool{ndim}d(input_shape, **kwargs())``."""
        import linop

        return getattr(linop, self.class_name)(self.input_shape, **self.kwargs())


@dataclasses.dataclass(frozen=True)
class PadConfig:
    """A valid parameter set of ``linop.Pad``.

    Attributes
    ----------
    input_shape : tuple of int
    pad : tuple of int
        ``(left, right)`` of the last axis first, as ``torch.nn.functional.pad``.
    mode : str
    dtype : numpy.dtype

    See Also
    --------
    pad_configs : the hypothesis strategy that draws them.

    Examples
    --------
    >>> import numpy as np
    >>> from linop.testing.strategies import PadConfig
    >>> config = PadConfig(input_shape=(2, 4, 5), pad=(1, -2, 3, 0), mode="reflect",
    ...                    dtype=np.dtype(np.float64))
    >>> config.expected_output_shape
    (2, 7, 4)
    >>> config.build().output_shape
    (2, 7, 4)
    """

    input_shape: tuple[int, ...]
    pad: tuple[int, ...]
    mode: str
    dtype: np.dtype

    @property
    def expected_output_shape(self) -> tuple[int, ...]:
        """``input_shape`` with ``left + right`` added to each padded axis."""
        out = list(self.input_shape)
        for i in range(len(self.pad) // 2):
            out[-1 - i] += self.pad[2 * i] + self.pad[2 * i + 1]
        return tuple(out)

    def build(self):
        """The operator: ``linop.Pad(input_shape, pad, mode, dtype=dtype)``."""
        import linop

        return linop.Pad(self.input_shape, self.pad, self.mode, dtype=self.dtype)


@dataclasses.dataclass(frozen=True)
class PixelShuffleConfig:
    """A valid parameter set of ``linop.PixelShuffle`` or ``linop.PixelUnshuffle``.

    Attributes
    ----------
    input_shape : tuple of int
        ``(*batch, C, H, W)``.
    factor : int
        ``upscale_factor`` or ``downscale_factor``.
    unshuffle : bool
        ``PixelUnshuffle`` (True) or ``PixelShuffle`` (False).
    dtype : numpy.dtype

    See Also
    --------
    pixel_shuffle_configs : the hypothesis strategy that draws them.

    Examples
    --------
    >>> import numpy as np
    >>> from linop.testing.strategies import PixelShuffleConfig
    >>> config = PixelShuffleConfig(input_shape=(8, 2, 3), factor=2, unshuffle=False,
    ...                             dtype=np.dtype(np.float32))
    >>> config.class_name, config.expected_output_shape
    ('PixelShuffle', (2, 4, 6))
    """

    input_shape: tuple[int, ...]
    factor: int
    unshuffle: bool
    dtype: np.dtype

    @property
    def class_name(self) -> str:
        return "PixelUnshuffle" if self.unshuffle else "PixelShuffle"

    @property
    def expected_output_shape(self) -> tuple[int, ...]:
        *batch, c, h, w = self.input_shape
        r = self.factor
        if self.unshuffle:
            return (*batch, c * r * r, h // r, w // r)
        return (*batch, c // (r * r), h * r, w * r)

    def build(self):
        """The operator: ``linop.<class_name>(input_shape, factor, dtype=dtype)``."""
        import linop

        return getattr(linop, self.class_name)(self.input_shape, self.factor, dtype=self.dtype)


@st.composite
def _avg_pool_config(draw, *, ndims, dtype_st, bares, max_channels, max_kernel, max_stride,
                     max_size):
    nd = draw(st.sampled_from(ndims))
    bare = draw(st.sampled_from(bares))
    kernel_size, k = draw(_per_axis(nd, 1, max_kernel))
    if draw(st.booleans()):
        stride = None
    else:
        stride, _ = draw(_per_axis(nd, 1, max_stride))
    if draw(st.booleans()):  # one padding for every axis: at most half the smallest kernel
        padding = draw(st.integers(0, min(k) // 2))
        p = (padding,) * nd
    else:
        p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
        padding = p
    limit = _DEFAULT_MAX_SIZE[nd] if max_size is None else max_size
    # an output of at least 1: n + 2p >= k
    spatial = tuple(draw(st.integers(max(1, ki - 2 * pi), max(1, ki - 2 * pi, limit)))
                    for ki, pi in zip(k, p))
    divisor = draw(st.one_of(st.none(), st.sampled_from([1, 2, 3, -2, 7])))
    channels = () if bare else (draw(st.integers(1, max_channels)),)
    return AvgPoolConfig(
        ndim=nd, input_shape=channels + spatial, kernel_size=kernel_size, stride=stride,
        padding=padding, ceil_mode=draw(st.booleans()),
        count_include_pad=draw(st.booleans()), divisor_override=divisor, dtype=draw(dtype_st),
    )


def avg_pool_configs(
    *,
    ndim: int | Sequence[int] | None = None,
    dtypes: st.SearchStrategy | Sequence | None = None,
    bare: bool | None = None,
    max_channels: int = 2,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_size: int | None = None,
) -> st.SearchStrategy[AvgPoolConfig]:
    """Valid parameter sets of ``AvgPool{1,2,3}d``.

    Parameters
    ----------
    ndim : int or sequence of int, optional
        Numbers of spatial axes (default 1, 2, 3).
    dtypes : strategy or sequence of dtypes, optional
        Default: all four (:func:`dtypes`).
    bare : bool or None, optional
        True: no channel axis; False: ``(C, *spatial)``; None (default): both.
    max_channels, max_kernel, max_stride : int, optional
        Largest number of channels, kernel size and stride drawn.
    max_size : int, optional
        Largest spatial input size, unless the kernel needs more (default 8,
        6, 4 for 1, 2, 3 axes).

    Returns
    -------
    SearchStrategy of AvgPoolConfig

    Notes
    -----
    Guarantees, per axis: ``padding <= kernel_size // 2`` and an output of
    at least one window (``n + 2 padding >= kernel_size``). ``stride`` is
    None (the kernel size), an int or a tuple; ``ceil_mode`` and
    ``count_include_pad`` either; ``divisor_override`` None or a nonzero
    int (also negative). With 3 spatial axes the input may be smaller than
    the kernel, which linop accepts and ``torch.nn.functional.avg_pool3d``
    refuses.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from linop.testing.strategies import avg_pool_configs
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(avg_pool_configs(ndim=2))
    ... def test_output_shape(config):
    ...     assert config.build().output_shape == config.expected_output_shape
    >>> test_output_shape()
    """
    ndims = _choices("ndim", ndim, (1, 2, 3))
    bares = (False, True) if bare is None else (bool(bare),)
    for name, value in (("max_channels", max_channels), ("max_kernel", max_kernel),
                        ("max_stride", max_stride)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    return _avg_pool_config(
        ndims=ndims, dtype_st=_as_dtype_strategy(dtypes, globals()["dtypes"]()), bares=bares,
        max_channels=int(max_channels), max_kernel=int(max_kernel),
        max_stride=int(max_stride), max_size=None if max_size is None else int(max_size),
    )


@st.composite
def _pad_pair(draw, n: int, mode: str, max_pad: int):
    """One ``(left, right)`` within PyTorch's limits for ``mode`` on an axis of size ``n``."""
    if mode == "constant":  # crops at most n in all, output >= 1
        lo = draw(st.integers(-n, max_pad))
        hi = draw(st.integers(max(-(n + min(lo, 0)), 1 - n - lo), max_pad))
    elif mode == "reflect":  # |pad| < n on the padded side, output >= 1
        top = min(n - 1, max_pad)
        lo = draw(st.integers(1 - n - top, top))
        hi = draw(st.integers(1 - n - lo, top))
    elif mode == "replicate":  # anything with output >= 1
        lo = draw(st.integers(1 - n - max_pad, max_pad))
        hi = draw(st.integers(1 - n - lo, max_pad))
    else:  # circular: crop first, then wrap at most once around what is left
        lo = draw(st.integers(1 - n, min(n, max_pad)))
        kept = n - max(-lo, 0)
        hi = draw(st.integers(max(1 - kept, max(lo, 0) - n), min(kept, max_pad)))
    return lo, hi


@st.composite
def _pad_config(draw, *, modes, dtype_st, max_ndim, max_padded, max_size, max_pad):
    ndim = draw(st.integers(1, max_ndim))
    padded = draw(st.integers(1, min(ndim, max_padded)))
    mode = draw(st.sampled_from(modes))
    shape = tuple(draw(st.integers(1, max_size)) for _ in range(ndim))
    pad = ()
    for n in reversed(shape[ndim - padded:]):  # the last axis first
        pad += draw(_pad_pair(n, mode, max_pad))
    return PadConfig(input_shape=shape, pad=pad, mode=mode, dtype=draw(dtype_st))


def pad_configs(
    *,
    modes: Sequence[str] | None = None,
    dtypes: st.SearchStrategy | Sequence | None = None,
    max_ndim: int = 4,
    max_padded: int = 3,
    max_size: int = 5,
    max_pad: int = 3,
) -> st.SearchStrategy[PadConfig]:
    """Valid parameter sets of :class:`linop.Pad`.

    Parameters
    ----------
    modes : sequence of str, optional
        Subset of ``constant, reflect, replicate, circular`` (default all).
    dtypes : strategy or sequence of dtypes, optional
        Default: all four (:func:`dtypes`).
    max_ndim : int, optional
        Largest number of axes of ``input_shape``.
    max_padded : int, optional
        Largest number of padded (trailing) axes.
    max_size : int, optional
        Largest size of an axis.
    max_pad : int, optional
        Largest padding on one side.

    Returns
    -------
    SearchStrategy of PadConfig

    Notes
    -----
    Negative pads (crops) are drawn too, within PyTorch's limits: every
    output size at least 1; ``constant`` crops at most the size of the axis;
    ``reflect`` pads less than the size; ``circular`` pads at most the size
    left after cropping.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from linop.testing.strategies import pad_configs
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(pad_configs(modes=["reflect"]))
    ... def test_output_shape(config):
    ...     assert config.build().output_shape == config.expected_output_shape
    >>> test_output_shape()
    """
    modes = _choices("modes", modes, PAD_MODES)
    for name, value in (("max_ndim", max_ndim), ("max_padded", max_padded),
                        ("max_size", max_size), ("max_pad", max_pad)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    return _pad_config(
        modes=modes, dtype_st=_as_dtype_strategy(dtypes, globals()["dtypes"]()),
        max_ndim=int(max_ndim), max_padded=int(max_padded), max_size=int(max_size),
        max_pad=int(max_pad),
    )


@st.composite
def _pixel_shuffle_config(draw, *, unshuffles, dtype_st, max_factor, max_batch, max_size):
    unshuffle = draw(st.sampled_from(unshuffles))
    r = draw(st.integers(1, max_factor))
    batch = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, max_batch))))
    c = draw(st.integers(1, 2))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    shape = (c, h * r, w * r) if unshuffle else (c * r * r, h, w)
    return PixelShuffleConfig(input_shape=batch + shape, factor=r, unshuffle=unshuffle,
                              dtype=draw(dtype_st))


def pixel_shuffle_configs(
    *,
    unshuffle: bool | None = None,
    dtypes: st.SearchStrategy | Sequence | None = None,
    max_factor: int = 3,
    max_batch: int = 1,
    max_size: int = 3,
) -> st.SearchStrategy[PixelShuffleConfig]:
    """Valid parameter sets of :class:`linop.PixelShuffle` and :class:`linop.PixelUnshuffle`.

    Parameters
    ----------
    unshuffle : bool or None, optional
        False: ``PixelShuffle``; True: ``PixelUnshuffle``; None (default): both.
    dtypes : strategy or sequence of dtypes, optional
        Default: all four (:func:`dtypes`).
    max_factor : int, optional
        Largest factor.
    max_batch : int, optional
        Largest number of leading (batch) axes before ``(C, H, W)``.
    max_size : int, optional
        Largest height and width of the smaller side (before shuffling, after
        unshuffling).

    Returns
    -------
    SearchStrategy of PixelShuffleConfig

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from linop.testing.strategies import pixel_shuffle_configs
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(pixel_shuffle_configs())
    ... def test_output_shape(config):
    ...     assert config.build().output_shape == config.expected_output_shape
    >>> test_output_shape()
    """
    unshuffles = (False, True) if unshuffle is None else (bool(unshuffle),)
    for name, value in (("max_factor", max_factor), ("max_size", max_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if int(max_batch) < 0:
        raise ValueError(f"max_batch must be >= 0, got {max_batch!r}")
    return _pixel_shuffle_config(
        unshuffles=unshuffles, dtype_st=_as_dtype_strategy(dtypes, globals()["dtypes"]()),
        max_factor=int(max_factor), max_batch=int(max_batch), max_size=int(max_size),
    )


def conv_filters(
    *,
    ndim: int | Sequence[int] | None = None,
    dtypes: st.SearchStrategy | Sequence | None = None,
    **kwargs,
) -> st.SearchStrategy:
    """`linop.ConvFilter1d/2d/3d` operators: the convolutions of :func:`conv_configs`
    seen as functions of their weight, on a random input.

    Parameters
    ----------
    ndim, dtypes
        As for :func:`conv_configs`.
    **kwargs
        Further keywords of :func:`conv_configs` (``bare``, ``padding_modes``,
        ``max_channels``, ...); ``transpose`` is False.

    Returns
    -------
    SearchStrategy of ConvFilter1d, ConvFilter2d or ConvFilter3d
        With ``x`` drawn as standard normal entries of the configuration's
        dtype and shape ``config.input_shape``, and ``weight_shape =
        config.weight_shape``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from linop.testing import dottest
    >>> from linop.testing.strategies import conv_filters
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(conv_filters(ndim=2))
    ... def test_adjoint(op):
    ...     assert dottest(op, rng=0).passed
    >>> test_adjoint()
    """
    import linop

    def build(config):
        x = random_array(config.input_shape, config.dtype, config.seed + 1)
        cls = getattr(linop, f"ConvFilter{config.ndim}d")
        kw = config.kwargs()
        kw.pop("method")
        return cls(x, config.weight_shape, **kw)

    configs = conv_configs(ndim=ndim, transpose=False, dtypes=dtypes, methods=["auto"], **kwargs)
    return configs.map(build)


#: The kinds of :func:`operators`.
OPERATOR_KINDS = ("conv", "conv_transpose", "upsample", "avg_pool", "pad", "pixel_shuffle",
                  "conv_filter")


def operators(
    *,
    kinds: Sequence[str] = OPERATOR_KINDS,
    ndim: int | Sequence[int] | None = None,
    dtypes: st.SearchStrategy | Sequence | None = None,
) -> st.SearchStrategy:
    """linop operators built from the configurations of the strategies above.

    Parameters
    ----------
    kinds : sequence of str, optional
        Any of ``"conv"``, ``"conv_transpose"``, ``"upsample"``
        (:func:`conv_configs`, :func:`upsample_configs`), ``"avg_pool"``
        (:func:`avg_pool_configs`), ``"pad"`` (:func:`pad_configs`) and
        ``"pixel_shuffle"`` (:func:`pixel_shuffle_configs`, both classes),
        ``"conv_filter"`` (:func:`conv_filters`); default all.
    ndim : int or sequence of int, optional
        Numbers of spatial axes (default 1, 2, 3) of the convolutions,
        ``Upsample`` and ``AvgPool``; ``Pad`` and the pixel shuffles ignore it.
    dtypes : strategy or sequence of dtypes, optional
        Default: float32 and float64 for ``Upsample``, all four for the
        others.

    Returns
    -------
    SearchStrategy of scipy.sparse.linalg.LinearOperator

    Examples
    --------
    A property test: every 1-D convolution and transposed convolution passes
    the dot test.

    >>> from hypothesis import given, settings
    >>> from linop.testing import dottest
    >>> from linop.testing.strategies import operators
    >>> @settings(max_examples=10, deadline=None, database=None)
    ... @given(operators(kinds=("conv", "conv_transpose"), ndim=1))
    ... def test_adjoint(op):
    ...     assert dottest(op, rng=0).passed
    >>> test_adjoint()
    """
    kinds = _choices("kinds", kinds, OPERATOR_KINDS)
    parts = []
    configs = []
    if "conv" in kinds:
        configs.append(conv_configs(ndim=ndim, transpose=False, dtypes=dtypes))
    if "conv_transpose" in kinds:
        configs.append(conv_configs(ndim=ndim, transpose=True, dtypes=dtypes))
    if "upsample" in kinds:
        configs.append(upsample_configs(ndim=ndim, dtypes=dtypes))
    if "avg_pool" in kinds:
        configs.append(avg_pool_configs(ndim=ndim, dtypes=dtypes))
    if "pad" in kinds:
        configs.append(pad_configs(dtypes=dtypes))
    if "pixel_shuffle" in kinds:
        configs.append(pixel_shuffle_configs(dtypes=dtypes))
    parts = [c.map(lambda config: config.build()) for c in configs]
    if "conv_filter" in kinds:
        parts.append(conv_filters(ndim=ndim, dtypes=dtypes))
    return st.one_of(parts)
