"""Threads, fork and processes: operators give the same numbers everywhere, and never hang.

Every test that starts a process or a thread bounds its wait, so that a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import linop
from conftest import forked_product

TIMEOUT = 60  # seconds: far above what any of these takes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_fork_after_a_threaded_product_does_not_hang():
    # 400x400 with a 3x3 kernel: 1.4 million stored entries, shared out to threads
    op = linop.Conv2d(np.ones((3, 3)), (400, 400))
    x = np.random.default_rng(0).standard_normal(op.shape[1])
    expected = op @ x  # starts the thread pool in this process
    data, exitcode = forked_product(op, x, TIMEOUT)
    assert data is not None, "the forked child hung in a threaded product"
    assert exitcode == 0
    got = np.frombuffer(data, dtype=expected.dtype)
    np.testing.assert_array_equal(got, expected)
    # the reference: the product written as a correlation of the zero-free interior
    image = x.reshape(400, 400)
    window_sums = sum(image[i : i + 398, j : j + 398] for i in range(3) for j in range(3))
    np.testing.assert_allclose(expected.reshape(398, 398), window_sums, rtol=1e-12, atol=1e-12)


def _run_threads(target, n):
    errors = []

    def guarded(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_memory_limit_is_local_to_a_thread():
    default = linop.get_memory_limit()
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def limited(_):
        with linop.memory_limit(1000):
            inside.set()
            seen["limited"] = linop.get_memory_limit()
            release.wait(TIMEOUT)
            seen["limited after"] = linop.get_memory_limit()

    worker = threading.Thread(target=limited, args=(0,))
    worker.start()
    assert inside.wait(TIMEOUT)
    # another thread (this one) does not see the limit of the block
    assert linop.get_memory_limit() != 1000
    linop.conv_matrix(np.ones((3, 3)), (64, 64))  # refused under 1000 bytes
    release.set()
    worker.join(TIMEOUT)
    assert seen == {"limited": 1000, "limited after": 1000}
    assert abs(linop.get_memory_limit() - default) < default // 10 + 2**20


def test_interleaved_exits_restore_each_threads_limit():
    order = []
    barrier = threading.Barrier(2, timeout=TIMEOUT)

    def nested(i):
        with linop.memory_limit(1000 + i):
            barrier.wait()
            with linop.memory_limit(2000 + i):
                order.append((i, linop.get_memory_limit()))
                barrier.wait()
            order.append((i, linop.get_memory_limit()))
            barrier.wait()
        order.append((i, linop.get_memory_limit() > 10**6))

    _run_threads(nested, 2)
    assert sorted(order) == [(0, True), (0, 1000), (0, 2000), (1, True), (1, 1001), (1, 2001)]
    assert linop.get_memory_limit() > 10**6  # the process default is untouched


def test_set_memory_limit_is_the_process_default_under_a_block():
    try:
        linop.set_memory_limit(5000)
        with linop.memory_limit(7000):
            assert linop.get_memory_limit() == 7000
            with linop.memory_limit(None):  # back to the process default inside
                assert linop.get_memory_limit() == 5000
        assert linop.get_memory_limit() == 5000
    finally:
        linop.set_memory_limit(None)


@pytest.mark.parametrize("method", ["toeplitz", "im2col"])
def test_threads_building_and_applying_one_operator_agree(method):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 2, 3, 3))
    x = rng.standard_normal((8, 2, 40, 30))
    reference = linop.Conv2d(w, (2, 40, 30), padding=1, padding_mode="reflect", method=method)
    expected = reference.apply(x)
    expected_adjoint = reference.apply_adjoint(expected)
    op = linop.Conv2d(w, (2, 40, 30), padding=1, padding_mode="reflect", method=method)
    results = {}
    # all threads use the fresh operator at once: its caches are built concurrently
    _run_threads(lambda i: results.__setitem__(i, (op.apply(x), op.apply_adjoint(expected))), 6)
    for got, got_adjoint in results.values():
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got_adjoint, expected_adjoint)
    # and the numbers are the convolution's: one output by hand
    pad = np.pad(x[0], ((0, 0), (1, 1), (1, 1)), mode="reflect")
    assert np.isclose(expected[0, 1, 5, 7], np.sum(w[1] * pad[:, 5:8, 7:10]))


def test_dask_process_scheduler_with_upsample_and_convolutions():
    """The issue's reproduction: batch-chunked Upsample on the processes scheduler."""
    pytest.importorskip("dask")
    code = textwrap.dedent("""
        import numpy as np, dask.array as da, linop, linop.dask
        up = linop.Upsample((1, 4, 4), scale_factor=2, mode="bilinear")
        conv = linop.Conv2d(np.arange(9.0).reshape(3, 3), (8, 8), padding=1)
        x = np.random.default_rng(0).standard_normal((6, 1, 4, 4))
        X = da.from_array(x, chunks=(2, 1, 4, 4))
        got = linop.dask.apply(up, X).compute(scheduler="processes", num_workers=2)
        assert np.array_equal(got, up.apply(x)), "upsample"
        y = up.apply(x)[:, 0]
        Y = da.from_array(y, chunks=(3, 4, 4))  # batch and spatial chunks
        got = linop.dask.apply(conv, Y).compute(scheduler="processes", num_workers=2)
        assert np.allclose(got, conv.apply(y), rtol=1e-13, atol=1e-13), "conv"
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT * 3)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
