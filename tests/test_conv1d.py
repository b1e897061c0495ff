"""The compiled conv1d and conv1d_backward against their oracle, fastnn.reference (itself checked
in test_conv1d_reference.py).

As test_kernels does for conv2d: hypothesis draws geometries (odd lengths, every stride/padding/
dilation/groups combination, 'same' with even kernels, depthwise and channel multipliers, 1-tuples)
and hands the inputs over in awkward memory layouts; a seeded grid of audio-like layers runs on
every CPU path; then out=, empty sizes, bit-identical results across thread counts, Inf/NaN and
bad arguments, whose messages must speak of conv1d's arguments (3-D arrays, lengths), not of the
unit-height conv2d underneath.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn
from fastnn import _cases, reference

from conv_helpers import conftest_module
from kernel_helpers import (DTYPES, LAYOUTS, PARAM_LAYOUTS, Unmodified, absf64, assert_close, assert_nonfinite_like,
                            bad_outs, check_deterministic, f64, fixture_settings, run_settings, running, values,
                            with_layout)

float_tolerance = conftest_module().float_tolerance

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")


def _single(v):
    return v if isinstance(v, int) else v[0]


def int_or_single(lo, hi):
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi)),
                     st.lists(st.integers(lo, hi), min_size=1, max_size=1))


@st.composite
def conv1d_configs(draw):
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise", "multiplier"]))
    if kind == "plain":
        groups, c_in, c_out = 1, draw(st.integers(0, 5)), draw(st.integers(0, 5))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in, c_out = groups * draw(st.integers(0, 3)), groups * draw(st.integers(0, 3))
    elif kind == "depthwise":
        groups = draw(st.integers(1, 6))
        c_in = c_out = groups
    else:
        groups = draw(st.integers(1, 4))
        c_in, c_out = groups, groups * draw(st.integers(2, 3))
    n = draw(st.sampled_from([0, 1, 1, 2, 3]))
    k = draw(st.integers(1, 12))
    dilation = draw(int_or_single(1, 4))
    pad_kind = draw(st.sampled_from(["int", "single", "same", "valid"]))
    stride = 1 if pad_kind == "same" else draw(int_or_single(1, 6))
    padding = {"int": lambda: draw(st.integers(0, 6)), "single": lambda: (draw(st.integers(0, 6)),)}.get(
        pad_kind, lambda: pad_kind)()
    span = _single(dilation) * (k - 1) + 1
    total = {"same": span - 1, "valid": 0}.get(pad_kind, 2 * _single(padding) if pad_kind != "same" else 0)
    length = draw(st.integers(max(0, span - total), max(0, span - total) + 20))
    return dict(x_shape=(n, c_in, length), w_shape=(c_out, c_in // groups, k),
                kwargs=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


def out_shape(cfg):
    return reference.conv1d(np.zeros(cfg["x_shape"]), np.zeros(cfg["w_shape"]), **cfg["kwargs"]).shape


def inputs(seed, cfg, dtype, layouts, bias):
    rng = np.random.default_rng(seed)
    x = with_layout(values(rng, cfg["x_shape"], dtype), layouts[0])
    weight = with_layout(values(rng, cfg["w_shape"], dtype), layouts[1])
    b = with_layout(values(rng, cfg["w_shape"][:1], dtype), layouts[2]) if bias else None
    dy = with_layout(values(rng, out_shape(cfg), dtype), layouts[3])
    return x, weight, b, dy


def check_forward(cfg, dtype, x, weight, b, use_out):
    out = np.full(out_shape(cfg), np.nan, dtype) if use_out else None
    guard = Unmodified(x=x, weight=weight, bias=b)
    y = fastnn.conv1d(x, weight, b, **cfg["kwargs"], out=out)
    guard.check()
    if use_out:
        assert y is out, "conv1d(out=...) must return out itself"
    assert y.dtype == dtype and y.ndim == 3
    expected = reference.conv1d(f64(x), f64(weight), f64(b), **cfg["kwargs"])
    magnitude = reference.conv1d(absf64(x), absf64(weight), absf64(b), **cfg["kwargs"])
    _, cin_g, k = weight.shape
    assert_close(y, expected, float_tolerance(dtype, cin_g * k + 1, magnitude), "conv1d")


def check_backward(cfg, dtype, x, weight, dy, needs):
    guard = Unmodified(x=x, weight=weight, grad_output=dy)
    grads = fastnn.conv1d_backward(dy, x, weight, **cfg["kwargs"], needs_input_grad=needs[0],
                                   needs_weight_grad=needs[1], needs_bias_grad=needs[2])
    guard.check()
    assert isinstance(grads, tuple) and len(grads) == 3
    expected = reference.conv1d_backward(f64(dy), f64(x), f64(weight), **cfg["kwargs"])
    magnitude = reference.conv1d_backward(absf64(dy), absf64(x), absf64(weight), **cfg["kwargs"])
    c_out, _, k = weight.shape
    positions = dy.shape[0] * dy.shape[2]
    terms = (c_out // cfg["kwargs"]["groups"] * k, positions, positions)
    for name, need, got, exp, mag, t in zip(("grad_input", "grad_weight", "grad_bias"), needs, grads,
                                           expected, magnitude, terms):
        if not need:
            assert got is None, f"{name} was not asked for, so it must be None"
            continue
        assert got.dtype == dtype and got.shape == exp.shape, name
        assert_close(got, exp, float_tolerance(dtype, t, mag), name)


@fixture_settings
@given(cfg=conv1d_configs(), dtype=st.sampled_from(DTYPES), bias=st.booleans(), use_out=st.booleans(),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(PARAM_LAYOUTS),
                         st.sampled_from(PARAM_LAYOUTS), st.sampled_from(LAYOUTS)),
       run=run_settings, seed=st.integers(0, 2**32 - 1))
def test_forward_matches_reference(compiled_only, cfg, dtype, bias, use_out, layouts, run, seed):
    x, weight, b, _ = inputs(seed, cfg, dtype, layouts, bias)
    with running(**run):
        check_forward(cfg, dtype, x, weight, b, use_out)


@fixture_settings
@given(cfg=conv1d_configs(), dtype=st.sampled_from(DTYPES),
       needs=st.tuples(st.booleans(), st.booleans(), st.booleans()),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(PARAM_LAYOUTS),
                         st.just("c"), st.sampled_from(LAYOUTS)),
       run=run_settings, seed=st.integers(0, 2**32 - 1))
def test_backward_matches_reference(compiled_only, cfg, dtype, needs, layouts, run, seed):
    x, weight, _, dy = inputs(seed, cfg, dtype, layouts, False)
    with running(**run):
        check_backward(cfg, dtype, x, weight, dy, needs)


# ---- seeded grid on every dispatch path --------------------------------------------------------

def case(x_shape, w_shape, **kwargs):
    kwargs = dict(dict(stride=1, padding=0, dilation=1, groups=1), **kwargs)
    return dict(x_shape=x_shape, w_shape=w_shape, kwargs=kwargs)


GRID = {
    "k3_pad1": case((2, 5, 23), (6, 5, 3), padding=1),
    "same_even": case((2, 3, 17), (4, 3, 4), padding="same"),
    "same_even_dilated": case((1, 4, 20), (3, 4, 6), padding="same", dilation=3),
    # one input channel, a long strided kernel (wav2vec's first layer)
    "one_channel_k10_s5": case((2, 1, 203), (12, 1, 10), stride=5),
    "one_channel_few_outputs": case((2, 1, 50), (3, 1, 7), stride=2, padding=3),
    # one channel, unpadded, many outputs: the backward's GEMMs over strided views of the
    # signal (and their edges: dilation, a 1-tap kernel, one output position, odd sizes);
    # padded, it stays on conv2d's drivers
    "one_channel_dilated": case((3, 1, 41), (9, 1, 4), dilation=3),
    "one_channel_k1": case((1, 1, 7), (8, 1, 1)),
    "one_channel_one_position": case((2, 1, 11), (11, 1, 10), stride=3),
    "one_channel_padded": case((2, 1, 31), (8, 1, 5), stride=2, padding=2),
    "one_channel_past_blocking": case((2, 1, 6001), (300, 1, 10), stride=5),
    "strided_k3_s2": case((2, 16, 41), (24, 16, 3), stride=2),
    # strided with many channels: conv2d's implicit GEMM itself (conv1d_forward_gemm), padded,
    # grouped, odd sizes, past KC
    "strided_padded_odd": case((3, 17, 33), (19, 17, 3), stride=2, padding=1),
    "strided_grouped_s3": case((2, 32, 50), (48, 16, 4), stride=3, padding=1, groups=2),
    "strided_past_kc": case((1, 200, 40), (20, 200, 3), stride=2, dilation=2),
    # stride 1, a short kernel, >= 16 channels both ways: the forward on the GEMM route too
    # (dilated, padded, grouped, a padding past (K-1)*d)
    "short_kernel_dilated": case((2, 16, 70), (20, 16, 2), dilation=5),
    "short_kernel_padded_grouped": case((2, 32, 41), (32, 16, 3), padding=1, groups=2),
    "short_kernel_wide_pad": case((1, 16, 30), (16, 16, 3), padding=3),
    "depthwise_k15": case((2, 8, 60), (8, 1, 15), groups=8, padding=7),
    "depthwise_k31_strided": case((1, 6, 70), (6, 1, 31), groups=6, padding=15, stride=2),
    "multiplier": case((2, 3, 19), (9, 1, 5), groups=3, padding=(2,)),
    "dilated_valid": case((2, 6, 90), (10, 6, 2), dilation=32),
    "grouped": case((2, 8, 25), (6, 4, 3), groups=2, stride=(3,), padding=2),
    "kernel_spans_input": case((3, 4, 9), (5, 4, 9)),
    # past the GEMM core's blocking: K = C_in*k past KC, C_out past MC, positions past NC
    "reduction_past_kc": case((1, 120, 15), (8, 120, 3), padding=1),
    "channels_past_mc": case((1, 4, 20), (300, 4, 3)),
    "positions_past_nc": case((1, 2, 5000), (3, 2, 2), padding=1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(GRID))
def test_grid_on_every_path(compiled_only, cpu_path, name, dtype):
    cfg = GRID[name]
    seed = sorted(GRID).index(name)
    x, weight, b, dy = inputs(seed, cfg, dtype, ("c", "c", "c", "c"), True)
    check_forward(cfg, dtype, x, weight, b, use_out=False)
    check_backward(cfg, dtype, x, weight, dy, (True, True, True))
    x, weight, b, dy = inputs(seed, cfg, dtype, ("reversed", "strided", "broadcast_first", "permuted"), True)
    with running(cpu_path, threads=3, parallel=True):
        check_forward(cfg, dtype, x, weight, b, use_out=True)
        check_backward(cfg, dtype, x, weight, dy, (True, True, False))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(GRID))
def test_fast_path_agrees_with_the_full_path(compiled_only, cpu_path, name, dtype):
    """conv1d_fast (plain arrays, int geometry) runs the very kernels the full path would: the
    same bits as the same call in a layout only the full path takes; and it declines what the
    full path must decide (strings, tuples, the GEMM route's layers, bad shapes)."""
    from fastnn import _runtime, conv_1d
    cfg = GRID[name]
    x, weight, b, _ = inputs(sorted(GRID).index(name), cfg, dtype, ("c", "c", "c", "c"), True)
    kw = cfg["kwargs"]
    if all(type(kw[k]) is int for k in ("stride", "padding", "dilation")):
        spec = conv_1d._Conv1dSpec(x.shape, weight.shape, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
        fast = _runtime._kernels.conv1d_fast(x, weight, b, kw["stride"], kw["padding"], kw["dilation"],
                                             kw["groups"], None)
        assert (fast is None) == conv_1d._gemm_route(x.shape, weight.shape, spec), name
        full = fastnn.conv1d(with_layout(x, "strided"), weight, b, **kw)
        np.testing.assert_array_equal(fastnn.conv1d(x, weight, b, **kw), full)
    else:
        assert _runtime._kernels.conv1d_fast(x, weight, b, kw["stride"], kw["padding"], kw["dilation"],
                                             kw["groups"], None) is None


def test_fast_path_declines_what_the_full_path_decides(compiled_only):
    from fastnn import _runtime
    fast = _runtime._kernels.conv1d_fast
    x, w = np.ones((2, 3, 10), np.float32), np.ones((4, 3, 3), np.float32)
    assert fast(x, w, None, 1, 1, 1, 1, None) is not None
    for args in ((x, w, None, (1,), 1, 1, 1, None), (x, w, None, 1, "same", 1, 1, None),
                 (x, w, None, 0, 1, 1, 1, None), (x, w, None, 1, -1, 1, 1, None),
                 (x, w, None, 1, 1, 1, 2, None), (x, w.astype(np.float64), None, 1, 1, 1, 1, None),
                 (x, np.ones((4, 3, 13), np.float32), None, 1, 1, 1, 1, None),
                 (x, w, np.ones(3, np.float32), 1, 1, 1, 1, None),
                 (x, w, None, 1, 1, 1, 1, np.ones((2, 4, 9), np.float32)),
                 (x[:, :, ::2], w, None, 1, 1, 1, 1, None), (x[:0], w, None, 1, 1, 1, 1, None),
                 (x, w, None, 1.0, 1, 1, 1, None)):
        assert fast(*args) is None


@pytest.mark.parametrize("needs", list(itertools.product((False, True), repeat=3)))
def test_each_needs_combination(compiled_only, cpu_path, needs):
    cfg = GRID["grouped"]
    x, weight, _, dy = inputs(11, cfg, np.float32, ("c", "fortran", "c", "misaligned"), False)
    check_backward(cfg, np.float32, x, weight, dy, needs)


def test_exact_on_small_integers(compiled_only, cpu_path):
    rng = np.random.default_rng(12)
    for name in ("same_even", "one_channel_k10_s5", "depthwise_k15", "dilated_valid"):
        cfg = GRID[name]
        x = rng.integers(-4, 5, cfg["x_shape"]).astype(np.float32)
        w = rng.integers(-4, 5, cfg["w_shape"]).astype(np.float32)
        dy = rng.integers(-4, 5, out_shape(cfg)).astype(np.float32)
        np.testing.assert_array_equal(fastnn.conv1d(x, w, **cfg["kwargs"]),
                                      reference.conv1d(f64(x), f64(w), **cfg["kwargs"]), err_msg=name)
        for got, want in zip(fastnn.conv1d_backward(dy, x, w, **cfg["kwargs"]),
                             reference.conv1d_backward(f64(dy), f64(x), f64(w), **cfg["kwargs"])):
            np.testing.assert_array_equal(got, want, err_msg=name)


# ---- out= and empty sizes -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_out_refused_and_left_alone(compiled_only, dtype):
    rng = np.random.default_rng(5)
    x, w = values(rng, (2, 3, 12), dtype), values(rng, (4, 3, 3), dtype)
    for what, out in bad_outs((2, 4, 10), dtype):
        before = out.copy()
        with pytest.raises(ValueError, match="out"):
            fastnn.conv1d(x, w, out=out)
        assert np.array_equal(out, before), f"conv1d wrote into a refused out ({what})"
    xx = values(rng, (1, 4, 6), dtype)
    before = xx.copy()
    with pytest.raises(ValueError, match="out must not overlap"):
        fastnn.conv1d(xx, values(rng, (4, 4, 1), dtype), out=xx)
    assert np.array_equal(xx, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_written_and_returned(compiled_only, cpu_path, dtype):
    rng = np.random.default_rng(6)
    x, w, b = values(rng, (2, 3, 15), dtype), values(rng, (5, 3, 4), dtype), values(rng, (5,), dtype)
    for shape, kwargs in (((2, 5, 15), dict(padding="same")), ((2, 5, 6), dict(stride=2))):
        out = np.full(shape, np.nan, dtype)
        assert fastnn.conv1d(x, w, b, **kwargs, out=out) is out
        assert np.array_equal(out, fastnn.conv1d(x, w, b, **kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape", [((0, 3, 8), (4, 3, 3)), ((2, 0, 8), (4, 0, 3)),
                                              ((2, 3, 8), (0, 3, 3)), ((2, 3, 0), (4, 3, 3))])
def test_empty_sizes(compiled_only, x_shape, w_shape, dtype):
    rng = np.random.default_rng(7)
    x, w, b = values(rng, x_shape, dtype), values(rng, w_shape, dtype), values(rng, w_shape[:1], dtype, zeros=0)
    y = fastnn.conv1d(x, w, b, padding=2)
    expected = reference.conv1d(f64(x), f64(w), f64(b), padding=2)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_array_equal(y, expected.astype(dtype))
    dy = values(rng, y.shape, dtype)
    for got, want in zip(fastnn.conv1d_backward(dy, x, w, padding=2),
                         reference.conv1d_backward(f64(dy), f64(x), f64(w), padding=2)):
        assert got.shape == want.shape and got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- thread count does not change a bit ------------------------------------------------------------

THREAD_CASES = {
    "dense": case((3, 12, 301), (16, 12, 5), padding=2),
    "one_channel_strided": case((2, 1, 997), (24, 1, 10), stride=5),
    "depthwise": case((2, 16, 257), (16, 1, 31), groups=16, padding=15),
    "dilated": case((2, 8, 300), (12, 8, 2), dilation=16),
    "strided_many_channels": case((2, 16, 101), (20, 16, 3), stride=2, padding=1),
    "one_channel_dilated": case((3, 1, 500), (96, 1, 13), dilation=2),
    "short_kernel_many_channels": case((2, 16, 101), (16, 16, 3), padding=1, dilation=2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(THREAD_CASES))
def test_bit_identical_across_thread_counts(name, dtype, cpu_path, parallel_everything, compiled_only):
    cfg = THREAD_CASES[name]
    x, w, b, dy = inputs(3, cfg, dtype, ("c",) * 4, True)
    kw = cfg["kwargs"]
    calls = {
        "forward": lambda: fastnn.conv1d(x, w, b, **kw),
        "grad_input": lambda: fastnn.conv1d_backward(dy, x, w, **kw, needs_weight_grad=False,
                                                     needs_bias_grad=False)[0],
        "grad_weight": lambda: fastnn.conv1d_backward(dy, x, w, **kw, needs_input_grad=False,
                                                      needs_bias_grad=False)[1],
        "all": lambda: fastnn.conv1d_backward(dy, x, w, **kw),
    }
    results = check_deterministic(calls)
    expected = reference.conv1d(f64(x), f64(w), f64(b), **kw)
    magnitude = reference.conv1d(absf64(x), absf64(w), absf64(b), **kw)
    assert_close(results["forward"], expected, float_tolerance(dtype, w.shape[1] * w.shape[2] + 1, magnitude),
                 "forward")


# ---- NaN and Inf ----------------------------------------------------------------------------------------

NONFINITE = {
    "dense_padded": case((2, 4, 13), (6, 2, 3), stride=2, padding=2, groups=2),
    "same_even": case((2, 3, 11), (4, 3, 4), padding="same", dilation=2),
    "depthwise_padded": case((2, 3, 12), (6, 1, 5), groups=3, padding=3),
    "valid": case((2, 3, 12), (4, 3, 3)),
    # the strided GEMM route (padding: an Inf/NaN weight goes to conv2d's own way) and the
    # one-channel backward's GEMMs
    "strided_many_channels": case((2, 16, 13), (16, 16, 3), stride=2, padding=2),
    "one_channel_valid": case((2, 1, 12), (8, 1, 3), stride=2),
    "short_kernel_padded": case((2, 16, 12), (16, 16, 3), padding=1),
}


def nonfinite_problem(name, dtype):
    cfg = NONFINITE[name]
    rng = np.random.default_rng(0)

    def magnitudes(shape):  # no exact zeros: 0 * Inf never occurs
        return ((rng.random(shape) + 0.5) * rng.choice([-1, 1], shape)).astype(dtype)
    x, w, b = magnitudes(cfg["x_shape"]), magnitudes(cfg["w_shape"]), magnitudes(cfg["w_shape"][:1])
    return x, w, b, magnitudes(out_shape(cfg)), cfg["kwargs"]


def reads(cfg):
    """Brute force: {(t, k): i} for every tap that reads a real input position."""
    kw = cfg["kwargs"]
    k_len, length = cfg["w_shape"][2], cfg["x_shape"][2]
    d = _single(kw["dilation"])
    left = d * (k_len - 1) // 2 if kw["padding"] == "same" else _single(kw["padding"])
    found = {}
    for t, k in itertools.product(range(out_shape(cfg)[2]), range(k_len)):
        i = t * _single(kw["stride"]) + k * d - left
        if 0 <= i < length:
            found[t, k] = i
    return found


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_nonfinite_input(name, dtype, bad, cpu_path, compiled_only):
    x, w, b, _, kw = nonfinite_problem(name, dtype)
    c0, i0 = x.shape[1] - 1, 3
    x[1, c0, i0] = bad
    y = fastnn.conv1d(x, w, b, **kw)
    assert_nonfinite_like(y, reference.conv1d(x, w, b, **kw), "conv1d")
    og = w.shape[0] // kw["groups"]
    group = c0 // w.shape[1]
    expect = np.zeros(y.shape, bool)
    for (t, _), i in reads(NONFINITE[name]).items():
        if i == i0:
            expect[1, group * og:(group + 1) * og, t] = True
    assert expect.any()
    np.testing.assert_array_equal(~np.isfinite(y), expect)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_nonfinite_weight(name, dtype, bad, cpu_path):
    x, w, b, _, kw = nonfinite_problem(name, dtype)
    w[-1, 0, 0] = bad
    y = fastnn.conv1d(x, w, b, **kw)
    assert_nonfinite_like(y, reference.conv1d(x, w, b, **kw), "conv1d")
    expect = np.zeros(y.shape, bool)
    for (t, k) in reads(NONFINITE[name]):
        if k == 0:
            expect[:, -1, t] = True
    np.testing.assert_array_equal(~np.isfinite(y), expect)
    if name != "valid":
        assert not expect.all(), "the bad tap should read padding somewhere"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_backward_nonfinite_grad_output(name, dtype, bad, cpu_path):
    x, w, b, dy, kw = nonfinite_problem(name, dtype)
    t0 = 0  # the first output: with padding, some of its taps read none
    dy[0, 0, t0] = bad
    got = fastnn.conv1d_backward(dy, x, w, **kw)
    want = reference.conv1d_backward(dy, x, w, **kw)
    for label, g, r in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        assert_nonfinite_like(g, r.astype(g.dtype), label)
    expect_gw = np.zeros(w.shape, bool)
    for (t, k) in reads(NONFINITE[name]):
        if t == t0:
            expect_gw[0, :, k] = True
    np.testing.assert_array_equal(~np.isfinite(got[1]), expect_gw, err_msg="grad_weight mask")
    np.testing.assert_array_equal(~np.isfinite(got[2]), np.arange(w.shape[0]) == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_seeing_only_padding_is_exactly_the_bias(dtype, cpu_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 4)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    for label, fill in (("finite", 1.0), ("Inf", np.inf), ("NaN", np.nan)):
        w = np.full((3, 2, 3), fill, dtype)
        y = fastnn.conv1d(x, w, b, padding=3)  # outputs 0 and 5 read positions -3..-1 and 4..6
        np.testing.assert_array_equal(y[:, :, [0, -1]], np.broadcast_to(b[None, :, None], (1, 3, 2)), err_msg=label)
        assert_nonfinite_like(y, reference.conv1d(x, w, b, padding=3), label)


# ---- bad arguments: conv1d's own words ------------------------------------------------------------------

def z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


X, W = z(2, 4, 10), z(6, 4, 3)  # output (2, 6, 8)
DY = z(2, 6, 8)


def call(**kw):
    args = dict(x=X, weight=W)
    args.update(kw)
    return lambda: fastnn.conv1d(**args)


def call_back(**kw):
    args = dict(grad_output=DY, x=X, weight=W)
    args.update(kw)
    return lambda: fastnn.conv1d_backward(**args)


ERRORS = [
    ("x 4-D", call(x=z(2, 4, 1, 10)), ValueError, r"\bx must be 3-D"),
    ("x 2-D", call(x=z(4, 10)), ValueError, r"\bx must be 3-D"),
    ("weight 4-D", call(weight=z(6, 4, 1, 3)), ValueError, r"weight must be 3-D"),
    ("bias wrong length", call(bias=z(5)), ValueError, r"bias must have shape \(6,\)"),
    ("channel mismatch", call(weight=z(6, 3, 3)), ValueError, r"weight has 3 input channels.*x has 4"),
    ("groups don't divide C_out", call(weight=z(5, 2, 3), groups=2), ValueError,
     r"groups=2 does not divide the output channels of weight"),
    ("groups don't divide C_in", call(groups=3, weight=z(6, 1, 3)), ValueError,
     r"groups=3 does not divide the input channels of x"),
    ("empty kernel", call(weight=z(6, 4, 0)), ValueError, r"weight has an empty kernel"),
    ("kernel longer than input", call(weight=z(6, 4, 11)), ValueError,
     r"weight's kernel length 11 .*larger than x's padded length 10"),
    ("dilated kernel longer", call(dilation=5), ValueError,
     r"weight's kernel length 3 \(dilation 5, span 11\) is larger than x's padded length 10"),
    ("stride 0", call(stride=0), ValueError, r"stride must be >= 1"),
    ("stride pair", call(stride=(1, 1)), ValueError, r"stride must be an int or a 1-tuple"),
    ("stride float", call(stride=2.0), TypeError, r"stride must be an int or a 1-tuple"),
    ("stride bool", call(stride=(True,)), TypeError, r"stride must be an int or a 1-tuple"),
    ("dilation 0", call(dilation=(0,)), ValueError, r"dilation must be >= 1"),
    ("padding -1", call(padding=-1), ValueError, r"padding must be >= 0"),
    ("padding pair", call(padding=(1, 1)), ValueError, r"padding must be an int or a 1-tuple"),
    ("padding word", call(padding="full"), ValueError, r"padding must be .*'same' or 'valid', got 'full'"),
    ("padding same stride 2", call(padding="same", stride=2), ValueError, r"padding='same' needs stride 1"),
    ("padding None", call(padding=None), TypeError, r"padding must be an int or a 1-tuple"),
    ("groups 0", call(groups=0), ValueError, r"groups must be >= 1"),
    ("groups str", call(groups="1"), TypeError, r"groups must be an int"),
    ("x int", call(x=X.astype(np.int64)), TypeError, r"\bx must be float32 or float64"),
    ("weight None", call(weight=None), TypeError, r"weight must be float32 or float64"),
    ("mixed dtypes", call(weight=W.astype(np.float64)), TypeError, r"weight has dtype float64 but x has float32"),
    ("out wrong shape", call(out=z(2, 6, 9)), ValueError, r"out has shape \(2, 6, 9\), expected \(2, 6, 8\)"),
    ("out 4-D", call(out=z(2, 6, 1, 8)), ValueError, r"out has shape \(2, 6, 1, 8\), expected \(2, 6, 8\)"),
    ("output too large", call(x=np.broadcast_to(z(1, 1, 1), (2**28, 1, 2**30)), weight=z(8, 1, 1)), ValueError,
     r"conv1d's output .*too large"),
    ("back grad_output wrong shape", call_back(grad_output=z(2, 6, 9)), ValueError,
     r"grad_output must have shape \(2, 6, 8\) \(conv1d's output\)"),
    ("back grad_output 4-D", call_back(grad_output=z(2, 6, 1, 8)), ValueError, r"grad_output must be 3-D"),
    ("back mixed", call_back(grad_output=DY.astype(np.float64)), TypeError, r"x has dtype float32 but grad_output"),
    ("back kernel too long", call_back(weight=z(6, 4, 12)), ValueError, r"weight's kernel length 12"),
]


@pytest.mark.parametrize("name, fn, exception, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_invalid_arguments_raise_naming_the_argument(name, fn, exception, pattern):
    with pytest.raises(exception, match=pattern):
        fn()


# ---- the registered cases -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases.select(family="conv1d"), ids=lambda c: c.key)
def test_registered_case_flops_match_the_output(case):
    """2 x multiply-adds, counted from the output fastnn returns (a backward counts twice)."""
    p = case.params
    x = np.zeros((1, p["c_in"], p["length"]), np.float32)
    w = np.zeros((p["c_out"], p["c_in"] // p["groups"], p["k"]), np.float32)
    y = fastnn.conv1d(x, w, None, p["stride"], p["padding"], p["dilation"], p["groups"])
    forwards = 1 if case.direction == "fwd" else 2
    assert case.flops == forwards * 2 * (p["c_in"] // p["groups"]) * p["k"] * y.size * p["n"]
