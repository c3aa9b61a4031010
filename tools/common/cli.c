/* cli.c — see cli.h. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#ifdef OSP_CUDA
#include "backend/cuda/cuda.h"
#endif
#include "core/log.h"

enum { CLI_MAX_OPTIONS = 64 }; /* a tool's own plus the common ones */

/* The options of every tool (spec/cli.md), after the tool's own in --help. */
static bool opt_help, opt_version, opt_quiet, opt_verbose;
static const char *opt_output, *opt_device;
static int64_t opt_threads;

static const cli_option common_options[] = {
    {.name = "output", .short_name = 'o', .kind = CLI_STRING, .metavar = "FILE",
     .help = "write to FILE instead of stdout (- = stdout)", .s = &opt_output},
    {.name = "quiet", .short_name = 'q', .kind = CLI_FLAG,
     .help = "print errors only", .flag = &opt_quiet},
    {.name = "verbose", .short_name = 'v', .kind = CLI_FLAG,
     .help = "print debug messages too", .flag = &opt_verbose},
    {.name = "device", .kind = CLI_CHOICE, .metavar = "DEV", .choices = "cpu|cuda",
     .help = "compute device: cpu, or cuda (the default when usable)", .s = &opt_device},
    {.name = "threads", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 4096,
     .help = "CPU worker threads (default: all cores)", .i = &opt_threads},
    {.name = "help", .short_name = 'h', .kind = CLI_FLAG,
     .help = "show this help and exit", .flag = &opt_help},
    {.name = "version", .kind = CLI_FLAG,
     .help = "show the version and exit", .flag = &opt_version},
    {0},
};

_Noreturn void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", osp_log_program());
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(OSP_ERR_USAGE);
}

/* ---- option tables ---- */

static size_t table_len(const cli_option *t)
{
    size_t n = 0;
    while (t && t[n].name)
        n++;
    return n;
}

/* The i-th option over the tool's table followed by the common one. */
static const cli_option *option_at(const cli_tool *tool, size_t i)
{
    size_t n_tool = table_len(tool->options);
    return i < n_tool ? &tool->options[i] : &common_options[i - n_tool];
}

static size_t option_count(const cli_tool *tool)
{
    return table_len(tool->options) + table_len(common_options);
}

/* The option getopt_long reported as `c`: 256 + its index, or its short
 * name; NULL for none (an unknown option). */
static const cli_option *option_for(const cli_tool *tool, int c)
{
    size_t n = option_count(tool);
    if (c >= 256)
        return (size_t)(c - 256) < n ? option_at(tool, (size_t)(c - 256)) : NULL;
    for (size_t i = 0; i < n && c; i++)
        if (option_at(tool, i)->short_name == c)
            return option_at(tool, i);
    return NULL;
}

static bool has_range(const cli_option *o) { return o->min != 0 || o->max != 0; }

/* "an integer >= 1", "a number in [0, 1]", "an integer" */
static void describe_expected(const cli_option *o, char *buf, size_t len)
{
    const char *what = o->kind == CLI_INT ? "an integer" : "a number";
    if (!has_range(o) || (isinf(o->min) && isinf(o->max)))
        snprintf(buf, len, "%s", what);
    else if (isinf(o->max))
        snprintf(buf, len, "%s >= %g", what, o->min);
    else if (isinf(o->min))
        snprintf(buf, len, "%s <= %g", what, o->max);
    else
        snprintf(buf, len, "%s in [%g, %g]", what, o->min, o->max);
}

static bool in_range(const cli_option *o, double v)
{
    return !has_range(o) || (v >= o->min && v <= o->max);
}

static bool is_choice(const char *choices, const char *value)
{
    size_t len = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0)
            return true;
        p += n + (bar != NULL);
    }
    return false;
}

static void set_value(const cli_option *o, const char *arg)
{
    char expected[96], *end;
    switch (o->kind) {
    case CLI_FLAG:
        *o->flag = true;
        /* -q and -v: the later one wins */
        if (o->flag == &opt_quiet)
            opt_verbose = false;
        else if (o->flag == &opt_verbose)
            opt_quiet = false;
        return;
    case CLI_INT: {
        errno = 0;
        long long v = strtoll(arg, &end, 10);
        if (end == arg || *end || errno || !in_range(o, (double)v)) {
            describe_expected(o, expected, sizeof expected);
            cli_usage_error("--%s: expected %s, got '%s'", o->name, expected, arg);
        }
        *o->i = v;
        return;
    }
    case CLI_NUMBER: {
        errno = 0;
        double v = strtod(arg, &end);
        if (end == arg || *end || errno || !isfinite(v) || !in_range(o, v)) {
            describe_expected(o, expected, sizeof expected);
            cli_usage_error("--%s: expected %s, got '%s'", o->name, expected, arg);
        }
        *o->f = v;
        return;
    }
    case CLI_CHOICE:
        if (!is_choice(o->choices, arg))
            cli_usage_error("--%s: expected one of %s, got '%s'", o->name, o->choices, arg);
        *o->s = arg;
        return;
    case CLI_STRING:
        *o->s = arg;
        return;
    }
}

