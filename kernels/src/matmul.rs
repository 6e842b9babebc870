//! matmul: shape checks, activation quantization and the parallel loop over weight rows.

use rayon::prelude::*;

use crate::activation::{Q8Block, Q8KBlock, quantize_q8, quantize_q8k};
use crate::cpu::SimdPath;
use crate::quant::{float, k_high, k_low, legacy};
use crate::{GgmlType, KernelError};

/// Dot product of one weight row (its raw bytes) with one prepared activation row.
///
/// The functions are `unsafe` only because SIMD ones need their CPU features; each accepts any
/// slice lengths and reads only whole blocks present in both slices.
pub(crate) type DotFn<A> = unsafe fn(&[u8], &[A]) -> f32;

/// Dot products of one weight row with four activation rows, unpacking the weights once.
pub(crate) type Dot4Fn<A> = unsafe fn(&[u8], [&[A]; 4]) -> [f32; 4];

/// The kernels for one weight type and activation form.
pub(crate) struct RowKernel<A> {
    one: DotFn<A>,
    four: Option<Dot4Fn<A>>,
}

impl<A> Clone for RowKernel<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for RowKernel<A> {}

impl<A> RowKernel<A> {
    /// A kernel with only the one-row form.
    pub(crate) fn one(one: DotFn<A>) -> Self {
        RowKernel { one, four: None }
    }

    /// A kernel with both forms.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn four(one: DotFn<A>, four: Dot4Fn<A>) -> Self {
        RowKernel { one, four: Some(four) }
    }
}

/// The row kernel for a weight type, keyed by the activation form it needs.
#[derive(Clone, Copy)]
pub(crate) enum RowDot {
    /// Activations stay f32.
    Float(RowKernel<f32>),
    /// Activations become 32-element 8-bit blocks.
    Q8(RowKernel<Q8Block>),
    /// Activations become 256-element 8-bit blocks with sixteen-element sums.
    Q8K(RowKernel<Q8KBlock>),
}

/// Portable kernels, defined for every weight type matmul supports.
fn scalar_dot(ty: GgmlType) -> Option<RowDot> {
    Some(match ty {
        GgmlType::F32 => RowDot::Float(RowKernel::one(float::dot_f32)),
        GgmlType::F16 => RowDot::Float(RowKernel::one(float::dot_f16)),
        GgmlType::BF16 => RowDot::Float(RowKernel::one(float::dot_bf16)),
        GgmlType::Q4_0 => RowDot::Q8(RowKernel::one(legacy::dot_q4_0)),
        GgmlType::Q4_1 => RowDot::Q8(RowKernel::one(legacy::dot_q4_1)),
        GgmlType::Q5_0 => RowDot::Q8(RowKernel::one(legacy::dot_q5_0)),
        GgmlType::Q5_1 => RowDot::Q8(RowKernel::one(legacy::dot_q5_1)),
        GgmlType::Q8_0 => RowDot::Q8(RowKernel::one(legacy::dot_q8_0)),
        GgmlType::Q2K => RowDot::Q8K(RowKernel::one(k_low::dot_q2k)),
        GgmlType::Q3K => RowDot::Q8K(RowKernel::one(k_low::dot_q3k)),
        GgmlType::Q4K => RowDot::Q8K(RowKernel::one(k_high::dot_q4k)),
        GgmlType::Q5K => RowDot::Q8K(RowKernel::one(k_high::dot_q5k)),
        GgmlType::Q6K => RowDot::Q8K(RowKernel::one(k_high::dot_q6k)),
        GgmlType::Q8_1 | GgmlType::Q8K => return None,
    })
}

/// The fastest kernel `path` has for `ty`.
pub(crate) fn row_dot(path: SimdPath, ty: GgmlType) -> Option<RowDot> {
    match path {
        SimdPath::Scalar => scalar_dot(ty),
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2(_) => crate::x86::avx2_dot(ty).or_else(|| scalar_dot(ty)),
    }
}

fn expect_len(what: &'static str, unit: &'static str, expected: usize, actual: usize) -> Result<(), KernelError> {
    if expected == actual { Ok(()) } else { Err(KernelError::LengthMismatch { what, unit, expected, actual }) }
}

fn product(what: &'static str, a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or_else(|| KernelError::Overflow { what, detail: format!("{a} x {b}") })
}

