"""Helpers of the command line: argument syntax, operators, output, progress.

Everything a user types is parsed here into what the Python API takes, and
every error that bad input can cause becomes a `CLIError` naming the
argument, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from typing import ClassVar

import numpy as np

import linop
from linop._memory import csr_nbytes
from linop._validation import MAX_SIZE

__all__ = [
    "CHECK_SYNTAX",
    "DENSE_LIMIT",
    "OPERATORS",
    "OPERATOR_OPTIONS",
    "CLIError",
    "SYNTAX",
    "Terminated",
    "add_geometry_arguments",
    "add_operator_arguments",
    "Progress",
    "atomic_write",
    "build_check_operator",
    "build_operator",
    "check_fits_memory",
    "check_operator_nbytes",
    "check_inputs_fit_memory",
    "check_output",
    "check_options_apply",
    "check_target",
    "describe_operator",
    "draw_spy",
    "explicit_matrix_nbytes",
    "explicit_nnz",
    "flag_for_parameter",
    "float_or_floats",
    "format_dense",
    "growth_flag",
    "int_or_ints",
    "int_value",
    "kernel_value",
    "output_format",
    "pad_value",
    "padding_value",
    "require_matplotlib",
    "resolve_conv_defaults",
    "seed_value",
    "shape_value",
    "shown",
    "spy_summary",
    "write_matrix",
    "written_summary",
]

#: Largest number of matrix entries (rows * columns) printed densely.
DENSE_LIMIT = 10_000

#: Matrix file formats, by extension.
FORMATS = {".mtx": "Matrix Market", ".npz": "SciPy sparse"}


class CLIError(Exception):
    """Bad input (exit status 2 by default), reported in one line naming ``flag``."""

    def __init__(self, flag: str | None, message: str, status: int = 2):
        message = " ".join(str(message).split())  # always one line
        super().__init__(f"argument {flag}: {message}" if flag else message)
        self.status = status


# -- argument syntax (argparse ``type=`` functions) --------------------------------
def shown(text: str, limit: int = 40) -> str:
    """``repr(text)``, shortened in the middle when long: one readable line for any input."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit // 2]!r}...{text[-8:]!r} ({len(text)} characters)"


