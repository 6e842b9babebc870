//! Repacked weights against the row-major kernels and the per-element reference.

use rand::rngs::StdRng;

use super::{random_floats, random_tensor, reference, rng};
use crate::cpu::{self, SimdPath};
use crate::matmul::matmul_on;
use crate::packed::{RepackChoice, pack_on};
use crate::{GgmlType, KernelError, PackArena, PackedWeights};

/// Every type some path has packed kernels for.
const PACKED_TYPES: [GgmlType; 7] =
    [GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0];

/// The types `path` packs: all seven on AVX-512 VNNI, all but Q8_0 on AVX2.
fn packed_types(path: SimdPath) -> &'static [GgmlType] {
    match path.name() {
        "avx512+vnni" => &PACKED_TYPES,
        "avx2+fma" => &PACKED_TYPES[..6],
        _ => &[],
    }
}

/// The paths of this CPU that have packed kernels.
fn packing_paths() -> Vec<SimdPath> {
    cpu::available().into_iter().filter(|&p| !packed_types(p).is_empty()).collect()
}

fn check(ty: GgmlType, n: usize, k: usize, m: usize, seed: u64) {
    let mut rng = rng(seed);
    let w = random_tensor(ty, n * k, &mut rng);
    let x = random_floats(m * k, &mut rng);
    let w_f = reference::decode(ty, &w);
    for path in packing_paths().into_iter().filter(|&p| packed_types(p).contains(&ty)) {
        let packed = pack_on(path, &PackArena::new(), ty, &w, n, k).unwrap().expect("rows in whole groups are packed");
        assert_eq!((packed.n(), packed.k()), (n, k));
        let mut got = vec![f32::NAN; m * n];
        packed.matmul(&x, m, &mut got).unwrap();
        let mut rows = vec![f32::NAN; m * n];
        matmul_on(path, ty, &w, n, k, &x, m, &mut rows).unwrap();
        for i in 0..m {
            for j in 0..n {
                let (a, b) = (f64::from(got[i * n + j]), f64::from(rows[i * n + j]));
                let magnitude: f64 = w_f[j * k..(j + 1) * k]
                    .iter()
                    .zip(&x[i * k..(i + 1) * k])
                    .map(|(&w, &x)| (f64::from(w) * f64::from(x)).abs())
                    .sum();
                assert!(
                    (a - b).abs() <= 1e-5 * magnitude + 1e-6,
                    "{ty} n={n} k={k} m={m} y[{i},{j}]: packed {a}, row-major {b} (magnitude {magnitude})"
                );
            }
        }
    }
}

#[test]
fn packed_weights_match_the_row_major_kernels() {
    for ty in PACKED_TYPES {
        for (n, k, m) in [(16, 256, 1), (32, 768, 2), (48, 512, 3), (16, 2048, 4), (64, 256, 5), (32, 512, 9)] {
            check(ty, n, k, m, (n + k + m) as u64);
        }
    }
}

#[test]
fn packed_weights_match_on_model_sized_shapes() {
    for ty in PACKED_TYPES {
        for m in [1, 4, 7] {
            check(ty, 1536, 1536, m, 40 + m as u64);
        }
        check(ty, 256, 8960usize.next_multiple_of(256), 2, 50);
    }
}

#[test]
fn packed_results_do_not_depend_on_the_thread_count() {
    let mut rng = rng(9);
    let (n, k, m) = (320, 512, 6);
    for path in packing_paths() {
        for &ty in packed_types(path) {
            thread_count_check(path, ty, n, k, m, &mut rng);
        }
    }
}

/// Packed `ty` on `path` gives the same bits on one thread as on three.
fn thread_count_check(path: SimdPath, ty: GgmlType, n: usize, k: usize, m: usize, rng: &mut StdRng) {
    let w = random_tensor(ty, n * k, rng);
    let x = random_floats(m * k, rng);
    let packed = pack_on(path, &PackArena::new(), ty, &w, n, k).unwrap().unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut y = vec![0f32; m * n];
        pool.install(|| packed.matmul(&x, m, &mut y)).unwrap();
        y
    };
    assert_eq!(run(1), run(3), "{ty} on {path:?}");
}

