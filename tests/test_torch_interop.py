"""fastnn and PyTorch in one process: PyTorch wheels bundle their own OpenMP runtime, and the
two runtimes must not disturb each other's results, whichever package is imported first.

Each ordering runs in a fresh interpreter (import order is only testable before either is
imported), which runs torch, then fastnn, then torch again, on several threads each, and
reports how far the results are from each other and from fastnn's NumPy reference.
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

_SCRIPT = r"""
import json, sys
first = sys.argv[1]
if first == "torch":
    import torch
    import fastnn
else:
    import fastnn
    import torch
import numpy as np
from fastnn import _kernels, reference

torch.set_num_threads(2)
fastnn.set_num_threads(2)
rng = np.random.default_rng(0)
report = {"compiled": fastnn.show_config(print_out=False)["compiled"]}

def worst(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / (1 + np.abs(b))))

# conv2d forward and backward, float32 (oneDNN in torch) and float64 (torch's im2col)
for dtype in (np.float32, np.float64):
    x = rng.standard_normal((4, 8, 33, 31)).astype(dtype)
    w = rng.standard_normal((16, 8, 3, 5)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    geo = dict(stride=(1, 2), padding=(1, 2), dilation=1, groups=1)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    y_torch = torch.nn.functional.conv2d(tx, tw, tb, **geo).numpy()
    _kernels.reset_team_size()
    y_fastnn = fastnn.conv2d(x, w, b, **geo)
    team = _kernels.last_team_size()
    y_torch_again = torch.nn.functional.conv2d(tx, tw, tb, **geo).numpy()
    y_fastnn_again = fastnn.conv2d(x, w, b, **geo)
    dy = rng.standard_normal(y_torch.shape).astype(dtype)
    gi, gw, gb = fastnn.conv2d_backward(dy, x, w, **geo)
    txg = tx.clone().requires_grad_(True)
    twg = tw.clone().requires_grad_(True)
    tbg = tb.clone().requires_grad_(True)
    torch.nn.functional.conv2d(txg, twg, tbg, **geo).backward(torch.from_numpy(dy))
    name = np.dtype(dtype).name
    report[name] = {
        "team": team,
        "fastnn_vs_torch": worst(y_fastnn, y_torch),
        "fastnn_vs_reference": worst(y_fastnn, reference.conv2d(x, w, b, **geo)),
        "torch_before_vs_after": worst(y_torch_again, y_torch),
        "fastnn_repeat_identical": bool(y_fastnn_again.tobytes() == y_fastnn.tobytes()),
        "grad_input": worst(gi, txg.grad.numpy()),
        "grad_weight": worst(gw, twg.grad.numpy()),
        "grad_bias": worst(gb, tbg.grad.numpy()),
    }

# RNN against torch.nn.RNN (one layer, tanh)
x = rng.standard_normal((6, 5, 7)).astype(np.float32)
h0 = rng.standard_normal((5, 9)).astype(np.float32)
rnn = torch.nn.RNN(7, 9)
params = [p.detach().numpy().copy() for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)]
with torch.no_grad():
    hs_torch, _ = rnn(torch.from_numpy(x), torch.from_numpy(h0)[None])
report["rnn"] = worst(fastnn.rnn_forward(x, h0, *params), hs_torch.numpy())
report["threads"] = {"fastnn": fastnn.get_num_threads(), "torch": torch.get_num_threads()}
print(json.dumps(report))
"""


@pytest.mark.parametrize("first", ["torch", "fastnn"])
def test_torch_and_fastnn_in_one_process(first):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, first], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["compiled"] is True
    assert report["threads"] == {"fastnn": 2, "torch": 2}
    for dtype, tol in (("float32", 1e-4), ("float64", 1e-10)):
        r = report[dtype]
        assert r["team"] == 2, f"{dtype}: fastnn ran on {r['team']} thread(s)"
        assert r["fastnn_repeat_identical"], dtype
        assert r["torch_before_vs_after"] == 0.0, f"{dtype}: torch's result changed after fastnn ran"
        for key in ("fastnn_vs_torch", "fastnn_vs_reference", "grad_input", "grad_weight", "grad_bias"):
            assert r[key] < tol, f"{dtype} {key}: relative difference {r[key]} (import order: {first} first)"
    assert report["rnn"] < 1e-5
