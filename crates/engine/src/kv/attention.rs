//! Attention read straight from the blocks of a paged cache: no per-step gather or
//! concatenation of keys and values. Keys and values are stored in f16 and read as f16: the SIMD
//! steps widen each row in a register as they use it, so a block's keys and values are never
//! copied out as f32. Scores are accumulated with an online softmax (as in flash attention), so
//! no score matrix is ever built.
//!
//! The work on one block (scores, softmax update, weighted values) goes through [`BlockOps`]:
//! plain loops in `portable.rs`, the reference; AVX-512 and AVX2 in `avx512.rs` and `avx2.rs`;
//! NEON in `neon.rs`. All do the same operations in the same order lane by lane, so results do
//! not depend on the CPU's features: the dot products and the weighted sums of values are fused
//! multiply-adds, whose one rounding every path computes exactly (`f32::mul_add` in the plain
//! loops); everything else, the exponential included, is separate multiplies and adds.
//!
//! A long cache is attended in segments of `SEGMENT_BLOCKS` blocks, each its own task, whose
//! states are merged in order (`partial.rs`): a decode step then has as many tasks as its heads
//! have segments, however few key/value heads the model has. Segments are fixed by position, not
//! by thread count or batch, so every query's result still depends only on its own position.

use std::ops::Range;

use half::slice::HalfFloatSliceExt;

use crate::kv::error::KvError;
use crate::kv::layout::KvLayout;
use crate::kv::store::{BlockId, BlockStore};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod bench;
#[cfg(target_arch = "aarch64")]
mod neon;
mod partial;
mod portable;
#[cfg(test)]
mod tests;

use partial::Partial;
use portable::Portable;

/// Rows of queries one task handles; small enough to spread a prompt over the thread pool,
/// large enough that each block read serves many queries.
const ROW_TILE: usize = 16;

/// Blocks per segment of the cache (see the module documentation): 512 positions of 16-slot
/// blocks. A segment is long enough that merging its state costs little beside reading it, and
/// short enough that a few thousand cached positions give two threads a dozen tasks.
const SEGMENT_BLOCKS: usize = 32;

/// How many blocks ahead of the one being read the next planes are prefetched: one block's work
/// is about a microsecond, shorter than the memory takes to deliver a plane.
const PREFETCH_BLOCKS: usize = 2;

/// Partial sums per score; the scores add them pairwise, so this is 4.
const PARTS: usize = 4;

/// Queries scored against a block together, so each key row is loaded and widened once for all
/// of them: a decode step's query heads of one key/value head (six for Qwen2.5-Coder-1.5B,
/// seven for 0.5B) fit in one group.
const GROUP: usize = 8;

/// One sequence's share of a step: its block table for the layer's group, where its new
/// positions start, and which rows of the step's activations are its.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqRows<'a> {
    pub table: &'a [Option<BlockId>],
    pub past: usize,
    pub row0: usize,
    pub rows: usize,
}

/// Writes the keys and values of `k` and `v`, `(rows, n_kv_head * head_dim)` each, into the
/// blocks of layer `il` at each sequence's new positions.
pub(crate) fn write_kv(
    store: &mut BlockStore,
    layout: &KvLayout,
    il: usize,
    seqs: &[SeqRows<'_>],
    k: &[f32],
    v: &[f32],
) -> Result<(), KvError> {
    let (g, idx) = layout.slot_of(il);
    let (hd, row) = (layout.head_dim, layout.row_elems());
    for s in seqs {
        for r in 0..s.rows {
            let pos = s.past + r;
            let id = block_at(s.table, g, pos, layout.block_size)?;
            let data = store.data_mut(id)?;
            let slot = pos % layout.block_size;
            let src = (s.row0 + r) * row;
            for h in 0..layout.n_kv_head {
                let kp = layout.plane(idx, false, h);
                for (d, &x) in k[src + h * hd..src + (h + 1) * hd].iter().enumerate() {
                    data[kp + d * layout.block_size + slot] = half::f16::from_f32(x);
                }
                let vo = layout.plane(idx, true, h) + slot * hd;
                data[vo..vo + hd].convert_from_f32_slice(&v[src + h * hd..src + (h + 1) * hd]);
            }
        }
    }
    Ok(())
}

/// What every task of one layer's attention reads.
struct Layer<'a> {
    store: &'a BlockStore,
    layout: &'a KvLayout,
    il: usize,
    q: &'a [f32],
    n_head: usize,
    scale: f32,
}

