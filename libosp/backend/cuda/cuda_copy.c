/* cuda_copy.c — the COPY op on the CUDA backend: host->device,
 * device->host and device->device, either side strided (a COPY may write
 * through a view into a larger tensor). A contiguous copy of matching
 * dtype is one cudaMemcpyAsync; otherwise the strided side is gathered or
 * scattered on the device (or by osp_tensor_copy_into on the host). Only
 * a copy to the host waits for the stream. */
#include "cuda_kernels.h"
#include "cuda_util.h"

/* A contiguous temporary tensor (not in any pool) of t's shape and dtype. */
static osp_tensor *temp_like(const osp_tensor *t, osp_device device)
{
    return osp_pool_take(osp_tensor_new(t->dtype, t->ndim, t->shape, device));
}

static osp_status to_device(const osp_node *n, osp_tensor *dst, const osp_tensor *src)
{
    osp_tensor *hsrc = NULL, *ddst = NULL;
    osp_status st = OSP_OK;
    if (!osp_is_contiguous(src)) { /* gather on the host first */
        hsrc = temp_like(src, OSP_DEVICE_CPU);
        st = hsrc ? osp_tensor_copy_into(hsrc, src) : osp_error_code();
        src = hsrc;
    }
    bool direct = st == OSP_OK && osp_is_contiguous(dst) && dst->dtype == src->dtype;
    if (st == OSP_OK && !direct && !(ddst = temp_like(src, OSP_DEVICE_CUDA)))
        st = osp_error_code();
    /* A pageable source is staged by the driver before the call returns,
     * so the host buffer may be freed right after. */
    if (st == OSP_OK)
        st = cu_check(n, cudaMemcpyAsync(cu_ptr(direct ? dst : ddst), osp_data(src),
                                         osp_nbytes(src), cudaMemcpyHostToDevice, cu_stream()),
                      "copy to the device");
    if (st == OSP_OK && !direct)
        st = cuda_copy_strided(n, dst, ddst);
    osp_release(hsrc);
    osp_release(ddst);
    return st;
}

static osp_status to_host(const osp_node *n, osp_tensor *dst, const osp_tensor *src)
{
    osp_tensor *dsrc = NULL, *hdst = NULL;
    osp_status st = OSP_OK;
    if (!osp_is_contiguous(src)) { /* gather on the device first */
        dsrc = temp_like(src, OSP_DEVICE_CUDA);
        st = dsrc ? cuda_copy_strided(n, dsrc, src) : osp_error_code();
        src = dsrc;
    }
    bool direct = st == OSP_OK && osp_is_contiguous(dst) && dst->dtype == src->dtype;
    if (st == OSP_OK && !direct && !(hdst = temp_like(src, OSP_DEVICE_CPU)))
        st = osp_error_code();
    if (st == OSP_OK)
        st = cu_check(n, cudaMemcpyAsync(osp_data(direct ? dst : hdst), cu_ptr(src),
                                         osp_nbytes(src), cudaMemcpyDeviceToHost, cu_stream()),
                      "copy to the host");
    if (st == OSP_OK)
        st = cu_check(n, cudaStreamSynchronize(cu_stream()), "copy to the host");
    if (st == OSP_OK && !direct)
        st = osp_tensor_copy_into(dst, hdst);
    osp_release(dsrc);
    osp_release(hdst);
    return st;
}

/* in: x (any device, may be strided)   out: y (either device, may be strided) */
osp_status cuda_copy(const osp_node *n)
{
    osp_tensor *dst = n->out[0];
    const osp_tensor *src = n->in[0];
    if (!osp_same_shape(dst, src))
        return cu_fail(n, OSP_ERR_RUNTIME, "copy", "shapes differ");
    if (osp_numel(src) == 0)
        return OSP_OK;
    bool src_dev = src->storage->device == OSP_DEVICE_CUDA;
    bool dst_dev = dst->storage->device == OSP_DEVICE_CUDA;
    if (src_dev && dst_dev) {
        if (osp_is_contiguous(src) && osp_is_contiguous(dst) && src->dtype == dst->dtype)
            return cu_check(n, cudaMemcpyAsync(cu_ptr(dst), cu_ptr(src), osp_nbytes(src),
                                               cudaMemcpyDeviceToDevice, cu_stream()),
                            "device copy");
        return cuda_copy_strided(n, dst, src);
    }
    if (dst_dev)
        return to_device(n, dst, src);
    if (src_dev)
        return to_host(n, dst, src);
    return osp_tensor_copy_into(dst, src);
}
