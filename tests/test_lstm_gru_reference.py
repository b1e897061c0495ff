"""Tests of the LSTM and GRU oracles in fastnn.reference (no compiled code here).

Independent checks, as tests/test_reference.py makes them for the RNN:

* backward passes against float64 central finite differences of the linear loss
  sum(grad_hs * hs) [+ sum(grad_c_n * c_n)], for every input and parameter;
* forward passes against the cell equations written out here, and against repeated steps;
* everything against PyTorch's results recorded in tests/fixtures/lstm_gru.npz (written by
  tests/fixtures/make_gate_fixtures.py), and against PyTorch live when it is installed.
"""
import numpy as np
import pytest

from fastnn import reference

from gates_helpers import FAMILIES, GRAD_NAMES, GRAD_OF, STEP_GRAD_NAMES, backward, forward, loss, problem, step, step_backward
from oracle_helpers import load_cases, numerical_grad

FIXTURE_TOL = dict(rtol=1e-10, atol=1e-12)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


# ---------------------------------------------------------------------------------------------
# finite differences
# ---------------------------------------------------------------------------------------------

def check_against_finite_differences(family, p, grads, names):
    """Every gradient in `grads` (named by `names`) against central differences of the loss with
    respect to the problem entries it belongs to. An absent state (None) is differentiated at
    zeros, which is what None means."""
    for name, analytic in zip(names, grads):
        for entry in GRAD_OF[name]:
            q = dict(p)
            if q[entry] is None:
                q[entry] = np.zeros(analytic.shape)
            numeric = numerical_grad(lambda a: loss(reference, family, dict(q, **{entry: a})), [q[entry]], 0)
            np.testing.assert_allclose(analytic, numeric.reshape(analytic.shape), rtol=1e-6, atol=1e-8,
                                       err_msg=f"{family} {name} ({entry})")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("states", ["given", "none"])
