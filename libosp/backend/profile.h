/* profile.h — OSP_PROFILE: where the time of a run goes, op by op.
 *
 *   OSP_PROFILE=1       time per kind of op, printed on stderr at exit
 *   OSP_PROFILE=shapes  that, then a second table per kind of op and
 *                       input shapes (the 40 slowest), so one GEMM or
 *                       attention among many can be told apart
 *
 * Host time around each kernel: CUDA kernels are asynchronous, so set
 * OSP_CUDA_SYNC=1 with it there. The counters are not thread-safe: the
 * ops of one tool run on one host thread. */
#ifndef OSP_PROFILE_H
#define OSP_PROFILE_H

#include "op.h"

/* Whether OSP_PROFILE is set (read once; starts the clock). */
bool osp_profile_enabled(void);
/* Adds one run of node n that took ns nanoseconds. */
void osp_profile_record(const osp_node *n, long long ns);

#endif
