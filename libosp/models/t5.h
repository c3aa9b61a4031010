/* t5.h — the T5 v1.1 text encoder (HF T5EncoderModel; spec/t5.md §4-7).
 *
 * ids [B, L] --embedding--> x; num_layers blocks of (RMS norm, multi-head
 * self-attention with a relative position bias and NO 1/sqrt(d_kv) scale,
 * residual; RMS norm, gated tanh-GELU FFN, residual); final RMS norm ->
 * last_hidden_state [B, L, d_model], float32. The bias table lives in
 * block 0 and is shared by every block; masked keys get -FLT_MAX added
 * (padded queries are computed like any other row). Any config of the
 * family is read from config.json (the XXL release: 24 layers, d_model
 * 4096, 64 heads of 64, d_ff 10240).
 *
 * Weights: a model folder as io/model.h opens it (model.safetensors, a
 * sharded set with its index, or PyTorch pytorch_model*.bin shards). The
 * embedding is read from shared.weight or encoder.embed_tokens.weight,
 * whichever exists; decoder.* and lm_head.* keys are ignored.
 *
 * Memory: weights keep their stored dtype. On the CPU each one is a view of
 * the mmapped file (nothing is copied at load) and every op widens bf16/f16
 * weights to float32 as it uses them, one at a time, so XXL in bf16 needs
 * its 9.5 GB of weights plus one widened matrix (at most d_ff x d_model x
 * 4 bytes = 168 MB; the embedding table, 526 MB, once per forward) plus the
 * activations of one block. Inference only: the parameters are not meant
 * for training (the reference never trains T5). */
#ifndef OSP_T5_H
#define OSP_T5_H

#include <stdint.h>

#include "core/tensor.h"
#include "io/config.h"

typedef struct osp_t5_config {
    int64_t vocab_size, d_model, d_kv, num_heads, d_ff, num_layers;
    int64_t num_buckets, max_distance; /* relative_attention_* */
    float eps;                         /* layer_norm_epsilon */
} osp_t5_config;

/* Reads a T5 config.json (HF T5Config defaults for absent keys) and checks
 * it is an encoder this implementation builds: gated FFN with gelu_new,
 * sizes in range. Errors name the file and key. */
osp_status osp_t5_config_parse(const osp_config *c, osp_t5_config *out);

/* The bidirectional relative position bucket of key_pos - query_pos
 * (spec §6.1), evaluated in float32 as the reference does. */
int64_t osp_t5_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance);

typedef struct osp_t5 osp_t5;

osp_t5 *osp_t5_load(const char *dir, osp_device device);
void osp_t5_free(osp_t5 *t5);
const osp_t5_config *osp_t5_get_config(const osp_t5 *t5);

/* ids: i32/i64 [B, L] in [0, vocab_size); mask: any dtype [B, L] holding
 * 0 (padding) or 1 (a real token). Both host tensors or on the model's
 * device. Returns last_hidden_state f32 [B, L, d_model] on the model's
 * device (pool-owned). */
osp_tensor *osp_t5_run(osp_t5 *t5, osp_tensor *ids, osp_tensor *mask);

/* The same with debug taps: when block_out is not NULL, block_out[i]
 * receives the residual stream after block i (num_layers entries, [B, L,
 * d_model], pool-owned like the result). */
osp_tensor *osp_t5_forward(osp_t5 *t5, osp_tensor *ids, osp_tensor *mask,
                           osp_tensor **block_out);

/* The relative position bias alone, [1, num_heads, Lq, Lk] (bias of query
 * i and key j at [0, h, i, j]; no mask added). */
osp_tensor *osp_t5_position_bias(osp_t5 *t5, int64_t Lq, int64_t Lk);

#endif