def _int(text: str, what: str, *, minimum: int = -MAX_SIZE) -> int:
    """An int from ``minimum`` to 2**62; huge values are refused without converting them."""
    t = text.strip()
    digits = t.lstrip("+-").replace("_", "")
    value = None
    if not (digits.isdecimal() and len(digits) > 30):  # int() refuses 4300+ digits anyway
        try:
            value = int(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {shown(text)}") from None
    if value is None or not minimum <= value <= MAX_SIZE:
        bounds = (f"from {minimum} to 2**62" if minimum > -MAX_SIZE
                  else "at most 2**62 in absolute value")
        raise argparse.ArgumentTypeError(f"{shown(text)} is out of range: values are {bounds}")
    return value


def int_value(text: str) -> int:
    """One int, at most 2**62 in size (``--groups``, ``--out-channels``)."""
    return _int(text, "an int")


def seed_value(text: str) -> int:
    """A seed of `numpy.random.SeedSequence`: an int from 0 to 2**62."""
    return _int(text, "a non-negative int", minimum=0)


def int_or_ints(text: str):
    """``"2"`` -> 2, ``"2,1"`` -> (2, 1): one int for every axis or one per axis."""
    what = "an int or comma-separated ints such as 2 or 2,1"
    values = tuple(_int(t, what) for t in text.split(","))
    return values[0] if len(values) == 1 else values


def shape_value(text: str) -> tuple[int, ...]:
    """``"4,4"`` or ``"3,32,32"`` -> a tuple of positive ints."""
    what = "comma-separated positive ints such as 4,4 or 3,32,32"
    values = tuple(_int(t, what) for t in text.split(","))
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected {what}, got {shown(text)}")
    return values


def float_or_floats(text: str):
    """``"2"`` -> 2.0, ``"2,1.5"`` -> (2.0, 1.5): positive finite numbers up to 2**62."""
    what = "a positive number or comma-separated ones such as 2 or 2,1.5"
    values = []
    for t in text.split(","):
        try:
            value = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {shown(text)}") from None
        if not (math.isfinite(value) and 0 < value <= MAX_SIZE):
            raise argparse.ArgumentTypeError(
                f"{shown(text)} is out of range: values are positive, finite and at most 2**62")
        values.append(value)
    return values[0] if len(values) == 1 else tuple(values)


def pad_value(text: str) -> tuple[int, ...]:
    """``"1,1,2,0"`` -> (1, 1, 2, 0): F.pad's pad tuple, negative values crop."""
    return tuple(_int(t, "comma-separated ints such as 1,1,2,0") for t in text.split(","))


def padding_value(text: str):
    """An int, ints per axis, ``lo:hi`` pairs per axis, ``same`` or ``valid``."""
    t = text.strip().lower()
    if t in ("same", "valid"):
        return t
    what = "an int, ints per axis (1,2), lo:hi pairs per axis (1:2,0:1), 'same' or 'valid'"
    items = []
    for item in t.split(","):
        if ":" in item:
            lo, _, hi = item.partition(":")
            items.append((_int(lo, what), _int(hi, what)))
        else:
            items.append(_int(item, what))
    if any(isinstance(i, tuple) for i in items):
        return tuple(i if isinstance(i, tuple) else (i, i) for i in items)
    return items[0] if len(items) == 1 else tuple(items)


def _parse_inline_kernel(text: str) -> np.ndarray:
    rows = [row.strip() for row in text.strip().split(";")]
    if rows and rows[-1] == "" and len(rows) > 1:  # a trailing ';'
        rows.pop()
    values = []
    for r, row in enumerate(rows, 1):
        cells = [c.strip() for c in row.split(",")]
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_float(c))
            raise argparse.ArgumentTypeError(
                f"row {r} has {shown(bad)}, not a number: write values separated by ',' and rows "
                f"by ';', e.g. \"3,2,9;-2,1,3\", or give a .npy file"
            ) from None
    if len({len(v) for v in values}) > 1:
        raise argparse.ArgumentTypeError(
            f"rows have different lengths {[len(v) for v in values]} in {shown(text)}"
        )
    array = np.array(values, dtype=np.float64)
    return array[0] if len(values) == 1 else array


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def kernel_value(text: str) -> np.ndarray:
    """A ``.npy`` file (by its extension) or an inline kernel."""
    if text.lower().endswith(".npy"):
        try:
            array = np.load(text, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise argparse.ArgumentTypeError(f"cannot read {text!r}: {reason}") from None
        if not isinstance(array, np.ndarray):  # an .npz archive
            raise argparse.ArgumentTypeError(f"{text!r} is not a .npy file of one array")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise argparse.ArgumentTypeError(f"{text!r} holds {array.dtype} values, not numbers")
        if array.ndim == 0 or array.size == 0:
            raise argparse.ArgumentTypeError(f"{text!r} holds an empty array {array.shape}")
        return array
    return _parse_inline_kernel(text)


SYNTAX = """\
syntax:
  kernel       a .npy file: a bare kernel k, or a weight (C_out, C_in/groups, *k)
               ((C_in, C_out/groups, *k) with --transpose, PyTorch's layouts);
               or inline, values separated by ',' and rows by ';': "1,2,3" (1-D),
               "3,2,9;-2,1,3;-3,-2,2" (2-D); 3-D and channels need a .npy file.
               Write --kernel=-1,2 when the kernel starts with a minus sign.
  input shape  H,W for a bare kernel (no channel axis), C_in,H,W for a weight;
               1 to 3 spatial axes (L / H,W / D,H,W), as in the Python API.
  per axis     --stride, --dilation, --output-padding: one int for every axis
               or one per axis: 2 or 2,1.
  padding      an int (every side), one int per axis (1,2), lo:hi pairs per
               axis (1:2,0:1; a single pair applies to every axis), 'valid'
               (no padding) or 'same' (stride 1; not with --transpose).
"""


CHECK_SYNTAX = """\
  operator     --operator chooses what to check; each takes --input-shape, --dtype,
               --seed and its own options below (any other is refused):
    conv             (default) the convolution above: --kernel or --kernel-size,
                     --out-channels; --transpose, --stride, --padding, --dilation,
                     --groups, --padding-mode, --output-padding, --method
    upsample         F.interpolate: --size or --scale-factor, --mode, --align-corners;
                     SHAPE is C,*spatial (1 to 3 spatial sizes)
    avg-pool         F.avg_pool1d/2d/3d: --kernel-size (required), --stride (default:
                     the kernel size), --padding, --ceil-mode, --count-include-pad,
                     --divisor-override; SHAPE is C,*spatial, or only the spatial
                     sizes when --kernel-size has one size per axis (2,2)
    pad              F.pad: --pad (required), --mode; SHAPE is any shape
    pixel-shuffle    F.pixel_shuffle: --factor (required); SHAPE is *batch,C,H,W
    pixel-unshuffle  F.pixel_unshuffle: --factor (required); SHAPE is *batch,C,H,W
    conv-filter      the convolution as a function of its kernel, w -> conv(x, w),
                     for a random x of SHAPE: --kernel-size, --out-channels (then
                     SHAPE is C_in,*spatial), --groups, --stride, --padding,
                     --dilation, --padding-mode
  pad          F.pad's tuple: (left, right) of the last axis, then of the one
               before, ...: 1,1,2,0. Negative values crop. Write --pad=-1,1 when
               it starts with a minus sign.
  size, scale  --size: one int for every spatial axis or one per axis (8 or 8,6);
               --scale-factor: one number or one per axis (2 or 2,1.5).
"""


def add_geometry_arguments(p, *, kernel_required: bool) -> None:
    """The options that describe a convolution, shared by matrix and check."""
    g = p.add_argument_group("the convolution (PyTorch's parameters)")
    kernel_help = "the kernel: FILE.npy or inline \"3,2,9;-2,1,3;-3,-2,2\" (see syntax)"
    if not kernel_required:
        kernel_help += "; default: random, see --kernel-size"
    g.add_argument("--kernel", metavar="K", type=kernel_value, required=kernel_required,
                   help=kernel_help)
    shape_help = "input size: H,W (bare kernel) or C_in,H,W (weight with channels)"
    if not kernel_required:  # linop check: other operators too
        shape_help += "; for the other operators see 'operator' below"
    g.add_argument("--input-shape", metavar="SHAPE", type=shape_value, required=True,
                   help=shape_help)
    g.add_argument("--transpose", action="store_true",
                   help="the transposed convolution (conv_transpose) instead")
    g.add_argument("--stride", metavar="S", type=int_or_ints, default=1,
                   help="stride, per axis or for all (default 1"
                   + ("; avg-pool: the kernel size)" if not kernel_required else ")"))
    g.add_argument("--padding", metavar="P", type=padding_value, default=0,
                   help="padding: 1, 1,2, 1:2,0:1, same or valid (default 0)")
    g.add_argument("--dilation", metavar="D", type=int_or_ints, default=1,
                   help="dilation, per axis or for all (default 1)")
    g.add_argument("--groups", metavar="G", type=int_value, default=1,
                   help="channel groups (default 1)")
    g.add_argument("--padding-mode", metavar="MODE", default=None,
                   choices=("zeros", "reflect", "replicate", "circular"),
                   help="zeros, reflect, replicate or circular (default zeros)")
    g.add_argument("--output-padding", metavar="P", type=int_or_ints, default=None,
                   help="with --transpose: extra output size per axis (default 0)")
    g.add_argument("--dtype", metavar="DTYPE", default="float64",
                   choices=("float32", "float64", "complex64", "complex128"),
                   help="float32, float64, complex64 or complex128: of the weights and the "
                   "matrix (default float64)")


#: What ``linop check --operator`` checks: name -> the linop classes.
OPERATORS = {
    "conv": "Conv1d/2d/3d, or ConvTranspose1d/2d/3d with --transpose",
    "upsample": "Upsample",
    "avg-pool": "AvgPool1d/2d/3d",
    "pad": "Pad",
    "pixel-shuffle": "PixelShuffle",
    "pixel-unshuffle": "PixelUnshuffle",
    "conv-filter": "ConvFilter1d/2d/3d",
}

#: The flag of each option of ``linop check`` that some operators do not take, by ``dest``.
_CHECK_FLAGS = {
    "kernel": "--kernel", "transpose": "--transpose", "stride": "--stride",
    "padding": "--padding", "dilation": "--dilation", "groups": "--groups",
    "padding_mode": "--padding-mode", "output_padding": "--output-padding",
    "kernel_size": "--kernel-size", "out_channels": "--out-channels", "method": "--method",
    "size": "--size", "scale_factor": "--scale-factor", "mode": "--mode",
    "align_corners": "--align-corners", "pad": "--pad", "factor": "--factor",
    "ceil_mode": "--ceil-mode", "count_include_pad": "--count-include-pad",
    "divisor_override": "--divisor-override",
}

#: The options each operator takes besides --input-shape, --dtype and --seed (by ``dest``).
OPERATOR_OPTIONS = {
    "conv": ("kernel", "kernel_size", "out_channels", "transpose", "stride", "padding",
             "dilation", "groups", "padding_mode", "output_padding", "method"),
    "upsample": ("size", "scale_factor", "mode", "align_corners"),
    "avg-pool": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override"),
    "pad": ("pad", "mode"),
    "pixel-shuffle": ("factor",),
    "pixel-unshuffle": ("factor",),
    "conv-filter": ("kernel_size", "out_channels", "groups", "stride", "padding", "dilation",
                    "padding_mode"),
}

#: Hints for a flag given to an operator that has a flag of that meaning under another name.
_INSTEAD = {
    ("pad", "padding"): "--pad", ("pad", "padding_mode"): "--mode",
    ("upsample", "kernel_size"): "--size or --scale-factor",
    ("pixel-shuffle", "kernel_size"): "--factor", ("pixel-unshuffle", "kernel_size"): "--factor",
    ("pixel-shuffle", "stride"): "--factor", ("pixel-unshuffle", "stride"): "--factor",
    ("conv", "mode"): "--padding-mode", ("conv-filter", "mode"): "--padding-mode",
    ("conv-filter", "kernel"): "--kernel-size (the kernel is the operator's input)",
}


def add_operator_arguments(p) -> None:
    """``--operator`` and the options of the operators other than the convolution."""
    g = p.add_argument_group("the operator (see 'operator' below for which options each takes)")
    g.add_argument("--operator", metavar="NAME", default="conv", choices=tuple(OPERATORS),
                   help="what to check: conv (default), upsample, avg-pool, pad, "
                   "pixel-shuffle, pixel-unshuffle or conv-filter")
    g.add_argument("--size", metavar="N", type=int_or_ints, default=None,
                   help="upsample: output spatial size, for all axes or per axis")
    g.add_argument("--scale-factor", metavar="F", type=float_or_floats, default=None,
                   help="upsample: multiplier of the spatial size, for all axes or per axis "
                   "(below 1 down-samples)")
    g.add_argument("--mode", metavar="MODE", default=None,
                   help="upsample: nearest (default), nearest-exact, area, linear, bilinear, "
                   "bicubic or trilinear; pad: constant (zeros, default), reflect, replicate "
                   "or circular")
    g.add_argument("--align-corners", action=argparse.BooleanOptionalAction, default=None,
                   help="upsample, linear modes only: align the corner pixels' centres "
                   "(default: not)")
    g.add_argument("--pad", metavar="PADS", type=pad_value, default=None,
                   help="pad: F.pad's tuple, (left, right) of the last axis first: 1,1,2,0; "
                   "negative values crop")
    g.add_argument("--factor", metavar="R", type=int_value, default=None,
                   help="pixel-shuffle: upscale_factor; pixel-unshuffle: downscale_factor")
    g.add_argument("--ceil-mode", action="store_true", default=False,
                   help="avg-pool: round the number of windows up")
    g.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction,
                   default=None, help="avg-pool: divide by the window size including the "
                   "padding (default) or (--no-count-include-pad) by the pixels read")
    g.add_argument("--divisor-override", metavar="D", type=int_value, default=None,
                   help="avg-pool: divide every window's sum by D instead")


