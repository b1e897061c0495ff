"""Train a character-level language model built on fastnn.RNN, LSTM or GRU, then let it write.

The model reads one-hot characters and predicts the next one:

    one-hot (T, N, V) -> fastnn.RNN / LSTM / GRU (V, 64) -> linear (64 -> V) -> softmax cross-entropy

It learns the short text below by heart (the loss falls from log(V), a uniform guess, towards
zero) and at the end writes a few lines starting from a prompt. fastnn does the recurrence
(forward and back-propagation through time); the rest is a few lines of NumPy and Adam. Run it
with

    python examples/char_rnn.py [--steps 300] [--cell rnn|lstm|gru]
"""
import argparse

import numpy as np

import fastnn

TEXT = ("the cat sat on the mat. the dog sat on the log. "
        "the cat and the dog are friends. ")
SEQ_LEN = 24      # characters per training sequence (back-propagation through time)
BATCH = 16        # sequences per step
HIDDEN = 64


def one_hot(indices, vocab_size):
    return np.eye(vocab_size, dtype=np.float32)[indices]


CELLS = {"rnn": fastnn.RNN, "lstm": fastnn.LSTM, "gru": fastnn.GRU}


class Model:
    def __init__(self, vocab_size, rng, cell="rnn"):
        self.rnn = CELLS[cell](vocab_size, HIDDEN, rng=rng)
        bound = 1 / np.sqrt(HIDDEN)  # PyTorch's default init for nn.Linear
        self.head = {"weight": rng.uniform(-bound, bound, (vocab_size, HIDDEN)),
                     "bias": rng.uniform(-bound, bound, vocab_size)}
        self.head = {k: v.astype(np.float32) for k, v in self.head.items()}
        self.head_grads = {k: np.zeros_like(v) for k, v in self.head.items()}

    def forward(self, x, state=None):
        """x (T, N, V) one-hot -> logits (T, N, V) and the final state: h_n (1, N, H), or for
        the LSTM the pair (h_n, c_n); pass it back in to carry on from there."""
        self.hs, state = self.rnn(x, state)
        return self.hs @ self.head["weight"].T + self.head["bias"], state

    def backward(self, grad_logits):
        hs = self.hs.reshape(-1, HIDDEN)
        g = grad_logits.reshape(-1, grad_logits.shape[-1])
        self.head_grads["weight"][...] = g.T @ hs
        self.head_grads["bias"][...] = g.sum(axis=0)
        self.rnn.backward(grad_logits @ self.head["weight"])  # fills self.rnn.grads

    def parameters(self):
        """(parameter, gradient) pairs: the arrays themselves, to be updated in place."""
        pairs = [(self.head[k], self.head_grads[k]) for k in self.head]
        return pairs + [(self.rnn.params[k], self.rnn.grads[k]) for k in self.rnn.params]


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sample(model, prompt, length, chars, rng, temperature=0.5):
    """Feed ``prompt``, then draw ``length`` characters one at a time, carrying the state."""
    index = {c: i for i, c in enumerate(chars)}
    logits, h = model.forward(one_hot([[index[c]] for c in prompt], len(chars)))
    out = prompt
    for _ in range(length):
        p = softmax(logits[-1, 0] / temperature)
        i = rng.choice(len(chars), p=p / p.sum())
        out += chars[i]
        logits, h = model.forward(one_hot([[i]], len(chars)), h)
    return out


def main(steps=300, seed=0, lr=0.01, verbose=True, cell="rnn"):
    """Train for ``steps`` Adam steps of a model on ``cell`` ('rnn', 'lstm' or 'gru'); return the
    list of training losses, one per step."""
    rng = np.random.default_rng(seed)
    chars = sorted(set(TEXT))
    data = np.array([chars.index(c) for c in TEXT])
    model = Model(len(chars), rng, cell)
    params = model.parameters()
    m = [np.zeros_like(p) for p, _ in params]  # Adam's moment estimates
    v = [np.zeros_like(p) for p, _ in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    if verbose:
        print(f"{len(TEXT)} characters of text, {len(chars)} distinct; "
              f"a uniform guess scores log({len(chars)}) = {np.log(len(chars)):.3f}")

    losses = []
    for step in range(1, steps + 1):
        # BATCH random windows of the (cyclic) text; targets are the inputs shifted by one
        starts = rng.integers(len(data), size=BATCH)
        idx = (starts[None, :] + np.arange(SEQ_LEN + 1)[:, None]) % len(data)  # (T+1, N)
        inputs, targets = data[idx[:-1]], data[idx[1:]]

        logits, _ = model.forward(one_hot(inputs, len(chars)))
        probs = softmax(logits)
        t, n = targets.shape
        picked = probs[np.arange(t)[:, None], np.arange(n), targets]
        loss = -np.log(picked).mean()
        grad_logits = probs
        grad_logits[np.arange(t)[:, None], np.arange(n), targets] -= 1
        model.backward(grad_logits / (t * n))

        # clip the global gradient norm at 5, then an Adam step, in place
        norm = np.sqrt(sum(float(np.sum(g * g)) for _, g in params))
        scale = min(1.0, 5.0 / (norm + 1e-12))
        for (p, g), m_i, v_i in zip(params, m, v):
            g = g * scale
            m_i += (1 - beta1) * (g - m_i)
            v_i += (1 - beta2) * (g * g - v_i)
            p -= lr * (m_i / (1 - beta1**step)) / (np.sqrt(v_i / (1 - beta2**step)) + eps)
        losses.append(float(loss))
        if verbose and (step % 25 == 0 or step in (1, steps)):
            print(f"step {step:4d}  loss {loss:.4f}")

    if verbose:
        print("sample:", repr(sample(model, "the ", 80, chars, rng)))
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--cell", choices=sorted(CELLS), default="rnn", help="recurrent layer (default rnn)")
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed, cell=args.cell)
