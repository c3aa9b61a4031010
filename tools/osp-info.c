/* osp-info — lists the tensors of an osp tensor stream, a safetensors file
 * or a model folder: name, dtype, shape, stream meta, and with --stats the
 * min, max, mean and std of the finite values (in double, over the values
 * widened from their stored dtype) with NaN and Inf counts.
 *
 * Everything is read and checked before anything is printed, so a bad
 * input yields one error line and no half listing. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cli.h"
#include "core/log.h"
#include "io/model.h"
#include "io/stream.h"

static bool opt_stats;
static const char *opt_format = "table";

static const cli_option options[] = {
    {.name = "stats", .kind = CLI_FLAG, .flag = &opt_stats,
     .help = "add min, max, mean, std and NaN/Inf counts"},
    {.name = "format", .kind = CLI_CHOICE, .metavar = "FMT", .choices = "table|json",
     .s = &opt_format, .help = "output format"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-info",
    .summary = "List the tensors of an osp tensor stream, a safetensors file or a model folder.",
    .args = "[INPUT]",
    .details = "INPUT: a stream file, a .safetensors file, a model folder (config.json and\n"
               "one or sharded safetensors files), or - for stdin (the default).",
    .example = "osp-info --stats examples/data/sample.msgpack\n"
               "osp-info --format json Open-Sora-Plan-v1.0.0/vae",
    .options = options,
    .min_args = 0,
    .max_args = 1,
    .stdin_input = true,
};

/* ---- what is listed ---- */

typedef struct tensor_stats {
    int64_t finite, nan, inf;
    double min, max, mean, std; /* over the finite values; NaN when there are none */
} tensor_stats;

typedef struct info_row {
    char *name;
    osp_dtype dtype;
    int ndim;
    int64_t shape[OSP_MAX_DIMS];
    bool has_meta; /* stream tensors only */
    osp_meta meta;
    bool has_stats;
    tensor_stats stats;
} info_row;

typedef enum input_kind { KIND_STREAM, KIND_SAFETENSORS, KIND_MODEL } input_kind;
static const char *const kind_names[] = {"stream", "safetensors", "model"};

typedef struct info {
    const char *source; /* as given; "-" for stdin */
    input_kind kind;
    char *config; /* model folders: path of config.json, or NULL */
    info_row *rows;
    size_t n, cap;
} info;

static void info_free(info *in)
{
    for (size_t i = 0; i < in->n; i++) {
        free(in->rows[i].name);
        if (in->rows[i].has_meta)
            osp_meta_free(&in->rows[i].meta);
    }
    free(in->rows);
    free(in->config);
}

static info_row *info_add(info *in, const char *name, osp_dtype dtype, int ndim,
                          const int64_t *shape)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? 2 * in->cap : 64;
        info_row *rows = realloc(in->rows, cap * sizeof *rows);
        if (!rows) {
            osp_error_nomem("tensor list", cap * sizeof *rows);
            return NULL;
        }
        in->rows = rows;
        in->cap = cap;
    }
    info_row *r = &in->rows[in->n];
    *r = (info_row){.dtype = dtype, .ndim = ndim, .name = strdup(name)};
    if (!r->name) {
        osp_error_nomem("tensor name", strlen(name));
        return NULL;
    }
    memcpy(r->shape, shape, (size_t)ndim * sizeof *shape);
    in->n++;
    return r;
}

/* ---- statistics ---- */

/* Chunks are widened to double; each chunk's mean and sum of squared
 * deviations are merged into the running ones (Chan et al.), which keeps
 * the std accurate without a second pass over the data. */
