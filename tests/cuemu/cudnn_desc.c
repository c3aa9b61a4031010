/* cudnn_desc.c — the handle and descriptor calls of tests/cuemu's cuDNN
 * emulation (see cudnn.c): creation, destruction, and the checks cuDNN
 * makes when a tensor, filter or convolution is described. */
#include "cudnn_emu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cudnnStatus_t cudnn_emu_fail(cudnnStatus_t s, const char *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuemu: cudnn: %s: ", fn);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return s;
}

const char *cudnnGetErrorString(cudnnStatus_t status)
{
    switch ((int)status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED:
        return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    default: return "CUDNN_STATUS_UNKNOWN"; /* none the emulation returns */
    }
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    if (!handle)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__, "NULL handle pointer");
    *handle = calloc(1, sizeof **handle);
    return *handle ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;
}

/* Any stream: the emulated runtime runs everything at once. */
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    free(handle);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId)
{
    if (!handle)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__, "NULL handle");
    handle->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
}

/* Creation hands out an unset descriptor (using it unset is a BAD_PARAM
 * later). Destroying NULL is accepted, like free(): the backend's error
 * paths destroy descriptors that were never created. */
#define CREATE_DESC(out)                                                                           \
    do {                                                                                           \
        if (!(out))                                                                                \
            return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__, "NULL descriptor pointer");    \
        *(out) = calloc(1, sizeof **(out));                                                        \
        return *(out) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;                          \
    } while (0)

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d)
{
    CREATE_DESC(d);
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
    CREATE_DESC(d);
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    CREATE_DESC(d);
}
#define DESTROY_DESC(d) return free(d), CUDNN_STATUS_SUCCESS

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d)
{
    DESTROY_DESC(d);
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
    DESTROY_DESC(d);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
    DESTROY_DESC(d);
}

static bool valid_type(cudnnDataType_t t)
{
    return t >= 0 && t <= CUDNN_DATA_COMPLEX_FP64;
}

/* nbDims: the documentation advises against fewer than 3 dims (filters
 * need 3) and caps them at CUDNN_DIM_MAX. */
static cudnnStatus_t check_dims(const char *fn, const void *desc, cudnnDataType_t type, int nb,
                                const int *dim)
{
    if (!desc || !dim)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor or dims");
    if (!valid_type(type))
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid data type %d", (int)type);
    if (nb < 3)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "nbDims %d < 3", nb);
    if (nb > CUDNN_DIM_MAX)
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "nbDims %d > CUDNN_DIM_MAX", nb);
    for (int i = 0; i < nb; i++)
        if (dim[i] <= 0)
            return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "dim[%d] = %d is not positive", i,
                                  dim[i]);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t tensorDesc,
                                         cudnnDataType_t dataType, int nbDims,
                                         const int dimA[], const int strideA[])
{
    cudnnStatus_t s = check_dims(__func__, tensorDesc, dataType, nbDims, dimA);
    if (s)
        return s;
    if (!strideA)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__, "NULL strides");
    int64_t last = 0; /* the largest element offset: the 2^31 element limit */
    for (int i = 0; i < nbDims; i++) {
        if (strideA[i] <= 0)
            return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__,
                                  "stride[%d] = %d is not positive", i, strideA[i]);
        last += (int64_t)(dimA[i] - 1) * strideA[i];
    }
    if (last >= INT32_MAX)
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, __func__,
                              "the tensor spans 2^31 elements or more");
    *tensorDesc = (struct cudnnTensorStruct){.set = true, .type = dataType, .nb = nbDims};
    memcpy(tensorDesc->dim, dimA, (size_t)nbDims * sizeof *dimA);
    memcpy(tensorDesc->stride, strideA, (size_t)nbDims * sizeof *strideA);
    return CUDNN_STATUS_SUCCESS;
}

