/* dist.h — data parallelism over MPI (and NCCL) for the trainers (spec/training.md
 * §5): `mpirun -np R osp-train ...`. A process that mpirun started (its
 * environment has OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK) joins
 * MPI_COMM_WORLD; any other is rank 0 of 1 and makes no MPI call, so a
 * plain run needs no MPI runtime. Host gradients are averaged with
 * MPI_Allreduce (MPI_IN_PLACE, MPI_FLOAT, MPI_SUM, then x 1/R); device
 * gradients with NCCL (ncclAvg), its communicator bootstrapped over MPI. */
#ifndef OSP_TRAIN_DIST_H
#define OSP_TRAIN_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct osp_dist {
    int rank, size;
    bool mpi; /* MPI was initialised */
    /* device exchanges (CUDA builds): NCCL when every rank has its own
     * GPU, else through the host; set up by the first one */
    struct osp_dist_gpu *gpu;
} osp_dist;

osp_status osp_dist_init(osp_dist *d, int *argc, char ***argv);
void osp_dist_finalize(osp_dist *d);

/* x ← the mean of x over the ranks. */
osp_status osp_dist_mean_f64(const osp_dist *d, double *x, size_t n);
/* true when flag is set on any rank. */
bool osp_dist_any(const osp_dist *d, bool flag);
/* Rank 0's values of x[0..n-1] on every rank. */
osp_status osp_dist_bcast_i64(const osp_dist *d, int64_t *x, int n);

/* On contiguous float32 tensors of any device: t ← its mean over the
 * ranks; rank root's t on every rank; t from this rank to rank `to`, and
 * its receiving end (messages between two ranks arrive in the order they
 * were sent). Host tensors go to MPI as they are. Device tensors: the mean
 * and the broadcast run on NCCL when the ranks' GPUs are all different
 * (the first such call, made by every rank, sets it up), and through a
 * host copy and MPI otherwise, as sends and receives always do. */
osp_status osp_dist_mean(const osp_dist *d, osp_tensor *t);
osp_status osp_dist_bcast(const osp_dist *d, osp_tensor *t, int root);
osp_status osp_dist_send(const osp_dist *d, osp_tensor *t, int to);
osp_status osp_dist_recv(const osp_dist *d, osp_tensor *t, int from);
/* Ends every rank with `code` (MPI_Abort), or returns when alone. */
void osp_dist_abort(const osp_dist *d, int code);

#endif
