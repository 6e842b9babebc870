//! Block storage: fixed-size f16 blocks of keys and values, reference-counted, allocated within a
//! memory budget. Freed blocks keep their memory for reuse; the budget counts them too, so the
//! pool's footprint never exceeds it.
//!
//! In host memory each block is a buffer of a huge-page arena, so consecutive blocks share 2 MiB
//! pages: a decode step reads a 4 KiB plane of every block for every layer, and with a page per
//! plane attention spent a fifth of its time waiting on the TLB.
//!
//! For a model on a CUDA device the blocks live in one device arena allocated up front for the
//! whole budget. It gives every block the same stride, the size of the largest group's block, so
//! a freed block serves any group without moving memory; such a store counts every block at that
//! size.

use half::f16;
use hearth_kernels::{ArenaBytes, PackArena};

use crate::kv::error::KvError;
use crate::kv::layout::KvLayout;

/// Index of a block in its pool.
pub type BlockId = u32;

#[derive(Debug)]
struct Block {
    group: usize,
    refs: u32,
}

/// Where the keys and values of the blocks are.
#[derive(Debug)]
enum BlockMemory {
    /// Block `id`'s elements at `blocks[id]`, sized for its group, carved from `arena`.
    Host { arena: PackArena, blocks: Vec<ArenaBytes> },
    /// Every block in one arena on the device.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::DeviceKvBlocks),
}

/// Counts describing a pool's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The memory budget in bytes.
    pub budget_bytes: usize,
    /// Bytes of block storage allocated (in use, cached or free).
    pub allocated_bytes: usize,
    /// Blocks referenced by anything (sequences or the prefix tree).
    pub live_blocks: usize,
    /// Blocks allocated but unreferenced, ready for reuse.
    pub free_blocks: usize,
}

/// Every block of one pool.
#[derive(Debug)]
pub struct BlockStore {
    layout: KvLayout,
    blocks: Vec<Block>,
    memory: BlockMemory,
    free: Vec<BlockId>,
    budget_bytes: usize,
    allocated_bytes: usize,
}

impl BlockStore {
    /// An empty store in host memory that will allocate at most `budget_bytes` of blocks.
    pub fn new(layout: KvLayout, budget_bytes: usize) -> Self {
        Self {
            layout,
            blocks: Vec::new(),
            memory: BlockMemory::Host { arena: PackArena::new(), blocks: Vec::new() },
            free: Vec::new(),
            budget_bytes,
            allocated_bytes: 0,
        }
    }

    /// An empty store whose blocks live on `device`: the arena for the whole budget is allocated
    /// now, so running out of device memory is an error here rather than midway through a pass.
    #[cfg(feature = "cuda")]
    pub fn on_cuda(
        layout: KvLayout,
        budget_bytes: usize,
        device: &candle_core::cuda_backend::CudaDevice,
    ) -> Result<Self, KvError> {
        let stride_bytes = crate::cuda::DeviceKvBlocks::stride_elems(&layout) * crate::kv::layout::ELEMENT_BYTES;
        let blocks = budget_bytes / stride_bytes.max(1);
        let arena = crate::cuda::DeviceKvBlocks::zeroed(device, layout.clone(), blocks)
            .map_err(|e| KvError::Device(format!("allocating {blocks} KV blocks ({budget_bytes} bytes): {e}")))?;
        Ok(Self {
            layout,
            blocks: Vec::new(),
            memory: BlockMemory::Cuda(arena),
            free: Vec::new(),
            budget_bytes,
            allocated_bytes: 0,
        })
    }

    /// The layout of every block.
    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    /// Bytes one block of group `g` takes from the budget: its own size in host memory, the
    /// arena's stride on a device.
    pub fn block_bytes(&self, g: usize) -> usize {
        match &self.memory {
            BlockMemory::Host { .. } => self.layout.block_bytes(g),
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(_) => {
                crate::cuda::DeviceKvBlocks::stride_elems(&self.layout) * crate::kv::layout::ELEMENT_BYTES
            }
        }
    }

    /// Bytes of the blocks a sequence of `len` positions holds in this store (see
    /// [`KvLayout::bytes_for`]).
    pub fn bytes_for(&self, len: usize) -> usize {
        let l = &self.layout;
        (0..l.groups.len())
            .map(|g| (l.blocks_for(len) - l.first_visible(g, len) / l.block_size) * self.block_bytes(g))
            .sum()
    }

