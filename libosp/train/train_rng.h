/* train_rng.h — the keyed random streams of the trainers and the data
 * preparation: every draw is a function of (seed, purpose, item index), so
 * a run can be resumed or redone anywhere and give the same numbers. */
#ifndef OSP_TRAIN_RNG_H
#define OSP_TRAIN_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* What a random stream is for (part of its key); values are never reused. */
enum {
    OSP_STREAM_PERM = 1,  /* dit, vae: the epoch's permutation */
    OSP_STREAM_TIMESTEP,  /* dit: a sample's timestep */
    OSP_STREAM_NOISE,     /* dit: a sample's noise */
    OSP_STREAM_POSTERIOR, /* dit: a sample's latent draw from its moments */
    OSP_STREAM_WINDOW,    /* prepare, vae: a clip's temporal window */
    OSP_STREAM_FLIP,      /* prepare: a clip's horizontal flip */
    OSP_STREAM_VAE_NOISE, /* vae: a clip's posterior noise */
    OSP_STREAM_VAE_INIT,  /* vae: the weights of a VAE trained from scratch */
    OSP_STREAM_DISC_INIT, /* vae: the discriminator's initial weights */
};

/* The Philox key of stream `what` for item `index` (splitmix64 mixing). */
uint64_t osp_stream_seed(uint64_t seed, int what, uint64_t index);
/* 32 random bits: lane 0 of Philox block `counter` under key. */
uint32_t osp_random_u32(uint64_t key, uint64_t counter);
/* A uniform integer in [0, n), n <= 2^32, by the multiply-shift map. */
uint64_t osp_random_below(uint64_t key, uint64_t counter, uint64_t n);

/* The order samples are seen in: sample i is entry i mod n of epoch
 * i / n's permutation (Fisher-Yates keyed by the seed and the epoch), so
 * any sample index maps to its item without replaying the run. */
typedef struct osp_epoch_order {
    uint64_t seed;
    size_t n;
    int64_t epoch; /* of perm; -1 before the first */
    size_t *perm;
} osp_epoch_order;

/* n items (1 .. 2^32). */
osp_status osp_epoch_order_init(osp_epoch_order *o, size_t n, uint64_t seed);
void osp_epoch_order_free(osp_epoch_order *o);
size_t osp_epoch_order_item(osp_epoch_order *o, int64_t i);

#endif
