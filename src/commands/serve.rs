//! `hearth serve`: the model behind OpenAI- and Anthropic-compatible HTTP APIs.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use hearth_engine::Tokenizer;
use hearth_engine::chat_template::ChatTemplate;
use hearth_grammar::ToolCallFormat;
use hearth_server::{
    AppState, ConstraintProvider, Engine, GrammarConstraints, Limits, ServedModel, Unconstrained, WorkerConfig,
};

use crate::commands::common::{self, ThreadsArg};

/// Arguments of `hearth serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: common::ModelArg,
    /// Address or host name to listen on; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require this key from clients (`Authorization: Bearer KEY` or `x-api-key: KEY`).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Threads for the compute kernels (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Where the model runs: cpu, cuda[:N] or metal[:N] (builds with `--features cuda` / `metal`).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: common::DeviceArg,
    /// Requests generated together (continuous batching).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Requests that may wait for a slot; more are answered 429.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// KV cache memory for all requests and the prefix cache, in MiB (default: one context
    /// window per parallel request, at most 2 GiB unless one window needs more).
    #[arg(long, visible_alias = "kv-budget", value_name = "MIB")]
    pub kv_memory_mb: Option<usize>,
    /// Most tokens in one forward pass.
    #[arg(long, default_value_t = 512)]
    pub step_tokens: usize,
    /// Most tokens one request may generate.
    #[arg(long, default_value_t = 8192)]
    pub max_tokens: usize,
    /// Tokens generated when a chat request gives no limit.
    #[arg(long, default_value_t = 1024)]
    pub default_max_tokens: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// The model name clients see (default: the registry id or file name).
    #[arg(long)]
    pub alias: Option<String>,
    /// Do not enforce tool calls and JSON output with grammars; parse whatever the model writes
    /// (for comparisons).
    #[arg(long)]
    pub unconstrained: bool,
}

/// Runs `hearth serve` until Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let threads = ThreadsArg(args.threads).pool()?;
    let loaded = common::load_model(args.model.spec(), args.device)?;
    let tokenizer = Arc::new(Tokenizer::from_gguf(&loaded.gguf).context("cannot build the model's tokenizer")?);
    let fallback = loaded.manifest.as_ref().and_then(|m| m.chat_template.as_deref());
    let template = ChatTemplate::from_gguf(&loaded.gguf, fallback)?
        .with_tokenizer_adding(tokenizer.adds_bos(), tokenizer.vocab().add_eos);
    let context_length = loaded.model.config().context_length;
    let full_window = loaded.model.default_kv_budget();
    let kv_budget_bytes = match args.kv_memory_mb {
        Some(mb) => mb << 20,
        None => (args.parallel.max(1) * full_window).min(full_window.max(2 << 30)),
    };
    let worker = WorkerConfig {
        max_sequences: args.parallel,
        queue_capacity: args.queue,
        kv_budget_bytes,
        step_tokens: args.step_tokens,
    };
    worker.validate().map_err(anyhow::Error::msg)?;
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_tokens: args.max_tokens,
        default_max_tokens: args.default_max_tokens.min(args.max_tokens),
    };
    let constraints: Arc<dyn ConstraintProvider> = if args.unconstrained {
        Arc::new(Unconstrained)
    } else {
        let template_source = loaded.gguf.opt_str("tokenizer.chat_template").ok().flatten().or(fallback);
        let format = loaded
            .manifest
            .as_ref()
            .and_then(|m| ToolCallFormat::from_manifest(m.tool_format.as_str()))
            .unwrap_or_else(|| ToolCallFormat::detect(template_source, &tokenizer));
        Arc::new(GrammarConstraints::new(&tokenizer, format).context("cannot build the grammar environment")?)
    };
    let id = args.alias.clone().unwrap_or_else(|| loaded.display_name.clone());
    let served = ServedModel::new(id, tokenizer.clone(), template, context_length);
    let metrics = Arc::default();
    let (engine, _worker) =
        hearth_server::worker::spawn(Engine { model: loaded.model, tokenizer, threads }, worker, metrics)
            .context("cannot start the engine worker")?;
    let state = AppState { model: Arc::new(served), engine, limits, api_key: args.api_key.map(Arc::from), constraints };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let local: SocketAddr = listener.local_addr()?;
        eprintln!(
            "hearth serve: {} ({} tokens of context, {} parallel, KV {} MiB, {}, {}) on http://{local}",
            state.model.id,
            context_length,
            args.parallel,
            kv_budget_bytes >> 20,
            if state.constraints.is_enforcing() { "constrained decoding" } else { "unconstrained" },
            if state.api_key.is_some() { "API key required" } else { "no API key" },
        );
        if !local.ip().is_loopback() && state.api_key.is_none() {
            eprintln!("warning: listening on {} without --api-key: anyone who can reach it can use it", local.ip());
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        hearth_server::router::serve(listener, state, shutdown).await.context("the server failed")
    })
}
