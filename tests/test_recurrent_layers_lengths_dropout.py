"""Variable-length batches (``lengths=``) and dropout between layers in the recurrent layers
(fastnn.RNN, fastnn.LSTM, fastnn.GRU), and train()/eval() on every layer.

lengths: against an oracle written independently (each sequence run alone through the layer,
without lengths, on its own steps), against PyTorch's pack_padded_sequence(enforce_sorted=False)
-> module -> pad_packed_sequence(total_length=T) live when torch is installed, and always
against the recorded tests/fixtures/layers_lengths.npz (tests/fixtures/make_gate_fixtures.py).
Dropout: evaluation mode against PyTorch and dropout=0, the saved masks (values, rate, a new one
each forward, reproducible from the seed), the masks' place in the stack (an oracle from
one-layer layers), and the backward against float64 finite differences with the masks held
fixed (the layer's ``rng`` reseeded before each forward).
"""
import json
import os
import warnings

import numpy as np
import pytest

import fastnn

from oracle_helpers import numerical_grad
from gates_helpers import layer_backward as run_backward

FAMILIES = {"rnn": fastnn.RNN, "lstm": fastnn.LSTM, "gru": fastnn.GRU}
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "layers_lengths.npz")
TORCH_WARNING = ("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                 "expects num_layers greater than 1, but got dropout=0.5 and num_layers=1")


def make(family, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=False,
         dropout=0.0, dtype=np.float64, rng=0):
    return FAMILIES[family](input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                            batch_first=batch_first, dropout=dropout, dtype=dtype, rng=rng)


def n_states(family):
    return 2 if family == "lstm" else 1


def run(layer, family, x, states=None, **kwargs):
    """(output, finals as a list); states a list of stacked states (or None: omitted)."""
    if family == "lstm":
        output, finals = layer(x, None if states is None else tuple(states), **kwargs)
        return output, list(finals)
    output, h_n = layer(x, None if states is None else states[0], **kwargs)
    return output, [h_n]


def time_major(a, batch_first):
    return a.transpose(1, 0, 2) if batch_first else a


# ---------------------------------------------------------------------------------------------
# lengths: against each sequence run alone
# ---------------------------------------------------------------------------------------------

LENGTH_CASES = {
    "ties": (5, [3, 5, 3, 2]),
    "all_T": (4, [4, 4, 4]),
    "all_one": (3, [1, 1, 1]),
    "max_below_T": (6, [2, 4, 1, 4]),
    "unsorted": (5, [1, 4, 2, 5, 3]),
    "bucketed": (6, [4, 6, 3, 5]),  # every sequence live for the first 3 steps
}
LAYOUTS = [(1, False, False), (2, True, False), (3, True, True), (2, False, True)]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda v: "L{}-bi{:d}-bf{:d}".format(*v))
@pytest.mark.parametrize("case", LENGTH_CASES)
@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_equal_each_sequence_run_alone(family, case, layout):
    """Outputs (zero past each end), final states, grad_x (zero past each end), the initial
    states' gradients and every parameter gradient equal running each sequence alone on its own
    steps (the loss restricted to its real steps; grad_output past its end is random and must be
    ignored), the parameter gradients summed over the sequences."""
    T, lengths = LENGTH_CASES[case]
    num_layers, bidirectional, batch_first = layout
    N, I, H = len(lengths), 3, 4
    D = 2 if bidirectional else 1
    seed = list(LENGTH_CASES).index(case) * 10 + LAYOUTS.index(layout)
    rng = np.random.default_rng(seed)
    layer = make(family, I, H, num_layers, bidirectional, batch_first, rng=rng)
    x_tm = rng.standard_normal((T, N, I))
    states = [rng.standard_normal((num_layers * D, N, H)) for _ in range(n_states(family))]
    grad_out_tm = rng.standard_normal((T, N, D * H))
    grad_finals = [rng.standard_normal((num_layers * D, N, H)) for _ in range(n_states(family))]
    array = np.array(lengths) if case != "ties" else list(lengths)  # both forms accepted

    output, finals = run(layer, family, time_major(x_tm, batch_first), states, lengths=array)
    grad_x, grad_states = run_backward(layer, family, time_major(grad_out_tm, batch_first), grad_finals)
    output, grad_x = time_major(output, batch_first), time_major(grad_x, batch_first)
    grads = {k: v.copy() for k, v in layer.grads.items()}

    summed = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, L in enumerate(lengths):
        out_b, fin_b = run(layer, family, time_major(x_tm[:L, b:b + 1], batch_first),
                           [s[:, b:b + 1] for s in states])
        out_b = time_major(out_b, batch_first)
        np.testing.assert_allclose(output[:L, b], out_b[:, 0], rtol=1e-12, atol=1e-14, err_msg=f"output {b}")
        assert np.all(output[L:, b] == 0), "output past the end"
        for k, (f, fb) in enumerate(zip(finals, fin_b)):
            np.testing.assert_allclose(f[:, b], fb[:, 0], rtol=1e-12, atol=1e-14, err_msg=f"final {k} of {b}")
        gx_b, gs_b = run_backward(layer, family, time_major(grad_out_tm[:L, b:b + 1], batch_first),
                                  [g[:, b:b + 1] for g in grad_finals])
        gx_b = time_major(gx_b, batch_first)
        np.testing.assert_allclose(grad_x[:L, b], gx_b[:, 0], rtol=1e-10, atol=1e-12, err_msg=f"grad_x {b}")
        assert np.all(grad_x[L:, b] == 0), "grad_x past the end"
        for k, (g, gb) in enumerate(zip(grad_states, gs_b)):
            np.testing.assert_allclose(g[:, b], gb[:, 0], rtol=1e-10, atol=1e-12, err_msg=f"grad state {k} of {b}")
        for key in summed:
            summed[key] += layer.grads[key]
    for key in grads:
        np.testing.assert_allclose(grads[key], summed[key], rtol=1e-10, atol=1e-12, err_msg=key)

    if case == "all_T":  # lengths all T: the result without lengths
        plain, plain_finals = run(layer, family, time_major(x_tm, batch_first), states)
        np.testing.assert_allclose(time_major(plain, batch_first), output, rtol=1e-13, atol=1e-15)
        for a, b in zip(plain_finals, finals):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_float32_and_omitted_states(family):
    """The float32 layer (compiled drivers) with lengths and the states omitted agrees with the
    float64 one, and padding gets exact zeros."""
    rng = np.random.default_rng(3)
    T, lengths = 7, [7, 2, 5, 2, 1, 6]
    layer64 = make(family, 5, 8, 2, True, False, rng=rng)
    layer32 = make(family, 5, 8, 2, True, False, dtype=np.float32, rng=0)
    layer32.load_state_dict(layer64.state_dict())
    x = rng.standard_normal((T, len(lengths), 5))
    g = rng.standard_normal((T, len(lengths), 16))
    out64, fin64 = run(layer64, family, x, lengths=lengths)
    out32, fin32 = run(layer32, family, x.astype(np.float32), lengths=lengths)
    gx64, gs64 = run_backward(layer64, family, g, [None] * n_states(family))
    gx32, gs32 = run_backward(layer32, family, g.astype(np.float32), [None] * n_states(family))
    assert out32.dtype == gx32.dtype == np.float32
    for a, b in [(out32, out64), (gx32, gx64)] + list(zip(fin32, fin64)) + list(zip(gs32, gs64)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    for b, L in enumerate(lengths):
        assert np.all(out32[L:, b] == 0) and np.all(gx32[L:, b] == 0)
    for key in layer64.grads:
        np.testing.assert_allclose(layer32.grads[key], layer64.grads[key], rtol=2e-4, atol=2e-4, err_msg=key)


# ---------------------------------------------------------------------------------------------
# lengths: PyTorch, recorded (no torch needed) and live
# ---------------------------------------------------------------------------------------------

def _lengths_fixture(prefix):
    with np.load(FIXTURE) as data:
        config = json.loads(str(data[f"{prefix}__config"]))
        flat = data[f"{prefix}__data"].astype(np.float64)
    arrays, offset = {}, 0
    for name, shape in config["layout"]:
        size = int(np.prod(shape, dtype=np.int64))
        arrays[name] = flat[offset:offset + size].reshape(shape)
        offset += size
    assert offset == flat.size
    group = {kind: {n.split("/", 1)[1]: a for n, a in arrays.items() if n.startswith(kind + "/")}
             for kind in ("io", "param", "grad")}
    return config, group


def assert_fixture_close(actual, expected, name):
    # the fixture holds float64 results rounded to float32
    np.testing.assert_allclose(actual, expected, rtol=2e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_match_torch_fixture(family, cpu_path):
    config, group = _lengths_fixture(family)
    io, params, grads = group["io"], group["param"], group["grad"]
    lengths = config["lengths"]
    T = io["x"].shape[1 if config["module"]["batch_first"] else 0]
    assert sorted(lengths) != lengths and len(set(lengths)) < len(lengths) and max(lengths) < T
    layer = FAMILIES[family](**config["module"], dtype=np.float64, rng=0)
    assert list(layer.params) == list(params)
    layer.load_state_dict(params)
    if family == "lstm":
        assert layer.dropout == 0.5
        assert layer.eval() is layer  # recorded with torch's module in eval mode
    states = [io["h0"], io["c0"]] if family == "lstm" else [io["h0"]]
    output, finals = run(layer, family, io["x"], states, lengths=lengths)
    assert_fixture_close(output, io["output"], "output")
    assert_fixture_close(finals[0], io["h_n"], "h_n")
    if family == "lstm":
        assert_fixture_close(finals[1], io["c_n"], "c_n")
    grad_finals = [io["grad_h_n"], io["grad_c_n"]] if family == "lstm" else [io["grad_h_n"]]
    grad_x, grad_states = run_backward(layer, family, io["grad_output"], grad_finals)
    assert_fixture_close(grad_x, io["grad_x"], "grad_x")
    assert_fixture_close(grad_states[0], io["grad_h0"], "grad_h0")
    if family == "lstm":
        assert_fixture_close(grad_states[1], io["grad_c0"], "grad_c0")
    for key in params:
        assert_fixture_close(layer.grads[key], grads[key], key)


LIVE_LENGTHS = [
    (dict(num_layers=2, bidirectional=True), [3, 6, 1, 3, 5], 7),
    (dict(num_layers=3, bidirectional=True, batch_first=True), [2, 2, 4, 1], 4),
    (dict(num_layers=1), [5, 1, 3], 5),
]


@pytest.mark.parametrize("kwargs, lengths, T", LIVE_LENGTHS)
@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_match_torch_live(family, kwargs, lengths, T):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(LIVE_LENGTHS.index((kwargs, lengths, T)))
    module = getattr(torch.nn, family.upper())(3, 5, **kwargs, dtype=torch.float64)
    layer = FAMILIES[family](3, 5, **kwargs, dtype=np.float64, rng=0)
    layer.load_state_dict(module.state_dict())
    batch_first = kwargs.get("batch_first", False)
    N, D = len(lengths), 2 if kwargs.get("bidirectional") else 1
    x = torch.randn(*((N, T, 3) if batch_first else (T, N, 3)), dtype=torch.float64, requires_grad=True)
    state_shape = (kwargs["num_layers"] * D, N, 5)
    states = [torch.randn(*state_shape, dtype=torch.float64, requires_grad=True) for _ in range(n_states(family))]
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, finals = module(packed, tuple(states) if family == "lstm" else states[0])
    output, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    finals = list(finals) if family == "lstm" else [finals]
    grad_output = torch.randn_like(output)
    grad_finals = [torch.randn_like(f) for f in finals]
    ((output * grad_output).sum() + sum((f * g).sum() for f, g in zip(finals, grad_finals))).backward()

    ours, our_finals = run(layer, family, x.detach().numpy(), [s.detach().numpy() for s in states],
                           lengths=np.array(lengths, dtype=np.int32))
    np.testing.assert_allclose(ours, output.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg="output")
    for a, b in zip(our_finals, finals):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg="final state")
    grad_x, grad_states = run_backward(layer, family, grad_output.numpy(), [g.numpy() for g in grad_finals])
    np.testing.assert_allclose(grad_x, x.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg="grad_x")
    for a, s in zip(grad_states, states):
        np.testing.assert_allclose(a, s.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg="grad state")
    for key, p in module.named_parameters():
        np.testing.assert_allclose(layer.grads[key], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)


# ---------------------------------------------------------------------------------------------
# lengths: errors
# ---------------------------------------------------------------------------------------------

LENGTH_ERRORS = [
    ((3, 2, 1), TypeError),
    ("3", TypeError),
    (3, TypeError),
    ([3.0, 2.0, 1.0], TypeError),
    ([3, 2, True], TypeError),
    (np.array([3.0, 2.0, 1.0]), TypeError),
    (np.array([True, True, True]), TypeError),
    ([3, 2, 0], ValueError),
    ([3, 2, -1], ValueError),
    ([3, 2, 5], ValueError),
    ([3, 2], ValueError),
    ([3, 2, 1, 1], ValueError),
    (np.array([[3, 2, 1]]), ValueError),
    ([], ValueError),
]


@pytest.mark.parametrize("lengths, error", LENGTH_ERRORS, ids=lambda v: repr(v)[:24])
@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_errors(family, lengths, error):
    layer = make(family, 2, 3, 2, True)
    x = np.zeros((4, 3, 2))  # T = 4, N = 3
    with pytest.raises(error, match="lengths"):
        run(layer, family, x, lengths=lengths)


@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_with_unbatched_input_is_an_error(family):
    layer = make(family, 2, 3)
    with pytest.raises(ValueError, match="lengths"):
        run(layer, family, np.zeros((4, 2)), lengths=[4])
    run(layer, family, np.zeros((4, 2)))  # without lengths it runs
    out, _ = run(layer, family, np.zeros((4, 0, 2)), lengths=[])  # an empty batch: no lengths
    assert out.shape == (4, 0, 3)
    with pytest.raises(TypeError):
        layer(np.zeros((4, 1, 2)), None, [4])  # lengths is keyword only


@pytest.mark.parametrize("family", FAMILIES)
def test_backward_remembers_lengths_of_the_latest_forward(family):
    """A forward without lengths after one with lengths: its backward has no padding."""
    rng = np.random.default_rng(4)
    layer = make(family, 2, 3, 2, True, rng=rng)
    x = rng.standard_normal((4, 2, 2))
    g = rng.standard_normal((4, 2, 6))
    run(layer, family, x, lengths=[2, 4])
    masked, _ = run_backward(layer, family, g, [None] * n_states(family))
    assert np.all(masked[2:, 0] == 0)
    run(layer, family, x)
    full, _ = run_backward(layer, family, g, [None] * n_states(family))
    assert np.all(full[2:, 0] != 0)


# ---------------------------------------------------------------------------------------------
# dropout: validation, warning, positional forms, repr
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dropout", [True, False, -0.1, 1.5, "0.5", None, float("nan"), 1j, [0.5]],
                         ids=repr)
