use super::{random_floats, random_tensor, reference, rng};
use crate::activation::{Q8Block, Q8KBlock, quantize_q8, quantize_q8k};
use crate::cpu::{self, SimdPath};
use crate::matmul::matmul_on;
use crate::{GgmlType, KernelError, matmul};

/// The weight types matmul supports.
const MATMUL_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

/// The activations as the integer kernels see them: quantized to 8 bits, then decoded again.
fn as_kernels_see_them(ty: GgmlType, x: &[f32], k: usize) -> Vec<f32> {
    match ty.block_size() {
        1 => x.to_vec(),
        32 => {
            let mut blocks = vec![Q8Block::ZERO; x.len() / 32];
            for (xs, bs) in x.chunks(k).zip(blocks.chunks_mut(k / 32)) {
                quantize_q8(xs, bs);
            }
            blocks.iter().flat_map(|b| b.qs.map(|q| b.d * f32::from(q))).collect()
        }
        _ => {
            let mut blocks = vec![Q8KBlock::ZERO; x.len() / 256];
            for (xs, bs) in x.chunks(k).zip(blocks.chunks_mut(k / 256)) {
                quantize_q8k(xs, bs);
            }
            blocks.iter().flat_map(|b| b.qs.map(|q| b.d * f32::from(q))).collect()
        }
    }
}

/// `(sum of w * x, sum of |w * x|)` in f64.
fn dot_and_magnitude(w: &[f32], x: &[f32]) -> (f64, f64) {
    w.iter().zip(x).fold((0.0, 0.0), |(s, a), (&w, &x)| {
        let p = f64::from(w) * f64::from(x);
        (s + p, a + p.abs())
    })
}

/// Runs matmul on every path this CPU has and checks each against the reference, and the paths
/// against each other.
fn check(ty: GgmlType, n: usize, k: usize, m: usize, seed: u64) {
    let mut rng = rng(seed);
    let w = random_tensor(ty, n * k, &mut rng);
    let x = random_floats(m * k, &mut rng);
    let w_f = reference::decode(ty, &w);
    let x_q = as_kernels_see_them(ty, &x, k);
    let mut results = Vec::new();
    for path in cpu::available() {
        let mut y = vec![f32::NAN; m * n];
        matmul_on(path, ty, &w, n, k, &x, m, &mut y).unwrap();
        for i in 0..m {
            for j in 0..n {
                let got = f64::from(y[i * n + j]);
                let row = &w_f[j * k..(j + 1) * k];
                // Against the activations the kernel actually multiplies: only f32 rounding differs.
                let (exact, magnitude) = dot_and_magnitude(row, &x_q[i * k..(i + 1) * k]);
                assert!(
                    (got - exact).abs() <= 1e-4 * magnitude + 1e-6,
                    "{ty} {path:?} n={n} k={k} m={m} y[{i},{j}] = {got}, expected {exact} (magnitude {magnitude})"
                );
                // Against the unquantized activations: 8-bit activations cost about 1e-2 relative.
                let (plain, plain_magnitude) = dot_and_magnitude(row, &x[i * k..(i + 1) * k]);
                assert!(
                    (got - plain).abs() <= 1e-2 * plain_magnitude + 1e-6,
                    "{ty} {path:?} n={n} k={k} m={m} y[{i},{j}] = {got}, float dot {plain}"
                );
            }
        }
        results.push((path, y));
    }
    let (_, scalar) = &results[0];
    for (path, y) in &results[1..] {
        for (idx, (a, b)) in scalar.iter().zip(y).enumerate() {
            let (i, j) = (idx / n, idx % n);
            let (_, magnitude) = dot_and_magnitude(&w_f[j * k..(j + 1) * k], &x_q[i * k..(i + 1) * k]);
            assert!(
                (f64::from(*a) - f64::from(*b)).abs() <= 1e-5 * magnitude + 1e-6,
                "{ty}: scalar {a} vs {path:?} {b} at y[{i},{j}]"
            );
        }
    }
}

fn depths(ty: GgmlType) -> Vec<usize> {
    match ty.block_size() {
        1 => vec![1, 37, 100, 515],
        bs => vec![bs, 3 * bs, 2048],
    }
}

#[test]
fn every_type_and_path_matches_the_reference() {
    for ty in MATMUL_TYPES {
        for (s, k) in depths(ty).into_iter().enumerate() {
            for (n, m) in [(1, 1), (5, 2), (37, 7), (3, 1), (6, 9), (11, 3), (9, 6)] {
                check(ty, n, k, m, 100 * s as u64 + n as u64 + m as u64);
            }
        }
    }
}

