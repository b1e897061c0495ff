"""The GRU's cases (shapes of the RNN suite): a whole sequence forward (`gru_forward`),
forward + BPTT, BPTT alone (`gru_backward`), one step (`gru_step`) and its gradients
(`gru_step_backward`). The builder is fastnn._cases._gated's, shared with the LSTM."""
from fastnn._cases import _gated

ORDER = 22


def cases():
    return _gated.cases("gru", _gated.build("gru"))
