"""Thin stateful layers on top of fastnn's kernels, one module per kernel family:
:class:`Conv2d` (``fastnn.layers.conv``), :class:`RNN` and :class:`RNNCell`
(``fastnn.layers.recurrent``), :class:`LSTM` and :class:`LSTMCell` (``fastnn.layers.lstm``),
:class:`GRU` and :class:`GRUCell` (``fastnn.layers.gru``); :class:`ConvTranspose2d`
(``fastnn.layers.conv_transpose``) and :class:`Conv1d` (``fastnn.layers.conv_1d``).

A layer owns its parameters (``params``) and their gradients (``grads``), both plain dicts of
NumPy arrays keyed exactly like the matching PyTorch module's ``state_dict``. ``forward`` keeps
what ``backward`` needs; ``backward`` overwrites ``grads`` (it never accumulates) and returns the
gradient of the input. (The cells, which a caller runs step after step, remember every forward
until its backward: the backwards of a sequence of steps, last step first, add up its
gradients.) There is no autograd: chain layers by hand, and update ``params`` in place to
train::

    conv = fastnn.Conv2d(3, 8, kernel_size=3, padding=1, rng=0)
    y = conv(x)                        # (N, 8, H, W)
    grad_x = conv.backward(grad_y)     # fills conv.grads["weight"], conv.grads["bias"]
    for name, p in conv.params.items():
        p -= 0.01 * conv.grads[name]   # in place: the layer sees the new values

The arrays in ``params`` and ``grads`` are never replaced, only written into, so an optimizer may
keep references to them.

Every layer is in training mode after construction (``training``); ``eval()`` and ``train()``
switch, as in PyTorch. Only the recurrent layers' ``dropout`` between layers depends on it. A
layer keeps the generator that drew its initial weights as ``rng``; the dropout masks come from
it. :class:`RNN`, :class:`LSTM` and :class:`GRU` take ``lengths=`` for padded batches of
sequences of different lengths (PyTorch's packed-sequence results).
"""
from fastnn.layers.conv import Conv2d
from fastnn.layers.conv_1d import Conv1d
from fastnn.layers.conv_transpose import ConvTranspose2d
from fastnn.layers.recurrent import RNN, RNNCell
from fastnn.layers.lstm import LSTM, LSTMCell
from fastnn.layers.gru import GRU, GRUCell

__all__ = ["Conv2d", "RNN", "RNNCell", "LSTM", "LSTMCell", "GRU", "GRUCell", "ConvTranspose2d", "Conv1d"]
