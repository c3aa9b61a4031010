/* test_patchgan.c — the VAE trainer's discriminator (train/patchgan.h)
 * against PyTorch (tests/data/patchgan/make.py: NLayerDiscriminator(3, 4,
 * 3) in training mode): logits of two calls, hinge losses, running
 * statistics and gradients, within REL of the largest reference value of
 * each tensor; then finite differences, the file round trip, the fresh
 * initialisation and the errors. */
#include "backend/ops.h"
#include "io/safetensors.h"
#include "test.h"
#include "tmpdir.h"
#include "train/patchgan.h"
#include "train/tape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA "tests/data/patchgan/"
#define REL 1e-5
#define FD_REL 3e-2

/* max |got − want| <= REL · max |want|, printing the figure. */
static bool close_to(const char *label, osp_tensor *got, osp_tensor *want)
{
    if (!got || !want || osp_numel(got) != osp_numel(want)) {
        printf("#   %s: missing or misshapen (%s)\n", label, osp_error_message());
        return false;
    }
    got = osp_contiguous(got);
    double scale = 0.0, err = 0.0;
    const float *g = osp_f32(got), *w = osp_f32(want);
    for (int64_t i = 0; i < osp_numel(want); i++) {
        scale = fmax(scale, fabs(w[i]));
        err = fmax(err, fabs((double)g[i] - w[i]));
    }
    bool ok = err <= REL * scale;
    printf("#   %s: max error %.3g of max %.3g (relative %.3g)%s\n", label, err, scale,
           err / fmax(scale, 1e-30), ok ? "" : "  FAIL");
    return ok;
}

static osp_tensor *get(osp_safetensors *st, const char *name)
{
    osp_tensor *t = st ? osp_safetensors_get(st, name) : NULL;
    if (!t)
        printf("#   %s: %s\n", name, osp_error_message());
    return t && t->dtype == OSP_F32 ? osp_tensor_clone(t) : t;
}

static void clear_grads(osp_patchgan *d)
{
    osp_tensor *const *t;
    const char *const *names;
    size_t n = osp_patchgan_trainable(d, &t, &names);
    for (size_t i = 0; i < n; i++)
        osp_zero_grad(t[i]);
}

static int64_t tracked(const osp_patchgan *d, const char *name)
{
    osp_tensor *t = osp_params_find(osp_patchgan_params(d), name);
    return t && t->dtype == OSP_I64 && t->ndim == 0 ? ((int64_t *)osp_data(t))[0] : -1;
}

TEST(matches_pytorch)
{
    osp_patchgan *d = osp_patchgan_load(DATA "weights.safetensors");
    osp_safetensors *st = osp_safetensors_open(DATA "expected.safetensors");
    CHECK(d && st);
    if (!d || !st)
        goto done;
    osp_tensor *const *params;
    const char *const *names;
    size_t n = osp_patchgan_trainable(d, &params, &names);
    CHECK(n == 13 && osp_patchgan_params(d)->n == 22);
    CHECK(n > 3 && strcmp(names[2], "main.2.weight") == 0 && strcmp(names[3], "main.3.weight") == 0);
    CHECK(tracked(d, "main.9.num_batches_tracked") == 5);

    bool was = osp_grad_set_enabled(true);
    osp_tensor *fake = osp_requires_grad(get(st, "fake"));
    osp_tensor *real_logits = osp_patchgan_forward(d, get(st, "real"));
    osp_tensor *fake_logits = osp_patchgan_forward(d, fake);
    osp_tensor *g_loss = osp_patchgan_g_loss(fake_logits);
    osp_tensor *d_loss = osp_patchgan_d_loss(real_logits, fake_logits);
    CHECK(real_logits && real_logits->ndim == 4 && real_logits->shape[0] == 3 &&
          real_logits->shape[1] == 1 && real_logits->shape[2] == 2 && real_logits->shape[3] == 2);
    CHECK(close_to("logits_real", real_logits, get(st, "logits_real")));
    CHECK(close_to("logits_fake", fake_logits, get(st, "logits_fake")));
    CHECK(close_to("g_loss", g_loss, get(st, "g_loss")));
    CHECK(close_to("d_loss", d_loss, get(st, "d_loss")));
    for (int layer = 3; layer <= 9; layer += 3) {
        char key[64];
        snprintf(key, sizeof key, "main.%d.running_mean", layer);
        CHECK(close_to(key, osp_params_find(osp_patchgan_params(d), key), get(st, key)));
        snprintf(key, sizeof key, "main.%d.running_var", layer);
        CHECK(close_to(key, osp_params_find(osp_patchgan_params(d), key), get(st, key)));
        snprintf(key, sizeof key, "main.%d.num_batches_tracked", layer);
        CHECK(tracked(d, key) == 7);
    }
    CHECK(d_loss && osp_backward(d_loss, NULL) == OSP_OK);
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "grad_d.%s", names[i]);
        CHECK(params[i]->grad && close_to(key, params[i]->grad, get(st, key)));
    }
    clear_grads(d);
    osp_zero_grad(fake);
    /* the generator's gradient against its frames (a third call) */
    g_loss = osp_patchgan_g_loss(osp_patchgan_forward(d, fake));
    CHECK(g_loss && osp_backward(g_loss, NULL) == OSP_OK);
    CHECK(fake->grad && close_to("grad_g.fake", fake->grad, get(st, "grad_g.fake")));
    CHECK(tracked(d, "main.3.num_batches_tracked") == 8);
    osp_grad_set_enabled(was);
    clear_grads(d);
    osp_zero_grad(fake);
