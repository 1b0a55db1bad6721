"""Micro-benchmark of the torch kernels of the non-convolution operators.

For a few mid-size cases of Upsample, AvgPool, Pad and PixelShuffle (float32,
a batch of 4, torch at 2 threads), times in one process, on the same inputs:

* ``numpy``: the operator's ``apply`` / ``apply_adjoint`` on a NumPy array;
* ``kernel``: ``forward`` / ``adjoint`` of ``linop._torch_engine.layers.layer_kernels``
  on a torch tensor;
* ``torch``: torch's own call (``F.interpolate``, ``F.avg_pool*d``, ``F.pad``,
  ``F.pixel_shuffle``) and, for the adjoint, its backward
  (``torch.autograd.grad`` of a graph built once, which is not always the exact
  adjoint: that is why the kernels have their own).

It checks that the three agree first, then prints medians (and minimums) of
several repeats in milliseconds and the ratios kernel/torch and kernel/numpy.

    python benchmarks/torch_layers.py [--repeat 9] [--only up-bilinear,pad-reflect]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # the linop of this checkout
    sys.path.insert(0, _ROOT)

import linop  # noqa: E402
from linop._torch_engine.layers import layer_kernels  # noqa: E402

TORCH_THREADS = 2


def _cases():
    """(name, operator, torch's call on (batch, *input_shape) tensors)."""
    yield ("up-nearest2d x2 (16,128,128)",
           linop.Upsample((16, 128, 128), scale_factor=2, dtype=np.float32),
           lambda t: F.interpolate(t, scale_factor=2))
    yield ("up-bilinear x2 (16,128,128)",
           linop.Upsample((16, 128, 128), scale_factor=2, mode="bilinear", dtype=np.float32),
           lambda t: F.interpolate(t, scale_factor=2, mode="bilinear"))
    yield ("up-bicubic x2 ac (16,64,64)",
           linop.Upsample((16, 64, 64), scale_factor=2, mode="bicubic", align_corners=True,
                          dtype=np.float32),
           lambda t: F.interpolate(t, scale_factor=2, mode="bicubic", align_corners=True))
    yield ("up-area 1/2 (16,256,256)",
           linop.Upsample((16, 256, 256), scale_factor=0.5, mode="area", dtype=np.float32),
           lambda t: F.interpolate(t, scale_factor=0.5, mode="area"))
    yield ("up-linear1d x3 (16,8192)",
           linop.Upsample((16, 8192), scale_factor=3, mode="linear", dtype=np.float32),
           lambda t: F.interpolate(t, scale_factor=3, mode="linear"))
    yield ("up-trilinear x2 (4,32,32,32)",
           linop.Upsample((4, 32, 32, 32), scale_factor=2, mode="trilinear", dtype=np.float32),
           lambda t: F.interpolate(t, scale_factor=2, mode="trilinear"))
    yield ("avgpool2d k3 s2 p1 (16,256,256)",
           linop.AvgPool2d((16, 256, 256), 3, stride=2, padding=1, dtype=np.float32),
           lambda t: F.avg_pool2d(t, 3, stride=2, padding=1))
    yield ("avgpool3d k2 (4,64,64,64)",
           linop.AvgPool3d((4, 64, 64, 64), 2, dtype=np.float32),
           lambda t: F.avg_pool3d(t, 2))
    yield ("pad-constant 2 (16,256,256)",
           linop.Pad((16, 256, 256), (2, 2, 2, 2), dtype=np.float32),
           lambda t: F.pad(t, (2, 2, 2, 2)))
    yield ("pad-reflect 3 (16,256,256)",
           linop.Pad((16, 256, 256), (3, 3, 3, 3), "reflect", dtype=np.float32),
           lambda t: F.pad(t, (3, 3, 3, 3), mode="reflect"))
    yield ("pixel-shuffle r2 (64,128,128)",
           linop.PixelShuffle((64, 128, 128), 2, dtype=np.float32),
           lambda t: F.pixel_shuffle(t, 2))


def _time(fns, repeat: int, min_time: float = 0.05):
    """(median, min) seconds per call of each of ``fns``, timed in turn within every
    repeat, so that a busy machine slows all of them alike."""
    for fn in fns:
        fn()  # warm
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time:
                    break
            out.append(elapsed / n)
    return [(statistics.median(t), min(t)) for t in times]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--only", default="", help="comma-separated prefixes of case names")
    parser.add_argument("--tables", action="store_true",
                        help="layer_kernels(op, native=False): the forwards from the 1-D matrices "
                        "too (as on a GPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(TORCH_THREADS)
    prefixes = [p for p in args.only.split(",") if p]
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy "
          f"{np.__version__}; batch {args.batch}; float32; native={not args.tables}; "
          "ms: median (min)")
    header = (f"{'case':34s} {'dir':4s} {'numpy':>15s} {'kernel':>15s} {'torch':>15s} "
              f"{'k/torch':>8s} {'k/numpy':>8s}")
    print(header)
    for name, op, call in _cases():
        if not prefixes or any(name.startswith(p) for p in prefixes):
            _case(name, op, call, args, rng)


def _case(name, op, call, args, rng) -> None:
    """Check, time and print one case."""
    forward, adjoint = layer_kernels(op, native=not args.tables)
    x = rng.standard_normal((args.batch,) + op.input_shape).astype(np.float32)
    y = rng.standard_normal((args.batch,) + op.output_shape).astype(np.float32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    leaf = tx.clone().requires_grad_()
    out = call(leaf)  # torch's backward of its own call, on a graph built once

    def torch_adjoint():
        return torch.autograd.grad(out, leaf, ty, retain_graph=True)[0]

    want_f, want_a = op.apply(x), op.apply_adjoint(y)
    for got, want in ((forward(tx), want_f), (call(tx), want_f), (adjoint(ty), want_a)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)
    exact = np.allclose(torch_adjoint().numpy(), want_a, rtol=1e-4, atol=1e-4)
    rows = (("fwd", lambda: op.apply(x), lambda: forward(tx), lambda: call(tx)),
            ("adj", lambda: op.apply_adjoint(y), lambda: adjoint(ty), torch_adjoint))
    for direction, f_np, f_k, f_t in rows:
        (n_med, n_min), (k_med, k_min), (t_med, t_min) = _time((f_np, f_k, f_t), args.repeat)
        note = "" if direction == "fwd" or exact else "  (torch's backward differs)"
        print(f"{name:34s} {direction:4s} {1e3 * n_med:7.2f} ({1e3 * n_min:6.2f}) "
              f"{1e3 * k_med:7.2f} ({1e3 * k_min:6.2f}) {1e3 * t_med:7.2f} "
              f"({1e3 * t_min:6.2f}) {k_med / t_med:8.2f} {k_med / n_med:8.2f}{note}",
              flush=True)


if __name__ == "__main__":
    main()
