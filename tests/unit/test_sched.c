/* test_sched.c — the schedulers against fixtures/sched (spec/sampling.md):
 * the noise schedule bit for bit, every timestep/sigma table exactly, and
 * every chain_<name>_<N> fixture step by step (teacher forced: each step is
 * fed the reference's input sample; the scheduler keeps its own state)
 * within 1e-5·max(1, max|ref|), plus a free-running pass (own outputs fed
 * back) within 5e-4·max|ref| at the end. Then the edge cases and errors. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/safetensors.h"
#include "sched/sched.h"
#include "test.h"

static const char *const NAMES[] = {"pndm", "ddim", "ddpm", "euler", "dpmpp"};
static const int STEPS[] = {10, 50, 250};

static osp_safetensors *open_fixture(const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/sched/%s", test_fixtures_dir(), file);
    osp_safetensors *st = osp_safetensors_open(path);
    if (!st)
        printf("#   cannot open %s: %s\n", path, osp_error_message());
    return st;
}

/* Entry i of a 1-D I64 or F32 fixture tensor as double. */
static double value_at(const osp_tensor *t, int64_t i)
{
    return t->dtype == OSP_I64 ? (double)((const int64_t *)osp_data(t))[i]
                               : (double)osp_f32(t)[i];
}

static int count_unequal(const float *a, const float *b, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += a[i] != b[i];
    return bad;
}

TEST(noise_schedule_is_bit_exact)
{
    osp_safetensors *st = open_fixture("timesteps.safetensors");
    CHECK(st);
    if (!st)
        return;
    osp_noise_schedule ns;
    osp_noise_schedule_init(&ns);
    osp_tensor *betas = osp_safetensors_get(st, "betas");
    osp_tensor *ac = osp_safetensors_get(st, "alphas_cumprod");
    CHECK(betas && osp_numel(betas) == OSP_SCHED_TRAIN_STEPS);
    CHECK(ac && osp_numel(ac) == OSP_SCHED_TRAIN_STEPS);
    if (betas && ac) {
        CHECK(count_unequal(ns.betas, osp_f32(betas), OSP_SCHED_TRAIN_STEPS) == 0);
        CHECK(count_unequal(ns.alphas_cumprod, osp_f32(ac), OSP_SCHED_TRAIN_STEPS) == 0);
    }
    /* spec §2 landmarks */
    CHECK(ns.alphas_cumprod[0] == 0.9999f);
    CHECK_NEAR(ns.alphas_cumprod[999], 4.0358307e-05, 1e-12);
    CHECK(ns.sigmas[999] == 157.40725708007812f);
    CHECK_NEAR(ns.sigmas[0], 0.010001330, 1e-9);
    osp_safetensors_close(st);
}

/* One scheduler at N steps against <name>_timesteps_<N> (and sigmas). */
static void check_tables(osp_safetensors *st, const char *name, int n)
{
    char key[64];
    osp_sched *s = osp_sched_create(name);
    CHECK(s && osp_sched_set_timesteps(s, n) == OSP_OK);
    if (!s)
        return;
    snprintf(key, sizeof key, "%s_timesteps_%d", name, n);
    osp_tensor *ts = osp_safetensors_get(st, key);
    CHECK(ts && ts->ndim == 1 && ts->shape[0] == osp_sched_count(s));
    if (ts && ts->ndim == 1 && ts->shape[0] == osp_sched_count(s)) {
        CHECK(ts->dtype == osp_sched_timestep_dtype(s));
        int bad = 0;
        for (int i = 0; i < osp_sched_count(s); i++)
            bad += osp_sched_timestep(s, i) != value_at(ts, i);
        if (bad)
            printf("#   %s: %d timesteps differ\n", key, bad);
        CHECK(bad == 0);
    }
    snprintf(key, sizeof key, "%s_sigmas_%d", name, n);
    if (osp_safetensors_find(st, key)) {
        osp_tensor *sig = osp_safetensors_get(st, key);
        CHECK(osp_sched_sigmas(s) && sig->shape[0] == osp_sched_count(s) + 1);
        if (osp_sched_sigmas(s) && sig->shape[0] == osp_sched_count(s) + 1) {
            int bad = count_unequal(osp_sched_sigmas(s), osp_f32(sig), osp_sched_count(s) + 1);
            if (bad)
                printf("#   %s: %d sigmas differ\n", key, bad);
            CHECK(bad == 0);
        }
    } else {
        CHECK(osp_sched_sigmas(s) == NULL);
    }
    snprintf(key, sizeof key, "%s_init_noise_sigma_%d", name, n);
    float expected = 1.0f;
    if (osp_safetensors_find(st, key))
        expected = osp_f32(osp_safetensors_get(st, key))[0];
    CHECK(osp_sched_init_noise_sigma(s) == expected);
    osp_sched_free(s);
}

