//! KV block writes and paged attention on the device, over blocks in the layout of
//! [`KvLayout`]: the pieces of a KV cache in device memory. The host cache (`kv::store`) does
//! not use them yet, which is why a model does not load on a CUDA device.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use half::f16;
use hearth_kernels::cuda::{
    KV_WRITE_KERNEL, PAGED_ATTENTION_KERNEL, PAGED_ATTENTION_PTX, kv_write_geometry, paged_attention_geometry,
};

use super::{ATTENTION_MODULE, int_arg, kernel_error, launch_config};
use crate::kv::KvLayout;
use crate::kv::store::BlockId;

/// The blocks of one layer group in device memory: block `id` starts at element
/// `id * layout.block_elems(group)` of `arena`.
#[derive(Debug)]
pub struct DeviceKvBlocks {
    /// Every block of the group, back to back.
    pub arena: CudaSlice<f16>,
    /// The layout the blocks follow.
    pub layout: KvLayout,
    /// The layer group the blocks belong to.
    pub group: usize,
}

impl DeviceKvBlocks {
    /// Room for `blocks` zeroed blocks of group `group`.
    pub fn zeroed(device: &CudaDevice, layout: KvLayout, group: usize, blocks: usize) -> candle_core::Result<Self> {
        let arena = device.alloc_zeros::<f16>(blocks * layout.block_elems(group))?;
        Ok(Self { arena, layout, group })
    }

    fn block_stride(&self) -> i64 {
        self.layout.block_elems(self.group) as i64
    }

    /// Blocks the arena holds.
    pub fn capacity(&self) -> usize {
        self.arena.len() / self.layout.block_elems(self.group).max(1)
    }

    /// Layer `il`'s index within the group, or an error for a layer of another group.
    fn layer_index(&self, il: usize) -> candle_core::Result<i32> {
        if il >= self.layout.n_layer {
            return Err(candle_core::Error::Msg(format!("layer {il} of a {}-layer model", self.layout.n_layer)));
        }
        let (g, idx) = self.layout.slot_of(il);
        if g != self.group {
            return Err(candle_core::Error::Msg(format!(
                "layer {il} is in group {g}, these blocks are group {}",
                self.group
            )));
        }
        int_arg("layer index", idx)
    }

    fn check_block(&self, id: BlockId) -> candle_core::Result<()> {
        if id as usize >= self.capacity() {
            return Err(candle_core::Error::Msg(format!(
                "block {id} is past the {} blocks on the device",
                self.capacity()
            )));
        }
        Ok(())
    }
}

/// Which sequence each query row belongs to and its position, with every sequence's block table
/// for the group, on the device.
#[derive(Debug)]
pub struct PagedRows {
    tables: CudaSlice<u32>,
    table_stride: usize,
    row_seq: CudaSlice<u32>,
    row_pos: CudaSlice<u32>,
    rows: usize,
}

impl PagedRows {
    /// Uploads `tables` (sequence `s`'s block ids in position order) and `rows` (`(s, position)`
    /// per query row). Every row's position must be covered by its table's blocks, within
    /// `blocks`.
    pub fn upload(
        device: &CudaDevice,
        blocks: &DeviceKvBlocks,
        tables: &[&[BlockId]],
        rows: &[(usize, usize)],
    ) -> candle_core::Result<Self> {
        let bs = blocks.layout.block_size;
        let table_stride = tables.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
        let mut flat = vec![0u32; tables.len() * table_stride];
        for (dst, table) in flat.chunks_exact_mut(table_stride).zip(tables) {
            for &id in table.iter() {
                blocks.check_block(id)?;
            }
            dst[..table.len()].copy_from_slice(table);
        }
        let mut row_seq = Vec::with_capacity(rows.len());
        let mut row_pos = Vec::with_capacity(rows.len());
        for &(s, pos) in rows {
            let covered = tables.get(s).map_or(0, |t| t.len() * bs);
            if pos >= covered {
                return Err(candle_core::Error::Msg(format!(
                    "query row at position {pos} of sequence {s}, whose blocks hold {covered} positions"
                )));
            }
            row_seq.push(u32::try_from(s).map_err(|_| candle_core::Error::Msg(format!("sequence {s}")))?);
            row_pos.push(u32::try_from(pos).map_err(|_| candle_core::Error::Msg(format!("position {pos}")))?);
        }
        Ok(Self {
            tables: device.clone_htod(&flat)?,
            table_stride,
            row_seq: device.clone_htod(&row_seq)?,
            row_pos: device.clone_htod(&row_pos)?,
            rows: rows.len(),
        })
    }

