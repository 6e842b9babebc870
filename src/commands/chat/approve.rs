//! Approvals in the terminal. The agent loop asks through [`TerminalApprover`], which hands the
//! request to the chat's event loop; that loop shows the events that came before it, then asks
//! the user on a line editor of its own (the prompt's editor is idle during a turn).

use anstyle::AnsiColor;
use hearth_agent::cancel::CancelFlag;
use hearth_agent::permissions::{ActionRequest, Approval, Approver, Effect};
use rustyline::error::ReadlineError;
use tokio::sync::{mpsc, oneshot};

use super::render::{Palette, paint_diff};

/// A request waiting for the user's answer.
#[derive(Debug)]
pub struct PendingApproval {
    /// What the call will do.
    pub request: ActionRequest,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Approval>,
}

/// The [`Approver`] the chat gives the agent: requests go to the chat's event loop.
#[derive(Debug, Clone)]
pub struct TerminalApprover {
    requests: mpsc::UnboundedSender<PendingApproval>,
}

impl TerminalApprover {
    /// An approver and the receiver the chat answers its requests from.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<PendingApproval>) {
        let (requests, receiver) = mpsc::unbounded_channel();
        (Self { requests }, receiver)
    }
}

#[async_trait::async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, request: &ActionRequest) -> Approval {
        let (reply, answer) = oneshot::channel();
        if self.requests.send(PendingApproval { request: request.clone(), reply }).is_err() {
            return Approval::Deny(Some("the terminal is closed".into()));
        }
        answer.await.unwrap_or_else(|_| Approval::Deny(Some("no answer from the user".into())))
    }
}

/// What the user typed at the approval prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Run it.
    Yes,
    /// Run it and the same kind of call for the rest of the session.
    Always,
    /// Don't, with what to do instead if the user said.
    No(Option<String>),
}

/// Reads an answer: `y`/`yes`, `a`/`always`, `n`/`no`, or `n <what to do instead>`. `None`
/// for anything else (the prompt asks again).
pub fn parse_answer(input: &str) -> Option<Answer> {
    let input = input.trim();
    let (word, rest) = match input.split_once(|c: char| c.is_whitespace() || c == ',' || c == ':') {
        Some((word, rest)) => (word, rest.trim()),
        None => (input, ""),
    };
    match word.to_ascii_lowercase().as_str() {
        "y" | "yes" if rest.is_empty() => Some(Answer::Yes),
        "a" | "always" if rest.is_empty() => Some(Answer::Always),
        "n" | "no" => Some(Answer::No((!rest.is_empty()).then(|| rest.to_string()))),
        _ => None,
    }
}

/// The question for `request`: what the call does, a preview, and the choices.
pub fn question(request: &ActionRequest, palette: &Palette) -> String {
    let mut text =
        format!("{} {}\n", palette.fg(AnsiColor::Yellow, "?"), palette.bold(&format!("Allow {}?", request.summary)));
    if let Some(preview) = request.preview.as_deref().filter(|p| !p.trim().is_empty()) {
        let looks_like_diff = preview.lines().any(|line| line.starts_with("@@"));
        text.push_str(&if looks_like_diff { paint_diff(preview, palette) } else { format!("{preview}\n") });
    }
    let always = match (request.effect, &request.command) {
        (Effect::Command, Some(_)) => "always allow this command",
        (Effect::Edit, _) => "allow all file changes",
        _ => "always",
    };
    text.push_str(&palette.dim(&format!("  y = yes   n = no (n <what to do instead>)   a = {always} this session\n")));
    text
}

/// Asks the user about `request` until the answer is clear. Ctrl-C or Ctrl-D at the prompt
/// refuses the call and cancels the turn.
pub async fn ask(request: &ActionRequest, palette: &Palette, cancel: &CancelFlag) -> Approval {
    print!("{}", question(request, palette));
    loop {
        let line = tokio::task::spawn_blocking(|| rustyline::DefaultEditor::new()?.readline("  > ")).await;
        match line {
            Ok(Ok(input)) => match parse_answer(&input) {
                Some(Answer::Yes) => return Approval::Approve,
                Some(Answer::Always) => return Approval::ApproveAlways,
                Some(Answer::No(reason)) => return Approval::Deny(reason),
                None => println!("  {}", palette.dim("answer y, n or a")),
            },
            Ok(Err(ReadlineError::Interrupted | ReadlineError::Eof)) => {
                cancel.set();
                return Approval::Deny(Some("the user cancelled the turn".into()));
            }
            Ok(Err(e)) => return Approval::Deny(Some(format!("could not read the answer: {e}"))),
            Err(e) => return Approval::Deny(Some(format!("could not read the answer: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_leniently() {
        assert_eq!(parse_answer("y"), Some(Answer::Yes));
        assert_eq!(parse_answer(" YES "), Some(Answer::Yes));
        assert_eq!(parse_answer("a"), Some(Answer::Always));
        assert_eq!(parse_answer("always"), Some(Answer::Always));
        assert_eq!(parse_answer("n"), Some(Answer::No(None)));
        assert_eq!(parse_answer("no"), Some(Answer::No(None)));
        assert_eq!(parse_answer("n, edit lib.rs instead"), Some(Answer::No(Some("edit lib.rs instead".into()))));
        assert_eq!(parse_answer("no: use cargo check"), Some(Answer::No(Some("use cargo check".into()))));
    }

    #[test]
    fn unclear_answers_are_asked_again() {
        assert_eq!(parse_answer(""), None);
        assert_eq!(parse_answer("sure"), None);
        assert_eq!(parse_answer("yes please delete everything"), None);
        assert_eq!(parse_answer("nope"), None);
    }

    #[test]
    fn the_question_names_the_call_and_the_choices() {
        let request = ActionRequest {
            tool: "shell".into(),
            effect: Effect::Command,
            summary: "run: cargo test".into(),
            command: Some("cargo test".into()),
            preview: None,
        };
        let text = question(&request, &Palette::new(false));
        assert!(text.starts_with("? Allow run: cargo test?\n"), "{text}");
        assert!(text.contains("a = always allow this command this session"), "{text}");

        let request = ActionRequest {
            tool: "edit".into(),
            effect: Effect::Edit,
            summary: "edit a.rs".into(),
            command: None,
            preview: Some("--- a/a.rs\n+++ b/a.rs\n@@ -1 +1 @@\n-x\n+y\n".into()),
        };
        let text = question(&request, &Palette::new(false));
        assert!(text.contains("@@ -1 +1 @@\n-x\n+y\n"), "{text}");
        assert!(text.contains("a = allow all file changes this session"), "{text}");
    }
}
