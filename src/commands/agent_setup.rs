//! Building an agent for `hearth exec` and `hearth chat`: the model (pulled on first use), the
//! workspace and its configuration, the tools, the guardrails and the session file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hearth_agent::agent_loop::{Agent, AgentParts, AgentSettings};
use hearth_agent::cancel::CancelFlag;
use hearth_agent::checkpoint::read_checkpoint;
use hearth_agent::conversation::Conversation;
use hearth_agent::memory::{find_memory_files, memory_section};
use hearth_agent::permissions::{Approver, CommandRules, Mode, Permissions};
use hearth_agent::runtime::{ModelRuntime, RuntimeOptions};
use hearth_agent::session::{Session, SessionMeta, default_sessions_dir, list_sessions};
use hearth_agent::subagent::Subagents;
use hearth_agent::system_prompt::{PromptInputs, system_prompt};
use hearth_agent::tools::{Sandbox, Tool, ToolContext, ToolRegistry};
use hearth_agent::{AgentConfig, Workspace};
use hearth_engine::gguf::GgufFile;
use hearth_engine::sampler::SamplerConfig;
use hearth_grammar::{Tool as GrammarTool, ToolCallFormat};
use hearth_hub::ResolveOptions;

/// Flags shared by the agent front-ends.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Model id (see `hearth list`) or path to a .gguf file; the default model if not given.
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Permission mode: plan (read-only), ask, auto-edit, full-auto.
    #[arg(long)]
    pub mode: Option<Mode>,
    /// The workspace (default: the current directory).
    #[arg(short = 'C', long = "cd")]
    pub workspace: Option<PathBuf>,
    /// Model calls per message at most.
    #[arg(long, default_value_t = 24)]
    pub max_steps: usize,
    /// Tokens per model reply at most.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 1024)]
    pub max_tokens: usize,
    /// Sampling temperature.
    #[arg(long = "temp", default_value_t = 0.2)]
    pub temperature: f32,
    /// Random seed.
    #[arg(short = 's', long)]
    pub seed: Option<u64>,
    /// Let the model write tool calls freely (no grammar); for comparisons.
    #[arg(long)]
    pub unconstrained: bool,
    /// Do not record a session file.
    #[arg(long)]
    pub no_session: bool,
    /// Threads for the compute kernels (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Memory for the KV cache in MiB, shared by the conversation and its subagents (default:
    /// one full context window).
    #[arg(long = "kv-budget", value_name = "MIB")]
    pub kv_budget_mib: Option<usize>,
    /// Where the model runs: cpu, cuda[:N] or metal[:N] (builds with `--features cuda` / `metal`).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: crate::commands::common::DeviceArg,
    /// Do not keep the system prompt's KV cache on disk between runs.
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Continue a session: its id, or `last` for the latest one in this workspace.
    #[arg(long, value_name = "ID|last")]
    pub resume: Option<String>,
}

/// An agent ready to run, with what the front-end needs beside it.
pub struct BuiltAgent {
    pub agent: Agent,
    pub cancel: CancelFlag,
    pub model_name: String,
    pub warnings: Vec<String>,
    /// What resuming a session restored, to tell the user.
    pub resumed: Option<String>,
}

