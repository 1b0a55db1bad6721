"""The command line, driven as a user drives it.

Through ``linop.cli.main(argv)`` (with pytest's capsys) and, for a few
cases, as real processes (``python -m linop`` and the installed ``linop``
script). Exported matrices are read back with SciPy and compared exactly
with ``linop.conv_matrix`` / ``linop.conv_transpose_matrix``; bad arguments
must give exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import linop
from linop._cli import arguments as cli_arguments
from linop._cli import operators as cli_operators
from linop._cli import progress as cli_progress
from linop.cli import main

BLOG = "3,2,9;-2,1,3;-3,-2,2"
BLOG_KERNEL = np.array([[3, 2, 9], [-2, 1, 3], [-3, -2, 2]], dtype=np.float64)
# The blog's figure 4: the 4x16 matrix of BLOG_KERNEL on a 4x4 input, written out by hand.
BLOG_MATRIX = np.array(
    [
        [3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2, 0, 0, 0, 0, 0],
        [0, 3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2, 0, 0, 0, 0],
        [0, 0, 0, 0, 3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2, 0],
        [0, 0, 0, 0, 0, 3, 2, 9, 0, -2, 1, 3, 0, -3, -2, 2],
    ],
    dtype=np.float64,
)
# The blog's "Up-Sampled" output of F.conv_transpose2d([[1, 2], [3, 4]], kernel2)
UPSAMPLED = [[1, 4, 11, 14], [1, 7, 31, 28], [-9, -10, 8, 4], [-9, -9, 10, 8]]


def run(capsys, *argv):
    """main(argv) -> (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_back(path):
    """A matrix file written by the CLI, read with SciPy, as CSR."""
    if str(path).endswith(".mtx"):
        return sp.csr_array(scipy.io.mmread(str(path)))
    return sp.load_npz(str(path))


def assert_same_matrix(actual, expected):
    assert actual.shape == expected.shape
    assert (actual != expected).nnz == 0  # exact equality, entry by entry
    np.testing.assert_array_equal(actual.toarray(), expected.toarray())


def wrote(path, shape, nnz, kind):
    """The line on stdout after ``-o path``."""
    return f"wrote {path}: {shape} matrix, {nnz} stored entries ({kind})\n"


def assert_usage_error(code, out, err, prog, flag):
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err  # one line
    assert err.startswith(f"{prog}: error: ")
    assert flag in err
    assert "Traceback" not in err


# -- help, version, commands --------------------------------------------------------
def test_help_lists_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert out.startswith("usage: linop")
    for command in ("matrix", "check", "demo"):
        assert f"    {command}" in out


def test_matrix_help_documents_the_syntax(capsys):
    code, out, _ = run(capsys, "matrix", "--help")
    assert code == 0
    for text in ("--kernel", "--input-shape", "--stride", "--padding", "--dilation", "--groups",
                 "--padding-mode", "--transpose", "--output-padding", "--dtype", "-o FILE",
                 "--spy", "1:2,0:1", BLOG, ".mtx", ".npz", "exit status"):
        assert text in out, text


def test_check_help_documents_random_weights(capsys):
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    for text in ("--kernel-size", "--out-channels", "--seed", "--method", "check_operator"):
        assert text in out, text


def test_version(capsys):
    assert run(capsys, "--version") == (0, f"linop {linop.__version__}\n", "")


def test_no_command_is_a_usage_error(capsys):
    code, out, err = run(capsys)
    assert_usage_error(code, out, err, "linop", "COMMAND")


# -- linop matrix: printing -------------------------------------------------------------
def test_matrix_prints_the_blogs_figure(capsys):
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4")
    assert (code, err) == (0, "")
    assert out.startswith("# Conv2d")
    printed = np.loadtxt(io.StringIO(out), comments="#", ndmin=2)
    np.testing.assert_array_equal(printed, BLOG_MATRIX)


def test_matrix_prints_the_transposed_blog_matrix(capsys):
    kernel2 = "1,2,7;-2,1,0;-3,1,2"
    code, out, _ = run(capsys, "matrix", "--kernel", kernel2, "--input-shape", "2,2",
                       "--transpose")
    assert code == 0
    printed = np.loadtxt(io.StringIO(out), comments="#", ndmin=2)
    up = printed @ np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(up.reshape(4, 4), UPSAMPLED)
    kernel = np.array([[1, 2, 7], [-2, 1, 0], [-3, 1, 2]], dtype=float)
    np.testing.assert_array_equal(printed, linop.conv_matrix(kernel, (4, 4)).toarray().T)


def test_printed_values_round_trip_exactly(capsys):
    kernel = np.array([0.1, -0.25, 1e-300, np.pi])
    code, out, _ = run(capsys, "matrix", "--kernel=" + ",".join(map(repr, kernel.tolist())),
                       "--input-shape", 6)
    assert code == 0
    printed = np.loadtxt(io.StringIO(out), comments="#", ndmin=2)
    np.testing.assert_array_equal(printed, linop.conv_matrix(kernel, (6,)).toarray())


def test_printed_float32_values_round_trip(capsys):
    code, out, _ = run(capsys, "matrix", "--kernel=0.1,-0.3", "--input-shape", 3,
                       "--dtype", "float32")
    assert code == 0
    printed = np.loadtxt(io.StringIO(out), comments="#", ndmin=2, dtype=np.float32)
    expected = linop.conv_matrix(np.array([0.1, -0.3], dtype=np.float32), (3,))
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(printed, expected.toarray())


def test_too_large_to_print_says_to_use_output(capsys):
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "30,30")
    assert_usage_error(code, out, err, "linop matrix", "-o FILE.mtx")
    assert "too large to print" in err


# -- linop matrix: files ----------------------------------------------------------------
def test_blog_kernel_to_mtx(capsys, tmp_path):
    path = tmp_path / "blog.mtx"
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o", path)
    # no progress when stderr is not a terminal; stdout says what was written
    assert (code, out, err) == (0, wrote(path, "4 x 16", 36, "Matrix Market"), "")
    matrix = read_back(path)
    assert_same_matrix(matrix, linop.conv_matrix(BLOG_KERNEL, (4, 4)))
    np.testing.assert_array_equal(matrix.toarray(), BLOG_MATRIX)
    header = path.read_text().splitlines()[:3]
    assert header[0] == "%%MatrixMarket matrix coordinate real general"
    assert "Conv2d" in header[1] and "output_shape (2, 2)" in header[1]


def _save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


# (CLI options, the Python call that must give the same matrix)
def _configs(tmp_path):
    rng = np.random.default_rng(7)
    w_groups = rng.standard_normal((4, 1, 3, 2))
    w_t = rng.standard_normal((2, 3, 3, 3))
    w_3d = rng.standard_normal((2, 1, 2, 2, 2))
    bare = rng.standard_normal((2, 3))
    return [
        (["--kernel", _save(tmp_path, "g.npy", w_groups), "--input-shape", "2,6,5",
          "--groups", 2, "--stride", "2,1", "--padding", "1:0,0:2", "--dilation", "1,2",
          "--padding-mode", "circular"],
         lambda: linop.conv_matrix(w_groups, (2, 6, 5), groups=2, stride=(2, 1),
                                   padding=((1, 0), (0, 2)), dilation=(1, 2),
                                   padding_mode="circular")),
        (["--kernel", _save(tmp_path, "t.npy", w_t), "--input-shape", "2,4,5", "--transpose",
          "--stride", 2, "--padding", 1, "--output-padding", "1,0"],
         lambda: linop.conv_transpose_matrix(w_t, (2, 4, 5), stride=2, padding=1,
                                             output_padding=(1, 0))),
        (["--kernel=-1,2.5,3", "--input-shape", 7, "--padding", "same",
          "--padding-mode", "reflect"],
         lambda: linop.conv_matrix(np.array([-1, 2.5, 3]), (7,), padding="same",
                                   padding_mode="reflect")),
        (["--kernel", _save(tmp_path, "w3.npy", w_3d), "--input-shape", "1,3,4,3",
          "--padding", 1, "--padding-mode", "replicate"],
         lambda: linop.conv_matrix(w_3d, (1, 3, 4, 3), padding=1, padding_mode="replicate")),
        (["--kernel", _save(tmp_path, "b.npy", bare), "--input-shape", "5,6", "--dilation", 2],
         lambda: linop.conv_matrix(bare, (5, 6), dilation=2)),
    ]


