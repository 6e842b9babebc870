#![allow(clippy::unwrap_used)]

use super::*;

const ROOT: &str = "/work/project";

#[test]
fn missing_files_give_the_defaults() {
    let config = AgentConfig::from_texts(None, None, Path::new(ROOT)).unwrap();
    assert_eq!(config, AgentConfig::default());
    assert_eq!(config.mode, Mode::Ask);
    assert_eq!(config.shell.sandbox, SandboxPolicy::Auto);
    assert!(!config.shell.network);
}

#[test]
fn user_settings_apply_and_project_rules_add_to_them() {
    let user = r#"
        mode = "full-auto"
        [commands]
        allow = ["cargo test"]
        [shell]
        timeout_secs = 30
        sandbox = "off"
        network = true
        env = ["RUST_LOG"]
        writable = ["/var/cache/x"]
    "#;
    let project = r#"
        [commands]
        allow = ["make"]
        deny = ["git push"]
    "#;
    let config = AgentConfig::from_texts(Some(user), Some(project), Path::new(ROOT)).unwrap();
    assert_eq!(config.mode, Mode::FullAuto);
    assert_eq!(config.allow, vec!["cargo test".to_string(), "make".to_string()]);
    assert_eq!(config.deny, vec!["git push".to_string()]);
    assert_eq!(config.shell.default_timeout, Duration::from_secs(30));
    assert_eq!(config.shell.sandbox, SandboxPolicy::Off);
    assert!(config.shell.network);
    assert_eq!(config.shell.env_passthrough, vec!["RUST_LOG".to_string()]);
    assert_eq!(config.shell.writable, vec![PathBuf::from("/var/cache/x")]);
    assert!(config.warnings.is_empty());
    let rules = config.command_rules().unwrap();
    assert_eq!(rules.denying_rule("git push"), Some("git push"));
}

#[test]
fn a_project_file_cannot_loosen_the_guardrails() {
    let project = r#"
        mode = "full-auto"
        [shell]
        sandbox = "off"
        network = true
        env = ["AWS_SECRET_ACCESS_KEY"]
        writable = ["/etc", "build"]
    "#;
    let config = AgentConfig::from_texts(None, Some(project), Path::new(ROOT)).unwrap();
    assert_eq!(config.mode, Mode::Ask);
    assert_eq!(config.shell.sandbox, SandboxPolicy::Auto);
    assert!(!config.shell.network);
    assert!(config.shell.env_passthrough.is_empty());
    assert_eq!(config.shell.writable, vec![PathBuf::from("/work/project/build")]);
    assert_eq!(config.warnings.len(), 5, "{:?}", config.warnings);
}

#[test]
fn a_project_file_may_tighten() {
    let config =
        AgentConfig::from_texts(Some("mode = \"full-auto\""), Some("mode = \"plan\""), Path::new(ROOT)).unwrap();
    assert_eq!(config.mode, Mode::Plan);
}

#[test]
fn unknown_keys_and_bad_values_are_errors_naming_the_file() {
    let err = AgentConfig::from_texts(None, Some("mood = \"ask\""), Path::new(ROOT)).unwrap_err();
    assert!(err.to_string().starts_with(".hearth/config.toml:"), "{err}");
    let err = AgentConfig::from_texts(Some("mode = \"yolo\""), None, Path::new(ROOT)).unwrap_err();
    assert!(err.to_string().contains("yolo"), "{err}");
}

#[test]
fn load_reads_the_project_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".hearth")).unwrap();
    std::fs::write(dir.path().join(".hearth/config.toml"), "mode = \"auto-edit\"\n").unwrap();
    let workspace = Workspace::new(dir.path()).unwrap();
    let config = AgentConfig::load(&workspace).unwrap();
    assert_eq!(config.mode, Mode::AutoEdit);
    assert!(config.sources.contains(&workspace.root().join(".hearth/config.toml")));
}

#[test]
fn only_the_user_sets_the_kv_budget() {
    let config = AgentConfig::from_texts(Some("kv_budget_mib = 1536"), None, Path::new(ROOT)).unwrap();
    assert_eq!(config.kv_budget_mib, Some(1536));
    let config =
        AgentConfig::from_texts(Some("kv_budget_mib = 512"), Some("kv_budget_mib = 99999"), Path::new(ROOT)).unwrap();
    assert_eq!(config.kv_budget_mib, Some(512));
    assert!(config.warnings.iter().any(|w| w.contains("kv_budget_mib")), "{:?}", config.warnings);
    let config = AgentConfig::from_texts(Some("kv_budget_mib = 0"), None, Path::new(ROOT)).unwrap();
    assert_eq!(config.kv_budget_mib, None);
}