#[test]
fn only_whole_groups_of_a_packed_type_are_packed() {
    let mut rng = rng(5);
    for path in cpu::available() {
        let w = random_tensor(GgmlType::Q4K, 20 * 256, &mut rng);
        assert!(
            pack_on(path, &PackArena::new(), GgmlType::Q4K, &w, 20, 256).unwrap().is_none(),
            "20 rows are not whole groups"
        );
        let w = random_tensor(GgmlType::Q5K, 16 * 256, &mut rng);
        assert!(
            pack_on(path, &PackArena::new(), GgmlType::Q5K, &w, 16, 256).unwrap().is_none(),
            "no packed Q5_K kernel"
        );
        for ty in PACKED_TYPES {
            let w = random_tensor(ty, 16 * 256, &mut rng);
            let packed = pack_on(path, &PackArena::new(), ty, &w, 16, 256).unwrap();
            assert_eq!(packed.is_some(), packed_types(path).contains(&ty), "{ty} on {path:?}");
        }
    }
}

#[test]
fn packing_and_packed_matmul_refuse_bad_shapes() {
    let Some(path) = packing_paths().pop() else { return };
    let w = vec![0u8; 16 * 144];
    let err = pack_on(path, &PackArena::new(), GgmlType::Q4K, &w[..100], 16, 256).unwrap_err();
    assert!(matches!(err, KernelError::LengthMismatch { expected: 2304, actual: 100, .. }), "{err}");
    let err = pack_on(path, &PackArena::new(), GgmlType::Q4K, &w, 16, 100).unwrap_err();
    assert!(matches!(err, KernelError::NotWholeBlocks { len: 100, .. }), "{err}");
    let packed = pack_on(path, &PackArena::new(), GgmlType::Q4K, &w, 16, 256).unwrap().unwrap();
    let mut y = [0f32; 16];
    let err = packed.matmul(&[0.0; 255], 1, &mut y).unwrap_err();
    assert!(matches!(err, KernelError::LengthMismatch { expected: 256, actual: 255, .. }), "{err}");
    let err = packed.matmul(&[0.0; 256], 1, &mut y[..15]).unwrap_err();
    assert!(matches!(err, KernelError::LengthMismatch { expected: 16, actual: 15, .. }), "{err}");
    packed.matmul(&[], 0, &mut []).unwrap();
}

#[test]
fn packed_legacy_types_match_on_rows_of_32_element_blocks() {
    // SmolLM2's shapes: 576 is not a multiple of 256, only of the 32-element block.
    for &ty in &PACKED_TYPES[2..] {
        for (n, k, m) in [(576, 576, 1), (192, 576, 3), (1536, 576, 4), (576, 1536, 6), (16, 32, 2)] {
            check(ty, n, k, m, (n * 7 + k + m) as u64);
        }
    }
}

#[test]
fn hearth_repack_names_never_always_or_where_faster() {
    assert_eq!(RepackChoice::from_env(Some("0")), RepackChoice::Never);
    assert_eq!(RepackChoice::from_env(Some(" 1\n")), RepackChoice::Always);
    assert_eq!(RepackChoice::from_env(None), RepackChoice::WhereFaster);
    assert_eq!(RepackChoice::from_env(Some("yes")), RepackChoice::WhereFaster);
    for path in cpu::available() {
        for ty in PACKED_TYPES {
            assert!(!RepackChoice::Never.packs_on(path, ty), "{path:?} {ty}");
            assert!(RepackChoice::Always.packs_on(path, ty), "{path:?} {ty}");
            // AVX2's packed Q6_K decodes slower from memory, so only it waits to be asked.
            let avx2_q6k = path.name() == "avx2+fma" && ty == GgmlType::Q6K;
            assert_eq!(RepackChoice::WhereFaster.packs_on(path, ty), !avx2_q6k, "{path:?} {ty}");
        }
    }
}

