"""Train a small CNN built on fastnn.Conv2d to tell four kinds of bars apart.

The data is made up on the fly: 12x12 noisy images holding a horizontal, vertical, diagonal or
anti-diagonal bar. The network is

    Conv2d(1, 8, 3, padding=1) -> ReLU -> 2x2 average pool       (8, 6, 6)
    Conv2d(8, 16, 3, padding=1) -> ReLU -> 2x2 average pool      (16, 3, 3)
    flatten -> linear -> softmax cross-entropy                   4 classes

fastnn does the convolutions (forward and backward); the rest is a few lines of NumPy, and the
whole network is trained with SGD with momentum. Run it with

    python examples/cnn.py [--steps 200]
"""
import argparse

import numpy as np

import fastnn

CLASSES = ("horizontal", "vertical", "diagonal", "anti-diagonal")
SIZE = 12


def make_batch(rng, n):
    """n noisy SIZE x SIZE images of random bars and their labels: (n, 1, SIZE, SIZE), (n,)."""
    labels = rng.integers(len(CLASSES), size=n)
    images = 0.3 * rng.standard_normal((n, 1, SIZE, SIZE))
    for image, label in zip(images[:, 0], labels):
        length = rng.integers(5, 9)
        r, c = rng.integers(0, SIZE - length + 1, size=2)
        steps = np.arange(length)
        if label == 0:    # horizontal
            image[r, c + steps] += 1.0
        elif label == 1:  # vertical
            image[r + steps, c] += 1.0
        elif label == 2:  # diagonal, top left to bottom right
            image[r + steps, c + steps] += 1.0
        else:             # anti-diagonal, bottom left to top right
            image[r + length - 1 - steps, c + steps] += 1.0
    return images.astype(np.float32), labels


# --- the NumPy glue: ReLU, 2x2 average pooling, softmax cross-entropy -----------------------

def avg_pool(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def avg_pool_backward(grad):
    return grad.repeat(2, axis=2).repeat(2, axis=3) / 4


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy loss and its gradient with respect to the logits (N, classes)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.log(probs[np.arange(n), labels]).mean()
    grad = probs
    grad[np.arange(n), labels] -= 1
    return loss, grad / n


class Model:
    def __init__(self, rng):
        self.conv1 = fastnn.Conv2d(1, 8, 3, padding=1, rng=rng)
        self.conv2 = fastnn.Conv2d(8, 16, 3, padding=1, rng=rng)
        features = 16 * (SIZE // 4) ** 2
        bound = 1 / np.sqrt(features)  # PyTorch's default init for nn.Linear
        self.head = {"weight": rng.uniform(-bound, bound, (len(CLASSES), features)),
                     "bias": rng.uniform(-bound, bound, len(CLASSES))}
        self.head = {k: v.astype(np.float32) for k, v in self.head.items()}
        self.head_grads = {k: np.zeros_like(v) for k, v in self.head.items()}

    def forward(self, x):
        a1 = self.conv1(x)
        self.r1 = np.maximum(a1, 0)
        p1 = avg_pool(self.r1)
        a2 = self.conv2(p1)
        self.r2 = np.maximum(a2, 0)
        self.flat = avg_pool(self.r2).reshape(len(x), -1)
        return self.flat @ self.head["weight"].T + self.head["bias"]

    def backward(self, grad_logits):
        """Fill every layer's grads from the gradient of the loss with respect to the logits."""
        self.head_grads["weight"][...] = grad_logits.T @ self.flat
        self.head_grads["bias"][...] = grad_logits.sum(axis=0)
        grad = (grad_logits @ self.head["weight"]).reshape(self.r2.shape[0], 16, SIZE // 4, -1)
        grad = avg_pool_backward(grad) * (self.r2 > 0)
        grad = self.conv2.backward(grad)
        grad = avg_pool_backward(grad) * (self.r1 > 0)
        self.conv1.backward(grad, needs_input_grad=False)  # no gradient needed for the images

    def parameters(self):
        """(parameter, gradient) pairs: the arrays themselves, to be updated in place."""
        pairs = [(self.head[k], self.head_grads[k]) for k in self.head]
        for layer in (self.conv1, self.conv2):
            pairs += [(layer.params[k], layer.grads[k]) for k in layer.params]
        return pairs


def main(steps=200, seed=0, batch_size=32, lr=0.2, momentum=0.9, verbose=True):
    """Train for ``steps`` SGD steps; return the list of training losses, one per step."""
    rng = np.random.default_rng(seed)
    model = Model(rng)
    velocity = [np.zeros_like(p) for p, _ in model.parameters()]
    losses = []
    for step in range(1, steps + 1):
        x, labels = make_batch(rng, batch_size)
        loss, grad_logits = softmax_cross_entropy(model.forward(x), labels)
        model.backward(grad_logits)
        for (param, grad), v in zip(model.parameters(), velocity):
            v *= momentum
            v -= lr * grad
            param += v  # in place: the layers see the new weights
        losses.append(float(loss))
        if verbose and (step % 25 == 0 or step in (1, steps)):
            print(f"step {step:4d}  loss {loss:.4f}")

    if verbose:
        x, labels = make_batch(rng, 500)
        accuracy = np.mean(model.forward(x).argmax(axis=1) == labels)
        print(f"accuracy on 500 new images: {accuracy:.1%} (chance: {1 / len(CLASSES):.0%})")
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed)
