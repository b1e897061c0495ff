# Direct convolution tiles for float32 convolutions with many channels on AVX-512 (see
# kernels/c/fnn_convtile_avx512.c): no im2col packing. Per image and group, the group's input
# planes are copied zero-padded once (the team splits the channels), then the team shares
# the tiles: (block of 32 output channels, output row, piece of the row of at most 14 pixels).

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
    layers have the direct plane kernels or the GEMM). A pointwise convolution is a plain
    GEMM over the image, which the GEMM path runs as fast with no padded copy."""
    return (_tiles_enabled and is_f32 and fnn_convtile_available() != 0 and (g.sw == 1 or g.sw == 2)
            and g.cout_g >= 16 and g.kg >= 32 and not is_pointwise(g))


cdef int tile_forward_impl(const ConvGeom *g, const float *x, const float *w, const float *bias,
                           float *y, int nthreads) noexcept nogil:
    cdef fnn_plane_geom pg = im2col_geom(g)
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(&pg)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int slack = FNN_PLANE_SLACK_BYTES // sizeof(float)
    cdef fnn_int plane_p = gp.h * gp.w + slack  # each plane's overrun stays its own
    cdef fnn_int blk_ch = FNN_CONVTILE_CHANNELS
    cdef fnn_int nblk = ceil_div(g.cout_g, blk_ch), blk_elems = blk_ch * g.kg
    cdef fnn_int wr_elems = g.groups * nblk * blk_elems
    cdef fnn_int n_chunks = ceil_div(g.w_out, FNN_CONVTILE_PIXELS)
    cdef fnn_int base = g.w_out // n_chunks, extra = g.w_out - base * n_chunks
    cdef fnn_int items = nblk * g.h_out * n_chunks
    cdef fnn_int img, grp, c, item, blk, oh, j, ow0, npix, co, o, k, k0, t, wi, wc
    cdef float *wr
    cdef float *xpad
    cdef fnn_int *off
    cdef int team = <int>min(<fnn_int>nthreads, max(items, g.cin_g))
    # wr (64-byte aligned blocks), then the padded planes, then the tap offsets
    wr = <float *>fnn_thread_scratch(FNN_SCRATCH_SHARED, (wr_elems + g.cin_g * plane_p) * sizeof(float)
                                     + taps * sizeof(fnn_int))
    if wr == NULL:
        return -1
    xpad = wr + wr_elems
    off = <fnn_int *>(xpad + g.cin_g * plane_p)
    for t in range(taps):
        off[t] = (t // g.kw) * g.dh * gp.w + (t % g.kw) * g.dw
    with parallel(num_threads=max(team, 1)):
        _note_team()
        # wr[grp][blk][k][o] = w[grp*cout_g + blk*32 + o][k], zero past the group's channels
        # (a transpose of each 32 x kg block, 16 columns at a time so reads and writes both
        # stay within a few cache lines)
        for wi in prange(g.groups * nblk, schedule='static'):
            for k0 in range(0, g.kg, 16):
                for o in range(blk_ch):
                    wc = (wi % nblk) * blk_ch + o
                    for k in range(k0, min(k0 + 16, g.kg)):
                        wr[wi * blk_elems + k * blk_ch + o] = (
                            w[((wi // nblk) * g.cout_g + wc) * g.kg + k] if wc < g.cout_g else 0)
        for img in range(g.n):
            for grp in range(g.groups):
                for c in prange(g.cin_g, schedule='static'):
                    fnn_plane_pad_f32(&pg, x + (img * g.c_in + grp * g.cin_g + c) * plane_in,
                                      xpad + c * plane_p, gp.w)
                for item in prange(items, schedule='static'):
                    blk = item // (g.h_out * n_chunks)
                    oh = (item // n_chunks) % g.h_out
                    j = item % n_chunks
                    ow0 = j * base + min(j, extra)
                    npix = base + (1 if j < extra else 0)
                    co = grp * g.cout_g + blk * blk_ch
                    fnn_convtile_f32(xpad + oh * g.sh * gp.w + ow0 * g.sw, plane_p, g.cin_g, off, taps,
                                     <int>g.sw, wr + (grp * nblk + blk) * blk_elems,
                                     bias + co if bias != NULL else NULL,
                                     <int>min(blk_ch, g.cout_g - blk * blk_ch), <int>npix,
                                     y + (img * g.c_out + co) * g.p + oh * g.w_out + ow0, g.p)
    return 0
