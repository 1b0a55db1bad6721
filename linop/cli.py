"""The ``linop`` command line.

``linop matrix`` builds, prints, exports or draws the matrix of a
convolution; ``linop check`` runs `linop.testing.check_operator` on one, or
(``--operator``) on an Upsample, AvgPool, Pad, PixelShuffle/Unshuffle or
ConvFilter; ``linop demo`` reproduces the blog post that started the project.
Argument syntax, operators and output live in `linop._cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys

import numpy as np

import linop
from linop._cli import arguments, files, operators
from linop._cli.progress import Progress
from linop._conv.engine import METHOD_NAMES

__all__ = ["main", "build_parser"]

_EXIT = ("exit status: 0 success, 1 {one}, 2 bad arguments (sizes included), 130 "
         "interrupted, 143 terminated")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2, never a traceback."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Formatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions; keeps text with line breaks (epilogs) as written."""

    def __init__(self, prog):
        width = min(100, shutil.get_terminal_size().columns - 2)
        super().__init__(prog, max_help_position=28, width=width)

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="linop", formatter_class=_Formatter,
        description="Convolution as a sparse matrix: see, export and check the matrix "
        "behind PyTorch's conv and conv_transpose.",
        epilog="Run 'linop COMMAND --help' for the options of a command.\n"
        + _EXIT.format(one="a check or a write failed"),
    )
    parser.add_argument("--version", action="version", version=f"linop {linop.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                     required=True)

    matrix = commands.add_parser(
        "matrix", formatter_class=_Formatter,
        help="the matrix of a convolution: print it, write it (.mtx, .npz), draw it",
        description="Build the explicit matrix A of a convolution (torch.nn.functional."
        "conv1d/2d/3d), or of a transposed convolution with --transpose: y.ravel() = "
        "A @ x.ravel() with C-order flattening. Write it with -o, draw its sparsity "
        f"pattern with --spy, or, without either, print it densely (at most "
        f"{files.DENSE_LIMIT} entries). Each file written is announced on stdout.",
        epilog=arguments.SYNTAX + "\nexamples:\n"
        '  linop matrix --kernel "3,2,9;-2,1,3;-3,-2,2" --input-shape 4,4\n'
        "  linop matrix --kernel w.npy --input-shape 3,32,32 --stride 2 --padding 1 -o A.npz\n"
        '  linop matrix --kernel "1,2,7;-2,1,0;-3,1,2" --input-shape 2,2 --transpose\n\n'
        + _EXIT.format(one="a file could not be written"),
    )
    arguments.add_geometry_arguments(matrix, kernel_required=True)
    out = matrix.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE",
                     help="write the matrix: FILE.mtx (Matrix Market, scipy.io.mmread) or "
                     "FILE.npz (scipy.sparse.load_npz)")
    out.add_argument("--spy", metavar="IMAGE",
                     help="draw the sparsity pattern to IMAGE.png (or .pdf, .svg); needs "
                     "matplotlib")
    out.add_argument("--force", action="store_true",
                     help="overwrite FILE and IMAGE if they exist (refused otherwise); files "
                     "are always replaced whole, never left half-written")
    matrix.set_defaults(run=_cmd_matrix, parser=matrix)

    check = commands.add_parser(
        "check", formatter_class=_Formatter,
        help="run linop.testing.check_operator on a convolution or another operator",
        description="Run linop.testing.check_operator (dot test, linearity, matmat, "
        ".T/.H, tocsr) on the operator the arguments describe and print the report. "
        "By default a convolution: without --kernel its weights are random, of the shape "
        "PyTorch's nn.ConvNd(C_in, --out-channels, --kernel-size) (or nn.ConvTransposeNd) "
        "would have. --operator checks an Upsample, AvgPool, Pad, PixelShuffle, "
        "PixelUnshuffle or ConvFilter instead (see 'operator' below).",
        epilog=arguments.SYNTAX + arguments.CHECK_SYNTAX + "\nexamples:\n"
        '  linop check --kernel "3,2,9;-2,1,3;-3,-2,2" --input-shape 4,4\n'
        "  linop check --input-shape 3,16,16 --out-channels 8 --kernel-size 3 --stride 2\n"
        "  linop check --input-shape 8,8 --kernel-size 3,2 --transpose --stride 2 "
        "--output-padding 1\n"
        "  linop check --operator upsample --input-shape 3,8,8 --scale-factor 2 "
        "--mode bicubic\n"
        "  linop check --operator avg-pool --input-shape 3,9,9 --kernel-size 3 --stride 2 "
        "--padding 1\n"
        "  linop check --operator pad --input-shape 3,8,8 --pad=-1,2,3,3 --mode reflect\n"
        "  linop check --operator pixel-shuffle --input-shape 8,5,5 --factor 2\n"
        "  linop check --operator conv-filter --input-shape 3,16,16 --out-channels 4 "
        "--padding 1\n\n" + _EXIT.format(one="a check failed"),
    )
    arguments.add_geometry_arguments(check, kernel_required=False)
    rand = check.add_argument_group("random weights (without --kernel) and the checks")
    rand.add_argument("--kernel-size", metavar="K", type=arguments.int_or_ints, default=None,
                      help="kernel size, per spatial axis or for all (default 3; avg-pool: "
                      "the window, required)")
    rand.add_argument("--out-channels", metavar="N", type=arguments.int_value, default=None,
                      help="output channels; then --input-shape is C_in,*spatial (default: "
                      "a bare kernel, no channel axis)")
    rand.add_argument("--seed", metavar="N", type=arguments.seed_value, default=None,
                      help="seed of the random weights (conv-filter: input) and test "
                      "vectors, 0 to 2**62 (default: random, printed)")
    rand.add_argument("--method", metavar="METHOD", default="auto",
                      choices=METHOD_NAMES,
                      help="auto, toeplitz, im2col or fft: how the operator applies itself "
                      "(default auto)")
    arguments.add_operator_arguments(check)
    # None until given, so that options an operator does not take are refused
    # (arguments.check_options_apply); arguments.resolve_conv_defaults fills in the defaults.
    check.set_defaults(run=_cmd_check, parser=check, stride=None, padding=None,
                       dilation=None, groups=None, method=None)

    demo = commands.add_parser(
        "demo", formatter_class=_Formatter,
        help="reproduce the blog post: a 3x3 kernel on 4x4 as a 4x16 matrix, and up-sampling",
        description="Reproduce the blog post that started linop: the 4x16 matrix of a "
        "3x3 kernel on a 4x4 input, up-sampling by transposed convolution and "
        "interpolation, and the adjoint tests.",
    )
    demo.add_argument("--json", action="store_true", help="print the numbers as JSON")
    demo.set_defaults(run=_cmd_demo, parser=demo)
    return parser


