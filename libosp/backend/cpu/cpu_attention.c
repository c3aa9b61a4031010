/* cpu_attention.c — scaled-dot-product attention and its backward,
 * memory-bounded.
 *
 *   o = softmax(scale · q kᵀ + mask) v     q [B,H,Lq,D], k [B,H,Lk,D],
 *                                          v [B,H,Lk,Dv], o [B,H,Lq,Dv]
 *
 * The score matrix is never held whole: each (batch·head, block of query
 * rows) item computes its block of scores [rows, Lk] with one sgemm into a
 * per-thread scratch, turns it into softmax numerators in place, multiplies
 * by v with a second sgemm and divides each output row by its sum. Memory
 * beyond the tensors is one score block per thread (two in the backward)
 * of rows × Lk floats, at most 8 MiB each below 131,072 keys, whatever Lq
 * is. Items run in parallel with OpenBLAS serial inside.
 *
 * The backward recomputes each block's probabilities P, then
 *   dP = go vᵀ,  dS = P ⊙ (dP - rowsum(dP ⊙ P)),
 *   gq = scale · dS k (per block),  gk += scale · dSᵀ q,  gv += Pᵀ go,
 * where gk and gv sum over all query blocks of a head. When there are
 * enough heads, each thread owns whole heads and accumulates straight into
 * gk and gv; otherwise the threads split a head's query blocks, each
 * accumulating into its own [Lk, D] and [Lk, Dv] buffers, summed at the end
 * of the head (no two threads ever write the same element).
 *
 * Every [B,H,L,D] operand (q, k, v, o and the gradients) is read or written
 * through its batch, head and row strides, with unit stride along D: the
 * per-head views of a linear's output [B, L, H·D] need no copy (sgemm's
 * leading dimensions take the row strides).
 *
 * The mask is additive, broadcast numpy-style to [B,H,Lq,Lk] (the frontend
 * checked it). A query row whose scores are all -Inf (a fully masked row)
 * has no defined softmax: like PyTorch's math path it comes out NaN, and in
 * the backward its NaN reaches gq's row and every row of gk and gv. */
#include "cpu_blas.h"
#include "cpu_kernels.h"
#include "cpu_softmax.h"
#include "core/checked.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Query rows per work item. Every sgemm of an item repacks all of k or v,
 * so blocks must be tall enough to amortise that: 128 rows ran 10-40%
 * faster than 16-32 (L = 1024, 4096, 17408; D = 72; forward and backward,
 * one AMD EPYC core), and 256 gained nothing more. */
#define BLOCK_ROWS 128
#define MIN_BLOCK_ROWS 16
/* One score buffer (rows x Lk floats) stays below this for very long key
 * sequences, so scratch stays a few MiB per thread. */
#define MAX_SCORE_BUFFER_BYTES (8 << 20)
/* Problems below this many multiply-adds run on one thread: waking a team
 * (and, on a busy machine, waiting for its threads to be scheduled) costs
 * more than it saves. */
#define PARALLEL_MIN_MACS (1 << 18)

/* Where head (b, h) of a [B,H,L,D] operand starts, and its row stride. */
typedef struct heads {
    float *p;
    int64_t b, h, row;
} heads;

static heads heads_of(const osp_tensor *t)
{
    int64_t row = t->shape[2] > 1 ? t->stride[2] : t->shape[3];
    return (heads){osp_f32(t), t->stride[0], t->stride[1], row > 1 ? row : 1};
}

typedef struct attn_problem {
    int64_t B, H, Lq, Lk, D, Dv;
    float scale;
    heads q, k, v;
    const float *mask;        /* NULL: no mask */
    int64_t mask_step[4];     /* elements per step along b, h, i, j; 0 = broadcast */
    int64_t block_rows;       /* query rows per work item */
    int64_t n_blocks;         /* query blocks per head */
} attn_problem;

/* Steps of a contiguous mask right-aligned against [B, H, Lq, Lk]. */
static void mask_steps(const osp_tensor *mask, int64_t *step)
{
    int64_t s = 1;
    for (int i = 3; i >= 0; i--) {
        int d = i - (4 - mask->ndim);
        int64_t size = d >= 0 ? mask->shape[d] : 1;
        step[i] = size == 1 ? 0 : s;
        s *= size;
    }
}

/* Query rows per item: BLOCK_ROWS, fewer (in steps of MIN_BLOCK_ROWS) when
 * a score buffer would exceed MAX_SCORE_BUFFER_BYTES or threads would be
 * left without work, and at most Lq. */
