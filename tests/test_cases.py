"""The case registry (fastnn._cases): every public kernel is registered, the registry is
well-formed, and every quick case agrees with its float64 truth, for fastnn, the NumPy
reference and (when installed) PyTorch, in both dtypes."""
import inspect

import numpy as np
import pytest

import fastnn
from fastnn import _cases, _runtime

DTYPES = (np.float32, np.float64)


def public_kernels():
    """The kernels in fastnn.__all__: its functions, less the runtime controls."""
    return sorted(name for name in fastnn.__all__
                  if inspect.isfunction(getattr(fastnn, name))
                  and getattr(fastnn, name).__module__ != _runtime.__name__)


def test_the_public_kernels_are_the_ones_we_know():
    # premise of the next test: the enumeration finds the kernels (not layers, not controls)
    assert {"conv2d", "conv2d_backward", "rnn_forward", "rnn_backward", "rnn_step",
            "rnn_step_backward"} <= set(public_kernels())
    assert not {"Conv2d", "RNN", "set_num_threads", "show_config", "reference"} & set(public_kernels())


@pytest.mark.parametrize("kernel", public_kernels())
def test_every_public_kernel_has_a_registered_case(kernel):
    assert _cases.select(kernel=kernel), f"fastnn.{kernel} has no case in fastnn._cases"


@pytest.mark.parametrize("kernel", public_kernels())
def test_every_public_kernel_is_in_the_main_job(kernel):
    assert _cases.select(tags="quick", kernel=kernel), f"fastnn.{kernel} has no quick case"


def test_registry_is_well_formed():
    cases = _cases.all_cases()
    keys = [c.key for c in cases]
    assert len(keys) == len(set(keys))
    assert set(_cases.families()) == {c.family for c in cases}
    known = set(public_kernels())
    for case in cases:
        assert case.tags and case.tags <= _cases.TAGS, case.key
        assert case.flops > 0 and case.dtypes, case.key
        assert set(case.kernels) <= known, (case.key, case.kernels)
        assert case.family != "gemm" or case.kernels == (), case.key


def test_select():
    quick = _cases.select(tags="quick")
    assert quick and all("quick" in c.tags for c in quick)
    conv = _cases.select(family="conv2d", patterns=["resnet*"])
    assert {c.key for c in conv} == {"conv2d/resnet28/fwd", "conv2d/resnet28/bwd",
                                     "conv2d/resnet14/fwd", "conv2d/resnet14/bwd"}
    assert _cases.get("rnn/latency/fwd").params == dict(t=100, n=1, i=32, h=64)
    with pytest.raises(ValueError, match="unknown tags"):
        _cases.select(tags="fast")
    with pytest.raises(ValueError, match="unknown families"):
        _cases.select(family="lstm2")
    with pytest.raises(KeyError):
        _cases.get("conv2d/nothing/fwd")


def test_suite_names_stay():
    names = {(c.family, c.name) for c in _cases.select(tags="suite")}
    assert {("conv2d", n) for n in ("tiny", "mnist", "cifar", "resnet28", "resnet14", "pointwise",
                                    "strided", "depthwise", "stem")} <= names
    assert {("rnn", n) for n in ("latency", "small", "large")} <= names


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", _cases.select(tags="quick"), ids=lambda c: c.key)
def test_quick_case_agrees_with_its_truth(compiled_only, case, dtype):
    inst = case.instance(dtype)
    worst = inst.check()
    assert {"fastnn", "numpy"} <= set(worst)
    assert all(w <= 1.0 for w in worst.values()), worst
    for impl in ("fastnn", "numpy"):  # every result in the case's dtype
        for out in inst.impl(impl)():
            assert out.dtype == dtype


def test_a_wrong_result_fails_the_check():
    inst = _cases.get("conv2d/tiny/fwd").instance()
    y = inst.impl("fastnn")()[0].copy()
    y.flat[7] += 1e-3 * max(1.0, abs(y.flat[7]))
    assert _cases._case.worst_error((y,), inst.truth()) > 1.0
    assert _cases._case.worst_error((y[:, :-1],), inst.truth()) == np.inf


@pytest.mark.parametrize("case", _cases.select(family="conv2d"), ids=lambda c: c.key)
def test_conv_case_flops_match_the_output_shape(case):
    """2 x multiply-adds over the output shape conv2d's own validation gives (a backward counts
    twice), and the shape text names that geometry."""
    p = case.params
    spec = fastnn.conv._ConvSpec((p["n"], p["c_in"], p["h"], p["w"]),
                                 (p["c_out"], p["c_in"] // p["groups"], p["kh"], p["kw"]),
                                 p["stride"], p["padding"], p["dilation"], p["groups"])
    per_output = 2 * (p["c_in"] // p["groups"]) * p["kh"] * p["kw"]
    forwards = 1 if case.direction == "fwd" else 2
    assert case.flops == forwards * per_output * int(np.prod(spec.out_shape))
    assert case.shape.startswith(f"{p['n']}x{p['c_in']}x{p['h']}x{p['w']} -> {p['c_out']}, k")
