"""Type stubs for fastnn's transposed 2-D convolution kernels (fastnn.conv_transpose), re-exported
by the fastnn package."""
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
# An int for both axes, or (height, width): stride, padding, output_padding, dilation.
_IntPair: TypeAlias = int | tuple[int, int] | list[int]

def conv_transpose2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    output_padding: _IntPair = 0,
    groups: int = 1,
    dilation: _IntPair = 1,
    *,
    out: _Float | None = None,
) -> _Float: ...
def conv_transpose2d_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    output_padding: _IntPair = 0,
    groups: int = 1,
    dilation: _IntPair = 1,
    *,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
) -> tuple[_Float | None, _Float | None, _Float | None]: ...