done:
    osp_safetensors_close(st);
    osp_patchgan_free(d);
}

/* The function under test: D(in[0]) for one input, the hinge loss on
 * D(in[0]) and D(in[1]) for two. */
static osp_tensor *under_test(osp_patchgan *d, osp_tensor *const *in, int n)
{
    osp_tensor *y = osp_patchgan_forward(d, in[0]);
    return n == 2 ? osp_patchgan_d_loss(y, osp_patchgan_forward(d, in[1])) : y;
}

/* L = Σ under_test·R in double. */
static double objective(osp_patchgan *d, osp_tensor *const *in, int n, osp_tensor *r)
{
    osp_pool_push();
    osp_tensor *y = under_test(d, in, n);
    double sum = NAN;
    if (y && osp_numel(y) == osp_numel(r)) {
        const float *py = osp_f32(osp_contiguous(y)), *pr = osp_f32(r);
        sum = 0;
        for (int64_t i = 0; i < osp_numel(r); i++)
            sum += (double)py[i] * pr[i];
    }
    osp_pool_pop();
    return sum;
}

/* The derivative of L along a random direction v (uniform in [-1, 1] per
 * element) of the tensors `moved` (frames and/or parameters), by central
 * differences with step h, against <∇L, v> from the tape, within FD_REL.
 * Element-wise differences (gradcheck.h) drown in float32 rounding for
 * gradients of ~1e-3, and steps large enough to clear it cross LeakyReLU
 * and hinge kinks; a directional derivative sums hundreds of elements.
 * Even so float32 leaves ~1 % (h 1e-4: larger steps meet the curvature,
 * smaller ones the rounding), so this is a check for missing terms and
 * wrong signs; exactness is matches_pytorch's job. */
static bool directional(const char *label, osp_patchgan *d, osp_tensor *const *in, int n,
                        osp_tensor *const *moved, int m, double h)
{
    bool was = osp_grad_set_enabled(true);
    osp_tensor *y = under_test(d, in, n);
    osp_tensor *r = y ? test_random(y->ndim, y->shape, -1, 1) : NULL;
    osp_status st = r ? osp_backward(y, r) : OSP_ERR_RUNTIME;
    osp_grad_set_enabled(was);
    osp_tensor *v[8], *orig[8];
    double analytic = 0;
    for (int i = 0; !st && i < m; i++) {
        v[i] = test_random(moved[i]->ndim, moved[i]->shape, -1, 1);
        orig[i] = osp_tensor_clone(moved[i]);
        if (!moved[i]->grad || !orig[i])
            st = OSP_ERR_RUNTIME;
        for (int64_t j = 0; !st && j < osp_numel(v[i]); j++)
            analytic += (double)osp_f32(moved[i]->grad)[j] * osp_f32(v[i])[j];
    }
    clear_grads(d);
    for (int i = 0; i < n; i++)
        osp_zero_grad(in[i]);
    if (st) {
        printf("#   %s: no gradient (%s)\n", label, osp_error_message());
        return false;
    }
    double l[2];
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < m; i++)
            for (int64_t j = 0; j < osp_numel(v[i]); j++)
                osp_f32(moved[i])[j] = (float)(osp_f32(orig[i])[j] +
                                               (side ? -h : h) * osp_f32(v[i])[j]);
        l[side] = objective(d, in, n, r);
    }
    for (int i = 0; i < m; i++)
        osp_tensor_copy_into(moved[i], orig[i]);
    double numeric = (l[0] - l[1]) / (2 * h), err = fabs(numeric - analytic);
    bool ok = err <= FD_REL * fabs(analytic) && fabs(analytic) > 1e-3;
    printf("#   %s: directional derivative %.6g, finite differences %.6g (relative %.2g)%s\n",
           label, analytic, numeric, err / fabs(analytic), ok ? "" : "  FAIL");
    return ok;
}

