#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

struct Scripted {
    answer: Approval,
    asked: AtomicUsize,
}

impl Scripted {
    fn new(answer: Approval) -> Self {
        Self { answer, asked: AtomicUsize::new(0) }
    }
}

#[async_trait::async_trait]
impl Approver for Scripted {
    async fn approve(&self, _request: &ActionRequest) -> Approval {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.answer.clone()
    }
}

fn edit() -> ActionRequest {
    ActionRequest {
        tool: "edit".into(),
        effect: Effect::Edit,
        summary: "edit a.txt".into(),
        command: None,
        preview: None,
    }
}

fn command(line: &str) -> ActionRequest {
    ActionRequest {
        tool: "shell".into(),
        effect: Effect::Command,
        summary: format!("run: {line}"),
        command: Some(line.into()),
        preview: None,
    }
}

fn read() -> ActionRequest {
    ActionRequest {
        tool: "read".into(),
        effect: Effect::ReadOnly,
        summary: "read a".into(),
        command: None,
        preview: None,
    }
}

#[test]
fn plan_mode_offers_only_read_only_tools() {
    assert!(Mode::Plan.offers(Effect::ReadOnly));
    assert!(!Mode::Plan.offers(Effect::Edit));
    assert!(!Mode::Plan.offers(Effect::Command));
    for mode in [Mode::Ask, Mode::AutoEdit, Mode::FullAuto] {
        assert!(mode.offers(Effect::Edit) && mode.offers(Effect::Command), "{mode}");
    }
}

#[test]
fn decisions_per_mode() {
    let table = [
        (Mode::Plan, Decision::Allow, false, false),
        (Mode::Ask, Decision::Allow, true, true),
        (Mode::AutoEdit, Decision::Allow, false, true),
        (Mode::FullAuto, Decision::Allow, false, false),
    ];
    for (mode, read_decision, edit_asks, command_asks) in table {
        let p = Permissions::new(mode, CommandRules::default());
        assert_eq!(p.decide(&read()), read_decision, "{mode}");
        let edit_decision = p.decide(&edit());
        let command_decision = p.decide(&command("make"));
        if mode == Mode::Plan {
            assert!(matches!(edit_decision, Decision::Deny(_)));
            assert!(matches!(command_decision, Decision::Deny(_)));
            continue;
        }
        assert_eq!(edit_decision == Decision::Ask, edit_asks, "{mode} edit");
        assert_eq!(command_decision == Decision::Ask, command_asks, "{mode} command");
    }
}

#[test]
fn deny_rules_win_in_every_mode_even_over_allow_rules() {
    let rules = CommandRules::new(&["git*"], &["git push"]).unwrap();
    let p = Permissions::new(Mode::FullAuto, rules);
    match p.decide(&command("git push origin")) {
        Decision::Deny(reason) => assert!(reason.contains("deny rule 'git push'"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.decide(&command("git status")), Decision::Allow);
}

#[test]
fn allow_rules_skip_the_prompt_in_ask_mode() {
    let p = Permissions::new(Mode::Ask, CommandRules::new(&["cargo test"], &[] as &[&str]).unwrap());
    assert_eq!(p.decide(&command("cargo test")), Decision::Allow);
    assert_eq!(p.decide(&command("cargo build")), Decision::Ask);
}

#[tokio::test]
async fn authorize_asks_and_respects_the_answer() {
    let p = Permissions::new(Mode::Ask, CommandRules::default());
    let no = Scripted::new(Approval::Deny(Some("not now".into())));
    let err = p.authorize(&edit(), &no).await.unwrap_err();
    assert_eq!(err.to_string(), "the user denied 'edit a.txt': not now");
    assert_eq!(no.asked.load(Ordering::SeqCst), 1);

    let yes = Scripted::new(Approval::Approve);
    p.authorize(&edit(), &yes).await.unwrap();
    p.authorize(&read(), &yes).await.unwrap();
    assert_eq!(yes.asked.load(Ordering::SeqCst), 1, "reads are never asked");
}

#[tokio::test]
async fn approve_always_grants_the_same_command_for_the_session() {
    let p = Permissions::new(Mode::Ask, CommandRules::default());
    let always = Scripted::new(Approval::ApproveAlways);
    p.authorize(&command("make test"), &always).await.unwrap();
    assert_eq!(p.decide(&command("make test")), Decision::Allow);
    assert_eq!(p.decide(&command("make install")), Decision::Ask);
    p.authorize(&edit(), &always).await.unwrap();
    assert_eq!(p.decide(&edit()), Decision::Allow);
}

#[tokio::test]
async fn non_interactive_approver_explains_how_to_allow() {
    let p = Permissions::new(Mode::Ask, CommandRules::default());
    let err = p.authorize(&command("make"), &NonInteractive).await.unwrap_err();
    assert!(err.to_string().contains("--mode full-auto"), "{err}");
}

#[test]
fn modes_parse_and_print() {
    for mode in Mode::ALL {
        assert_eq!(mode.as_str().parse::<Mode>().unwrap(), mode);
    }
    assert_eq!("full_auto".parse::<Mode>().unwrap(), Mode::FullAuto);
    assert!("yolo".parse::<Mode>().unwrap_err().to_string().contains("expected plan"));
}

#[test]
fn set_mode_changes_what_is_offered() {
    let p = Permissions::new(Mode::FullAuto, CommandRules::default());
    assert!(p.offers(Effect::Edit));
    p.set_mode(Mode::Plan);
    assert!(!p.offers(Effect::Edit));
}