static int64_t choose_block_rows(int64_t heads, int64_t Lq, int64_t Lk, int team)
{
    int64_t fit = MAX_SCORE_BUFFER_BYTES / ((Lk > 0 ? Lk : 1) * (int64_t)sizeof(float));
    int64_t rows = fit < BLOCK_ROWS ? fit / MIN_BLOCK_ROWS * MIN_BLOCK_ROWS : BLOCK_ROWS;
    rows = rows < MIN_BLOCK_ROWS ? MIN_BLOCK_ROWS : rows;
    while (rows > MIN_BLOCK_ROWS && heads * ((Lq + rows - 1) / rows) < team)
        rows = rows / 2 / MIN_BLOCK_ROWS * MIN_BLOCK_ROWS;
    return rows < Lq ? rows : (Lq > 0 ? Lq : 1);
}

/* Threads for the problem whose q, k, v are inputs first..first+2 of n. */
static int team_size(const osp_node *n, int first)
{
    const osp_tensor *q = n->in[first], *k = n->in[first + 1], *v = n->in[first + 2];
    double macs = (double)q->shape[0] * (double)q->shape[1] * (double)q->shape[2] *
                  (double)k->shape[2] * (double)(q->shape[3] + v->shape[3]);
    return macs < PARALLEL_MIN_MACS ? 1 : omp_get_max_threads();
}

/* The problem of node n whose q, k, v, mask are inputs first..first+3. */
static attn_problem problem_of(const osp_node *n, int first, int team)
{
    const osp_tensor *q = n->in[first], *k = n->in[first + 1], *v = n->in[first + 2];
    const osp_tensor *mask = n->in[first + 3];
    attn_problem p = {
        .B = q->shape[0], .H = q->shape[1], .Lq = q->shape[2], .Lk = k->shape[2],
        .D = q->shape[3], .Dv = v->shape[3], .scale = n->p.attention.scale,
        .q = heads_of(q), .k = heads_of(k), .v = heads_of(v),
        .mask = mask ? osp_f32(mask) : NULL,
    };
    if (mask)
        mask_steps(mask, p.mask_step);
    p.block_rows = choose_block_rows(p.B * p.H, p.Lq, p.Lk, team);
    p.n_blocks = (p.Lq + p.block_rows - 1) / p.block_rows;
    return p;
}

/* Head bh (= b·H + h) of x. */
static float *head(const attn_problem *p, const heads *x, int64_t bh)
{
    return x->p + bh / p->H * x->b + bh % p->H * x->h;
}

/* row[j] += mask[b, h, i, j] for one query row. */
static void add_mask_row(const attn_problem *p, float *row, int64_t bh, int64_t i)
{
    const int64_t *st = p->mask_step;
    const float *m = p->mask + (bh / p->H) * st[0] + (bh % p->H) * st[1] + i * st[2];
    if (st[3] == 0) {
        float c = m[0];
#pragma omp simd
        for (int64_t j = 0; j < p->Lk; j++)
            row[j] += c;
    } else {
#pragma omp simd
        for (int64_t j = 0; j < p->Lk; j++)
            row[j] += m[j];
    }
}

/* Softmax numerators of query rows [i0, i0 + rows) of head bh into
 * scores [rows, Lk]; inv_sum[r] gets 1 / (row r's sum). */
static void block_numerators(const attn_problem *p, int64_t bh, int64_t i0, int64_t rows,
                             float *scores, float *inv_sum)
{
    cpu_sgemm(false, true, rows, p->Lk, p->D, p->scale, head(p, &p->q, bh) + i0 * p->q.row,
              p->q.row, head(p, &p->k, bh), p->k.row, 0.0f, scores, p->Lk);
    for (int64_t r = 0; r < rows; r++) {
        float *row = scores + r * p->Lk;
        if (p->mask)
            add_mask_row(p, row, bh, i0 + r);
        inv_sum[r] = 1.0f / cpu_row_exp_sum(row, row, p->Lk, cpu_row_max(row, p->Lk));
    }
}

/* Per-thread scratch: n_buffers score blocks plus the row sums. */
static float *scratch_alloc(const attn_problem *p, int n_buffers, int team, size_t *per_thread)
{
    size_t block, floats, bytes;
    if (!osp_mul_size((size_t)p->block_rows, (size_t)p->Lk, &block) ||
        !osp_mul_size(block, (size_t)n_buffers, &floats) ||
        !osp_add_size(floats, (size_t)p->block_rows, per_thread) ||
        !osp_mul_size(*per_thread, (size_t)team * sizeof(float), &bytes)) {
        osp_error(OSP_ERR_NOMEM, "attention: scratch size overflows");
        return NULL;
    }
    float *s = malloc(bytes ? bytes : 1);
    if (!s)
        osp_error_nomem("attention scratch", bytes);
    return s;
}

/* ---- forward ---- */