/* A small discriminator (ndf 4, 2 layers) with its conv weights scaled to
 * std 0.15 (≈ 1/√fan_in): at the init's 0.02 the BatchNorm inputs have a
 * variance near eps, so any step that float32 can resolve moves the
 * normalised activations across LeakyReLU kinks. */
TEST(gradients_match_finite_differences)
{
    osp_patchgan *d = osp_patchgan_new(3, 4, 2, 11);
    CHECK(d != NULL);
    if (!d)
        return;
    const osp_params *p = osp_patchgan_params(d);
    for (size_t i = 0; i < p->n; i++)
        if (p->tensors[i]->ndim == 4)
            for (int64_t j = 0; j < osp_numel(p->tensors[i]); j++)
                osp_f32(p->tensors[i])[j] *= 7.5f;
    osp_tensor *x = osp_requires_grad(test_random(4, (const int64_t[]){2, 3, 16, 16}, -1, 1));
    osp_tensor *y = osp_requires_grad(test_random(4, (const int64_t[]){3, 3, 16, 16}, -1, 1));
    const double h = 1e-4;
    CHECK(directional("frames", d, (osp_tensor *[]){x}, 1, (osp_tensor *[]){x}, 1, h));
    CHECK(directional("d_loss, both batches", d, (osp_tensor *[]){x, y}, 2,
                      (osp_tensor *[]){x, y}, 2, h));
    static const char *const checked[] = {"main.0.weight", "main.0.bias", "main.2.weight",
                                          "main.3.weight", "main.3.bias", "main.5.weight",
                                          "main.6.weight", "main.6.bias", "main.8.weight",
                                          "main.8.bias"};
    for (int i = 0; i < 10; i++) {
        osp_tensor *t = osp_params_find(p, checked[i]);
        CHECK(t && directional(checked[i], d, (osp_tensor *[]){x}, 1, &t, 1, h));
    }
    osp_tensor *w = osp_params_find(p, "main.5.weight");
    CHECK(directional("d_loss, main.5.weight", d, (osp_tensor *[]){x, y}, 2, &w, 1, h));
    osp_patchgan_free(d);
}

static bool same_tensors(const osp_params *a, const osp_params *b)
{
    bool ok = a->n == b->n;
    for (size_t i = 0; ok && i < a->n; i++) {
        const osp_tensor *s = a->tensors[i], *t = b->tensors[i];
        ok = strcmp(a->names[i], b->names[i]) == 0 && s->dtype == t->dtype &&
             osp_same_shape(s, t) && memcmp(osp_data(s), osp_data(t), osp_nbytes(s)) == 0;
        if (!ok)
            printf("#   %s differs\n", a->names[i]);
    }
    return ok;
}

TEST(save_load_round_trip)
{
    char *dir = test_tmpdir();
    osp_patchgan *d = osp_patchgan_new(3, 4, 2, 5), *e = NULL;
    CHECK(dir && d);
    if (!dir || !d)
        goto done;
    /* a call moves the running statistics and the counter off their init */
    CHECK(osp_patchgan_forward(d, test_random(4, (const int64_t[]){2, 3, 16, 16}, -1, 1)));
    CHECK(tracked(d, "main.6.num_batches_tracked") == 1);
    const char *path = test_path(dir, "disc.safetensors");
    CHECK(osp_patchgan_save(d, path) == OSP_OK);
    e = osp_patchgan_load(path);
    CHECK(e && same_tensors(osp_patchgan_params(d), osp_patchgan_params(e)));
    if (e) {
        osp_tensor *const *t;
        const char *const *names;
        size_t n = osp_patchgan_trainable(e, &t, &names);
        CHECK(n == 10 && t[0]->requires_grad && strcmp(names[9], "main.8.bias") == 0);
    }
done:
    osp_patchgan_free(d);
    osp_patchgan_free(e);
    if (dir)
        test_rmtree(dir);
    free(dir);
}

