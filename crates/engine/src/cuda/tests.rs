//! Every CUDA kernel against the CPU path. These need a CUDA device (and the NVIDIA driver to
//! start at all): a build with the `cuda` feature is tested on a machine with a GPU.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use candle_core::{Device, Tensor};
use half::f16;
use hearth_kernels::GgmlType;

use super::*;
use crate::gguf::GgufFile;
use crate::kv::attention::{self, SeqRows};
use crate::kv::layout::{KvLayout, LayerGroup};
use crate::kv::store::{BlockId, BlockStore};
use crate::model::layers::QLinear;

fn cuda() -> Device {
    Device::new_cuda(0).expect("these tests need a CUDA device")
}

/// Deterministic values in [-1, 1).
fn noise(i: usize, salt: u64) -> f32 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 2000) as f32 / 1000.0 - 1.0
}

fn put_f16(bytes: &mut [u8], at: usize, v: f32) {
    bytes[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// `rows × k` weights of `ty`: random quants, and scales small and finite.
fn weight_bytes(ty: GgmlType, rows: usize, k: usize) -> Vec<u8> {
    let len = rows * ty.bytes_for(k).unwrap();
    let mut bytes: Vec<u8> = (0..len).map(|i| (noise(i, 7) * 127.0) as i8 as u8).collect();
    let (bb, n_blocks) = (ty.type_size(), len / ty.type_size());
    for b in 0..n_blocks {
        let at = b * bb;
        let scale = 0.01 + 0.02 * noise(b, 3).abs();
        match ty {
            GgmlType::F32 => bytes[at..at + 4].copy_from_slice(&noise(b, 5).to_le_bytes()),
            GgmlType::F16 => put_f16(&mut bytes, at, noise(b, 5)),
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => put_f16(&mut bytes, at, scale),
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => {
                put_f16(&mut bytes, at, scale);
                put_f16(&mut bytes, at + 2, scale * noise(b, 11));
            }
            GgmlType::Q6K => put_f16(&mut bytes, at + 208, scale * 0.1),
            _ => unreachable!("{ty} has no CUDA kernel"),
        }
    }
    bytes
}

/// A GGUF file with one `[k, n]` tensor `w` of type `ty`.
fn gguf_with(ty: GgmlType, k: usize, n: usize, data: &[u8]) -> (tempfile::NamedTempFile, GgufFile) {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.push(b'w');
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(k as u64).to_le_bytes());
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&ty.id().to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.resize(out.len().div_ceil(32) * 32, 0);
    out.extend_from_slice(data);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&out).unwrap();
    let gguf = GgufFile::open(file.path()).unwrap();
    (file, gguf)
}

#[test]
fn qmatmul_matches_the_cpu_for_every_type_with_a_kernel() {
    let gpu = cuda();
    for ty in GgmlType::ALL.into_iter().filter(|&ty| hearth_kernels::cuda::qmatmul_kernel(ty).is_some()) {
        // 2 super-blocks per row: some lanes idle, one row block partly past n.
        let (n, k) = (37, 512);
        let (_file, gguf) = gguf_with(ty, k, n, &weight_bytes(ty, n, k));
        let cpu_layer = QLinear::load(&gguf, "w", k, n, false, &Device::Cpu).unwrap();
        let gpu_layer = QLinear::load(&gguf, "w", k, n, false, &gpu).unwrap();
        for m in [1, 3, 9] {
            let x: Vec<f32> = (0..m * k).map(|i| noise(i, 13)).collect();
            let want = cpu_layer.forward(&Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap()).unwrap();
            let got = gpu_layer.forward(&Tensor::from_vec(x, (m, k), &gpu).unwrap()).unwrap();
            assert_eq!(got.dims(), &[m, n]);
            let (want, got) = (
                want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            // The CPU quantizes activations to 8 bits for the quantized types, the GPU does not:
            // the difference is a fraction of the outputs' size, not of each output.
            let rel = if matches!(ty, GgmlType::F32 | GgmlType::F16) { 1e-5 } else { 1e-2 };
            let tol = rel * (1.0 + want.iter().fold(0f32, |acc, x| acc.max(x.abs())));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= tol, "{ty} m={m} [{i}]: gpu {a} cpu {b}, tolerance {tol}");
            }
        }
    }
}

