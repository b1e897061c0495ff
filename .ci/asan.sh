#!/usr/bin/env bash
# Memory-safety runs of fastnn's compiled kernels (called by .ci/run; also runnable by hand:
# bash .ci/asan.sh). The checkout, its installed fastnn and its in-place build are not touched.
#
#   1. export the source tree (tracked + untracked-not-ignored files) to a temporary folder and
#      make a throwaway venv there with the build and test requirements
#   2. AddressSanitizer build (FASTNN_SANITIZE=address, see setup.py) in place in that copy;
#      run the test subset with the ASan runtime preloaded (LD_PRELOAD=$(gcc -print-file-name=
#      libasan.so); ASAN_OPTIONS=detect_leaks=0, since CPython leaks by design), and with
#      PYTHONPATH=<copy>. Before pytest starts, in the same process, assert that
#      fastnn._kernels.__file__ is the copy's extension and that it is instrumented
#      (__asan_init among its undefined symbols): never a silently uninstrumented run.
#   3. bounds-checked debug build (FASTNN_DEBUG=1: Cython boundscheck/wraparound/
#      initializedcheck on, -O0 -g) of the same copy; a faster subset (at -O0 the GEMM is slow).
#   4. nothing to rebuild afterwards: the normal extension of the checkout was never replaced.
#   Both runs always happen; the script exits 1 if either failed (ASan aborts the run at its
#   first report: abort_on_error=1).
#
# Subsets (those present are run; CI=1 selects the short hypothesis profile):
#   ASan:  test_kernels test_gemm_core test_exactness test_errors test_threads test_nonfinite
#          test_fork test_large test_layers test_conv_paths test_conv_tiles test_conv_transpose2d test_conv1d
#          test_layers_conv_family test_lstm_gru_kernels test_recurrent_lengths (less the RSS-growth tests: ASan's quarantine
#          holds freed memory by design)
#   debug: test_kernels test_gemm_core test_errors test_nonfinite test_conv_transpose2d test_conv1d,
#          then test_threads' determinism and concurrency tests and test_lstm_gru_kernels' oracle,
#          out=, empty-size and Inf/NaN tests
# PyTorch comparisons are left out: torch's own libraries under a preloaded ASan are not ours
# to test (and the venv has no torch, so they would skip anyway).
#
# Environment: PYTHON (default python3), KEEP_WORK=1 keeps the work dir, ASAN_TIMEOUT and
# DEBUG_TIMEOUT (seconds per pytest run, default 420 and 300).
# Takes about 4-5 minutes on a busy 2-core VM (budget: < 8 minutes).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
ASAN_TIMEOUT=${ASAN_TIMEOUT:-420}
DEBUG_TIMEOUT=${DEBUG_TIMEOUT:-300}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-asan.XXXXXX")
T0=$SECONDS
cleanup() { if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
say() { printf '\n--- asan.sh: %s (%ds)\n' "$1" $((SECONDS - T0)); }

say "export the source tree to $WORK/src"
mkdir -p "$WORK/src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
   tar --null -T - -cf -) |
  tar -C "$WORK/src" -xf -
SRC="$WORK/src"

say "throwaway venv with the build and test requirements"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install --quiet --disable-pip-version-check \
  "setuptools>=74" "Cython>=3.0" "numpy>=2.0" pytest hypothesis threadpoolctl

LIBASAN=$(gcc -print-file-name=libasan.so)
if [[ ! -e "$LIBASAN" ]]; then
  echo "asan.sh: gcc has no libasan.so ($LIBASAN): cannot run the AddressSanitizer build" >&2
  exit 1
fi

build() {  # build the copy's extension in place, from freshly generated C
  (cd "$SRC" && rm -rf build kernels/_kernels.c fastnn/_kernels*.so &&
     env "$@" "$VPY" setup.py build_ext --inplace >"$WORK/build.log" 2>&1) ||
    { tail -40 "$WORK/build.log"; echo "asan.sh: build failed ($*)" >&2; exit 1; }
}

