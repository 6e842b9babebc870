//! matmul: shape checks, activation quantization and the parallel loop over weight rows.

use std::cell::RefCell;
use std::thread::LocalKey;

use rayon::prelude::*;

use crate::activation::{Q8Block, Q8KBlock, quantize_q8, quantize_q8k};
use crate::cpu::SimdPath;
use crate::quant::{float, k_high, k_low, legacy};
use crate::spin_pool;
use crate::{GgmlType, KernelError};

/// Dot product of one weight row (its raw bytes) with one prepared activation row.
///
/// The functions are `unsafe` only because SIMD ones need their CPU features; each accepts any
/// slice lengths and reads only whole blocks present in both slices.
pub(crate) type DotFn<A> = unsafe fn(&[u8], &[A]) -> f32;

/// Dot products of one weight row with four activation rows, unpacking the weights once.
pub(crate) type Dot4Fn<A> = unsafe fn(&[u8], [&[A]; 4]) -> [f32; 4];

/// Dot products of `NR` weight rows with `MR` activation rows: `out[i][j]` is activation row i
/// with weight row j. Register-blocked: each weight block is unpacked once for the `MR` activation
/// rows, and each activation block loaded once for the `NR` weight rows.
pub(crate) type TileFn<A, const NR: usize, const MR: usize> = unsafe fn([&[u8]; NR], [&[A]; MR]) -> [[f32; NR]; MR];

/// Weight rows a decode tile dots with its one activation row: independent accumulator chains that
/// keep several loads in flight.
pub(crate) const DECODE_TILE: usize = 4;
/// Weight rows of a prefill tile.
pub(crate) const PREFILL_TILE_W: usize = 2;
/// Activation rows of a prefill tile.
pub(crate) const PREFILL_TILE_A: usize = 4;
/// Weight rows of the tile for two activation rows (two sequences decoding together).
pub(crate) const PAIR_TILE_W: usize = 4;
/// Weight rows of the tile for three activation rows.
pub(crate) const TRIPLE_TILE_W: usize = 2;

/// The tile kernels of a weight type, for paths that have them.
pub(crate) struct Tiles<A> {
    /// `DECODE_TILE` weight rows against one activation row.
    pub(crate) decode: TileFn<A, DECODE_TILE, 1>,
    /// `PREFILL_TILE_W` weight rows against `PREFILL_TILE_A` activation rows.
    pub(crate) prefill: TileFn<A, PREFILL_TILE_W, PREFILL_TILE_A>,
    /// `PAIR_TILE_W` weight rows against two activation rows.
    pub(crate) pair: TileFn<A, PAIR_TILE_W, 2>,
    /// `TRIPLE_TILE_W` weight rows against three activation rows.
    pub(crate) triple: TileFn<A, TRIPLE_TILE_W, 3>,
}

impl<A> Clone for Tiles<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for Tiles<A> {}

/// The kernels for one weight type and activation form.
pub(crate) struct RowKernel<A> {
    one: DotFn<A>,
    four: Option<Dot4Fn<A>>,
    tiles: Option<Tiles<A>>,
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
        RowKernel { one, four: None, tiles: None }
    }

    /// A kernel with the one-row and the one-weight-row, four-activation-row forms.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn four(one: DotFn<A>, four: Dot4Fn<A>) -> Self {
        RowKernel { one, four: Some(four), tiles: None }
    }

    /// A kernel with the one-row form and register-blocked tiles.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) fn tiled(one: DotFn<A>, tiles: Tiles<A>) -> Self {
        RowKernel { one, four: None, tiles: Some(tiles) }
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
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx512(_) => {
            crate::x86::avx512_dot(ty).or_else(|| crate::x86::avx2_dot(ty)).or_else(|| scalar_dot(ty))
        }
        #[cfg(target_arch = "aarch64")]
        SimdPath::Neon(_) => crate::aarch64::neon_dot(ty).or_else(|| scalar_dot(ty)),
    }
}

