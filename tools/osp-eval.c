/* osp-eval — PSNR, SSIM, LPIPS and FloLPIPS between two videos, or over a
 * list of pairs, as Open-Sora-Plan v1.0.0's evaluation computes them
 * (spec/eval.md): the metrics live in libosp/metrics, the scoring of one
 * pair (load, check that the sides match, score) in common/eval_score.c;
 * this file parses the options, walks the pairs and writes the results
 * as a table, JSON or CSV.
 *
 * Pairs are scored one at a time and reported as they finish, so a list
 * of thousands of pairs runs in the memory of one pair (plus one running
 * sum per frame index and metric). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "common/cli.h"
#include "common/eval_score.h"
#include "core/log.h"
#include "core/progress.h"
#include "metrics/eval_input.h"
#include "metrics/eval_reduce.h"
#include "metrics/flolpips.h"
#include "metrics/metrics.h"

static const char *const metric_names[METRICS] = {"psnr", "ssim", "lpips", "flolpips"};

static const char *opt_metrics, *opt_lpips_model, *opt_flow_model, *opt_format = "table";
static const char *opt_crop, *opt_pairs;
static bool opt_per_frame, opt_keep_going;
static int64_t opt_resolution, opt_frames, opt_sample_rate = 1, opt_reference_batch;

static const cli_option options[] = {
    {.name = "metrics", .kind = CLI_STRING, .metavar = "LIST", .s = &opt_metrics,
     .help = "psnr,ssim,lpips,flolpips (default: all possible)"},
    {.name = "lpips-model", .kind = CLI_STRING, .metavar = "PATH", .s = &opt_lpips_model,
     .help = "LPIPS AlexNet + lin weights (.safetensors or folder)"},
    {.name = "flow-model", .kind = CLI_STRING, .metavar = "PATH", .s = &opt_flow_model,
     .help = "PWC-Net weights for FloLPIPS (.safetensors or folder)"},
    {.name = "format", .kind = CLI_CHOICE, .metavar = "FMT", .choices = "table|json|csv",
     .s = &opt_format, .help = "output format"},
    {.name = "per-frame", .kind = CLI_FLAG, .flag = &opt_per_frame,
     .help = "also list the value of every frame"},
    {.name = "resolution", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 65536,
     .i = &opt_resolution, .help = "scale the short side to N (bilinear) first"},
    {.name = "crop", .kind = CLI_STRING, .metavar = "HxW", .s = &opt_crop,
     .help = "then centre-crop to HxW (or N for NxN)"},
    {.name = "frames", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e9, .i = &opt_frames,
     .help = "compare N frames, picked as the reference does"},
    {.name = "sample-rate", .kind = CLI_INT, .metavar = "R", .min = 1, .max = 1e6,
     .i = &opt_sample_rate, .help = "frame step of that pick (default 1)"},
    {.name = "pairs", .kind = CLI_STRING, .metavar = "LIST", .s = &opt_pairs,
     .help = "score every 'A<TAB>B' line of LIST (- = stdin)"},
    {.name = "reference-batch", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 1e9,
     .i = &opt_reference_batch, .help = "overall mean as the reference's --batch_size N"},
    {.name = "keep-going", .kind = CLI_FLAG, .flag = &opt_keep_going,
     .help = "--pairs: report bad pairs and go on (then exit 3)"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-eval",
    .summary = "Compare videos: PSNR, SSIM, LPIPS and FloLPIPS as Open-Sora-Plan scores them.",
    .args = "A B",
    .details = "A, B: video files, PNG files or folders, or streams holding `video`.",
    .example = "osp-eval real.mp4 rec.mp4 --lpips-model alex.safetensors\n"
               "osp-eval --pairs list.tsv --frames 17 --format json -o scores.json",
    .options = options,
    .min_args = 0,
    .max_args = 2,
};

/* ---- options ---- */

