//! Zeroed heap buffers aligned to 2 MiB and, on Linux, backed by transparent huge pages where the
//! system allows it (`madvise` mode included).
//!
//! Packed weights are streamed once per token. With 4 KiB pages every 4 KiB of a stream costs a
//! TLB entry, and the hardware prefetcher restarts at every page boundary; 2 MiB pages let one
//! core's stream run closer to the memory bandwidth.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;

use crate::KernelError;

/// Alignment of the buffer, the size of an x86-64 huge page.
const HUGE_PAGE: usize = 2 << 20;

/// A zeroed, 2 MiB-aligned byte buffer; see the module documentation.
pub(crate) struct HugeBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer owns its allocation outright, like a `Vec<u8>`.
unsafe impl Send for HugeBuffer {}
// SAFETY: shared access only reads.
unsafe impl Sync for HugeBuffer {}

impl HugeBuffer {
    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Result<Self, KernelError> {
        if len == 0 {
            return Ok(Self { ptr: NonNull::dangling(), len });
        }
        let layout = Self::layout(len)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc(layout) }).ok_or_else(|| KernelError::Overflow {
            what: "packed weights allocation",
            detail: format!("{len} bytes could not be allocated"),
        })?;
        #[cfg(target_os = "linux")]
        {
            // SAFETY: the range is this allocation; MADV_HUGEPAGE only changes how the kernel
            // backs pages not yet touched, and a failure (no THP support) leaves small pages.
            let _ = unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: `len` bytes were allocated at `ptr`; zeroing them makes every byte initialised,
        // and touching them first after the advice is what faults in huge pages.
        unsafe { ptr.as_ptr().write_bytes(0, len) };
        Ok(Self { ptr, len })
    }

    fn layout(len: usize) -> Result<Layout, KernelError> {
        Layout::from_size_align(len, HUGE_PAGE).map_err(|e| KernelError::Overflow {
            what: "packed weights allocation",
            detail: format!("{len} bytes: {e}"),
        })
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes at `ptr` (or a dangling pointer with length 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, to write.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeBuffer {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Ok(layout) = Self::layout(self.len) {
            // SAFETY: allocated in `zeroed` with this same layout.
            unsafe { dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}
