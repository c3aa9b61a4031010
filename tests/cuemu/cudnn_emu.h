/* cudnn_emu.h — what the two files of tests/cuemu's cuDNN emulation
 * share: the descriptor structs (cudnn_desc.c sets them, cudnn.c reads
 * them), the rejection message, and the strides of a tensor format. */
#ifndef OSP_CUEMU_CUDNN_EMU_H
#define OSP_CUEMU_CUDNN_EMU_H

#include <cudnn.h>

#include <stdbool.h>
#include <stdint.h>

struct cudnnContext {
    cudaStream_t stream;
};

struct cudnnTensorStruct {
    bool set;
    cudnnDataType_t type;
    int nb, dim[CUDNN_DIM_MAX], stride[CUDNN_DIM_MAX];
};

struct cudnnFilterStruct {
    bool set;
    cudnnDataType_t type;
    cudnnTensorFormat_t format; /* NCHW: [K][C][taps] packed; NHWC: [K][taps][C] */
    int nb, dim[CUDNN_DIM_MAX];
};

struct cudnnConvolutionStruct {
    bool set;
    int n, pad[CUDNN_DIM_MAX - 2], stride[CUDNN_DIM_MAX - 2], dil[CUDNN_DIM_MAX - 2];
    cudnnConvolutionMode_t mode;
    cudnnDataType_t type;
    cudnnMathType_t math; /* CUDNN_DEFAULT_MATH (0) until set, as documented */
};

/* Prints "cuemu: cudnn: <fn>: <reason>" on stderr and returns s. */
cudnnStatus_t cudnn_emu_fail(cudnnStatus_t s, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The packed strides of nb dims in a format: NCHW, or NHWC (channels
 * innermost, then the spatial dims in order, then the batch). */
void cudnn_emu_format_strides(cudnnTensorFormat_t format, int nb, const int *dim,
                              int64_t *stride);

#endif
