"""Benchmarks of linop.linalg (issue 21: goals S1-S3), side by side with their peers.

Usage::

    python benchmarks/linalg.py [--quick] [--repeat N] [--no-svds] [--json PATH]

For every case, linop's routine against what a user would run instead, on
the same operator in one process: ``scipy.sparse.linalg.svds(A, k=1)``
(ARPACK on the operator, its default tolerance), the power iteration on
``A^H A`` with the operator (stopped when the estimate changes by less
than 1e-6 relative, at most 1000 steps), and NumPy's dense routines where
the dense matrix fits. Times are medians of ``--repeat`` runs (svds and the
power iteration: one run each, they take a minute); ratios are linop /
peer, below 1 linop is faster.

- S1: the exact 2-norm (`opnorm`) and all singular values (`svdvals`) of a
  64 -> 64 channel 3x3 circular ``Conv2d`` on 64x64, float64: opnorm at most
  1/100 of svds' time, agreeing to 1e-12; svdvals at most 2 s.
- S2: `opnorm` of the same layer with zero padding, and of a 3 -> 64
  stride-2 7x7 layer (padding 3) on 224x224: value within 1e-6 of svds,
  ``upper/value - 1 <= 1e-2``, at most 1/5 of svds' time.
- S3: `slogdet` of a 16-channel 3x3 circular ``Conv2d`` on 128x128 in at
  most 0.2 s (and against the dense ``numpy.linalg.slogdet`` on 16x16).
- D: `svdvals`, `inv`, `pinv` against NumPy's dense routines on a size
  where the dense matrix fits (8 channels, 16x16: 2048 x 2048).

``--quick`` runs every case at a smaller size (16 channels on 32x32; 3 -> 16
channels on 64x64 for S2b), for a check that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

import linop  # noqa: E402
from linop import linalg  # noqa: E402


def timed(fn, repeat: int):
    """(median seconds, result of the last run)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def power_iteration(A, rtol=1e-6, maxiter=1000, seed=0):
    x = np.random.default_rng(seed).standard_normal(A.shape[1])
    x /= np.linalg.norm(x)
    value = 0.0
    for it in range(1, maxiter + 1):
        y = A.rmatvec(A.matvec(x))
        new = float(np.sqrt(np.vdot(x, y).real))
        x = y / np.linalg.norm(y)
        if abs(new - value) <= rtol * new:
            return new, it
        value = new
    return value, maxiter


def svds_norm(A):
    return float(spla.svds(A, k=1, return_singular_vectors=False, random_state=0)[0])