@pytest.mark.parametrize("ext", [".mtx", ".npz"])
def test_exported_files_equal_the_python_api(capsys, tmp_path, ext):
    for i, (options, expected) in enumerate(_configs(tmp_path)):
        path = tmp_path / f"a{i}{ext}"
        code, out, err = run(capsys, "matrix", *options, "-o", path)
        assert (code, err) == (0, ""), options
        assert out.startswith(f"wrote {path}: ") and out.count("\n") == 1
        reference = expected()
        matrix = read_back(path)
        assert matrix.dtype == np.float64
        assert_same_matrix(matrix, reference)


def test_float32_export(capsys, tmp_path):
    w = np.random.default_rng(3).standard_normal((3, 3)).astype(np.float32)
    kernel = _save(tmp_path, "w32.npy", w)
    for ext in (".npz", ".mtx"):
        path = tmp_path / f"a32{ext}"
        assert run(capsys, "matrix", "--kernel", kernel, "--input-shape", "5,5", "--dtype",
                   "float32", "-o", path)[0] == 0
        expected = linop.conv_matrix(w, (5, 5))
        matrix = read_back(path)
        if ext == ".npz":
            assert matrix.dtype == np.float32
        # Matrix Market has no single precision: the digits are float32's shortest ones
        assert_same_matrix(sp.csr_array(matrix.astype(np.float32)), expected)


@pytest.mark.parametrize(
    "cli, python",
    [
        ("1", 1),
        ("1,2", (1, 2)),
        ("1:2,0:1", ((1, 2), (0, 1))),
        ("2:0", ((2, 0), (2, 0))),  # one pair for every axis
        ("1:1,2", ((1, 1), (2, 2))),  # pairs and ints mixed
        ("same", "same"),
        ("VALID", "valid"),
    ],
)
def test_padding_syntax(capsys, tmp_path, cli, python):
    path = tmp_path / "p.npz"
    code, _, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "5,6",
                       "--padding", cli, "-o", path)
    assert (code, err) == (0, "")
    assert_same_matrix(read_back(path), linop.conv_matrix(BLOG_KERNEL, (5, 6), padding=python))


def test_matrix_too_large_for_memory(capsys, tmp_path):
    path = tmp_path / "big.npz"
    with linop.memory_limit(1000):
        code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "64,64",
                             "-o", path)
    assert_usage_error(code, out, err, "linop matrix", "more than the limit")
    assert not path.exists()


# -- linop matrix: --spy ------------------------------------------------------------------
def test_spy_draws_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    code, _, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", "--spy", small)
    assert (code, err) == (0, "")
    # a matrix larger than the marker limit is drawn as a binned image
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "30,30",
                         "--spy", large)
    spy_line = (f"wrote {large}: sparsity pattern of the 784 x 900 matrix, 7056 stored "
                "entries (PNG image)\n")
    assert (code, out, err) == (0, spy_line, "")
    for path in (small, large):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spy_without_matplotlib(capsys, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out_path = tmp_path / "a.mtx"
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4",
                         "-o", out_path, "--spy", tmp_path / "a.png")
    assert_usage_error(code, out, err, "linop matrix", "argument --spy")
    assert "matplotlib" in err and "pip install matplotlib" in err
    assert not out_path.exists()  # refused before any work


# -- bad arguments ----------------------------------------------------------------------
BAD_MATRIX = [
    # (arguments after "matrix --kernel BLOG --input-shape 4,4" unless they replace them, flag)
    (["--kernel", "3,2,x;1,2,3", "--input-shape", "4,4"], "--kernel"),
    (["--kernel", "1,2;3", "--input-shape", "4,4"], "--kernel"),
    (["--kernel", "missing.npy", "--input-shape", "4,4"], "--kernel"),
    (["--input-shape", "4,4"], "--kernel"),  # required
    (["--kernel", BLOG, "--input-shape", "4,x"], "--input-shape"),
    (["--kernel", BLOG, "--input-shape", "0,4"], "--input-shape"),
    (["--kernel", BLOG, "--input-shape", "16"], "--input-shape"),  # wrong number of axes
    (["--kernel", BLOG, "--input-shape", "2,4,4"], "--input-shape"),
    (["--kernel", BLOG, "--input-shape", "2,2"], "--input-shape"),  # kernel does not fit
    (["--kernel", BLOG, "--input-shape", "4,4", "--stride", "1.5"], "--stride"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--stride", "0"], "--stride"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--stride", "1,1,1"], "--stride"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--dilation", "-1"], "--dilation"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--padding", "1:2:3"], "--padding"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--padding", "same", "--stride", "2"],
     "--padding"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--padding", "1:1,1:1,1:1"], "--padding"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--padding-mode", "zero"], "--padding-mode"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--padding", "4", "--padding-mode",
      "reflect"], "--padding-mode"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--groups", "2"], "--groups"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--groups", "two"], "--groups"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--output-padding", "1"], "--output-padding"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--transpose", "--output-padding", "1"],
     "--output-padding"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--transpose", "--padding", "same"],
     "--padding"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--transpose", "--padding-mode", "circular"],
     "--padding-mode"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--dtype", "float16"], "--dtype"),
    (["--kernel", BLOG, "--input-shape", "4,4", "-o", "matrix.txt"], "-o/--output"),
    (["--kernel", BLOG, "--input-shape", "4,4", "-o", "matrix"], "-o/--output"),
    (["--kernel", BLOG, "--input-shape", "4,4", "-o", "/no/such/dir/a.mtx"], "-o/--output"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--spy", "a.unknown"], "--spy"),
    (["--kernel", BLOG, "--input-shape", "4,4", "--frobnicate"], "--frobnicate"),
]


@pytest.mark.parametrize("argv, flag", BAD_MATRIX, ids=[" ".join(a) for a, _ in BAD_MATRIX])
def test_bad_matrix_arguments(capsys, monkeypatch, tmp_path, argv, flag):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "matrix", *argv)
    assert_usage_error(code, out, err, "linop matrix", flag)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "content, message",
    [
        (np.zeros((0, 3)), "empty"),
        (np.array(2.0), "empty"),
        (np.array(["a", "b"]), "not numbers"),
        (b"not a numpy file", "cannot read"),
    ],
)
def test_bad_kernel_files(capsys, tmp_path, content, message):
    path = tmp_path / "k.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content)
    code, out, err = run(capsys, "matrix", "--kernel", path, "--input-shape", "4,4")
    assert_usage_error(code, out, err, "linop matrix", "argument --kernel")
    assert message in err


def test_unknown_command(capsys):
    code, out, err = run(capsys, "multiply")
    assert_usage_error(code, out, err, "linop", "invalid choice: 'multiply'")


def test_complex_kernel_needs_a_complex_dtype(capsys, tmp_path):
    w = np.array([[1 + 1j, 2], [0, 1j]])
    kernel = _save(tmp_path, "c.npy", w)
    code, out, err = run(capsys, "matrix", "--kernel", kernel, "--input-shape", "3,3")
    assert_usage_error(code, out, err, "linop matrix", "--dtype")
    path = tmp_path / "c.mtx"
    assert run(capsys, "matrix", "--kernel", kernel, "--input-shape", "3,3", "--dtype",
               "complex128", "-o", path)[0] == 0
    assert_same_matrix(read_back(path), linop.conv_matrix(w, (3, 3)))


def test_unwritable_output_is_exit_status_1(capsys, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sp, "save_npz", fail)
    code, _, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4",
                       "-o", tmp_path / "a.npz")
    assert code == 1
    assert err == f"linop matrix: error: cannot write '{tmp_path / 'a.npz'}': Permission denied\n"


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--stride", "0"], "--stride"),
        (["--dilation", "1,1,1"], "--dilation"),
        (["--padding", "-1"], "--padding"),
        (["--padding", "same", "--stride", "2"], "--padding"),
        (["--padding", "4", "--padding-mode", "reflect"], "--padding-mode"),
        (["--transpose", "--output-padding", "3"], "--output-padding"),
        (["--groups", "0"], "--groups"),
        (["--input-shape", "2,2"], "--input-shape"),
        (["--transpose", "--padding", "5"], "--padding"),
    ],
)
def test_flag_for_every_linop_error(capsys, argv, flag):
    """Each kind of ParameterError linop raises maps to the flag at fault (by its
    ``parameter``, never by reading the message)."""
    # later options override the earlier ones
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"linop matrix: error: argument {flag}: "), err


