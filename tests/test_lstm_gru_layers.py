"""Tests of the LSTM and GRU layers (fastnn.LSTM, fastnn.GRU) and of the three cells
(fastnn.LSTMCell, fastnn.GRUCell, fastnn.RNNCell).

Gradients against float64 central finite differences of a random linear loss; every option
combination against the per-direction kernels' oracle; the layers against PyTorch through the
recorded fixture tests/fixtures/layers_lstm_gru.npz (tests/fixtures/make_gate_fixtures.py; no
torch needed) on every CPU path, and live when torch is installed.
"""
import itertools
import json
import math
import os

import numpy as np
import pytest

import fastnn
from fastnn import _runtime, reference

from conv_helpers import conftest_module
from oracle_helpers import numerical_grad
from gates_helpers import layer_backward as run_backward

KERNELS = conftest_module().KERNELS
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "layers_lstm_gru.npz")
LAYERS = {"lstm": fastnn.LSTM, "gru": fastnn.GRU}
GATES = {"lstm": 4, "gru": 3}


def assert_grad_close(analytic, numeric, name):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


def torch_keys(num_layers, bidirectional, bias):
    """PyTorch's state_dict keys for torch.nn.LSTM / GRU, in its order (written out independently)."""
    keys = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
            keys += [f"{name}_l{layer}{suffix}" for name in names]
    return keys


def run(layer, family, x, states):
    """(output, finals as a list) for either layer; states a list of stacked states or Nones."""
    if family == "lstm":
        output, finals = layer(x, tuple(states))
        return output, list(finals)
    output, h_n = layer(x, states[0])
    return output, [h_n]


def states_of(family):
    return 2 if family == "lstm" else 1


# ---------------------------------------------------------------------------------------------
# every option combination against the oracle, direction by direction
# ---------------------------------------------------------------------------------------------

def oracle(layer, family, x, states, grad_output, grad_finals):
    """The stacked layer written out with fastnn.reference's one-direction kernels, in float64:
    (output, finals, grad_x, grad_states, {param: grad})."""
    H, D, L = layer.hidden_size, layer.num_directions, layer.num_layers
    T, N, _ = x.shape
    lstm = family == "lstm"
    zeros = np.zeros((L * D, N, H))
    states = [zeros if s is None else s for s in states]
    grad_finals = [zeros if g is None else g for g in grad_finals]
    p = {k: v.astype(np.float64) for k, v in layer.params.items()}
    inp = x
    saved, finals = [], [np.zeros((L * D, N, H)) for _ in states]
    for layer_index in range(L):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[:D]):
            k = f"l{layer_index}{suffix}"
            w = (p[f"weight_ih_{k}"], p[f"weight_hh_{k}"], p.get(f"bias_ih_{k}"), p.get(f"bias_hh_{k}"))
            idx = layer_index * D + d
            seq = inp if d == 0 else inp[::-1]
            if lstm:
                hs, cs = reference.lstm_forward(seq, states[0][idx], states[1][idx], *w)
                finals[0][idx], finals[1][idx] = hs[-1], cs[-1]
                saved.append((k, w, seq, (hs, cs), idx, d, layer_index))
            else:
                hs = reference.gru_forward(seq, states[0][idx], *w)
                finals[0][idx] = hs[-1]
                saved.append((k, w, seq, (hs,), idx, d, layer_index))
            outs.append(hs if d == 0 else hs[::-1])
        inp = np.concatenate(outs, axis=2)
    output = inp
    grads = {}
    grad_states = [np.zeros((L * D, N, H)) for _ in states]
    grad_out = grad_output
    for layer_index in reversed(range(L)):
        grad_in = 0
        for k, w, seq, fwd, idx, d, li in [s for s in saved if s[-1] == layer_index]:
            g = grad_out[:, :, d * H:(d + 1) * H]
            g = (g if d == 0 else g[::-1]).copy()
            g[-1] += grad_finals[0][idx]
            if lstm:
                gx, gh0, gc0, gw_ih, gw_hh, gb = reference.lstm_backward(
                    g, seq, states[0][idx], states[1][idx], *fwd, *w, grad_c_n=grad_finals[1][idx])
                grad_states[0][idx], grad_states[1][idx] = gh0, gc0
                gb_ih = gb_hh = gb
            else:
                gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh = reference.gru_backward(g, seq, states[0][idx], *fwd, *w)
                grad_states[0][idx] = gh0
            grads.update({f"weight_ih_{k}": gw_ih, f"weight_hh_{k}": gw_hh, f"bias_ih_{k}": gb_ih,
                          f"bias_hh_{k}": gb_hh})
            grad_in = grad_in + (gx if d == 0 else gx[::-1])
        grad_out = grad_in
    return output, finals, grad_out, grad_states, grads


