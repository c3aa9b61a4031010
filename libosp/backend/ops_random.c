/* ops_random.c — the frontend of OSP_OP_RANDN (ops_random.h). */
#include "ops_random.h"
#include "ops_util.h"

#include "core/checked.h"

osp_tensor *osp_randn(int ndim, const int64_t *shape, osp_device device, uint64_t seed,
                      uint64_t offset)
{
    int64_t count;
    /* A bad shape is reported by osp_tensor_new below. */
    if (ndim >= 0 && ndim <= OSP_MAX_DIMS && osp_shape_numel(shape, ndim, &count) && count > 0 &&
        (uint64_t)count - 1 > UINT64_MAX - offset) {
        osp_error(OSP_ERR_RUNTIME, "randn: %lld elements from offset %llu run past 2^64",
                  (long long)count, (unsigned long long)offset);
        return NULL;
    }
    osp_node n = ops_node(OSP_OP_RANDN);
    n.n_out = 1;
    n.out[0] = osp_tensor_new(OSP_F32, ndim, shape, device);
    if (!n.out[0])
        return NULL;
    n.p.randn.seed = seed;
    n.p.randn.offset = offset;
    return osp_run(&n);
}
