"""The model and the worker-side tasks of the Dask examples (dask_inference.py,
dask_training.py), in a module of its own so Dask's worker processes can import it by name.

The model reads 12x12 images of bars (examples/cnn.py's data) with two convolutions and then
as a sequence, one row of feature maps per time step, with an Elman RNN:

    Conv2d(1, 8, 3, padding=1) -> ReLU                                (N, 8, 12, 12)
    Conv2d(8, 8, 3, stride=2, padding=1) -> ReLU                      (N, 8, 6, 6)
    rows as time steps: 6 steps of 8 * 6 = 48 features               (6, N, 48)
    RNN(48, 32), tanh -> the last hidden state -> linear -> 4 classes

fastnn runs the convolutions and the RNN, forward and backward; the rest is NumPy. The
parameters travel as one flat dict of arrays ("conv1.weight", ..., "head.bias"), so a worker
rebuilds the model from them and nothing else.
"""
import os

import numpy as np

import fastnn
from cnn import CLASSES, SIZE, make_batch, softmax_cross_entropy  # noqa: F401 - re-exported data

HIDDEN = 32
CHANNELS = 8


def usable_cores():
    """The cores this process may run on (its affinity where the OS says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def plan(cores=None, workers=None, fastnn_threads=None):
    """(workers, threads per worker, fastnn threads per task) using at most `cores` cores.

    One Dask thread per worker process: the parallelism inside a task is fastnn's OpenMP team,
    and workers x 1 x fastnn_threads never exceeds the cores (more would make the teams fight
    over them)."""
    cores = usable_cores() if cores is None else cores
    workers = min(2, cores) if workers is None else workers
    if workers < 1 or workers > cores:
        raise ValueError(f"workers must be between 1 and the {cores} cores, got {workers}")
    fastnn_threads = max(1, cores // workers) if fastnn_threads is None else fastnn_threads
    if fastnn_threads < 1 or workers * fastnn_threads > cores:
        raise ValueError(f"workers ({workers}) x fastnn threads ({fastnn_threads}) must not exceed "
                         f"the {cores} cores")
    return workers, 1, fastnn_threads


class Model:
    """conv -> conv -> RNN over rows -> linear; forward, backward and flat parameters."""

    def __init__(self, params=None, seed=0, dtype=np.float32):
        rng = np.random.default_rng(seed)
        self.conv1 = fastnn.Conv2d(1, CHANNELS, 3, padding=1, dtype=dtype, rng=rng)
        self.conv2 = fastnn.Conv2d(CHANNELS, CHANNELS, 3, stride=2, padding=1, dtype=dtype, rng=rng)
        self.steps = SIZE // 2
        self.features = CHANNELS * (SIZE // 2)
        self.rnn = fastnn.RNN(self.features, HIDDEN, dtype=dtype, rng=rng)
        bound = 1 / np.sqrt(HIDDEN)  # PyTorch's default init for nn.Linear
        self.head = {"weight": rng.uniform(-bound, bound, (len(CLASSES), HIDDEN)).astype(dtype),
                     "bias": rng.uniform(-bound, bound, len(CLASSES)).astype(dtype)}
        self.head_grads = {k: np.zeros_like(v) for k, v in self.head.items()}
        if params is not None:
            self.load(params)

    def _groups(self):
        return {"conv1": (self.conv1.params, self.conv1.grads), "conv2": (self.conv2.params, self.conv2.grads),
                "rnn": (self.rnn.params, self.rnn.grads), "head": (self.head, self.head_grads)}

    def params(self):
        """A flat dict of copies of every parameter."""
        return {f"{g}.{k}": v.copy() for g, (p, _) in self._groups().items() for k, v in p.items()}

    def grads(self):
        """A flat dict of copies of every gradient (of the most recent backward)."""
        return {f"{g}.{k}": v.copy() for g, (_, gr) in self._groups().items() for k, v in gr.items()}

    def load(self, params):
        for group, (p, _) in self._groups().items():
            for k in p:
                p[k][...] = params[f"{group}.{k}"]

    def forward(self, x):
        """Logits (N, classes) of images x (N, 1, SIZE, SIZE)."""
        self.r1 = np.maximum(self.conv1(x), 0)
        self.r2 = np.maximum(self.conv2(self.r1), 0)  # (N, C, 6, 6)
        n = len(x)
        # time step t = row t of every channel: (T, N, C * W)
        seq = self.r2.transpose(2, 0, 1, 3).reshape(self.steps, n, self.features)
        hs, _ = self.rnn(seq)
        self.last = hs[-1]
        return self.last @ self.head["weight"].T + self.head["bias"]

    def backward(self, grad_logits):
        """Fill every gradient from the gradient of the loss with respect to the logits."""
        self.head_grads["weight"][...] = grad_logits.T @ self.last
        self.head_grads["bias"][...] = grad_logits.sum(axis=0)
        grad_hs = np.zeros((self.steps, *self.last.shape), self.last.dtype)
        grad_hs[-1] = grad_logits @ self.head["weight"]
        grad_seq, _ = self.rnn.backward(grad_hs)
        n, c, h, w = self.r2.shape
        grad = grad_seq.reshape(h, n, c, w).transpose(1, 2, 0, 3) * (self.r2 > 0)
        grad = self.conv2.backward(grad) * (self.r1 > 0)
        self.conv1.backward(grad, needs_input_grad=False)  # no gradient needed for the images

    def loss_and_grads(self, x, labels):
        """(mean cross-entropy over the batch, flat dict of its gradients)."""
        loss, grad_logits = softmax_cross_entropy(self.forward(x), labels)
        self.backward(grad_logits)
        return float(loss), self.grads()


# ---- tasks the workers run (module-level functions: Dask ships them by name) ---------------

def predict_block(x, params, fastnn_threads):
    """Logits of one chunk of images, on this worker's fastnn team."""
    fastnn.set_num_threads(fastnn_threads)
    return Model(params).forward(x)


def shard_loss_and_grads(params, x, labels, fastnn_threads):
    """(sum of the losses, gradient of that sum, samples) over one shard of the batch: summed
    over the shards and divided by the batch size, they are the full batch's mean and gradient."""
    fastnn.set_num_threads(fastnn_threads)
    loss, grads = Model(params).loss_and_grads(x, labels)
    n = len(x)
    return loss * n, {k: g * n for k, g in grads.items()}, n


def sgd_momentum(params, grads, velocity, lr, momentum):
    """One SGD-with-momentum step: new (params, velocity) dicts."""
    velocity = {k: momentum * velocity[k] - lr * grads[k] for k in params}
    return {k: params[k] + velocity[k] for k in params}, velocity