@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_validation(family, dropout):
    with pytest.raises(ValueError, match="dropout"):
        make(family, 3, 4, 2, dropout=dropout)


@pytest.mark.parametrize("dropout", [0, 0.0, 0.25, 1, 1.0, np.float32(0.5), np.float64(0.5), np.int64(0)])
@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_accepted_values(family, dropout):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two layers: no warning
        layer = make(family, 3, 4, 2, dropout=dropout)
    assert layer.dropout == float(dropout) and type(layer.dropout) is float


@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_with_one_layer_warns_as_torch(family):
    with pytest.warns(UserWarning) as record:
        layer = make(family, 3, 4, 1, dropout=0.5)
    assert [str(w.message) for w in record] == [TORCH_WARNING]
    assert record[0].filename == __file__  # points at the constructor's caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(family, 3, 4, 1, dropout=0.0)
    # nothing to drop between layers: training equals evaluation, no masks
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    out_train, _ = run(layer, family, x)
    assert layer.dropout_masks == []
    out_eval, _ = run(layer.eval(), family, x)
    np.testing.assert_array_equal(out_train, out_eval)


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_warns_the_same_words(family):
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning) as theirs:
        getattr(torch.nn, family.upper())(3, 4, 1, dropout=0.5)
    assert [str(w.message) for w in theirs] == [TORCH_WARNING]


