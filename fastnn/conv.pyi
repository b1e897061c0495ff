"""Type stubs for fastnn's conv2d kernels (fastnn.conv), re-exported by the fastnn package."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
# An int for both axes, or (height, width): stride, dilation, padding.
_IntPair: TypeAlias = int | tuple[int, int] | list[int]
_Padding: TypeAlias = _IntPair | Literal["valid", "same"]

def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    *,
    out: _Float | None = None,
) -> _Float: ...
def conv2d_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    *,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
) -> tuple[_Float | None, _Float | None, _Float | None]: ...
