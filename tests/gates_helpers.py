"""What the LSTM and GRU tests share: random problems, and calls of either family's kernels
(fastnn's or fastnn.reference's, same names) in one form.

A problem is a dict of arrays: x (T, N, I), h0 (N, H) or None, c0 (N, H) or None (LSTM only),
w_ih (G*H, I), w_hh (G*H, H), b_ih, b_hh (G*H,) or None, grad_hs (T, N, H) and grad_c_n (N, H)
or None (LSTM only); G = 4 for the LSTM, 3 for the GRU.
"""
import numpy as np

FAMILIES = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}
FORWARD_NAMES = {"lstm": ("hs", "cs"), "gru": ("hs",)}
GRAD_NAMES = {"lstm": ("grad_x", "grad_h0", "grad_c0", "grad_w_ih", "grad_w_hh", "grad_b"),
              "gru": ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh")}
STEP_GRAD_NAMES = {family: tuple(n.replace("0", "") for n in names) for family, names in GRAD_NAMES.items()}
# Per gradient: the problem entries it is the gradient of (grad_b: of b_ih and b_hh alike; the
# step kernels' h and c are the problem's h0 and c0).
GRAD_OF = {"grad_x": ("x",), "grad_h0": ("h0",), "grad_c0": ("c0",), "grad_h": ("h0",), "grad_c": ("c0",),
           "grad_w_ih": ("w_ih",),
           "grad_w_hh": ("w_hh",), "grad_b": ("b_ih", "b_hh"), "grad_b_ih": ("b_ih",),
           "grad_b_hh": ("b_hh",)}


def problem(rng, family, steps, batch, features, hidden, *, dtype=np.float64, h0=True, c0=True,
            bias=True, grad_c_n=True, weight_scale=0.6):
    """A random problem; the weights are scaled by weight_scale / sqrt(fan-in) (at least 1)."""
    gates = GATES[family]

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    lstm = family == "lstm"
    return dict(
        x=normal(steps, batch, features),
        h0=normal(batch, hidden) if h0 else None,
        c0=normal(batch, hidden) if lstm and c0 else None,
        w_ih=normal(gates * hidden, features, scale=weight_scale / np.sqrt(max(features, 1))),
        w_hh=normal(gates * hidden, hidden, scale=weight_scale / np.sqrt(max(hidden, 1))),
        b_ih=normal(gates * hidden, scale=0.3) if bias else None,
        b_hh=normal(gates * hidden, scale=0.3) if bias else None,
        grad_hs=normal(steps, batch, hidden),
        grad_c_n=normal(batch, hidden) if lstm and grad_c_n else None,
    )


def forward(mod, family, p, **kwargs):
    """mod.<family>_forward on the problem, as a tuple: (hs, cs) or (hs,)."""
    if family == "lstm":
        return tuple(mod.lstm_forward(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                      **kwargs))
    return (mod.gru_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], **kwargs),)


def backward(mod, family, p, states):
    """mod.<family>_backward on the problem and the forward's states (hs, cs) or (hs,)."""
    if family == "lstm":
        hs, cs = states
        return mod.lstm_backward(p["grad_hs"], p["x"], p["h0"], p["c0"], hs, cs, p["w_ih"], p["w_hh"],
                                 p["b_ih"], p["b_hh"], grad_c_n=p["grad_c_n"])
    (hs,) = states
    return mod.gru_backward(p["grad_hs"], p["x"], p["h0"], hs, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])


def step(mod, family, p):
    """mod.<family>_step on step 0 of the problem (h0, c0 must be given): (h_next, c_next) or (h_next,)."""
    x = p["x"][0]
    if family == "lstm":
        return tuple(mod.lstm_step(x, p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]))
    return (mod.gru_step(x, p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]),)


def step_backward(mod, family, p, nexts):
    """mod.<family>_step_backward for step 0, given what the step returned."""
    x, g = p["x"][0], p["grad_hs"][0]
    if family == "lstm":
        h_next, c_next = nexts
        return mod.lstm_step_backward(g, x, p["h0"], p["c0"], h_next, c_next, p["w_ih"], p["w_hh"],
                                      p["b_ih"], p["b_hh"], grad_c_next=p["grad_c_n"])
    (h_next,) = nexts
    return mod.gru_step_backward(g, x, p["h0"], h_next, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])


def loss(mod, family, p):
    """The scalar sum(grad_hs * hs) [+ sum(grad_c_n * cs[-1])] whose gradients `backward` gives."""
    states = forward(mod, family, p)
    total = float(np.sum(p["grad_hs"] * states[0]))
    if family == "lstm" and p["grad_c_n"] is not None and states[1].shape[0]:
        total += float(np.sum(p["grad_c_n"] * states[1][-1]))
    return total


def layer_backward(layer, family, grad_output, grad_finals):
    """A sequence layer's backward (RNN, LSTM or GRU) with the final states' gradients as a
    list: (grad_x, [grad_h0] or [grad_h0, grad_c0])."""
    if family == "lstm":
        grad_x, grads = layer.backward(grad_output, tuple(grad_finals))
        return grad_x, list(grads)
    grad_x, grad_h0 = layer.backward(grad_output, grad_finals[0])
    return grad_x, [grad_h0]
