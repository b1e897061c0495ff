"""The examples run and learn: a short training run of each must cut its loss clearly.

examples/ is not a package, so each example is imported from its path.
"""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name):
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"fastnn_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, steps, kwargs", [("cnn", 150, {}), ("char_rnn", 60, {}),
                                                  ("char_rnn", 60, {"cell": "lstm"}),
                                                  ("char_rnn", 60, {"cell": "gru"})])
def test_example_loss_falls(name, steps, kwargs):
    losses = load_example(name).main(steps=steps, seed=0, verbose=False, **kwargs)
    assert len(losses) == steps and all(np.isfinite(losses))
    initial, final = np.mean(losses[:5]), np.mean(losses[-10:])
    assert final < 0.5 * initial, f"{name}: loss went from {initial:.3f} to only {final:.3f}"


@pytest.mark.parametrize("name, args", [("cnn", []), ("char_rnn", []), ("char_rnn", ["--cell", "lstm"]),
                                        ("char_rnn", ["--cell", "gru"])])
def test_example_runs_as_a_script(name, args):
    # the fastnn these tests import, wherever it is (installed or in place)
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [
                   os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))),
                   os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, f"{name}.py"), "--steps", "3", *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "step    3  loss" in result.stdout
