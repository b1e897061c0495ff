"""Large problems: 64-bit index arithmetic, absurd sizes refused before allocating, and no
memory growth over thousands of calls.

Set FASTNN_LONG_TESTS=1 for the slow case: a grad_input of more than 2**31 elements, which
writes about 9 GB of memory.
"""
import os
import threading
import tracemalloc

import numpy as np
import pytest

import fastnn
from fastnn import _runtime

LONG = os.environ.get("FASTNN_LONG_TESTS", "") not in ("", "0")
long_only = pytest.mark.skipif(not LONG, reason="slow: set FASTNN_LONG_TESTS=1")
INT32_MAX = 2**31 - 1


@pytest.fixture(autouse=True)
def _restore_threads():
    before = _runtime._requested_threads
    yield
    fastnn.set_num_threads(before)


def _cheap_random(shape, seed):
    """A big float32 array of random-looking values, quickly: one random block, repeated with
    a period coprime to the axes so neighbouring rows and channels differ."""
    block = np.random.default_rng(seed).standard_normal(1_000_003).astype(np.float32)
    out = np.empty(shape, np.float32)
    flat = out.reshape(-1)
    for start in range(0, flat.size, block.size):
        part = flat[start:start + block.size]
        part[...] = block[:part.size]
    return out


# ---------------------------------------------------------------------------------------------
# 64-bit index arithmetic
# ---------------------------------------------------------------------------------------------

# The implicit im2col matrix of x (1, 32, 760, 760) and an 11x11 kernel would have
# K * P = (32 * 121) * 750**2 = 2.18e9 > 2**31 elements, for an x of only 74 MB.
WIDE_C, WIDE_HW, WIDE_K = 32, 760, 11
WIDE_OUT = WIDE_HW - WIDE_K + 1


@pytest.fixture(scope="module")
def wide_conv():
    x = _cheap_random((1, WIDE_C, WIDE_HW, WIDE_HW), 0)
    w = np.random.default_rng(1).standard_normal((1, WIDE_C, WIDE_K, WIDE_K)).astype(np.float32)
    assert WIDE_C * WIDE_K**2 * WIDE_OUT**2 > INT32_MAX
    dy = _cheap_random((1, 1, WIDE_OUT, WIDE_OUT), 2)
    return x, w, dy


SAMPLE_PIXELS = [(0, 0), (WIDE_OUT - 1, WIDE_OUT - 1), (500, WIDE_OUT - 1), (WIDE_OUT - 1, 3), (377, 0)]


def _tol(terms, magnitude, dtype=np.float32):
    return 4 * np.sqrt(terms) * np.finfo(dtype).eps * magnitude


def test_conv2d_with_im2col_beyond_int32(wide_conv, compiled_only):
    x, w, _ = wide_conv
    fastnn.set_num_threads(None)
    y = fastnn.conv2d(x, w)
    assert y.shape == (1, 1, WIDE_OUT, WIDE_OUT)
    for i, j in SAMPLE_PIXELS:
        terms = x[0, :, i:i + WIDE_K, j:j + WIDE_K].astype(np.float64) * w[0]
        assert abs(y[0, 0, i, j] - terms.sum()) <= _tol(terms.size, np.abs(terms).sum()), (i, j)
    assert np.isfinite(y).all()


def test_conv2d_backward_with_im2col_beyond_int32(wide_conv, compiled_only):
    x, w, dy = wide_conv
    fastnn.set_num_threads(None)
    gi, gw, _ = fastnn.conv2d_backward(dy, x, w)
    last = WIDE_K - 1
    for c, a, b in [(0, 0, 0), (WIDE_C - 1, last, last), (16, 5, 0), (WIDE_C - 1, 0, last)]:
        terms = dy[0, 0].astype(np.float64) * x[0, c, a:a + WIDE_OUT, b:b + WIDE_OUT]
        assert abs(gw[0, c, a, b] - terms.sum()) <= _tol(terms.size, np.abs(terms).sum()), (c, a, b)
    for c, i, j in [(0, 0, 0), (WIDE_C - 1, WIDE_HW - 1, WIDE_HW - 1), (10, 380, 1), (WIDE_C - 1, 755, 700)]:
        terms = np.array([w[0, c, a, b] * np.float64(dy[0, 0, i - a, j - b])
                          for a in range(WIDE_K) for b in range(WIDE_K)
                          if 0 <= i - a < WIDE_OUT and 0 <= j - b < WIDE_OUT])
        assert abs(gi[0, c, i, j] - terms.sum()) <= _tol(terms.size, np.abs(terms).sum()), (c, i, j)