def test_flag_for_parameter_of_a_random_kernel():
    assert cli_arguments.flag_for_parameter("weight", "--kernel-size") == "--kernel-size"
    assert cli_arguments.flag_for_parameter("weight") == "--kernel"
    assert cli_arguments.flag_for_parameter("something else entirely") is None
    # every parameter of the constructors that the command line sets has a flag
    assert set(cli_arguments.PARAMETER_FLAGS) >= {"stride", "padding", "dilation", "groups",
                                              "padding_mode", "output_padding", "input_shape",
                                              "weight", "method"}


# -- linop check --------------------------------------------------------------------------
def test_check_blog_kernel_passes(capsys):
    code, out, err = run(capsys, "check", "--kernel", BLOG, "--input-shape", "4,4", "--seed", 0)
    assert (code, err) == (0, "")
    assert "check_operator: all 10 checks passed" in out
    assert "Conv2d" in out and "--seed 0" in out


@pytest.mark.parametrize(
    "options, weight_shape",
    [
        (["--input-shape", "3,9,8", "--out-channels", 4, "--kernel-size", "3,2", "--stride", 2,
          "--padding", 1, "--padding-mode", "reflect"], (4, 3, 3, 2)),
        (["--input-shape", "4,5,5", "--out-channels", 6, "--groups", 2, "--transpose",
          "--stride", 2, "--output-padding", 1], (4, 3, 3, 3)),
        (["--input-shape", "10", "--kernel-size", 4, "--dilation", 2, "--method", "im2col",
          "--dtype", "complex64"], (4,)),
        (["--input-shape", "2,4,4,4", "--out-channels", 2, "--kernel-size", 2, "--dtype",
          "float32"], (2, 2, 2, 2, 2)),
    ],
)
def test_check_random_weights(capsys, options, weight_shape):
    code, out, err = run(capsys, "check", *options, "--seed", 5)
    assert (code, err) == (0, "")
    assert f"weights: random standard normal, shape {weight_shape}" in out
    assert "all 10 checks passed" in out
    # the same seed gives the same run
    assert run(capsys, "check", *options, "--seed", 5) == (0, out, "")


def test_check_without_seed_prints_a_reproducible_one(capsys):
    code, out, _ = run(capsys, "check", "--input-shape", "6,6")
    assert code == 0
    seed = out.split("--seed ")[1].split()[0]
    assert run(capsys, "check", "--input-shape", "6,6", "--seed", seed) == (0, out, "")


def test_check_failure_is_exit_status_1(capsys, monkeypatch):
    """A convolution with a wrong adjoint: the report says which check failed."""
    real = linop.conv._ConvNd._apply_adjoint_cols
    monkeypatch.setattr(linop.conv._ConvNd, "_apply_adjoint_cols",
                        lambda self, y: 2 * real(self, y))
    code, out, err = run(capsys, "check", "--kernel", BLOG, "--input-shape", "4,4",
                         "--method", "im2col", "--seed", 0)
    assert (code, err) == (1, "")
    assert "[FAIL] dottest" in out and "FAILED:" in out


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--kernel", BLOG, "--input-shape", "4,4", "--kernel-size", 3], "--kernel-size"),
        (["--kernel", BLOG, "--input-shape", "4,4", "--out-channels", 2], "--out-channels"),
        (["--input-shape", "4,4", "--kernel-size", "3,3,3"], "--kernel-size"),
        (["--input-shape", "4,4", "--kernel-size", "0"], "--kernel-size"),
        (["--input-shape", "3,8,8", "--out-channels", 4, "--groups", 2], "--groups"),
        (["--input-shape", "3,8,8", "--out-channels", 0], "--out-channels"),
        (["--input-shape", "8,8", "--groups", 2], "--groups"),
        (["--input-shape", "2,2", "--kernel-size", 3], "--input-shape"),
        (["--input-shape", "1,2,3,4,5"], "--input-shape"),
        (["--input-shape", "8,8", "--method", "winograd"], "--method"),
        (["--input-shape", "8,8", "--seed", "x"], "--seed"),
    ],
)
def test_bad_check_arguments(capsys, argv, flag):
    code, out, err = run(capsys, "check", *argv)
    assert_usage_error(code, out, err, "linop check", flag)


# -- linop demo -----------------------------------------------------------------------------
def test_demo_reproduces_the_seed(capsys):
    code, out, err = run(capsys, "demo")
    assert (code, err) == (0, "")
    assert "[[26. 39.]\n [78. 91.]]" in out
    assert "[ -9. -10.   8.   4.]" in out
    assert "FAILED" not in out and out.count(": passed") == 5


