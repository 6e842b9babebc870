// f16 storage and conversions as in CUDA's cuda_fp16.h, for the host simulator (see cuda_sim.h).
#pragma once

#include <cstdint>

struct __half {
    unsigned short bits;
};

namespace hearth_sim {
float f16_bits_to_f32(unsigned short bits);
unsigned short f32_to_f16_bits(float v);
}  // namespace hearth_sim

inline __half __ushort_as_half(unsigned short bits) { return __half{bits}; }
inline float __half2float(__half h) { return ::hearth_sim::f16_bits_to_f32(h.bits); }
inline __half __float2half_rn(float v) { return __half{::hearth_sim::f32_to_f16_bits(v)}; }