def _given(args, dest: str) -> bool:
    """Whether the option was given: not None, and for the switches not False."""
    value = getattr(args, dest, None)
    if dest in ("align_corners", "count_include_pad"):  # --no-... gives False
        return value is not None
    return value is not None and value is not False


def check_options_apply(args) -> None:
    """Refuse, naming it and the operator, any option the chosen operator does not take.

    ``linop check`` leaves every such option at None (False for switches)
    unless it is given, so that "given" is "not None".
    """
    name = args.operator
    takes = OPERATOR_OPTIONS[name]
    for dest, flag in _CHECK_FLAGS.items():
        if dest in takes or not _given(args, dest):
            continue
        own = ", ".join(_CHECK_FLAGS[d] for d in takes)
        instead = _INSTEAD.get((name, dest))
        raise CLIError(flag, f"does not apply to --operator {name}, which takes {own} (and "
                       "--input-shape, --dtype, --seed)" + (f": use {instead}" if instead
                                                             else ""))


def resolve_conv_defaults(args) -> None:
    """The defaults of the convolution's options that ``linop check`` leaves at None."""
    for dest, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1),
                          ("method", "auto")):
        if getattr(args, dest) is None:
            setattr(args, dest, default)


# -- linop's errors -> the argument at fault -----------------------------------------
#: The flag of each parameter of linop's constructors (`linop.ParameterError.parameter`).
PARAMETER_FLAGS = {
    "output_padding": "--output-padding",
    "padding_mode": "--padding-mode",
    "padding": "--padding",
    "stride": "--stride",
    "dilation": "--dilation",
    "groups": "--groups",
    "input_shape": "--input-shape",
    "weight": "--kernel",
    "method": "--method",
    "dtype": "--dtype",
    # linop check's other operators
    "kernel_size": "--kernel-size",
    "size": "--size",
    "scale_factor": "--scale-factor",
    "mode": "--mode",
    "align_corners": "--align-corners",
    "pad": "--pad",
    "upscale_factor": "--factor",
    "downscale_factor": "--factor",
    "ceil_mode": "--ceil-mode",
    "count_include_pad": "--count-include-pad",
    "divisor_override": "--divisor-override",
    "weight_shape": "--kernel-size",  # of conv-filter, from --out-channels and --kernel-size
    "x": "--input-shape",  # conv-filter's random input
}


