"""fastnn's compiled LSTM and GRU kernels against their oracles in fastnn.reference.

As tests/test_kernels.py does for the RNN: hypothesis draws the sizes (empty ones, a hidden
size on both sides of the row kernel's 16-float panel, batches on both sides of the row path),
which states and biases are given, every array's memory layout, the dtype, the dispatch path,
the thread count and whether teams really run; the oracle runs in float64 on float64 copies,
and `compiled_only` makes sure it is never the kernel under test. A seeded grid then runs
fixed configurations past the GEMM core's blocking on every path (`cpu_path`), and the rest
pins down out=, errors, Inf/NaN, thread-count determinism, the GIL, memory and the fallback.

Tolerances are normwise (a recurrence has no simple elementwise bound): about
sqrt(K) * eps * max(|truth|, 1) per step, K the longest sum an output sees. The inputs are
scaled so every state stays O(1), so this is tight enough to catch any wrong element.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn
from fastnn import _runtime, reference

from conv_helpers import conftest_module
from gates_helpers import FAMILIES, FORWARD_NAMES, GATES, GRAD_NAMES, STEP_GRAD_NAMES
from gates_helpers import backward as call_backward
from gates_helpers import forward as call_forward
from gates_helpers import step as call_step
from gates_helpers import step_backward as call_step_backward
from kernel_helpers import (DTYPES, KERNELS, LAYOUTS, PARAM_LAYOUTS, Unmodified, assert_bit_identical, assert_close,
                            assert_nonfinite_like, bad_outs, check_deterministic, f64, fixture_settings, run_settings,
                            team_of, values, with_layout)
from kernel_helpers import every_threshold_zero
from kernel_helpers import running_recurrent as running

float_tolerance = conftest_module().float_tolerance
ARRAYS = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "grad_hs", "grad_c_n", "hs", "cs")




@pytest.fixture
def teams_everywhere():
    with every_threshold_zero():
        yield


# ---- problems -----------------------------------------------------------------------------------

def make_problem(seed, family, steps, batch, features, hidden, dtype, given=(True, True, True, True),
                 layouts=None):
    """Arrays of one problem (see gates_helpers) in the given layouts; weights scaled by
    1/fan-in so that every state stays O(1). given: (h0, c0, biases, grad_c_n)."""
    rng = np.random.default_rng(seed)
    g = GATES[family]
    lstm = family == "lstm"
    p = dict(
        x=values(rng, (steps, batch, features), dtype),
        h0=values(rng, (batch, hidden), dtype) if given[0] else None,
        c0=values(rng, (batch, hidden), dtype) if lstm and given[1] else None,
        w_ih=values(rng, (g * hidden, features), dtype, scale=2 / max(features, 1)),
        w_hh=values(rng, (g * hidden, hidden), dtype, scale=2 / max(hidden, 1)),
        b_ih=values(rng, (g * hidden,), dtype) if given[2] else None,
        b_hh=values(rng, (g * hidden,), dtype) if given[2] else None,
        grad_hs=values(rng, (steps, batch, hidden), dtype),
        grad_c_n=values(rng, (batch, hidden), dtype) if lstm and given[3] else None,
    )
    if layouts:
        p = {k: None if a is None else with_layout(a, layouts.get(k, "c")) for k, a in p.items()}
    return p


def wide(p):
    return {k: f64(a) for k, a in p.items()}


def normwise_tol(dtype, want, terms, steps):
    scale = max(float(np.abs(want).max()) if want.size else 0.0, 1.0)
    return float_tolerance(dtype, terms, scale) * 4 * (steps + 1)


def check_forward(family, p, dtype, got):
    want = call_forward(reference, family, wide(p))
    steps, batch, features = p["x"].shape
    hidden = p["w_hh"].shape[1]
    for name, g, w in zip(FORWARD_NAMES[family], got, want):
        assert g.dtype == dtype, f"{name} has dtype {g.dtype}"
        assert_close(g, w, normwise_tol(dtype, w, features + hidden + 2, steps), f"{family}_forward {name}")
    return want


def check_backward(family, p, states, dtype, grads):
    want = call_backward(reference, family, wide(p), tuple(f64(s) for s in states))
    steps, batch, features = p["x"].shape
    hidden = p["w_hh"].shape[1]
    assert isinstance(grads, tuple) and len(grads) == 6
    for name, g, w in zip(GRAD_NAMES[family], grads, want):
        assert g.dtype == dtype, f"{name} has dtype {g.dtype}"
        terms = GATES[family] * hidden + features + steps * batch
        assert_close(g, w, normwise_tol(dtype, w, terms, steps), f"{family}_backward {name}")


# ---- hypothesis ---------------------------------------------------------------------------------

@st.composite
def configs(draw, steps=None):
    return dict(
        family=draw(st.sampled_from(FAMILIES)),
        steps=draw(st.sampled_from([0, 1, 1, 2, 3, 5])) if steps is None else steps,
        batch=draw(st.sampled_from([0, 1, 1, 2, 3, 5])),
        features=draw(st.integers(0, 6)),
        hidden=draw(st.sampled_from([0, 1, 2, 3, 5, 7, 9, 17])),
        given=draw(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans())),
        layouts=draw(st.fixed_dictionaries({
            name: st.sampled_from(PARAM_LAYOUTS if name.startswith(("w_", "b_")) else LAYOUTS) for name in ARRAYS})),
    )


@fixture_settings
@given(cfg=configs(), dtype=st.sampled_from(DTYPES), use_out=st.booleans(), run=run_settings,
       seed=st.integers(0, 2**32 - 1))
def test_forward_matches_reference(compiled_only, cfg, dtype, use_out, run, seed):
    family = cfg["family"]
    p = make_problem(seed, family, cfg["steps"], cfg["batch"], cfg["features"], cfg["hidden"], dtype,
                     cfg["given"], cfg["layouts"])
    shape = (cfg["steps"], cfg["batch"], cfg["hidden"])
    kwargs = {}
    if use_out:
        outs = tuple(np.full(shape, np.nan, dtype) for _ in FORWARD_NAMES[family])
        kwargs["out"] = outs if family == "lstm" else outs[0]
    guard = Unmodified(**{k: a for k, a in p.items() if not k.startswith("grad")})
    with running(**run):
        got = call_forward(fastnn, family, p, **kwargs)
    guard.check()
    if use_out:
        assert all(g is o for g, o in zip(got, outs)), "out= must be written and returned"
    check_forward(family, p, dtype, got)


@fixture_settings
@given(cfg=configs(), dtype=st.sampled_from(DTYPES), run=run_settings, seed=st.integers(0, 2**32 - 1))
def test_backward_matches_reference(compiled_only, cfg, dtype, run, seed):
    family = cfg["family"]
    p = make_problem(seed, family, cfg["steps"], cfg["batch"], cfg["features"], cfg["hidden"], dtype,
                     cfg["given"], cfg["layouts"])
    states = tuple(s.astype(dtype) for s in call_forward(reference, family, wide(p)))
    states = tuple(with_layout(s, cfg["layouts"][name]) for s, name in zip(states, FORWARD_NAMES[family]))
    guard = Unmodified(**p, **dict(zip(FORWARD_NAMES[family], states)))
    with running(**run):
        grads = call_backward(fastnn, family, p, states)
    guard.check()
    check_backward(family, p, states, dtype, grads)


@fixture_settings
@given(cfg=configs(steps=1), dtype=st.sampled_from(DTYPES), run=run_settings, seed=st.integers(0, 2**32 - 1))
def test_step_and_step_backward_match_reference(compiled_only, cfg, dtype, run, seed):
    family = cfg["family"]
    given = (True, True) + cfg["given"][2:]  # the step kernels need h and c
    p = make_problem(seed, family, 1, cfg["batch"], cfg["features"], cfg["hidden"], dtype, given, cfg["layouts"])
    guard = Unmodified(**{k: a for k, a in p.items() if not k.startswith("grad")})
    with running(**run):
        nexts = call_step(fastnn, family, p)
    guard.check()
    want = call_step(reference, family, wide(p))
    hidden, features = cfg["hidden"], cfg["features"]
    for g, w in zip(nexts, want):
        assert g.dtype == dtype
        assert_close(g, w, normwise_tol(dtype, w, features + hidden + 2, 1), f"{family}_step")
    nexts = tuple(with_layout(w.astype(dtype), cfg["layouts"]["hs"]) for w in want)
    guard = Unmodified(**p, **{f"next{i}": a for i, a in enumerate(nexts)})
    with running(**run):
        grads = call_step_backward(fastnn, family, p, nexts)
    guard.check()
    want = call_step_backward(reference, family, wide(p), tuple(f64(a) for a in nexts))
    assert isinstance(grads, tuple) and len(grads) == 6
    for name, g, w in zip(STEP_GRAD_NAMES[family], grads, want):
        assert g.dtype == dtype, name
        terms = GATES[family] * hidden + features + cfg["batch"]
        assert_close(g, w, normwise_tol(dtype, w, terms, 1), f"{family}_step_backward {name}")


# ---- seeded grid on every dispatch path --------------------------------------------------------

# name: (T, N, I, H)
GRID = {
    "typical": (5, 3, 4, 6),
    "one_row": (4, 1, 3, 40),            # the row path: two 16-float panels and a partial one
    "two_rows": (3, 2, 5, 33),
    "three_rows": (3, 3, 5, 17),         # the GEMM core's micro-kernel, a fringe of rows
    "hidden_past_nr": (2, 7, 5, 70),     # H > NR on every path
    "rows_past_mc": (2, 200, 3, 5),      # N > MC: the step product in several row blocks
    "gates_past_kc": (2, 5, 3, 130),     # the backward's product has K = 4H or 3H > KC
    "steps_times_batch_past_mc": (50, 4, 3, 5),
    "no_features": (3, 2, 0, 5),
    "no_steps": (0, 2, 3, 4),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(GRID))
@pytest.mark.parametrize("family", FAMILIES)
def test_grid_on_every_path(compiled_only, cpu_path, family, case, dtype):
    steps, batch, features, hidden = GRID[case]
    p = make_problem(sorted(GRID).index(case), family, steps, batch, features, hidden, dtype)
    for threads, parallel in ((None, False), (3, True)):
        with running(cpu_path, threads, parallel):
            states = call_forward(fastnn, family, p)
            grads = call_backward(fastnn, family, p, states)
            nexts = call_step(fastnn, family, p) if steps else None
        check_forward(family, p, dtype, states)
        check_backward(family, p, states, dtype, grads)
        if steps:
            for g, s in zip(nexts, states):  # one step is the sequence's first
                assert_close(g, s[0], normwise_tol(dtype, s[0], features + hidden + 2, 1), f"{family}_step")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hidden_size_zero(compiled_only, family, dtype):
    """H = 0 is a valid (empty) recurrence: empty states, zero input gradients."""
    for steps, batch in ((3, 2), (0, 2), (3, 0), (1, 1)):
        for layout in LAYOUTS:
            p = make_problem(2, family, steps, batch, 4, 0, dtype, layouts=dict.fromkeys(ARRAYS, layout))
            states = call_forward(fastnn, family, p)
            assert all(s.shape == (steps, batch, 0) and s.dtype == dtype for s in states)
            grads = call_backward(fastnn, family, p, states)
            want = call_backward(reference, family, wide(p), tuple(f64(s) for s in states))
            for name, g, w in zip(GRAD_NAMES[family], grads, want):
                assert g.shape == w.shape and g.dtype == dtype and np.array_equal(g, w), name


@pytest.mark.parametrize("family", FAMILIES)
def test_empty_sizes_give_the_oracles_gradients(compiled_only, family):
    """T = 0 (grad_c0 is grad_c_n: nothing in between), N = 0, I = 0."""
    for steps, batch, features in ((0, 3, 2), (4, 0, 2), (3, 2, 0)):
        p = make_problem(3, family, steps, batch, features, 5, np.float64)
        states = call_forward(fastnn, family, p)
        grads = call_backward(fastnn, family, p, states)
        want = call_backward(reference, family, p, call_forward(reference, family, p))
        for name, g, w in zip(GRAD_NAMES[family], grads, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=name)


# ---- out= ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_out_refused_and_left_alone(compiled_only, dtype):
    shape = (3, 2, 5)
    for family in FAMILIES:
        p = make_problem(5, family, 3, 2, 4, 5, dtype)
        for what, out in bad_outs(shape, dtype) + [("a list", [[[0.0]]])]:
            error = TypeError if isinstance(out, list) else ValueError
            before = np.array(out, copy=True)
            if family == "lstm":
                for k, pair in ((0, (out, None)), (1, (None, out)), (1, (np.zeros(shape, dtype), out))):
                    with pytest.raises(error, match=rf"out\[{k}\] (must|has)"):
                        call_forward(fastnn, family, p, out=pair)
            else:
                with pytest.raises(error, match=rf"\bout (must|has)"):
                    call_forward(fastnn, family, p, out=out)
            assert np.array_equal(np.asarray(out), before), f"{family} wrote into a refused out ({what})"
    lstm = make_problem(6, "lstm", 3, 2, 5, 5, dtype)
    for bad in ([np.zeros(shape, dtype)], np.zeros(shape, dtype), (None, None, None)):
        with pytest.raises(TypeError, match=r"out must be None or a pair"):
            call_forward(fastnn, "lstm", lstm, out=bad)
    shared = np.zeros(shape, dtype)
    with pytest.raises(ValueError, match=r"out\[1\] must not overlap"):
        call_forward(fastnn, "lstm", lstm, out=(shared, shared))
    with pytest.raises(ValueError, match=r"out\[0\] must not overlap"):
        call_forward(fastnn, "lstm", lstm, out=(lstm["x"], None))  # I == H: x has hs's shape
    gru = make_problem(6, "gru", 3, 2, 5, 5, dtype)
    with pytest.raises(ValueError, match=r"\bout must not overlap"):
        call_forward(fastnn, "gru", gru, out=gru["x"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_written_and_returned(compiled_only, cpu_path, dtype):
    for family in FAMILIES:
        p = make_problem(7, family, 4, 3, 2, 5, dtype)
        want = call_forward(fastnn, family, p)
        if family == "lstm":
            for which in ((0, 1), (0,), (1,)):
                outs = tuple(np.full((4, 3, 5), np.nan, dtype) if k in which else None for k in range(2))
                got = call_forward(fastnn, family, p, out=outs)
                for k in range(2):
                    assert outs[k] is None or got[k] is outs[k]
                    assert np.array_equal(got[k], want[k]), "lstm_forward(out=...) differs from lstm_forward()"
        else:
            out = np.full((4, 3, 5), np.nan, dtype)
            (got,) = call_forward(fastnn, family, p, out=out)
            assert got is out and np.array_equal(out, want[0])


# ---- errors: the message names the argument ------------------------------------------------------

F32 = np.float32


def z(*shape, dtype=F32):
    return np.zeros(shape, dtype)


XS, H0 = z(3, 2, 5), z(2, 7)
HS = z(3, 2, 7)


def lstm_fwd(**kw):
    args = dict(x=XS, h0=H0, c0=H0, w_ih=z(28, 5), w_hh=z(28, 7), b_ih=z(28), b_hh=z(28))
    args.update(kw)
    return lambda: fastnn.lstm_forward(**args)


def lstm_bwd(**kw):
    args = dict(grad_hs=HS, x=XS, h0=H0, c0=H0, hs=HS, cs=HS, w_ih=z(28, 5), w_hh=z(28, 7))
    args.update(kw)
    return lambda: fastnn.lstm_backward(**args)


def lstm_step_(**kw):
    args = dict(x=XS[0], h=H0, c=H0, w_ih=z(28, 5), w_hh=z(28, 7))
    args.update(kw)
    return lambda: fastnn.lstm_step(**args)


def lstm_step_bwd(**kw):
    args = dict(grad_h_next=H0, x=XS[0], h=H0, c=H0, h_next=H0, c_next=H0, w_ih=z(28, 5), w_hh=z(28, 7))
    args.update(kw)
    return lambda: fastnn.lstm_step_backward(**args)


def gru_fwd(**kw):
    args = dict(x=XS, h0=H0, w_ih=z(21, 5), w_hh=z(21, 7), b_ih=z(21), b_hh=z(21))
    args.update(kw)
    return lambda: fastnn.gru_forward(**args)


def gru_bwd(**kw):
    args = dict(grad_hs=HS, x=XS, h0=H0, hs=HS, w_ih=z(21, 5), w_hh=z(21, 7))
    args.update(kw)
    return lambda: fastnn.gru_backward(**args)


def gru_step_(**kw):
    args = dict(x=XS[0], h=H0, w_ih=z(21, 5), w_hh=z(21, 7))
    args.update(kw)
    return lambda: fastnn.gru_step(**args)


def gru_step_bwd(**kw):
    args = dict(grad_h_next=H0, x=XS[0], h=H0, h_next=H0, w_ih=z(21, 5), w_hh=z(21, 7))
    args.update(kw)
    return lambda: fastnn.gru_step_backward(**args)


def _huge(shape):
    return np.broadcast_to(z(1, 1, 1), shape)


ERRORS = [
    # ---- lstm_forward ----
    ("lstm x 2-D", lstm_fwd(x=z(2, 5)), ValueError, r"\bx must be 3-D"),
    ("lstm x int", lstm_fwd(x=XS.astype(np.int32)), TypeError, r"\bx must be float32 or float64"),
    ("lstm x None", lstm_fwd(x=None), TypeError, r"\bx must be float32 or float64"),
    ("lstm x float16", lstm_fwd(x=XS.astype(np.float16)), TypeError, r"\bx must be float32 or float64"),
    ("lstm h0 3-D", lstm_fwd(h0=z(1, 2, 7)), ValueError, r"\bh0 must be 2-D"),
    ("lstm h0 wrong batch", lstm_fwd(h0=z(3, 7)), ValueError, r"\bh0 must have shape \(2, 7\)"),
    ("lstm c0 wrong hidden", lstm_fwd(c0=z(2, 6)), ValueError, r"\bc0 must have shape \(2, 7\)"),
    ("lstm c0 complex", lstm_fwd(c0=H0.astype(np.complex64)), TypeError, r"\bc0 must be float32 or float64"),
    ("lstm w_ih rows not 4H", lstm_fwd(w_ih=z(27, 5)), ValueError, r"w_ih must have 4H rows \(gates i, f, g, o"),
    ("lstm w_ih wrong features", lstm_fwd(w_ih=z(28, 4)), ValueError, r"w_ih must have shape \(4H, 5\)"),
    ("lstm w_ih 1-D", lstm_fwd(w_ih=z(28)), ValueError, r"w_ih must be 2-D"),
    ("lstm w_hh wrong shape", lstm_fwd(w_hh=z(28, 6)), ValueError, r"w_hh must have shape \(28, 7\)"),
    ("lstm w_hh square", lstm_fwd(w_hh=z(7, 7)), ValueError, r"w_hh must have shape \(28, 7\)"),
    ("lstm w_hh None", lstm_fwd(w_hh=None), TypeError, r"\bw_hh must be float32 or float64"),
    ("lstm b_ih wrong length", lstm_fwd(b_ih=z(7)), ValueError, r"b_ih must have shape \(28,\)"),
    ("lstm b_hh 2-D", lstm_fwd(b_hh=z(1, 28)), ValueError, r"b_hh must be 1-D"),
    ("lstm mixed w_ih", lstm_fwd(w_ih=z(28, 5, dtype=np.float64)), TypeError, r"w_ih has dtype float64 but x has float32"),
    ("lstm mixed c0", lstm_fwd(c0=H0.astype(np.float64)), TypeError, r"\bc0 has dtype float64"),
    ("lstm hs too large", lstm_fwd(x=_huge((2**30, 2**30, 1)), h0=None, c0=None, w_ih=z(28, 1)), ValueError,
     r"too large"),
    # ---- lstm_backward ----
    ("lstm_back grad_hs wrong shape", lstm_bwd(grad_hs=z(3, 2, 6)), ValueError, r"grad_hs must have shape \(3, 2, 7\)"),
    ("lstm_back hs wrong steps", lstm_bwd(hs=z(2, 2, 7)), ValueError, r"\bhs must have shape \(3, 2, 7\)"),
    ("lstm_back cs 2-D", lstm_bwd(cs=z(2, 7)), ValueError, r"\bcs must be 3-D"),
    ("lstm_back cs None", lstm_bwd(cs=None), TypeError, r"\bcs must be float32 or float64"),
    ("lstm_back grad_c_n wrong shape", lstm_bwd(grad_c_n=z(2, 6)), ValueError, r"grad_c_n must have shape \(2, 7\)"),
    ("lstm_back grad_c_n int", lstm_bwd(grad_c_n=H0.astype(np.int64)), TypeError, r"grad_c_n must be float32"),
    ("lstm_back mixed cs", lstm_bwd(cs=HS.astype(np.float64)), TypeError, r"\bcs has dtype float64"),
    ("lstm_back c0 wrong shape", lstm_bwd(c0=z(3, 7)), ValueError, r"\bc0 must have shape \(2, 7\)"),
    ("lstm_back w_ih rows", lstm_bwd(w_ih=z(30, 5)), ValueError, r"w_ih must have 4H rows"),
    # ---- lstm_step / lstm_step_backward ----
    ("lstm_step x 3-D", lstm_step_(x=XS), ValueError, r"\bx must be 2-D"),
    ("lstm_step h None", lstm_step_(h=None), TypeError, r"\bh must be float32 or float64"),
    ("lstm_step c None", lstm_step_(c=None), TypeError, r"\bc must be float32 or float64"),
    ("lstm_step c wrong shape", lstm_step_(c=z(2, 6)), ValueError, r"\bc must have shape \(2, 7\)"),
    ("lstm_step mixed h", lstm_step_(h=H0.astype(np.float64)), TypeError, r"\bh has dtype float64"),
    ("lstm_step_back c_next wrong shape", lstm_step_bwd(c_next=z(2, 6)), ValueError, r"\bc_next must have shape"),
    ("lstm_step_back h_next None", lstm_step_bwd(h_next=None), TypeError, r"\bh_next must be float32"),
    ("lstm_step_back grad_c_next 3-D", lstm_step_bwd(grad_c_next=HS), ValueError, r"grad_c_next must be 2-D"),
    ("lstm_step_back grad_h_next shape", lstm_step_bwd(grad_h_next=z(3, 7)), ValueError,
     r"\bgrad_h_next must have shape"),
    # ---- gru_forward ----
    ("gru x 2-D", gru_fwd(x=z(2, 5)), ValueError, r"\bx must be 3-D"),
    ("gru x bool", gru_fwd(x=XS.astype(bool)), TypeError, r"\bx must be float32 or float64"),
    ("gru h0 wrong hidden", gru_fwd(h0=z(2, 6)), ValueError, r"\bh0 must have shape \(2, 7\)"),
    ("gru w_ih rows not 3H", gru_fwd(w_ih=z(20, 5)), ValueError, r"w_ih must have 3H rows \(gates r, z, n"),
    ("gru w_ih wrong features", gru_fwd(w_ih=z(21, 6)), ValueError, r"w_ih must have shape \(3H, 5\)"),
    ("gru w_hh as lstm's", gru_fwd(w_hh=z(28, 7)), ValueError, r"w_hh must have shape \(21, 7\)"),
    ("gru b_hh wrong length", gru_fwd(b_hh=z(28)), ValueError, r"b_hh must have shape \(21,\)"),
    ("gru mixed b_ih", gru_fwd(b_ih=z(21, dtype=np.float64)), TypeError, r"b_ih has dtype float64"),
    ("gru out a tuple", gru_fwd(out=(z(3, 2, 7),)), TypeError, r"\bout must be a numpy.ndarray"),
    # ---- gru_backward / steps ----
    ("gru_back grad_hs 2-D", gru_bwd(grad_hs=z(2, 7)), ValueError, r"grad_hs must be 3-D"),
    ("gru_back hs wrong shape", gru_bwd(hs=z(3, 3, 7)), ValueError, r"\bhs must have shape \(3, 2, 7\)"),
    ("gru_back hs None", gru_bwd(hs=None), TypeError, r"\bhs must be float32 or float64"),
    ("gru_step h wrong batch", gru_step_(h=z(3, 7)), ValueError, r"\bh must have shape \(2, 7\)"),
    ("gru_step h None", gru_step_(h=None), TypeError, r"\bh must be float32 or float64"),
    ("gru_step_back h_next 1-D", gru_step_bwd(h_next=z(7)), ValueError, r"h_next must be 2-D"),
    ("gru_step_back x wrong features", gru_step_bwd(x=z(2, 4)), ValueError, r"w_ih must have shape \(3H, 4\)"),
]


@pytest.mark.parametrize("name, call, exception, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_invalid_arguments_raise_naming_the_argument(name, call, exception, pattern):
    with pytest.raises(exception, match=pattern):
        call()


# Inputs as stride-0 views (no memory); H = 1 in the backward, so that grad_hs can exist as a view
# while the gates' scratch (4 or 3 times hs) cannot.
BIG = (2**40, 2**20, 1)
ABSURD = {
    "lstm_forward": lambda: fastnn.lstm_forward(_huge(BIG), None, None, z(16, 1), z(16, 4)),
    "lstm_backward": lambda: fastnn.lstm_backward(_huge(BIG), _huge(BIG), None, None, _huge(BIG), _huge(BIG),
                                                  z(4, 1), z(4, 1)),
    "gru_forward": lambda: fastnn.gru_forward(_huge(BIG), None, z(12, 1), z(12, 4)),
    "gru_backward": lambda: fastnn.gru_backward(_huge(BIG), _huge(BIG), None, _huge(BIG), z(3, 1), z(3, 1)),
}


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_absurd_sizes_refused_before_allocating(name):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="too large"):
            ABSURD[name]()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{name}: {peak / 2**20:.0f} MiB allocated before refusing"


# ---- Inf and NaN --------------------------------------------------------------------------------

# what: (array, index) to corrupt
SPOTS = {"x": ("x", (2, 1, 3)), "h0": ("h0", (1, 4)), "c0": ("c0", (0, 2)), "w_ih": ("w_ih", (2, 1)),
         "w_hh": ("w_hh", (13, 0)), "b_ih": ("b_ih", (5,)), "b_hh": ("b_hh", (17,)),
         "grad_hs": ("grad_hs", (3, 2, 1)), "grad_c_n": ("grad_c_n", (1, 1))}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family, spot", [(family, spot) for family in FAMILIES for spot in sorted(SPOTS)
                                          if family == "lstm" or spot not in ("c0", "grad_c_n")])
def test_nonfinite_values_reach_what_the_oracle_says(compiled_only, family, spot, dtype, bad):
    p = make_problem(9, family, 5, 3, 4, 6, dtype)
    array, index = SPOTS[spot]
    clean = call_forward(reference, family, p)
    p[array][index] = bad
    if not spot.startswith("grad"):
        states = call_forward(fastnn, family, p)
        for name, g, w in zip(FORWARD_NAMES[family], states, call_forward(reference, family, p)):
            assert_nonfinite_like(g, w, f"{name} ({spot} = {bad})")
    # the backward of the clean forward, so that only it sees the bad value (unless it is an input)
    grads = call_backward(fastnn, family, p, clean)
    for name, g, w in zip(GRAD_NAMES[family], grads, call_backward(reference, family, p, clean)):
        assert_nonfinite_like(g, w, f"{name} ({spot} = {bad})")


@pytest.mark.parametrize("family", FAMILIES)
def test_nonfinite_w_hh_or_gradient_with_zero_states_omitted(compiled_only, family):
    """h0 = None is a zero state and 0 * NaN is NaN: the oracle (and PyTorch) multiply it, so a
    NaN in w_hh reaches step 0, and a NaN gradient at step 0 reaches grad_w_hh."""
    for dtype in DTYPES:
        for bad in (np.nan, np.inf):
            p = make_problem(10, family, 4, 3, 2, 5, dtype, given=(False, False, True, True))
            p["w_hh"][7, 1] = bad
            for got, want in zip(call_forward(fastnn, family, p), call_forward(reference, family, p)):
                assert_nonfinite_like(got, want, f"{family} forward, {dtype.__name__}, w_hh {bad}")
            q = make_problem(10, family, 4, 3, 2, 5, dtype, given=(False, False, True, True))
            clean = call_forward(reference, family, q)
            q["grad_hs"][0, 1, 2] = bad
            for name, got, want in zip(GRAD_NAMES[family], call_backward(fastnn, family, q, clean),
                                       call_backward(reference, family, q, clean)):
                assert_nonfinite_like(got, want, f"{family} {name}, {dtype.__name__}, grad_hs[0] {bad}")


# ---- threads: bit-identical results for any team --------------------------------------------------

# name: (T, N, I, H): which work the teams split
THREAD_CASES = {
    "rows_path": (6, 1, 5, 70),        # a team on the row kernel's panels
    "gemm_path": (5, 9, 7, 40),        # the GEMM core's NR columns, a fringe of rows
    "odd_split": (4, 5, 3, 100),       # H not a multiple of any split
}


def deterministic_calls(family, name, dtype):
    steps, batch, features, hidden = THREAD_CASES[name]
    p = make_problem(11, family, steps, batch, features, hidden, dtype)
    states = tuple(s.astype(dtype) for s in call_forward(reference, family, p))
    return {
        "forward": lambda: call_forward(fastnn, family, p),
        "backward": lambda: call_backward(fastnn, family, p, states),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(THREAD_CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_bit_identical_across_thread_counts(family, name, dtype, cpu_path, teams_everywhere, compiled_only):
    threads_before = _runtime._requested_threads
    try:
        check_deterministic(deterministic_calls(family, name, dtype))
    finally:
        fastnn.set_num_threads(threads_before)


@pytest.mark.parametrize("family", FAMILIES)
def test_recurrence_runs_on_a_team(family, teams_everywhere, compiled_only):
    """The per-step team, not just the input GEMM's: one step with N = 1 has a serial GEMM
    (one row), so a team can only come from the recurrence."""
    threads_before = _runtime._requested_threads
    fastnn.set_num_threads(2)
    try:
        p = make_problem(12, family, 1, 1, 3, 70, np.float32)
        old = KERNELS.set_serial_gemm_fmas(1e12)
        try:
            _, team = team_of(lambda: call_forward(fastnn, family, p))
        finally:
            KERNELS.set_serial_gemm_fmas(old)
        assert team == 2
    finally:
        fastnn.set_num_threads(threads_before)


def test_concurrent_python_threads_give_single_thread_results(teams_everywhere, compiled_only):
    """Python threads calling the kernels at once (the GIL released) each get their own
    scratch: results equal the serial ones."""
    threads_before = _runtime._requested_threads
    fastnn.set_num_threads(2)
    try:
        calls = {f"{family}.{name}.{label}": call for family in FAMILIES for name in THREAD_CASES
                 for label, call in deterministic_calls(family, name, np.float64).items()}
        want = {label: call() for label, call in calls.items()}
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = {label: [pool.submit(call) for _ in range(3)] for label, call in calls.items()}
            for label, fs in futures.items():
                for f in fs:
                    assert_bit_identical(f.result(), want[label], label)
    finally:
        fastnn.set_num_threads(threads_before)


@pytest.mark.parametrize("family", FAMILIES)
def test_gil_released_during_kernel(family, compiled_only):
    """A Python thread keeps running while a long forward runs in another one."""
    threads_before = _runtime._requested_threads
    fastnn.set_num_threads(1)
    p = make_problem(13, family, 400, 16, 64, 256, np.float32, given=(False, False, False, False))
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    try:
        t0 = time.perf_counter()
        call_forward(fastnn, family, p)
        alone = time.perf_counter() - t0
        counter = threading.Thread(target=count)
        counter.start()
        t0 = time.perf_counter()
        call_forward(fastnn, family, p)
        t1 = time.perf_counter()
        stop.set()
        counter.join()
    finally:
        fastnn.set_num_threads(threads_before)
    during = [t for t in ticks if t0 < t < t1]
    assert alone > 0.02 and len(during) >= 3, f"{len(during)} ticks during a {t1 - t0:.3f} s call"


# ---- memory and the fallback ----------------------------------------------------------------------

def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("threads, repeats", [(1, 1000), (2, 200)])
def test_repeated_calls_do_not_grow_memory(threads, repeats, teams_everywhere, compiled_only):
    threads_before = _runtime._requested_threads
    fastnn.set_num_threads(threads)
    try:
        calls = [c for family in FAMILIES for c in deterministic_calls(family, "gemm_path", np.float32).values()]
        calls.append(lambda: pytest.raises(ValueError, fastnn.lstm_forward, XS, None, None, z(28, 4), z(28, 7)))
        for _ in range(50):
            for call in calls:
                call()
        before = _rss()
        for _ in range(repeats):
            for call in calls:
                call()
        grown = _rss() - before
    finally:
        fastnn.set_num_threads(threads_before)
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {repeats} x {len(calls)} calls"


_FALLBACK = r"""
import json, sys
sys.modules["fastnn._kernels"] = None  # the import fails: the reference does the work
import warnings
warnings.simplefilter("ignore")
import numpy as np
sys.path.insert(0, sys.argv[1])
import fastnn
from fastnn import reference
from gates_helpers import FAMILIES, backward, forward, problem, step, step_backward
rng = np.random.default_rng(0)
checks = {}
for family in FAMILIES:
    for dtype in (np.float32, np.float64):
        p = problem(rng, family, 4, 3, 2, 5, dtype=dtype)
        for label, ours, theirs in (
                ("forward", lambda: forward(fastnn, family, p), lambda: forward(reference, family, p)),
                ("backward", lambda: backward(fastnn, family, p, forward(fastnn, family, p)),
                 lambda: backward(reference, family, p, forward(reference, family, p))),
                ("step", lambda: step(fastnn, family, p), lambda: step(reference, family, p)),
                ("step_backward", lambda: step_backward(fastnn, family, p, step(fastnn, family, p)),
                 lambda: step_backward(reference, family, p, step(reference, family, p)))):
            got, want = ours(), theirs()
            checks[f"{family} {label} {dtype.__name__}"] = all(
                g.dtype == w.dtype and np.array_equal(g, w) for g, w in zip(got, want)) and len(got) == len(want)
try:
    fastnn.lstm_forward(np.zeros((2, 1, 3)), None, None, np.zeros((7, 3)), np.zeros((7, 7)))
    checks["validation"] = False
except ValueError:
    checks["validation"] = True
print(json.dumps({"compiled": fastnn.show_config(print_out=False)["compiled"], "checks": checks}))
"""


def test_fallback_without_compiled_kernels():
    """Without the extension the public kernels give the reference's results, validated first."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))] + [p for p in sys.path if p]))
    proc = subprocess.run([sys.executable, "-c", _FALLBACK, here], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["compiled"] is False
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed and len(report["checks"]) == 2 * 2 * 4 + 1, report["checks"]
