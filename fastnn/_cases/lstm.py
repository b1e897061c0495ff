"""The LSTM's cases (shapes of the RNN suite): a whole sequence forward (`lstm_forward`),
forward + BPTT, BPTT alone (`lstm_backward`), one step (`lstm_step`) and its gradients
(`lstm_step_backward`). The builder is fastnn._cases._gated's, shared with the GRU."""
from fastnn._cases import _gated

ORDER = 21


def cases():
    return _gated.cases("lstm", _gated.build("lstm"))
