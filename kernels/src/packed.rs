//! Weights repacked at load time into a layout made for one SIMD path's kernels.
//!
//! Row-major quantized rows make each output a horizontal sum, and make the per-block scale work
//! happen once per row. Interleaving sixteen rows puts the sixteen outputs of a group in the lanes
//! of one register instead: one multiply-add instruction advances all sixteen rows, and the scales
//! of the group's blocks are applied sixteen rows at a time. This is the same idea as llama.cpp's
//! repacked Q4_K, with a layout of our own for AVX-512 VNNI. The AVX2 kernels read the same layout
//! half a run (eight rows, one ymm register) at a time; see `RepackChoice` for when they are used.
//!
//! Packed Q4_K, per group of sixteen rows and per 256-element block (`Q4K_GROUP_BYTES`, the same
//! bytes as sixteen original blocks, so a token streams no more than the file holds):
//! - bytes 0..32: the sixteen rows' `d` (f16), then 32..64 their `dmin`;
//! - 64..256: byte j (j = 0..12) of row r's twelve bytes of 6-bit scales and mins at
//!   `64 + 16 j + r`, in the file's own encoding, which `x86::q4k_scales_mins` decodes once per
//!   block, two bytes of all sixteen rows per operation;
//! - 256..2304: quants. Run `8 c + t` (c = 0..4, t = 0..8) is 64 bytes: row r's original quant
//!   bytes `32 c + 4 t .. 32 c + 4 t + 4` at `4 r`. Their low nibbles are elements
//!   `64 c + 4 t ..+4` (sub-block 2c), their high nibbles elements `64 c + 32 + 4 t ..+4`.
//!
//! Packed Q6_K, per group of sixteen rows and per 256-element block (`Q6K_GROUP_BYTES`, the
//! same bytes as sixteen original blocks):
//! - bytes 0..32: the sixteen rows' `d` (f16);
//! - 32..288: scale of sub-block s (16 elements) for row r at `32 + 16 s + r` (i8);
//! - 288..2336: low four bits, laid out like Q4_K's quants: run `8 c + t`, row r's bytes at
//!   `4 r`, low nibbles elements `64 c + 4 t ..+4`, high nibbles elements `64 c + 32 + 4 t ..+4`;
//! - 2336..3360: high two bits. Run `4 c + u` (u = 0..4), row r's byte `j` at `4 r + j` holds, from
//!   bit 0 up, those of elements `e`, `e + 32`, `e + 4`, `e + 36` with `e = 64 c + 8 u + j`: the
//!   four values the low-bit runs `8 c + 2 u` and `8 c + 2 u + 1` start.
//!
//! Packed Q4_0, Q4_1, Q5_0 and Q5_1 (the nibble formats), per group of sixteen rows and per
//! 32-element block (`nibble_group_bytes`, the same bytes as sixteen original blocks), each part
//! present only in the formats that have it:
//! - the rows' `d` (f16, 32 bytes), then their `m` (Q4_1 and Q5_1, 32 bytes);
//! - fifth bits (Q5_0 and Q5_1, 64 bytes): row r's byte `j` at `4 r + j` holds, in bits `2 t` and
//!   `2 t + 1` (t = 0..4), those of elements `4 t + j` and `16 + 4 t + j`, the values run `t`
//!   starts;
//! - the low four bits, 256 bytes: run `t` (t = 0..4) is 64 bytes, row r's quant bytes
//!   `4 t .. 4 t + 4` at `4 r` (low nibbles elements `4 t ..+4`, high nibbles `16 + 4 t ..+4`).
//!
//! Packed Q8_0, per group of sixteen rows and per 32-element block (`Q8_0_GROUP_BYTES`):
//! - bytes 0..32: the rows' `d` (f16);
//! - 32..544: run `t` (t = 0..8), row r's quants `4 t .. 4 t + 4` at `4 r`, each plus 128 (stored
//!   as unsigned bytes, the operand `vpdpbusd` multiplies unsigned).
//!
//! A group's blocks follow each other, and groups follow each other.

// Only the x86 paths have packed kernels so far; elsewhere `pack` always answers `None` and the
// packed machinery is compiled but never reached.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables, unreachable_code))]

use std::cell::RefCell;
use std::thread::LocalKey;

