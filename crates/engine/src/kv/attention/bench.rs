//! A fixed attention workload on synthetic keys and values, so a benchmark can time `attend`
//! without a model file (the attention module itself is private to the crate).

use crate::kv::attention::{SeqRows, attend, write_kv};
use crate::kv::error::KvError;
use crate::kv::layout::{KvLayout, LayerGroup};
use crate::kv::store::{BlockId, BlockStore};

/// Every layer's attention for `rows` new queries after `past` cached positions, ready to run.
/// The blocks hold all the layers, as a model's do, so a layer's keys and values are scattered
/// over the store the way decode finds them.
#[derive(Debug)]
pub struct AttentionBench {
    store: BlockStore,
    layout: KvLayout,
    table: Vec<Option<BlockId>>,
    q: Vec<f32>,
    n_head: usize,
    n_layer: usize,
    past: usize,
    rows: usize,
}

impl AttentionBench {
    /// Keys, values and queries for `n_layer` layers of `n_head` query heads over `n_kv`
    /// key/value heads of `head_dim` dimensions, in blocks of 16 positions, with a sliding
    /// `window` if given.
    pub fn new(
        n_layer: usize,
        n_head: usize,
        n_kv: usize,
        head_dim: usize,
        past: usize,
        rows: usize,
        window: Option<usize>,
    ) -> Result<Self, KvError> {
        let layout =
            KvLayout::new(n_layer, n_kv, head_dim, 16, vec![LayerGroup { layers: (0..n_layer).collect(), window }]);
        let total = past + rows;
        let blocks = layout.blocks_for(total);
        let mut store = BlockStore::new(layout.clone(), blocks * layout.block_bytes(0));
        let table: Vec<Option<BlockId>> = (0..blocks).map(|_| store.allocate(0)).collect::<Result<_, _>>()?;
        let val = |i: usize, salt: f32| (i as f32 * 0.37 + salt).sin();
        let k: Vec<f32> = (0..total * n_kv * head_dim).map(|i| val(i, 0.1)).collect();
        let v: Vec<f32> = (0..total * n_kv * head_dim).map(|i| val(i, 1.7)).collect();
        for il in 0..n_layer {
            write_kv(&mut store, &layout, il, &[SeqRows { table: &table, past: 0, row0: 0, rows: total }], &k, &v)?;
        }
        let q = (0..rows * n_head * head_dim).map(|i| val(i, 3.3)).collect();
        Ok(Self { store, layout, table, q, n_head, n_layer, past, rows })
    }

    /// Runs each layer's attention once; returns the last layer's `(rows, n_head * head_dim)`.
    pub fn run(&self) -> Result<Vec<f32>, KvError> {
        let seq = SeqRows { table: &self.table, past: self.past, row0: 0, rows: self.rows };
        let scale = 1.0 / (self.layout.head_dim as f32).sqrt();
        let mut out = Vec::new();
        for il in 0..self.n_layer {
            out = attend(&self.store, &self.layout, il, &[seq], &self.q, self.n_head, scale)?;
        }
        Ok(out)
    }
}
