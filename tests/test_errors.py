"""Every invalid argument to the public API, with the exception it must raise and a pattern its
message must match. The pattern names the argument at fault, so a message that does not say
what is wrong fails here (fastnn._validation: "Every error names the argument it is about")."""
import builtins
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _runtime

F32, F64 = np.float32, np.float64


def z(*shape, dtype=F32):
    return np.zeros(shape, dtype)


def readonly(a):
    a.setflags(write=False)
    return a


# Valid defaults; each case changes one thing.
X = z(2, 4, 6, 5)  # conv2d input
W = z(6, 4, 3, 3)  # conv2d weight, output (2, 6, 4, 3)
DY = z(2, 6, 4, 3)
XS = z(3, 2, 5)  # RNN input (T, N, I)
H0 = z(2, 7)
W_IH, W_HH, B = z(7, 5), z(7, 7), z(7)
HS = z(3, 2, 7)
SQ = z(3, 2, 7)  # (T, N, I) with I == H, for an out= that overlaps x


def conv(**kw):
    args = dict(x=X, weight=W)
    args.update(kw)
    return lambda: fastnn.conv2d(**args)


def conv_back(**kw):
    args = dict(grad_output=DY, x=X, weight=W)
    args.update(kw)
    return lambda: fastnn.conv2d_backward(**args)


def rnn(**kw):
    args = dict(x=XS, h0=H0, w_ih=W_IH, w_hh=W_HH, b_ih=B, b_hh=B)
    args.update(kw)
    return lambda: fastnn.rnn_forward(**args)


def rnn_back(**kw):
    args = dict(grad_hs=HS, x=XS, h0=H0, hs=HS, w_ih=W_IH, w_hh=W_HH)
    args.update(kw)
    return lambda: fastnn.rnn_backward(**args)


def step(**kw):
    args = dict(x=XS[0], h=H0, w_ih=W_IH, w_hh=W_HH, b_ih=B, b_hh=B)
    args.update(kw)
    return lambda: fastnn.rnn_step(**args)


def step_back(**kw):
    args = dict(grad_h_next=H0, x=XS[0], h=H0, h_next=H0, w_ih=W_IH, w_hh=W_HH)
    args.update(kw)
    return lambda: fastnn.rnn_step_backward(**args)


def isolated(source):
    """A call, given as source, run in a fresh interpreter: a case that reaches the compiled
    kernels unvalidated may corrupt memory, and must not take the whole test session down.
    Whatever it raises there is raised here again (same builtin type, same message)."""
    setup = (
        "import json, numpy as np, fastnn\n"
        "z = lambda *s: np.zeros(s, np.float32)\n"
        "XS, H0, W_IH, W_HH, HS = z(3, 2, 5), z(2, 7), z(7, 5), z(7, 7), z(3, 2, 7)\n"
        "try:\n"
        f"    {source}\n"
        "except Exception as e:\n"
        "    print(json.dumps([type(e).__name__, str(e)]))\n"
        "else:\n"
        "    print(json.dumps(None))\n"
    )

    def call():
        package_root = os.path.dirname(os.path.dirname(fastnn.__file__))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root] + [p for p in sys.path if p]))
        proc = subprocess.run([sys.executable, "-c", setup], capture_output=True, text=True, timeout=120, env=env)
        if proc.returncode != 0:
            raise AssertionError(f"{source} crashed the interpreter (exit status {proc.returncode}): "
                                 f"{proc.stderr[-300:]}")
        outcome = json.loads(proc.stdout.strip().splitlines()[-1])
        if outcome is not None:
            name, message = outcome
            raise getattr(builtins, name, RuntimeError)(message)

    return call


def conv_out_is_x():
    x = z(2, 4, 6, 5)  # a 1x1 kernel from 4 to 4 channels: the output has x's shape
    fastnn.conv2d(x, z(4, 4, 1, 1), out=x)


def rnn_out_overlaps_h0():
    h0 = z(2, 7)  # T = 1: hs (1, 2, 7) as a view of h0's buffer
    fastnn.rnn_forward(XS[:1], h0, W_IH, W_HH, out=h0[None])


BAD_DTYPES = {"float16": np.float16, "int32": np.int32, "int64": np.int64, "bool": np.bool_,
              "object": object, "complex64": np.complex64, "longdouble": np.longdouble}
