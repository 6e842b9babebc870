// The constants of CUDA's math_constants.h that the kernels use, for the host simulator.
#pragma once

#include <limits>

#define CUDART_INF_F (std::numeric_limits<float>::infinity())
