"""Scale-out benchmark: blur and back-project one large image on a local Dask cluster.

Run by hand (not part of the test suite)::

    python benchmarks/bench_dask.py                      # 16384 x 16384 float64 (2 GiB)
    python benchmarks/bench_dask.py --size 8192 --memory-limit 1GiB

One ``size x size`` float64 image, generated chunk by chunk on the workers
(it never exists in one piece), is blurred with a 5x5 kernel (``padding="same"``,
``padding_mode="reflect"`` by default) and back-projected with the adjoint:
``z = A^T A x``, with `linop.dask.apply` / `linop.dask.apply_adjoint`, on a
``distributed.LocalCluster`` whose memory limit per worker is below the image's
size. The full pass reduces ``|A x|^2``, ``<x, A^T A x>`` (equal by the adjoint
identity, checked on the whole image) and ``sum(z)``.

Reported: wall time of the full pass, peak resident memory of every worker
process (sampled), and agreement with the in-memory operator on two crops: the
top-left corner (where the padding mode acts) and a crop in the middle. Each crop
is computed in memory from the input crop plus a margin of 8 pixels (the
receptive field of ``A^T A`` is 4 pixels), and only pixels away from the margin
are compared.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakSampler:
    """Polls the resident memory of every worker process in a background thread."""

    def __init__(self, client, interval=0.25):
        self.client, self.interval = client, interval
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for worker, rss in self.client.run(_rss).items():
                    self.peak[worker] = max(self.peak.get(worker, 0), rss)
            except Exception:  # noqa: BLE001 - a worker restarting: keep sampling the others
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def gaussian_kernel(size=5, sigma=1.2):
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=16384, help="image side (default 16384)")
    p.add_argument("--chunk", type=int, default=512, help="chunk side (default 512)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="1.5GiB", help="per worker (default 1.5GiB)")
    p.add_argument("--mode", default="reflect",
                   choices=["zeros", "reflect", "replicate", "circular"])
    p.add_argument("--crop", type=int, default=1024, help="side of the checked crops")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)

    import dask
    import dask.array as da
    from dask.utils import format_bytes, parse_bytes
    from distributed import Client, LocalCluster

    import linop
    import linop.dask as ld

    n, c = args.size, args.chunk
    image_bytes = n * n * 8
    limit = parse_bytes(args.memory_limit)
    print(f"image {n} x {n} float64 = {format_bytes(image_bytes)}, chunks {c} x {c}, "
          f"{args.workers} workers x {format_bytes(limit)}, 5x5 kernel, mode {args.mode}")
    if limit >= image_bytes:
        print("note: the memory limit per worker is not below the image's size")

    kernel = gaussian_kernel()
    A = linop.Conv2d(kernel, (n, n), padding="same", padding_mode=args.mode)
    x = da.random.default_rng(0).standard_normal((n, n), chunks=c)
    y = ld.apply(A, x)
    z = ld.apply_adjoint(A, y)
    figures = {"size": n, "chunk": c, "workers": args.workers, "memory_limit": limit,
               "mode": args.mode, "image_bytes": image_bytes}

    with dask.config.set({"distributed.worker.daemon": True,
                          "logging.distributed": "error"}):
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          memory_limit=limit, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            baseline = max(client.run(_rss).values())
            with PeakSampler(client) as sampler:
                t0 = time.perf_counter()
                yy, xz, zsum = client.compute([(y * y).sum(), (x * z).sum(), z.sum()],
                                              sync=True)
                wall = time.perf_counter() - t0
            print(f"full pass (A x, A^T A x, reductions): {wall:.1f} s, "
                  f"{len(z.__dask_graph__())} tasks in z's graph")
            print("peak worker memory: " + ", ".join(
                format_bytes(v) for v in sorted(sampler.peak.values()))
                + f" (idle worker {format_bytes(baseline)})")
            identity = abs(yy - xz) / abs(yy)
            print(f"adjoint identity on the whole image: |Ax|^2 = {yy:.10e}, "
                  f"<x, A^T A x> = {xz:.10e}, relative difference {identity:.1e}")
            figures.update(wall_s=wall, peak_worker_rss=sorted(sampler.peak.values()),
                           idle_worker_rss=baseline, adjoint_identity=identity,
                           z_sum=float(zsum))

            # agreement with the in-memory operator on two crops
            m, k = 8, args.crop
            crops = {"corner": (0, 0), "middle": (n // 2 - k // 2, n // 2 - k // 2)}
            worst = 0.0
            for name, (r0, c0) in crops.items():
                lo_r, lo_c = max(r0 - m, 0), max(c0 - m, 0)
                hi_r, hi_c = min(r0 + k + m, n), min(c0 + k + m, n)
                xc, zc = client.compute([x[lo_r:hi_r, lo_c:hi_c], z[r0:r0 + k, c0:c0 + k]],
                                        sync=True)
                t1 = time.perf_counter()
                B = linop.Conv2d(kernel, xc.shape, padding="same", padding_mode=args.mode)
                ref = B.apply_adjoint(B.apply(xc))[r0 - lo_r:r0 - lo_r + k,
                                                    c0 - lo_c:c0 - lo_c + k]
                t_mem = time.perf_counter() - t1
                diff = float(np.abs(zc - ref).max())
                rel = diff / float(np.abs(ref).max())
                worst = max(worst, rel)
                print(f"crop {name} {k} x {k} at ({r0}, {c0}): max |dask - in-memory| = "
                      f"{diff:.2e} (relative {rel:.1e}); in-memory on the crop {t_mem:.2f} s")
                figures[f"crop_{name}_max_abs_diff"] = diff
                figures[f"crop_{name}_max_rel_diff"] = rel
            figures["crop_max_rel_diff"] = worst
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


if __name__ == "__main__":
    main()
