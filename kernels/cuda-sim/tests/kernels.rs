//! The CUDA kernels, run by the simulator, against the host: the dequantized weights, the
//! engine's KV block layout, attention computed plainly in f64, and the engine's rotary embedding.
#![cfg(cuda_sim)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use half::f16;
use hearth_cuda_sim::{BlockTables, KvShape, Queries, SimError};
use hearth_engine::kv::RowPlan;
use hearth_engine::kv::layout::{KvLayout, LayerGroup};
use hearth_engine::model::config::RopeStyle;
use hearth_engine::model::rotary::Rotary;
use hearth_kernels::GgmlType;
use hearth_kernels::cuda;

/// Deterministic values in [-1, 1), a different stream for each `salt`.
fn noise(i: usize, salt: u64) -> f32 {
    let mut x = (i as u64 ^ salt.rotate_left(32)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

#[test]
fn f16_conversions_match_ieee_round_to_nearest_even() {
    for bits in 0..=u16::MAX {
        let (got, want) = (hearth_cuda_sim::f16_bits_to_f32(bits), f16::from_bits(bits).to_f32());
        assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{bits:#06x}: {got} vs {want}");
    }
    // Every 1021st f32 pattern (both signs, every exponent), and the edges of f16's range.
    let edges = [65504.0f32, 65519.99, 65520.0, 6.1035156e-5, 5.9604645e-8, 2.9802322e-8, 2.9802326e-8, 1e-10];
    let patterns = (0..=u32::MAX).step_by(1021).map(f32::from_bits);
    for v in patterns.chain(edges.iter().flat_map(|&e| [e, -e, e.next_up(), e.next_down()])) {
        let (got, want) = (hearth_cuda_sim::f32_to_f16_bits(v), f16::from_f32(v));
        assert!(
            got == want.to_bits() || (want.is_nan() && f16::from_bits(got).is_nan()),
            "{v:e}: {got:#06x} vs {:#06x}",
            want.to_bits()
        );
    }
}

/// `rows` rows of `k` elements of `ty` with random quants and small, finite scales.
fn weights(ty: GgmlType, rows: usize, k: usize) -> Vec<u8> {
    let len = rows * ty.bytes_for(k).unwrap();
    let mut bytes: Vec<u8> = (0..len).map(|i| (noise(i, 1) * 128.0) as i8 as u8).collect();
    let put = |bytes: &mut [u8], at: usize, v: f32| bytes[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
    for (b, block) in bytes.chunks_exact_mut(ty.type_size()).enumerate() {
        let scale = 0.01 + 0.02 * noise(b, 2).abs();
        match ty {
            GgmlType::F32 => block.copy_from_slice(&noise(b, 3).to_le_bytes()),
            GgmlType::F16 => put(block, 0, noise(b, 3)),
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => put(block, 0, scale),
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => {
                put(block, 0, scale);
                put(block, 2, scale * noise(b, 4));
            }
            GgmlType::Q6K => put(block, 208, scale * 0.1),
            _ => unreachable!("{ty} has no CUDA kernel"),
        }
    }
    bytes
}

#[test]
fn qmatmul_matches_the_dequantized_weights_for_every_type_with_a_kernel() {
    // 9 weight rows leave the last block of four warps with one row; 6 activation rows leave the
    // second tile with two; rows of 40 units of 32 give lanes 0..8 two units and the rest one.
    let (n, k) = (9, 1280);
    let types: Vec<GgmlType> = GgmlType::ALL.into_iter().filter(|&ty| cuda::qmatmul_kernel(ty).is_some()).collect();
    assert_eq!(types.len(), 10, "F32, F16, the four nibble formats, Q8_0 and three K-quants: {types:?}");
    for ty in types {
        let w = weights(ty, n, k);
        let mut dense = vec![0.0f32; n * k];
        hearth_kernels::dequantize(ty, &w, &mut dense).unwrap();
        for m in [1, 4, 6] {
            let x: Vec<f32> = (0..m * k).map(|i| noise(i, 5)).collect();
            let y = hearth_cuda_sim::qmatmul(ty, &w, &x, n, k, m).unwrap();
            for r in 0..m {
                for j in 0..n {
                    let (wr, xr) = (&dense[j * k..(j + 1) * k], &x[r * k..(r + 1) * k]);
                    let want: f64 = wr.iter().zip(xr).map(|(&a, &b)| a as f64 * b as f64).sum();
                    let size: f64 = wr.iter().zip(xr).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
                    let got = y[r * n + j] as f64;
                    assert!((got - want).abs() <= 1e-5 * (1.0 + size), "{ty} m={m} [{r},{j}]: {got} vs {want}");
                }
            }
        }
    }
}

#[test]
fn qmatmul_refuses_what_its_launch_cannot_read() {
    let w = weights(GgmlType::Q4K, 2, 256);
    let x = vec![0.5f32; 256];
    assert!(matches!(hearth_cuda_sim::qmatmul(GgmlType::Q4K, &w[1..], &x, 2, 256, 1), Err(SimError::Shape(_))));
    assert!(matches!(hearth_cuda_sim::qmatmul(GgmlType::Q4K, &w, &x, 2, 128, 1), Err(SimError::Geometry(_))));
    assert!(matches!(hearth_cuda_sim::qmatmul(GgmlType::Q2K, &w, &x, 2, 256, 1), Err(SimError::Geometry(_))));
}

/// A two-layer group's KV arena of `capacity` blocks, and the shape of its second layer.
fn arena(layout: &KvLayout, capacity: usize) -> (Vec<u16>, KvShape) {
    let stride = layout.block_elems(0);
    let shape = KvShape {
        layer_idx: 1,
        n_kv_head: layout.n_kv_head,
        head_dim: layout.head_dim,
        block_size: layout.block_size,
        block_stride: stride,
    };
    // A pattern the writes must leave alone where they do not belong.
    (vec![0x7e01; capacity * stride], shape)
}

/// The block id and slot of each position of a sequence whose table is `table`.
fn slots(table: &[u32], block_size: usize, positions: std::ops::Range<usize>) -> Vec<(u32, u32)> {
    positions.map(|p| (table[p / block_size], (p % block_size) as u32)).collect()
}

#[test]
fn kv_write_fills_the_engines_block_layout() {
    let (n_kv, hd, bs) = (2, 48, 16);
    let layout = KvLayout::new(2, n_kv, hd, bs, vec![LayerGroup { layers: vec![0, 1], window: None }]);
    let (mut arena, shape) = arena(&layout, 5);
    let table = [3u32, 0, 4];
    let total = 37;
    let row = n_kv * hd;
    let k: Vec<f32> = (0..total * row).map(|i| 3.0 * noise(i, 6)).collect();
    let v: Vec<f32> = (0..total * row).map(|i| 3.0 * noise(i, 7)).collect();
    hearth_cuda_sim::kv_write(&mut arena, &shape, &k, &v, &slots(&table, bs, 0..total)).unwrap();

    let mut want = vec![0x7e01u16; arena.len()];
    for p in 0..total {
        let base = table[p / bs] as usize * shape.block_stride;
        let slot = p % bs;
        for h in 0..n_kv {
            for d in 0..hd {
                let src = (p * n_kv + h) * hd + d;
                want[base + layout.plane(1, false, h) + d * bs + slot] = f16::from_f32(k[src]).to_bits();
                want[base + layout.plane(1, true, h) + slot * hd + d] = f16::from_f32(v[src]).to_bits();
            }
        }
    }
    let wrong = arena.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(wrong, 0, "{wrong} of {} elements differ", arena.len());
}

/// Attention of query `qr` (one head) over `span` of keys and values `kv` (rows of `row`
/// elements, already rounded to f16) of kv head `kv_head`, computed plainly in f64.
fn attend_one(
    qr: &[f32],
    kv: (&[f32], &[f32]),
    kv_head: usize,
    row: usize,
    span: std::ops::RangeInclusive<usize>,
    scale: f32,
) -> Vec<f64> {
    let (hd, (k, v)) = (qr.len(), kv);
    let at = |x: &[f32], p: usize, d: usize| x[p * row + kv_head * hd + d] as f64;
    let scores: Vec<f64> =
        span.clone().map(|p| (0..hd).map(|d| qr[d] as f64 * at(k, p, d)).sum::<f64>() * scale as f64).collect();
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    (0..hd).map(|d| span.clone().zip(&weights).map(|(p, w)| w * at(v, p, d)).sum::<f64>() / total).collect()
}

/// One sequence per table, each `total` positions long, whose last `rows` positions are attended
/// in one launch; see [`check_planned`].
fn check_attention(dims: (usize, usize, usize, usize), window: usize, tables: &[Vec<u32>], total: usize, rows: usize) {
    let seqs: Vec<Sequence> = tables
        .iter()
        .map(|t| Sequence {
            table: t.iter().copied().map(Some).collect(),
            fork_of: None,
            len: total,
            rows: total - rows..total,
        })
        .collect();
    check_planned(dims, window, &seqs);
}

#[test]
fn paged_attention_matches_plain_attention() {
    // Decode: one row after several blocks, with Qwen2.5-Coder-0.5B's heads (14 over 2, 64 dims).
    check_attention((14, 2, 64, 16), 0, &[vec![2, 0, 3, 1]], 53, 1);
    // A prompt of several rows across blocks, with Gemma 3's 256-dimension heads (8 warps).
    check_attention((4, 1, 256, 16), 0, &[vec![1, 2, 0]], 40, 19);
    // Heads of 48 dimensions leave half of the second warp idle; blocks of 32 positions.
    check_attention((4, 2, 48, 32), 0, &[vec![1, 0]], 45, 3);
    // Two sequences, each with its own table, in one launch.
    check_attention((6, 3, 64, 16), 0, &[vec![0, 2, 4], vec![5, 1, 3]], 37, 2);
}

#[test]
fn paged_attention_keeps_to_the_sliding_window() {
    // Windows shorter than, equal to and longer than a block; the first blocks leave the window.
    for window in [5, 16, 23] {
        check_attention((4, 2, 64, 16), window, &[vec![3, 1, 0, 2]], 60, 9);
    }
}

#[test]
fn paged_attention_refuses_tables_outside_the_arena() {
    let layout = KvLayout::new(2, 1, 64, 16, vec![LayerGroup { layers: vec![0, 1], window: None }]);
    let (arena, shape) = arena(&layout, 2);
    let q = vec![0.1f32; 2 * 64];
    let run = |ids: &[u32], pos: u32| {
        let queries = Queries { q: &q, n_head: 2, rows: &[(0, pos)] };
        hearth_cuda_sim::paged_attention(&arena, &shape, BlockTables { ids, stride: 2 }, queries, 0, 0.125)
    };
    assert!(run(&[0, 1], 20).is_ok());
    assert!(matches!(run(&[0, 2], 20), Err(SimError::Shape(_))), "block 2 of an arena of 2");
    assert!(matches!(run(&[0, 1], 40), Err(SimError::Shape(_))), "position 40 needs a third table entry");
    let long = KvShape { block_size: 128, ..shape };
    let queries = Queries { q: &q, n_head: 2, rows: &[(0, 3)] };
    let err = hearth_cuda_sim::paged_attention(&arena, &long, BlockTables { ids: &[0], stride: 1 }, queries, 0, 0.1);
    assert!(matches!(err, Err(SimError::Geometry(_))), "blocks longer than a head have no thread to sum their scores");
}

#[test]
fn rope_matches_the_engine_bit_for_bit() {
    let positions: Vec<u32> = vec![0, 1, 7, 4095, 4096, 32_767, 131_071];
    for (head_dim, base, style) in
        [(64, 10_000.0, RopeStyle::Interleaved), (64, 1_000_000.0, RopeStyle::Neox), (256, 10_000.0, RopeStyle::Neox)]
    {
        let heads = 3;
        let rotary = Rotary::new(head_dim, base, style);
        let x: Vec<f32> = (0..positions.len() * heads * head_dim).map(|i| 4.0 * noise(i, 40)).collect();
        let interleaved = matches!(style, RopeStyle::Interleaved);
        let got = hearth_cuda_sim::rope(&x, &positions, rotary.inv_freq(), heads, head_dim, interleaved).unwrap();
        let mut want = x.clone();
        let at: Vec<usize> = positions.iter().map(|&p| p as usize).collect();
        rotary.apply_rows(&mut want, heads, &at);
        let differ = got.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "head_dim {head_dim} {style:?}: {differ} of {} values differ", want.len());
    }
}

/// One sequence of an attention case (see [`check_planned`]): its block table, the
/// sequence it shares its first `shared` positions with (a fork), its length and its query rows.
struct Sequence {
    table: Vec<Option<u32>>,
    fork_of: Option<(usize, usize)>,
    len: usize,
    rows: std::ops::Range<usize>,
}

/// Writes each sequence's positions through the engine's [`RowPlan`] (a fork writes only past
/// what it shares), attends its query rows through another plan, and compares with plain
/// attention over the sequence's own keys and values.
fn check_planned(dims: (usize, usize, usize, usize), window: usize, seqs: &[Sequence]) {
    let (n_head, n_kv, hd, bs) = dims;
    let layout = KvLayout::new(2, n_kv, hd, bs, vec![LayerGroup { layers: vec![0, 1], window: None }]);
    let capacity = seqs.iter().flat_map(|s| s.table.iter().flatten()).max().unwrap() + 1;
    let (mut arena, shape) = arena(&layout, capacity as usize);
    let tables: Vec<&[Option<u32>]> = seqs.iter().map(|s| s.table.as_slice()).collect();
    let row = n_kv * hd;
    let mut kv: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
    for (s, seq) in seqs.iter().enumerate() {
        let own = |salt: u64| (0..seq.len * row).map(|i| 3.0 * noise(i, salt + s as u64)).collect::<Vec<f32>>();
        let (mut k, mut v) = (own(50), own(60));
        let from = match seq.fork_of {
            Some((parent, shared)) => {
                k[..shared * row].copy_from_slice(&kv[parent].0[..shared * row]);
                v[..shared * row].copy_from_slice(&kv[parent].1[..shared * row]);
                shared
            }
            // A windowed sequence's released blocks are never written or read.
            None => seq.table.iter().take_while(|b| b.is_none()).count() * bs,
        };
        let writes: Vec<(usize, usize)> = (from..seq.len).map(|p| (s, p)).collect();
        let plan = RowPlan::new(bs, capacity as usize, &tables, &writes).unwrap();
        let slots: Vec<(u32, u32)> = plan.row_block.iter().copied().zip(plan.row_slot.iter().copied()).collect();
        let (k_new, v_new) = (&k[from * row..], &v[from * row..]);
        hearth_cuda_sim::kv_write(&mut arena, &shape, k_new, v_new, &slots).unwrap();
        kv.push((k, v));
    }

    let rows: Vec<(usize, usize)> =
        seqs.iter().enumerate().flat_map(|(s, seq)| seq.rows.clone().map(move |p| (s, p))).collect();
    let plan = RowPlan::new(bs, capacity as usize, &tables, &rows).unwrap();
    let query_rows: Vec<(u32, u32)> = plan.row_seq.iter().copied().zip(plan.row_pos.iter().copied()).collect();
    let q: Vec<f32> = (0..rows.len() * n_head * hd).map(|i| noise(i, 70)).collect();
    let scale = 1.0 / (hd as f32).sqrt();
    let tables = BlockTables { ids: &plan.tables, stride: plan.table_stride };
    let queries = Queries { q: &q, n_head, rows: &query_rows };
    let got = hearth_cuda_sim::paged_attention(&arena, &shape, tables, queries, window, scale).unwrap();
    let round = |x: &[f32]| x.iter().map(|&e| f16::from_f32(e).to_f32()).collect::<Vec<_>>();
    for (r, &(s, pos)) in rows.iter().enumerate() {
        let (k, v) = (round(&kv[s].0), round(&kv[s].1));
        let first = if window > 0 { (pos + 1).saturating_sub(window) } else { 0 };
        for h in 0..n_head {
            let at = (r * n_head + h) * hd;
            let want = attend_one(&q[at..at + hd], (&k, &v), h / (n_head / n_kv), row, first..=pos, scale);
            for (d, w) in want.iter().enumerate() {
                let g = got[at + d] as f64;
                assert!(
                    (g - w).abs() < 1e-4,
                    "{dims:?} window {window} seq {s} pos {pos} head {h} dim {d}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn plans_of_the_engine_drive_the_kernels() {
    // A fork sharing its parent's first two blocks, each then writing blocks of its own, attended
    // together in one launch.
    let parent = Sequence { table: vec![Some(4), Some(2), Some(3)], fork_of: None, len: 45, rows: 40..45 };
    let fork = Sequence { table: vec![Some(4), Some(2), Some(5)], fork_of: Some((0, 32)), len: 39, rows: 36..39 };
    check_planned((4, 2, 64, 16), 0, &[parent, fork]);
    // A sliding window of 20 whose first two blocks were released (None in the table).
    let windowed = Sequence { table: vec![None, None, Some(1), Some(0)], fork_of: None, len: 56, rows: 51..56 };
    check_planned((4, 2, 64, 16), 20, &[windowed]);
}
