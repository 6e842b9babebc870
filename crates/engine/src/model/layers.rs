//! Building blocks shared by the model files: quantized linear layers over mapped weights,
//! embeddings, the gated feed-forward block, and re-exports of RMS norm (`norm`) and rotary
//! embeddings (attention runs over the paged KV cache, in `kv::attention`).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Shape, Tensor};
use hearth_kernels::GgmlType;

use crate::error::{EngineError, Result};
use crate::gguf::{GgufFile, TensorBytes};
use crate::model::candle_matmul::{self, CandleMatMul};
pub use crate::model::norm::RmsNorm;
pub use crate::model::rotary::{Rotary, RotaryTable};

/// A weight matrix of `n_out` rows of `k_in` elements, read in place from the GGUF map.
#[derive(Debug, Clone)]
pub struct QLinear {
    op: QMatMul,
    bias: Option<Tensor>,
}

/// Where the CPU kernels read a matrix's weights from.
#[derive(Debug, Clone)]
enum CpuWeights {
    /// Repacked for this CPU's packed kernels (`hearth_kernels::pack_in`).
    Packed(Arc<hearth_kernels::PackedWeights>),
    /// The file's bytes copied to huge pages, for the row-major kernels: streamed from the page
    /// cache's 4 KiB pages they decoded Qwen2.5-Coder-1.5B's Q6_K matrices (AVX2) a seventh slower.
    Copied(Arc<hearth_kernels::ArenaBytes>),
    /// The mapped file, where the system has no huge pages to copy them to, or the weights live
    /// on a device.
    Mapped,
}

#[derive(Debug, Clone)]
struct QMatMul {
    bytes: TensorBytes,
    ggml_type: GgmlType,
    n_out: usize,
    k_in: usize,
    name: String,
    /// The weights the CPU kernels read; then the mapped bytes are not read again.
    cpu: CpuWeights,
    /// The weights held by candle on a device without hearth kernels (Metal), or on the CPU
    /// with `HEARTH_MATMUL=candle`.
    candle: Option<CandleMatMul>,
    /// The same bytes in device memory, for a layer loaded on a CUDA device.
    #[cfg(feature = "cuda")]
    device_weights: Option<crate::cuda::DeviceWeights>,
}

impl QMatMul {
    /// The matmul of `bytes`, with its weights uploaded when `device` is a GPU, else repacked
    /// or copied into `arena`.
    fn new(
        bytes: TensorBytes,
        ggml_type: GgmlType,
        n_out: usize,
        k_in: usize,
        name: String,
        arena: &hearth_kernels::PackArena,
        device: &Device,
    ) -> Result<Self> {
        let through_candle = match device {
            Device::Cpu => candle_matmul::requested_on_cpu()?,
            #[cfg(feature = "cuda")]
            Device::Cuda(cuda) => {
                let device_weights = Some(crate::cuda::DeviceWeights::upload(cuda, bytes.bytes())?);
                bytes.release_pages();
                let cpu = CpuWeights::Mapped;
                return Ok(Self { bytes, ggml_type, n_out, k_in, name, cpu, candle: None, device_weights });
            }
            _ => true,
        };
        let (cpu, candle) = if through_candle {
            (CpuWeights::Mapped, Some(CandleMatMul::upload(bytes.bytes(), ggml_type, n_out, k_in, &name, device)?))
        } else if let Some(packed) = hearth_kernels::pack_in(arena, ggml_type, bytes.bytes(), n_out, k_in)? {
            (CpuWeights::Packed(Arc::new(packed)), None)
        } else if hearth_kernels::PackArena::HUGE_PAGES {
            (CpuWeights::Copied(Arc::new(arena.copy(bytes.bytes())?)), None)
        } else {
            (CpuWeights::Mapped, None)
        };
        if !matches!(cpu, CpuWeights::Mapped) || !device.is_cpu() {
            // The copy or the device's own is read from now on, not the mapped bytes.
            bytes.release_pages();
        }
        Ok(Self {
            bytes,
            ggml_type,
            n_out,
            k_in,
            name,
            cpu,
            candle,
            #[cfg(feature = "cuda")]
            device_weights: None,
        })
    }

