#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn off_is_always_available() {
    assert_eq!(Sandbox::select(SandboxPolicy::Off).unwrap().kind(), SandboxKind::Unsandboxed);
}

#[test]
fn auto_picks_a_working_mechanism_or_explains_what_to_do() {
    match Sandbox::select(SandboxPolicy::Auto) {
        Ok(sandbox) => assert_ne!(sandbox.kind(), SandboxKind::Unsandboxed),
        Err(err) => panic!("this machine should have a sandbox: {err}"),
    }
    let err = SandboxError::Unavailable { reasons: "bubblewrap: bwrap is not installed; landlock: not enabled".into() };
    let text = err.to_string();
    assert!(text.contains("apt install bubblewrap"), "{text}");
    assert!(text.contains("sandbox = \"off\""), "{text}");
    assert!(text.contains("bwrap is not installed"), "{text}");
}

#[test]
fn a_requested_mechanism_that_is_missing_names_itself() {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("bwrap").is_file()))
        .unwrap_or(false);
    match Sandbox::select(SandboxPolicy::Bubblewrap) {
        Ok(sandbox) => assert!(on_path && sandbox.kind() == SandboxKind::Bubblewrap),
        Err(err) => {
            assert!(!on_path || err.to_string().contains("fails here"), "{err}");
            assert!(err.to_string().starts_with("the bubblewrap sandbox was asked for"), "{err}");
        }
    }
}

#[test]
fn bwrap_arguments_bind_the_workspace_writable_over_a_read_only_root() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SandboxSpec {
        workspace: dir.path(),
        workdir: dir.path(),
        network: false,
        writable: &[],
        private_tmp: dir.path(),
    };
    let args: Vec<String> = bwrap_args(&spec).iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let joined = args.join(" ");
    let ws = dir.path().display();
    assert!(joined.contains("--unshare-net"), "{joined}");
    assert!(joined.contains("--unshare-pid"), "{joined}");
    assert!(joined.contains("--ro-bind / /"), "{joined}");
    assert!(joined.contains(&format!("--bind {ws} {ws}")), "{joined}");
    assert!(joined.ends_with(&format!("--chdir {ws} --")), "{joined}");
    let tmpfs = joined.find("--tmpfs /tmp").unwrap();
    let bind = joined.find("--bind ").unwrap();
    assert!(tmpfs < bind, "the workspace must be bound after /tmp is replaced, or a workspace in /tmp vanishes");
    let open = SandboxSpec { network: true, ..spec };
    let joined: Vec<String> = bwrap_args(&open).iter().map(|a| a.to_string_lossy().into_owned()).collect();
    assert!(!joined.contains(&"--unshare-net".to_string()));
}
