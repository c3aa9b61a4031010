/* test_cu_interp.c — the CUDA interpolation backward's gather (backend/
 * cuda/cu_interp.h), run here on the host: axis tables inverted, then
 * every input element's gradient summed over the outputs that read it,
 * against the scatter the CPU backend runs (cpu_interp.c's loop order),
 * on random tables (1 or 2 taps, repeated and clamped indices, zero
 * weights) and random 3-D extents. */
#include "backend/cuda/cu_interp.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static float next_float(void) { return (float)test_u32() / 2097152.0f - 1.0f; }

typedef struct axis {
    int64_t in, out;
    int taps;
    int64_t idx[2 * 16];
    float wt[2 * 16];
    int64_t start[17], o[2 * 16];
    float w[2 * 16];
} axis;

/* Random tables as the forward builds them: taps 1 (nearest) or 2 (linear,
 * the second index the next one or the same at the edge, weights summing
 * to 1, sometimes 0). */
static void random_axis(axis *a)
{
    a->in = 1 + test_u32() % 9;
    a->out = 1 + test_u32() % 16;
    a->taps = 1 + (int)(test_u32() % 2);
    for (int64_t o = 0; o < a->out; o++) {
        int64_t i = test_u32() % a->in;
        float l = test_u32() % 4 == 0 ? 0.0f : (float)(test_u32() % 1000) / 1000.0f;
        a->idx[o] = i;
        a->wt[o] = a->taps == 1 ? 1.0f : 1.0f - l;
        if (a->taps == 2) {
            a->idx[a->out + o] = i + (i < a->in - 1 ? 1 : 0);
            a->wt[a->out + o] = l;
        }
    }
    cu_invert_axis(a->in, a->out, a->taps, a->idx, a->wt, a->start, a->o, a->w);
}

static cu_axis_inverse inverse_of(const axis *a)
{
    return (cu_axis_inverse){a->start, a->o, a->w};
}

TEST(inverted_tables_list_every_tap_once_in_order)
{
    int bad = 0;
    for (int trial = 0; trial < 2000; trial++) {
        axis a;
        random_axis(&a);
        bad += a.start[0] != 0 || a.start[a.in] != a.taps * a.out;
        int64_t seen = 0;
        for (int64_t i = 0; i < a.in; i++)
            for (int64_t e = a.start[i]; e < a.start[i + 1]; e++) {
                /* the entry is a tap of its output that reads i */
                int64_t o = a.o[e];
                int hits = 0;
                for (int t = 0; t < a.taps; t++)
                    hits += a.idx[t * a.out + o] == i && a.wt[t * a.out + o] == a.w[e];
                bad += hits == 0;
                bad += e > a.start[i] && a.o[e - 1] > o; /* sorted by output */
                seen++;
            }
        bad += seen != a.taps * a.out;
    }
    CHECK(bad == 0);
}

TEST(gather_matches_the_scatter)
{
    int bad = 0;
    for (int trial = 0; trial < 300; trial++) {
        axis ax[3];
        for (int d = 0; d < 3; d++)
            random_axis(&ax[d]);
        int64_t out[3] = {ax[0].out, ax[1].out, ax[2].out};
        int64_t n_out = out[0] * out[1] * out[2], n_in = ax[0].in * ax[1].in * ax[2].in;
        float *gy = malloc((size_t)n_out * sizeof *gy), *gx = calloc((size_t)n_in, sizeof *gx);
        for (int64_t k = 0; k < n_out; k++)
            gy[k] = next_float();
        /* the CPU backend's scatter, in its loop order */
        for (int64_t ot = 0; ot < out[0]; ot++)
            for (int64_t oh = 0; oh < out[1]; oh++)
                for (int64_t ow = 0; ow < out[2]; ow++)
                    for (int a = 0; a < ax[0].taps; a++)
                        for (int b = 0; b < ax[1].taps; b++) {
                            float *row = gx + (ax[0].idx[a * out[0] + ot] * ax[1].in +
                                               ax[1].idx[b * out[1] + oh]) * ax[2].in;
                            float wth = ax[0].wt[a * out[0] + ot] * ax[1].wt[b * out[1] + oh];
                            for (int c = 0; c < ax[2].taps; c++)
                                row[ax[2].idx[c * out[2] + ow]] +=
                                    wth * ax[2].wt[c * out[2] + ow] *
                                    gy[(ot * out[1] + oh) * out[2] + ow];
                        }
        for (int64_t it = 0; it < ax[0].in; it++)
            for (int64_t ih = 0; ih < ax[1].in; ih++)
                for (int64_t iw = 0; iw < ax[2].in; iw++) {
                    float got = cu_interp_grad_at(gy, out, inverse_of(&ax[0]),
                                                  inverse_of(&ax[1]), inverse_of(&ax[2]), it,
                                                  ih, iw);
                    float want = gx[(it * ax[1].in + ih) * ax[2].in + iw];
                    bad += !(fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want)));
                }
        free(gy);
        free(gx);
    }
    CHECK(bad == 0);
}

int main(void)
{
    RUN(inverted_tables_list_every_tap_once_in_order);
    RUN(gather_matches_the_scatter);
    return test_summary();
}
