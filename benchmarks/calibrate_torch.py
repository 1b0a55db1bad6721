"""Measure the constants of the torch engine's cost model (``linop._conv.plan.TORCH_COSTS``).

The torch engine (``engine="torch"``, ``method="im2col"``: PyTorch's own
convolutions on NumPy inputs wrapped without copies) is timed on the grid of
``benchmarks/calibrate.py`` (forward and adjoint, minimums of several runs), with torch at 2
threads, and so is the NumPy engine with the method its "auto" picks. The
constants are fitted by non-negative least squares on relative errors; the
script prints the table, ready to paste into ``linop/_conv/plan.py``, and
per geometry the two engines' measured times, the predicted ones, and
whether ``engine="auto"`` (with the fitted constants) takes the faster
engine.

On a shared machine, torch's threads wait for each other whenever another
process holds a core (a scheduler time slice, milliseconds, per parallel
region): calibrate there with ``--threads 1``. Run it on an otherwise idle
machine::

    python benchmarks/calibrate_torch.py            # about 4 minutes on 2 cores
    python benchmarks/calibrate_torch.py --quick
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np
import torch
from scipy.optimize import nnls

_HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (_HERE, os.path.dirname(_HERE)):  # benchmarks/ and the repository's linop
    if _path not in sys.path:
        sys.path.insert(0, _path)

from calibrate import _grid, _random  # noqa: E402

from linop._conv import plan as P  # noqa: E402

#: Skip an engine on a geometry when one application is predicted above this (seconds).
SLOW = 1.5


def _min_time(f, repeat, budget=1.0):
    """The fastest of ``repeat`` runs (fewer, at least 3, past ``budget`` seconds): torch's
    threads wait on each other when the machine is shared, and the minimum is what the
    kernel costs."""
    f()
    times = []
    start = time.perf_counter()
    while len(times) < repeat and (len(times) < 3 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def _apply_time(op, x, y, repeat):
    forward = _min_time(functools.partial(op.apply, x), repeat)
    adjoint = _min_time(functools.partial(op.apply_adjoint, y), repeat)
    return (forward + adjoint) / 2


def measure(case, repeat, rng):
    """The torch engine's work and time, and the NumPy engine's auto method and time."""
    _, cls, wshape, shape, kwargs, dtype = case
    w = _random(rng, wshape, dtype)
    x = _random(rng, shape, dtype)
    numpy_op = cls(w, shape, engine="numpy", **kwargs)
    y = _random(rng, numpy_op.output_shape, dtype)
    torch_work = P.torch_work(numpy_op.definition.weight, numpy_op.geometry, numpy_op.groups)[0]
    numpy_estimate = numpy_op.plan[numpy_op.method]
    numpy_time = None
    if numpy_estimate.apply < SLOW:
        numpy_op.apply(x)  # the first application builds what the method caches
        numpy_time = _apply_time(numpy_op, x, y, repeat)
    torch_time = None
    if torch_work.estimate().apply < SLOW:
        torch_op = cls(w, shape, engine="torch", method="im2col", **kwargs)
        torch_time = _apply_time(torch_op, x, y, repeat)
    return numpy_op, numpy_estimate, numpy_time, torch_work, torch_time


def fit(rows):
    """NNLS on relative errors: rows of (units dict, measured seconds)."""
    names = [n for n in P.TORCH_COSTS if not n.startswith("csr")]
    a = np.array([[units.get(n, 0.0) / t for n in names] for units, t in rows])
    b = np.ones(len(rows))
    scale = np.maximum(a.max(axis=0), 1e-30)
    solution, _ = nnls(a / scale, b)
    costs = dict(P.TORCH_COSTS)
    costs.update(zip(names, solution / scale))
    for n in names:  # a constant no row exercises keeps its value
        if not a[:, names.index(n)].any():
            costs[n] = P.TORCH_COSTS[n]
    return costs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--repeat", type=int, default=25, help="timed runs per minimum")
    parser.add_argument("--threads", type=int, default=2, help="torch's threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    measured = []
    for case in _grid(args.quick):
        for dtype in ((case[5], np.float64) if case[5] == np.float32 else (case[5],)):
            case_d = case[:5] + (dtype,)
            name = f"{case[0]} {np.dtype(dtype).name}"
            numpy_op, numpy_est, numpy_t, work, torch_t = measure(case_d, args.repeat, rng)
            measured.append((name, numpy_op.method, numpy_est, numpy_t, work, torch_t))
            print(f"{name:<36} numpy {numpy_op.method:<8} "
                  f"{'-' if numpy_t is None else f'{numpy_t * 1e3:8.2f} ms'}  torch "
                  f"{'-' if torch_t is None else f'{torch_t * 1e3:8.2f} ms'}", flush=True)
    costs = fit([(w.apply, t) for *_, w, t in measured if t is not None])
    print("\nTORCH_COSTS = {")
    for name, value in costs.items():
        print(f'    "{name}": {value:.3g},')
    print("}\n")
    right = total = 0
    for name, _, numpy_est, numpy_t, work, torch_t in measured:
        if numpy_t is None or torch_t is None:
            continue
        total += 1
        predicted = work.estimate(costs)
        pick = "torch" if predicted.expected() < numpy_est.expected() else "numpy"
        best = "torch" if torch_t < numpy_t else "numpy"
        chosen = torch_t if pick == "torch" else numpy_t
        right += pick == best or chosen <= 1.25 * min(torch_t, numpy_t)
        print(f"{name:<36} best {best:<6} auto {pick:<6} numpy {numpy_t * 1e3:8.2f}/"
              f"{numpy_est.apply * 1e3:8.2f} ms  torch {torch_t * 1e3:8.2f}/"
              f"{predicted.apply * 1e3:8.2f} ms")
    print(f"\nengine='auto' within 25% of the faster engine on {right} of {total} geometries")


if __name__ == "__main__":
    main()