static void moments(const osp_tensor *t, double *mean, double *sd)
{
    const float *v = osp_f32(t);
    double s = 0, s2 = 0;
    int64_t n = osp_numel(t);
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(fmax(s2 / (double)n - *mean * *mean, 0.0));
}

TEST(fresh_initialisation)
{
    osp_patchgan *d = osp_patchgan_new(3, 64, 3, 1), *same = osp_patchgan_new(3, 64, 3, 1);
    osp_patchgan *other = osp_patchgan_new(3, 64, 3, 2);
    CHECK(d && same && other);
    if (!d || !same || !other)
        goto done;
    const osp_params *p = osp_patchgan_params(d);
    double mean, sd;
    moments(osp_params_find(p, "main.8.weight"), &mean, &sd); /* 512·256·16 draws */
    printf("#   main.8.weight: mean %.3g sd %.5f\n", mean, sd);
    CHECK(fabs(mean) < 1e-4 && fabs(sd - 0.02) < 2e-4);
    moments(osp_params_find(p, "main.0.weight"), &mean, &sd);
    CHECK(fabs(mean) < 5e-3 && fabs(sd - 0.02) < 3e-3);
    moments(osp_params_find(p, "main.9.weight"), &mean, &sd); /* 512 BatchNorm scales */
    printf("#   main.9.weight: mean %.5f sd %.5f\n", mean, sd);
    CHECK(fabs(mean - 1.0) < 4e-3 && fabs(sd - 0.02) < 4e-3);
    moments(osp_params_find(p, "main.6.bias"), &mean, &sd);
    CHECK(mean == 0.0 && sd == 0.0);
    moments(osp_params_find(p, "main.6.running_mean"), &mean, &sd);
    CHECK(mean == 0.0 && sd == 0.0);
    moments(osp_params_find(p, "main.6.running_var"), &mean, &sd);
    CHECK(mean == 1.0 && sd == 0.0);
    CHECK(tracked(d, "main.3.num_batches_tracked") == 0);
    /* conv biases: U(−1/√fan_in, 1/√fan_in), fan_in 3·16 and 512·16 */
    const osp_tensor *b0 = osp_params_find(p, "main.0.bias");
    double lo = 1, hi = -1;
    for (int i = 0; i < 64; i++) {
        lo = fmin(lo, osp_f32(b0)[i]);
        hi = fmax(hi, osp_f32(b0)[i]);
    }
    CHECK(lo >= -1 / sqrt(48.0) && hi <= 1 / sqrt(48.0) && hi - lo > 1 / sqrt(48.0));
    float b11 = osp_f32(osp_params_find(p, "main.11.bias"))[0];
    CHECK(b11 != 0.0f && fabsf(b11) <= 1 / sqrt(8192.0));
    CHECK(same_tensors(p, osp_patchgan_params(same)));
    static const char *const random[] = {"main.0.weight", "main.0.bias", "main.2.weight",
                                         "main.3.weight", "main.11.weight", "main.11.bias"};
    for (int i = 0; i < 6; i++) {
        const osp_tensor *a = osp_params_find(p, random[i]);
        const osp_tensor *b = osp_params_find(osp_patchgan_params(other), random[i]);
        CHECK(a && b && memcmp(osp_data(a), osp_data(b), osp_nbytes(a)) != 0);
    }
done:
    osp_patchgan_free(d);
    osp_patchgan_free(same);
    osp_patchgan_free(other);
}

TEST(widths_stop_at_eight_times_ndf)
{
    osp_patchgan *d = osp_patchgan_new(1, 2, 5, 0);
    CHECK(d != NULL);
    if (!d)
        return;
    const osp_params *p = osp_patchgan_params(d);
    static const char *const conv[] = {"main.0.weight", "main.2.weight", "main.5.weight",
                                       "main.8.weight", "main.11.weight", "main.14.weight",
                                       "main.17.weight"};
    static const int64_t out[] = {2, 4, 8, 16, 16, 16, 1}, in[] = {1, 2, 4, 8, 16, 16, 16};
    for (int i = 0; i < 7; i++) {
        osp_tensor *w = osp_params_find(p, conv[i]);
        CHECK(w && w->ndim == 4 && w->shape[0] == out[i] && w->shape[1] == in[i] &&
              w->shape[2] == 4 && w->shape[3] == 4);
    }
    CHECK(osp_params_find(p, "main.15.running_var") && osp_params_find(p, "main.17.bias"));
    /* the smallest frame: 96 → 48 → 24 → 12 → 6 → 3 → 2 → 1 */
    osp_tensor *y = osp_patchgan_forward(d, test_random(4, (const int64_t[]){1, 1, 96, 96}, -1, 1));
    CHECK(y && y->shape[2] == 1 && y->shape[3] == 1);
    osp_patchgan_free(d);
}

