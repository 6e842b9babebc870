use super::*;
use std::io::Write;

/// Writes a minimal GGUF v3 file: one string key, one u32 key and the given tensors.
fn write_gguf(tensors: &[(&str, &[u64], u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&2u64.to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    put_str(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes());
    put_str(&mut out, "llama");
    put_str(&mut out, "llama.block_count");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&7u32.to_le_bytes());
    let mut offset = 0u64;
    for (name, dims, ty, data) in tensors {
        put_str(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in *dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
        while out.len() % 32 != 0 {
            out.push(0);
        }
    }
    out
}

fn open_bytes(bytes: &[u8]) -> Result<GgufFile> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    GgufFile::open(f.path())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn reads_metadata_and_tensors_in_place() {
    let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let bytes = write_gguf(&[("w", &[3, 2], 0, data.clone())]);
    let g = open_bytes(&bytes).unwrap();
    assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.get_u64("llama.block_count").unwrap(), 7);
    let info = g.tensor_info("w").unwrap();
    assert_eq!(info.dims, vec![3, 2]);
    assert_eq!(info.ggml_type, GgmlType::F32);
    assert_eq!(g.tensor_bytes("w").unwrap().bytes(), &data[..]);
}

#[test]
fn missing_and_mistyped_keys_are_errors() {
    let g = open_bytes(&write_gguf(&[])).unwrap();
    assert!(matches!(g.get_u64("nope"), Err(GgufError::MissingKey(_))));
    assert!(matches!(g.get_u64("general.architecture"), Err(GgufError::WrongType { .. })));
    assert!(matches!(g.tensor_info("w"), Err(GgufError::MissingTensor(_))));
}

#[test]
fn bad_magic_is_named() {
    let mut bytes = write_gguf(&[]);
    bytes[0] = b'X';
    let err = open_bytes(&bytes).unwrap_err();
    assert!(matches!(err, GgufError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("not a GGUF file"));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = write_gguf(&[("w", &[8], 0, f32_bytes(&[0.5; 8]))]);
    // The last tensor ends exactly at the end of the file, so every cut loses something.
    for cut in 0..bytes.len() {
        let r = open_bytes(&bytes[..cut]);
        assert!(r.is_err(), "cut at {cut} of {} was accepted", bytes.len());
    }
}

#[test]
fn unknown_tensor_type_is_named() {
    let bytes = write_gguf(&[("blk.0.weird", &[32], 99, vec![0; 64])]);
    let err = open_bytes(&bytes).unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedTensorType { type_id: 99, .. }), "{err}");
    assert!(err.to_string().contains("blk.0.weird"));
}

#[test]
fn shape_that_does_not_fit_blocks_is_corrupt() {
    // Q8_0 needs rows that are multiples of 32 elements.
    let bytes = write_gguf(&[("w", &[31], 8, vec![0; 34])]);
    assert!(matches!(open_bytes(&bytes), Err(GgufError::Corrupt { .. })));
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    let mut bytes = write_gguf(&[]);
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(open_bytes(&bytes), Err(GgufError::Corrupt { .. })));
}