    /// For an input of shape `dims` (features last): its rows, and the output's shape. Fails
    /// when the features are not the weight's.
    fn shapes(&self, dims: &[usize]) -> candle_core::Result<(usize, Vec<usize>)> {
        let k = dims.last().copied().unwrap_or(0);
        if k != self.k_in {
            return Err(candle_core::Error::Msg(format!(
                "{}: input has {k} features, the weight expects {}",
                self.name, self.k_in
            )));
        }
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = self.n_out;
        }
        Ok((dims.iter().product::<usize>() / k.max(1), out_dims))
    }
}

impl QLinear {
    /// Loads `name` (and `name` with `.weight` swapped for `.bias` when `with_bias`).
    pub fn load(
        gguf: &GgufFile,
        name: &str,
        k_in: usize,
        n_out: usize,
        with_bias: bool,
        device: &Device,
    ) -> Result<Self> {
        let info = gguf.tensor_info(name)?;
        if info.dims.len() != 2 || info.dims[0] != k_in || info.dims[1] != n_out {
            return Err(EngineError::InvalidModel(format!(
                "tensor {name} has shape {:?}, expected [{k_in}, {n_out}]",
                info.dims
            )));
        }
        let bytes = gguf.tensor_bytes(name)?;
        let op = QMatMul::new(bytes, info.ggml_type, n_out, k_in, name.to_string(), gguf.pack_arena(), device)?;
        let bias = if with_bias {
            let bias_name = name.strip_suffix(".weight").map(|s| format!("{s}.bias")).unwrap_or_default();
            Some(load_vector(gguf, &bias_name, n_out, device)?)
        } else {
            None
        };
        Ok(Self { op, bias })
    }

    /// Output features.
    pub fn n_out(&self) -> usize {
        self.op.n_out
    }

    /// The storage type of the weights.
    pub fn ggml_type(&self) -> GgmlType {
        self.op.ggml_type
    }

    /// `x · Wᵀ (+ b)` over the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        let y = match &self.op.candle {
            Some(candle) => candle.forward(&x)?,
            None => x.apply_op1_no_bwd(&self.op)?,
        };
        self.add_bias(y)
    }

    /// `y (+ b)`.
    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// `x · Wᵢᵀ (+ bᵢ)` for layers that take the same input `x`, such as an attention block's q, k
/// and v. On the CPU with every weight packed this is one product
/// (`PackedWeights::matmul_many`): `x` is quantized once and no thread waits between matrices.
pub fn forward_many<const N: usize>(layers: [&QLinear; N], x: &Tensor) -> Result<[Tensor; N]> {
    let packed: Option<Vec<&hearth_kernels::PackedWeights>> = layers
        .iter()
        .map(|l| match &l.op.cpu {
            CpuWeights::Packed(p) => Some(&**p),
            _ => None,
        })
        .collect();
    let (Some(packed), true) = (packed, x.device().is_cpu()) else {
        return array_of(layers.iter().map(|l| l.forward(x)).collect::<Result<Vec<_>>>()?);
    };
    let x = x.contiguous()?;
    let shapes = layers.iter().map(|l| l.op.shapes(x.dims())).collect::<candle_core::Result<Vec<_>>>()?;
    let m = shapes.first().map_or(0, |(m, _)| *m);
    let mut ys: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; m * l.n_out()]).collect();
    {
        let (storage, layout) = x.storage_and_layout();
        let xs = host_f32("forward_many", &storage, layout)?;
        let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(Vec::as_mut_slice).collect();
        hearth_kernels::PackedWeights::matmul_many(&packed, xs, m, &mut outs)?;
    }
    let outputs = ys
        .into_iter()
        .zip(shapes)
        .zip(layers)
        .map(|((y, (_, out_dims)), l)| l.add_bias(Tensor::from_vec(y, out_dims, x.device())?))
        .collect::<Result<Vec<_>>>()?;
    array_of(outputs)
}

/// The `N` tensors of `v`, which has exactly that many.
fn array_of<const N: usize>(v: Vec<Tensor>) -> Result<[Tensor; N]> {
    let len = v.len();
    v.try_into().map_err(|_| EngineError::Candle(candle_core::Error::Msg(format!("expected {N} outputs, got {len}"))))
}

