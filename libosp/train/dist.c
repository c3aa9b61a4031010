/* dist.c — see dist.h. */
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "backend/ops.h"

static bool launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

osp_status osp_dist_init(osp_dist *d, int *argc, char ***argv)
{
    *d = (osp_dist){.rank = 0, .size = 1};
    if (!launched_by_mpirun())
        return OSP_OK;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return osp_error(OSP_ERR_RUNTIME, "MPI_Init failed");
    d->mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return OSP_OK;
}

void osp_dist_finalize(osp_dist *d)
{
    if (d->mpi)
        MPI_Finalize();
    d->mpi = false;
}

static osp_status mpi_check(int rc, const char *what)
{
    return rc == MPI_SUCCESS ? OSP_OK : osp_error(OSP_ERR_RUNTIME, "%s failed (MPI)", what);
}

/* The MPI count of the piece of x[0..n-1] that starts at `done`: MPI
 * counts are int. */
static int piece(size_t n, size_t done)
{
    return n - done > INT_MAX ? INT_MAX : (int)(n - done);
}

static osp_status mean_f32(const osp_dist *d, float *x, size_t n, int unused)
{
    (void)unused;
    for (size_t done = 0; done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Allreduce(MPI_IN_PLACE, x + done, piece(n, done), MPI_FLOAT, MPI_SUM,
                                    MPI_COMM_WORLD), "gradient all-reduce"))
            return osp_error_code();
    float inv = 1.0f / (float)d->size;
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
    return OSP_OK;
}

osp_status osp_dist_mean_f64(const osp_dist *d, double *x, size_t n)
{
    if (d->size == 1)
        return OSP_OK;
    if (mpi_check(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                  "metrics all-reduce"))
        return osp_error_code();
    for (size_t i = 0; i < n; i++)
        x[i] /= d->size;
    return OSP_OK;
}

bool osp_dist_any(const osp_dist *d, bool flag)
{
    if (d->size == 1)
        return flag;
    int v = flag;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return v != 0;
}

osp_status osp_dist_bcast_i64(const osp_dist *d, int64_t *x, int n)
{
    if (d->size == 1)
        return OSP_OK;
    return mpi_check(MPI_Bcast(x, n, MPI_INT64_T, 0, MPI_COMM_WORLD), "broadcast");
}

static osp_status bcast_f32(const osp_dist *d, float *x, size_t n, int root)
{
    (void)d; /* one signature for every exchange (on_tensor) */
    for (size_t done = 0; done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Bcast(x + done, piece(n, done), MPI_FLOAT, root, MPI_COMM_WORLD),
                      "broadcast"))
            return osp_error_code();
    return OSP_OK;
}

static osp_status send_f32(const osp_dist *d, float *x, size_t n, int to)
{
    (void)d; /* one signature for every exchange (on_tensor) */
    for (size_t done = 0; done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Send(x + done, piece(n, done), MPI_FLOAT, to, 0, MPI_COMM_WORLD),
                      "send"))
            return osp_error_code();
    return OSP_OK;
}

static osp_status recv_f32(const osp_dist *d, float *x, size_t n, int from)
{
    (void)d; /* one signature for every exchange (on_tensor) */
    for (size_t done = 0; done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Recv(x + done, piece(n, done), MPI_FLOAT, from, 0, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE), "receive"))
            return osp_error_code();
    return OSP_OK;
}

/* ---- on tensors: a host tensor's data goes to MPI as it is; a device
 * tensor's through a host copy ---- */

typedef osp_status (*f32_collective)(const osp_dist *d, float *x, size_t n, int peer);

static osp_status on_tensor(const osp_dist *d, osp_tensor *t, f32_collective op, int peer,
                            bool changes)
{
    if (d->size == 1)
        return OSP_OK;
    if (t->dtype != OSP_F32 || !osp_is_contiguous(t))
        return osp_error(OSP_ERR_RUNTIME, "MPI exchange of a tensor that is not contiguous "
                                          "float32");
    size_t n = (size_t)osp_numel(t);
    if (t->storage->device == OSP_DEVICE_CPU)
        return op(d, osp_f32(t), n, peer);
    osp_pool_push();
    osp_tensor *h = osp_to_device(t, OSP_DEVICE_CPU);
    osp_status st = h ? op(d, osp_f32(h), n, peer) : osp_error_code();
    if (!st && changes)
        st = osp_copy_into(t, h);
    osp_pool_pop();
    return st;
}

osp_status osp_dist_mean(const osp_dist *d, osp_tensor *t)
{
    return on_tensor(d, t, mean_f32, 0, true);
}

osp_status osp_dist_bcast(const osp_dist *d, osp_tensor *t, int root)
{
    return on_tensor(d, t, bcast_f32, root, d->rank != root);
}

osp_status osp_dist_send(const osp_dist *d, osp_tensor *t, int to)
{
    return on_tensor(d, t, send_f32, to, false);
}

osp_status osp_dist_recv(const osp_dist *d, osp_tensor *t, int from)
{
    return on_tensor(d, t, recv_f32, from, true);
}

void osp_dist_abort(const osp_dist *d, int code)
{
    if (d->mpi && d->size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}
