/* zero.h — the optimizer state of a data-parallel run sharded over its
 * ranks, ZeRO stage 1 (`osp-train dit --shard-optimizer`). Each trained
 * tensor has one owner: the tensors are cut, in order, into R runs of
 * about 1/R of the elements each. Only the owner keeps the tensor's AdamW
 * moments and applies its update, then broadcasts the new values; the
 * gradients are still averaged on every rank (MPI_Allreduce), so the norm,
 * the clipping and every update are those of the unsharded run and the
 * weights stay identical on all ranks, bit for bit. A rank holds 2/R of
 * the moments instead of both whole copies.
 *
 * Checkpoints are the unsharded run's files: while rank 0 writes
 * optimizer.safetensors, each other rank sends it the moments it holds,
 * one tensor at a time in file order (osp_zero_send_moments), and rank 0
 * writes each as it arrives (the moment source of osp_zero_moments), so
 * no rank ever holds the whole state. Resuming, each rank reads only its
 * own moments; a run may change --shard-optimizer between resumes. */
#ifndef OSP_TRAIN_ZERO_H
#define OSP_TRAIN_ZERO_H

#include <stdbool.h>
#include <stddef.h>

#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/dist.h"

typedef struct osp_zero {
    const osp_dist *dist;
    size_t n;
    int *owner; /* the owner rank of each tensor */
    bool *held; /* owner[i] == this rank: the mask for osp_adamw_init_held */
    osp_tensor *const *params;
    /* rank 0 writing a checkpoint: the next file entry, the one received */
    int next;
    osp_tensor *received;
} osp_zero;

/* Owners for params[0..n-1] (kept, not copied) over d's ranks. */
osp_status osp_zero_init(osp_zero *z, const osp_dist *d, osp_tensor *const *params, size_t n);
void osp_zero_free(osp_zero *z);

/* After an optimizer step, on every rank: each tensor from its owner. */
osp_status osp_zero_share(const osp_zero *z);

/* Rank 0: the source of the moments it lacks, for osp_checkpoint.moments
 * (valid while z is); after the checkpoint, _done frees the last tensor
 * received. */
osp_moment_source osp_zero_moments(osp_zero *z);
void osp_zero_moments_done(osp_zero *z);
/* The other ranks, while rank 0 writes a checkpoint: the moments of opt
 * (initialised with z->held), in file order. */
osp_status osp_zero_send_moments(const osp_zero *z, const osp_adamw *opt);

#endif
