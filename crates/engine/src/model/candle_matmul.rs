//! Quantized products on devices hearth has no kernels of its own for (Apple's Metal), through
//! candle's `QMatMul` and the ggml kernels candle ships for that device.
//!
//! The CPU runs hearth's kernels and CUDA hearth's `.cu` kernels; for any other candle device the
//! weights are uploaded once as a candle `QTensor` and candle does the product. `HEARTH_MATMUL=
//! candle` takes this path on the CPU too, so the code Metal runs can be checked on any machine.

use candle_core::quantized::{GgmlDType, QMatMul, ggml_file};
use candle_core::{Device, Module, Tensor};
use hearth_kernels::GgmlType;

use crate::error::{EngineError, Result};

/// A weight matrix held by candle on its device.
#[derive(Debug, Clone)]
pub(crate) struct CandleMatMul {
    weights: QMatMul,
}

impl CandleMatMul {
    /// Uploads `bytes` (`n_out` rows of `k_in` elements of `ty`, as stored in the GGUF file).
    pub(crate) fn upload(
        bytes: &[u8],
        ty: GgmlType,
        n_out: usize,
        k_in: usize,
        name: &str,
        device: &Device,
    ) -> Result<Self> {
        // candle reads as many blocks as the shape has, whatever the slice's length, and reads
        // them in place as structs of up to 4-byte alignment: both are checked here.
        let expected = n_out.checked_mul(k_in).and_then(|n| ty.bytes_for(n));
        if expected != Some(bytes.len()) {
            return Err(EngineError::InvalidModel(format!(
                "{name}: {} bytes, but {n_out} rows of {k_in} {ty} values take {}",
                bytes.len(),
                expected.map_or_else(|| "no whole number of blocks".to_string(), |e| e.to_string())
            )));
        }
        let aligned: Vec<u32>;
        let bytes = if bytes.as_ptr().align_offset(4) == 0 {
            bytes
        } else {
            aligned = bytes
                .chunks(4)
                .map(|c| {
                    let mut word = [0u8; 4];
                    word[..c.len()].copy_from_slice(c);
                    u32::from_ne_bytes(word)
                })
                .collect();
            &bytemuck::cast_slice::<u32, u8>(&aligned)[..bytes.len()]
        };
        // ggml lists the row length first; candle's shapes put it last.
        let tensor = ggml_file::qtensor_from_ggml(candle_dtype(ty), bytes, vec![n_out, k_in], device)
            .map_err(|e| EngineError::InvalidModel(format!("{name}: cannot load it on {device:?}: {e}")))?;
        let weights = QMatMul::from_qtensor(tensor)?;
        Ok(Self { weights })
    }

    /// `x · Wᵀ` over the last dimension of `x`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.weights.forward(x)?)
    }
}

/// Whether `HEARTH_MATMUL=candle` asks for candle's products on the CPU (a comparison aid; the
/// CPU's own kernels are faster); an error where candle's CPU kernels cannot run.
pub(crate) fn requested_on_cpu() -> Result<bool> {
    let requested = std::env::var("HEARTH_MATMUL").is_ok_and(|v| v.trim() == "candle");
    if requested && !candle_runs_on_this_cpu() {
        return Err(EngineError::UnsupportedDevice {
            device: "cpu".to_string(),
            missing: "the Armv8.2 dot-product extension, which candle's CPU kernels (HEARTH_MATMUL=candle) use unchecked",
        });
    }
    Ok(requested)
}

/// Whether candle's quantized CPU kernels can run here: on aarch64 they issue `sdot` without
/// checking for it, which stops a CPU without the dot-product extension (Cortex-A72, as in the
/// Raspberry Pi 4) with an illegal instruction.
fn candle_runs_on_this_cpu() -> bool {
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("dotprod");
    #[cfg(not(target_arch = "aarch64"))]
    true
}

