use super::{random_tensor, reference, rng};
use crate::{GgmlType, KernelError, dequantize};

#[test]
fn every_type_matches_the_reference_decoder() {
    let mut rng = rng(1);
    for ty in GgmlType::ALL {
        let len = ty.block_size() * 5;
        let bytes = random_tensor(ty, len, &mut rng);
        let mut out = vec![f32::NAN; len];
        dequantize(ty, &bytes, &mut out).unwrap();
        let want = reference::decode(ty, &bytes);
        for (e, (got, want)) in out.iter().zip(&want).enumerate() {
            assert!(got.is_finite(), "{ty} element {e} is {got}");
            // Same operations in a different order: allow one rounding step either way.
            assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-3), "{ty} element {e}: {got} vs {want}");
        }
    }
}

#[test]
fn empty_input_is_fine() {
    for ty in GgmlType::ALL {
        dequantize(ty, &[], &mut []).unwrap();
    }
}

#[test]
fn partial_blocks_are_rejected() {
    let mut out = vec![0f32; 33];
    let err = dequantize(GgmlType::Q4_0, &[0; 36], &mut out).unwrap_err();
    assert!(matches!(err, KernelError::NotWholeBlocks { len: 33, block_size: 32, .. }), "{err}");
    assert!(err.to_string().contains("33"), "{err}");
}

#[test]
fn wrong_byte_counts_are_rejected() {
    for ty in GgmlType::ALL {
        let len = ty.block_size() * 2;
        let right = ty.bytes_for(len).unwrap();
        for bytes in [right - 1, right + 1, 0] {
            let mut out = vec![0f32; len];
            let err = dequantize(ty, &vec![0; bytes], &mut out).unwrap_err();
            match err {
                KernelError::LengthMismatch { expected, actual, .. } => {
                    assert_eq!((expected, actual), (right, bytes), "{ty}");
                }
                other => panic!("{ty}: unexpected error {other}"),
            }
        }
    }
}