use rayon::prelude::*;

use crate::activation::{Q8Block, Q8KBlock, quantize_q8, quantize_q8k};
use crate::cpu::{self, SimdPath};
use crate::huge::{HugeBuffer, PackArena};
use crate::matmul::{
    DECODE_CHUNKS, MIN_CHUNK_BYTES, PREFILL_CHUNK_BYTES, Q8_SCRATCH, Q8K_SCRATCH, expect_len, for_each_row,
    guided_split, product, take_rows, weight_row_bytes, with_scratch,
};
use crate::quant::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES};
use crate::spin_pool;
use crate::{GgmlType, KernelError};

mod pack_group;

use pack_group::{pack_nibble_group, pack_q4k_group, pack_q6k_group, pack_q8_0_group};

/// Weight rows interleaved in one group.
pub(crate) const GROUP_ROWS: usize = 16;
/// Products with at most this many activation rows run as decode (`shared_input`): one pass of
/// one tile over each chunk, which streams the weights once, as one row does.
pub(crate) const DECODE_ROWS: usize = 4;
/// Bytes of one 256-element block of a group of packed Q4_K rows.
pub(crate) const Q4K_GROUP_BYTES: usize = 2304;
/// Offset of the rows' `dmin` in a packed Q4_K block.
pub(crate) const Q4K_GROUP_DMIN: usize = 32;
/// Offset of the rows' encoded sub-block scales and mins in a packed Q4_K block.
pub(crate) const Q4K_GROUP_SCALES: usize = 64;
/// Offset of the quants in a packed Q4_K block.
pub(crate) const Q4K_GROUP_QS: usize = 256;

/// Bytes of one 256-element block of a group of packed Q6_K rows.
pub(crate) const Q6K_GROUP_BYTES: usize = 3360;
/// Offset of the sub-block scales in a packed Q6_K block.
pub(crate) const Q6K_GROUP_SCALES: usize = 32;
/// Offset of the low four bits of the quants in a packed Q6_K block.
pub(crate) const Q6K_GROUP_QL: usize = 288;
/// Offset of the high two bits of the quants in a packed Q6_K block.
pub(crate) const Q6K_GROUP_QH: usize = 2336;

/// Offset of the fifth bits in a packed block of a nibble format: after `d` and, with a
/// minimum, `m`.
pub(crate) const fn nibble_group_qh(min: bool) -> usize {
    if min { 64 } else { 32 }
}

/// Offset of the low four bits in a packed block of a nibble format.
pub(crate) const fn nibble_group_qs(min: bool, fifth: bool) -> usize {
    nibble_group_qh(min) + if fifth { 64 } else { 0 }
}

/// Bytes of one 32-element block of a group of packed rows of a nibble format.
pub(crate) const fn nibble_group_bytes(min: bool, fifth: bool) -> usize {
    nibble_group_qs(min, fifth) + 256
}

// A packed Q4_K block holds exactly its sixteen rows' original blocks, rearranged.
const _: () = assert!(Q4K_GROUP_BYTES == GROUP_ROWS * crate::quant::k_high::Q4K_BYTES);

// A packed nibble block holds exactly its sixteen rows' original blocks, as `pack_nibble_group`
// reads them.
const _: () = assert!(
    nibble_group_bytes(false, false) == GROUP_ROWS * Q4_0_BYTES
        && nibble_group_bytes(true, false) == GROUP_ROWS * Q4_1_BYTES
        && nibble_group_bytes(false, true) == GROUP_ROWS * Q5_0_BYTES
        && nibble_group_bytes(true, true) == GROUP_ROWS * Q5_1_BYTES
);

/// Bytes of one 32-element block of a group of packed Q8_0 rows.
pub(crate) const Q8_0_GROUP_BYTES: usize = 544;

/// Dot products of one packed group with `MR` activation rows quantized to blocks `B`:
/// `out[a][r]` is activation row `a` with row `r` of the group. `unsafe` only because SIMD
/// kernels need their CPU features.
pub(crate) type GroupFn<B, const MR: usize> = unsafe fn(&[u8], [&[B]; MR]) -> [[f32; GROUP_ROWS]; MR];