def flag_for_parameter(parameter: str | None, kernel_flag: str = "--kernel") -> str | None:
    """The command-line flag of a parameter of linop's constructors (None if it has none).

    The weight comes from ``--kernel``, or from ``--kernel-size`` when random.
    """
    flag = PARAMETER_FLAGS.get(parameter)
    return kernel_flag if flag == "--kernel" else flag


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


# -- output ---------------------------------------------------------------------------
def check_target(flag: str, path: str, force: bool = False) -> None:
    """Fail before any work when ``path`` cannot be a new file, or exists without ``force``."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(flag, f"cannot write {path!r}: no such directory {directory!r}")
    if os.path.isdir(path):
        raise CLIError(flag, f"cannot write {path!r}: it is a directory")
    if os.path.lexists(path) and not force:
        raise CLIError(flag, _exists(path))


def _exists(path: str) -> str:
    return f"{path!r} already exists: add --force to overwrite it"


def output_format(path: str) -> str:
    """``.mtx`` or ``.npz`` from the file name (any case), or CLIError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        what = f"unknown extension {ext!r}" if ext else "no extension"
        raise CLIError("-o/--output", f"{path!r} has {what}: use .mtx (Matrix Market) or "
                       ".npz (SciPy sparse)")
    return ext


def check_output(path: str, force: bool = False) -> str:
    """The format of ``-o FILE``, checked with its target before any work."""
    ext = output_format(path)
    check_target("-o/--output", path, force)
    return ext