@pytest.fixture(scope="module")
def huge_sparse_x():
    """x (1, 2, 32769, 32769) float32: 2**31 + 131074 elements (8.6 GB of address space, but
    np.zeros maps it lazily and a strided 1x1 conv reads only a few pages of it). Known values
    sit past element 2**31, where a 32-bit offset would have wrapped."""
    x = np.zeros((1, 2, 32769, 32769), np.float32)
    assert x.size > INT32_MAX + 1
    spots = {(0, -1, -1): 7.0, (1, -1, -1): 3.0, (1, -1, 0): 5.0, (1, 0, -1): 11.0, (1, 16384, 16384): 13.0}
    for (c, i, j), value in spots.items():
        x[0, c, i, j] = value
    assert np.ravel_multi_index((0, 1, 32768, 32768), x.shape) > INT32_MAX
    return x


def test_conv2d_reads_elements_beyond_int32(huge_sparse_x, compiled_only):
    x = huge_sparse_x
    # implicit GEMM (two input channels per group)
    w = np.array([2.0, 10.0], np.float32).reshape(1, 2, 1, 1)
    y = fastnn.conv2d(x, w, stride=64)
    assert y.shape == (1, 1, 513, 513)
    want = np.zeros(y.shape, np.float32)
    want[0, 0, -1, -1] = 2 * 7 + 10 * 3
    want[0, 0, -1, 0] = 10 * 5
    want[0, 0, 0, -1] = 10 * 11
    want[0, 0, 256, 256] = 10 * 13
    np.testing.assert_array_equal(y, want)
    # the direct kernel (one input channel per group)
    y2 = fastnn.conv2d(x, w.reshape(2, 1, 1, 1), stride=64, groups=2)
    want2 = np.zeros(y2.shape, np.float32)
    want2[0, 0, -1, -1] = 2 * 7
    want2[0, 1, -1, -1], want2[0, 1, -1, 0], want2[0, 1, 0, -1], want2[0, 1, 256, 256] = 30, 50, 110, 130
    np.testing.assert_array_equal(y2, want2)


def test_conv2d_grad_weight_reads_elements_beyond_int32(huge_sparse_x, compiled_only):
    x = huge_sparse_x
    dy = np.ones((1, 1, 513, 513), np.float32)
    gw = fastnn.conv2d_backward(dy, x, np.ones((1, 2, 1, 1), np.float32), stride=64,
                                needs_input_grad=False)[1]
    np.testing.assert_array_equal(gw.ravel(), [7.0, 3 + 5 + 11 + 13])
    gw2 = fastnn.conv2d_backward(np.ones((1, 2, 513, 513), np.float32), x,
                                 np.ones((2, 1, 1, 1), np.float32), stride=64, groups=2,
                                 needs_input_grad=False)[1]
    np.testing.assert_array_equal(gw2.ravel(), [7.0, 3 + 5 + 11 + 13])


@long_only
def test_conv2d_grad_input_writes_elements_beyond_int32(huge_sparse_x, compiled_only):
    """grad_input of x's shape: 8.6 GB really written."""
    x = huge_sparse_x
    dy = np.zeros((1, 1, 513, 513), np.float32)
    dy[0, 0, -1, -1] = 1.5
    dy[0, 0, 256, 256] = 2.5
    gi = fastnn.conv2d_backward(dy, x, np.array([2.0, 10.0], np.float32).reshape(1, 2, 1, 1),
                                stride=64, needs_weight_grad=False, needs_bias_grad=False)[0]
    assert gi[0, 1, -1, -1] == 15.0 and gi[0, 0, -1, -1] == 3.0 and gi[0, 1, 16384, 16384] == 25.0
    assert np.count_nonzero(gi) == 4
    del gi


# ---------------------------------------------------------------------------------------------
# absurd sizes: ValueError before any allocation
# ---------------------------------------------------------------------------------------------

def _huge(shape, dtype=np.float32):
    """A read-only view of the given shape that occupies one element of memory."""
    return np.broadcast_to(np.ones((1,) * len(shape), dtype), shape)


