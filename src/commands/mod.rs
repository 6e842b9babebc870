//! One module per subcommand.

pub mod bench;
pub mod common;
pub mod list;
pub mod pull;
pub mod run;
pub mod serve;
