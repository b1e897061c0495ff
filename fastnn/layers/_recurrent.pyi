"""Type stubs for fastnn.layers._recurrent: what the recurrent layers share."""
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from fastnn.layers._base import _Layer

_Float: TypeAlias = NDArray[np.floating[Any]]

class _StackedRecurrent(_Layer):
    input_size: int
    hidden_size: int
    num_layers: int
    batch_first: bool
    bidirectional: bool
    dropout: float
    @property
    def num_directions(self) -> int: ...
    @property
    def dropout_masks(self) -> list[_Float]: ...

class _RecurrentCell(_Layer):
    input_size: int
    hidden_size: int
    def reset(self) -> None: ...
