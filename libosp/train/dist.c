/* dist.c — see dist.h. */
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

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

osp_status osp_dist_mean_f32(const osp_dist *d, float *x, size_t n)
{
    if (d->size == 1)
        return OSP_OK;
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

osp_status osp_dist_bcast_f32(const osp_dist *d, float *x, size_t n, int root)
{
    if (d->size == 1)
        return OSP_OK;
    for (size_t done = 0; done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Bcast(x + done, piece(n, done), MPI_FLOAT, root, MPI_COMM_WORLD),
                      "broadcast"))
            return osp_error_code();
    return OSP_OK;
}

osp_status osp_dist_send_f32(const osp_dist *d, const float *x, size_t n, int to)
{
    for (size_t done = 0; d->size > 1 && done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Send(x + done, piece(n, done), MPI_FLOAT, to, 0, MPI_COMM_WORLD),
                      "send"))
            return osp_error_code();
    return OSP_OK;
}

osp_status osp_dist_recv_f32(const osp_dist *d, float *x, size_t n, int from)
{
    for (size_t done = 0; d->size > 1 && done < n; done += (size_t)piece(n, done))
        if (mpi_check(MPI_Recv(x + done, piece(n, done), MPI_FLOAT, from, 0, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE), "receive"))
            return osp_error_code();
    return OSP_OK;
}

void osp_dist_abort(const osp_dist *d, int code)
{
    if (d->mpi && d->size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}
