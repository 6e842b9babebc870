//! End to end: `hearth serve` on SmolLM2, driven by the official `openai` and `anthropic` Python
//! clients (crates/server/tests/py). The clients are installed from PyPI when missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server process, killed when the test ends however it ends.
struct Server {
    child: Child,
    base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const API_KEY: &str = "hearth-test-key";

fn start_server() -> Server {
    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let model = hearth_hub::resolve("smollm2-135m", &opts).expect("pull SmolLM2").path;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", model.to_str().unwrap(), "--alias", "smollm2-135m", "--port", "0", "-t", "2"])
        .args(["--api-key", API_KEY])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth serve");
    // The server prints its address once it listens; port 0 lets the OS pick a free port.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let start = Instant::now();
    let base_url = loop {
        assert!(start.elapsed() < Duration::from_secs(120), "hearth serve did not start");
        let line = lines.next().expect("hearth serve exited before listening").unwrap();
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base_url }
}

fn ensure_python_clients() {
    let have = |py: &str| Command::new("python3").args(["-c", py]).status().is_ok_and(|s| s.success());
    if have("import openai, anthropic") {
        return;
    }
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "openai", "anthropic"])
        .status()
        .expect("run pip");
    assert!(status.success() && have("import openai, anthropic"), "cannot install the openai and anthropic clients");
}

fn run_script(server: &Server, script: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/server/tests/py");
    let output = Command::new("python3")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("HEARTH_BASE_URL", &server.base_url)
        .env("HEARTH_API_KEY", API_KEY)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{script}:\n{stdout}{stderr}");
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
}

#[test]
fn official_python_clients_against_hearth_serve() {
    ensure_python_clients();
    let server = start_server();
    run_script(&server, "test_openai_client.py");
    run_script(&server, "test_anthropic_client.py");
}
