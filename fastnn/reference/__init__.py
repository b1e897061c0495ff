"""Pure-NumPy reference implementations of fastnn's public kernels.

This package mirrors fastnn's public kernels one-to-one: same names, same
argument orders, same return values (PyTorch conventions). It is plain,
readable NumPy, and it serves three purposes:

* the correctness oracle the compiled kernels are tested against,
* the fallback used when the compiled extension cannot be loaded,
* the baseline of the benchmarks.

Every function computes in the dtype of its inputs (float32 or float64) and
never modifies its inputs. Validation is deliberately light: the public layer
in ``fastnn`` validates and normalises arguments before calling in here.

Kernels
-------
conv2d, conv2d_backward
    2-D cross-correlation in NCHW layout, as ``torch.nn.functional.conv2d``.
conv_transpose2d, conv_transpose2d_backward
    Transposed 2-D convolution (the direct scatter definition), as
    ``torch.nn.functional.conv_transpose2d``.
conv1d, conv1d_backward
    1-D cross-correlation in NCL layout, as ``torch.nn.functional.conv1d``.
rnn_step, rnn_step_backward, rnn_forward, rnn_backward
    Elman RNN (``torch.nn.RNNCell`` / ``torch.nn.RNN`` layout), one step or a
    whole sequence with back-propagation through time.
lstm_step, lstm_step_backward, lstm_forward, lstm_backward
    LSTM (``torch.nn.LSTMCell`` / ``torch.nn.LSTM`` layout, gates i, f, g, o).
gru_step, gru_step_backward, gru_forward, gru_backward
    GRU (``torch.nn.GRUCell`` / ``torch.nn.GRU`` layout, gates r, z, n).

One module per kernel family (``fastnn.reference.conv``, ``fastnn.reference.recurrent``,
``fastnn.reference.lstm``, ``fastnn.reference.gru``);
this package re-exports their kernels. The padding, NaN and Inf rules of the convolutions
are in ``fastnn.reference.conv``'s notes.
"""

from fastnn.reference.conv import conv2d, conv2d_backward
from fastnn.reference.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from fastnn.reference.conv_1d import conv1d, conv1d_backward
from fastnn.reference.recurrent import rnn_backward, rnn_forward, rnn_step, rnn_step_backward
from fastnn.reference.lstm import lstm_backward, lstm_forward, lstm_step, lstm_step_backward
from fastnn.reference.gru import gru_backward, gru_forward, gru_step, gru_step_backward

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv1d",
    "conv1d_backward",
    "rnn_step",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "lstm_step",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_step",
    "gru_step_backward",
    "gru_forward",
    "gru_backward",
]
