//! [`ForwardStep`]: one forward pass over new tokens of one or more sequences of a pool. It holds
//! the pool's lock for the pass, gives each sequence writable blocks for its new positions up
//! front, all or none (so running out of memory fails before anything is computed, and leaves
//! every sequence and block as it was), and runs each layer's attention over the blocks.

use std::sync::MutexGuard;

use candle_core::Tensor;

use crate::error::Result;
use crate::kv::attention::{self, SeqRows};
use crate::kv::error::KvError;
use crate::kv::pool::{KvPool, PoolState};
use crate::kv::sequence::KvCache;
use crate::kv::store::BlockId;
use crate::model::layers::{Rotary, RotaryTable};

struct StepSeq {
    tables: Vec<Vec<Option<BlockId>>>,
    past: usize,
    row0: usize,
    rows: usize,
}

/// The state of one forward pass: the locked pool and where each sequence's rows go.
pub struct ForwardStep<'p> {
    pool: &'p KvPool,
    state: MutexGuard<'p, PoolState>,
    seqs: Vec<StepSeq>,
    positions: Vec<usize>,
    /// The rotations to `positions` the layers asked for so far, one per [`Rotary`] (Gemma 3
    /// has two).
    rotations: Vec<RotaryTable>,
    #[cfg(feature = "cuda")]
    device: crate::cuda::DeviceStepState,
}

impl<'p> ForwardStep<'p> {
    /// Starts a pass that appends `counts[i]` positions to `caches[i]`, all of which must be
    /// sequences of `pool`. Fails with [`KvError::PoolFull`] when the pool cannot give every
    /// sequence its blocks; then no sequence and no block count has changed.
    pub(crate) fn begin(pool: &'p KvPool, caches: &mut [&mut KvCache], counts: &[usize]) -> Result<Self> {
        if caches.iter().any(|c| !c.pool().same_pool(pool)) {
            return Err(KvError::MixedPools.into());
        }
        let mut state = pool.lock();
        reserve(&mut state, caches, counts)?;
        let mut seqs = Vec::with_capacity(caches.len());
        let mut positions = Vec::new();
        for (cache, &n) in caches.iter().zip(counts) {
            let past = cache.len();
            seqs.push(StepSeq { tables: cache.tables().to_vec(), past, row0: positions.len(), rows: n });
            positions.extend(past..past + n);
        }
        Ok(Self {
            pool,
            state,
            seqs,
            positions,
            rotations: Vec::new(),
            #[cfg(feature = "cuda")]
            device: crate::cuda::DeviceStepState::default(),
        })
    }

    /// The position of each row of the pass.
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// Rotates `q` `(rows, n_head * hd)` and `k` `(rows, n_kv * hd)` to their positions, stores
    /// `k` and `v` in layer `il`'s blocks, and returns causal attention `(rows, n_head * hd)`.
    pub fn attention(
        &mut self,
        il: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        rotary: &Rotary,
        scale: f32,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if q.device().is_cuda() {
            return self.attention_cuda(il, (q, k, v), rotary, scale);
        }
        let q_device = q.device();
        let pool = self.pool;
        let layout = pool.layout();
        let rows = self.positions.len();
        let hd = layout.head_dim;
        let n_head = q.dim(1)? / hd;
        let mut q = q.flatten_all()?.to_vec1::<f32>()?;
        let mut k = k.flatten_all()?.to_vec1::<f32>()?;
        let v = v.flatten_all()?.to_vec1::<f32>()?;
        let rotation = self.rotation(rotary);
        rotation.apply(&mut q, n_head);
        rotation.apply(&mut k, layout.n_kv_head);
        let (g, _) = layout.slot_of(il);
        let seqs: Vec<SeqRows<'_>> = self
            .seqs
            .iter()
            .map(|s| SeqRows { table: &s.tables[g], past: s.past, row0: s.row0, rows: s.rows })
            .collect();
        attention::write_kv(&mut self.state.store, layout, il, &seqs, &k, &v)?;
        let out = attention::attend(&self.state.store, layout, il, &seqs, &q, n_head, scale)?;
        // On Metal the activations came from, and go back to, the device.
        Ok(Tensor::from_vec(out, (rows, n_head * hd), q_device)?)
    }

    /// `rotary`'s table at this pass's positions, made on first use.
    fn rotation(&mut self, rotary: &Rotary) -> &RotaryTable {
        let at = match self.rotations.iter().position(|t| t.is_for(rotary)) {
            Some(at) => at,
            None => {
                self.rotations.push(rotary.table(&self.positions));
                self.rotations.len() - 1
            }
        };
        &self.rotations[at]
    }

    /// [`Self::attention`] for activations on a CUDA device, over the pool's device arena.
    #[cfg(feature = "cuda")]
    fn attention_cuda(
        &mut self,
        il: usize,
        qkv: (&Tensor, &Tensor, &Tensor),
        rotary: &Rotary,
        scale: f32,
    ) -> Result<Tensor> {
        let seqs = &self.seqs;
        let group_rows = |g: usize| {
            let tables: Vec<&[Option<BlockId>]> = seqs.iter().map(|s| s.tables[g].as_slice()).collect();
            let rows = seqs.iter().enumerate().flat_map(|(i, s)| (s.past..s.past + s.rows).map(move |p| (i, p)));
            (tables, rows.collect())
        };
        let n_rows = self.positions.len();
        let store = &mut self.state.store;
        crate::cuda::step_attention(&mut self.device, store, il, n_rows, group_rows, qkv, rotary, scale)
    }