impl CustomOp1 for QMatMul {
    fn name(&self) -> &'static str {
        "hearth-qmatmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(&self.name, storage, layout)?;
        let (m, out_dims) = self.shapes(layout.shape().dims())?;
        let mut y = vec![0f32; m * self.n_out];
        let rows = |w: &[u8], y: &mut [f32]| hearth_kernels::matmul(self.ggml_type, w, self.n_out, self.k_in, x, m, y);
        match &self.cpu {
            CpuWeights::Packed(packed) => packed.matmul(x, m, &mut y),
            CpuWeights::Copied(copy) => rows(copy.as_slice(), &mut y),
            CpuWeights::Mapped => rows(self.bytes.bytes(), &mut y),
        }
        .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", self.name)))?;
        Ok((CpuStorage::F32(y), Shape::from(out_dims)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let weights = self.device_weights.as_ref().ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "{}: the weights were loaded for the CPU, the input is on a GPU",
                self.name
            ))
        })?;
        crate::cuda::qmatmul(weights, self.ggml_type, self.n_out, self.k_in, storage, layout, &self.name)
    }
}

/// Token embeddings, dequantized row by row from the mapped table.
#[derive(Debug, Clone)]
pub struct Embedding {
    bytes: TensorBytes,
    ggml_type: GgmlType,
    n_embd: usize,
    vocab: usize,
    row_bytes: usize,
}

impl Embedding {
    /// Loads the `[n_embd, vocab]` table `name`.
    pub fn load(gguf: &GgufFile, name: &str, n_embd: usize) -> Result<Self> {
        let info = gguf.tensor_info(name)?;
        if info.dims.len() != 2 || info.dims[0] != n_embd {
            return Err(EngineError::InvalidModel(format!(
                "tensor {name} has shape {:?}, expected [{n_embd}, vocab]",
                info.dims
            )));
        }
        let row_bytes = info.ggml_type.bytes_for(n_embd).ok_or_else(|| {
            EngineError::InvalidModel(format!("{name}: rows of {n_embd} do not fit {} blocks", info.ggml_type))
        })?;
        Ok(Self { bytes: gguf.tensor_bytes(name)?, ggml_type: info.ggml_type, n_embd, vocab: info.dims[1], row_bytes })
    }

    /// Rows of the table.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The `(tokens.len(), n_embd)` embeddings of `tokens`.
    pub fn forward(&self, tokens: &[u32], device: &Device) -> Result<Tensor> {
        let mut out = vec![0f32; tokens.len() * self.n_embd];
        let table = self.bytes.bytes();
        for (row, &t) in out.chunks_exact_mut(self.n_embd).zip(tokens) {
            let id = t as usize;
            if id >= self.vocab {
                return Err(EngineError::TokenOutOfRange { id: t, vocab: self.vocab });
            }
            let src = &table[id * self.row_bytes..(id + 1) * self.row_bytes];
            hearth_kernels::dequantize(self.ggml_type, src, row)?;
        }
        Ok(Tensor::from_vec(out, (tokens.len(), self.n_embd), device)?)
    }

    /// The same table used as the output projection (tied embeddings), on `device`, packed next
    /// to the other weights of `gguf`, the file it came from.
    pub fn as_linear(&self, gguf: &GgufFile, device: &Device) -> Result<QLinear> {
        let name = "token_embd.weight (tied output)".to_string();
        let (bytes, ty) = (self.bytes.clone(), self.ggml_type);
        let op = QMatMul::new(bytes, ty, self.vocab, self.n_embd, name, gguf.pack_arena(), device)?;
        Ok(QLinear { op, bias: None })
    }
}

/// Loads an f32 vector of `len` elements (norm weights, biases).
pub fn load_vector(gguf: &GgufFile, name: &str, len: usize, device: &Device) -> Result<Tensor> {
    let info = gguf.tensor_info(name)?;
    if info.elem_count() != len {
        return Err(EngineError::InvalidModel(format!(
            "tensor {name} has {} elements, expected {len}",
            info.elem_count()
        )));
    }
    let mut v = vec![0f32; len];
    hearth_kernels::dequantize(info.ggml_type, gguf.tensor_bytes(name)?.bytes(), &mut v)?;
    Ok(Tensor::from_vec(v, len, device)?)
}

