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

    /// Where the keys (or, with `value`, the values) of head `head` of the `idx`-th layer of the
    /// block's group start in a block: a plane of `block_size * head_dim` elements. Keys are
    /// stored transposed, element `(slot, d)` at `d * block_size + slot`, so attention widens a
    /// whole key tile with one conversion and scores all of a block's keys with vector
    /// multiply-adds across slots; values are stored by slot, `slot * head_dim + d`.
    pub fn plane(&self, idx: usize, value: bool, head: usize) -> usize {
        ((idx * 2 + usize::from(value)) * self.n_kv_head + head) * self.block_size * self.head_dim
    }

    /// Number of blocks that hold `len` positions.
    pub fn blocks_for(&self, len: usize) -> usize {
        len.div_ceil(self.block_size)
    }

    /// Bytes of the blocks a sequence of `len` positions holds: every block of full-attention
    /// groups, and the blocks of windowed groups that the window still covers.
    pub fn bytes_for(&self, len: usize) -> usize {
        (0..self.groups.len())
            .map(|g| (self.blocks_for(len) - self.first_visible(g, len) / self.block_size) * self.block_bytes(g))
            .sum()
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
    fn planes_tile_a_block_without_overlap() {
        let l = layout();
        let plane = l.block_size * l.head_dim;
        let mut starts: Vec<usize> = (0..2)
            .flat_map(|idx| [false, true].into_iter().flat_map(move |v| (0..2).map(move |h| (idx, v, h))))
            .map(|(idx, v, h)| l.plane(idx, v, h))
            .collect();
        starts.sort_unstable();
        assert_eq!(starts, (0..8).map(|i| i * plane).collect::<Vec<_>>());
        assert_eq!(8 * plane, l.block_elems(0));
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
        // 17 positions: 3 blocks of group 0; the next query's window (13..) starts in block 1.
        assert_eq!(l.bytes_for(17), 3 * l.block_bytes(0) + 2 * l.block_bytes(1));
        assert_eq!(l.bytes_for(0), 0);
    }
}
