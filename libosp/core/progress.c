/* progress.c — see progress.h. Redraws at most 10 times a second. */
#include "progress.h"
#include "log.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw(osp_progress *p)
{
    enum { WIDTH = 30 };
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0.0;
    if (frac > 1.0) frac = 1.0;
    int filled = (int)(frac * WIDTH);
    double elapsed = now_seconds() - p->start;
    double eta = frac > 0 ? elapsed / frac - elapsed : 0.0;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = 0;
    fprintf(stderr, "\r%s [%s] %lld/%lld %5.1fs eta %5.1fs\033[K",
            p->label, bar, (long long)p->done, (long long)p->total, elapsed, eta);
    fflush(stderr);
    p->last_draw = now_seconds();
}

void osp_progress_start(osp_progress *p, const char *label, int64_t total)
{
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start = now_seconds();
    p->last_draw = 0;
    p->active = isatty(STDERR_FILENO) && osp_log_get_level() >= OSP_LOG_INFO;
    if (p->active)
        draw(p);
}

void osp_progress_step(osp_progress *p, int64_t n)
{
    p->done += n;
    if (p->active && (now_seconds() - p->last_draw > 0.1 || p->done >= p->total))
        draw(p);
}

void osp_progress_end(osp_progress *p)
{
    if (p->active)
        fprintf(stderr, "\r\033[K");
    p->active = false;
}
