/* gradcheck.h — checks an op's backward against central finite differences.
 *
 * fn(inputs, ctx) computes the op under test from the inputs. The checker
 * draws a fixed random cotangent R (shape of the output), defines
 * L = sum(fn(x) * R) accumulated in double, runs osp_backward with seed R,
 * and compares every element of each input's gradient (inputs whose
 * requires_grad is set) with (L(x + h) - L(x - h)) / 2h, where h scales
 * with |x|. The CPU computes in float32, so the comparison is relative:
 * |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|), with a
 * report of the worst element. Inputs must be f32 host tensors. */
#ifndef OSP_GRADCHECK_H
#define OSP_GRADCHECK_H

#include <stdbool.h>

#include "core/tensor.h"

typedef osp_tensor *(*gradcheck_fn)(osp_tensor *const *inputs, void *ctx);

typedef struct gradcheck_opts {
    double eps;  /* relative step, default 1e-3 */
    double atol; /* default 1e-3 */
    double rtol; /* default 1e-2 */
} gradcheck_opts;

/* true when every checked element agrees; prints the worst mismatch as a
 * TAP comment otherwise. opts may be NULL for the defaults. */
bool gradcheck(const char *label, gradcheck_fn fn, int n_inputs, osp_tensor *const *inputs,
               void *ctx, const gradcheck_opts *opts);

#endif
