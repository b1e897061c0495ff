"""Type stubs for fastnn.layers.recurrent: the RNN layer."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastnn.layers._base import _Layer

__all__ = ["RNN"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_Rng: TypeAlias = np.random.Generator | int | None

class RNN(_Layer):
    input_size: int
    hidden_size: int
    num_layers: int
    nonlinearity: Literal["tanh", "relu"]
    batch_first: bool
    bidirectional: bool
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
    @property
    def num_directions(self) -> int: ...
    def forward(self, x: ArrayLike, h0: ArrayLike | None = None) -> tuple[_Float, _Float]: ...
    def __call__(self, x: ArrayLike, h0: ArrayLike | None = None) -> tuple[_Float, _Float]: ...
    def backward(
        self, grad_output: ArrayLike | None, grad_h_n: ArrayLike | None = None
    ) -> tuple[_Float, _Float]: ...
