"""Peak memory of building and applying an operator, measured in a fresh subprocess.

Each job runs twice, each time in its own fresh interpreter
(``python benchmarks/memory.py --worker JOB``):

1. **RSS run.** After the imports and the inputs are in place, the worker
   records its resident set size and resets the kernel's high-water mark
   (``echo 5 > /proc/self/clear_refs``); after every stage it reads the peak
   (``VmHWM``). The reported *peak RSS delta* is ``VmHWM - RSS at baseline``:
   everything the stages added, NumPy or not, at its highest point.
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is reported as well; it
   cannot be reset, so its delta is only meaningful where it grew past the
   setup's peak (and after ``exec`` it may even carry the parent's peak),
   which is why the ``/proc`` numbers are preferred when they exist.
2. **tracemalloc run.** ``tracemalloc`` is started after the setup; NumPy
   reports its array buffers to it, so its peak is the peak of Python and
   NumPy allocations made by the stages (BLAS or C++ scratch space that does
   not go through NumPy is not seen). Timings from this run are not used.

Issue 15's *first result* is measured the same way (`first_result`): fresh
interpreters running ``construct``, ``first_matvec`` and ``first_rmatvec``
with the RSS method, giving both the time of construct + first matvec and
the peak memory of all three; a peer's first result (`peer_first_call`) is
its setup plus one call in a fresh interpreter
(``python benchmarks/memory.py --peer JOB``), the peer's modules imported
beforehand as linop is.

Stages: ``construct`` (the operator's constructor), ``first_matvec``,
``warm_matvec``, ``first_rmatvec``, ``warm_rmatvec``; the peaks are cumulative,
so "peak after first_matvec" is the peak of building the operator and applying
it once. If torch is importable, the RSS run finally checks the results
against ``torch.nn.functional.conv{n}d`` / ``conv_transpose{n}d`` (after the
peaks are read, so torch's memory is not counted).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time

STAGES = ("construct", "first_matvec", "warm_matvec", "first_rmatvec", "warm_rmatvec")
MiB = 2.0**20


# -- worker side ------------------------------------------------------------------------

def _proc_status():
    """(VmRSS, VmHWM) in bytes, or None where /proc is not available."""
    try:
        vals = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    vals[key] = int(value.split()[0]) * 1024
        return vals["VmRSS"], vals["VmHWM"]
    except (OSError, KeyError, ValueError):
        return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _make_operator(job):
    import numpy as np

    import linop

    nd = len(job["weight_shape"]) - (0 if job["bare"] else 2)
    rng = np.random.default_rng(job.get("seed", 0))
    w = rng.standard_normal(job["weight_shape"]).astype(job["dtype"])
    cls = getattr(linop, ("ConvTranspose" if job["op"] == "conv_transpose" else "Conv")
                  + f"{nd}d")
    return cls, w, nd


def worker(job: dict) -> dict:
    import numpy as np

    import linop  # noqa: F401  (imported before the baseline)

    use_tm = job.get("tracemalloc", False)
    cls, w, nd = _make_operator(job)
    rng = np.random.default_rng(job.get("seed", 0) + 1)
    x = rng.standard_normal(job["input_shape"]).astype(job["dtype"]).ravel()
    kwargs = job.get("kwargs", {})
    stages = job.get("stages", STAGES)

    gc.collect()
    status0 = _proc_status()
    hwm_reset = _reset_hwm()
    maxrss0 = _maxrss_bytes()
    if use_tm:
        import tracemalloc

        tracemalloc.start()
        tracemalloc.reset_peak()
    out = {"id": job["id"], "tracemalloc": use_tm, "hwm_reset": hwm_reset, "stages": [],
           "baseline_rss": status0[0] if status0 else None}
    op = y = None
    for stage in stages:
        t0 = time.perf_counter()
        if stage == "construct":
            op = cls(w, tuple(job["input_shape"]), **kwargs)
        elif stage == "first_matvec":
            y = op.matvec(x)
        elif stage == "warm_matvec":
            op.matvec(x)
        elif stage == "first_rmatvec":
            xr = op.rmatvec(y)
        elif stage == "warm_rmatvec":
            op.rmatvec(y)
        dt = time.perf_counter() - t0
        rec = {"stage": stage, "seconds": dt}
        st = _proc_status()
        if st is not None and status0 is not None and hwm_reset:
            rec["peak_rss_delta"] = st[1] - status0[0]
            rec["rss_delta"] = st[0] - status0[0]
        rec["maxrss_delta"] = _maxrss_bytes() - maxrss0
        if use_tm:
            rec["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        out["stages"].append(rec)
    out["method"] = getattr(op, "method", None)
    out["output_shape"] = list(op.output_shape) if op is not None else None
    if use_tm:
        tracemalloc.stop()

    if job.get("verify") and y is not None:
        out["verify"] = _verify_with_torch(job, w, x, y, xr if "first_rmatvec" in stages
                                           else None, nd, op)
    return out


def _verify_with_torch(job, w, x, y, xr, nd, op):
    import numpy as np

    try:
        import torch
    except Exception as err:  # noqa: BLE001
        return {"skipped": f"torch not importable: {err!r}"[:100]}
    torch.set_num_threads(2)
    F = torch.nn.functional
    wt = torch.from_numpy(w.reshape((1, 1) + w.shape) if job["bare"] else w)
    kw = {k: v for k, v in job.get("kwargs", {}).items() if k in ("stride", "dilation", "groups")}
    pad = job.get("kwargs", {}).get("padding", 0)
    if job["op"] != "conv" or not isinstance(pad, int):
        return {"skipped": "verification only for convolutions with int padding"}
    xin = torch.from_numpy(x.reshape((1, 1) + op.input_shape if job["bare"]
                                     else (1,) + op.input_shape))
    t0 = time.perf_counter()
    ref = getattr(F, f"conv{nd}d")(xin, wt, padding=pad, **kw).numpy().ravel()
    t_fwd = time.perf_counter() - t0
    res = {"torch_matvec_seconds": t_fwd,
           "matvec_max_abs_diff": float(np.abs(ref - y).max()),
           "matvec_rel_diff": float(np.abs(ref - y).max() / max(np.abs(ref).max(), 1e-300))}
    if xr is not None:
        yin = torch.from_numpy(y.reshape((1, 1) + op.output_shape if job["bare"]
                                         else (1,) + op.output_shape))
        t0 = time.perf_counter()
        ref = getattr(F, f"conv_transpose{nd}d")(yin, wt, padding=pad, **kw).numpy().ravel()
        res["torch_rmatvec_seconds"] = time.perf_counter() - t0
        if ref.size == xr.size:
            res["rmatvec_max_abs_diff"] = float(np.abs(ref - xr).max())
            res["rmatvec_rel_diff"] = float(np.abs(ref - xr).max()
                                            / max(np.abs(ref).max(), 1e-300))
    return res


# -- parent side ------------------------------------------------------------------------

def _run_worker(job: dict, timeout: float, mode: str = "--worker"):
    env = dict(os.environ)
    cmd = [sys.executable, os.path.abspath(__file__), mode, json.dumps(job)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": "no result printed"}


def measure(job: dict, *, tracemalloc_run: bool = True, timeout: float = 1800.0) -> dict:
    """Run ``job`` in fresh subprocesses; merge the RSS run and the tracemalloc run.

    ``job`` keys: ``id``, ``op`` ("conv" or "conv_transpose"), ``weight_shape``,
    ``input_shape``, ``bare``, ``dtype``, ``kwargs`` (for the constructor),
    ``stages`` (subset of `STAGES`, in order), ``verify`` (check against torch).
    Returns per stage: seconds, peak_rss_delta, rss_delta, maxrss_delta (bytes,
    cumulative peaks since the baseline) and tracemalloc_peak.
    """
    rss = _run_worker(dict(job, tracemalloc=False), timeout)
    if "error" in rss:
        return {"id": job["id"], "error": rss["error"]}
    if tracemalloc_run:
        tm = _run_worker(dict(job, tracemalloc=True, verify=False), timeout)
        if "error" in tm:
            rss["tracemalloc_error"] = tm["error"]
        else:
            for a, b in zip(rss["stages"], tm["stages"]):
                a["tracemalloc_peak"] = b.get("tracemalloc_peak")
    return rss


def cold_build(job: dict, runs: int = 5, timeout: float = 600.0) -> dict:
    """Build time in fresh interpreters: ``construct + first_matvec - warm matvec``.

    In a long-running process the allocator recycles the pages of earlier
    builds; a fresh process pays for touching every new page (first-touch page
    faults), as a user building one operator does. Returns the per-run values
    and their median, in seconds.
    """
    builds, warm = [], []
    for _ in range(runs):
        res = _run_worker(dict(job, tracemalloc=False, verify=False,
                               stages=["construct", "first_matvec"] + ["warm_matvec"] * 10),
                          timeout)
        if "error" in res:
            return {"error": res["error"]}
        t = {r["stage"]: r["seconds"] for r in res["stages"][:2]}
        # The second matvec of a fresh process is still cold (its output's pages
        # are new): take the fastest of ten as the warm one.
        w = min(r["seconds"] for r in res["stages"][2:])
        builds.append(t["construct"] + t["first_matvec"] - w)
        warm.append(w)
    builds.sort()
    warm.sort()
    return {"runs": runs, "build": builds, "warm_matvec": warm,
            "build_median": builds[len(builds) // 2], "warm_matvec_median": warm[len(warm) // 2]}


def first_result(job: dict, runs: int = 3, timeout: float = 600.0) -> dict:
    """Issue 15: the first result and the peak memory, in ``runs`` fresh interpreters.

    Each run does ``construct``, ``first_matvec``, ``first_rmatvec`` with the
    RSS method. Returns the per-run ``first`` (construct + first matvec, seconds)
    and ``peak_rss`` (growth of the peak RSS over the baseline after the first
    rmatvec, bytes), their median / max, and the method the operator took.
    """
    firsts, constructs, peaks, method = [], [], [], None
    for _ in range(runs):
        res = _run_worker(dict(job, tracemalloc=False, verify=False,
                               stages=["construct", "first_matvec", "first_rmatvec"]), timeout)
        if "error" in res:
            return {"error": res["error"]}
        t = {r["stage"]: r["seconds"] for r in res["stages"]}
        firsts.append(t["construct"] + t["first_matvec"])
        constructs.append(t["construct"])
        peaks.append(peak_bytes(stage(res, "first_rmatvec")))
        method = res.get("method")
    firsts.sort()
    constructs.sort()
    return {"runs": runs, "first": firsts, "first_median": firsts[len(firsts) // 2],
            "construct_median": constructs[len(constructs) // 2], "peak_rss": peaks,
            "peak_rss_max": max((p for p in peaks if p is not None), default=None),
            "method": method}


def peer_worker(job: dict) -> dict:
    """One peer's setup and first call on a case of ``cases.build_cases`` (fresh process)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import cases, peers

    case = next(c for c in cases.build_cases(job["quick"]) if c.id == job["case"])
    x, y = case.inputs()
    peers.import_family(job["family"])
    gc.collect()
    t0 = time.perf_counter()
    impls = case.peer_impls(job["op"], x, y, families=(job["family"],))
    t1 = time.perf_counter()
    impl = next(i for i in impls if i.name == job["name"])
    impl.run()
    t2 = time.perf_counter()
    return {"setup": t1 - t0, "call": t2 - t1, "first": t2 - t0}


