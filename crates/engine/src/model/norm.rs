//! RMS norm with a learned scale; on the CPU computed by `hearth_kernels` (as ggml sums it), with
//! the residual add before a norm fused into the same pass.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::model::layers::{contiguous_f32, host_f32, load_vector};

/// Root-mean-square normalisation with a learned scale.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    /// The scale's values for the CPU kernels; none on a GPU, where candle's norm runs.
    host_weight: Option<Arc<[f32]>>,
    eps: f32,
}

impl RmsNorm {
    /// Loads the norm weight `name`.
    pub fn load(gguf: &GgufFile, name: &str, len: usize, eps: f32, device: &Device) -> Result<Self> {
        Self::new(load_vector(gguf, name, len, device)?, eps)
    }

    /// The norm with scale `weight`, a vector on the device the inputs will be on.
    pub fn new(weight: Tensor, eps: f32) -> Result<Self> {
        let host_weight = if weight.device().is_cpu() { Some(weight.to_vec1::<f32>()?.into()) } else { None };
        Ok(Self { weight, host_weight, eps })
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        if self.on_host(&x) {
            return Ok(x.apply_op1_no_bwd(self)?);
        }
        Ok(candle_nn::ops::rms_norm(&x, &self.weight, self.eps)?)
    }

    /// `(x + delta, norm(x + delta))`: a residual add and the norm after it, in one pass on the
    /// CPU.
    pub fn add_forward(&self, x: &Tensor, delta: &Tensor) -> Result<(Tensor, Tensor)> {
        let (Some(weight), true) = (&self.host_weight, self.on_host(x) && self.on_host(delta)) else {
            let sum = (x + delta)?;
            let normed = self.forward(&sum)?;
            return Ok((sum, normed));
        };
        if x.shape() != delta.shape() {
            return Err(EngineError::Candle(candle_core::Error::Msg(format!(
                "residual add: {:?} and {:?} differ in shape",
                x.shape(),
                delta.shape()
            ))));
        }
        let (x, delta) = (x.contiguous()?, delta.contiguous()?);
        let (mut sum, mut normed) = (vec![0f32; x.elem_count()], vec![0f32; x.elem_count()]);
        {
            let (x_storage, x_layout) = x.storage_and_layout();
            let (d_storage, d_layout) = delta.storage_and_layout();
            let xs = host_f32("residual add", &x_storage, x_layout)?;
            let ds = host_f32("residual add", &d_storage, d_layout)?;
            hearth_kernels::add_rms_norm(xs, ds, weight, self.eps, &mut sum, &mut normed)?;
        }
        Ok((Tensor::from_vec(sum, x.shape(), x.device())?, Tensor::from_vec(normed, x.shape(), x.device())?))
    }

    /// Whether the CPU kernels take `x`.
    fn on_host(&self, x: &Tensor) -> bool {
        self.host_weight.is_some() && x.device().is_cpu() && x.dtype() == DType::F32
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "hearth-rms-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some(weight) = &self.host_weight else {
            return Err(candle_core::Error::Msg(format!("{}: the scale is not in host memory", self.name())));
        };
        let x = contiguous_f32(self.name(), storage, layout)?;
        let mut out = vec![0f32; x.len()];
        hearth_kernels::rms_norm(x, weight, self.eps, &mut out)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", self.name())))?;
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        let (a, b) =
            (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 4.0 * f32::EPSILON * x.abs().max(1.0))
    }

    #[test]
    fn add_forward_is_candles_add_then_norm() {
        let cpu = Device::Cpu;
        let norm = RmsNorm::new(Tensor::from_vec(values(576, 1), 576, &cpu).unwrap(), 1e-5).unwrap();
        let x = Tensor::from_vec(values(3 * 576, 2), (3, 576), &cpu).unwrap();
        let d = Tensor::from_vec(values(3 * 576, 3), (3, 576), &cpu).unwrap();
        let (sum, normed) = norm.add_forward(&x, &d).unwrap();
        let want_sum = (&x + &d).unwrap();
        assert_eq!(sum.to_vec2::<f32>().unwrap(), want_sum.to_vec2::<f32>().unwrap());
        let want = candle_nn::ops::rms_norm(&want_sum, &norm.weight, 1e-5).unwrap();
        assert!(close(&normed, &want));
        assert_eq!(normed.dims(), &[3, 576]);
    }

    #[test]
    fn forward_norms_each_head_of_a_three_dimensional_input() {
        let cpu = Device::Cpu;
        let norm = RmsNorm::new(Tensor::from_vec(values(64, 4), 64, &cpu).unwrap(), 1e-6).unwrap();
        // A strided view, as a reshaped projection can be.
        let x = Tensor::from_vec(values(2 * 4 * 64, 5), (2, 64, 4), &cpu).unwrap().transpose(1, 2).unwrap();
        let got = norm.forward(&x).unwrap();
        let want = candle_nn::ops::rms_norm(&x.contiguous().unwrap(), &norm.weight, 1e-6).unwrap();
        assert_eq!(got.dims(), &[2, 4, 64]);
        assert!(close(&got, &want));
    }

    #[test]
    fn mismatched_residual_shapes_are_an_error() {
        let cpu = Device::Cpu;
        let norm = RmsNorm::new(Tensor::ones(8, DType::F32, &cpu).unwrap(), 1e-6).unwrap();
        let x = Tensor::ones((2, 8), DType::F32, &cpu).unwrap();
        let d = Tensor::ones((1, 8), DType::F32, &cpu).unwrap();
        let err = norm.add_forward(&x, &d).unwrap_err().to_string();
        assert!(err.contains("differ in shape"), "{err}");
        let short = Tensor::ones((2, 6), DType::F32, &cpu).unwrap();
        assert!(norm.forward(&short).is_err());
    }
}