static void parse_metrics(bool on[METRICS])
{
    if (!opt_metrics) {
        on[M_PSNR] = on[M_SSIM] = true;
        on[M_LPIPS] = opt_lpips_model != NULL;
        on[M_FLOLPIPS] = opt_lpips_model && opt_flow_model;
        return;
    }
    for (const char *p = opt_metrics; *p;) {
        size_t n = strcspn(p, ",");
        int m = 0;
        while (m < METRICS && (strlen(metric_names[m]) != n || strncmp(p, metric_names[m], n)))
            m++;
        if (m == METRICS)
            cli_usage_error("--metrics: unknown metric '%.*s' (psnr, ssim, lpips, flolpips)",
                            (int)n, p);
        on[m] = true;
        p += n + (p[n] == ',');
    }
    if ((on[M_LPIPS] || on[M_FLOLPIPS]) && !opt_lpips_model)
        cli_usage_error("--metrics: %s needs --lpips-model PATH",
                        on[M_LPIPS] ? "lpips" : "flolpips");
    if (on[M_FLOLPIPS] && !opt_flow_model)
        cli_usage_error("--metrics: flolpips needs --flow-model PATH (PWC-Net)");
}

static void parse_crop(int64_t *h, int64_t *w)
{
    char tail;
    long long hh, ww;
    int n = sscanf(opt_crop, "%lldx%lld%c", &hh, &ww, &tail);
    if (n == 1 && strchr(opt_crop, 'x') == NULL)
        ww = hh;
    else if (n != 2)
        hh = 0;
    if (hh < 1 || ww < 1 || hh > 65536 || ww > 65536)
        cli_usage_error("--crop: expected HxW or N such as 256, got '%s'", opt_crop);
    *h = hh;
    *w = ww;
}

/* ---- output ---- */

typedef enum { FMT_TABLE, FMT_JSON, FMT_CSV } out_format;

/* A number as the format writes it: shortest round-trip for JSON (null
 * for NaN) and CSV, six significant digits in tables. */
static void put_number(FILE *f, out_format fmt, double v)
{
    if (fmt == FMT_TABLE && isnan(v))
        fprintf(f, "%-12s", "nan"); /* not printf's "-nan" */
    else if (fmt == FMT_TABLE)
        fprintf(f, "%-12.6g", v);
    else
        cli_print_double(f, v, fmt == FMT_JSON ? "null" : NULL);
}

/* The value of series s at frame t, or nothing (CSV) / "-" (table) where
 * a metric has no value (FloLPIPS's last frame). */
