/* fake_device.c — a stand-in GPU for machines without one, linked into test
 * builds of the tools (build/tests/fakedev/bin). It registers a backend and
 * an allocator for OSP_DEVICE_CUDA, so `--device cuda` works: device
 * tensors live in pages of their own that no one may read or write
 * (PROT_NONE) except a kernel while it runs on them. Each kernel is the CPU
 * backend's, run on host aliases of its operands with their pages opened
 * for the call. Host code that touches device memory outside an op — what
 * would read a device pointer on a real GPU — crashes at the access, and a
 * mix of host and device operands fails as it would on the GPU, so the
 * tools' device paths (placement, transfers, checkpoints of device
 * tensors) are tested on every machine. Numbers are the CPU's, bit for
 * bit. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/backend.h"

typedef struct pages {
    size_t len; /* mapped bytes, whole pages */
    int opens;  /* kernels running on it now */
} pages;

static osp_device_memory counts;

/* The capacity it reports: OSP_FAKE_DEVICE_MB (MiB), else unknown (0). */
static osp_device_memory memory(void)
{
    osp_device_memory m = counts;
    const char *mb = getenv("OSP_FAKE_DEVICE_MB");
    m.total = mb ? (size_t)strtoull(mb, NULL, 10) << 20 : 0;
    return m;
}

static void unmap(osp_storage *s)
{
    pages *p = s->owner;
    counts.in_use -= p->len;
    munmap(s->data, p->len);
    free(p);
}

static osp_storage *fake_alloc(size_t nbytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (nbytes + page - 1) / page * page;
    pages *p = calloc(1, sizeof *p);
    void *data = p ? mmap(NULL, len ? len : page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                   : MAP_FAILED;
    if (data == MAP_FAILED) {
        free(p);
        osp_error_nomem("fake device memory", nbytes);
        return NULL;
    }
    p->len = len ? len : page;
    osp_storage *s = osp_storage_new(data, nbytes, OSP_DEVICE_CUDA, unmap, p);
    if (!s) {
        munmap(data, p->len);
        free(p);
        return NULL;
    }
    counts.in_use += p->len;
    if (counts.in_use > counts.peak)
        counts.peak = counts.reserved_peak = counts.in_use; /* no cache */
    return s;
}

static void open_pages(osp_storage *s)
{
    pages *p = s->owner;
    if (p->opens++ == 0)
        mprotect(s->data, p->len, PROT_READ | PROT_WRITE);
}

static void close_pages(osp_storage *s)
{
    pages *p = s->owner;
    if (--p->opens == 0)
        mprotect(s->data, p->len, PROT_NONE);
}

/* A host alias of device tensor t: the same bytes, marked as host memory
 * for the CPU kernel (never released: the count stays above zero). */
typedef struct alias {
    osp_tensor t;
    osp_storage s;
} alias;

static osp_tensor *host_alias(osp_tensor *t, alias *a)
{
    if (!t || t->storage->device != OSP_DEVICE_CUDA)
        return t;
    open_pages(t->storage);
    a->s = *t->storage;
    a->s.device = OSP_DEVICE_CPU;
    a->s.refcount = INT32_MAX / 2;
    a->s.release = NULL;
    a->t = *t;
    a->t.storage = &a->s;
    a->t.refcount = INT32_MAX / 2;
    a->t.grad = NULL;
    return &a->t;
}

static osp_status run_on_host(const osp_node *n)
{
    osp_node h = *n;
    alias in[OSP_MAX_INPUTS], out[OSP_MAX_OUTPUTS];
    for (int i = 0; i < n->n_in; i++)
        h.in[i] = host_alias(n->in[i], &in[i]);
    for (int i = 0; i < n->n_out; i++)
        h.out[i] = host_alias(n->out[i], &out[i]);
    osp_status st = osp_backend_cpu()->kernels[n->op](&h);
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && n->in[i]->storage->device == OSP_DEVICE_CUDA)
            close_pages(n->in[i]->storage);
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && n->out[i]->storage->device == OSP_DEVICE_CUDA)
            close_pages(n->out[i]->storage);
    return st;
}

static osp_backend fake = {.name = "fake-cuda", .device = OSP_DEVICE_CUDA, .memory = memory};

__attribute__((constructor)) static void install(void)
{
    for (int op = 0; op < OSP_OP_COUNT; op++)
        if (osp_backend_cpu()->kernels[op])
            fake.kernels[op] = run_on_host;
    osp_register_allocator(OSP_DEVICE_CUDA, fake_alloc);
    osp_backend_register(&fake);
}
