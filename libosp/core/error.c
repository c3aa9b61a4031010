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
    /* Truncation is acceptable for an over-long message. */
    size_t n = strnlen(prefix, sizeof prefix);
    if (n > sizeof last_msg - 3)
        n = sizeof last_msg - 3;
    memcpy(last_msg, prefix, n);
    memcpy(last_msg + n, ": ", 2);
    size_t room = sizeof last_msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(last_msg + n + 2, old, m);
    last_msg[n + 2 + m] = 0;
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
