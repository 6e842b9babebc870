// y = x · Wᵀ for a quantized weight matrix W (n rows of k elements, GGUF blocks, row after row)
// and f32 activations x (m rows of k), y (m rows of n).
//
// One warp computes one weight row against up to M_TILE activation rows, so each weight is
// decoded once per tile of activation rows: decode (m = 1) reads every weight byte once, and
// a prompt of m rows reads the weights ceil(m / M_TILE) times. Lane l takes units (32 elements)
// l, l + 32, ... of the row, keeps a partial sum per activation row, and the warp adds them up.
//
// The launch geometry lives on the host side too (kernels/src/cuda.rs); both must agree on
// WARPS_PER_BLOCK and M_TILE.

#include "quant.cuh"

namespace hearth {

constexpr int WARP = 32;
constexpr int WARPS_PER_BLOCK = 4;
constexpr int THREADS = WARP * WARPS_PER_BLOCK;
constexpr int M_TILE = 4;

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// grid: (ceil(n / WARPS_PER_BLOCK), ceil(m / M_TILE)); block: THREADS.
template <typename Format>
__device__ void qmatmul(const uint8_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                        int n, int k, int m) {
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int row = blockIdx.x * WARPS_PER_BLOCK + warp;
    const int m0 = blockIdx.y * M_TILE;
    // A whole warp leaves together, so the shuffles below always see 32 lanes.
    if (row >= n || m0 >= m) return;
    const int rows_here = min(M_TILE, m - m0);
    const size_t row_bytes = (size_t)(k / Format::BLOCK_ELEMS) * Format::BLOCK_BYTES;
    const uint8_t* wr = w + (size_t)row * row_bytes;
    const int units = k / UNIT;

    float acc[M_TILE];
#pragma unroll
    for (int r = 0; r < M_TILE; ++r) acc[r] = 0.0f;

    for (int u = lane; u < units; u += WARP) {
        float wv[UNIT];
        Format::unit(wr, u, wv);
#pragma unroll
        for (int r = 0; r < M_TILE; ++r) {
            if (r < rows_here) {
                const float* xr = x + (size_t)(m0 + r) * k + (size_t)u * UNIT;
                float s = 0.0f;
#pragma unroll
                for (int l = 0; l < UNIT; ++l) s = fmaf(wv[l], xr[l], s);
                acc[r] += s;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < M_TILE; ++r) {
        const float total = warp_sum(acc[r]);
        if (lane == 0 && r < rows_here) y[(size_t)(m0 + r) * n + row] = total;
    }
}

}  // namespace hearth

#define HEARTH_QMATMUL(name, format)                                                              \
    extern "C" __global__ void __launch_bounds__(hearth::THREADS)                                 \
        hearth_qmatmul_##name(const uint8_t* __restrict__ w, const float* __restrict__ x,         \
                              float* __restrict__ y, int n, int k, int m) {                       \
        hearth::qmatmul<hearth::format>(w, x, y, n, k, m);                                        \
    }

HEARTH_QMATMUL(f32, F32)
HEARTH_QMATMUL(f16, F16)
HEARTH_QMATMUL(q4_0, Q4_0)
HEARTH_QMATMUL(q4_1, Q4_1)
HEARTH_QMATMUL(q5_0, Q5_0)
HEARTH_QMATMUL(q5_1, Q5_1)
HEARTH_QMATMUL(q8_0, Q8_0)
HEARTH_QMATMUL(q4_k, Q4_K)
HEARTH_QMATMUL(q5_k, Q5_K)
HEARTH_QMATMUL(q6_k, Q6_K)
