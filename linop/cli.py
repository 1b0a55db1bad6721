"""The ``linop`` command line.

``linop demo`` reproduces the blog post that started the project.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import linop

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2, never a traceback."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "passed"):
        return {
            "passed": bool(value.passed),
            "forward": float(np.real(value.forward)),
            "adjoint": float(np.real(value.adjoint)),
            "relative_error": float(value.relative_error),
            "tolerance": float(value.tolerance),
        }
    return value


def _cmd_demo(args) -> int:
    from linop._demo import format_demo, run_demo

    result = run_demo()
    if args.json:
        print(json.dumps(_jsonable(result), indent=2))
    else:
        print(format_demo(result), end="")
    return 0 if all(c.passed for c in result["adjoint_checks"].values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="linop",
        description="Convolution as a sparse matrix: see, export and check the matrix "
        "behind PyTorch's conv and conv_transpose.",
    )
    parser.add_argument("--version", action="version", version=f"linop {linop.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = commands.add_parser(
        "demo", help="reproduce the blog post: a 3x3 kernel on 4x4 as a 4x16 matrix, and up-sampling"
    )
    demo.add_argument("--json", action="store_true", help="print the numbers as JSON")
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