/// `Ok` when a buffer holds the `expected` number of `unit`s, else the mismatch named `what`.
pub(crate) fn expect_len(
    what: &'static str,
    unit: &'static str,
    expected: usize,
    actual: usize,
) -> Result<(), KernelError> {
    if expected == actual { Ok(()) } else { Err(KernelError::LengthMismatch { what, unit, expected, actual }) }
}

/// `a * b`, or an overflow error naming `what`.
pub(crate) fn product(what: &'static str, a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or_else(|| KernelError::Overflow { what, detail: format!("{a} x {b}") })
}

/// Bytes of a weight row of `k` elements of `ty`, or an error naming `what` when `k` is not whole
/// blocks.
pub(crate) fn weight_row_bytes(what: &'static str, ty: GgmlType, k: usize) -> Result<usize, KernelError> {
    ty.bytes_for(k).ok_or(KernelError::NotWholeBlocks { what, ty, len: k, block_size: ty.block_size() })
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
    let row_bytes = weight_row_bytes("a matmul weight row", ty, k)?;
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
            with_scratch(&Q8_SCRATCH, m * blocks, Q8Block::ZERO, |acts| {
                for_each_row(x, k, acts, blocks, quantize_q8);
                run_rows(shape, w, acts, blocks, y, f);
            });
        }
        RowDot::Q8K(f) => {
            let blocks = k / 256;
            with_scratch(&Q8K_SCRATCH, m * blocks, Q8KBlock::ZERO, |acts| {
                for_each_row(x, k, acts, blocks, quantize_q8k);
                run_rows(shape, w, acts, blocks, y, f);
            });
        }
    }
    Ok(())
}

