//! The C allocator's thresholds for this process.
//!
//! A forward pass over a prompt allocates and frees activations of several MiB each, layer after
//! layer. glibc's malloc gives allocations above its mmap threshold (128 KiB, raised only as big
//! blocks are freed) their own mapping and unmaps them on free, and it returns the top of its heap
//! to the system beyond a trim threshold; either way the next pass faults every page in again,
//! and the kernel zeroes each one. A pp512 of Qwen2.5-Coder-1.5B on two threads took 635,000
//! page faults that way; with the thresholds below, 50,000.

/// Keeps freed allocations of up to 32 MiB in the heap for reuse, and up to 256 MiB of free heap
/// before giving any back: a pass's activations then reuse the pages of the pass before.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only sets the allocator's parameters, before any thread starts; a refused
    // value (it returns 0) leaves the default, which is only slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Other C libraries keep their own defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
