//! Slash commands typed at the chat prompt: parsing, help and completion.

use hearth_agent::permissions::Mode;

/// A command typed at the prompt instead of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/help`: list the commands and keys.
    Help,
    /// `/mode`: show the permission mode, or switch to the one given.
    Mode(Option<Mode>),
    /// `/clear`: start a fresh conversation (same system prompt).
    Clear,
    /// `/model`: show the model and its context size.
    Model,
    /// `/compact`: replace the conversation so far by a summary the model writes.
    Compact,
    /// `/undo [force]`: revert the last turn's file changes and forget the turn; `force`
    /// overwrites files that changed since.
    Undo {
        /// Overwrite files changed since the turn.
        force: bool,
    },
    /// `/exit`: leave.
    Exit,
}

/// A line that starts like a command but is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlashError {
    /// No command has this name.
    #[error("unknown command /{name}{}; /help lists the commands", suggestion(.name))]
    Unknown {
        /// What was typed after the slash.
        name: String,
    },
    /// The command takes no argument but got one.
    #[error("/{name} takes no argument")]
    UnexpectedArgument {
        /// The command.
        name: &'static str,
    },
    /// The command got an argument it does not take.
    #[error("/{name} takes {expected}")]
    BadArgument {
        /// The command.
        name: &'static str,
        /// What it takes.
        expected: &'static str,
    },
    /// `/mode` with a name that is not a mode.
    #[error("{0}")]
    BadMode(String),
}

/// Each command with its argument syntax and a one-line description, for `/help` and completion.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "", "show this help"),
    ("mode", " [plan|ask|auto-edit|full-auto]", "show or change the permission mode"),
    ("clear", "", "start a fresh conversation (the system prompt stays cached)"),
    ("model", "", "show the model and its context size"),
    ("compact", "", "replace the conversation so far by a summary, to free context"),
    ("undo", " [force]", "revert the last turn's file changes and forget the turn"),
    ("exit", "", "leave (also /quit, Ctrl-D)"),
];

/// Parses `line` as a slash command: `None` when it is a message for the model.
pub fn parse(line: &str) -> Option<Result<SlashCommand, SlashError>> {
    let rest = line.trim().strip_prefix('/')?;
    let (name, argument) = match rest.split_once(char::is_whitespace) {
        Some((name, argument)) => (name, argument.trim()),
        None => (rest, ""),
    };
    let no_argument = |command: SlashCommand, name: &'static str| {
        if argument.is_empty() { Ok(command) } else { Err(SlashError::UnexpectedArgument { name }) }
    };
    Some(match name.to_ascii_lowercase().as_str() {
        "help" | "?" => no_argument(SlashCommand::Help, "help"),
        "mode" if argument.is_empty() => Ok(SlashCommand::Mode(None)),
        "mode" => argument
            .parse::<Mode>()
            .map(|m| SlashCommand::Mode(Some(m)))
            .map_err(|e| SlashError::BadMode(e.to_string())),
        "clear" | "new" | "reset" => no_argument(SlashCommand::Clear, "clear"),
        "model" => no_argument(SlashCommand::Model, "model"),
        "compact" => no_argument(SlashCommand::Compact, "compact"),
        "undo" if argument.is_empty() => Ok(SlashCommand::Undo { force: false }),
        "undo" if matches!(argument, "force" | "--force" | "-f") => Ok(SlashCommand::Undo { force: true }),
        "undo" => Err(SlashError::BadArgument { name: "undo", expected: "nothing or 'force'" }),
        "exit" | "quit" | "q" => no_argument(SlashCommand::Exit, "exit"),
        _ => Err(SlashError::Unknown { name: name.to_string() }),
    })
}

/// The text `/help` prints.
pub fn help_text() -> String {
    let mut text = String::from("Commands:\n");
    for (name, args, what) in COMMANDS {
        let usage = format!("/{name}{args}");
        text.push_str(&format!("  {usage:<42} {what}\n"));
    }
    text.push_str(
        "Keys:\n  Enter sends; end a line with \\ (or press Alt-Enter) to continue on the next line\n  \
         Ctrl-C cancels the reply being generated, or clears the line at the prompt\n  \
         Ctrl-D at an empty prompt exits; Up/Down and Ctrl-R search the history\n\
         Modes: plan (read-only), ask (approve every change and command), auto-edit (approve\n  \
         commands only), full-auto (approve nothing; deny rules still apply)\n",
    );
    text
}

