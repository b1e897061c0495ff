"""Variable-length batches (`lengths=`) in the recurrent kernels: rnn, lstm and gru, forward and
backward, compiled and reference.

The semantics (issue 13): sequence b occupies steps 0 .. lengths[b]-1; outputs past its end
are zero (also in out=); the backward ignores grad_hs past the end, takes the final state's
gradient at grad_hs[lengths[b]-1, b] (and for the LSTM grad_c_n[b] at the cell state of that
step), gives exactly zero grad_x at padded steps and sums the weight gradients over real steps
only.

Oracles, each independent of the one it checks: the compiled kernels against fastnn.reference
(float64, every dispatch path, teams of threads); the reference against itself run on each
sequence alone without lengths (x[:L, b:b+1]), against float64 finite differences, and against
PyTorch's packed sequences (pack_padded_sequence(enforce_sorted=False)) when torch is installed.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn
from fastnn import _runtime, reference

from conv_helpers import conftest_module
from kernel_helpers import (DTYPES, KERNELS, PATHS, Unmodified, assert_bit_identical, assert_close, check_deterministic,
                            f64, fixture_settings, with_layout)
from kernel_helpers import every_threshold_zero
from kernel_helpers import running_recurrent as running
from oracle_helpers import numerical_grad

float_tolerance = conftest_module().float_tolerance
FAMILIES = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
STATE_NAMES = {"rnn": ("hs",), "lstm": ("hs", "cs"), "gru": ("hs",)}
GRAD_NAMES = {"rnn": ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b"),
              "lstm": ("grad_x", "grad_h0", "grad_c0", "grad_w_ih", "grad_w_hh", "grad_b"),
              "gru": ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh")}


# ---- problems and calls -----------------------------------------------------------------------

def make_problem(seed, family, steps, batch, features, hidden, dtype=np.float64, h0=True, c0=True, bias=True,
                 grad_c_n=True):
    """Random arrays of one problem; weights scaled by 1/sqrt(fan-in) so states stay O(1)."""
    rng = np.random.default_rng(seed)
    g = GATES[family]
    lstm = family == "lstm"

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    return dict(
        x=normal(steps, batch, features),
        h0=normal(batch, hidden, scale=0.5) if h0 else None,
        c0=normal(batch, hidden, scale=0.5) if lstm and c0 else None,
        w_ih=normal(g * hidden, features, scale=0.7 / np.sqrt(max(features, 1))),
        w_hh=normal(g * hidden, hidden, scale=0.7 / np.sqrt(max(hidden, 1))),
        b_ih=normal(g * hidden, scale=0.3) if bias else None,
        b_hh=normal(g * hidden, scale=0.3) if bias else None,
        grad_hs=normal(steps, batch, hidden),
        grad_c_n=normal(batch, hidden) if lstm and grad_c_n else None,
    )


def forward(mod, family, p, lengths, nonlinearity="tanh", **kwargs):
    """mod.<family>_forward with lengths, as a tuple: (hs,) or (hs, cs)."""
    if family == "rnn":
        return (mod.rnn_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity,
                                lengths=lengths, **kwargs),)
    if family == "lstm":
        return tuple(mod.lstm_forward(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                      lengths=lengths, **kwargs))
    return (mod.gru_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], lengths=lengths, **kwargs),)


def backward(mod, family, p, states, lengths, nonlinearity="tanh"):
    """mod.<family>_backward with lengths, given the forward's states."""
    if family == "rnn":
        return mod.rnn_backward(p["grad_hs"], p["x"], p["h0"], states[0], p["w_ih"], p["w_hh"], nonlinearity,
                                lengths=lengths)
    if family == "lstm":
        return mod.lstm_backward(p["grad_hs"], p["x"], p["h0"], p["c0"], *states, p["w_ih"], p["w_hh"], p["b_ih"],
                                 p["b_hh"], grad_c_n=p["grad_c_n"], lengths=lengths)
    return mod.gru_backward(p["grad_hs"], p["x"], p["h0"], states[0], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                            lengths=lengths)


