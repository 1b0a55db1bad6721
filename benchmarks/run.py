"""linop benchmark suite: linop against every installed peer, in one process.

Usage::

    python benchmarks/run.py [--quick] [--only P1,P2,...] [--repeat N] [--json PATH]
                             [--txt PATH] [--min-time S] [--list]

Runs the goals of issue 6 (P1-P5, scaling), the application-plan goals of
issue 15 (AP1-AP6: method="auto" against the best peer, steady and first
result, peak memory), a wider set of cases (1-D/2-D/3-D, strides, dilation,
groups, padding modes, float32/float64, transposed convolutions, Upsample,
explicit matrices; AvgPool, ConvFilter and a fused product of issue 16) and
the large-scale smoke runs of issue 9, then prints one table of times and
ratios and a goal summary with a PASS/FAIL column. Results go to a JSON file
as well. See benchmarks/README.md; the sweep over kernel sizes for the
documentation is ``benchmarks/methods_sweep.py``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import linop  # noqa: E402
from benchmarks import cases as C  # noqa: E402
from benchmarks import memory as M  # noqa: E402
from benchmarks import peers as P  # noqa: E402

MiB = 2.0**20
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


# -- output -------------------------------------------------------------------------------

class Report:
    """Collects the final report's lines; progress goes to stderr as it happens."""

    def __init__(self):
        self.lines = []

    def add(self, line=""):
        self.lines.append(line)

    def text(self):
        return "\n".join(self.lines) + "\n"


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt_time(t):
    if t is None or not np.isfinite(t):
        return "-"
    if t >= 1:
        return f"{t:.3f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3f} ms"
    return f"{t * 1e6:.1f} us"


def fmt_mib(b):
    return "-" if b is None else f"{b / MiB:,.1f} MiB"


# -- timing -------------------------------------------------------------------------------

def calibrate(run, min_time):
    """Calls per repeat so that one repeat lasts at least ``min_time`` (like timeit)."""
    t0 = time.perf_counter()
    run()
    t = time.perf_counter() - t0
    if t >= min_time:
        return 1
    return int(min(1000, math.ceil(min_time / max(t, 1e-7))))


def time_interleaved(impls, repeat, min_time):
    """Median and min per implementation, measured in interleaved rounds.

    Every round times each implementation once (in a rotating order), so that
    load from other processes on a shared machine hits all of them alike.
    Each implementation has been run at least once already (the agreement
    check), and is run once more here to calibrate; both are warm-ups.
    """
    numbers = [calibrate(i.run, min_time) for i in impls]
    times = [[] for _ in impls]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeat):
            k = len(impls)
            for j in range(k):
                i = (j + r) % k
                run, number = impls[i].run, numbers[i]
                t0 = time.perf_counter()
                for _ in range(number):
                    run()
                times[i].append((time.perf_counter() - t0) / number)
            gc.collect()
    finally:
        if enabled:
            gc.enable()
    return [
        {"median": statistics.median(ts), "min": min(ts), "number": n, "times": ts}
        for ts, n in zip(times, numbers)
    ]


# -- agreement ----------------------------------------------------------------------------

def compare(ref, got, dtype):
    """(max abs diff, relative diff, agree, identical) of a peer's result against linop's."""
    tol = TOL.get(np.dtype(dtype).base if hasattr(dtype, "base") else dtype, 1e-9)
    if sp.issparse(ref):
        got = sp.csr_array(got)
        if got.shape != ref.shape:
            return math.inf, math.inf, False, False
        diff = abs(ref - got)
        maxdiff = float(diff.max()) if diff.nnz else 0.0
        scale = float(abs(ref).max()) if ref.nnz else 1.0
        a, b = ref.copy(), got.copy()
        for m in (a, b):
            m.sum_duplicates()
            m.sort_indices()
        identical = (
            a.nnz == b.nnz and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)
        )
        rel = maxdiff / scale if scale else maxdiff
        return maxdiff, rel, rel <= tol, identical
    ref = np.asarray(ref).ravel()
    got = np.asarray(got).ravel()
    if ref.size != got.size:
        return math.inf, math.inf, False, False
    maxdiff = float(np.abs(ref - got).max())
    scale = float(np.abs(ref).max()) or 1.0
    rel = maxdiff / scale
    return maxdiff, rel, rel <= tol, maxdiff == 0.0


def check_impls(case, op_name, impls):
    """Run every implementation once, compare with linop's (the first) result.

    The call is timed (``first_call``: in this process, after whatever ran
    before); peers capped ``once`` by the case, or slower than its
    ``once_after``, are timed by this call alone (``once``).
    """
    results, seconds = [], []
    for impl in impls:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                r = impl.run()
                seconds.append(time.perf_counter() - t0)
                results.append(impl.to_numpy(r))
                del r
        except Exception as err:  # noqa: BLE001
            seconds.append(None)
            results.append(err)
    ref = results[0]
    if isinstance(ref, Exception):
        raise ref
    rows, good = [], []
    for impl, res, t in zip(impls, results, seconds):
        row = {"name": impl.name, "family": impl.family, "note": impl.note, "first_call": t}
        if isinstance(res, Exception):
            row.update(error=repr(res)[:200], agree=False)
        elif impl is impls[0]:
            row.update(agree=True)
        elif op_name in ("build", "build_adjoint"):
            row.update(agree=True)
        else:
            d, rel, agree, ident = compare(ref, res, case.spec.dtype)
            row.update(max_abs_diff=d, rel_diff=rel, agree=agree, identical=ident)
        if "error" not in row and impl is not impls[0]:
            cap = case.cap(impl)
            if cap is not None and cap[0] == "check":
                row["check_only"] = cap[1]
            elif cap is not None and cap[0] == "once":
                row["once"] = cap[1]
            elif case.once_after is not None and t > case.once_after:
                row["once"] = f"{fmt_time(t)} per call: timed once"
        rows.append(row)
        if "error" not in row and "check_only" not in row:
            good.append((impl, row))
    del results, ref
    gc.collect()
    return rows, good


