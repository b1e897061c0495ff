"""Exhaustive-ish correctness checks of the C GEMM core through ctypes.

    python kernels/c/tests/check_gemm.py [--quick] [--lib PATH]

For every ISA level the CPU has and both dtypes:
  * micro-kernel alone: every fringe m <= MR, n <= NR, k in {0, 1, 5, 37}, every
    flag combination, C surrounded by sentinels (nothing outside the m x n
    corner may change) and pre-filled with NaN when not accumulating;
  * pack + macro-kernel against numpy;
  * fnn_gemm on random shapes (0, 1, primes, around MR/NR and the cache blocks,
    the blocks shrunk so small shapes cross every MC/KC/NC boundary), A and B
    row-major, transposed, strided and reversed (negative strides), every
    flag combination, misaligned scratch; exact comparison on small-integer
    data;
  * NaN/Inf propagate like a plain sum; results bit-identical whatever M/N
    split a caller makes;
  * concurrent calls from several threads match the serial result;
  * fnn_gemm_kblock: near-equal k blocks, none deeper than kc;
  * dispatch: names, refusing levels above the CPU's, FASTNN_CPU capping.
"""
import argparse
import itertools
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gemmlib as G  # noqa: E402

FLAGS = [0, G.FNN_ACCUMULATE, G.FNN_BIAS_ROW, G.FNN_BIAS_COL,
         G.FNN_ACCUMULATE | G.FNN_BIAS_ROW, G.FNN_ACCUMULATE | G.FNN_BIAS_COL]
SENTINEL = -12345.0
rng = np.random.default_rng(1234)
nfail = 0
ncheck = 0


def fail(msg):
    global nfail
    nfail += 1
    print("FAIL:", msg)
    if nfail > 20:
        sys.exit(1)


def ints(shape, dtype, lo=-4, hi=5):
    return rng.integers(lo, hi, size=shape).astype(dtype)


def reference(a, b, c0, flags, bias):
    """Plain float64 sum: exact for the small-integer data used here."""
    r = a.astype(np.float64) @ b.astype(np.float64)
    if flags & G.FNN_ACCUMULATE:
        r = c0.astype(np.float64) + r
    if flags & G.FNN_BIAS_ROW:
        r = r + bias.astype(np.float64)[:, None]
    elif flags & G.FNN_BIAS_COL:
        r = r + bias.astype(np.float64)[None, :]
    return r


def operand(x, layout):
    """x's values laid out as row-major, transposed (column-major), strided or reversed."""
    if layout == "row":
        return np.ascontiguousarray(x)
    if layout == "col":
        return np.asfortranarray(x)
    if layout == "reversed":  # negative strides
        v = np.empty_like(x)[::-1, ::-1]
        v[...] = x
        return v
    big = np.full((x.shape[0] * 2 + 1, x.shape[1] * 3 + 2), np.nan, dtype=x.dtype)
    v = big[1::2, 2::3]
    v[...] = x
    return v


def padded_c(m, n, dtype, flags, pad=3):
    """C inside a sentinel frame; its own elements random ints or NaN."""
    big = np.full((m + 2 * pad, n + 2 * pad + 5), SENTINEL, dtype=dtype)
    c = big[pad:pad + m, pad:pad + n]
    if flags & G.FNN_ACCUMULATE:
        c[...] = ints((m, n), dtype)
    else:
        c[...] = np.nan  # must never be read
    return big, c


def check_frame(big, m, n, pad, what):
    mask = np.ones(big.shape, bool)
    mask[pad:pad + m, pad:pad + n] = False
    if not np.all(big[mask] == SENTINEL):
        fail(f"{what}: wrote outside C")


def check_equal(got, want, what):
    global ncheck
    ncheck += 1
    if got.shape != want.shape or not np.array_equal(got.astype(np.float64), want, equal_nan=True):
        bad = np.argwhere(~np.isclose(got.astype(np.float64), want, equal_nan=True))
        fail(f"{what}: mismatch at {bad[:5].tolist()} (of {len(bad)})")
        return False
    return True


