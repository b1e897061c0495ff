"""fastnn: fast, trustworthy NumPy-native CPU kernels for neural networks.

Kernels (PyTorch's conventions), one module per family: conv2d, conv2d_backward
(fastnn.conv); rnn_step, rnn_step_backward, rnn_forward, rnn_backward (fastnn.recurrent);
lstm_step, lstm_step_backward, lstm_forward, lstm_backward (fastnn.lstm); gru_step,
gru_step_backward, gru_forward, gru_backward (fastnn.gru).
Also conv_transpose2d, conv_transpose2d_backward (fastnn.conv_transpose) and conv1d,
conv1d_backward (fastnn.conv_1d).
Layers: Conv2d, RNN, RNNCell, LSTM, LSTMCell, GRU, GRUCell, ConvTranspose2d, Conv1d
(fastnn.layers). Oracles: fastnn.reference, with the same names.
"""
from fastnn._version import __version__
from fastnn import reference
from fastnn._runtime import fma_peak, get_num_threads, set_num_threads, show_config
from fastnn.conv import conv2d, conv2d_backward
from fastnn.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from fastnn.conv_1d import conv1d, conv1d_backward
from fastnn.recurrent import rnn_backward, rnn_forward, rnn_step, rnn_step_backward
from fastnn.lstm import lstm_backward, lstm_forward, lstm_step, lstm_step_backward
from fastnn.gru import gru_backward, gru_forward, gru_step, gru_step_backward
from fastnn.layers import GRU, LSTM, RNN, Conv2d, GRUCell, LSTMCell, RNNCell
from fastnn.layers import Conv1d, ConvTranspose2d

__all__ = [
    "__version__",
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
    "Conv2d",
    "RNN",
    "RNNCell",
    "LSTM",
    "LSTMCell",
    "GRU",
    "GRUCell",
    "ConvTranspose2d",
    "Conv1d",
    "reference",
    "set_num_threads",
    "get_num_threads",
    "show_config",
    "fma_peak",
]
