//! The local model cache: `<root>/models/<id>/<file>`, each file beside a `.verified`
//! sidecar that records the size and mtime at which its sha256 last matched.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::error::HubError;
use crate::manifest::Manifest;

/// Where a model stands in the cache, judged without hashing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// No file.
    Missing,
    /// The file is there and its sidecar says it was verified as it is now.
    Verified,
    /// The file is there but has not been verified as it is now; it is hashed on first use.
    Unverified,
}

/// The directory tree that holds downloaded models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache the environment asks for: `$HEARTH_HOME`, else `$XDG_CACHE_HOME/hearth`,
    /// else `~/.cache/hearth`.
    pub fn from_env() -> Result<Cache, HubError> {
        let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"));
        cache_root_from(std::env::var_os("HEARTH_HOME"), std::env::var_os("XDG_CACHE_HOME"), home)
            .map(Cache::new)
            .ok_or(HubError::NoCacheDir)
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory that holds one model's files.
    pub fn model_dir(&self, manifest: &Manifest) -> PathBuf {
        self.root.join("models").join(&manifest.id)
    }

    /// Where the model's file is, or will be once pulled.
    pub fn model_path(&self, manifest: &Manifest) -> PathBuf {
        self.model_dir(manifest).join(&manifest.file)
    }

    /// The model's state in the cache; reads metadata only, never the file's contents.
    pub fn status(&self, manifest: &Manifest) -> CacheStatus {
        let path = self.model_path(manifest);
        match fs::metadata(&path) {
            Err(_) => CacheStatus::Missing,
            Ok(meta) if !meta.is_file() => CacheStatus::Missing,
            Ok(meta) => match Stamp::of(&meta, &manifest.sha256) {
                Some(stamp) if stamp.size == manifest.size && read_sidecar(&path).as_ref() == Some(&stamp) => {
                    CacheStatus::Verified
                }
                _ => CacheStatus::Unverified,
            },
        }
    }

    /// The model's path if its file is in the cache with the right contents.
    ///
    /// A file without a current sidecar is hashed once; a file whose contents are wrong is
    /// removed, so that the next pull replaces it.
    pub fn find_verified(&self, manifest: &Manifest) -> Result<Option<PathBuf>, HubError> {
        let path = self.model_path(manifest);
        match self.status(manifest) {
            CacheStatus::Missing => Ok(None),
            CacheStatus::Verified => Ok(Some(path)),
            CacheStatus::Unverified => {
                let (size, sha256) = hash_file(&path)?;
                if size == manifest.size && sha256 == manifest.sha256 {
                    write_sidecar(&path, &manifest.sha256)?;
                    Ok(Some(path))
                } else {
                    remove_if_present(&path)?;
                    remove_if_present(&sidecar_path(&path))?;
                    Ok(None)
                }
            }
        }
    }
}

/// The cache root from the values of `HEARTH_HOME`, `XDG_CACHE_HOME` and the home directory;
/// empty values count as unset, and so does a relative `XDG_CACHE_HOME`, as its spec says.
pub(crate) fn cache_root_from(
    hearth_home: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |value: Option<OsString>| value.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(root) = set(hearth_home) {
        return Some(root);
    }
    if let Some(xdg) = set(xdg_cache_home).filter(|path| path.is_absolute()) {
        return Some(xdg.join("hearth"));
    }
    set(home).map(|home| home.join(".cache").join("hearth"))
}

/// What a sidecar records: the file as it was when its sum last matched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

impl Stamp {
    fn of(meta: &fs::Metadata, sha256: &str) -> Option<Stamp> {
        let mtime_ns = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
        Some(Stamp { size: meta.len(), mtime_ns, sha256: sha256.to_string() })
    }

    fn render(&self) -> String {
        format!("size={}\nmtime_ns={}\nsha256={}\n", self.size, self.mtime_ns, self.sha256)
    }

    fn parse(text: &str) -> Option<Stamp> {
        let mut size = None;
        let mut mtime_ns = None;
        let mut sha256 = None;
        for line in text.lines() {
            match line.split_once('=')? {
                ("size", value) => size = value.parse().ok(),
                ("mtime_ns", value) => mtime_ns = value.parse().ok(),
                ("sha256", value) => sha256 = Some(value.to_string()),
                _ => {}
            }
        }
        Some(Stamp { size: size?, mtime_ns: mtime_ns?, sha256: sha256? })
    }
}

/// The sidecar of a model file: `<file>.verified`.
pub(crate) fn sidecar_path(path: &Path) -> PathBuf {
    with_suffix(path, ".verified")
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

fn read_sidecar(path: &Path) -> Option<Stamp> {
    fs::read_to_string(sidecar_path(path)).ok().and_then(|text| Stamp::parse(&text))
}

/// Records that `path`, as it is now, has the sum `sha256`.
pub(crate) fn write_sidecar(path: &Path, sha256: &str) -> Result<(), HubError> {
    let meta = fs::metadata(path).map_err(|err| HubError::io("cannot stat", path, err))?;
    let Some(stamp) = Stamp::of(&meta, sha256) else {
        // Without mtimes the file is simply hashed on every start.
        return Ok(());
    };
    let sidecar = sidecar_path(path);
    let temporary = with_suffix(&sidecar, ".tmp");
    fs::write(&temporary, stamp.render()).map_err(|err| HubError::io("cannot write", &temporary, err))?;
    fs::rename(&temporary, &sidecar).map_err(|err| HubError::io("cannot rename", &sidecar, err))
}

/// The size and lowercase-hex sha256 of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), HubError> {
    let mut file = fs::File::open(path).map_err(|err| HubError::io("cannot open", path, err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(|err| HubError::io("cannot read", path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Removes a file, treating "already gone" as done.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), HubError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(HubError::io("cannot remove", path, err)),
    }
}

#[cfg(test)]
mod tests;