/// Loads the model and builds the agent for `args`, asking `approver` for approvals.
pub fn build_agent(args: &AgentArgs, approver: Arc<dyn Approver>, default_mode: Mode) -> anyhow::Result<BuiltAgent> {
    if let Some(n) = args.threads {
        crate::commands::common::check_threads(n)?;
        // The engine's generation thread runs the kernels on rayon's global pool.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    }
    let root = match &args.workspace {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let workspace = Workspace::new(&root).with_context(|| format!("cannot use {} as the workspace", root.display()))?;
    let config = AgentConfig::load(&workspace)?;
    let mode = args.mode.unwrap_or(if config.sources.is_empty() { default_mode } else { config.mode });

    let resume_path = args.resume.as_deref().map(|wanted| find_session(wanted, workspace.root())).transpose()?;
    let registry_spec = match (&args.model, &resume_path) {
        (Some(m), _) => m.clone(),
        (None, Some(path)) => {
            session_model(path)?.unwrap_or(hearth_hub::Registry::builtin()?.default_model().id.clone())
        }
        (None, None) => hearth_hub::Registry::builtin()?.default_model().id.clone(),
    };
    if let Some(mib) = args.kv_budget_mib {
        anyhow::ensure!(mib > 0, "--kv-budget must be at least 1 MiB");
    }
    let resolved = hearth_hub::resolve(&registry_spec, &ResolveOptions::default())?;
    let gguf = GgufFile::open(&resolved.path)?;
    let name = resolved.manifest.as_ref().map_or_else(|| resolved.path.display().to_string(), |m| m.id.clone());
    let runtime = Arc::new(ModelRuntime::load(
        &gguf,
        RuntimeOptions {
            fallback_template: resolved.manifest.as_ref().and_then(|m| m.chat_template.clone()),
            tool_format: resolved.manifest.as_ref().map(|m| m.tool_format.as_str().to_string()),
            kv_budget_bytes: args.kv_budget_mib.or(config.kv_budget_mib).map(|mib| mib.saturating_mul(1 << 20)),
            max_sequences: 8,
            name: name.clone(),
            device: args.device.open()?,
        },
    )?);

    let registry = ToolRegistry::standard();
    let offered: Vec<&dyn Tool> = registry.offered(mode).map(|t| t.as_ref()).collect();
    let memory_files = find_memory_files(workspace.root())?;
    let memory = memory_section(&memory_files, workspace.root());
    let sandbox = Sandbox::select(config.shell.sandbox).ok().map(|s| s.kind());
    let mut system = system_prompt(&PromptInputs {
        workspace: workspace.root(),
        mode,
        tools: &offered,
        memory: memory.as_deref(),
        sandbox,
        network: config.shell.network,
        subagent: false,
    });
    let schemas = registry.schemas(mode);
    if runtime.format == ToolCallFormat::Generic {
        let tools: Vec<GrammarTool> = schemas.iter().map(GrammarTool::from_openai).collect::<Result<_, _>>()?;
        system.push_str("\n\n");
        system.push_str(&runtime.format.system_instructions(&tools));
    }
    let template_tools = if runtime.format.template_lists_tools() { schemas } else { Vec::new() };
    let conversation =
        Conversation::new(runtime.template.clone(), runtime.tokenizer.clone(), Some(system), template_tools)?;

    let permissions = Arc::new(Permissions::new(mode, CommandRules::new(&config.allow, &config.deny)?));
    let mut ctx = ToolContext::new(workspace.clone());
    ctx.shell = config.shell.clone();
    let mut checkpoint = None;
    let session = if let Some(path) = &resume_path {
        let (session, _) = Session::resume(path).with_context(|| format!("cannot resume {}", path.display()))?;
        checkpoint = Some((read_checkpoint(path)?, path.clone()));
        Some(session)
    } else if args.no_session {
        None
    } else {
        let dir = default_sessions_dir().context("cannot find a directory for session files (set HOME)")?;
        let meta = SessionMeta { workspace: workspace.root().to_path_buf(), model: Some(name.clone()), mode };
        Some(Session::create(&dir, meta)?)
    };
    let settings = AgentSettings {
        max_steps: args.max_steps.max(1),
        max_reply_tokens: args.max_tokens.max(1),
        sampler: SamplerConfig {
            temperature: args.temperature,
            seed: args.seed.unwrap_or_else(rand::random),
            ..AgentSettings::default().sampler
        },
        constrained: !args.unconstrained,
    };
    let cancel = CancelFlag::new();
    let mut parts = AgentParts { runtime, conversation, registry, ctx, permissions, approver, session, settings };
    let subagents = Subagents::new(&parts, cancel.clone());
    parts.ctx.subagents = Some(Arc::new(subagents));
    let mut agent = Agent::new(parts);
    if !args.no_prefix_cache {
        let dir = hearth_hub::Cache::from_env()?.root().join("kv");
        // A damaged or foreign file only costs the prefill it would have saved.
        if let Err(e) = agent.use_prefix_cache(dir) {
            eprintln!("warning: {e}; the system prompt will be prefilled");
        }
    }
    let resumed = match checkpoint {
        None => None,
        Some((None, path)) => Some(format!(
            "resumed session {} (no turn had finished, so the conversation starts afresh)",
            path.display()
        )),
        Some((Some(saved), path)) => {
            let restored = agent.restore(saved, &path)?;
            let tokens = agent.conversation().tokens().len();
            Some(if restored > 0 {
                format!(
                    "resumed session {}: {tokens} tokens of context, KV of {restored} restored from disk",
                    path.display()
                )
            } else {
                format!("resumed session {}: {tokens} tokens of context, to be prefilled", path.display())
            })
        }
    };
    Ok(BuiltAgent { agent, cancel, model_name: name, warnings: config.warnings, resumed })
}

/// The session file `wanted` names: an id, or `last` for the newest session in `workspace`.
fn find_session(wanted: &str, workspace: &std::path::Path) -> anyhow::Result<PathBuf> {
    let dir = default_sessions_dir().context("cannot find the session directory (set HOME)")?;
    if wanted == "last" {
        let sessions = list_sessions(&dir, Some(workspace))?;
        let newest = sessions.first().with_context(|| format!("no session to resume for {}", workspace.display()))?;
        return Ok(newest.path.clone());
    }
    let path = dir.join(format!("{wanted}.jsonl"));
    anyhow::ensure!(
        wanted.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') && path.is_file(),
        "no session {wanted:?} in {} (see the ids with `hearth sessions`)",
        dir.display()
    );
    Ok(path)
}

/// The model a session ran on.
fn session_model(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    let loaded = Session::load(path)?;
    Ok(loaded.events.first().and_then(|record| match &record.event {
        hearth_agent::Event::SessionStarted { model, .. } => model.clone(),
        _ => None,
    }))
}
