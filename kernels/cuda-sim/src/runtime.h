// The simulator's launch interface, shared by the runtime and the kernel entry points.
#pragma once

#include <cstdint>
#include <functional>

#define HEARTH_SIM_SHARED_BYTES (48 * 1024)

// Results of a launch, as the Rust side reads them.
#define HEARTH_SIM_OK 0
#define HEARTH_SIM_BAD_BLOCK 1
#define HEARTH_SIM_BAD_GRID 2
#define HEARTH_SIM_SHARED_TOO_LARGE 3
#define HEARTH_SIM_DIVERGENT_BARRIER 4
#define HEARTH_SIM_NO_CONTEXT 5

// Grid, block and dynamic shared memory of a launch (LaunchGeometry on the Rust side).
struct hearth_sim_launch {
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t shared_bytes;
};

namespace hearth_sim {
// Runs `kernel` once per thread of every block of `l`.
int launch(const hearth_sim_launch* l, const std::function<void()>& kernel);
}  // namespace hearth_sim
