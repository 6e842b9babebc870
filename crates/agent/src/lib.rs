//! hearth's agent foundation: the tools the model calls, the confinement of every path to the
//! workspace, permission modes and command rules, the JSONL session log with undo, project
//! memory files and the system prompt. The model loop and the front-ends build on these.
//!
//! A call from the model goes through [`tools::ToolRegistry::call`], which refuses tools the
//! [`permissions::Mode`] does not offer, asks the [`permissions::Approver`] when the mode and
//! rules require it, and runs the tool with a [`tools::ToolContext`] whose
//! [`workspace::Workspace`] confines every path. The loop records what happened as
//! [`protocol::Event`]s in a [`session::Session`].

pub mod agent_loop;
pub mod cancel;
pub mod checkpoint;
pub mod compaction;
pub mod config;
pub mod conversation;
pub mod file_listing;
pub mod memory;
pub mod permissions;
pub mod prefix_cache;
pub mod protocol;
pub mod repetition;
pub mod runtime;
pub mod session;
pub mod step_guard;
pub mod subagent;
pub mod system_prompt;
pub mod tools;
pub mod workspace;

pub use config::{AgentConfig, ConfigError};
pub use permissions::{ActionRequest, Approval, Approver, CommandRules, Decision, Effect, Mode, Permissions};
pub use protocol::{Event, EventRecord, FileChange, TodoItem, TodoStatus, TokenUsage};
pub use session::{Session, SessionError};
pub use tools::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
pub use workspace::{Workspace, WorkspaceError};
