"""The distribution is fastnn-kernels (the import name stays fastnn), and no file of the
project tells anyone to install the unrelated Package Index project named `fastnn`."""
import importlib.metadata
import pathlib
import re

import pytest

import fastnn

ROOT = pathlib.Path(__file__).resolve().parents[1]

# `pip install fastnn`, `pip install -U "fastnn[plot]"`, `uv pip install fastnn==0.4` ...: an
# install command whose requirement is the bare name fastnn (fastnn-kernels, a path or a
# wheel file are fine).
UNRELATED_INSTALL = re.compile(
    r"\bpip3?\s+install\s+(?:(?:-\S+|--\S+=\S+)\s+)*[\"']?fastnn(?:\[[^\]]*\])?(?:[=<>!~]=?[\w.*]+)?[\"']?(?=[\s`)\"',;]|$)",
    re.MULTILINE)


def test_the_distribution_is_fastnn_kernels():
    assert fastnn.show_config(print_out=False)["distribution"] == "fastnn-kernels"
    dist = importlib.metadata.distribution("fastnn-kernels")
    assert dist.version == fastnn.__version__
    assert "fastnn-kernels" in importlib.metadata.packages_distributions()["fastnn"]


@pytest.mark.parametrize("text", [
    "pip install fastnn", "pip install -U fastnn", 'pip install "fastnn[plot]"', "pip3 install fastnn==0.4.0",
    "run `pip install fastnn` now", "uv pip install --upgrade fastnn",
])
def test_the_pattern_finds_the_command(text):
    assert UNRELATED_INSTALL.search(text)


@pytest.mark.parametrize("text", [
    "pip install fastnn-kernels", "pip install 'fastnn-kernels[plot]'", "pip install -e .",
    "pip install wheelhouse/fastnn_kernels-0.1.0-cp311-cp311-manylinux_2_34_x86_64.whl",
    "pip uninstall fastnn", "pip install fastnn_kernels-0.1.0.tar.gz",
])
def test_the_pattern_leaves_our_commands_alone(text):
    assert not UNRELATED_INSTALL.search(text)


def project_texts():
    """Every tracked-looking text file of the checkout a person or a script reads commands from."""
    globs = ["*.md", "*.toml", "*.py", "MANIFEST.in", ".ci/*", ".github/workflows/*", "bench/*.py",
             "bench/*.md", "examples/*.py", "fastnn/**/*.py", "kernels/**/*.pyx"]
    seen = set()
    for pattern in globs:
        for path in ROOT.glob(pattern):
            if path.is_file() and path not in seen and ".egg-info" not in path.parts:
                seen.add(path)
                yield path


def test_no_file_installs_the_unrelated_project():
    if not all((ROOT / f).exists() for f in ("README.md", "setup.py", "pyproject.toml")):
        pytest.skip("the checkout is not here (tests run from an installed wheel)")
    found = []
    for path in project_texts():
        text = path.read_text(errors="replace")
        if path.name == "test_packaging.py":  # the patterns above are examples, not advice
            continue
        found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in UNRELATED_INSTALL.finditer(text)]
    assert not found, found
    readme = (ROOT / "README.md").read_text()
    assert "pip install fastnn-kernels" in readme
    # the README names the unrelated project, so someone who installed it by mistake knows
    assert re.search(r"unrelated[^.]*`fastnn`[^.]*0\.4\.0", readme, re.S), "README does not name the other fastnn"
