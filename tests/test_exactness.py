"""Exact results on small integers: a dropped or doubled term cannot hide in a tolerance.

Inputs are integers in [-8, 8] (many of them 0). Every partial sum a kernel can form is then
an integer no larger than the same sum taken over absolute values, which the oracle computes
(in float64) and each test checks to be below 2**24: float32 represents every such integer, so
every addition and fused multiply-add is exact in any order, and the compiled float32 result
must equal the float64 oracle's bit for bit. Each test asserts that bound before comparing, so
exactness holds by construction rather than by luck.

Covered: conv2d forward and all three gradients, and the relu RNN (rnn_forward, rnn_backward,
rnn_step, rnn_step_backward) for T <= 3, on every dispatch path (the `cpu_path` fixture), serial
and with teams of threads forced on tiny problems.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _runtime, reference

EXACT_LIMIT = 2.0**24  # every integer up to this is a float32
DTYPES = (np.float32, np.float64)

fixture_settings = settings(
    suppress_health_check=list(settings().suppress_health_check) + [HealthCheck.function_scoped_fixture])


def small_ints(rng, shape, dtype, bound=8, zeros=0.4):
    """Integers in [-bound, bound] as dtype, about `zeros` of them 0."""
    a = rng.integers(-bound, bound + 1, size=shape).astype(np.float64)
    a[rng.random(shape) < zeros] = 0
    return a.astype(dtype)


def f64(a):
    return None if a is None else np.array(a, dtype=np.float64)


def absf64(a):
    return None if a is None else np.abs(np.array(a, dtype=np.float64))


def assert_exact(got, expected, magnitude, what):
    """got == expected exactly, after checking that the inputs keep every partial sum exact."""
    assert np.max(magnitude, initial=0) < EXACT_LIMIT, (
        f"{what}: test inputs too large to be exact in float32 (bound {np.max(magnitude)})")
    assert expected.shape == got.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    cast = expected.astype(got.dtype)
    assert np.array_equal(cast, expected), f"{what}: the oracle's result is not exactly representable"
    if not np.array_equal(got, cast):
        bad = got != cast
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements differ; first at {i}: "
                             f"got {got[i]!r}, expected {cast[i]!r}")


@contextlib.contextmanager
def teams(parallel):
    """With parallel=True, lower the serial threshold to 0 and use 3 threads, so even tiny
    problems split their work among a team."""
    if not parallel:
        yield
        return
    threshold, threads = _runtime.serial_threshold, _runtime._requested_threads
    _runtime.serial_threshold = 0
    fastnn.set_num_threads(3)
    try:
        yield
    finally:
        _runtime.serial_threshold = threshold
        fastnn.set_num_threads(threads)


# ---- conv2d ------------------------------------------------------------------------------------

@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans())
    if depthwise:
        c_in, c_out = groups, groups * draw(st.integers(1, 3))
    else:
        c_in, c_out = groups * draw(st.integers(0, 3)), groups * draw(st.integers(0, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad = draw(st.one_of(st.tuples(st.integers(0, 4), st.integers(0, 4)), st.just("same"), st.just("valid")))
    stride = (1, 1) if pad == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    sizes = []
    for axis, (k, d) in enumerate(((kh, dh), (kw, dw))):
        total = {"same": d * (k - 1), "valid": 0}.get(pad) if isinstance(pad, str) else 2 * pad[axis]
        smallest = max(0, d * (k - 1) + 1 - total)
        sizes.append(draw(st.integers(smallest, smallest + 8)))
    n = draw(st.integers(0, 3))
    return dict(x_shape=(n, c_in, *sizes), w_shape=(c_out, c_in // groups, kh, kw),
                kwargs=dict(stride=stride, padding=pad, dilation=(dh, dw), groups=groups))


def check_conv_exact(cfg, dtype, seed, parallel):
    rng = np.random.default_rng(seed)
    kw = cfg["kwargs"]
    x = small_ints(rng, cfg["x_shape"], dtype)
    w = small_ints(rng, cfg["w_shape"], dtype)
    b = small_ints(rng, cfg["w_shape"][:1], dtype)
    expected = reference.conv2d(f64(x), f64(w), f64(b), **kw)
    dy = small_ints(rng, expected.shape, dtype)
    with teams(parallel):
        y = fastnn.conv2d(x, w, b, **kw)
        grads = fastnn.conv2d_backward(dy, x, w, **kw)
    assert_exact(y, expected, reference.conv2d(absf64(x), absf64(w), absf64(b), **kw), "conv2d")
    expected = reference.conv2d_backward(f64(dy), f64(x), f64(w), **kw)
    bounds = reference.conv2d_backward(absf64(dy), absf64(x), absf64(w), **kw)
    for name, got, exp, bound in zip(("grad_input", "grad_weight", "grad_bias"), grads, expected, bounds):
        assert_exact(got, exp, bound, name)


@fixture_settings
@given(cfg=conv_configs(), dtype=st.sampled_from(DTYPES), parallel=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_exact_on_small_integers(compiled_only, cpu_path, cfg, dtype, parallel, seed):
    check_conv_exact(cfg, dtype, seed, parallel)


def conv_case(x_shape, w_shape, **kwargs):
    kwargs = dict(dict(stride=1, padding=0, dilation=1, groups=1), **kwargs)
    return dict(x_shape=x_shape, w_shape=w_shape, kwargs=kwargs)


# Shapes past the GEMM core's blocking on every path (KC <= 384, MC <= 192, NC <= 4096), where a
# block boundary that drops or repeats a term would show.
BLOCKED = {
    "reduction_past_kc": conv_case((2, 45, 6, 7), (7, 45, 3, 3), padding=1),
    "channels_past_mc_and_kc": conv_case((1, 3, 5, 6), (390, 3, 2, 3), padding=(1, 0), stride=(1, 2)),
    "pixels_past_nc": conv_case((1, 2, 66, 65), (3, 2, 2, 1), padding=(1, 0)),
    "grouped_reduction_past_kc": conv_case((1, 90, 4, 4), (4, 45, 3, 3), groups=2, padding=1, dilation=(1, 2)),
}


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("case", list(BLOCKED))
def test_conv2d_exact_past_blocking(compiled_only, cpu_path, case, parallel):
    check_conv_exact(BLOCKED[case], np.float32, sorted(BLOCKED).index(case), parallel)


# ---- relu RNN ----------------------------------------------------------------------------------

@st.composite
def rnn_configs(draw):
    return dict(steps=draw(st.integers(0, 3)), batch=draw(st.integers(0, 3)), features=draw(st.integers(0, 4)),
                hidden=draw(st.integers(1, 4)), h0=draw(st.booleans()), b_ih=draw(st.booleans()),
                b_hh=draw(st.booleans()))


def rnn_ints(seed, cfg, dtype):
    """x, h0, biases and gradients in [-8, 8]; w_ih in [-2, 2], w_hh in [-1, 1], so that with
    T <= 3, H <= 4 and I <= 4 the largest sum over absolute values stays far below 2**24."""
    rng = np.random.default_rng(seed)
    t, n, i, h = cfg["steps"], cfg["batch"], cfg["features"], cfg["hidden"]
    return dict(
        x=small_ints(rng, (t, n, i), dtype),
        h0=small_ints(rng, (n, h), dtype) if cfg["h0"] else None,
        w_ih=small_ints(rng, (h, i), dtype, bound=2),
        w_hh=small_ints(rng, (h, h), dtype, bound=1, zeros=0.2),
        b_ih=small_ints(rng, (h,), dtype) if cfg["b_ih"] else None,
        b_hh=small_ints(rng, (h,), dtype) if cfg["b_hh"] else None,
        grad_hs=small_ints(rng, (t, n, h), dtype),
    )


GRAD_NAMES = ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b")


@fixture_settings
@given(cfg=rnn_configs(), dtype=st.sampled_from(DTYPES), parallel=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_relu_rnn_exact_on_small_integers(compiled_only, cpu_path, cfg, dtype, parallel, seed):
    a = rnn_ints(seed, cfg, dtype)
    args = (a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    with teams(parallel):
        hs = fastnn.rnn_forward(*args, "relu")
    expected = reference.rnn_forward(*map(f64, args), "relu")
    assert_exact(hs, expected, reference.rnn_forward(*map(absf64, args), "relu"), "rnn_forward")

    back = (a["grad_hs"], a["x"], a["h0"], hs, a["w_ih"], a["w_hh"])
    with teams(parallel):
        grads = fastnn.rnn_backward(*back, "relu")
    expected = reference.rnn_backward(*map(f64, back), "relu")
    # With |hs| the relu mask (hs != 0) equals the real one (hs > 0): hs is never negative.
    bounds = reference.rnn_backward(*map(absf64, back), "relu")
    for name, got, exp, bound in zip(GRAD_NAMES, grads, expected, bounds):
        assert_exact(got, exp, bound, f"rnn_backward {name}")


@fixture_settings
@given(cfg=rnn_configs(), dtype=st.sampled_from(DTYPES), parallel=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_relu_rnn_step_exact_on_small_integers(compiled_only, cpu_path, cfg, dtype, parallel, seed):
    cfg.update(steps=1, h0=True)
    a = rnn_ints(seed, cfg, dtype)
    args = (a["x"][0], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    with teams(parallel):
        h_next = fastnn.rnn_step(*args, "relu")
    expected = reference.rnn_step(*map(f64, args), "relu")
    assert_exact(h_next, expected, reference.rnn_step(*map(absf64, args), "relu"), "rnn_step")

    back = (a["grad_hs"][0], a["x"][0], a["h0"], h_next, a["w_ih"], a["w_hh"])
    with teams(parallel):
        grads = fastnn.rnn_step_backward(*back, "relu")
    expected = reference.rnn_step_backward(*map(f64, back), "relu")
    bounds = reference.rnn_step_backward(*map(absf64, back), "relu")
    for name, got, exp, bound in zip(("grad_x", "grad_h", "grad_w_ih", "grad_w_hh", "grad_b"), grads, expected, bounds):
        assert_exact(got, exp, bound, f"rnn_step_backward {name}")


@pytest.mark.parametrize("parallel", [False, True])
def test_relu_rnn_exact_long_batch(compiled_only, cpu_path, parallel):
    """T * N past MC and hidden past NR on every path: the whole-sequence GEMMs are blocked."""
    cfg = dict(steps=3, batch=70, features=4, hidden=70, h0=True, b_ih=True, b_hh=True)
    a = rnn_ints(7, cfg, np.float32)
    a["w_hh"] = small_ints(np.random.default_rng(8), (70, 70), np.float32, bound=1, zeros=0.95)
    args = (a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    with teams(parallel):
        hs = fastnn.rnn_forward(*args, "relu")
        grads = fastnn.rnn_backward(a["grad_hs"], a["x"], a["h0"], hs, a["w_ih"], a["w_hh"], "relu")
    assert_exact(hs, reference.rnn_forward(*map(f64, args), "relu"),
                 reference.rnn_forward(*map(absf64, args), "relu"), "rnn_forward")
    back = (a["grad_hs"], a["x"], a["h0"], hs, a["w_ih"], a["w_hh"])
    expected = reference.rnn_backward(*map(f64, back), "relu")
    bounds = reference.rnn_backward(*map(absf64, back), "relu")
    for name, got, exp, bound in zip(GRAD_NAMES, grads, expected, bounds):
        assert_exact(got, exp, bound, f"rnn_backward {name}")
