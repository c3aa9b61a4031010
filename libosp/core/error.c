/* error.c — thread-local last error. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MSG_MAX 1024

static _Thread_local osp_status last_code = OSP_OK;
static _Thread_local char last_msg[MSG_MAX];

osp_status osp_error(osp_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    last_code = code;
    return code;
}

void osp_error_context(const char *fmt, ...)
{
    char prefix[512], old[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_msg, sizeof old);
    snprintf(last_msg, sizeof last_msg, "%s: %s", prefix, old);
}

osp_status osp_error_code(void) { return last_code; }

const char *osp_error_message(void)
{
    return last_code == OSP_OK ? "no error" : last_msg;
}

void osp_error_clear(void)
{
    last_code = OSP_OK;
    last_msg[0] = 0;
}

osp_status osp_error_nomem(const char *what, unsigned long long bytes)
{
    return osp_error(OSP_ERR_NOMEM, "out of memory allocating %llu bytes for %s",
                     bytes, what);
}
