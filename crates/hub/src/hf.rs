//! Fetching a model file from the Hugging Face hub with `hf-hub`.
//!
//! `hf-hub`'s blocking client has no read timeout, so the download runs on its own thread
//! and is abandoned when no byte has arrived for a while; a hung connection then costs
//! that long, not forever.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};
use indicatif::ProgressBar;

use crate::manifest::Manifest;

/// How the hub is used.
#[derive(Debug, Clone)]
pub(crate) struct HubSettings {
    /// Only the local Hugging Face cache is looked at (`HF_HUB_OFFLINE`).
    pub(crate) offline: bool,
    /// How long a download may go without receiving a byte before it is given up.
    pub(crate) stall_timeout: Duration,
    /// The server, overriding `HF_ENDPOINT`.
    pub(crate) endpoint: Option<String>,
    /// The Hugging Face cache directory, overriding `HF_HOME`.
    pub(crate) cache_dir: Option<PathBuf>,
}

impl HubSettings {
    /// Settings from the environment, as the `huggingface_hub` tools read it.
    pub(crate) fn from_env() -> HubSettings {
        HubSettings {
            offline: std::env::var("HF_HUB_OFFLINE").is_ok_and(|value| is_truthy(&value)),
            stall_timeout: Duration::from_secs(30),
            endpoint: None,
            cache_dir: None,
        }
    }
}

/// Whether an environment value means "on", as `huggingface_hub` reads booleans.
pub(crate) fn is_truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// The path of the model's file in the Hugging Face cache, downloading it there if needed.
/// `HF_HOME` places that cache and `HF_ENDPOINT` picks the server.
pub(crate) fn fetch(manifest: &Manifest, settings: &HubSettings, progress: &ProgressBar) -> Result<PathBuf, String> {
    let repo = match &manifest.hub.revision {
        Some(revision) => Repo::with_revision(manifest.hub.repo.clone(), RepoType::Model, revision.clone()),
        None => Repo::new(manifest.hub.repo.clone(), RepoType::Model),
    };
    let hf_cache = match &settings.cache_dir {
        Some(dir) => hf_hub::Cache::new(dir.clone()),
        None => hf_hub::Cache::from_env(),
    };
    if let Some(path) = hf_cache.repo(repo.clone()).get(&manifest.hub.file) {
        return Ok(path);
    }
    if settings.offline {
        return Err("HF_HUB_OFFLINE is set and the file is not in the Hugging Face cache".into());
    }
    let mut builder = ApiBuilder::from_env().with_progress(false);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    if let Some(dir) = &settings.cache_dir {
        builder = builder.with_cache_dir(dir.clone());
    }
    let api = builder.build().map_err(|err| err.to_string())?;

    progress.set_message(format!("{}: {}", manifest.id, manifest.hub.repo));
    progress.set_length(manifest.size);
    progress.set_position(0);
    let started = Instant::now();
    let watch = Watch {
        started,
        last_activity_ms: Arc::new(AtomicU64::new(0)),
        abandoned: Arc::new(AtomicBool::new(false)),
        progress: progress.clone(),
    };
    let (sender, receiver) = mpsc::channel();
    let file = manifest.hub.file.clone();
    let worker_watch = watch.clone();
    std::thread::spawn(move || {
        let result = api.repo(repo).download_with_progress(&file, worker_watch).map_err(|err| err.to_string());
        let _ = sender.send(result);
    });
    loop {
        match receiver.recv_timeout(Duration::from_millis(250)) {
            Ok(result) => return result,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the download thread stopped without an answer".into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let idle = (started.elapsed().as_millis() as u64)
                    .saturating_sub(watch.last_activity_ms.load(Ordering::Relaxed));
                if idle > settings.stall_timeout.as_millis() as u64 {
                    watch.abandoned.store(true, Ordering::Relaxed);
                    return Err(format!("no data for {} s, gave up", settings.stall_timeout.as_secs()));
                }
            }
        }
    }
}

/// Progress sink for `hf-hub` that also records when bytes last arrived.
#[derive(Clone)]
struct Watch {
    started: Instant,
    last_activity_ms: Arc<AtomicU64>,
    abandoned: Arc<AtomicBool>,
    progress: ProgressBar,
}

impl Watch {
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.store(now, Ordering::Relaxed);
    }
}

impl hf_hub::api::Progress for Watch {
    fn init(&mut self, size: usize, _filename: &str) {
        self.touch();
        if !self.abandoned.load(Ordering::Relaxed) {
            self.progress.set_length(size as u64);
        }
    }

    fn update(&mut self, size: usize) {
        self.touch();
        if !self.abandoned.load(Ordering::Relaxed) {
            self.progress.inc(size as u64);
        }
    }

    fn finish(&mut self) {
        self.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_never_answers_is_given_up() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts connections and holds them open without a byte in reply.
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(Duration::from_secs(60));
            drop(held);
        });
        let mut manifest = crate::test_support::manifest_for(b"x");
        manifest.hub.repo = "hearth-tests/never-answers".to_string();
        let settings = HubSettings {
            offline: false,
            stall_timeout: Duration::from_secs(1),
            endpoint: Some(format!("http://{address}")),
            cache_dir: None,
        };
        let started = Instant::now();
        let err = fetch(&manifest, &settings, &ProgressBar::hidden()).unwrap_err();
        assert_eq!(err, "no data for 1 s, gave up");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_refused_connection_fails_at_once() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut manifest = crate::test_support::manifest_for(b"x");
        manifest.hub.repo = "hearth-tests/refused".to_string();
        let settings = HubSettings {
            offline: false,
            stall_timeout: Duration::from_secs(30),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            cache_dir: None,
        };
        let started = Instant::now();
        let err = fetch(&manifest, &settings, &ProgressBar::hidden()).unwrap_err();
        assert!(err.contains("Connection refused"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn truthy_values_follow_huggingface_hub() {
        for value in ["1", "true", "TRUE", "yes", "On", " 1 "] {
            assert!(is_truthy(value), "{value:?}");
        }
        for value in ["", "0", "false", "no", "off", "2"] {
            assert!(!is_truthy(value), "{value:?}");
        }
    }
}