void cudnn_emu_format_strides(cudnnTensorFormat_t format, int nb, const int *dim,
                              int64_t *stride)
{
    int64_t step = 1;
    if (format == CUDNN_TENSOR_NHWC) {
        stride[1] = 1;
        step = dim[1];
    }
    for (int i = nb - 1; i >= 0; i--) {
        if (format == CUDNN_TENSOR_NHWC && i == 1)
            continue;
        stride[i] = step;
        step *= dim[i];
    }
}

static cudnnStatus_t check_format(const char *fn, cudnnTensorFormat_t format)
{
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
        return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "format %d: NCHW or NHWC only",
                              (int)format);
    return CUDNN_STATUS_SUCCESS;
}

/* The dims in the order a format gives them, with strides for that layout
 * (cudnn's documented reading of the Ex form: dims are always N, C, D, H,
 * W; the format says how they lie in memory). */
cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t tensorDesc,
                                           cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                           int nbDims, const int dimA[])
{
    cudnnStatus_t s = check_dims(__func__, tensorDesc, dataType, nbDims, dimA);
    if (s || (s = check_format(__func__, format)))
        return s;
    int64_t st[CUDNN_DIM_MAX];
    cudnn_emu_format_strides(format, nbDims, dimA, st);
    int stride[CUDNN_DIM_MAX];
    for (int i = 0; i < nbDims; i++) {
        if (st[i] > INT32_MAX)
            return cudnn_emu_fail(CUDNN_STATUS_NOT_SUPPORTED, __func__,
                                  "the tensor spans 2^31 elements or more");
        stride[i] = (int)st[i];
    }
    return cudnnSetTensorNdDescriptor(tensorDesc, dataType, nbDims, dimA, stride);
}

/* NCHW (KCRS... packed) or NHWC (KRS...C packed) filters. */
cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int nbDims, const int filterDimA[])
{
    cudnnStatus_t s = check_dims(__func__, filterDesc, dataType, nbDims, filterDimA);
    if (s || (s = check_format(__func__, format)))
        return s;
    *filterDesc = (struct cudnnFilterStruct){
        .set = true, .type = dataType, .format = format, .nb = nbDims};
    memcpy(filterDesc->dim, filterDimA, (size_t)nbDims * sizeof *filterDimA);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t convDesc,
                                              int arrayLength, const int padA[],
                                              const int filterStrideA[], const int dilationA[],
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType)
{
    const char *fn = __func__;
    if (!convDesc || !padA || !filterStrideA || !dilationA)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn,
                              "NULL descriptor, pad, stride or dilation");
    if (arrayLength < 0 || arrayLength > CUDNN_DIM_MAX - 2)
        return cudnn_emu_fail(arrayLength < 0 ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_NOT_SUPPORTED,
                              fn, "arrayLength %d outside [0, CUDNN_DIM_MAX - 2]", arrayLength);
    if ((mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) || !valid_type(computeType))
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid mode %d or compute type %d",
                              (int)mode, (int)computeType);
    for (int i = 0; i < arrayLength; i++)
        if (padA[i] < 0 || filterStrideA[i] <= 0 || dilationA[i] <= 0)
            return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, fn,
                                  "dim %d: pad %d, stride %d, dilation %d", i, padA[i],
                                  filterStrideA[i], dilationA[i]);
    cudnnMathType_t math = convDesc->math; /* Set keeps the math type */
    *convDesc = (struct cudnnConvolutionStruct){
        .set = true, .n = arrayLength, .mode = mode, .type = computeType, .math = math};
    for (int i = 0; i < arrayLength; i++) {
        convDesc->pad[i] = padA[i];
        convDesc->stride[i] = filterStrideA[i];
        convDesc->dil[i] = dilationA[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType)
{
    if (!convDesc)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__, "NULL descriptor");
    if (mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH)
        return cudnn_emu_fail(CUDNN_STATUS_BAD_PARAM, __func__, "invalid math type %d",
                              (int)mathType);
    convDesc->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}
