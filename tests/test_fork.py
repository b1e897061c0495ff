"""fork() and multiprocessing: kernels in child processes finish, and give the parent's results.

GNU OpenMP (libgomp) keeps one pool of worker threads per thread that has led a team; fork()
copies the pool's bookkeeping but not its threads, so a new team in the child waits forever
for workers that do not exist. fastnn._runtime therefore makes a forked child serial until
set_num_threads is called there, and (with libgomp) keeps it serial, with a warning, when the
forking thread had led a fastnn team. Every child here runs under a deadline: a hang fails the
test instead of stalling the suite.
"""
import json
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import _runtime

KERNELS = _runtime._kernels
DEADLINE_S = 60
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture(autouse=True)
def _restore_threads():
    before = _runtime._requested_threads
    yield
    fastnn.set_num_threads(before)


def _problem():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 16, 40, 40)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    return x, w, b


def _parent_team_result():
    """Run the kernel on a team of 2 in this thread (so this thread leads a libgomp pool)."""
    x, w, b = _problem()
    fastnn.set_num_threads(2)
    KERNELS.reset_team_size()
    y = fastnn.conv2d(x, w, b, padding=1)
    assert KERNELS.last_team_size() == 2
    return y


def _child_conv(threads=None):
    """In a child: optionally set_num_threads, run the kernel, say what happened."""
    x, w, b = _problem()
    report = {"threads_before": fastnn.get_num_threads()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if threads is not None:
            fastnn.set_num_threads(threads)
        KERNELS.reset_team_size()
        y = fastnn.conv2d(x, w, b, padding=1)
    report.update(threads_after=fastnn.get_num_threads(), team=KERNELS.last_team_size(),
                  y=y.tobytes().hex(), warnings=[str(m.message) for m in caught])
    return report


def _in_forked_child(fn, *args):
    """Fork; run fn(*args) in the child and return its (JSON-able) result to the parent.
    The parent waits at most DEADLINE_S, then kills the child and fails the test."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            try:
                payload = {"ok": fn(*args)}
            except BaseException:
                payload = {"error": traceback.format_exc()}
                code = 3
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(write_end, data):]
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + DEADLINE_S
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child did not finish within {DEADLINE_S} s (hung): killed")
            ready, _, _ = select.select([read_end], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child did not exit after reporting: killed")
            time.sleep(0.01)
    finally:
        os.close(read_end)
    payload = json.loads(b"".join(chunks) or b"{}")
    assert "error" not in payload, "the child failed:\n" + payload["error"]
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    return payload["ok"]


def _is_gnu_openmp():
    return _runtime._gnu_openmp_loaded()


def test_child_of_a_team_leader_is_serial_and_correct(compiled_only):
    y = _parent_team_result()
    got = _in_forked_child(_child_conv)
    assert got["threads_before"] == 1
    assert got["team"] == 1
    assert got["warnings"] == []
    assert got["y"] == y.tobytes().hex()
    # the parent is untouched by the child's serial mode
    assert fastnn.get_num_threads() == 2


def test_set_num_threads_in_child_of_a_team_leader_does_not_hang(compiled_only):
    """set_num_threads(2) in the child must leave a working kernel. With GNU OpenMP a team
    in this child would hang (seen before fastnn._runtime guarded it), so fastnn stays serial
    and warns; with a runtime that survives fork it runs on 2 threads."""
    y = _parent_team_result()
    got = _in_forked_child(_child_conv, 2)
    assert got["threads_before"] == 1
    assert got["y"] == y.tobytes().hex()
    if _is_gnu_openmp():
        assert got["threads_after"] == 1 and got["team"] == 1
        assert len(got["warnings"]) == 1 and "GNU OpenMP" in got["warnings"][0], got["warnings"]
    else:
        assert got["threads_after"] == 2 and got["team"] == 2


def test_child_forked_from_a_thread_that_never_led_a_team_gets_threads(compiled_only):
    """libgomp's pools are per leading thread: a child forked from a fresh thread has none, so
    set_num_threads(2) there must really give a team of 2 (the guard is not over-broad)."""
    y = _parent_team_result()
    result = {}

    def fork_here():
        try:
            result["got"] = _in_forked_child(_child_conv, 2)
        except BaseException as exc:  # pytest.fail's exception too
            result["error"] = exc

    thread = threading.Thread(target=fork_here)
    thread.start()
    thread.join(DEADLINE_S + 10)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    got = result["got"]
    assert got["threads_before"] == 1  # serial until asked
    assert got["warnings"] == []
    assert got["threads_after"] == 2 and got["team"] == 2
    assert got["y"] == y.tobytes().hex()


def _grandchild_report():
    """In a serial child: fork again; the grandchild must run the kernel too."""
    return _in_forked_child(_child_conv, 2)


def test_grandchild_of_a_team_leader_does_not_hang(compiled_only):
    y = _parent_team_result()
    got = _in_forked_child(_grandchild_report)
    assert got["y"] == y.tobytes().hex()
    assert got["threads_before"] == 1
    if _is_gnu_openmp():
        assert got["team"] == 1


_POOL_SCRIPT = r"""
import json, multiprocessing, os, sys
import numpy as np
import fastnn
from fastnn import _kernels

method, threads = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(11)
x = rng.standard_normal((4, 16, 40, 40)).astype(np.float32)
w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
b = rng.standard_normal(32).astype(np.float32)
fastnn.set_num_threads(2)
_kernels.reset_team_size()
y = fastnn.conv2d(x, w, b, padding=1)  # this thread now leads a team: the pool is made after it
report = {"parent_team": _kernels.last_team_size()}
ctx = multiprocessing.get_context(method)
init = dict(initializer=fastnn.set_num_threads, initargs=(threads,)) if threads else {}
with ctx.Pool(2, **init) as pool:
    # fastnn's own functions are top-level, so importable by every start method's workers
    report["worker_threads"] = pool.apply_async(fastnn.get_num_threads).get(timeout=60)
    results = pool.starmap_async(fastnn.conv2d, [(x, w, b, 1, 1)] * 4).get(timeout=60)
report["identical"] = all(r.tobytes() == y.tobytes() for r in results)
print(json.dumps(report))
"""


def _run_isolated(args, timeout=120):
    """Run _POOL_SCRIPT in its own session; on timeout kill the whole group (hung workers too)."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.Popen([sys.executable, "-c", _POOL_SCRIPT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the pool did not finish within {timeout} s (hung): killed")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leave no stray worker behind
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


@pytest.mark.parametrize("threads", [0, 2], ids=["default", "initializer_sets_2"])
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool(method, threads, compiled_only):
    """A pool made after a multi-threaded kernel in the parent runs kernels correctly under
    every start method, also when its initializer asks for 2 threads."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method here")
    report = _run_isolated([method, str(threads)])
    assert report["parent_team"] == 2
    assert report["identical"], "a worker's result differs from the parent's"
    if method == "fork":
        # forked from a team-leading thread: serial, and kept serial under GNU OpenMP
        assert report["worker_threads"] == (1 if not threads or _is_gnu_openmp() else threads)
    else:
        # a fresh interpreter: OpenMP's default, or what the initializer asked for
        assert report["worker_threads"] == (threads or (os.cpu_count() or 1))