def check_ukernel(lib, d):
    mr, nr, dt = d.mr, d.nr, d.dtype
    for k in (0, 1, 5, 37):
        ap = ints((k, mr), dt)
        bp = ints((k, nr), dt)
        for m, n in itertools.product(range(mr + 1), range(nr + 1)):
            if not (m in (0, 1, mr - 1, mr) or n in (0, 1, nr - 1, nr) or (m + n) % 5 == 0):
                continue
            for flags in FLAGS:
                big, c = padded_c(m, n, dt, flags)
                c0 = c.copy()
                bias = ints(mr if flags & G.FNN_BIAS_ROW else nr, dt)
                lib.ukernel(d, k, ap, bp, c, m, n, flags, bias)
                want = reference(ap.T[:m], bp[:, :n], c0, flags, bias[:m] if flags & G.FNN_BIAS_ROW else bias[:n])
                check_equal(c, want, f"{d} ukernel k={k} m={m} n={n} flags={flags}")
                check_frame(big, m, n, 3, f"{d} ukernel k={k} m={m} n={n} flags={flags}")


def check_pack_macro(lib, d):
    dt = d.dtype
    for m, n, k in [(1, 1, 1), (d.mr + 1, d.nr + 3, 7), (3 * d.mr - 1, 2 * d.nr + 1, 19), (5, 7, 0)]:
        for la, lb in [("row", "row"), ("col", "strided"), ("strided", "col")]:
            a = operand(ints((m, k), dt), la)
            b = operand(ints((k, n), dt), lb)
            mp = -(-m // d.mr) * d.mr
            np_ = -(-n // d.nr) * d.nr
            apack = np.full(mp * k + 1, np.nan, dt)
            bpack = np.full(np_ * k + 1, np.nan, dt)
            lib.pack_a(d, a, apack)
            lib.pack_b(d, b, bpack)
            # packed layout as documented in fnn_gemm.h
            aw = np.zeros((mp, k), dt); aw[:m] = a
            bw = np.zeros((k, np_), dt); bw[:, :n] = b
            want_a = aw.reshape(mp // d.mr, d.mr, k).transpose(0, 2, 1).ravel()
            want_b = bw.reshape(k, np_ // d.nr, d.nr).transpose(1, 0, 2).ravel()
            check_equal(apack[:-1], want_a.astype(np.float64), f"{d} pack_a {m}x{k} {la}")
            check_equal(bpack[:-1], want_b.astype(np.float64), f"{d} pack_b {k}x{n} {lb}")
            if not (np.isnan(apack[-1]) and np.isnan(bpack[-1])):
                fail(f"{d} pack wrote past its block")
            for flags in FLAGS:
                big, c = padded_c(m, n, dt, flags)
                c0 = c.copy()
                bias = ints(m if flags & G.FNN_BIAS_ROW else n, dt)
                lib.macro(d, m, n, k, apack, bpack, c, flags, bias)
                check_equal(c, reference(a, b, c0, flags, bias), f"{d} macro {m}x{n}x{k} flags={flags}")
                check_frame(big, m, n, 3, f"{d} macro {m}x{n}x{k}")


def shrunk(d, mc_mult, kc, nc_mult):
    s = G.Desc()
    s.name, s.isa, s.mr, s.nr, s.ukernel = d.name, d.isa, d.mr, d.nr, d.ukernel
    s.mc, s.kc, s.nc = mc_mult * d.mr, kc, nc_mult * d.nr
    s.dtype = d.dtype
    return s


def gemm_shapes(d, quick):
    mr, nr = d.mr, d.nr
    dims_m = [0, 1, 2, mr - 1, mr, mr + 1, 13, 2 * mr + 1, 37]
    dims_n = [0, 1, 3, nr - 1, nr, nr + 1, 2 * nr + 5, 67]
    dims_k = [0, 1, 2, 7, 16, 31, 64, 100]
    shapes = [(m, n, k) for m in dims_m for n in dims_n for k in dims_k
              if (m * 7 + n * 3 + k) % (5 if quick else 2) == 0]
    shapes += [(0, 0, 0), (1, 1, 0), (5, 3, 0), (1, 1, 1)]
    return shapes


def check_gemm(lib, d, quick):
    dt = d.dtype
    layouts = [("row", "row"), ("col", "col"), ("strided", "row"), ("row", "strided"), ("col", "row"),
               ("reversed", "col"), ("row", "reversed")]
    blockings = [d, shrunk(d, 2, 16, 1), shrunk(d, 1, 7, 2), shrunk(d, 3, 33, 3)]
    i = 0
    for bd in blockings:
        for (m, n, k) in gemm_shapes(d, quick):
            i += 1
            la, lb = layouts[i % len(layouts)]
            for flags in FLAGS if (i % 3 == 0 or not quick) else FLAGS[::2]:
                a = operand(ints((m, k), dt), la)
                b = operand(ints((k, n), dt), lb)
                big, c = padded_c(m, n, dt, flags)
                c0 = c.copy()
                bias = ints(m if flags & G.FNN_BIAS_ROW else n, dt)
                lib.gemm(bd, a, b, c, flags, bias, scratch=lib.scratch(bd, misalign=i % 7))
                what = f"{bd} gemm {m}x{n}x{k} {la}/{lb} flags={flags}"
                check_equal(c, reference(a, b, c0, flags, bias), what)
                check_frame(big, m, n, 3, what)
    # one product larger than the real blocks in every dimension
    m, n, k = d.mc + 2 * d.mr + 1, d.nc + d.nr + 3, d.kc + 5
    if quick:
        n = min(n, 3 * d.nr + 3)
    for flags in (0, G.FNN_ACCUMULATE | G.FNN_BIAS_ROW, G.FNN_BIAS_COL):
        a = operand(ints((m, k), dt), "row")
        b = operand(ints((k, n), dt), "row")
        big, c = padded_c(m, n, dt, flags)
        c0 = c.copy()
        bias = ints(m if flags & G.FNN_BIAS_ROW else n, dt)
        lib.gemm(d, a, b, c, flags, bias)
        what = f"{d} gemm large {m}x{n}x{k} flags={flags}"
        check_equal(c, reference(a, b, c0, flags, bias), what)
        check_frame(big, m, n, 3, what)


def check_special_values(lib, d):
    dt = d.dtype
    m, n, k = 2 * d.mr + 3, 2 * d.nr + 5, 40
    a = ints((m, k), dt)
    b = ints((k, n), dt)
    a[1, 3] = np.inf
    a[d.mr + 2, 5] = np.nan
    b[7, n - 1] = -np.inf
    b[3, 2] = 0.0  # inf * 0 -> nan in row 1 col 2
    a[m - 1, 7] = np.inf  # inf + -inf in row m-1, col n-1 when b[7, n-1] = -inf
    for bd in (d, shrunk(d, 1, 16, 1)):
        c = np.empty((m, n), dt)
        lib.gemm(bd, a, b, c)
        with np.errstate(all="ignore"):
            want = a.astype(np.float64) @ b.astype(np.float64)
        check_equal(c, want, f"{bd} NaN/Inf propagation")


def check_determinism(lib, d):
    """A C element's value must not depend on how callers split M and N."""
    dt = d.dtype
    m, n, k = 3 * d.mr + 5, 3 * d.nr + 7, 2 * d.kc + 17
    a = rng.standard_normal((m, k)).astype(dt)
    b = rng.standard_normal((k, n)).astype(dt)
    bias = rng.standard_normal(max(m, n)).astype(dt)
    for flags in (0, G.FNN_BIAS_ROW, G.FNN_ACCUMULATE | G.FNN_BIAS_COL):
        c0 = rng.standard_normal((m, n)).astype(dt)
        full = c0.copy()
        lib.gemm(d, a, b, full, flags, bias)
        for cuts_m, cuts_n in [([0, 1, m], [0, n]), ([0, 5, 11, m], [0, 3, n]),
                               ([0, m], [0, 1, 17, n]), ([0, d.mr + 1, m], [0, d.nr - 1, n])]:
            part = c0.copy()
            for (i0, i1), (j0, j1) in itertools.product(zip(cuts_m, cuts_m[1:]), zip(cuts_n, cuts_n[1:])):
                bb = bias[i0:] if flags & G.FNN_BIAS_ROW else bias[j0:]
                lib.gemm(d, a[i0:i1], b[:, j0:j1], part[i0:i1, j0:j1], flags, bb)
            if not np.array_equal(part.view(np.uint8), full.view(np.uint8)):
                fail(f"{d} not bit-identical under split M={cuts_m} N={cuts_n} flags={flags}")
        # and close to the float64 truth (loose: this is random data)
        want = reference(a, b, c0, flags, bias[:m] if flags & G.FNN_BIAS_ROW else bias[:n])
        tol = np.sqrt(k) * np.finfo(dt).eps * (np.abs(a) @ np.abs(b) + np.abs(c0) + 1) * 2
        if not np.all(np.abs(full - want) <= tol):
            fail(f"{d} random-data result off by more than the tolerance")


def check_concurrent(lib, d):
    """Calls from several threads at once (ctypes drops the GIL), each with
    its own scratch, give the serial result: no hidden shared state."""
    import threading
    dt = d.dtype
    m, n, k = 2 * d.mr + 1, 3 * d.nr + 2, d.kc + 3
    a = rng.standard_normal((m, k)).astype(dt)
    b = rng.standard_normal((k, n)).astype(dt)
    want = np.empty((m, n), dt)
    lib.gemm(d, a, b, want)
    outs = [np.empty((m, n), dt) for _ in range(4)]

    def run(c):
        for _ in range(5):
            lib.gemm(d, a, b, c)

    threads = [threading.Thread(target=run, args=(c,)) for c in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not all(np.array_equal(c, want) for c in outs):
        fail(f"{d} concurrent calls differ from the serial result")


def check_kblocks(lib):
    for k in list(range(0, 70)) + [511, 512, 513, 576, 1025, 2304]:
        for kc in (1, 7, 16, 64, 512):
            blocks = lib.kblocks(k, kc)
            nblocks = max(1, -(-k // kc))
            if (sum(blocks) != k or len(blocks) != nblocks or max(blocks) > kc
                    or max(blocks) - min(blocks) > 1 or blocks != sorted(blocks, reverse=True)):
                fail(f"kblocks(k={k}, kc={kc}) = {blocks}")


def check_dispatch(lib):
    cpu = lib.cpu_isa()
    assert [lib.isa_name(i) for i in range(3)] == ["portable", "avx2", "avx512"]
    if lib.set_isa(cpu + 1) != -1 or lib.set_isa(-1) != -1:
        fail("set_isa accepted a level above the CPU's")
    for isa in range(cpu + 1):
        if lib.set_isa(isa) != isa or lib.active_isa() != isa:
            fail(f"set_isa({isa})")
        for dt in (np.float32, np.float64):
            d = lib.desc(dt)
            if d.isa != isa or not d.name.decode().endswith(lib.isa_name(isa)):
                fail(f"descriptor for {isa}: {d}")
            if d.mc % d.mr or d.nc % d.nr:
                fail(f"blocking not a multiple of the tile: {d}")
    code = ("import sys; sys.path.insert(0, %r); import _gemmlib as G; "
            "lib = G.Lib(%r); print(lib.active_isa())") % (os.path.dirname(os.path.abspath(__file__)), lib.path)
    for env, want in [("portable", 0), ("avx2", min(1, cpu)), ("avx512", cpu), ("", cpu)]:
        out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FASTNN_CPU=env),
                             capture_output=True, text=True, check=True).stdout.strip()
        if int(out) != want:
            fail(f"FASTNN_CPU={env!r}: active {out}, want {want}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lib", default=None)
    args = ap.parse_args()
    lib = G.load(args.lib)
    check_dispatch(lib)
    check_kblocks(lib)
    for isa in range(lib.cpu_isa() + 1):
        lib.set_isa(isa)
        for dt in (np.float32, np.float64):
            d = lib.desc(dt)
            print("checking", d, flush=True)
            check_ukernel(lib, d)
            check_pack_macro(lib, d)
            check_gemm(lib, d, args.quick)
            check_special_values(lib, d)
            check_determinism(lib, d)
            check_concurrent(lib, d)
    print(f"{ncheck} comparisons, {nfail} failures")
    sys.exit(1 if nfail else 0)


if __name__ == "__main__":
    main()
