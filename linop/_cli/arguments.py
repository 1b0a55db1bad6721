"""The command line's arguments: syntax, options, and the flag of every parameter.

Everything a user types is parsed here into what the Python API takes; every
error bad input can cause becomes a `CLIError` naming the flag, never a
traceback, and linop's own errors are mapped to flags by the name of the
parameter they carry (`flag_for_parameter`).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from linop._validation import MAX_SIZE

__all__ = [
    "CHECK_SYNTAX",
    "CLIError",
    "OPERATORS",
    "OPERATOR_OPTIONS",
    "PARAMETER_FLAGS",
    "SYNTAX",
    "add_geometry_arguments",
    "add_operator_arguments",
    "check_options_apply",
    "flag_for_parameter",
    "float_or_floats",
    "int_or_ints",
    "int_value",
    "kernel_value",
    "pad_value",
    "padding_value",
    "resolve_conv_defaults",
    "seed_value",
    "shape_value",
    "shown",
]

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
                     SHAPE is C,*spatial (1 to 3 spatial sizes), or only the
                     spatial sizes for linear (1), bilinear, bicubic (2), trilinear (3)
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