static void put_frame_value(FILE *f, out_format fmt, const osp_eval_series *s, int64_t t)
{
    if (t < osp_eval_series_frames(s))
        put_number(f, fmt, osp_eval_series_frame_mean(s, t));
    else if (fmt == FMT_TABLE)
        fprintf(f, "%-12s", "-");
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void json_per_frame(FILE *f, const osp_eval_series *s)
{
    fputs(", \"per_frame\": [", f);
    for (int64_t t = 0; t < osp_eval_series_frames(s); t++) {
        fputs(t ? ", " : "", f);
        cli_print_double(f, osp_eval_series_frame_mean(s, t), "null");
    }
    fputc(']', f);
}

/* {"psnr": {"mean": x[, "per_frame": [...]]}, ...} */
static void json_metrics(FILE *f, const evaluator *ev, osp_eval_series *s, bool per_frame)
{
    fputs("{", f);
    bool first = true;
    for (int m = 0; m < METRICS; m++) {
        if (!ev->on[m])
            continue;
        fprintf(f, "%s\"%s\": {\"mean\": ", first ? "" : ", ", metric_names[m]);
        cli_print_double(f, osp_eval_series_mean(&s[m]), "null");
        if (per_frame)
            json_per_frame(f, &s[m]);
        fputc('}', f);
        first = false;
    }
    fputc('}', f);
}

/* Header cells of the metric columns. */
static void metric_header(FILE *f, const evaluator *ev, out_format fmt)
{
    for (int m = 0; m < METRICS; m++) {
        if (!ev->on[m])
            continue;
        if (fmt == FMT_CSV)
            fprintf(f, ",%s", metric_names[m]);
        else
            fprintf(f, "%-12s", metric_names[m]);
    }
}

/* Rows "<label>,<frame>,<values>" (CSV) or "<frame> <values>" (table). */
static void per_frame_rows(FILE *f, const evaluator *ev, out_format fmt, const char *label,
                           osp_eval_series *s, int64_t frames)
{
    for (int64_t t = 0; t < frames; t++) {
        if (fmt == FMT_CSV)
            fprintf(f, "%s%s%lld", label ? label : "", label ? "," : "", (long long)t);
        else
            fprintf(f, "%-7lld", (long long)t);
        for (int m = 0; m < METRICS; m++) {
            if (!ev->on[m])
                continue;
            if (fmt == FMT_CSV)
                fputc(',', f);
            put_frame_value(f, fmt, &s[m], t);
        }
        fputc('\n', f);
    }
}

static int64_t series_frames(const evaluator *ev, osp_eval_series *s)
{
    int64_t n = 0;
    for (int m = 0; m < METRICS; m++)
        if (ev->on[m] && osp_eval_series_frames(&s[m]) > n)
            n = osp_eval_series_frames(&s[m]);
    return n;
}

/* One comparison (A B): the overall means (and per-frame means over the
 * videos when A and B hold several). */
static void report_single(FILE *f, out_format fmt, evaluator *ev, int64_t frames)
{
    int64_t rows = series_frames(ev, ev->total);
    if (fmt == FMT_JSON) {
        fprintf(f, "{\"frames\": %lld, \"videos\": %lld, \"metrics\": ", (long long)frames,
                (long long)ev->videos);
        json_metrics(f, ev, ev->total, true);
        fputs("}\n", f);
    } else if (fmt == FMT_CSV && opt_per_frame) {
        fputs("frame", f);
        metric_header(f, ev, fmt);
        fputc('\n', f);
        per_frame_rows(f, ev, fmt, NULL, ev->total, rows);
    } else if (fmt == FMT_CSV) {
        fputs("frames", f);
        metric_header(f, ev, fmt);
        fprintf(f, "\n%lld", (long long)frames);
        for (int m = 0; m < METRICS; m++)
            if (ev->on[m]) {
                fputc(',', f);
                put_number(f, fmt, osp_eval_series_mean(&ev->total[m]));
            }
        fputc('\n', f);
    } else {
        if (opt_per_frame) {
            fprintf(f, "%-7s", "frame");
            metric_header(f, ev, fmt);
            fputc('\n', f);
            per_frame_rows(f, ev, fmt, NULL, ev->total, rows);
            fprintf(f, "%-7s", "mean");
            for (int m = 0; m < METRICS; m++)
                if (ev->on[m])
                    put_number(f, fmt, osp_eval_series_mean(&ev->total[m]));
            fputc('\n', f);
        } else {
            for (int m = 0; m < METRICS; m++)
                if (ev->on[m]) {
                    fprintf(f, "%-10s", metric_names[m]);
                    put_number(f, fmt, osp_eval_series_mean(&ev->total[m]));
                    fputc('\n', f);
                }
        }
        fprintf(f, "(%lld frames, %lld video%s)\n", (long long)frames, (long long)ev->videos,
                ev->videos == 1 ? "" : "s");
    }
}

/* --pairs: a header, one record per pair as it finishes, then the totals. */
static void pairs_begin(FILE *f, out_format fmt, const evaluator *ev)
{
    if (fmt == FMT_JSON) {
        fputs("{\"pairs\": [", f);
    } else if (fmt == FMT_CSV) {
        fputs(opt_per_frame ? "pair,frame" : "pair,frames", f);
        metric_header(f, ev, fmt);
        fputs(opt_per_frame ? "\n" : ",a,b\n", f);
    } else {
        fprintf(f, "%-6s%-7s", "pair", "frames");
        metric_header(f, ev, fmt);
        fputs("a  b\n", f);
    }
}

/* A pair left out with --keep-going: JSON names the error, CSV leaves the
 * values empty (no rows with --per-frame), the table prints the error. */
static void pairs_failed(FILE *f, out_format fmt, const evaluator *ev, int64_t index,
                         const char *a, const char *b, const char *error)
{
    if (fmt == FMT_JSON) {
        fprintf(f, "%s\n  {\"pair\": %lld, \"a\": ", index ? "," : "", (long long)index);
        cli_json_string(f, a);
        fputs(", \"b\": ", f);
        cli_json_string(f, b);
        fputs(", \"error\": ", f);
        cli_json_string(f, error);
        fputc('}', f);
    } else if (fmt == FMT_CSV && !opt_per_frame) {
        fprintf(f, "%lld,", (long long)index);
        for (int m = 0; m < METRICS; m++)
            if (ev->on[m])
                fputc(',', f);
        fputc(',', f);
        csv_field(f, a);
        fputc(',', f);
        csv_field(f, b);
        fputc('\n', f);
    } else if (fmt == FMT_TABLE) {
        fprintf(f, "%-6lld%-7s%s  %s  %s\n", (long long)index, "-", error, a, b);
    }
}

static void pairs_record(FILE *f, out_format fmt, const evaluator *ev, int64_t index,
                         const char *a, const char *b, pair_result *r)
{
    if (fmt == FMT_JSON) {
        fprintf(f, "%s\n  {\"pair\": %lld, \"a\": ", index ? "," : "", (long long)index);
        cli_json_string(f, a);
        fputs(", \"b\": ", f);
        cli_json_string(f, b);
        fprintf(f, ", \"videos\": %lld, \"frames\": %lld, \"metrics\": ", (long long)r->videos,
                (long long)r->frames);
        json_metrics(f, ev, r->series, opt_per_frame);
        fputc('}', f);
    } else if (fmt == FMT_CSV && opt_per_frame) {
        char label[32];
        snprintf(label, sizeof label, "%lld", (long long)index);
        per_frame_rows(f, ev, fmt, label, r->series, r->frames);
    } else {
        if (fmt == FMT_CSV)
            fprintf(f, "%lld,%lld", (long long)index, (long long)r->frames);
        else
            fprintf(f, "%-6lld%-7lld", (long long)index, (long long)r->frames);
        for (int m = 0; m < METRICS; m++) {
            if (!ev->on[m])
                continue;
            if (fmt == FMT_CSV)
                fputc(',', f);
            put_number(f, fmt, osp_eval_series_mean(&r->series[m]));
        }
        if (fmt == FMT_CSV) {
            fputc(',', f);
            csv_field(f, a);
            fputc(',', f);
            csv_field(f, b);
            fputc('\n', f);
        } else {
            fprintf(f, "%s  %s\n", a, b);
        }
    }
}

static void pairs_end(FILE *f, out_format fmt, evaluator *ev)
{
    int64_t rows = series_frames(ev, ev->total);
    if (fmt == FMT_JSON) {
        fprintf(f, "%s],\n \"videos\": %lld, \"failed\": %lld, \"frames\": %lld, "
                "\"reference_batch\": ", ev->pairs ? "\n" : "", (long long)ev->videos,
                (long long)ev->failed, (long long)rows);
        if (opt_reference_batch)
            fprintf(f, "%lld", (long long)opt_reference_batch);
        else
            fputs("null", f);
        fputs(",\n \"metrics\": ", f);
        json_metrics(f, ev, ev->total, true);
        fputs("}\n", f);
        return;
    }
    if (fmt == FMT_CSV && opt_per_frame) {
        per_frame_rows(f, ev, fmt, "all", ev->total, rows);
        return;
    }
    if (fmt == FMT_CSV)
        fprintf(f, "all,%lld", (long long)rows);
    else
        fprintf(f, "%-6s%-7lld", "all", (long long)rows);
    for (int m = 0; m < METRICS; m++) {
        if (!ev->on[m])
            continue;
        if (fmt == FMT_CSV)
            fputc(',', f);
        put_number(f, fmt, osp_eval_series_mean(&ev->total[m]));
    }
    fputs(fmt == FMT_CSV ? ",,\n" : "\n", f);
    if (fmt == FMT_TABLE && opt_per_frame) {
        fprintf(f, "\n%-7s", "frame");
        metric_header(f, ev, fmt);
        fputc('\n', f);
        per_frame_rows(f, ev, fmt, NULL, ev->total, rows);
    }
}

/* Table cells are padded for alignment: the rows are written to a buffer
 * first, so the padding at the end of each line can be cut. */
static FILE *table_begin(FILE *f, out_format fmt, char **buf, size_t *len)
{
    FILE *m = fmt == FMT_TABLE ? open_memstream(buf, len) : NULL;
    return m ? m : f;
}

static void table_end(FILE *f, FILE *rows, char **buf)
{
    if (rows == f)
        return;
    fclose(rows); /* sets *buf */
    for (char *line = *buf; *line;) {
        size_t n = strcspn(line, "\n"), end = n;
        while (end > 0 && line[end - 1] == ' ')
            end--;
        fprintf(f, "%.*s\n", (int)end, line);
        line += n + (line[n] == '\n');
    }
    free(*buf);
}

/* ---- the pairs list ---- */

typedef struct pair_list {
    char **a, **b; /* into lines */
    char **lines;
    int64_t n, cap;
} pair_list;

static void pair_list_free(pair_list *l)
{
    for (int64_t i = 0; i < l->n; i++)
        free(l->lines[i]);
    free(l->lines);
    free(l->a);
    free(l->b);
}

static osp_status pair_list_add(pair_list *l, char *line, char *tab)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        char **lines = realloc(l->lines, (size_t)cap * sizeof *lines);
        if (lines)
            l->lines = lines;
        char **a = lines ? realloc(l->a, (size_t)cap * sizeof *a) : NULL;
        if (a)
            l->a = a;
        char **b = a ? realloc(l->b, (size_t)cap * sizeof *b) : NULL;
        if (!b)
            return osp_error_nomem("pairs list", (unsigned long long)cap * sizeof *b);
        l->b = b;
        l->cap = cap;
    }
    *tab = '\0';
    l->lines[l->n] = line;
    l->a[l->n] = line;
    l->b[l->n++] = tab + 1;
    return OSP_OK;
}

