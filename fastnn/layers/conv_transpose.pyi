"""Type stubs for fastnn.layers.conv_transpose: the ConvTranspose2d layer."""
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from fastnn.layers._base import _Layer

__all__ = ["ConvTranspose2d"]

_Float: TypeAlias = NDArray[np.floating[Any]]
_IntPair: TypeAlias = int | tuple[int, int] | list[int]
_Rng: TypeAlias = np.random.Generator | int | None

class ConvTranspose2d(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntPair,
        stride: _IntPair = 1,
        padding: _IntPair = 0,
        output_padding: _IntPair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: _IntPair = 1,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    @property
    def weight(self) -> _Float: ...
    @property
    def bias(self) -> _Float | None: ...
    def forward(self, x: ArrayLike, output_size: Sequence[int] | None = None) -> _Float: ...
    def __call__(self, x: ArrayLike, output_size: Sequence[int] | None = None) -> _Float: ...
    def backward(self, grad_y: ArrayLike, *, needs_input_grad: bool = True) -> _Float | None: ...
