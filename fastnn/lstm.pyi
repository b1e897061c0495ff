"""Type stubs for fastnn's LSTM kernels (fastnn.lstm), re-exported by the fastnn package."""
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
_Lengths: TypeAlias = Sequence[int] | NDArray[np.integer[Any]]

def lstm_forward(
    x: ArrayLike,
    h0: ArrayLike | None,
    c0: ArrayLike | None,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    *,
    out: tuple[_Float | None, _Float | None] | None = None,
    lengths: _Lengths | None = None,
) -> tuple[_Float, _Float]: ...
def lstm_backward(
    grad_hs: ArrayLike,
    x: ArrayLike,
    h0: ArrayLike | None,
    c0: ArrayLike | None,
    hs: ArrayLike,
    cs: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    *,
    grad_c_n: ArrayLike | None = None,
    lengths: _Lengths | None = None,
) -> tuple[_Float, _Float, _Float, _Float, _Float, _Float]: ...
def lstm_step(
    x: ArrayLike,
    h: ArrayLike,
    c: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
) -> tuple[_Float, _Float]: ...
def lstm_step_backward(
    grad_h_next: ArrayLike,
    x: ArrayLike,
    h: ArrayLike,
    c: ArrayLike,
    h_next: ArrayLike,
    c_next: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    *,
    grad_c_next: ArrayLike | None = None,
) -> tuple[_Float, _Float, _Float, _Float, _Float, _Float]: ...
