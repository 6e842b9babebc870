//! Zeroed heap buffers on transparent huge pages where the system allows it (`madvise` mode
//! included), carved from a `PackArena`'s slabs.
//!
//! Packed weights are streamed once per token. With 4 KiB pages every 4 KiB of a stream costs a
//! TLB entry, and the hardware prefetcher restarts at every page boundary; 2 MiB pages let one
//! core's stream run closer to the memory bandwidth. A huge page only backs a whole, aligned
//! 2 MiB range of memory advised for it, so a matrix allocated on its own keeps its last partial
//! 2 MiB (all of it, if smaller) on small pages: with Qwen2.5-Coder-1.5B that was a quarter of the
//! weights. Matrices placed one after another in big slabs leave only each slab's end.
//!
//! The engine's key/value blocks come from an arena too: a decode step reads one 4 KiB plane per
//! block and layer, each on a page of its own, and on small pages every one of them missed the
//! TLB.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use crate::KernelError;

/// The size of an x86-64 huge page, and the alignment of every slab.
const HUGE_PAGE: usize = 2 << 20;
/// Bytes of one shared slab. Untouched memory costs no physical pages, so a slab's unused end
/// costs at most the partly used huge page before it.
const SLAB_BYTES: usize = 64 << 20;
/// Where a matrix starts inside a slab: a page boundary, where the hardware prefetcher starts a
/// stream anyway.
const REGION_ALIGN: usize = 4096;

/// One allocation advised for huge pages, whose bytes `HugeBuffer`s own in disjoint ranges.
struct Slab {
    ptr: NonNull<u8>,
    cap: usize,
}

// SAFETY: the slab owns its allocation outright; its bytes are only reached through the
// `HugeBuffer`s, whose ranges never overlap.
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

impl Slab {
    /// `cap` (more than zero) uninitialised bytes, 2 MiB-aligned.
    fn new(cap: usize) -> Result<Arc<Self>, KernelError> {
        let layout = Self::layout(cap)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc(layout) }).ok_or_else(|| KernelError::Overflow {
            what: "huge-page allocation",
            detail: format!("{cap} bytes could not be allocated"),
        })?;
        #[cfg(target_os = "linux")]
        {
            // SAFETY: the range is this allocation; MADV_HUGEPAGE only changes how the kernel
            // backs pages not yet touched, and a failure (no THP support) leaves small pages.
            let _ = unsafe { libc::madvise(ptr.as_ptr().cast(), cap, libc::MADV_HUGEPAGE) };
        }
        Ok(Arc::new(Self { ptr, cap }))
    }

    fn layout(cap: usize) -> Result<Layout, KernelError> {
        Layout::from_size_align(cap, HUGE_PAGE)
            .map_err(|e| KernelError::Overflow { what: "huge-page allocation", detail: format!("{cap} bytes: {e}") })
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        if let Ok(layout) = Self::layout(self.cap) {
            // SAFETY: allocated in `new` with this same layout.
            unsafe { dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

/// Zeroed bytes in a range of a slab; see the module documentation.
pub(crate) struct HugeBuffer {
    slab: Arc<Slab>,
    offset: usize,
    len: usize,
}

impl HugeBuffer {
    /// Zeroes and takes `len` bytes at `offset` of `slab`, which no other buffer holds.
    fn zeroed_at(slab: Arc<Slab>, offset: usize, len: usize) -> Self {
        debug_assert!(offset + len <= slab.cap);
        let buffer = Self { slab, offset, len };
        // SAFETY: the range lies inside the slab's allocation and belongs to this buffer alone.
        // Touching the bytes first after the advice is what faults in huge pages; zeroing also
        // makes every byte initialised before any slice of them exists.
        unsafe { buffer.start().write_bytes(0, len) };
        buffer
    }

    fn start(&self) -> *mut u8 {
        // The range lies inside the slab (`zeroed_at`).
        self.slab.ptr.as_ptr().wrapping_add(self.offset)
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes at `start` belong to this buffer alone and live as long
        // as its `Arc` of the slab.
        unsafe { std::slice::from_raw_parts(self.start(), self.len) }
    }

    /// The bytes, to write.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` makes the access exclusive, and no other buffer
        // reaches this range.
        unsafe { std::slice::from_raw_parts_mut(self.start(), self.len) }
    }
}

impl Drop for HugeBuffer {
    /// Hands the whole pages of a buffer back to the system while other buffers keep its slab
    /// alive: the arena never reuses a range, and a key/value store that replaces a block would
    /// otherwise keep the old one's memory for as long as the slab lives.
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if Arc::strong_count(&self.slab) > 1 {
            let start = self.start() as usize;
            let (first, end) = (start.next_multiple_of(REGION_ALIGN), (start + self.len) / REGION_ALIGN * REGION_ALIGN);
            if end > first {
                // SAFETY: the whole pages `first..end` lie inside this buffer's range, which no
                // other buffer holds and nothing reaches once it is dropped; MADV_DONTNEED on
                // private anonymous memory only releases them (they would read back as zeroes).
                let _ = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
            }
        }
    }
}

/// Where the packed matrices of one model go: big slabs on huge pages, filled one matrix after
/// another, so matrices smaller than a huge page, and the ends of bigger ones, stream from huge
/// pages too. A slab is freed with the last matrix in it.
#[derive(Default)]
pub struct PackArena {
    /// The slab being filled and the bytes of it handed out.
    current: Mutex<Option<(Arc<Slab>, usize)>>,
}

impl std::fmt::Debug for PackArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackArena")
    }
}

