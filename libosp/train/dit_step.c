/* dit_step.c — see dit_step.h. */
#include "dit_step.h"

#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "nn/params.h"
#include "train/tape.h"

#define BUFFER_NAME "caption_projection.y_embedding"

osp_status osp_dit_params_init(osp_latte *m, osp_dit_params *out)
{
    const osp_params *p = osp_latte_params(m);
    memset(out, 0, sizeof *out);
    out->names = calloc(p->n ? p->n : 1, sizeof *out->names);
    out->tensors = calloc(p->n ? p->n : 1, sizeof *out->tensors);
    if (!out->names || !out->tensors) {
        osp_dit_params_free(out);
        return osp_error_nomem("parameter list", p->n * 2 * sizeof(void *));
    }
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->names[i], BUFFER_NAME) == 0)
            continue;
        if (p->tensors[i]->dtype != OSP_F32) {
            osp_dit_params_free(out);
            return osp_error(OSP_ERR_RUNTIME, "training needs float32 parameters, %s is %s",
                             p->names[i], osp_dtype_name(p->tensors[i]->dtype));
        }
        out->names[out->n] = p->names[i];
        out->tensors[out->n++] = osp_requires_grad(p->tensors[i]);
    }
    return OSP_OK;
}

void osp_dit_params_free(osp_dit_params *p)
{
    free(p->names);
    free(p->tensors);
    memset(p, 0, sizeof *p);
}

void osp_dit_params_zero_grad(const osp_dit_params *p)
{
    for (size_t i = 0; i < p->n; i++)
        osp_zero_grad(p->tensors[i]);
}

osp_tensor *osp_dit_forward(osp_latte *m, osp_tensor *x_t, const int64_t *t, osp_tensor *context,
                            osp_tensor *mask, int n_img)
{
    if (!x_t || !context)
        return NULL;
    osp_tensor *ts = osp_tensor_from_data(OSP_I64, 1, x_t->shape, t);
    osp_latte_input in = {.x = x_t, .timestep = ts, .context = context, .mask = mask,
                          .n_img = n_img, .temporal = true};
    bool was = osp_grad_set_enabled(true);
    osp_tensor *out = ts ? osp_latte_forward(m, &in) : NULL;
    osp_grad_set_enabled(was);
    return out;
}

osp_status osp_dit_micro_step(osp_latte *m, const osp_diffusion *d, const osp_dit_batch *b,
                              double grad_scale, osp_diffusion_terms *terms)
{
    osp_pool_push();
    /* the batch is made on the host; the model runs where its weights are */
    osp_device dev = osp_latte_params(m)->tensors[0]->storage->device;
    osp_tensor *x_t = osp_to_device(osp_diffusion_q_sample(d, b->x0, b->noise, b->t), dev);
    osp_tensor *out = osp_dit_forward(m, x_t, b->t, osp_to_device(b->context, dev), b->mask,
                                      b->n_img);
    osp_tensor *host = out ? osp_to_device(out, OSP_DEVICE_CPU) : NULL;
    osp_tensor *grad = host ? osp_tensor_new(OSP_F32, host->ndim, host->shape, OSP_DEVICE_CPU)
                            : NULL;
    bool was = osp_grad_set_enabled(false);
    osp_status st = grad ? osp_diffusion_loss(d, b->x0, b->noise, b->t, osp_contiguous(host),
                                              terms, grad, grad_scale)
                         : osp_error_code();
    osp_grad_set_enabled(was);
    if (st == OSP_OK)
        st = osp_backward(out, osp_to_device(grad, out->storage->device));
    else
        osp_tape_clear();
    osp_pool_pop();
    return st;
}