    /// Query rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Stores `k` and `v`, `(slots.len(), n_kv_head * head_dim)` f32 each, as f16 in layer `il`'s
/// planes: row `r` at slot `slots[r].1` of block `slots[r].0`.
pub fn kv_write(
    device: &CudaDevice,
    blocks: &mut DeviceKvBlocks,
    il: usize,
    k: &CudaSlice<f32>,
    v: &CudaSlice<f32>,
    slots: &[(BlockId, usize)],
) -> candle_core::Result<()> {
    let layout = blocks.layout.clone();
    let (n_kv, hd, bs) = (layout.n_kv_head, layout.head_dim, layout.block_size);
    let layer_idx = blocks.layer_index(il)?;
    let rows = slots.len();
    if k.len() != rows * n_kv * hd || v.len() != rows * n_kv * hd {
        return Err(candle_core::Error::Msg(format!(
            "kv write of {rows} rows of {} needs as many keys and values, got {} and {}",
            n_kv * hd,
            k.len(),
            v.len()
        )));
    }
    let mut row_block = Vec::with_capacity(rows);
    let mut row_slot = Vec::with_capacity(rows);
    for &(id, slot) in slots {
        blocks.check_block(id)?;
        if slot >= bs {
            return Err(candle_core::Error::Msg(format!("slot {slot} of a block of {bs}")));
        }
        row_block.push(id);
        row_slot.push(slot as u32);
    }
    let geometry = kv_write_geometry(rows, n_kv, hd).map_err(|e| kernel_error("kv write", e))?;
    let func = device.get_or_load_custom_func(KV_WRITE_KERNEL, ATTENTION_MODULE, PAGED_ATTENTION_PTX)?;
    let row_block = device.clone_htod(&row_block)?;
    let row_slot = device.clone_htod(&row_slot)?;
    let stride = blocks.block_stride();
    let (n_kv, hd, bs) = (int_arg("kv heads", n_kv)?, int_arg("head dim", hd)?, int_arg("block size", bs)?);
    let mut launch = func.builder();
    launch.arg(k);
    launch.arg(v);
    launch.arg(&mut blocks.arena);
    launch.arg(&row_block);
    launch.arg(&row_slot);
    launch.arg(&stride);
    launch.arg(&layer_idx);
    launch.arg(&n_kv);
    launch.arg(&hd);
    launch.arg(&bs);
    // SAFETY: the arguments match `hearth_kv_write`; every block id is within the arena and
    // every slot within a block (checked above), k and v hold `rows` rows of n_kv * hd.
    unsafe { launch.launch(launch_config(geometry)) }.w()?;
    Ok(())
}

/// Causal attention of `q`, `(rows.rows(), n_head * head_dim)` f32 already rotated, over layer
/// `il`'s cached keys and values, which must already hold each row's own position; the group's
/// sliding window applies. Returns `(rows, n_head * head_dim)` f32.
pub fn paged_attention(
    device: &CudaDevice,
    blocks: &DeviceKvBlocks,
    il: usize,
    q: &CudaSlice<f32>,
    n_head: usize,
    rows: &PagedRows,
    scale: f32,
) -> candle_core::Result<CudaSlice<f32>> {
    let layout = &blocks.layout;
    let (n_kv, hd, bs) = (layout.n_kv_head, layout.head_dim, layout.block_size);
    let layer_idx = blocks.layer_index(il)?;
    if q.len() != rows.rows * n_head * hd {
        return Err(candle_core::Error::Msg(format!(
            "attention over {} rows of {n_head} heads of {hd} needs as many queries, got {}",
            rows.rows,
            q.len()
        )));
    }
    let geometry =
        paged_attention_geometry(rows.rows, n_head, n_kv, hd, bs).map_err(|e| kernel_error("paged attention", e))?;
    let window = int_arg("sliding window", layout.groups[blocks.group].window.unwrap_or(0))?;
    let func = device.get_or_load_custom_func(PAGED_ATTENTION_KERNEL, ATTENTION_MODULE, PAGED_ATTENTION_PTX)?;
    let mut out = device.alloc_zeros::<f32>(q.len())?;
    let stride = blocks.block_stride();
    let table_stride = int_arg("block table", rows.table_stride)?;
    let (n_head, n_kv) = (int_arg("query heads", n_head)?, int_arg("kv heads", n_kv)?);
    let (hd, bs) = (int_arg("head dim", hd)?, int_arg("block size", bs)?);
    let mut launch = func.builder();
    launch.arg(q);
    launch.arg(&blocks.arena);
    launch.arg(&rows.tables);
    launch.arg(&rows.row_seq);
    launch.arg(&rows.row_pos);
    launch.arg(&mut out);
    launch.arg(&stride);
    launch.arg(&table_stride);
    launch.arg(&layer_idx);
    launch.arg(&n_head);
    launch.arg(&n_kv);
    launch.arg(&hd);
    launch.arg(&bs);
    launch.arg(&window);
    launch.arg(&scale);
    // SAFETY: the arguments match `hearth_paged_attention`; every table entry is a block of the
    // arena and every row's position is covered by its table (checked by `PagedRows::upload`),
    // q and out hold rows × n_head × head_dim, and the geometry's shared memory is what the
    // kernel indexes ((1 + warps) × block_size floats).
    unsafe { launch.launch(launch_config(geometry)) }.w()?;
    Ok(out)
}
