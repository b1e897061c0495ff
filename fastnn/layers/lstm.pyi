"""Type stubs for fastnn.layers.lstm: the LSTM layers."""
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastnn.layers._recurrent import _RecurrentCell, _StackedRecurrent

__all__ = ["LSTM", "LSTMCell"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_Rng: TypeAlias = np.random.Generator | int | None
_Lengths: TypeAlias = list[int] | NDArray[np.integer[Any]]
_Pair: TypeAlias = tuple[ArrayLike | None, ArrayLike | None]

class LSTM(_StackedRecurrent):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(
        self, x: ArrayLike, hx: _Pair | None = None, *, lengths: _Lengths | None = None
    ) -> tuple[_Float, tuple[_Float, _Float]]: ...
    def __call__(
        self, x: ArrayLike, hx: _Pair | None = None, *, lengths: _Lengths | None = None
    ) -> tuple[_Float, tuple[_Float, _Float]]: ...
    def backward(
        self, grad_output: ArrayLike | None, grad_hx: _Pair | None = None
    ) -> tuple[_Float, tuple[_Float, _Float]]: ...

class LSTMCell(_RecurrentCell):
    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: DTypeLike = ..., rng: _Rng = None
    ) -> None: ...
    def forward(self, x: ArrayLike, hx: _Pair | None = None) -> tuple[_Float, _Float]: ...
    def __call__(self, x: ArrayLike, hx: _Pair | None = None) -> tuple[_Float, _Float]: ...
    def backward(
        self, grad_h_next: ArrayLike | None, grad_c_next: ArrayLike | None = None
    ) -> tuple[_Float, tuple[_Float, _Float]]: ...
