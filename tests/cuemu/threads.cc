/* threads.cc — the emulated GPU's threads (see cuemu.h). A launch runs its
 * blocks one after another; the threads of a block are fibers on stacks of
 * their own, switched by a few instructions of assembly (x86-64 System V),
 * so a block of 1024 threads costs no more than its work. A fiber runs
 * until it finishes or waits at a barrier; when every live thread of the
 * block (or of a warp, for shuffles and mma) waits, they all go on. What
 * would hang or be undefined on a GPU stops the program with a message:
 * a warp split between a shuffle and __syncthreads, a shuffle with a lane
 * that has exited or does not exist, a block or grid the GPU refuses.
 * OSP_CUEMU_ORDER=reverse and =warps change the order (see `schedule`):
 * a kernel that misses a barrier, or lets one block read another's
 * results, gives another result (tests/cuda/run.sh runs the parity suite
 * in each order). */
#include "cuemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

extern "C" void cuemu_set_launch_error(cudaError_t e, const char *why);

/* cuemu_swap(save, load): saves the callee-saved registers on the current
 * stack, stores the stack pointer in *save, and resumes the stack `load`. */
extern "C" void cuemu_swap(void **save, void *load);
asm(".text\n"
    ".globl cuemu_swap\n"
    ".type cuemu_swap, @function\n"
    "cuemu_swap:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size cuemu_swap, .-cuemu_swap\n");

