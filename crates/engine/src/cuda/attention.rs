//! The paged KV cache in device memory: the block arena behind [`crate::kv::store::BlockStore`]
//! on a CUDA device, and the kernels a forward pass runs over it (rotary embedding, KV block
//! writes, paged attention), in the block layout of [`KvLayout`].

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use half::f16;
use hearth_kernels::cuda::{
    KV_WRITE_KERNEL, PAGED_ATTENTION_KERNEL, PAGED_ATTENTION_PTX, ROPE_KERNEL, kv_write_geometry,
    paged_attention_geometry, rope_geometry,
};

use super::{ATTENTION_MODULE, int_arg, kernel_error, launch_config};
use crate::kv::store::BlockId;
use crate::kv::{KvLayout, RowPlan};
use crate::model::RopeStyle;

/// Every KV block of a pool in device memory: block `id` starts at element `id * stride` of
/// `arena`, whatever its layer group, so a freed block can serve any group.
#[derive(Debug)]
pub struct DeviceKvBlocks {
    device: CudaDevice,
    arena: CudaSlice<f16>,
    layout: KvLayout,
    stride: usize,
}

impl DeviceKvBlocks {
    /// Elements between consecutive blocks: the largest group's block.
    pub fn stride_elems(layout: &KvLayout) -> usize {
        (0..layout.groups.len()).map(|g| layout.block_elems(g)).max().unwrap_or(0)
    }

    /// Room for `blocks` zeroed blocks of any group.
    pub fn zeroed(device: &CudaDevice, layout: KvLayout, blocks: usize) -> candle_core::Result<Self> {
        let stride = Self::stride_elems(&layout);
        let arena = device.alloc_zeros::<f16>(blocks.max(1) * stride.max(1))?;
        Ok(Self { device: device.clone(), arena, layout, stride })
    }

    /// The device the arena is on.
    pub fn device(&self) -> &CudaDevice {
        &self.device
    }

    /// The layout the blocks follow.
    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    /// Blocks the arena holds.
    pub fn capacity(&self) -> usize {
        self.arena.len() / self.stride.max(1)
    }

    /// The first `elems` elements of block `id`, copied to the host.
    pub fn read(&self, id: BlockId, elems: usize) -> candle_core::Result<Vec<f16>> {
        let at = self.block_start(id, elems)?;
        self.device.clone_dtoh(&self.arena.slice(at..at + elems))
    }

    /// Overwrites the start of block `id` with `values`.
    pub fn write(&mut self, id: BlockId, values: &[f16]) -> candle_core::Result<()> {
        let at = self.block_start(id, values.len())?;
        let mut dst = self.arena.slice_mut(at..at + values.len());
        self.device.memcpy_htod(values, &mut dst)
    }

    /// Copies block `src` over block `dst` (copy-on-write of a shared block).
    pub fn copy_block(&mut self, src: BlockId, dst: BlockId) -> candle_core::Result<()> {
        let stride = self.stride;
        let (s, d) = (self.block_start(src, stride)?, self.block_start(dst, stride)?);
        if s == d {
            return Ok(());
        }
        // Two views of one arena: split it between the blocks so one can be borrowed mutably.
        let (low, high) = self.arena.split_at_mut(s.max(d));
        if s < d {
            let (src, mut dst) = (low.slice(s..s + stride), high);
            let mut dst = dst.slice_mut(..stride);
            self.device.memcpy_dtod(&src, &mut dst)
        } else {
            let (mut dst, src) = (low, high);
            let mut dst = dst.slice_mut(d..d + stride);
            self.device.memcpy_dtod(&src.slice(..stride), &mut dst)
        }
    }

    fn block_start(&self, id: BlockId, elems: usize) -> candle_core::Result<usize> {
        let id = id as usize;
        if id >= self.capacity() || elems > self.stride {
            return Err(candle_core::Error::Msg(format!(
                "{elems} elements of block {id}: the arena holds {} blocks of {}",
                self.capacity(),
                self.stride
            )));
        }
        Ok(id * self.stride)
    }

    fn stride_arg(&self) -> i64 {
        self.stride as i64
    }

    /// Layer `il`'s group and index within it.
    fn layer_slot(&self, il: usize) -> candle_core::Result<(usize, i32)> {
        if il >= self.layout.n_layer {
            return Err(candle_core::Error::Msg(format!("layer {il} of a {}-layer model", self.layout.n_layer)));
        }
        let (g, idx) = self.layout.slot_of(il);
        Ok((g, int_arg("layer index", idx)?))
    }
}

/// The rows of one forward pass on the device, for one layer group: a [`RowPlan`] uploaded.
/// Built once per pass and group, used by every layer of the group.
#[derive(Debug)]
pub struct PagedRows {
    tables: CudaSlice<u32>,
    table_stride: usize,
    row_seq: CudaSlice<u32>,
    row_pos: CudaSlice<u32>,
    row_block: CudaSlice<u32>,
    row_slot: CudaSlice<u32>,
    rows: usize,
}

impl PagedRows {
    /// Uploads the [`RowPlan`] of `tables` and `rows` over `blocks` (see [`RowPlan::new`]).
    pub fn upload(
        blocks: &DeviceKvBlocks,
        tables: &[&[Option<BlockId>]],
        rows: &[(usize, usize)],
    ) -> candle_core::Result<Self> {
        let plan = RowPlan::new(blocks.layout.block_size, blocks.capacity(), tables, rows)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let device = &blocks.device;
        Ok(Self {
            tables: device.clone_htod(&plan.tables)?,
            table_stride: plan.table_stride,
            row_seq: device.clone_htod(&plan.row_seq)?,
            row_pos: device.clone_htod(&plan.row_pos)?,
            row_block: device.clone_htod(&plan.row_block)?,
            row_slot: device.clone_htod(&plan.row_slot)?,
            rows: plan.rows(),
        })
    }