class Terminated(BaseException):
    """SIGTERM arrived during a write (exit status 143); a BaseException like KeyboardInterrupt."""


class _Signals:
    """SIGINT and SIGTERM as exceptions, each at most once, deferrable; handlers restored after.

    Within the ``with`` block (in the main thread; elsewhere Python cannot
    handle signals and nothing changes), SIGINT raises KeyboardInterrupt and
    SIGTERM raises `Terminated`, except inside ``deferred()``, which holds
    them back to its end. After the first, further signals are ignored, so
    that nothing interrupts the cleanup. Signals set to be ignored stay so.
    """

    _EXCEPTIONS: ClassVar[dict[str, type[BaseException]]] = {
        "SIGINT": KeyboardInterrupt, "SIGTERM": Terminated}

    def __init__(self):
        self._previous = {}
        self._deferring = False
        self._pending = None
        self._fired = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self._EXCEPTIONS:
                signum = getattr(signal, name, None)
                if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        return False

    def _handle(self, signum, frame):
        if self._fired:
            return
        if self._deferring:
            self._pending = signum
            return
        self._raise(signum)

    def _raise(self, signum):
        self._fired = True
        raise self._EXCEPTIONS[signal.Signals(signum).name](f"signal {signum}")

    @contextlib.contextmanager
    def deferred(self):
        """Hold signals back until the end of the block (where they raise)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            if self._pending is not None and not self._fired:
                self._raise(self._pending)


def _new_file_mode(path: str) -> int:
    """The mode of the file that ``path`` is, else of a new file (0o666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync(path: str, directory: bool = False) -> None:
    """Flush ``path`` to disk (a directory: best effort, not every system can)."""
    try:
        fd = os.open(path, os.O_RDONLY if directory else os.O_RDWR)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _publish(temporary: str, target: str, force: bool, flag: str, shown_path: str) -> None:
    """Move the complete ``temporary`` onto ``target`` in one step.

    With ``force``, `os.replace`. Without, a hard link, which fails if
    ``target`` appeared meanwhile: a file is never overwritten unasked.
    """
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise CLIError(flag, _exists(shown_path)) from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(target):
            raise CLIError(flag, _exists(shown_path)) from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


def atomic_write(path: str, write, *, force: bool = False, flag: str = "-o/--output") -> None:
    """Write a file through ``write(temporary_path)`` so that ``path`` is complete or untouched.

    ``write`` writes a temporary file in the target's directory, named
    ``.NAME.XXXXXXXX.ext`` (the same extension, in lower case, so that SciPy
    and Matplotlib pick the right format); once it is complete and flushed to
    disk it replaces ``path`` in one step (`os.replace`). On any failure, on
    Ctrl-C (KeyboardInterrupt) and on SIGTERM (`Terminated`, from a handler
    installed for the duration of the write) the temporary file is removed
    and the exception propagates: ``path``, if it existed, is the previous
    complete file. A symbolic link is followed: the file it points to is
    replaced. An OSError becomes a CLIError with exit status 1.
    """
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    temporary = None
    with _Signals() as signals:
        try:
            with signals.deferred():  # the temporary file exists only once its name is known
                fd, temporary = tempfile.mkstemp(
                    dir=directory, prefix=f".{name}.", suffix=os.path.splitext(name)[1].lower())
            os.close(fd)
            os.chmod(temporary, _new_file_mode(target))
            write(temporary)
            _fsync(temporary)
            _publish(temporary, target, force, flag, path)
            temporary = None
            _fsync(directory, directory=True)
        except OSError as exc:
            raise CLIError(None, f"cannot write {path!r}: {exc.strerror or exc}",
                           status=1) from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)


