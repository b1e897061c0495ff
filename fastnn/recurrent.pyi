"""Type stubs for fastnn's Elman RNN kernels (fastnn.recurrent), re-exported by the fastnn package."""
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
_Nonlinearity: TypeAlias = Literal["tanh", "relu"]
_Lengths: TypeAlias = Sequence[int] | NDArray[np.integer[Any]]

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
    lengths: _Lengths | None = None,
) -> _Float: ...
def rnn_backward(
    grad_hs: ArrayLike,
    x: ArrayLike,
    h0: ArrayLike | None,
    hs: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    nonlinearity: _Nonlinearity = "tanh",
    *,
    lengths: _Lengths | None = None,
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
