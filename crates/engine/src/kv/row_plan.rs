//! The arguments the device's paged-attention kernels take for one forward pass and layer group,
//! built on the host: the sequences' block tables flattened to one stride, and for each query
//! row its sequence, position, and the block and slot its key and value go to. The CUDA path
//! uploads them (`cuda::PagedRows`); they are plain vectors so that any build can check them,
//! and `hearth-cuda-sim` runs the kernels on them.

use crate::kv::error::KvError;
use crate::kv::store::BlockId;

/// Kernel arguments for the rows of one pass over one layer group's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowPlan {
    /// Every sequence's block ids, `table_stride` entries each; released or missing entries are 0
    /// (no row reads them).
    pub tables: Vec<u32>,
    /// Entries per sequence in `tables`: the longest table, at least 1.
    pub table_stride: usize,
    /// Each row's sequence (index into the tables).
    pub row_seq: Vec<u32>,
    /// Each row's position.
    pub row_pos: Vec<u32>,
    /// The block that holds each row's position.
    pub row_block: Vec<u32>,
    /// The slot of each row's position in its block.
    pub row_slot: Vec<u32>,
}

impl RowPlan {
    /// The plan for `tables` (sequence `s`'s block ids in position order; `None` for blocks a
    /// sliding window has released) and `rows` (`(s, position)` per query row), with blocks of
    /// `block_size` positions in an arena of `capacity` blocks. Every table entry must be a block
    /// of the arena, and every row's own position must have a block in its table.
    pub fn new(
        block_size: usize,
        capacity: usize,
        tables: &[&[Option<BlockId>]],
        rows: &[(usize, usize)],
    ) -> Result<Self, KvError> {
        if block_size == 0 {
            return Err(KvError::Device("KV blocks of no positions".into()));
        }
        let table_stride = tables.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
        let mut flat = vec![0u32; tables.len() * table_stride];
        for (s, (dst, table)) in flat.chunks_exact_mut(table_stride).zip(tables).enumerate() {
            for (b, (d, id)) in dst.iter_mut().zip(table.iter()).enumerate() {
                if let Some(id) = *id {
                    if id as usize >= capacity {
                        return Err(KvError::Device(format!(
                            "block {id} (entry {b} of sequence {s}) is outside an arena of {capacity} blocks"
                        )));
                    }
                    *d = id;
                }
            }
        }
        let n = rows.len();
        let mut plan = Self {
            tables: flat,
            table_stride,
            row_seq: Vec::with_capacity(n),
            row_pos: Vec::with_capacity(n),
            row_block: Vec::with_capacity(n),
            row_slot: Vec::with_capacity(n),
        };
        for &(s, pos) in rows {
            let block = tables
                .get(s)
                .and_then(|t| t.get(pos / block_size))
                .copied()
                .flatten()
                .ok_or_else(|| KvError::Device(format!("no KV block holds position {pos} of sequence {s}")))?;
            plan.row_seq.push(u32::try_from(s).map_err(|_| KvError::Device(format!("sequence {s}")))?);
            plan.row_pos.push(u32::try_from(pos).map_err(|_| KvError::Device(format!("position {pos}")))?);
            plan.row_block.push(block);
            plan.row_slot.push((pos % block_size) as u32);
        }
        Ok(plan)
    }

    /// Query rows.
    pub fn rows(&self) -> usize {
        self.row_pos.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_share_one_stride_and_rows_find_their_block_and_slot() {
        let a = [Some(4), Some(2), Some(7)];
        let b = [None, Some(5)];
        let plan = RowPlan::new(16, 8, &[&a, &b], &[(0, 40), (1, 16), (1, 31)]).unwrap();
        assert_eq!(plan.table_stride, 3);
        assert_eq!(plan.tables, [4, 2, 7, 0, 5, 0]);
        assert_eq!(plan.row_seq, [0, 1, 1]);
        assert_eq!(plan.row_pos, [40, 16, 31]);
        assert_eq!(plan.row_block, [7, 5, 5]);
        assert_eq!(plan.row_slot, [8, 0, 15]);
        assert_eq!(plan.rows(), 3);
    }

    #[test]
    fn blocks_outside_the_arena_and_positions_without_a_block_are_errors() {
        let table = [Some(0), None, Some(3)];
        let err = |r: Result<RowPlan, KvError>| r.unwrap_err().to_string();
        assert!(err(RowPlan::new(16, 3, &[&table], &[(0, 0)])).contains("outside an arena of 3 blocks"));
        assert!(err(RowPlan::new(16, 4, &[&table], &[(0, 20)])).contains("position 20 of sequence 0"));
        assert!(err(RowPlan::new(16, 4, &[&table], &[(0, 48)])).contains("position 48"));
        assert!(err(RowPlan::new(16, 4, &[&table], &[(1, 0)])).contains("sequence 1"));
        assert!(RowPlan::new(0, 4, &[&table], &[(0, 0)]).is_err());
        // No tables at all still gives a stride the kernels can index by.
        assert_eq!(RowPlan::new(16, 4, &[], &[]).unwrap().table_stride, 1);
    }
}
