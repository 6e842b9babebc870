//! `scripts/gguf-skeleton.py` on the CI model: the skeleton grows back to a GGUF with the same
//! header, tensor table and size, whose tensors begin with the original's rows, and which
//! `hearth bench` runs. This is what carries a model's shapes to a GPU machine for benchmarks.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use hearth_engine::gguf::GgufFile;

fn skeleton(args: &[&Path]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gguf-skeleton.py");
    Command::new("python3").arg(script).args(args).output().expect("run python3")
}

fn run_ok(out: Output) {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_grown_skeleton_has_the_models_shapes_and_rows_and_runs() {
    let model = hearth_hub::model_for_tests(hearth_hub::CI_MODEL).unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (skel, grown) = (dir.path().join("m.skel"), dir.path().join("m.gguf"));
    run_ok(skeleton(&[Path::new("shrink"), &model, &skel]));
    run_ok(skeleton(&[Path::new("expand"), &skel, &grown]));

    let skel_len = std::fs::metadata(&skel).unwrap().len();
    assert!(skel_len < 4 << 20, "the skeleton is {skel_len} bytes");
    let (a, b) = (std::fs::read(&model).unwrap(), std::fs::read(&grown).unwrap());
    assert_eq!(a.len(), b.len());
    let original = GgufFile::open(&model).unwrap();
    let copy = GgufFile::open(&grown).unwrap();
    let first = original.tensors().values().map(|t| t.offset).min().unwrap();
    assert_eq!(a[..first], b[..first], "the header differs");
    assert_eq!(original.tensors().len(), copy.tensors().len());
    for (name, t) in original.tensors() {
        let c = &copy.tensors()[name];
        assert_eq!((&t.dims, t.ggml_type, t.offset, t.n_bytes), (&c.dims, c.ggml_type, c.offset, c.n_bytes), "{name}");
        let row = t.n_bytes / t.dims[1..].iter().product::<usize>();
        let kept = t.n_bytes.min(16 * row);
        assert_eq!(a[t.offset..t.offset + kept], b[t.offset..t.offset + kept], "{name}: first rows");
        // Past the sample the rows repeat it.
        if t.n_bytes > kept {
            let at = t.offset + kept;
            let n = row.min(t.n_bytes - kept);
            assert_eq!(b[at..at + n], b[t.offset..t.offset + n], "{name}: repeated rows");
        }
    }

    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench"])
        .arg(&grown)
        .args(["-p", "8", "-n", "4", "-t", "1", "-r", "1", "--no-bandwidth", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"tg4\""));
}

#[test]
fn a_file_that_is_not_gguf_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (bogus, skel) = (dir.path().join("bogus.gguf"), dir.path().join("m.skel"));
    std::fs::write(&bogus, b"not a model at all").unwrap();
    let out = skeleton(&[Path::new("shrink"), &bogus, &skel]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a GGUF file"), "{out:?}");
    let out = skeleton(&[Path::new("expand"), &bogus, &skel]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a skeleton"), "{out:?}");
}