COMBINATIONS = list(itertools.product(("lstm", "gru"), (1, 2, 3), (False, True), (False, True), (True, False)))


@pytest.mark.parametrize("family, num_layers, bidirectional, batch_first, bias", COMBINATIONS,
                         ids=lambda v: str(v))
def test_every_option_against_the_oracle(family, num_layers, bidirectional, batch_first, bias):
    """Shapes, state_dict keys, values and every gradient, for each option combination; the
    states given or omitted and each final-state gradient given or omitted, in turn."""
    T, N, I, H = 4, 3, 5, 6
    D = 2 if bidirectional else 1
    gates = GATES[family]
    rng = np.random.default_rng(COMBINATIONS.index((family, num_layers, bidirectional, batch_first, bias)))
    layer = LAYERS[family](I, H, num_layers, bias, batch_first, 0.0, bidirectional, dtype=np.float64, rng=rng)
    assert list(layer.params) == torch_keys(num_layers, bidirectional, bias)
    assert list(layer.grads) == list(layer.params)
    for key, value in layer.params.items():
        k = int(key.split("_l")[1][0])
        want = {"weight_ih": (gates * H, I if k == 0 else D * H), "weight_hh": (gates * H, H)}.get(
            key.rsplit("_l", 1)[0], (gates * H,))
        assert value.shape == want, key
    x = rng.standard_normal((T, N, I))
    n_states = states_of(family)
    for variant in range(2 + n_states):
        given = [variant != 1 and not (variant >= 2 and s == variant - 2) for s in range(n_states)]
        states = [rng.standard_normal((num_layers * D, N, H)) if g else None for g in given]
        grad_finals = [rng.standard_normal((num_layers * D, N, H)) if g else None for g in reversed(given)]
        output, finals = run(layer, family, x.transpose(1, 0, 2) if batch_first else x, states)
        assert output.shape == ((N, T, D * H) if batch_first else (T, N, D * H)) and output.dtype == np.float64
        out_tnf = output.transpose(1, 0, 2) if batch_first else output
        grad_output = rng.standard_normal(out_tnf.shape)
        grad_x, grad_states = run_backward(layer, family, grad_output.transpose(1, 0, 2) if batch_first else grad_output,
                                           grad_finals)
        want = oracle(layer, family, x, states, grad_output, grad_finals)
        np.testing.assert_allclose(out_tnf, want[0], rtol=1e-12, atol=1e-14)
        for got, exp in zip(finals, want[1]):
            np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grad_x.transpose(1, 0, 2) if batch_first else grad_x, want[2], rtol=1e-11,
                                   atol=1e-13)
        for got, exp in zip(grad_states, want[3]):
            assert got.shape == (num_layers * D, N, H)
            np.testing.assert_allclose(got, exp, rtol=1e-11, atol=1e-13)
        for key in layer.params:
            np.testing.assert_allclose(layer.grads[key], want[4][key], rtol=1e-11, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("family", LAYERS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_unbatched(family, bidirectional):
    layer = LAYERS[family](3, 4, 2, bidirectional=bidirectional, dtype=np.float64, rng=0)
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    states = [rng.standard_normal((2 * D, 4)) for _ in range(states_of(family))]
    output, finals = run(layer, family, x, states)
    assert output.shape == (5, D * 4) and all(f.shape == (2 * D, 4) for f in finals)
    batched_out, batched_finals = run(layer, family, x[:, None], [s[:, None] for s in states])
    np.testing.assert_allclose(output, batched_out[:, 0], rtol=1e-12)
    for f, b in zip(finals, batched_finals):
        np.testing.assert_allclose(f, b[:, 0], rtol=1e-12)
    G = rng.standard_normal(batched_out.shape)
    Gf = [rng.standard_normal(b.shape) for b in batched_finals]
    gx_b, gs_b = run_backward(layer, family, G, Gf)
    run(layer, family, x, states)
    gx, gs = run_backward(layer, family, G[:, 0], [g[:, 0] for g in Gf])
    assert gx.shape == x.shape
    np.testing.assert_allclose(gx, gx_b[:, 0], rtol=1e-12)
    for g, b in zip(gs, gs_b):
        assert g.shape == (2 * D, 4)
        np.testing.assert_allclose(g, b[:, 0], rtol=1e-12)


GRAD_CASES = [
    # (family, num_layers, bidirectional, batch_first, bias, states given, loss on output, on finals)
    ("lstm", 1, False, False, True, True, True, True),
    ("lstm", 2, True, False, True, True, True, True),
    ("lstm", 2, True, True, False, False, True, False),
    ("lstm", 2, False, False, True, True, False, True),
    ("gru", 1, False, False, True, True, True, True),
    ("gru", 2, True, True, True, True, True, True),
    ("gru", 2, True, False, False, False, True, False),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: "-".join(map(str, c)))
def test_gradients_finite_differences(case):
    family, num_layers, bidirectional, batch_first, bias, given, on_out, on_finals = case
    T, N, I, H = 3, 2, 3, 3
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(GRAD_CASES.index(case))
    layer = LAYERS[family](I, H, num_layers, bias, batch_first, 0.0, bidirectional, dtype=np.float64, rng=rng)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I))
    states = [rng.standard_normal((num_layers * D, N, H)) if given else None for _ in range(states_of(family))]
    output, finals = run(layer, family, x, states)
    G = rng.standard_normal(output.shape) if on_out else None
    Gf = [rng.standard_normal(f.shape) for f in finals] if on_finals else [None] * len(finals)
    run(layer, family, x, states)
    grad_x, grad_states = run_backward(layer, family, G, Gf)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    given_states = [s for s in states if s is not None]

    def loss(x, *rest):
        values = iter(rest[:len(given_states)])
        for value, target in zip(rest[len(given_states):], layer.params.values()):
            target[...] = value
        out, fin = run(layer, family, x, [None if s is None else next(values) for s in states])
        total = np.sum(out * G) if on_out else 0.0
        return float(total + sum(np.sum(f * g) for f, g in zip(fin, Gf) if g is not None))

    arrays = [x] + given_states + [v.copy() for v in layer.params.values()]
    analytic = [("x", grad_x)] + [(f"state {k}", g) for k, (g, s) in enumerate(zip(grad_states, states))
                                  if s is not None] + list(grads.items())
    for index, (name, want) in enumerate(analytic):
        assert_grad_close(want, numerical_grad(loss, arrays, index), name)


