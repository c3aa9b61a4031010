/* ops_embed_bwd.h — frontend of the embedding backward op (used by
 * train/grad_embed.c). */
#ifndef OSP_OPS_EMBED_BWD_H
#define OSP_OPS_EMBED_BWD_H

#include "ops.h"

/* The gradient of an embedding table with `rows` rows: gy [*ids, D]
 * scatter-added into a zero [rows, D] at the rows named by ids. */
osp_tensor *osp_embedding_backward(osp_tensor *gy, osp_tensor *ids, int64_t rows);

#endif