/// Completions for a prompt line that is a command being typed (`/mo` → `/mode`, `/mode a` →
/// `ask`, `auto-edit`): the byte offset the candidates replace from, and the candidates.
pub fn complete(line: &str) -> (usize, Vec<String>) {
    let Some(rest) = line.strip_prefix('/') else { return (0, Vec::new()) };
    match rest.split_once(' ') {
        None => {
            let names =
                COMMANDS.iter().filter(|(name, _, _)| name.starts_with(rest)).map(|(name, _, _)| format!("/{name}"));
            (0, names.collect())
        }
        Some(("mode", partial)) if !partial.contains(' ') => {
            let modes = Mode::ALL.iter().map(|m| m.as_str()).filter(|m| m.starts_with(partial)).map(str::to_string);
            (line.len() - partial.len(), modes.collect())
        }
        Some(_) => (0, Vec::new()),
    }
}

/// " (did you mean /x?)" for a misspelt command, when one name is close.
fn suggestion(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let close = COMMANDS.iter().map(|(command, _, _)| *command).find(|command| {
        (!lower.is_empty() && command.starts_with(&lower)) || (lower.len() >= 3 && lower.starts_with(command))
    });
    close.map(|command| format!(" (did you mean /{command}?)")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_are_not_commands() {
        assert_eq!(parse("fix the failing test"), None);
        assert_eq!(parse("  what does src/main.rs do?"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn commands_parse_with_aliases_and_spacing() {
        assert_eq!(parse("/help"), Some(Ok(SlashCommand::Help)));
        assert_eq!(parse("  /HELP  "), Some(Ok(SlashCommand::Help)));
        assert_eq!(parse("/clear"), Some(Ok(SlashCommand::Clear)));
        assert_eq!(parse("/model"), Some(Ok(SlashCommand::Model)));
        assert_eq!(parse("/compact"), Some(Ok(SlashCommand::Compact)));
        assert_eq!(parse("/undo"), Some(Ok(SlashCommand::Undo { force: false })));
        assert_eq!(parse("/undo force"), Some(Ok(SlashCommand::Undo { force: true })));
        assert_eq!(parse("/exit"), Some(Ok(SlashCommand::Exit)));
        assert_eq!(parse("/quit"), Some(Ok(SlashCommand::Exit)));
    }

    #[test]
    fn mode_shows_or_switches() {
        assert_eq!(parse("/mode"), Some(Ok(SlashCommand::Mode(None))));
        assert_eq!(parse("/mode plan"), Some(Ok(SlashCommand::Mode(Some(Mode::Plan)))));
        assert_eq!(parse("/mode   full-auto "), Some(Ok(SlashCommand::Mode(Some(Mode::FullAuto)))));
        assert_eq!(parse("/mode auto_edit"), Some(Ok(SlashCommand::Mode(Some(Mode::AutoEdit)))));
        let err = parse("/mode yolo").unwrap().unwrap_err();
        assert!(err.to_string().contains("unknown mode 'yolo'"), "{err}");
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = parse("/frobnicate").unwrap().unwrap_err();
        assert_eq!(err.to_string(), "unknown command /frobnicate; /help lists the commands");
        let err = parse("/mod").unwrap().unwrap_err();
        assert!(err.to_string().contains("did you mean /mode?"), "{err}");
        let err = parse("/undo 3").unwrap().unwrap_err();
        assert_eq!(err.to_string(), "/undo takes nothing or 'force'");
        let err = parse("/clear all").unwrap().unwrap_err();
        assert_eq!(err, SlashError::UnexpectedArgument { name: "clear" });
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_text();
        for (name, _, _) in COMMANDS {
            assert!(help.contains(&format!("/{name}")), "/{name} missing from help");
        }
    }

    #[test]
    fn completion_of_names_and_modes() {
        assert_eq!(complete("/mo"), (0, vec!["/mode".to_string(), "/model".to_string()]));
        assert_eq!(complete("/u"), (0, vec!["/undo".to_string()]));
        assert_eq!(complete("/c"), (0, vec!["/clear".to_string(), "/compact".to_string()]));
        assert_eq!(complete("/mode a"), (6, vec!["ask".to_string(), "auto-edit".to_string()]));
        assert_eq!(complete("hello /mo"), (0, Vec::new()));
        assert_eq!(complete("/undo x"), (0, Vec::new()));
    }
}