present() {  # the given test files that exist in the copy
  local f out=()
  for f in "$@"; do [[ -e "$SRC/tests/$f.py" ]] && out+=("tests/$f.py"); done
  echo "${out[@]}"
}

# pytest in this very process after checking which extension it imports
RUNNER='
import os, subprocess, sys
import fastnn._kernels as k
src = os.path.realpath(os.environ["FASTNN_EXPECT_SRC"])
where = os.path.realpath(k.__file__)
assert where.startswith(src + os.sep), f"imported {where}, not the build in {src}"
undefined = subprocess.run(["nm", "-D", "--undefined-only", where], capture_output=True, text=True).stdout
want_asan = os.environ["FASTNN_EXPECT_ASAN"] == "1"
assert ("__asan_init" in undefined) == want_asan, f"{where}: ASan instrumentation {not want_asan}"
print(f"asan.sh: testing {where} (ASan: {want_asan})", flush=True)
import pytest
sys.exit(pytest.main(sys.argv[1:]))
'

run_tests() {  # run_tests <asan 0/1> <timeout> <pytest args...>
  local asan=$1 limit=$2
  shift 2
  local -a env_args=(CI=1 PYTHONPATH="$SRC" FASTNN_EXPECT_SRC="$SRC" FASTNN_EXPECT_ASAN="$asan"
                     PYTHONDONTWRITEBYTECODE=1)
  if [[ "$asan" == 1 ]]; then
    env_args+=(LD_PRELOAD="$LIBASAN" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1")
  fi
  (cd "$SRC" && env "${env_args[@]}" timeout --kill-after=10 "$limit" \
     "$VPY" -c "$RUNNER" -q -p no:cacheprovider "$@")
}

failed=()
say "AddressSanitizer build"
build FASTNN_SANITIZE=address
# shellcheck disable=SC2046
ASAN_FILES=$(present test_kernels test_gemm_core test_exactness test_errors test_threads \
                     test_nonfinite test_fork test_large test_layers test_conv_paths test_conv_tiles \
                     test_conv_transpose2d test_conv1d test_layers_conv_family test_lstm_gru_kernels \
                     test_recurrent_lengths)
say "AddressSanitizer run: $ASAN_FILES"
# ASan's quarantine keeps freed memory on purpose: the RSS-growth tests do not apply there.
# shellcheck disable=SC2086
run_tests 1 "$ASAN_TIMEOUT" $ASAN_FILES \
  -k "not do_not_grow_memory and not scratch_of_finished_python_threads" || failed+=("ASan run")

say "bounds-checked debug build (FASTNN_DEBUG=1)"
build FASTNN_DEBUG=1
DEBUG_FILES=$(present test_kernels test_gemm_core test_errors test_nonfinite test_conv_transpose2d test_conv1d)
say "debug run: $DEBUG_FILES"
# shellcheck disable=SC2086
run_tests 0 "$DEBUG_TIMEOUT" $DEBUG_FILES || failed+=("debug run")
if [[ -n "$(present test_threads)" ]]; then
  say "debug run: tests/test_threads.py (determinism and concurrency only)"
  run_tests 0 "$DEBUG_TIMEOUT" tests/test_threads.py -k "bit_identical or concurrent or repeated" ||
    failed+=("debug run of test_threads")
fi
if [[ -n "$(present test_lstm_gru_kernels)" ]]; then
  say "debug run: tests/test_lstm_gru_kernels.py (the oracle comparisons, out=, empty sizes, Inf/NaN)"
  run_tests 0 "$DEBUG_TIMEOUT" tests/test_lstm_gru_kernels.py \
    -k "reference or grid or hidden_size or empty_sizes or out_ or nonfinite" || failed+=("debug run of test_lstm_gru_kernels")
fi

if (( ${#failed[@]} )); then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "done: ASan and debug runs passed"
