"""Type stubs for fastnn.layers.recurrent: the RNN layers."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastnn.layers._recurrent import _RecurrentCell, _StackedRecurrent

__all__ = ["RNN", "RNNCell"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_Rng: TypeAlias = np.random.Generator | int | None
_Lengths: TypeAlias = list[int] | NDArray[np.integer[Any]]

class RNN(_StackedRecurrent):
    nonlinearity: Literal["tanh", "relu"]
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        *,
        dropout: float = 0.0,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(
        self, x: ArrayLike, h0: ArrayLike | None = None, *, lengths: _Lengths | None = None
    ) -> tuple[_Float, _Float]: ...
    def __call__(
        self, x: ArrayLike, h0: ArrayLike | None = None, *, lengths: _Lengths | None = None
    ) -> tuple[_Float, _Float]: ...
    def backward(
        self, grad_output: ArrayLike | None, grad_h_n: ArrayLike | None = None
    ) -> tuple[_Float, _Float]: ...

class RNNCell(_RecurrentCell):
    nonlinearity: Literal["tanh", "relu"]
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(self, x: ArrayLike, h: ArrayLike | None = None) -> _Float: ...
    def __call__(self, x: ArrayLike, h: ArrayLike | None = None) -> _Float: ...
    def backward(self, grad_h_next: ArrayLike) -> tuple[_Float, _Float]: ...