def test_dropout_positional_as_torch():
    lstm = fastnn.LSTM(3, 4, 2, True, False, 0.5, True, rng=0)
    gru = fastnn.GRU(3, 4, 2, True, False, 0.5, True, rng=0)
    assert lstm.dropout == gru.dropout == 0.5 and lstm.bidirectional and gru.bidirectional
    rnn = fastnn.RNN(3, 4, 2, "tanh", True, False, True, dropout=0.5, rng=0)
    assert rnn.dropout == 0.5
    with pytest.raises(TypeError):
        fastnn.RNN(3, 4, 2, "tanh", True, False, True, 0.5)  # keyword only on fastnn.RNN
    assert repr(lstm) == "LSTM(3, 4, num_layers=2, dropout=0.5, bidirectional=True)"
    assert repr(fastnn.RNN(3, 4, 2, batch_first=True, dropout=0.25, rng=0)) == (
        "RNN(3, 4, num_layers=2, batch_first=True, dropout=0.25)")


@pytest.mark.parametrize("family", FAMILIES)
def test_repr_matches_torch(family):
    torch = pytest.importorskip("torch")
    kwargs = dict(num_layers=3, bias=False, batch_first=True, dropout=0.3, bidirectional=True)
    assert repr(FAMILIES[family](2, 5, **kwargs, rng=0)) == repr(getattr(torch.nn, family.upper())(2, 5, **kwargs))