/* Reads "A<TAB>B" lines; blank lines and lines starting with '#' are
 * skipped; anything else without exactly two non-empty columns is an
 * error naming the line. */
static osp_status read_pairs(const char *path, pair_list *l)
{
    memset(l, 0, sizeof *l);
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f)
        return osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const char *label = is_stdin ? "stdin" : path;
    osp_status st = OSP_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (int64_t lineno = 1; !st && (len = getline(&line, &cap, f)) >= 0; lineno++) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t')) {
            st = osp_error(OSP_ERR_DATA, "%s:%lld: expected two columns 'A<TAB>B'", label,
                           (long long)lineno);
            break;
        }
        st = pair_list_add(l, line, tab);
        if (!st) { /* the list owns it now */
            line = NULL;
            cap = 0;
        }
    }
    if (!st && ferror(f))
        st = osp_error(OSP_ERR_IO, "%s: read failed", label);
    if (!st && l->n == 0)
        st = osp_error(OSP_ERR_DATA, "%s: no pairs", label);
    free(line);
    if (!is_stdin)
        fclose(f);
    if (st)
        pair_list_free(l);
    return st;
}

/* ---- main ---- */

static osp_status run_pairs(evaluator *ev, FILE *f, out_format fmt)
{
    pair_list list;
    osp_status st = read_pairs(opt_pairs, &list);
    if (st)
        return st;
    osp_progress_start(&ev->progress, "osp-eval", list.n);
    char *buf;
    size_t len;
    FILE *rows = table_begin(f, fmt, &buf, &len);
    pairs_begin(rows, fmt, ev);
    table_end(f, rows, &buf);
    for (int64_t i = 0; i < list.n && !st; i++) {
        pair_result r;
        st = eval_score_pair(ev, list.a[i], list.b[i], &r);
        bool skip = opt_keep_going && (st == OSP_ERR_DATA || st == OSP_ERR_IO);
        if (st && !skip)
            osp_error_context("pair %lld", (long long)i);
        rows = table_begin(f, fmt, &buf, &len);
        if (!st)
            pairs_record(rows, fmt, ev, i, list.a[i], list.b[i], &r);
        else if (skip)
            pairs_failed(rows, fmt, ev, i, list.a[i], list.b[i], osp_error_message());
        table_end(f, rows, &buf);
        if (skip) {
            osp_log_warn("pair %lld: %s (left out)", (long long)i, osp_error_message());
            osp_error_clear();
            ev->failed++;
            st = OSP_OK;
        }
        eval_pair_result_free(&r);
    }
    osp_progress_end(&ev->progress);
    if (!st) {
        rows = table_begin(f, fmt, &buf, &len);
        pairs_end(rows, fmt, ev);
        table_end(f, rows, &buf);
    }
    pair_list_free(&list);
    return st;
}

