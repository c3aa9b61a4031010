/* columns.cuh — sums down the columns of a [K1, R, K2] problem: y[k1, col]
 * = Σ_r value(k1, r, col) / divisor, for reductions over an outer run of
 * axes whose kept inner dims are contiguous (a bias gradient sums rows, a
 * broadcast or per-sample affine gradient sums each sample's rows).
 *
 * One thread block per column tile would read each column with stride K2,
 * a memory sector per element. Here a block's 32 threads in x take 32
 * adjacent columns (coalesced reads), its 8 rows of threads and a chunk of
 * R per block in y share the rows; each block writes the double sums of
 * its chunk, and a second kernel adds the chunks in order: the same result
 * in every run, no atomics (with one chunk the first kernel writes y
 * itself: no scratch). `value` is a functor, __device__ double
 * operator()(k1, r, col). */
#ifndef OSP_KERNELS_COLUMNS_CUH
#define OSP_KERNELS_COLUMNS_CUH

#include "common.cuh"

#define COL_TILE 32
#define COL_ROWS 8

/* part: the chunks' sums; NULL when there is one chunk: y = sum / divisor. */
template <typename V>
__global__ void column_partials_kernel(V value, double *part, float *y, double divisor,
                                       int64_t R, int64_t K2, int64_t tiles, int64_t chunk)
{
    __shared__ double acc[COL_ROWS][COL_TILE];
    int64_t k1 = blockIdx.x / tiles, col = blockIdx.x % tiles * COL_TILE + threadIdx.x;
    int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < R ? r0 + chunk : R;
    double s = 0;
    if (col < K2)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += COL_ROWS)
            s += value(k1, r, col);
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && col < K2) {
        for (int i = 1; i < COL_ROWS; i++)
            s += acc[i][threadIdx.x];
        if (part)
            part[(k1 * gridDim.y + blockIdx.y) * K2 + col] = s;
        else
            y[k1 * K2 + col] = (float)(s / divisor);
    }
}

static __global__ void column_total_kernel(const double *part, float *y, int64_t K1, int64_t K2,
                                           int64_t chunks, double divisor)
{
    CU_FOR(o, K1 * K2) {
        int64_t k1 = o / K2, col = o % K2;
        double s = 0;
        for (int64_t c = 0; c < chunks; c++)
            s += part[(k1 * chunks + c) * K2 + col];
        y[o] = (float)(s / divisor);
    }
}

/* The plain value: x[k1, r, col] of a contiguous [K1, R, K2] array. */
struct column_of {
    const float *x;
    int64_t R, K2;
    __device__ double operator()(int64_t k1, int64_t r, int64_t col) const
    {
        return x[(k1 * R + r) * K2 + col];
    }
};

/* Whether cu_column_sums takes a [K1, *, K2] problem: its column tiles
 * must fit the grid's x dimension. */
static inline bool cu_column_sums_fit(int64_t K1, int64_t K2)
{
    return K1 * ((K2 + COL_TILE - 1) / COL_TILE) <= INT32_MAX;
}

/* y [K1, K2] (device) = the column sums / divisor; R >= 1. */
template <typename V>
static osp_status cu_column_sums(const osp_node *n, V value, float *y, int64_t K1, int64_t R,
                                 int64_t K2, double divisor)
{
    int64_t tiles = (K2 + COL_TILE - 1) / COL_TILE, columns = K1 * tiles;
    if (columns == 0)
        return OSP_OK;
    /* about 1024 blocks, chunks of at least 64 rows, at most 65535 */
    int64_t chunks = (1024 + columns - 1) / columns, most = (R + 63) / 64;
    chunks = chunks < most ? chunks : most;
    chunks = chunks < 65535 ? chunks : 65535;
    int64_t chunk = (R + chunks - 1) / chunks;
    chunks = (R + chunk - 1) / chunk;
    if (!cu_column_sums_fit(K1, K2))
        return cu_fail(n, OSP_ERR_RUNTIME, "column sums", "too many columns");
    osp_storage *part = NULL;
    if (chunks > 1 && !(part = cu_scratch((size_t)(K1 * chunks * K2) * sizeof(double))))
        return osp_error_code();
    column_partials_kernel<<<dim3((unsigned)columns, (unsigned)chunks), dim3(COL_TILE, COL_ROWS),
                             0, cu_stream()>>>(value, part ? (double *)part->data : NULL, y,
                                               divisor, R, K2, tiles, chunk);
    osp_status st = CU_LAUNCHED(n, "column partial sums kernel");
    if (st == OSP_OK && part) {
        column_total_kernel<<<cu_grid(K1 * K2), CU_THREADS, 0, cu_stream()>>>(
            (const double *)part->data, y, K1, K2, chunks, divisor);
        st = CU_LAUNCHED(n, "column sums kernel");
    }
    osp_storage_release(part);
    return st;
}

#endif
