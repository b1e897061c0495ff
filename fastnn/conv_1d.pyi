"""Type stubs for fastnn's 1-D convolution kernels (fastnn.conv_1d), re-exported by the fastnn
package."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float: TypeAlias = NDArray[np.floating[Any]]
# An int, or a 1-tuple as PyTorch's Conv1d keeps them: stride, dilation, padding.
_IntSingle: TypeAlias = int | tuple[int] | list[int]
_Padding: TypeAlias = _IntSingle | Literal["valid", "same"]

def conv1d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _IntSingle = 1,
    padding: _Padding = 0,
    dilation: _IntSingle = 1,
    groups: int = 1,
    *,
    out: _Float | None = None,
) -> _Float: ...
def conv1d_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: _IntSingle = 1,
    padding: _Padding = 0,
    dilation: _IntSingle = 1,
    groups: int = 1,
    *,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
) -> tuple[_Float | None, _Float | None, _Float | None]: ...