/* ---- help ---- */

static void option_left_column(const cli_option *o, char *buf, size_t len)
{
    char shortpart[8] = "    ";
    if (o->short_name)
        snprintf(shortpart, sizeof shortpart, "-%c, ", o->short_name);
    if (o->kind == CLI_FLAG)
        snprintf(buf, len, "  %s--%s", shortpart, o->name);
    else
        snprintf(buf, len, "  %s--%s %s", shortpart, o->name, o->metavar ? o->metavar : "ARG");
}

/* The tool's own options one a line; the common ones (identical in every
 * tool and documented in every man page) in one compact paragraph, so the
 * whole help fits a 24-line screen. */
static void print_help(const cli_tool *tool, FILE *f)
{
    fprintf(f, "Usage: %s [OPTIONS]%s%s\n%s\n", tool->name, tool->args ? " " : "",
            tool->args ? tool->args : "", tool->summary);
    size_t n = table_len(tool->options);
    int width = 0;
    char left[96];
    for (size_t i = 0; i < n; i++) {
        option_left_column(&tool->options[i], left, sizeof left);
        int w = (int)strlen(left);
        width = w > width ? w : width;
    }
    for (size_t i = 0; i < n; i++) {
        const cli_option *o = &tool->options[i];
        option_left_column(o, left, sizeof left);
        fprintf(f, "%-*s  %s", width, left, o->help);
        if (o->kind == CLI_CHOICE)
            fprintf(f, " (%s%s%s)", o->choices, *o->s ? "; default " : "", *o->s ? *o->s : "");
        fputc('\n', f);
    }
    fprintf(f, "Common options: -o/--output FILE, -q/--quiet, -v/--verbose, --device cpu|cuda,\n"
               "  --threads N, -h/--help, --version  (exit status and more: %s(1))\n",
            tool->name);
    if (tool->details)
        fprintf(f, "%s\n", tool->details);
    if (tool->example && !strchr(tool->example, '\n') && strlen(tool->example) <= 80 - 9) {
        fprintf(f, "Example: %s\n", tool->example); /* one short example: one line */
    } else if (tool->example) {
        fputs("Example:\n  ", f);
        for (const char *p = tool->example; *p; p++) {
            fputc(*p, f);
            if (*p == '\n' && p[1])
                fputs("  ", f);
        }
        fputc('\n', f);
    }
}

/* ---- parsing ---- */

/* -v on a device: its memory at exit (the most held by tensors, the most
 * taken from the driver with the allocator's cache, both now, and the
 * device's capacity where the backend knows it). */
static void report_device_memory(void)
{
    osp_device_memory m;
    char capacity[48] = "";
    if (!osp_device_memory_stats(OSP_DEVICE_CUDA, &m))
        return;
    if (m.total)
        snprintf(capacity, sizeof capacity, "; capacity %.1f MiB", (double)m.total / 1048576.0);
    osp_log_debug("device memory: peak %.1f MiB in tensors, %.1f MiB with the cache; "
                  "at exit %.1f MiB in tensors, %.1f MiB cached%s",
                  (double)m.peak / 1048576.0, (double)m.reserved_peak / 1048576.0,
                  (double)m.in_use / 1048576.0, (double)m.cached / 1048576.0, capacity);
}

static void select_device(cli_common *out)
{
    bool cuda_usable = osp_backend_for(OSP_DEVICE_CUDA) != NULL;
    if (!opt_device) {
        out->device = cuda_usable ? OSP_DEVICE_CUDA : OSP_DEVICE_CPU;
    } else if (strcmp(opt_device, "cpu") == 0) {
        out->device = OSP_DEVICE_CPU;
    } else if (cuda_usable) {
        out->device = OSP_DEVICE_CUDA;
    } else {
#ifdef OSP_CUDA
        fprintf(stderr, "%s: --device cuda: no usable CUDA device (%s)\n", osp_log_program(),
                osp_cuda_unavailable_reason());
        exit(OSP_ERR_NOMEM); /* documented: 4 = no usable device */
#else
        cli_usage_error("--device cuda: this build has no CUDA backend (rebuild with make CUDA=1)");
#endif
    }
}

static bool wants_stdin(const cli_tool *tool, const cli_common *out)
{
    if (!tool->stdin_input)
        return false;
    if (out->argc == 0)
        return true;
    for (int i = 0; i < out->argc; i++)
        if (strcmp(out->argv[i], "-") == 0)
            return true;
    return false;
}