def test_demo_json_has_the_seeds_numbers(capsys):
    code, out, err = run(capsys, "demo", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["conv_output"] == [[26, 39], [78, 91]]
    assert data["up_output"] == UPSAMPLED
    assert data["upsampled"]["transposed convolution"] == UPSAMPLED
    assert data["conv_matrix"] == BLOG_MATRIX.tolist()
    assert data["transpose_equals_conv_T"] is True
    checks = data["adjoint_checks"]
    assert set(checks) == {"Conv2d", "ConvTranspose2d", "Upsample(nearest)",
                           "Upsample(bilinear)", "Upsample(bicubic)"}
    for check in checks.values():
        assert check["passed"] is True
        assert abs(check["lhs"] - check["rhs"]) <= check["tolerance"]


# -- progress --------------------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_writes_only_to_a_terminal():
    quiet = io.StringIO()
    with cli_progress.Progress(quiet) as progress:
        progress.phase("building")
        progress.done("wrote a.mtx")
    assert quiet.getvalue() == ""

    tty = FakeTerminal()
    with cli_progress.Progress(tty) as progress:
        progress.phase("building the matrix")
        progress.phase("writing a.mtx")
        progress.done("wrote a.mtx")
    text = tty.getvalue()
    assert "linop: building the matrix..." in text and "linop: writing a.mtx..." in text
    assert text.endswith(" s\n") and "\rlinop: wrote a.mtx in" in text.replace("\x1b[K", "")


def test_progress_erases_its_line_on_error():
    tty = FakeTerminal()
    with pytest.raises(RuntimeError):
        with cli_progress.Progress(tty) as progress:
            progress.phase("building")
            raise RuntimeError
    assert tty.getvalue().endswith("\r\x1b[K")  # the error message starts on a clean line


def test_matrix_export_shows_progress_on_a_terminal(capsys, tmp_path, monkeypatch):
    tty = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", tty)
    path = tmp_path / "a.mtx"
    assert main(["matrix", "--kernel", BLOG, "--input-shape", "40,40", "-o", str(path)]) == 0
    text = tty.getvalue()
    assert "building the 1444 x 1600 matrix..." in text
    assert f"writing {path} (1444 x 1600, 12996 stored entries)..." in text
    assert text.endswith(" s\n")
    assert capsys.readouterr().out == wrote(path, "1444 x 1600", 12996, "Matrix Market")


# -- real processes ---------------------------------------------------------------------------
def _run_process(argv, timeout=120, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def test_python_m_linop_exports_the_blog_matrix(tmp_path):
    path = tmp_path / "blog.mtx"
    proc = _run_process([sys.executable, "-m", "linop", "matrix", "--kernel", BLOG,
                         "--input-shape", "4,4", "-o", str(path)])
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == wrote(path, "4 x 16", 36, "Matrix Market")
    assert_same_matrix(read_back(path), linop.conv_matrix(BLOG_KERNEL, (4, 4)))


def test_python_m_linop_bad_argument_has_no_traceback():
    proc = _run_process([sys.executable, "-m", "linop", "matrix", "--kernel", BLOG,
                         "--input-shape", "4,4", "--stride", "two"])
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("linop matrix: error: argument --stride:")


def test_console_script(tmp_path):
    exe = shutil.which("linop")
    if exe is None:
        pytest.skip("the linop console script is not installed")
    proc = _run_process([exe, "--version"])
    assert (proc.returncode, proc.stdout) == (0, f"linop {linop.__version__}\n")
    path = tmp_path / "blog.npz"
    proc = _run_process([exe, "matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o",
                         str(path)])
    assert proc.returncode == 0, proc.stderr
    assert_same_matrix(read_back(path), sp.csr_array(BLOG_MATRIX))
    proc = _run_process([exe, "matrix", "--kernel", BLOG, "--input-shape", "4,4",
                         "--padding-mode", "mirror"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("linop matrix: error: argument --padding-mode: invalid choice")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_in_a_real_terminal(tmp_path):
    """stderr a pseudo-terminal: progress shows; the matrix file is the same."""
    master, slave = os.openpty()
    path = tmp_path / "a.npz"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "linop", "matrix", "--kernel", BLOG, "--input-shape",
             "20,20", "-o", str(path)],
            stdout=subprocess.PIPE, stderr=slave, timeout=120,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert proc.stdout.decode() == wrote(path, "324 x 400", 2916, "SciPy sparse")
    assert "linop: building the 324 x 400 matrix..." in text
    assert f"linop: wrote {path} (324 x 400, 2916 stored entries) in" in text
    assert_same_matrix(read_back(path), linop.conv_matrix(BLOG_KERNEL, (20, 20)))


# -- sizes: refused in one line, before any work --------------------------------------------
HUGE = "1" + "0" * 30  # 10**30
MANY_DIGITS = "9" * 5000  # more digits than int() converts


@pytest.mark.parametrize(
    "command, argv, flag",
    [
        ("matrix", ["--kernel", "1,2,3", "--input-shape", HUGE], "--input-shape"),
        ("matrix", ["--kernel", "1,2,3", "--input-shape", 8, "--stride", HUGE], "--stride"),
        ("matrix", ["--kernel", "1,2,3", "--input-shape", 8, "--padding", HUGE], "--padding"),
        ("matrix", ["--kernel", "1,2;3,4", "--input-shape", "4,4", "--transpose", "--stride",
                    10**9], "--stride"),
        ("check", ["--input-shape", "8,8", "--seed", -1], "--seed"),
        ("check", ["--input-shape", "8,8", "--seed", 2**62 + 1], "--seed"),
        ("check", ["--input-shape", "8,8", "--out-channels", HUGE], "--out-channels"),
        ("check", ["--input-shape", "8,8", "--kernel-size", HUGE], "--kernel-size"),
    ],
)
def test_huge_and_negative_sizes_are_one_line_errors(capsys, command, argv, flag):
    code, out, err = run(capsys, command, *argv)
    assert_usage_error(code, out, err, f"linop {command}", f"argument {flag}: ")


@pytest.mark.parametrize(
    "command, flag",
    [("matrix", "--input-shape"), ("matrix", "--stride"), ("matrix", "--padding"),
     ("matrix", "--dilation"), ("matrix", "--groups"), ("matrix", "--output-padding"),
     ("check", "--seed"), ("check", "--out-channels"), ("check", "--kernel-size")],
)
def test_numbers_with_thousands_of_digits_are_refused_while_parsing(capsys, command, flag):
    argv = ["--kernel", "1,2,3", "--input-shape", 8, "--transpose"] if command == "matrix" \
        else ["--input-shape", "8,8"]
    code, out, err = run(capsys, command, *argv, flag, MANY_DIGITS)
    assert_usage_error(code, out, err, f"linop {command}", f"argument {flag}: ")
    assert "out of range" in err and "(5000 characters)" in err
    assert len(err) < 200  # the value is shortened, not echoed


@pytest.fixture
def random_draws(monkeypatch):
    """The sizes of the random weights `linop check` draws (its generator, wrapped)."""
    sizes = []
    real_default_rng = np.random.default_rng

    class Recording:
        def __init__(self, rng):
            self._rng = rng

        def standard_normal(self, size=None, **kwargs):
            sizes.append(size)
            return self._rng.standard_normal(size, **kwargs)

        def __getattr__(self, name):
            return getattr(self._rng, name)

    monkeypatch.setattr(np.random, "default_rng",
                        lambda *args, **kwargs: Recording(real_default_rng(*args, **kwargs)))
    return sizes


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--input-shape", "8,8", "--kernel-size", 5000], "--input-shape"),  # does not fit
        (["--input-shape", "8,8", "--kernel-size", 10**6, "--transpose"], "--kernel-size"),
        (["--input-shape", "3,8,8", "--out-channels", 10**12], "--out-channels"),
        (["--input-shape", "10000000000,8,8", "--out-channels", 1], "--input-shape"),
    ],
)
def test_random_weights_are_checked_before_drawing(capsys, random_draws, argv, flag):
    code, out, err = run(capsys, "check", *argv)
    assert_usage_error(code, out, err, "linop check", f"argument {flag}: ")
    assert random_draws == []


def test_random_weights_within_the_memory_limit(capsys, random_draws):
    """4096 x 3 x 3 x 3 float64 weights take 4 x 110592 x 8 bytes to draw: over 1 MiB."""
    with linop.memory_limit(2**20):
        code, out, err = run(capsys, "check", "--input-shape", "3,8,8", "--out-channels", 4096)
    assert_usage_error(code, out, err, "linop check", "argument --out-channels: ")
    assert "memory limit of 1 MiB" in err and random_draws == []


def test_check_refuses_before_any_work(capsys, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("check_operator ran")

    monkeypatch.setattr(linop.testing, "check_operator", must_not_run)
    with linop.memory_limit(2**20):
        code, out, err = run(capsys, "check", "--kernel", BLOG, "--input-shape", "64,64")
    assert_usage_error(code, out, err, "linop check", "argument --input-shape: ")
    assert "(64, 64) gives a 3844 x 4096 operator" in err and "memory limit of 1 MiB" in err


def _check_operator_peak(op) -> int:
    """Bytes at the peak of ``check_operator(op)``, traced by tracemalloc; it must pass."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        report = linop.testing.check_operator(op, rng=0, raise_error=False)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert report.passed, report
    return peak


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: linop.Conv2d(rng.standard_normal((3, 3)), (30, 30)),  # dense comparison
        lambda rng: linop.Conv2d(rng.standard_normal((4, 3, 3, 3)), (3, 40, 40),
                                 method="toeplitz"),
        lambda rng: linop.ConvTranspose2d(rng.standard_normal((4, 2, 3, 3)) + 1j, (4, 48, 48),
                                          stride=2),
        lambda rng: linop.Conv1d(rng.standard_normal(5), (100_000,), padding=2,
                                 padding_mode="circular", method="im2col"),
    ],
)
def test_check_memory_estimate_bounds_the_peak(make):
    """What check_operator allocates (traced by tracemalloc) is at most the CLI's estimate."""
    op = make(np.random.default_rng(0))
    peak = _check_operator_peak(op)
    estimate = cli_operators.check_operator_nbytes(op)
    assert peak <= estimate <= 4 * peak


def test_check_of_a_huge_image_is_refused_at_once():
    """20000 x 20000 would run for minutes and allocate hundreds of GiB: refused at once."""
    start = time.monotonic()
    proc = _run_process([sys.executable, "-m", "linop", "check", "--input-shape", "20000,20000",
                         "--seed", "0"], timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("linop check: error: argument --input-shape: (20000, 20000) "
                                  "gives a 399920004 x 400000000 operator: checking it needs "
                                  "about ")
    assert time.monotonic() - start < 30


# -- linop check --operator: the other operators ---------------------------------------------
# (operator, options, what the first line of the output starts with)
OTHER_OPERATORS = [
    ("upsample", ["--input-shape", "3,5,4", "--scale-factor", 2, "--mode", "bicubic"],
     ("operator: Upsample (3, 5, 4) -> (3, 10, 8), mode='bicubic', scale_factor=(2.0, 2.0), "
     "align_corners=False, dtype=float64")),
    ("upsample", ["--input-shape", "2,6", "--size", 9, "--mode", "linear", "--align-corners",
                  "--dtype", "complex128"],
     ("operator: Upsample (2, 6) -> (2, 9), mode='linear', size=(9,), align_corners=True, "
     "dtype=complex128")),
    ("upsample", ["--input-shape", "1,4,6,5", "--scale-factor", "0.5,1.5,1", "--mode", "area"],
     "operator: Upsample (1, 4, 6, 5) -> (1, 2, 9, 5), mode='area'"),
    ("avg-pool", ["--input-shape", "3,9,8", "--kernel-size", 3, "--stride", 2, "--padding", 1,
                  "--ceil-mode", "--no-count-include-pad"],
     ("operator: AvgPool2d (3, 9, 8) -> (3, 5, 5), kernel_size=(3, 3), stride=(2, 2), "
     "padding=(1, 1), ceil_mode=True, count_include_pad=False, dtype=float64")),
    ("avg-pool", ["--input-shape", "7,6", "--kernel-size", "2,3", "--divisor-override", -2,
                  "--dtype", "float32"],
     ("operator: AvgPool2d (7, 6) -> (3, 2), kernel_size=(2, 3), stride=(2, 3), padding=(0, 0), "
     "divisor_override=-2, dtype=float32")),
    ("avg-pool", ["--input-shape", "2,10", "--kernel-size", 4, "--stride", 3],
     "operator: AvgPool1d (2, 10) -> (2, 3), kernel_size=(4,)"),
    ("avg-pool", ["--input-shape", "1,4,4,4", "--kernel-size", 2],
     "operator: AvgPool3d (1, 4, 4, 4) -> (1, 2, 2, 2)"),
    ("pad", ["--input-shape", "3,6,5", "--pad=-1,2,3,0", "--mode", "reflect"],
     "operator: Pad (3, 6, 5) -> (3, 9, 6), pad=(-1, 2, 3, 0), mode='reflect', dtype=float64"),
    ("pad", ["--input-shape", "7", "--pad", "2,3"],
     "operator: Pad (7,) -> (12,), pad=(2, 3), mode='constant', dtype=float64"),
    ("pad", ["--input-shape", "2,5,5", "--pad", "1,1,1,1", "--mode", "circular", "--dtype",
             "complex64"],
     "operator: Pad (2, 5, 5) -> (2, 7, 7), pad=(1, 1, 1, 1), mode='circular', dtype=complex64"),
    ("pixel-shuffle", ["--input-shape", "8,3,5", "--factor", 2],
     "operator: PixelShuffle (8, 3, 5) -> (2, 6, 10), upscale_factor=2, dtype=float64"),
    ("pixel-unshuffle", ["--input-shape", "2,1,6,9", "--factor", 3],
     ("operator: PixelUnshuffle (2, 1, 6, 9) -> (2, 9, 2, 3), downscale_factor=3, "
     "dtype=float64")),
    ("conv-filter", ["--input-shape", "4,9,8", "--out-channels", 6, "--groups", 2,
                     "--stride", 2, "--padding", 1, "--padding-mode", "reflect"],
     ("operator: ConvFilter2d weight_shape (6, 2, 3, 3) -> output_shape (6, 5, 4), x shape "
     "(4, 9, 8), stride (2, 2), padding ((1, 1), (1, 1)), dilation (1, 1), groups 2, "
     "padding_mode reflect, dtype float64")),
    ("conv-filter", ["--input-shape", 12, "--kernel-size", 4, "--dilation", 2, "--padding",
                     "same", "--dtype", "complex64"],
     "operator: ConvFilter1d weight_shape (4,) -> output_shape (12,)"),
]


@pytest.mark.parametrize("operator, options, first_line", OTHER_OPERATORS,
                         ids=[f"{o}-{i}" for i, (o, _, _) in enumerate(OTHER_OPERATORS)])
def test_check_other_operators_pass(capsys, operator, options, first_line):
    argv = ["check", "--operator", operator, *options, "--seed", 3]
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0].startswith(first_line), lines[0]
    drawn = "x: random standard normal, shape " if operator == "conv-filter" else ""
    assert lines[1].startswith(drawn) and lines[1].endswith("random numbers: --seed 3")
    assert "check_operator: all 10 checks passed" in out and "[FAIL]" not in out
    assert run(capsys, *argv) == (0, out, "")  # the same seed, the same run


def test_check_other_operators_are_the_python_ones(capsys):
    """What the CLI checks is what the Python API builds (the report names its repr)."""
    cases = [
        (["--operator", "upsample", "--input-shape", "2,4,4", "--size", "6,3", "--mode",
          "bilinear"], linop.Upsample((2, 4, 4), size=(6, 3), mode="bilinear")),
        (["--operator", "avg-pool", "--input-shape", "3,8,8", "--kernel-size", 2],
         linop.AvgPool2d((3, 8, 8), 2)),
        (["--operator", "pad", "--input-shape", "4,4", "--pad", "1,0"],
         linop.Pad((4, 4), (1, 0))),
        (["--operator", "pixel-unshuffle", "--input-shape", "1,4,4", "--factor", 2],
         linop.PixelUnshuffle((1, 4, 4), 2)),
    ]
    for argv, op in cases:
        code, out, _ = run(capsys, "check", *argv, "--seed", 0)
        assert code == 0
        assert f"checks passed for {op!r}\n" in out


def test_check_conv_filter_draws_x_from_the_seed(capsys, monkeypatch):
    """conv-filter's x: standard normal from the first of the seed's two streams."""
    built = []
    real = linop.conv_filter._ConvFilterNd.__init__

    def record(self, x, *args, **kwargs):
        built.append(np.array(x))
        real(self, x, *args, **kwargs)

    monkeypatch.setattr(linop.conv_filter._ConvFilterNd, "__init__", record)
    code, out, _ = run(capsys, "check", "--operator", "conv-filter", "--input-shape", "2,5,5",
                       "--out-channels", 3, "--seed", 11)
    assert code == 0 and "weight_shape (3, 2, 3, 3)" in out
    (x,) = built
    first = np.random.SeedSequence(11).spawn(2)[0]
    np.testing.assert_array_equal(x, np.random.default_rng(first).standard_normal((2, 5, 5)))


def test_check_operator_conv_is_the_default(capsys):
    argv = ["check", "--input-shape", "3,6,6", "--out-channels", 2, "--seed", 4]
    assert run(capsys, *argv) == run(capsys, *argv, "--operator", "conv")
    code, out, _ = run(capsys, *argv, "--operator", "conv", "--transpose", "--stride", 2)
    assert code == 0 and out.startswith("operator: ConvTranspose2d")


# the class whose adjoint is broken, and options that build one of its operators
BROKEN = [
    (lambda: linop.upsample.Upsample, ["--operator", "upsample", "--input-shape", "2,4,4",
                                       "--scale-factor", 2, "--mode", "bilinear"]),
    (lambda: linop.pool._AvgPoolNd, ["--operator", "avg-pool", "--input-shape", "2,6,6",
                                     "--kernel-size", 2]),
    (lambda: linop.pad.Pad, ["--operator", "pad", "--input-shape", "2,5,5", "--pad", "1,2",
                             "--mode", "replicate"]),
    (lambda: linop.shuffle._PixelPermutation, ["--operator", "pixel-shuffle", "--input-shape",
                                               "4,3,3", "--factor", 2]),
    (lambda: linop.shuffle._PixelPermutation, ["--operator", "pixel-unshuffle",
                                               "--input-shape", "1,4,6", "--factor", 2]),
    (lambda: linop.conv_filter._ConvFilterNd, ["--operator", "conv-filter", "--input-shape",
                                               "2,7,7", "--out-channels", 2]),
]


@pytest.mark.parametrize("cls, options", BROKEN, ids=[o[1] for _, o in BROKEN])
def test_check_other_operators_failure_is_exit_status_1(capsys, monkeypatch, cls, options):
    """An operator with a wrong adjoint: exit status 1 and the report says which check failed."""
    cls = cls()
    real = cls._apply_adjoint_cols
    monkeypatch.setattr(cls, "_apply_adjoint_cols", lambda self, y: 2 * real(self, y))
    code, out, err = run(capsys, "check", *options, "--seed", 0)
    assert (code, err) == (1, "")
    assert out.startswith("operator: ")
    assert "[FAIL] dottest" in out and "FAILED:" in out


BAD_OTHER = [
    # (options after "check --operator", flag named)
    (["upsample", "--input-shape", "3,8,8"], "--size"),  # neither --size nor --scale-factor
    (["upsample", "--input-shape", "3,8,8", "--size", 4, "--scale-factor", 2], "--scale-factor"),
    (["upsample", "--input-shape", "3,8,8", "--size", 0], "--size"),
    (["upsample", "--input-shape", "3,8,8", "--size", "4,4,4"], "--size"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", 0], "--scale-factor"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", "nan"], "--scale-factor"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", "two"], "--scale-factor"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", 0.1], "--scale-factor"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", 2, "--mode", "cubic"], "--mode"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", 2, "--mode", "linear"], "--mode"),
    (["upsample", "--input-shape", "3,8,8", "--scale-factor", 2, "--align-corners"],
     "--align-corners"),
    (["upsample", "--input-shape", "8", "--scale-factor", 2], "--input-shape"),
    (["avg-pool", "--input-shape", "3,8,8"], "--kernel-size"),  # required
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 0], "--kernel-size"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 9], "--kernel-size"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", "2,2,2,2"], "--kernel-size"),
    (["avg-pool", "--input-shape", "8", "--kernel-size", 2], "--input-shape"),
    (["avg-pool", "--input-shape", "1,2,3,4,5", "--kernel-size", 2], "--input-shape"),
    (["avg-pool", "--input-shape", "8,8", "--kernel-size", "2,2,2"], "--input-shape"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 2, "--stride", 0], "--stride"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 2, "--padding", 2], "--padding"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 3, "--padding", "same"],
     "--padding"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 2, "--divisor-override", 0],
     "--divisor-override"),
    (["avg-pool", "--input-shape", "3,8,8", "--kernel-size", 2, "--divisor-override", "x"],
     "--divisor-override"),
    (["pad", "--input-shape", "3,8,8"], "--pad"),  # required
    (["pad", "--input-shape", "3,8,8", "--pad", 1], "--pad"),
    (["pad", "--input-shape", "3,8,8", "--pad", "1,1,1,1,1,1,1,1"], "--pad"),
    (["pad", "--input-shape", "3,8,8", "--pad", "1.5,1"], "--pad"),
    (["pad", "--input-shape", "3,8,8", "--pad", "8,0", "--mode", "reflect"], "--pad"),
    (["pad", "--input-shape", "3,8,8", "--pad=-9,0"], "--pad"),
    (["pad", "--input-shape", "3,8,8", "--pad", "1,1", "--mode", "zeros"], "--mode"),
    (["pixel-shuffle", "--input-shape", "4,3,3"], "--factor"),  # required
    (["pixel-shuffle", "--input-shape", "3,3,3", "--factor", 2], "--factor"),
    (["pixel-shuffle", "--input-shape", "4,3,3", "--factor", 0], "--factor"),
    (["pixel-shuffle", "--input-shape", "4,3,3", "--factor", "2.0"], "--factor"),
    (["pixel-shuffle", "--input-shape", "4,4", "--factor", 2], "--input-shape"),
    (["pixel-unshuffle", "--input-shape", "1,5,4", "--factor", 2], "--factor"),
    (["conv-filter", "--input-shape", "2,2"], "--input-shape"),  # the kernel does not fit
    (["conv-filter", "--input-shape", "1,2,3,4,5"], "--input-shape"),
    (["conv-filter", "--input-shape", "8,8", "--kernel-size", "3,3,3"], "--kernel-size"),
    (["conv-filter", "--input-shape", "3,8,8", "--out-channels", 4, "--groups", 2], "--groups"),
    (["conv-filter", "--input-shape", "3,8,8", "--out-channels", 0], "--out-channels"),
    (["conv-filter", "--input-shape", "8,8", "--stride", 0], "--stride"),
    (["conv-filter", "--input-shape", "8,8", "--padding", "same", "--stride", 2], "--padding"),
    (["conv-filter", "--input-shape", "4,4", "--padding", 4, "--padding-mode", "reflect"],
     "--padding-mode"),
    (["deconv", "--input-shape", "8,8"], "--operator"),
]


