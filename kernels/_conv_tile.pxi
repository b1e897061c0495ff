# Direct convolution tiles for float32 convolutions with many channels on AVX-512 (see
# kernels/c/fnn_convtile_avx512.c): no im2col packing; each tile is a block of 32 output
# channels times a piece of an output row (at most 14 pixels), or for groups of at most 16
# output channels 16 times at most 28, read from a zero-padded copy of its image group.

# Whether run_forward may take the tiles (tests switch them off to reach the GEMM path).
cdef bint _tiles_enabled = True


def set_conv_tiles(bint enabled):
    """Allow (True, the default) or forbid the direct convolution tiles; returns the old setting."""
    global _tiles_enabled
    old = _tiles_enabled
    _tiles_enabled = enabled
    return old


cdef inline bint tiles_apply(const ConvGeom *g, bint is_f32) noexcept nogil:
    """Whether a convolution runs on the tiles: float32 on AVX-512, column stride 1 or 2, and
    enough output channels and reduction per tile to pay for its epilogue (the few-channel
    layers have the direct plane kernels or the GEMM). From 8 output channels per group the
    narrow tiles, half empty, still beat the GEMM's im2col, which each output uses only
    C_out/groups times (RegNetY's stride-2 8-channel groups: forward 2.7 -> 0.84 ms,
    backward 5.5 -> 3.6 ms, 1 thread). A pointwise convolution is a plain GEMM over the
    image, which the GEMM path runs as fast with no padded copy."""
    return (_tiles_enabled and is_f32 and fnn_convtile_available() != 0 and (g.sw == 1 or g.sw == 2)
            and g.cout_g >= 8 and g.kg >= 32 and not is_pointwise(g))


# Input channels (times taps) a tile sums in one pass. A run of tiles reuses its block's
# weights from L2 only while they fit there beside the input rows it reads. Wider groups
# streamed them from L3 at every tile: DeepLab's 2048-channel 3x3 layer ran at 45 GFLOP/s,
# U-Net's 1024-channel one at 103, against 157 at 256 channels (1 thread, Emerald Rapids).
# They now sum in passes of at most this many (128 channels of a 3x3 kernel, 144 KiB of
# weights per block; 2304 and 576 measured 3-10% slower on those layers), each later pass
# adding into y.
cdef fnn_int TILE_PASS_KG = 1152


cdef void flipped_weights_block(const ConvGeom *g, const float *w, fnn_int grp, fnn_int wc,
                                fnn_int blk_ch, float *dst) noexcept nogil:
    """One block of blk_ch channels of wr for g, the input gradient of a forward convolution
    with weights w: dst[(co*taps + t)*blk_ch + o] = w[grp*cin_g + co][wc + o][taps - 1 - t]
    (g's output channels are the forward's input channels), zero past the group's channels.
    Built straight from w, each forward output channel's (blk_ch x taps) piece transposed with
    its taps reversed (a negative destination pitch), not through a flipped copy of w first."""
    cdef fnn_int taps = g.kh * g.kw, cols = min(blk_ch, g.cout_g - wc)
    cdef fnn_int co, k
    for co in range(g.cin_g):
        fnn_transpose_f32(cols, taps, w + ((grp * g.cin_g + co) * g.cout_g + wc) * taps, taps,
                          dst + (co * taps + taps - 1) * blk_ch, -blk_ch)
    if cols < blk_ch:
        for k in range(g.kg):
            memset(dst + k * blk_ch + cols, 0, (blk_ch - cols) * sizeof(float))