#[test]
fn many_rows_split_into_ragged_chunks() {
    for ty in MATMUL_TYPES {
        let k = if ty.block_size() == 1 { 515 } else { 512 };
        for m in [1, 5] {
            check(ty, 301, k, m, 7 + m as u64);
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = rng(3);
    let (n, k, m) = (203, 512, 2);
    let w = random_tensor(GgmlType::Q4K, n * k, &mut rng);
    let x = random_floats(m * k, &mut rng);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut y = vec![0f32; m * n];
        pool.install(|| matmul(GgmlType::Q4K, &w, n, k, &x, m, &mut y)).unwrap();
        y
    };
    assert_eq!(run(1), run(3));
    check(GgmlType::Q4K, n, k, m, 3);
}

#[test]
fn simd_level_names_the_best_available_path() {
    let level = crate::simd_level();
    let names: Vec<&str> = cpu::available().iter().map(|p| p.name()).collect();
    assert!(names.contains(&level), "{level} not in {names:?}");
    if std::env::var_os("HEARTH_SIMD").is_none() {
        assert_eq!(names.last(), Some(&level));
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert!(names.contains(&"avx2+fma"), "{names:?}");
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        assert!(names.contains(&"neon+dotprod"), "{names:?}");
    }
}

#[test]
fn hearth_simd_may_only_pick_an_available_path() {
    let paths = cpu::available();
    let best = *paths.last().unwrap();
    assert_eq!(cpu::choose(&paths, None), best);
    assert_eq!(cpu::choose(&paths, Some("scalar")), SimdPath::Scalar);
    assert_eq!(cpu::choose(&paths, Some(" scalar\n")), SimdPath::Scalar);
    assert_eq!(cpu::choose(&paths, Some("no-such-path")), best);
    assert_eq!(cpu::choose(&[SimdPath::Scalar], Some("avx512+vnni")), SimdPath::Scalar);
}

#[test]
fn a_lower_hearth_simd_path_turns_off_the_sets_above_it() {
    use crate::InstructionSet::{Avx2F16cFma, Avx512f, Neon};
    let paths = cpu::available();
    let cap = |wanted| cpu::rank_cap(&paths, wanted);
    assert_eq!(cap(None), None);
    assert_eq!(cap(Some("no-such-path")), None);
    let scalar = cap(Some(" scalar\n")).unwrap();
    assert!([Avx512f, Avx2F16cFma, Neon].iter().all(|set| set.rank() > scalar));
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = cap(Some("avx2+fma")) {
        assert!(Avx2F16cFma.rank() <= avx2 && Avx512f.rank() > avx2);
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(neon) = cap(Some("neon+dotprod")) {
        assert!(Neon.rank() <= neon);
    }
}

#[test]
fn scalar_path_is_always_available() {
    assert_eq!(cpu::available()[0], SimdPath::Scalar);
}

#[test]
fn empty_shapes_are_fine() {
    let mut y = vec![1f32; 6];
    matmul(GgmlType::Q4_0, &[], 3, 0, &[], 2, &mut y).unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
    matmul(GgmlType::Q4_0, &[], 0, 32, &[0.0; 64], 2, &mut []).unwrap();
    matmul(GgmlType::Q4_0, &[0; 36], 2, 32, &[], 0, &mut []).unwrap();
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let w = vec![0u8; 2 * 144];
    let x = vec![0f32; 512];
    let mut y = [0f32; 4];
    let err = matmul(GgmlType::Q4K, &w, 2, 100, &x[..100], 1, &mut y[..2]).unwrap_err();
    assert!(matches!(err, KernelError::NotWholeBlocks { len: 100, block_size: 256, .. }), "{err}");

    let err = matmul(GgmlType::Q4K, &w[..287], 2, 256, &x[..256], 1, &mut y[..2]).unwrap_err();
    assert!(matches!(err, KernelError::LengthMismatch { expected: 288, actual: 287, .. }), "{err}");
    assert!(err.to_string().contains("288") && err.to_string().contains("287"), "{err}");

    let err = matmul(GgmlType::Q4K, &w, 2, 256, &x[..255], 1, &mut y[..2]).unwrap_err();
    assert!(matches!(err, KernelError::LengthMismatch { expected: 256, actual: 255, .. }), "{err}");

    let err = matmul(GgmlType::Q4K, &w, 2, 256, &x[..256], 1, &mut y[..3]).unwrap_err();
    assert!(matches!(err, KernelError::LengthMismatch { expected: 2, actual: 3, .. }), "{err}");

    let err = matmul(GgmlType::Q4K, &w, usize::MAX, 256, &x[..256], 1, &mut y[..2]).unwrap_err();
    assert!(matches!(err, KernelError::Overflow { .. }), "{err}");

    for ty in [GgmlType::Q8K, GgmlType::Q8_1] {
        let err = matmul(ty, &[], 0, 0, &[], 0, &mut []).unwrap_err();
        assert!(matches!(err, KernelError::Unsupported { .. }), "{err}");
    }
}

#[test]
fn model_sized_shapes_match_on_every_path() {
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q6K, GgmlType::Q4K] {
        let k = 576usize.next_multiple_of(ty.block_size());
        for m in [1, 2, 3, 6, 13] {
            check(ty, 1536, k, m, 11 + m as u64);
        }
    }
}