# ---------------------------------------------------------------------------------------------
# dropout: evaluation mode
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_eval_equals_dropout_zero_and_draws_nothing(family):
    rng = np.random.default_rng(5)
    layer = make(family, 3, 4, 3, True, dropout=0.6, rng=7)
    plain = make(family, 3, 4, 3, True, rng=8)
    plain.load_state_dict(layer.state_dict())
    x = rng.standard_normal((5, 2, 3))
    g = rng.standard_normal((5, 2, 8))
    assert layer.training and layer.eval() is layer and not layer.training
    before = layer.rng.bit_generator.state
    ours, ours_f = run(layer, family, x)
    assert layer.rng.bit_generator.state == before and layer.dropout_masks == []
    theirs, theirs_f = run(plain, family, x)
    np.testing.assert_array_equal(ours, theirs)
    for a, b in zip(ours_f, theirs_f):
        np.testing.assert_array_equal(a, b)
    gx, _ = run_backward(layer, family, g, [None] * n_states(family))
    gx_plain, _ = run_backward(plain, family, g, [None] * n_states(family))
    np.testing.assert_array_equal(gx, gx_plain)
    for key in layer.grads:
        np.testing.assert_array_equal(layer.grads[key], plain.grads[key])
    # back to training: the output changes (dropout applies again)
    assert layer.train() is layer and layer.training
    trained, _ = run(layer, family, x)
    assert not np.allclose(trained, ours)