static osp_status run_single(evaluator *ev, FILE *f, out_format fmt, const char *a,
                             const char *b)
{
    osp_progress_start(&ev->progress, "osp-eval", 1);
    pair_result r;
    osp_status st = eval_score_pair(ev, a, b, &r);
    osp_progress_end(&ev->progress);
    if (!st) {
        char *buf;
        size_t len;
        FILE *rows = table_begin(f, fmt, &buf, &len);
        report_single(rows, fmt, ev, r.frames);
        table_end(f, rows, &buf);
    }
    eval_pair_result_free(&r);
    return st;
}

int main(int argc, char **argv)
{
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    if (opt_pairs && common.argc)
        cli_usage_error("--pairs LIST takes no A B arguments");
    if (!opt_pairs && common.argc != 2)
        cli_usage_error("expected A and B (or --pairs LIST), got %d argument%s", common.argc,
                        common.argc == 1 ? "" : "s");
    if (!opt_pairs && strcmp(common.argv[0], "-") == 0 && strcmp(common.argv[1], "-") == 0)
        cli_usage_error("only one of A and B can be - (stdin)");

    evaluator ev = {.input = {.num_frames = opt_frames, .sample_rate = opt_sample_rate,
                              .resolution = opt_resolution}};
    parse_metrics(ev.on);
    if (opt_crop)
        parse_crop(&ev.input.crop_h, &ev.input.crop_w);
    for (int m = 0; m < METRICS; m++)
        osp_eval_series_init(&ev.total[m], opt_reference_batch);
    out_format fmt = strcmp(opt_format, "json") == 0 ? FMT_JSON
                     : strcmp(opt_format, "csv") == 0 ? FMT_CSV : FMT_TABLE;

    osp_status st = OSP_OK;
    if (ev.on[M_LPIPS] || ev.on[M_FLOLPIPS])
        st = (ev.lpips = osp_lpips_load(opt_lpips_model, common.device)) ? OSP_OK
                                                                           : osp_error_code();
    if (!st && ev.on[M_FLOLPIPS])
        st = (ev.pwc = osp_pwcnet_load(opt_flow_model, common.device)) ? OSP_OK
                                                                        : osp_error_code();
    cli_output out;
    if (!st)
        st = cli_output_open(&out, common.output);
    if (!st) {
        st = opt_pairs ? run_pairs(&ev, out.f, fmt)
                       : run_single(&ev, out.f, fmt, common.argv[0], common.argv[1]);
        osp_status close_st = cli_output_close(&out, st == OSP_OK);
        st = st ? st : close_st;
    }
    if (!st && ev.failed) {
        osp_error(OSP_ERR_DATA, "%lld of %lld pairs left out (see the warnings above)",
                  (long long)ev.failed, (long long)ev.pairs);
        st = OSP_ERR_DATA;
    }
    for (int m = 0; m < METRICS; m++)
        osp_eval_series_free(&ev.total[m]);
    osp_lpips_free(ev.lpips);
    osp_pwcnet_free(ev.pwc);
    return st ? osp_log_failure() : 0;
}
