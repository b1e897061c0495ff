"""Type stubs for fastnn's GRU kernels (fastnn.gru), re-exported by the fastnn package."""
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
_Lengths: TypeAlias = Sequence[int] | NDArray[np.integer[Any]]

def gru_forward(
    x: ArrayLike,
    h0: ArrayLike | None,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    *,
    out: _Float | None = None,
    lengths: _Lengths | None = None,
) -> _Float: ...
def gru_backward(
    grad_hs: ArrayLike,
    x: ArrayLike,
    h0: ArrayLike | None,
    hs: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
    *,
    lengths: _Lengths | None = None,
) -> tuple[_Float, _Float, _Float, _Float, _Float, _Float]: ...
def gru_step(
    x: ArrayLike,
    h: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
) -> _Float: ...
def gru_step_backward(
    grad_h_next: ArrayLike,
    x: ArrayLike,
    h: ArrayLike,
    h_next: ArrayLike,
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: ArrayLike | None = None,
    b_hh: ArrayLike | None = None,
) -> tuple[_Float, _Float, _Float, _Float, _Float, _Float]: ...