/* A copy of the reference weights with `drop` left out and `extra` added
 * (NULL: none); returns the path. */
static const char *edited(const char *dir, const char *file, const char *drop,
                          const char *extra, osp_tensor *extra_value)
{
    osp_safetensors *st = osp_safetensors_open(DATA "weights.safetensors");
    const char *names[64];
    osp_tensor *tensors[64];
    int n = 0;
    for (size_t i = 0; st && i < osp_safetensors_count(st); i++) {
        const char *name = osp_safetensors_entry(st, i)->name;
        if (drop && strcmp(name, drop) == 0)
            continue;
        names[n] = name;
        tensors[n++] = osp_safetensors_get(st, name);
    }
    if (extra) {
        names[n] = extra;
        tensors[n++] = extra_value;
    }
    const char *path = test_path(dir, file);
    osp_status s = st ? osp_safetensors_write(path, n, names, tensors, NULL) : OSP_ERR_IO;
    osp_safetensors_close(st);
    return s ? NULL : path;
}

static bool load_fails(const char *path, const char *needle)
{
    osp_patchgan *d = path ? osp_patchgan_load(path) : NULL;
    bool ok = path && !d && osp_error_code() == OSP_ERR_DATA &&
              strstr(osp_error_message(), needle) && strstr(osp_error_message(), path);
    printf("#   %s\n", osp_error_message());
    osp_patchgan_free(d);
    osp_error_clear();
    return ok;
}

TEST(bad_inputs)
{
    osp_patchgan *d = osp_patchgan_new(3, 4, 3, 1);
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK(!osp_patchgan_forward(d, test_random(4, (const int64_t[]){2, 4, 32, 32}, -1, 1)));
    CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "4 channels"));
    CHECK(!osp_patchgan_forward(d, test_random(4, (const int64_t[]){2, 3, 32, 23}, -1, 1)));
    CHECK(osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), "at least 24x24"));
    CHECK(!osp_patchgan_forward(d, test_random(3, (const int64_t[]){3, 32, 32}, -1, 1)));
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(tracked(d, "main.3.num_batches_tracked") == 0); /* nothing moved */
    CHECK(osp_patchgan_forward(d, test_random(4, (const int64_t[]){1, 3, 24, 24}, -1, 1)));
    osp_patchgan_free(d);
    CHECK(!osp_patchgan_new(3, 0, 3, 1) && osp_error_code() == OSP_ERR_DATA);
    CHECK(!osp_patchgan_new(3, 4, 0, 1) && osp_error_code() == OSP_ERR_DATA);
    osp_error_clear();

    char *dir = test_tmpdir();
    CHECK(dir != NULL);
    if (!dir)
        return;
    CHECK(load_fails(edited(dir, "a", "main.5.weight", NULL, NULL), "no tensor main.5.weight"));
    CHECK(load_fails(edited(dir, "b", "main.0.weight", NULL, NULL), "main.0.weight"));
    CHECK(load_fails(edited(dir, "c", "main.6.bias", "main.6.bias",
                            osp_tensor_zeros(OSP_F32, 1, (const int64_t[]){3}, OSP_DEVICE_CPU)),
                     "main.6.bias"));
    CHECK(load_fails(edited(dir, "d", NULL, "main.7.weight",
                            osp_tensor_zeros(OSP_F32, 1, (const int64_t[]){3}, OSP_DEVICE_CPU)),
                     "unexpected tensor main.7.weight"));
    CHECK(!osp_patchgan_load(test_path(dir, "missing")) && osp_error_code() == OSP_ERR_IO);
    osp_error_clear();
    /* an older state dict without the counters loads, counting from 0 */
    const char *old = edited(dir, "e", "main.3.num_batches_tracked", NULL, NULL);
    osp_patchgan *e = old ? osp_patchgan_load(old) : NULL;
    CHECK(e && tracked(e, "main.3.num_batches_tracked") == 0 &&
          tracked(e, "main.6.num_batches_tracked") == 5);
    osp_patchgan_free(e);
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(matches_pytorch);
    RUN(gradients_match_finite_differences);
    RUN(save_load_round_trip);
    RUN(fresh_initialisation);
    RUN(widths_stop_at_eight_times_ndf);
    RUN(bad_inputs);
    return test_summary();
}
