// The CUDA C++ that kernels/cuda/*.cu use, for a host compiler, so the kernels' own source can
// be executed and checked on a machine without a GPU. Force-included (-include) ahead of each
// kernel file; the runtime is src/runtime.cpp.
//
// Faithful to what the kernels rely on: __syncthreads is a barrier over the block's threads that
// have not returned, __shfl_xor_sync exchanges a value among the 32 lanes of a warp (a barrier
// over the warp), shared memory is one buffer per block (its dynamic part the kernels name
// `shared`), and threadIdx, blockIdx, blockDim, gridDim read as on the device. Each kernel
// thread is a context with its own stack; they take turns on one OS thread, blocks one after
// another. Not modelled: the device's memory model beyond these barriers, its rounding of
// transcendental functions, and timing.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

struct uint3 {
    unsigned x, y, z;
};
using dim3 = uint3;

namespace hearth_sim {

extern thread_local uint3 thread_idx;
extern thread_local uint3 block_idx;
extern thread_local uint3 block_dim;
extern thread_local uint3 grid_dim;

// Waits for every thread of the block still running.
void sync_threads();
// The value `v` of the lane whose index is this lane's XOR `lane_mask`, within this warp.
float shfl_xor(float v, int lane_mask);

inline void sincos_f64(double x, double* s, double* c) {
    *s = std::sin(x);
    *c = std::cos(x);
}

}  // namespace hearth_sim

#define threadIdx (::hearth_sim::thread_idx)
#define blockIdx (::hearth_sim::block_idx)
#define blockDim (::hearth_sim::block_dim)
#define gridDim (::hearth_sim::grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Blocks run one at a time on the launching OS thread, so what a block shares is that thread's;
// thread-local also keeps launches from different OS threads (tests run side by side) apart.
#define __shared__ thread_local

// Kernels name the dynamic shared memory of a block `shared`; the launch checks its size.
extern "C" thread_local float shared[];

// glibc's sincos is declared in <cmath> with C linkage; the device function is taken by name.
#define sincos ::hearth_sim::sincos_f64

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

inline void __syncthreads() { ::hearth_sim::sync_threads(); }

// The full-warp mask is the only one the kernels use; the simulator always exchanges among the
// whole warp.
inline float __shfl_xor_sync(unsigned /*mask*/, float v, int lane_mask) {
    return ::hearth_sim::shfl_xor(v, lane_mask);
}

// Round-to-nearest arithmetic that must not be fused into a multiply-add (the build turns
// contraction off, so plain operators keep each rounding).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