    /// Ends the pass: records `tokens[i]` as appended to `caches[i]`.
    pub(crate) fn finish(mut self, caches: &mut [&mut KvCache], tokens: &[&[u32]]) {
        for (cache, t) in caches.iter_mut().zip(tokens) {
            cache.commit(&mut self.state, t);
        }
    }
}

/// Gives each of `caches` writable blocks for its next `counts[i]` positions, all or none. A pass
/// the pool cannot hold even after evicting every cached block is refused before anything is
/// touched; one that fails midway all the same (see [`PoolState::can_supply`]) is undone.
fn reserve(state: &mut PoolState, caches: &mut [&mut KvCache], counts: &[usize]) -> std::result::Result<(), KvError> {
    let need: usize = caches.iter().zip(counts).map(|(c, &n)| c.append_cost(state, n)).sum();
    if !state.can_supply(need) {
        return Err(KvError::PoolFull { budget_bytes: state.store.stats().budget_bytes });
    }
    reserve_or_undo(state, caches, counts)
}

fn reserve_or_undo(
    state: &mut PoolState,
    caches: &mut [&mut KvCache],
    counts: &[usize],
) -> std::result::Result<(), KvError> {
    let saved: Vec<Vec<Vec<Option<BlockId>>>> = caches.iter().map(|c| c.tables().to_vec()).collect();
    let mut replaced = Vec::new();
    let reserved = caches.iter_mut().zip(counts).try_for_each(|(c, &n)| c.prepare_append(state, n, &mut replaced));
    match reserved {
        Ok(()) => {
            replaced.into_iter().for_each(|id| state.store.release(id));
            Ok(())
        }
        Err(e) => {
            for (cache, tables) in caches.iter_mut().zip(saved) {
                cache.undo_append(state, tables);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::layout::{KvLayout, LayerGroup};

    /// A pool of `blocks` blocks of 4 positions.
    fn pool(blocks: usize) -> KvPool {
        let layout = KvLayout::new(1, 1, 2, 4, vec![LayerGroup { layers: vec![0], window: None }]);
        let bytes = layout.block_bytes(0);
        KvPool::new(layout, blocks * bytes)
    }

    fn append(pool: &KvPool, cache: &mut KvCache, tokens: &[u32]) -> std::result::Result<(), KvError> {
        let mut state = pool.lock();
        reserve(&mut state, &mut [cache], &[tokens.len()])?;
        cache.commit(&mut state, tokens);
        Ok(())
    }

    /// Two forks sharing a full block (also in the prefix tree) and a partial one.
    fn forks(pool: &KvPool) -> (KvCache, KvCache) {
        let mut a = pool.new_sequence();
        append(pool, &mut a, &[1, 2, 3, 4, 5, 6]).unwrap();
        let b = a.fork();
        (a, b)
    }

    #[test]
    fn a_pass_that_cannot_fit_is_refused_untouched() {
        let pool = pool(5);
        let (mut a, mut b) = forks(&pool);
        let before = pool.stats();
        let tables = (a.tables().to_vec(), b.tables().to_vec());
        // a copies its shared partial block (1 new), b copies it too and needs 2 more: 4 of 3.
        let mut state = pool.lock();
        let refused = reserve(&mut state, &mut [&mut a, &mut b], &[2, 10]);
        drop(state);
        assert!(matches!(refused, Err(KvError::PoolFull { .. })), "{refused:?}");
        assert_eq!(pool.stats(), before);
        assert_eq!((a.tables().to_vec(), b.tables().to_vec()), tables);
        assert_eq!((a.len(), b.len()), (6, 6));
        // What fits still goes through.
        append(&pool, &mut a, &[7, 8]).unwrap();
        append(&pool, &mut b, &[9, 9, 9, 9, 9, 9]).unwrap();
        assert_eq!(b.tokens(), &[1, 2, 3, 4, 5, 6, 9, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn a_reservation_failing_midway_is_undone() {
        let pool = pool(5);
        let (mut a, mut b) = forks(&pool);
        let live = pool.stats().0.live_blocks;
        let tables = (a.tables().to_vec(), b.tables().to_vec());
        let refs: Vec<u32> = {
            let state = pool.lock();
            a.tables()[0].iter().flatten().map(|&id| state.store.refs(id)).collect()
        };
        // Past the up-front check, allocation runs out at b's last block.
        let mut state = pool.lock();
        let failed = reserve_or_undo(&mut state, &mut [&mut a, &mut b], &[2, 10]);
        assert!(matches!(failed, Err(KvError::PoolFull { .. })), "{failed:?}");
        let refs_after: Vec<u32> = a.tables()[0].iter().flatten().map(|&id| state.store.refs(id)).collect();
        drop(state);
        assert_eq!(refs_after, refs, "shared blocks keep their references");
        assert_eq!(pool.stats().0.live_blocks, live, "no block is left reserved");
        assert_eq!((a.tables().to_vec(), b.tables().to_vec()), tables);
        assert_eq!((a.tokens(), b.tokens()), (&[1, 2, 3, 4, 5, 6][..], &[1, 2, 3, 4, 5, 6][..]));
        append(&pool, &mut a, &[7, 8]).unwrap();
        append(&pool, &mut b, &[9, 9, 9, 9, 9, 9]).unwrap();
    }
}