void cli_parse(const cli_tool *tool, int argc, char **argv, cli_common *out)
{
    osp_log_set_program(tool->name);
    size_t n = option_count(tool);
    /* getopt_long's tables; static, since a usage error exits mid-parse */
    static struct option longopts[CLI_MAX_OPTIONS + 1];
    static char shortopts[2 * CLI_MAX_OPTIONS + 2];
    if (n > CLI_MAX_OPTIONS) {
        fprintf(stderr, "%s: %zu options exceed CLI_MAX_OPTIONS\n", tool->name, n);
        exit(OSP_ERR_RUNTIME);
    }
    char *sp = shortopts;
    *sp++ = ':'; /* report a missing argument as ':' rather than '?' */
    for (size_t i = 0; i < n; i++) {
        const cli_option *o = option_at(tool, i);
        longopts[i] = (struct option){o->name, o->kind == CLI_FLAG ? no_argument : required_argument,
                                      NULL, 256 + (int)i};
        if (o->short_name) {
            *sp++ = o->short_name;
            if (o->kind != CLI_FLAG)
                *sp++ = ':';
        }
    }

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            const cli_option *o = option_for(tool, optopt);
            if (c == ':')
                cli_usage_error("--%s: missing argument", o ? o->name : "?");
            if (o)
                cli_usage_error("--%s: takes no argument", o->name);
            if (optopt)
                cli_usage_error("unknown option '-%c' (see --help)", optopt);
            cli_usage_error("unknown option '%s' (see --help)", argv[optind - 1]);
        }
        set_value(option_for(tool, c), optarg);
    }

    if (opt_help) {
        print_help(tool, stdout);
        exit(fflush(stdout) == 0 ? OSP_OK : OSP_ERR_IO);
    }
    if (opt_version) {
        printf("%s (osp) %s\n", tool->name, OSP_VERSION);
        exit(fflush(stdout) == 0 ? OSP_OK : OSP_ERR_IO);
    }

    out->argc = argc - optind;
    out->argv = argv + optind;
    if (out->argc < tool->min_args)
        cli_usage_error("expected %s%d argument%s, got %d (see --help)",
                        tool->max_args == tool->min_args ? "" : "at least ", tool->min_args,
                        tool->min_args == 1 ? "" : "s", out->argc);
    if (tool->max_args >= 0 && out->argc > tool->max_args)
        cli_usage_error("expected at most %d argument%s, got %d (see --help)", tool->max_args,
                        tool->max_args == 1 ? "" : "s", out->argc);
    if (wants_stdin(tool, out) && isatty(STDIN_FILENO)) {
        print_help(tool, stderr);
        exit(OSP_ERR_USAGE);
    }

    out->output = opt_output && strcmp(opt_output, "-") != 0 ? opt_output : NULL;
    osp_log_set_level(opt_quiet ? OSP_LOG_ERROR : opt_verbose ? OSP_LOG_DEBUG : OSP_LOG_INFO);
    out->threads = (int)opt_threads;
    if (opt_threads)
        osp_set_threads(out->threads);
    select_device(out);
    if (out->device != OSP_DEVICE_CPU)
        atexit(report_device_memory);
}

/* ---- output ---- */

osp_status cli_output_open(cli_output *o, const char *path)
{
    *o = (cli_output){.f = stdout, .mode = CLI_OUT_STDOUT, .file = {.fd = -1}};
    if (!path || strcmp(path, "-") == 0)
        return OSP_OK;
    if (!(o->label = strdup(path)))
        return osp_error_nomem("file name", strlen(path));
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        o->mode = CLI_OUT_IN_PLACE;
        if (!(o->f = fopen(path, "w"))) {
            osp_status st = osp_error(OSP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            free(o->label);
            *o = (cli_output){.file = {.fd = -1}};
            return st;
        }
        return OSP_OK;
    }
    osp_status st = osp_atomic_open(&o->file, path);
    if (st) {
        free(o->label);
        *o = (cli_output){.file = {.fd = -1}};
        return st;
    }
    /* stdio writes to a duplicate so that fclose() leaves the atomic
     * file's own descriptor for its commit (fsync + rename). */
    int fd = dup(o->file.fd);
    if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
        st = osp_error(OSP_ERR_IO, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        osp_atomic_abort(&o->file);
        free(o->label);
        *o = (cli_output){.file = {.fd = -1}};
        return st;
    }
    o->mode = CLI_OUT_ATOMIC;
    return OSP_OK;
}

osp_status cli_output_close(cli_output *o, bool success)
{
    if (!o->f)
        return OSP_OK;
    const char *label = o->label ? o->label : "stdout";
    osp_status st = OSP_OK;
    if (success && (fflush(o->f) != 0 || ferror(o->f)))
        st = osp_error(OSP_ERR_IO, "%s: write failed: %s", label, strerror(errno));
    if (o->mode != CLI_OUT_STDOUT && fclose(o->f) != 0 && success && !st)
        st = osp_error(OSP_ERR_IO, "%s: write failed: %s", label, strerror(errno));
    if (o->mode == CLI_OUT_ATOMIC) {
        if (success && !st)
            st = osp_atomic_commit(&o->file);
        osp_atomic_abort(&o->file);
    }
    free(o->label);
    *o = (cli_output){.file = {.fd = -1}};
    return st;
}

/* ---- formatting ---- */

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_print_double(FILE *f, double v, const char *nonfinite)
{
    if (!isfinite(v)) {
        fputs(nonfinite ? nonfinite : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", f);
        return;
    }
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}
