//! Attention read straight from the blocks of a paged cache: no per-step gather or
//! concatenation of keys and values. Keys and values are stored in f16 and widened to f32 one
//! block at a time; scores are accumulated with an online softmax (as in flash attention), so no
//! score matrix is ever built.

use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::kv::error::KvError;
use crate::kv::layout::KvLayout;
use crate::kv::store::{BlockId, BlockStore};

pub mod bench;

/// Rows of queries one task handles; small enough to spread a prompt over the thread pool,
/// large enough that each widened block serves many queries.
const ROW_TILE: usize = 16;

/// Partial sums per score; `attend_tile_body` adds them pairwise, so this is 4.
const PARTS: usize = 4;

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
            let data = store.data_mut(id);
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
    let hd = layout.head_dim;
    let n_rep = n_head / layout.n_kv_head;
    let total_rows: usize = seqs.iter().map(|s| s.rows).sum();
    let mut out = vec![0f32; total_rows * n_head * hd];
    let mut tasks = Vec::new();
    for (s, seq) in seqs.iter().enumerate() {
        for h in 0..layout.n_kv_head {
            for r0 in (0..seq.rows).step_by(ROW_TILE) {
                tasks.push((s, h, r0, (r0 + ROW_TILE).min(seq.rows)));
            }
        }
    }
    let parts: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(s, h, r0, r1)| {
            attend_tile(Tile { store, layout, il, seq: &seqs[s], q, n_head, h, rows: r0..r1, scale })
        })
        .collect::<Result<_, _>>()?;
    for (&(s, h, r0, r1), part) in tasks.iter().zip(&parts) {
        for r in r0..r1 {
            for g in 0..n_rep {
                let dst = (seqs[s].row0 + r) * n_head * hd + (h * n_rep + g) * hd;
                let src = ((r - r0) * n_rep + g) * hd;
                out[dst..dst + hd].copy_from_slice(&part[src..src + hd]);
            }
        }
    }
    Ok(out)
}

/// The arguments of one task: rows `rows` of one sequence, for the query heads sharing key/value
/// head `h`.
struct Tile<'a> {
    store: &'a BlockStore,
    layout: &'a KvLayout,
    il: usize,
    seq: &'a SeqRows<'a>,
    q: &'a [f32],
    n_head: usize,
    h: usize,
    rows: std::ops::Range<usize>,
    scale: f32,
}

/// Attention of one tile; returns `(rows, n_rep, head_dim)`. Compiled twice, with AVX2 where the
/// CPU has it; both builds do the same operations in the same order (no fused multiply-add), so
/// results do not depend on the CPU's features.
fn attend_tile(t: Tile<'_>) -> Result<Vec<f32>, KvError> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { attend_tile_avx2(t) };
    }
    attend_tile_body(t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn attend_tile_avx2(t: Tile<'_>) -> Result<Vec<f32>, KvError> {
    attend_tile_body(t)
}

/// Keys are stored transposed (`kt[d * block + j]`, see [`KvLayout::plane`]), so the scores of a
/// query against a whole block are `hd` vector multiply-adds across keys rather than one
/// horizontal dot product per key; each query's scores and sums are then independent of how
/// rows are tiled, which keeps cached, batched and fresh runs bit-identical.
#[inline(always)]
fn attend_tile_body(t: Tile<'_>) -> Result<Vec<f32>, KvError> {
    let Tile { store, layout, il, seq, q, n_head, h, rows, scale } = t;
    let (g, idx) = layout.slot_of(il);
    let (hd, bs) = (layout.head_dim, layout.block_size);
    let n_rep = n_head / layout.n_kv_head;
    let n_q = rows.len() * n_rep;
    let mut acc = vec![0f32; n_q * hd];
    let mut max = vec![f32::NEG_INFINITY; n_q];
    let mut sum = vec![0f32; n_q];
    let (mut kt, mut vf) = (vec![0f32; hd * bs], vec![0f32; bs * hd]);
    let mut scores = vec![0f32; bs];
    let mut parts = vec![0f32; PARTS * bs];
    let (first_q, last_q) = (seq.past + rows.start, seq.past + rows.end - 1);
    let first_key = layout.first_visible(g, first_q);
    for b in first_key / bs..=last_q / bs {
        let data = store.data(block_at(seq.table, g, b * bs, bs)?);
        let (kp, vp) = (layout.plane(idx, false, h), layout.plane(idx, true, h));
        // Slots past the last query hold stale values: their scores are computed but unused.
        let used = (last_q + 1 - b * bs).min(bs);
        data[kp..kp + hd * bs].convert_to_f32_slice(&mut kt);
        data[vp..vp + used * hd].convert_to_f32_slice(&mut vf[..used * hd]);
        for r in rows.clone() {
            let qpos = seq.past + r;
            let lo = layout.first_visible(g, qpos).max(b * bs);
            let hi = qpos.min(b * bs + bs - 1);
            if lo > hi {
                continue;
            }
            let (j0, j1) = (lo - b * bs, hi - b * bs + 1);
            for rep in 0..n_rep {
                let qi = (r - rows.start) * n_rep + rep;
                let qo = (seq.row0 + r) * n_head * hd + (h * n_rep + rep) * hd;
                // Four partial sums over interleaved dimensions, added pairwise: a single running
                // sum over 256 dimensions (Gemma 3) loses enough precision to flip greedy choices.
                parts.fill(0.0);
                for (d, (&qd, kd)) in q[qo..qo + hd].iter().zip(kt.chunks_exact(bs)).enumerate() {
                    let part = &mut parts[(d % PARTS) * bs..(d % PARTS + 1) * bs];
                    for (s, &k) in part.iter_mut().zip(kd) {
                        *s += qd * k;
                    }
                }
                let (p01, p23) = parts.split_at(2 * bs);
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = (p01[j] + p01[bs + j]) + (p23[j] + p23[bs + j]);
                }
                let mut block_max = f32::NEG_INFINITY;
                for s in &mut scores[j0..j1] {
                    *s *= scale;
                    block_max = block_max.max(*s);
                }
                let new_max = max[qi].max(block_max);
                let a = &mut acc[qi * hd..(qi + 1) * hd];
                if max[qi] > f32::NEG_INFINITY && new_max > max[qi] {
                    let c = (max[qi] - new_max).exp();
                    sum[qi] *= c;
                    a.iter_mut().for_each(|x| *x *= c);
                }
                max[qi] = new_max;
                for j in j0..j1 {
                    let p = (scores[j] - new_max).exp();
                    sum[qi] += p;
                    for (y, &x) in a.iter_mut().zip(&vf[j * hd..(j + 1) * hd]) {
                        *y += p * x;
                    }
                }
            }
        }
    }
    for (a, &s) in acc.chunks_exact_mut(hd).zip(&sum) {
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        a.iter_mut().for_each(|x| *x *= inv);
    }
    Ok(acc)
}