@pytest.mark.parametrize("family", FAMILIES)
def test_eval_matches_torch_live(family):
    torch = pytest.importorskip("torch")
    torch.manual_seed(9)
    module = getattr(torch.nn, family.upper())(3, 5, 3, dropout=0.5, bidirectional=True, dtype=torch.float64).eval()
    layer = make(family, 3, 5, 3, True, dropout=0.5).eval()
    layer.load_state_dict(module.state_dict())
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    out, finals = module(x)
    finals = list(finals) if family == "lstm" else [finals]
    grad_output = torch.randn_like(out)
    (out * grad_output).sum().backward()
    ours, our_finals = run(layer, family, x.detach().numpy())
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-9, atol=1e-12)
    for a, b in zip(our_finals, finals):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-12)
    grad_x, _ = run_backward(layer, family, grad_output.numpy(), [None] * n_states(family))
    np.testing.assert_allclose(grad_x, x.grad.numpy(), rtol=1e-9, atol=1e-12)
    for key, p in module.named_parameters():
        np.testing.assert_allclose(layer.grads[key], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)


# ---------------------------------------------------------------------------------------------
# dropout: training mode
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("family", FAMILIES)
def test_training_masks_values_and_rate(family, dtype):
    """One mask per layer but the last, of the layer output's shape (caller's layout), values 0
    or 1/(1-p), about p of them zero (81920 draws a mask: 6 standard deviations is 0.01)."""
    p = 0.3
    layer = make(family, 8, 64, 3, True, batch_first=True, dropout=p, dtype=dtype, rng=11)
    x = np.random.default_rng(0).standard_normal((32, 20, 8))
    run(layer, family, x)
    masks = layer.dropout_masks
    assert len(masks) == 2
    scale = dtype(1 / (1 - p))
    for mask in masks:
        assert mask.shape == (32, 20, 128) and mask.dtype == dtype
        assert set(np.unique(mask).tolist()) == {0.0, float(scale)}
        assert abs(np.mean(mask == 0) - p) < 0.01


