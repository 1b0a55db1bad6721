"""The operator the command line's arguments describe, and the sizes checked before any work."""

from __future__ import annotations

import math

import numpy as np

import linop
from linop._cli.arguments import _CHECK_FLAGS, CLIError, flag_for_parameter, resolve_conv_defaults
from linop._memory import csr_nbytes

__all__ = [
    "build_check_operator",
    "build_matrix",
    "build_operator",
    "check_fits_memory",
    "check_inputs_fit_memory",
    "check_operator_nbytes",
    "describe",
    "describe_operator",
    "explicit_matrix_nbytes",
    "explicit_nnz",
    "growth_flag",
]

# -- the operator that the arguments describe -----------------------------------------
def _spatial_ndim(kernel_shape, input_shape, flag: str) -> int:
    """Spatial dims, as in the Python API: a bare kernel or a weight with channels."""
    n, k = len(input_shape), len(kernel_shape)
    if n == k and 1 <= n <= 3:
        return n
    if n == k - 1 and 1 <= n - 1 <= 3:
        return n - 1
    need = f"{k} (a bare {k}-D kernel)" if 1 <= k <= 3 else ""
    if 3 <= k <= 5:
        need += (" or " if need else "") + (
            f"{k - 1} (C_in and {k - 2} spatial sizes, for a (C_out, C_in/groups, *k) weight)")
    raise CLIError(
        "--input-shape",
        f"{tuple(input_shape)} has {n} size{'s' * (n != 1)}, but the kernel of shape "
        f"{tuple(kernel_shape)} " + (f"needs {need}" if need else f"has {k} axes: {flag} "
                                     "must have 1 to 5"),
    )


