//! Saving a sequence's keys and values to a file and loading them back, so a restarted process
//! resumes a conversation or a long system prompt without prefilling it again.
//!
//! File layout (little-endian): the magic `HEARTHKV`, the format version, the model fingerprint,
//! the block layout, the token ids, then per layer group and per block a presence byte and, for
//! present blocks, the block's f16 keys and values exactly as the pool stores them. A file whose
//! version, model or layout differs from the loader's is refused before any block is read.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use half::f16;
use sha2::{Digest, Sha256};

use crate::gguf::GgufFile;
use crate::kv::error::KvError;
use crate::kv::layout::KvLayout;
use crate::kv::pool::KvPool;
use crate::kv::sequence::KvCache;
use crate::kv::store::BlockId;

/// The version of the KV file format this build writes and reads.
pub const KV_FILE_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"HEARTHKV";
/// Bytes of a tensor's data hashed at each end by [`ModelFingerprint::of_gguf`].
const SAMPLE_BYTES: usize = 4096;

/// What identifies the weights a KV file was computed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFingerprint(String);

impl ModelFingerprint {
    /// The fingerprint of a model file whose sha256 is known (the hub verifies it on download).
    pub fn from_sha256(hex: &str) -> Self {
        Self(format!("sha256:{}", hex.to_ascii_lowercase()))
    }

    /// A fingerprint computed from `gguf` in milliseconds rather than hashing the whole file:
    /// sha256 of the file length, all metadata, the tensor index, and the first and last
    /// [`SAMPLE_BYTES`] of every tensor's data. Two files differing only in the middle of a
    /// tensor's data would collide; any re-quantization, fine-tune or conversion changes the
    /// sampled bytes or the metadata.
    pub fn of_gguf(gguf: &GgufFile) -> crate::Result<Self> {
        let mut h = Sha256::new();
        h.update((gguf.file_len() as u64).to_le_bytes());
        for (key, value) in gguf.metadata() {
            h.update(key.as_bytes());
            h.update(format!("{value:?}").as_bytes());
        }
        for (name, info) in gguf.tensors() {
            h.update(
                format!("{name}:{:?}:{:?}:{}:{}", info.dims, info.ggml_type, info.offset, info.n_bytes).as_bytes(),
            );
            let bytes = gguf.tensor_bytes(name)?;
            let data = bytes.bytes();
            h.update(&data[..data.len().min(SAMPLE_BYTES)]);
            h.update(&data[data.len().saturating_sub(SAMPLE_BYTES)..]);
        }
        Ok(Self(format!("gguf-sampled-sha256:{}", hex(&h.finalize()))))
    }

    /// The fingerprint as written in files.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl KvCache {
    /// Writes this sequence's tokens and keys and values to `path` (through a temporary file
    /// renamed into place, so a crash never leaves a half-written file under that name).
    pub fn save(&self, path: &Path, model: &ModelFingerprint) -> Result<(), KvError> {
        let io = |source| KvError::Io { path: path.to_path_buf(), source };
        let tmp = path.with_extension("partial");
        let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
        let layout = self.pool().layout();
        write_header(&mut w, layout, model, self.tokens()).map_err(io)?;
        let state = self.pool().lock();
        let n_blocks = layout.blocks_for(self.len());
        let mut bytes = Vec::new();
        for table in self.tables() {
            for i in 0..n_blocks {
                match table.get(i).copied().flatten() {
                    None => w.write_all(&[0]).map_err(io)?,
                    Some(id) => {
                        w.write_all(&[1]).map_err(io)?;
                        bytes.clear();
                        let block = state.store.read_block(id)?;
                        bytes.extend(block.iter().flat_map(|x| x.to_bits().to_le_bytes()));
                        w.write_all(&bytes).map_err(io)?;
                    }
                }
            }
        }
        drop(state);
        w.flush().map_err(io)?;
        w.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

impl KvPool {
    /// Loads a sequence saved by [`KvCache::save`] into this pool, and caches its whole blocks
    /// in the prefix tree so that new sequences starting with the same tokens reuse them.
    pub fn load_sequence(&self, path: &Path, model: &ModelFingerprint) -> Result<KvCache, KvError> {
        let io = |source| KvError::Io { path: path.to_path_buf(), source };
        let corrupt = |reason: String| KvError::Corrupt { path: path.to_path_buf(), reason };
        let mut r = BufReader::new(File::open(path).map_err(io)?);
        let layout = self.layout();
        let tokens = read_header(&mut r, path, layout, model)?;
        let mut cache = self.new_sequence();
        let n_blocks = layout.blocks_for(tokens.len());
        let mut tables: Vec<Vec<Option<BlockId>>> = Vec::with_capacity(layout.groups.len());
        let mut bytes = Vec::new();
        let mut state = self.lock();
        for g in 0..layout.groups.len() {
            let mut table: Vec<Option<BlockId>> = Vec::with_capacity(n_blocks);
            for _ in 0..n_blocks {
                let mut flag = [0u8];
                r.read_exact(&mut flag).map_err(io)?;
                let block = match flag[0] {
                    0 => None,
                    1 => {
                        bytes.resize(layout.block_bytes(g), 0);
                        r.read_exact(&mut bytes).map_err(io)?;
                        let id = match state.allocate(g) {
                            Ok(id) => id,
                            Err(e) => {
                                table.iter().flatten().for_each(|&b| state.store.release(b));
                                tables.iter().flatten().flatten().for_each(|&b| state.store.release(b));
                                return Err(e);
                            }
                        };
                        let values: Vec<f16> =
                            bytes.chunks_exact(2).map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]]))).collect();
                        if let Err(e) = state.store.write_block(id, &values) {
                            state.store.release(id);
                            table.iter().flatten().for_each(|&b| state.store.release(b));
                            tables.iter().flatten().flatten().for_each(|&b| state.store.release(b));
                            return Err(e);
                        }
                        Some(id)
                    }
                    other => {
                        table.iter().flatten().for_each(|&b| state.store.release(b));
                        tables.iter().flatten().flatten().for_each(|&b| state.store.release(b));
                        return Err(corrupt(format!("block flag {other}")));
                    }
                };
                table.push(block);
            }
            tables.push(table);
        }
        drop(state);
        cache.restore(tables, tokens);
        Ok(cache)
    }
}

