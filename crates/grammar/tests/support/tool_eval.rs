//! Running tool-call prompts on a real model, constrained or not, and judging the replies:
//! shared by the validity example and the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use candle_core::Device;
use hearth_engine::chat_template::{ChatMessage, ChatTemplate};
use hearth_engine::generate::{StopReason, generate};
use hearth_engine::gguf::GgufFile;
use hearth_engine::sampler::{Sampler, SamplerConfig};
use hearth_engine::{KvPool, Model, Tokenizer};
use hearth_grammar::{
    CompiledGrammar, GrammarEnv, ParsedReply, Tool, ToolCallFormat, ToolCallGrammar, ToolChoice, generate_constrained,
    parse_reply,
};
use hearth_hub::{Cache, Registry, ResolveOptions};

use super::tool_prompts::{PromptSet, ToolPrompt};

/// A model ready to answer tool prompts.
pub struct Harness {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    pub format: ToolCallFormat,
    pub env: GrammarEnv,
    pub pool: KvPool,
}

/// The GGUF of registry model `id`: pulled when `pull`, else only if already cached.
pub fn model_path(id: &str, pull: bool) -> Option<PathBuf> {
    if pull {
        let opts = ResolveOptions { progress: false, ..ResolveOptions::default() };
        return Some(hearth_hub::resolve(id, &opts).expect("pull model").path);
    }
    let registry = Registry::builtin().unwrap();
    let manifest = registry.lookup(id).expect("known model id");
    Cache::from_env().unwrap().find_verified(manifest).unwrap()
}

impl Harness {
    /// Loads registry model `id` from `path`, with its manifest's tool format.
    pub fn load(id: &str, path: &std::path::Path) -> Self {
        let registry = Registry::builtin().unwrap();
        let manifest = registry.lookup(id).expect("known model id");
        let gguf = GgufFile::open(path).unwrap();
        let model = Model::load(&gguf, &Device::Cpu).unwrap();
        let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
        let template = ChatTemplate::from_gguf(&gguf, manifest.chat_template.as_deref())
            .unwrap()
            .with_tokenizer_adding(tokenizer.adds_bos(), false);
        let format = ToolCallFormat::from_manifest(manifest.tool_format.as_str()).expect("known tool format");
        let env = GrammarEnv::new(&tokenizer).unwrap();
        let pool = model.new_kv_pool(768 << 20).unwrap();
        Self { model, tokenizer, template, format, env, pool }
    }

    /// The prompt tokens for `user` with `tools` offered, in the model's format.
    pub fn prompt_tokens(&self, tools: &[Tool], user: &str) -> Vec<u32> {
        let text = if self.format.template_lists_tools() {
            let openai: Vec<_> = tools.iter().map(Tool::to_openai).collect();
            self.template.render(&[ChatMessage::user(user)], Some(&openai), true).unwrap()
        } else {
            let system = self.format.system_instructions(tools);
            self.template.render(&[ChatMessage::system(&system), ChatMessage::user(user)], None, true).unwrap()
        };
        self.tokenizer.encode(&text, true, true).unwrap()
    }

    /// The compiled grammar for `tools` under `choice`, with several calls allowed or one.
    pub fn grammar(&self, tools: &[Tool], choice: ToolChoice, parallel_calls: bool) -> CompiledGrammar {
        let grammar =
            ToolCallGrammar::new(self.format, tools.to_vec(), choice).unwrap().with_parallel_calls(parallel_calls);
        self.env.compile(&grammar).unwrap()
    }