/// Causal attention of `q`, `(rows, n_head * head_dim)`, over the cached keys and values of
/// layer `il`, which must already hold the new positions. Returns `(rows, n_head * head_dim)`.
pub(crate) fn attend(
    store: &BlockStore,
    layout: &KvLayout,
    il: usize,
    seqs: &[SeqRows<'_>],
    q: &[f32],
    n_head: usize,
    scale: f32,
) -> Result<Vec<f32>, KvError> {
    attend_with(&Layer { store, layout, il, q, n_head, scale }, seqs, attend_tile)
}

/// [`attend`] with each tile computed by `tile`.
fn attend_with(
    layer: &Layer<'_>,
    seqs: &[SeqRows<'_>],
    tile: impl Fn(Tile<'_>) -> Result<Vec<Partial>, KvError> + Sync,
) -> Result<Vec<f32>, KvError> {
    let (hd, n_head) = (layer.layout.head_dim, layer.n_head);
    let n_rep = n_head / layer.layout.n_kv_head;
    let total_rows: usize = seqs.iter().map(|s| s.rows).sum();
    let mut out = vec![0f32; total_rows * n_head * hd];
    let (bs, threads) = (layer.layout.block_size.max(1), rayon::current_num_threads());
    let (g, _) = layer.layout.slot_of(layer.il);
    let mut spans = Vec::new();
    for (s, seq) in seqs.iter().enumerate() {
        for h in 0..layer.layout.n_kv_head {
            for r0 in (0..seq.rows).step_by(ROW_TILE) {
                let r1 = (r0 + ROW_TILE).min(seq.rows);
                let first = layer.layout.first_visible(g, seq.past + r0) / bs;
                spans.push(((s, h, r0, r1), first..(seq.past + r1 - 1) / bs + 1));
            }
        }
    }
    // Each span's blocks in `pieces` runs of whole segments.
    let mut runs = Vec::with_capacity(spans.len());
    for (span, blocks) in spans.iter().cloned() {
        let segments = (blocks.start / SEGMENT_BLOCKS)..(blocks.end - 1) / SEGMENT_BLOCKS + 1;
        let pieces = segment_pieces(spans.len(), threads, segments.len());
        for i in 0..pieces {
            let from = segments.start + i * segments.len() / pieces;
            let to = segments.start + (i + 1) * segments.len() / pieces;
            runs.push((span, (from * SEGMENT_BLOCKS).max(blocks.start)..(to * SEGMENT_BLOCKS).min(blocks.end)));
        }
    }
    let reps = rep_ranges(n_rep, runs.len(), threads);
    // A span's runs stay next to each other, in order, for each range of query heads.
    let mut tasks = Vec::with_capacity(runs.len() * reps.len());
    for group in runs.chunk_by(|a, b| a.0 == b.0) {
        for r in &reps {
            tasks.extend(group.iter().map(|(span, blocks)| (*span, r.clone(), blocks.clone())));
        }
    }
    let mut results: Vec<_> = tasks.iter().map(|task| (task, Ok(Vec::new()))).collect();
    hearth_kernels::for_each_in_step(total_rows, &mut results, |(task, out)| {
        let ((s, h, r0, r1), reps, blocks) = task;
        *out = tile(Tile { layer, seq: &seqs[*s], h: *h, rows: *r0..*r1, reps: reps.clone(), blocks: blocks.clone() });
    });
    let mut parts = results.into_iter().map(|(_, part)| part).collect::<Result<Vec<_>, _>>()?.into_iter();
    for group in tasks.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        let ((s, h, r0, r1), reps, _) = &group[0];
        // Segment by segment, left to right, however the runs split them.
        let mut segments = parts.by_ref().take(group.len()).flatten();
        let mut whole = segments.next().unwrap_or_default();
        for later in segments {
            whole.merge(&later);
        }
        let part = whole.finish();
        for r in *r0..*r1 {
            for (i, g) in reps.clone().enumerate() {
                let dst = (seqs[*s].row0 + r) * n_head * hd + (h * n_rep + g) * hd;
                let src = ((r - r0) * reps.len() + i) * hd;
                out[dst..dst + hd].copy_from_slice(&part[src..src + hd]);
            }
        }
    }
    Ok(out)
}

/// Runs of whole segments one span's blocks are split into, so that `spans` spans make a
/// multiple of `threads` tasks: on two threads a decode step of SmolLM2's three key/value heads
/// left one thread idle for a third of its attention. Each run reads its own blocks, so unlike
/// splitting query heads this reads the cache no more often. Spans several times the threads
/// (a prompt) are split no further, nor beyond their `segments`.
fn segment_pieces(spans: usize, threads: usize, segments: usize) -> usize {
    if spans == 0 || spans >= 4 * threads {
        return 1;
    }
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    (threads / gcd(spans, threads).max(1)).clamp(1, segments.max(1))
}

/// The query heads of one key/value head split into as many ranges as it takes for `spans` tasks
/// (a decode step has one per key/value head) to give each of `threads` threads one: with two
/// key/value heads and more threads, each head's queries are spread instead of leaving the other
/// threads idle while attention runs. Each task reads the head's keys and values itself, so
/// there is no split where the spans already fill the threads. A query's arithmetic does not
/// depend on the queries beside it, so the split never changes a result.
fn rep_ranges(n_rep: usize, spans: usize, threads: usize) -> Vec<Range<usize>> {
    let pieces = if spans == 0 || spans >= threads { 1 } else { threads.div_ceil(spans).clamp(1, n_rep.max(1)) };
    (0..pieces).map(|i| i * n_rep / pieces..(i + 1) * n_rep / pieces).collect()
}

/// The arguments of one task: rows `rows` of one sequence, for the query heads `reps` of those
/// sharing key/value head `h`, over the cache's blocks `blocks`: those the rows see, or a run of
/// whole segments of them.
struct Tile<'a> {
    layer: &'a Layer<'a>,
    seq: &'a SeqRows<'a>,
    h: usize,
    rows: Range<usize>,
    reps: Range<usize>,
    blocks: Range<usize>,
}

/// The steps of attention over one block that have SIMD versions. Every implementation does the
/// same operations in the same order for each lane, so all give bit-identical results.
trait BlockOps {
    /// Scores of the queries `qs` (each `head_dim` long, at most [`GROUP`]) against the block's
    /// keys `kt` (stored transposed, `head_dim` rows of `block` slots), times `scale`, into
    /// `out[i * block + j]`.
    fn scores(&mut self, qs: &[&[f32]], kt: &[half::f16], block: usize, scale: f32, out: &mut [f32]);

    /// Folds one query's `scores` of a block, of which only the slots in `live` are visible, into
    /// its running maximum `max` and per-slot sums `sums`, and leaves in `scores` the weights of
    /// the block's values. Returns the factor the query's weighted values must be scaled by
    /// first, where the maximum grew.
    fn softmax(&mut self, max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32>;

    /// For each query of `run`: its weighted values scaled by its `rescale` (where given), then
    /// each visible slot's weight times the slot's values added, slot by slot in order.
    fn weigh(&mut self, run: ValueRun<'_>);
}

/// A block's values to weigh for a run of queries that see the same slots.
struct ValueRun<'a> {
    /// The queries' weighted values so far, `head_dim` each.
    acc: &'a mut [f32],
    /// Each query's weights of the block's slots, one block of them per query.
    weights: &'a [f32],
    /// Per query, the factor its weighted values are scaled by first, where its maximum grew.
    rescale: &'a [Option<f32>],
    /// The slots the queries see.
    live: Range<usize>,
    /// The block's values, `head_dim` per slot, at least up to the last visible slot.
    values: &'a [half::f16],
}

impl<'a> ValueRun<'a> {
    /// How many queries the run holds.
    fn queries(&self) -> usize {
        self.rescale.len()
    }

    /// Elements of each query's weighted values.
    fn head_dim(&self) -> usize {
        self.acc.len() / self.queries().max(1)
    }

    /// Panics unless the run fits SIMD steps for blocks of `block` slots with `lanes` f32 a
    /// register: they read through pointers, and these are the bounds they rely on.
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    fn assert_fits(&self, block: usize, lanes: usize) {
        let (n, hd) = (self.queries(), self.head_dim());
        assert!((1..=GROUP).contains(&n) && self.acc.len() == n * hd && hd.is_multiple_of(lanes));
        assert!(self.weights.len() == n * block && self.live.start < self.live.end && self.live.end <= block);
        assert!(self.values.len() >= self.live.end * hd);
    }

    /// The run cut into runs of at most `most` queries, in order.
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    fn passes(self, most: usize) -> impl Iterator<Item = ValueRun<'a>> {
        let (hd, block) = (self.head_dim(), self.weights.len() / self.queries().max(1));
        let (live, values) = (self.live, self.values);
        let parts = self.acc.chunks_mut(most * hd).zip(self.weights.chunks(most * block));
        parts.zip(self.rescale.chunks(most)).map(move |((acc, weights), rescale)| ValueRun {
            acc,
            weights,
            rescale,
            live: live.clone(),
            values,
        })
    }
}

/// Panics unless the scores of `qs` against keys `kt` in blocks of `bs` slots into `out` fit
/// SIMD steps for blocks of `block` slots: they read through pointers, and these are the bounds
/// they rely on.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
fn assert_scores_fit(qs: &[&[f32]], kt: &[half::f16], bs: usize, block: usize, out: &[f32]) {
    let hd = kt.len() / block;
    assert!(bs == block && kt.len() == hd * block && hd.is_multiple_of(PARTS) && out.len() >= qs.len() * block);
    assert!(qs.len() <= GROUP && qs.iter().all(|q| q.len() == hd));
}

/// The size of passes that split `n` queries as evenly as passes of at most `most` can: eight
/// queries as four and four rather than seven and one.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
fn even_pass(n: usize, most: usize) -> usize {
    n.div_ceil(n.div_ceil(most).max(1)).max(1)
}

/// Attention of one tile: the state of its `(rows, reps)` queries over each segment its blocks
/// reach, in order. AVX-512 or else AVX2 where the CPU has it and the shape suits it, NEON on
/// aarch64 where the shape suits it, else the portable steps, compiled with AVX2 and FMA where
/// the CPU has them (elsewhere `f32::mul_add` may be a slow library call on x86-64, the price of
/// results that do not depend on the CPU).
fn attend_tile(t: Tile<'_>) -> Result<Vec<Partial>, KvError> {
    #[cfg(target_arch = "x86_64")]
    {
        let layout = t.layer.layout;
        if let Some(ops) = avx512::Avx512::detect(layout.block_size, layout.head_dim) {
            // SAFETY: `detect` found AVX-512F on this CPU.
            return unsafe { attend_tile_avx512(ops, t) };
        }
        if let Some(ops) = avx2::Avx2::detect(layout.block_size, layout.head_dim) {
            // SAFETY: `detect` found AVX2, F16C and FMA on this CPU.
            return unsafe { attend_tile_avx2_steps(ops, t) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { attend_tile_avx2(t) };
        }
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(mut ops) = neon::Neon::detect(t.layer.layout.block_size, t.layer.layout.head_dim) {
        return attend_tile_with(&mut ops, t);
    }
    attend_tile_with(&mut Portable::default(), t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn attend_tile_avx512(mut ops: avx512::Avx512, t: Tile<'_>) -> Result<Vec<Partial>, KvError> {
    attend_tile_with(&mut ops, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c,fma")]
fn attend_tile_avx2_steps(mut ops: avx2::Avx2, t: Tile<'_>) -> Result<Vec<Partial>, KvError> {
    attend_tile_with(&mut ops, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_tile_avx2(t: Tile<'_>) -> Result<Vec<Partial>, KvError> {
    attend_tile_with(&mut Portable::default(), t)
}

/// One query of a tile that sees part of the current block.
struct Active {
    /// Index of the query in the tile's `(rows, reps)` output.
    qi: usize,
    /// Where its vector starts in `q`.
    qo: usize,
    /// The slots of the block it sees.
    live: Range<usize>,
}

/// Keys are stored transposed (`kt[d * block + j]`, see [`KvLayout::plane`]), so the scores of a
/// query against a whole block are `hd` vector multiply-adds across keys rather than one
/// horizontal dot product per key. Each query's arithmetic depends only on its own position and
/// the block boundaries, never on which other queries share its tile or group, which keeps
/// cached, batched and fresh runs bit-identical.
#[inline(always)]
fn attend_tile_with(ops: &mut impl BlockOps, t: Tile<'_>) -> Result<Vec<Partial>, KvError> {
    let Tile { layer, seq, h, rows, reps, blocks } = t;
    let Layer { store, layout, il, q, n_head, scale } = *layer;
    let (g, idx) = layout.slot_of(il);
    let (hd, bs) = (layout.head_dim, layout.block_size);
    let n_rep = n_head / layout.n_kv_head;
    let n_q = rows.len() * reps.len();
    let mut acc = vec![0f32; n_q * hd];
    let mut max = vec![f32::NEG_INFINITY; n_q];
    let mut sums = vec![0f32; n_q * bs];
    let mut scores = vec![0f32; GROUP * bs];
    let mut active = Vec::with_capacity(n_q);
    let last_q = seq.past + rows.end - 1;
    let mut done = Vec::new();
    for b in blocks.clone() {
        if b % SEGMENT_BLOCKS == 0 && b > blocks.start {
            // A segment ends: its state is kept as it is, and the next starts afresh.
            done.push(Partial {
                acc: std::mem::replace(&mut acc, vec![0.0; n_q * hd]),
                max: std::mem::replace(&mut max, vec![f32::NEG_INFINITY; n_q]),
                sums: std::mem::replace(&mut sums, vec![0.0; n_q * bs]),
            });
        }
        let data = store.data(block_at(seq.table, g, b * bs, bs)?)?;
        let (kp, vp) = (layout.plane(idx, false, h), layout.plane(idx, true, h));
        // Slots past the last query hold stale values: their scores are computed but masked.
        let used = (last_q + 1 - b * bs).min(bs);
        let (keys, values) = (&data[kp..kp + hd * bs], &data[vp..vp + used * hd]);
        // Past the segment's end too: the next segment is often this thread's next task.
        if b + PREFETCH_BLOCKS <= last_q / bs {
            let ahead = store.data(block_at(seq.table, g, (b + PREFETCH_BLOCKS) * bs, bs)?)?;
            prefetch(&ahead[kp..kp + hd * bs]);
            prefetch(&ahead[vp..vp + hd * bs]);
        }
        active.clear();
        for r in rows.clone() {
            let qpos = seq.past + r;
            let lo = layout.first_visible(g, qpos).max(b * bs);
            let hi = qpos.min(b * bs + bs - 1);
            if lo > hi {
                continue;
            }
            let live = lo - b * bs..hi - b * bs + 1;
            for (i, rep) in reps.clone().enumerate() {
                let qo = (seq.row0 + r) * n_head * hd + (h * n_rep + rep) * hd;
                active.push(Active { qi: (r - rows.start) * reps.len() + i, qo, live: live.clone() });
            }
        }
        for group in active.chunks(GROUP) {
            let mut qs: [&[f32]; GROUP] = [&[]; GROUP];
            for (slot, a) in qs.iter_mut().zip(group) {
                *slot = &q[a.qo..a.qo + hd];
            }
            let scores = &mut scores[..group.len() * bs];
            ops.scores(&qs[..group.len()], keys, bs, scale, scores);
            let mut rescale = [None; GROUP];
            for ((a, s), c) in group.iter().zip(scores.chunks_exact_mut(bs)).zip(&mut rescale) {
                *c = ops.softmax(&mut max[a.qi], &mut sums[a.qi * bs..(a.qi + 1) * bs], s, a.live.clone());
            }
            // The values are weighed for runs of queries that see the same slots and lie next
            // to each other in `acc` (a decode step's whole group), each value row loaded once.
            let mut start = 0;
            while start < group.len() {
                let first = &group[start];
                let run = group[start..]
                    .iter()
                    .enumerate()
                    .take_while(|(i, a)| a.live == first.live && a.qi == first.qi + i)
                    .count();
                let end = start + run;
                ops.weigh(ValueRun {
                    acc: &mut acc[first.qi * hd..(first.qi + run) * hd],
                    weights: &scores[start * bs..end * bs],
                    rescale: &rescale[start..end],
                    live: first.live.clone(),
                    values,
                });
                start = end;
            }
        }
    }
    done.push(Partial { acc, max, sums });
    Ok(done)
}

/// Brings `data` into the L2 cache ahead of use. A layer's planes of consecutive blocks lie a
/// whole block (every layer's keys and values) apart, each in pages of its own, and the hardware
/// prefetchers, which follow streams within a page, stop at every plane: a decode step's
/// attention, reading the cache from memory, spent half its time waiting there. Into L1 the
/// requests queue behind its few outstanding misses; L2 takes them all.
#[inline(always)]
fn prefetch(data: &[half::f16]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(32) {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        // SAFETY: a prefetch only hints; it reads nothing and faults on no address.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

fn block_at(table: &[Option<BlockId>], group: usize, position: usize, block_size: usize) -> Result<BlockId, KvError> {
    table.get(position / block_size).copied().flatten().ok_or(KvError::MissingBlock { group, position })
}