static void forward_item(const attn_problem *p, const heads *o, int64_t item, float *scratch)
{
    int64_t bh = item / p->n_blocks, i0 = item % p->n_blocks * p->block_rows;
    int64_t rows = p->Lq - i0 < p->block_rows ? p->Lq - i0 : p->block_rows;
    float *scores = scratch, *inv_sum = scratch + p->block_rows * p->Lk;
    float *ob = head(p, o, bh) + i0 * o->row;
    block_numerators(p, bh, i0, rows, scores, inv_sum);
    cpu_sgemm(false, false, rows, p->Dv, p->Lk, 1.0f, scores, p->Lk, head(p, &p->v, bh),
              p->v.row, 0.0f, ob, o->row);
    for (int64_t r = 0; r < rows; r++)
        cpu_row_scale(ob + r * o->row, p->Dv, inv_sum[r]);
}

osp_status cpu_attention(const osp_node *n)
{
    int team = team_size(n, 0);
    attn_problem p = problem_of(n, 0, team);
    heads o = heads_of(n->out[0]);
    int64_t items = p.B * p.H * p.n_blocks;
    if (p.Lq == 0 || p.Dv == 0 || items == 0)
        return OSP_OK;
    if (p.Lk == 0) {
        /* No keys: every output is an empty weighted sum (o is dense). */
        memset(o.p, 0, osp_nbytes(n->out[0]));
        return OSP_OK;
    }
    if (items < team)
        team = (int)items;
    size_t per_thread;
    float *scratch = scratch_alloc(&p, 1, team, &per_thread);
    if (!scratch)
        return osp_error_code();
    int saved = cpu_blas_serial_begin();
#pragma omp parallel for schedule(dynamic) num_threads(team)
    for (int64_t item = 0; item < items; item++)
        forward_item(&p, &o, item, scratch + (size_t)omp_get_thread_num() * per_thread);
    cpu_blas_serial_end(saved);
    free(scratch);
    return OSP_OK;
}

/* ---- backward ---- */

typedef struct attn_grads {
    heads go, gq, gk, gv;
} attn_grads;

/* Query block `block` of head bh: writes its rows of gq and adds its part
 * of gk and gv into gk_acc [Lk, D] and gv_acc [Lk, Dv] (rows ld_k, ld_v
 * apart). */
static void backward_block(const attn_problem *p, const attn_grads *g, int64_t bh, int64_t block,
                           float *scratch, float *gk_acc, int64_t ld_k, float *gv_acc,
                           int64_t ld_v)
{
    int64_t i0 = block * p->block_rows;
    int64_t rows = p->Lq - i0 < p->block_rows ? p->Lq - i0 : p->block_rows;
    int64_t Lk = p->Lk;
    float *probs = scratch, *dscores = scratch + p->block_rows * Lk;
    float *inv_sum = dscores + p->block_rows * Lk;
    const float *qb = head(p, &p->q, bh) + i0 * p->q.row, *kb = head(p, &p->k, bh);
    const float *vb = head(p, &p->v, bh), *gob = head(p, &g->go, bh) + i0 * g->go.row;

    block_numerators(p, bh, i0, rows, probs, inv_sum);
    for (int64_t r = 0; r < rows; r++)
        cpu_row_scale(probs + r * Lk, Lk, inv_sum[r]);
    cpu_sgemm(false, true, rows, Lk, p->Dv, 1.0f, gob, g->go.row, vb, p->v.row, 0.0f, dscores,
              Lk);
    for (int64_t r = 0; r < rows; r++)
        cpu_row_softmax_backward(dscores + r * Lk, dscores + r * Lk, probs + r * Lk, Lk);
    cpu_sgemm(false, false, rows, p->D, Lk, p->scale, dscores, Lk, kb, p->k.row, 0.0f,
              head(p, &g->gq, bh) + i0 * g->gq.row, g->gq.row);
    cpu_sgemm(true, false, Lk, p->D, rows, p->scale, dscores, Lk, qb, p->q.row, 1.0f, gk_acc,
              ld_k);
    cpu_sgemm(true, false, Lk, p->Dv, rows, 1.0f, probs, Lk, gob, g->go.row, 1.0f, gv_acc, ld_v);
}

/* Zeroes rows [0, Lk) of width w of a head, rows ld apart. */
static void zero_rows(float *x, int64_t Lk, int64_t w, int64_t ld)
{
    if (ld == w) {
        memset(x, 0, (size_t)(Lk * w) * sizeof *x);
        return;
    }
    for (int64_t j = 0; j < Lk; j++)
        memset(x + j * ld, 0, (size_t)w * sizeof *x);
}