@pytest.mark.parametrize("argv, flag", BAD_OTHER, ids=[" ".join(map(str, a)) for a, _ in BAD_OTHER])
def test_bad_check_arguments_of_other_operators(capsys, monkeypatch, argv, flag):
    def must_not_run(*args, **kwargs):
        raise AssertionError("check_operator ran")

    monkeypatch.setattr(linop.testing, "check_operator", must_not_run)
    code, out, err = run(capsys, "check", "--operator", *argv)
    assert_usage_error(code, out, err, "linop check", f"argument {flag}: ")


# a valid value of every option that some operator does not take (None: a switch)
OPTION_VALUES = {
    "--kernel": BLOG, "--transpose": None, "--stride": 1, "--padding": 0, "--dilation": 1,
    "--groups": 1, "--padding-mode": "zeros", "--output-padding": 0, "--kernel-size": 2,
    "--out-channels": 1, "--method": "auto", "--size": 4, "--scale-factor": 2,
    "--mode": "nearest", "--align-corners": None, "--no-align-corners": None, "--pad": "1,1",
    "--factor": 2, "--ceil-mode": None, "--count-include-pad": None,
    "--no-count-include-pad": None, "--divisor-override": 2,
}
# a valid call of every operator
VALID = {
    "conv": ["--input-shape", "6,6"],
    "upsample": ["--input-shape", "1,4,4", "--scale-factor", 2],
    "avg-pool": ["--input-shape", "1,4,4", "--kernel-size", 2],
    "pad": ["--input-shape", "4,4", "--pad", "1,1"],
    "pixel-shuffle": ["--input-shape", "4,2,2", "--factor", 2],
    "pixel-unshuffle": ["--input-shape", "1,4,4", "--factor", 2],
    "conv-filter": ["--input-shape", "6,6"],
}


