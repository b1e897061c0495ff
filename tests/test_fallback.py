"""Without the compiled extension fastnn must say so once (a RuntimeWarning naming the reason)
and still give the NumPy reference's results through its public API.

Each case runs in a fresh interpreter in which `import fastnn._kernels` fails: a meta-path
finder raising ImportError (as a broken build would), or None in sys.modules (as a missing one).
"""
import json
import os
import subprocess
import sys

import pytest

_SCRIPT = r"""
import importlib.abc, json, sys, warnings

how = sys.argv[1]
REASON = "fastnn-test: compiled kernels blocked"

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "fastnn._kernels":
            raise ImportError(REASON)
        return None

if how == "raise":
    sys.meta_path.insert(0, Block())
else:
    sys.modules["fastnn._kernels"] = None  # import of it fails with ModuleNotFoundError

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fastnn
    import fastnn  # a second import must not warn again
import numpy as np
from fastnn import reference

report = {
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
    "config": fastnn.show_config(print_out=False),
}
fastnn.set_num_threads(3)
report["threads_set"] = fastnn.get_num_threads()
fastnn.set_num_threads(None)
report["threads_default"] = fastnn.get_num_threads()
try:
    fastnn._runtime.set_cpu_path("portable")
    report["set_cpu_path"] = "no error"
except RuntimeError as exc:
    report["set_cpu_path"] = str(exc)

rng = np.random.default_rng(0)
def same(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    return len(got) == len(want) and all(
        (g is None and w is None) or (g.dtype == np.asarray(w).dtype and g.shape == np.shape(w)
                                      and np.allclose(g, w, rtol=1e-6, atol=1e-6, equal_nan=True))
        for g, w in zip(got, want))

checks = {}
for dtype in (np.float32, np.float64):
    x = rng.standard_normal((2, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    geo = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y = fastnn.conv2d(x, w, b, **geo)
    checks[f"conv2d {dtype.__name__}"] = same(y, reference.conv2d(x, w, b, **geo))
    dy = rng.standard_normal(y.shape).astype(dtype)
    checks[f"conv2d_backward {dtype.__name__}"] = same(
        fastnn.conv2d_backward(dy, x, w, **geo), reference.conv2d_backward(dy, x, w, **geo))
    checks[f"conv2d same {dtype.__name__}"] = same(
        fastnn.conv2d(x, w[:, :, :, :1], None, padding="same", groups=2),
        reference.conv2d(x, w[:, :, :, :1], None, padding="same", groups=2))
    xt = rng.standard_normal((2, 6, 5, 4)).astype(dtype)  # w as a transposed weight: 6 -> 2 * 2 channels
    tgeo = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))
    yt = fastnn.conv_transpose2d(xt, w, b[:4], **tgeo)
    checks[f"conv_transpose2d {dtype.__name__}"] = same(yt, reference.conv_transpose2d(xt, w, b[:4], **tgeo))
    dyt = rng.standard_normal(yt.shape).astype(dtype)
    checks[f"conv_transpose2d_backward {dtype.__name__}"] = same(
        fastnn.conv_transpose2d_backward(dyt, xt, w, **tgeo), reference.conv_transpose2d_backward(dyt, xt, w, **tgeo))
    x1, w1 = rng.standard_normal((2, 4, 11)).astype(dtype), rng.standard_normal((6, 2, 4)).astype(dtype)
    y1 = fastnn.conv1d(x1, w1, b, padding="same", groups=2)
    checks[f"conv1d {dtype.__name__}"] = same(y1, reference.conv1d(x1, w1, b, padding="same", groups=2))
    checks[f"conv1d_backward {dtype.__name__}"] = same(
        fastnn.conv1d_backward(y1, x1, w1, padding="same", groups=2),
        reference.conv1d_backward(y1, x1, w1, padding="same", groups=2))
    xs = rng.standard_normal((5, 3, 4)).astype(dtype)
    h0 = rng.standard_normal((3, 7)).astype(dtype)
    w_ih = rng.standard_normal((7, 4)).astype(dtype) * 0.5
    w_hh = rng.standard_normal((7, 7)).astype(dtype) * 0.5
    b_ih, b_hh = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)
    for nl in ("tanh", "relu"):
        hs = fastnn.rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh, nl)
        checks[f"rnn_forward {nl} {dtype.__name__}"] = same(hs, reference.rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh, nl))
        g = rng.standard_normal(hs.shape).astype(dtype)
        checks[f"rnn_backward {nl} {dtype.__name__}"] = same(
            fastnn.rnn_backward(g, xs, h0, hs, w_ih, w_hh, nl), reference.rnn_backward(g, xs, h0, hs, w_ih, w_hh, nl))
        h1 = fastnn.rnn_step(xs[0], h0, w_ih, w_hh, b_ih, b_hh, nl)
        checks[f"rnn_step {nl} {dtype.__name__}"] = same(h1, reference.rnn_step(xs[0], h0, w_ih, w_hh, b_ih, b_hh, nl))
        checks[f"rnn_step_backward {nl} {dtype.__name__}"] = same(
            fastnn.rnn_step_backward(g[0], xs[0], h0, h1, w_ih, w_hh, nl),
            reference.rnn_step_backward(g[0], xs[0], h0, h1, w_ih, w_hh, nl))
# the layers run on the fallback too
layer = fastnn.Conv2d(4, 6, 3, padding=1)
xl = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
checks["Conv2d layer"] = same(layer(xl), reference.conv2d(xl, layer.weight, layer.bias, padding=1))
layer = fastnn.ConvTranspose2d(4, 6, 3, stride=2, rng=0)
checks["ConvTranspose2d layer"] = same(layer(xl), reference.conv_transpose2d(xl, layer.weight, layer.bias, stride=2))
layer = fastnn.Conv1d(4, 6, 3, rng=0)
checks["Conv1d layer"] = same(layer(xl[:, :, 0]), reference.conv1d(xl[:, :, 0], layer.weight, layer.bias))
# and validation still runs before the reference
try:
    fastnn.conv2d(x, w, b, groups=3)
    checks["validation"] = False
except ValueError:
    checks["validation"] = True
report["checks"] = checks
report["kernels_module"] = repr(sys.modules.get("fastnn._kernels"))
print(json.dumps(report))
"""


@pytest.mark.parametrize("how", ["raise", "missing"])
def test_fallback_without_compiled_kernels(how):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, how], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])

    # warned exactly once, as a RuntimeWarning naming the reason
    warned = [msg for cat, msg in report["warnings"] if cat == "RuntimeWarning" and "fastnn" in msg]
    assert len(warned) == 1, report["warnings"]
    reason = "fastnn-test: compiled kernels blocked" if how == "raise" else "fastnn._kernels"
    assert reason in warned[0] and "reference" in warned[0], warned[0]

    config = report["config"]
    assert config["compiled"] is False
    assert reason in config["load_error"]
    assert config["openmp"] is False and config["cpu_path"] == "reference"
    assert config["gemm_kernels"] is None and config["num_threads"] == 1

    assert report["threads_set"] == 3 and report["threads_default"] == 1
    assert "not loaded" in report["set_cpu_path"]

    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed, f"differ from the reference on the fallback path: {failed}"
    assert len(report["checks"]) == 2 * (3 + 4 + 2 * 4) + 4
