//! Putting a model file into the cache: bytes go to `<file>.partial` beside the target,
//! and only a file whose size and sha256 match the manifest is renamed into place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use crate::cache::{Cache, hash_file, hex, remove_if_present, with_suffix, write_sidecar};
use crate::error::HubError;
use crate::manifest::Manifest;

/// The `.partial` file a model is assembled in.
pub(crate) fn partial_path(cache: &Cache, manifest: &Manifest) -> PathBuf {
    with_suffix(&cache.model_path(manifest), ".partial")
}

/// A model file being written: hashes and counts what passes through, and deletes itself
/// unless [`PartialFile::finish`] puts it in place.
pub(crate) struct PartialFile<'a> {
    manifest: &'a Manifest,
    partial: PathBuf,
    target: PathBuf,
    writer: Option<BufWriter<File>>,
    hasher: Sha256,
    written: u64,
}

impl<'a> PartialFile<'a> {
    /// Starts an empty `.partial` for `manifest`, replacing any left by an earlier run.
    pub(crate) fn create(cache: &Cache, manifest: &'a Manifest) -> Result<PartialFile<'a>, HubError> {
        let dir = cache.model_dir(manifest);
        fs::create_dir_all(&dir).map_err(|err| HubError::io("cannot create", &dir, err))?;
        let partial = partial_path(cache, manifest);
        let file = File::create(&partial).map_err(|err| HubError::io("cannot create", &partial, err))?;
        Ok(PartialFile {
            manifest,
            partial,
            target: cache.model_path(manifest),
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Flushes, checks size and sha256, and renames the file into place.
    pub(crate) fn finish(mut self) -> Result<PathBuf, HubError> {
        let Some(writer) = self.writer.take() else {
            return Err(HubError::io("cannot finish", &self.partial, io::Error::other("already finished")));
        };
        let file = writer.into_inner().map_err(|err| HubError::io("cannot write", &self.partial, err.into_error()))?;
        // The rename must not land before the data, or a crash could leave a torn file in place.
        file.sync_all().map_err(|err| HubError::io("cannot sync", &self.partial, err))?;
        drop(file);
        let actual = hex(&std::mem::take(&mut self.hasher).finalize());
        place_verified(self.manifest, &self.partial, &self.target, self.written, &actual)
    }
}

impl Write for PartialFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.manifest.size {
            return Err(io::Error::other(format!("more than the expected {} bytes", self.manifest.size)));
        }
        let writer = self.writer.as_mut().ok_or_else(|| io::Error::other("partial file already finished"))?;
        let written = writer.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PartialFile<'_> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.writer = None;
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// Puts an already downloaded file (e.g. from the Hugging Face cache) into the cache after
/// checking it: hard-linked where the file systems allow, copied otherwise.
pub(crate) fn install_file(
    cache: &Cache,
    manifest: &Manifest,
    source: &Path,
    progress: &ProgressBar,
) -> Result<PathBuf, HubError> {
    let dir = cache.model_dir(manifest);
    fs::create_dir_all(&dir).map_err(|err| HubError::io("cannot create", &dir, err))?;
    let partial = partial_path(cache, manifest);
    remove_if_present(&partial)?;
    // The hub cache holds a symlink to a blob; linking the blob keeps one copy on disk.
    let blob = fs::canonicalize(source).map_err(|err| HubError::io("cannot resolve", source, err))?;
    if fs::hard_link(&blob, &partial).is_ok() {
        progress.set_message(format!("{}: verifying", manifest.id));
        let (size, sha256) = match hash_file(&partial) {
            Ok(sum) => sum,
            Err(err) => {
                let _ = fs::remove_file(&partial);
                return Err(err);
            }
        };
        return place_verified(manifest, &partial, &cache.model_path(manifest), size, &sha256);
    }
    let mut reader = File::open(&blob).map_err(|err| HubError::io("cannot open", &blob, err))?;
    let mut writer = PartialFile::create(cache, manifest)?;
    progress.set_message(format!("{}: copying from the hub cache", manifest.id));
    progress.set_length(manifest.size);
    progress.set_position(0);
    io::copy(&mut progress.wrap_read(&mut reader), &mut writer)
        .map_err(|err| HubError::io("cannot copy", &blob, err))?;
    writer.finish()
}

/// Renames `partial` to `target` if its size and sum match the manifest; removes it if not.
fn place_verified(
    manifest: &Manifest,
    partial: &Path,
    target: &Path,
    size: u64,
    sha256: &str,
) -> Result<PathBuf, HubError> {
    let mismatch = if size != manifest.size {
        Some(HubError::SizeMismatch { model: manifest.id.clone(), expected: manifest.size, actual: size })
    } else if sha256 != manifest.sha256 {
        Some(HubError::ChecksumMismatch {
            model: manifest.id.clone(),
            expected: manifest.sha256.clone(),
            actual: sha256.to_string(),
        })
    } else {
        None
    };
    if let Some(err) = mismatch {
        remove_if_present(partial)?;
        return Err(err);
    }
    fs::rename(partial, target).map_err(|err| HubError::io("cannot rename", partial, err))?;
    write_sidecar(target, &manifest.sha256)?;
    Ok(target.to_path_buf())
}
