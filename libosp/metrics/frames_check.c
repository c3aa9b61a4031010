/* frames_check.c — see frames_check.h. */
#include "frames_check.h"

/* Each [H, W] plane in rows of W (frames and channels may be strided). */
static bool planes_contiguous(const osp_tensor *t)
{
    return t->stride[3] == 1 && (t->stride[2] == t->shape[3] || t->shape[2] == 1);
}

osp_status metrics_check_frames(const char *metric, const osp_tensor *x, const osp_tensor *y)
{
    char sx[96], sy[96];
    if (!x || !y)
        return osp_error(OSP_ERR_RUNTIME, "%s: no frames", metric);
    if (x->ndim != 4 || !osp_same_shape(x, y))
        return osp_error(OSP_ERR_DATA, "%s: frames %s and %s must both be [T, C, H, W]", metric,
                         osp_shape_str(x, sx, sizeof sx), osp_shape_str(y, sy, sizeof sy));
    if ((x->dtype != OSP_F32 && x->dtype != OSP_U8) || y->dtype != x->dtype ||
        !planes_contiguous(x) || !planes_contiguous(y) || x->storage->device != OSP_DEVICE_CPU ||
        y->storage->device != OSP_DEVICE_CPU)
        return osp_error(OSP_ERR_RUNTIME, "%s: frames must be host tensors with contiguous "
                         "planes, both float32 or both u8", metric);
    return OSP_OK;
}