    /// Query rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// `x`, `(rows.rows(), heads * head_dim)` f32, with row `r` rotated to its position by the
/// frequencies `inv_freq` (`head_dim / 2` of them) in `style`.
pub fn rope(
    device: &CudaDevice,
    x: &CudaView<'_, f32>,
    heads: usize,
    rows: &PagedRows,
    inv_freq: &CudaSlice<f32>,
    style: RopeStyle,
) -> candle_core::Result<CudaSlice<f32>> {
    let head_dim = 2 * inv_freq.len();
    if x.len() != rows.rows * heads * head_dim {
        return Err(candle_core::Error::Msg(format!(
            "rotary embedding of {} rows of {heads} heads of {head_dim} got {} values",
            rows.rows,
            x.len()
        )));
    }
    let geometry = rope_geometry(rows.rows, heads, head_dim).map_err(|e| kernel_error("rotary embedding", e))?;
    let func = device.get_or_load_custom_func(ROPE_KERNEL, ATTENTION_MODULE, PAGED_ATTENTION_PTX)?;
    let mut y = device.alloc_zeros::<f32>(x.len())?;
    let (heads, hd) = (int_arg("heads", heads)?, int_arg("head dim", head_dim)?);
    let interleaved = i32::from(matches!(style, RopeStyle::Interleaved));
    let mut launch = func.builder();
    launch.arg(x);
    launch.arg(&mut y);
    launch.arg(&rows.row_pos);
    launch.arg(inv_freq);
    launch.arg(&heads);
    launch.arg(&hd);
    launch.arg(&interleaved);
    // SAFETY: the arguments match `hearth_rope`; x and y hold rows × heads × head_dim values,
    // row_pos one position per row and inv_freq head_dim / 2 frequencies (checked above).
    unsafe { launch.launch(launch_config(geometry)) }.w()?;
    Ok(y)
}

/// Stores `k` and `v`, `(rows.rows(), n_kv_head * head_dim)` f32 each, as f16 in layer `il`'s
/// planes, each row at its own position's block and slot.
pub fn kv_write(
    blocks: &mut DeviceKvBlocks,
    il: usize,
    k: &CudaView<'_, f32>,
    v: &CudaView<'_, f32>,
    rows: &PagedRows,
) -> candle_core::Result<()> {
    let (n_kv, hd, bs) = (blocks.layout.n_kv_head, blocks.layout.head_dim, blocks.layout.block_size);
    let (_, layer_idx) = blocks.layer_slot(il)?;
    let n = rows.rows;
    if k.len() != n * n_kv * hd || v.len() != n * n_kv * hd {
        return Err(candle_core::Error::Msg(format!(
            "kv write of {n} rows of {} needs as many keys and values, got {} and {}",
            n_kv * hd,
            k.len(),
            v.len()
        )));
    }
    let geometry = kv_write_geometry(n, n_kv, hd).map_err(|e| kernel_error("kv write", e))?;
    let func = blocks.device.get_or_load_custom_func(KV_WRITE_KERNEL, ATTENTION_MODULE, PAGED_ATTENTION_PTX)?;
    let stride = blocks.stride_arg();
    let (n_kv, hd, bs) = (int_arg("kv heads", n_kv)?, int_arg("head dim", hd)?, int_arg("block size", bs)?);
    let mut launch = func.builder();
    launch.arg(k);
    launch.arg(v);
    launch.arg(&mut blocks.arena);
    launch.arg(&rows.row_block);
    launch.arg(&rows.row_slot);
    launch.arg(&stride);
    launch.arg(&layer_idx);
    launch.arg(&n_kv);
    launch.arg(&hd);
    launch.arg(&bs);
    // SAFETY: the arguments match `hearth_kv_write`; every row's block is within the arena and
    // its slot within a block (`PagedRows::upload`), k and v hold `rows` rows of n_kv * hd.
    unsafe { launch.launch(launch_config(geometry)) }.w()?;
    Ok(())
}

/// Causal attention of `q`, `(rows.rows(), n_head * head_dim)` f32 already rotated, over layer
/// `il`'s cached keys and values, which must already hold each row's own position; the group's
/// sliding window applies. Returns `(rows, n_head * head_dim)` f32.
pub fn paged_attention(
    blocks: &DeviceKvBlocks,
    il: usize,
    q: &CudaView<'_, f32>,
    n_head: usize,
    rows: &PagedRows,
    scale: f32,
) -> candle_core::Result<CudaSlice<f32>> {
    let layout = &blocks.layout;
    let (n_kv, hd, bs) = (layout.n_kv_head, layout.head_dim, layout.block_size);
    let (g, layer_idx) = blocks.layer_slot(il)?;
    if q.len() != rows.rows * n_head * hd {
        return Err(candle_core::Error::Msg(format!(
            "attention over {} rows of {n_head} heads of {hd} needs as many queries, got {}",
            rows.rows,
            q.len()
        )));
    }
    let geometry =
        paged_attention_geometry(rows.rows, n_head, n_kv, hd, bs).map_err(|e| kernel_error("paged attention", e))?;
    let window = int_arg("sliding window", layout.groups[g].window.unwrap_or(0))?;
    let device = &blocks.device;
    let func = device.get_or_load_custom_func(PAGED_ATTENTION_KERNEL, ATTENTION_MODULE, PAGED_ATTENTION_PTX)?;
    let mut out = device.alloc_zeros::<f32>(q.len())?;
    let stride = blocks.stride_arg();
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
