//! The simulator's own behaviour, with the kernels of `src/selftest.cpp`.
#![allow(clippy::unwrap_used)]

use std::ffi::c_int;

use super::{Launch, SimError, launched};

unsafe extern "C" {
    fn hearth_sim_selftest_exchanges(l: *const Launch, out: *mut f32, distances: c_int) -> c_int;
    fn hearth_sim_selftest_divergent(l: *const Launch, out: *mut f32) -> c_int;
    fn hearth_sim_selftest_early_exit(l: *const Launch, out: *mut f32, live: c_int) -> c_int;
}

fn block_of(threads: u32, shared_bytes: u32) -> Launch {
    Launch { grid: [2, 1, 1], block: [threads, 1, 1], shared_bytes }
}

#[test]
fn shuffles_exchange_within_a_warp_and_barriers_share_memory() {
    let threads = 96u32;
    let distances = 5;
    let mut out = vec![0.0f32; threads as usize * (distances + 1)];
    // SAFETY: the kernel writes (distances + 1) values per thread and reads `threads` floats of
    // shared memory, which the launch provides.
    let rc =
        unsafe { hearth_sim_selftest_exchanges(&block_of(threads, threads * 4), out.as_mut_ptr(), distances as c_int) };
    launched(rc).unwrap();
    let block_sum = (0..threads).sum::<u32>() as f32;
    for t in 0..threads as usize {
        let row = &out[t * (distances + 1)..(t + 1) * (distances + 1)];
        for (i, &got) in row[..distances].iter().enumerate() {
            assert_eq!(got, (t ^ (1 << i)) as f32, "thread {t}, distance {}", 1 << i);
        }
        assert_eq!(row[distances], block_sum, "thread {t}");
    }
}

#[test]
fn threads_waiting_at_different_barriers_are_reported() {
    let mut out = vec![0.0f32; 64];
    // SAFETY: the kernel writes at most one value per thread.
    let rc = unsafe { hearth_sim_selftest_divergent(&block_of(64, 0), out.as_mut_ptr()) };
    assert!(matches!(launched(rc), Err(SimError::Launch(_))), "rc {rc}");
}

#[test]
fn threads_that_return_leave_the_barrier() {
    let mut out = vec![-1.0f32; 64];
    // SAFETY: the kernel writes one value for each of the first 40 threads.
    let rc = unsafe { hearth_sim_selftest_early_exit(&block_of(64, 0), out.as_mut_ptr(), 40) };
    launched(rc).unwrap();
    for (t, &v) in out.iter().enumerate() {
        assert_eq!(v, if t < 40 { t as f32 } else { -1.0 }, "thread {t}");
    }
}

#[test]
fn launches_a_device_would_refuse_are_refused() {
    let mut out = vec![0.0f32; 2048 * 6];
    let too_many = Launch { grid: [1, 1, 1], block: [1025, 1, 1], shared_bytes: 0 };
    let too_much_shared = block_of(32, 48 * 1024 + 4);
    let no_blocks = Launch { grid: [0, 1, 1], block: [32, 1, 1], shared_bytes: 0 };
    for l in [too_many, too_much_shared, no_blocks] {
        // SAFETY: refused before any thread runs; had it run, `out` holds 6 values per thread.
        let rc = unsafe { hearth_sim_selftest_exchanges(&l, out.as_mut_ptr(), 5) };
        assert!(matches!(launched(rc), Err(SimError::Launch(_))), "rc {rc}");
    }
}