/// The group kernels for one to four activation rows of blocks `B`.
pub(crate) struct GroupKernelSet<B: 'static> {
    pub(crate) one: GroupFn<B, 1>,
    pub(crate) two: GroupFn<B, 2>,
    pub(crate) three: GroupFn<B, 3>,
    pub(crate) four: GroupFn<B, 4>,
}

impl<B> Clone for GroupKernelSet<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for GroupKernelSet<B> {}

/// A packed type's kernels, by the activation blocks they take.
#[derive(Clone, Copy)]
pub(crate) enum GroupKernels {
    /// 256-element activation blocks (the K-quants).
    Q8K(GroupKernelSet<Q8KBlock>),
    /// 32-element activation blocks (the legacy formats).
    Q8(GroupKernelSet<Q8Block>),
}

impl GroupKernels {
    /// The kernels, if they take 256-element activation blocks.
    fn q8k(self) -> Option<GroupKernelSet<Q8KBlock>> {
        match self {
            GroupKernels::Q8K(set) => Some(set),
            GroupKernels::Q8(_) => None,
        }
    }

    /// The kernels, if they take 32-element activation blocks.
    fn q8(self) -> Option<GroupKernelSet<Q8Block>> {
        match self {
            GroupKernels::Q8(set) => Some(set),
            GroupKernels::Q8K(_) => None,
        }
    }
}

/// A weight matrix repacked for the running CPU's kernels; see the module documentation.
pub struct PackedWeights {
    n: usize,
    k: usize,
    /// Page-aligned (so no register load straddles two cache lines), on huge pages where the
    /// system gives them.
    data: HugeBuffer,
    /// Elements of one block of the type (32 or 256).
    block_elems: usize,
    /// Bytes of one block of a group.
    group_block_bytes: usize,
    kernels: GroupKernels,
}

impl std::fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeights({} x {}, {} bytes)", self.n, self.k, self.len())
    }
}

/// Packs sixteen consecutive rows (`row_bytes` each) into one group's blocks.
type PackGroupFn = fn(&[u8], usize, &mut [u8]);

/// How one type is packed, and the kernels for the packed form.
struct PackedFormat {
    /// Bytes of one block of a group.
    group_block_bytes: usize,
    pack_group: PackGroupFn,
    kernels: GroupKernels,
}

/// The packed form and kernels `path` has for `ty`.
fn packed_format(path: SimdPath, ty: GgmlType) -> Option<PackedFormat> {
    let (group_block_bytes, pack_group): (usize, PackGroupFn) = match ty {
        GgmlType::Q4K => (Q4K_GROUP_BYTES, pack_q4k_group),
        GgmlType::Q6K => (Q6K_GROUP_BYTES, pack_q6k_group),
        GgmlType::Q4_0 => (nibble_group_bytes(false, false), pack_nibble_group::<false, false>),
        GgmlType::Q4_1 => (nibble_group_bytes(true, false), pack_nibble_group::<true, false>),
        GgmlType::Q5_0 => (nibble_group_bytes(false, true), pack_nibble_group::<false, true>),
        GgmlType::Q5_1 => (nibble_group_bytes(true, true), pack_nibble_group::<true, true>),
        GgmlType::Q8_0 => (Q8_0_GROUP_BYTES, pack_q8_0_group),
        _ => return None,
    };
    let kernels = match path {
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx512(_) => crate::x86::avx512_packed(ty)?,
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2(_) => crate::x86::avx2_packed(ty)?,
        _ => return None,
    };
    Some(PackedFormat { group_block_bytes, pack_group, kernels })
}

/// What `HEARTH_REPACK` asks for: `0` never repacks (to compare with the row-major kernels), `1`
/// repacks wherever the CPU has packed kernels, unset (or anything else) repacks where that is
/// the faster choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepackChoice {
    Never,
    Always,
    WhereFaster,
}

impl RepackChoice {
    /// The choice a `HEARTH_REPACK` value names.
    pub(crate) fn from_env(value: Option<&str>) -> RepackChoice {
        match value.map(str::trim) {
            Some("0") => RepackChoice::Never,
            Some("1") => RepackChoice::Always,
            _ => RepackChoice::WhereFaster,
        }
    }