def _foreign_options():
    for operator, takes in cli_arguments.OPERATOR_OPTIONS.items():
        own = {cli_arguments._CHECK_FLAGS[d] for d in takes}
        for option in OPTION_VALUES:
            flag = option.replace("--no-", "--")
            if flag not in own:
                yield operator, option, flag


FOREIGN = list(_foreign_options())


@pytest.mark.parametrize("operator, option, flag", FOREIGN,
                         ids=[f"{o} {f}" for o, f, _ in FOREIGN])
def test_options_an_operator_does_not_take_are_refused(capsys, monkeypatch, operator, option,
                                                       flag):
    def must_not_run(*args, **kwargs):
        raise AssertionError("check_operator ran")

    monkeypatch.setattr(linop.testing, "check_operator", must_not_run)
    value = OPTION_VALUES[option]
    extra = [option] if value is None else [option, value]
    code, out, err = run(capsys, "check", "--operator", operator, *VALID[operator], *extra)
    assert_usage_error(code, out, err, "linop check",
                       f"argument {flag}: does not apply to --operator {operator}, which takes ")


def test_every_operator_takes_its_valid_call(capsys):
    """The calls above pass, and every option is refused by some operator and taken by one."""
    for operator, argv in VALID.items():
        code, out, err = run(capsys, "check", "--operator", operator, *argv, "--seed", 0)
        assert (code, err) == (0, ""), (operator, out)
    taken = {d for takes in cli_arguments.OPERATOR_OPTIONS.values() for d in takes}
    assert taken == set(cli_arguments._CHECK_FLAGS)
    assert {f for _, _, f in FOREIGN} == set(cli_arguments._CHECK_FLAGS.values())