def wide(p):
    return {k: f64(a) for k, a in p.items()}


def normwise_tol(dtype, want, terms, steps):
    scale = max(float(np.abs(want).max()) if want.size else 0.0, 1.0)
    return float_tolerance(dtype, terms, scale) * 4 * (steps + 1)


def padding_mask(lengths, steps):
    """(T, N) True where step t is past sequence b's end."""
    return np.arange(steps)[:, None] >= np.asarray(lengths)[None, :]




def check_against_reference(family, p, lengths, dtype, nonlinearity="tanh", run=None, use_out=False):
    """The compiled forward and backward with lengths against the float64 reference; padded
    outputs and padded grad_x exactly zero; inputs untouched. Returns the compiled results."""
    steps, batch, features = p["x"].shape
    hidden = p["w_hh"].shape[1]
    guard = Unmodified(**p, lengths=lengths if isinstance(lengths, np.ndarray) else None)
    kwargs = {}
    if use_out:
        outs = tuple(np.full((steps, batch, hidden), np.nan, dtype) for _ in STATE_NAMES[family])
        kwargs["out"] = outs if family == "lstm" else outs[0]
    with running(**(run or dict(path=PATHS[-1]))):
        states = forward(fastnn, family, p, lengths, nonlinearity, **kwargs)
    guard.check()
    if use_out:
        assert all(s is o for s, o in zip(states, outs)), "out= must be written and returned"
    want_states = forward(reference, family, wide(p), lengths, nonlinearity)
    pad = padding_mask(lengths, steps)
    for name, got, want in zip(STATE_NAMES[family], states, want_states):
        assert got.dtype == dtype and got.shape == (steps, batch, hidden), name
        assert not got[pad].any(), f"{family} {name}: nonzero past a sequence's end"
        assert_close(got, want, normwise_tol(dtype, want, features + GATES[family] * hidden + 2, steps),
                     f"{family}_forward {name}")
    # the backward on the reference's states (as the tests of the plain kernels do)
    states_in = tuple(w.astype(dtype) for w in want_states)
    guard = Unmodified(**p, **dict(zip(STATE_NAMES[family], states_in)))
    with running(**(run or dict(path=PATHS[-1]))):
        grads = backward(fastnn, family, p, states_in, lengths, nonlinearity)
    guard.check()
    want_grads = backward(reference, family, wide(p), tuple(f64(s) for s in states_in), lengths, nonlinearity)
    assert isinstance(grads, tuple) and len(grads) == len(GRAD_NAMES[family])
    for name, got, want in zip(GRAD_NAMES[family], grads, want_grads):
        assert got.dtype == dtype, name
        terms = GATES[family] * hidden + features + steps * batch
        assert_close(got, want, normwise_tol(dtype, want, terms, steps), f"{family}_backward {name}")
    assert not grads[0][pad].any(), f"{family}: grad_x nonzero at a padded step"
    return states, grads


# ---- compiled against the reference -------------------------------------------------------------

@st.composite
def length_configs(draw):
    steps = draw(st.integers(1, 6))
    batch = draw(st.integers(1, 6))
    return dict(
        family=draw(st.sampled_from(FAMILIES)),
        steps=steps, batch=batch,
        features=draw(st.integers(0, 5)),
        hidden=draw(st.sampled_from([1, 2, 3, 5, 9, 17, 33])),
        lengths=draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)),
        form=draw(st.sampled_from(["list", "int64", "int32", "uint8"])),
        given=draw(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans())),
        nonlinearity=draw(st.sampled_from(["tanh", "relu"])),
    )


def as_form(lengths, form):
    if form == "list":
        return list(lengths)
    return np.array(lengths, dtype=form)


@fixture_settings
@given(cfg=length_configs(), dtype=st.sampled_from(DTYPES), use_out=st.booleans(),
       run=st.fixed_dictionaries(dict(path=st.sampled_from(PATHS), threads=st.sampled_from([None, 1, 2, 3]),
                                      parallel=st.booleans())),
       seed=st.integers(0, 2**32 - 1))