# -- commands -------------------------------------------------------------------------
def _cmd_matrix(args) -> int:
    if args.output is not None:
        files.check_output(args.output, args.force)
    if args.spy is not None:
        files.require_matplotlib(args.spy, args.force)
    with Progress() as progress:
        op, _ = operators.build_operator(args)
        m, n = op.shape
        if args.output is None and args.spy is None and m * n > files.DENSE_LIMIT:
            raise arguments.CLIError(None, f"the {m} x {n} matrix is too large to print (more than "
                              f"{files.DENSE_LIMIT} entries): write it with -o FILE.mtx or "
                              "-o FILE.npz")
        matrix = operators.build_matrix(op, progress)
        summary = f"{m} x {n}, {matrix.nnz} stored entries"
        if args.output is None and args.spy is None:
            progress.clear()
            sys.stdout.write(f"# {operators.describe(op)}; matrix {summary}\n")
            sys.stdout.write(files.format_dense(matrix))
            return 0
        if args.output is not None:
            progress.phase(f"writing {args.output} ({summary})")
            comment = (f"linop {linop.__version__}: {operators.describe(op)}\nrows: output "
                       "(C-order flattened), columns: input (C-order flattened)")
            files.write_matrix(args.output, matrix, comment, force=args.force)
            _report(progress, files.written_summary(args.output, matrix))
        if args.spy is not None:
            progress.phase(f"drawing {args.spy}")
            files.draw_spy(args.spy, matrix, f"{type(op).__name__} {op.input_shape} -> "
                        f"{op.output_shape}: {summary}", force=args.force)
            _report(progress, files.spy_summary(args.spy, matrix))
        progress.done(f"wrote {' and '.join(f for f in (args.output, args.spy) if f)} "
                      f"({summary})")
    return 0


