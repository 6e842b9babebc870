//! `POST /v1/completions`: raw text in, text out, no chat template.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};

use super::types::{Completion, CompletionChoice, CompletionRequest, UsageOut};
use super::{FLAVOR, check_unsupported, finish_reason};
use crate::error::{ApiError, ErrorKind, parse_body};
use crate::generation::{check_context, collect, new_id, submit, unix_time};
use crate::sampling::{SamplingParams, max_tokens};
use crate::sse::{EventConverter, json_event, sse_response};
use crate::state::AppState;
use crate::worker::{GenerationEvent, GenerationRequest};

/// OpenAI's default `max_tokens` for text completions.
const DEFAULT_COMPLETION_TOKENS: i64 = 16;

/// Handles `POST /v1/completions`.
pub async fn completions(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn respond(state: AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req: CompletionRequest = parse_body(FLAVOR, body)?;
    check_unsupported(req.n, req.frequency_penalty, req.presence_penalty)?;
    let invalid = |m: &str| ApiError::invalid(FLAVOR, m);
    if req.echo {
        return Err(invalid("echo: not supported"));
    }
    if req.logprobs.as_ref().is_some_and(|l| !l.is_null()) {
        return Err(invalid("logprobs: not supported"));
    }
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid("suffix: not supported"));
    }
    let mut prompts = req.prompt.into_vec();
    if prompts.len() != 1 {
        return Err(invalid("prompt: one prompt string per request is supported"));
    }
    let text = prompts.remove(0);
    let tokens = state
        .model
        .tokenizer
        .encode(&text, true, true)
        .map_err(|e| ApiError::invalid(FLAVOR, format!("prompt: cannot tokenize: {e}")))?;
    if tokens.is_empty() {
        return Err(invalid("prompt: must not be empty"));
    }
    check_context(&state, FLAVOR, tokens.len())?;
    let max_tokens = max_tokens(Some(req.max_tokens.unwrap_or(DEFAULT_COMPLETION_TOKENS)), "max_tokens", &state.limits)
        .map_err(|m| ApiError::invalid(FLAVOR, m))?;
    let sampling = SamplingParams {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        min_p: req.min_p,
        repeat_penalty: req.repeat_penalty,
        seed: req.seed,
    }
    .to_config(2.0)
    .map_err(|m| ApiError::invalid(FLAVOR, m))?;
    let request = GenerationRequest {
        prompt: tokens,
        sampling,
        max_tokens,
        stop: req.stop.map(|s| s.into_vec()).unwrap_or_default(),
        ignore_eos: req.ignore_eos,
        constraint: None,
    };
    let events = submit(&state, FLAVOR, request)?;
    let shell = Completion {
        id: new_id("cmpl-"),
        object: "text_completion",
        created: unix_time(),
        model: state.model.id.clone(),
        choices: Vec::new(),
        usage: None,
    };
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        return sse_response(events, CompletionStream { shell, include_usage }, FLAVOR).await;
    }
    let done = collect(events, FLAVOR).await?;
    let choice = CompletionChoice {
        index: 0,
        text: done.text,
        finish_reason: Some(finish_reason(&done.reason)),
        logprobs: None,
    };
    Ok(Json(Completion { choices: vec![choice], usage: Some(done.usage.into()), ..shell }).into_response())
}

/// Generation events to `text_completion` chunks.
struct CompletionStream {
    shell: Completion,
    include_usage: bool,
}

impl CompletionStream {
    fn chunk(&self, text: String, finish_reason: Option<&'static str>) -> Event {
        let choice = CompletionChoice { index: 0, text, finish_reason, logprobs: None };
        json_event(&Completion { choices: vec![choice], ..self.shell.clone() })
    }
}

impl EventConverter for CompletionStream {
    fn on_event(&mut self, event: GenerationEvent) -> (Vec<Event>, bool) {
        match event {
            GenerationEvent::Started { .. } => (Vec::new(), false),
            GenerationEvent::Text(text) => (vec![self.chunk(text, None)], false),
            GenerationEvent::Finished { reason, usage } => {
                let mut out = vec![self.chunk(String::new(), Some(finish_reason(&reason)))];
                if self.include_usage {
                    out.push(json_event(&Completion { usage: Some(UsageOut::from(usage)), ..self.shell.clone() }));
                }
                out.push(Event::default().data("[DONE]"));
                (out, true)
            }
            GenerationEvent::Failed(f) => {
                let e = ApiError::new(FLAVOR, f.kind(), f.message);
                (vec![json_event(&e.body()), Event::default().data("[DONE]")], true)
            }
        }
    }

    fn on_lost(&mut self) -> Vec<Event> {
        let e =
            ApiError::new(FLAVOR, ErrorKind::Unavailable, "the engine worker stopped before the reply was complete");
        vec![json_event(&e.body()), Event::default().data("[DONE]")]
    }
}
