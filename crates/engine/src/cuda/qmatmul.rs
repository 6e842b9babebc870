//! `y = x · Wᵀ` on the device for a quantized weight matrix uploaded once, at load.

use std::sync::Arc;

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, WrapErr};
use candle_core::{Layout, Shape};
use hearth_kernels::GgmlType;
use hearth_kernels::cuda::{QMATMUL_PTX, qmatmul_geometry, qmatmul_kernel};

use super::{QMATMUL_MODULE, int_arg, kernel_error, launch_config};

/// A weight matrix's GGUF bytes in device memory, shared by clones of its layer.
#[derive(Debug, Clone)]
pub(crate) struct DeviceWeights {
    bytes: Arc<CudaSlice<u8>>,
}

impl DeviceWeights {
    /// Copies `bytes` (whole rows of the weight matrix) to `device`.
    pub(crate) fn upload(device: &CudaDevice, bytes: &[u8]) -> candle_core::Result<Self> {
        Ok(Self { bytes: Arc::new(device.clone_htod(bytes)?) })
    }
}

/// `x` `(.., k)` f32 times the `n × k` weights of type `ty`: `(.., n)` f32.
pub(crate) fn qmatmul(
    weights: &DeviceWeights,
    ty: GgmlType,
    n: usize,
    k: usize,
    x: &CudaStorage,
    layout: &Layout,
    name: &str,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{name}: input is not contiguous")))?;
    let dims = layout.shape().dims();
    let features = dims.last().copied().unwrap_or(0);
    if features != k {
        return Err(candle_core::Error::Msg(format!("{name}: input has {features} features, the weight expects {k}")));
    }
    let m = (end - start) / k;
    let geometry = qmatmul_geometry(ty, n, k, m).map_err(|e| kernel_error(name, e))?;
    let kernel =
        qmatmul_kernel(ty).ok_or_else(|| candle_core::Error::Msg(format!("{name}: no CUDA kernel for {ty}")))?;
    let device = &x.device;
    let func = device.get_or_load_custom_func(kernel, QMATMUL_MODULE, QMATMUL_PTX)?;
    let x = x.as_cuda_slice::<f32>()?.slice(start..end);
    let mut y = device.alloc_zeros::<f32>(m * n)?;
    let (n_arg, k_arg, m_arg) = (int_arg("rows", n)?, int_arg("row length", k)?, int_arg("activation rows", m)?);
    let mut launch = func.builder();
    launch.arg(weights.bytes.as_ref());
    launch.arg(&x);
    launch.arg(&mut y);
    launch.arg(&n_arg);
    launch.arg(&k_arg);
    launch.arg(&m_arg);
    // SAFETY: the arguments match the kernel's signature (weights, x, y, n, k, m); the weights
    // hold n rows of k elements of `ty` (checked at load), x holds m rows of k and y m rows of n,
    // and the geometry keeps every thread within those rows.
    unsafe { launch.launch(launch_config(geometry)) }.w()?;
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = n;
    }
    Ok((CudaStorage::wrap_cuda_slice(y, device.clone()), Shape::from(out_dims)))
}
