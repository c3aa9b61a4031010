/* zero.c — see zero.h. */
#include "zero.h"

#include <stdlib.h>

osp_status osp_zero_init(osp_zero *z, const osp_dist *d, osp_tensor *const *params, size_t n)
{
    *z = (osp_zero){.dist = d, .n = n, .params = params};
    z->owner = calloc(n ? n : 1, sizeof *z->owner);
    z->held = calloc(n ? n : 1, sizeof *z->held);
    if (!z->owner || !z->held) {
        osp_zero_free(z);
        return osp_error_nomem("shard owners", n * (sizeof *z->owner + sizeof *z->held));
    }
    double total = 0, before = 0;
    for (size_t i = 0; i < n; i++)
        total += (double)osp_numel(params[i]);
    /* tensor i goes to the rank whose share [r, r + 1) · total / R holds
     * the middle of its elements */
    for (size_t i = 0; i < n; i++) {
        double middle = before + 0.5 * (double)osp_numel(params[i]);
        int r = total > 0 ? (int)(middle * d->size / total) : 0;
        z->owner[i] = r < d->size ? r : d->size - 1;
        z->held[i] = z->owner[i] == d->rank;
        before += (double)osp_numel(params[i]);
    }
    return OSP_OK;
}

void osp_zero_free(osp_zero *z)
{
    free(z->owner);
    free(z->held);
    osp_zero_moments_done(z);
    *z = (osp_zero){0};
}

osp_status osp_zero_share(const osp_zero *z)
{
    for (size_t i = 0; i < z->n; i++)
        if (osp_dist_bcast(z->dist, z->params[i], z->owner[i]))
            return osp_error_code();
    return OSP_OK;
}

/* Entry k of the optimizer file: exp_avg (k = 2i) or exp_avg_sq (2i + 1)
 * of tensor i; *t arrives as opt's own moment where rank 0 holds it,
 * else as a tensor of the shape to receive. */
static osp_status fetch_moment(void *ctx, int k, osp_tensor **t)
{
    osp_zero *z = ctx;
    size_t i = (size_t)k / 2;
    if (k != z->next || i >= z->n)
        return osp_error(OSP_ERR_RUNTIME, "sharded optimizer: entry %d asked for, %d expected "
                                          "(the file order the ranks send in)", k, z->next);
    z->next = k + 1;
    osp_zero_moments_done(z);
    if (z->held[i])
        return OSP_OK;
    osp_tensor *r = osp_tensor_new(OSP_F32, (*t)->ndim, (*t)->shape, OSP_DEVICE_CPU);
    if (!(z->received = osp_pool_take(r)))
        return osp_error_code();
    *t = r;
    return osp_dist_recv(z->dist, r, z->owner[i]);
}

osp_moment_source osp_zero_moments(osp_zero *z)
{
    z->next = 0;
    return (osp_moment_source){.like = z->params, .fetch = fetch_moment, .ctx = z};
}

void osp_zero_moments_done(osp_zero *z)
{
    osp_release(z->received);
    z->received = NULL;
}

osp_status osp_zero_send_moments(const osp_zero *z, const osp_adamw *opt)
{
    for (size_t i = 0; i < z->n; i++) {
        if (!z->held[i])
            continue;
        if (osp_dist_send(z->dist, opt->exp_avg[i], 0) ||
            osp_dist_send(z->dist, opt->exp_avg_sq[i], 0))
            return osp_error_code();
    }
    return OSP_OK;
}