thread_local! {
    /// Quantized activations of the last matmul on this thread, kept so decode steps do not allocate.
    pub(crate) static Q8_SCRATCH: RefCell<Vec<Q8Block>> = const { RefCell::new(Vec::new()) };
    pub(crate) static Q8K_SCRATCH: RefCell<Vec<Q8KBlock>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` blocks of this thread's scratch buffer, or on a fresh one when the buffer is
/// already in use (a matmul started from inside another one's rayon wait).
pub(crate) fn with_scratch<B: Copy>(
    scratch: &'static LocalKey<RefCell<Vec<B>>>,
    len: usize,
    zero: B,
    f: impl FnOnce(&mut [B]),
) {
    let f = &mut Some(f);
    let mut run = |buf: &mut Vec<B>| {
        if buf.len() < len {
            buf.resize(len, zero);
        }
        if let Some(f) = f.take() {
            f(&mut buf[..len]);
        }
    };
    scratch.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    });
}

/// Quantizes each activation row, in parallel when there are several.
pub(crate) fn for_each_row<B: Send>(x: &[f32], k: usize, out: &mut [B], blocks: usize, f: fn(&[f32], &mut [B])) {
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
pub(crate) const PREFILL_CHUNK_BYTES: usize = 256 * 1024;
/// Below this many weight bytes a chunk costs more to schedule than to compute.
pub(crate) const MIN_CHUNK_BYTES: usize = 16 * 1024;

/// A decode chunk takes this many threads' shares of the job's remaining weights: 2 splits a job
/// on two threads into chunks of a quarter of what is left.
const GUIDED_SHARE: usize = 2;

/// Units (weight rows, or packed groups) in the next chunk of a decode job with `left` weight
/// bytes to go, of which the current matrix has `units_left` units of `unit_bytes`: a
/// `1 / (GUIDED_SHARE * threads)` share of `left`, at least `MIN_CHUNK_BYTES`, in whole
/// `multiple`s of units, within the matrix.
///
/// Chunk sizes shrink as the job runs out (guided scheduling). Threads claim chunks in order, so
/// the big ones go first and the last ones are small: a thread that runs out waits at the end of
/// the job for at most one small chunk of another's. Equal chunks of an eighth of a matrix left
/// it waiting half of one on average, about a tenth of a helper's time on two threads.
pub(crate) fn guided_chunk(
    left: usize,
    unit_bytes: usize,
    units_left: usize,
    threads: usize,
    multiple: usize,
) -> usize {
    let want = (left / (GUIDED_SHARE * threads.max(1))).max(MIN_CHUNK_BYTES);
    want.div_ceil(unit_bytes.max(1)).next_multiple_of(multiple.max(1)).clamp(1, units_left.max(1))
}

/// Chunks a decode job is split into, about: `guided_split` shrinks chunks by a quarter each down
/// to `MIN_CHUNK_BYTES`, some twenty for a matrix of several MiB. Sizes the lists of chunks up
/// front, so they are not regrown during the split.
pub(crate) const DECODE_CHUNKS: usize = 64;

/// Splits one matrix of a decode job into chunks of `guided_chunk`'s sizes: the weights `w` are
/// units of `unit_bytes` (a row, or a packed group) giving `unit_rows` outputs each, in whole
/// `multiple`s of units; `ys` holds one output row per activation row. Each chunk passes its
/// weights to `push` and appends its columns of every row of `ys`, in order, to `outs`; `ys` is
/// left with what no chunk took. `left` is the job's weight bytes from this matrix on; it is
/// reduced by this matrix's. Decode runs hundreds of these a token, so nothing here allocates
/// but `outs`, which the caller sizes.
pub(crate) fn guided_split<'w, 'y>(
    mut w: &'w [u8],
    ys: &mut [&'y mut [f32]],
    (unit_bytes, unit_rows, multiple): (usize, usize, usize),
    left: &mut usize,
    outs: &mut Vec<&'y mut [f32]>,
    mut push: impl FnMut(&'w [u8]),
) {
    let threads = rayon::current_num_threads().max(1);
    let mut outputs = ys.iter().map(|y| y.len()).min().unwrap_or(0);
    while !w.is_empty() && outputs > 0 && unit_bytes > 0 {
        let units = guided_chunk(*left, unit_bytes, w.len() / unit_bytes, threads, multiple);
        let (w_chunk, w_rest) = w.split_at(units.saturating_mul(unit_bytes).min(w.len()));
        let rows = units.saturating_mul(unit_rows).min(outputs);
        for y in ys.iter_mut() {
            let (chunk, rest) = std::mem::take(y).split_at_mut(rows);
            outs.push(chunk);
            *y = rest;
        }
        push(w_chunk);
        *left = left.saturating_sub(w_chunk.len());
        (w, outputs) = (w_rest, outputs - rows);
    }
}

/// Weight rows per chunk of a prefill product: a quarter of a thread's share, at most
/// `PREFILL_CHUNK_BYTES`.
fn rows_per_chunk(s: Shape) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let rows = s.n.div_ceil(threads * 4).min(PREFILL_CHUNK_BYTES / s.row_bytes);
    // Whole tiles per chunk, so only the last chunk has a ragged end.
    let rows = rows.max(MIN_CHUNK_BYTES.div_ceil(s.row_bytes)).next_multiple_of(DECODE_TILE);
    rows.clamp(1, s.n)
}

/// Computes every output, spreading chunks of weight rows over the rayon pool.
fn run_rows<A: Sync>(s: Shape, w: &[u8], acts: &[A], act_len: usize, y: &mut [f32], kernel: RowKernel<A>) {
    if s.m == 1 {
        // Decode: one short product among hundreds a step, on the spinning helpers.
        let (mut ys, mut ws) = (Vec::with_capacity(DECODE_CHUNKS), Vec::with_capacity(DECODE_CHUNKS));
        guided_split(w, &mut [y], (s.row_bytes, 1, DECODE_TILE), &mut w.len(), &mut ys, |w| ws.push(w));
        if let ([w], [y]) = (ws.as_slice(), ys.as_mut_slice()) {
            one_activation_row(s.row_bytes, w, acts, y, kernel);
        } else {
            spin_pool::for_each_with(ys, &ws, |ys, ws| one_activation_row(s.row_bytes, ws, acts, ys, kernel));
        }
        return;
    }
    let rows = rows_per_chunk(s);
    let chunk_bytes = rows * s.row_bytes;
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

/// The next `MR` activation rows and their outputs (empty ones past the end).
pub(crate) fn take_rows<'a, 'o, A, const MR: usize>(
    act_rows: &mut std::slice::ChunksExact<'a, A>,
    outs: &mut std::slice::IterMut<'o, &mut [f32]>,
) -> ([&'a [A]; MR], [&'o mut [f32]; MR]) {
    let a = std::array::from_fn(|_| act_rows.next().unwrap_or_default());
    let o = std::array::from_fn(|_| outs.next().map(|o| &mut **o).unwrap_or_default());
    (a, o)
}

/// Dots every weight row of `ws` with the `MR` activation rows `a`, `NR` weight rows per `tile`
/// call, writing activation row i's results to `o[i]`.
fn tile_pass<A, const NR: usize, const MR: usize>(
    s: Shape,
    ws: &[u8],
    (a, mut o): ([&[A]; MR], [&mut [f32]; MR]),
    tile: TileFn<A, NR, MR>,
    kernel: RowKernel<A>,
) {
    let mut done = 0;
    for rows in ws.chunks_exact(NR * s.row_bytes) {
        // SAFETY: the kernel came from `row_dot` for a path whose CPU features were detected.
        let dots = unsafe { tile(tile_rows(rows, s.row_bytes), a) };
        for (o, d) in o.iter_mut().zip(dots) {
            if let Some(dst) = o.get_mut(done..done + NR) {
                dst.copy_from_slice(&d);
            }
        }
        done += NR;
    }
    let rest = ws.get(done * s.row_bytes..).unwrap_or_default();
    for (o, a) in o.iter_mut().zip(a) {
        one_activation_row(s.row_bytes, rest, a, o.get_mut(done..).unwrap_or_default(), kernel);
    }
}

/// `N` consecutive rows of `row_bytes` from the start of `ws`.
fn tile_rows<const N: usize>(ws: &[u8], row_bytes: usize) -> [&[u8]; N] {
    std::array::from_fn(|r| ws.get(r * row_bytes..(r + 1) * row_bytes).unwrap_or_default())
}

/// Dots every weight row in `ws` with the one activation row `act`, writing `ys`.
fn one_activation_row<A>(row_bytes: usize, ws: &[u8], act: &[A], ys: &mut [f32], kernel: RowKernel<A>) {
    let mut done = 0;
    if let Some(tiles) = kernel.tiles {
        let groups = ys.chunks_exact_mut(DECODE_TILE).zip(ws.chunks_exact(DECODE_TILE * row_bytes));
        for (out, rows) in groups {
            // SAFETY: the kernel came from `row_dot` for a path whose CPU features were detected.
            let [dots] = unsafe { (tiles.decode)(tile_rows(rows, row_bytes), [act]) };
            out.copy_from_slice(&dots);
            done += DECODE_TILE;
        }
    }
    let rest = ws.get(done * row_bytes..).unwrap_or_default();
    for (out, row) in ys[done..].iter_mut().zip(rest.chunks_exact(row_bytes)) {
        // SAFETY: as above.
        *out = unsafe { (kernel.one)(row, act) };
    }
}

/// Dots every weight row of the chunk `ws` with every activation row, writing row i's results to
/// `outs[i]`. A group of activation rows stays in L1 while the chunk's weights stream from L2 past
/// it: up to `PREFILL_TILE_A` rows where the kernel has tiles (so each weight block is unpacked once
/// per group, also for the two or three rows of sequences decoding together), four where it has a
/// four-row form.
fn chunk_all_rows<A>(s: Shape, ws: &[u8], acts: &[A], act_len: usize, outs: &mut [&mut [f32]], kernel: RowKernel<A>) {
    let mut act_rows = acts.chunks_exact(act_len);
    let mut outs = outs.iter_mut();
    if let Some(tiles) = kernel.tiles {
        loop {
            match act_rows.len() {
                0 | 1 => break,
                2 => tile_pass(s, ws, take_rows(&mut act_rows, &mut outs), tiles.pair, kernel),
                3 => tile_pass(s, ws, take_rows(&mut act_rows, &mut outs), tiles.triple, kernel),
                _ => tile_pass(s, ws, take_rows(&mut act_rows, &mut outs), tiles.prefill, kernel),
            }
        }
    } else if let Some(four) = kernel.four {
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
        one_activation_row(s.row_bytes, ws, a, o, kernel);
    }
}
