"""Type stubs for fastnn's public kernels (fastnn._api), re-exported by the fastnn package."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
# An int for both axes, or (height, width): stride, dilation, padding.
_IntPair: TypeAlias = int | tuple[int, int] | list[int]
_Padding: TypeAlias = _IntPair | Literal["valid", "same"]
_Nonlinearity: TypeAlias = Literal["tanh", "relu"]

def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    *,
    out: _Float | None = None,
) -> _Float: ...
def conv2d_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    *,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
) -> tuple[_Float | None, _Float | None, _Float | None]: ...
def rnn_forward(
    x: ArrayLike,
    h0: ArrayLike | None,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    nonlinearity: _Nonlinearity = "tanh",
    *,
    out: _Float | None = None,
) -> _Float: ...
def rnn_backward(
    grad_hs: ArrayLike,
    x: ArrayLike,
    h0: ArrayLike | None,
    hs: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    nonlinearity: _Nonlinearity = "tanh",
) -> tuple[_Float, _Float, _Float, _Float, _Float]: ...
def rnn_step(
    x: ArrayLike,
    h: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    nonlinearity: _Nonlinearity = "tanh",
) -> _Float: ...
def rnn_step_backward(
    grad_h_next: ArrayLike,
    x: ArrayLike,
    h: ArrayLike,
    h_next: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    nonlinearity: _Nonlinearity = "tanh",
) -> tuple[_Float, _Float, _Float, _Float, _Float]: ...
