// GGUF block formats read on the device, 32 elements ("a unit") at a time.
//
// Every supported type splits a row into units of 32 consecutive elements: a whole block of the
// 32-element formats, or one sub-block of a 256-element K-quant block (which is where their
// scales change). A unit decoder writes the 32 weights of unit `u` of a row as f32; the layouts
// are those of kernels/src/quant (the CPU reference): little-endian, f16 scales.
#pragma once

#include <cuda_fp16.h>
#include <stdint.h>

namespace hearth {

constexpr int UNIT = 32;

// An f16 stored little-endian at any byte offset (blocks of 18, 20, 22 or 34 bytes leave scales
// unaligned, so no 16-bit load is used).
__device__ __forceinline__ float f16_at(const uint8_t* p) {
    const unsigned short bits = (unsigned short)p[0] | ((unsigned short)p[1] << 8);
    return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ uint32_t u32_at(const uint8_t* p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

struct F32 {
    static constexpr int BLOCK_ELEMS = 1;
    static constexpr int BLOCK_BYTES = 4;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const float* src = reinterpret_cast<const float*>(row) + u * UNIT;
        for (int l = 0; l < UNIT; ++l) w[l] = src[l];
    }
};

struct F16 {
    static constexpr int BLOCK_ELEMS = 1;
    static constexpr int BLOCK_BYTES = 2;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* src = row + u * UNIT * 2;
        for (int l = 0; l < UNIT; ++l) w[l] = f16_at(src + 2 * l);
    }
};

// Q4_0 (18 B): d, qs[16]; element j is (qs[j] & 15) - 8, element j+16 is (qs[j] >> 4) - 8.
struct Q4_0 {
    static constexpr int BLOCK_ELEMS = 32;
    static constexpr int BLOCK_BYTES = 18;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + u * BLOCK_BYTES;
        const float d = f16_at(b);
        for (int j = 0; j < 16; ++j) {
            w[j] = d * (float)((int)(b[2 + j] & 15) - 8);
            w[j + 16] = d * (float)((int)(b[2 + j] >> 4) - 8);
        }
    }
};

// Q4_1 (20 B): d, m, qs[16]; nibbles as Q4_0 without the offset, times d plus m.
struct Q4_1 {
    static constexpr int BLOCK_ELEMS = 32;
    static constexpr int BLOCK_BYTES = 20;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + u * BLOCK_BYTES;
        const float d = f16_at(b), m = f16_at(b + 2);
        for (int j = 0; j < 16; ++j) {
            w[j] = d * (float)(b[4 + j] & 15) + m;
            w[j + 16] = d * (float)(b[4 + j] >> 4) + m;
        }
    }
};

// Q5_0 (22 B): d, qh (u32), qs[16]; bit j of qh is bit 4 of element j; minus 16, times d.
struct Q5_0 {
    static constexpr int BLOCK_ELEMS = 32;
    static constexpr int BLOCK_BYTES = 22;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + u * BLOCK_BYTES;
        const float d = f16_at(b);
        const uint32_t qh = u32_at(b + 2);
        for (int j = 0; j < 16; ++j) {
            const int lo = (b[6 + j] & 15) | (((qh >> j) & 1) << 4);
            const int hi = (b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            w[j] = d * (float)(lo - 16);
            w[j + 16] = d * (float)(hi - 16);
        }
    }
};

// Q5_1 (24 B): d, m, qh (u32), qs[16]; as Q5_0 without the offset, times d plus m.
struct Q5_1 {
    static constexpr int BLOCK_ELEMS = 32;
    static constexpr int BLOCK_BYTES = 24;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + u * BLOCK_BYTES;
        const float d = f16_at(b), m = f16_at(b + 2);
        const uint32_t qh = u32_at(b + 4);
        for (int j = 0; j < 16; ++j) {
            const int lo = (b[8 + j] & 15) | (((qh >> j) & 1) << 4);
            const int hi = (b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            w[j] = d * (float)lo + m;
            w[j + 16] = d * (float)hi + m;
        }
    }
};