/* Enough heads to give every thread whole heads without much idling. */
static bool whole_heads_per_thread(const attn_problem *p, int team)
{
    int64_t heads = p->B * p->H;
    return team == 1 || p->n_blocks == 1 ||
           (heads >= team && (heads % team == 0 || heads >= 4 * team));
}

static osp_status backward_whole_heads(const attn_problem *p, const attn_grads *g, int team)
{
    int64_t heads = p->B * p->H;
    if (heads < team)
        team = (int)heads;
    size_t per_thread;
    float *scratch = scratch_alloc(p, 2, team, &per_thread);
    if (!scratch)
        return osp_error_code();
    int saved = cpu_blas_serial_begin();
#pragma omp parallel for schedule(dynamic) num_threads(team)
    for (int64_t bh = 0; bh < heads; bh++) {
        float *s = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *gk = head(p, &g->gk, bh), *gv = head(p, &g->gv, bh);
        zero_rows(gk, p->Lk, p->D, g->gk.row);
        zero_rows(gv, p->Lk, p->Dv, g->gv.row);
        for (int64_t block = 0; block < p->n_blocks; block++)
            backward_block(p, g, bh, block, s, gk, g->gk.row, gv, g->gv.row);
    }
    cpu_blas_serial_end(saved);
    free(scratch);
    return OSP_OK;
}

static osp_status backward_split_heads(const attn_problem *p, const attn_grads *g, int team)
{
    if (p->n_blocks < team)
        team = (int)p->n_blocks;
    size_t per_thread, acc_floats = (size_t)(p->Lk * (p->D + p->Dv));
    float *scratch = scratch_alloc(p, 2, team, &per_thread);
    if (!scratch)
        return osp_error_code();
    size_t acc_bytes;
    float *acc = NULL;
    if (osp_mul_size(acc_floats, (size_t)team * sizeof(float), &acc_bytes))
        acc = malloc(acc_bytes ? acc_bytes : 1);
    if (!acc) {
        free(scratch);
        return osp_error_nomem("attention backward accumulators", acc_bytes);
    }
    int saved = cpu_blas_serial_begin();
#pragma omp parallel num_threads(team)
    {
        int t = omp_get_thread_num(), threads = omp_get_num_threads();
        float *s = scratch + (size_t)t * per_thread;
        float *gk_acc = acc + (size_t)t * acc_floats, *gv_acc = gk_acc + p->Lk * p->D;
        for (int64_t bh = 0; bh < p->B * p->H; bh++) {
            memset(gk_acc, 0, acc_floats * sizeof *acc);
#pragma omp for schedule(static)
            for (int64_t block = 0; block < p->n_blocks; block++)
                backward_block(p, g, bh, block, s, gk_acc, p->D, gv_acc, p->Dv);
            /* (barrier) Sum the threads' buffers, split by key rows. */
            float *gk = head(p, &g->gk, bh), *gv = head(p, &g->gv, bh);
#pragma omp for schedule(static)
            for (int64_t j = 0; j < p->Lk; j++) {
                float *dk = gk + j * g->gk.row, *dv = gv + j * g->gv.row;
                memcpy(dk, acc + j * p->D, (size_t)p->D * sizeof *dk);
                memcpy(dv, acc + p->Lk * p->D + j * p->Dv, (size_t)p->Dv * sizeof *dv);
                for (int u = 1; u < threads; u++) {
                    const float *ak = acc + (size_t)u * acc_floats + j * p->D;
                    const float *av = acc + (size_t)u * acc_floats + p->Lk * p->D + j * p->Dv;
#pragma omp simd
                    for (int64_t d = 0; d < p->D; d++)
                        dk[d] += ak[d];
#pragma omp simd
                    for (int64_t d = 0; d < p->Dv; d++)
                        dv[d] += av[d];
                }
            }
            /* (barrier) before the buffers are cleared for the next head */
        }
    }
    cpu_blas_serial_end(saved);
    free(acc);
    free(scratch);
    return OSP_OK;
}

osp_status cpu_attention_backward(const osp_node *n)
{
    int team = team_size(n, 1);
    attn_problem p = problem_of(n, 1, team);
    attn_grads g = {heads_of(n->in[0]), heads_of(n->out[0]), heads_of(n->out[1]),
                    heads_of(n->out[2])};
    if (p.Lq == 0 || p.Lk == 0) {
        /* No query-key pairs: nothing flows anywhere (the outputs are dense). */
        for (int i = 0; i < 3; i++)
            memset(osp_data(n->out[i]), 0, osp_nbytes(n->out[i]));
        return OSP_OK;
    }
    if (p.B * p.H == 0)
        return OSP_OK;
    return whole_heads_per_thread(&p, team) ? backward_whole_heads(&p, &g, team)
                                            : backward_split_heads(&p, &g, team);
}
