//! Finding the real models the parity tests run on.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::PathBuf;

/// The GGUF for registry id `id`, or `None` when the test should skip it (see
/// [`hearth_hub::model_for_tests`]).
pub fn model_path(id: &str) -> Option<PathBuf> {
    hearth_hub::model_for_tests(id).expect("test model")
}

/// The parity fixture llama.cpp recorded for `id`.
pub fn fixture(id: &str) -> serde_json::Value {
    read_fixture(&format!("parity/{id}.json"))
}

/// A JSON file under `tests/fixtures/`.
pub fn read_fixture(relative: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// The device the model tests run on: the CPU, or with `HEARTH_TEST_DEVICE=cuda` (a build with
/// the `cuda` feature and a GPU) CUDA device 0, or with `HEARTH_TEST_DEVICE=metal` (a macOS
/// build with `metal`) Metal device 0, so the same checks cover the device paths.
pub fn device() -> candle_core::Device {
    match std::env::var("HEARTH_TEST_DEVICE").as_deref() {
        Err(_) | Ok("") | Ok("cpu") => candle_core::Device::Cpu,
        #[cfg(feature = "cuda")]
        Ok("cuda") => candle_core::Device::new_cuda(0).expect("HEARTH_TEST_DEVICE=cuda needs a CUDA device"),
        #[cfg(feature = "metal")]
        Ok("metal") => candle_core::Device::new_metal(0).expect("HEARTH_TEST_DEVICE=metal needs a Metal device"),
        Ok(other) => panic!("HEARTH_TEST_DEVICE={other}: this build runs tests on {}", devices_note()),
    }
}

fn devices_note() -> String {
    let mut devices = vec!["cpu"];
    devices.extend(cfg!(feature = "cuda").then_some("cuda"));
    devices.extend(cfg!(feature = "metal").then_some("metal"));
    format!("{} (the cuda and metal features add theirs)", devices.join(", "))
}