/// The candle name of a ggml type.
fn candle_dtype(ty: GgmlType) -> GgmlDType {
    match ty {
        GgmlType::F32 => GgmlDType::F32,
        GgmlType::F16 => GgmlDType::F16,
        GgmlType::BF16 => GgmlDType::BF16,
        GgmlType::Q4_0 => GgmlDType::Q4_0,
        GgmlType::Q4_1 => GgmlDType::Q4_1,
        GgmlType::Q5_0 => GgmlDType::Q5_0,
        GgmlType::Q5_1 => GgmlDType::Q5_1,
        GgmlType::Q8_0 => GgmlDType::Q8_0,
        GgmlType::Q8_1 => GgmlDType::Q8_1,
        GgmlType::Q2K => GgmlDType::Q2K,
        GgmlType::Q3K => GgmlDType::Q3K,
        GgmlType::Q4K => GgmlDType::Q4K,
        GgmlType::Q5K => GgmlDType::Q5K,
        GgmlType::Q6K => GgmlDType::Q6K,
        GgmlType::Q8K => GgmlDType::Q8K,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A deterministic float in [-1, 1) from a counter.
    fn value(i: usize) -> f32 {
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        (h as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn candle_products_match_hearths_kernels_on_the_models_types() {
        if !candle_runs_on_this_cpu() {
            return;
        }
        let (n, k, m) = (48, 512, 3);
        let weights: Vec<f32> = (0..n * k).map(value).collect();
        let x: Vec<f32> = (0..m * k).map(|i| value(i + 7919)).collect();
        for ty in [GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::F16, GgmlType::F32] {
            // Quantize through candle, then run the same bytes through both paths.
            let qt = candle_core::quantized::QTensor::quantize(
                &Tensor::from_vec(weights.clone(), (n, k), &Device::Cpu).unwrap(),
                candle_dtype(ty),
            )
            .unwrap();
            let bytes = qt.data().unwrap().to_vec();
            let mut ours = vec![0f32; m * n];
            hearth_kernels::matmul(ty, &bytes, n, k, &x, m, &mut ours).unwrap();
            let candle = CandleMatMul::upload(&bytes, ty, n, k, "w", &Device::Cpu).unwrap();
            let xs = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
            let theirs = candle.forward(&xs).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                let (row, col) = (i / n, i % n);
                let magnitude: f32 = (0..k).map(|l| (weights[col * k + l] * x[row * k + l]).abs()).sum();
                // Both quantize the activations to 8 bits, each its own way, so they agree to within
                // that rounding of the terms, not bit for bit.
                assert!((a - b).abs() <= 2e-3 * magnitude + 1e-4, "{ty} y[{i}]: hearth {a}, candle {b} ({magnitude})");
            }
        }
    }

    #[test]
    fn a_matrix_of_the_wrong_size_is_an_error_naming_it() {
        let err =
            CandleMatMul::upload(&[0u8; 100], GgmlType::Q4K, 16, 256, "blk.0.attn_q.weight", &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("blk.0.attn_q.weight: 100 bytes"), "{err}");
        let err = CandleMatMul::upload(&[0u8; 144], GgmlType::Q4K, 1, 100, "w", &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("no whole number of blocks"), "{err}");
    }

    #[test]
    fn weights_at_an_odd_address_are_copied_before_candle_reads_them() {
        let (n, k) = (2, 32);
        let values: Vec<f32> = (0..n * k).map(value).collect();
        // Words are 4-aligned, so one byte in is not.
        let mut words = vec![0u32; n * k + 1];
        let bytes = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[1..1 + n * k * 4];
        for (dst, v) in bytes.chunks_exact_mut(4).zip(&values) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        let candle = CandleMatMul::upload(bytes, GgmlType::F32, n, k, "w", &Device::Cpu).unwrap();
        let x = Tensor::from_vec(values[..k].to_vec(), (1, k), &Device::Cpu).unwrap();
        let y = candle.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expect: f32 = values[..k].iter().map(|v| v * v).sum();
        assert!((y[0] - expect).abs() < 1e-4, "{} vs {expect}", y[0]);
    }
}
