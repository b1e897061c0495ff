"""Type stubs for fastnn.layers: the Conv2d and RNN layers."""
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["Conv2d", "RNN"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_IntPair: TypeAlias = int | tuple[int, int] | list[int]
_Rng: TypeAlias = np.random.Generator | int | None

class _Layer:
    params: dict[str, _Float]
    grads: dict[str, _Float]
    dtype: np.dtype[Any]
    def state_dict(self) -> dict[str, _Float]: ...
    def load_state_dict(self, state_dict: Mapping[str, ArrayLike], strict: bool = True) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

class Conv2d(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | Literal["valid", "same"]
    dilation: tuple[int, int]
    groups: int
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntPair,
        stride: _IntPair = 1,
        padding: _IntPair | Literal["valid", "same"] = 0,
        dilation: _IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    @property
    def weight(self) -> _Float: ...
    @property
    def bias(self) -> _Float | None: ...
    def forward(self, x: ArrayLike) -> _Float: ...
    def __call__(self, x: ArrayLike) -> _Float: ...
    def backward(self, grad_y: ArrayLike, *, needs_input_grad: bool = True) -> _Float | None: ...

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
