/* progress.h — a progress bar on stderr, drawn only when stderr is a
 * terminal and logging is not quiet; otherwise every call is a no-op, so
 * pipes and logs stay clean. */
#ifndef OSP_PROGRESS_H
#define OSP_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct osp_progress {
    const char *label;
    int64_t total, done;
    double start, last_draw;
    bool active;
} osp_progress;

void osp_progress_start(osp_progress *p, const char *label, int64_t total);
void osp_progress_step(osp_progress *p, int64_t n);
/* Clears the bar line. */
void osp_progress_end(osp_progress *p);

#endif
