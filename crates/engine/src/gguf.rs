//! GGUF files: metadata, tensor index and tensor bytes, read in place from a memory map.
//!
//! The whole file is mapped once; tensors are byte ranges into that map, so quantized weights
//! are never copied into a second heap buffer on the CPU.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_kernels::GgmlType;
use memmap2::Mmap;

const GGUF_MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Guards against absurd counts in a corrupt header before anything is allocated for them.
const MAX_COUNT: u64 = 1 << 24;

/// Errors reading a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot open model file {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a GGUF file (magic bytes are {found:?}, expected \"GGUF\")")]
    BadMagic { path: PathBuf, found: [u8; 4] },
    #[error("{path}: GGUF version {version} is not supported (versions 2 and 3 are)")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("{path} is truncated or corrupt: {what} at byte {offset} runs past the end of the file ({len} bytes)")]
    Truncated { path: PathBuf, what: String, offset: u64, len: u64 },
    #[error("{path} is corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path}: tensor {tensor} has unsupported type id {type_id}")]
    UnsupportedTensorType { path: PathBuf, tensor: String, type_id: u32 },
    #[error("GGUF metadata key {0} is missing")]
    MissingKey(String),
    #[error("GGUF metadata key {key} has type {found}, expected {expected}")]
    WrongType { key: String, expected: &'static str, found: &'static str },
    #[error("tensor {0} is missing from the model file")]
    MissingTensor(String),
}

type Result<T> = std::result::Result<T, GgufError>;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
        }
    }

    /// The value as an unsigned integer, for any non-negative integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, for any numeric type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
}

/// Where one tensor lives in the file.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the contiguous (row) length.
    pub dims: Vec<usize>,
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the file.
    pub offset: usize,
    pub n_bytes: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A mapped GGUF file.
pub struct GgufFile {
    path: PathBuf,
    mmap: Arc<Mmap>,
    version: u32,
    metadata: BTreeMap<String, Value>,
    tensors: BTreeMap<String, TensorInfo>,
    /// Where the weights repacked from this file go, next to each other on huge pages.
    pack_arena: hearth_kernels::PackArena,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Bytes of one tensor, borrowed from the file's map and kept alive by it.
#[derive(Clone)]
pub struct TensorBytes {
    mmap: Arc<Mmap>,
    offset: usize,
    len: usize,
}

impl TensorBytes {
    /// The raw bytes, exactly as stored in the file.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap[self.offset..self.offset + self.len]
    }

    /// Drops these bytes' pages from the process's resident set, for tensors that were copied
    /// (repacked) and will not be read here again; a later read maps them back from the file.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        {
            // SAFETY: the map is a read-only shared file mapping, so MADV_DONTNEED cannot change
            // what any reader sees: a page dropped here is faulted back in, unchanged, from the
            // page cache or the file on its next read. A failure only leaves the pages resident.
            let _ =
                unsafe { self.mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, self.offset, self.len) };
        }
    }
}

impl std::fmt::Debug for TensorBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorBytes({} bytes at {})", self.len, self.offset)
    }
}