    /// Whether `ty` weights get packed on `path`. AVX2's packed kernels prefill faster (Q4_K
    /// and Q6_K products of 64 rows: +26% to +47% and +13%), but packed Q6_K decodes slower once
    /// the weights stream from memory while packed Q4_K decodes faster: Qwen2.5-Coder-1.5B
    /// Q4_K_M on AVX2 at one thread, 17.9 tokens per second with both packed, 18.9 with Q4_K
    /// alone, 16.6 with neither (all on huge pages). Decode is what users wait on, so AVX2 packs
    /// Q6_K only when asked.
    pub(crate) fn packs_on(self, path: SimdPath, ty: GgmlType) -> bool {
        match self {
            RepackChoice::Never => false,
            RepackChoice::Always => true,
            RepackChoice::WhereFaster => match path {
                #[cfg(target_arch = "x86_64")]
                SimdPath::Avx2(_) => ty != GgmlType::Q6K,
                _ => true,
            },
        }
    }
}

/// `w` (`n` rows of `k` elements of `ty`, as `matmul` takes them) repacked for this CPU's kernels
/// and placed in `arena`, next to the matrices packed into it before; or `None` where it has no
/// packed kernel for `ty` (AVX-512 VNNI has them for Q4_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1 and
/// Q8_0; AVX2 for all but Q8_0, Q6_K only with `HEARTH_REPACK=1`), `n` is not a multiple of
/// sixteen, or `HEARTH_REPACK=0` is set; callers then keep using `matmul` on the original bytes.
pub fn pack_in(
    arena: &PackArena,
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
) -> Result<Option<PackedWeights>, KernelError> {
    let path = cpu::detected();
    if !RepackChoice::from_env(std::env::var("HEARTH_REPACK").ok().as_deref()).packs_on(path, ty) {
        return Ok(None);
    }
    pack_on(path, arena, ty, w, n, k)
}

/// `pack_in` on an explicit SIMD path, so tests can choose it.
pub(crate) fn pack_on(
    path: SimdPath,
    arena: &PackArena,
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
) -> Result<Option<PackedWeights>, KernelError> {
    let Some(format) = packed_format(path, ty) else { return Ok(None) };
    if n == 0 || k == 0 || !n.is_multiple_of(GROUP_ROWS) {
        return Ok(None);
    }
    let row_bytes = weight_row_bytes("a packed weight row", ty, k)?;
    expect_len("packed weights", "bytes", product("packed weights", n, row_bytes)?, w.len())?;
    let block_elems = ty.block_size();
    let blocks = k / block_elems;
    let group_bytes = blocks * format.group_block_bytes;
    let packed_len = (n / GROUP_ROWS) * group_bytes;
    let mut data = arena.zeroed(packed_len)?;
    data.as_mut_slice()
        .par_chunks_mut(group_bytes)
        .zip(w.par_chunks(GROUP_ROWS * row_bytes))
        .for_each(|(dst, rows)| (format.pack_group)(rows, row_bytes, dst));
    Ok(Some(PackedWeights {
        n,
        k,
        data,
        block_elems,
        group_block_bytes: format.group_block_bytes,
        kernels: format.kernels,
    }))
}

impl PackedWeights {
    /// Rows of the matrix (outputs).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Elements per row (inputs).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes of the packed weights.
    pub fn len(&self) -> usize {
        self.data.as_slice().len()
    }

    /// Whether there are no weights (never, for a matrix `pack` returned).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// y[i*n + j] = sum_l x[i*k + l] * W[j][l] for i < m, as `hearth_kernels::matmul` on the
    /// original bytes computes it.
    pub fn matmul(&self, x: &[f32], m: usize, y: &mut [f32]) -> Result<(), KernelError> {
        Self::matmul_many(&[self], x, m, &mut [y])
    }