@pytest.mark.parametrize("family", FAMILIES)
def test_new_masks_each_forward_and_reproducible_from_the_seed(family):
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    a = make(family, 3, 16, 3, dropout=0.5, rng=21)
    b = make(family, 3, 16, 3, dropout=0.5, rng=21)
    out_a1, _ = run(a, family, x)
    masks_a1 = [m.copy() for m in a.dropout_masks]
    out_a2, _ = run(a, family, x)
    masks_a2 = a.dropout_masks
    assert not any(np.array_equal(m1, m2) for m1, m2 in zip(masks_a1, masks_a2))
    assert not np.allclose(out_a1, out_a2)
    # the same seed: the same weights and the same sequence of masks
    out_b1, _ = run(b, family, x)
    for m1, m2 in zip(masks_a1, b.dropout_masks):
        np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(out_a1, out_b1)
    out_b2, _ = run(b, family, x)
    np.testing.assert_array_equal(out_a2, out_b2)
    # reseeding the layer's rng repeats a mask
    a.rng = np.random.default_rng(3)
    out_c1, _ = run(a, family, x)
    a.rng = np.random.default_rng(3)
    out_c2, _ = run(a, family, x)
    np.testing.assert_array_equal(out_c1, out_c2)


def stacked_by_hand(layer, family, x_tm, masks_tm, lengths):
    """The stack built from one-layer layers of the same family and weights, each layer's
    output times its mask: (output, finals) in time-major layout."""
    H, D, L = layer.hidden_size, layer.num_directions, layer.num_layers
    inp, finals = x_tm, [[] for _ in range(n_states(family))]
    for k in range(L):
        one = make(family, inp.shape[2], H, 1, layer.bidirectional)
        one.load_state_dict({key.replace(f"_l{k}", "_l0"): value for key, value in layer.params.items()
                             if f"_l{k}" in key})
        out, fin = run(one, family, inp, lengths=lengths)
        for s, f in zip(finals, fin):
            s.append(f)
        inp = out * masks_tm[k] if k < L - 1 else out
    return inp, [np.concatenate(f) for f in finals]


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_training_applies_the_saved_masks_between_layers(family, with_lengths):
    """Output and final states equal the layers run one by one with each saved mask applied
    to the output of every layer but the last (never to the final states)."""
    rng = np.random.default_rng(12)
    layer = make(family, 3, 5, 3, True, batch_first=True, dropout=0.4, rng=rng)
    lengths = [4, 2, 6, 2] if with_lengths else None
    x = rng.standard_normal((4, 6, 3))
    output, finals = run(layer, family, x, lengths=lengths)
    masks_tm = [m.transpose(1, 0, 2) for m in layer.dropout_masks]
    assert len(masks_tm) == 2 and all(np.any(m == 0) for m in masks_tm)
    want, want_finals = stacked_by_hand(layer, family, x.transpose(1, 0, 2), masks_tm, lengths)
    np.testing.assert_allclose(output.transpose(1, 0, 2), want, rtol=1e-12, atol=1e-14)
    for a, b in zip(finals, want_finals):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_one_zeroes_the_outputs_between_layers(family):
    """p = 1: every mask is zero, so the top layer sees zeros: the output does not depend on x
    and no gradient reaches x through the output."""
    rng = np.random.default_rng(13)
    layer = make(family, 3, 4, 2, True, dropout=1.0, rng=rng)
    x1, x2 = rng.standard_normal((2, 5, 2, 3))
    out1, fin1 = run(layer, family, x1)
    assert all(np.all(m == 0) for m in layer.dropout_masks) and len(layer.dropout_masks) == 1
    out2, _ = run(layer, family, x2)
    np.testing.assert_array_equal(out1, out2)
    top = make(family, 8, 4, 1, True)
    top.load_state_dict({k.replace("_l1", "_l0"): v for k, v in layer.params.items() if "_l1" in k})
    out_top, _ = run(top, family, np.zeros((5, 2, 8)))
    np.testing.assert_allclose(out1, out_top, rtol=1e-13, atol=1e-15)
    grad_x, _ = run_backward(layer, family, rng.standard_normal(out2.shape), [None] * n_states(family))
    assert np.all(grad_x == 0)
    assert np.all(layer.grads["weight_ih_l1"] == 0)  # the top layer's input was zero
    assert not np.all(fin1[0][:2] == 0)  # the lower layer's final states are not dropped


