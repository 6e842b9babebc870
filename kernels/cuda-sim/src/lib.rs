//! Runs the CUDA kernels of `kernels/cuda/` on the CPU, so their source is executed and checked
//! against the host's results on machines without a GPU (CI included).
//!
//! `build.rs` compiles the `.cu` files as C++ with a shim for the CUDA built-ins they use
//! (`shim/cuda_sim.h`): every thread of a block is a context with its own stack, and the threads
//! take turns on the calling thread, each running until it reaches a barrier (`__syncthreads`,
//! or a warp shuffle, which exchanges through memory) or returns; blocks run one after another.
//!
//! Each function here launches one kernel with the geometry that `hearth_kernels::cuda` computes
//! for the device, so the launch arithmetic is exercised along with the kernel, and checks every
//! length and index the kernel will use before handing it raw pointers.
//!
//! What a simulation cannot show: the device compiler's code, the device's rounding of `expf`,
//! races that a real warp would expose, and speed. Those still need a GPU run.
#![cfg(cuda_sim)]

use std::ffi::c_int;

use hearth_kernels::cuda::{self, LaunchGeometry};
use hearth_kernels::{GgmlType, KernelError};

/// Why a simulated launch did not run or ran wrong.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The shapes were refused by the launch geometry, as they would be before a device launch.
    #[error(transparent)]
    Geometry(#[from] KernelError),
    /// A buffer or index does not fit the shapes given.
    #[error("{0}")]
    Shape(String),
    /// The simulator refused the launch (it would fail on a device too, or threads could not start).
    #[error("launch refused: {0}")]
    Launch(&'static str),
    /// The kernel wrote past the end of its output.
    #[error("{0} wrote past the end of its output")]
    OutOfBounds(&'static str),
}

/// The simulator's copy of a [`LaunchGeometry`] (`hearth_sim_launch` in `src/runtime.h`).
#[repr(C)]
struct Launch {
    grid: [u32; 3],
    block: [u32; 3],
    shared_bytes: u32,
}

impl From<LaunchGeometry> for Launch {
    fn from(g: LaunchGeometry) -> Self {
        Self {
            grid: [g.grid.0, g.grid.1, g.grid.2],
            block: [g.block.0, g.block.1, g.block.2],
            shared_bytes: g.shared_bytes,
        }
    }
}

type QmatmulFn = unsafe extern "C" fn(*const Launch, *const u8, *const f32, *mut f32, c_int, c_int, c_int) -> c_int;

unsafe extern "C" {
    fn hearth_sim_qmatmul_f32(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_f16(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q4_0(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q4_1(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q5_0(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q5_1(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q8_0(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q4_k(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q5_k(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    fn hearth_sim_qmatmul_q6_k(
        l: *const Launch,
        w: *const u8,
        x: *const f32,
        y: *mut f32,
        n: c_int,
        k: c_int,
        m: c_int,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn hearth_sim_kv_write(
        l: *const Launch,
        k: *const f32,
        v: *const f32,
        arena: *mut u16,
        row_block: *const u32,
        row_slot: *const u32,
        block_stride: i64,
        layer_idx: c_int,
        n_kv_head: c_int,
        head_dim: c_int,
        block_size: c_int,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn hearth_sim_paged_attention(
        l: *const Launch,
        q: *const f32,
        arena: *const u16,
        tables: *const u32,
        row_seq: *const u32,
        row_pos: *const u32,
        out: *mut f32,
        block_stride: i64,
        table_stride: c_int,
        layer_idx: c_int,
        n_head: c_int,
        n_kv_head: c_int,
        head_dim: c_int,
        block_size: c_int,
        window: c_int,
        scale: f32,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn hearth_sim_rope(
        l: *const Launch,
        x: *const f32,
        y: *mut f32,
        row_pos: *const u32,
        inv_freq: *const f32,
        heads: c_int,
        head_dim: c_int,
        interleaved: c_int,
    ) -> c_int;
    fn hearth_sim_f32_to_f16(v: f32) -> u16;
    fn hearth_sim_f16_to_f32(bits: u16) -> f32;
}

/// The simulator's f32 to f16 conversion (`__float2half_rn`), for checking it.
pub fn f32_to_f16_bits(v: f32) -> u16 {
    // SAFETY: a pure function of its argument.
    unsafe { hearth_sim_f32_to_f16(v) }
}

/// The simulator's f16 to f32 conversion (`__half2float`), for checking it.
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    // SAFETY: a pure function of its argument.
    unsafe { hearth_sim_f16_to_f32(bits) }
}

/// Elements past the end of every output, filled with a pattern no kernel writes, and checked.
const GUARD: usize = 64;
/// NaN with a payload the kernels cannot produce from finite inputs.
const GUARD_BITS: u32 = 0x7fc0_dead;

fn guarded_output(len: usize) -> Vec<f32> {
    let mut out = vec![0.0; len + GUARD];
    out[len..].fill(f32::from_bits(GUARD_BITS));
    out
}

fn check_guard(mut out: Vec<f32>, len: usize, kernel: &'static str) -> Result<Vec<f32>, SimError> {
    if out[len..].iter().any(|x| x.to_bits() != GUARD_BITS) {
        return Err(SimError::OutOfBounds(kernel));
    }
    out.truncate(len);
    Ok(out)
}

fn launched(rc: c_int) -> Result<(), SimError> {
    match rc {
        0 => Ok(()),
        1 => Err(SimError::Launch("a block of no threads or over 1024")),
        2 => Err(SimError::Launch("an empty grid")),
        3 => Err(SimError::Launch("more dynamic shared memory than a block has without opting in (48 KiB)")),
        4 => Err(SimError::Launch(
            "threads of a block wait at barriers the others never reach (it would hang on a device)",
        )),
        5 => Err(SimError::Launch("the simulator could not switch between a block's threads")),
        _ => Err(SimError::Launch("unknown simulator error")),
    }
}

fn expect_len(what: &str, len: usize, expected: usize) -> Result<(), SimError> {
    if len != expected {
        return Err(SimError::Shape(format!("{what} has {len} elements, expected {expected}")));
    }
    Ok(())
}

fn int(what: &str, v: usize) -> Result<c_int, SimError> {
    c_int::try_from(v).map_err(|_| SimError::Shape(format!("{what} {v} does not fit a 32-bit int")))
}

/// `y = x · Wᵀ` by `hearth_qmatmul_*`: `w` is `n` rows of `k` elements of type `ty` in GGUF
/// blocks, `x` is `m` rows of `k`; returns `m` rows of `n`.
pub fn qmatmul(ty: GgmlType, w: &[u8], x: &[f32], n: usize, k: usize, m: usize) -> Result<Vec<f32>, SimError> {
    let launch = Launch::from(cuda::qmatmul_geometry(ty, n, k, m)?);
    let f: QmatmulFn = match ty {
        GgmlType::F32 => hearth_sim_qmatmul_f32,
        GgmlType::F16 => hearth_sim_qmatmul_f16,
        GgmlType::Q4_0 => hearth_sim_qmatmul_q4_0,
        GgmlType::Q4_1 => hearth_sim_qmatmul_q4_1,
        GgmlType::Q5_0 => hearth_sim_qmatmul_q5_0,
        GgmlType::Q5_1 => hearth_sim_qmatmul_q5_1,
        GgmlType::Q8_0 => hearth_sim_qmatmul_q8_0,
        GgmlType::Q4K => hearth_sim_qmatmul_q4_k,
        GgmlType::Q5K => hearth_sim_qmatmul_q5_k,
        GgmlType::Q6K => hearth_sim_qmatmul_q6_k,
        _ => return Err(KernelError::Unsupported { op: "CUDA matmul", ty }.into()),
    };
    let row_bytes = ty.bytes_for(k).ok_or_else(|| SimError::Shape(format!("a row of {k} is not whole {ty} blocks")))?;
    expect_len("the weights", w.len(), n * row_bytes)?;
    expect_len("the activations", x.len(), m * k)?;
    // The F32 and F16 kernels read their elements with aligned loads, as device allocations are.
    let mut aligned = vec![0u64; w.len().div_ceil(8)];
    for (dst, src) in aligned.iter_mut().zip(w.chunks(8)) {
        let mut word = [0u8; 8];
        word[..src.len()].copy_from_slice(src);
        *dst = u64::from_le_bytes(word);
    }
    let mut y = guarded_output(m * n);
    let (n_i, k_i, m_i) = (int("n", n)?, int("k", k)?, int("m", m)?);
    // SAFETY: the kernel reads n rows of `row_bytes` from w (checked above; `aligned` holds the
    // same bytes, little-endian, and at least as many), m rows of k from x (checked), and writes
    // y[r * n + row] for r < m and row < n, inside `y`.
    let rc = unsafe { f(&launch, aligned.as_ptr().cast(), x.as_ptr(), y.as_mut_ptr(), n_i, k_i, m_i) };
    launched(rc)?;
    check_guard(y, m * n, "qmatmul")
}

/// Where a KV arena keeps one layer's keys and values: the block layout of the engine's host
/// cache (`KvLayout`), blocks `block_stride` f16 elements apart.
#[derive(Debug, Clone, Copy)]
pub struct KvShape {
    /// The layer's index within its group's blocks.
    pub layer_idx: usize,
    /// Key/value heads.
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Positions per block.
    pub block_size: usize,
    /// Elements from one block to the next.
    pub block_stride: usize,
}

impl KvShape {
    /// Checks that the layer's planes fit a block and that `block` lies inside an arena of
    /// `arena_len` elements.
    fn check_block(&self, arena_len: usize, block: u32) -> Result<(), SimError> {
        let layer_end = (self.layer_idx * 2 + 2) * self.n_kv_head * self.block_size * self.head_dim;
        if layer_end > self.block_stride {
            return Err(SimError::Shape(format!(
                "layer {} needs {layer_end} elements of a block of {}",
                self.layer_idx, self.block_stride
            )));
        }
        let end = (block as usize + 1) * self.block_stride;
        if end > arena_len {
            return Err(SimError::Shape(format!("block {block} ends at {end}, past the arena's {arena_len}")));
        }
        Ok(())
    }

    fn ints(&self) -> Result<(i64, c_int, c_int, c_int, c_int), SimError> {
        let stride = i64::try_from(self.block_stride).map_err(|_| SimError::Shape("block stride overflows".into()))?;
        Ok((
            stride,
            int("layer index", self.layer_idx)?,
            int("kv heads", self.n_kv_head)?,
            int("head dimensions", self.head_dim)?,
            int("block size", self.block_size)?,
        ))
    }
}

/// Writes keys `k` and values `v` (`slots.len()` rows of `n_kv_head * head_dim`) into `arena`
/// (f16 bits) by `hearth_kv_write`: row `r` goes to slot `slots[r].1` of block `slots[r].0`.
pub fn kv_write(
    arena: &mut [u16],
    shape: &KvShape,
    k: &[f32],
    v: &[f32],
    slots: &[(u32, u32)],
) -> Result<(), SimError> {
    let launch = Launch::from(cuda::kv_write_geometry(slots.len(), shape.n_kv_head, shape.head_dim)?);
    let row = shape.n_kv_head * shape.head_dim;
    expect_len("the keys", k.len(), slots.len() * row)?;
    expect_len("the values", v.len(), slots.len() * row)?;
    for &(block, slot) in slots {
        shape.check_block(arena.len(), block)?;
        if slot as usize >= shape.block_size {
            return Err(SimError::Shape(format!("slot {slot} of a block of {}", shape.block_size)));
        }
    }
    let blocks: Vec<u32> = slots.iter().map(|s| s.0).collect();
    let slot_ids: Vec<u32> = slots.iter().map(|s| s.1).collect();
    let (stride, layer, n_kv, hd, bs) = shape.ints()?;
    // SAFETY: each row's block and slot were checked to lie inside the arena and the layer's
    // planes inside a block; k and v hold one row per slot.
    let rc = unsafe {
        hearth_sim_kv_write(
            &launch,
            k.as_ptr(),
            v.as_ptr(),
            arena.as_mut_ptr(),
            blocks.as_ptr(),
            slot_ids.as_ptr(),
            stride,
            layer,
            n_kv,
            hd,
            bs,
        )
    };
    launched(rc)
}

/// The block tables of the sequences attended to: `stride` block ids per sequence.
#[derive(Debug, Clone, Copy)]
pub struct BlockTables<'a> {
    /// Sequence after sequence, `stride` entries each.
    pub ids: &'a [u32],
    /// Entries per sequence.
    pub stride: usize,
}

/// Query rows for attention: `rows.len()` rows of `n_head * head_dim` in `q` (already rotated),
/// row `r` of sequence `rows[r].0` at position `rows[r].1`.
#[derive(Debug, Clone, Copy)]
pub struct Queries<'a> {
    /// The query rows, one after another.
    pub q: &'a [f32],
    /// Query heads per row.
    pub n_head: usize,
    /// Each row's sequence and position.
    pub rows: &'a [(u32, u32)],
}

/// Causal attention of `queries` by `hearth_paged_attention` over the keys and values in
/// `arena`; `window` 0 sees every earlier position. Returns rows like the queries'.
pub fn paged_attention(
    arena: &[u16],
    shape: &KvShape,
    tables: BlockTables<'_>,
    queries: Queries<'_>,
    window: usize,
    scale: f32,
) -> Result<Vec<f32>, SimError> {
    let Queries { q, n_head, rows } = queries;
    let launch = Launch::from(cuda::paged_attention_geometry(
        rows.len(),
        n_head,
        shape.n_kv_head,
        shape.head_dim,
        shape.block_size,
    )?);
    let len = rows.len() * n_head * shape.head_dim;
    expect_len("the queries", q.len(), len)?;
    if tables.stride == 0 || !tables.ids.len().is_multiple_of(tables.stride) {
        return Err(SimError::Shape(format!("{} table entries in rows of {}", tables.ids.len(), tables.stride)));
    }
    let n_seq = tables.ids.len() / tables.stride;
    for &(seq, pos) in rows {
        let (seq, pos) = (seq as usize, pos as usize);
        if seq >= n_seq {
            return Err(SimError::Shape(format!("sequence {seq} of {n_seq}")));
        }
        let first = if window > 0 { (pos + 1).saturating_sub(window) } else { 0 };
        let last = pos / shape.block_size;
        if last >= tables.stride {
            return Err(SimError::Shape(format!("position {pos} needs block {last} of a table of {}", tables.stride)));
        }
        for b in first / shape.block_size..=last {
            shape.check_block(arena.len(), tables.ids[seq * tables.stride + b])?;
        }
    }
    let seqs: Vec<u32> = rows.iter().map(|r| r.0).collect();
    let positions: Vec<u32> = rows.iter().map(|r| r.1).collect();
    let (stride, layer, n_kv, hd, bs) = shape.ints()?;
    let mut out = guarded_output(len);
    // SAFETY: every block a row reads (from its window's first block to its position's) was
    // checked to lie in its table and in the arena, the layer's planes inside a block, and q
    // holds one row per entry of `rows`; the kernel writes `len` elements of `out`.
    let rc = unsafe {
        hearth_sim_paged_attention(
            &launch,
            q.as_ptr(),
            arena.as_ptr(),
            tables.ids.as_ptr(),
            seqs.as_ptr(),
            positions.as_ptr(),
            out.as_mut_ptr(),
            stride,
            int("table stride", tables.stride)?,
            layer,
            int("query heads", n_head)?,
            n_kv,
            hd,
            bs,
            int("window", window)?,
            scale,
        )
    };
    launched(rc)?;
    check_guard(out, len, "paged attention")
}

/// Rotary embedding by `hearth_rope`: `x` is `positions.len()` rows of `heads * head_dim`, row `r`
/// turned to `positions[r]` with `inv_freq` (`head_dim / 2` frequencies); pairs are adjacent when
/// `interleaved`, halves apart otherwise.
pub fn rope(
    x: &[f32],
    positions: &[u32],
    inv_freq: &[f32],
    heads: usize,
    head_dim: usize,
    interleaved: bool,
) -> Result<Vec<f32>, SimError> {
    let launch = Launch::from(cuda::rope_geometry(positions.len(), heads, head_dim)?);
    let len = positions.len() * heads * head_dim;
    expect_len("the rows", x.len(), len)?;
    expect_len("the frequencies", inv_freq.len(), head_dim / 2)?;
    let mut y = guarded_output(len);
    // SAFETY: x holds one row per position (checked), inv_freq one frequency per pair; the kernel
    // writes `len` elements of y.
    let rc = unsafe {
        hearth_sim_rope(
            &launch,
            x.as_ptr(),
            y.as_mut_ptr(),
            positions.as_ptr(),
            inv_freq.as_ptr(),
            int("heads", heads)?,
            int("head dimensions", head_dim)?,
            c_int::from(interleaved),
        )
    };
    launched(rc)?;
    check_guard(y, len, "rope")
}

#[cfg(test)]
mod tests;
