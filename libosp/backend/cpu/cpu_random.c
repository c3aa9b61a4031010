/* cpu_random.c — random tensors from the Philox streams of core/rng.h. */
#include "cpu_kernels.h"
#include "core/rng.h"

/* in: -   out: y f32, element j = element offset + j of the seed's stream. */
osp_status cpu_randn(const osp_node *n)
{
    osp_tensor *y = n->out[0];
    return osp_rng_normal_fill(osp_f32(y), osp_numel(y), n->p.randn.seed, n->p.randn.offset);
}
