//! One layer's attention of a forward pass on a CUDA device: rotary embedding, KV block writes and
//! paged attention over the pool's device arena, with no copy to the host.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::cuda_backend::{CudaDevice, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{Layout, Storage, Tensor};

use super::attention::{PagedRows, kv_write, paged_attention, rope};
use crate::error::{EngineError, Result};
use crate::kv::KvError;
use crate::kv::store::{BlockId, BlockStore};
use crate::model::layers::Rotary;

/// What a pass uploads once and every layer reuses: each layer group's rows, and the rotary
/// frequencies of each base in use.
#[derive(Debug, Default)]
pub(crate) struct DeviceStepState {
    rows: Vec<Option<PagedRows>>,
    inv_freq: Vec<(Vec<f32>, CudaSlice<f32>)>,
}

/// Layer `il`'s attention for the `n_rows` rows of one pass. `group_rows` gives the layer's group's
/// block tables of the pass's sequences and each row's `(sequence, position)`; it is called only
/// for the first layer of each group, whose upload the others reuse.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention<'t>(
    state: &mut DeviceStepState,
    store: &mut BlockStore,
    il: usize,
    n_rows: usize,
    group_rows: impl FnOnce(usize) -> (Vec<&'t [Option<BlockId>]>, Vec<(usize, usize)>),
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    rotary: &Rotary,
    scale: f32,
) -> Result<Tensor> {
    let layout = store.layout();
    let ((g, _), n_groups, hd, n_kv_head) =
        (layout.slot_of(il), layout.groups.len(), layout.head_dim, layout.n_kv_head);
    let n_head = q.dim(1)? / hd;
    let blocks = store.device_blocks().ok_or(KvError::Device(
        "the model is on a CUDA device and its KV pool in host memory (make the pool with Model::new_kv_pool)".into(),
    ))?;
    let device = blocks.device().clone();
    let f = upload_inv_freq(state, &device, rotary)?;
    let inv_freq = &state.inv_freq[f].1;
    if state.rows.len() < n_groups {
        state.rows.resize_with(n_groups, || None);
    }
    let paged = match &mut state.rows[g] {
        Some(paged) => paged,
        slot @ None => {
            let (tables, rows) = group_rows(g);
            slot.insert(PagedRows::upload(blocks, &tables, &rows)?)
        }
    };
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let q_rot = rope(&device, &view(&qs, ql)?, n_head, paged, inv_freq, rotary.style())?;
    let k_rot = rope(&device, &view(&ks, kl)?, n_kv_head, paged, inv_freq, rotary.style())?;
    kv_write(blocks, il, &k_rot.slice(..), &view(&vs, vl)?, paged)?;
    let out = paged_attention(blocks, il, &q_rot.slice(..), n_head, paged, scale)?;
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(out, device));
    Ok(Tensor::from_storage(storage, (n_rows, n_head * hd), BackpropOp::none(), false))
}

/// Where `rotary`'s frequencies are in `state.inv_freq`, uploaded on first use in the pass.
fn upload_inv_freq(state: &mut DeviceStepState, device: &CudaDevice, rotary: &Rotary) -> Result<usize> {
    let freqs = rotary.inv_freq();
    if let Some(i) = state.inv_freq.iter().position(|(f, _)| f.as_slice() == freqs) {
        return Ok(i);
    }
    state.inv_freq.push((freqs.to_vec(), device.clone_htod(freqs)?));
    Ok(state.inv_freq.len() - 1)
}

/// A contiguous f32 tensor's values on the device.
fn view<'a>(storage: &'a Storage, layout: &Layout) -> Result<CudaView<'a, f32>> {
    let Storage::Cuda(s) = storage else {
        return Err(EngineError::UnsupportedDevice {
            device: format!("{:?}", storage.device()),
            missing: "attention over a device KV pool takes activations on the same CUDA device",
        });
    };
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("attention input is not contiguous".into()))?;
    Ok(s.as_cuda_slice::<f32>()?.slice(start..end))
}
