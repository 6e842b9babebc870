//! [`ForwardStep`]: one forward pass over new tokens of one or more sequences of a pool. It holds
//! the pool's lock for the pass, gives each sequence writable blocks for its new positions up
//! front (so running out of memory fails before anything is computed), and runs each layer's
//! attention over the blocks.

use std::sync::MutexGuard;

use candle_core::Tensor;

use crate::error::Result;
use crate::kv::attention::{self, SeqRows};
use crate::kv::error::KvError;
use crate::kv::pool::{KvPool, PoolState};
use crate::kv::sequence::KvCache;
use crate::kv::store::BlockId;
use crate::model::layers::Rotary;

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
}

impl<'p> ForwardStep<'p> {
    /// Starts a pass that appends `counts[i]` positions to `caches[i]`, all of which must be
    /// sequences of `pool`.
    pub(crate) fn begin(pool: &'p KvPool, caches: &mut [&mut KvCache], counts: &[usize]) -> Result<Self> {
        if caches.iter().any(|c| !c.pool().same_pool(pool)) {
            return Err(KvError::MixedPools.into());
        }
        let mut state = pool.lock();
        let mut seqs = Vec::with_capacity(caches.len());
        let mut positions = Vec::new();
        for (cache, &n) in caches.iter_mut().zip(counts) {
            cache.prepare_append(&mut state, n)?;
            let past = cache.len();
            seqs.push(StepSeq { tables: cache.tables().to_vec(), past, row0: positions.len(), rows: n });
            positions.extend(past..past + n);
        }
        Ok(Self { pool, state, seqs, positions })
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
        let pool = self.pool;
        let layout = pool.layout();
        let rows = self.positions.len();
        let hd = layout.head_dim;
        let n_head = q.dim(1)? / hd;
        let mut q = q.flatten_all()?.to_vec1::<f32>()?;
        let mut k = k.flatten_all()?.to_vec1::<f32>()?;
        let v = v.flatten_all()?.to_vec1::<f32>()?;
        rotary.apply_rows(&mut q, n_head, &self.positions);
        rotary.apply_rows(&mut k, layout.n_kv_head, &self.positions);
        let (g, _) = layout.slot_of(il);
        let seqs: Vec<SeqRows<'_>> = self
            .seqs
            .iter()
            .map(|s| SeqRows { table: &s.tables[g], past: s.past, row0: s.row0, rows: s.rows })
            .collect();
        attention::write_kv(&mut self.state.store, layout, il, &seqs, &k, &v)?;
        let out = attention::attend(&self.state.store, layout, il, &seqs, &q, n_head, scale)?;
        Ok(Tensor::from_vec(out, (rows, n_head * hd), &candle_core::Device::Cpu)?)
    }

    /// Ends the pass: records `tokens[i]` as appended to `caches[i]`.
    pub(crate) fn finish(mut self, caches: &mut [&mut KvCache], tokens: &[&[u32]]) {
        for (cache, t) in caches.iter_mut().zip(tokens) {
            cache.commit(&mut self.state, t);
        }
    }
}
