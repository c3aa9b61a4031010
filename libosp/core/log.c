/* log.c — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *program = "osp";
static osp_log_level level = OSP_LOG_INFO;

void osp_log_set_program(const char *name)
{
    const char *slash = name;
    for (const char *p = name; *p; p++)
        if (*p == '/')
            slash = p + 1;
    program = slash;
}

const char *osp_log_program(void) { return program; }
void osp_log_set_level(osp_log_level l) { level = l; }
osp_log_level osp_log_get_level(void) { return level; }

static bool use_colour(void)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(STDERR_FILENO) && !(nc && *nc);
}

void osp_log_message(osp_log_level l, const char *fmt, ...)
{
    static const char *tags[] = {"", "error", "warning", "", "debug"};
    static const char *colours[] = {"", "\033[1;31m", "\033[1;33m", "", "\033[2m"};
    if (l > level || l == OSP_LOG_QUIET)
        return;
    bool colour = use_colour() && colours[l][0];
    fprintf(stderr, "%s: ", program);
    if (tags[l][0])
        fprintf(stderr, "%s%s:%s ", colour ? colours[l] : "", tags[l],
                colour ? "\033[0m" : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int osp_log_failure(void)
{
    osp_status code = osp_error_code();
    if (code == OSP_OK)
        code = OSP_ERR_RUNTIME;
    osp_log_error("%s", osp_error_message());
    return (int)code;
}