def test_refusals_point_to_the_option_of_that_meaning(capsys):
    code, out, err = run(capsys, "check", "--operator", "pad", "--input-shape", "4,4", "--pad",
                         "1,1", "--padding-mode", "reflect")
    assert_usage_error(code, out, err, "linop check", "argument --padding-mode: ")
    assert err.rstrip().endswith("use --mode")
    code, out, err = run(capsys, "check", "--input-shape", "6,6", "--mode", "reflect")
    assert_usage_error(code, out, err, "linop check", "does not apply to --operator conv")
    assert err.rstrip().endswith("use --padding-mode")


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--operator", "upsample", "--input-shape", "1,8", "--size", HUGE], "--size"),
        (["--operator", "upsample", "--input-shape", "1,8", "--scale-factor", HUGE],
         "--scale-factor"),
        (["--operator", "upsample", "--input-shape", "1,8", "--scale-factor", "1e400"],
         "--scale-factor"),
        (["--operator", "pad", "--input-shape", "8", "--pad", f"0,{HUGE}"], "--pad"),
        (["--operator", "pixel-shuffle", "--input-shape", "4,2,2", "--factor", HUGE], "--factor"),
        (["--operator", "avg-pool", "--input-shape", "1,8", "--kernel-size", 2,
          "--divisor-override", HUGE], "--divisor-override"),
        (["--operator", "avg-pool", "--input-shape", "1,8", "--kernel-size", 2,
          "--divisor-override", f"-{HUGE}"], "--divisor-override"),
    ],
)
def test_huge_numbers_of_the_new_options_are_refused(capsys, argv, flag):
    code, out, err = run(capsys, "check", *argv)
    assert_usage_error(code, out, err, "linop check", f"argument {flag}: ")
    assert "out of range" in err


@pytest.mark.parametrize("flag", ["--size", "--scale-factor", "--pad", "--factor",
                                  "--divisor-override"])
def test_new_options_with_thousands_of_digits_are_refused_while_parsing(capsys, flag):
    code, out, err = run(capsys, "check", "--input-shape", "8,8", flag, MANY_DIGITS)
    assert_usage_error(code, out, err, "linop check", f"argument {flag}: ")
    assert "out of range" in err and "(5000 characters)" in err
    assert len(err) < 200


@pytest.mark.parametrize(
    "argv, flag, message",
    [
        # the random vectors alone would not fit: refused before the operator is built
        (["--operator", "avg-pool", "--input-shape", "3,100000,100000", "--kernel-size", 2],
         "--input-shape", "(3, 100000, 100000) has 30000000000 entries: checking an operator"),
        (["--operator", "pixel-shuffle", "--input-shape", "4,100000,100000", "--factor", 2],
         "--input-shape", "(4, 100000, 100000) has 40000000000 entries"),
        # the operator is built (cheaply), then refused by its estimate
        (["--operator", "upsample", "--input-shape", "1,64,64", "--scale-factor", 100],
         "--scale-factor", "100.0 gives a 40960000 x 4096 operator: checking it needs about"),
        (["--operator", "upsample", "--input-shape", "1,64,64", "--size", 6400],
         "--size", "6400 gives a 40960000 x 4096 operator"),
        (["--operator", "pad", "--input-shape", "64,64", "--pad", "0,100000"],
         "--pad", "(0, 100000) gives a 6404096 x 4096 operator"),
        (["--operator", "pad", "--input-shape", "400,400", "--pad=-1,-1"],
         "--input-shape", "(400, 400) gives a 159200 x 160000 operator"),
        (["--operator", "avg-pool", "--input-shape", "400,400", "--kernel-size", "3,3",
          "--stride", 1, "--padding", 1],
         "--input-shape", "(400, 400) gives a 160000 x 160000 operator"),
        # conv-filter: x is checked before it is drawn
        (["--operator", "conv-filter", "--input-shape", "3,3000,3000", "--out-channels", 4],
         "--input-shape", "the random input x would have shape (3, 3000, 3000)"),
        (["--operator", "conv-filter", "--input-shape", "4,300,300", "--out-channels", 4],
         "--input-shape", "(4, 300, 300) gives a 355216 x 144 operator"),
        # conv-filter: its input, the weight, is sized first, naming what makes it large
        (["--operator", "conv-filter", "--input-shape", "1,8,8", "--out-channels", 10**9],
         "--out-channels", ("the operator's input, a weight of shape (1000000000, 1, 3, 3), "
         "has 9000000000 entries")),
        (["--operator", "conv-filter", "--input-shape", "2000,2000", "--kernel-size", 1500],
         "--kernel-size", "the operator's input, a weight of shape (1500, 1500)"),
        # more output channels than input ones: they make the operator large
        (["--operator", "conv-filter", "--input-shape", "1,30,30", "--out-channels", 10**5,
          "--kernel-size", 1], "--out-channels", "100000 gives a 90000000 x 100000 operator"),
    ],
)
def test_other_operators_too_large_are_refused_before_any_work(capsys, monkeypatch,
                                                               random_draws, argv, flag,
                                                               message):
    def must_not_run(*args, **kwargs):
        raise AssertionError("check_operator ran")

    monkeypatch.setattr(linop.testing, "check_operator", must_not_run)
    with linop.memory_limit(64 * 2**20):
        code, out, err = run(capsys, "check", *argv)
    assert_usage_error(code, out, err, "linop check", f"argument {flag}: {message}")
    assert "more than the memory limit of 64 MiB" in err
    if "random input x" in message or "operator's input" in message:
        assert random_draws == []


def test_upsample_tables_beyond_the_limit_name_the_option(capsys):
    with linop.memory_limit(2**20):
        code, out, err = run(capsys, "check", "--operator", "upsample", "--input-shape", "1,8",
                             "--size", 10**7)
    assert_usage_error(code, out, err, "linop check", "argument --size: ")
    assert "interpolation tables" in err


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: linop.Upsample((3, 48, 48), scale_factor=2, mode="bicubic"),
        lambda rng: linop.Upsample((1, 20000), scale_factor=3.5, mode="linear",
                                   dtype=np.complex128),
        lambda rng: linop.Upsample((2, 12, 12, 12), scale_factor=2, mode="trilinear"),
        lambda rng: linop.AvgPool2d((3, 96, 96), 3, stride=1, padding=1),
        lambda rng: linop.AvgPool3d((2, 20, 20, 20), 3, stride=2, padding=1, ceil_mode=True,
                                    dtype=np.complex64),
        lambda rng: linop.Pad((3, 96, 96), (5, 5, 3, 3), "reflect"),
        lambda rng: linop.Pad((3, 20, 20), (-2, 5, 3, -3)),  # dense comparison
        lambda rng: linop.PixelShuffle((16, 48, 48), 2),
        lambda rng: linop.PixelUnshuffle((2, 4, 40, 40), 4, dtype=np.complex128),
        lambda rng: linop.ConvFilter2d(rng.standard_normal((3, 48, 48)), (8, 3, 3, 3),
                                       padding=1),
        lambda rng: linop.ConvFilter1d(rng.standard_normal(30000), (7,), padding=3,
                                       padding_mode="circular"),
        lambda rng: linop.ConvFilter2d(rng.standard_normal((10, 10)), (3, 3)),
    ],
)
def test_check_memory_estimate_bounds_the_peak_of_other_operators(make):
    """What check_operator allocates (traced by tracemalloc) is at most the CLI's estimate."""
    op = make(np.random.default_rng(0))
    peak = _check_operator_peak(op)
    estimate = cli_operators.check_operator_nbytes(op)
    assert peak <= estimate <= 6 * peak
    assert cli_operators.explicit_nnz(op) >= op.tocsr().nnz


