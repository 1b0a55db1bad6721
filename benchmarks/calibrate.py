"""Measure the constants of linop's cost model (``linop._conv.plan.COSTS``).

Every method is timed on a grid of geometries (one to 64 channels, kernels
from 1 to 31 taps per axis, 1-D to 3-D, float32/float64/complex, strides
and padding modes): the steady forward and adjoint applications (medians)
and what the first applications build. The cost model writes each method's
time as a sum of units of work times constants (`linop._conv.plan.work`);
the constants are fitted by non-negative least squares on *relative*
errors, so small and large cases count alike. The script prints the fitted
table, ready to paste into ``linop/_conv/plan.py``, and, per geometry, the
measured and predicted times and whether "auto" with the fitted constants
picks the fastest method.

Run it on an otherwise idle machine::

    python benchmarks/calibrate.py            # about 5 minutes on 2 cores
    python benchmarks/calibrate.py --quick    # a smaller grid
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import time

import numpy as np
from scipy.optimize import nnls

import linop
from linop._conv import plan as P

#: Skip a method on a geometry when one application is predicted above this (seconds).
SLOW = 1.5


def _grid(quick: bool):
    """(name, class, weight shape, input shape, kwargs, dtype) of the calibration cases."""
    cases = []
    sizes = (128, 512) if quick else (128, 256, 512, 1024)
    for n, k, mode in itertools.product(sizes, (3, 5, 9, 15), ("zeros", "reflect")):
        if quick and k == 15:
            continue
        cases.append((f"2d {n}^2 {k}x{k} {mode}", linop.Conv2d, (1, 1, k, k), (1, n, n),
                      dict(padding="same", padding_mode=mode), np.float64))
    for n, k in itertools.product((256, 512), (3, 7, 31)):
        cases.append((f"2d {n}^2 {k}x{k} f32", linop.Conv2d, (1, 1, k, k), (1, n, n),
                      dict(padding=k // 2), np.float32))
    for c_in, c_out, n, k in [(4, 8, 128, 3), (16, 32, 128, 3), (16, 32, 64, 5), (64, 64, 64, 1),
                              (64, 64, 32, 3), (3, 8, 256, 7), (8, 16, 64, 9), (2, 2, 256, 15)]:
        cases.append((f"2d {c_in}->{c_out} {n}^2 {k}x{k}", linop.Conv2d, (c_out, c_in, k, k),
                      (c_in, n, n), dict(padding=k // 2), np.float32))
    cases.append(("2d 3->8 256^2 7x7 s2", linop.Conv2d, (8, 3, 7, 7), (3, 256, 256),
                  dict(padding=3, stride=2), np.float32))
    cases.append(("2d dw32 128^2 3x3", linop.Conv2d, (32, 1, 3, 3), (32, 128, 128),
                  dict(padding=1, groups=32), np.float32))
    for n, k in itertools.product((10**4, 10**5) if quick else (10**4, 10**5, 10**6),
                                  (3, 31, 255)):
        cases.append((f"1d {n} {k}", linop.Conv1d, (1, 1, k), (1, n), dict(padding="same"),
                      np.float64))
    for n, k in [(32, 3), (32, 7), (64, 3), (64, 7)]:
        cases.append((f"3d {n}^3 {k}^3", linop.Conv3d, (1, 1, k, k, k), (1, n, n, n),
                      dict(padding=k // 2), np.float32))
    cases.append(("3d 8->16 32^3 3^3", linop.Conv3d, (16, 8, 3, 3, 3), (8, 32, 32, 32),
                  dict(padding=1), np.float32))
    for n, k in [(256, 3), (256, 9)]:
        cases.append((f"2d {n}^2 {k}x{k} c128", linop.Conv2d, (1, 1, k, k), (1, n, n),
                      dict(padding="same"), np.complex128))
    return cases


def _median_time(f, repeat):
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _random(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def measure(case, repeat, rng):
    """Measured (build, apply) per method, and the work the model assigns to each."""
    _, cls, wshape, shape, kwargs, dtype = case
    w = _random(rng, wshape, dtype)
    x = _random(rng, shape, dtype)
    probe = cls(w, shape, method="im2col", **kwargs)
    works = {wk.method: wk for wk in P.work(probe.definition.weight, probe.geometry,
                                            probe.groups)}
    y = _random(rng, probe.output_shape, dtype)
    results = {}
    for method, wk in works.items():
        predicted = wk.estimate()
        if predicted.apply > SLOW or predicted.memory > 2**31:
            continue
        gc.collect()
        t0 = time.perf_counter()
        op = cls(w, shape, method=method, **kwargs)
        op.apply(x)
        op.apply_adjoint(y)
        first = time.perf_counter() - t0
        forward = _median_time(functools.partial(op.apply, x), repeat)
        adjoint = _median_time(functools.partial(op.apply_adjoint, y), repeat)
        apply = (forward + adjoint) / 2
        results[method] = (max(first - 2 * apply, 0.0), apply)
        del op
    return works, results


def fit(rows):
    """NNLS on relative errors: rows of (units dict, measured seconds)."""
    names = list(P.COSTS)
    a = np.array([[units.get(n, 0.0) / t for n in names] for units, t in rows])
    b = np.ones(len(rows))
    scale = np.maximum(a.max(axis=0), 1e-30)
    solution, _ = nnls(a / scale, b)
    costs = dict(zip(names, solution / scale))
    for n in names:  # a constant no row exercises keeps its value
        if not a[:, names.index(n)].any():
            costs[n] = P.COSTS[n]
    return costs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per median")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    measured = []
    for case in _grid(args.quick):
        works, results = measure(case, args.repeat, rng)
        measured.append((case[0], works, results))
        print(f"{case[0]:<28}" + "  ".join(
            f"{m} build {b * 1e3:8.2f} ms apply {a * 1e3:8.2f} ms" for m, (b, a) in
            results.items()), flush=True)
    rows = []
    for _, works, results in measured:
        for method, (build, apply) in results.items():
            rows.append((works[method].apply, apply))
            if works[method].build and build > 1e-4:
                rows.append((works[method].build, build))
    costs = fit(rows)
    print("\nCOSTS = {")
    for name, value in costs.items():
        print(f'    "{name}": {value:.3g},')
    print("}\n")
    right = 0
    for name, works, results in measured:
        if len(results) < 2:
            continue
        expected = {m: b + P.APPLICATIONS * a for m, (b, a) in results.items()}
        best = min(expected, key=expected.get)
        predicted = {m: works[m].estimate(costs) for m in results}
        eligible = {m: e for m, e in predicted.items() if works[m].eligible}
        pick = min(eligible, key=lambda m: eligible[m].expected()) if eligible else best
        right += pick == best or expected[pick] <= 1.25 * expected[best]
        print(f"{name:<28} best {best:<8} auto {pick:<8} " + "  ".join(
            f"{m} {results[m][1] * 1e3:.2f}/{predicted[m].apply * 1e3:.2f} ms"
            for m in results))
    total = sum(len(r) >= 2 for _, _, r in measured)
    print(f"\nauto within 25% of the best expected time on {right} of {total} geometries")


if __name__ == "__main__":
    main()
