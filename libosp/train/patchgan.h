/* patchgan.h — the VAE trainer's discriminator (spec/training.md §3.2):
 * NLayerDiscriminator(in, ndf, n_layers) applied to single frames,
 *
 *   main.0   conv in→ndf k4 s2 p1 (+bias), LeakyReLU 0.2
 *   for n = 1 .. n_layers:  (stride 2 while n < n_layers, then 1)
 *   main.{3n−1}  conv → ndf·min(2^n, 8) k4 p1, no bias
 *   main.{3n}    BatchNorm2d (training mode: batch statistics; the running
 *                statistics updated outside the tape, momentum 0.1,
 *                unbiased variance), LeakyReLU 0.2
 *   main.{3n_layers+2}  conv → 1 k4 s1 p1 (+bias)
 *
 * (n_layers 3: indices 0, 2, 3, 5, 6, 8, 9, 11; a 256² frame gives 30×30
 * logits) and the hinge losses. Parameters are named as in the state dict
 * without the `loss.discriminator.` prefix: main.0.weight, main.0.bias,
 * main.2.weight, main.3.weight, main.3.bias, main.3.running_mean, ... */
#ifndef OSP_TRAIN_PATCHGAN_H
#define OSP_TRAIN_PATCHGAN_H

#include <stdint.h>

#include "nn/params.h"

typedef struct osp_patchgan osp_patchgan;

/* A fresh discriminator initialised as the reference does: conv weights
 * N(0, 0.02), BatchNorm weights N(1, 0.02), BatchNorm biases 0, conv
 * biases U(−1/√fan_in, 1/√fan_in), running mean 0 and variance 1; the
 * draws come from Philox with `seed`. */
osp_patchgan *osp_patchgan_new(int64_t in_channels, int64_t ndf, int n_layers, uint64_t seed);
/* One written by osp_patchgan_save (or converted from a reference state
 * dict with the prefix removed): widths and depth from the shapes;
 * OSP_ERR_DATA naming the file and tensor on anything missing or
 * misshapen. */
osp_patchgan *osp_patchgan_load(const char *path);
/* Every tensor, running statistics included, as one safetensors file
 * (written to a temporary name and renamed). */
osp_status osp_patchgan_save(const osp_patchgan *d, const char *path);
void osp_patchgan_free(osp_patchgan *d);

/* Every tensor by name (checkpoint order), and the trainable ones: conv
 * weights and biases, BatchNorm weights and biases (in that order of
 * registration; they require grad). */
const osp_params *osp_patchgan_params(const osp_patchgan *d);
size_t osp_patchgan_trainable(const osp_patchgan *d, osp_tensor *const **tensors,
                              const char *const **names);

/* Logits [M, 1, h, w] of frames [M, C, H, W], recorded on the tape when it
 * is on; updates the running statistics. */
osp_tensor *osp_patchgan_forward(osp_patchgan *d, osp_tensor *frames);

/* The reference's hinge losses on logits: −mean(fake) for the generator,
 * 0.5·(mean(relu(1 − real)) + mean(relu(1 + fake))) for the discriminator
 * (scalars, on the tape). */
osp_tensor *osp_patchgan_g_loss(osp_tensor *fake_logits);
osp_tensor *osp_patchgan_d_loss(osp_tensor *real_logits, osp_tensor *fake_logits);

#endif