/// The f32 logits of the last row of `(seq, vocab)`.
pub fn last_row(x: &Tensor) -> Result<Tensor> {
    let seq = x.dim(0)?;
    Ok(x.narrow(0, seq - 1, 1)?)
}

/// Ensures activations are f32, the dtype the CPU kernels compute in.
pub fn ensure_f32(x: &Tensor) -> Result<Tensor> {
    Ok(if x.dtype() == DType::F32 { x.clone() } else { x.to_dtype(DType::F32)? })
}

/// SiLU-gated or GELU-gated feed-forward block.
#[derive(Debug, Clone)]
pub struct GatedFfn {
    pub gate: QLinear,
    pub up: QLinear,
    pub down: QLinear,
    pub activation: Activation,
}

/// The gate activation of a feed-forward block.
#[derive(Debug, Clone, Copy)]
pub enum Activation {
    Silu,
    /// tanh-approximated GELU, as ggml computes it.
    GeluTanh,
}

impl GatedFfn {
    /// Loads `blk.{il}.ffn_{gate,up,down}.weight`.
    pub fn load(
        gguf: &GgufFile,
        il: usize,
        n_embd: usize,
        n_ff: usize,
        activation: Activation,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            gate: QLinear::load(gguf, &format!("blk.{il}.ffn_gate.weight"), n_embd, n_ff, false, device)?,
            up: QLinear::load(gguf, &format!("blk.{il}.ffn_up.weight"), n_embd, n_ff, false, device)?,
            down: QLinear::load(gguf, &format!("blk.{il}.ffn_down.weight"), n_ff, n_embd, false, device)?,
            activation,
        })
    }

    /// `down(act(gate(x)) * up(x))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [gate, up] = forward_many([&self.gate, &self.up], x)?;
        let h = match self.activation {
            _ if gate.device().is_cpu() => gate.apply_op2_no_bwd(&up, &GateMul(self.activation))?,
            Activation::Silu => (candle_nn::ops::silu(&gate)? * up)?,
            Activation::GeluTanh => (gate.gelu()? * up)?,
        };
        self.down.forward(&h)
    }
}

/// The f32 values of a contiguous tensor's storage, which must be in host memory.
pub(crate) fn host_f32<'s>(op: &str, storage: &'s candle_core::Storage, layout: &Layout) -> Result<&'s [f32]> {
    let candle_core::Storage::Cpu(cpu) = storage else {
        return Err(EngineError::Candle(candle_core::Error::Msg(format!("{op}: input left the CPU"))));
    };
    Ok(contiguous_f32(op, cpu, layout)?)
}

/// The f32 values of a contiguous tensor's storage.
pub(crate) fn contiguous_f32<'s>(op: &str, storage: &'s CpuStorage, layout: &Layout) -> candle_core::Result<&'s [f32]> {
    let (start, end) =
        layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{op}: input is not contiguous")))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// `act(gate) * up` in one pass over both (`hearth_kernels::silu_mul` or `gelu_tanh_mul`), on
/// the CPU.
struct GateMul(Activation);

impl CustomOp2 for GateMul {
    fn name(&self) -> &'static str {
        match self.0 {
            Activation::Silu => "hearth-silu-mul",
            Activation::GeluTanh => "hearth-gelu-tanh-mul",
        }
    }

    fn cpu_fwd(
        &self,
        gate: &CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if gate_layout.shape() != up_layout.shape() {
            return Err(candle_core::Error::Msg(format!(
                "{}: gate {:?} and up {:?} differ in shape",
                self.name(),
                gate_layout.shape(),
                up_layout.shape()
            )));
        }
        let mut h = contiguous_f32(self.name(), gate, gate_layout)?.to_vec();
        let up = contiguous_f32(self.name(), up, up_layout)?;
        match self.0 {
            Activation::Silu => hearth_kernels::silu_mul(&mut h, up),
            Activation::GeluTanh => hearth_kernels::gelu_tanh_mul(&mut h, up),
        }
        .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", self.name())))?;
        Ok((CpuStorage::F32(h), gate_layout.shape().clone()))
    }
}
