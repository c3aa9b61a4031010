/* conv_layout.c — cuDNN's own best time for a 3x3x3 convolution (pad 1,
 * stride 1, C in = C out, batch 1) with NCDHW tensors, the layout osp's
 * backend uses, and with channels-last NDHWC tensors and filters. Issue 7
 * asks for channels-last convolutions where they are faster: these rows
 * are the measurement that decides it, taken outside osp's op (raw cuDNN,
 * buffers of its own) so that the two layouts meet under the same rules.
 *
 * The time is cudnnFindConvolutionForwardAlgorithmEx's for its fastest
 * algorithm of any determinism within a 1 GiB workspace: one run per
 * algorithm, as cuDNN measures it. */
#include "conv_layout.h"

#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>

#define WORKSPACE_BYTES ((size_t)1 << 30)
#define MAX_ALGOS 16

#define TRY(call)                                                                    \
    do {                                                                             \
        int e_ = (int)(call);                                                        \
        if (e_ != 0) {                                                               \
            fprintf(stderr, "conv_layout: %s failed (%d)\n", #call, e_);             \
            goto done;                                                               \
        }                                                                            \
    } while (0)

double cudnn_conv3d_best_ms(int64_t c, int64_t t, int64_t h, int64_t w, bool channels_last,
                            bool tf32)
{
    cudnnTensorFormat_t format = channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    int dims[5] = {1, (int)c, (int)t, (int)h, (int)w}, wdims[5] = {(int)c, (int)c, 3, 3, 3};
    int pad[3] = {1, 1, 1}, one[3] = {1, 1, 1};
    size_t elems = (size_t)(c * t * h * w), welems = (size_t)(c * c * 27);
    double best = -1;
    cudnnHandle_t dnn = NULL;
    cudnnTensorDescriptor_t xd = NULL, yd = NULL;
    cudnnFilterDescriptor_t wd = NULL;
    cudnnConvolutionDescriptor_t cd = NULL;
    void *x = NULL, *y = NULL, *wt = NULL, *ws = NULL;

    TRY(cudnnCreate(&dnn));
    TRY(cudnnCreateTensorDescriptor(&xd));
    TRY(cudnnCreateTensorDescriptor(&yd));
    TRY(cudnnCreateFilterDescriptor(&wd));
    TRY(cudnnCreateConvolutionDescriptor(&cd));
    TRY(cudnnSetTensorNdDescriptorEx(xd, format, CUDNN_DATA_FLOAT, 5, dims));
    TRY(cudnnSetTensorNdDescriptorEx(yd, format, CUDNN_DATA_FLOAT, 5, dims));
    TRY(cudnnSetFilterNdDescriptor(wd, CUDNN_DATA_FLOAT, format, 5, wdims));
    TRY(cudnnSetConvolutionNdDescriptor(cd, 3, pad, one, one, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    TRY(cudnnSetConvolutionMathType(cd, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    TRY(cudaMalloc(&x, elems * sizeof(float)));
    TRY(cudaMalloc(&y, elems * sizeof(float)));
    TRY(cudaMalloc(&wt, welems * sizeof(float)));
    TRY(cudaMalloc(&ws, WORKSPACE_BYTES));
    /* 0x3c3c3c3c is 0.0115 as a float: ordinary values, no denormals */
    TRY(cudaMemset(x, 0x3c, elems * sizeof(float)));
    TRY(cudaMemset(wt, 0x3c, welems * sizeof(float)));

    cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
    int found = 0;
    TRY(cudnnFindConvolutionForwardAlgorithmEx(dnn, xd, x, wd, wt, cd, yd, y, MAX_ALGOS, &found,
                                                perf, ws, WORKSPACE_BYTES));
    for (int i = 0; i < found; i++) /* sorted fastest first */
        if (perf[i].status == CUDNN_STATUS_SUCCESS) {
            best = perf[i].time;
            break;
        }
done:
    cudaFree(ws);
    cudaFree(wt);
    cudaFree(y);
    cudaFree(x);
    cudnnDestroyConvolutionDescriptor(cd);
    cudnnDestroyFilterDescriptor(wd);
    cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyTensorDescriptor(xd);
    if (dnn)
        cudnnDestroy(dnn);
    return best;
}