def _report(progress, line: str) -> None:
    """One line on stdout, on a clean line when the progress shares the terminal."""
    progress.clear()
    print(line, flush=True)


def _cmd_check(args) -> int:
    arguments.check_options_apply(args)
    if args.operator != "conv":
        return _check_other(args)
    arguments.resolve_conv_defaults(args)
    if args.kernel is not None:
        for flag, value in (("--kernel-size", args.kernel_size),
                            ("--out-channels", args.out_channels)):
            if value is not None:
                raise arguments.CLIError(flag, "not allowed with --kernel (the kernel gives the "
                                  "kernel size and channels)")
    if args.seed is None:
        args.seed = int(np.random.default_rng().integers(2**31))
    weight_seed, vector_seed = np.random.SeedSequence(args.seed).spawn(2)
    from linop.testing import check_operator

    with Progress() as progress:
        progress.phase("building the operator")
        op, origin = operators.build_operator(args, method=args.method,
                                       rng=np.random.default_rng(weight_seed))
        operators.check_fits_memory(op, args.input_shape)
        progress.phase(f"checking the {op.shape[0]} x {op.shape[1]} operator")
        report = check_operator(op, rng=vector_seed, raise_error=False)
        progress.clear()
    print(f"operator: {operators.describe(op)}, method {op.method}, dtype {op.dtype}")
    print(f"weights: {origin}, shape {op.weight.shape}; random numbers: --seed {args.seed}")
    print(report)
    return 0 if report.passed else 1


def _check_other(args) -> int:
    """linop check --operator upsample, avg-pool, pad, pixel-(un)shuffle or conv-filter."""
    if args.operator != "conv-filter":  # conv-filter's vectors are of its weight's size
        operators.check_inputs_fit_memory(args.input_shape, args.dtype)
    if args.seed is None:
        args.seed = int(np.random.default_rng().integers(2**31))
    input_seed, vector_seed = np.random.SeedSequence(args.seed).spawn(2)
    from linop.testing import check_operator

    with Progress() as progress:
        progress.phase("building the operator")
        op, drawn = operators.build_check_operator(args, np.random.default_rng(input_seed))
        operators.check_fits_memory(op, args.input_shape, *operators.growth_flag(args, op))
        progress.phase(f"checking the {op.shape[0]} x {op.shape[1]} operator")
        report = check_operator(op, rng=vector_seed, raise_error=False)
        progress.clear()
    print(f"operator: {operators.describe_operator(op)}")
    print((f"{drawn}; " if drawn else "") + f"random numbers: --seed {args.seed}")
    print(report)
    return 0 if report.passed else 1


def _jsonable(value):
    """Demo results -> JSON values (dataclasses such as DotTestResult become objects)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic)):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, np.dtype):
        return str(value)
    return value


def _cmd_demo(args) -> int:
    from linop._demo import format_demo, run_demo

    result = run_demo()
    if args.json:
        print(json.dumps(_jsonable(result), indent=2))
    else:
        print(format_demo(result), end="")
    return 0 if all(c.passed for c in result["adjoint_checks"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the command's parser, which names the command
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # --help, --version, bad arguments
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return args.run(args)
    except arguments.CLIError as exc:
        print(f"linop {args.command}: error: {exc}", file=sys.stderr)
        return exc.status
    except MemoryError:
        print(f"linop {args.command}: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"linop {args.command}: interrupted", file=sys.stderr)
        return 130
    except files.Terminated:
        print(f"linop {args.command}: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:  # e.g. `linop matrix ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
