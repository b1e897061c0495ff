"""Type stubs for fastnn.layers._base: what every layer shares."""
from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import Self

_Float: TypeAlias = NDArray[np.floating[Any]]

class _Layer:
    params: dict[str, _Float]
    grads: dict[str, _Float]
    dtype: np.dtype[Any]
    rng: np.random.Generator
    training: bool
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...
    def state_dict(self) -> dict[str, _Float]: ...
    def load_state_dict(self, state_dict: Mapping[str, ArrayLike], strict: bool = True) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