    /// `ys[i] = x · parts[i]ᵀ` for matrices that take the same input (a layer's q, k and v, or
    /// its gate and up): `x` is quantized once and, for up to `DECODE_ROWS` activation rows
    /// (decode), the products of all the matrices form one job, so no thread waits at a barrier
    /// between them. Matrices
    /// whose kernels take different activation blocks are multiplied one at a time.
    pub fn matmul_many(
        parts: &[&PackedWeights],
        x: &[f32],
        m: usize,
        ys: &mut [&mut [f32]],
    ) -> Result<(), KernelError> {
        expect_len("matmul_many outputs", "matrices", parts.len(), ys.len())?;
        let Some(first) = parts.first() else { return Ok(()) };
        let same_k = parts.iter().all(|p| p.k == first.k);
        let q8k: Option<Vec<_>> = parts.iter().map(|p| p.kernels.q8k()).collect();
        let q8: Option<Vec<_>> = parts.iter().map(|p| p.kernels.q8()).collect();
        match (same_k, q8k, q8) {
            (true, Some(sets), _) => shared_input(parts, &sets, x, m, ys, &Q8K_SCRATCH, Q8KBlock::ZERO, quantize_q8k),
            (true, _, Some(sets)) => shared_input(parts, &sets, x, m, ys, &Q8_SCRATCH, Q8Block::ZERO, quantize_q8),
            _ => parts.iter().zip(ys.iter_mut()).try_for_each(|(p, y)| p.matmul(x, m, y)),
        }
    }

    /// Spreads chunks of groups over the rayon pool, as `matmul` does with rows, for more than
    /// `DECODE_ROWS` activation rows (fewer go through `decode_chunks` and the spinning helpers).
    fn run<B: Sync + 'static>(&self, acts: &[B], blocks: usize, m: usize, y: &mut [f32], kernels: GroupKernelSet<B>) {
        let (per_chunk, group_bytes) = self.chunking(blocks);
        let mut pieces: Vec<Vec<&mut [f32]>> =
            (0..(self.n / GROUP_ROWS).div_ceil(per_chunk)).map(|_| Vec::with_capacity(m)).collect();
        for y_row in y.chunks_exact_mut(self.n) {
            for (chunk, piece) in pieces.iter_mut().zip(y_row.chunks_mut(per_chunk * GROUP_ROWS)) {
                chunk.push(piece);
            }
        }
        pieces
            .into_par_iter()
            .zip(self.bytes().par_chunks(per_chunk * group_bytes))
            .for_each(|(mut outs, ws)| chunk_all_rows(ws, group_bytes, acts, blocks, &mut outs, kernels));
    }

    /// Groups per chunk of a prefill product, and bytes per group.
    fn chunking(&self, blocks: usize) -> (usize, usize) {
        let groups = self.n / GROUP_ROWS;
        let group_bytes = blocks * self.group_block_bytes;
        let threads = rayon::current_num_threads().max(1);
        let per_chunk = groups.div_ceil(threads * 4).min(PREFILL_CHUNK_BYTES / group_bytes);
        (per_chunk.max(MIN_CHUNK_BYTES.div_ceil(group_bytes)).clamp(1, groups), group_bytes)
    }

    /// Appends the chunks of a product with few activation rows into `y` (`m` rows of `n`) to
    /// `outs` and `ws`: each chunk's columns of every output row (one entry per row, in order),
    /// and its weights with their group size and kernels. `left` is the weight bytes the job has
    /// from this matrix on; it is reduced by this matrix's. Chunk sizes shrink as the job runs out
    /// (`guided_split`).
    fn decode_chunks<'s, 'y, B>(
        &'s self,
        blocks: usize,
        y: &'y mut [f32],
        kernels: GroupKernelSet<B>,
        left: &mut usize,
        outs: &mut Vec<&'y mut [f32]>,
        ws: &mut Vec<DecodeChunk<'s, B>>,
    ) {
        let group_bytes = blocks * self.group_block_bytes;
        let mut rows: [&mut [f32]; DECODE_ROWS] = Default::default();
        let mut m = 0;
        for (slot, row) in rows.iter_mut().zip(y.chunks_exact_mut(self.n.max(1))) {
            *slot = row;
            m += 1;
        }
        guided_split(self.bytes(), &mut rows[..m], (group_bytes, GROUP_ROWS, 1), left, outs, |chunk| {
            ws.push(DecodeChunk { ws: chunk, group_bytes, kernels });
        });
    }
}

/// One chunk of a decode product: its weights, bytes per group and the group kernels.
struct DecodeChunk<'w, B: 'static> {
    ws: &'w [u8],
    group_bytes: usize,
    kernels: GroupKernelSet<B>,
}

