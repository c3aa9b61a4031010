/* atomic_file.h — write a file under a temporary name, publish it by rename.
 *
 * osp_atomic_open() creates "<path>.tmp.XXXXXX" in the same folder (so the
 * final rename(2) never crosses file systems) with mode 0666 & ~umask, as a
 * plain creat() would. osp_atomic_commit() flushes it to disk (fsync) and
 * renames it over `path`; osp_atomic_abort() removes it. A reader therefore
 * never sees a half-written output, and a failed run leaves nothing behind.
 * Used by stream files, safetensors, checkpoints and video writers.
 *
 * An existing path is resolved first (a symlink's target is replaced, not
 * the link). When it is not a regular file — /dev/null, a FIFO, a
 * terminal — it is opened and written directly: renaming over a device
 * would replace it, and a pipe's reader cannot un-read. */
#ifndef OSP_ATOMIC_FILE_H
#define OSP_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct osp_atomic_file {
    char *path;     /* final name */
    char *tmp_path; /* where the bytes go until commit (path itself when direct) */
    int fd;         /* open on tmp_path; -1 once committed or aborted */
    bool direct;    /* an existing device or FIFO, written in place */
} osp_atomic_file;

/* On failure (OSP_ERR_IO naming the path) *f is left closed. */
osp_status osp_atomic_open(osp_atomic_file *f, const char *path);
/* Writes all n bytes (retrying short writes and EINTR). */
osp_status osp_atomic_write(osp_atomic_file *f, const void *data, size_t n);
/* fsync + rename; on failure the temporary file is removed. */
osp_status osp_atomic_commit(osp_atomic_file *f);
/* Removes the temporary file unless committed; safe to call twice and
 * after a commit. Frees the names. */
void osp_atomic_abort(osp_atomic_file *f);

/* Writes all n bytes to fd; OSP_ERR_IO naming `label` on failure. */
osp_status osp_write_all(int fd, const void *data, size_t n, const char *label);

#endif