    /// Generates a reply to `prompt`, constrained by `grammar` when given.
    pub fn reply(
        &self,
        prompt: &[u32],
        grammar: Option<&CompiledGrammar>,
        sampler: &mut Sampler,
        max_tokens: usize,
    ) -> Reply {
        let mut cache = self.pool.new_sequence();
        let kept = cache.reuse_prefix(prompt);
        let (history, rest) = prompt.split_at(kept);
        let is_eog = |t: u32| self.tokenizer.is_end_of_generation(t);
        let (tokens, stop, stats) =
            match grammar {
                Some(g) => {
                    let mut session = g.session();
                    let (tokens, stats) = generate_constrained(
                        &self.model,
                        &mut cache,
                        history,
                        rest,
                        &mut session,
                        sampler,
                        max_tokens,
                        &is_eog,
                        |_| ControlFlow::Continue(()),
                    )
                    .unwrap();
                    let stop = stats.stop;
                    (tokens, stop, Some(stats))
                }
                None => {
                    let (tokens, stats) = generate(&self.model, &mut cache, rest, sampler, max_tokens, &is_eog, |_| {
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                    (tokens, stats.stop, None)
                }
            };
        let text = self.tokenizer.decode(&tokens, true).unwrap();
        Reply { text, tokens: tokens.len(), stop, stats, prefilled: rest.len() }
    }
}

/// One generated reply.
pub struct Reply {
    pub text: String,
    pub tokens: usize,
    pub stop: StopReason,
    pub stats: Option<hearth_grammar::ConstrainedStats>,
    pub prefilled: usize,
}

/// How a reply measures up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// At least one call, read exactly as written, and every call's arguments valid.
    pub valid: bool,
    /// The same after the tolerant parser's repairs.
    pub valid_repaired: bool,
    /// The first call is of the expected tool.
    pub right_tool: bool,
    /// Cut off by the token limit.
    pub truncated: bool,
}

/// Judges `reply` to a request for `expected` among `tools`.
pub fn judge(reply: &Reply, tools: &[Tool], expected: &str) -> (Verdict, ParsedReply) {
    let parsed = parse_reply(&reply.text, tools);
    let args_valid = !parsed.calls.is_empty()
        && parsed.calls.iter().all(|call| {
            let tool = tools.iter().find(|t| t.name == call.name).unwrap();
            jsonschema::validator_for(&tool.parameters).unwrap().is_valid(&call.arguments)
        });
    let verdict = Verdict {
        valid: args_valid && parsed.is_clean(),
        valid_repaired: args_valid && parsed.problems.iter().all(|p| p.is_repaired()),
        right_tool: parsed.calls.first().is_some_and(|c| c.name == expected),
        truncated: reply.stop == StopReason::Length,
    };
    (verdict, parsed)
}

/// Sampler settings of the measurements: temperature 0.7, llama.cpp's other defaults.
pub fn sampler(seed: u64) -> Sampler {
    Sampler::new(SamplerConfig { temperature: 0.7, seed, ..SamplerConfig::default() }).unwrap()
}

/// Totals over many replies.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub replies: usize,
    pub valid: usize,
    pub valid_repaired: usize,
    pub right_tool: usize,
    pub truncated: usize,
    pub generated_tokens: usize,
    pub forced_tokens: usize,
    pub decode_passes: usize,
    pub masks: usize,
    pub mask_time: Duration,
    pub mask_overhead: Duration,
    pub decode_time: Duration,
}

impl Tally {
    /// Adds one reply.
    pub fn add(&mut self, reply: &Reply, v: Verdict) {
        self.replies += 1;
        self.valid += v.valid as usize;
        self.valid_repaired += v.valid_repaired as usize;
        self.right_tool += v.right_tool as usize;
        self.truncated += v.truncated as usize;
        self.generated_tokens += reply.tokens;
        if let Some(s) = &reply.stats {
            self.forced_tokens += s.forced_tokens;
            self.decode_passes += s.decode_passes;
            self.masks += s.masks;
            self.mask_time += s.mask_time;
            self.mask_overhead += s.mask_overhead;
            self.decode_time += s.decode_time;
        }
    }
}

/// Requests and the prompt tokens to send for them.
pub fn prepared(h: &Harness, set: &PromptSet, n: usize) -> Vec<(ToolPrompt, Vec<u32>)> {
    set.prompts(n)
        .into_iter()
        .map(|p| {
            let tokens = h.prompt_tokens(set.group(p.group), &p.user);
            (p, tokens)
        })
        .collect()
}
