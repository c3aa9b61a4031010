/* fixture.h — loading tensors from ../shared/fixtures and comparing with
 * the tolerance rule the fixture READMEs use. */
#ifndef OSP_TEST_FIXTURE_H
#define OSP_TEST_FIXTURE_H

#include <stdbool.h>

#include "core/tensor.h"

/* Tensor `name` of fixtures/<rel> as float32 (pool-owned); NULL + a TAP
 * comment when missing. */
osp_tensor *fixture_tensor(const char *rel, const char *name);
/* Full path of fixtures/<rel> in a static buffer. */
const char *fixture_path(const char *rel);
/* max |got - want| <= tol * max(1, max |want|); prints the figures as a
 * TAP comment either way (so logs show the achieved error). */
bool fixture_close(const char *label, const osp_tensor *got, const osp_tensor *want, double tol);

#endif