@pytest.mark.parametrize("family", LAYERS)
def test_omitted_states_get_the_gradient_at_zeros(family):
    rng = np.random.default_rng(0)
    layer = LAYERS[family](3, 4, 2, bidirectional=True, dtype=np.float64, rng=rng)
    x, G = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 8))
    run(layer, family, x, [None] * states_of(family))
    gx, gs = run_backward(layer, family, G, [None] * states_of(family))
    zeros = [np.zeros((4, 2, 4)) for _ in range(states_of(family))]
    run(layer, family, x, zeros)
    gx2, gs2 = run_backward(layer, family, G, [None] * states_of(family))
    np.testing.assert_allclose(gx, gx2, rtol=1e-13, atol=1e-15)
    for a, b in zip(gs, gs2):
        assert isinstance(a, np.ndarray) and a.shape == (4, 2, 4)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("family", LAYERS)
def test_backward_overwrites_grads_and_forward_reuses_its_buffers(family):
    layer = LAYERS[family](3, 4, 2, dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 3))
    output, _ = layer(x)
    arrays = dict(layer.grads)
    layer.backward(np.ones_like(output))
    first = {k: v.copy() for k, v in layer.grads.items()}
    layer.backward(np.ones_like(output))  # twice from one forward: the kept gates are intact
    for key in first:
        assert layer.grads[key] is arrays[key]
        np.testing.assert_array_equal(layer.grads[key], first[key])
    layer(y)  # a forward of another input in the same buffers, then back to x
    layer(x)
    layer.backward(np.ones_like(output))
    for key in first:
        np.testing.assert_array_equal(layer.grads[key], first[key])