TEST(timestep_and_sigma_tables)
{
    osp_safetensors *st = open_fixture("timesteps.safetensors");
    CHECK(st);
    if (!st)
        return;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        for (size_t j = 0; j < sizeof STEPS / sizeof STEPS[0]; j++)
            check_tables(st, NAMES[i], STEPS[j]);
    osp_safetensors_close(st);
}

/* Row k of a [K, *S] tensor as an S-shaped view. */
static osp_tensor *row(osp_tensor *t, int64_t k)
{
    return osp_view_reshape(osp_view_slice(t, 0, k, k + 1, 1), t->ndim - 1, t->shape + 1);
}

static double max_abs(const osp_tensor *t)
{
    double m = 0;
    const float *p = osp_f32(t);
    for (int64_t i = 0; i < osp_numel(t); i++)
        m = fmax(m, fabs(p[i]));
    return m;
}

/* |ours − ref| / max(1, max|ref|); infinite when ours is missing. */
static double step_error(const osp_tensor *ours, const osp_tensor *ref)
{
    if (!ours || !osp_same_shape(ours, ref))
        return INFINITY;
    return test_max_abs_diff(ours, ref) / fmax(1.0, max_abs(ref));
}

typedef struct chain {
    osp_tensor *init, *eps, *noise, *samples, *model_input, *timesteps;
    const char *name;
    int n;
} chain;

/* Runs the chain; teacher forcing feeds samples[k-1], else own outputs.
 * Returns the worst step error (teacher forced) or the final error relative
 * to max|ref| (free running). */
static double run_chain(const chain *c, bool teacher, double *worst_input)
{
    osp_sched *s = osp_sched_create(c->name);
    if (!s || osp_sched_set_timesteps(s, c->n) != OSP_OK) {
        osp_sched_free(s);
        return INFINITY;
    }
    int64_t steps = c->eps->shape[0];
    double worst = 0;
    *worst_input = 0;
    osp_tensor *x = c->init, *out = NULL;
    for (int64_t k = 0; k < steps && x; k++) {
        double t = value_at(c->timesteps, k);
        osp_tensor *in = osp_sched_scale_model_input(s, x, t);
        *worst_input = fmax(*worst_input, step_error(in, row(c->model_input, k)));
        osp_tensor *z = c->noise ? row(c->noise, k) : NULL;
        out = osp_sched_step(s, row(c->eps, k), t, x, z);
        if (teacher)
            worst = fmax(worst, step_error(out, row(c->samples, k)));
        x = teacher ? row(c->samples, k) : out;
    }
    CHECK(osp_sched_index(s) == steps);
    osp_sched_free(s);
    if (teacher)
        return worst;
    osp_tensor *ref = row(c->samples, steps - 1);
    return out ? test_max_abs_diff(out, ref) / max_abs(ref) : INFINITY;
}

