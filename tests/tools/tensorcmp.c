/* tensorcmp — compares a tensor of an osp stream with a tensor of a
 * safetensors file, with the fixture tolerance rule, so bats suites can
 * check tool outputs against fixtures.
 *
 *   tensorcmp STREAM NAME SAFETENSORS KEY TOL [SCALE]
 *
 * (the expected file may also be an osp stream, KEY then naming its tensor;
 * NAME@AXIS:START:END compares that slice of the stream tensor)
 *
 * Passes (exit 0) when max |got - SCALE*want| <= TOL * max(1, max |SCALE*want|);
 * prints the error either way; exit 1 on a mismatch, 2 on bad arguments or
 * unreadable inputs.
 *
 *   tensorcmp --files GOT.safetensors WANT.safetensors TOL
 *
 * compares two whole files (two devices' training checkpoints): the same
 * names and shapes, ||got - want|| / ||want|| <= TOL over all tensors
 * together, and for each tensor against the larger of its norm and its
 * share of the file's; prints both errors and the worst tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/safetensors.h"
#include "io/stream.h"

static osp_tensor *from_stream(const char *path, const char *name)
{
    osp_stream_reader *r = osp_stream_open_read(path);
    osp_tensor *found = NULL;
    for (bool got = true; r && got && !found;) {
        osp_named_tensor nt = {0};
        if (osp_stream_read(r, &nt, &got) || !got)
            break;
        if (strcmp(nt.name, name) == 0)
            found = osp_tensor_to_dtype(nt.tensor, OSP_F32);
        osp_named_tensor_free(&nt);
    }
    osp_stream_close_read(r);
    return found;
}

/* NAME or NAME@AXIS:START:END of a stream. */
static osp_tensor *from_stream_slice(const char *path, const char *spec)
{
    char name[128];
    int axis;
    long long start, end;
    const char *at = strchr(spec, '@');
    if (!at || (size_t)(at - spec) >= sizeof name)
        return from_stream(path, spec);
    snprintf(name, sizeof name, "%.*s", (int)(at - spec), spec);
    if (sscanf(at + 1, "%d:%lld:%lld", &axis, &start, &end) != 3)
        return NULL;
    osp_tensor *t = from_stream(path, name);
    return t ? osp_contiguous(osp_slice(t, axis, start, end, 1)) : NULL;
}

/* The comparison; its tensors belong to the caller's pool. */
static int compare(char **argv, double tol, double scale, osp_safetensors *st)
{
    osp_tensor *got = from_stream_slice(argv[1], argv[2]);
    osp_tensor *want = st ? osp_tensor_to_dtype(osp_safetensors_get(st, argv[4]), OSP_F32)
                          : from_stream(argv[3], argv[4]);
    if (!got || !want) {
        fprintf(stderr, "tensorcmp: %s\n", !got ? "tensor not in the stream"
                                                : osp_error_message());
        return 2;
    }
    if (osp_numel(got) != osp_numel(want) || !osp_same_shape(got, want)) {
        fprintf(stderr, "tensorcmp: shapes differ\n");
        return 1;
    }
    double bound = 1.0, err = 0.0;
    const float *g = osp_f32(got), *w = osp_f32(want);
    for (int64_t i = 0; i < osp_numel(want); i++) {
        double ref = scale * w[i];
        bound = fmax(bound, fabs(ref));
        double d = fabs(g[i] - ref);
        err = d > err || d != d ? d : err;
    }
    printf("max abs error %.3g, bound %.3g\n", err, tol * bound);
    return err <= tol * bound ? 0 : 1;
}

/* Σ (g - w)², Σ w² of one pair. */
static void sums(const osp_tensor *got, const osp_tensor *want, double *diff2, double *want2)
{
    const float *g = osp_f32(got), *w = osp_f32(want);
    *diff2 = *want2 = 0;
    for (int64_t i = 0; i < osp_numel(want); i++) {
        double d = (double)g[i] - w[i];
        *diff2 += d * d;
        *want2 += (double)w[i] * w[i];
    }
}