def test_compiled_matches_reference(compiled_only, cfg, dtype, use_out, run, seed):
    h0, c0, bias, grad_c_n = cfg["given"]
    p = make_problem(seed, cfg["family"], cfg["steps"], cfg["batch"], cfg["features"], cfg["hidden"], dtype,
                     h0, c0, bias, grad_c_n)
    check_against_reference(cfg["family"], p, as_form(cfg["lengths"], cfg["form"]), dtype, cfg["nonlinearity"],
                            run, use_out)


# lengths patterns on a batch of 13 within T = 7
PATTERNS = {
    "unsorted_ties": [3, 7, 1, 7, 5, 3, 3, 2, 6, 7, 1, 4, 5],
    "ascending": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7],
    "all_T": [7] * 13,
    "all_1": [1] * 13,
    "max_below_T": [4, 2, 5, 5, 1, 3, 2, 4, 5, 1, 3, 5, 2],
    # every sequence live for the first 4 steps (leading steps the drivers may run unpacked)
    "bucketed": [4, 7, 5, 6, 4, 7, 5, 4, 6, 7, 5, 6, 4],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("family", FAMILIES)
def test_patterns_on_every_path(compiled_only, cpu_path, family, pattern, dtype):
    """Past the GEMM core's register tiles (H = 40, N = 13), every dispatch path, serially and
    with teams of threads on every step."""
    p = make_problem(7, family, 7, 13, 20, 40, dtype)
    for threads, parallel in ((None, False), (3, True)):
        check_against_reference(family, p, PATTERNS[pattern], dtype, run=dict(path=cpu_path, threads=threads,
                                                                                parallel=parallel))


