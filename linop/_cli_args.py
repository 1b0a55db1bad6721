"""Helpers of the command line: argument syntax, operators, output, progress.

Everything a user types is parsed here into what the Python API takes, and
every error that bad input can cause becomes a `CLIError` naming the
argument, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

import linop

__all__ = [
    "DENSE_LIMIT",
    "CLIError",
    "SYNTAX",
    "add_geometry_arguments",
    "Progress",
    "build_operator",
    "check_target",
    "draw_spy",
    "flag_for_parameter",
    "format_dense",
    "int_or_ints",
    "kernel_value",
    "output_format",
    "padding_value",
    "require_matplotlib",
    "shape_value",
    "write_matrix",
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
def _int(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


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
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


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
                f"row {r} has {bad!r}, not a number: write values separated by ',' and rows "
                f"by ';', e.g. \"3,2,9;-2,1,3\", or give a .npy file"
            ) from None
    if len({len(v) for v in values}) > 1:
        raise argparse.ArgumentTypeError(
            f"rows have different lengths {[len(v) for v in values]} in {text!r}"
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


def add_geometry_arguments(p, *, kernel_required: bool) -> None:
    """The options that describe a convolution, shared by matrix and check."""
    g = p.add_argument_group("the convolution (PyTorch's parameters)")
    kernel_help = "the kernel: FILE.npy or inline \"3,2,9;-2,1,3;-3,-2,2\" (see syntax)"
    if not kernel_required:
        kernel_help += "; default: random, see --kernel-size"
    g.add_argument("--kernel", metavar="K", type=kernel_value, required=kernel_required,
                   help=kernel_help)
    g.add_argument("--input-shape", metavar="SHAPE", type=shape_value, required=True,
                   help="input size: H,W (bare kernel) or C_in,H,W (weight with channels)")
    g.add_argument("--transpose", action="store_true",
                   help="the transposed convolution (conv_transpose) instead")
    g.add_argument("--stride", metavar="S", type=int_or_ints, default=1,
                   help="stride, per axis or for all (default 1)")
    g.add_argument("--padding", metavar="P", type=padding_value, default=0,
                   help="padding: 1, 1,2, 1:2,0:1, same or valid (default 0)")
    g.add_argument("--dilation", metavar="D", type=int_or_ints, default=1,
                   help="dilation, per axis or for all (default 1)")
    g.add_argument("--groups", metavar="G", type=int, default=1,
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


def _random_kernel(args, rng):
    """The weight of shape PyTorch's nn.Conv/ConvTranspose would make, standard normal."""
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
    dtype = np.dtype(args.dtype)
    shape = lead + ksize
    if dtype.kind == "c":
        w = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2)
    else:
        w = rng.standard_normal(shape)
    return w.astype(dtype)


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
    padding = args.padding
    if isinstance(padding, tuple) and len(padding) == 1 and isinstance(padding[0], tuple):
        padding = padding * nd  # one lo:hi pair for every axis
    kwargs = dict(stride=args.stride, padding=padding, dilation=args.dilation,
                  groups=args.groups, method=method)
    if args.transpose:
        if args.padding_mode not in (None, "zeros"):
            raise CLIError("--padding-mode", f"transposed convolutions pad with zeros only, "
                           f"got {args.padding_mode!r}")
        cls = getattr(linop, f"ConvTranspose{nd}d")
        kwargs["output_padding"] = args.output_padding or 0
    else:
        if args.output_padding is not None:
            raise CLIError("--output-padding", "applies to transposed convolutions only "
                           "(add --transpose)")
        cls = getattr(linop, f"Conv{nd}d")
        kwargs["padding_mode"] = args.padding_mode or "zeros"
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


def build_matrix(op, progress):
    """``op.tocsr()``, with a progress phase; MatrixTooLargeError -> CLIError."""
    m, n = op.shape
    progress.phase(f"building the {m} x {n} matrix")
    try:
        return op.tocsr()
    except linop.MatrixTooLargeError as exc:
        raise CLIError(None, str(exc)) from None


# -- output ---------------------------------------------------------------------------
def check_target(flag: str, path: str) -> None:
    """Fail before any work when ``path`` cannot be a new file (no such directory)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(flag, f"cannot write {path!r}: no such directory {directory!r}")
    if os.path.isdir(path):
        raise CLIError(flag, f"cannot write {path!r}: it is a directory")


def output_format(path: str) -> str:
    """``.mtx`` or ``.npz`` from the file name, or CLIError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        what = f"unknown extension {ext!r}" if ext else "no extension"
        raise CLIError("-o/--output", f"{path!r} has {what}: use .mtx (Matrix Market) or "
                       ".npz (SciPy sparse)")
    check_target("-o/--output", path)
    return ext


def write_matrix(path: str, matrix, comment: str) -> None:
    """Write ``matrix`` to ``path`` (.mtx with scipy.io.mmwrite, .npz with save_npz)."""
    import scipy.io
    import scipy.sparse

    try:
        if output_format(path) == ".mtx":
            # scipy's mmwrite ignores a path it cannot open; opening it here raises
            with open(path, "wb"):
                pass
            scipy.io.mmwrite(path, matrix, comment=comment, symmetry="general")
        else:
            scipy.sparse.save_npz(path, matrix)
    except OSError as exc:
        raise CLIError(None, f"cannot write {path!r}: {exc.strerror or exc}", status=1) from None


def _cell(value) -> str:
    text = str(value).strip("()")
    return text[:-2] if text.endswith(".0") else text


def format_dense(matrix) -> str:
    """The matrix as aligned rows of numbers (readable back with numpy.loadtxt)."""
    dense = matrix.toarray()
    cells = [[_cell(v) for v in row] for row in dense]
    width = max((len(c) for row in cells for c in row), default=1)
    return "".join(" ".join(c.rjust(width) for c in row) + "\n" for row in cells)


def require_matplotlib(path: str) -> None:
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
    check_target("--spy", path)


def draw_spy(path: str, matrix, title: str) -> None:
    """Draw the sparsity pattern (every stored entry) of ``matrix`` to an image file."""
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
    try:
        fig.savefig(path, dpi=150)
    except OSError as exc:
        raise CLIError(None, f"cannot write {path!r}: {exc.strerror or exc}", status=1) from None


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
