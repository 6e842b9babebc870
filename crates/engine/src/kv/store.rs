//! Block storage: fixed-size f16 blocks of keys and values, reference-counted, allocated within a
//! memory budget. Freed blocks keep their memory for reuse; the budget counts them too, so the
//! pool's footprint never exceeds it.

use half::f16;

use crate::kv::layout::KvLayout;

/// Index of a block in its pool.
pub type BlockId = u32;

#[derive(Debug)]
struct Block {
    group: usize,
    refs: u32,
    data: Vec<f16>,
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
    free: Vec<BlockId>,
    budget_bytes: usize,
    allocated_bytes: usize,
}

impl BlockStore {
    /// An empty store that will allocate at most `budget_bytes` of blocks.
    pub fn new(layout: KvLayout, budget_bytes: usize) -> Self {
        Self { layout, blocks: Vec::new(), free: Vec::new(), budget_bytes, allocated_bytes: 0 }
    }

    /// The layout of every block.
    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    /// A block of group `g` with one reference, or `None` when the budget is used up by live
    /// blocks (the caller may evict cached blocks and retry).
    pub fn allocate(&mut self, g: usize) -> Option<BlockId> {
        let want = self.layout.block_elems(g);
        if let Some(i) = self.free.iter().rposition(|&id| self.blocks[id as usize].group == g) {
            let id = self.free.swap_remove(i);
            self.blocks[id as usize].refs = 1;
            return Some(id);
        }
        let bytes = self.layout.block_bytes(g);
        if self.allocated_bytes + bytes <= self.budget_bytes {
            let id = BlockId::try_from(self.blocks.len()).ok()?;
            self.blocks.push(Block { group: g, refs: 1, data: vec![f16::ZERO; want] });
            self.allocated_bytes += bytes;
            return Some(id);
        }
        // A free block of another group is resized when the budget allows its new size.
        let i = self.free.iter().position(|&id| {
            let old = self.layout.block_bytes(self.blocks[id as usize].group);
            self.allocated_bytes - old + bytes <= self.budget_bytes
        })?;
        let id = self.free.swap_remove(i);
        let block = &mut self.blocks[id as usize];
        self.allocated_bytes = self.allocated_bytes - self.layout.block_bytes(block.group) + bytes;
        block.group = g;
        block.refs = 1;
        block.data = vec![f16::ZERO; want];
        Some(id)
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

    /// Stored keys and values of block `id`.
    pub fn data(&self, id: BlockId) -> &[f16] {
        &self.blocks[id as usize].data
    }

    /// Stored keys and values of block `id`, for writing. Only the single owner of a block may
    /// write it; shared blocks are copied first (see [`BlockStore::copy`]).
    pub fn data_mut(&mut self, id: BlockId) -> &mut [f16] {
        &mut self.blocks[id as usize].data
    }

    /// A new block (one reference) holding a copy of `id`'s contents.
    pub fn copy(&mut self, id: BlockId) -> Option<BlockId> {
        let g = self.blocks[id as usize].group;
        let new = self.allocate(g)?;
        let (src, dst) = if id < new {
            let (a, b) = self.blocks.split_at_mut(new as usize);
            (&a[id as usize], &mut b[0])
        } else {
            let (a, b) = self.blocks.split_at_mut(id as usize);
            (&b[0], &mut a[new as usize])
        };
        dst.data.copy_from_slice(&src.data);
        Some(new)
    }

    /// Bytes the store can hand out without evicting anything: budget never allocated plus free
    /// blocks. With several layer groups this is an upper bound, since a free block is resized
    /// for another group only when the budget allows its new size.
    pub fn available_bytes(&self) -> usize {
        let free: usize = self.free.iter().map(|&id| self.layout.block_bytes(self.blocks[id as usize].group)).sum();
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
        let a = store.allocate(0).unwrap();
        let b = store.allocate(0).unwrap();
        assert!(store.allocate(0).is_none(), "a third block is over budget");
        store.release(a);
        assert_eq!(store.allocate(0), Some(a));
        store.retain(b);
        store.release(b);
        assert_eq!(store.refs(b), 1, "one reference is left");
        assert!(store.allocate(1).is_none());
        store.release(b);
        // The free block of group 0 is resized for group 1.
        assert_eq!(store.allocate(1), Some(b));
        assert!(store.stats().allocated_bytes <= store.stats().budget_bytes);
    }

    #[test]
    fn copy_duplicates_contents() {
        let l = layout();
        let mut store = BlockStore::new(l.clone(), 4 * l.block_bytes(0));
        let a = store.allocate(0).unwrap();
        store.data_mut(a)[3] = f16::from_f32(1.5);
        let b = store.copy(a).unwrap();
        assert_ne!(a, b);
        assert_eq!(store.data(b)[3], f16::from_f32(1.5));
        store.data_mut(b)[3] = f16::ZERO;
        assert_eq!(store.data(a)[3], f16::from_f32(1.5));
    }
}