# a batch of 40 within T = 7: steps of 40 down to 3 live rows, so teams of 2 and 3 threads
# split the steps by rows where the weights are small (kernels/_gates.pxi split_rows: two
# micro-panels of rows per thread), and by units once the live rows are few
ROW_SPLIT_LENGTHS = {
    "spread": [1 + (b * 5) % 7 for b in range(40)],
    "all_T": [7] * 40,
    "most_end_early": [7, 7, 7] + [2] * 37,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pattern", sorted(ROW_SPLIT_LENGTHS))
@pytest.mark.parametrize("family", FAMILIES)
def test_teams_split_steps_by_rows(compiled_only, cpu_path, family, pattern, dtype):
    p = make_problem(11, family, 7, 40, 6, 20, dtype)
    for threads in (2, 3):
        check_against_reference(family, p, ROW_SPLIT_LENGTHS[pattern], dtype,
                                run=dict(path=cpu_path, threads=threads, parallel=True))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("given", [(False, False, False, False), (True, True, True, True),
                                   (True, False, True, False), (False, True, False, True)],
                         ids=["none", "all", "h0_bias", "c0_grad_c_n"])
def test_optional_arguments(compiled_only, family, given):
    """h0 / c0 / biases / grad_c_n given or None, on the row path (N = 2) and past it (N = 5),
    with a sequence of length 1 and without (every sequence live at step 1 too)."""
    for batch, lengths in ((2, [3, 1]), (5, [2, 5, 5, 1, 4]), (5, [3, 5, 4, 2, 5])):
        p = make_problem(3, family, 5, batch, 6, 20, np.float32, *given)
        check_against_reference(family, p, lengths, np.float32)


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_of_one(compiled_only, family):
    for length in (1, 3, 6):
        p = make_problem(4, family, 6, 1, 5, 18, np.float64)
        check_against_reference(family, p, [length], np.float64)


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "byteswapped", "misaligned", "readonly"])
@pytest.mark.parametrize("family", FAMILIES)
def test_awkward_layouts(compiled_only, family, layout):
    """Inputs in any memory layout (the packed copies read them as they are)."""
    p = make_problem(5, family, 5, 4, 6, 10, np.float32)
    p = {k: None if a is None else with_layout(a, layout) for k, a in p.items()}
    check_against_reference(family, p, np.array([2, 5, 1, 4]), np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_all_lengths_T_equals_no_lengths_bit_for_bit(compiled_only, family, dtype):
    """lengths = [T] * N is exactly lengths=None, compiled and reference alike."""
    p = make_problem(6, family, 6, 9, 7, 40, dtype)
    for mod in (fastnn, reference):
        plain = forward(mod, family, p, None)
        full = forward(mod, family, p, [6] * 9)
        assert_bit_identical(full, plain, f"{mod.__name__} {family} forward")
        grads_plain = backward(mod, family, p, plain, None)
        grads_full = backward(mod, family, p, plain, np.full(9, 6))
        assert_bit_identical(tuple(grads_full), tuple(grads_plain), f"{mod.__name__} {family} backward")


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_inputs_are_never_read(compiled_only, family):
    """Inf and NaN in x and grad_hs past every sequence's end change nothing."""
    lengths = [2, 5, 3, 1]
    p = make_problem(8, family, 5, 4, 3, 12, np.float64)
    check_against_reference(family, p, lengths, np.float64)  # (on the best path)
    # the baseline on the path the calls below take (FASTNN_CPU may have chosen another)
    states = forward(fastnn, family, p, lengths)
    grads = backward(fastnn, family, p, states, lengths)
    pad = padding_mask(lengths, 5)
    q = dict(p, x=p["x"].copy(), grad_hs=p["grad_hs"].copy())
    q["x"][pad] = np.nan
    q["grad_hs"][pad] = np.inf
    assert_bit_identical(forward(fastnn, family, q, lengths), states, f"{family} forward")
    assert_bit_identical(tuple(backward(fastnn, family, q, states, lengths)), tuple(grads), f"{family} backward")


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("family", FAMILIES)
def test_nonfinite_values_reach_what_the_reference_says(compiled_only, family, bad):
    """An Inf or NaN in w_hh with h0 = None (0 * Inf is NaN, as in the oracle and PyTorch), or
    in a live step of x, reaches the same outputs and gradients as in the reference."""
    from kernel_helpers import assert_nonfinite_like
    lengths = [3, 1, 4]
    for where in ("w_hh", "x"):
        p = make_problem(17, family, 4, 3, 5, 6, np.float64, h0=False, c0=False)
        if where == "w_hh":
            p["w_hh"][1, 2] = bad
        else:
            p["x"][1, 0, 3] = bad
        got, want = forward(fastnn, family, p, lengths), forward(reference, family, p, lengths)
        for name, g, w in zip(STATE_NAMES[family], got, want):
            assert_nonfinite_like(g, w, f"{family} {name}, {where} {bad}")
        grads_got = backward(fastnn, family, p, want, lengths)
        grads_want = backward(reference, family, p, want, lengths)
        for name, g, w in zip(GRAD_NAMES[family], grads_got, grads_want):
            assert_nonfinite_like(g, w, f"{family} {name}, {where} {bad}")


# ---- the reference against independent oracles ---------------------------------------------------

def one_sequence(p, b, length):
    """The problem of sequence b alone, its first `length` steps, as a batch of one."""
    q = {}
    for k, a in p.items():
        if a is None:
            q[k] = None
        elif k in ("x", "grad_hs"):
            q[k] = a[:length, b:b + 1]
        elif k in ("h0", "c0", "grad_c_n"):
            q[k] = a[b:b + 1]
        else:
            q[k] = a
    return q


@pytest.mark.parametrize(("family", "nonlinearity"), [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"),
                                                     ("gru", "tanh")])
def test_reference_equals_each_sequence_alone(family, nonlinearity):
    lengths = np.array([3, 6, 1, 6, 4, 2])
    steps, batch = 6, 6
    p = make_problem(9, family, steps, batch, 4, 5)
    states = forward(reference, family, p, lengths, nonlinearity)
    grads = backward(reference, family, p, states, lengths, nonlinearity)
    summed = [np.zeros_like(g) for g in grads[2 if family != "lstm" else 3:]]
    for b, length in enumerate(lengths):
        q = one_sequence(p, b, length)
        alone = forward(reference, family, q, None, nonlinearity)
        for name, got, want in zip(STATE_NAMES[family], states, alone):
            np.testing.assert_allclose(got[:length, b], want[:, 0], rtol=1e-12, atol=1e-14, err_msg=name)
            assert not got[length:, b].any(), name
        alone_grads = backward(reference, family, q, alone, None, nonlinearity)
        np.testing.assert_allclose(grads[0][:length, b], alone_grads[0][:, 0], rtol=1e-12, atol=1e-14)
        assert not grads[0][length:, b].any()
        starts = 2 if family == "lstm" else 1
        for i in range(1, 1 + starts):  # grad_h0 (and grad_c0)
            np.testing.assert_allclose(grads[i][b], alone_grads[i][0], rtol=1e-12, atol=1e-14)
        for acc, g in zip(summed, alone_grads[1 + starts:]):
            acc += g
    for name, got, want in zip(GRAD_NAMES[family][-len(summed):], grads[-len(summed):], summed):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("family", FAMILIES)
def test_reference_gradients_match_finite_differences(family):
    """loss = sum(grad_hs * hs) (+ sum(grad_c_n[b] * cs[lengths[b] - 1, b]) for the LSTM),
    differentiated numerically in float64 through the reference forward with lengths."""
    lengths = np.array([2, 4, 1])
    p = make_problem(10, family, 4, 3, 2, 3)
    names = ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"] + (["c0"] if family == "lstm" else [])
    last = lengths - 1

    def loss(*arrays):
        q = dict(p, **dict(zip(names, arrays)))
        states = forward(reference, family, q, lengths)
        total = np.sum(p["grad_hs"] * states[0])
        if family == "lstm":
            total += np.sum(p["grad_c_n"] * states[1][last, np.arange(3)])
        return total

    states = forward(reference, family, p, lengths)
    grads = dict(zip(GRAD_NAMES[family], backward(reference, family, p, states, lengths)))
    wants = {"x": "grad_x", "h0": "grad_h0", "c0": "grad_c0", "w_ih": "grad_w_ih", "w_hh": "grad_w_hh",
             "b_ih": "grad_b" if family != "gru" else "grad_b_ih", "b_hh": "grad_b" if family != "gru" else "grad_b_hh"}
    arrays = [p[n] for n in names]
    for i, name in enumerate(names):
        numeric = numerical_grad(loss, arrays, i)
        np.testing.assert_allclose(grads[wants[name]], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    assert np.abs(grads["grad_x"][padding_mask(lengths, 4)]).max() == 0


# ---- PyTorch's packed sequences ----------------------------------------------------------------------

@pytest.mark.parametrize("with_states", [True, False])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("impl", ["fastnn", "reference"])
def test_matches_torch_packed_sequences(family, impl, with_states, compiled_only):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    mod = fastnn if impl == "fastnn" else reference
    steps, batch, features, hidden = 6, 5, 4, 7
    lengths = np.array([4, 6, 1, 6, 3])
    p = make_problem(11, family, steps, batch, features, hidden, h0=with_states, c0=with_states)
    rng = np.random.default_rng(12)
    grad_out = rng.standard_normal((steps, batch, hidden))
    grad_h_n = rng.standard_normal((batch, hidden))
    grad_c_n = rng.standard_normal((batch, hidden)) if family == "lstm" else None

    module = getattr(torch.nn, family.upper())(features, hidden, dtype=torch.float64)
    with torch.no_grad():
        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, f"{key}_l0").copy_(torch.from_numpy(p[key.replace("weight", "w").replace("bias", "b")]))
    xt = torch.from_numpy(p["x"]).requires_grad_()
    starts = [torch.from_numpy(p[k])[None].requires_grad_() for k in ("h0", "c0") if p.get(k) is not None]
    packed = pack_padded_sequence(xt, torch.from_numpy(lengths), enforce_sorted=False)
    if family == "lstm":
        out, (h_n, c_n) = module(packed, tuple(starts) if starts else None)
    else:
        out, h_n = module(packed, starts[0] if starts else None)
    out, _ = pad_packed_sequence(out, total_length=steps)
    loss = (out * torch.from_numpy(grad_out)).sum() + (h_n[0] * torch.from_numpy(grad_h_n)).sum()
    if family == "lstm":
        loss = loss + (c_n[0] * torch.from_numpy(grad_c_n)).sum()
    loss.backward()

    states = forward(mod, family, p, lengths)
    np.testing.assert_allclose(states[0], out.detach().numpy(), rtol=1e-10, atol=1e-12)
    last = (lengths - 1, np.arange(batch))
    np.testing.assert_allclose(states[0][last], h_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    if family == "lstm":
        np.testing.assert_allclose(states[1][last], c_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    # the final state's gradient comes in at each sequence's last step
    grad_hs = grad_out * ~padding_mask(lengths, steps)[..., None]
    grad_hs[last] += grad_h_n
    q = dict(p, grad_hs=grad_hs, grad_c_n=grad_c_n)
    grads = dict(zip(GRAD_NAMES[family], backward(mod, family, q, states, lengths)))
    np.testing.assert_allclose(grads["grad_x"], xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    for key, start in zip(("grad_h0", "grad_c0"), starts):
        np.testing.assert_allclose(grads[key], start.grad[0].numpy(), rtol=1e-9, atol=1e-11, err_msg=key)
    np.testing.assert_allclose(grads["grad_w_ih"], module.weight_ih_l0.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["grad_w_hh"], module.weight_hh_l0.grad.numpy(), rtol=1e-9, atol=1e-11)
    grad_b_ih, grad_b_hh = ((grads["grad_b_ih"], grads["grad_b_hh"]) if family == "gru"
                            else (grads["grad_b"], grads["grad_b"]))
    np.testing.assert_allclose(grad_b_ih, module.bias_ih_l0.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grad_b_hh, module.bias_hh_l0.grad.numpy(), rtol=1e-9, atol=1e-11)


# ---- errors ------------------------------------------------------------------------------------------

BAD_TYPES = [(1, 2, 3), [1.0, 2.0, 3.0], np.array([1.0, 2.0, 3.0]), [True, 2, 3], np.array([True, True, True]), "abc",
             3, {1, 2, 3}, [1, 2, None], [[1], [2], [3]]]
BAD_VALUES = [[0, 2, 3], [1, 2, 5], [-1, 2, 3], [1, 2], [1, 2, 3, 4], np.array([[1, 2, 3]]), np.array(2),
              np.array([2**40, 1, 1]), [2**70, 1, 1], np.array([2**63 + 5, 1, 1], np.uint64)]


def call_kernel(mod, family, direction, lengths):
    p = make_problem(13, family, 4, 3, 2, 5, np.float32)
    states = forward(reference, family, p, None)
    if direction == "forward":
        return forward(mod, family, p, lengths)
    return backward(mod, family, p, states, lengths)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mod", [fastnn, reference], ids=["fastnn", "reference"])
def test_bad_lengths_raise_naming_lengths(mod, family, direction):
    for bad in BAD_TYPES:
        with pytest.raises(TypeError, match="lengths"):
            call_kernel(mod, family, direction, bad)
    for bad in BAD_VALUES:
        with pytest.raises(ValueError, match="lengths"):
            call_kernel(mod, family, direction, bad)
    # the good forms, for contrast
    for good in ([1, 4, 2], [4, 4, 4], np.array([3, 1, 4], np.int8), np.array([3, 1, 4], np.uint64), [np.int64(2)] * 3):
        call_kernel(mod, family, direction, good)


def test_empty_batch_takes_empty_lengths(compiled_only):
    for family in FAMILIES:
        p = make_problem(14, family, 3, 0, 2, 4, np.float32)
        for mod in (fastnn, reference):
            states = forward(mod, family, p, [])
            assert states[0].shape == (3, 0, 4)
            backward(mod, family, p, states, np.zeros(0, np.int64))


# ---- threads, and the layers' own entry points -------------------------------------------------------

# name: (T, N, I, H, lengths): which work the teams split
THREAD_CASES = {
    "rows_path": (6, 2, 5, 70, [6, 3]),
    "gemm_path": (5, 9, 7, 40, [5, 1, 3, 5, 2, 4, 4, 1, 5]),
    "odd_split": (4, 5, 3, 100, [2, 4, 1, 3, 4]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(THREAD_CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_bit_identical_across_thread_counts(compiled_only, family, name, dtype):
    steps, batch, features, hidden, lengths = THREAD_CASES[name]
    p = make_problem(15, family, steps, batch, features, hidden, dtype)
    states = tuple(s.astype(dtype) for s in forward(reference, family, wide(p), lengths))
    calls = {"forward": lambda: forward(fastnn, family, p, lengths),
             "backward": lambda: tuple(backward(fastnn, family, p, states, lengths))}
    threads_before = _runtime._requested_threads
    try:
        with every_threshold_zero():
            check_deterministic(calls)
    finally:
        fastnn.set_num_threads(threads_before)


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_saved_gates_with_lengths(compiled_only, family):
    """The layers' path: _forward_checked keeps the gates (packed in the front of the (T, N, G*H)
    buffer), _backward_checked uses them: the same as recomputing them."""
    from fastnn import _validation, gru, lstm
    steps, batch, features, hidden = 6, 5, 4, 20
    lengths = _validation.sequence_lengths([2, 6, 1, 6, 4], steps, batch)
    p = make_problem(16, family, steps, batch, features, hidden, np.float32)
    dtype = np.dtype(np.float32)
    gates = np.full((steps, batch, GATES[family] * hidden), np.nan, dtype)
    if family == "lstm":
        states = lstm._forward_checked(dtype, p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                       gates=gates, lengths=lengths)
        kept = lstm._backward_checked(dtype, p["grad_hs"], p["grad_c_n"], p["x"], p["h0"], p["c0"], *states,
                                      p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], gates=gates, lengths=lengths)
    else:
        ghn = np.full((steps, batch, hidden), np.nan, dtype)
        states = (gru._forward_checked(dtype, p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                       saved=(gates, ghn), lengths=lengths),)
        kept = gru._backward_checked(dtype, p["grad_hs"], p["x"], p["h0"], states[0], p["w_ih"], p["w_hh"], p["b_ih"],
                                     p["b_hh"], saved=(gates, ghn), lengths=lengths)
    assert_bit_identical(tuple(states), forward(fastnn, family, p, lengths), f"{family} forward")
    recomputed = backward(fastnn, family, p, states, lengths)
    for name, got, want in zip(GRAD_NAMES[family], kept, recomputed):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=name)


# ---- the registered variable-length cases ------------------------------------------------------------

def length_cases():
    from fastnn import _cases
    return _cases.select(patterns=["*_len"])


def test_length_cases_are_registered():
    keys = {c.key for c in length_cases()}
    assert keys == {f"{family}/{name}/{direction}" for family in FAMILIES for name in ("small_len", "large_len")
                    for direction in ("fwd", "fwdbwd")}
    for case in length_cases():
        lengths = np.array(case.params["lengths"])
        assert {"bench", "suite"} <= case.tags
        assert lengths.min() == case.params["t"] // 2 and lengths.max() == case.params["t"]
        assert abs(lengths.mean() / case.params["t"] - 0.75) < 0.01
        assert not np.all(np.diff(lengths) <= 0), "the batch should not come sorted"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in length_cases() if c.name == "small_len"], ids=lambda c: c.key)
def test_small_length_cases_agree_with_their_truth(compiled_only, case, dtype):
    worst = case.instance(dtype).check()
    assert {"fastnn", "numpy"} <= set(worst)
    assert all(w <= 1.0 for w in worst.values()), worst
