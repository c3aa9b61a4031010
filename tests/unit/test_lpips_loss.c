/* test_lpips_loss.c — the VAE trainer's perceptual loss (metrics/lpips.h,
 * osp_lpips_loss: VGG16 LPIPS, spatial averages) against PyTorch
 * autograd (tests/data/lpips_vgg/make.py, a tiny VGG16-shaped net): the
 * loss and the gradient of sum(loss * r) for 32x32 frames and for 40x24
 * ones (odd pool sizes), a finite-difference gradcheck, the LPIPS
 * module's key spellings, and the errors. */
#include "backend/ops.h"
#include "fixture.h"
#include "gradcheck.h"
#include "io/safetensors.h"
#include "metrics/lpips.h"
#include "test.h"
#include "tmpdir.h"
#include "train/tape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA "tests/data/lpips_vgg/"
#define TINY DATA "tiny.safetensors"
/* Relative error (2-norm) of the loss and of the gradients against
 * PyTorch's float64 on the same float32 inputs. */
#define TOL 1e-5

static osp_tensor *expected(osp_safetensors *st, const char *name)
{
    osp_tensor *t = st ? osp_tensor_to_dtype(osp_safetensors_get(st, name), OSP_F32) : NULL;
    if (!t)
        printf("#   %s: %s\n", name, osp_error_message());
    return t;
}

static bool close_rel(const char *what, osp_tensor *got, osp_tensor *want)
{
    if (!got || !want || osp_numel(got) != osp_numel(want))
        return false;
    double rel = test_rel_error(got, want);
    printf("#   %s: relative error %.3g, max |diff| %.3g over %lld values\n", what, rel,
           test_max_abs_diff(got, want), (long long)osp_numel(want));
    return rel <= TOL;
}

/* Case `c` of expected.safetensors: the loss, and the gradient of
 * sum(loss * r) against `wrt` ("x" or "y"; the other input needs none). */
static void check_case(const char *c, const char *wrt)
{
    osp_safetensors *st = osp_safetensors_open(DATA "expected.safetensors");
    osp_lpips *m = osp_lpips_load(TINY, OSP_DEVICE_CPU);
    CHECK(st && m);
    if (!st || !m)
        goto done;
    char name[32];
    osp_tensor *in[2];
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.%c", c, "xy"[i]);
        in[i] = expected(st, name);
    }
    snprintf(name, sizeof name, "%s.loss", c);
    osp_tensor *want = expected(st, name);
    snprintf(name, sizeof name, "%s.r", c);
    osp_tensor *r = expected(st, name);
    snprintf(name, sizeof name, "%s.grad_%s", c, wrt);
    osp_tensor *want_grad = expected(st, name);
    CHECK(in[0] && in[1] && want && r && want_grad);
    if (!in[0] || !in[1] || !want || !r || !want_grad)
        goto done;
    osp_tensor *leaf = in[wrt[0] == 'y'], *other = in[wrt[0] != 'y'];
    osp_requires_grad(leaf);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *loss = osp_lpips_loss(m, in[0], in[1]);
    CHECK(loss && loss->ndim == 1 && loss->shape[0] == in[0]->shape[0] && loss->requires_grad);
    snprintf(name, sizeof name, "%s.loss", c);
    CHECK(close_rel(name, loss, want));
    CHECK(loss && osp_backward(loss, r) == OSP_OK);
    osp_grad_set_enabled(was);
    snprintf(name, sizeof name, "%s.grad_%s", c, wrt);
    CHECK(leaf->grad && close_rel(name, leaf->grad, want_grad));
    CHECK(!other->grad);
    osp_zero_grad(leaf);
    leaf->requires_grad = false;
done:
    osp_tape_clear();
    osp_lpips_free(m);
    osp_safetensors_close(st);
}

TEST(loss_and_grad_y_match_pytorch_32x32) { check_case("a", "y"); }

TEST(loss_and_grad_x_match_pytorch_40x24) { check_case("b", "x"); }

/* Neither input wanting a gradient, nothing is recorded: the network's
 * weights never require grad. */