def layer(c_out, c_in, k, size, mode, stride=1, seed=0):
    w = np.random.default_rng(seed).standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)
    return linop.Conv2d(w, (c_in, size, size), padding=k // 2, stride=stride, padding_mode=mode)


def warm(A):
    """One application each way: caches that the operator builds on first use."""
    A.rmatvec(A.matvec(np.ones(A.shape[1])))


def norm_case(name, A, repeat, use_svds, exact_goal):
    row = {"case": name, "shape": list(A.shape)}
    warm(A)
    t, result = timed(lambda: linalg.opnorm(A), repeat)
    row.update(linop_s=t, value=result.value, upper=result.upper, exact=result.exact,
               nit=result.nit, gap=result.gap)
    if exact_goal:
        t_all, s = timed(lambda: linalg.svdvals(A), repeat)
        row.update(svdvals_s=t_all, n_values=int(s.size), svdvals_top=float(s[0]))
    if use_svds:
        t_svds, ref = timed(lambda: svds_norm(A), 1)
        row.update(svds_s=t_svds, svds_value=ref, ratio_svds=t / t_svds,
                   rel_diff=abs(result.value - ref) / ref)
    t_pow, (pvalue, pit) = timed(lambda: power_iteration(A), 1)
    row.update(power_s=t_pow, power_value=pvalue, power_it=pit, ratio_power=t / t_pow)
    return row


def dense_case(name, A, repeat):
    M = A.tocsr().toarray()
    warm(A)
    rows = []
    t_l, s = timed(lambda: linalg.svdvals(A), repeat)
    t_d, ref = timed(lambda: np.linalg.svd(M, compute_uv=False), repeat)
    rows.append({"case": f"{name} svdvals", "linop_s": t_l, "dense_s": t_d,
                 "ratio_dense": t_l / t_d, "rel_diff": float(np.abs(s - ref).max() / ref[0])})
    if A.input_shape == A.output_shape:
        t_l, inv = timed(lambda: linalg.inv(A).tocsr().toarray(), repeat)
        t_d, ref = timed(lambda: np.linalg.inv(M), repeat)
        rows.append({"case": f"{name} inv (as a matrix)", "linop_s": t_l, "dense_s": t_d,
                     "ratio_dense": t_l / t_d,
                     "rel_diff": float(np.abs(inv - ref).max() / np.abs(ref).max())})
    t_l, P = timed(lambda: linalg.pinv(A), repeat)
    t_d, ref = timed(lambda: np.linalg.pinv(M), repeat)
    rows.append({"case": f"{name} pinv (operator)", "linop_s": t_l, "dense_s": t_d,
                 "ratio_dense": t_l / t_d,
                 "rel_diff": float(np.abs(P.tocsr().toarray() - ref).max() / np.abs(ref).max())})
    return rows


def slogdet_case(name, A, small, repeat):
    t, (sign, logdet) = timed(lambda: linalg.slogdet(A), repeat)
    M = small.tocsr().toarray()
    t_ls, (s1, l1) = timed(lambda: linalg.slogdet(small), repeat)
    t_d, (s2, l2) = timed(lambda: np.linalg.slogdet(M), repeat)
    return [{"case": name, "linop_s": t, "logabsdet": logdet, "sign": float(sign)},
            {"case": f"{name}, small {small.input_shape}", "linop_s": t_ls, "dense_s": t_d,
             "ratio_dense": t_ls / t_d, "rel_diff": abs(l1 - l2) / abs(l2),
             "sign_equal": bool(s1 == s2)}]


def fmt(x, spec=".3g"):
    return "" if x is None else format(x, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-svds", action="store_true", help="skip svds (a minute per case)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    repeat = 2 if args.quick else args.repeat
    use_svds = not args.no_svds
    c, n, c2, n2 = (16, 32, 16, 64) if args.quick else (64, 64, 64, 224)
    rows = []
    print(f"linop {linop.__version__}, numpy {np.__version__}, threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}", file=sys.stderr)
    rows.append(norm_case(f"S1 opnorm circular {c}->{c} 3x3 {n}^2", layer(c, c, 3, n, "circular"),
                          repeat, use_svds, True))
    rows.append(norm_case(f"S2a opnorm zeros {c}->{c} 3x3 {n}^2", layer(c, c, 3, n, "zeros"),
                          repeat, use_svds, False))
    rows.append(norm_case(f"S2b opnorm zeros 3->{c2} 7x7 s2 {n2}^2",
                          layer(c2, 3, 7, n2, "zeros", stride=2), repeat, use_svds, False))
    size3 = 32 if args.quick else 128
    rows += slogdet_case(f"S3 slogdet circular 16->16 3x3 {size3}^2",
                         layer(16, 16, 3, size3, "circular"), layer(16, 16, 3, 16, "circular"),
                         repeat)
    rows += dense_case("D 8->8 3x3 circular 16^2 stride 1", layer(8, 8, 3, 16, "circular"),
                       repeat)
    rows += dense_case("D 8->4 3x3 circular 16^2 stride 2", layer(4, 8, 3, 16, "circular",
                                                                  stride=2), repeat)

    print()
    print(f"{'case':44} {'linop s':>9} {'svds s':>8} {'l/svds':>8} {'power s':>8} "
          f"{'l/power':>8} {'dense s':>8} {'l/dense':>8} {'rel diff':>9} {'gap':>9} {'nit':>4}")
    for r in rows:
        print(f"{r['case']:44} {fmt(r.get('linop_s')):>9} {fmt(r.get('svds_s')):>8} "
              f"{fmt(r.get('ratio_svds')):>8} {fmt(r.get('power_s')):>8} "
              f"{fmt(r.get('ratio_power')):>8} {fmt(r.get('dense_s')):>8} "
              f"{fmt(r.get('ratio_dense')):>8} {fmt(r.get('rel_diff'), '.1e'):>9} "
              f"{fmt(r.get('gap'), '.1e'):>9} {fmt(r.get('nit'), 'd'):>4}")
        if "svdvals_s" in r:
            print(f"{'  svdvals (all ' + str(r['n_values']) + ' values)':44} "
                  f"{fmt(r['svdvals_s']):>9}")
        if "power_value" in r and "svds_value" in r:
            print(f"{'  power iteration: rel. error, steps':44} "
                  f"{abs(r['power_value'] - r['svds_value']) / r['svds_value']:>9.1e} "
                  f"{r['power_it']:>8d}")

    if not args.quick:
        print("\ngoals:")
        s1, s2a, s2b, s3 = rows[0], rows[1], rows[2], rows[3]
        if use_svds:
            print(f"  S1 opnorm / svds = {s1['ratio_svds']:.4f} (<= 0.01), rel diff "
                  f"{s1['rel_diff']:.1e} (<= 1e-12)")
        print(f"  S1 svdvals = {s1['svdvals_s']:.2f} s (<= 2 s)")
        for r in (s2a, s2b):
            extra = (f"value rel diff {r['rel_diff']:.1e} (<= 1e-6), ratio {r['ratio_svds']:.3f} "
                     f"(<= 0.2), " if use_svds else "")
            print(f"  {r['case'][:3]} {extra}upper/value - 1 = {r['gap']:.1e} (<= 1e-2)")
        print(f"  S3 slogdet = {s3['linop_s']:.3f} s (<= 0.2 s)")
    path = args.json or os.path.join(_ROOT, "benchmarks", "results",
                                     "linalg_quick.json" if args.quick else "linalg.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(rows, f, indent=1, default=float)
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
