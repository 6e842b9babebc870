//! Helpers shared by the integration tests, the example and the benchmark.
pub mod tool_eval;
pub mod tool_prompts;