def test_backward_matches_finite_differences(family, steps, states):
    rng = np.random.default_rng(100 + steps)
    given = states == "given"
    p = problem(rng, family, steps, 2, 3, 4, h0=given, c0=given, grad_c_n=given)
    grads = backward(reference, family, p, forward(reference, family, p))
    assert len(grads) == 6
    check_against_finite_differences(family, p, grads, GRAD_NAMES[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_backward_without_bias_matches_finite_differences(family):
    rng = np.random.default_rng(7)
    p = problem(rng, family, 3, 2, 2, 3, bias=False)
    grads = backward(reference, family, p, forward(reference, family, p))
    names = GRAD_NAMES[family]
    check_against_finite_differences(family, p, grads[:5] if family == "lstm" else grads[:4], names)
    # the bias gradient does not depend on whether there was a bias: the same with zero biases
    q = dict(p, b_ih=np.zeros_like(p["w_ih"][:, 0]), b_hh=np.zeros_like(p["w_ih"][:, 0]))
    for got, want in zip(grads, backward(reference, family, q, forward(reference, family, q))):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("family", FAMILIES)
def test_step_backward_matches_finite_differences(family):
    rng = np.random.default_rng(11)
    p = problem(rng, family, 1, 3, 4, 5)
    grads = step_backward(reference, family, p, step(reference, family, p))
    check_against_finite_differences(family, p, grads, STEP_GRAD_NAMES[family])


# ---------------------------------------------------------------------------------------------
# forward semantics
# ---------------------------------------------------------------------------------------------

def test_lstm_step_formula():
    rng = np.random.default_rng(22)
    p = problem(rng, "lstm", 1, 3, 4, 5)
    x, h, c = p["x"][0], p["h0"], p["c0"]
    pre = x @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
    i, f, g, o = (pre[:, k * 5:(k + 1) * 5] for k in range(4))
    c_next = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h_next = sigmoid(o) * np.tanh(c_next)
    got_h, got_c = reference.lstm_step(x, h, c, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    np.testing.assert_allclose(got_c, c_next, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got_h, h_next, rtol=1e-14, atol=1e-15)


def test_gru_step_formula():
    rng = np.random.default_rng(23)
    p = problem(rng, "gru", 1, 3, 4, 5)
    x, h = p["x"][0], p["h0"]
    gi = x @ p["w_ih"].T + p["b_ih"]
    gh = h @ p["w_hh"].T + p["b_hh"]
    r = sigmoid(gi[:, :5] + gh[:, :5])
    z = sigmoid(gi[:, 5:10] + gh[:, 5:10])
    n = np.tanh(gi[:, 10:] + r * gh[:, 10:])  # b_hn inside the reset product
    expected = (1 - z) * n + z * h
    got = reference.gru_step(x, h, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)
    # moving b_hn outside the product changes the result: the oracle does put it inside
    b_ih, b_hh = p["b_ih"].copy(), p["b_hh"].copy()
    b_ih[10:] += b_hh[10:]
    b_hh[10:] = 0
    assert not np.allclose(reference.gru_step(x, h, p["w_ih"], p["w_hh"], b_ih, b_hh), expected)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_is_repeated_step(family, bias):
    rng = np.random.default_rng(24)
    p = problem(rng, family, 5, 2, 3, 4, bias=bias)
    states = forward(reference, family, p)
    carry = dict(p)
    for t in range(5):
        nexts = step(reference, family, dict(carry, x=p["x"][t:t + 1]))
        for got, want in zip(states, nexts):
            np.testing.assert_array_equal(got[t], want)
        carry["h0"] = nexts[0]
        if family == "lstm":
            carry["c0"] = nexts[1]
    # None states are zeros
    zeros = dict(p, h0=np.zeros_like(p["h0"]), c0=None if family == "gru" else np.zeros_like(p["c0"]))
    for got, want in zip(forward(reference, family, dict(p, h0=None, c0=None)), forward(reference, family, zeros)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("family", FAMILIES)
def test_backward_single_step_is_step_backward(family):
    rng = np.random.default_rng(25)
    p = problem(rng, family, 1, 3, 2, 4)
    states = forward(reference, family, p)
    seq = backward(reference, family, p, states)
    one = step_backward(reference, family, p, tuple(s[0] for s in states))
    np.testing.assert_allclose(seq[0][0], one[0], rtol=1e-14)
    for got, want in zip(seq[1:], one[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_lstm_backward_grad_c_n_reaches_only_through_the_cell():
    """With grad_hs zero, a final-cell gradient alone: grad_c0 = grad_c_n * f at T = 1."""
    rng = np.random.default_rng(26)
    p = problem(rng, "lstm", 1, 2, 3, 4)
    p["grad_hs"][...] = 0
    grads = backward(reference, "lstm", p, forward(reference, "lstm", p))
    pre = p["x"][0] @ p["w_ih"].T + p["b_ih"] + p["h0"] @ p["w_hh"].T + p["b_hh"]
    f = sigmoid(pre[:, 4:8])
    np.testing.assert_allclose(grads[2], p["grad_c_n"] * f, rtol=1e-14)


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_out_argument(family):
    rng = np.random.default_rng(27)
    p = problem(rng, family, 3, 2, 4, 5)
    want = forward(reference, family, p)
    if family == "lstm":
        for which in range(3):  # both, hs alone, cs alone
            outs = [np.full((3, 2, 5), np.nan) if which in (0, k + 1) else None for k in range(2)]
            got = forward(reference, family, p, out=tuple(outs))
            for o, g, w in zip(outs, got, want):
                assert o is None or g is o
                np.testing.assert_array_equal(g, w)
    else:
        out = np.full((3, 2, 5), np.nan)
        (got,) = forward(reference, family, p, out=out)
        assert got is out
        np.testing.assert_array_equal(out, want[0])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("given", [True, False])
def test_zero_length_sequence(family, given):
    rng = np.random.default_rng(28)
    p = problem(rng, family, 0, 2, 3, 4, h0=given, c0=given, grad_c_n=given)
    states = forward(reference, family, p)
    assert all(s.shape == (0, 2, 4) for s in states)
    grads = backward(reference, family, p, states)
    assert grads[0].shape == (0, 2, 3)
    for name, g in zip(GRAD_NAMES[family][1:], grads[1:]):
        if name == "grad_c0" and given:  # nothing between c_n and c0
            np.testing.assert_array_equal(g, p["grad_c_n"])
        else:
            np.testing.assert_array_equal(g, 0)


@pytest.mark.parametrize("family", FAMILIES)
def test_empty_batch_and_hidden(family):
    rng = np.random.default_rng(29)
    gates = 4 if family == "lstm" else 3
    p = problem(rng, family, 3, 0, 3, 4, h0=False, c0=False, grad_c_n=False)
    states = forward(reference, family, p)
    assert all(s.shape == (3, 0, 4) for s in states)
    grads = backward(reference, family, p, states)
    expected = {"grad_x": (3, 0, 3), "grad_h0": (0, 4), "grad_c0": (0, 4), "grad_w_ih": (gates * 4, 3),
                "grad_w_hh": (gates * 4, 4), "grad_b": (gates * 4,), "grad_b_ih": (gates * 4,),
                "grad_b_hh": (gates * 4,)}
    assert [g.shape for g in grads] == [expected[n] for n in GRAD_NAMES[family]]
    p = problem(rng, family, 3, 2, 3, 0)
    states = forward(reference, family, p)
    assert all(s.shape == (3, 2, 0) for s in states)
    grads = backward(reference, family, p, states)
    np.testing.assert_array_equal(grads[0], np.zeros((3, 2, 3)))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_inputs(family, dtype):
    rng = np.random.default_rng(30)
    p = problem(rng, family, 3, 2, 3, 4, dtype=dtype)
    copies = {k: None if v is None else v.copy() for k, v in p.items()}
    states = forward(reference, family, p)
    grads = backward(reference, family, p, states)
    nexts = step(reference, family, p)
    step_grads = step_backward(reference, family, p, nexts)
    for out in (*states, *grads, *nexts, *step_grads):
        assert out.dtype == dtype
    for k, v in p.items():
        if v is not None:
            np.testing.assert_array_equal(v, copies[k])
    if dtype == np.float32:  # and float32 agrees with the float64 oracle
        p64 = {k: None if v is None else v.astype(np.float64) for k, v in p.items()}
        for got, want in zip(states, forward(reference, family, p64)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_accepts_array_likes(family):
    rng = np.random.default_rng(31)
    p = problem(rng, family, 2, 2, 3, 4)
    as_lists = {k: None if v is None else v.tolist() for k, v in p.items()}
    for got, want in zip(forward(reference, family, as_lists), forward(reference, family, p)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("family", FAMILIES)
def test_nan_reaches_its_row_only(family):
    rng = np.random.default_rng(32)
    p = problem(rng, family, 4, 3, 3, 4)
    p["x"][1, 2, 0] = np.nan
    states = forward(reference, family, p)
    for s in states:
        expect = np.zeros(s.shape, bool)
        expect[1:, 2] = True
        np.testing.assert_array_equal(np.isnan(s), expect)


# ---------------------------------------------------------------------------------------------
# PyTorch fixtures (no torch needed)
# ---------------------------------------------------------------------------------------------

GATE_FIXTURES = load_cases("lstm_gru.npz")


def test_fixtures_cover_both_families():
    families = [case["config"]["family"] for case in GATE_FIXTURES.values()]
    assert families.count("lstm") >= 5 and families.count("gru") >= 4


@pytest.mark.parametrize("name", sorted(GATE_FIXTURES))
def test_matches_torch_fixture(name):
    case = GATE_FIXTURES[name]
    family = case["config"]["family"]
    p = {k: case.get(k) for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "grad_hs", "grad_c_n")}
    states = forward(reference, family, p)
    for label, got in zip(("hs", "cs"), states):
        np.testing.assert_allclose(got, case[label], **FIXTURE_TOL, err_msg=label)
    grads = backward(reference, family, p, states)
    for label, got in zip(GRAD_NAMES[family], grads):
        if label.startswith("grad_b") and p["b_ih"] is None:
            assert label not in case  # torch has no bias gradient to record
            continue
        np.testing.assert_allclose(got, case[label], **FIXTURE_TOL, err_msg=label)


# ---------------------------------------------------------------------------------------------
# PyTorch live (skipped without torch)
# ---------------------------------------------------------------------------------------------

TOL64 = dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("given", [True, False])
def test_sequence_matches_torch_live(family, bias, given):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(40)
    T, N, I, H = 5, 3, 4, 6
    p = problem(rng, family, T, N, I, H, bias=bias, h0=given, c0=given, grad_c_n=given)
    module = getattr(torch.nn, family.upper())(I, H, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"), ("bias_ih_l0", "b_ih"),
                          ("bias_hh_l0", "b_hh")):
            if p[key] is not None:
                getattr(module, name).copy_(torch.tensor(p[key]))
    x = torch.tensor(p["x"], requires_grad=True)
    zeros = np.zeros((N, H))
    h0 = torch.tensor((p["h0"] if given else zeros)[None], requires_grad=True)
    if family == "lstm":
        c0 = torch.tensor((p["c0"] if given else zeros)[None], requires_grad=True)
        hs, (_, c_n) = module(x, (h0, c0))
        extra = (c_n[0] * torch.tensor(p["grad_c_n"] if given else zeros)).sum()
    else:
        hs, _ = module(x, h0)
        extra = 0
    ((hs * torch.tensor(p["grad_hs"])).sum() + extra).backward()
    states = forward(reference, family, p)
    np.testing.assert_allclose(states[0], hs.detach().numpy(), **TOL64)
    if family == "lstm":
        np.testing.assert_allclose(states[1][-1], c_n[0].detach().numpy(), **TOL64)
    grads = dict(zip(GRAD_NAMES[family], backward(reference, family, p, states)))
    want = {"grad_x": x.grad, "grad_h0": h0.grad[0], "grad_w_ih": module.weight_ih_l0.grad,
            "grad_w_hh": module.weight_hh_l0.grad}
    if family == "lstm":
        want["grad_c0"] = c0.grad[0]
    if bias:
        want.update(grad_b=module.bias_ih_l0.grad, grad_b_ih=module.bias_ih_l0.grad,
                    grad_b_hh=module.bias_hh_l0.grad)
        if family == "lstm":
            np.testing.assert_allclose(grads["grad_b"], module.bias_hh_l0.grad.numpy(), **TOL64)
    for name, got in grads.items():
        if name in want:
            np.testing.assert_allclose(got, want[name].numpy(), **TOL64, err_msg=name)


@pytest.mark.parametrize("family", FAMILIES)
def test_step_matches_torch_cell_live(family):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(41)
    N, I, H = 4, 5, 3
    cell = getattr(torch.nn, f"{family.upper()}Cell")(I, H, dtype=torch.float64)
    p = problem(rng, family, 1, N, I, H)
    for name, key in (("weight_ih", "w_ih"), ("weight_hh", "w_hh"), ("bias_ih", "b_ih"), ("bias_hh", "b_hh")):
        p[key] = getattr(cell, name).detach().numpy()
    x = torch.tensor(p["x"][0], requires_grad=True)
    h = torch.tensor(p["h0"], requires_grad=True)
    if family == "lstm":
        c = torch.tensor(p["c0"], requires_grad=True)
        h_next, c_next = cell(x, (h, c))
        outs = (h_next, c_next)
        ((h_next * torch.tensor(p["grad_hs"][0])).sum() + (c_next * torch.tensor(p["grad_c_n"])).sum()).backward()
        want = (x.grad, h.grad, c.grad, cell.weight_ih.grad, cell.weight_hh.grad, cell.bias_ih.grad)
    else:
        h_next = cell(x, h)
        outs = (h_next,)
        (h_next * torch.tensor(p["grad_hs"][0])).sum().backward()
        want = (x.grad, h.grad, cell.weight_ih.grad, cell.weight_hh.grad, cell.bias_ih.grad, cell.bias_hh.grad)
    nexts = step(reference, family, p)
    for got, exp in zip(nexts, outs):
        np.testing.assert_allclose(got, exp.detach().numpy(), **TOL64)
    for got, exp in zip(step_backward(reference, family, p, nexts), want):
        np.testing.assert_allclose(got, exp.numpy(), **TOL64)