    /// A block of group `g` with one reference, or `None` when the budget is used up by live
    /// blocks (the caller may evict cached blocks and retry); an error when the system has no
    /// memory for it.
    pub fn allocate(&mut self, g: usize) -> Result<Option<BlockId>, KvError> {
        if let Some(i) = self.free.iter().rposition(|&id| self.blocks[id as usize].group == g) {
            let id = self.free.swap_remove(i);
            self.blocks[id as usize].refs = 1;
            return Ok(Some(id));
        }
        let bytes = self.block_bytes(g);
        if self.allocated_bytes + bytes <= self.budget_bytes {
            let Ok(id) = BlockId::try_from(self.blocks.len()) else { return Ok(None) };
            match &mut self.memory {
                BlockMemory::Host { arena, blocks } => blocks.push(host_block(arena, bytes)?),
                // The arena has room for every block the budget allows.
                #[cfg(feature = "cuda")]
                BlockMemory::Cuda(arena) => {
                    if id as usize >= arena.capacity() {
                        return Ok(None);
                    }
                }
            }
            self.blocks.push(Block { group: g, refs: 1 });
            self.allocated_bytes += bytes;
            return Ok(Some(id));
        }
        // A free block of another group is resized when the budget allows its new size.
        let Some(i) = self.free.iter().position(|&id| {
            let old = self.block_bytes(self.blocks[id as usize].group);
            self.allocated_bytes - old + bytes <= self.budget_bytes
        }) else {
            return Ok(None);
        };
        let id = self.free[i];
        match &mut self.memory {
            // The old buffer's pages go back to the system as it is dropped.
            BlockMemory::Host { arena, blocks } => blocks[id as usize] = host_block(arena, bytes)?,
            // Device blocks all have the arena's stride.
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(_) => {}
        }
        self.free.swap_remove(i);
        let old = self.block_bytes(self.blocks[id as usize].group);
        self.allocated_bytes = self.allocated_bytes - old + bytes;
        let block = &mut self.blocks[id as usize];
        block.group = g;
        block.refs = 1;
        Ok(Some(id))
    }

    /// Adds a reference to `id`.
    pub fn retain(&mut self, id: BlockId) {
        self.blocks[id as usize].refs += 1;
    }

    /// Drops a reference to `id`; the block is free once none is left.
    pub fn release(&mut self, id: BlockId) {
        let block = &mut self.blocks[id as usize];
        debug_assert!(block.refs > 0, "block {id} released more often than retained");
        block.refs = block.refs.saturating_sub(1);
        if block.refs == 0 {
            self.free.push(id);
        }
    }

    /// References held on `id`.
    pub fn refs(&self, id: BlockId) -> u32 {
        self.blocks[id as usize].refs
    }

    /// Stored keys and values of block `id` in host memory; an error for blocks on a device.
    pub fn data(&self, id: BlockId) -> Result<&[f16], KvError> {
        match &self.memory {
            BlockMemory::Host { blocks, .. } => as_elements(blocks[id as usize].as_slice()),
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(_) => Err(KvError::BlocksOnDevice),
        }
    }

    /// Stored keys and values of block `id`, for writing. Only the single owner of a block may
    /// write it; shared blocks are copied first (see [`BlockStore::copy`]).
    pub fn data_mut(&mut self, id: BlockId) -> Result<&mut [f16], KvError> {
        match &mut self.memory {
            BlockMemory::Host { blocks, .. } => as_elements_mut(blocks[id as usize].as_mut_slice()),
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(_) => Err(KvError::BlocksOnDevice),
        }
    }

    /// A copy of block `id`'s keys and values in host memory, wherever the block lives.
    pub fn read_block(&self, id: BlockId) -> Result<Vec<f16>, KvError> {
        match &self.memory {
            BlockMemory::Host { blocks, .. } => Ok(as_elements(blocks[id as usize].as_slice())?.to_vec()),
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(arena) => {
                let elems = self.layout.block_elems(self.blocks[id as usize].group);
                arena.read(id, elems).map_err(|e| KvError::Device(format!("reading KV block {id}: {e}")))
            }
        }
    }

    /// Overwrites block `id` with `values`, which must be one whole block of its group.
    pub fn write_block(&mut self, id: BlockId, values: &[f16]) -> Result<(), KvError> {
        let elems = self.layout.block_elems(self.blocks[id as usize].group);
        if values.len() != elems {
            return Err(KvError::BlockLength { expected: elems, actual: values.len() });
        }
        match &mut self.memory {
            BlockMemory::Host { blocks, .. } => {
                as_elements_mut(blocks[id as usize].as_mut_slice())?.copy_from_slice(values)
            }
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(arena) => {
                arena.write(id, values).map_err(|e| KvError::Device(format!("writing KV block {id}: {e}")))?
            }
        }
        Ok(())
    }

    /// A new block (one reference) holding a copy of `id`'s contents, or `None` when the budget
    /// is used up by live blocks.
    pub fn copy(&mut self, id: BlockId) -> Result<Option<BlockId>, KvError> {
        let g = self.blocks[id as usize].group;
        let Some(new) = self.allocate(g)? else { return Ok(None) };
        match &mut self.memory {
            BlockMemory::Host { blocks, .. } => {
                let (src, dst) = if id < new {
                    let (a, b) = blocks.split_at_mut(new as usize);
                    (&a[id as usize], &mut b[0])
                } else {
                    let (a, b) = blocks.split_at_mut(id as usize);
                    (&b[0], &mut a[new as usize])
                };
                dst.as_mut_slice().copy_from_slice(src.as_slice());
            }
            #[cfg(feature = "cuda")]
            BlockMemory::Cuda(arena) => {
                if let Err(e) = arena.copy_block(id, new) {
                    self.release(new);
                    return Err(KvError::Device(format!("copying KV block {id}: {e}")));
                }
            }
        }
        Ok(Some(new))
    }