#[test]
fn a_layer_loaded_for_the_cpu_refuses_a_gpu_input() {
    let gpu = cuda();
    let ty = GgmlType::Q8_0;
    let (_file, gguf) = gguf_with(ty, 64, 4, &weight_bytes(ty, 4, 64));
    let cpu_layer = QLinear::load(&gguf, "w", 64, 4, false, &Device::Cpu).unwrap();
    let x = Tensor::zeros((1, 64), candle_core::DType::F32, &gpu).unwrap();
    assert!(cpu_layer.forward(&x).is_err());
}

/// Writes `total` positions of random keys and values on the host and on the device, checks the
/// blocks are bit-identical, then compares attention of the last `rows` positions.
fn check_attention(window: Option<usize>, dims: (usize, usize, usize, usize), total: usize, rows: usize) {
    let gpu = cuda();
    let dev = gpu.as_cuda_device().unwrap();
    let (n_head, n_kv, hd, bs) = dims;
    let layout = KvLayout::new(2, n_kv, hd, bs, vec![LayerGroup { layers: vec![0, 1], window }]);
    let il = 1;
    let mut store = BlockStore::new(layout.clone(), 1 << 30);
    let table: Vec<Option<BlockId>> = (0..layout.blocks_for(total)).map(|_| store.allocate(0).unwrap()).collect();
    let ids: Vec<BlockId> = table.iter().map(|id| id.unwrap()).collect();
    let row = n_kv * hd;
    let k: Vec<f32> = (0..total * row).map(|i| 3.0 * noise(i, 1)).collect();
    let v: Vec<f32> = (0..total * row).map(|i| 3.0 * noise(i, 2)).collect();
    let all = SeqRows { table: &table, past: 0, row0: 0, rows: total };
    attention::write_kv(&mut store, &layout, il, &[all], &k, &v).unwrap();

    let capacity = *ids.iter().max().unwrap() as usize + 1;
    let mut blocks = DeviceKvBlocks::zeroed(dev, layout.clone(), capacity).unwrap();
    let every: Vec<(usize, usize)> = (0..total).map(|p| (0, p)).collect();
    let writes = PagedRows::upload(&blocks, &[&table], &every).unwrap();
    let (k_dev, v_dev) = (dev.clone_htod(&k).unwrap(), dev.clone_htod(&v).unwrap());
    kv_write(&mut blocks, il, &k_dev.slice(..), &v_dev.slice(..), &writes).unwrap();
    let block_elems = layout.block_elems(0);
    for &id in &ids {
        let on_device = blocks.read(id, block_elems).unwrap();
        // Layer 0's planes were never written on either side; compare layer 1's.
        let planes = layout.plane(1, false, 0)..block_elems;
        let bits = |s: &[f16]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&on_device[planes.clone()]), bits(&store.data(id).unwrap()[planes]), "block {id}");
    }

    let past = total - rows;
    let q: Vec<f32> = (0..rows * n_head * hd).map(|i| noise(i, 4)).collect();
    let seq = SeqRows { table: &table, past, row0: 0, rows };
    let scale = 1.0 / (hd as f32).sqrt();
    let want = attention::attend(&store, &layout, il, &[seq], &q, n_head, scale).unwrap();
    let positions: Vec<(usize, usize)> = (past..total).map(|p| (0, p)).collect();
    let paged = PagedRows::upload(&blocks, &[&table], &positions).unwrap();
    let q_dev = dev.clone_htod(&q).unwrap();
    let got = dev.clone_dtoh(&paged_attention(&blocks, il, &q_dev.slice(..), n_head, &paged, scale).unwrap()).unwrap();
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!((a - b).abs() < 1e-4, "{dims:?} window {window:?} [{i}]: gpu {a} cpu {b}");
    }
}

#[test]
fn paged_attention_matches_the_cpu() {
    // Decode: one row after several blocks; Qwen 0.5B's heads (14 over 2, 64 dims).
    check_attention(None, (14, 2, 64, 16), 53, 1);
    // A prompt of several blocks, and Gemma 3's 256-dimension heads.
    check_attention(None, (4, 1, 256, 16), 40, 40);
    check_attention(None, (9, 3, 64, 16), 17, 5);
}

#[test]
fn paged_attention_keeps_to_the_sliding_window() {
    check_attention(Some(5), (4, 2, 64, 16), 37, 1);
    check_attention(Some(20), (4, 2, 64, 16), 50, 12);
}