/// `matmul` on an explicit SIMD path, so tests can run every path on one machine.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_on(
    path: SimdPath,
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let dot = row_dot(path, ty).ok_or(KernelError::Unsupported { op: "matmul", ty })?;
    let row_bytes = ty.bytes_for(k).ok_or(KernelError::NotWholeBlocks {
        what: "a matmul weight row",
        ty,
        len: k,
        block_size: ty.block_size(),
    })?;
    expect_len("matmul weights", "bytes", product("matmul weights", n, row_bytes)?, w.len())?;
    expect_len("matmul input x", "values", product("matmul input", m, k)?, x.len())?;
    expect_len("matmul output y", "values", product("matmul output", m, n)?, y.len())?;
    if n == 0 || m == 0 {
        return Ok(());
    }
    if k == 0 {
        y.fill(0.0);
        return Ok(());
    }
    let shape = Shape { n, m, row_bytes };
    match dot {
        RowDot::Float(f) => run_rows(shape, w, x, k, y, f),
        RowDot::Q8(f) => {
            let blocks = k / 32;
            let mut acts = vec![Q8Block::ZERO; m * blocks];
            for_each_row(x, k, &mut acts, blocks, quantize_q8);
            run_rows(shape, w, &acts, blocks, y, f);
        }
        RowDot::Q8K(f) => {
            let blocks = k / 256;
            let mut acts = vec![Q8KBlock::ZERO; m * blocks];
            for_each_row(x, k, &mut acts, blocks, quantize_q8k);
            run_rows(shape, w, &acts, blocks, y, f);
        }
    }
    Ok(())
}

/// Quantizes each activation row, in parallel when there are several.
fn for_each_row<B: Send>(x: &[f32], k: usize, out: &mut [B], blocks: usize, f: fn(&[f32], &mut [B])) {
    if out.len() == blocks {
        f(x, out);
    } else {
        out.par_chunks_mut(blocks).zip(x.par_chunks(k)).for_each(|(o, xs)| f(xs, o));
    }
}

#[derive(Clone, Copy)]
struct Shape {
    n: usize,
    m: usize,
    row_bytes: usize,
}

/// Weight bytes a chunk may span during prefill, so it stays in L2 while every activation row
/// passes over it.
const PREFILL_CHUNK_BYTES: usize = 256 * 1024;
/// Below this many weight bytes a chunk costs more to schedule than to compute.
const MIN_CHUNK_BYTES: usize = 16 * 1024;

fn rows_per_chunk(s: Shape) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let mut rows = s.n.div_ceil(threads * 4);
    if s.m > 1 {
        rows = rows.min(PREFILL_CHUNK_BYTES / s.row_bytes);
    }
    rows.max(MIN_CHUNK_BYTES.div_ceil(s.row_bytes)).clamp(1, s.n)
}

/// Computes every output, spreading chunks of weight rows over the rayon pool.
fn run_rows<A: Sync>(s: Shape, w: &[u8], acts: &[A], act_len: usize, y: &mut [f32], kernel: RowKernel<A>) {
    let rows = rows_per_chunk(s);
    let chunk_bytes = rows * s.row_bytes;
    if s.m == 1 {
        y.par_chunks_mut(rows).zip(w.par_chunks(chunk_bytes)).for_each(|(ys, ws)| {
            for (out, row) in ys.iter_mut().zip(ws.chunks_exact(s.row_bytes)) {
                // SAFETY: the kernel came from `row_dot` for a path whose CPU features were detected.
                *out = unsafe { (kernel.one)(row, acts) };
            }
        });
        return;
    }
    // Chunk c owns columns c*rows.. of every output row: hand each chunk its pieces of all m rows,
    // which keeps the parallel writes disjoint without unsafe or a staging copy.
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..s.n.div_ceil(rows)).map(|_| Vec::with_capacity(s.m)).collect();
    for y_row in y.chunks_exact_mut(s.n) {
        for (chunk, piece) in pieces.iter_mut().zip(y_row.chunks_mut(rows)) {
            chunk.push(piece);
        }
    }
    pieces
        .into_par_iter()
        .zip(w.par_chunks(chunk_bytes))
        .for_each(|(mut outs, ws)| chunk_all_rows(s, ws, acts, act_len, &mut outs, kernel));
}

/// Dots every weight row of the chunk `ws` with every activation row, writing row i's results to
/// `outs[i]`; four activation rows at a time where the kernel can: those four stay in L1 while the
/// chunk's weights stream from L2.
fn chunk_all_rows<A>(s: Shape, ws: &[u8], acts: &[A], act_len: usize, outs: &mut [&mut [f32]], kernel: RowKernel<A>) {
    let mut act_rows = acts.chunks_exact(act_len);
    let mut outs = outs.iter_mut();
    if let Some(four) = kernel.four {
        while act_rows.len() >= 4 {
            let (Some(a0), Some(a1), Some(a2), Some(a3)) =
                (act_rows.next(), act_rows.next(), act_rows.next(), act_rows.next())
            else {
                break;
            };
            let (Some(o0), Some(o1), Some(o2), Some(o3)) = (outs.next(), outs.next(), outs.next(), outs.next()) else {
                break;
            };
            let rows = ws.chunks_exact(s.row_bytes);
            for ((((row, y0), y1), y2), y3) in
                rows.zip(o0.iter_mut()).zip(o1.iter_mut()).zip(o2.iter_mut()).zip(o3.iter_mut())
            {
                // SAFETY: as in `run_rows`.
                [*y0, *y1, *y2, *y3] = unsafe { four(row, [a0, a1, a2, a3]) };
            }
        }
    }
    for (o, a) in outs.zip(act_rows) {
        for (y, row) in o.iter_mut().zip(ws.chunks_exact(s.row_bytes)) {
            // SAFETY: as in `run_rows`.
            *y = unsafe { (kernel.one)(row, a) };
        }
    }
}
