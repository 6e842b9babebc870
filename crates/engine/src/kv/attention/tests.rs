#![allow(clippy::unwrap_used)]
use super::*;
use crate::kv::layout::LayerGroup;

/// Rounds `x` to the f16 values the cache stores.
fn round_f16(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
}

/// Plain softmax attention over keys `(positions, n_kv * hd)`, in f64: the reference.
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
            let s: Vec<f64> = keys
                .iter()
                .map(|&j| {
                    let kv = &k[(j * n_kv + kh) * hd..][..hd];
                    qv.iter().zip(kv).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>() * 0.5
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                let y: f64 = keys.iter().zip(&e).map(|(&j, &p)| p / z * f64::from(v[(j * n_kv + kh) * hd + d])).sum();
                out[(r * n_head + qh) * hd + d] = y as f32;
            }
        }
    }
    out
}

/// A one-layer cache of `total` positions with keys and values written, plus those keys and
/// values (rounded to f16) for the reference. `dims` is `(n_head, n_kv, hd, block)`.
struct Case {
    layout: KvLayout,
    store: BlockStore,
    table: Vec<Option<BlockId>>,
    k: Vec<f32>,
    v: Vec<f32>,
    n_head: usize,
}

fn val(i: usize, salt: f32, amp: f32) -> f32 {
    (i as f32 * 0.37 + salt).sin() * amp
}

impl Case {
    fn new(window: Option<usize>, total: usize, dims: (usize, usize, usize, usize)) -> Self {
        let (n_head, n_kv, hd, bs) = dims;
        let layout = KvLayout::new(1, n_kv, hd, bs, vec![LayerGroup { layers: vec![0], window }]);
        let mut store = BlockStore::new(layout.clone(), (layout.blocks_for(total) + 1) * layout.block_bytes(0));
        let table: Vec<Option<BlockId>> = (0..layout.blocks_for(total)).map(|_| store.allocate(0).unwrap()).collect();
        let amp = if hd >= 64 { 6.0 } else { 2.0 };
        let k = round_f16(&(0..total * n_kv * hd).map(|i| val(i, 0.1, amp)).collect::<Vec<_>>());
        let v = round_f16(&(0..total * n_kv * hd).map(|i| val(i, 1.7, amp)).collect::<Vec<_>>());
        let all = SeqRows { table: &table, past: 0, row0: 0, rows: total };
        write_kv(&mut store, &layout, 0, &[all], &k, &v).unwrap();
        Self { layout, store, table, k, v, n_head }
    }

    /// Queries for `rows` rows.
    fn queries(&self, rows: usize) -> Vec<f32> {
        let amp = if self.layout.head_dim >= 64 { 6.0 } else { 2.0 };
        (0..rows * self.n_head * self.layout.head_dim).map(|i| val(i, 3.3, amp)).collect()
    }

    /// Attention of `q` as rows `past..` through `tile`.
    fn attend_by(
        &self,
        past: usize,
        q: &[f32],
        tile: impl Fn(Tile<'_>) -> Result<Vec<Partial>, KvError> + Sync,
    ) -> Vec<f32> {
        let rows = q.len() / (self.n_head * self.layout.head_dim);
        let seq = SeqRows { table: &self.table, past, row0: 0, rows };
        let layer = Layer { store: &self.store, layout: &self.layout, il: 0, q, n_head: self.n_head, scale: 0.5 };
        attend_with(&layer, &[seq], tile).unwrap()
    }

    fn attend(&self, past: usize, q: &[f32]) -> Vec<f32> {
        self.attend_by(past, q, attend_tile)
    }

    fn attend_portable(&self, past: usize, q: &[f32]) -> Vec<f32> {
        self.attend_by(past, q, |t| attend_tile_with(&mut Portable::default(), t))
    }

    /// The attention through the AVX2 steps, where this CPU and the shape allow them (on an
    /// AVX-512 CPU `attend` takes the AVX-512 ones, so these would go untested otherwise).
    fn attend_avx2(&self, past: usize, q: &[f32]) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        {
            let (bs, hd) = (self.layout.block_size, self.layout.head_dim);
            avx2::Avx2::detect(bs, hd)?;
            Some(self.attend_by(past, q, |t| {
                let ops = avx2::Avx2::detect(bs, hd).expect("detected above");
                // SAFETY: `detect` found AVX2, F16C and FMA on this CPU.
                unsafe { attend_tile_avx2_steps(ops, t) }
            }))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (past, q);
            None
        }
    }
}

