"""Time of one forward application against the kernel size, per method and per peer.

For the documentation's plot of the three ways linop applies a convolution:
2-D, one channel, 512x512, float64, ``padding="same"`` (zeros), square kernels
of 3, 5, 7, 9, 15, 21 and 31 taps per side. Timed:

- linop's ``Conv2d(w, (n, n), padding="same", method=m).matvec`` for
  ``m`` = ``"toeplitz"``, ``"im2col"``, ``"fft"`` (chosen explicitly) and
  ``"auto"`` (whatever the cost model takes; the record says which);
- the peers: ``torch.nn.functional.conv2d`` (2 threads), ``scipy.ndimage.correlate``,
  ``scipy.signal.fftconvolve`` and ``scipy.signal.oaconvolve`` (on the reversed
  kernel, "same" mode), as adapted by ``benchmarks/peers.py``. The fftconvolve
  row is ``scipy.signal.correlate(method="fft")``, which SciPy implements as
  ``fftconvolve`` of the reversed kernel.

The steady state is timed: every operator is built and applied once before
(the build is not in the times), then all implementations of one kernel size
are timed in interleaved rounds as in ``benchmarks/run.py`` (median and min of
the per-call times; calls looped up to ``--min-time``). Calls slower than
``--slow`` seconds get at most 3 rounds. Every result is checked against
PyTorch's (or, without torch, linop's "auto") before timing; a mismatch is
reported and left out. ``"toeplitz"`` is skipped where its explicit matrix
would exceed ``--max-matrix-mib`` (at 512^2: from 31x31 on, 2.8 GiB).

Output: ``benchmarks/results/methods.json``, a flat list of records
``{"method_or_peer", "kernel", "seconds_median", "seconds_min"}`` (``kernel``
is the number of taps per side; ``"auto"`` records also carry ``"chosen"``,
the method it took); a table on stdout.

Usage::

    python benchmarks/methods_sweep.py            # a few minutes on 2 cores
    python benchmarks/methods_sweep.py --quick    # 128x128, kernels 3, 9, 31: a check that
                                                  # it runs (writes methods_quick.json)
    python benchmarks/methods_sweep.py --kernels 3,9 --size 256 --out /tmp/m.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import warnings

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

import linop  # noqa: E402
from benchmarks import cases as C  # noqa: E402
from benchmarks import peers as P  # noqa: E402
from benchmarks.run import TOL, compare, fmt_time, time_interleaved  # noqa: E402

METHODS = ("toeplitz", "im2col", "fft", "auto")
#: benchmarks/peers.py's implementation name -> the record's label
PEERS = {"torch.conv2d": "torch", "scipy.ndimage.correlate": "ndimage",
         "scipy.signal.correlate(fft)": "fftconvolve", "scipy.signal.oaconvolve": "oaconvolve"}
KERNELS = (3, 5, 7, 9, 15, 21, 31)


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def implementations(k, n, rng, max_matrix_bytes):
    """[(label, Impl, extra record fields)] for one kernel size, and the skips."""
    w = rng.standard_normal((k, k))
    x = rng.standard_normal((n, n))
    xf = x.ravel()
    spec = C.ConvSpec(w[None, None], (1, n, n), padding_arg="same", bare=True)
    out, skipped = [], []
    for m in METHODS:
        if m == "toeplitz":
            nbytes = C.csr_nbytes(C.conv_nnz(spec), n * n, w.dtype, n * n)
            if nbytes > max_matrix_bytes:
                why = f"explicit matrix {nbytes / 2**20:,.0f} MiB > --max-matrix-mib"
                skipped.append((m, why))
                continue
        try:
            op = linop.Conv2d(w, (n, n), padding="same", method=m)
            op.matvec(xf)  # build whatever the method keeps (outside the timing)
        except (linop.MatrixTooLargeError, MemoryError) as err:
            skipped.append((m, f"{type(err).__name__}: {err}"[:120]))
            continue
        extra = {"chosen": op.method} if m == "auto" else {}
        out.append((m, P.Impl(f"linop {m}", "linop", (lambda o: lambda: o.matvec(xf))(op)),
                    extra))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        impls = P.conv_impls(spec, "forward", x[None],
                             families=("torch", "scipy.ndimage", "scipy.signal"))
    for msg in P.SETUP_ERRORS:
        skipped.append(("peer", msg))
    P.SETUP_ERRORS.clear()
    by_name = {i.name: i for i in impls}
    for name, label in PEERS.items():
        if name in by_name:
            out.append((label, by_name[name], {}))
        else:
            skipped.append((label, "not available"))
    return out, skipped


def sweep(args):
    rng = np.random.default_rng(0)
    records = []
    for k in args.kernels:
        progress(f"[{k}x{k}] {args.size}x{args.size} float64 'same'")
        impls, skipped = implementations(k, args.size, rng, args.max_matrix_mib * 2**20)
        for label, why in skipped:
            progress(f"    {label}: skipped ({why})")
        # Agreement (and the first timing, which sorts the slow calls out).
        results, seconds = {}, {}
        for label, impl, _ in impls:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                results[label] = np.asarray(impl.to_numpy(impl.run())).ravel()
                seconds[label] = time.perf_counter() - t0
        ref = results.get("torch", results.get("auto"))
        good = []
        for label, impl, extra in impls:
            _, rel, agree, _ = compare(ref, results[label], np.dtype(np.float64))
            if not agree:
                progress(f"    {label}: MISMATCH (relative max|diff| {rel:.1e} > "
                         f"{TOL[np.dtype(np.float64)]:g}): left out")
                continue
            good.append((label, impl, extra))
        del results, ref
        gc.collect()
        fast = [g for g in good if seconds[g[0]] <= args.slow]
        slow = [g for g in good if seconds[g[0]] > args.slow]
        stats = {}
        for group, repeat in ((fast, args.repeat), (slow, min(args.repeat, 3))):
            if not group:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                st = time_interleaved([i for _, i, _ in group], repeat, args.min_time)
            stats.update({label: s for (label, _, _), s in zip(group, st)})
        for label, _, extra in good:
            s = stats[label]
            rec = {"method_or_peer": label, "kernel": k, "seconds_median": s["median"],
                   "seconds_min": s["min"]}
            rec.update(extra)
            records.append(rec)
            chosen = f" (took {extra['chosen']})" if extra else ""
            progress(f"    {label:12s} {fmt_time(s['median']):>11s}  min "
                     f"{fmt_time(s['min']):>11s}{chosen}")
        del impls, good, fast, slow
        gc.collect()
    return records


def table(records, kernels):
    labels = list(METHODS) + list(PEERS.values())
    cell = {(r["method_or_peer"], r["kernel"]): r["seconds_median"] for r in records}
    lines = ["median seconds per forward application"
             + (" (auto took: " + ", ".join(f"{r['kernel']}: {r['chosen']}" for r in records
                                            if "chosen" in r) + ")"),
             f"{'kernel':12s}" + "".join(f"{k:>11d}" for k in kernels)]
    for label in labels:
        lines.append(f"{label:12s}" + "".join(f"{fmt_time(cell.get((label, k))):>11s}"
                                              for k in kernels))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="128x128, kernels 3, 9, 31, 2 repeats: a check that it runs "
                         "(output: benchmarks/results/methods_quick.json)")
    ap.add_argument("--size", type=int, default=None, help="input size per side (default 512)")
    ap.add_argument("--kernels", default=None,
                    help="comma-separated taps per side (default 3,5,7,9,15,21,31)")
    ap.add_argument("--repeat", type=int, default=None, help="rounds (default 5, --quick 2)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds per timed call; fast calls are looped (default 0.1, "
                         "--quick 0.02)")
    ap.add_argument("--slow", type=float, default=1.0,
                    help="calls slower than this (seconds) get at most 3 rounds")
    ap.add_argument("--max-matrix-mib", type=float, default=2048,
                    help="skip 'toeplitz' where its explicit matrix exceeds this")
    ap.add_argument("--out", default=None,
                    help="JSON output (default benchmarks/results/methods.json, --quick: "
                         "methods_quick.json)")
    args = ap.parse_args(argv)
    args.size = args.size or (128 if args.quick else 512)
    args.kernels = (tuple(int(v) for v in args.kernels.split(",")) if args.kernels
                    else (3, 9, 31) if args.quick else KERNELS)
    args.repeat = args.repeat or (2 if args.quick else 5)
    args.min_time = args.min_time if args.min_time is not None else (
        0.02 if args.quick else 0.1)
    args.out = args.out or os.path.join(_ROOT, "benchmarks", "results",
                                        "methods_quick.json" if args.quick else "methods.json")
    progress(f"linop {linop.__version__}; peers {P.available()}; torch threads "
             f"{P.torch_threads()}; loadavg {os.getloadavg()}")
    t0 = time.perf_counter()
    records = sweep(args)
    print(table(records, args.kernels))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(records, f, indent=1)
    progress(f"wrote {args.out} ({len(records)} records, {time.perf_counter() - t0:.0f} s; "
             f"loadavg {os.getloadavg()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
