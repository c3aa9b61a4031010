/* conv_layout.h — cuDNN's best time for a 3x3x3 convolution in NCDHW and
 * in channels-last NDHWC (conv_layout.c). */
#ifndef OSP_BENCH_CONV_LAYOUT_H
#define OSP_BENCH_CONV_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

/* [1, c, t, h, w] -> c channels, pad 1: cudnnFind's fastest algorithm, ms
 * (float32 data; TF32 allowed when tf32), or -1 after a message on stderr. */
double cudnn_conv3d_best_ms(int64_t c, int64_t t, int64_t h, int64_t w, bool channels_last,
                            bool tf32);

#endif
