//! [`KvCache`]: one sequence's keys and values as a block table per layer group into a shared
//! [`KvPool`], with the token ids they were computed from.
//!
//! Blocks are shared between sequences and the prefix tree by reference counting. A sequence
//! writes only blocks it holds alone; a shared block (after a fork, a truncation into a cached
//! block, or a reused prefix) is copied before its first write.

use crate::kv::error::KvError;
use crate::kv::pool::{KvPool, PoolState};
use crate::kv::store::BlockId;

/// Keys and values of one sequence, held in blocks of a [`KvPool`].
#[derive(Debug)]
pub struct KvCache {
    pool: KvPool,
    /// Per layer group, the block of each run of `block_size` positions; `None` where a
    /// sliding-window group has released a block out of its window.
    tables: Vec<Vec<Option<BlockId>>>,
    tokens: Vec<u32>,
}

impl KvCache {
    pub(crate) fn empty(pool: KvPool) -> Self {
        let tables = vec![Vec::new(); pool.layout().groups.len()];
        Self { pool, tables, tokens: Vec::new() }
    }

    /// Number of positions stored.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no position is stored.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token ids whose keys and values are stored, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Blocks this sequence holds in layer group `g` (shared ones included).
    pub fn held_blocks(&self, g: usize) -> usize {
        self.tables.get(g).map_or(0, |t| t.iter().flatten().count())
    }

    /// The pool this sequence's blocks live in.
    pub fn pool(&self) -> &KvPool {
        &self.pool
    }

    /// The block tables, per layer group.
    pub(crate) fn tables(&self) -> &[Vec<Option<BlockId>>] {
        &self.tables
    }

    /// A new sequence with the same contents that shares every block with this one; either is
    /// copied block by block only where it later writes.
    pub fn fork(&self) -> KvCache {
        let mut state = self.pool.lock();
        let n_blocks = self.pool.layout().blocks_for(self.len());
        let tables: Vec<Vec<Option<BlockId>>> =
            self.tables.iter().map(|t| t[..n_blocks.min(t.len())].to_vec()).collect();
        tables.iter().flatten().flatten().for_each(|&b| state.store.retain(b));
        KvCache { pool: self.pool.clone(), tables, tokens: self.tokens.clone() }
    }

    /// Rewinds to the first `len` positions and returns the length kept. That is `len` (or the
    /// current length, if shorter) except for models with sliding-window layers, whose blocks out
    /// of the window may be gone: then the sequence rewinds further, to where its window is
    /// whole again, and the caller recomputes the tokens in between.
    pub fn truncate(&mut self, len: usize) -> usize {
        if len >= self.len() {
            return self.len();
        }
        let pool = self.pool.clone();
        let mut state = pool.lock();
        let mut len = len;
        loop {
            self.cut(&mut state, len);
            match self.restore_window(&mut state) {
                None => return len,
                Some(missing_block) => len = missing_block * self.pool.layout().block_size,
            }
        }
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Makes this sequence hold the longest prefix of `prompt` that it, or the pool's prefix
    /// tree, already has keys and values for, and returns that prefix's length: the caller runs
    /// only `prompt[kept..]`. At least the last token of `prompt` is always left to run, since
    /// its logits are needed.
    pub fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let limit = prompt.len().saturating_sub(1);
        let own = self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count().min(limit);
        let pool = self.pool.clone();
        let layout = pool.layout();
        let b = layout.block_size;
        let mut state = pool.lock();
        let path = state.tree.lookup(&prompt[..limit - limit % b]);
        // The longest prefix of whole blocks whose windowed groups still hold their window.
        let usable = (0..=path.len())
            .rev()
            .find(|&k| {
                (0..layout.groups.len())
                    .all(|g| (layout.first_visible(g, k * b) / b..k).all(|i| state.tree.blocks(path[i])[g].is_some()))
            })
            .unwrap_or(0);
        if usable * b <= own {
            drop(state);
            return self.truncate(own);
        }
        self.cut(&mut state, 0);
        for (g, table) in self.tables.iter_mut().enumerate() {
            let first = layout.first_visible(g, usable * b) / b;
            for (i, &node) in path[..usable].iter().enumerate() {
                let block = if i >= first { state.tree.blocks(node)[g] } else { None };
                if let Some(id) = block {
                    state.store.retain(id);
                }
                table.push(block);
            }
        }
        self.tokens.extend_from_slice(&prompt[..usable * b]);
        usable * b
    }

    /// Bytes of new blocks [`Self::prepare_append`] takes for `n` more positions: a block for
    /// every missing slot and a copy of every shared one.
    pub(crate) fn append_cost(&self, state: &PoolState, n: usize) -> usize {
        let layout = self.pool.layout();
        let (first, end) = (self.len() / layout.block_size, layout.blocks_for(self.len() + n));
        let needs_block = |slot: Option<&Option<BlockId>>| match slot.copied().flatten() {
            None => true,
            Some(id) => state.store.refs(id) > 1,
        };
        (0..self.tables.len())
            .map(|g| (first..end).filter(|&i| needs_block(self.tables[g].get(i))).count() * state.store.block_bytes(g))
            .sum()
    }

