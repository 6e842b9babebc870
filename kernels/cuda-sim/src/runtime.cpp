// The simulator's runtime: launches (each kernel thread a context of its own, one block at a
// time), the block barrier, warp shuffles, dynamic shared memory and f16 conversions. See
// shim/cuda_sim.h.

#include "runtime.h"

#include "cuda_fp16.h"
#include "cuda_sim.h"

#include <ucontext.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

// Sized to the 48 KiB a block may use without opting in to more, which the launches must fit.
extern "C" {
thread_local float shared[HEARTH_SIM_SHARED_BYTES / sizeof(float)];
}

namespace hearth_sim {

thread_local uint3 thread_idx;
thread_local uint3 block_idx;
thread_local uint3 block_dim;
thread_local uint3 grid_dim;

namespace {

constexpr unsigned WARP = 32;
constexpr unsigned MAX_BLOCK_THREADS = 1024;
// Kernel frames are small (a unit of 32 floats and a few scalars); this leaves ample room for
// the host compiler's unoptimised frames too.
constexpr size_t STACK_BYTES = 256 * 1024;

// Where a kernel thread stands between two turns of the scheduler.
enum class Standing { Ready, AtBlockBarrier, AtWarpBarrier, Done };

// One kernel thread: a context with its own stack, run on the launching OS thread.
struct Fiber {
    ucontext_t context;
    std::unique_ptr<char[]> stack;
    uint3 idx;
    Standing standing;
};

// The block being run. Kernel threads take turns on one OS thread (each runs until it reaches a
// barrier or returns), so what they share needs no locks and every launch runs the same way.
struct Block {
    const std::function<void()>* kernel = nullptr;
    std::vector<Fiber> fibers;
    std::vector<float> lanes;
    ucontext_t scheduler;
    unsigned current = 0;
};

thread_local Block* running = nullptr;

void yield(Standing standing) {
    Fiber& f = running->fibers[running->current];
    f.standing = standing;
    swapcontext(&f.context, &running->scheduler);
}

void fiber_main() {
    (*running->kernel)();
    running->fibers[running->current].standing = Standing::Done;
    // Returning resumes uc_link, the scheduler.
}

// A thread waiting at a barrier may go on once every thread the barrier spans that has not
// returned stands at it, as a thread that exits leaves __syncthreads on the device.
bool released(const Block& b, unsigned t) {
    const Standing s = b.fibers[t].standing;
    if (s == Standing::Ready) return true;
    if (s == Standing::Done) return false;
    unsigned first = 0, last = (unsigned)b.fibers.size();
    if (s == Standing::AtWarpBarrier) {
        first = t / WARP * WARP;
        last = std::min(last, first + WARP);
    }
    for (unsigned o = first; o < last; ++o) {
        if (b.fibers[o].standing != s && b.fibers[o].standing != Standing::Done) return false;
    }
    return true;
}

// Sets `f` to start the kernel from the top on its own stack. Kept out of line: getcontext may
// return twice, and the caller's loop variables must not live across it.
[[gnu::noinline]] bool prepare(Fiber& f, ucontext_t* scheduler) {
    f.standing = Standing::Ready;
    if (getcontext(&f.context) != 0) return false;
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = STACK_BYTES;
    f.context.uc_link = scheduler;
    makecontext(&f.context, fiber_main, 0);
    return true;
}

int run_block(Block& b, uint3 block) {
    block_idx = block;
    for (Fiber& f : b.fibers) {
        if (!prepare(f, &b.scheduler)) return HEARTH_SIM_NO_CONTEXT;
    }
    std::vector<unsigned> turn;
    for (;;) {
        // Decide who goes on before anyone moves: a thread that runs on changes what the others
        // wait for.
        turn.clear();
        bool all_done = true;
        for (unsigned t = 0; t < b.fibers.size(); ++t) {
            all_done = all_done && b.fibers[t].standing == Standing::Done;
            if (released(b, t)) turn.push_back(t);
        }
        if (all_done) return HEARTH_SIM_OK;
        // Threads wait at barriers no one else will reach: on a device this block would hang.
        if (turn.empty()) return HEARTH_SIM_DIVERGENT_BARRIER;
        for (unsigned t : turn) b.fibers[t].standing = Standing::Ready;
        for (unsigned t : turn) {
            b.current = t;
            thread_idx = b.fibers[t].idx;
            if (swapcontext(&b.scheduler, &b.fibers[t].context) != 0) return HEARTH_SIM_NO_CONTEXT;
        }
    }
}

}  // namespace

void sync_threads() { yield(Standing::AtBlockBarrier); }

float shfl_xor(float v, int lane_mask) {
    const unsigned t = running->current, warp = t / WARP, lane = t % WARP;
    running->lanes[t] = v;
    yield(Standing::AtWarpBarrier);
    const unsigned src = warp * WARP + ((lane ^ (unsigned)lane_mask) % WARP);
    const float got = src < running->lanes.size() ? running->lanes[src] : v;
    // Nobody may overwrite a lane's slot until every lane has read it.
    yield(Standing::AtWarpBarrier);
    return got;
}

int launch(const hearth_sim_launch* l, const std::function<void()>& kernel) {
    const unsigned long long threads = (unsigned long long)l->block[0] * l->block[1] * l->block[2];
    if (threads == 0 || threads > MAX_BLOCK_THREADS) return HEARTH_SIM_BAD_BLOCK;
    if (l->grid[0] == 0 || l->grid[1] == 0 || l->grid[2] == 0) return HEARTH_SIM_BAD_GRID;
    if (l->shared_bytes > HEARTH_SIM_SHARED_BYTES) return HEARTH_SIM_SHARED_TOO_LARGE;
    Block b;
    b.kernel = &kernel;
    b.fibers.resize(threads);
    b.lanes.resize(threads);
    for (unsigned t = 0; t < threads; ++t) {
        b.fibers[t].stack = std::make_unique_for_overwrite<char[]>(STACK_BYTES);
        b.fibers[t].idx = uint3{t % l->block[0], (t / l->block[0]) % l->block[1], t / (l->block[0] * l->block[1])};
    }
    block_dim = uint3{l->block[0], l->block[1], l->block[2]};
    grid_dim = uint3{l->grid[0], l->grid[1], l->grid[2]};
    Block* outer = running;
    running = &b;
    int rc = HEARTH_SIM_OK;
    for (unsigned z = 0; z < l->grid[2] && rc == HEARTH_SIM_OK; ++z) {
        for (unsigned y = 0; y < l->grid[1] && rc == HEARTH_SIM_OK; ++y) {
            for (unsigned x = 0; x < l->grid[0] && rc == HEARTH_SIM_OK; ++x) {
                // Shared memory starts undefined on the device; a kernel must not read what it did
                // not write, and a NaN pattern makes such a read show up as a wrong result.
                std::memset(shared, 0xff, l->shared_bytes);
                rc = run_block(b, uint3{x, y, z});
            }
        }
    }
    running = outer;
    return rc;
}

float f16_bits_to_f32(unsigned short h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        const float magnitude = std::ldexp((float)mant, -24);
        return sign ? -magnitude : magnitude;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

unsigned short f32_to_f16_bits(float v) {
    uint32_t x;
    std::memcpy(&x, &v, sizeof x);
    const unsigned short sign = (unsigned short)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00 | (unsigned short)((ax >> 13) & 0x3ff);  // NaN, kept quiet
    // From half-way between 65504 and 65536 up, rounding to nearest even gives infinity.
    if (ax >= 0x477ff000u) return sign | 0x7c00;
    if (ax < 0x38800000u) {
        // Below the smallest normal half: a multiple of 2^-24, rounded to nearest even (the
        // scaling is exact, and 0x400 is the smallest normal's encoding).
        float magnitude;
        std::memcpy(&magnitude, &ax, sizeof magnitude);
        return sign | (unsigned short)std::nearbyint(magnitude * 16777216.0f);
    }
    uint32_t h = (ax >> 13) - (112u << 10);
    const uint32_t rest = ax & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
    return sign | (unsigned short)h;
}

}  // namespace hearth_sim

extern "C" unsigned short hearth_sim_f32_to_f16(float v) { return hearth_sim::f32_to_f16_bits(v); }
extern "C" float hearth_sim_f16_to_f32(unsigned short bits) { return hearth_sim::f16_bits_to_f32(bits); }