FD_CASES = [
    ("rnn", 2, False, False, None),
    ("lstm", 3, True, False, None),
    ("gru", 2, True, True, None),
    ("rnn", 2, True, True, [3, 1, 4]),
    ("lstm", 2, True, False, [2, 4, 4]),
    ("gru", 3, False, False, [4, 1, 2]),
]


@pytest.mark.parametrize("case", FD_CASES,
                         ids=lambda c: f"{c[0]}-L{c[1]}-bi{c[2]:d}-bf{c[3]:d}-len{c[4] is not None:d}")
def test_training_backward_finite_differences(case):
    """In training mode, the backward (grad_x, the initial states' and two parameters'
    gradients) agrees with float64 central differences of the same loss under the same masks:
    the layer's rng is reseeded before every forward, so each draws the same masks."""
    family, num_layers, bidirectional, batch_first, lengths = case
    T, N, I, H = 4, 3, 2, 3
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(FD_CASES.index(case))
    layer = make(family, I, H, num_layers, bidirectional, batch_first, dropout=0.45, rng=rng)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I))
    states = [rng.standard_normal((num_layers * D, N, H)) for _ in range(n_states(family))]
    out_shape = (N, T, D * H) if batch_first else (T, N, D * H)
    G = rng.standard_normal(out_shape)
    if lengths is not None:  # the loss only sees real steps (PyTorch's padded output is constant)
        G = time_major(G, batch_first).copy()
        for b, L in enumerate(lengths):
            G[L:, b] = 0
        G = time_major(G, batch_first)
    Gf = [rng.standard_normal((num_layers * D, N, H)) for _ in range(n_states(family))]

    def forward(x, *states):
        layer.rng = np.random.default_rng(99)
        return run(layer, family, x, list(states), lengths=lengths)

    def loss(x, *states):
        output, finals = forward(x, *states)
        return np.sum(output * G) + sum(np.sum(f * g) for f, g in zip(finals, Gf))

    forward(x, *states)
    assert any(np.any(m == 0) for m in layer.dropout_masks)  # some element is dropped
    grad_x, grad_states = run_backward(layer, family, G, Gf)
    analytic = {k: layer.grads[k].copy() for k in ("weight_ih_l0", f"weight_hh_l{num_layers - 1}")}
    arrays = [x] + states
    for index, analytic_grad in enumerate([grad_x] + grad_states):
        np.testing.assert_allclose(analytic_grad, numerical_grad(loss, arrays, index), rtol=1e-5, atol=1e-7,
                                   err_msg=f"argument {index}")
    for key, analytic_grad in analytic.items():
        param = layer.params[key]

        def loss_of_param(value, key=key):
            saved = layer.params[key].copy()
            layer.params[key][...] = value
            try:
                return loss(x, *states)
            finally:
                layer.params[key][...] = saved

        np.testing.assert_allclose(analytic_grad, numerical_grad(loss_of_param, [param.copy()], 0),
                                   rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.parametrize("family", FAMILIES)
def test_unbatched_training_dropout(family):
    """Unbatched input: masks in the unbatched layout, and the batched run of the same one
    sequence under the same masks gives the same output."""
    layer = make(family, 3, 4, 2, dropout=0.5, rng=31)
    x = np.random.default_rng(1).standard_normal((5, 3))
    layer.rng = np.random.default_rng(4)
    out, _ = run(layer, family, x)
    masks = layer.dropout_masks
    assert [m.shape for m in masks] == [(5, 4)]
    layer.rng = np.random.default_rng(4)
    batched, _ = run(layer, family, x[:, None])
    np.testing.assert_array_equal(layer.dropout_masks[0][:, 0], masks[0])
    np.testing.assert_allclose(batched[:, 0], out, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# train()/eval(), training and rng on every layer
# ---------------------------------------------------------------------------------------------

EVERY_LAYER = [
    lambda rng: fastnn.Conv2d(2, 3, 3, rng=rng),
    lambda rng: fastnn.Conv1d(2, 3, 3, rng=rng),
    lambda rng: fastnn.ConvTranspose2d(2, 3, 3, rng=rng),
    lambda rng: fastnn.RNN(2, 3, rng=rng),
    lambda rng: fastnn.LSTM(2, 3, rng=rng),
    lambda rng: fastnn.GRU(2, 3, rng=rng),
    lambda rng: fastnn.RNNCell(2, 3, rng=rng),
    lambda rng: fastnn.LSTMCell(2, 3, rng=rng),
    lambda rng: fastnn.GRUCell(2, 3, rng=rng),
]


@pytest.mark.parametrize("index", range(len(EVERY_LAYER)))
def test_train_eval_and_rng_on_every_layer(index):
    gen = np.random.default_rng(0)
    layer = EVERY_LAYER[index](gen)
    assert layer.training is True
    assert layer.rng is gen  # the generator that drew the weights is kept
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False) is layer and layer.training is False
    assert layer.train(np.bool_(True)) is layer and layer.training is True
    with pytest.raises(ValueError, match="boolean"):
        layer.train("no")
    with pytest.raises(ValueError, match="boolean"):
        layer.train(0)
    assert layer.training is True
    assert EVERY_LAYER[index](None).rng is not None
    seeded = EVERY_LAYER[index](5)
    assert isinstance(seeded.rng, np.random.Generator)
    first = next(iter(seeded.params.values()))
    np.testing.assert_array_equal(first, next(iter(EVERY_LAYER[index](np.random.default_rng(5)).params.values())))


@pytest.mark.parametrize("family", FAMILIES)
def test_cells_compute_the_same_in_both_modes(family):
    cell = {"rnn": fastnn.RNNCell, "lstm": fastnn.LSTMCell, "gru": fastnn.GRUCell}[family](3, 4, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 3))
    train_out = cell(x)
    before = cell.rng.bit_generator.state
    eval_out = cell.eval()(x)
    assert cell.rng.bit_generator.state == before
    for a, b in zip(np.atleast_1d(train_out) if family != "lstm" else train_out,
                    np.atleast_1d(eval_out) if family != "lstm" else eval_out):
        np.testing.assert_array_equal(a, b)
