/* error.h — the one error type of osp, and the exit codes every tool uses.
 *
 * Functions that can fail return NULL (pointers) or a non-zero osp_status,
 * after calling osp_error() with a code and a one-line message naming the
 * file, tensor or option and what was expected. The error lives in
 * thread-local storage until the next osp_error() or osp_error_clear().
 *
 * Ops accept NULL inputs and return NULL without touching the error, so a
 * chain of ops can be checked once at its end. */
#ifndef OSP_ERROR_H
#define OSP_ERROR_H

/* Status codes double as process exit codes (documented in every man page). */
typedef enum osp_status {
    OSP_OK = 0,
    OSP_ERR_RUNTIME = 1, /* an operation failed (unsupported op/shape, internal) */
    OSP_ERR_USAGE = 2,   /* bad command line */
    OSP_ERR_DATA = 3,    /* malformed or inconsistent input data */
    OSP_ERR_NOMEM = 4,   /* out of host or device memory */
    OSP_ERR_IO = 5,      /* a file could not be opened, read or written */
} osp_status;

#if defined(__GNUC__)
#define OSP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OSP_PRINTF(a, b)
#endif

/* Records an error; returns the code so callers can `return osp_error(...)`. */
osp_status osp_error(osp_status code, const char *fmt, ...) OSP_PRINTF(2, 3);
/* Prefixes the current message with "context: " (e.g. a file name). */
void osp_error_context(const char *fmt, ...) OSP_PRINTF(1, 2);
osp_status osp_error_code(void);
const char *osp_error_message(void);
void osp_error_clear(void);

/* Out-of-memory helper: records OSP_ERR_NOMEM with the byte count. */
osp_status osp_error_nomem(const char *what, unsigned long long bytes);

#endif