if np.dtype(np.longdouble).itemsize == 8:  # longdouble is float64 on some platforms
    del BAD_DTYPES["longdouble"]

CASES = [
    # ---- conv2d: arrays ----
    ("conv x 3-D", conv(x=z(4, 6, 5)), ValueError, r"\bx must be 4-D"),
    ("conv x 5-D", conv(x=z(1, 2, 4, 6, 5)), ValueError, r"\bx must be 4-D"),
    ("conv weight 3-D", conv(weight=z(6, 4, 3)), ValueError, r"weight must be 4-D"),
    ("conv bias 2-D", conv(bias=z(6, 1)), ValueError, r"bias must be 1-D"),
    ("conv bias wrong length", conv(bias=z(5)), ValueError, r"bias must have shape \(6,\)"),
    ("conv bias empty", conv(bias=z(0)), ValueError, r"bias must have shape"),
    ("conv channel mismatch", conv(weight=z(6, 3, 3, 3)), ValueError, r"weight has 3 input channels.*x has 4"),
    ("conv groups don't divide C_in", conv(x=z(2, 3, 6, 5), weight=z(6, 1, 3, 3), groups=2), ValueError,
     r"groups=2 does not divide the input channels of x"),
    ("conv groups don't divide C_out", conv(weight=z(5, 2, 3, 3), groups=2), ValueError,
     r"groups=2 does not divide the output channels of weight"),
    ("conv groups channel mismatch", conv(weight=z(6, 4, 3, 3), groups=2), ValueError,
     r"weight has 4 input channels per group.*groups=2"),
    ("conv empty kernel h", conv(weight=z(6, 4, 0, 3)), ValueError, r"weight has an empty kernel"),
    ("conv empty kernel w", conv(weight=z(6, 4, 3, 0)), ValueError, r"weight has an empty kernel"),
    ("conv kernel larger than input", conv(weight=z(6, 4, 7, 3)), ValueError,
     r"weight's kernel height 7 .*larger than x's padded height 6"),
    ("conv dilated kernel larger than padded input", conv(dilation=(1, 3)), ValueError,
     r"weight's kernel width 3 \(dilation 3, span 7\) is larger than x's padded width 5"),
    ("conv padding 1e9", conv(padding=10**9, weight=z(6, 4, 1, 1)), ValueError, r"output .*too large"),
    # A stride-0 x that exists (2**62 bytes of view) whose output could not (8 channels: 2**65 bytes).
    ("conv stride-0 x, output too large", conv(x=np.broadcast_to(z(1, 1, 1, 1), (2**20, 1, 2**20, 2**20)),
                                              weight=z(8, 1, 1, 1)), ValueError, r"output .*too large"),
    # ---- conv2d: groups ----
    ("conv groups 0", conv(groups=0), ValueError, r"groups must be >= 1"),
    ("conv groups -2", conv(groups=-2), ValueError, r"groups must be >= 1"),
    ("conv groups float", conv(groups=2.0), TypeError, r"groups must be an int"),
    ("conv groups str", conv(groups="2"), TypeError, r"groups must be an int"),
    ("conv groups bool", conv(groups=True), TypeError, r"groups must be an int"),
    ("conv groups None", conv(groups=None), TypeError, r"groups must be an int"),
    # ---- conv2d: stride, dilation ----
    ("conv stride 0", conv(stride=0), ValueError, r"stride must be >= 1"),
    ("conv stride (1, 0)", conv(stride=(1, 0)), ValueError, r"stride must be >= 1"),
    ("conv stride -1", conv(stride=-1), ValueError, r"stride must be >= 1"),
    ("conv stride triple", conv(stride=(1, 1, 1)), ValueError, r"stride must be an int or a pair"),
    ("conv stride single", conv(stride=(1,)), ValueError, r"stride must be an int or a pair"),
    ("conv stride float", conv(stride=1.5), TypeError, r"stride must be an int or a pair"),
    ("conv stride str", conv(stride="1"), TypeError, r"stride must be an int or a pair"),
    ("conv stride bool", conv(stride=(True, 1)), TypeError, r"stride must be an int or a pair"),
    ("conv dilation 0", conv(dilation=0), ValueError, r"dilation must be >= 1"),
    ("conv dilation (2, -1)", conv(dilation=(2, -1)), ValueError, r"dilation must be >= 1"),
    ("conv dilation float", conv(dilation=(1, 2.0)), TypeError, r"dilation must be an int or a pair"),
    # ---- conv2d: padding ----
    ("conv padding -1", conv(padding=-1), ValueError, r"padding must be >= 0"),
    ("conv padding (0, -2)", conv(padding=(0, -2)), ValueError, r"padding must be >= 0"),
    ("conv padding word", conv(padding="full"), ValueError, r"padding must be .*'same' or 'valid'.*'full'"),
    ("conv padding word case", conv(padding="SAME"), ValueError, r"padding must be .*'SAME'"),
    ("conv padding same stride 2", conv(padding="same", stride=2), ValueError, r"padding='same' needs stride 1"),
    ("conv padding same stride (1, 2)", conv(padding="same", stride=(1, 2)), ValueError,
     r"padding='same' needs stride 1"),
    ("conv padding triple", conv(padding=(1, 1, 1)), ValueError, r"padding must be an int or a pair"),
    ("conv padding float", conv(padding=0.5), TypeError, r"padding must be an int or a pair"),
    ("conv padding None", conv(padding=None), TypeError, r"padding must be an int or a pair"),
    # ---- conv2d: dtypes ----
    *[(f"conv x {name}", conv(x=X.astype(dt)), TypeError, r"\bx must be float32 or float64")
      for name, dt in BAD_DTYPES.items()],
    *[(f"conv weight {name}", conv(weight=W.astype(dt)), TypeError, r"weight must be float32 or float64")
      for name, dt in BAD_DTYPES.items()],
    ("conv bias int", conv(bias=z(6, dtype=np.int64)), TypeError, r"bias must be float32 or float64"),
    ("conv x strings", conv(x=np.full((2, 4, 6, 5), "a")), TypeError, r"\bx must be float32 or float64"),
    ("conv mixed x/weight", conv(weight=W.astype(F64)), TypeError, r"weight has dtype float64 but x has float32"),
    ("conv mixed bias", conv(bias=z(6, dtype=F64)), TypeError, r"bias has dtype float64 but x has float32"),
    # ---- conv2d: out= ----
    ("conv out wrong shape", conv(out=z(2, 6, 4, 4)), ValueError,
     r"out has shape \(2, 6, 4, 4\), expected \(2, 6, 4, 3\)"),
    ("conv out wrong dtype", conv(out=z(2, 6, 4, 3, dtype=F64)), ValueError,
     r"out has dtype float64, expected float32"),
    ("conv out byte-swapped", conv(out=z(2, 6, 4, 3, dtype=np.dtype(F32).newbyteorder("S"))), ValueError,
     r"out has dtype"),
    ("conv out non-contiguous", conv(out=z(2, 6, 4, 6)[..., ::2]), ValueError, r"out must be C-contiguous"),
    ("conv out Fortran", conv(out=np.asfortranarray(z(2, 6, 4, 3))), ValueError, r"out must be C-contiguous"),
    ("conv out read-only", conv(out=readonly(z(2, 6, 4, 3))), ValueError, r"out must be writeable"),
    ("conv out is x", conv_out_is_x, ValueError, r"out must not overlap"),
    ("conv out a list", conv(out=[[0.0]]), TypeError, r"out must be a numpy.ndarray"),
    # ---- conv2d_backward ----
    ("conv_back grad_output wrong shape", conv_back(grad_output=z(2, 6, 4, 4)), ValueError,
     r"grad_output must have shape \(2, 6, 4, 3\)"),
    ("conv_back grad_output 3-D", conv_back(grad_output=z(6, 4, 3)), ValueError, r"grad_output must be 4-D"),
    ("conv_back grad_output int", conv_back(grad_output=DY.astype(np.int32)), TypeError,
     r"grad_output must be float32 or float64"),
    ("conv_back grad_output float16", conv_back(grad_output=DY.astype(np.float16)), TypeError,
     r"grad_output must be float32 or float64"),
    ("conv_back mixed grad_output", conv_back(grad_output=DY.astype(F64)), TypeError,
     r"x has dtype float32 but grad_output has float64"),
    ("conv_back mixed weight", conv_back(weight=W.astype(F64)), TypeError, r"weight has dtype float64"),
    ("conv_back x 3-D", conv_back(x=z(4, 6, 5)), ValueError, r"\bx must be 4-D"),
    ("conv_back channel mismatch", conv_back(weight=z(6, 2, 3, 3)), ValueError, r"weight has 2 input channels"),
    ("conv_back groups 0", conv_back(groups=0), ValueError, r"groups must be >= 1"),
    ("conv_back stride 0", conv_back(stride=0), ValueError, r"stride must be >= 1"),
    ("conv_back padding word", conv_back(padding="half"), ValueError, r"padding must be"),
    ("conv_back same stride 2", conv_back(padding="same", stride=2), ValueError, r"padding='same' needs stride 1"),
    ("conv_back kernel too large", conv_back(weight=z(6, 4, 3, 9)), ValueError, r"weight's kernel width 9 .*x's padded width"),
    # ---- rnn_forward ----
    ("rnn x 2-D", rnn(x=z(2, 5)), ValueError, r"\bx must be 3-D"),
    ("rnn h0 3-D", rnn(h0=z(1, 2, 7)), ValueError, r"h0 must be 2-D"),
    ("rnn h0 wrong batch", rnn(h0=z(3, 7)), ValueError, r"h0 must have shape \(2, 7\)"),
    ("rnn h0 wrong hidden", rnn(h0=z(2, 6)), ValueError, r"h0 must have shape \(2, 7\)"),
    ("rnn w_ih 1-D", rnn(w_ih=z(7)), ValueError, r"w_ih must be 2-D"),
    ("rnn w_ih wrong features", rnn(w_ih=z(7, 4)), ValueError, r"w_ih must have shape \(H, 5\)"),
    ("rnn w_hh wrong shape", rnn(w_hh=z(7, 6)), ValueError, r"w_hh must have shape \(7, 7\)"),
    ("rnn w_hh hidden mismatch", rnn(w_hh=z(6, 6)), ValueError, r"w_hh must have shape \(7, 7\)"),
    ("rnn w_hh 3-D", rnn(w_hh=z(1, 7, 7)), ValueError, r"w_hh must be 2-D"),
    ("rnn b_ih wrong length", rnn(b_ih=z(6)), ValueError, r"b_ih must have shape \(7,\)"),
    ("rnn b_hh wrong length", rnn(b_hh=z(8)), ValueError, r"b_hh must have shape \(7,\)"),
    ("rnn b_ih 2-D", rnn(b_ih=z(1, 7)), ValueError, r"b_ih must be 1-D"),
    ("rnn nonlinearity sigmoid", rnn(nonlinearity="sigmoid"), ValueError, r"nonlinearity must be 'tanh' or 'relu'"),
    ("rnn nonlinearity case", rnn(nonlinearity="ReLU"), ValueError, r"nonlinearity must be 'tanh' or 'relu'"),
    ("rnn nonlinearity None", rnn(nonlinearity=None), ValueError, r"nonlinearity must be 'tanh' or 'relu'"),
    *[(f"rnn x {name}", rnn(x=XS.astype(dt)), TypeError, r"\bx must be float32 or float64")
      for name, dt in BAD_DTYPES.items()],
    ("rnn w_hh float16", rnn(w_hh=W_HH.astype(np.float16)), TypeError, r"w_hh must be float32 or float64"),
    ("rnn b_hh int", rnn(b_hh=B.astype(np.int32)), TypeError, r"b_hh must be float32 or float64"),
    ("rnn h0 complex", rnn(h0=H0.astype(np.complex64)), TypeError, r"h0 must be float32 or float64"),
    ("rnn mixed w_ih", rnn(w_ih=W_IH.astype(F64)), TypeError, r"w_ih has dtype float64 but x has float32"),
    ("rnn mixed h0", rnn(h0=H0.astype(F64)), TypeError, r"h0 has dtype float64"),
    ("rnn mixed b_hh", rnn(b_hh=B.astype(F64)), TypeError, r"b_hh has dtype float64"),
    ("rnn out wrong shape", rnn(out=z(3, 2, 6)), ValueError, r"out has shape \(3, 2, 6\), expected \(3, 2, 7\)"),
    ("rnn out wrong dtype", rnn(out=z(3, 2, 7, dtype=F64)), ValueError, r"out has dtype float64"),
    ("rnn out non-contiguous", rnn(out=z(3, 4, 7)[:, ::2]), ValueError, r"out must be C-contiguous"),
    ("rnn out read-only", rnn(out=readonly(z(3, 2, 7))), ValueError, r"out must be writeable"),
    ("rnn out overlaps x", rnn(x=SQ, w_ih=W_HH, out=SQ), ValueError, r"out must not overlap"),
    ("rnn out overlaps h0", rnn_out_overlaps_h0, ValueError, r"out must not overlap"),
    ("rnn out a tuple", rnn(out=(0.0,)), TypeError, r"out must be a numpy.ndarray"),
    ("rnn hs too large", rnn(x=np.broadcast_to(z(1, 1, 1), (2**30, 2**30, 1)), h0=None,
                                      w_ih=z(7, 1)), ValueError,
     r"hs of shape .*too large"),
    # ---- rnn_backward ----
    ("rnn_back grad_hs wrong shape", rnn_back(grad_hs=z(3, 2, 6)), ValueError, r"grad_hs must have shape \(3, 2, 7\)"),
    ("rnn_back grad_hs wrong steps", rnn_back(grad_hs=z(2, 2, 7)), ValueError, r"grad_hs must have shape \(3, 2, 7\)"),
    ("rnn_back grad_hs 2-D", rnn_back(grad_hs=z(2, 7)), ValueError, r"grad_hs must be 3-D"),
    ("rnn_back hs wrong shape", rnn_back(hs=z(3, 3, 7)), ValueError, r"\bhs must have shape \(3, 2, 7\)"),
    ("rnn_back hs 2-D", rnn_back(hs=z(2, 7)), ValueError, r"\bhs must be 3-D"),
    ("rnn_back h0 wrong shape", rnn_back(h0=z(2, 6)), ValueError, r"h0 must have shape \(2, 7\)"),
    ("rnn_back w_ih wrong shape", rnn_back(w_ih=z(7, 6)), ValueError, r"w_ih must have shape \(H, 5\)"),
    ("rnn_back w_hh wrong shape", rnn_back(w_hh=z(7, 8)), ValueError, r"w_hh must have shape \(7, 7\)"),
    ("rnn_back nonlinearity", rnn_back(nonlinearity="gelu"), ValueError, r"nonlinearity must be 'tanh' or 'relu'"),
    ("rnn_back grad_hs int", rnn_back(grad_hs=HS.astype(np.int16)), TypeError, r"grad_hs must be float32 or float64"),
    ("rnn_back mixed hs", rnn_back(hs=HS.astype(F64)), TypeError, r"\bhs has dtype float64"),
    ("rnn_back mixed grad_hs", rnn_back(grad_hs=HS.astype(F64)), TypeError, r"grad_hs has dtype float64"),
    # ---- rnn_step ----
    ("step x 3-D", step(x=XS), ValueError, r"\bx must be 2-D"),
    ("step h 3-D", step(h=z(1, 2, 7)), ValueError, r"\bh must be 2-D"),
    ("step h wrong batch", step(h=z(3, 7)), ValueError, r"\bh must have shape \(2, 7\)"),
    ("step h wrong hidden", step(h=z(2, 6)), ValueError, r"\bh must have shape \(2, 7\)"),
    ("step h float16", step(h=H0.astype(np.float16)), TypeError, r"\bh must be float32 or float64"),
    ("step mixed h", step(h=H0.astype(F64)), TypeError, r"\bh has dtype float64"),
    ("step w_ih wrong features", step(w_ih=z(7, 3)), ValueError, r"w_ih must have shape \(H, 5\)"),
    ("step w_hh wrong shape", step(w_hh=z(7, 3)), ValueError, r"w_hh must have shape \(7, 7\)"),
    ("step b_hh wrong length", step(b_hh=z(3)), ValueError, r"b_hh must have shape \(7,\)"),
    ("step nonlinearity", step(nonlinearity="elu"), ValueError, r"nonlinearity must be 'tanh' or 'relu'"),
    # ---- rnn_step_backward ----
    ("step_back h_next wrong shape", step_back(h_next=z(2, 6)), ValueError, r"\bh_next must have .*shape"),
    ("step_back grad_h_next wrong shape", step_back(grad_h_next=z(3, 7)), ValueError,
     r"\bgrad_h_next must have .*shape"),
    ("step_back grad_h_next 3-D", step_back(grad_h_next=HS), ValueError, r"grad_h_next must be 2-D"),
    ("step_back h_next 1-D", step_back(h_next=z(7)), ValueError, r"h_next must be 2-D"),
    ("step_back h wrong hidden", step_back(h=z(2, 6), h_next=z(2, 6), grad_h_next=z(2, 6)), ValueError,
     r"\bh must have shape \(2, 7\)"),
    ("step_back x wrong features", step_back(x=z(2, 4)), ValueError, r"w_ih must have shape \(H, 4\)"),
    ("step_back x 3-D", step_back(x=XS), ValueError, r"\bx must be 2-D"),
    ("step_back grad_h_next int", step_back(grad_h_next=H0.astype(np.int64)), TypeError,
     r"grad_h_next must be float32 or float64"),
    ("step_back mixed grad_h_next", step_back(grad_h_next=H0.astype(F64)), TypeError,
     r"grad_h_next has dtype float64"),
    ("step_back mixed h_next", step_back(h_next=H0.astype(F64)), TypeError, r"h_next has dtype float64"),
    ("step_back nonlinearity", step_back(nonlinearity="Tanh"), ValueError, r"nonlinearity must be 'tanh' or 'relu'"),
    # ---- None where an array is required (only h0 may be None) ----
    ("conv x None", conv(x=None), TypeError, r"\bx must be float32 or float64"),
    ("conv weight None", conv(weight=None), TypeError, r"\bweight must be float32 or float64"),
    ("conv_back grad_output None", conv_back(grad_output=None), TypeError, r"\bgrad_output must be float32"),
    ("rnn x None", rnn(x=None), TypeError, r"\bx must be float32 or float64"),
    ("rnn w_hh None", rnn(w_hh=None), TypeError, r"\bw_hh must be float32 or float64"),
    ("rnn_back grad_hs None", isolated("fastnn.rnn_backward(None, XS, H0, HS, W_IH, W_HH)"), TypeError,
     r"\bgrad_hs must be float32 or float64"),
    ("rnn_back hs None", isolated("fastnn.rnn_backward(HS, XS, H0, None, W_IH, W_HH)"), TypeError,
     r"\bhs must be float32 or float64"),
    ("rnn_back hs None, h0 None", isolated("fastnn.rnn_backward(HS, XS, None, None, W_IH, W_HH)"), TypeError,
     r"\bhs must be float32 or float64"),
    ("step h None", step(h=None), TypeError, r"\bh must be float32 or float64"),
    ("step_back h None", step_back(h=None), TypeError, r"\bh must be float32 or float64"),
    ("step_back h_next None", step_back(h_next=None), TypeError, r"\bh_next must be float32 or float64"),
    ("step_back grad_h_next None", step_back(grad_h_next=None), TypeError,
     r"\bgrad_h_next must be float32 or float64"),
    # ---- threads ----
    ("set_num_threads 0", lambda: fastnn.set_num_threads(0), ValueError, r"\bn must be >= 1"),
    ("set_num_threads -3", lambda: fastnn.set_num_threads(-3), ValueError, r"\bn must be >= 1"),
    ("set_num_threads str", lambda: fastnn.set_num_threads("2"), TypeError, r"\bn must be an int or None"),
    ("set_num_threads float", lambda: fastnn.set_num_threads(2.0), TypeError, r"\bn must be an int or None"),
    ("set_num_threads bool", lambda: fastnn.set_num_threads(True), TypeError, r"\bn must be an int or None"),
]


@pytest.mark.parametrize("name, call, exception, pattern", CASES, ids=[c[0] for c in CASES])
def test_invalid_arguments_raise_naming_the_argument(name, call, exception, pattern):
    threads = _runtime._requested_threads
    try:
        with pytest.raises(exception, match=pattern):
            call()
    finally:
        fastnn.set_num_threads(threads)  # in case a set_num_threads case was wrongly accepted
