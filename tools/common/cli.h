/* cli.h — the command-line helper every osp tool shares (the idea of
 * FFmpeg's cmdutils: tools stay thin, the plumbing lives here once).
 *
 * A tool declares its own options in one table; cli_parse() adds the
 * options every tool has (spec/cli.md: -h/--help, --version, -o/--output,
 * -q/--quiet, -v/--verbose, --device, --threads), parses argv with
 * getopt_long, and prints --help from the same tables, so the help text,
 * the parser and (checked by tests/bats/options.bats) the man page and the
 * shell completions cannot drift apart.
 *
 *   static bool stats;
 *   static const char *format = "table";
 *   static const cli_option options[] = {
 *       {.name = "stats", .kind = CLI_FLAG, .flag = &stats, .help = "..."},
 *       {.name = "format", .kind = CLI_CHOICE, .choices = "table|json",
 *        .metavar = "FMT", .s = &format, .help = "output format"},
 *       {0},
 *   };
 *   cli_common common;
 *   cli_parse(&tool, argc, argv, &common);   // exits on --help or misuse
 *
 * Exit codes are the osp_status values of core/error.h: 0 ok, 1 runtime
 * failure, 2 usage, 3 bad input data, 4 out of memory (host or device),
 * 5 I/O. Usage errors print one line, "osp-info: --threads: expected an
 * integer >= 1, got 'x'", and exit 2. */
#ifndef OSP_TOOLS_CLI_H
#define OSP_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/tensor.h"
#include "io/atomic_file.h"

typedef enum cli_kind {
    CLI_FLAG,   /* no argument; sets *flag = true */
    CLI_INT,    /* decimal integer within [min, max]; stores *i */
    CLI_NUMBER, /* finite number within [min, max]; stores *f */
    CLI_STRING, /* any text (a path, a prompt); stores *s */
    CLI_CHOICE, /* one of `choices`, "a|b|c"; stores *s */
} cli_kind;

typedef struct cli_option {
    const char *name;    /* long name without the dashes; NULL ends a table */
    char short_name;     /* 0 when the option has no short form */
    cli_kind kind;
    const char *metavar; /* the argument in --help ("N", "FILE"); not for flags */
    const char *help;    /* one line; CLI_CHOICE appends its choices */
    const char *choices; /* CLI_CHOICE only */
    /* Inclusive bounds for CLI_INT / CLI_NUMBER; use -INFINITY / INFINITY
     * for an open side. Both 0 (the zero initialiser) means unbounded. */
    double min, max;
    union { /* where the value goes; the member matches `kind` */
        bool *flag;
        int64_t *i;
        double *f;
        const char **s;
    };
} cli_option;

typedef struct cli_tool {
    const char *name;    /* "osp-info": the log prefix and the help title */
    const char *summary; /* one line: what the tool does */
    const char *args;    /* positional part of the synopsis, e.g. "[INPUT]" */
    const char *details; /* optional lines shown after the options */
    const char *example; /* one or more command lines, '\n'-separated */
    const cli_option *options; /* the tool's own options, ended by {0} */
    int min_args, max_args;    /* positional argument count; max -1 = any */
    /* The tool reads a stream from stdin when no input (or "-") is given:
     * then a terminal on stdin prints the usage instead of waiting. */
    bool stdin_input;
} cli_tool;

/* The values of the options every tool has. */
typedef struct cli_common {
    const char *output; /* -o FILE; NULL = stdout ("-" is mapped to NULL) */
    osp_device device;  /* --device, default: cuda if usable, else cpu */
    int threads;        /* --threads; 0 = not given (OpenMP's default) */
    int argc;           /* positional arguments, in order */
    char **argv;
} cli_common;

/* Parses the command line. Sets the log program name and level, applies
 * --threads (osp_set_threads) and selects the device. Prints --help or
 * --version and exits 0; prints one line and exits 2 on a usage error (4
 * when --device cuda is built in but no device is usable). */
void cli_parse(const cli_tool *tool, int argc, char **argv, cli_common *out);

/* Prints "tool: message" on stderr and exits 2. */
_Noreturn void cli_usage_error(const char *fmt, ...) OSP_PRINTF(1, 2);

/* ---- output ---- */

/* Text output for -o: stdout; or, for a regular file, an atomic file
 * (io/atomic_file.h) published by cli_output_close() on success and
 * removed on failure, so a failed run leaves no partial file behind; or,
 * for an existing device, FIFO or terminal (-o /dev/null), the path opened
 * in place, since renaming a file over it would replace the device. */
typedef struct cli_output {
    FILE *f;
    enum { CLI_OUT_STDOUT, CLI_OUT_IN_PLACE, CLI_OUT_ATOMIC } mode;
    osp_atomic_file file;
    char *label; /* the path, for messages */
} cli_output;

/* path NULL or "-" = stdout. OSP_ERR_IO when the file cannot be created. */
osp_status cli_output_open(cli_output *o, const char *path);
/* success: flush, check for write errors, rename into place (OSP_ERR_IO on
 * any failure, e.g. a full disk). !success: discard. Always closes. */
osp_status cli_output_close(cli_output *o, bool success);

/* JSON string with quotes and escapes (UTF-8 passes through). */
void cli_json_string(FILE *f, const char *s);
/* The shortest decimal that reads back as exactly v ("0.18215", "1e-05").
 * NaN and infinities print as `nonfinite` ("null" for JSON), or as "nan",
 * "inf", "-inf" when it is NULL. */
void cli_print_double(FILE *f, double v, const char *nonfinite);

#endif
