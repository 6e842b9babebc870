//! Temporary workspaces for tool tests.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::{ToolContext, ToolError, ToolOutput};
use crate::tools::Tool;
use crate::workspace::Workspace;

/// A temporary workspace and a context on it; the directory lives as long as this.
pub(crate) struct TestWorkspace {
    _dir: tempfile::TempDir,
    pub ctx: ToolContext,
}

impl TestWorkspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ToolContext::new(Workspace::new(dir.path()).unwrap());
        Self { _dir: dir, ctx }
    }

    pub fn root(&self) -> &Path {
        self.ctx.workspace.root()
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Writes `rel` and records it as read by the model, as `edit` requires.
    pub fn write_read(&self, rel: &str, content: impl AsRef<[u8]>) {
        self.write(rel, content);
        self.ctx.mark_seen(&self.ctx.workspace.resolve(rel).unwrap());
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap()
    }

    pub async fn run(&self, tool: &dyn Tool, args: serde_json::Value) -> Result<ToolOutput, ToolError> {
        tool.run(args, &self.ctx).await
    }
}