fn block_at(table: &[Option<BlockId>], group: usize, position: usize, block_size: usize) -> Result<BlockId, KvError> {
    table.get(position / block_size).copied().flatten().ok_or(KvError::MissingBlock { group, position })
}

/// Rounds `x` to the f16 values the cache stores (for tests comparing against f32 attention).
#[cfg(test)]
pub(crate) fn round_f16(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::layout::LayerGroup;

    /// Plain softmax attention over f32 keys `(positions, n_kv * hd)`, the reference.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        n_head: usize,
        n_kv: usize,
        hd: usize,
        past: usize,
        window: Option<usize>,
    ) -> Vec<f32> {
        let rows = q.len() / (n_head * hd);
        let mut out = vec![0f32; q.len()];
        for r in 0..rows {
            let qpos = past + r;
            for qh in 0..n_head {
                let kh = qh / (n_head / n_kv);
                let qv = &q[(r * n_head + qh) * hd..][..hd];
                let keys: Vec<usize> = (0..=qpos).filter(|&j| window.is_none_or(|w| qpos - j < w)).collect();
                let s: Vec<f32> = keys
                    .iter()
                    .map(|&j| qv.iter().zip(&k[(j * n_kv + kh) * hd..][..hd]).map(|(a, b)| a * b).sum::<f32>() * 0.5)
                    .collect();
                let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f32 = e.iter().sum();
                for (&j, &p) in keys.iter().zip(&e) {
                    for d in 0..hd {
                        out[(r * n_head + qh) * hd + d] += p / z * v[(j * n_kv + kh) * hd + d];
                    }
                }
            }
        }
        out
    }

    fn check(window: Option<usize>, past: usize, rows: usize) {
        check_dims(window, past, rows, (4, 2, 8, 4));
    }

    fn check_dims(window: Option<usize>, past: usize, rows: usize, dims: (usize, usize, usize, usize)) {
        let (n_head, n_kv, hd, bs) = dims;
        let layout = KvLayout::new(1, n_kv, hd, bs, vec![LayerGroup { layers: vec![0], window }]);
        let total = past + rows;
        let mut store = BlockStore::new(layout.clone(), 64 * layout.block_bytes(0));
        let table: Vec<Option<BlockId>> = (0..layout.blocks_for(total)).map(|_| store.allocate(0)).collect();
        let amp = if hd >= 64 { 6.0 } else { 2.0 };
        let val = |i: usize, salt: f32| (i as f32 * 0.37 + salt).sin() * amp;
        let k: Vec<f32> = round_f16(&(0..total * n_kv * hd).map(|i| val(i, 0.1)).collect::<Vec<_>>());
        let v: Vec<f32> = round_f16(&(0..total * n_kv * hd).map(|i| val(i, 1.7)).collect::<Vec<_>>());
        let all = SeqRows { table: &table, past: 0, row0: 0, rows: total };
        write_kv(&mut store, &layout, 0, &[all], &k, &v).unwrap();
        let q: Vec<f32> = (0..rows * n_head * hd).map(|i| val(i, 3.3)).collect();
        let seq = SeqRows { table: &table, past, row0: 0, rows };
        let got = attend(&store, &layout, 0, &[seq], &q, n_head, 0.5).unwrap();
        let want = reference(&q, &k, &v, n_head, n_kv, hd, past, window);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 2e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn matches_plain_softmax_attention() {
        check(None, 0, 37);
        check(None, 13, 1);
        check(None, 16, 5);
        // Several tiles of rows, and several blocks.
        check(None, 21, 40);
        check_dims(None, 0, 47, (9, 3, 64, 16));
        check_dims(None, 16, 100, (14, 2, 64, 16));
        check_dims(None, 3, 30, (4, 1, 256, 16));
    }

    #[test]
    fn sliding_window_sees_only_recent_keys() {
        check(Some(5), 0, 23);
        check(Some(5), 30, 1);
        check(Some(8), 9, 7);
        check(Some(8), 0, 33);
        check(Some(20), 50, 45);
    }
}
