/* cuda_nccl.c — NCCL collectives for data-parallel training (cuda.h).
 * libnccl.so.2 is opened on first use, so the tools run on machines that
 * lack it and only a multi-GPU training run needs it. */
#include "cuda.h"
#include "cuda_util.h"

#include <dlfcn.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(OSP_CUDA_COMM_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "NCCL unique id size");

static struct {
    bool tried, loaded;
    char why[200];
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t,
                               ncclComm_t, cudaStream_t);
    ncclResult_t (*broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t,
                              cudaStream_t);
    const char *(*error_string)(ncclResult_t);
    ncclResult_t (*get_version)(int *);
} nccl;

/* ncclAvg, which the gradient average uses, came with NCCL 2.10. */
#define MIN_NCCL_VERSION 21000

struct osp_cuda_comm {
    ncclComm_t comm;
};

static bool load(void)
{
    if (nccl.tried)
        return nccl.loaded;
    nccl.tried = true;
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(nccl.why, sizeof nccl.why, "%s", dlerror());
        return false;
    }
    /* object-to-function pointer casts through memcpy (ISO C) */
#define SYM(field, name)                                                      \
    do {                                                                      \
        void *p_ = dlsym(h, name);                                            \
        if (!p_) {                                                            \
            snprintf(nccl.why, sizeof nccl.why, "libnccl.so.2 lacks %s", name); \
            return false;                                                     \
        }                                                                     \
        memcpy(&nccl.field, &p_, sizeof p_);                                  \
    } while (0)
    SYM(get_unique_id, "ncclGetUniqueId");
    SYM(comm_init_rank, "ncclCommInitRank");
    SYM(comm_destroy, "ncclCommDestroy");
    SYM(all_reduce, "ncclAllReduce");
    SYM(broadcast, "ncclBroadcast");
    SYM(error_string, "ncclGetErrorString");
    SYM(get_version, "ncclGetVersion");
#undef SYM
    int version = 0;
    if (nccl.get_version(&version) != ncclSuccess || version < MIN_NCCL_VERSION) {
        snprintf(nccl.why, sizeof nccl.why, "libnccl.so.2 is version %d, older than 2.10 (%d)",
                 version, MIN_NCCL_VERSION);
        return false;
    }
    return nccl.loaded = true;
}

static osp_status nccl_check(ncclResult_t r, const char *what)
{
    return r == ncclSuccess ? OSP_OK
                            : osp_error(OSP_ERR_RUNTIME, "NCCL %s: %s", what,
                                        nccl.error_string(r));
}

const char *osp_cuda_comm_unavailable(void)
{
    if (!osp_cuda_available())
        return osp_cuda_unavailable_reason();
    return load() ? NULL : nccl.why;
}

osp_status osp_cuda_comm_id(unsigned char id[OSP_CUDA_COMM_ID_BYTES])
{
    if (osp_cuda_comm_unavailable())
        return osp_error(OSP_ERR_RUNTIME, "NCCL: %s", osp_cuda_comm_unavailable());
    ncclUniqueId u = {{0}};
    osp_status st = nccl_check(nccl.get_unique_id(&u), "unique id");
    memcpy(id, u.internal, sizeof u.internal);
    return st;
}

osp_cuda_comm *osp_cuda_comm_init(const unsigned char id[OSP_CUDA_COMM_ID_BYTES], int rank,
                                  int size)
{
    if (osp_cuda_comm_unavailable()) {
        osp_error(OSP_ERR_RUNTIME, "NCCL: %s", osp_cuda_comm_unavailable());
        return NULL;
    }
    osp_cuda_comm *c = calloc(1, sizeof *c);
    ncclUniqueId u;
    memcpy(u.internal, id, sizeof u.internal);
    if (!c) {
        osp_error_nomem("NCCL communicator", sizeof *c);
        return NULL;
    }
    if (nccl_check(nccl.comm_init_rank(&c->comm, size, u, rank), "communicator")) {
        free(c);
        return NULL;
    }
    return c;
}

osp_status osp_cuda_allreduce_mean(osp_cuda_comm *c, float *x, size_t n)
{
    return nccl_check(nccl.all_reduce(x, x, n, ncclFloat32, ncclAvg, c->comm, cu_stream()),
                      "all-reduce");
}

osp_status osp_cuda_broadcast(osp_cuda_comm *c, float *x, size_t n, int root)
{
    return nccl_check(nccl.broadcast(x, x, n, ncclFloat32, root, c->comm, cu_stream()),
                      "broadcast");
}

void osp_cuda_comm_free(osp_cuda_comm *c)
{
    if (c && nccl.loaded)
        nccl.comm_destroy(c->comm);
    free(c);
}

osp_status osp_cuda_device_uuid(unsigned char uuid[16])
{
    int dev = 0;
    struct cudaDeviceProp prop;
    if (!osp_cuda_available())
        return osp_error(OSP_ERR_RUNTIME, "no usable CUDA device (%s)",
                         osp_cuda_unavailable_reason());
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess)
        return osp_error(OSP_ERR_RUNTIME, "cannot read the GPU's properties");
    memcpy(uuid, prop.uuid.bytes, 16);
    return OSP_OK;
}
