"""The Dask examples (examples/dask_inference.py, dask_training.py) on a LocalCluster of
worker processes: inference equals a single-process run, data-parallel training equals
full-batch training step for step, and the cluster stays within the cores.

Skipped without dask (the `dask` extra), except that FASTNN_REQUIRE_DASK=1 (set by .ci/run)
turns every skip here into a failure."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
if not (EXAMPLES / "dask_model.py").exists():
    pytest.skip("examples/ is not here", allow_module_level=True)
sys.path.insert(0, str(EXAMPLES))  # as the examples do themselves: the workers import dask_model
import dask_inference  # noqa: E402
import dask_model  # noqa: E402
import dask_training  # noqa: E402

try:
    import distributed
except ImportError:
    distributed = None


def unavailable(reason):
    """Skip, or fail where Dask is required (FASTNN_REQUIRE_DASK=1)."""
    if os.environ.get("FASTNN_REQUIRE_DASK", "") not in ("", "0"):
        pytest.fail(f"FASTNN_REQUIRE_DASK is set, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    """(client, fastnn threads per task, workers) of one LocalCluster shared by the tests."""
    if distributed is None:
        unavailable("dask[distributed] is not installed (pip install -e '.[dask]')")
    workers, threads_per_worker, fastnn_threads = dask_model.plan()
    try:
        local = dask_inference.cluster(workers, threads_per_worker)
    except Exception as exc:  # noqa: BLE001 - any reason the cluster cannot start
        unavailable(f"a LocalCluster did not start: {type(exc).__name__}: {exc}")
    with local, distributed.Client(local) as client:
        yield client, fastnn_threads, workers


def test_plan_stays_within_the_cores():
    for cores in (1, 2, 3, 8):
        workers, per_worker, threads = dask_model.plan(cores)
        assert workers >= 1 and per_worker == 1 and workers * per_worker * threads <= cores
    assert dask_model.plan(8, workers=4) == (4, 1, 2)
    with pytest.raises(ValueError, match="must not exceed"):
        dask_model.plan(2, workers=2, fastnn_threads=2)
    with pytest.raises(ValueError, match="workers must be between"):
        dask_model.plan(2, workers=3)


def test_the_cluster_is_what_the_plan_says(cluster):
    client, fastnn_threads, workers = cluster
    nthreads = client.nthreads()
    assert len(nthreads) == workers and set(nthreads.values()) == {1}
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in nthreads)  # loopback only
    assert workers * 1 * fastnn_threads <= dask_model.usable_cores()
    pids = set(client.run(os.getpid).values())
    assert len(pids) == workers and os.getpid() not in pids  # separate processes


def test_inference_equals_a_single_process_run(cluster):
    client, fastnn_threads, _ = cluster
    distributed_logits, local_logits, _ = dask_inference.run(client, 200, 48, fastnn_threads, verbose=False)
    assert distributed_logits.shape == (200, len(dask_model.CLASSES))  # a ragged last chunk too
    np.testing.assert_allclose(distributed_logits, local_logits, rtol=1e-5, atol=1e-6)
    assert np.abs(local_logits).max() > 1e-3  # a model that computes something


def test_training_equals_full_batch_training(cluster):
    client, fastnn_threads, workers = cluster
    (params, losses), (params_1, losses_1) = dask_training.run(client, 192, 10, max(workers, 2),
                                                               fastnn_threads, verbose=False)
    start = dask_model.Model(seed=0).params()
    for k in params:
        np.testing.assert_allclose(params[k], params_1[k], rtol=1e-4, atol=1e-5, err_msg=k)
        assert not np.allclose(params[k], start[k], rtol=1e-4, atol=1e-5), f"{k} never moved"
    np.testing.assert_allclose(losses, losses_1, rtol=1e-4)
    assert losses[-1] < 0.99 * losses[0], losses


def test_a_skip_fails_where_dask_is_required(monkeypatch):
    monkeypatch.setenv("FASTNN_REQUIRE_DASK", "1")
    with pytest.raises(pytest.fail.Exception, match="FASTNN_REQUIRE_DASK is set"):
        unavailable("for the test")
    monkeypatch.setenv("FASTNN_REQUIRE_DASK", "0")
    with pytest.raises(pytest.skip.Exception):
        unavailable("for the test")


def test_inference_runs_as_a_script(tmp_path):
    if distributed is None:
        unavailable("dask[distributed] is not installed (pip install -e '.[dask]')")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "dask_inference.py"), "--short"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the cluster's logits equal the single-process run's" in proc.stdout