/// `matmul_many` for matrices with one input length whose kernels `sets` all take activation
/// blocks `B`: `x` is quantized once, with `quantize`, into this thread's `scratch`.
#[allow(clippy::too_many_arguments)]
fn shared_input<B: Copy + Send + Sync + 'static>(
    parts: &[&PackedWeights],
    sets: &[GroupKernelSet<B>],
    x: &[f32],
    m: usize,
    ys: &mut [&mut [f32]],
    scratch: &'static LocalKey<RefCell<Vec<B>>>,
    zero: B,
    quantize: fn(&[f32], &mut [B]),
) -> Result<(), KernelError> {
    let Some(first) = parts.first() else { return Ok(()) };
    expect_len("matmul input x", "values", product("matmul input", m, first.k)?, x.len())?;
    for (p, y) in parts.iter().zip(ys.iter()) {
        expect_len("matmul output y", "values", product("matmul output", m, p.n)?, y.len())?;
    }
    if m == 0 {
        return Ok(());
    }
    let blocks = first.k / first.block_elems;
    with_scratch(scratch, m * blocks, zero, |acts| {
        for_each_row(x, first.k, acts, blocks, quantize);
        if m <= DECODE_ROWS {
            // Decode (of one sequence, a few in a batch, or a short draft being verified): short
            // products among hundreds a step, bound by reading the weights, on the spinning
            // helpers. On rayon, whose idle workers sleep, two-row products ran at half the
            // speed of one-row ones, with the helpers spinning beside rayon's threads.
            let (mut outs, mut ws) = (Vec::with_capacity(DECODE_CHUNKS * m), Vec::with_capacity(DECODE_CHUNKS));
            let mut left = parts.iter().map(|p| p.bytes().len()).sum();
            for ((p, y), &kernels) in parts.iter().zip(ys.iter_mut()).zip(sets) {
                p.decode_chunks(blocks, y, kernels, &mut left, &mut outs, &mut ws);
            }
            // Chunk i's outputs are its pieces of the m output rows: `outs[m * i..m * (i + 1)]`.
            spin_pool::for_each_with(outs.chunks_mut(m).collect(), &ws, |out, c| {
                chunk_all_rows(c.ws, c.group_bytes, acts, blocks, out, c.kernels)
            });
        } else {
            for ((p, y), &kernels) in parts.iter().zip(ys.iter_mut()).zip(sets) {
                p.run(acts, blocks, m, y, kernels);
            }
        }
    });
    Ok(())
}

/// Every group of the chunk `ws` against every activation row, four rows at a time, so a group's
/// blocks are unpacked once for four rows while the chunk stays in L2.
fn chunk_all_rows<B>(
    ws: &[u8],
    group_bytes: usize,
    acts: &[B],
    blocks: usize,
    outs: &mut [&mut [f32]],
    kernels: GroupKernelSet<B>,
) {
    let mut act_rows = acts.chunks_exact(blocks);
    let mut outs = outs.iter_mut();
    loop {
        match act_rows.len() {
            0 => break,
            1 => group_pass(ws, group_bytes, take_rows(&mut act_rows, &mut outs), kernels.one),
            2 => group_pass(ws, group_bytes, take_rows(&mut act_rows, &mut outs), kernels.two),
            3 => group_pass(ws, group_bytes, take_rows(&mut act_rows, &mut outs), kernels.three),
            _ => group_pass(ws, group_bytes, take_rows(&mut act_rows, &mut outs), kernels.four),
        }
    }
}

/// Every group of `ws` against the `MR` activation rows `a`, writing row i's results to `o[i]`.
fn group_pass<B, const MR: usize>(
    ws: &[u8],
    group_bytes: usize,
    (a, mut o): ([&[B]; MR], [&mut [f32]; MR]),
    kernel: GroupFn<B, MR>,
) {
    for (g, group) in ws.chunks_exact(group_bytes).enumerate() {
        // SAFETY: the kernels came from `packed_format` for the detected (or a test-chosen,
        // available) path, whose CPU features are present.
        let dots = unsafe { kernel(group, a) };
        for (o, d) in o.iter_mut().zip(dots) {
            if let Some(dst) = o.get_mut(g * GROUP_ROWS..(g + 1) * GROUP_ROWS) {
                dst.copy_from_slice(&d);
            }
        }
    }
}