namespace {

enum state { READY, AT_BLOCK, AT_WARP, DONE };

struct fiber {
    void *sp;
    state st;
    uint3 idx;
    bool pred;          /* at a block barrier: its predicate */
    const char *op;     /* at a warp barrier: what waits */
    unsigned char *stack;
};

constexpr size_t STACK_BYTES = 256 << 10, GUARD_BYTES = 64 << 10;

std::vector<fiber> fibers;
fiber *current;
void *scheduler_sp;
const std::function<void()> *body;
unsigned char warp_buffer[32][32][16]; /* [warp][lane][byte] */
std::vector<void *> fresh_shared;      /* arrays poisoned in this block */

/* The schedule (OSP_CUEMU_ORDER): FORWARD runs the blocks in order, and
 * at each turn every ready thread of a block in order; REVERSE the same
 * last first; WARPS the blocks last first, and each warp alone, from the
 * last, as far as it goes before a block barrier (its lanes last first),
 * so one warp runs ahead of the others. */
enum schedule { UNSET, FORWARD, REVERSE, WARPS } order = UNSET;

schedule current_schedule()
{
    if (order == UNSET)
        cuemu::set_schedule(getenv("OSP_CUEMU_ORDER"));
    return order;
}

[[noreturn]] void fail(const char *fmt, const char *what)
{
    fprintf(stderr, "cuemu: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (block %u,%u,%u of a %ux%ux%u grid, %ux%ux%u threads)\n", blockIdx.x,
            blockIdx.y, blockIdx.z, gridDim.x, gridDim.y, gridDim.z, blockDim.x, blockDim.y,
            blockDim.z);
    abort();
}

unsigned linear(uint3 t) { return t.x + blockDim.x * (t.y + blockDim.y * t.z); }

void fiber_main()
{
    (*body)();
    current->st = DONE;
    cuemu_swap(&current->sp, scheduler_sp);
    abort(); /* a finished fiber is never resumed */
}

/* A stack with an unmapped guard below it, so an overflow faults. */
unsigned char *new_stack()
{
    void *p = mmap(NULL, STACK_BYTES + GUARD_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED || mprotect(p, GUARD_BYTES, PROT_NONE))
        fail("%s", "no memory for a thread's stack");
    return (unsigned char *)p + GUARD_BYTES;
}

/* The stack a new fiber starts on: fiber_main as the return address of
 * cuemu_swap, six zeroed registers below it. */
void *fresh_stack(unsigned char *stack)
{
    uintptr_t *top = (uintptr_t *)(stack + STACK_BYTES);
    top -= 2; /* fiber_main's return slot at 16-byte alignment, as after a call */
    top[0] = (uintptr_t)fiber_main;
    top[1] = 0;
    top -= 6;
    memset(top, 0, 6 * sizeof *top);
    return top;
}

/* Releases the threads of the warp [w0, w1) waiting at a warp barrier
 * once all of them have come; false when none was released. */
bool release_warp(unsigned w0, unsigned w1)
{
    unsigned waiting = 0, at_block = 0, done = 0;
    for (unsigned i = w0; i < w1; i++) {
        waiting += fibers[i].st == AT_WARP;
        at_block += fibers[i].st == AT_BLOCK;
        done += fibers[i].st == DONE;
    }
    if (!waiting || waiting + at_block + done < w1 - w0)
        return false; /* none waits, or some have yet to come */
    const char *op = NULL;
    for (unsigned i = w0; i < w1 && !op; i++)
        if (fibers[i].st == AT_WARP)
            op = fibers[i].op;
    if (at_block)
        fail("%s in part of a warp while its other threads wait at __syncthreads", op);
    if (done)
        fail("%s in a warp some of whose threads have exited", op);
    if (w1 - w0 < 32)
        fail("%s in a warp of fewer than 32 threads", op);
    for (unsigned i = w0; i < w1; i++)
        fibers[i].st = READY;
    return true;
}

bool release_warps(unsigned n)
{
    bool released = false;
    for (unsigned w0 = 0; w0 < n; w0 += 32)
        released |= release_warp(w0, w0 + 32 < n ? w0 + 32 : n);
    return released;
}

bool release_block(unsigned n)
{
    bool any = false, pred = false;
    for (unsigned i = 0; i < n; i++) {
        if (fibers[i].st == AT_WARP || fibers[i].st == READY)
            return false;
        if (fibers[i].st == AT_BLOCK) {
            any = true;
            pred |= fibers[i].pred;
        }
    }
    for (unsigned i = 0; i < n && any; i++)
        if (fibers[i].st == AT_BLOCK) {
            fibers[i].st = READY;
            fibers[i].pred = pred;
        }
    return any;
}

/* Runs the ready threads of [t0, t1) until each waits or ends. */
void run_ready(unsigned t0, unsigned t1, bool last_first)
{
    for (unsigned k = 0; k < t1 - t0; k++) {
        unsigned i = last_first ? t1 - 1 - k : t0 + k;
        if (fibers[i].st != READY)
            continue;
        current = &fibers[i];
        threadIdx = current->idx;
        cuemu_swap(&scheduler_sp, current->sp);
    }
}

void run_block(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        fiber &f = fibers[i];
        if (!f.stack)
            f.stack = new_stack();
        f.sp = fresh_stack(f.stack);
        f.st = READY;
        f.idx = make_uint3(i % blockDim.x, i / blockDim.x % blockDim.y,
                           i / (blockDim.x * blockDim.y));
    }
    fresh_shared.clear();
    schedule sched = current_schedule();
    for (unsigned done = 0; done < n;) {
        if (sched == WARPS) {
            for (unsigned w = (n + 31) / 32; w-- > 0;) {
                unsigned w0 = 32 * w, w1 = w0 + 32 < n ? w0 + 32 : n;
                do
                    run_ready(w0, w1, true);
                while (release_warp(w0, w1));
            }
        } else {
            run_ready(0, n, sched == REVERSE);
        }
        done = 0;
        for (unsigned i = 0; i < n; i++)
            done += fibers[i].st == DONE;
        if (done < n && !release_warps(n) && !release_block(n))
            fail("%s", "threads wait at barriers that the others never reach");
    }
}

/* The limits of compute capability 9.0 that a launch must respect. */
const char *refused(dim3 grid, dim3 block, size_t shared_bytes)
{
    uint64_t threads = (uint64_t)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !threads)
        return "an empty grid or block";
    if (threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
        return "a block of more than 1024 threads (or past its per-dimension limits)";
    if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        return "a grid past its per-dimension limits";
    if (shared_bytes > 48 << 10)
        return "more than 48 KiB of dynamic shared memory without an opt-in";
    return NULL;
}

} // namespace