ABSURD = {
    "conv2d_padding_1e9": lambda: fastnn.conv2d(np.ones((1, 1, 4, 4), np.float32),
                                               np.ones((1, 1, 3, 3), np.float32), padding=10**9),
    "conv2d_padding_1e9_direct": lambda: fastnn.conv2d(np.ones((1, 2, 4, 4), np.float32),
                                                      np.ones((2, 1, 3, 3), np.float32),
                                                      padding=10**9, groups=2),
    "conv2d_huge_n": lambda: fastnn.conv2d(_huge((2**62, 1, 1, 1)), np.ones((1, 1, 1, 1), np.float32)),
    "conv2d_huge_n_and_c_out": lambda: fastnn.conv2d(_huge((2**31, 1, 2, 2)), _huge((2**31, 1, 1, 1))),
    "conv2d_backward_padding_1e9": lambda: fastnn.conv2d_backward(
        _huge((1, 1, 2 * 10**9 + 2, 2 * 10**9 + 2)), np.ones((1, 1, 4, 4), np.float32),
        np.ones((1, 1, 3, 3), np.float32), padding=10**9),
    "conv2d_backward_huge_n": lambda: fastnn.conv2d_backward(
        _huge((2**62, 1, 1, 1)), _huge((2**62, 1, 1, 1)), np.ones((1, 1, 1, 1), np.float32)),
    "rnn_forward_huge": lambda: fastnn.rnn_forward(
        _huge((2**40, 2**20, 1)), None, np.ones((4, 1), np.float32), np.ones((4, 4), np.float32)),
    "rnn_backward_huge": lambda: fastnn.rnn_backward(
        _huge((2**40, 2**20, 4)), _huge((2**40, 2**20, 1)), None, _huge((2**40, 2**20, 4)),
        np.ones((4, 1), np.float32), np.ones((4, 4), np.float32)),
}


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_absurd_sizes_refused_before_allocating(name):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError):
            ABSURD[name]()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # NumPy reports its array allocations to tracemalloc: nothing big was even attempted
    assert peak < 16 * 2**20, f"{name}: {peak / 2**20:.0f} MiB allocated before refusing"


# ---------------------------------------------------------------------------------------------
# no memory growth over repeated calls
# ---------------------------------------------------------------------------------------------

def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _small_calls():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    xd = rng.standard_normal((2, 8, 20, 20))
    wd = rng.standard_normal((8, 1, 3, 3))
    dy = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    rx = rng.standard_normal((6, 4, 10))
    w_ih, w_hh = rng.standard_normal((12, 10)) * 0.3, rng.standard_normal((12, 12)) * 0.3
    hs = fastnn.rnn_forward(rx, None, w_ih, w_hh)
    return [
        lambda: fastnn.conv2d(x, w, padding=1),
        lambda: fastnn.conv2d(xd, wd, padding=1, groups=8),
        lambda: fastnn.conv2d_backward(dy, x, w, padding=1),
        lambda: fastnn.rnn_forward(rx, None, w_ih, w_hh),
        lambda: fastnn.rnn_backward(hs, rx, None, hs, w_ih, w_hh),
        # the error paths too
        lambda: pytest.raises(ValueError, fastnn.conv2d, x, w[:, :3]),
    ]


@pytest.mark.parametrize("threads, repeats", [(1, 2000), (2, 400)])
def test_repeated_calls_do_not_grow_memory(threads, repeats, parallel_everything, compiled_only):
    """(Teams of 2 on tiny problems are slow on a loaded 2-core machine: fewer repeats.)"""
    fastnn.set_num_threads(threads)
    calls = _small_calls()
    for _ in range(100):  # warm up: scratch buffers, allocator arenas, caches
        for call in calls:
            call()
    before = _rss()
    for _ in range(repeats):
        for call in calls:
            call()
    grown = _rss() - before
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {repeats} x {len(calls)} calls"


def test_scratch_of_finished_python_threads_is_freed(compiled_only):
    """Each Python thread that calls a kernel gets its own scratch (packed weights: 37 MiB
    here, above glibc's largest mmap threshold, so a free returns it to the OS); it must be
    released when the thread ends. 30 threads would otherwise keep over 1 GiB."""
    fastnn.set_num_threads(1)
    rng = np.random.default_rng(6)
    w = rng.standard_normal((512, 512, 6, 6)).astype(np.float32)
    x = rng.standard_normal((1, 512, 6, 6)).astype(np.float32)
    want = fastnn.conv2d(x, w)

    def work(out, i):
        out[i] = fastnn.conv2d(x, w)

    results = {}
    for i in range(3):  # warm up
        t = threading.Thread(target=work, args=(results, i))
        t.start()
        t.join()
    before = _rss()
    for i in range(30):
        t = threading.Thread(target=work, args=(results, i))
        t.start()
        t.join()
    grown = _rss() - before
    assert all(np.array_equal(r, want) for r in results.values())
    assert grown < 200 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB over 30 short-lived threads"
