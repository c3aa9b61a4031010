/* metrics_util.c — see metrics_util.h. */
#include "metrics_util.h"
#include "backend/ops.h"

osp_status metrics_to_host(osp_tensor *t, int64_t n, double *out)
{
    if (!t)
        return osp_error_code() ? osp_error_code()
                                : osp_error(OSP_ERR_RUNTIME, "metric: missing result");
    osp_tensor *h = osp_contiguous(osp_cast(osp_to_device(t, OSP_DEVICE_CPU), OSP_F32));
    if (!h)
        return osp_error_code();
    if (osp_numel(h) != n)
        return osp_error(OSP_ERR_RUNTIME, "metric: %lld values, expected %lld",
                         (long long)osp_numel(h), (long long)n);
    const float *v = osp_f32(h);
    for (int64_t i = 0; i < n; i++)
        out[i] = v[i];
    return OSP_OK;
}
