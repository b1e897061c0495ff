"""Threads: bit-identical results for any thread count, the GIL released during kernels, and
the thread-count controls (set_num_threads, OMP_NUM_THREADS, threadpoolctl).

Determinism is the contract of STYLE.md point 7: every driver splits its work so that each
output element is reduced in one fixed order whatever the team size. These tests compare raw
bytes across thread counts 1, 2, 3 and os.cpu_count(), and check with
``fastnn._kernels.last_team_size()`` that a multi-thread call really ran on a team.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import _runtime, reference

from kernel_helpers import assert_bit_identical, check_deterministic, team_of

KERNELS = _runtime._kernels


@pytest.fixture(autouse=True)
def _restore_threads():
    before = _runtime._requested_threads
    yield
    fastnn.set_num_threads(before)


def _tolerance(dtype, terms, magnitude):
    """As conftest.float_tolerance: about sqrt(K) * eps * sum|x*w|."""
    return 4 * np.sqrt(max(terms, 1)) * np.finfo(dtype).eps * magnitude


def _rng(seed):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# the problems: shapes chosen so the drivers split work differently
# ---------------------------------------------------------------------------------------------

# name: (x shape, weight shape, stride, padding, dilation, groups)
CONV_CASES = {
    # odd everything, non-square kernel, asymmetric stride/padding/dilation
    "odd": ((3, 5, 17, 19), (7, 5, 3, 2), (2, 1), (1, 2), (1, 2), 1),
    # one image: the forward splits the pixels of that image into blocks per thread
    "one_image_wide": ((1, 3, 61, 67), (5, 3, 3, 3), 1, 1, 1, 1),
    # many small images: work items are whole images
    "many_images": ((16, 3, 9, 7), (4, 3, 2, 3), 1, 0, 1, 1),
    "groups": ((2, 6, 13, 11), (9, 2, 3, 3), 1, 1, 1, 3),
    "depthwise": ((2, 4, 10, 9), (4, 1, 3, 3), (1, 2), 1, 1, 4),
    # C_out above the micro-kernel's MC block and K = 30*3*3 = 270 above its KC block
    "large_cout_and_k": ((2, 30, 9, 8), (200, 30, 3, 3), 1, 1, 1, 1),
}

# Kernels a case may legitimately run on one thread, by the drivers' work split:
# grad_bias is a NumPy sum in the API; grad_input's items are (image, chunk of MC/taps input
# channels), so one image of three channels is one item; grad_weight's items are tiles of dW,
# and C_out <= MC with K = C_in/g*kH*kW <= NR (64 floats on AVX-512) is one tile.
CONV_MAY_BE_SERIAL = {
    "odd": {"grad_bias", "grad_weight"},
    "one_image_wide": {"grad_bias", "grad_input", "grad_weight"},
    "many_images": {"grad_bias", "grad_weight"},
    "groups": {"grad_bias"},
    "depthwise": {"grad_bias"},
    "large_cout_and_k": {"grad_bias"},
}

# name: (T, N, I, H, with h0, nonlinearity)
RNN_CASES = {
    # T*N = 221 rows: the input projection has two MC row blocks to share
    "odd": (13, 17, 11, 37, True, "tanh"),
    "relu_no_h0": (9, 23, 7, 29, False, "relu"),
    # N*H*H = 33*257*257 > 2e6 and H >= 2*NR: the recurrence itself runs on a team
    "parallel_recurrence": (2, 33, 20, 257, True, "tanh"),
}


def conv_problem(name, dtype, seed=0):
    xs, ws, stride, padding, dilation, groups = CONV_CASES[name]
    rng = _rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y_shape = reference.conv2d(x, w, b, **geometry).shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    return x, w, b, dy, geometry


def rnn_problem(name, dtype, seed=0):
    steps, batch, features, hidden, with_h0, nonlinearity = RNN_CASES[name]
    rng = _rng(seed)
    scale = 1 / np.sqrt(hidden)
    x = rng.standard_normal((steps, batch, features)).astype(dtype)
    h0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_h0 else None
    w_ih = (rng.standard_normal((hidden, features)) * scale).astype(dtype)
    w_hh = (rng.standard_normal((hidden, hidden)) * scale).astype(dtype)
    b_ih = rng.standard_normal(hidden).astype(dtype)
    b_hh = rng.standard_normal(hidden).astype(dtype)
    grad_hs = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    return x, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, nonlinearity


def conv_calls(name, dtype):
    """{label: zero-argument call} for the forward and every gradient of one conv problem."""
    x, w, b, dy, geo = conv_problem(name, dtype)
    return {
        "conv2d": lambda: fastnn.conv2d(x, w, b, **geo),
        "grad_input": lambda: fastnn.conv2d_backward(dy, x, w, **geo, needs_weight_grad=False,
                                                     needs_bias_grad=False)[0],
        "grad_weight": lambda: fastnn.conv2d_backward(dy, x, w, **geo, needs_input_grad=False,
                                                      needs_bias_grad=False)[1],
        "grad_bias": lambda: fastnn.conv2d_backward(dy, x, w, **geo)[2],
    }


def rnn_calls(name, dtype):
    x, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, nl = rnn_problem(name, dtype)
    hs = reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nl).astype(dtype)
    return {
        "rnn_forward": lambda: fastnn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nl),
        # (grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b), compared one by one
        "rnn_backward": lambda: fastnn.rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nl),
    }


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv_bit_identical_across_thread_counts(name, dtype, cpu_path, parallel_everything, compiled_only):
    results = check_deterministic(conv_calls(name, dtype), serial_only=CONV_MAY_BE_SERIAL[name])
    # and the deterministic answer is the right one
    x, w, b, dy, geo = conv_problem(name, dtype)
    k = w.shape[1] * w.shape[2] * w.shape[3]
    tol = _tolerance
    want = reference.conv2d(x, w, b, **geo)
    np.testing.assert_allclose(results["conv2d"], want, rtol=0,
                               atol=tol(dtype, k, np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max() + 10))
    gi, gw, _ = reference.conv2d_backward(dy, x, w, **geo)
    np.testing.assert_allclose(results["grad_input"], gi, rtol=0,
                               atol=tol(dtype, w.shape[0] * k, np.abs(dy).max() * np.abs(w).sum() + 1))
    np.testing.assert_allclose(results["grad_weight"], gw, rtol=0,
                               atol=tol(dtype, dy[:, 0].size, np.abs(dy).max() * np.abs(x).sum() + 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(RNN_CASES))
def test_rnn_bit_identical_across_thread_counts(name, dtype, cpu_path, parallel_everything, compiled_only):
    calls = rnn_calls(name, dtype)
    # grad_b is a NumPy sum of the kernel's dz: its call still runs the BPTT kernel on a team
    results = check_deterministic(calls)
    x, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, nl = rnn_problem(name, dtype)
    rtol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(results["rnn_forward"], reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nl),
                               rtol=rtol, atol=rtol)


def test_every_conv_kernel_proven_parallel_somewhere():
    """Each conv kernel must be held to 'ran on a team' by at least one determinism case."""
    for label in ("conv2d", "grad_input", "grad_weight"):
        assert any(label not in serial for serial in CONV_MAY_BE_SERIAL.values()), label


def test_recurrence_team_really_parallel(parallel_everything, compiled_only):
    """The 'parallel_recurrence' case is the one whose time loop runs on a team: prove it
    (the input projection alone would also report a team), so its determinism test means something."""
    x, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, nl = rnn_problem("parallel_recurrence", np.float32)
    fastnn.set_num_threads(2)
    # One step: its N = 33 rows fit one MC block, so the input projection runs serially and
    # a team can only come from the recurrence.
    assert x.shape[1] <= KERNELS.gemm_kernels()["float32"]["mc"]
    _, team = team_of(lambda: fastnn.rnn_forward(x[:1], h0, w_ih, w_hh, b_ih, b_hh, nl))
    assert team == 2


def test_repeated_calls_identical_with_other_work_between(parallel_everything, compiled_only):
    """Per-thread scratch kept between calls must not leak one call's data into the next:
    alternate two problems of different sizes and compare with their first results."""
    fastnn.set_num_threads(2)
    calls_a = conv_calls("large_cout_and_k", np.float32)
    calls_b = conv_calls("one_image_wide", np.float32)
    rnn = rnn_calls("odd", np.float32)
    first = {k: c() for k, c in [*calls_a.items(), *(("b" + k, c) for k, c in calls_b.items()), *rnn.items()]}
    for _ in range(3):
        for key, call in [*calls_b.items()]:
            assert_bit_identical(call(), first["b" + key], "b" + key)
        for key, call in [*calls_a.items(), *rnn.items()]:
            assert_bit_identical(call(), first[key], key)


# ---------------------------------------------------------------------------------------------
# the GIL: concurrent Python threads, and progress while a kernel runs
# ---------------------------------------------------------------------------------------------

def test_concurrent_python_threads_give_single_thread_results(parallel_everything, compiled_only):
    """Four Python threads call every kernel at once on shared read-only inputs; each result
    must equal, bit for bit, what one thread computed alone (each call's own OpenMP team and
    per-thread scratch: no sharing between concurrent calls)."""
    calls = {}
    for name in ("odd", "groups", "large_cout_and_k"):
        calls.update({f"{name}.{k}": c for k, c in conv_calls(name, np.float32).items()})
    for name in ("odd", "parallel_recurrence"):
        calls.update({f"rnn.{name}.{k}": c for k, c in rnn_calls(name, np.float64).items()})
    fastnn.set_num_threads(2)
    expected = {label: call() for label, call in calls.items()}
    labels = sorted(calls) * 4
    rng = np.random.default_rng(7)
    rng.shuffle(labels)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [(label, pool.submit(calls[label])) for label in labels]
        for label, future in futures:
            assert_bit_identical(future.result(timeout=120), expected[label], label + " (concurrent)")
    # and the single-thread answer is right
    x, w, b, dy, geo = conv_problem("odd", np.float32)
    np.testing.assert_allclose(expected["odd.conv2d"], reference.conv2d(x, w, b, **geo), rtol=1e-4, atol=1e-4)


class _Counter(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.count += 1


def _scalable_call(kernel, scale):
    """A call of `kernel` whose work grows linearly with scale (images, or time steps)."""
    rng = np.random.default_rng(3)
    if kernel.startswith("conv"):
        x = rng.standard_normal((scale, 64, 40, 40)).astype(np.float32)
        w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
        if kernel == "conv2d":
            return lambda: fastnn.conv2d(x, w)
        dy = rng.standard_normal((scale, 64, 38, 38)).astype(np.float32)
        return lambda: fastnn.conv2d_backward(dy, x, w)
    x = rng.standard_normal((4 * scale, 64, 256)).astype(np.float32)
    w_ih = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    w_hh = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    if kernel == "rnn_forward":
        return lambda: fastnn.rnn_forward(x, None, w_ih, w_hh)
    hs = fastnn.rnn_forward(x, None, w_ih, w_hh)
    return lambda: fastnn.rnn_backward(hs, x, None, hs, w_ih, w_hh)


def _call_of_at_least(kernel, seconds):
    """A call of `kernel` sized so that it takes at least `seconds` here (at most 2000 units),
    its scratch warm. The size is checked on the call itself, and grown until it holds: on a
    noisy machine one slow small call would otherwise size the real one far too small."""
    scale = 1
    while True:
        call = _scalable_call(kernel, scale)
        call()
        t0 = time.perf_counter()
        call()
        took = time.perf_counter() - t0
        if took >= seconds or scale >= 2000:
            return call
        scale = min(2000, int(np.ceil(scale * 1.5 * seconds / max(took, 1e-4))))


@pytest.mark.parametrize("kernel", ["conv2d", "conv2d_backward", "rnn_forward", "rnn_backward"])
def test_gil_released_during_kernel(kernel, compiled_only):
    """A counter thread keeps counting while one long single-threaded kernel call runs in this
    thread. Were the GIL held for the call, the counter would get at most one switch interval
    (5 ms) of it: about 2% of a 0.3 s call."""
    fastnn.set_num_threads(1)
    call = _call_of_at_least(kernel, 0.3)
    counter = _Counter()
    counter.start()
    try:
        while counter.count == 0:
            time.sleep(0.001)
        c0, t0 = counter.count, time.perf_counter()
        time.sleep(0.1)
        idle_rate = (counter.count - c0) / (time.perf_counter() - t0)
        c0, t0 = counter.count, time.perf_counter()
        call()
        elapsed = time.perf_counter() - t0
        during = counter.count - c0
    finally:
        counter.stop = True
        counter.join()
    rate = during / elapsed
    assert elapsed > 0.1, f"the call took only {elapsed:.3f} s: too short to tell"
    assert rate > 0.25 * idle_rate, (
        f"{kernel}: the counter thread advanced {during} in {elapsed:.3f} s during the kernel "
        f"({rate:.0f}/s) against {idle_rate:.0f}/s idle: the GIL was held")


# ---------------------------------------------------------------------------------------------
# set_num_threads / get_num_threads, OMP_NUM_THREADS, threadpoolctl
# ---------------------------------------------------------------------------------------------

def _big_conv():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 16, 48, 48)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    return lambda: fastnn.conv2d(x, w)


def test_set_num_threads_value_wins(compiled_only):
    call = _big_conv()
    for n in (3, 1, 2):
        fastnn.set_num_threads(n)
        assert fastnn.get_num_threads() == n
        assert fastnn.show_config(print_out=False)["num_threads"] == n
        _, team = team_of(call)
        assert team == n


def test_none_reverts_to_openmp_max_read_at_each_call(compiled_only):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fastnn.set_num_threads(3)
    fastnn.set_num_threads(None)
    assert fastnn.get_num_threads() == KERNELS.max_threads()
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert KERNELS.max_threads() == 1
        assert fastnn.get_num_threads() == 1  # read now, not cached at set_num_threads(None)
    assert fastnn.get_num_threads() == KERNELS.max_threads() == (os.cpu_count() or 1)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (True, TypeError),
                                        (2.0, TypeError), ("2", TypeError)])
def test_set_num_threads_rejects(bad, error):
    fastnn.set_num_threads(2)
    with pytest.raises(error):
        fastnn.set_num_threads(bad)
    assert fastnn.get_num_threads() == 2  # unchanged by the refused call


_CHILD = """
import json, numpy as np, fastnn
from fastnn import _kernels
x = np.random.default_rng(0).standard_normal((4, 16, 48, 48)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((32, 16, 3, 3)).astype(np.float32)
_kernels.reset_team_size()
fastnn.conv2d(x, w)
print(json.dumps({"threads": fastnn.get_num_threads(), "team": _kernels.last_team_size()}))
"""


def _python(code, env_extra, timeout=60):
    env = dict(os.environ)
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("omp", [1, 2, 3])
def test_omp_num_threads_honoured(omp, compiled_only):
    out = json.loads(_python(_CHILD, {"OMP_NUM_THREADS": str(omp)}).splitlines()[-1])
    assert out == {"threads": omp, "team": omp}


def _fastnn_openmp_libraries():
    """Real paths of the OpenMP runtime(s) fastnn's extension is linked against (from ldd)."""
    proc = subprocess.run(["ldd", KERNELS.__file__], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"ldd unavailable: {proc.stderr}")
    libs = set()
    for line in proc.stdout.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and any(key in parts[0] for key in ("gomp", "libomp", "iomp")):
            libs.add(os.path.realpath(parts[1].split("(")[0].strip()))
    return libs


def test_threadpoolctl_sees_and_limits_fastnn_openmp(compiled_only):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert fastnn.show_config(print_out=False)["openmp"]
    ours = _fastnn_openmp_libraries()
    assert ours, "fastnn's extension links no OpenMP runtime"
    listed = {os.path.realpath(info["filepath"]) for info in threadpoolctl.threadpool_info()
              if info["user_api"] == "openmp"}
    assert ours <= listed, f"threadpool_info() lists {listed}, not fastnn's {ours}"
    call = _big_conv()
    fastnn.set_num_threads(None)
    _, team = team_of(call)
    assert team == fastnn.get_num_threads() == (os.cpu_count() or 1)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
        _, team = team_of(call)
        assert team == 1
        # an explicit set_num_threads still wins over the limit
        fastnn.set_num_threads(2)
        _, team = team_of(call)
        assert team == 2
        fastnn.set_num_threads(None)
    _, team = team_of(call)
    assert team == (os.cpu_count() or 1)
