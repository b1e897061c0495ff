"""Type stubs for fastnn.layers._recurrent: what the recurrent layers share."""
from fastnn.layers._base import _Layer

class _StackedRecurrent(_Layer):
    input_size: int
    hidden_size: int
    num_layers: int
    batch_first: bool
    bidirectional: bool
    @property
    def num_directions(self) -> int: ...

class _RecurrentCell(_Layer):
    input_size: int
    hidden_size: int
    def reset(self) -> None: ...
