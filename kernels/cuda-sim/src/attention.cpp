// kernels/cuda/paged_attention.cu built for the host simulator, with one C entry point per kernel.

#include "paged_attention.cu"

#include "runtime.h"

extern "C" int hearth_sim_kv_write(const hearth_sim_launch* l, const float* k, const float* v, __half* arena,
                                   const uint32_t* row_block, const uint32_t* row_slot, long long block_stride,
                                   int layer_idx, int n_kv_head, int head_dim, int block_size) {
    return hearth_sim::launch(l, [=] {
        hearth_kv_write(k, v, arena, row_block, row_slot, block_stride, layer_idx, n_kv_head, head_dim, block_size);
    });
}

extern "C" int hearth_sim_paged_attention(const hearth_sim_launch* l, const float* q, const __half* arena,
                                          const uint32_t* tables, const uint32_t* row_seq, const uint32_t* row_pos,
                                          float* out, long long block_stride, int table_stride, int layer_idx,
                                          int n_head, int n_kv_head, int head_dim, int block_size, int window,
                                          float scale) {
    return hearth_sim::launch(l, [=] {
        hearth_paged_attention(q, arena, tables, row_seq, row_pos, out, block_stride, table_stride, layer_idx,
                               n_head, n_kv_head, head_dim, block_size, window, scale);
    });
}

extern "C" int hearth_sim_rope(const hearth_sim_launch* l, const float* x, float* y, const uint32_t* row_pos,
                               const float* inv_freq, int heads, int head_dim, int interleaved) {
    return hearth_sim::launch(l, [=] { hearth_rope(x, y, row_pos, inv_freq, heads, head_dim, interleaved); });
}