static osp_status compute_stats(osp_tensor *t, tensor_stats *s)
{
    enum { CHUNK = 4096 };
    double buf[CHUNK];
    *s = (tensor_stats){.min = INFINITY, .max = -INFINITY};
    osp_tensor *c = osp_tensor_contiguous(t);
    if (!c)
        return osp_error_code();
    const unsigned char *p = osp_data(c);
    size_t item = osp_dtype_size(c->dtype);
    int64_t n = osp_numel(c);
    double m2 = 0;
    for (int64_t start = 0; start < n; start += CHUNK) {
        size_t len = (size_t)(n - start < CHUNK ? n - start : CHUNK);
        osp_convert(buf, OSP_F64, p + (size_t)start * item, c->dtype, len);
        size_t k = 0; /* finite values are compacted to the front of buf */
        double sum = 0;
        for (size_t i = 0; i < len; i++) {
            double v = buf[i];
            if (isnan(v)) {
                s->nan++;
            } else if (isinf(v)) {
                s->inf++;
            } else {
                buf[k++] = v;
                sum += v;
                s->min = v < s->min ? v : s->min;
                s->max = v > s->max ? v : s->max;
            }
        }
        if (!k)
            continue;
        double chunk_mean = sum / (double)k, chunk_m2 = 0;
        for (size_t i = 0; i < k; i++)
            chunk_m2 += (buf[i] - chunk_mean) * (buf[i] - chunk_mean);
        double total = (double)(s->finite + (int64_t)k);
        double delta = chunk_mean - s->mean;
        s->mean += delta * (double)k / total;
        m2 += chunk_m2 + delta * delta * (double)s->finite * (double)k / total;
        s->finite += (int64_t)k;
    }
    if (s->finite) {
        s->std = sqrt(m2 / (double)s->finite);
    } else {
        s->min = s->max = s->mean = s->std = NAN;
    }
    return OSP_OK;
}

/* ---- readers ---- */

static osp_status read_stream(info *in, const char *path)
{
    osp_stream_reader *r = osp_stream_open_read(path);
    if (!r)
        return osp_error_code();
    osp_status st;
    for (;;) {
        osp_named_tensor nt = {0};
        bool got = false;
        st = osp_stream_read(r, &nt, &got);
        if (st || !got)
            break;
        osp_tensor *t = nt.tensor;
        info_row *row = info_add(in, nt.name, t->dtype, t->ndim, t->shape);
        st = row ? OSP_OK : osp_error_code();
        if (!st) {
            st = osp_meta_copy(&row->meta, &nt.meta);
            row->has_meta = st == OSP_OK;
        }
        if (!st && opt_stats) {
            osp_pool_push();
            st = compute_stats(t, &row->stats);
            osp_pool_pop();
            row->has_stats = st == OSP_OK;
        }
        osp_named_tensor_free(&nt);
        if (st)
            break;
    }
    osp_stream_close_read(r);
    return st;
}

/* A safetensors file or a model folder: both go through osp_model_dir. */
static osp_status read_checkpoint(info *in, const char *path)
{
    osp_model_dir *m = osp_model_open(path);
    if (!m)
        return osp_error_code();
    osp_status st = OSP_OK;
    if (in->kind == KIND_MODEL && osp_model_config(m)) {
        size_t len = strlen(path) + sizeof "/config.json";
        in->config = malloc(len);
        if (!in->config)
            st = osp_error_nomem("file name", len);
        else
            snprintf(in->config, len, "%s%sconfig.json", path,
                     path[strlen(path) - 1] == '/' ? "" : "/");
    }
    size_t n = osp_model_tensor_count(m);
    for (size_t i = 0; i < n && !st; i++) {
        const osp_st_entry *e = osp_model_entry(m, i);
        info_row *row = info_add(in, e->name, e->dtype, e->ndim, e->shape);
        if (!row) {
            st = osp_error_code();
            break;
        }
        if (opt_stats) {
            osp_pool_push();
            osp_tensor *t = osp_model_get_raw(m, e->name);
            st = t ? compute_stats(t, &row->stats) : osp_error_code();
            osp_pool_pop();
            row->has_stats = st == OSP_OK;
        }
    }
    osp_model_close(m);
    return st;
}

/* Directory -> model folder; a file that starts with a little-endian u64
 * header length that fits the file, followed by '{' -> safetensors;
 * anything else (and stdin) -> stream, whose reader judges it. */
static osp_status detect_kind(const char *path, input_kind *kind)
{
    *kind = KIND_STREAM;
    if (!path || strcmp(path, "-") == 0)
        return OSP_OK;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        *kind = KIND_MODEL;
        return OSP_OK;
    }
    if (!S_ISREG(sb.st_mode))
        return OSP_OK; /* a FIFO or device: read it as a stream */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[9];
    ssize_t got = pread(fd, head, sizeof head, 0);
    int err = errno;
    close(fd);
    if (got < 0)
        return osp_error(OSP_ERR_IO, "%s: read failed: %s", path, strerror(err));
    if (got == (ssize_t)sizeof head && head[8] == '{') {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--)
            len = len << 8 | head[i];
        if (len >= 2 && len <= (uint64_t)sb.st_size - 8)
            *kind = KIND_SAFETENSORS;
    }
    return OSP_OK;
}

