//! `hearth run`: one prompt in, a streamed reply out.

use std::io::Write as _;
use std::ops::ControlFlow;

use anyhow::Context as _;
use hearth_engine::Tokenizer;
use hearth_engine::chat_template::{ChatMessage, ChatTemplate};
use hearth_engine::generate::{GenerationStats, generate};
use hearth_engine::lookup_decode::{LookupConfig, generate_greedy_lookup};
use hearth_engine::sampler::{Sampler, SamplerConfig};

use crate::commands::common::{self, ThreadsArg};

/// Arguments of `hearth run`; sampling flags use llama.cpp's names.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// MODEL (a model id, see `hearth list`, or a path to a .gguf file; pulled on first use) and
    /// PROMPT (a user message, or the exact model input with --raw), unless given with -m / -p.
    #[arg(value_names = ["MODEL", "PROMPT"], num_args = 0..=2)]
    pub positional: Vec<String>,
    /// The model, as llama.cpp's `llama-cli` takes it (`-m FILE.gguf`), instead of MODEL.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<String>,
    /// The prompt, as `llama-cli` takes it, instead of PROMPT.
    #[arg(short = 'p', long = "prompt", value_name = "PROMPT")]
    pub prompt: Option<String>,
    /// Send the prompt as it is, without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// A system message placed before the prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    pub n_predict: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: all).
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than min-p times the most likely one.
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalty for repeating recent tokens (1: none).
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Recent tokens the repetition penalty looks at.
    #[arg(long = "repeat-last-n", default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed (default: a new one each run).
    #[arg(short = 's', long)]
    pub seed: Option<u64>,
    /// Threads for the compute kernels (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Where the model runs: cpu, cuda[:N] or metal[:N] (builds with `--features cuda` / `metal`).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: common::DeviceArg,
    /// Print the rendered prompt, token counts and speeds to stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Prompt-lookup speculative decoding: drafts copied from n-grams already in the context,
    /// verified in one forward pass; the output is greedy decoding's (needs --temp 0).
    #[arg(long)]
    pub lookup: bool,
}

impl RunArgs {
    /// The model and the prompt, from the arguments or from -m and -p.
    pub fn model_and_prompt(&self) -> anyhow::Result<(&str, &str)> {
        let pos: Vec<&str> = self.positional.iter().map(String::as_str).collect();
        match (self.model.as_deref(), self.prompt.as_deref(), pos.as_slice()) {
            (Some(model), Some(prompt), []) => Ok((model, prompt)),
            (Some(model), None, [prompt]) => Ok((model, prompt)),
            (None, Some(prompt), [model]) => Ok((model, prompt)),
            (None, None, [model, prompt]) => Ok((model, prompt)),
            _ => anyhow::bail!(
                "give one model and one prompt: `hearth run MODEL PROMPT`, or `hearth run -m MODEL -p PROMPT`"
            ),
        }
    }
}

/// Runs `hearth run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (model_spec, user_prompt) = args.model_and_prompt()?;
    anyhow::ensure!(
        !args.lookup || (args.temperature <= 0.0 && args.repeat_penalty == 1.0),
        "--lookup decodes greedily: use it with --temp 0 and without --repeat-penalty"
    );
    let sampler = Sampler::new(SamplerConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed: args.seed.unwrap_or_else(rand::random),
    })?;
    let pool = ThreadsArg(args.threads).pool()?;
    let loaded = common::load_model(model_spec, args.device)?;
    let tokenizer = Tokenizer::from_gguf(&loaded.gguf).context("cannot build the model's tokenizer")?;
    let prompt = if args.raw {
        tokenizer.encode(user_prompt, true, true)?
    } else {
        let fallback = loaded.manifest.as_ref().and_then(|m| m.chat_template.as_deref());
        let template = ChatTemplate::from_gguf(&loaded.gguf, fallback)?
            .with_tokenizer_adding(tokenizer.adds_bos(), tokenizer.vocab().add_eos);
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::system(system));
        }
        messages.push(ChatMessage::user(user_prompt));
        let rendered = template.render(&messages, None, true)?;
        if args.verbose {
            eprintln!("--- prompt ---\n{rendered}\n--------------");
        }
        // The template leaves BOS out where the tokenizer adds it, as llama.cpp's server does.
        tokenizer.encode(&rendered, true, true)?
    };
    anyhow::ensure!(!prompt.is_empty(), "the prompt is empty");
    let mut cache = loaded.model.new_cache()?;
    let mut sampler = sampler;
    let mut stream = tokenizer.stream_decoder();
    let mut stdout = std::io::stdout();
    let mut write_error = None;
    let on_token = |token| {
        let text = match stream.push(token) {
            Ok(text) => text,
            Err(e) => {
                write_error = Some(anyhow::Error::from(e));
                return ControlFlow::Break(());
            }
        };
        // A closed pipe (`hearth run … | head`) ends generation quietly.
        if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            write_error = Some(e.into());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    };
    let is_eog = |t| tokenizer.is_end_of_generation(t);
    let (stats, lookup) = pool.install(|| -> anyhow::Result<_> {
        if args.lookup {
            let config = LookupConfig::default();
            let (_, s) =
                generate_greedy_lookup(&loaded.model, &mut cache, &prompt, args.n_predict, &config, &is_eog, on_token)?;
            let stats = GenerationStats {
                prompt_tokens: s.prompt_tokens,
                generated_tokens: s.generated_tokens,
                prefill_time: s.prefill_time,
                decode_time: s.decode_time,
                stop: s.stop,
            };
            Ok((stats, Some(s)))
        } else {
            let (_, stats) =
                generate(&loaded.model, &mut cache, &prompt, &mut sampler, args.n_predict, &is_eog, on_token)?;
            Ok((stats, None))
        }
    })?;
    if let Some(err) = write_error {
        if !is_broken_pipe(&err) {
            return Err(err);
        }
        return Ok(());
    }
    let _ = writeln!(stdout, "{}", stream.finish());
    if args.verbose {
        eprintln!(
            "{}: load {:.2} s | prompt {} tokens, {:.1} t/s | generated {} tokens, {:.1} t/s | stop: {:?}",
            loaded.display_name,
            loaded.load_seconds,
            stats.prompt_tokens,
            stats.prefill_tps(),
            stats.generated_tokens,
            stats.decode_tps(),
            stats.stop
        );
        if let Some(s) = lookup {
            eprintln!(
                "lookup: {} forward passes for {} tokens ({:.2} per pass), {} of {} drafted tokens accepted",
                s.decode_steps,
                s.generated_tokens.saturating_sub(1),
                s.tokens_per_step(),
                s.accepted,
                s.drafted
            );
        }
    }
    Ok(())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::RunArgs;

    #[derive(Debug, Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn parsed(args: &[&str]) -> anyhow::Result<(String, String)> {
        let run = Run::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        run.args.model_and_prompt().map(|(m, p)| (m.to_owned(), p.to_owned()))
    }

    #[test]
    fn model_and_prompt_come_as_arguments_or_as_llama_cli_flags() {
        let want = ("qwen".to_owned(), "hello there".to_owned());
        for args in [
            &["qwen", "hello there"][..],
            &["-m", "qwen", "-p", "hello there"],
            &["-m", "qwen", "hello there"],
            &["-p", "hello there", "qwen"],
            &["--model", "qwen", "--prompt=hello there", "-n", "4"],
        ] {
            assert_eq!(parsed(args).expect("parses"), want, "{args:?}");
        }
        for bad in [&[][..], &["qwen"], &["-m", "qwen"], &["-m", "a", "b", "c"], &["-m", "a", "-p", "b", "c"]] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
    }
}
