"""Benchmark of linop.linalg.lstsq (issue 22): deblurring and super-resolution.

The problem: scikit-image's ``camera`` (512x512, scaled to [0, 1]) blurred by
a 15x15 Gaussian (sigma 2.5) or a 5x5 motion blur (a decelerating diagonal
streak, not symmetric), and (informational: symmetric but not separable, so
the preconditioners rather than the exact solve) a sum of two Gaussians and
a 15x15 disk, ``padding="same"`` with each of the four padding
modes, 1% Gaussian noise, ``damp**2 = 1e-3``; solved to ``rtol = 1e-6`` by

- ``linop.linalg.lstsq`` (``preconditioner="auto"``: exact where a closed
  form exists, else PCG with the preconditioner it picks), and, for the
  cases auto solves exactly, the PCG route with the preconditioner forced
  (``pcg`` columns), to show what the preconditioners alone do;
- unpreconditioned CG on the normal equations (`scipy.sparse.linalg.cg` on
  ``A^H A + damp^2 I``, the same ``rtol``, relative to ``||A^H b||``);
- `scipy.sparse.linalg.lsqr` (``atol = btol = rtol``);
- PyLops ``Convolve2D(method="fft")`` (zero boundary only: for the other
  modes it solves its own zero-padded problem of the same size, timed as
  what a PyLops user would run) with ``pylops.optimization.basic.cgls``
  (``tol = (rtol ||A^H b||)^2``, its absolute criterion on the squared
  normal residual) and ``lsqr``.

Times are medians of ``--repeat`` runs (rotating order, one after the
other); ratios are of medians. Agreement: the relative 2-norm difference of
each solution from a reference (the exact solve where there is one, else
linop's PCG to ``rtol = 1e-10``).

Super-resolution (512x512 -> 256x256, circular): ``Conv2d`` of the Gaussian
with stride 2, and a 2x2 box ``Conv2d`` with stride 2 after the Gaussian blur
(a product of operators), solved exactly (one pass, per coarse frequency a
1 x 4 block) against CG and LSQR.

Usage::

    python benchmarks/lstsq.py            # 512x512, 3 repeats (about 10 minutes on 2 cores)
    python benchmarks/lstsq.py --quick    # 256x256, 1 repeat
    python benchmarks/lstsq.py --json benchmarks/results/lstsq.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

# BLAS threads fight over a busy machine's cores (a dot product of 10^5 numbers then
# takes milliseconds); one thread unless the caller set it. Before NumPy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.sparse.linalg import LinearOperator, cg, lsqr  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import linop  # noqa: E402
from linop.linalg import lstsq  # noqa: E402

RTOL = 1e-6
DAMP = float(np.sqrt(1e-3))
MODES = ("circular", "reflect", "zeros", "replicate")
GOALS = {"circular": 1 / 50, "reflect": 1 / 8, "zeros": 1 / 3, "replicate": 1 / 2}


def gaussian(size=15, sigma=2.5):
    t = np.arange(size) - size // 2
    g = np.exp(-0.5 * t**2 / sigma**2)
    w = np.outer(g, g)
    return w / w.sum()


def two_gaussians(size=15):
    """Symmetric, not separable (rank 2): sigma 2.5 plus sigma 1.2."""
    return (gaussian(size, 2.5) + gaussian(size, 1.2)) / 2


def disk(radius=7):
    """Symmetric, far from separable: the out-of-focus blur."""
    t = np.arange(-radius, radius + 1.0)
    w = (np.add.outer(t**2, t**2) <= radius**2 + 0.5).astype(float)
    return w / w.sum()


def motion(size=5):
    w = np.diag(np.arange(size, 0, -1.0))
    return w / w.sum()


def image(n):
    from skimage import data

    x = data.camera().astype(np.float64) / 255
    if n < x.shape[0]:
        start = (x.shape[0] - n) // 2
        x = x[start:start + n, start:start + n]
    return np.ascontiguousarray(x)


def noisy(A, x, rng):
    b = A @ x.ravel()
    return b + 0.01 * np.linalg.norm(b) / np.sqrt(b.size) * rng.standard_normal(b.size)


def normal_operator(A, damp):
    def mv(v):
        return A.rmatvec(A.matvec(v)) + damp**2 * v

    return LinearOperator((A.shape[1], A.shape[1]), matvec=mv, rmatvec=mv, dtype=A.dtype)


# -- the solvers, each returning (x, iterations) --------------------------------------------
def run_lstsq(A, b, **kw):
    res = lstsq(A, b, DAMP, rtol=RTOL, **kw)
    return res.x.ravel(), res.iterations, res.method


def run_cg(A, b):
    count = [0]
    rhs = A.rmatvec(b)
    x, info = cg(normal_operator(A, DAMP), rhs, rtol=RTOL, maxiter=5000,
                 callback=lambda xk: count.__setitem__(0, count[0] + 1))
    return x, count[0], "cg" if info == 0 else f"cg (info={info})"


def run_lsqr(A, b):
    out = lsqr(A, b, damp=DAMP, atol=RTOL, btol=RTOL, iter_lim=5000)
    return out[0], int(out[2]), "lsqr"


def pylops_ops(w, n):
    try:
        import pylops
    except ImportError:
        return None
    k = w.shape[0]
    # PyLops convolves; linop cross-correlates: the flipped kernel is the same operator
    return pylops.signalprocessing.Convolve2D((n, n), w[::-1, ::-1], offset=(k // 2, k // 2),
                                              method="fft", dtype="float64")


def run_pylops_cgls(P, b):
    from pylops.optimization.basic import cgls

    tol = (RTOL * np.linalg.norm(P.rmatvec(b))) ** 2
    out = cgls(P, b, niter=5000, damp=DAMP, tol=tol)
    return out[0], int(out[2]), "pylops cgls"


def run_pylops_lsqr(P, b):
    from pylops.optimization.basic import lsqr as plsqr

    out = plsqr(P, b, damp=DAMP, atol=RTOL, btol=RTOL, niter=5000, calc_var=False)
    return out[0], int(out[2]), "pylops lsqr"


def timed(funcs, repeat):
    """``{name: (median seconds, result)}``; every round runs all, in a rotating order."""
    names = list(funcs)
    times = {name: [] for name in names}
    results = {}
    for r in range(repeat):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t = time.perf_counter()
            results[name] = funcs[name]()
            times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(times[name]), results[name]) for name in names}


def fft_division(A, b, n):
    """The circular Tikhonov solution by one FFT division (NumPy, independent of linalg)."""
    e0 = np.zeros(n * n)
    e0[0] = 1
    H = np.fft.fft2((A @ e0).reshape(n, n))  # the transfer function: column 0 of A
    B = np.fft.fft2(b.reshape(n, n))
    return np.fft.ifft2(np.conj(H) * B / (np.abs(H) ** 2 + DAMP**2)).real.ravel()


def rel(x, ref):
    return float(np.linalg.norm(np.ravel(x) - np.ravel(ref)) / np.linalg.norm(ref))


FORCED = {"circular": "none", "reflect": "dct1", "zeros": "dct2", "replicate": "none"}


def deblur_case(kname, w, mode, n, repeat, rng):
    x_true = image(n)
    A = linop.Conv2d(w, (n, n), padding="same", padding_mode=mode)
    b = noisy(A, x_true, rng)
    funcs = {
        "lstsq": lambda: run_lstsq(A, b),
        "cg": lambda: run_cg(A, b),
        "lsqr": lambda: run_lsqr(A, b),
    }
    auto_kind = linop.linalg.preconditioner(A, DAMP).kind if mode != "circular" else "exact"
    symmetric = np.allclose(w, w[::-1, ::-1]) and np.allclose(w, w[::-1])
    forced = FORCED[mode] if symmetric else "none"
    if auto_kind == "exact" and forced != "none":
        funcs["pcg"] = lambda: run_lstsq(A, b, preconditioner=forced)
    P = pylops_ops(w, n)
    if P is not None:
        funcs["pylops cgls"] = lambda: run_pylops_cgls(P, b)
        funcs["pylops lsqr"] = lambda: run_pylops_lsqr(P, b)
    out = timed(funcs, repeat)
    x_auto, _, method = out["lstsq"][1]
    row = {"kernel": kname, "mode": mode, "n": n, "method": method}
    if method == "exact":
        ref = x_auto
        # the exact solve against an independent one: FFT division (circular), or CG to
        # rtol 1e-11 (with the preconditioner of the padding where there is one)
        if mode == "circular":
            check, how = fft_division(A, b, n), "FFT division"
        else:
            kind = forced if forced != "none" else None
            check = lstsq(A, b, DAMP, rtol=1e-11, preconditioner=kind, maxiter=20000).x
            how = f"CG to rtol 1e-11 ({kind or 'unpreconditioned'})"
        row["exact check"] = {"against": how, "agreement": rel(x_auto, check)}
    else:
        ref = lstsq(A, b, DAMP, rtol=1e-10).x.ravel()
    for name, (t, (x, its, how)) in out.items():
        row[name] = {"time": t, "iterations": its, "agreement": rel(x, ref), "how": how}
    if P is not None and mode != "zeros":
        row["pylops note"] = "PyLops has zero boundaries only: its own problem"
    best_scipy = min(row["cg"]["time"], row["lsqr"]["time"])
    row["ratio vs scipy"] = row["lstsq"]["time"] / best_scipy
    row["ratio vs cg"] = row["lstsq"]["time"] / row["cg"]["time"]
    if P is not None:
        row["ratio vs pylops"] = row["lstsq"]["time"] / min(row["pylops cgls"]["time"],
                                                          row["pylops lsqr"]["time"])
    if "pcg" in row:
        row["pcg ratio vs scipy"] = row["pcg"]["time"] / best_scipy
    return row


def superres_case(n, repeat, rng, product):
    w = gaussian()
    if product:  # a 2x2 box with stride 2 after the blur: a ProductOperator
        blur = linop.Conv2d(w, (n, n), padding="same", padding_mode="circular")
        A = linop.Conv2d(np.full((2, 2), 0.25), (n, n), stride=2, padding=((0, 1), (0, 1)),
                         padding_mode="circular") @ blur
    else:  # the blur itself with stride 2
        A = linop.Conv2d(w, (n, n), stride=2, padding=7, padding_mode="circular")
    b = noisy(A, image(n), rng)
    out = timed({"lstsq": lambda: run_lstsq(A, b), "cg": lambda: run_cg(A, b),
                 "lsqr": lambda: run_lsqr(A, b)}, repeat)
    ref = out["lstsq"][1][0]
    row = {"kernel": "box s=2 @ gaussian" if product else "gaussian stride 2",
           "mode": "circular", "n": n,
           "method": out["lstsq"][1][2]}
    check = lstsq(A, b, DAMP, rtol=1e-11, preconditioner=None, maxiter=20000).x
    row["exact check"] = {"against": "CG to rtol 1e-11", "agreement": rel(ref, check)}
    for name, (t, (x, its, how)) in out.items():
        row[name] = {"time": t, "iterations": its, "agreement": rel(x, ref), "how": how}
    row["ratio vs cg"] = row["lstsq"]["time"] / row["cg"]["time"]
    row["ratio vs scipy"] = row["lstsq"]["time"] / min(row["cg"]["time"], row["lsqr"]["time"])
    return row


def fmt(entry):
    return f"{entry['time']:.3f}s/{entry['iterations']}"


def report(rows):
    lines = [("| blur | padding | lstsq method | lstsq s/its | PCG s/its | CG s/its | "
              "lsqr s/its | PyLops cgls | PyLops lsqr | lstsq / best SciPy | lstsq / best PyLops "
              "| PCG / best SciPy | CG, lsqr, PCG vs lstsq | exact vs independent |"),
             "|" + " --- |" * 14]
    for row in rows:
        others = [k for k in ("cg", "lsqr", "pcg") if k in row]
        worst = max(row[k]["agreement"] for k in others)
        pcg = fmt(row["pcg"]) if "pcg" in row else "-"
        pcg_ratio = f"{row['pcg ratio vs scipy']:.3f}" if "pcg" in row else "-"
        pyl = [fmt(row[k]) if k in row else "-" for k in ("pylops cgls", "pylops lsqr")]
        pyr = f"{row['ratio vs pylops']:.3f}" if "ratio vs pylops" in row else "-"
        check = (f"{row['exact check']['agreement']:.1e} ({row['exact check']['against']})"
                 if "exact check" in row else "-")
        lines.append(
            f"| {row['kernel']} | {row['mode']} | {row['method']} | {fmt(row['lstsq'])} | "
            f"{pcg} | {fmt(row['cg'])} | {fmt(row['lsqr'])} | {pyl[0]} | {pyl[1]} | "
            f"{row['ratio vs scipy']:.3f} | {pyr} | {pcg_ratio} | {worst:.1e} | {check} |")
    return "\n".join(lines)


def goals(rows):
    out = []
    for row in rows:
        if row["kernel"] == "gaussian":
            goal = GOALS[row["mode"]]
            ahead = row.get("ratio vs pylops", 0) <= 1
            pcg = (f"; PCG alone {row['pcg ratio vs scipy']:.3f}" if "pcg" in row else "")
            if row["mode"] == "circular":  # the goal is against CG, and the same solution
                agree = row["exact check"]["agreement"]
                ok = row["ratio vs cg"] <= goal and agree <= 1e-8 and ahead
                out.append(f"gaussian circular: lstsq/CG {row['ratio vs cg']:.4f} (goal <= "
                           f"{goal:.3f}), exact vs FFT division {agree:.1e} (goal <= 1e-8; CG "
                           f"to rtol 1e-6 is {row['cg']['agreement']:.1e} away), lstsq/PyLops "
                           f"{row.get('ratio vs pylops', float('nan')):.4f}: "
                           f"{'MET' if ok else 'NOT MET'}")
                continue
            ok = row["ratio vs scipy"] <= goal and ahead
            out.append(f"gaussian {row['mode']}: lstsq/best SciPy {row['ratio vs scipy']:.3f} "
                       f"(goal <= {goal:.3f}), lstsq/best PyLops "
                       f"{row.get('ratio vs pylops', float('nan')):.3f}{pcg}: "
                       f"{'MET' if ok else 'NOT MET'}")
        elif row["kernel"] == "motion":
            ok = row["ratio vs cg"] <= 1.0
            out.append(f"motion {row['mode']}: lstsq/CG {row['ratio vs cg']:.3f} ({row['method']}; "
                       f"goal <= 1): {'MET' if ok else 'NOT MET'}")
        elif "stride" not in row["kernel"] and "s=2" not in row["kernel"]:
            out.append(f"{row['kernel']} {row['mode']} (informational): {row['method']}, "
                       f"{row['lstsq']['iterations']} iterations, lstsq/best SciPy "
                       f"{row['ratio vs scipy']:.3f}")
        else:
            ok = row["method"] == "exact"
            out.append(f"super-resolution ({row['kernel']}): {row['method']} in one pass, lstsq/CG "
                       f"{row['ratio vs cg']:.4f}: {'MET' if ok else 'NOT MET'}")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256x256, 1 repeat")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="image size (a smoke test)")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)
    n = args.size or (256 if args.quick else 512)
    repeat = args.repeat or (1 if args.quick else 3)
    rng = np.random.default_rng(0)
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "scipy": scipy.__version__, "linop": linop.__version__}
    try:
        import pylops

        versions["pylops"] = pylops.__version__
    except ImportError:
        pass
    print(f"lstsq benchmark: {n}x{n}, damp^2={DAMP**2:g}, rtol={RTOL:g}, repeat={repeat}, "
          f"{os.cpu_count()} cpus, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()),
          flush=True)
    rows = []
    cases = [("gaussian", gaussian(), MODES), ("motion", motion(), MODES),
             ("two gaussians", two_gaussians(), MODES[1:]), ("disk", disk(), MODES[1:])]
    for kname, w, modes in cases:
        for mode in modes:
            row = deblur_case(kname, w, mode, n, repeat, rng)
            rows.append(row)
            print(f"  {kname} {mode}: {row['method']} {fmt(row['lstsq'])}, CG "
                  f"{fmt(row['cg'])}, lsqr {fmt(row['lsqr'])}", flush=True)
    for product in (False, True):
        rows.append(superres_case(n, repeat, rng, product))
    print()
    print(report(rows))
    print()
    print(goals(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions, "n": n, "repeat": repeat, "rows": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