static void check_chain(const char *in_file)
{
    char out_file[256];
    size_t len = strlen(in_file) - strlen("_in.safetensors");
    snprintf(out_file, sizeof out_file, "%.*s_out.safetensors", (int)len, in_file);
    osp_safetensors *in = open_fixture(in_file), *out = open_fixture(out_file);
    CHECK(in && out);
    if (in && out) {
        const char *steps = osp_safetensors_metadata(in, "num_inference_steps");
        chain c = {
            .name = osp_safetensors_metadata(in, "scheduler"),
            .n = steps ? atoi(steps) : 0,
            .init = osp_safetensors_get(in, "sample_init"),
            .eps = osp_safetensors_get(in, "model_output"),
            .timesteps = osp_safetensors_get(in, "timesteps"),
            .noise = osp_safetensors_find(in, "noise") ? osp_safetensors_get(in, "noise") : NULL,
            .samples = osp_safetensors_get(out, "samples"),
            .model_input = osp_safetensors_get(out, "model_input"),
        };
        CHECK(c.name && c.n > 0 && c.init && c.eps && c.timesteps && c.samples && c.model_input);
        if (c.name && c.n > 0 && c.init && c.eps && c.timesteps && c.samples && c.model_input) {
            double input_err, free_input_err;
            double step_err = run_chain(&c, true, &input_err);
            double free_err = run_chain(&c, false, &free_input_err);
            printf("# %-30s steps %3lld  step err %.2e  model_input err %.2e  free-running "
                   "final err %.2e\n",
                   in_file, (long long)c.eps->shape[0], step_err, input_err, free_err);
            CHECK(step_err <= 1e-5);
            CHECK(input_err <= 1e-5);
            CHECK(free_err <= 5e-4);
        }
    }
    osp_safetensors_close(in);
    osp_safetensors_close(out);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every chain_*_in.safetensors in the fixture folder (hidden ones too). */
TEST(chains_step_by_step)
{
    char dir_path[1024];
    snprintf(dir_path, sizeof dir_path, "%s/sched", test_fixtures_dir());
    DIR *dir = opendir(dir_path);
    CHECK(dir);
    if (!dir)
        return;
    char *files[256];
    int n = 0;
    struct dirent *d;
    while ((d = readdir(dir)) && n < 256) {
        size_t len = strlen(d->d_name);
        const char *suffix = "_in.safetensors";
        if (strncmp(d->d_name, "chain_", 6) == 0 && len > strlen(suffix) &&
            strcmp(d->d_name + len - strlen(suffix), suffix) == 0)
            files[n++] = strdup(d->d_name);
    }
    closedir(dir);
    qsort(files, (size_t)n, sizeof files[0], by_name);
    CHECK(n >= 8); /* the public set: pndm 10/250, ddim, ddpm, euler 10/50, dpmpp 10/20 */
    for (int i = 0; i < n; i++) {
        check_chain(files[i]);
        free(files[i]);
    }
}

/* PNDM with an odd ratio r = 1000 / N: diffusers puts the half steps at
 * base + r/2 (not top − r/2); N = 9 (r = 111, r2 = 55), worked out from
 * the v0.24.0 set_timesteps. */
TEST(pndm_odd_ratio_layout)
{
    static const int expected[] = {888, 832, 832, 777, 777, 721, 721, 666, 666,
                                   610, 610, 555, 555, 444, 333, 222, 111, 0};
    osp_sched *s = osp_sched_create("pndm");
    CHECK(s && osp_sched_set_timesteps(s, 9) == OSP_OK);
    CHECK(osp_sched_count(s) == 18);
    for (int i = 0; i < 18 && osp_sched_count(s) == 18; i++)
        CHECK(osp_sched_timestep(s, i) == expected[i]);
    osp_sched_free(s);
}

/* The smallest step count of each scheduler runs to a finite result. */
TEST(fewest_steps)
{
    int64_t shape[] = {1, 4, 2, 3, 3};
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        osp_sched *s = osp_sched_create(NAMES[i]);
        CHECK(s && osp_sched_set_timesteps(s, osp_sched_min_steps(s)) == OSP_OK);
        osp_tensor *x = osp_scale_shift(test_random(5, shape, -1, 1), osp_sched_init_noise_sigma(s), 0);
        for (int k = 0; k < osp_sched_count(s) && x; k++) {
            double t = osp_sched_timestep(s, k);
            osp_tensor *z = osp_sched_step_needs_noise(s) ? test_random(5, shape, -1, 1) : NULL;
            osp_tensor *eps = test_random(5, shape, -1, 1);
            CHECK(osp_sched_scale_model_input(s, x, t));
            x = osp_sched_step(s, eps, t, x, z);
        }
        CHECK(x && osp_sched_index(s) == osp_sched_count(s));
        bool finite = x != NULL;
        for (int64_t j = 0; x && j < osp_numel(x); j++)
            finite = finite && isfinite(osp_f32(x)[j]);
        CHECK(finite);
        osp_sched_free(s);
    }
    /* spec §3.4: one Euler step is t = 0 with σ = sig_train[0]. */
    osp_sched *e = osp_sched_create("euler");
    CHECK(e && osp_sched_set_timesteps(e, 1) == OSP_OK);
    CHECK(osp_sched_timestep(e, 0) == 0.0);
    CHECK(osp_sched_init_noise_sigma(e) == osp_sched_noise_schedule(e)->sigmas[0]);
    osp_sched_free(e);
}

