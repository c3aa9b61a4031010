/* log.h — levelled logging to stderr.
 *
 * Lines read "osp-info: warning: message". Colour is used only when stderr
 * is a terminal and NO_COLOR is unset. -q sets OSP_LOG_ERROR, -v sets
 * OSP_LOG_DEBUG; the default shows warnings and notices. */
#ifndef OSP_LOG_H
#define OSP_LOG_H

#include "error.h"

typedef enum osp_log_level {
    OSP_LOG_QUIET = 0, /* nothing, not even errors */
    OSP_LOG_ERROR,
    OSP_LOG_WARN,
    OSP_LOG_INFO,  /* one-line notices (the default shows these) */
    OSP_LOG_DEBUG, /* -v */
} osp_log_level;

/* Program name used as the line prefix (tools set it from argv[0]). */
void osp_log_set_program(const char *name);
const char *osp_log_program(void);
void osp_log_set_level(osp_log_level level);
osp_log_level osp_log_get_level(void);

void osp_log_message(osp_log_level level, const char *fmt, ...) OSP_PRINTF(2, 3);
#define osp_log_error(...) osp_log_message(OSP_LOG_ERROR, __VA_ARGS__)
#define osp_log_warn(...) osp_log_message(OSP_LOG_WARN, __VA_ARGS__)
#define osp_log_info(...) osp_log_message(OSP_LOG_INFO, __VA_ARGS__)
#define osp_log_debug(...) osp_log_message(OSP_LOG_DEBUG, __VA_ARGS__)

/* Prints the current osp error as one line and returns its code, for
 * `return osp_log_failure();` at the end of a tool's main. */
int osp_log_failure(void);

#endif
