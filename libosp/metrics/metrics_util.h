/* metrics_util.h — small helpers shared by the metric implementations. */
#ifndef OSP_METRICS_UTIL_H
#define OSP_METRICS_UTIL_H

#include "core/tensor.h"

/* Copies the n values of a float tensor on any device into out (double).
 * A NULL t passes on the error of the op chain that produced it. */
osp_status metrics_to_host(osp_tensor *t, int64_t n, double *out);

#endif