def write_matrix(path: str, matrix, comment: str, *, force: bool = False) -> None:
    """Write ``matrix`` to ``path`` (.mtx with scipy.io.mmwrite, .npz with save_npz), atomically."""
    import scipy.io
    import scipy.sparse

    if output_format(path) == ".mtx":
        # mmwrite imports its compiled core lazily; a signal arriving during
        # that import (the handlers of atomic_write are installed by then)
        # would break the import instead of interrupting the write
        try:
            from scipy.io._fast_matrix_market import _fmm_core  # noqa: F401
        except ImportError:  # pragma: no cover - another SciPy layout
            pass

        def write(temporary):
            scipy.io.mmwrite(temporary, matrix, comment=comment, symmetry="general")
    else:
        def write(temporary):
            scipy.sparse.save_npz(temporary, matrix)
    atomic_write(path, write, force=force, flag="-o/--output")


def written_summary(path: str, matrix) -> str:
    """What ``-o`` wrote, one line for stdout."""
    m, n = matrix.shape
    return (f"wrote {path}: {m} x {n} matrix, {matrix.nnz} stored entries "
            f"({FORMATS[output_format(path)]})")


def spy_summary(path: str, matrix) -> str:
    """What ``--spy`` drew, one line for stdout."""
    m, n = matrix.shape
    kind = os.path.splitext(path)[1].lstrip(".").upper()
    return (f"wrote {path}: sparsity pattern of the {m} x {n} matrix, {matrix.nnz} stored "
            f"entries ({kind} image)")


