#![allow(clippy::unwrap_used)]

use super::*;

fn rules(allow: &[&str], deny: &[&str]) -> CommandRules {
    CommandRules::new(allow, deny).unwrap()
}

#[test]
fn prefix_rules_match_whole_words() {
    let r = rules(&["cargo test"], &[]);
    assert!(r.allows("cargo test"));
    assert!(r.allows("cargo test -p hearth-agent"));
    assert!(!r.allows("cargo tests"));
    assert!(!r.allows("cargo build"));
}

#[test]
fn glob_rules_match_the_whole_part() {
    let r = rules(&["git diff*", "ls"], &["rm -rf *"]);
    assert!(r.allows("git diff --stat src/main.rs"));
    assert!(r.allows("ls"));
    assert_eq!(r.denying_rule("rm -rf /tmp/x"), Some("rm -rf *"));
    assert_eq!(r.denying_rule("rm -r x"), None);
}

#[test]
fn deny_matches_any_part_of_a_compound_command() {
    let r = rules(&["cargo test"], &["git push"]);
    for command in [
        "cargo test && git push",
        "cargo test; git push origin main",
        "echo $(git push)",
        "cargo test | git push",
        "(git push)",
        "FOO=1 git push",
        "sudo git push",
        "/usr/bin/git push --force",
        "cargo test\ngit push",
    ] {
        assert_eq!(r.denying_rule(command), Some("git push"), "{command}");
    }
    assert_eq!(r.denying_rule("git pull"), None);
}

#[test]
fn allow_needs_every_part_allowed() {
    let r = rules(&["cargo test", "grep"], &[]);
    assert!(r.allows("cargo test 2>&1 | grep FAILED"));
    assert!(!r.allows("cargo test && curl example.com"));
    assert!(!r.allows(""));
}

#[test]
fn allow_refuses_hidden_code_and_file_redirections() {
    let r = rules(&["echo", "cat"], &[]);
    assert!(r.allows("echo hi"));
    assert!(r.allows("echo hi > /dev/null 2>&1"));
    assert!(!r.allows("echo $(rm -rf x)"));
    assert!(!r.allows("echo `id`"));
    assert!(!r.allows("echo \"$(id)\""));
    assert!(!r.allows("echo hi > out.txt"));
    assert!(!r.allows("cat a >> b"));
    assert!(!r.allows("echo 'unterminated"));
}

#[test]
fn quoted_separators_do_not_split() {
    let parsed = ParsedCommand::parse("grep 'a;b|c' file && echo \"x && y\"");
    assert_eq!(parsed.parts, vec!["grep a;b|c file".to_string(), "echo x && y".to_string()]);
    assert!(!parsed.hides_code);
    assert!(!parsed.writes_file);
}

#[test]
fn single_quoted_substitution_is_literal() {
    let r = rules(&["echo"], &[]);
    assert!(r.allows("echo '$(id)'"));
}

#[test]
fn empty_and_bad_rules_are_errors() {
    assert!(CommandRules::new(&["  "], &[] as &[&str]).is_err());
    let err = CommandRules::new(&[] as &[&str], &["a[b"]).unwrap_err();
    assert!(err.to_string().contains("a[b"), "{err}");
}