/* ---- output ---- */

static void print_meta_value(FILE *f, const osp_meta_value *v, bool json)
{
    switch (v->kind) {
    case OSP_META_STR: cli_json_string(f, v->s); break;
    case OSP_META_INT: fprintf(f, "%lld", (long long)v->i); break;
    case OSP_META_FLOAT: cli_print_double(f, v->f, json ? "null" : NULL); break;
    case OSP_META_BOOL: fputs(v->b ? "true" : "false", f); break;
    case OSP_META_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < v->array.n; i++) {
            fputs(i ? ", " : "", f);
            print_meta_value(f, &v->array.items[i], json);
        }
        fputc(']', f);
        break;
    }
}

static void print_shape(FILE *f, const info_row *r)
{
    fputc('[', f);
    for (int d = 0; d < r->ndim; d++)
        fprintf(f, "%s%lld", d ? ", " : "", (long long)r->shape[d]);
    fputc(']', f);
}

static void print_json(FILE *f, const info *in)
{
    fputs("{\"source\": ", f);
    cli_json_string(f, in->source);
    fprintf(f, ", \"kind\": \"%s\"", kind_names[in->kind]);
    if (in->kind == KIND_MODEL) {
        fputs(", \"config\": ", f);
        if (in->config)
            cli_json_string(f, in->config);
        else
            fputs("null", f);
    }
    fputs(", \"tensors\": [", f);
    for (size_t i = 0; i < in->n; i++) {
        const info_row *r = &in->rows[i];
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
        cli_json_string(f, r->name);
        fprintf(f, ", \"dtype\": \"%s\", \"shape\": ", osp_dtype_name(r->dtype));
        print_shape(f, r);
        if (r->has_meta) {
            fputs(", \"meta\": {", f);
            for (size_t k = 0; k < r->meta.n; k++) {
                fputs(k ? ", " : "", f);
                cli_json_string(f, r->meta.keys[k]);
                fputs(": ", f);
                print_meta_value(f, &r->meta.values[k], true);
            }
            fputc('}', f);
        }
        if (r->has_stats) {
            const tensor_stats *s = &r->stats;
            const double v[] = {s->min, s->max, s->mean, s->std};
            const char *const k[] = {"min", "max", "mean", "std"};
            fputs(", \"stats\": {", f);
            for (int j = 0; j < 4; j++) {
                fprintf(f, "\"%s\": ", k[j]);
                cli_print_double(f, v[j], "null");
                fputs(", ", f);
            }
            fprintf(f, "\"finite\": %lld, \"nan\": %lld, \"inf\": %lld}", (long long)s->finite,
                    (long long)s->nan, (long long)s->inf);
        }
        fputc('}', f);
    }
    fputs(in->n ? "\n]}\n" : "]}\n", f);
}

/* One table cell per column, so column widths can be measured by printing
 * every cell to a scratch buffer first. */
enum { COL_NAME, COL_DTYPE, COL_SHAPE, COL_MIN, COL_MAX, COL_MEAN, COL_STD, COL_NAN, COL_INF,
       COL_META, COL_COUNT };
static const char *const col_titles[COL_COUNT] = {"NAME", "DTYPE", "SHAPE", "MIN", "MAX",
                                                  "MEAN", "STD", "NAN", "INF", "META"};

static bool col_shown(const info *in, int col)
{
    if (col >= COL_MIN && col <= COL_INF)
        return opt_stats;
    return col != COL_META || in->kind == KIND_STREAM;
}

static void print_cell(FILE *f, const info_row *r, int col)
{
    const tensor_stats *s = &r->stats;
    switch (col) {
    case COL_NAME: fputs(r->name, f); break;
    case COL_DTYPE: fputs(osp_dtype_name(r->dtype), f); break;
    case COL_SHAPE: print_shape(f, r); break;
    case COL_MIN: case COL_MAX: case COL_MEAN: case COL_STD: {
        double v = col == COL_MIN ? s->min : col == COL_MAX ? s->max
                 : col == COL_MEAN ? s->mean : s->std;
        if (s->finite)
            fprintf(f, "%.6g", v);
        else
            fputc('-', f);
        break;
    }
    case COL_NAN: fprintf(f, "%lld", (long long)s->nan); break;
    case COL_INF: fprintf(f, "%lld", (long long)s->inf); break;
    case COL_META:
        for (size_t k = 0; k < r->meta.n; k++) {
            fprintf(f, "%s%s=", k ? " " : "", r->meta.keys[k]);
            print_meta_value(f, &r->meta.values[k], false);
        }
        break;
    }
}

