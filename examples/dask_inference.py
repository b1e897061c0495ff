"""Batch inference of a small fastnn model over a dask.array on a dask.distributed cluster.

The images are a dask.array chunked along the batch axis; every chunk becomes one task that
rebuilds the model (examples/dask_model.py: two convolutions and an RNN) from its parameters
and runs it on the worker's fastnn team. Here the cluster is a LocalCluster, its worker
processes on loopback; pointing `Client` at a scheduler on other machines runs the same code
there. Workers x threads per worker x fastnn threads stay within the cores, and the result is
checked against the same model run in this one process.

    python examples/dask_inference.py [--images 4096] [--chunk 512] [--workers 2] [--short]

Needs the `dask` extra: pip install -e ".[dask]" (from a clone).
"""
import argparse
import logging
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dask_model, for the workers too
import dask_model as M  # noqa: E402

import fastnn  # noqa: E402


def infer(client, images, params, chunk, fastnn_threads):
    """Logits of every image, computed by the cluster's workers chunk by chunk: (N, classes)."""
    import dask.array as da

    x = da.from_array(images, chunks=(chunk, 1, M.SIZE, M.SIZE))
    logits = x.map_blocks(M.predict_block, params, fastnn_threads, dtype=images.dtype,
                          drop_axis=(2, 3), chunks=(x.chunks[0], (len(M.CLASSES),)))
    return client.compute(logits).result()


def run(client, n_images=4096, chunk=512, fastnn_threads=1, seed=0, verbose=True):
    """Infer on the cluster and in this process; return (cluster logits, local logits, seconds each)."""
    rng = np.random.default_rng(seed)
    images, _ = M.make_batch(rng, n_images)
    params = M.Model(seed=seed).params()

    t0 = time.perf_counter()
    distributed = infer(client, images, params, chunk, fastnn_threads)
    t_cluster = time.perf_counter() - t0

    fastnn.set_num_threads(M.usable_cores())
    t0 = time.perf_counter()
    local = M.Model(params).forward(images)
    t_local = time.perf_counter() - t0
    fastnn.set_num_threads(None)
    if verbose:
        diff = float(np.max(np.abs(distributed - local))) if len(local) else 0.0
        print(f"{n_images} images in {-(-n_images // chunk)} chunks of {chunk}: cluster {t_cluster:.2f} s, "
              f"one process {t_local:.2f} s; max |difference| {diff:.3g} "
              f"({'bit-identical' if np.array_equal(distributed, local) else 'rounding only'})")
    return distributed, local, (t_cluster, t_local)


def cluster(workers, threads_per_worker):
    """A LocalCluster of worker processes on loopback, no dashboard."""
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=512, help="images per chunk (task)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default min(2, cores))")
    parser.add_argument("--fastnn-threads", type=int, default=None,
                        help="fastnn threads per task (default cores // workers)")
    parser.add_argument("--short", action="store_true", help="a few hundred images (tests)")
    args = parser.parse_args(argv)
    from dask.distributed import Client

    workers, threads_per_worker, fastnn_threads = M.plan(workers=args.workers, fastnn_threads=args.fastnn_threads)
    n, chunk = (256, 64) if args.short else (args.images, args.chunk)
    print(f"{workers} worker(s) x {threads_per_worker} thread x {fastnn_threads} fastnn thread(s) "
          f"on {M.usable_cores()} cores")
    with cluster(workers, threads_per_worker) as lc, Client(lc) as client:
        distributed, local, _ = run(client, n, chunk, fastnn_threads)
    np.testing.assert_allclose(distributed, local, rtol=1e-5, atol=1e-6)
    print("the cluster's logits equal the single-process run's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
