//! The key/value cache: an explicit object the caller owns, one per sequence.
//!
//! This is the simple contiguous form: each layer keeps its keys and values as one growing
//! tensor. Positions are implied by order, so truncating rewinds the sequence.

use candle_core::Tensor;

use crate::error::Result;

/// Keys and values of every layer for one sequence.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for a model of `n_layer` layers.
    pub fn new(n_layer: usize) -> Self {
        Self { layers: vec![None; n_layer], len: 0 }
    }

    /// Number of positions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `k` and `v` of shape `(1, n_kv, seq, hd)` to layer `il` and returns all keys and
    /// values of that layer. Call [`KvCache::commit`] once every layer has appended.
    pub fn append(&mut self, il: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let slot = &mut self.layers[il];
        let (k_all, v_all) = match slot.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, k], 2)?, Tensor::cat(&[&pv, v], 2)?),
            None => (k.clone(), v.clone()),
        };
        *slot = Some((k_all.clone(), v_all.clone()));
        Ok((k_all, v_all))
    }

    /// Records that `seq` new positions were appended to every layer.
    pub fn commit(&mut self, seq: usize) {
        self.len += seq;
    }

    /// Rewinds to the first `len` positions (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        for slot in &mut self.layers {
            if let Some((k, v)) = slot.take() {
                if len > 0 {
                    *slot = Some((k.narrow(2, 0, len)?.contiguous()?, v.narrow(2, 0, len)?.contiguous()?));
                }
            }
        }
        self.len = len;
        Ok(())
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|s| *s = None);
        self.len = 0;
    }
}
