"""Type stubs for fastnn.layers.gru: the GRU layers."""
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastnn.layers._recurrent import _RecurrentCell, _StackedRecurrent

__all__ = ["GRU", "GRUCell"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_Rng: TypeAlias = np.random.Generator | int | None
_Lengths: TypeAlias = list[int] | NDArray[np.integer[Any]]

class GRU(_StackedRecurrent):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(
        self, x: ArrayLike, h0: ArrayLike | None = None, *, lengths: _Lengths | None = None
    ) -> tuple[_Float, _Float]: ...
    def __call__(
        self, x: ArrayLike, h0: ArrayLike | None = None, *, lengths: _Lengths | None = None
    ) -> tuple[_Float, _Float]: ...
    def backward(self, grad_output: ArrayLike | None, grad_h_n: ArrayLike | None = None) -> tuple[_Float, _Float]: ...

class GRUCell(_RecurrentCell):
    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: DTypeLike = ..., rng: _Rng = None
    ) -> None: ...
    def forward(self, x: ArrayLike, h: ArrayLike | None = None) -> _Float: ...
    def __call__(self, x: ArrayLike, h: ArrayLike | None = None) -> _Float: ...
    def backward(self, grad_h_next: ArrayLike) -> tuple[_Float, _Float]: ...
