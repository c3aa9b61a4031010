/* ops_random.h — random tensors as ops (the streams are core/rng.h's). */
#ifndef OSP_OPS_RANDOM_H
#define OSP_OPS_RANDOM_H

#include "ops.h"

/* A new f32 tensor of standard normals on `device`: element j (row-major)
 * is element offset + j of the seed's Philox stream, so any split of a
 * tensor into row-major ranges with matching offsets gives the same bits.
 * Fails when the range runs past 2^64 elements. Runs as OSP_OP_RANDN. */
osp_tensor *osp_randn(int ndim, const int64_t *shape, osp_device device, uint64_t seed,
                      uint64_t offset);

#endif