impl GgufFile {
    /// Maps and indexes a GGUF file; tensor data is not read until used.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| GgufError::Open { path: path.clone(), source })?;
        // SAFETY: the map is read-only; a model file changed underneath a running process is
        // outside what any inference engine can defend against (llama.cpp maps the same way).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|source| GgufError::Open { path: path.clone(), source })?;
        Self::parse(path, Arc::new(mmap))
    }

    fn parse(path: PathBuf, mmap: Arc<Mmap>) -> Result<Self> {
        let mut r = Reader { data: &mmap, pos: 0, path: &path };
        let magic: [u8; 4] = r.take(4, "magic")?.try_into().unwrap_or([0; 4]);
        if &magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic { path: path.clone(), found: magic });
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion { path: path.clone(), version });
        }
        let n_tensors = r.count("tensor count")?;
        let n_kv = r.count("metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string("metadata key")?;
            let ty = r.u32("metadata type")?;
            let value = r.value(ty, &key, 0)?;
            metadata.insert(key, value);
        }
        let mut infos = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = r.string("tensor name")?;
            let n_dims = r.u32("tensor rank")?;
            if n_dims > 4 {
                return Err(r.corrupt(format!("tensor {name} has {n_dims} dimensions (at most 4)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = r.u64("tensor dimension")?;
                dims.push(usize::try_from(d).map_err(|_| r.corrupt(format!("tensor {name} dimension {d}")))?);
            }
            let type_id = r.u32("tensor type")?;
            let offset = r.u64("tensor offset")?;
            infos.push((name, dims, type_id, offset));
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(r.corrupt(format!("general.alignment is {v:?}"))),
            },
        };
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
        let file_len = mmap.len() as u64;
        let mut tensors = BTreeMap::new();
        for (name, dims, type_id, offset) in infos {
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnsupportedTensorType {
                path: path.clone(),
                tensor: name.clone(),
                type_id,
            })?;
            let elems = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            let n_bytes = elems
                .filter(|_| dims.first().is_none_or(|&d0| d0 % ggml_type.block_size() == 0))
                .and_then(|n| ggml_type.bytes_for(n))
                .ok_or_else(|| GgufError::Corrupt {
                    path: path.clone(),
                    what: format!("tensor {name} has shape {dims:?}, which does not fit {ggml_type} blocks"),
                })?;
            let start = data_start.checked_add(offset);
            let end = start.and_then(|s| s.checked_add(n_bytes as u64));
            match (start, end) {
                (Some(s), Some(e)) if e <= file_len => {
                    let info = TensorInfo { name: name.clone(), dims, ggml_type, offset: s as usize, n_bytes };
                    tensors.insert(name, info);
                }
                _ => {
                    return Err(GgufError::Truncated {
                        path: path.clone(),
                        what: format!("data of tensor {name}"),
                        offset: start.unwrap_or(u64::MAX),
                        len: file_len,
                    });
                }
            }
        }
        Ok(Self { path, mmap, version, metadata, tensors, pack_arena: hearth_kernels::PackArena::new() })
    }

    /// Where the weights repacked from this file are placed (`hearth_kernels::pack_in`).
    pub fn pack_arena(&self) -> &hearth_kernels::PackArena {
        &self.pack_arena
    }

    /// Path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> usize {
        self.mmap.len()
    }

    /// All metadata, by key.
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    /// All tensors, by name.
    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.tensors
    }

    /// A metadata value, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A required metadata value.
    pub fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    /// A required unsigned integer.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64().ok_or(GgufError::WrongType { key: key.into(), expected: "unsigned integer", found: v.type_name() })
    }

    /// An optional unsigned integer (present but mistyped is still an error).
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.get_u64(key).map(Some)
    }

    /// A required float.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or(GgufError::WrongType { key: key.into(), expected: "number", found: v.type_name() })
    }

    /// An optional float.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.get_f64(key).map(Some)
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(GgufError::WrongType { key: key.into(), expected: "bool", found: v.type_name() }),
        }
    }

    /// A required string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            v => Err(GgufError::WrongType { key: key.into(), expected: "string", found: v.type_name() }),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.get_str(key).map(Some)
    }

    /// A required array.
    pub fn get_array(&self, key: &str) -> Result<&[Value]> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            v => Err(GgufError::WrongType { key: key.into(), expected: "array", found: v.type_name() }),
        }
    }

    /// Index entry of a tensor.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors.get(name).ok_or_else(|| GgufError::MissingTensor(name.to_string()))
    }

    /// The in-place bytes of a tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<TensorBytes> {
        let info = self.tensor_info(name)?;
        Ok(TensorBytes { mmap: Arc::clone(&self.mmap), offset: info.offset, len: info.n_bytes })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                offset: self.pos as u64,
                len: self.data.len() as u64,
            }),
        }
    }

    fn corrupt(&self, what: String) -> GgufError {
        GgufError::Corrupt { path: self.path.to_path_buf(), what }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn count(&mut self, what: &str) -> Result<u64> {
        let n = self.u64(what)?;
        if n > MAX_COUNT {
            return Err(self.corrupt(format!("{what} is {n}")));
        }
        Ok(n)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        let len = usize::try_from(len).map_err(|_| self.corrupt(format!("{what} length {len}")))?;
        let bytes = self.take(len, what)?;
        // Some converters write token pieces that are not valid UTF-8; keep them lossily
        // rather than refusing the whole model.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => Value::Bool(self.array::<1>(key)?[0] != 0),
            8 => Value::String(self.string(key)?),
            9 => {
                if depth > 2 {
                    return Err(self.corrupt(format!("metadata {key} nests arrays too deeply")));
                }
                let elem_ty = self.u32(key)?;
                let n = self.count(key)?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem_ty, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => return Err(self.corrupt(format!("metadata {key} has unknown value type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests;
