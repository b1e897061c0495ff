"""Data-parallel training of a small fastnn model across the workers of a dask.distributed
cluster, each step equal to a full-batch step.

The training set (images of bars, examples/cnn.py) is split into one shard per worker and
scattered once. Each step sends the parameters, every worker computes the sum of its shard's
losses and the gradient of that sum (examples/dask_model.py: two convolutions and an RNN, on
the worker's fastnn team), and this process adds them up in shard order, divides by the batch
size (the full batch's mean loss and gradient) and takes one SGD-with-momentum step. After k
steps the parameters match single-process full-batch training up to rounding (checked), and
the loss falls.

    python examples/dask_training.py [--samples 1024] [--steps 30] [--workers 2] [--short]

Needs the `dask` extra: pip install -e ".[dask]" (from a clone).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dask_model, for the workers too
import dask_model as M  # noqa: E402

import fastnn  # noqa: E402

LR, MOMENTUM = 0.2, 0.9


def train_distributed(client, x, labels, params, steps, fastnn_threads, shards):
    """(final params, loss per step): every step's gradient summed from the shards."""
    parts = np.array_split(np.arange(len(x)), shards)
    xs = client.scatter([x[p] for p in parts])          # each shard goes to a worker once
    ys = client.scatter([labels[p] for p in parts])
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    losses = []
    for _ in range(steps):
        # one future for the whole dict (a scattered dict would become one future per key,
        # named by the key: the next step's values would not replace them)
        [here] = client.scatter([params], broadcast=True)
        results = client.gather(client.map(M.shard_loss_and_grads, [here] * shards, xs, ys,
                                           [fastnn_threads] * shards, pure=False))
        n = sum(r[2] for r in results)
        grads = {k: sum(r[1][k] for r in results) / n for k in params}  # shard order: deterministic
        losses.append(sum(r[0] for r in results) / n)
        params, velocity = M.sgd_momentum(params, grads, velocity, LR, MOMENTUM)
    return params, losses


def train_single(x, labels, params, steps):
    """The same training in this process, one full-batch gradient per step."""
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    losses = []
    for _ in range(steps):
        loss, grads = M.Model(params).loss_and_grads(x, labels)
        losses.append(loss)
        params, velocity = M.sgd_momentum(params, grads, velocity, LR, MOMENTUM)
    return params, losses


def run(client, n_samples=1024, steps=30, shards=2, fastnn_threads=1, seed=0, verbose=True):
    """Train on the cluster and in this process from the same start: (distributed, single),
    each (params, losses)."""
    rng = np.random.default_rng(seed)
    x, labels = M.make_batch(rng, n_samples)
    start = M.Model(seed=seed).params()

    t0 = time.perf_counter()
    distributed = train_distributed(client, x, labels, start, steps, fastnn_threads, shards)
    t_cluster = time.perf_counter() - t0
    fastnn.set_num_threads(M.usable_cores())
    t0 = time.perf_counter()
    single = train_single(x, labels, start, steps)
    t_single = time.perf_counter() - t0
    fastnn.set_num_threads(None)
    if verbose:
        losses = distributed[1]
        worst = max(float(np.max(np.abs(distributed[0][k] - single[0][k]))) for k in start)
        print(f"{steps} steps on {n_samples} samples in {shards} shards: loss {losses[0]:.4f} -> "
              f"{losses[-1]:.4f}; cluster {t_cluster:.2f} s, one process {t_single:.2f} s; "
              f"largest parameter difference {worst:.3g}")
    return distributed, single


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default min(2, cores))")
    parser.add_argument("--fastnn-threads", type=int, default=None,
                        help="fastnn threads per task (default cores // workers)")
    parser.add_argument("--short", action="store_true", help="a few steps on a small set (tests)")
    args = parser.parse_args(argv)
    from dask.distributed import Client
    from dask_inference import cluster

    workers, threads_per_worker, fastnn_threads = M.plan(workers=args.workers, fastnn_threads=args.fastnn_threads)
    n, steps = (256, 8) if args.short else (args.samples, args.steps)
    print(f"{workers} worker(s) x {threads_per_worker} thread x {fastnn_threads} fastnn thread(s) "
          f"on {M.usable_cores()} cores")
    with cluster(workers, threads_per_worker) as lc, Client(lc) as client:
        (params, losses), (params_1, losses_1) = run(client, n, steps, workers, fastnn_threads)
    for k in params:
        np.testing.assert_allclose(params[k], params_1[k], rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(losses, losses_1, rtol=1e-4)
    assert losses[-1] < losses[0], losses
    print("after every step the parameters equal single-process full-batch training's; the loss fell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
