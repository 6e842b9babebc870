//! The constrained-decoding plug-in point, exercised with a small real constraint: only digit
//! tokens may be sampled, a comma is forced after each, and the output is complete after three
//! digits. The grammar crate's provider plugs in the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use common::{Setup, app, get, post, send};
use hearth_engine::Tokenizer;
use hearth_engine::gguf::GgufFile;
use hearth_server::constraint::ConstraintError;
use hearth_server::prompt::ToolChoice;
use hearth_server::{ConstraintProvider, TokenConstraint};
use serde_json::{Value, json};

/// How often the worker called each hook.
#[derive(Default)]
struct Calls {
    begin: AtomicUsize,
    mask: AtomicUsize,
    accept: AtomicUsize,
}

struct Digits {
    allowed: Arc<Vec<bool>>,
    comma: u32,
    accepted: usize,
    calls: Arc<Calls>,
}

impl TokenConstraint for Digits {
    fn begin_mask(&mut self) {
        self.calls.begin.fetch_add(1, Ordering::SeqCst);
    }

    fn mask(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError> {
        self.calls.mask.fetch_add(1, Ordering::SeqCst);
        for (i, l) in logits.iter_mut().enumerate() {
            if !self.allowed.get(i).copied().unwrap_or(false) {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    fn accept(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.calls.accept.fetch_add(1, Ordering::SeqCst);
        if !self.allowed.get(token as usize).copied().unwrap_or(false) {
            return Err(ConstraintError(format!("token {token} is not a digit")));
        }
        self.accepted += 1;
        Ok(())
    }

    fn forced_tokens(&mut self) -> Vec<u32> {
        vec![self.comma]
    }

    fn is_finished(&self) -> bool {
        self.accepted == 3
    }
}

struct DigitsProvider {
    allowed: Arc<Vec<bool>>,
    comma: u32,
    calls: Arc<Calls>,
}

impl ConstraintProvider for DigitsProvider {
    fn is_enforcing(&self) -> bool {
        true
    }

    fn tool_calls(&self, _: &[Value], _: &ToolChoice) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Err(ConstraintError("this provider constrains JSON output only".into()))
    }

    fn json(&self, _: Option<&Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Ok(Some(Box::new(Digits {
            allowed: self.allowed.clone(),
            comma: self.comma,
            accepted: 0,
            calls: self.calls.clone(),
        })))
    }
}

#[tokio::test]
async fn the_worker_masks_accepts_forces_and_finishes_through_the_constraint() {
    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let path = hearth_hub::resolve("smollm2-135m", &opts).expect("pull SmolLM2").path;
    let tokenizer = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let allowed: Vec<bool> = (0..tokenizer.vocab_size() as u32)
        .map(|id| {
            let bytes = tokenizer.token_bytes(id, false).unwrap();
            !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
        })
        .collect();
    let comma = tokenizer.encode(",", false, false).unwrap()[0];
    let calls = Arc::new(Calls::default());
    let provider = DigitsProvider { allowed: Arc::new(allowed), comma, calls: calls.clone() };
    let (router, _) = app(Setup { constraints: Arc::new(provider), ..Setup::default() });

    let (_, health) = send(&router, get("/health")).await;
    assert_eq!(health["constrained_decoding"], true);
    let body = json!({"messages": [{"role": "user", "content": "Pick some numbers."}], "max_tokens": 50,
                      "temperature": 0.9, "seed": 3, "response_format": {"type": "json_object"}});
    let (status, reply) = send(&router, post("/v1/chat/completions", body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    // Three digit tokens, each followed by the forced comma; no "{" forced start when enforcing.
    let parts: Vec<&str> = text.split(',').collect();
    assert_eq!(parts.len(), 4, "{text:?}");
    assert!(parts[..3].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())), "{text:?}");
    assert_eq!(parts[3], "");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"]["completion_tokens"], 6, "three sampled and three forced tokens");
    assert_eq!(calls.mask.load(Ordering::SeqCst), 3);
    assert_eq!(calls.accept.load(Ordering::SeqCst), 3);
    assert_eq!(calls.begin.load(Ordering::SeqCst), 3, "begin_mask before each pass whose logits are sampled");

    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let body = json!({"messages": [{"role": "user", "content": "x"}], "tools": tools});
    let (status, reply) = send(&router, post("/v1/chat/completions", body.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply["error"]["message"].as_str().unwrap().contains("JSON output only"));
}