// Q8_0 (34 B): d, qs[32] as int8.
struct Q8_0 {
    static constexpr int BLOCK_ELEMS = 32;
    static constexpr int BLOCK_BYTES = 34;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + u * BLOCK_BYTES;
        const float d = f16_at(b);
        for (int l = 0; l < UNIT; ++l) w[l] = d * (float)(int8_t)b[2 + l];
    }
};

// Scale and min of sub-block s (0..8) of a Q4_K/Q5_K block from its 12 packed bytes: 0..4 are
// the low six bits of bytes s and s+4; 4..8 take their low nibbles from byte s+4 and their top
// two bits from the tops of bytes s-4 and s.
__device__ __forceinline__ void k4_scale_min(const uint8_t* sc, int s, int* scale, int* min) {
    if (s < 4) {
        *scale = sc[s] & 63;
        *min = sc[s + 4] & 63;
    } else {
        *scale = (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
        *min = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
    }
}

// Q4_K (144 B): d, dmin, scales[12], qs[128]. Sub-block s is the low (s even) or high (s odd)
// nibbles of qs[(s / 2) * 32 ..][..32]; value = d * scale * q - dmin * min.
struct Q4_K {
    static constexpr int BLOCK_ELEMS = 256;
    static constexpr int BLOCK_BYTES = 144;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + (u / 8) * BLOCK_BYTES;
        const int s = u % 8;
        int scale, min;
        k4_scale_min(b + 4, s, &scale, &min);
        const float d = f16_at(b) * (float)scale, m = f16_at(b + 2) * (float)min;
        const uint8_t* qs = b + 16 + (s / 2) * 32;
        const int shift = 4 * (s % 2);
        for (int l = 0; l < UNIT; ++l) w[l] = d * (float)((qs[l] >> shift) & 15) - m;
    }
};

// Q5_K (176 B): d, dmin, scales[12], qh[32], qs[128]; as Q4_K plus bit s of qh[l] as bit 4.
struct Q5_K {
    static constexpr int BLOCK_ELEMS = 256;
    static constexpr int BLOCK_BYTES = 176;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + (u / 8) * BLOCK_BYTES;
        const int s = u % 8;
        int scale, min;
        k4_scale_min(b + 4, s, &scale, &min);
        const float d = f16_at(b) * (float)scale, m = f16_at(b + 2) * (float)min;
        const uint8_t* qh = b + 16;
        const uint8_t* qs = b + 48 + (s / 2) * 32;
        const int shift = 4 * (s % 2);
        for (int l = 0; l < UNIT; ++l) {
            const int q = ((qs[l] >> shift) & 15) | (((qh[l] >> s) & 1) << 4);
            w[l] = d * (float)q - m;
        }
    }
};

// Q6_K (210 B): ql[128], qh[64], scales[16] as int8, d. Sub-block s is half n = s / 4, quarter
// t = s % 4: low nibble of ql[n*64 + (t%2)*32 + l] >> (4*(t/2)), high bits (qh[n*32 + l] >> 2t)
// & 3; value = d * scales[(32 s + l) / 16] * (q - 32).
struct Q6_K {
    static constexpr int BLOCK_ELEMS = 256;
    static constexpr int BLOCK_BYTES = 210;
    __device__ static void unit(const uint8_t* row, int u, float* w) {
        const uint8_t* b = row + (u / 8) * BLOCK_BYTES;
        const int s = u % 8, n = s / 4, t = s % 4;
        const uint8_t* ql = b + n * 64 + (t % 2) * 32;
        const uint8_t* qh = b + 128 + n * 32;
        const float d = f16_at(b + 208);
        const float d0 = d * (float)(int8_t)b[192 + 2 * s];
        const float d1 = d * (float)(int8_t)b[192 + 2 * s + 1];
        const int low_shift = 4 * (t / 2), high_shift = 2 * t;
        for (int l = 0; l < UNIT; ++l) {
            const int q = ((ql[l] >> low_shift) & 15) | (((qh[l] >> high_shift) & 3) << 4);
            w[l] = (l < 16 ? d0 : d1) * (float)(q - 32);
        }
    }
};

}  // namespace hearth