def _cell(value) -> str:
    text = str(value).strip("()")
    return text[:-2] if text.endswith(".0") else text


def format_dense(matrix) -> str:
    """The matrix as aligned rows of numbers (readable back with numpy.loadtxt)."""
    dense = matrix.toarray()
    cells = [[_cell(v) for v in row] for row in dense]
    width = max((len(c) for row in cells for c in row), default=1)
    return "".join(" ".join(c.rjust(width) for c in row) + "\n" for row in cells)


def require_matplotlib(path: str, force: bool = False) -> None:
    """Fail early, naming --spy, when matplotlib is missing or cannot write ``path``."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise CLIError("--spy", "drawing the sparsity pattern needs matplotlib, which is not "
                       "installed: pip install matplotlib") from None
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    supported = FigureCanvasBase.get_supported_filetypes()
    if ext not in supported:
        raise CLIError("--spy", f"cannot draw {path!r}: use an image extension matplotlib "
                       f"writes ({', '.join('.' + e for e in sorted(supported))})")
    check_target("--spy", path, force)


def draw_spy(path: str, matrix, title: str, *, force: bool = False) -> None:
    """Draw the sparsity pattern (every stored entry) of ``matrix`` to an image file, atomically."""
    from matplotlib.figure import Figure

    m, n = matrix.shape
    ratio = m / n
    size = (8.0, min(8.0, max(2.0, 8.0 * ratio))) if ratio <= 1 else (max(2.0, 8.0 / ratio), 8.0)
    fig = Figure(figsize=(size[0], size[1] + 0.6), layout="constrained")
    ax = fig.add_subplot()
    if max(m, n) <= 512:
        ax.spy(matrix, precision="present", marker="s",
               markersize=max(0.5, 0.8 * 72 * max(size) / max(m, n)))
    else:  # one pixel per block of entries: marks would overlap anyway
        coo = matrix.tocoo()
        br, bc = math.ceil(m / 512), math.ceil(n / 512)
        image = np.zeros((math.ceil(m / br), math.ceil(n / bc)), dtype=bool)
        image[coo.row // br, coo.col // bc] = True
        ax.imshow(image, cmap="Greys", interpolation="nearest", vmin=0, vmax=1,
                  extent=(-0.5, n - 0.5, m - 0.5, -0.5), aspect="equal")
    ax.set_title(title, fontsize=9)
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    atomic_write(path, lambda temporary: fig.savefig(temporary, dpi=150, format=ext),
                 force=force, flag="--spy")


# -- progress -------------------------------------------------------------------------
def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Phases of long work on one status line of ``stream``, only on a terminal.

    ``phase(text)`` replaces the status line; ``done(text)`` ends with a
    summary line; leaving the ``with`` block early (an error) erases the
    status line so that the error message starts on a clean line. When the
    stream is not a terminal, nothing is written at all.
    """

    def __init__(self, stream=None, prefix: str = "linop"):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _isatty(self.stream)
        self.prefix = prefix
        self._start = time.perf_counter()
        self._active = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def phase(self, text: str) -> None:
        if self.enabled:
            self._write(f"\r\x1b[K{self.prefix}: {text}...")
            self._active = True

    def clear(self) -> None:
        if self.enabled and self._active:
            self._write("\r\x1b[K")
            self._active = False

    def done(self, text: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self._start
            self._write(f"\r\x1b[K{self.prefix}: {text} in {elapsed:.1f} s\n")
            self._active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.clear()
        return False