TEST(weights_are_frozen)
{
    osp_lpips *m = osp_lpips_load(TINY, OSP_DEVICE_CPU);
    osp_tensor *x = test_random(4, (int64_t[]){2, 3, 16, 16}, -1, 1);
    osp_tensor *y = test_random(4, (int64_t[]){2, 3, 16, 16}, -1, 1);
    bool was = osp_grad_set_enabled(true);
    osp_tensor *loss = m ? osp_lpips_loss(m, x, y) : NULL;
    CHECK(loss && !loss->requires_grad && osp_tape_size() == 0);
    /* identical frames: exactly 0 */
    loss = m ? osp_lpips_loss(m, x, x) : NULL;
    CHECK(loss && osp_f32(loss)[0] == 0.0f && osp_f32(loss)[1] == 0.0f);
    osp_grad_set_enabled(was);
    osp_tape_clear();
    osp_lpips_free(m);
}

static osp_tensor *run_loss(osp_tensor *const *in, void *ctx)
{
    return osp_lpips_loss(ctx, in[0], in[1]);
}

/* Both inputs against central differences, on the smallest frames the
 * four pools take. A step of 3e-4: with the tiny net's many ReLU kinks
 * (and taps switching on where every channel was off, where the unit
 * normalisation jumps) a 1e-3 step straddles one for an element or two
 * of the 512 checked; a smaller one drowns in float32 rounding. */
TEST(loss_gradcheck)
{
    osp_lpips *m = osp_lpips_load(TINY, OSP_DEVICE_CPU);
    osp_tensor *x = test_random(4, (int64_t[]){2, 3, 16, 16}, -0.8f, 0.8f);
    osp_tensor *y = osp_add(x, test_random(4, (int64_t[]){2, 3, 16, 16}, -0.2f, 0.2f));
    CHECK(m && y);
    if (m && y) {
        osp_tensor *in[2] = {osp_requires_grad(x), osp_requires_grad(y)};
        gradcheck_opts o = {.eps = 3e-4, .atol = 1e-4, .rtol = 1e-2};
        CHECK(gradcheck("lpips_loss", run_loss, 2, in, m, &o));
        x->requires_grad = y->requires_grad = false;
    }
    osp_lpips_free(m);
}

/* tiny.safetensors rewritten with the LPIPS module's spellings
 * net.slice{s}.{i}.* and lins.{k}.model.1.weight, or without one tensor. */
static char *rewrite(const char *dir, const char *out, bool lpips_names, const char *drop)
{
    osp_safetensors *st = osp_safetensors_open(TINY);
    size_t n = st ? osp_safetensors_count(st) : 0;
    char names[64][48];
    const char *np[64];
    osp_tensor *t[64];
    int kept = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        const char *name = osp_safetensors_entry(st, i)->name;
        int index, k, slice;
        if (drop && !strcmp(name, drop))
            continue;
        if (lpips_names && sscanf(name, "features.%d.", &index) == 1) {
            slice = index < 4 ? 1 : index < 9 ? 2 : index < 16 ? 3 : index < 23 ? 4 : 5;
            snprintf(names[kept], sizeof names[kept], "net.slice%d.%s", slice,
                     name + strlen("features."));
        } else if (lpips_names && sscanf(name, "lin%d.", &k) == 1) {
            snprintf(names[kept], sizeof names[kept], "lins.%d.%s", k, name + strlen("lin0."));
        } else {
            snprintf(names[kept], sizeof names[kept], "%s", name);
        }
        np[kept] = names[kept];
        t[kept++] = osp_safetensors_get(st, name);
    }
    char *path = strdup(test_path(dir, out));
    CHECK(n == 31 && osp_safetensors_write(path, kept, np, t, NULL) == OSP_OK);
    osp_safetensors_close(st);
    return path;
}

TEST(lpips_module_spellings_load_the_same_net)
{
    char *dir = test_tmpdir();
    char *path = dir ? rewrite(dir, "lpips.safetensors", true, NULL) : NULL;
    osp_lpips *a = osp_lpips_load(TINY, OSP_DEVICE_CPU);
    osp_lpips *b = path ? osp_lpips_load(path, OSP_DEVICE_CPU) : NULL;
    osp_tensor *x = test_random(4, (int64_t[]){1, 3, 24, 16}, -1, 1);
    osp_tensor *y = test_random(4, (int64_t[]){1, 3, 24, 16}, -1, 1);
    osp_tensor *la = a ? osp_lpips_loss(a, x, y) : NULL, *lb = b ? osp_lpips_loss(b, x, y) : NULL;
    CHECK(la && lb && osp_f32(la)[0] == osp_f32(lb)[0] && osp_f32(la)[0] > 0);
    osp_lpips_free(a);
    osp_lpips_free(b);
    free(path);
    if (dir)
        test_rmtree(dir);
    free(dir);
}

