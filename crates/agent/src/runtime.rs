//! [`ModelRuntime`]: one loaded model shared by the agent, its subagents and any other front-end:
//! the batch engine that generates for all of them, the tokenizer, the chat template and the
//! grammar environment for constrained tool calls.

use std::sync::Arc;

use hearth_engine::batch_engine::BatchEngine;
use hearth_engine::chat_template::ChatTemplate;
use hearth_engine::gguf::GgufFile;
use hearth_engine::kv::{KvPool, ModelFingerprint};
use hearth_engine::{Model, Tokenizer};
use hearth_grammar::{GrammarEnv, ToolCallFormat};

/// Errors loading a model for the agent.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Engine(#[from] hearth_engine::EngineError),
    #[error(transparent)]
    Tokenizer(#[from] hearth_engine::tokenizer::TokenizerError),
    #[error(transparent)]
    Template(#[from] hearth_engine::chat_template::ChatTemplateError),
    #[error(transparent)]
    Grammar(#[from] hearth_grammar::GrammarError),
}

/// Everything needed to run a model for agents.
pub struct ModelRuntime {
    /// The generation thread all conversations share.
    pub engine: BatchEngine,
    /// The model's tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// The model's chat template.
    pub template: Arc<ChatTemplate>,
    /// The vocabulary as the grammar engine sees it.
    pub grammar_env: Arc<GrammarEnv>,
    /// How the model writes tool calls.
    pub format: ToolCallFormat,
    /// Tokens the model can attend to.
    pub context_length: usize,
    /// The model's name, for sessions and messages.
    pub name: String,
    /// A handle to the engine's KV pool, for saving and restoring a conversation's cache.
    pub pool: KvPool,
    /// Identifies the model's weights in saved KV files.
    pub fingerprint: ModelFingerprint,
}

impl std::fmt::Debug for ModelRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRuntime").field("name", &self.name).field("format", &self.format).finish_non_exhaustive()
    }
}

/// How to build a [`ModelRuntime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The manifest's fallback chat template, for GGUFs without one.
    pub fallback_template: Option<String>,
    /// The manifest's tool-call format (`qwen`, `generic`); detected from the template if absent.
    pub tool_format: Option<String>,
    /// Bytes of KV cache shared by all sequences.
    pub kv_budget_bytes: Option<usize>,
    /// Sequences decoded together at most.
    pub max_sequences: usize,
    /// The model's name.
    pub name: String,
    /// Where the model runs.
    pub device: candle_core::Device,
}

impl ModelRuntime {
    /// Loads the model in `gguf` and starts its generation thread.
    pub fn load(gguf: &GgufFile, options: RuntimeOptions) -> Result<Self, RuntimeError> {
        let model = Model::load(gguf, &options.device)?;
        let tokenizer = Arc::new(Tokenizer::from_gguf(gguf)?);
        let template = ChatTemplate::from_gguf(gguf, options.fallback_template.as_deref())?
            .with_tokenizer_adding(tokenizer.adds_bos(), tokenizer.vocab().add_eos);
        let template_source =
            gguf.opt_str("tokenizer.chat_template").ok().flatten().or(options.fallback_template.as_deref());
        let format = options
            .tool_format
            .as_deref()
            .and_then(ToolCallFormat::from_manifest)
            .unwrap_or_else(|| ToolCallFormat::detect(template_source, &tokenizer));
        let grammar_env = Arc::new(GrammarEnv::new(&tokenizer)?);
        let context_length = model.config().context_length;
        let budget = options.kv_budget_bytes.unwrap_or_else(|| model.default_kv_budget());
        let pool = model.new_kv_pool(budget)?;
        let fingerprint = ModelFingerprint::of_gguf(gguf)?;
        let engine = BatchEngine::start(model, pool.clone(), options.max_sequences.max(1));
        Ok(Self {
            engine,
            tokenizer,
            template: Arc::new(template),
            grammar_env,
            format,
            context_length,
            name: options.name,
            pool,
            fingerprint,
        })
    }
}
