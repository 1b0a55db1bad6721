"""Check linop on a CUDA device against its CPU results, and time it against torch there.

Usage::

    python benchmarks/gpu_check.py              # on the first CUDA device
    python benchmarks/gpu_check.py --device cpu # the same checks on CPU tensors

Every operator family (convolutions 1-D to 3-D with strides, groups, padding
modes and both methods, transposed convolutions, ConvFilter, pooling,
Upsample, Pad, the pixel shuffles, products, sums, views) in float32,
float64 and complex64 is applied to tensors on the device through every
entry point (``apply``, ``apply_adjoint``, ``matvec``, ``rmatvec``,
``matmat``, ``rmatmat``, ``@``, ``.T``, ``.H``, ``conj()``) and through
autograd (the gradient of ``apply`` against ``apply_adjoint``); each result
must stay on the device, keep its dtype, and equal the NumPy engine's CPU
result to the dtype's tolerance (TF32 is off inside linop's calls, so
float32 stays float32). Then P2 (16->32 channels, 128x128, 3x3, float32) is
timed: linop's ``apply`` of a device tensor against ``torch.nn.functional``'s
call, forward and adjoint. The script prints one summary line and exits
with status 1 when a check fails. Without a CUDA device it says so and
exits with status 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.complex64): 2e-5, np.dtype(np.float64): 1e-11}


def _operators(dtype, rng):
    import linop

    def w(*shape):
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)

    conv = linop.Conv2d(w(8, 4, 3, 3), (4, 16, 16), padding=1)
    ops = {
        "conv1d": linop.Conv1d(w(4, 2, 5), (2, 40), stride=2, padding=2, dilation=2),
        "conv2d": conv,
        "conv2d-groups-reflect": linop.Conv2d(w(6, 2, 3, 3), (4, 12, 11), groups=2,
                                              padding=((1, 2), (2, 1)),
                                              padding_mode="reflect"),
        "conv2d-toeplitz": linop.Conv2d(w(2, 2, 3, 3), (2, 12, 12), padding=1,
                                        method="toeplitz"),
        "conv2d-fft": linop.Conv2d(w(2, 2, 9, 9), (2, 24, 24), padding=4, method="fft"),
        "conv2d-fft-torch": linop.Conv2d(w(4, 2, 7, 5), (2, 20, 18), stride=(2, 1), padding=3,
                                         padding_mode="reflect", method="fft", engine="torch"),
        "convT1d-fft-torch": linop.ConvTranspose1d(w(2, 3, 9), (2, 30), stride=2, padding=2,
                                                   method="fft", engine="torch"),
        "conv3d-circular": linop.Conv3d(w(3, 2, 3, 3, 3), (2, 6, 7, 6), padding=1,
                                        padding_mode="circular"),
        "convT2d": linop.ConvTranspose2d(w(4, 3, 4, 4), (4, 8, 8), stride=2, padding=1),
        "convT3d": linop.ConvTranspose3d(w(2, 2, 3, 3, 3), (2, 4, 4, 4), stride=2,
                                         output_padding=1),
        "convfilter2d": linop.ConvFilter2d(w(4, 10, 10), (6, 2, 3, 3), groups=2, padding=1),
        "avgpool2d": linop.AvgPool2d((3, 12, 12), 3, stride=2, padding=1, dtype=dtype),
        "upsample-bilinear": linop.Upsample((3, 8, 8), scale_factor=2, mode="bilinear",
                                            dtype=dtype),
        "pad-replicate": linop.Pad((3, 8, 8), (1, 2, 2, 1), mode="replicate", dtype=dtype),
        "pixelshuffle": linop.PixelShuffle((8, 5, 5), 2, dtype=dtype),
    }
    ops["product"] = conv @ linop.Upsample((4, 8, 8), scale_factor=2, dtype=dtype)
    ops["sum"] = conv.H @ conv + 0.5 * linop.Conv2d(w(4, 4, 1, 1), (4, 16, 16))
    ops["view"] = ops["conv2d-groups-reflect"].conj().T
    return ops


def _entry_points(op):
    """(name, call, which operand) per entry point."""
    return [
        ("apply", op.apply, "batch-in"), ("apply_adjoint", op.apply_adjoint, "batch-out"),
        ("matvec", op.matvec, "vec-in"), ("rmatvec", op.rmatvec, "vec-out"),
        ("matmat", op.matmat, "cols-in"), ("rmatmat", op.rmatmat, "cols-out"),
        ("@", op.__matmul__, "vec-in"), ("T.apply", op.T.apply, "batch-out"),
        ("H.matvec", op.H.matvec, "vec-out"), ("conj.apply", op.conj().apply, "batch-in"),
    ]


def _operand(op, which, dtype, rng):
    shape = op.input_shape if which.endswith("in") else op.output_shape
    n = int(np.prod(shape))
    full = {"batch": (3,) + tuple(shape), "vec": (n,), "cols": (n, 2)}[which.split("-")[0]]
    a = rng.standard_normal(full)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(full)
    return a.astype(dtype)


def _rel(got, ref):
    scale = max(float(np.abs(ref).max(initial=0)), 1e-30)
    return float(np.abs(got - ref).max(initial=0)) / scale


def check(device, rng):
    """Every operator and entry point on ``device``: (checks, failures, worst errors)."""
    import torch

    checks, failures, worst = 0, [], {}
    for dtype in (np.float32, np.float64, np.complex64):
        dtype = np.dtype(dtype)
        for name, op in _operators(dtype, rng).items():
            for what, call, which in _entry_points(op):
                a = _operand(op, which, dtype, rng)
                ref = call(a)  # the NumPy engine on the CPU
                got = call(torch.from_numpy(a).to(device))
                checks += 1
                err = _rel(got.cpu().numpy(), ref)
                worst[dtype.name] = max(worst.get(dtype.name, 0.0), err)
                if got.device.type != torch.device(device).type or got.dtype != \
                        torch.from_numpy(ref).dtype or err > TOL[dtype]:
                    failures.append(f"{name} {dtype} {what}: err {err:.1e} on {got.device}")
            # autograd: the gradient of <g, A x> is A^H g
            x = torch.from_numpy(_operand(op, "batch-in", dtype, rng)).to(device)
            x.requires_grad_(True)
            g = _operand(op, "batch-out", dtype, rng)
            y = op.apply(x)
            (y * torch.from_numpy(g).to(device).conj()).sum().real.backward()
            ref = op.apply_adjoint(g)
            checks += 1
            err = _rel(x.grad.cpu().numpy(), ref)
            if err > TOL[dtype]:
                failures.append(f"{name} {dtype} autograd: err {err:.1e}")
    return checks, failures, worst


def _time(f, sync, repeat=50):
    f()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timing(device, rng):
    """P2 on the device: linop's apply of a tensor / torch's call, forward and adjoint."""
    import torch
    import torch.nn.functional as F

    import linop

    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    op = linop.Conv2d(w, (16, 128, 128), padding=1)
    x = torch.from_numpy(rng.standard_normal((1, 16, 128, 128)).astype(np.float32)).to(device)
    y = torch.from_numpy(rng.standard_normal((1, 32, 128, 128)).astype(np.float32)).to(device)
    wt = torch.from_numpy(w).to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    ratios = {}
    ratios["matvec"] = (_time(lambda: op.apply(x), sync)
                        / _time(lambda: F.conv2d(x, wt, padding=1), sync))
    ratios["rmatvec"] = (_time(lambda: op.apply_adjoint(y), sync)
                         / _time(lambda: F.conv_transpose2d(y, wt, padding=1), sync))
    return ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device (torch {torch.__version__}): nothing checked")
        return 0
    rng = np.random.default_rng(0)
    checks, failures, worst = check(args.device, rng)
    ratios = timing(args.device, rng)
    name = (torch.cuda.get_device_name(torch.device(args.device))
            if args.device.startswith("cuda") else "cpu")
    for line in failures:
        print("  FAIL", line)
    print(f"gpu_check on {name}: {checks - len(failures)}/{checks} checks passed; worst "
          f"relative error " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()) +
          f"; P2 linop/torch forward {ratios['matvec']:.2f}, adjoint {ratios['rmatvec']:.2f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
