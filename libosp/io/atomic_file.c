/* atomic_file.c — temp name + rename (see atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

osp_status osp_write_all(int fd, const void *data, size_t n, const char *label)
{
    const char *p = data;
    while (n > 0) {
        /* Linux writes at most ~2 GiB per call; ask for no more. */
        size_t want = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t w = write(fd, p, want);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return osp_error(OSP_ERR_IO, "%s: write failed: %s", label, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return OSP_OK;
}

/* Six characters from [a-z0-9], different per call and process. O_EXCL
 * makes a collision harmless (we retry), so this needs no strong RNG. */
static void random_suffix(char *out)
{
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                 ((uint64_t)getpid() << 40) ^ (++counter * 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < 6; i++) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 29;
        out[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36];
    }
    out[6] = 0;
}

/* Opens an existing non-regular file (device, FIFO) for direct writing. */
static osp_status open_direct(osp_atomic_file *f, const char *path)
{
    f->direct = true;
    f->tmp_path = strdup(f->path);
    f->fd = f->tmp_path ? open(path, O_WRONLY | O_CLOEXEC) : -1;
    if (f->fd >= 0)
        return OSP_OK;
    osp_status st = osp_error(OSP_ERR_IO, "%s: cannot open for writing: %s", path,
                              strerror(errno));
    osp_atomic_abort(f);
    return st;
}

osp_status osp_atomic_open(osp_atomic_file *f, const char *path)
{
    f->fd = -1;
    f->tmp_path = NULL;
    f->direct = false;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    f->path = exists ? realpath(path, NULL) : strdup(path);
    if (!f->path)
        return osp_error(OSP_ERR_IO, "%s: %s", path, strerror(errno));
    if (exists && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
        return open_direct(f, path);
    size_t len = strlen(f->path) + sizeof ".tmp.XXXXXX";
    f->tmp_path = malloc(len);
    if (!f->tmp_path) {
        osp_atomic_abort(f);
        return osp_error_nomem("file name", len);
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[7];
        random_suffix(suffix);
        snprintf(f->tmp_path, len, "%s.tmp.%s", f->path, suffix);
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0)
            return OSP_OK;
        if (errno != EEXIST)
            break;
    }
    osp_status st = osp_error(OSP_ERR_IO, "%s: cannot create %s: %s", path, f->tmp_path,
                              strerror(errno));
    free(f->tmp_path);
    f->tmp_path = NULL; /* nothing of ours to remove */
    osp_atomic_abort(f);
    return st;
}

osp_status osp_atomic_write(osp_atomic_file *f, const void *data, size_t n)
{
    if (f->fd < 0)
        return osp_error(OSP_ERR_IO, "%s: write after commit or abort", f->path ? f->path : "?");
    return osp_write_all(f->fd, data, n, f->path);
}

osp_status osp_atomic_commit(osp_atomic_file *f)
{
    if (f->fd < 0)
        return osp_error(OSP_ERR_IO, "%s: commit of a closed file", f->path ? f->path : "?");
    osp_status st = OSP_OK;
    if (!f->direct && fsync(f->fd) != 0)
        st = osp_error(OSP_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (close(f->fd) != 0 && st == OSP_OK)
        st = osp_error(OSP_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    f->fd = -1;
    if (st == OSP_OK && !f->direct && rename(f->tmp_path, f->path) != 0)
        st = osp_error(OSP_ERR_IO, "%s: cannot rename %s into place: %s", f->path, f->tmp_path,
                       strerror(errno));
    if (st == OSP_OK) {
        free(f->tmp_path);
        f->tmp_path = NULL;
    }
    osp_atomic_abort(f);
    return st;
}

void osp_atomic_abort(osp_atomic_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp_path && !f->direct)
        unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = NULL;
    f->path = NULL;
}
