/* cpu.c — the CPU backend's op table. */
#include "cpu_kernels.h"

#include <cblas.h>
#include <omp.h>

static const osp_backend cpu_backend = {
    .name = "cpu",
    .device = OSP_DEVICE_CPU,
    .kernels = {
        [OSP_OP_BINARY] = cpu_binary,
        [OSP_OP_UNARY] = cpu_unary,
        [OSP_OP_UNARY_BACKWARD] = cpu_unary_backward,
        [OSP_OP_FILL] = cpu_fill,
        [OSP_OP_CAST] = cpu_cast,
        [OSP_OP_COPY] = cpu_copy,
        [OSP_OP_REDUCE] = cpu_reduce,
        [OSP_OP_REDUCE_MAX_BACKWARD] = cpu_reduce_max_backward,
        [OSP_OP_CONCAT] = cpu_concat,
    },
};

const osp_backend *osp_backend_cpu(void) { return &cpu_backend; }

void osp_set_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