impl PackArena {
    /// Whether this system has transparent huge pages to put an arena on (Linux; they may still
    /// be turned off there); elsewhere a copy into the arena gains nothing over the mapped file.
    pub const HUGE_PAGES: bool = cfg!(target_os = "linux");

    /// An arena with no slab yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `len` zero bytes in this arena's memory.
    pub(crate) fn zeroed(&self, len: usize) -> Result<HugeBuffer, KernelError> {
        if len >= SLAB_BYTES / 2 {
            // A matrix this big gets a slab of its own, rounded up to whole huge pages; the
            // round-up costs under 2 MiB of it, and the slab being filled stays for the others.
            return Ok(HugeBuffer::zeroed_at(Slab::new(len.next_multiple_of(HUGE_PAGE))?, 0, len));
        }
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let (slab, used) = match current.take() {
            Some((slab, used)) if used.next_multiple_of(REGION_ALIGN) + len <= slab.cap => (slab, used),
            _ => (Slab::new(SLAB_BYTES)?, 0),
        };
        let offset = used.next_multiple_of(REGION_ALIGN);
        *current = Some((Arc::clone(&slab), offset + len));
        Ok(HugeBuffer::zeroed_at(slab, offset, len))
    }
}

/// A copy of weights kept in their file layout, in a `PackArena`'s huge pages.
pub struct ArenaBytes(HugeBuffer);

impl ArenaBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// The bytes, to write.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

impl std::fmt::Debug for ArenaBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArenaBytes({} bytes)", self.0.len)
    }
}

impl PackArena {
    /// `len` zero bytes in this arena's memory, every page of them already faulted in: memory
    /// backed as packed weights are, for a probe to stream.
    pub fn zeroes(&self, len: usize) -> Result<ArenaBytes, KernelError> {
        Ok(ArenaBytes(self.zeroed(len)?))
    }

    /// A copy of `bytes` in this arena's memory.
    pub fn copy(&self, bytes: &[u8]) -> Result<ArenaBytes, KernelError> {
        let mut buffer = self.zeroed(bytes.len())?;
        buffer.as_mut_slice().copy_from_slice(bytes);
        Ok(ArenaBytes(buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::{HUGE_PAGE, PackArena, REGION_ALIGN, SLAB_BYTES};

    #[test]
    fn arena_buffers_share_slabs_without_overlapping() {
        let arena = PackArena::new();
        let mut a = arena.zeroed(5000).unwrap();
        let mut b = arena.zeroed(300).unwrap();
        assert!(a.as_slice().iter().chain(b.as_slice()).all(|&x| x == 0));
        a.as_mut_slice().fill(1);
        b.as_mut_slice().fill(2);
        assert!(a.as_slice().iter().all(|&x| x == 1) && b.as_slice().iter().all(|&x| x == 2));
        assert!(std::sync::Arc::ptr_eq(&a.slab, &b.slab), "small buffers share a slab");
        assert_eq!(a.start() as usize % HUGE_PAGE, 0);
        assert_eq!(b.offset, 5000usize.next_multiple_of(REGION_ALIGN));
    }

    #[test]
    fn a_full_slab_is_followed_by_a_new_one_and_big_buffers_get_their_own() {
        let arena = PackArena::new();
        let third = SLAB_BYTES / 3;
        let a = arena.zeroed(third).unwrap();
        let b = arena.zeroed(third).unwrap();
        let c = arena.zeroed(third).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a.slab, &b.slab));
        assert!(!std::sync::Arc::ptr_eq(&b.slab, &c.slab), "the third does not fit behind aligned starts");
        let big = arena.zeroed(SLAB_BYTES / 2 + 1).unwrap();
        assert_eq!(big.slab.cap, (SLAB_BYTES / 2 + 1).next_multiple_of(HUGE_PAGE));
        let d = arena.zeroed(10).unwrap();
        assert!(std::sync::Arc::ptr_eq(&c.slab, &d.slab), "a big buffer leaves the slab being filled");
        drop(arena);
        assert_eq!(d.as_slice(), &[0; 10], "buffers outlive their arena");
    }

    #[test]
    fn copies_hold_their_bytes_next_to_packed_matrices() {
        let arena = PackArena::new();
        let packed = arena.zeroed(100).unwrap();
        let bytes: Vec<u8> = (0..=255).cycle().take(9000).collect();
        let copy = arena.copy(&bytes).unwrap();
        assert_eq!(copy.as_slice(), &bytes[..]);
        assert!(std::sync::Arc::ptr_eq(&packed.slab, &copy.0.slab));
    }

    #[test]
    fn dropping_a_buffer_leaves_its_neighbours_bytes() {
        let arena = PackArena::new();
        // Lengths off the page size: only the middle one's whole pages may go.
        let mut before = arena.zeroes(5000).unwrap();
        let middle = arena.zeroes(3 * REGION_ALIGN + 100).unwrap();
        let mut after = arena.zeroes(7000).unwrap();
        before.as_mut_slice().fill(1);
        after.as_mut_slice().fill(3);
        drop(middle);
        assert!(before.as_slice().iter().all(|&x| x == 1));
        assert!(after.as_slice().iter().all(|&x| x == 3));
    }

    #[test]
    fn empty_buffers_are_empty() {
        assert!(PackArena::new().zeroed(0).unwrap().as_slice().is_empty());
    }
}