fn write_header(
    w: &mut impl Write,
    layout: &KvLayout,
    model: &ModelFingerprint,
    tokens: &[u32],
) -> std::io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&KV_FILE_VERSION.to_le_bytes())?;
    write_bytes(w, model.as_str().as_bytes())?;
    write_bytes(w, describe(layout).as_bytes())?;
    w.write_all(&(tokens.len() as u64).to_le_bytes())?;
    for t in tokens {
        w.write_all(&t.to_le_bytes())?;
    }
    Ok(())
}

fn read_header(
    r: &mut impl Read,
    path: &Path,
    layout: &KvLayout,
    model: &ModelFingerprint,
) -> Result<Vec<u32>, KvError> {
    let path_buf = || -> PathBuf { path.to_path_buf() };
    let io = |source| KvError::Io { path: path_buf(), source };
    let mut magic = [0u8; 8];
    if r.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Err(KvError::NotAKvFile { path: path_buf() });
    }
    let version = read_u32(r).map_err(io)?;
    if version != KV_FILE_VERSION {
        return Err(KvError::FormatVersion { path: path_buf(), found: version, supported: KV_FILE_VERSION });
    }
    let file_model = String::from_utf8_lossy(&read_bytes(r, path)?).into_owned();
    if file_model != model.as_str() {
        return Err(KvError::ModelMismatch { path: path_buf(), file: file_model, model: model.as_str().to_string() });
    }
    let file_layout = String::from_utf8_lossy(&read_bytes(r, path)?).into_owned();
    let ours = describe(layout);
    if file_layout != ours {
        return Err(KvError::LayoutMismatch { pool: ours, model: format!("{file_layout} (in {})", path.display()) });
    }
    let n = read_u64(r).map_err(io)?;
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(read_u32(r).map_err(io)?);
    }
    Ok(tokens)
}

/// The layout as text: compared verbatim when loading.
fn describe(layout: &KvLayout) -> String {
    let groups: Vec<String> = layout.groups.iter().map(|g| format!("{:?}/{:?}", g.layers, g.window)).collect();
    format!(
        "f16 keys-transposed layers={} kv_heads={} head_dim={} block={} groups={}",
        layout.n_layer,
        layout.n_kv_head,
        layout.head_dim,
        layout.block_size,
        groups.join(";")
    )
}

fn write_bytes(w: &mut impl Write, b: &[u8]) -> std::io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

/// A length-prefixed string field; a length past what any header holds means a damaged file.
fn read_bytes(r: &mut impl Read, path: &Path) -> Result<Vec<u8>, KvError> {
    let n = read_u32(r).map_err(|source| KvError::Io { path: path.to_path_buf(), source })? as usize;
    if n > 1 << 16 {
        return Err(KvError::Corrupt { path: path.to_path_buf(), reason: format!("header field of {n} bytes") });
    }
    let mut b = vec![0u8; n];
    r.read_exact(&mut b).map_err(|source| KvError::Io { path: path.to_path_buf(), source })?;
    Ok(b)
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}
