// kernels/cuda/qmatmul.cu built for the host simulator, with one C entry point per kernel.

#include "qmatmul.cu"

#include "runtime.h"

#define HEARTH_SIM_QMATMUL(name)                                                                  \
    extern "C" int hearth_sim_qmatmul_##name(const hearth_sim_launch* l, const uint8_t* w, const float* x, \
                                             float* y, int n, int k, int m) {                    \
        return hearth_sim::launch(l, [=] { hearth_qmatmul_##name(w, x, y, n, k, m); });         \
    }

HEARTH_SIM_QMATMUL(f32)
HEARTH_SIM_QMATMUL(f16)
HEARTH_SIM_QMATMUL(q4_0)
HEARTH_SIM_QMATMUL(q4_1)
HEARTH_SIM_QMATMUL(q5_0)
HEARTH_SIM_QMATMUL(q5_1)
HEARTH_SIM_QMATMUL(q8_0)
HEARTH_SIM_QMATMUL(q4_k)
HEARTH_SIM_QMATMUL(q5_k)
HEARTH_SIM_QMATMUL(q6_k)
