use super::*;

#[test]
fn decode_is_one_tile_of_rows_and_a_warp_per_weight_row() {
    let g = qmatmul_geometry(GgmlType::Q4K, 4864, 4864, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.block, (128, 1, 1));
    assert_eq!(g.grid, (1216, 1, 1));
    assert_eq!(g.shared_bytes, 0);
    // 151936 rows (Qwen's vocabulary) in blocks of 4 warps; a 512-row prompt in tiles of 4.
    let g = qmatmul_geometry(GgmlType::Q8_0, 151_936, 896, 512).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.grid, (37_984, 128, 1));
    // A partial last block of weight rows and a partial last tile of activation rows.
    let g = qmatmul_geometry(GgmlType::Q5_0, 6, 64, 5).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.grid, (2, 2, 1));
}

#[test]
fn matmul_shapes_the_kernel_cannot_read_are_refused() {
    // Q4_K rows are whole 256-element blocks; Qwen 0.5B's 896 is not.
    assert!(matches!(qmatmul_geometry(GgmlType::Q4K, 8, 896, 1), Err(KernelError::NotWholeBlocks { .. })));
    // F16 rows go 32 elements per lane.
    assert!(matches!(qmatmul_geometry(GgmlType::F16, 8, 48, 1), Err(KernelError::NotWholeBlocks { .. })));
    assert!(matches!(qmatmul_geometry(GgmlType::Q2K, 8, 256, 1), Err(KernelError::Unsupported { .. })));
    assert!(matches!(qmatmul_geometry(GgmlType::Q8_0, 0, 32, 1), Err(KernelError::Overflow { .. })));
    assert!(matches!(qmatmul_geometry(GgmlType::Q8_0, 8, 32, 0), Err(KernelError::Overflow { .. })));
    assert!(matches!(qmatmul_geometry(GgmlType::Q8_0, 8, 32, 300_000), Err(KernelError::Overflow { .. })));
    assert!(matches!(qmatmul_geometry(GgmlType::Q8_0, 8, 1 << 32, 1), Err(KernelError::Overflow { .. })));
}

#[test]
fn every_type_with_a_kernel_has_a_geometry() {
    for ty in GgmlType::ALL {
        let k = ty.block_size().max(32) * 2;
        assert_eq!(qmatmul_kernel(ty).is_some(), qmatmul_geometry(ty, 3, k, 2).is_ok(), "{ty}");
    }
}

#[test]
fn attention_has_a_thread_per_head_dimension() {
    // Qwen2.5 (64), SmolLM2 (64), Gemma 3 (256) heads; blocks of 16 positions.
    let g = paged_attention_geometry(3, 14, 2, 64, 16).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.grid, (14, 3, 1));
    assert_eq!(g.block, (64, 1, 1));
    assert_eq!(g.shared_bytes, (1 + 2) * 16 * 4);
    let g = paged_attention_geometry(1, 4, 1, 256, 16).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((g.block, g.shared_bytes), ((256, 1, 1), (1 + 8) * 16 * 4));
    // A head of 80 dimensions rounds up to three warps.
    let g = kv_write_geometry(5, 2, 80).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((g.grid, g.block), ((5, 2, 1), (96, 1, 1)));
}

#[test]
fn attention_shapes_the_kernel_cannot_run_are_refused() {
    assert!(paged_attention_geometry(1, 4, 1, 512, 16).is_err(), "more dimensions than threads");
    assert!(paged_attention_geometry(1, 6, 4, 64, 16).is_err(), "query heads not a multiple of kv heads");
    assert!(paged_attention_geometry(1, 4, 1, 32, 64).is_err(), "block larger than the thread block");
    assert!(paged_attention_geometry(0, 4, 1, 64, 16).is_err(), "no rows");
    assert!(paged_attention_geometry(70_000, 4, 1, 64, 16).is_err(), "rows past the grid's y limit");
    assert!(kv_write_geometry(1, 2, 0).is_err());
}

#[test]
fn rotary_has_a_thread_per_pair_of_dimensions() {
    // Qwen2.5's 64-dimension heads: 32 pairs, one warp; Gemma 3's 256: 128 pairs, four warps.
    let g = rope_geometry(7, 12, 64).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((g.grid, g.block, g.shared_bytes), ((7, 12, 1), (32, 1, 1), 0));
    let g = rope_geometry(1, 4, 256).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.block, (128, 1, 1));
    assert!(rope_geometry(1, 4, 63).is_err(), "odd head dimension");
    assert!(rope_geometry(1, 4, 1024).is_err(), "more pairs than threads");
    assert!(rope_geometry(0, 4, 64).is_err(), "no rows");
}

/// The entry points of `ptx` with the `.maxntid` each declares.
#[cfg(feature = "cuda")]
fn entries(ptx: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = ptx.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix(".visible .entry ") {
            let name = rest.trim_end_matches('(').to_string();
            let bound = lines.by_ref().find_map(|l| l.trim().strip_prefix(".maxntid ").map(str::to_string));
            out.push((name, bound.unwrap_or_default()));
        }
    }
    out
}

#[cfg(feature = "cuda")]
#[test]
fn the_ptx_has_every_entry_point_the_host_launches_with_its_block_size() {
    let matmuls = entries(QMATMUL_PTX);
    let threads = format!("{}, 1, 1", QMATMUL_WARPS_PER_BLOCK * WARP);
    for name in GgmlType::ALL.into_iter().filter_map(qmatmul_kernel) {
        let entry = matmuls.iter().find(|(n, _)| n == name);
        assert_eq!(entry.map(|(_, b)| b.as_str()), Some(threads.as_str()), "{name} in {matmuls:?}");
    }
    let attention = entries(PAGED_ATTENTION_PTX);
    let threads = format!("{ATTENTION_MAX_THREADS}, 1, 1");
    for name in [KV_WRITE_KERNEL, PAGED_ATTENTION_KERNEL, ROPE_KERNEL] {
        let entry = attention.iter().find(|(n, _)| n == name);
        assert_eq!(entry.map(|(_, b)| b.as_str()), Some(threads.as_str()), "{name} in {attention:?}");
    }
}
