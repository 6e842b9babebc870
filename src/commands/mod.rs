//! One module per subcommand.

pub mod agent_setup;
pub mod bench;
pub mod chat;
pub mod common;
pub mod exec;
pub mod list;
pub mod pull;
pub mod run;
pub mod serve;
pub mod sessions;