def _random_weight_shape(args) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shape PyTorch's nn.Conv/ConvTranspose would give the weight, and the kernel size."""
    channels = args.out_channels is not None
    nd = len(args.input_shape) - channels
    if not 1 <= nd <= 3:
        raise CLIError("--input-shape", f"{args.input_shape} must have 1 to 3 spatial sizes"
                       + (" after C_in (with --out-channels)" if channels else ""))
    ksize = 3 if args.kernel_size is None else args.kernel_size
    ksize = (ksize,) * nd if isinstance(ksize, int) else tuple(ksize)
    if len(ksize) != nd or min(ksize) < 1:
        raise CLIError("--kernel-size", f"needs one positive size or {nd} (one per spatial "
                       f"axis of --input-shape {args.input_shape}), got {args.kernel_size}")
    g = args.groups
    if channels:
        c_in, c_out = args.input_shape[0], args.out_channels
        if c_out < 1:
            raise CLIError("--out-channels", f"must be >= 1, got {c_out}")
        if g >= 1 and (c_in % g or c_out % g):
            raise CLIError("--groups", f"{g} must divide C_in={c_in} (the first size of "
                           f"--input-shape) and --out-channels {c_out}")
        g = max(g, 1)
        lead = (c_in, c_out // g) if args.transpose else (c_out, c_in // g)
    else:
        lead = ()
    return lead + ksize, ksize


def _check_geometry(args, kernel_size: tuple[int, ...]) -> None:
    """linop's own checks of the geometry, run before any random weight is drawn."""
    from linop._conv.geometry import conv_geometry, transpose_geometry

    spatial = args.input_shape[len(args.input_shape) - len(kernel_size):]
    _, kwargs = _constructor(args, len(kernel_size), "auto")
    geometry = {k: kwargs[k] for k in ("stride", "padding", "dilation")}
    try:
        if args.transpose:
            transpose_geometry(spatial, kernel_size, output_padding=kwargs["output_padding"],
                               **geometry)
        else:
            conv_geometry(spatial, kernel_size, padding_mode=kwargs["padding_mode"], **geometry)
    except linop.ParameterError as exc:
        raise CLIError(flag_for_parameter(exc.parameter, "--kernel-size"), str(exc)) from None


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MiB" if nbytes < 2**60 else f"{nbytes / 2**20:.3g} MiB"


def _check_weight_nbytes(args, shape: tuple[int, ...], kernel_size: tuple[int, ...]) -> None:
    """Refuse random weights whose drawing would exceed `linop.get_memory_limit`.

    Drawing holds about four arrays of the weight's size in float64 (twice
    that for complex dtypes): the normal draws, their sum and the casts. The
    flag named is the one whose value makes the weight largest.
    """
    count = math.prod(shape)
    nbytes = 4 * count * (16 if np.dtype(args.dtype).kind == "c" else 8)
    limit = linop.get_memory_limit()
    if nbytes <= limit:
        return
    factors = {"--kernel-size": math.prod(kernel_size)}
    if args.out_channels is not None:
        factors.update({"--out-channels": args.out_channels, "--input-shape": args.input_shape[0]})
    flag = max(factors, key=factors.get)
    raise CLIError(flag, f"the random weight would have shape {shape}, {count} entries: "
                   f"drawing it needs about {_mib(nbytes)}, more than the memory limit of "
                   f"{_mib(limit)}")


def _random_kernel(args, rng):
    """The weight of shape PyTorch's nn.Conv/ConvTranspose would make, standard normal.

    Its shape, the geometry and its size are checked before anything is drawn.
    """
    shape, kernel_size = _random_weight_shape(args)
    _check_geometry(args, kernel_size)
    _check_weight_nbytes(args, shape, kernel_size)
    return _standard_normal(rng, shape, args.dtype)


def _standard_normal(rng, shape, dtype):
    """Standard normal values of ``dtype`` (complex: real and imaginary parts of variance 1/2)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        w = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2)
    else:
        w = rng.standard_normal(shape)
    return w.astype(dtype)


def _constructor(args, nd: int, method: str):
    """The operator's class for ``nd`` spatial axes, and its keyword arguments."""
    padding = args.padding
    if isinstance(padding, tuple) and len(padding) == 1 and isinstance(padding[0], tuple):
        padding = padding * nd  # one lo:hi pair for every axis
    kwargs = dict(stride=args.stride, padding=padding, dilation=args.dilation,
                  groups=args.groups, method=method)
    if args.transpose:
        if args.padding_mode not in (None, "zeros"):
            raise CLIError("--padding-mode", f"transposed convolutions pad with zeros only, "
                           f"got {args.padding_mode!r}")
        kwargs["output_padding"] = args.output_padding or 0
        return getattr(linop, f"ConvTranspose{nd}d"), kwargs
    if args.output_padding is not None:
        raise CLIError("--output-padding", "applies to transposed convolutions only "
                       "(add --transpose)")
    kwargs["padding_mode"] = args.padding_mode or "zeros"
    return getattr(linop, f"Conv{nd}d"), kwargs


def build_operator(args, *, method: str = "auto", rng=None):
    """The Conv/ConvTranspose operator of the parsed arguments (and its weight's origin).

    Without ``args.kernel`` the weights are random, drawn from ``rng``.
    """
    kernel_flag = "--kernel"
    if args.kernel is not None:
        kernel = args.kernel
        dtype = np.dtype(args.dtype)
        if np.iscomplexobj(kernel) and dtype.kind != "c":
            raise CLIError("--dtype", f"the kernel is complex ({kernel.dtype}); use --dtype "
                           "complex64 or complex128")
        kernel = kernel.astype(dtype)
        origin = "from --kernel"
    else:
        kernel_flag = "--kernel-size"
        kernel = _random_kernel(args, rng)
        origin = "random standard normal"
    nd = _spatial_ndim(kernel.shape, args.input_shape, kernel_flag)
    cls, kwargs = _constructor(args, nd, method)
    try:
        return cls(kernel, args.input_shape, **kwargs), origin
    except linop.MatrixTooLargeError as exc:
        raise CLIError(None, str(exc)) from None
    except linop.ParameterError as exc:
        raise CLIError(flag_for_parameter(exc.parameter, kernel_flag), str(exc)) from None


def describe(op) -> str:
    """One line: what the operator is, for file comments and headers."""
    text = (f"{type(op).__name__} weight {op.weight.shape}, input_shape {op.input_shape} -> "
            f"output_shape {op.output_shape}, stride {op.stride}, padding {op.padding}, "
            f"dilation {op.dilation}, groups {op.groups}")
    if hasattr(op, "padding_mode"):
        text += f", padding_mode {op.padding_mode}"
    else:
        text += f", output_padding {op.output_padding}"
    return text


# -- linop check's other operators ------------------------------------------------------
def _required(args, dest: str, what: str) -> None:
    if getattr(args, dest) is None:
        raise CLIError(_CHECK_FLAGS[dest], f"is required with --operator {args.operator}: {what}")


def _new(cls, flag_values, *args, **kwargs):
    """``cls(*args, **kwargs)``, its errors as CLIErrors naming the flag at fault.

    A `MatrixTooLargeError` (tables beyond the memory limit) names the
    first of ``flag_values`` that was given: the options that make the
    operator large.
    """
    try:
        return cls(*args, **kwargs)
    except linop.MatrixTooLargeError as exc:
        flag = next((f for f, v in flag_values if v is not None), "--input-shape")
        raise CLIError(flag, str(exc)) from None
    except linop.ParameterError as exc:
        raise CLIError(flag_for_parameter(exc.parameter, "--kernel-size"), str(exc)) from None


def _avg_pool_class(args):
    """AvgPool1d/2d/3d: the number of spatial axes from --kernel-size or --input-shape."""
    _required(args, "kernel_size", "the window size, one or one per spatial axis (2 or 2,2)")
    shape, ks = args.input_shape, args.kernel_size
    if isinstance(ks, tuple):
        nd = len(ks)
        if not 1 <= nd <= 3:
            raise CLIError("--kernel-size", f"{ks} has {nd} sizes: give one, or one per spatial "
                           "axis (1 to 3)")
        if len(shape) not in (nd, nd + 1):
            raise CLIError("--input-shape", f"{shape} has {len(shape)} sizes, but --kernel-size "
                           f"{','.join(map(str, ks))} has {nd}: give {nd} spatial sizes, or C "
                           f"and {nd} spatial sizes")
    else:
        nd = len(shape) - 1
        if not 1 <= nd <= 3:
            raise CLIError("--input-shape", f"{shape} must be C,*spatial with 1 to 3 spatial "
                           "sizes (2 to 4 sizes in all); for spatial sizes alone, without a "
                           "channel axis, give --kernel-size one size per axis (2,2)")
    return getattr(linop, f"AvgPool{nd}d")


def _conv_filter(args, rng):
    """ConvFilter{n}d on a random x of --input-shape, checked before x is drawn."""
    resolve_conv_defaults(args)
    weight_shape, kernel_size = _random_weight_shape(args)
    _check_geometry(args, kernel_size)
    nd = len(kernel_size)
    _, kwargs = _constructor(args, nd, "auto")
    del kwargs["method"]
    itemsize = 16 if np.dtype(args.dtype).kind == "c" else 8
    limit = linop.get_memory_limit()
    count = math.prod(weight_shape)  # the operator's input: random vectors of this size
    if 32 * count * itemsize > limit:
        factors = {"--kernel-size": math.prod(kernel_size)}
        if args.out_channels is not None:
            factors["--out-channels"] = args.out_channels
        raise CLIError(max(factors, key=factors.get), f"the operator's input, a weight of shape "
                       f"{weight_shape}, has {count} entries: checking it needs about "
                       f"{_mib(32 * count * itemsize)} (random vectors of {count} entries), "
                       f"more than the memory limit of {_mib(limit)}")
    count = math.prod(args.input_shape)
    nbytes = 4 * count * itemsize
    if nbytes > limit:
        raise CLIError("--input-shape", f"the random input x would have shape "
                       f"{args.input_shape}, {count} entries: drawing it needs about "
                       f"{_mib(nbytes)}, more than the memory limit of {_mib(limit)}")
    x = _standard_normal(rng, args.input_shape, args.dtype)
    op = _new(getattr(linop, f"ConvFilter{nd}d"), (), x, weight_shape, **kwargs)
    return op, f"x: random standard normal, shape {x.shape}"


def build_check_operator(args, rng):
    """The operator other than the convolution that ``linop check`` checks, and what it drew.

    The second value is a line about the random input (conv-filter) or None.
    Options that must be given are checked first; the operator's own checks
    (`linop.ParameterError`) become CLIErrors naming the flag.
    """
    name, shape, dtype = args.operator, args.input_shape, np.dtype(args.dtype)
    if name == "conv-filter":
        return _conv_filter(args, rng)
    if name == "upsample":
        if args.size is None and args.scale_factor is None:
            raise CLIError("--size", "is required with --operator upsample, or --scale-factor "
                           "instead: the output spatial size (8 or 8,6), or its multiplier (2)")
        if args.size is not None and args.scale_factor is not None:
            raise CLIError("--scale-factor", "not allowed with --size: give one of them, as "
                           "F.interpolate takes one")
        kwargs = {k: getattr(args, k) for k in ("size", "scale_factor", "mode", "align_corners")
                  if getattr(args, k) is not None}
        grows = (("--size", args.size), ("--scale-factor", args.scale_factor))
        return _new(linop.Upsample, grows, shape, dtype=dtype, **kwargs), None
    if name == "avg-pool":
        cls = _avg_pool_class(args)
        kwargs = {k: getattr(args, k) for k in ("stride", "padding", "count_include_pad",
                                                "divisor_override")
                  if getattr(args, k) is not None}
        return _new(cls, (), shape, args.kernel_size, ceil_mode=args.ceil_mode, dtype=dtype,
                    **kwargs), None
    if name == "pad":
        _required(args, "pad", "F.pad's tuple, (left, right) of the last axis first (1,1,2,0)")
        return _new(linop.Pad, (), shape, args.pad, args.mode or "constant", dtype=dtype), None
    if name in ("pixel-shuffle", "pixel-unshuffle"):
        _required(args, "factor", "the " + ("upscale" if name == "pixel-shuffle" else
                                            "downscale") + " factor r (2)")
        cls = linop.PixelShuffle if name == "pixel-shuffle" else linop.PixelUnshuffle
        return _new(cls, (), shape, args.factor, dtype=dtype), None
    raise AssertionError(name)  # pragma: no cover - argparse's choices


def describe_operator(op) -> str:
    """One line: what any operator of ``linop check`` is (`describe` for convolutions)."""
    if hasattr(op, "definition"):
        return describe(op)
    if _is_conv_filter(op):
        return (f"{type(op).__name__} weight_shape {op.weight_shape} -> output_shape "
                f"{op.output_shape}, x shape {op.x.shape}, stride {op.stride}, padding "
                f"{op.padding}, dilation {op.dilation}, groups {op.groups}, padding_mode "
                f"{op.padding_mode}, dtype {op.dtype}")
    text = repr(op)
    return text[1:-1] if text.startswith("<") and text.endswith(">") else text


def build_matrix(op, progress):
    """``op.tocsr()``, with a progress phase; MatrixTooLargeError -> CLIError."""
    m, n = op.shape
    progress.phase(f"building the {m} x {n} matrix")
    try:
        return op.tocsr()
    except linop.MatrixTooLargeError as exc:
        raise CLIError(None, str(exc)) from None


def check_operator_nbytes(op) -> int:
    """About the most memory `linop.testing.check_operator` holds for ``op``, in bytes.

    An upper estimate, from the sizes alone (nothing is built):

    - its ``tocsr`` check builds the explicit matrices of ``op``, ``op.H``
      and ``op.T`` and compares them, while the operator may cache its own:
      about four times the peak of building ``A`` and ``A^T`` together
      (`linop._conv.toeplitz.explicit_matrix_nbytes` for convolutions; for
      the other operators see `explicit_matrix_nbytes`);
    - the other checks apply the operator to random vectors and blocks of
      three columns of ``m`` and ``n`` entries, and compare copies and
      results in float64 or complex128: about 32 vectors of ``m + n``
      entries;
    - small operators (``m * n`` and ``n * n`` at most ``10**6``) are also
      compared entry by entry with dense matrices: the ``n x n`` identity
      and a copy, and about six ``m x n`` arrays;
    - a ConvFilter also holds its input ``x`` padded, and its patches
      (cached when small, else gathered in tiles of bounded size).
    """
    m, n = op.shape
    itemsize = 16 if np.dtype(op.dtype).kind == "c" else 8
    dense = (2 * n * n + 6 * m * n) * itemsize if max(m * n, n * n) <= 10**6 else 0
    return 4 * explicit_matrix_nbytes(op) + 32 * (m + n) * itemsize + dense + _kept_nbytes(op)


def _is_conv_filter(op) -> bool:
    from linop.conv_filter import _ConvFilterNd

    return isinstance(op, _ConvFilterNd)


def _kept_nbytes(op) -> int:
    """What a ConvFilter keeps besides: its padded x and its patches (cached or in tiles)."""
    if not _is_conv_filter(op):
        return 0
    from linop._conv.im2col import PATCH_BUFFER_BYTES

    groups, _, taps, n_out = op._sizes
    patches = groups * taps * n_out * np.dtype(op.dtype).itemsize
    return 2 * op.x.nbytes + 2 * min(patches, PATCH_BUFFER_BYTES)


def explicit_nnz(op) -> int:
    """The stored entries of ``op.tocsr()`` (an upper bound), from sizes linop already knows.

    Upsample and AvgPool: the channels times the product of the per-axis
    tables' entries; Pad: at most one per row; PixelShuffle/Unshuffle: one
    per row; ConvFilter: ``C_out * C_in/groups`` times the (output, tap)
    pairs that read the input; a convolution: its Toeplitz count. Any other
    operator: ``m * n``, as if dense.
    """
    from linop._conv.toeplitz import explicit_matrix_nnz
    from linop.pool import _AvgPoolNd
    from linop.shuffle import _PixelPermutation

    m, n = op.shape
    if hasattr(op, "definition"):
        return explicit_matrix_nnz(op.definition.weight, op.definition.geometry)
    if isinstance(op, (linop.Upsample, _AvgPoolNd)):
        channels = 1 if getattr(op, "bare", False) else op.input_shape[0]
        return channels * math.prod(axis.taps.nnz for axis in op.axes)
    if isinstance(op, linop.Pad):
        return m
    if isinstance(op, _PixelPermutation):
        return n
    if _is_conv_filter(op):
        return op._matrix_parts()[0]
    return m * n


def explicit_matrix_nbytes(op) -> int:
    """Peak bytes of building the explicit matrices ``A`` and ``A^T`` of ``op`` together.

    Convolutions: `linop._conv.toeplitz.explicit_matrix_nbytes`. ConvFilter:
    its own count of building ``A`` (the matrix and the gathers) plus ``A^T``.
    The others build ``A`` as Kronecker products of per-axis matrices, which
    pass through coordinate (COO) arrays of int64 row and column indices:
    ``A``, those arrays and ``A^T`` (`explicit_nnz` entries each).
    """
    from linop._conv.toeplitz import explicit_matrix_nbytes as conv_nbytes

    m, n = op.shape
    if hasattr(op, "definition"):
        d = op.definition
        return conv_nbytes(d.weight, d.geometry, d.groups, transposed=True)
    nnz = explicit_nnz(op)
    transposed = csr_nbytes(nnz, n, op.dtype, m)
    if _is_conv_filter(op):
        return op._matrix_parts()[2] + transposed
    coo = nnz * (16 + np.dtype(op.dtype).itemsize)
    return csr_nbytes(nnz, m, op.dtype, n) + coo + transposed


def check_inputs_fit_memory(shape, dtype) -> None:
    """Refuse, naming ``--input-shape``, inputs whose random vectors alone exceed the limit.

    Before an operator other than a convolution is built: whatever it is,
    the check applies it to about 32 vectors of ``prod(shape)`` entries.
    """
    count = math.prod(shape)
    nbytes = 32 * count * (16 if np.dtype(dtype).kind == "c" else 8)
    limit = linop.get_memory_limit()
    if nbytes > limit:
        raise CLIError("--input-shape", f"{shape} has {count} entries: checking an operator on "
                       f"it needs about {_mib(nbytes)} (random vectors of {count} entries), "
                       f"more than the memory limit of {_mib(limit)}: use a smaller "
                       "--input-shape")


def check_fits_memory(op, input_shape, flag: str = "--input-shape", value=None) -> None:
    """Refuse, naming ``flag``, to check an operator beyond `linop.get_memory_limit`.

    ``flag`` is ``--input-shape`` (``value`` its value, ``input_shape``)
    unless another option makes the operator large (see `growth_flag`).
    """
    nbytes, limit = check_operator_nbytes(op), linop.get_memory_limit()
    if nbytes > limit:
        m, n = op.shape
        value = input_shape if value is None else value
        raise CLIError(flag, f"{value} gives a {m} x {n} operator: checking it "
                       f"needs about {_mib(nbytes)} (its explicit matrix for the tocsr check, "
                       f"random vectors of {m} and {n} entries), more than the memory limit of "
                       f"{_mib(limit)}: use a smaller {flag}")


def growth_flag(args, op) -> tuple[str, object]:
    """The option to name when ``op`` is too large to check, and its value.

    ``--input-shape``, except for upsample and pad when the output is larger
    than the input: then ``--size``, ``--scale-factor`` or ``--pad``, whichever
    was given; and for conv-filter with more output channels than input
    ones: then ``--out-channels``.
    """
    m, n = op.shape
    if m > n and args.operator in ("upsample", "pad"):
        for dest in ("size", "scale_factor", "pad"):
            value = getattr(args, dest, None)
            if value is not None:
                return _CHECK_FLAGS[dest], value
    if (args.operator == "conv-filter" and args.out_channels is not None
            and args.out_channels > args.input_shape[0]):
        return "--out-channels", args.out_channels
    return "--input-shape", args.input_shape