/* Every cell is rendered once, so the columns can be measured. */
static osp_status print_table(FILE *f, const info *in)
{
    int width[COL_COUNT], last = COL_SHAPE; /* the last shown column is not padded */
    char **cells = calloc(in->n * COL_COUNT + 1, sizeof *cells);
    if (!cells)
        return osp_error_nomem("table", in->n * COL_COUNT * sizeof *cells);
    osp_status st = OSP_OK;
    for (int c = 0; c < COL_COUNT; c++) {
        width[c] = (int)strlen(col_titles[c]);
        for (size_t i = 0; i < in->n && col_shown(in, c) && !st; i++) {
            size_t len = 0;
            FILE *m = open_memstream(&cells[i * COL_COUNT + c], &len);
            if (!m) {
                st = osp_error_nomem("table cell", 64);
                break;
            }
            print_cell(m, &in->rows[i], c);
            if (fclose(m) != 0)
                st = osp_error_nomem("table cell", len);
            width[c] = (int)len > width[c] ? (int)len : width[c];
        }
        if (col_shown(in, c))
            last = c;
    }
    for (int c = 0; c < COL_COUNT && !st; c++)
        if (col_shown(in, c))
            fprintf(f, "%-*s%s", c == last ? 0 : width[c], col_titles[c], c == last ? "\n" : "  ");
    for (size_t i = 0; i < in->n && !st; i++) {
        char **row = &cells[i * COL_COUNT];
        int end = COL_NAME; /* no trailing blanks: stop at the last non-empty cell */
        for (int c = 0; c < COL_COUNT; c++)
            if (col_shown(in, c) && row[c][0])
                end = c;
        for (int c = 0; c < end; c++)
            if (col_shown(in, c))
                fprintf(f, "%-*s  ", width[c], row[c]);
        fprintf(f, "%s\n", row[end]);
    }
    for (size_t i = 0; i < in->n * COL_COUNT; i++)
        free(cells[i]);
    free(cells);
    if (st)
        return st;

    /* Summary: tensor count, element count and bytes (saturating: a listing
     * never fails on an absurd total). */
    uint64_t values = 0, bytes = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint64_t v = 1;
        for (int d = 0; d < in->rows[i].ndim; d++)
            if (__builtin_mul_overflow(v, (uint64_t)in->rows[i].shape[d], &v))
                v = UINT64_MAX;
        uint64_t b;
        if (__builtin_mul_overflow(v, osp_dtype_size(in->rows[i].dtype), &b))
            b = UINT64_MAX;
        values = __builtin_add_overflow(values, v, &values) ? UINT64_MAX : values;
        bytes = __builtin_add_overflow(bytes, b, &bytes) ? UINT64_MAX : bytes;
    }
    fprintf(f, "%zu tensor%s, %llu values, %llu bytes (%s %s)", in->n, in->n == 1 ? "" : "s",
            (unsigned long long)values, (unsigned long long)bytes, kind_names[in->kind],
            strcmp(in->source, "-") == 0 ? "stdin" : in->source);
    if (in->config)
        fprintf(f, ", config %s", in->config);
    fputc('\n', f);
    return OSP_OK;
}

int main(int argc, char **argv)
{
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    const char *path = common.argc ? common.argv[0] : "-";

    info in = {.source = path};
    osp_status st = detect_kind(path, &in.kind);
    if (!st)
        st = in.kind == KIND_STREAM ? read_stream(&in, path) : read_checkpoint(&in, path);
    if (!st) {
        cli_output out;
        st = cli_output_open(&out, common.output);
        if (!st) {
            if (strcmp(opt_format, "json") == 0)
                print_json(out.f, &in);
            else
                st = print_table(out.f, &in);
            osp_status close_st = cli_output_close(&out, st == OSP_OK);
            st = st ? st : close_st;
        }
    }
    info_free(&in);
    return st ? osp_log_failure() : 0;
}
