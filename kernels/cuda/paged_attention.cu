// Attention over a paged KV cache in device memory, in the block layout of the host cache
// (crates/engine/src/kv/layout.rs): a block of one layer group holds, for each layer of the group
// and each KV head, a key plane stored transposed (element (slot, d) at d * block_size + slot)
// and a value plane stored by slot (slot * head_dim + d), all f16. Planes are ordered
// (layer index in group, key/value, kv head).
//
// The blocks of a group live in one arena, block id b at b * block_stride elements; each
// sequence has a row of block ids in `tables` (table_stride entries per sequence).

#include <cuda_fp16.h>
#include <math_constants.h>
#include <stdint.h>

namespace hearth {

constexpr int WARP = 32;
// head_dim is at most 256 (Gemma 3), so a block of one thread per dimension has at most 8 warps.
constexpr int MAX_THREADS = 256;

__device__ __forceinline__ size_t plane(int layer_idx, int value, int n_kv_head, int kv_head, int block_size,
                                        int head_dim) {
    return ((size_t)(layer_idx * 2 + value) * n_kv_head + kv_head) * block_size * head_dim;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

}  // namespace hearth

// Writes the new keys and values, k and v (rows, n_kv_head * head_dim) f32, into their blocks:
// row r goes to slot row_slot[r] of block row_block[r].
// grid: (rows, n_kv_head); block: head_dim threads (rounded up to a warp).
extern "C" __global__ void __launch_bounds__(hearth::MAX_THREADS)
    hearth_kv_write(const float* __restrict__ k, const float* __restrict__ v, __half* __restrict__ arena,
                    const uint32_t* __restrict__ row_block, const uint32_t* __restrict__ row_slot,
                    long long block_stride, int layer_idx, int n_kv_head, int head_dim, int block_size) {
    const int row = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
    if (d >= head_dim) return;
    __half* blk = arena + (size_t)row_block[row] * (size_t)block_stride;
    const int slot = (int)row_slot[row];
    const size_t src = ((size_t)row * n_kv_head + h) * head_dim + d;
    blk[hearth::plane(layer_idx, 0, n_kv_head, h, block_size, head_dim) + (size_t)d * block_size + slot] =
        __float2half_rn(k[src]);
    blk[hearth::plane(layer_idx, 1, n_kv_head, h, block_size, head_dim) + (size_t)slot * head_dim + d] =
        __float2half_rn(v[src]);
}

// Causal attention of q (rows, n_head * head_dim) f32, already rotated, over the cached keys and
// values, which already hold each row's own position. Row r belongs to sequence row_seq[r] and
// sits at position row_pos[r]; it sees positions max(0, pos + 1 - window) ..= pos (window 0:
// from 0). Grouped-query heads: query head h reads kv head h / (n_head / n_kv_head).
//
// One thread block per (query head, row), thread d owns output dimension d. Each KV block is
// scored in shared memory (per-warp partial sums of q·k for each slot, then added across warps)
// and folded into a running softmax (flash attention's rescaling), so no score row is stored.
// grid: (n_head, rows); block: head_dim rounded up to a warp; dynamic shared memory:
// (1 + warps) * block_size floats.
extern "C" __global__ void __launch_bounds__(hearth::MAX_THREADS)
    hearth_paged_attention(const float* __restrict__ q, const __half* __restrict__ arena,
                           const uint32_t* __restrict__ tables, const uint32_t* __restrict__ row_seq,
                           const uint32_t* __restrict__ row_pos, float* __restrict__ out, long long block_stride,
                           int table_stride, int layer_idx, int n_head, int n_kv_head, int head_dim,
                           int block_size, int window, float scale) {
    extern __shared__ float shared[];
    float* scores = shared;                  // block_size
    float* partial = shared + block_size;    // warps * block_size

    const int head = blockIdx.x, row = blockIdx.y;
    const int d = threadIdx.x, lane = d % hearth::WARP, warp = d / hearth::WARP;
    const int warps = blockDim.x / hearth::WARP;
    const bool active = d < head_dim;
    const int kv_head = head / (n_head / n_kv_head);
    const int pos = (int)row_pos[row];
    const int first = window > 0 ? max(0, pos + 1 - window) : 0;
    const uint32_t* table = tables + (size_t)row_seq[row] * table_stride;
    const size_t q_at = ((size_t)row * n_head + head) * head_dim + d;
    const float qd = active ? q[q_at] : 0.0f;
    const size_t k_plane = hearth::plane(layer_idx, 0, n_kv_head, kv_head, block_size, head_dim);
    const size_t v_plane = hearth::plane(layer_idx, 1, n_kv_head, kv_head, block_size, head_dim);

    float run_max = -CUDART_INF_F, run_sum = 0.0f, acc = 0.0f;
    for (int b = first / block_size; b <= pos / block_size; ++b) {
        const __half* blk = arena + (size_t)table[b] * (size_t)block_stride;
        const __half* kt = blk + k_plane + (size_t)d * block_size;
        for (int j = 0; j < block_size; ++j) {
            const float part = hearth::warp_sum(active ? qd * __half2float(kt[j]) : 0.0f);
            if (lane == 0) partial[warp * block_size + j] = part;
        }
        __syncthreads();
        if (d < block_size) {
            float s = 0.0f;
            for (int w = 0; w < warps; ++w) s += partial[w * block_size + d];
            scores[d] = s * scale;
        }
        __syncthreads();
        // Slots outside [first, pos] (before the window, or past the newest position) are skipped.
        const int j0 = max(first, b * block_size) - b * block_size;
        const int j1 = min(pos, b * block_size + block_size - 1) - b * block_size + 1;
        float block_max = -CUDART_INF_F;
        for (int j = j0; j < j1; ++j) block_max = fmaxf(block_max, scores[j]);
        const float new_max = fmaxf(run_max, block_max);
        // Nothing has been summed while run_max is -inf, so there is nothing to rescale.
        const float c = run_max == -CUDART_INF_F ? 0.0f : expf(run_max - new_max);
        run_sum *= c;
        acc *= c;
        const __half* vv = blk + v_plane;
        for (int j = j0; j < j1; ++j) {
            const float p = expf(scores[j] - new_max);
            run_sum += p;
            if (active) acc = fmaf(p, __half2float(vv[(size_t)j * head_dim + d]), acc);
        }
        run_max = new_max;
        // The next block overwrites scores and partial sums.
        __syncthreads();
    }
    if (active) out[q_at] = run_sum > 0.0f ? acc / run_sum : 0.0f;
}

// Rotary position embedding: y is x (rows, heads * head_dim) f32 with each head of row r turned
// to position row_pos[r], frequency i by pos * inv_freq[i]. Pairs are (2i, 2i + 1) when
// interleaved (llama's GGUF layout), (i, i + head_dim / 2) otherwise (NeoX). As on the host, the
// angle is formed in double, since in float it loses digits past a few thousand positions, and
// the products are rounded separately (no fused multiply-add) to give the host's values.
// grid: (rows, heads); block: head_dim / 2 threads (rounded up to a warp).
extern "C" __global__ void __launch_bounds__(hearth::MAX_THREADS)
    hearth_rope(const float* __restrict__ x, float* __restrict__ y, const uint32_t* __restrict__ row_pos,
                const float* __restrict__ inv_freq, int heads, int head_dim, int interleaved) {
    const int row = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    const int half = head_dim / 2;
    if (i >= half) return;
    double s, c;
    sincos((double)row_pos[row] * (double)inv_freq[i], &s, &c);
    const float sf = (float)s, cf = (float)c;
    const size_t base = ((size_t)row * heads + h) * head_dim;
    const size_t a = base + (interleaved ? 2 * i : i);
    const size_t b = base + (interleaved ? 2 * i + 1 : i + half);
    const float x0 = x[a], x1 = x[b];
    y[a] = __fsub_rn(__fmul_rn(x0, cf), __fmul_rn(x1, sf));
    y[b] = __fadd_rn(__fmul_rn(x0, sf), __fmul_rn(x1, cf));
}
