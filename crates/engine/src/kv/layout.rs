//! The shape of a model's KV cache: how many layers, heads and dimensions a block holds, and
//! which layers share a block table.

use crate::model::ModelConfig;

/// Tokens per block unless the caller picks another size. Small blocks waste less of a shared
/// prefix (a prefix is reused in whole blocks) at the cost of more bookkeeping per token.
pub const DEFAULT_BLOCK_SIZE: usize = 16;

/// Bytes of one stored key or value element (f16).
pub const ELEMENT_BYTES: usize = 2;

/// Layers that attend over the same span of positions and so share one block table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerGroup {
    /// Model layer indices, ascending.
    pub layers: Vec<usize>,
    /// Sliding window: a query sees only keys less than `window` positions behind it.
    pub window: Option<usize>,
}

/// Dimensions of every block in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvLayout {
    /// Layers of the model.
    pub n_layer: usize,
    /// Key/value heads per layer.
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Positions per block.
    pub block_size: usize,
    /// Layer groups; a block belongs to one group and holds keys and values of all its layers.
    pub groups: Vec<LayerGroup>,
    /// For each model layer: its group and its index within the group.
    layer_slots: Vec<(usize, usize)>,
}

impl KvLayout {
    /// The layout for `cfg`: one group for the full-attention layers and, where the model has a
    /// sliding window, one for the windowed layers, so those can release old blocks.
    pub fn for_model(cfg: &ModelConfig, block_size: usize) -> Self {
        let (global, local): (Vec<usize>, Vec<usize>) = (0..cfg.n_layer).partition(|&il| !cfg.is_sliding(il));
        let mut groups = Vec::new();
        if !global.is_empty() {
            groups.push(LayerGroup { layers: global, window: None });
        }
        if !local.is_empty() {
            groups.push(LayerGroup { layers: local, window: cfg.sliding_window });
        }
        Self::new(cfg.n_layer, cfg.n_head_kv, cfg.head_dim, block_size.max(1), groups)
    }

    /// A layout from its parts; every layer must be in exactly one group.
    pub fn new(n_layer: usize, n_kv_head: usize, head_dim: usize, block_size: usize, groups: Vec<LayerGroup>) -> Self {
        let mut layer_slots = vec![(usize::MAX, 0); n_layer];
        for (g, group) in groups.iter().enumerate() {
            for (idx, &il) in group.layers.iter().enumerate() {
                if let Some(slot) = layer_slots.get_mut(il) {
                    *slot = (g, idx);
                }
            }
        }
        Self { n_layer, n_kv_head, head_dim, block_size, groups, layer_slots }
    }

    /// The group of layer `il` and the layer's index within it.
    pub fn slot_of(&self, il: usize) -> (usize, usize) {
        self.layer_slots[il]
    }

    /// Elements stored per position, per layer, for keys or for values.
    pub fn row_elems(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Elements in one block of group `g`.
    pub fn block_elems(&self, g: usize) -> usize {
        self.groups[g].layers.len() * 2 * self.n_kv_head * self.block_size * self.head_dim
    }

    /// Bytes of one block of group `g`.
    pub fn block_bytes(&self, g: usize) -> usize {
        self.block_elems(g) * ELEMENT_BYTES
    }

    /// Bytes of keys and values of one position over all layers.
    pub fn bytes_per_token(&self) -> usize {
        2 * self.n_layer * self.row_elems() * ELEMENT_BYTES
    }

    /// Where head `head` of position `slot` starts in a block, for the `idx`-th layer of the
    /// block's group; `value` picks values over keys. Heads are the outer dimension so that one
    /// head's keys for the whole block are contiguous, which is how attention reads them.
    pub fn offset(&self, idx: usize, value: bool, head: usize, slot: usize) -> usize {
        let plane = (idx * 2 + usize::from(value)) * self.n_kv_head + head;
        (plane * self.block_size + slot) * self.head_dim
    }

    /// Number of blocks that hold `len` positions.
    pub fn blocks_for(&self, len: usize) -> usize {
        len.div_ceil(self.block_size)
    }

    /// The first position a query at `next` or later can see in group `g` (0 without a window).
    pub fn first_visible(&self, g: usize, next: usize) -> usize {
        match self.groups[g].window {
            Some(w) => (next + 1).saturating_sub(w),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> KvLayout {
        KvLayout::new(
            3,
            2,
            4,
            8,
            vec![LayerGroup { layers: vec![0, 2], window: None }, LayerGroup { layers: vec![1], window: Some(5) }],
        )
    }

    #[test]
    fn offsets_tile_a_block_without_overlap() {
        let l = layout();
        let mut seen = vec![false; l.block_elems(0)];
        for idx in 0..2 {
            for value in [false, true] {
                for head in 0..2 {
                    for slot in 0..8 {
                        let o = l.offset(idx, value, head, slot);
                        for s in &mut seen[o..o + 4] {
                            assert!(!*s);
                            *s = true;
                        }
                    }
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn slots_and_windows() {
        let l = layout();
        assert_eq!(l.slot_of(2), (0, 1));
        assert_eq!(l.slot_of(1), (1, 0));
        assert_eq!(l.first_visible(0, 100), 0);
        // A query at 10 with window 5 sees 6..=10.
        assert_eq!(l.first_visible(1, 10), 6);
        assert_eq!(l.bytes_per_token(), 2 * 3 * 8 * 2);
        assert_eq!(l.blocks_for(17), 3);
    }
}
