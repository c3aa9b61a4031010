/* dist.c — see dist.h. */
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/log.h"
#ifdef OSP_CUDA
#include "backend/cuda/cuda.h"
#endif

static bool launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* the device-exchange state (below) */
static osp_status gpu_alloc(osp_dist *d);
static void gpu_free(osp_dist *d);

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
    return gpu_alloc(d); /* shared by copies of *d */
}

void osp_dist_finalize(osp_dist *d)
{
    gpu_free(d);
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

/* ---- device exchanges over NCCL ---- */

#ifdef OSP_CUDA
struct osp_dist_gpu {
    bool ready;          /* set up */
    osp_cuda_comm *comm; /* NULL: through the host */
};

static osp_status gpu_alloc(osp_dist *d)
{
    return (d->gpu = calloc(1, sizeof *d->gpu)) ? OSP_OK
                                                : osp_error_nomem("NCCL state", sizeof *d->gpu);
}

/* Collective: NCCL when the ranks' GPUs all differ and it loads. */
static osp_status gpu_setup(const osp_dist *d)
{
    d->gpu->ready = true;
    unsigned char mine[16] = {0}, *all = malloc((size_t)d->size * 16);
    if (!all)
        return osp_error_nomem("GPU list", (size_t)d->size * 16);
    const char *why = osp_cuda_comm_unavailable();
    if (!why && osp_cuda_device_uuid(mine))
        why = osp_error_message();
    int usable = !why, everywhere = 0;
    osp_status st = mpi_check(MPI_Allgather(mine, 16, MPI_BYTE, all, 16, MPI_BYTE,
                                            MPI_COMM_WORLD), "GPU discovery");
    if (!st)
        st = mpi_check(MPI_Allreduce(&usable, &everywhere, 1, MPI_INT, MPI_LAND,
                                     MPI_COMM_WORLD), "GPU discovery");
    bool shared = false;
    for (int i = 0; !st && i < d->size; i++)
        for (int j = 0; j < i; j++)
            shared = shared || memcmp(all + 16 * i, all + 16 * j, 16) == 0;
    free(all);
    if (st || !everywhere || shared) {
        if (!st && d->rank == 0)
            osp_log_info("device gradients are averaged through the host (%s)",
                         shared ? "ranks share a GPU" : why ? why : "NCCL is missing on a rank");
        return st;
    }
    unsigned char id[OSP_CUDA_COMM_ID_BYTES] = {0};
    int ok = d->rank != 0 || osp_cuda_comm_id(id) == OSP_OK;
    st = mpi_check(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD), "NCCL id");
    if (!st)
        st = mpi_check(MPI_Bcast(id, OSP_CUDA_COMM_ID_BYTES, MPI_BYTE, 0, MPI_COMM_WORLD),
                       "NCCL id");
    if (!st && !ok)
        st = osp_error(OSP_ERR_RUNTIME, "rank 0 could not create an NCCL id");
    if (!st && !(d->gpu->comm = osp_cuda_comm_init(id, d->rank, d->size)))
        st = osp_error_code();
    if (!st && d->rank == 0)
        osp_log_info("device gradients are averaged with NCCL over %d GPUs", d->size);
    return st;
}

/* The NCCL exchange of device tensor t, or *done = false. */
static osp_status gpu_exchange(const osp_dist *d, osp_tensor *t, bool mean, int root,
                               bool *done)
{
    *done = false;
    if (!d->gpu->ready && gpu_setup(d))
        return osp_error_code();
    if (!d->gpu->comm)
        return OSP_OK;
    *done = true;
    size_t n = (size_t)osp_numel(t);
    return mean ? osp_cuda_allreduce_mean(d->gpu->comm, osp_f32(t), n)
                : osp_cuda_broadcast(d->gpu->comm, osp_f32(t), n, root);
}

static void gpu_free(osp_dist *d)
{
    if (d->gpu)
        osp_cuda_comm_free(d->gpu->comm);
    free(d->gpu);
    d->gpu = NULL;
}
#else
static osp_status gpu_alloc(osp_dist *d)
{
    (void)d;
    return OSP_OK;
}

static osp_status gpu_exchange(const osp_dist *d, osp_tensor *t, bool mean, int root, bool *done)
{
    (void)d, (void)t, (void)mean, (void)root;
    *done = false;
    return OSP_OK;
}

static void gpu_free(osp_dist *d) { (void)d; }
#endif

/* ---- on tensors: a host tensor's data goes to MPI as it is; a device
 * tensor's to NCCL (mean, broadcast) or through a host copy ---- */

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
    bool done = false;
    if ((op == mean_f32 || op == bcast_f32) && gpu_exchange(d, t, op == mean_f32, peer, &done))
        return osp_error_code();
    if (done)
        return OSP_OK;
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