fn check(window: Option<usize>, past: usize, rows: usize) {
    check_dims(window, past, rows, (4, 2, 8, 4));
}

fn check_dims(window: Option<usize>, past: usize, rows: usize, dims: (usize, usize, usize, usize)) {
    let case = Case::new(window, past + rows, dims);
    let q = case.queries(rows);
    let want = reference(&q, &case.k, &case.v, dims.0, dims.1, dims.2, past, window);
    let avx2 = case.attend_avx2(past, &q);
    for got in [Some(case.attend(past, &q)), Some(case.attend_portable(past, &q)), avx2].into_iter().flatten() {
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 2e-4, "{a} vs {b}");
        }
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
fn many_query_rows_with_grouped_heads() {
    // Qwen2.5-1.5B's heads: 6 query heads per key/value head, 128 dimensions.
    check_dims(None, 0, 70, (12, 2, 128, 16));
    check_dims(None, 37, 45, (12, 2, 128, 16));
    check_dims(None, 100, 1, (12, 2, 128, 16));
    // Values accumulated in fewer registers than 128 dimensions take: 32 then 16 for 48, and
    // 128, 64, 32 and 16 for 240.
    check_dims(None, 5, 33, (6, 3, 48, 16));
    check_dims(None, 19, 9, (4, 2, 240, 16));
}

#[test]
fn sliding_window_sees_only_recent_keys() {
    check(Some(5), 0, 23);
    check(Some(5), 30, 1);
    check(Some(8), 9, 7);
    check(Some(8), 0, 33);
    check(Some(20), 50, 45);
    check_dims(Some(20), 10, 50, (8, 2, 64, 16));
    check_dims(Some(37), 60, 1, (8, 2, 64, 16));
}

#[test]
fn exp_is_close_to_std() {
    for i in 0..87_000 {
        let x = -(i as f32) * 1e-3;
        let (got, want) = (portable::exp_neg(x), x.exp());
        assert!((got - want).abs() <= 3e-7 * want, "exp({x}): {got} vs {want}");
    }
    assert_eq!(portable::exp_neg(0.0), 1.0);
    assert_eq!(portable::exp_neg(-100.0), 0.0);
    assert_eq!(portable::exp_neg(f32::NEG_INFINITY), 0.0);
}

#[test]
fn every_path_gives_the_same_bits() {
    for (window, past, rows, dims) in [
        (None, 0, 70, (12, 2, 128, 16)),
        (None, 21, 40, (9, 3, 64, 16)),
        (Some(20), 50, 45, (8, 2, 64, 16)),
        (None, 3, 30, (4, 1, 256, 16)),
        (None, 5, 33, (6, 3, 48, 16)),
        (None, 19, 9, (4, 2, 240, 16)),
        // Heads of 28 and 20 dimensions: the NEON steps' tails of 16, 8 and 4 dimensions.
        (None, 7, 20, (6, 2, 28, 16)),
        (None, 30, 1, (8, 2, 20, 16)),
        // Several segments of the cache, merged.
        (None, 700, 2, (12, 2, 128, 16)),
        (Some(100), 1000, 20, (8, 2, 64, 16)),
    ] {
        let case = Case::new(window, past + rows, dims);
        let q = case.queries(rows);
        let (best, portable) = (case.attend(past, &q), case.attend_portable(past, &q));
        assert!(best.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()), "{dims:?}");
        if let Some(avx2) = case.attend_avx2(past, &q) {
            assert!(avx2.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()), "AVX2 {dims:?}");
        }
    }
}

/// Every model's head size runs on the NEON steps (so `every_path_gives_the_same_bits` checks
/// them against the portable ones), unless `HEARTH_SIMD` asks for the scalar path.
#[cfg(target_arch = "aarch64")]
#[test]
fn neon_steps_take_every_model_shape() {
    if std::env::var("HEARTH_SIMD").is_ok_and(|s| s.trim() == "scalar") {
        return;
    }
    for hd in [48, 64, 128, 240, 256] {
        assert!(neon::Neon::detect(16, hd).is_some(), "head_dim {hd}");
    }
    assert!(neon::Neon::detect(8, 64).is_none());
}

