/* cpu_shape.c — concatenation along an axis. */
#include "cpu_kernels.h"

#include <string.h>

osp_status cpu_concat(const osp_node *n)
{
    const osp_tensor *y = n->out[0];
    int axis = n->p.concat.axis;
    /* outer = product of dims before axis; each input contributes a
     * contiguous block of shape[axis] * inner elements per outer index. */
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= y->shape[d];
    for (int d = axis + 1; d < y->ndim; d++)
        inner *= y->shape[d];
    float *py = osp_f32(y);
    int64_t row = y->shape[axis] * inner;
#pragma omp parallel for schedule(static) if (outer > 16)
    for (int64_t o = 0; o < outer; o++) {
        int64_t at = 0;
        for (int i = 0; i < n->n_in; i++) {
            int64_t block = n->in[i]->shape[axis] * inner;
            memcpy(py + o * row + at, osp_f32(n->in[i]) + o * block, (size_t)block * sizeof(float));
            at += block;
        }
    }
    return OSP_OK;
}