#[test]
fn matmul_many_gives_each_matrix_the_bits_of_its_own_matmul() {
    let mut rng = rng(21);
    let k = 512;
    for path in packing_paths() {
        // q, k and v of different types and sizes, and on AVX-512 a legacy type, whose kernels
        // take other activation blocks and so run on their own.
        let mut parts: Vec<(GgmlType, usize)> = vec![(GgmlType::Q4K, 96), (GgmlType::Q4K, 32), (GgmlType::Q6K, 48)];
        if packed_types(path).contains(&GgmlType::Q8_0) {
            parts.push((GgmlType::Q8_0, 16));
        }
        // Placed together in one arena, as a model's are; each is checked against a copy packed
        // on its own.
        let arena = PackArena::new();
        let weights: Vec<Vec<u8>> = parts.iter().map(|&(ty, n)| random_tensor(ty, n * k, &mut rng)).collect();
        let pack_each = |shared: bool| {
            let each = |(&(ty, n), w): (&(GgmlType, usize), &Vec<u8>)| {
                let alone = PackArena::new();
                pack_on(path, if shared { &arena } else { &alone }, ty, w, n, k).unwrap().unwrap()
            };
            parts.iter().zip(&weights).map(each).collect()
        };
        let packed: Vec<PackedWeights> = pack_each(true);
        let own: Vec<PackedWeights> = pack_each(false);
        let refs: Vec<&PackedWeights> = packed.iter().collect();
        for m in [1, 3] {
            let x = random_floats(m * k, &mut rng);
            let mut ys: Vec<Vec<f32>> = parts.iter().map(|&(_, n)| vec![f32::NAN; m * n]).collect();
            let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(|y| y.as_mut_slice()).collect();
            PackedWeights::matmul_many(&refs, &x, m, &mut outs).unwrap();
            for (i, p) in own.iter().enumerate() {
                let mut alone = vec![f32::NAN; m * p.n()];
                p.matmul(&x, m, &mut alone).unwrap();
                assert_eq!(ys[i], alone, "matrix {i} ({}) m={m} on {path:?}", parts[i].0);
            }
        }
        let mut short = vec![0f32; 95];
        let mut outs: Vec<&mut [f32]> = vec![&mut short];
        let err = PackedWeights::matmul_many(&refs[..1], &vec![0.0; k], 1, &mut outs).unwrap_err();
        assert!(matches!(err, KernelError::LengthMismatch { expected: 96, actual: 95, .. }), "{err}");
        let err = PackedWeights::matmul_many(&refs, &vec![0.0; k], 1, &mut outs).unwrap_err();
        assert!(matches!(err, KernelError::LengthMismatch { .. }), "{err}");
    }
}

#[test]
fn decode_chunks_shrink_towards_the_end_of_a_job_and_cover_every_group_once() {
    use crate::matmul::{MIN_CHUNK_BYTES, guided_chunk};
    // Qwen2.5-Coder-1.5B's gate and up (two Q4_K matrices of 560 groups of 13.5 KiB, one job),
    // its down (96 groups of 80 KiB) and its output matrix (9496 groups of 19.7 KiB).
    for (threads, matrices) in [
        (2, vec![(560, 13_824), (560, 13_824)]),
        (2, vec![(96, 80_640)]),
        (4, vec![(9496, 20_160)]),
        (1, vec![(3, 2_304)]),
    ] {
        let mut left: usize = matrices.iter().map(|&(g, b)| g * b).sum();
        let mut sizes = Vec::new();
        for &(groups, group_bytes) in &matrices {
            let mut covered = 0;
            while covered < groups {
                let take = guided_chunk(left, group_bytes, groups - covered, threads, 1);
                assert!(take >= 1 && covered + take <= groups, "{take} groups at {covered} of {groups}");
                covered += take;
                left -= take * group_bytes;
                sizes.push(take * group_bytes);
            }
        }
        assert_eq!(left, 0);
        // Claimed in order, the big chunks go first; the last is the minimum chunk in whole groups.
        let group = matrices.last().unwrap().1;
        assert!(*sizes.last().unwrap() <= MIN_CHUNK_BYTES.div_ceil(group) * group, "{sizes:?}");
        let (first, last) = (sizes[0], *sizes.last().unwrap());
        assert!(first >= last, "{sizes:?}");
        // Never more than a few dozen chunks: each costs a claim and a stream start.
        assert!(sizes.len() <= 64, "{} chunks for {matrices:?}", sizes.len());
    }
}
