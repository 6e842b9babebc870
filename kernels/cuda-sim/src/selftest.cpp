// Kernels that check the simulator itself: what the kernels of kernels/cuda rely on from warp
// shuffles and barriers, and that a block whose threads wait at different barriers is reported
// rather than left to hang.

#include "runtime.h"

namespace {

// out[t] gets, for each XOR distance of a warp_sum, the value of the partner lane, then the sum
// of the block's thread indices (the dynamic shared memory and two barriers), from every thread.
__global__ void exchanges(float* out, int distances) {
    const int t = threadIdx.x;
    float v = (float)t;
    for (int i = 0; i < distances; ++i) out[t * (distances + 1) + i] = __shfl_xor_sync(0xffffffffu, v, 1 << i);
    shared[t] = v;
    __syncthreads();
    float total = 0.0f;
    for (unsigned o = 0; o < blockDim.x; ++o) total += shared[o];
    __syncthreads();
    out[t * (distances + 1) + distances] = total;
}

// Even threads wait at the block barrier while odd ones wait at a warp exchange.
__global__ void divergent(float* out) {
    const int t = threadIdx.x;
    if (t % 2 == 0) {
        __syncthreads();
        out[t] = 1.0f;
    } else {
        out[t] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
    }
}

// Threads past `live` return at once; the rest meet at a barrier, as exited threads leave
// __syncthreads on the device.
__global__ void early_exit(float* out, int live) {
    const int t = threadIdx.x;
    if (t >= live) return;
    __syncthreads();
    out[t] = (float)t;
}

}  // namespace

extern "C" int hearth_sim_selftest_exchanges(const hearth_sim_launch* l, float* out, int distances) {
    return hearth_sim::launch(l, [=] { exchanges(out, distances); });
}

extern "C" int hearth_sim_selftest_divergent(const hearth_sim_launch* l, float* out) {
    return hearth_sim::launch(l, [=] { divergent(out); });
}

extern "C" int hearth_sim_selftest_early_exit(const hearth_sim_launch* l, float* out, int live) {
    return hearth_sim::launch(l, [=] { early_exit(out, live); });
}