@pytest.mark.parametrize("family", LAYERS)
def test_float32_agrees_with_float64(family):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 2, 3))
    l64 = LAYERS[family](3, 8, 2, bidirectional=True, dtype=np.float64, rng=1)
    l32 = LAYERS[family](3, 8, 2, bidirectional=True, rng=1)
    o64, _ = run(l64, family, x, [None, None])
    o32, _ = run(l32, family, x, [None, None])
    assert o32.dtype == np.float32
    np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-5)
    G = rng.standard_normal(o64.shape)
    g64, _ = run_backward(l64, family, G, [None, None])
    g32, _ = run_backward(l32, family, G, [None, None])
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)
    for key in l64.grads:
        np.testing.assert_allclose(l32.grads[key], l64.grads[key], rtol=1e-4, atol=1e-4, err_msg=key)


@pytest.mark.parametrize("family", LAYERS)
def test_bit_identical_across_thread_counts(family, compiled_only):
    """The layer on teams of 1, 2 and 3 threads (every serial threshold at 0): same bytes."""
    rng = np.random.default_rng(3)
    layer = LAYERS[family](6, 40, 2, bidirectional=True, rng=4)
    x = rng.standard_normal((6, 9, 6)).astype(np.float32)
    G = rng.standard_normal((6, 9, 80)).astype(np.float32)
    before = (_runtime._requested_threads, _runtime.serial_threshold, KERNELS.set_serial_gemm_fmas(0),
              KERNELS.set_gates_serial_step_fmas(0))
    _runtime.serial_threshold = 0
    try:
        results = []
        for threads in (1, 2, 3):
            fastnn.set_num_threads(threads)
            KERNELS.reset_team_size()
            out, finals = run(layer, family, x, [None, None])
            grad_x, grad_states = run_backward(layer, family, G, [None, None])
            team = KERNELS.last_team_size()
            assert team <= 1 if threads == 1 else team == threads, (threads, team)
            results.append([out, *finals, grad_x, *grad_states, *(layer.grads[k].copy() for k in layer.grads)])
        for threads, again in zip((2, 3), results[1:]):
            for i, (a, b) in enumerate(zip(results[0], again)):
                assert a.tobytes() == b.tobytes(), f"result {i} differs between 1 and {threads} threads"
    finally:
        fastnn.set_num_threads(before[0])
        _runtime.serial_threshold = before[1]
        KERNELS.set_serial_gemm_fmas(before[2])
        KERNELS.set_gates_serial_step_fmas(before[3])


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", LAYERS)
def test_errors(family):
    layer = LAYERS[family](3, 4, 2, bidirectional=True, rng=0)
    n_states = states_of(family)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((5, 2, 8), np.float32))
    with pytest.raises(ValueError, match="input_size"):
        layer(np.ones((5, 2, 2), np.float32))
    with pytest.raises(ValueError, match="time step"):
        layer(np.ones((0, 2, 3), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        layer(np.ones((1, 5, 2, 3), np.float32))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        layer(np.ones((5, 2, 3), complex))
    bad_state = np.zeros((2, 2, 4), np.float32)
    if family == "lstm":
        with pytest.raises(ValueError, match=r"\bh0 has shape"):
            layer(np.ones((5, 2, 3), np.float32), (bad_state, None))
        with pytest.raises(ValueError, match=r"\bc0 has shape"):
            layer(np.ones((5, 2, 3), np.float32), (None, bad_state))
        for hx in (bad_state, [bad_state], (None, None, None)):
            with pytest.raises(TypeError, match=r"hx must be None or a pair \(h0, c0\)"):
                layer(np.ones((5, 2, 3), np.float32), hx)
    else:
        with pytest.raises(ValueError, match=r"\bh0 has shape"):
            layer(np.ones((5, 2, 3), np.float32), bad_state)
    output, finals = run(layer, family, np.ones((5, 2, 3), np.float32), [None] * n_states)
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.ones((5, 2, 4), np.float32))
    bad = np.ones((2, 2, 4), np.float32)
    if family == "lstm":
        with pytest.raises(ValueError, match=r"grad_h_n has shape .* the forward h_n's shape"):
            layer.backward(output, (bad, None))
        with pytest.raises(ValueError, match=r"grad_c_n has shape .* the forward c_n's shape"):
            layer.backward(output, (None, bad))
        with pytest.raises(TypeError, match=r"grad_hx must be None or a pair \(grad_h_n, grad_c_n\)"):
            layer.backward(output, finals[0])
    else:
        with pytest.raises(ValueError, match=r"grad_h_n has shape"):
            layer.backward(output, bad)
    run_backward(layer, family, output, finals)


CONSTRUCTOR_ERRORS = [
    (dict(input_size=0, hidden_size=4), ValueError, "input_size"),
    (dict(input_size=3, hidden_size=0), ValueError, "hidden_size"),
    (dict(input_size=3, hidden_size=4, num_layers=0), ValueError, "num_layers"),
    (dict(input_size=3, hidden_size=4, num_layers=2.0), TypeError, "num_layers"),
    (dict(input_size=3, hidden_size=4, num_layers=2, dropout=-0.5), ValueError, "dropout"),
    (dict(input_size=3, hidden_size=4, dropout="0"), ValueError, "dropout"),
    (dict(input_size=3, hidden_size=4, bidirectional=1), TypeError, "bidirectional"),
    (dict(input_size=3, hidden_size=4, batch_first="no"), TypeError, "batch_first"),
    (dict(input_size=3, hidden_size=4, bias=None), TypeError, "bias"),
    (dict(input_size=3, hidden_size=4, dtype=np.float16), TypeError, "dtype"),
    (dict(input_size=3, hidden_size=4, rng=1.5), TypeError, "rng"),
]


@pytest.mark.parametrize("family", LAYERS)
@pytest.mark.parametrize("kwargs, error, match", CONSTRUCTOR_ERRORS)
def test_constructor_validation(family, kwargs, error, match):
    with pytest.raises(error, match=match):
        LAYERS[family](**kwargs)


def test_lstm_proj_size_and_positional_arguments():
    with pytest.raises(ValueError, match="proj_size is not offered yet"):
        fastnn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        fastnn.LSTM(3, 4, 1, True, False, 0.0, False, 3)  # positional, as in PyTorch
    with pytest.raises(ValueError, match="proj_size"):
        fastnn.LSTM(3, 4, proj_size=-1)
    with pytest.raises(TypeError, match="proj_size"):
        fastnn.LSTM(3, 4, proj_size=1.5)
    with pytest.raises(TypeError):
        fastnn.GRU(3, 4, 1, True, False, 0.0, False, 0)  # the GRU has no proj_size
    # PyTorch's positional order: (input, hidden, num_layers, bias, batch_first, dropout, bidirectional)
    lstm = fastnn.LSTM(3, 4, 2, False, True, 0.0, True, 0, rng=0)
    gru = fastnn.GRU(3, 4, 2, False, True, 0.0, True, rng=0)
    for layer in (lstm, gru):
        assert (layer.num_layers, layer.batch_first, layer.bidirectional) == (2, True, True)
        assert "bias_ih_l0" not in layer.params
    assert repr(lstm) == "LSTM(3, 4, num_layers=2, bias=False, batch_first=True, bidirectional=True)"
    assert repr(fastnn.GRU(3, 4, dtype=np.float64)) == "GRU(3, 4, dtype=float64)"


@pytest.mark.parametrize("family", LAYERS)
def test_init_bounds_and_reproducibility(family):
    layer = LAYERS[family](5, 64, 2, bidirectional=True, rng=0)
    bound = 1 / math.sqrt(64)
    for key, value in layer.params.items():
        assert np.all(np.abs(value) <= bound), key
    w = layer.params["weight_hh_l1_reverse"]
    assert w.max() > 0.9 * bound and w.min() < -0.9 * bound and abs(w.mean()) < 0.1 * bound
    same = LAYERS[family](5, 64, 2, bidirectional=True, rng=np.random.default_rng(0))
    other = LAYERS[family](5, 64, 2, bidirectional=True, rng=1)
    for key in layer.params:
        np.testing.assert_array_equal(layer.params[key], same.params[key])
        assert not np.array_equal(layer.params[key], other.params[key])
    assert not np.array_equal(layer.params["bias_ih_l0"], layer.params["bias_hh_l0"])


# ---------------------------------------------------------------------------------------------
# PyTorch: the recorded fixture (no torch needed), on every CPU path, and live
# ---------------------------------------------------------------------------------------------

def _fixture(prefix):
    with np.load(FIXTURE) as data:
        config = json.loads(str(data[f"{prefix}__config"]))

        def group(kind):
            start = f"{prefix}__{kind}__"
            return {k[len(start):]: data[k] for k in data.files if k.startswith(start)}

        return config, group("param"), group("grad"), group("io")


def assert_torch_close(actual, expected, name):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("family", LAYERS)
def test_matches_torch_fixture(family, cpu_path):
    config, params, grads, io = _fixture(family)
    layer = LAYERS[family](**config, dtype=np.float64, rng=0)
    assert list(layer.params) == list(params)  # same keys, same order as torch's state_dict
    layer.load_state_dict(params)
    lstm = family == "lstm"
    states = [io["h0"], io["c0"]] if lstm else [io["h0"]]
    output, finals = run(layer, family, io["x"], states)
    assert_torch_close(output, io["output"], "output")
    assert_torch_close(finals[0], io["h_n"], "h_n")
    if lstm:
        assert_torch_close(finals[1], io["c_n"], "c_n")
    grad_finals = [io["grad_h_n"], io["grad_c_n"]] if lstm else [io["grad_h_n"]]
    grad_x, grad_states = run_backward(layer, family, io["grad_output"], grad_finals)
    assert_torch_close(grad_x, io["grad_x"], "grad_x")
    assert_torch_close(grad_states[0], io["grad_h0"], "grad_h0")
    if lstm:
        assert_torch_close(grad_states[1], io["grad_c0"], "grad_c0")
    assert len(params) == 16
    for key in params:
        assert_torch_close(layer.grads[key], grads[key], key)


LIVE = [
    ("lstm", dict(num_layers=2, bias=False, batch_first=True, bidirectional=True), False),
    ("lstm", dict(num_layers=3, batch_first=True), False),
    ("lstm", dict(num_layers=2, bidirectional=True), True),
    ("gru", dict(num_layers=2, bias=False, batch_first=True, bidirectional=True), False),
    ("gru", dict(num_layers=3), False),
    ("gru", dict(num_layers=2, bidirectional=True), True),
]


@pytest.mark.parametrize("family, kwargs, unbatched", LIVE, ids=lambda v: str(v))
def test_matches_torch_live(family, kwargs, unbatched):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, family.upper())(3, 5, **kwargs, dtype=torch.float64)
    layer = LAYERS[family](3, 5, **kwargs, dtype=np.float64, rng=0)
    layer.load_state_dict(module.state_dict())  # torch tensors convert through np.asarray
    D = 2 if kwargs.get("bidirectional") else 1
    L = kwargs["num_layers"]
    x_shape = (6, 3) if unbatched else ((2, 6, 3) if kwargs.get("batch_first") else (6, 2, 3))
    x = torch.randn(*x_shape, dtype=torch.float64, requires_grad=True)
    state_shape = (L * D, *(() if unbatched else (2,)), 5)
    states = [torch.randn(*state_shape, dtype=torch.float64, requires_grad=True) for _ in range(states_of(family))]
    if family == "lstm":
        output, finals = module(x, tuple(states))
    else:
        output, h_n = module(x, states[0])
        finals = (h_n,)
    grad_output = torch.randn_like(output)
    grad_finals = [torch.randn_like(f) for f in finals]
    ((output * grad_output).sum() + sum((f * g).sum() for f, g in zip(finals, grad_finals))).backward()
    ours, our_finals = run(layer, family, x.detach().numpy(), [s.detach().numpy() for s in states])
    assert_torch_close(ours, output.detach().numpy(), "output")
    for a, b in zip(our_finals, finals):
        assert_torch_close(a, b.detach().numpy(), "final state")
    grad_x, grad_states = run_backward(layer, family, grad_output.numpy(), [g.numpy() for g in grad_finals])
    assert_torch_close(grad_x, x.grad.numpy(), "grad_x")
    for a, s in zip(grad_states, states):
        assert_torch_close(a, s.grad.numpy(), "grad of an initial state")
    for key, p in module.named_parameters():
        assert_torch_close(layer.grads[key], p.grad.numpy(), key)


