/* cpu_blas.h — the CPU backend's matrix product (OpenBLAS sgemm, row-major)
 * and the guard that keeps OpenBLAS single-threaded inside OpenMP regions
 * (both in cpu_linalg.c). */
#ifndef OSP_CPU_BLAS_H
#define OSP_CPU_BLAS_H

#include <stdbool.h>
#include <stdint.h>

/* C[m, n] = alpha · op(A) · op(B) + beta · C, all row-major; op(A) is A
 * [m, k] or, with trans_a, A stored as [k, m]; likewise B [k, n] or [n, k].
 * Any of m, n, k may be 0. beta = 0 overwrites C whatever it held (NaN
 * included). n, k and the leading dimensions must fit a BLAS int (the op
 * frontends check); m may exceed it (the product is split by rows). */
void cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc);

/* OpenBLAS's pthreads build starts its own thread pool on every call from
 * any thread, so sgemm calls made from inside an OpenMP parallel region
 * would oversubscribe the cores. Kernels that parallelise over independent
 * products themselves bracket the region with these: begin makes OpenBLAS
 * single-threaded and returns what end needs to restore it. Drivers call
 * ops from one thread (core/tensor.h), so the global setting is safe. */
int cpu_blas_serial_begin(void);
void cpu_blas_serial_end(int saved);

#endif
