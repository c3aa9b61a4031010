/* train_rng.h — the keyed random streams of the trainers and the data
 * preparation: every draw is a function of (seed, purpose, item index), so
 * a run can be resumed or redone anywhere and give the same numbers. */
#ifndef OSP_TRAIN_RNG_H
#define OSP_TRAIN_RNG_H

#include <stdint.h>

/* What a random stream is for (part of its key); values are never reused. */
enum {
    OSP_STREAM_PERM = 1,  /* dit: the epoch's permutation */
    OSP_STREAM_TIMESTEP,  /* dit: a sample's timestep */
    OSP_STREAM_NOISE,     /* dit: a sample's noise */
    OSP_STREAM_POSTERIOR, /* dit: a sample's latent draw from its moments */
    OSP_STREAM_WINDOW,    /* prepare: a clip's temporal window */
    OSP_STREAM_FLIP,      /* prepare: a clip's horizontal flip */
};

/* The Philox key of stream `what` for item `index` (splitmix64 mixing). */
uint64_t osp_stream_seed(uint64_t seed, int what, uint64_t index);
/* 32 random bits: lane 0 of Philox block `counter` under key. */
uint32_t osp_random_u32(uint64_t key, uint64_t counter);
/* A uniform integer in [0, n), n <= 2^32, by the multiply-shift map. */
uint64_t osp_random_below(uint64_t key, uint64_t counter, uint64_t n);

#endif