    /// Ensures every group has its own writable block for positions `len..len + n`. A shared
    /// block is replaced by a copy; the replaced ids are pushed to `replaced`, still holding this
    /// sequence's reference, for the caller to release once the whole reservation succeeded (so
    /// eviction cannot take them while it may still be undone, see [`Self::undo_append`]).
    pub(crate) fn prepare_append(
        &mut self,
        state: &mut PoolState,
        n: usize,
        replaced: &mut Vec<BlockId>,
    ) -> Result<(), KvError> {
        let layout = self.pool.layout();
        let (first, end) = (self.len() / layout.block_size, layout.blocks_for(self.len() + n));
        for (g, table) in self.tables.iter_mut().enumerate() {
            if table.len() < end {
                table.resize(end, None);
            }
            for slot in &mut table[first..end] {
                *slot = Some(match *slot {
                    None => state.allocate(g)?,
                    Some(id) if state.store.refs(id) > 1 => {
                        let new = state.copy(id)?;
                        replaced.push(id);
                        new
                    }
                    Some(id) => id,
                });
            }
        }
        Ok(())
    }

    /// Undoes [`Self::prepare_append`], whole or partial: releases the blocks it took and puts
    /// back `saved`, the block tables from before it (whose replaced blocks it has not released).
    pub(crate) fn undo_append(&mut self, state: &mut PoolState, saved: Vec<Vec<Option<BlockId>>>) {
        for (table, before) in self.tables.iter().zip(&saved) {
            for (i, slot) in table.iter().enumerate() {
                if let Some(id) = *slot
                    && before.get(i).copied().flatten() != Some(id)
                {
                    state.store.release(id);
                }
            }
        }
        self.tables = saved;
    }

    /// Records `tokens` as appended after their keys and values were written: caches newly
    /// completed blocks in the prefix tree and releases blocks that left a sliding window.
    pub(crate) fn commit(&mut self, state: &mut PoolState, tokens: &[u32]) {
        let layout = self.pool.layout();
        let b = layout.block_size;
        let full_before = self.len() / b;
        self.tokens.extend_from_slice(tokens);
        let full = self.len() / b;
        if full > full_before {
            let blocks: Vec<Vec<Option<BlockId>>> =
                (0..full).map(|i| self.tables.iter().map(|t| t.get(i).copied().flatten()).collect()).collect();
            state.tree.insert(&mut state.store, &self.tokens[..full * b], &blocks);
        }
        for (g, table) in self.tables.iter_mut().enumerate() {
            let keep_from = (layout.first_visible(g, self.tokens.len()) / b).min(table.len());
            for slot in &mut table[..keep_from] {
                if let Some(id) = slot.take() {
                    state.store.release(id);
                }
            }
        }
    }

    /// Replaces the contents with `tables` (whose references pass to this sequence) holding the
    /// keys and values of `tokens`.
    pub(crate) fn restore(&mut self, tables: Vec<Vec<Option<BlockId>>>, tokens: Vec<u32>) {
        let pool = self.pool.clone();
        let mut state = pool.lock();
        self.cut(&mut state, 0);
        self.tables = tables;
        self.commit(&mut state, &tokens);
    }

    /// Drops positions from `len` on, with the blocks past them.
    fn cut(&mut self, state: &mut PoolState, len: usize) {
        let keep = self.pool.layout().blocks_for(len);
        for table in &mut self.tables {
            for id in table.drain(keep.min(table.len())..).flatten() {
                state.store.release(id);
            }
        }
        self.tokens.truncate(len);
    }

    /// Takes back from the prefix tree windowed blocks the sequence released but needs again
    /// after a rewind. Returns the highest block still missing, if any.
    fn restore_window(&mut self, state: &mut PoolState) -> Option<usize> {
        let layout = self.pool.layout();
        let b = layout.block_size;
        let len = self.len();
        let need = |g: usize| layout.first_visible(g, len) / b..layout.blocks_for(len);
        let gaps = self.tables.iter().enumerate().any(|(g, t)| need(g).any(|i| t[i].is_none()));
        if !gaps {
            return None;
        }
        let path = state.tree.lookup(&self.tokens[..len - len % b]);
        let mut missing = None;
        for (g, table) in self.tables.iter_mut().enumerate() {
            for i in need(g) {
                if table[i].is_some() {
                    continue;
                }
                match path.get(i).and_then(|&n| state.tree.blocks(n)[g]) {
                    Some(id) => {
                        state.store.retain(id);
                        table[i] = Some(id);
                    }
                    None => missing = missing.max(Some(i)),
                }
            }
        }
        missing
    }
}

impl Drop for KvCache {
    fn drop(&mut self) {
        let pool = self.pool.clone();
        let mut state = pool.lock();
        self.cut(&mut state, 0);
    }
}