@pytest.mark.parametrize("family", LAYERS)
def test_float32_matches_torch_live(family):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    module = getattr(torch.nn, family.upper())(16, 32, 2, bidirectional=True)
    layer = LAYERS[family](16, 32, 2, bidirectional=True, rng=0)
    layer.load_state_dict(module.state_dict())
    x = torch.randn(20, 8, 16)
    with torch.no_grad():
        want = module(x)[0].numpy()
    got, _ = run(layer, family, x.numpy(), [None, None])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------

CELLS = {"lstm": fastnn.LSTMCell, "gru": fastnn.GRUCell, "rnn": fastnn.RNNCell}
SEQUENCE = {"lstm": fastnn.LSTM, "gru": fastnn.GRU, "rnn": fastnn.RNN}


def cell_step(cell, family, x, states):
    if family == "lstm":
        return list(cell(x, tuple(states)))
    return [cell(x, states[0])]


def cell_back(cell, family, grads):
    if family == "lstm":
        grad_x, (gh, gc) = cell.backward(*grads)
        return grad_x, [gh, gc]
    grad_x, gh = cell.backward(grads[0])
    return grad_x, [gh]


@pytest.mark.parametrize("family", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_driven_over_a_sequence_is_the_sequence_layer(family, bias):
    """T forwards then T backwards from the last step back (a decoder's loop) give the one-layer
    sequence layer's outputs, state gradients and parameter gradients."""
    T, N, I, H = 5, 3, 4, 6
    rng = np.random.default_rng(2)
    cell = CELLS[family](I, H, bias, dtype=np.float64, rng=rng)
    seq = SEQUENCE[family](I, H, 1, bias=bias, dtype=np.float64) if family != "rnn" else \
        fastnn.RNN(I, H, 1, bias=bias, dtype=np.float64)
    assert list(cell.params) == ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    seq.load_state_dict({f"{k}_l0": v for k, v in cell.params.items()})
    x = rng.standard_normal((T, N, I))
    n_states = 2 if family == "lstm" else 1
    states0 = [rng.standard_normal((N, H)) for _ in range(n_states)]
    states, hs = states0, []
    for t in range(T):
        states = cell_step(cell, family, x[t], states)
        hs.append(states[0])
    if family == "lstm":
        out, (h_n, c_n) = seq(x, (states0[0][None], states0[1][None]))
        np.testing.assert_allclose(states[1], c_n[0], rtol=1e-12)
    else:
        out, h_n = seq(x, states0[0][None])
    np.testing.assert_allclose(np.stack(hs), out, rtol=1e-12, atol=1e-14)
    G = rng.standard_normal(out.shape)
    grad_states = [np.zeros((N, H)) for _ in range(n_states)]
    grad_x = np.empty_like(x)
    for t in reversed(range(T)):
        grads = [grad_states[0] + G[t]] + grad_states[1:]
        grad_x[t], grad_states = cell_back(cell, family, grads)
    if family == "lstm":
        want_x, (want_h0, want_c0) = seq.backward(G)
        np.testing.assert_allclose(grad_states[1], want_c0[0], rtol=1e-11, atol=1e-13)
    else:
        want_x, want_h0 = seq.backward(G)
    np.testing.assert_allclose(grad_x, want_x, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(grad_states[0], want_h0[0], rtol=1e-11, atol=1e-13)
    for key in cell.grads:
        np.testing.assert_allclose(cell.grads[key], seq.grads[f"{key}_l0"], rtol=1e-11, atol=1e-13, err_msg=key)
    with pytest.raises(RuntimeError, match="without a forward"):
        cell.backward(np.zeros((N, H)))
    # a new forward: its backward overwrites what the sequence accumulated
    cell_step(cell, family, x[0], states0)
    gx, _ = cell_back(cell, family, [G[0]] + [None] * (n_states - 1))
    first = {k: v.copy() for k, v in cell.grads.items()}
    cell_step(cell, family, x[0], states0)
    cell_back(cell, family, [G[0]] + [None] * (n_states - 1))
    for key in first:
        np.testing.assert_array_equal(cell.grads[key], first[key])


@pytest.mark.parametrize("family", CELLS)
def test_cell_unbatched_default_state_reset_and_errors(family):
    cell = CELLS[family](3, 4, rng=0)
    n_states = 2 if family == "lstm" else 1
    x = np.random.default_rng(0).standard_normal(3).astype(np.float32)
    nexts = cell_step(cell, family, x, [None] * n_states)
    assert all(n.shape == (4,) and n.dtype == np.float32 for n in nexts)
    batched = cell_step(cell, family, x[None], [np.zeros((1, 4), np.float32)] * n_states)
    for a, b in zip(nexts, batched):
        np.testing.assert_array_equal(a, b[0])
    cell.reset()
    with pytest.raises(RuntimeError, match="without a forward"):
        cell.backward(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="input_size"):
        cell(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"\bh has shape"):
        cell_step(cell, family, np.zeros((2, 3), np.float32), [np.zeros((3, 4), np.float32)] * n_states)
    cell_step(cell, family, np.zeros((2, 3), np.float32), [None] * n_states)
    with pytest.raises(ValueError, match="grad_h_next has shape"):
        cell.backward(np.zeros((3, 4), np.float32))
    if family == "lstm":
        with pytest.raises(TypeError, match=r"hx must be None or a pair \(h, c\)"):
            cell(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))
    for kwargs, error, match in CONSTRUCTOR_ERRORS[:2] + CONSTRUCTOR_ERRORS[-3:]:
        kwargs = {k: v for k, v in kwargs.items()}
        with pytest.raises(error, match=match):
            CELLS[family](**kwargs)


@pytest.mark.parametrize("family", CELLS)
def test_cell_matches_torch_live(family):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    module = getattr(torch.nn, f"{family.upper()}Cell")(5, 3, dtype=torch.float64)
    cell = CELLS[family](5, 3, dtype=np.float64, rng=0)
    cell.load_state_dict(module.state_dict())
    assert list(cell.params) == [k for k, _ in module.named_parameters()]
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(2 if family == "lstm" else 1)]
    nexts = module(x, tuple(states)) if family == "lstm" else (module(x, states[0]),)
    grads = [torch.randn_like(n) for n in nexts]
    sum((n * g).sum() for n, g in zip(nexts, grads)).backward()
    ours = cell_step(cell, family, x.detach().numpy(), [s.detach().numpy() for s in states])
    for a, b in zip(ours, nexts):
        assert_torch_close(a, b.detach().numpy(), "next state")
    grad_x, grad_states = cell_back(cell, family, [g.numpy() for g in grads])
    assert_torch_close(grad_x, x.grad.numpy(), "grad_x")
    for a, s in zip(grad_states, states):
        assert_torch_close(a, s.grad.numpy(), "grad state")
    for key, p in module.named_parameters():
        assert_torch_close(cell.grads[key], p.grad.numpy(), key)