@pytest.mark.parametrize(
    "make, parameter, flag",
    [
        (lambda: linop.Upsample((1, 4), size=0), "size", "--size"),
        (lambda: linop.Upsample((1, 4), scale_factor=-1.0), "scale_factor", "--scale-factor"),
        (lambda: linop.Upsample((1, 4, 4, 4), size=2, mode="bicubic"), "mode", "--mode"),
        (lambda: linop.Upsample((1, 4), size=2, align_corners=True), "align_corners",
         "--align-corners"),
        (lambda: linop.AvgPool1d((1, 4), 0), "kernel_size", "--kernel-size"),
        (lambda: linop.AvgPool1d((1, 4), 2, divisor_override=0), "divisor_override",
         "--divisor-override"),
        (lambda: linop.AvgPool1d((1, 4), 2, ceil_mode=1), "ceil_mode", "--ceil-mode"),
        (lambda: linop.AvgPool1d((1, 4), 2, count_include_pad=1), "count_include_pad",
         "--count-include-pad"),
        (lambda: linop.Pad((4,), (1,)), "pad", "--pad"),
        (lambda: linop.PixelShuffle((3, 2, 2), 2), "upscale_factor", "--factor"),
        (lambda: linop.PixelUnshuffle((1, 3, 2), 2), "downscale_factor", "--factor"),
        (lambda: linop.ConvFilter2d(np.ones((2, 2)), (3, 3)), "weight_shape", "--kernel-size"),
        (lambda: linop.ConvFilter2d(np.ones((2, 2, 2, 2)), (3, 3)), "x", "--input-shape"),
        (lambda: linop.Pad((4,), (1, 1), dtype=np.int8), "dtype", "--dtype"),
    ],
)
def test_flag_for_every_parameter_of_the_other_operators(make, parameter, flag):
    """The ParameterErrors of the other operators carry these names, which map to flags."""
    with pytest.raises(linop.ParameterError) as info:
        make()
    assert info.value.parameter == parameter
    assert cli_arguments.flag_for_parameter(parameter) == flag


def test_check_help_documents_the_operators(capsys):
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    for text in ("--operator", "upsample", "avg-pool", "pixel-shuffle", "pixel-unshuffle",
                 "conv-filter", "--scale-factor", "--size", "--mode", "--align-corners",
                 "--pad", "--factor", "--ceil-mode", "--no-count-include-pad",
                 "--divisor-override", "--pad=-1,1", "linop check --operator pad"):
        assert text in out, text


def test_python_m_linop_checks_an_upsample():
    proc = _run_process([sys.executable, "-m", "linop", "check", "--operator", "upsample",
                         "--input-shape", "2,5,5", "--scale-factor", "1.5", "--mode",
                         "bilinear", "--seed", "0"])
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("operator: Upsample (2, 5, 5) -> (2, 7, 7), mode='bilinear'")
    assert "all 10 checks passed" in proc.stdout


# -- files: never overwritten unasked, never half-written ------------------------------------
def test_output_is_not_overwritten_without_force(capsys, tmp_path):
    path = tmp_path / "A.mtx"
    path.write_text("precious\n")
    argv = ["matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o", path]
    code, out, err = run(capsys, *argv)
    assert_usage_error(code, out, err, "linop matrix", "argument -o/--output: ")
    assert f"'{path}' already exists: add --force to overwrite it" in err
    assert path.read_text() == "precious\n"
    code, out, err = run(capsys, *argv, "--force")
    assert (code, out, err) == (0, wrote(path, "4 x 16", 36, "Matrix Market"), "")
    np.testing.assert_array_equal(read_back(path).toarray(), BLOG_MATRIX)


def test_spy_is_not_overwritten_without_force(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    image, matrix = tmp_path / "A.png", tmp_path / "A.npz"
    image.write_bytes(b"precious")
    argv = ["matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o", matrix, "--spy", image]
    code, out, err = run(capsys, *argv)
    assert_usage_error(code, out, err, "linop matrix", "argument --spy: ")
    assert image.read_bytes() == b"precious"
    assert not matrix.exists()  # refused before any work
    code, out, err = run(capsys, *argv, "--force")
    assert (code, err) == (0, "")
    assert out == (wrote(matrix, "4 x 16", 36, "SciPy sparse") + f"wrote {image}: sparsity "
                   "pattern of the 4 x 16 matrix, 36 stored entries (PNG image)\n")
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_force_keeps_the_mode_and_follows_links(capsys, tmp_path):
    real, link = tmp_path / "real.npz", tmp_path / "link.npz"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link.symlink_to(real)
    code, out, _ = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o", link,
                       "--force")
    assert (code, out) == (0, wrote(link, "4 x 16", 36, "SciPy sparse"))
    assert link.is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o640
    np.testing.assert_array_equal(read_back(real).toarray(), BLOG_MATRIX)
    # a new file gets the usual mode (not the private one of a temporary file)
    new = tmp_path / "new.mtx"
    assert run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o", new)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("name", ["A.MTX", "A.Npz"])
def test_upper_case_extensions_write_exactly_that_file(capsys, tmp_path, name):
    path = tmp_path / name
    assert run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", "-o", path)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    loaded = sp.csr_array(scipy.io.mmread(str(path))) if name.endswith("MTX") \
        else sp.load_npz(str(path))
    np.testing.assert_array_equal(loaded.toarray(), BLOG_MATRIX)


def _failing_writer(exception, seen):
    """A stand-in for mmwrite / save_npz / savefig: some bytes, then ``exception``."""
    def write(target, *args, **kwargs):
        seen.append(str(target))
        with open(target, "wb") as f:
            f.write(b"half a matri")
        raise exception
    return write


@pytest.mark.parametrize("ext", [".mtx", ".npz", ".png"])
@pytest.mark.parametrize(
    "exception, status, message",
    [
        (OSError(28, "No space left on device"), 1,
         "error: cannot write '{path}': No space left on device"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_a_failed_write_keeps_the_previous_file(capsys, tmp_path, monkeypatch, ext, exception,
                                                status, message):
    seen = []
    if ext == ".mtx":
        monkeypatch.setattr(scipy.io, "mmwrite", _failing_writer(exception, seen))
    elif ext == ".npz":
        monkeypatch.setattr(sp, "save_npz", _failing_writer(exception, seen))
    else:
        figure = pytest.importorskip("matplotlib.figure")
        monkeypatch.setattr(figure.Figure, "savefig",
                            lambda self, target, **kw: _failing_writer(exception, seen)(target))
    path = tmp_path / f"A{ext}"
    path.write_bytes(b"the previous good file")
    flag = "--spy" if ext == ".png" else "-o"
    code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4", flag, path,
                         "--force")
    assert (code, out) == (status, "")
    assert err == f"linop matrix: {message.format(path=path)}\n"
    assert path.read_bytes() == b"the previous good file"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    # the temporary file was beside the target, hidden, with the target's extension
    (temporary,) = seen
    assert os.path.dirname(temporary) == str(tmp_path)
    assert os.path.basename(temporary).startswith(f".A{ext}.") and temporary.endswith(ext)


@pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")
def test_sigterm_during_a_write_in_process(capsys, tmp_path, monkeypatch):
    """SIGTERM raises inside the write; the temporary goes, the old handler comes back."""
    class Unexpected(Exception):
        pass

    def test_handler(signum, frame):
        raise Unexpected("the CLI did not handle SIGTERM itself")

    def terminated_midway(target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(b"half")
        signal.raise_signal(signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the write")

    previous = signal.signal(signal.SIGTERM, test_handler)
    try:
        monkeypatch.setattr(sp, "save_npz", terminated_midway)
        path = tmp_path / "A.npz"
        code, out, err = run(capsys, "matrix", "--kernel", BLOG, "--input-shape", "4,4",
                             "-o", path)
        assert signal.getsignal(signal.SIGTERM) is test_handler  # restored
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (code, out, err) == (143, "", "linop matrix: terminated\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("previous", [b"the previous good file\n", None])
def test_sigterm_during_a_large_export(tmp_path, previous):
    """A real process, killed while it writes ~90 MB of Matrix Market: nothing half-written."""
    target = tmp_path / "big.mtx"
    if previous is not None:
        target.write_bytes(previous)
    proc = subprocess.Popen(
        [sys.executable, "-m", "linop", "matrix", "--kernel", BLOG, "--input-shape", "800,800",
         "-o", str(target), "--force"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.mtx.*.mtx")):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no temporary file appeared (exit status {proc.poll()})")
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (143, "", "linop matrix: terminated\n")
    if previous is None:
        assert list(tmp_path.iterdir()) == []
    else:
        assert [p.name for p in tmp_path.iterdir()] == ["big.mtx"]
        assert target.read_bytes() == previous


def test_matrix_help_documents_force_and_exit_statuses(capsys):
    code, out, _ = run(capsys, "matrix", "--help")
    assert code == 0
    for text in ("--force", "130 interrupted", "143 terminated"):
        assert text in out, text
