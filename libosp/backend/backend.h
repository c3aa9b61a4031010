/* backend.h — what a backend provides: one kernel per op code.
 * The CPU backend (backend/cpu) is the reference; the CUDA backend
 * (backend/cuda + kernels/) registers itself when built with CUDA=1. */
#ifndef OSP_BACKEND_H
#define OSP_BACKEND_H

#include "op.h"

typedef osp_status (*osp_kernel_fn)(const osp_node *n);

/* A device's memory, bytes: held by live tensors now, the most ever held,
 * kept by the backend's allocator for reuse, the most ever taken from
 * the driver (tensors and cache together), and the device's capacity (0
 * where the backend does not know it). */
typedef struct osp_device_memory {
    size_t in_use, peak, cached, reserved_peak, total;
} osp_device_memory;

typedef struct osp_backend {
    const char *name;
    osp_device device;
    /* NULL entries are ops this backend lacks (dispatch reports it). */
    osp_kernel_fn kernels[OSP_OP_COUNT];
    /* NULL where the backend keeps no count (the CPU's) */
    osp_device_memory (*memory)(void);
} osp_backend;

const osp_backend *osp_backend_cpu(void);
/* The CUDA backend (backend/cuda, built with make CUDA=1), or NULL when no
 * usable GPU is present; the first call probes the driver. */
const osp_backend *osp_backend_cuda(void);
/* The backend for a device, or NULL when this build or machine lacks it. */
const osp_backend *osp_backend_for(osp_device device);
/* *m = the device's memory counts; false when its backend keeps none. */
bool osp_device_memory_stats(osp_device device, osp_device_memory *m);
void osp_backend_register(const osp_backend *b);

/* Worker threads for CPU kernels (OpenMP and OpenBLAS); 0 = all cores. */
void osp_set_threads(int n);

#endif
