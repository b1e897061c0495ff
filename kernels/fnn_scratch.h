/*
 * Per-thread scratch memory for the Cython drivers, kept alive between calls.
 *
 * Why: on the target VMs the first touch of fresh memory costs ~3 us per 4 KiB page and
 * glibc hands big blocks back to the OS on free, so a packing buffer malloc'd per call
 * pays its page faults again every call. Each OS thread (an OpenMP worker, or a Python
 * thread calling a kernel with the GIL released) owns one buffer, so concurrent calls
 * from several Python threads never share scratch.
 */
#ifndef FNN_SCRATCH_H
#define FNN_SCRATCH_H

#include <stdlib.h>
#include <stddef.h>

#define FNN_SCRATCH_ALIGN 64

/* Slot 0: a thread's own packing buffers. Slot 1: operands one call packs once and shares
 * with its whole team (packed weights), owned by the calling thread. Slot 2: a recurrent
 * call's sequences in the packed layout of variable lengths (x, states, gradients), held by
 * the calling thread across the GEMMs and recurrences that use slots 0 and 1. */
#define FNN_SCRATCH_OWN 0
#define FNN_SCRATCH_SHARED 1
#define FNN_SCRATCH_SEQUENCES 2
#define FNN_SCRATCH_SLOTS 3

typedef struct {
    void *raw;     /* what malloc returned */
    void *aligned; /* raw rounded up to FNN_SCRATCH_ALIGN */
    size_t bytes;  /* usable bytes at aligned */
} fnn_scratch_buffer;

typedef struct {
    fnn_scratch_buffer slot[FNN_SCRATCH_SLOTS];
} fnn_scratch_block;

#if defined(_WIN32)
/* No destructor on thread exit here: a Windows thread's last buffer is not reclaimed. */
static __declspec(thread) fnn_scratch_block fnn_tls_scratch;
static fnn_scratch_block *fnn_scratch_slot(void) { return &fnn_tls_scratch; }
#else
#include <pthread.h>
static pthread_key_t fnn_scratch_key;
static pthread_once_t fnn_scratch_once = PTHREAD_ONCE_INIT;

static void fnn_scratch_destroy(void *p) {
    fnn_scratch_block *blk = (fnn_scratch_block *)p;
    int i;
    if (blk) {
        for (i = 0; i < FNN_SCRATCH_SLOTS; i++) free(blk->slot[i].raw);
        free(blk);
    }
}
static void fnn_scratch_make_key(void) { pthread_key_create(&fnn_scratch_key, fnn_scratch_destroy); }

static fnn_scratch_block *fnn_scratch_slot(void) {
    fnn_scratch_block *blk;
    pthread_once(&fnn_scratch_once, fnn_scratch_make_key);
    blk = (fnn_scratch_block *)pthread_getspecific(fnn_scratch_key);
    if (!blk) {
        blk = (fnn_scratch_block *)calloc(1, sizeof(fnn_scratch_block));
        if (!blk) return NULL;
        if (pthread_setspecific(fnn_scratch_key, blk) != 0) {
            free(blk);
            return NULL;
        }
    }
    return blk;
}
#endif

/* This thread's scratch in `slot`, at least `bytes` long and 64-byte aligned; NULL if out of
 * memory. The contents are undefined. Valid until this thread asks that slot for more. */
static void *fnn_thread_scratch(int slot, size_t bytes) {
    fnn_scratch_block *all = fnn_scratch_slot();
    fnn_scratch_buffer *blk;
    if (!all || slot < 0 || slot >= FNN_SCRATCH_SLOTS) return NULL;
    blk = &all->slot[slot];
    if (blk->bytes < bytes || !blk->aligned) {
        void *raw;
        size_t want = bytes + bytes / 4 + FNN_SCRATCH_ALIGN; /* some headroom for growth */
        free(blk->raw);
        blk->raw = blk->aligned = NULL;
        blk->bytes = 0;
        raw = malloc(want);
        if (!raw) return NULL;
        blk->raw = raw;
        blk->aligned = (void *)(((size_t)raw + FNN_SCRATCH_ALIGN - 1) & ~(size_t)(FNN_SCRATCH_ALIGN - 1));
        blk->bytes = want - ((size_t)blk->aligned - (size_t)raw);
    }
    return blk->aligned;
}

#endif /* FNN_SCRATCH_H */