/* set_timesteps and reset clear the state: a rerun gives identical results. */
TEST(reset_restarts_identically)
{
    int64_t shape[] = {2, 3, 4};
    osp_tensor *x0 = test_random(3, shape, -1, 1);
    osp_tensor *eps[19];
    for (int k = 0; k < 19; k++)
        eps[k] = test_random(3, shape, -1, 1);
    const char *stateful[] = {"pndm", "dpmpp"};
    for (int i = 0; i < 2; i++) {
        osp_sched *s = osp_sched_create(stateful[i]);
        CHECK(s && osp_sched_set_timesteps(s, 10) == OSP_OK);
        osp_tensor *first = NULL;
        for (int round = 0; round < 2; round++) {
            osp_tensor *x = x0;
            for (int k = 0; k < osp_sched_count(s) && x; k++)
                x = osp_sched_step(s, eps[k], osp_sched_timestep(s, k), x, NULL);
            CHECK(x);
            if (round == 0)
                first = x;
            else
                CHECK(x && first && test_max_abs_diff(x, first) == 0.0);
            osp_sched_reset(s);
        }
        osp_sched_free(s);
    }
}

TEST(bad_use_is_reported)
{
    CHECK(osp_sched_create("heun") == NULL && osp_error_code() == OSP_ERR_USAGE);
    CHECK(osp_sched_create(NULL) == NULL);
    osp_sched *upper = osp_sched_create("PNDM"); /* names are case-insensitive */
    CHECK(upper != NULL);
    osp_sched_free(upper);

    osp_sched *p = osp_sched_create("pndm");
    CHECK(osp_sched_set_timesteps(p, 3) == OSP_ERR_USAGE); /* PRK needs 4 */
    CHECK(osp_sched_set_timesteps(p, 1001) == OSP_ERR_USAGE);
    int64_t shape[] = {1, 4, 3}, other[] = {1, 4, 4};
    osp_tensor *x = test_random(3, shape, -1, 1), *eps = test_random(3, shape, -1, 1);
    CHECK(osp_sched_step(p, eps, 0, x, NULL) == NULL); /* before set_timesteps */
    CHECK(osp_sched_set_timesteps(p, 10) == OSP_OK);
    CHECK(osp_sched_step(p, eps, 850, x, NULL) == NULL); /* first step is 900 */
    CHECK(osp_sched_scale_model_input(p, x, 850) == NULL);
    CHECK(osp_sched_step(p, test_random(3, other, -1, 1), 900, x, NULL) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    osp_tensor *ints = osp_tensor_zeros(OSP_I64, 3, shape, OSP_DEVICE_CPU);
    CHECK(osp_sched_step(p, ints, 900, x, NULL) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(osp_sched_index(p) == 0);
    CHECK(osp_sched_step(p, eps, 900, x, NULL) != NULL);
    CHECK(osp_sched_index(p) == 1);
    osp_sched_free(p);

    osp_sched *d = osp_sched_create("ddpm");
    CHECK(osp_sched_set_timesteps(d, 2) == OSP_OK); /* 500, 0 */
    CHECK(osp_sched_step_needs_noise(d));
    CHECK(osp_sched_step(d, eps, 500, x, NULL) == NULL);
    CHECK(osp_sched_step(d, eps, 500, x, test_random(3, other, -1, 1)) == NULL);
    osp_tensor *y = osp_sched_step(d, eps, 500, x, test_random(3, shape, -1, 1));
    CHECK(y);
    CHECK(!osp_sched_step_needs_noise(d)); /* t = 0 */
    y = osp_sched_step(d, eps, 0, y, NULL);
    CHECK(y);
    CHECK(osp_sched_step(d, eps, 0, y, NULL) == NULL); /* past the last step */
    osp_sched_free(d);
}

int main(void)
{
    RUN(noise_schedule_is_bit_exact);
    RUN(timestep_and_sigma_tables);
    RUN(chains_step_by_step);
    RUN(pndm_odd_ratio_layout);
    RUN(fewest_steps);
    RUN(reset_restarts_identically);
    RUN(bad_use_is_reported);
    return test_summary();
}