cdef int tile_forward_impl(const ConvGeom *g, const float *x, const float *w, const float *bias,
                           float *y, int nthreads, bint w_flipped=False) noexcept nogil:
    """w_flipped: w is the weights of the forward convolution whose input gradient g is (see
    transposed_geom), read as its flipped, channel-swapped kernel. Items are (image, group,
    block of output channels, output row, piece of the row), in that order, each thread
    taking one contiguous run of them, the same run in every pass
    over the input channels (so a later pass adds into outputs its own thread wrote): each
    thread copies a pass's planes of an image group zero-padded into its own scratch when its
    run reaches that group, so there is no barrier per image or pass (a barrier waits out any
    thread the OS has descheduled). w may live in the calling thread's own scratch: it is read
    only before the team asks for its own."""
    cdef fnn_plane_geom pg = im2col_geom(g)
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(&pg)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int slack = FNN_PLANE_SLACK_BYTES // sizeof(float)
    cdef fnn_int plane_p = gp.h * gp.w + slack
    cdef bint narrow = g.cout_g <= FNN_CONVTILE_NARROW_CHANNELS
    cdef fnn_int blk_ch = FNN_CONVTILE_NARROW_CHANNELS if narrow else FNN_CONVTILE_CHANNELS
    cdef fnn_int nblk = ceil_div(g.cout_g, blk_ch), blk_elems = blk_ch * g.kg
    cdef fnn_int wr_elems = g.groups * nblk * blk_elems
    cdef fnn_int n_chunks = ceil_div(g.w_out, FNN_CONVTILE_NARROW_PIXELS if narrow else FNN_CONVTILE_PIXELS)
    cdef fnn_int base = g.w_out // n_chunks, extra = g.w_out - base * n_chunks
    cdef fnn_int per_group = nblk * g.h_out * n_chunks
    cdef fnn_int items = g.n * g.groups * per_group
    cdef fnn_int pass_ch = ceil_div(g.cin_g, min(g.cin_g, ceil_div(g.kg, TILE_PASS_KG)))
    cdef fnn_int passes = ceil_div(g.cin_g, pass_ch)
    cdef fnn_int img_grp, img, c, item, blk, oh, j, ow0, npix, co, t, wi, wc, grp
    cdef fnn_int lo, hi, ps, c0, nc, key, a0, a1
    cdef float *wr
    cdef float *xpad
    cdef fnn_int *padded
    cdef fnn_int *off
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team = <int>min(<fnn_int>nthreads, items)
    # shared: the rearranged weights (64-byte aligned blocks), then the tap offsets
    wr = <float *>fnn_thread_scratch(FNN_SCRATCH_SHARED, wr_elems * sizeof(float) + taps * sizeof(fnn_int))
    if wr == NULL:
        return -1
    off = <fnn_int *>(wr + wr_elems)
    for t in range(taps):
        off[t] = (t // g.kw) * g.dh * gp.w + (t % g.kw) * g.dw
    # wr[grp][blk][k][o] = w[grp*cout_g + blk*32 + o][k], zero past the group's channels: the
    # GEMM's B packing of w^T, transposed in register blocks (element by element, this took a
    # third of a batch-1 7x7 layer's forward). A region of its own: a prange inside `with
    # parallel` ends without a barrier, and the tiles below must not start on a half-written wr.
    for wi in prange(g.groups * nblk, schedule='static', num_threads=max(team, 1)):
        wc = (wi % nblk) * blk_ch
        if not w_flipped:
            fnn_pack_b_f32(<int>blk_ch, g.kg, min(blk_ch, g.cout_g - wc), w + ((wi // nblk) * g.cout_g + wc) * g.kg,
                           1, g.kg, wr + wi * blk_elems)
        else:
            flipped_weights_block(g, w, wi // nblk, wc, blk_ch, wr + wi * blk_elems)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        lo = items * omp_get_thread_num() // omp_get_num_threads()
        hi = items * (omp_get_thread_num() + 1) // omp_get_num_threads()
        # this thread's padded planes, after a 64-byte header: which image group and pass
        padded = <fnn_int *>fnn_thread_scratch(FNN_SCRATCH_OWN, 64 + pass_ch * plane_p * sizeof(float))
        if padded == NULL:
            failed_p[0] = 1
            hi = lo
        else:
            padded[0] = -1
        xpad = <float *>(padded + 64 // sizeof(fnn_int))
        for ps in range(passes):
            c0 = ps * pass_ch
            nc = min(pass_ch, g.cin_g - c0)
            if lo < hi:  # this run's first item, decoded; the rest follow it as an odometer
                img_grp = lo // per_group  # image * groups + group
                grp = img_grp % g.groups
                img = img_grp // g.groups
                blk = (lo // (g.h_out * n_chunks)) % nblk
                oh = (lo // n_chunks) % g.h_out
                j = lo % n_chunks
            for item in range(lo, hi):
                key = img_grp * passes + ps
                if padded[0] != key:
                    for c in range(nc):
                        fnn_plane_pad_f32(&pg, x + (img_grp * g.cin_g + c0 + c) * plane_in, xpad + c * plane_p,
                                          gp.w)
                    padded[0] = key
                ow0 = j * base + min(j, extra)
                npix = base + (1 if j < extra else 0)
                co = grp * g.cout_g + blk * blk_ch
                # the kernel rows [a0, a1) that meet the image at this output row: the others
                # multiply padding only (zeros, the weights being finite) and are skipped, a
                # run of taps at either end (24% of DeepLab's dilation-12 layer)
                a0 = 0
                while a0 < g.kh and oh * g.sh - g.pt + a0 * g.dh < 0:
                    a0 = a0 + 1
                a1 = g.kh
                while a1 > a0 and oh * g.sh - g.pt + (a1 - 1) * g.dh >= g.h:
                    a1 = a1 - 1
                fnn_convtile_f32(xpad + oh * g.sh * gp.w + ow0 * g.sw, plane_p, nc, off + a0 * g.kw,
                                 (a1 - a0) * g.kw, taps, <int>g.sw, <int>blk_ch,
                                 wr + (grp * nblk + blk) * blk_elems + (c0 * taps + a0 * g.kw) * blk_ch,
                                 bias + co if bias != NULL and ps == 0 else NULL,
                                 <int>min(blk_ch, g.cout_g - blk * blk_ch), <int>npix,
                                 y + (img * g.c_out + co) * g.p + oh * g.w_out + ow0, g.p, ps > 0)
                # the next item: piece j of output row oh of block blk of img_grp (the five
                # divisions of decoding every item cost a tenth of a small tile's time)
                j = j + 1
                if j == n_chunks:
                    j = 0
                    oh = oh + 1
                    if oh == g.h_out:
                        oh = 0
                        blk = blk + 1
                        if blk == nblk:
                            blk = 0
                            img_grp = img_grp + 1
                            grp = grp + 1
                            if grp == g.groups:
                                grp = 0
                                img = img + 1
    return -1 if failed else 0


cdef int grad_weight_rows_impl(const ConvGeom *g, const float *dy, const float *x, float *dw,
                               int nthreads) noexcept nogil:
    """conv2d_grad_weight_impl's tiles and order of sums over images, with the pixels taken
    in blocks of whole output rows and the GEMM's A operand read straight from a zero-padded
    copy of the tile's input channels (fnn_convrows_f32) instead of packed from an im2col:
    float32 on AVX-512, column stride 1 or 2, all-finite dY where padding is read."""
    cdef Tiling t = active_tiling(dy)
    cdef fnn_plane_geom pg = im2col_geom(g)
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(&pg)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int slack = FNN_PLANE_SLACK_BYTES // sizeof(float)
    cdef fnn_int plane_p = round_up(gp.h * gp.w + slack, 16)
    cdef fnn_int rows_per_blk = max(<fnn_int>1, t.kc // g.w_out)
    cdef fnn_int kcb_max = rows_per_blk * g.w_out
    cdef fnn_int nbc, n_jb, kchunk, n_kb, items, item, grp, kb, jb, k_lo, krows, jc, ncb
    cdef fnn_int img, rb, oh0, nrows, kcb, ci_lo, ci_hi, c, jp, jr, ib, ir, k, i, m
    cdef fnn_int bp_elems, xp_elems, own_elems
    cdef float *bpack
    cdef float *xpad
    cdef float *ct
    cdef float *dwt
    cdef const float **arow
    cdef fnn_int *row_at
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team, accumulate
    # groups of at most 16 or 32 output channels: 12 x 16 or 12 x 32 steps (a 64-wide B would
    # be 3/4 or 1/2 zeros)
    cdef fnn_int panel = FNN_CONVROWS_CHANNELS
    cdef fnn_int step_rows = FNN_CONVROWS_ROWS
    if g.cout_g <= 2 * FNN_CONVROWS_NARROW_CHANNELS:
        panel = (FNN_CONVROWS_NARROW_CHANNELS if g.cout_g <= FNN_CONVROWS_NARROW_CHANNELS
                 else 2 * FNN_CONVROWS_NARROW_CHANNELS)
        step_rows = FNN_CONVROWS_NARROW_ROWS
    grad_weight_split(g, &t, nthreads, &nbc, &n_jb, &kchunk, &n_kb)
    items = g.groups * n_kb * n_jb
    team = <int>min(<fnn_int>nthreads, items)
    bp_elems = round_up(nbc, t.nr) * kcb_max  # t.nr = 64 >= the narrow panels' 16
    xp_elems = (kchunk // taps + 2) * plane_p  # the channels one K range touches
    own_elems = bp_elems + xp_elems + (kchunk + 16) * (sizeof(fnn_int) // sizeof(float)) + kchunk * nbc
    with parallel(num_threads=max(team, 1)):
        _note_team()
        bpack = <float *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(float))
        if bpack == NULL:
            failed_p[0] = 1
        # the pieces before ct hold whole 8-byte words: row_at and arow stay aligned
        xpad = bpack + bp_elems
        row_at = <fnn_int *>(xpad + xp_elems)
        arow = <const float **>(row_at + kchunk)
        ct = <float *>(arow + 16)
        for item in prange(items, schedule='static'):
            if bpack == NULL:
                continue
            grp = item // (n_kb * n_jb)
            kb = (item // n_jb) % n_kb
            jb = item % n_jb
            k_lo = kb * kchunk
            krows = min(kchunk, g.kg - k_lo)
            jc = jb * nbc
            ncb = min(nbc, g.cout_g - jc)
            ci_lo = k_lo // taps
            ci_hi = ceil_div(k_lo + krows, taps)
            accumulate = 0
            # where each of the range's K rows (a channel and a tap) starts in the padded
            # planes, once per item: per GEMM step it cost a division each, more time than
            # the step's arithmetic on a 7x7 map (49 pixels: ResNet's last stage at batch 1)
            for i in range(krows):
                k = k_lo + i
                row_at[i] = ((k // taps - ci_lo) * plane_p + (k % taps) // g.kw * g.dh * gp.w
                             + (k % g.kw) * g.dw)
            for img in range(g.n):
                for c in range(ci_lo, ci_hi):
                    fnn_plane_pad_f32(&pg, x + (img * g.c_in + grp * g.cin_g + c) * plane_in,
                                      xpad + (c - ci_lo) * plane_p, gp.w)
                for rb in range(ceil_div(g.h_out, rows_per_blk)):
                    oh0 = rb * rows_per_blk
                    nrows = min(rows_per_blk, g.h_out - oh0)
                    kcb = nrows * g.w_out
                    fnn_pack_b_f32(<int>panel, kcb, ncb,
                                   dy + (img * g.c_out + grp * g.cout_g + jc) * g.p + oh0 * g.w_out, 1, g.p, bpack)
                    for jp in range(ceil_div(ncb, panel)):
                        jr = jp * panel
                        for ib in range(ceil_div(krows, step_rows)):
                            ir = ib * step_rows
                            m = min(step_rows, krows - ir)
                            for i in range(m):
                                arow[i] = xpad + oh0 * g.sh * gp.w + row_at[ir + i]
                            fnn_convrows_f32(arow, <int>m, nrows, g.w_out, g.sh * gp.w, <int>g.sw, <int>panel,
                                             bpack + jr * kcb, ct + ir * ncb + jr, ncb,
                                             <int>min(panel, ncb - jr), accumulate)
                    accumulate = 1
            store_dwt(g, ct, krows, ncb, dw + (grp * g.cout_g + jc) * g.kg + k_lo)
    return -1 if failed else 0



# ---- strided input gradients on the tiles, phase by phase -----------------------------------
#
# With stride s, the input pixels ih = ph, ph + s, ph + 2s, ... (one phase of the rows) each
# receive dY through the same kernel rows: those a with ih + pt - a*dh a multiple of s, at dY
# row ih // s + q_a. Per phase of rows and of columns that is a stride-1 convolution of dY
# with a piece of the flipped kernel, whose outputs land every s-th pixel of dX: the tiles
# run it, each dX element written once, instead of cols = W^T dY and a col2im scatter (with
# a reduction over C_out/groups, 8-16 long in ResNeXt's and RegNet's groups, the scatter's
# traffic made the input gradient 3x slower than PyTorch's).

# Strides up to this in each direction take the phases (arrays of them live on the stack).
cdef enum:
    PHASE_MAX_STRIDE = 4


cdef struct PhaseTaps:
    # one phase of one direction (rows or columns): its outputs ih = first + i*s, i < count,
    # and the kernel taps reaching them, tap u meeting dY at index i + q[u] (q ascending)
    fnn_int first, count, ntaps, tap0   # tap0: where its taps start in the shared tables


# Output channels per group up to which they do: the GEMM form's reduction is that long, and
# at 8-128 the scatter dominated (ResNeXt's 16: 8.8 -> 3.8 ms, a 64-channel 56x56 layer 5.5 ->
# 4.4, 1 thread). Past it, only where each phase row is one tile of 7 pixels or more
# (ResNet-50's stride-2 3x3s over 256 and 512 channels: 0.80 and 0.87 of the col2im time);
# wider rows split into short tiles (Inception's 35-wide map: 1.16, a 56-wide one 1.06), and
# 4-pixel rows (DCGAN's folded 8-wide outputs: 1.16) do not pay for the tiles' epilogue.
cdef fnn_int PHASE_MAX_COUT_G = 128


def set_phase_max_cout_g(fnn_int limit):
    """Set the output channels per group up to which strided input gradients take the phases;
    returns the old value (0: never, for side-by-side timings)."""
    global PHASE_MAX_COUT_G
    old = PHASE_MAX_COUT_G
    PHASE_MAX_COUT_G = limit
    return old


cdef inline bint phases_apply(const ConvGeom *g) noexcept nogil:
    """Whether a strided float32 input gradient runs on the tiles phase by phase: tiles_apply
    for the stride-1 convolutions of its phases (dX channels as outputs, dY's as inputs), a
    short reduction (PHASE_MAX_COUT_G) or phase rows of one tile of 7 pixels or more, and more
    taps than phases (with one tap per phase, as U-Net's 2x2 stride-2 up-sampling, the col2im
    scatter has no overlap to sum: 1.2-1.7x faster than the phases)."""
    cdef fnn_int phase_w = ceil_div(g.w, g.sw)
    cdef fnn_int tile_w = FNN_CONVTILE_NARROW_PIXELS if g.cin_g <= FNN_CONVTILE_NARROW_CHANNELS else FNN_CONVTILE_PIXELS
    return (_tiles_enabled and fnn_convtile_available() != 0 and (g.sh > 1 or g.sw > 1)
            and g.sh <= PHASE_MAX_STRIDE and g.sw <= PHASE_MAX_STRIDE and g.cin_g >= 8
            and (g.cout_g <= PHASE_MAX_COUT_G or (PHASE_MAX_COUT_G > 0 and 7 <= phase_w <= tile_w))
            and g.cout_g * g.kh * g.kw >= 32 and g.kh * g.kw > g.sh * g.sw and g.h > 0 and g.w > 0)


cdef fnn_int phase_taps(fnn_int size, fnn_int out, fnn_int k, fnn_int s, fnn_int pad, fnn_int d,
                        PhaseTaps *ph, fnn_int *kidx, fnn_int *q, fnn_int *lo, fnn_int *hi) noexcept nogil:
    """The s phases of one direction (input size `size`, dY size `out`, kernel k, stride s,
    padding, dilation d): each one's outputs and taps (kernel index kidx, dY shift q, filled
    from tap0 on), and the dY indices [lo, hi) all of them read. Returns the taps in all (k)."""
    cdef fnn_int f, a, lift, n = 0
    lo[0], hi[0] = 0, out
    for f in range(s):
        ph[f].first = f
        ph[f].count = ceil_div(size - f, s) if f < size else 0
        ph[f].tap0 = n
        for a in range(k - 1, -1, -1):  # q ascending
            # f + pad - a d, lifted by a multiple of s to be >= 0 (no negative divisions)
            lift = (a * d) // s + 1
            if (f + pad - a * d + lift * s) % s == 0:
                kidx[n] = a
                q[n] = (f + pad - a * d + lift * s) // s - lift
                n += 1
        ph[f].ntaps = n - ph[f].tap0
        if ph[f].ntaps > 0 and ph[f].count > 0:
            lo[0] = min(lo[0], q[ph[f].tap0])
            hi[0] = max(hi[0], ph[f].count + q[n - 1])
    return n


cdef int tile_grad_input_phases(const ConvGeom *g, const float *dy, const float *w, float *dx,
                                int nthreads) noexcept nogil:
    """dX for a strided convolution (phases_apply, all-finite w: the tiles multiply dY's zero
    padding by it), one stride-1 convolution per phase on the tiles (see above). Items are
    (image, group, phase, block of dX channels, phase row, piece of the row), split among the
    team as tile_forward_impl's, each dX element summed in the same order for any team."""
    cdef PhaseTaps rp[PHASE_MAX_STRIDE]
    cdef PhaseTaps cp[PHASE_MAX_STRIDE]
    cdef fnn_int start[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE + 1]
    cdef fnn_int chunks[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int woff[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int ooff[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int prows[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int pbase[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int pextra[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int prow_of[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int pcol_of[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE]
    cdef fnn_int f_first = -1
    cdef fnn_int nph = g.sh * g.sw, taps = g.kh * g.kw, plane_out = g.h_out * g.w_out
    cdef bint narrow = g.cin_g <= FNN_CONVTILE_NARROW_CHANNELS
    cdef fnn_int blk_ch = FNN_CONVTILE_NARROW_CHANNELS if narrow else FNN_CONVTILE_CHANNELS
    cdef fnn_int pix = FNN_CONVTILE_NARROW_PIXELS if narrow else FNN_CONVTILE_PIXELS
    cdef fnn_int nblk = ceil_div(g.cin_g, blk_ch)
    cdef fnn_int slack = FNN_PLANE_SLACK_BYTES // sizeof(float)
    cdef fnn_int pass_ch = ceil_div(g.cout_g, min(g.cout_g, ceil_div(g.cout_g * taps, TILE_PASS_KG)))
    cdef fnn_int passes = ceil_div(g.cout_g, pass_ch)
    cdef fnn_int rlo, rhi, clo, chi, wp, plane_p, per_group, items, wr_elems, k, f, fr, fc, u, v, nu, nv
    cdef fnn_int item, img_grp, img, grp, key, ps, c0, nc, c, rest, blk, i, j, ow0, npix
    cdef fnn_int a0, a1, lo, hi, wc, co, o, cols, wi
    cdef fnn_int *tab
    cdef fnn_int *rk
    cdef fnn_int *rq
    cdef fnn_int *ck
    cdef fnn_int *cq
    cdef fnn_int *off
    cdef float *wr
    cdef float *dst
    cdef float *xpad
    cdef float *tout
    cdef float *tw
    cdef fnn_int oc, p, plane = g.h * g.w, step = g.sw
    cdef bint wide_step = g.sw > 1 and not narrow
    cdef fnn_int *padded
    cdef fnn_plane_geom pg
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team
    tab = <fnn_int *>malloc((2 * g.kh + 2 * g.kw + taps) * sizeof(fnn_int))
    if tab == NULL:
        return -1
    rk, rq, ck, cq, off = tab, tab + g.kh, tab + 2 * g.kh, tab + 2 * g.kh + g.kw, tab + 2 * g.kh + 2 * g.kw
    phase_taps(g.h, g.h_out, g.kh, g.sh, g.pt, g.dh, rp, rk, rq, &rlo, &rhi)
    phase_taps(g.w, g.w_out, g.kw, g.sw, g.pl, g.dw, cp, ck, cq, &clo, &chi)
    # dY zero-padded once for every phase: rows [rlo, rhi), columns [clo, chi)
    pg.h, pg.w, pg.kh, pg.kw, pg.sh, pg.sw, pg.dh, pg.dw = g.h_out, g.w_out, 1, 1, 1, 1, 1, 1
    pg.pt, pg.pl, pg.h_out, pg.w_out = -rlo, -clo, rhi - rlo, chi - clo
    wp = chi - clo
    plane_p = (rhi - rlo) * wp + slack
    # per phase: its items, its weights' place, its taps' offsets in the padded planes
    start[0] = 0
    wr_elems = 0
    k = 0
    for f in range(nph):
        fr, fc = f // g.sw, f % g.sw
        nu, nv = rp[fr].ntaps, cp[fc].ntaps
        chunks[f] = ceil_div(cp[fc].count, pix)
        start[f + 1] = start[f] + (nblk * rp[fr].count * chunks[f] if cp[fc].count > 0 else 0)
        prows[f] = rp[fr].count
        prow_of[f], pcol_of[f] = fr, fc
        pbase[f] = cp[fc].count // chunks[f] if chunks[f] > 0 else 0
        pextra[f] = cp[fc].count - pbase[f] * chunks[f]
        if f_first < 0 and start[f + 1] > start[f]:
            f_first = f
        woff[f] = wr_elems
        wr_elems += g.groups * nblk * blk_ch * g.cout_g * nu * nv
        ooff[f] = k
        for u in range(nu):
            for v in range(nv):
                off[k] = (rq[rp[fr].tap0 + u] - rlo) * wp + cq[cp[fc].tap0 + v] - clo
                k += 1
    per_group = start[nph]
    items = g.n * g.groups * per_group
    team = <int>min(<fnn_int>nthreads, max(items, <fnn_int>1))
    wr = <float *>fnn_thread_scratch(FNN_SCRATCH_SHARED, max(wr_elems, <fnn_int>1) * sizeof(float))
    if wr == NULL:
        free(tab)
        return -1
    # wr, phase f, group, block: [dY channel co][phase tap (u, v)][dX channel o] =
    # w[grp*cout_g + co][blk*blk_ch + o][kidx_u, kidx_v], zero past the group's channels. Each
    # dY channel's (blk_ch x taps) piece of w is transposed once in register blocks (as
    # flipped_weights_block does), its tap rows then copied to their phases: gathered element
    # by element, 512 x 512 x 3x3 weights took a tenth of ResNet-50's stride-2 dX.
    for wi in prange(g.groups * nblk, schedule='static', num_threads=team):
        grp = wi // nblk
        wc = (wi % nblk) * blk_ch
        cols = min(blk_ch, g.cin_g - wc)
        tw = <float *>malloc(taps * blk_ch * sizeof(float))
        if tw == NULL:
            failed_p[0] = 1
            continue
        memset(tw, 0, taps * blk_ch * sizeof(float))  # the lanes past cols stay zero
        for co in range(g.cout_g):
            fnn_transpose_f32(cols, taps, w + ((grp * g.cout_g + co) * g.cin_g + wc) * taps, taps, tw, blk_ch)
            for f in range(nph):
                nu, nv = rp[prow_of[f]].ntaps, cp[pcol_of[f]].ntaps
                dst = wr + woff[f] + (wi * g.cout_g + co) * nu * nv * blk_ch
                for u in range(nu):
                    for v in range(nv):
                        memcpy(dst, tw + (rk[rp[prow_of[f]].tap0 + u] * g.kw + ck[cp[pcol_of[f]].tap0 + v]) * blk_ch,
                               blk_ch * sizeof(float))
                        dst = dst + blk_ch
        free(tw)
    if failed:
        free(tab)
        return -1
    with parallel(num_threads=team):
        _note_team()
        lo = items * omp_get_thread_num() // omp_get_num_threads()
        hi = items * (omp_get_thread_num() + 1) // omp_get_num_threads()
        # and a tile's outputs, where they land every sw-th pixel
        padded = <fnn_int *>fnn_thread_scratch(FNN_SCRATCH_OWN, 64 + (pass_ch * plane_p + blk_ch * pix) * sizeof(float))
        if padded == NULL:
            failed_p[0] = 1
            hi = lo
        else:
            padded[0] = -1
        xpad = <float *>(padded + 64 // sizeof(fnn_int))
        tout = xpad + pass_ch * plane_p
        for ps in range(passes):
            c0 = ps * pass_ch
            nc = min(pass_ch, g.cout_g - c0)
            if lo < hi:  # this run's first item, decoded; the rest follow it as an odometer
                img_grp = lo // per_group
                grp = img_grp % g.groups
                img = img_grp // g.groups
                rest = lo % per_group
                f = 0
                while rest >= start[f + 1]:
                    f = f + 1
                rest = rest - start[f]
                blk = rest // (prows[f] * chunks[f])
                i = (rest // chunks[f]) % prows[f]
                j = rest % chunks[f]
            for item in range(lo, hi):
                key = img_grp * passes + ps
                if padded[0] != key:
                    for c in range(nc):
                        fnn_plane_pad_f32(&pg, dy + (img_grp * g.cout_g + c0 + c) * plane_out, xpad + c * plane_p, wp)
                    padded[0] = key
                fr, fc = prow_of[f], pcol_of[f]
                nu, nv = rp[fr].ntaps, cp[fc].ntaps
                ow0 = j * pbase[f] + min(j, pextra[f])
                npix = pbase[f] + (1 if j < pextra[f] else 0)
                # the phase's kernel rows that meet dY at this row (the rest multiply padding)
                a0 = 0
                while a0 < nu and i + rq[rp[fr].tap0 + a0] < 0:
                    a0 = a0 + 1
                a1 = nu
                while a1 > a0 and i + rq[rp[fr].tap0 + a1 - 1] >= g.h_out:
                    a1 = a1 - 1
                oc = min(blk_ch, g.cin_g - blk * blk_ch)
                dst = (dx + (img * g.c_in + grp * g.cin_g + blk * blk_ch) * g.h * g.w
                       + (rp[fr].first + i * g.sh) * g.w + cp[fc].first + ow0 * g.sw)
                if narrow and g.sw > 1:
                    fnn_convtile_narrow_strided_f32(
                        xpad + i * wp + ow0, plane_p, nc, off + ooff[f] + a0 * nv, (a1 - a0) * nv, nu * nv,
                        wr + woff[f] + (grp * nblk + blk) * blk_ch * g.cout_g * nu * nv + (c0 * nu * nv + a0 * nv) * blk_ch,
                        <int>oc, <int>npix, dst, plane, step, ps > 0)
                else:
                    fnn_convtile_f32(xpad + i * wp + ow0, plane_p, nc, off + ooff[f] + a0 * nv, (a1 - a0) * nv,
                                     nu * nv, 1, <int>blk_ch,
                                     wr + woff[f] + (grp * nblk + blk) * blk_ch * g.cout_g * nu * nv
                                     + (c0 * nu * nv + a0 * nv) * blk_ch,
                                     NULL, <int>oc, <int>npix, tout if wide_step else dst,
                                     npix if wide_step else plane, ps > 0 and not wide_step)
                if wide_step:  # every sw-th pixel of the row (the narrow tiles store it themselves)
                    if ps > 0:
                        for o in range(oc):
                            for p in range(npix):
                                dst[o * plane + p * step] += tout[o * npix + p]
                    else:
                        for o in range(oc):
                            for p in range(npix):
                                dst[o * plane + p * step] = tout[o * npix + p]
                # the next item: piece j of phase row i of block blk of phase f of img_grp
                j = j + 1
                if j == chunks[f]:
                    j = 0
                    i = i + 1
                    if i == prows[f]:
                        i = 0
                        blk = blk + 1
                        if blk == nblk:
                            blk = 0
                            f = f + 1
                            while f < nph and start[f + 1] == start[f]:
                                f = f + 1
                            if f == nph:
                                f = f_first
                                img_grp = img_grp + 1
                                grp = grp + 1
                                if grp == g.groups:
                                    grp = 0
                                    img = img + 1
    free(tab)
    return -1 if failed else 0