#[test]
fn a_row_does_not_depend_on_the_rows_beside_it() {
    let (n_head, hd) = (12, 128);
    let case = Case::new(None, 40, (n_head, 2, hd, 16));
    let q = case.queries(40);
    let row = n_head * hd;
    let all = case.attend(0, &q);
    // The last 19 rows on their own (a later prompt chunk), and the last row as one decode step.
    let tail = case.attend(21, &q[21 * row..]);
    assert!(tail.iter().zip(&all[21 * row..]).all(|(a, b)| a.to_bits() == b.to_bits()));
    let last = case.attend(39, &q[39 * row..]);
    assert!(last.iter().zip(&all[39 * row..]).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn query_heads_split_only_where_the_spans_leave_threads_idle() {
    let whole = |n: usize| std::iter::once(0..n).collect::<Vec<_>>();
    assert_eq!(rep_ranges(6, 2, 2), whole(6));
    assert_eq!(rep_ranges(6, 4, 2), whole(6));
    assert_eq!(rep_ranges(6, 2, 8), [0..1, 1..3, 3..4, 4..6]);
    assert_eq!(rep_ranges(4, 1, 2), [0..2, 2..4]);
    assert_eq!(rep_ranges(7, 2, 16), (0..7).map(|i| i..i + 1).collect::<Vec<_>>());
    assert_eq!(rep_ranges(1, 1, 16), whole(1));
    assert_eq!(rep_ranges(6, 0, 4), whole(6));
}

#[test]
fn segments_split_only_to_fill_the_threads() {
    // Qwen2.5-Coder-1.5B's two key/value heads already fill two threads; SmolLM2's three do not.
    assert_eq!(segment_pieces(2, 2, 9), 1);
    assert_eq!(segment_pieces(3, 2, 9), 2);
    assert_eq!(segment_pieces(2, 8, 9), 4);
    assert_eq!(segment_pieces(3, 8, 2), 2, "no more runs than segments");
    assert_eq!(segment_pieces(3, 2, 1), 1);
    assert_eq!(segment_pieces(64, 2, 9), 1, "a prompt's many tiles");
    assert_eq!(segment_pieces(0, 2, 9), 1);
}

#[test]
fn splitting_query_heads_or_segments_over_threads_gives_the_same_bits() {
    for (past, rows, dims) in [
        (100, 1, (12, 2, 128, 16)),
        (37, 1, (4, 1, 256, 16)),
        (19, 3, (14, 2, 64, 16)),
        // Three segments of the cache per head, in runs of one and two on two threads and one
        // each on eight.
        (1100, 1, (9, 3, 64, 16)),
        (1100, 1, (8, 2, 64, 16)),
    ] {
        let case = Case::new(None, past + rows, dims);
        let q = case.queries(rows);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| case.attend(past, &q))
        };
        let (one, two, many) = (on(1), on(2), on(8));
        assert!(one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits()), "{dims:?}");
        assert!(one.iter().zip(&two).all(|(a, b)| a.to_bits() == b.to_bits()), "{dims:?}");
        let want = reference(&q, &case.k, &case.v, dims.0, dims.1, dims.2, past, None);
        assert!(many.iter().zip(&want).all(|(a, b)| (a - b).abs() < 2e-4), "{dims:?}");
    }
}

#[test]
fn segments_of_a_long_cache_merge_to_plain_softmax_attention() {
    // Decode steps two and three segments deep; prompt tiles across a segment's end (512
    // positions with 16-slot blocks, 128 with 4-slot ones).
    check_dims(None, 600, 1, (6, 3, 64, 16));
    check_dims(None, 1100, 2, (12, 2, 128, 16));
    check_dims(None, 500, 40, (4, 2, 32, 16));
    check(None, 200, 30);
    check(None, 0, 300);
    // Sliding windows that start inside an earlier segment, or leave it out.
    check(Some(40), 300, 20);
    check_dims(Some(100), 1000, 5, (8, 2, 64, 16));
    check_dims(Some(600), 1000, 3, (8, 2, 64, 16));
}

#[test]
fn a_row_deep_in_the_cache_does_not_depend_on_the_rows_beside_it() {
    let (n_head, hd, total) = (4, 32, 1100);
    let case = Case::new(None, total, (n_head, 2, hd, 16));
    let q = case.queries(total);
    let row = n_head * hd;
    let all = case.attend(0, &q);
    for past in [500, 1000, total - 1] {
        let tail = case.attend(past, &q[past * row..]);
        assert!(tail.iter().zip(&all[past * row..]).all(|(a, b)| a.to_bits() == b.to_bits()), "from {past}");
    }
}