namespace cuemu {

void run(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &kernel)
{
    if (const char *why = refused(grid, block, shared_bytes)) {
        cuemu_set_launch_error(cudaErrorInvalidConfiguration, why);
        return;
    }
    gridDim = grid;
    blockDim = block;
    body = &kernel;
    unsigned n = block.x * block.y * block.z;
    if (fibers.size() < n)
        fibers.resize(n);
    uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
    bool reverse = current_schedule() != FORWARD;
    for (uint64_t k = 0; k < blocks; k++) {
        uint64_t b = reverse ? blocks - 1 - k : k;
        blockIdx = make_uint3((unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                              (unsigned)(b / grid.x / grid.y));
        run_block(n);
    }
}

unsigned max_blocks()
{
    static const unsigned cap = [] {
        const char *v = getenv("OSP_CUEMU_MAX_BLOCKS");
        if (!v)
            return 65536u;
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (*end || n < 1 || n > 65536) {
            fprintf(stderr, "cuemu: OSP_CUEMU_MAX_BLOCKS is 1 to 65536, not %s\n", v);
            abort();
        }
        return (unsigned)n;
    }();
    return cap;
}

void set_schedule(const char *name)
{
    if (!name || !strcmp(name, "forward"))
        order = FORWARD;
    else if (!strcmp(name, "reverse"))
        order = REVERSE;
    else if (!strcmp(name, "warps"))
        order = WARPS;
    else {
        fprintf(stderr, "cuemu: OSP_CUEMU_ORDER is forward, reverse or warps, not %s\n", name);
        abort();
    }
}

void shared_fresh(void *array, size_t bytes)
{
    for (void *p : fresh_shared)
        if (p == array)
            return;
    memset(array, 0xff, bytes);
    fresh_shared.push_back(array);
}

bool block_barrier(bool pred)
{
    current->st = AT_BLOCK;
    current->pred = pred;
    cuemu_swap(&current->sp, scheduler_sp);
    return current->pred;
}

void warp_barrier(const char *op)
{
    current->st = AT_WARP;
    current->op = op;
    cuemu_swap(&current->sp, scheduler_sp);
}

unsigned lane() { return linear(threadIdx) % 32; }

unsigned char (*warp_slots())[16] { return warp_buffer[linear(threadIdx) / 32]; }

static float bf16_lo(uint32_t r) { return __uint_as_float(r << 16); }
static float bf16_hi(uint32_t r) { return __uint_as_float(r & 0xffff0000u); }

void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    struct frag {
        uint32_t a[4], b[2];
    };
    /* The fragments (24 bytes a lane) go through a buffer of their own,
     * wider than a shuffle's slots. */
    static frag frags[32][32];
    unsigned me = lane(), warp = linear(threadIdx) / 32;
    frag &mine = frags[warp][me];
    memcpy(mine.a, a, sizeof mine.a);
    mine.b[0] = b0;
    mine.b[1] = b1;
    warp_barrier("mma.sync");
    /* A (16x16, row-major): lane g*4+t holds a[0] = A[g][2t..2t+1],
     * a[1] = A[g+8][2t..], a[2] = A[g][2t+8..], a[3] = A[g+8][2t+8..].
     * B (16x8, column-major): b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g].
     * C: c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..2t+1]. */
    float A[16][16], B[16][8];
    for (unsigned l = 0; l < 32; l++) {
        unsigned g = l / 4, t = l % 4;
        const frag &f = frags[warp][l];
        unsigned rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
        for (int r = 0; r < 4; r++) {
            A[rows[r]][cols[r]] = bf16_lo(f.a[r]);
            A[rows[r]][cols[r] + 1] = bf16_hi(f.a[r]);
        }
        for (int r = 0; r < 2; r++) {
            B[2 * t + 8 * r][g] = bf16_lo(f.b[r]);
            B[2 * t + 8 * r + 1][g] = bf16_hi(f.b[r]);
        }
    }
    unsigned g = me / 4, t = me % 4;
    for (int e = 0; e < 4; e++) {
        unsigned row = g + (e >= 2 ? 8 : 0), col = 2 * t + e % 2;
        float s = c[e]; /* bf16 products are exact in float32 */
        for (int k = 0; k < 16; k++)
            s += A[row][k] * B[k][col];
        c[e] = s;
    }
    warp_barrier("mma.sync"); /* the fragments are read before reuse */
}

} // namespace cuemu