# -- one case -------------------------------------------------------------------------------

def run_case(case, args):
    progress(f"[{case.id}] {case.describe()}")
    out = {"id": case.id, "title": case.describe(), "group": case.group, "kind": case.kind,
           "ops": []}
    try:
        op = case.make_linop()
    except NotImplementedError as err:  # an operator still being written
        out["skipped"] = f"{type(err).__name__}: {err}"[:200]
        progress(f"    SKIPPED ({out['skipped']})")
        return out
    x, y = case.inputs()
    out.update(operator=repr(op), method=getattr(op, "method", None),
               dtype=str(np.dtype(case.spec.dtype)))
    plan = getattr(op, "plan", None)
    if plan is not None:
        out["plan"] = str(plan)
    if case.kind in ("conv", "conv_transpose", "explicit"):
        out["nnz"] = C.conv_nnz(case.spec)
    prepared = []  # (op name, rows, [(impl, row)] that ran)
    for op_name in case.ops:
        skipped = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            impls = [case.linop_impl(op_name, op, x, y)]
            try:
                for impl in case.peer_impls(op_name, x, y, op=op):
                    cap = case.cap(impl)
                    if cap is not None and cap[0] == "skip":
                        skipped.append({"name": impl.name, "family": impl.family,
                                        "skipped": cap[1]})
                    else:
                        impls.append(impl)
            except Exception as err:  # noqa: BLE001 - a broken peer must not stop the run
                progress(f"    peer setup failed: {err!r}")
        for msg in P.SETUP_ERRORS:
            progress(f"    peer skipped: {msg}")
            out.setdefault("peer_setup_errors", []).append(msg)
        P.SETUP_ERRORS.clear()
        rows, good = check_impls(case, op_name, impls)
        prepared.append((op_name, rows + skipped, good))
    # Time: per operation, or all operations of the case in one interleaved set
    # (P3: the build is compared with the matvec measured alongside it). Peers
    # timed once keep their agreement call's time.
    repeat = args.repeat if case.max_repeat is None else min(args.repeat, case.max_repeat)
    groups = [[p] for p in prepared] if not case.joint else [prepared]
    for group in groups:
        flat = [g for _, _, good in group for g in good if "once" not in g[1]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = time_interleaved([i for i, _ in flat], repeat, args.min_time)
        for (_, row), st in zip(flat, stats):
            row.update(st)
        for _, row in (g for _, _, good in group for g in good if "once" in g[1]):
            t = row["first_call"]
            row.update(median=t, min=t, number=1, times=[t])
    for op_name, rows, _ in prepared:
        lin = rows[0]
        for row in rows:
            if "median" in row:
                row["ratio"] = lin["median"] / row["median"]
                row["ratio_min"] = lin["min"] / row["min"]
        out["ops"].append({"op": op_name, "rows": rows})
        for row in rows:
            if "skipped" in row:
                progress(f"    {op_name:13s} {row['name']:48s} skipped: {row['skipped']}")
                continue
            if "check_only" in row:
                progress(f"    {op_name:13s} {row['name']:48s} rel. diff "
                         f"{row.get('rel_diff', float('nan')):.1e}"
                         + ("" if row.get("agree") else "  MISMATCH"))
                continue
            progress(f"    {op_name:13s} {row['name']:48s} {fmt_time(row.get('median')):>11s}"
                     f"  ratio {row.get('ratio', float('nan')):6.2f}"
                     + ("  (once)" if "once" in row else "")
                     + ("" if row.get("agree", True) else "  MISMATCH/ERROR"))
    if case.kind == "product":
        out["fusion"] = fusion_summary(out)
    release = getattr(case.spec, "release", None)
    if release is not None:
        release()
    del op, x, y
    gc.collect()
    return out


def fusion_summary(res):
    """Build of the product's matrix vs the time saved per application by fusing."""
    def best(op_name, family):
        rows = [r for r in (_op(res, op_name) or []) if r["family"] == family and "median" in r]
        return min((r["median"] for r in rows), default=None)

    out = {"tocsr": best("tocsr", "linop")}
    for op_name in ("matvec", "rmatvec"):
        fused = min(v for v in (best(op_name, "linop"), best(op_name, "linop-fused"))
                    if v is not None)
        factors = best(op_name, "linop-factors")
        gain = None if factors is None else factors - fused
        out[op_name] = {"fused": fused, "factors": factors, "saved_per_call": gain,
                        "break_even_calls": (out["tocsr"] / gain if gain and gain > 0
                                             and out["tocsr"] else None)}
    return out


#: Peers whose first result is measured in fresh processes (the fastest in steady state).
FRESH_PEERS = 3


def plan_fresh(case, res, args):
    """Issue 15, in fresh processes: linop's first result and peak memory; the peers'."""
    spec = case.spec
    w_shape = spec.kernel_size if spec.bare else spec.weight.shape
    in_shape = spec.spatial_in if spec.bare else spec.input_shape
    kwargs = dict(padding=spec.padding_arg, stride=list(spec.stride), method=spec.method)
    if spec.padding_mode != "zeros":
        kwargs["padding_mode"] = spec.padding_mode
    job = dict(id=f"{case.id}-first", op="conv", weight_shape=list(w_shape),
               input_shape=list(in_shape), bare=spec.bare, dtype=str(spec.dtype),
               kwargs=kwargs)
    runs = 3
    progress(f"[{case.id}] first result and peak memory in fresh processes ({runs} runs)")
    lin = M.first_result(job, runs=runs, timeout=args.timeout)
    peers_first = []
    rows = [r for r in (_op(res, "matvec") or [])[1:] if r.get("agree") and "median" in r]
    if rows:
        fastest = min(r["median"] for r in rows)
        # A first call is never faster than a steady one (it pays for new pages,
        # lazy set-up, a peer's own construction): only the peers fastest in
        # steady state can have the fastest first result. The three fastest
        # within 8x of the fastest are measured again.
        for r in sorted(rows, key=lambda r: r["median"])[:FRESH_PEERS]:
            if r["median"] > 8 * fastest:
                continue
            progress(f"    {r['name']}: setup + first call in fresh processes")
            peers_first.append(M.peer_first_call(case.id, args.quick, r["family"], r["name"],
                                                 runs=runs, timeout=args.timeout))
    limit = C.plan_memory_limit(spec.input_shape, spec.output_shape, spec.dtype)
    return {"linop": lin, "peers": peers_first, "memory_limit": limit}


def case_table(report, results):
    head = (f"{'op':13s} {'implementation':50s} {'median':>11s} {'min':>11s} {'calls':>7s} "
            f"{'linop/x':>8s} {'max|diff|':>10s}")
    report.add("=" * len(head))
    report.add("Times: median and min over the repeats of the time per call; linop/x = linop's "
               "median / x's median (< 1: linop faster).")
    report.add("max|diff| = largest absolute difference from linop's result; "
               "MISMATCH = beyond tolerance (excluded from the goals).")
    report.add("=" * len(head))
    report.add(head)
    for res in results:
        report.add("-" * len(head))
        if "skipped" in res:
            report.add(f"{res['id']}: {res['title']}  SKIPPED: {res['skipped']}")
            continue
        extra = f"  [{res['method']}]" if res.get("method") else ""
        nnz = f"  nnz={res['nnz']:,}" if res.get("nnz") else ""
        report.add(f"{res['id']}: {res['title']}{extra}{nnz}")
        for msg in res.get("peer_setup_errors", []):
            report.add(f"  (peer skipped: {msg})")
        if res.get("fresh"):
            plan_lines(report, res)
        if res.get("fusion"):
            fusion_lines(report, res["fusion"])
        cold = res.get("cold")
        if cold:
            if "error" in cold:
                report.add(f"  cold build: ERROR {cold['error']}")
            else:
                report.add(f"  cold build (fresh process: construct + first matvec - fastest of 10 "
                           f"matvecs;"
                           f" {cold['runs']} runs): median {fmt_time(cold['build_median'])}, "
                           f"runs " + ", ".join(fmt_time(b) for b in cold["build"])
                           + f"; warm matvec there {fmt_time(cold['warm_matvec_median'])}")
        for opres in res["ops"]:
            first = True
            for row in opres["rows"]:
                if "skipped" in row:
                    report.add(f"{opres['op'] if first else '':13s} {row['name'][:50]:50s} "
                               f"skipped: {row['skipped']}")
                    first = False
                    continue
                if "check_only" in row:
                    diff = f"{row['max_abs_diff']:.1e}" + ("" if row.get("agree")
                                                          else " MISMATCH")
                    report.add(f"{opres['op'] if first else '':13s} {row['name'][:50]:50s} "
                               f"{'(not timed: ' + row['check_only'] + ')':>40s} {diff:>10s}")
                    first = False
                    continue
                if "error" in row:
                    tail = f"ERROR {row['error'][:60]}"
                    report.add(f"{opres['op'] if first else '':13s} {row['name'][:50]:50s} {tail}")
                    first = False
                    continue
                if row["family"] == "linop" or "max_abs_diff" not in row:
                    diff = "-"
                elif row.get("identical"):
                    diff = "identical" if opres["op"] == "tocsr" else "0"
                else:
                    diff = f"{row['max_abs_diff']:.1e}"
                if not row.get("agree", True):
                    diff += " MISMATCH"
                ratio = "" if row["family"] == "linop" else f"{row['ratio']:.2f}"
                calls = "once" if "once" in row else f"{len(row['times'])}x{row['number']}"
                report.add(f"{opres['op'] if first else '':13s} {row['name'][:50]:50s} "
                           f"{fmt_time(row['median']):>11s} {fmt_time(row['min']):>11s} "
                           f"{calls:>7s} {ratio:>8s} {diff:>10s}")
                first = False


def plan_lines(report, res):
    """Issue 15: auto's plan, the first results and the peak memory of an AP case."""
    fresh = res["fresh"]
    for line in res.get("plan", "").splitlines():
        report.add(f"  plan: {line}")
    lin = fresh["linop"]
    if "error" in lin:
        report.add(f"  first result: ERROR {lin['error']}")
        return
    report.add(f"  first result (fresh processes, median of {lin['runs']}): linop construct + "
               f"first matvec {fmt_time(lin['first_median'])} (construct "
               f"{fmt_time(lin['construct_median'])}; runs "
               + ", ".join(fmt_time(t) for t in lin["first"]) + ")")
    for p in fresh["peers"]:
        if "error" in p:
            report.add(f"    {p['name']}: ERROR {p['error']}")
        else:
            report.add(f"    {p['name']}: setup + first call {fmt_time(p['first_median'])} "
                       f"(setup {fmt_time(p['setup_median'])}, call "
                       f"{fmt_time(p['call_median'])})")
    report.add(f"  peak RSS of construct + first matvec + first rmatvec (fresh process, max of "
               f"{lin['runs']}): {fmt_mib(lin['peak_rss_max'])}; budget 4 x (input + output) "
               f"+ 64 MiB = {fmt_mib(fresh['memory_limit'])}")


def fusion_lines(report, fu):
    report.add(f"  fusing: building the product's matrix (fresh factors) "
               f"{fmt_time(fu['tocsr'])} (median)")
    for op_name in ("matvec", "rmatvec"):
        f = fu[op_name]
        line = (f"  {op_name}: fused (best of SciPy / threaded CSR) {fmt_time(f['fused'])}, "
                f"factors {fmt_time(f['factors'])}")
        if f["break_even_calls"] is not None:
            line += (f"; saves {fmt_time(f['saved_per_call'])} per call: the build pays for "
                     f"itself after {f['break_even_calls']:.0f} calls")
        elif f["saved_per_call"] is not None:
            line += "; fusing does not save time per call"
        report.add(line)


# -- scaling ----------------------------------------------------------------------------------

def run_scaling(args, wanted):
    out = []
    for gid, spec in C.scaling_cases(args.quick):
        if gid not in wanted:
            continue
        case = C.Case(gid, "", "scaling", "conv", spec, ops=())
        label = "x".join(map(str, spec.spatial_in))
        progress(f"[{gid}] {label}")
        x, y = case.inputs()
        op = case.make_linop()
        impls = [case.linop_impl(n, op, x, y) for n in ("build", "matvec", "rmatvec")]
        for i in impls:
            i.run()
        repeat = max(3, args.repeat if spec.spatial_in[0] < 1024 else (args.repeat + 1) // 2)
        stats = time_interleaved(impls, repeat, args.min_time)
        nnz = C.conv_nnz(spec)
        rec = {"goal": gid, "size": list(spec.spatial_in), "nnz": nnz,
               "method": op.method,
               "build_first_matvec": stats[0]["median"],
               "matvec": stats[1]["median"], "rmatvec": stats[2]["median"],
               "matvec_min": stats[1]["min"], "rmatvec_min": stats[2]["min"],
               "build_first_matvec_min": stats[0]["min"]}
        rec["build_median"] = max(rec["build_first_matvec"] - rec["matvec"], 0.0)
        # The scaling table and slopes use the minimums: contention on a shared
        # machine only ever adds time, and the slopes are about the code's cost.
        rec["build"] = max(rec["build_first_matvec_min"] - rec["matvec_min"], 0.0)
        rec["matvec_median"], rec["rmatvec_median"] = rec["matvec"], rec["rmatvec"]
        rec["matvec"], rec["rmatvec"] = rec["matvec_min"], rec["rmatvec_min"]
        out.append(rec)
        progress(f"    nnz={nnz:,} build {fmt_time(rec['build'])} matvec {fmt_time(rec['matvec'])}"
                 f" rmatvec {fmt_time(rec['rmatvec'])}")
        del op, x, y, impls
        gc.collect()
    return out


def slope(recs, key):
    if len(recs) < 2:
        return None
    lx = np.log([r["nnz"] for r in recs])
    ly = np.log([max(r[key], 1e-9) for r in recs])
    return float(np.polyfit(lx, ly, 1)[0])


def scaling_table(report, recs):
    if not recs:
        return {}
    report.add("")
    report.add("Scaling (1 channel, padding 1, float64), min over the repeats: build = fresh op "
               "-> first matvec minus a warm matvec; ns/nz = time per stored entry")
    head = (f"{'goal':9s} {'size':>14s} {'nnz':>12s} {'build':>11s} {'ns/nz':>6s} "
            f"{'matvec':>11s} {'ns/nz':>6s} {'rmatvec':>11s} {'ns/nz':>6s}")
    report.add(head)
    slopes = {}
    for gid in ("SCALE-2D", "SCALE-3D"):
        rs = [r for r in recs if r["goal"] == gid]
        for r in rs:
            report.add(f"{gid:9s} {'x'.join(map(str, r['size'])):>14s} {r['nnz']:>12,} "
                       f"{fmt_time(r['build']):>11s} {r['build'] / r['nnz'] * 1e9:6.2f} "
                       f"{fmt_time(r['matvec']):>11s} {r['matvec'] / r['nnz'] * 1e9:6.2f} "
                       f"{fmt_time(r['rmatvec']):>11s} {r['rmatvec'] / r['nnz'] * 1e9:6.2f}")
        if rs:
            s = {k: slope(rs, k) for k in ("build", "matvec", "rmatvec")}
            steps = []
            for a, b in itertools.pairwise(rs):
                steps.append({k: float(np.log(max(b[k], 1e-9) / max(a[k], 1e-9))
                                       / np.log(b["nnz"] / a["nnz"]))
                              for k in ("build", "matvec", "rmatvec")})
            slopes[gid] = {"fit": s, "steps": steps}
            report.add(f"{gid:9s} log-log slope of time vs nnz (1 = linear): build "
                       f"{s['build']:.2f}, matvec {s['matvec']:.2f}, rmatvec {s['rmatvec']:.2f}; "
                       "per step build " + ", ".join(f"{st['build']:.2f}" for st in steps)
                       + "; matvec " + ", ".join(f"{st['matvec']:.2f}" for st in steps))
    return slopes


# -- memory jobs ---------------------------------------------------------------------------

P3_COLD_JOB = dict(id="P3-cold", op="conv", weight_shape=[3, 3], input_shape=[512, 512],
                   bare=True, dtype="float64", kwargs=dict(padding=1))


def memory_jobs(quick):
    """(id, description, job, explicit-matrix estimate in bytes)."""
    jobs = []
    full = ["construct", "first_matvec", "warm_matvec", "first_rmatvec", "warm_rmatvec"]

    def conv_job(jid, weight_shape, input_shape, dtype, bare, stages, desc, **kw):
        job = dict(id=jid, op="conv", weight_shape=list(weight_shape),
                   input_shape=list(input_shape), bare=bare, dtype=dtype,
                   kwargs=dict(padding=1, **kw), stages=stages, verify=True)
        w4 = np.zeros(weight_shape if not bare else (1, 1) + tuple(weight_shape), dtype=dtype)
        spec = C.ConvSpec(w4, input_shape if not bare else (1,) + tuple(input_shape),
                          padding_arg=1)
        nnz = C.conv_nnz(spec)
        est = C.csr_nbytes(nnz, math.prod(spec.output_shape), dtype,
                           math.prod(spec.input_shape))
        jobs.append((jid, desc, job, est, nnz))

    conv_job("P5", (32, 16, 3, 3), (16, 128, 128), "float32", False,
             ["construct", "first_matvec", "warm_matvec"],
             "Conv2d 16->32ch 128x128 3x3 pad 1 f32 (P2)")
    if quick:
        conv_job("SMOKE-2D", (3, 3), (1024, 1024), "float64", True, full,
                 "Conv2d 1ch 1024x1024 3x3 pad 1 f64 (quick stand-in for 4096^2)")
        conv_job("SMOKE-3D", (3, 3, 3), (64, 64, 64), "float64", True, full,
                 "Conv3d 1ch 64^3 3x3x3 pad 1 f64 (quick stand-in for 128^3)")
        conv_job("SMOKE-IM2COL", (64, 64, 3, 3), (64, 128, 128), "float32", False, full,
                 "Conv2d 64->64ch 128x128 3x3 pad 1 f32 (quick stand-in for 512^2)")
    else:
        conv_job("SMOKE-2D", (3, 3), (4096, 4096), "float64", True, full,
                 "Conv2d 1ch 4096x4096 3x3 pad 1 f64")
        conv_job("SMOKE-3D", (3, 3, 3), (128, 128, 128), "float64", True, full,
                 "Conv3d 1ch 128^3 3x3x3 pad 1 f64")
        conv_job("SMOKE-IM2COL", (64, 64, 3, 3), (64, 512, 512), "float32", False, full,
                 "Conv2d 64->64ch 512x512 3x3 pad 1 f32")
    return jobs


def run_memory(args, wanted):
    out = []
    for jid, desc, job, est, nnz in memory_jobs(args.quick):
        if jid not in wanted:
            continue
        progress(f"[{jid}] {desc} (subprocess)")
        res = M.measure(job, timeout=args.timeout)
        res.update(description=desc, explicit_estimate=est, nnz=nnz)
        if "error" in res:
            progress(f"    ERROR {res['error']}")
        else:
            st = M.stage(res, "first_matvec")
            progress(f"    peak after first matvec {fmt_mib(M.peak_bytes(st))} "
                     f"(tracemalloc {fmt_mib(st.get('tracemalloc_peak'))})")
        out.append(res)
    return out


def memory_table(report, recs):
    if not recs:
        return
    report.add("")
    report.add("Memory and smoke runs (each in a fresh subprocess): peak = growth of the peak "
               "RSS (VmHWM) over the RSS after setup;")
    report.add("tm = tracemalloc peak (NumPy/Python allocations); cumulative over the stages. "
               "explicit = size of the explicit CSR matrix.")
    head = (f"{'job':13s} {'stage':14s} {'time':>11s} {'peak RSS':>13s} {'tm peak':>13s}")
    for r in recs:
        report.add("-" * 70)
        report.add(f"{r['id']}: {r['description']}  [{r.get('method')}]  nnz={r['nnz']:,}  "
                   f"explicit={fmt_mib(r['explicit_estimate'])}")
        if "error" in r:
            report.add(f"    ERROR: {r['error']}")
            continue
        report.add(head)
        for st in r["stages"]:
            report.add(f"{'':13s} {st['stage']:14s} {fmt_time(st['seconds']):>11s} "
                       f"{fmt_mib(M.peak_bytes(st)):>13s} "
                       f"{fmt_mib(st.get('tracemalloc_peak')):>13s}")
        v = r.get("verify")
        if v:
            if "skipped" in v:
                report.add(f"{'':13s} torch check skipped: {v['skipped']}")
            else:
                line = (f"{'':13s} vs torch: matvec max|diff| {v['matvec_max_abs_diff']:.1e} "
                        f"(rel {v['matvec_rel_diff']:.1e}), torch "
                        f"{fmt_time(v['torch_matvec_seconds'])}")
                if "rmatvec_max_abs_diff" in v:
                    line += (f"; rmatvec max|diff| {v['rmatvec_max_abs_diff']:.1e} "
                             f"(rel {v['rmatvec_rel_diff']:.1e}), torch "
                             f"{fmt_time(v['torch_rmatvec_seconds'])}")
                report.add(line)


# -- goals --------------------------------------------------------------------------------------

def _op(res, name):
    for o in res["ops"]:
        if o["op"] == name:
            return o["rows"]
    return None


def evaluate_goals(case_results, scaling_slopes, mem_results):
    by_id = {r["id"]: r for r in case_results}
    goals = []

    def add(gid, what, value, detail, ok=None):
        g = C.GOALS.get(gid)
        thr = g.threshold if g else None
        if ok is None:
            ok = value is not None and thr is not None and value <= thr
        goals.append({"goal": gid, "what": what, "value": value, "threshold": thr,
                      "unit": g.unit if g else "", "pass": bool(ok), "detail": detail})

    for gid in ("P1", "P2"):
        if gid not in by_id:
            continue
        fams = C.GOALS[gid].families
        for op_name in ("matvec", "rmatvec"):
            rows = _op(by_id[gid], op_name)
            lin = rows[0]
            cands = [r for r in rows[1:] if r["family"] in fams and r.get("agree")
                     and "median" in r]
            if not cands:
                add(gid, op_name, None, "no peer available", ok=False)
                continue
            best = min(cands, key=lambda r: r["median"])
            best_min = min(cands, key=lambda r: r["min"])
            others = [r for r in rows[1:] if r["family"] not in fams and r.get("agree")
                      and "median" in r]
            detail = (f"linop {fmt_time(lin['median'])} vs {best['name']} "
                      f"{fmt_time(best['median'])}; min-based ratio "
                      f"{lin['min'] / best_min['min']:.2f}")
            if others:
                o = min(others, key=lambda r: r["median"])
                detail += f"; fastest non-goal peer {o['name']} {fmt_time(o['median'])}"
            add(gid, op_name, lin["median"] / best["median"], detail)

    for res in case_results:
        if res.get("fresh") is not None:
            goals.extend(plan_goals(res))

    if "P3" in by_id:
        rows = {o["op"]: o["rows"][0] for o in by_id["P3"]["ops"]}
        b, m = rows["build"], rows["matvec"]
        build = b["median"] - m["median"]
        detail = (f"fresh op -> first matvec {fmt_time(b['median'])}, warm matvec "
                  f"{fmt_time(m['median'])}, build {fmt_time(build)}")
        if "tocsr" in rows:
            t = rows["tocsr"]["median"]
            detail += f"; Conv2d(...).tocsr() {fmt_time(t)} = {t / m['median']:.1f} matvecs"
        detail += (f"; min-based: {(b['min'] - m['min']) / m['min']:.1f} matvecs")
        cold = by_id["P3"].get("cold")
        if cold and "error" not in cold:
            detail += (f"; in a fresh process (median of {cold['runs']}): build "
                       f"{fmt_time(cold['build_median'])} = "
                       f"{cold['build_median'] / m['median']:.1f} warm matvecs")
        add("P3", "build / matvec", build / m["median"], detail)

    if "P4" in by_id:
        rows = _op(by_id["P4"], "tocsr")
        lin = rows[0]
        diags = [r for r in rows if r["family"] == "scipy.sparse" and "median" in r]
        if diags:
            d = diags[0]
            equal = bool(d.get("agree")) and d.get("max_abs_diff", 1) == 0.0
            detail = (f"linop {fmt_time(lin['median'])} vs diags_array {fmt_time(d['median'])};"
                      f" equal: {equal} (identical CSR arrays: {d.get('identical')})")
            ratio = lin["median"] / d["median"]
            add("P4", "tocsr / diags_array", ratio, detail,
                ok=equal and ratio <= C.GOALS["P4"].threshold)
        else:
            add("P4", "tocsr / diags_array", None, "scipy.sparse peer unavailable", ok=False)

    for gid, s in scaling_slopes.items():
        # Judged on the last step (the two largest sizes): smaller problems sit
        # in cache, which lowers their time per entry without changing the order.
        last = s["steps"][-1]
        worst = max(last["build"], last["matvec"])
        steps = ", ".join(f"{st['build']:.2f}/{st['matvec']:.2f}" for st in s["steps"])
        add(gid, "slope, two largest sizes (build, matvec)", worst,
            f"min times; fit over all sizes: build {s['fit']['build']:.2f}, matvec "
            f"{s['fit']['matvec']:.2f}, rmatvec {s['fit']['rmatvec']:.2f}; per step "
            f"build/matvec {steps}")

    for r in mem_results:
        if r["id"] == "P5":
            if "error" in r:
                add("P5", "peak MiB", None, r["error"], ok=False)
                continue
            st = M.stage(r, "first_matvec")
            peak = M.peak_bytes(st)
            tm = st.get("tracemalloc_peak")
            add("P5", "peak RSS MiB (construct + first matvec)", peak / MiB,
                f"tracemalloc peak {fmt_mib(tm)}; explicit matrix would be "
                f"{fmt_mib(r['explicit_estimate'])}; method {r.get('method')}",
                ok=peak / MiB <= C.GOALS["P5"].threshold
                and (tm is None or tm / MiB <= C.GOALS["P5"].threshold))
        else:
            if "error" in r:
                goals.append({"goal": r["id"], "what": "build + apply", "value": None,
                              "threshold": None, "unit": "", "pass": False,
                              "detail": r["error"]})
                continue
            peak = max(M.peak_bytes(s) or 0 for s in r["stages"])
            total = sum(s["seconds"] for s in r["stages"])
            v = r.get("verify", {})
            ok = "skipped" in v or (v.get("matvec_rel_diff", 1) < 1e-4
                                    and v.get("rmatvec_rel_diff", 0) < 1e-4)
            goals.append({
                "goal": r["id"], "what": "build + apply: peak RSS MiB", "value": peak / MiB,
                "threshold": None, "unit": "MiB", "pass": bool(ok),
                "detail": f"{r['description']}: all stages {total:.1f} s, method "
                          f"{r.get('method')}, explicit matrix {fmt_mib(r['explicit_estimate'])}"
                          + ("" if "skipped" in v else
                             f", agrees with torch (rel {v.get('matvec_rel_diff', 0):.0e}/"
                             f"{v.get('rmatvec_rel_diff', 0):.0e})")})
    return goals


def plan_goals(res):
    """Issue 15's goals for one AP case: steady ratios, first result, memory, agreement."""
    gid, method = res["id"], res.get("method")
    out = []

    def add(what, value, threshold, detail, unit="ratio", ok=None):
        if ok is None:
            ok = value is not None and value <= threshold
        out.append({"goal": gid, "what": what, "value": value, "threshold": threshold,
                    "unit": unit, "pass": bool(ok), "detail": f"[auto: {method}] {detail}"})

    steady = C.PLAN_GOALS["steady"].threshold
    for op_name in ("matvec", "rmatvec"):
        rows = _op(res, op_name) or []
        if not rows:
            continue
        lin = rows[0]
        cands = [r for r in rows[1:] if r.get("agree") and "median" in r]
        if not cands:
            add(f"{op_name} / best peer", None, steady, "no peer available", ok=False)
            continue
        best = min(cands, key=lambda r: r["median"])
        best_min = min(cands, key=lambda r: r["min"])
        add(f"{op_name} / best peer (medians)", lin["median"] / best["median"], steady,
            f"linop {fmt_time(lin['median'])} vs {best['name']} {fmt_time(best['median'])}"
            f"{' (timed once)' if 'once' in best else ''}; min-based ratio "
            f"{lin['min'] / best_min['min']:.2f} (vs {best_min['name']})")

    fresh = res["fresh"]
    lin = fresh["linop"]
    first = C.PLAN_GOALS["first"].threshold
    peers_ok = [p for p in fresh["peers"] if "error" not in p]
    if "error" in lin:
        add("first result / best peer's", None, first, lin["error"], ok=False)
    elif not peers_ok:
        add("first result / best peer's", None, first, "no peer measured", ok=False)
    else:
        bp = min(peers_ok, key=lambda p: p["first_median"])
        add("first result / best peer's (fresh)", lin["first_median"] / bp["first_median"],
            first, f"linop construct + first matvec {fmt_time(lin['first_median'])} vs "
            f"{bp['name']} setup + call {fmt_time(bp['first_median'])} (medians of "
            f"{lin['runs']} fresh processes)")
    if "error" not in lin:
        peak, limit = lin["peak_rss_max"], fresh["memory_limit"]
        add("peak RSS MiB (build+matvec+rmatvec)", None if peak is None else peak / MiB,
            limit / MiB, f"budget 4 x (input + output) + 64 MiB = {fmt_mib(limit)}; max of "
            f"{lin['runs']} fresh processes", unit="MiB")

    tol = TOL.get(np.dtype(res.get("dtype", "float64")), 1e-9)
    diffs, names = [], []
    for op_name in ("matvec", "rmatvec"):
        torch_rows = [r for r in (_op(res, op_name) or []) if r["family"] == "torch"
                      and "rel_diff" in r]
        if torch_rows:
            diffs.append(max(r["rel_diff"] for r in torch_rows))
            names.append(f"{op_name} {diffs[-1]:.1e} ({torch_rows[0]['name']})")
    if diffs:
        add("agreement with torch (rel. max|diff|)", max(diffs), tol,
            "; ".join(names), unit="rel")
    else:
        add("agreement with torch (rel. max|diff|)", None, tol, "torch unavailable", ok=False)
    return out


def goals_table(report, goals):
    report.add("")
    report.add("=" * 100)
    report.add("Goals (issue 6; application plans of issue 15; smoke runs of issue 9): "
               "value vs threshold")
    report.add("=" * 100)
    report.add(f"{'goal':13s} {'measure':38s} {'value':>9s} {'limit':>7s} {'status':>6s}  detail")
    for g in goals:
        v = "-" if g["value"] is None else (f"{g['value']:.1e}" if g["unit"] == "rel"
                                            else f"{g['value']:.2f}")
        t = "-" if g["threshold"] is None else f"{g['threshold']:g}"
        report.add(f"{g['goal']:13s} {g['what'][:38]:38s} {v:>9s} {t:>7s} "
                   f"{'PASS' if g['pass'] else 'FAIL':>6s}  {g['detail']}")


# -- profiles of failing goals -------------------------------------------------------------------

PROFILE_CALLS = {"P1": 200, "P2": 20, "P3": 20, "P4": 3}


def profile_failures(report, goals, quick, top=14):
    """cProfile of linop's side of every failing goal among P1-P4 (sorted by own time)."""
    import cProfile
    import io
    import pstats

    failing = [(g["goal"], g["what"]) for g in goals
               if not g["pass"] and g["goal"] in PROFILE_CALLS]
    if not failing:
        return []
    cases = {c.id: c for c in C.build_cases(quick)}
    out = []
    report.add("")
    report.add("=" * 100)
    report.add("Profiles of linop's side of the failing goals (cProfile, sorted by own time)")
    report.add("=" * 100)
    for gid, what in failing:
        case = cases[gid]
        x, y = case.inputs()
        op = case.make_linop()
        if gid in ("P1", "P2"):
            impl = case.linop_impl(what, op, x, y)
        elif gid == "P3":
            impl = case.linop_impl("build", op, x, y)
        else:
            impl = case.linop_impl("tocsr", op, x, y)
        impl.run()  # warm
        n = PROFILE_CALLS[gid]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            impl.run()
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("tottime").print_stats(top)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
        keep = [ln for ln in lines if "function calls" in ln or "ncalls" in ln
                or (ln.startswith(" ") and "/" in ln) or "{" in ln]
        report.add(f"--- {gid} {what}: {impl.name}, {n} calls")
        for ln in keep[: top + 2]:
            report.add(ln.replace(_ROOT + "/", "").replace(os.path.dirname(np.__path__[0]) + "/",
                                                          ""))
        out.append({"goal": gid, "what": what, "calls": n, "profile": buf.getvalue()})
        del op, x, y, impl, prof
        gc.collect()
    return out


# -- environment ------------------------------------------------------------------------------

def environment(args):
    env = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
           "python": sys.version.split()[0], "executable": sys.executable,
           "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "linop": linop.__version__, "peers": P.available(),
           "torch_threads": P.torch_threads(), "quick": args.quick, "repeat": args.repeat,
           "min_time": args.min_time, "loadavg_start": list(os.getloadavg())}
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f
                               if ln.startswith("model name")), None)
    except OSError:
        pass
    try:  # read-only: which linop is being measured
        head = subprocess.run(["git", "-C", _ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", _ROOT, "status", "--porcelain", "--", "linop"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        env["linop_commit"] = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return env


# -- main ---------------------------------------------------------------------------------

def all_ids(quick):
    ids = [c.id for c in C.build_cases(quick)]
    ids += ["SCALE-2D", "SCALE-3D"] + [j[0] for j in memory_jobs(quick)]
    return ids


def selected(ids, only):
    if not only:
        return list(ids)
    tokens = [t.strip().upper() for t in only.split(",") if t.strip()]
    issue16 = ("X-AVGPOOL", "X-CONVFILTER", "X-PRODUCT")
    groups = {"GOALS": ("P1", "P2", "P3", "P4", "P5", "SCALE-2D", "SCALE-3D"),
              "PLANS": tuple(i for i in ids if i.startswith("AP")),
              "ISSUE15": tuple(i for i in ids if i.startswith("AP")),
              "ISSUE16": tuple(i for i in ids if i.upper().startswith(issue16)),
              "EXTRA": tuple(i for i in ids if i.startswith("X-")),
              "SMOKE": tuple(i for i in ids if i.startswith("SMOKE")),
              "SCALE": ("SCALE-2D", "SCALE-3D")}
    out = []
    for i in ids:
        u = i.upper()
        for t in tokens:
            if u == t or (t in groups and i in groups[t]) or (t.endswith("*")
                                                              and u.startswith(t[:-1])):
                out.append(i)
                break
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats, shorter calls, smaller scaling/smoke sizes "
                         "(goal cases P1-P5 keep their sizes)")
    ap.add_argument("--only", default="",
                    help="comma-separated case ids or groups: P1..P5, AP1..AP6, SCALE-2D, "
                         "SCALE-3D, SMOKE-2D, SMOKE-3D, SMOKE-IM2COL, X-..., X-2d* (prefix), "
                         "goals, plans (= issue15), issue16, extra, smoke, scale")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repeats per measurement (default 7, --quick 3); median and min reported")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds per repeat; fast calls are looped (default 0.1, --quick 0.05)")
    ap.add_argument("--json", default=None,
                    help="JSON results (default benchmarks/results/latest.json, "
                         "--quick: quick.json)")
    ap.add_argument("--txt", default=None,
                    help="the printed report (default: the --json path with .txt)")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds allowed per memory/smoke subprocess")
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the cProfile of linop's side of failing goals P1-P4")
    ap.add_argument("--list", action="store_true", help="list the case ids and exit")
    args = ap.parse_args(argv)
    args.repeat = args.repeat or (3 if args.quick else 7)
    args.min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else 0.1)
    results_dir = os.path.join(_ROOT, "benchmarks", "results")
    args.json = args.json or os.path.join(results_dir, "quick.json" if args.quick
                                          else "latest.json")
    args.txt = args.txt or os.path.splitext(args.json)[0] + ".txt"

    ids = all_ids(args.quick)
    if args.list:
        print("\n".join(ids))
        return 0
    wanted = set(selected(ids, args.only))
    if not wanted:
        ap.error(f"--only {args.only!r} matches no case; --list shows the ids")

    env = environment(args)
    progress(f"linop {env['linop']} ({env.get('linop_commit', '?')}); peers {env['peers']}; "
             f"torch threads {env['torch_threads']}; loadavg {env['loadavg_start']}")
    t_start = time.perf_counter()
    case_results = []
    for case in C.build_cases(args.quick):
        if case.id in wanted:
            case_results.append(run_case(case, args))
            if case.id == "P3":
                progress("[P3] cold build in fresh processes")
                case_results[-1]["cold"] = M.cold_build(P3_COLD_JOB, runs=3 if args.quick else 5,
                                                        timeout=args.timeout)
            if case.plan and "skipped" not in case_results[-1]:
                case_results[-1]["fresh"] = plan_fresh(case, case_results[-1], args)
    scaling = run_scaling(args, wanted)
    mem = run_memory(args, wanted)
    env["loadavg_end"] = list(os.getloadavg())
    env["wall_seconds"] = time.perf_counter() - t_start

    report = Report()
    report.add(f"linop benchmark suite  {env['date']}  linop {env['linop']} "
               f"({env.get('linop_commit', '?')})")
    report.add(f"python {env['python']}; " + "; ".join(f"{k} {v}" for k, v in env["peers"].items())
               + f"; torch threads {env['torch_threads']}")
    report.add(f"cpu: {env.get('cpu')} x{env['cpu_count']}; load average at start "
               f"{env['loadavg_start'][0]:.2f}, at end {env['loadavg_end'][0]:.2f}; "
               f"repeats {args.repeat}, >= {args.min_time} s each"
               + ("; QUICK MODE" if args.quick else ""))
    if case_results:
        case_table(report, case_results)
    slopes = scaling_table(report, scaling)
    memory_table(report, mem)
    goals = evaluate_goals(case_results, slopes, mem)
    if goals:
        goals_table(report, goals)
    profiles = [] if args.no_profile else profile_failures(report, goals, args.quick)
    report.add(f"\nwall time {env['wall_seconds']:.0f} s")
    text = report.text()
    print(text)

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"environment": env, "cases": case_results, "scaling": scaling,
                   "scaling_slopes": slopes, "memory": mem, "goals": goals,
                   "profiles": profiles}, f, indent=1,
                  default=float)
    with open(args.txt, "w") as f:
        f.write(text)
    progress(f"wrote {args.json} and {args.txt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