static int compare_files(const char *got_path, const char *want_path, double tol)
{
    osp_safetensors *a = osp_safetensors_open(got_path), *b = osp_safetensors_open(want_path);
    int rc = a && b ? 0 : 2;
    if (rc)
        fprintf(stderr, "tensorcmp: %s\n", osp_error_message());
    if (!rc && osp_safetensors_count(a) != osp_safetensors_count(b)) {
        fprintf(stderr, "tensorcmp: %zu tensors against %zu\n", osp_safetensors_count(a),
                osp_safetensors_count(b));
        rc = 1;
    }
    size_t count = rc ? 0 : osp_safetensors_count(b);
    double *d2 = calloc(count + 1, sizeof *d2), *w2 = calloc(count + 1, sizeof *w2);
    double *numel = calloc(count + 1, sizeof *numel);
    if (!d2 || !w2 || !numel) {
        fprintf(stderr, "tensorcmp: out of memory\n");
        rc = 2;
    }
    double diff2 = 0, want2 = 0, elements = 0;
    for (size_t i = 0; !rc && i < count; i++) {
        const char *name = osp_safetensors_entry(b, i)->name;
        osp_tensor *w = osp_tensor_to_dtype(osp_safetensors_get(b, name), OSP_F32);
        osp_tensor *g = osp_safetensors_find(a, name)
                            ? osp_tensor_to_dtype(osp_safetensors_get(a, name), OSP_F32)
                            : NULL;
        if (!g || !w || !osp_same_shape(g, w)) {
            fprintf(stderr, "tensorcmp: %s missing or shaped differently\n", name);
            rc = 1;
            break;
        }
        sums(g, w, &d2[i], &w2[i]);
        numel[i] = (double)osp_numel(w);
        diff2 += d2[i];
        want2 += w2[i];
        elements += numel[i];
    }
    /* Each tensor too, against the larger of its own norm and its share
     * of the file's (sqrt of its fraction of the elements): a gradient
     * that is zero by construction (a key bias under softmax) compares
     * as rounding noise, any other within TOL of itself. */
    double worst = -1;
    const char *worst_name = "";
    for (size_t i = 0; !rc && i < count; i++) {
        double share = elements > 0 ? want2 * numel[i] / elements : 0;
        double scale = w2[i] > share ? w2[i] : share;
        double rel = scale > 0 ? sqrt(d2[i] / scale) : sqrt(d2[i]);
        if (rel > worst || rel != rel) {
            worst = rel;
            worst_name = osp_safetensors_entry(b, i)->name;
        }
    }
    if (!rc) {
        double err = want2 > 0 ? sqrt(diff2 / want2) : sqrt(diff2);
        printf("||got - want|| / ||want|| = %.3g, worst tensor %s %.3g (tolerance %.0e)\n", err,
               worst_name, worst, tol);
        rc = err <= tol && worst <= tol ? 0 : 1;
    }
    free(d2);
    free(w2);
    free(numel);
    osp_safetensors_close(a);
    osp_safetensors_close(b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--files") == 0) {
        osp_pool_push();
        int rc = compare_files(argv[2], argv[3], atof(argv[4]));
        osp_pool_pop();
        return rc;
    }
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: tensorcmp STREAM NAME SAFETENSORS KEY TOL [SCALE]\n"
                        "       tensorcmp --files GOT.safetensors WANT.safetensors TOL\n");
        return 2;
    }
    double tol = atof(argv[5]), scale = argc == 7 ? atof(argv[6]) : 1.0;
    osp_pool_push(); /* freed before exit, so leak checkers stay quiet */
    osp_safetensors *st = osp_stream_sniff(argv[3]) ? NULL : osp_safetensors_open(argv[3]);
    int rc = compare(argv, tol, scale, st);
    osp_pool_pop();
    osp_safetensors_close(st);
    return rc;
}
