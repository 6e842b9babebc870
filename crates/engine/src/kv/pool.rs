//! [`KvPool`]: the blocks and the prefix tree that a set of sequences share, behind one lock.
//! Sequences of one pool can be forked, can reuse each other's prefixes, and can be stepped
//! together in one batch.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::kv::error::KvError;
use crate::kv::layout::KvLayout;
use crate::kv::prefix_tree::PrefixTree;
use crate::kv::sequence::KvCache;
use crate::kv::store::{BlockId, BlockStore, PoolStats};

/// Blocks and prefix tree under the pool's lock.
#[derive(Debug)]
pub(crate) struct PoolState {
    pub(crate) store: BlockStore,
    pub(crate) tree: PrefixTree,
}

impl PoolState {
    /// A block of group `g`, evicting cached blocks least recently used first when the budget
    /// is reached.
    pub(crate) fn allocate(&mut self, g: usize) -> Result<BlockId, KvError> {
        loop {
            if let Some(id) = self.store.allocate(g)? {
                return Ok(id);
            }
            if !self.tree.evict_one(&mut self.store) {
                return Err(KvError::PoolFull { budget_bytes: self.store.stats().budget_bytes });
            }
        }
    }

    /// Whether `bytes` of new blocks could be had: budget never allocated, free blocks and
    /// blocks only the prefix tree holds. An upper bound, so a reservation it allows can still
    /// fail (and is then undone), but one it refuses would fail, and is refused untouched.
    pub(crate) fn can_supply(&self, bytes: usize) -> bool {
        let available = self.store.available_bytes();
        bytes <= available || bytes <= available + self.tree.cached_only_bytes(&self.store)
    }

    /// A private copy of block `id` (copy-on-write), with eviction as for [`Self::allocate`].
    pub(crate) fn copy(&mut self, id: BlockId) -> Result<BlockId, KvError> {
        loop {
            if let Some(new) = self.store.copy(id)? {
                return Ok(new);
            }
            if !self.tree.evict_one(&mut self.store) {
                return Err(KvError::PoolFull { budget_bytes: self.store.stats().budget_bytes });
            }
        }
    }
}

/// A shared pool of KV blocks with a memory budget. Cloning gives another handle to the same pool.
#[derive(Debug, Clone)]
pub struct KvPool {
    layout: Arc<KvLayout>,
    state: Arc<Mutex<PoolState>>,
}

impl KvPool {
    /// A pool of blocks shaped by `layout`, holding at most `budget_bytes` of keys and values.
    pub fn new(layout: KvLayout, budget_bytes: usize) -> Self {
        Self::with_store(BlockStore::new(layout, budget_bytes))
    }

    /// A pool whose blocks live on `device`: host memory for the CPU and Metal; on a CUDA
    /// device, an arena for the whole budget allocated now.
    pub fn on_device(layout: KvLayout, budget_bytes: usize, device: &candle_core::Device) -> Result<Self, KvError> {
        let store = match device {
            // Apple GPUs share memory with the CPU, which runs attention over the blocks.
            candle_core::Device::Cpu | candle_core::Device::Metal(_) => BlockStore::new(layout, budget_bytes),
            #[cfg(feature = "cuda")]
            candle_core::Device::Cuda(cuda) => BlockStore::on_cuda(layout, budget_bytes, cuda)?,
            #[allow(unreachable_patterns)]
            other => return Err(KvError::Device(format!("no KV block store for {other:?}"))),
        };
        Ok(Self::with_store(store))
    }

    fn with_store(store: BlockStore) -> Self {
        let layout = store.layout().clone();
        let tree = PrefixTree::new(layout.block_size);
        Self { layout: Arc::new(layout), state: Arc::new(Mutex::new(PoolState { store, tree })) }
    }

    /// The shape of every block.
    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    /// A new, empty sequence in this pool.
    pub fn new_sequence(&self) -> KvCache {
        KvCache::empty(self.clone())
    }

    /// Memory counts, and the number of blocks of tokens the prefix tree caches.
    pub fn stats(&self) -> (PoolStats, usize) {
        let state = self.lock();
        (state.store.stats(), state.tree.len())
    }

    /// Bytes one block of group `g` takes from the budget (see [`BlockStore::block_bytes`]).
    pub fn block_bytes(&self, g: usize) -> usize {
        self.lock().store.block_bytes(g)
    }

    /// The memory budget in bytes.
    pub fn budget_bytes(&self) -> usize {
        self.lock().store.stats().budget_bytes
    }

    /// Fails with [`KvError::BudgetTooSmall`] when a sequence of `tokens` positions does not fit
    /// in the whole budget even with no other sequence holding blocks.
    pub fn check_fits(&self, tokens: usize) -> Result<(), KvError> {
        let (budget_bytes, needed_bytes) = {
            let state = self.lock();
            (state.store.stats().budget_bytes, state.store.bytes_for(tokens))
        };
        if needed_bytes > budget_bytes {
            return Err(KvError::BudgetTooSmall { budget_bytes, tokens, needed_bytes });
        }
        Ok(())
    }

    /// Whether a sequence of `tokens`, started with [`KvCache::reuse_prefix`], would find its
    /// blocks, with `extra_bytes` to spare for others: the blocks the prefix tree caches count
    /// as its own, the rest must come from free or evictable memory.
    pub fn room_for(&self, tokens: &[u32], extra_bytes: usize) -> bool {
        let layout = &*self.layout;
        let b = layout.block_size;
        let state = self.lock();
        let reusable = tokens.len().saturating_sub(1);
        let path = state.tree.path(&tokens[..reusable - reusable % b]);
        let mut need = extra_bytes;
        let mut evictable = state.tree.cached_only_bytes(&state.store);
        for g in 0..layout.groups.len() {
            for i in layout.first_visible(g, tokens.len()) / b..layout.blocks_for(tokens.len()) {
                match path.get(i).and_then(|&node| state.tree.blocks(node)[g]) {
                    // Taking a cached block makes it no longer evictable.
                    Some(id) if state.store.refs(id) == 1 => {
                        evictable = evictable.saturating_sub(state.store.block_bytes(g))
                    }
                    Some(_) => {}
                    None => need += state.store.block_bytes(g),
                }
            }
        }
        need <= state.store.available_bytes() + evictable
    }

    /// Whether `other` is a handle to this same pool.
    pub fn same_pool(&self, other: &KvPool) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Evicts every cached block no sequence uses; returns how many were freed.
    pub fn evict_cached(&self) -> usize {
        let mut state = self.lock();
        let state = &mut *state;
        let mut n = 0;
        while state.tree.evict_one(&mut state.store) {
            n += 1;
        }
        n
    }

    /// Locks the pool. A panic while the lock was held leaves block contents possibly half
    /// written but the bookkeeping consistent (no operation panics mid-update), so the poison
    /// is cleared rather than spread.
    pub(crate) fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