static bool failed_with_data_error(const char *needle)
{
    bool ok = osp_error_code() == OSP_ERR_DATA && strstr(osp_error_message(), needle);
    if (!ok)
        printf("#   wanted OSP_ERR_DATA with '%s', got: %s\n", needle, osp_error_message());
    osp_error_clear();
    return ok;
}

TEST(loss_rejects_bad_input)
{
    osp_lpips *vgg = osp_lpips_load(TINY, OSP_DEVICE_CPU);
    osp_lpips *alex = osp_lpips_load(fixture_path("eval/lpips_alex_tiny.safetensors"),
                                     OSP_DEVICE_CPU);
    CHECK(vgg && alex);
    if (!vgg || !alex)
        goto done;
    osp_tensor *f = test_random(4, (int64_t[]){2, 3, 32, 32}, -1, 1);
    osp_tensor *maps[OSP_LPIPS_TAPS];
    double v[2];
    osp_error_clear();
    /* each trunk only on its own path */
    CHECK(!osp_lpips_loss(alex, f, f) && failed_with_data_error("needs VGG16"));
    CHECK(osp_lpips_frames(vgg, f, f, v, NULL) == OSP_ERR_DATA &&
          failed_with_data_error("needs AlexNet"));
    CHECK(osp_lpips_maps(vgg, f, f, maps) == OSP_ERR_DATA &&
          failed_with_data_error("needs AlexNet"));
    /* shapes */
    osp_tensor *small = test_random(4, (int64_t[]){1, 3, 15, 32}, -1, 1);
    CHECK(!osp_lpips_loss(vgg, small, small) && failed_with_data_error("too small for VGG16"));
    osp_tensor *grey = test_random(4, (int64_t[]){1, 1, 32, 32}, -1, 1);
    CHECK(!osp_lpips_loss(vgg, grey, grey) && failed_with_data_error("[N, 3, H, W]"));
    osp_tensor *other = test_random(4, (int64_t[]){2, 3, 32, 16}, -1, 1);
    CHECK(!osp_lpips_loss(vgg, f, other) && failed_with_data_error("[N, 3, H, W]"));
    osp_tensor *flat = test_random(3, (int64_t[]){3, 32, 32}, -1, 1);
    CHECK(!osp_lpips_loss(vgg, flat, flat) && failed_with_data_error("[N, 3, H, W]"));
    /* the AlexNet path still takes what it took */
    osp_tensor *unit = test_random(4, (int64_t[]){2, 3, 32, 32}, 0, 1);
    CHECK(osp_lpips_frames(alex, unit, f, v, NULL) == OSP_OK);
    /* weights missing a tensor: the load names it */
    char *dir = test_tmpdir();
    char *path = dir ? rewrite(dir, "no-lin4.safetensors", false, "lin4.model.1.weight") : NULL;
    CHECK(path && !osp_lpips_load(path, OSP_DEVICE_CPU) &&
          failed_with_data_error("lin4.model.1.weight"));
    free(path);
    path = dir ? rewrite(dir, "no-conv28.safetensors", false, "features.28.bias") : NULL;
    CHECK(path && !osp_lpips_load(path, OSP_DEVICE_CPU) &&
          failed_with_data_error("features.28.bias"));
    free(path);
    if (dir)
        test_rmtree(dir);
    free(dir);
done:
    osp_lpips_free(vgg);
    osp_lpips_free(alex);
}

int main(void)
{
    RUN(loss_and_grad_y_match_pytorch_32x32);
    RUN(loss_and_grad_x_match_pytorch_40x24);
    RUN(weights_are_frozen);
    RUN(loss_gradcheck);
    RUN(lpips_module_spellings_load_the_same_net);
    RUN(loss_rejects_bad_input);
    return test_summary();
}
