"""Measure the constants of the layer operators' cost model (``linop._layer_costs.LAYER_COSTS``).

Every family of layer operator (Upsample by mode, AvgPool, Pad by mode, the
pixel shuffles) is timed on a grid of float32 shapes (1 to 64 planes, 1-D to
3-D where the family has them) with ``engine="numpy"`` and ``engine="torch"``:
the minimum over ``--repeat`` rounds of one ``matvec`` plus one ``rmatvec``,
and over ``--passes`` passes over the whole grid (the speed of a shared machine
drifts over seconds), each engine in a block of its own (NumPy's and torch's threads both spin
after a call and slow the other one down). The constants are fitted per
family and engine by non-negative least squares on relative errors
(`linop._layer_costs` gives the units of work). The script prints the table,
ready to paste into ``linop/_layer_costs.py``, then per shape the measured
and predicted times and the engine that ``engine="auto"`` takes with the
fitted constants.

Run it on an otherwise idle machine::

    python benchmarks/calibrate_layers.py             # about 1 minute on 2 cores
    python benchmarks/calibrate_layers.py --only upsample-nearest,avgpool
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from scipy.optimize import nnls

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # the linop of this checkout
    sys.path.insert(0, _ROOT)

import linop  # noqa: E402
from linop import _layer_costs as L  # noqa: E402
from linop._conv.plan import APPLICATIONS, torch_gains  # noqa: E402

F32 = np.float32
#: (planes, spatial size) of the 2-D grid: small to 4 M entries in and out.
GRID_2D = ((1, (64, 64)), (1, (256, 256)), (1, (512, 512)), (4, (128, 128)), (3, (32, 32)),
           (16, (64, 64)), (16, (128, 128)), (16, (256, 256)), (64, (32, 32)), (64, (64, 64)))
GRID_1D = ((1, (8192,)), (1, (65536,)), (16, (8192,)), (64, (1024,)))
GRID_3D = ((1, (32, 32, 32)), (4, (32, 32, 32)), (16, (16, 16, 16)), (8, (8, 8, 8)))


def _upsample(mode, grid, **kw):
    for planes, size in grid:
        yield (f"upsample-{mode}", (planes,) + size,
               lambda shape, engine, mode=mode, kw=kw: linop.Upsample(
                   shape, mode=mode, dtype=F32, engine=engine, **({"scale_factor": 2} | kw)))


def _pool(grid, k, s, p):
    cls = {1: linop.AvgPool1d, 2: linop.AvgPool2d, 3: linop.AvgPool3d}
    for planes, size in grid:
        d = len(size)
        yield ("avgpool" if k == s else "avgpool-strided", (planes,) + size,
               lambda shape, engine, d=d: cls[d](shape, k, s, p, dtype=F32, engine=engine))


def _cases():
    """(family, input shape, build(shape, engine=...)) of the calibration grid."""
    for mode in ("nearest", "nearest-exact", "bilinear", "bicubic", "area"):
        kw = {"size": None, "scale_factor": 0.5} if mode == "area" else {}
        yield from _upsample(mode, GRID_2D, **kw)
    yield from _upsample("nearest", GRID_1D)
    yield from _upsample("nearest", GRID_3D)
    yield from _upsample("linear", GRID_1D)
    yield from _upsample("trilinear", GRID_3D)
    for k, s, p in ((2, 2, 0), (4, 4, 0), (3, 2, 1), (3, 1, 1)):
        yield from _pool(GRID_2D, k, s, p)
    yield from _pool(GRID_1D, 4, 2, 1)
    yield from _pool(GRID_1D, 4, 4, 0)
    yield from _pool(GRID_3D, 2, 2, 0)
    yield from _pool(GRID_3D, 3, 2, 1)
    for mode in ("constant", "reflect", "replicate", "circular"):
        for width in (1, 3):
            for planes, size in GRID_2D:
                yield (f"pad-{mode}", (planes,) + size,
                       lambda shape, engine, mode=mode, width=width: linop.Pad(
                           shape, (width,) * 4, mode=mode, dtype=F32, engine=engine))
    for planes, size in GRID_2D:
        yield ("pixel_shuffle", (4 * planes,) + size,
               lambda shape, engine: linop.PixelShuffle(shape, 2, dtype=F32, engine=engine))
        yield ("pixel_unshuffle", (planes,) + size,
               lambda shape, engine: linop.PixelUnshuffle(shape, 2, dtype=F32, engine=engine))


def _min_pair_time(op, x, y, repeat: int) -> float:
    """The fastest of ``repeat`` rounds of ``op.matvec(x)`` plus ``op.rmatvec(y)``."""
    op.matvec(x)
    op.rmatvec(y)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        op.matvec(x)
        op.rmatvec(y)
        best = min(best, time.perf_counter() - t0)
    return best


def measure(build, shape, repeat: int, rng) -> dict:
    ops = {engine: build(shape, engine=engine) for engine in ("numpy", "torch")}
    x = rng.standard_normal(ops["numpy"].shape[1]).astype(F32)
    y = rng.standard_normal(ops["numpy"].shape[0]).astype(F32)
    ref = ops["numpy"].matvec(x)
    got = ops["torch"].matvec(x)
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max()), shape
    times = {engine: _min_pair_time(op, x, y, repeat) for engine, op in ops.items()}
    return {"op": ops["numpy"], "times": times}


def _features(op, engine: str, threads: int) -> np.ndarray:
    u = L.work(op)
    if engine == "numpy":
        return np.array([1.0, u["entries"], u["separable"]])
    return np.array([1.0, u["entries"], u["windows"],
                     u["entries"] / min(max(1, threads), u["planes"])])


def fit(rows, engine: str, threads: int) -> tuple[float, ...]:
    """Constants minimising the relative errors of ``engine``'s times (non-negative)."""
    A = np.array([_features(r["op"], engine, threads) / r["times"][engine] for r in rows])
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls(A / scale, np.ones(len(rows)))
    return tuple(float(f"{v:.3g}") for v in c / scale)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds per minimum")
    parser.add_argument("--threads", type=int, default=2, help="torch's threads")
    parser.add_argument("--only", default="", help="comma-separated families")
    parser.add_argument("--passes", type=int, default=3,
                        help="passes over the grid (each shape keeps its fastest pass)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    only = set(filter(None, args.only.split(",")))
    rng = np.random.default_rng(0)
    rows = {}
    for _ in range(args.passes):  # the machine's speed drifts over seconds: each pass sees some
        for i, (family, shape, build) in enumerate(_cases()):
            if only and family not in only:
                continue
            row = measure(build, shape, args.repeat, rng)
            best = rows.setdefault(family, {}).setdefault(i, row)
            for engine, t in row["times"].items():
                best["times"][engine] = min(best["times"][engine], t)
    rows = {family: list(by_index.values()) for family, by_index in rows.items()}
    table = {f: {"numpy": fit(r, "numpy", args.threads), "torch": fit(r, "torch", args.threads)}
             for f, r in rows.items()}
    print("LAYER_COSTS = {")
    for family, constants in table.items():
        print(f'    "{family}": {{"numpy": {constants["numpy"]!r}, '
              f'"torch": {constants["torch"]!r}}},')
    print("}\n")
    L.LAYER_COSTS.update(table)
    right = total = 0
    for family, family_rows in rows.items():
        for r in family_rows:
            op, t = r["op"], r["times"]
            predicted = L.expected_times(op, threads=args.threads)
            faster = "torch" if t["torch"] < t["numpy"] else "numpy"
            auto = "torch" if torch_gains(APPLICATIONS * predicted["numpy"],
                                          APPLICATIONS * predicted["torch"]) else "numpy"
            # "auto" is right when it takes the faster engine, or stays on NumPy where torch
            # would not have gained what torch_gains asks for
            ok = auto == faster or (auto == "numpy" and not torch_gains(
                APPLICATIONS * t["numpy"], APPLICATIONS * t["torch"]))
            right += ok
            total += 1
            print(f"{family:22s} {op.input_shape!s:22s} numpy {t['numpy'] * 1e3:8.3f} "
                  f"({predicted['numpy'] * 1e3:8.3f}) ms  torch {t['torch'] * 1e3:8.3f} "
                  f"({predicted['torch'] * 1e3:8.3f}) ms  faster {faster:5s} auto {auto:5s}"
                  f"{'' if ok else '  MISS'}")
    print(f"\nengine='auto' right on {right} of {total} shapes (the faster engine, or NumPy "
          "where torch would gain less than torch_gains asks)")


if __name__ == "__main__":
    main()
