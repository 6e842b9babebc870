//! A fixed attention workload on synthetic keys and values, so a benchmark can time `attend`
//! without a model file (the attention module itself is private to the crate).

use crate::kv::attention::{SeqRows, attend, write_kv};
use crate::kv::error::KvError;
use crate::kv::layout::{KvLayout, LayerGroup};
use crate::kv::store::{BlockId, BlockStore};

/// One layer's attention for `rows` new queries after `past` cached positions, ready to run.
#[derive(Debug)]
pub struct AttentionBench {
    store: BlockStore,
    layout: KvLayout,
    table: Vec<Option<BlockId>>,
    q: Vec<f32>,
    n_head: usize,
    past: usize,
    rows: usize,
}

impl AttentionBench {
    /// Keys, values and queries for `n_head` query heads over `n_kv` key/value heads of
    /// `head_dim` dimensions, in blocks of 16 positions, with a sliding `window` if given.
    pub fn new(
        n_head: usize,
        n_kv: usize,
        head_dim: usize,
        past: usize,
        rows: usize,
        window: Option<usize>,
    ) -> Result<Self, KvError> {
        let layout = KvLayout::new(1, n_kv, head_dim, 16, vec![LayerGroup { layers: vec![0], window }]);
        let total = past + rows;
        let blocks = layout.blocks_for(total);
        let mut store = BlockStore::new(layout.clone(), blocks * layout.block_bytes(0));
        let table: Vec<Option<BlockId>> = (0..blocks).map(|_| store.allocate(0)).collect();
        let val = |i: usize, salt: f32| (i as f32 * 0.37 + salt).sin();
        let k: Vec<f32> = (0..total * n_kv * head_dim).map(|i| val(i, 0.1)).collect();
        let v: Vec<f32> = (0..total * n_kv * head_dim).map(|i| val(i, 1.7)).collect();
        write_kv(&mut store, &layout, 0, &[SeqRows { table: &table, past: 0, row0: 0, rows: total }], &k, &v)?;
        let q = (0..rows * n_head * head_dim).map(|i| val(i, 3.3)).collect();
        Ok(Self { store, layout, table, q, n_head, past, rows })
    }

    /// Runs the attention once; returns `(rows, n_head * head_dim)`.
    pub fn run(&self) -> Result<Vec<f32>, KvError> {
        let seq = SeqRows { table: &self.table, past: self.past, row0: 0, rows: self.rows };
        let scale = 1.0 / (self.layout.head_dim as f32).sqrt();
        attend(&self.store, &self.layout, 0, &[seq], &self.q, self.n_head, scale)
    }
}
