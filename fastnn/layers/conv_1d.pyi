"""Type stubs for fastnn.layers.conv_1d: the Conv1d layer."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastnn.layers._base import _Layer

__all__ = ["Conv1d"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_IntSingle: TypeAlias = int | tuple[int] | list[int]
_Rng: TypeAlias = np.random.Generator | int | None

class Conv1d(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int]
    stride: tuple[int]
    padding: tuple[int] | Literal["valid", "same"]
    dilation: tuple[int]
    groups: int
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntSingle,
        stride: _IntSingle = 1,
        padding: _IntSingle | Literal["valid", "same"] = 0,
        dilation: _IntSingle = 1,
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