def peer_first_call(case_id: str, quick: bool, family: str, name: str, op: str = "matvec",
                    runs: int = 3, timeout: float = 600.0) -> dict:
    """A peer's first result (setup + one call) in ``runs`` fresh interpreters."""
    job = dict(case=case_id, quick=quick, family=family, name=name, op=op)
    recs = []
    for _ in range(runs):
        res = _run_worker(job, timeout, mode="--peer")
        if "error" in res:
            return {"name": name, "family": family, "error": res["error"]}
        recs.append(res)
    firsts = sorted(r["first"] for r in recs)
    return {"name": name, "family": family, "runs": runs, "first": firsts,
            "first_median": firsts[len(firsts) // 2],
            "setup_median": sorted(r["setup"] for r in recs)[runs // 2],
            "call_median": sorted(r["call"] for r in recs)[runs // 2]}


def stage(result: dict, name: str) -> dict | None:
    for rec in result.get("stages", []):
        if rec["stage"] == name:
            return rec
    return None


def peak_bytes(rec: dict | None, key: str = "peak_rss_delta"):
    """A stage's peak: the /proc one, falling back on getrusage's where missing."""
    if rec is None:
        return None
    if key == "peak_rss_delta" and rec.get(key) is None:
        return rec.get("maxrss_delta")
    return rec.get(key)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "--peer":
        print(json.dumps(peer_worker(json.loads(sys.argv[2]))))
    else:
        print("usage: python benchmarks/memory.py --worker|--peer JOB_JSON "
              "(run.py drives this; see the module docstring)", file=sys.stderr)
        sys.exit(2)