#[test]
fn bad_rows_and_blocks_are_errors() {
    let gpu = cuda();
    let dev = gpu.as_cuda_device().unwrap();
    let layout = KvLayout::new(1, 1, 64, 16, vec![LayerGroup { layers: vec![0], window: None }]);
    let mut blocks = DeviceKvBlocks::zeroed(dev, layout.clone(), 2).unwrap();
    assert!(PagedRows::upload(&blocks, &[&[Some(0), Some(5)]], &[(0, 3)]).is_err(), "block past the arena");
    assert!(PagedRows::upload(&blocks, &[&[Some(0)]], &[(0, 16)]).is_err(), "position past the table");
    assert!(PagedRows::upload(&blocks, &[&[Some(0)]], &[(1, 0)]).is_err(), "no such sequence");
    assert!(PagedRows::upload(&blocks, &[&[None, Some(1)]], &[(0, 3)]).is_err(), "a released block");
    let elems = layout.block_elems(0);
    assert!(blocks.read(2, elems).is_err(), "read past the arena");
    assert!(blocks.write(0, &vec![f16::ZERO; elems + 1]).is_err(), "a write longer than a block");
    assert!(blocks.copy_block(0, 2).is_err(), "copy past the arena");
}

#[test]
fn device_blocks_read_write_and_copy() {
    let gpu = cuda();
    let dev = gpu.as_cuda_device().unwrap();
    // Two groups of different block sizes share the arena's stride.
    let layout = KvLayout::new(
        3,
        2,
        64,
        16,
        vec![LayerGroup { layers: vec![0, 2], window: None }, LayerGroup { layers: vec![1], window: Some(8) }],
    );
    let (big, small) = (layout.block_elems(0), layout.block_elems(1));
    assert_eq!(DeviceKvBlocks::stride_elems(&layout), big);
    let mut blocks = DeviceKvBlocks::zeroed(dev, layout, 4).unwrap();
    assert_eq!(blocks.capacity(), 4);
    let a: Vec<f16> = (0..big).map(|i| f16::from_f32(noise(i, 21))).collect();
    let b: Vec<f16> = (0..small).map(|i| f16::from_f32(noise(i, 22))).collect();
    blocks.write(3, &a).unwrap();
    blocks.write(1, &b).unwrap();
    assert_eq!(blocks.read(3, big).unwrap(), a);
    assert_eq!(blocks.read(1, small).unwrap(), b);
    // Both directions of the split inside the arena.
    blocks.copy_block(3, 0).unwrap();
    blocks.copy_block(1, 2).unwrap();
    assert_eq!(blocks.read(0, big).unwrap(), a);
    assert_eq!(blocks.read(2, small).unwrap(), b);
    assert_eq!(blocks.read(3, big).unwrap(), a, "the source is unchanged");
}

#[test]
fn rotary_matches_the_host() {
    let gpu = cuda();
    let dev = gpu.as_cuda_device().unwrap();
    let layout = KvLayout::new(1, 2, 64, 16, vec![LayerGroup { layers: vec![0], window: None }]);
    let blocks = DeviceKvBlocks::zeroed(dev, layout, 8).unwrap();
    // Positions far apart, where an angle formed in f32 would lose digits.
    let positions = [0usize, 1, 17, 40_000, 120_000];
    let tables: Vec<Vec<Option<BlockId>>> =
        positions.iter().map(|&p| (0..=p / 16).map(|i| Some((i % 8) as BlockId)).collect()).collect();
    let table_refs: Vec<&[Option<BlockId>]> = tables.iter().map(Vec::as_slice).collect();
    let rows: Vec<(usize, usize)> = positions.iter().enumerate().map(|(s, &p)| (s, p)).collect();
    let paged = PagedRows::upload(&blocks, &table_refs, &rows).unwrap();
    for style in [crate::model::RopeStyle::Neox, crate::model::RopeStyle::Interleaved] {
        let rotary = crate::model::layers::Rotary::new(64, 1_000_000.0, style);
        let heads = 3;
        let x: Vec<f32> = (0..positions.len() * heads * 64).map(|i| noise(i, 31)).collect();
        let mut want = x.clone();
        rotary.apply_rows(&mut want, heads, &positions);
        let inv_freq = dev.clone_htod(rotary.inv_freq()).unwrap();
        let x_dev = dev.clone_htod(&x).unwrap();
        let got = dev.clone_dtoh(&rope(dev, &x_dev.slice(..), heads, &paged, &inv_freq, style).unwrap()).unwrap();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-6, "{style:?} [{i}]: gpu {a} cpu {b}");
        }
    }
}