    /// The device arena, for a store whose blocks live on a CUDA device.
    #[cfg(feature = "cuda")]
    pub(crate) fn device_blocks(&mut self) -> Option<&mut crate::cuda::DeviceKvBlocks> {
        match &mut self.memory {
            BlockMemory::Cuda(arena) => Some(arena),
            BlockMemory::Host { .. } => None,
        }
    }

    /// Bytes the store can hand out without evicting anything: budget never allocated plus free
    /// blocks. With several layer groups this is an upper bound, since a free block is resized
    /// for another group only when the budget allows its new size.
    pub fn available_bytes(&self) -> usize {
        let free: usize = self.free.iter().map(|&id| self.block_bytes(self.blocks[id as usize].group)).sum();
        self.budget_bytes.saturating_sub(self.allocated_bytes) + free
    }

    /// Memory counts.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            budget_bytes: self.budget_bytes,
            allocated_bytes: self.allocated_bytes,
            live_blocks: self.blocks.len() - self.free.len(),
            free_blocks: self.free.len(),
        }
    }
}

/// A zeroed host block of `bytes` bytes from `arena`.
fn host_block(arena: &PackArena, bytes: usize) -> Result<ArenaBytes, KvError> {
    arena.zeroes(bytes).map_err(|e| KvError::HostMemory(format!("allocating a KV block of {bytes} bytes: {e}")))
}

/// A host block's bytes as its f16 elements. Arena buffers start on a page and blocks hold whole
/// elements, so this fails only if that stopped being so.
fn as_elements(bytes: &[u8]) -> Result<&[f16], KvError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| KvError::HostMemory(format!("a KV block's bytes as f16: {e}")))
}

/// [`as_elements`], to write.
fn as_elements_mut(bytes: &mut [u8]) -> Result<&mut [f16], KvError> {
    bytemuck::try_cast_slice_mut(bytes).map_err(|e| KvError::HostMemory(format!("a KV block's bytes as f16: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::layout::LayerGroup;

    fn layout() -> KvLayout {
        KvLayout::new(
            2,
            1,
            2,
            4,
            vec![LayerGroup { layers: vec![0], window: None }, LayerGroup { layers: vec![1], window: Some(4) }],
        )
    }

    #[test]
    fn budget_bounds_allocation_and_freed_blocks_are_reused() {
        let l = layout();
        let bytes = l.block_bytes(0);
        let mut store = BlockStore::new(l, 2 * bytes);
        let a = store.allocate(0).unwrap().unwrap();
        let b = store.allocate(0).unwrap().unwrap();
        assert!(store.allocate(0).unwrap().is_none(), "a third block is over budget");
        store.release(a);
        assert_eq!(store.allocate(0).unwrap(), Some(a));
        store.retain(b);
        store.release(b);
        assert_eq!(store.refs(b), 1, "one reference is left");
        assert!(store.allocate(1).unwrap().is_none());
        store.release(b);
        // The free block of group 0 is resized for group 1.
        assert_eq!(store.allocate(1).unwrap(), Some(b));
        assert_eq!(store.data(b).unwrap().len(), store.layout().block_elems(1));
        assert!(store.stats().allocated_bytes <= store.stats().budget_bytes);
    }

    #[test]
    fn blocks_are_read_and_written_whole() {
        let l = layout();
        let mut store = BlockStore::new(l.clone(), 4 * l.block_bytes(0));
        assert_eq!((store.block_bytes(0), store.block_bytes(1)), (l.block_bytes(0), l.block_bytes(1)));
        let a = store.allocate(0).unwrap().unwrap();
        let values: Vec<f16> = (0..l.block_elems(0)).map(|i| f16::from_f32(i as f32)).collect();
        store.write_block(a, &values).unwrap();
        assert_eq!(store.read_block(a).unwrap(), values);
        assert_eq!(store.data(a).unwrap(), values.as_slice());
        let short = &values[1..];
        assert!(
            matches!(store.write_block(a, short), Err(KvError::BlockLength { .. })),
            "a block written with too few values"
        );
        assert_eq!(store.read_block(a).unwrap(), values, "a refused write changes nothing");
    }

    #[test]
    fn copy_duplicates_contents() {
        let l = layout();
        let mut store = BlockStore::new(l.clone(), 4 * l.block_bytes(0));
        let a = store.allocate(0).unwrap().unwrap();
        store.data_mut(a).unwrap()[3] = f16::from_f32(1.5);
        let b = store.copy(a).unwrap().unwrap();
        assert_ne!(a, b);
        assert_eq!(store.data(b).unwrap()[3], f16::from_f32(1.5));
        store.data_mut(b).unwrap()[3] = f16::ZERO;
        assert_eq!(store.data(a).unwrap()[3], f16::from_f32(1.5));
    }
}
