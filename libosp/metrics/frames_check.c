/* frames_check.c — see frames_check.h. */
#include "frames_check.h"

osp_status metrics_check_frames(const char *metric, const osp_tensor *x, const osp_tensor *y)
{
    char sx[96], sy[96];
    if (!x || !y)
        return osp_error(OSP_ERR_RUNTIME, "%s: no frames", metric);
    if (x->ndim != 4 || !osp_same_shape(x, y))
        return osp_error(OSP_ERR_DATA, "%s: frames %s and %s must both be [T, C, H, W]", metric,
                         osp_shape_str(x, sx, sizeof sx), osp_shape_str(y, sy, sizeof sy));
    if ((x->dtype != OSP_F32 && x->dtype != OSP_U8) || y->dtype != x->dtype ||
        !osp_is_contiguous(x) || !osp_is_contiguous(y) || x->storage->device != OSP_DEVICE_CPU ||
        y->storage->device != OSP_DEVICE_CPU)
        return osp_error(OSP_ERR_RUNTIME, "%s: frames must be contiguous host tensors, both "
                         "float32 or both u8", metric);
    return OSP_OK;
}
