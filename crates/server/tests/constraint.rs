//! Constrained decoding through the server: the worker's use of a constraint (mask prepared
//! during the pass, forced tokens, completion), exercised with a small hand-written one, and
//! the grammar crate's provider making tool calls and JSON replies valid by construction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use common::{Constraints, Setup, app, get, post, send, send_text};
use hearth_engine::Tokenizer;
use hearth_engine::gguf::GgufFile;
use hearth_grammar::{Tool, ToolCallFormat, ToolChoice};
use hearth_server::constraint::ConstraintError;
use hearth_server::{ConstraintProvider, GrammarConstraints, TokenConstraint};
use serde_json::{Value, json};

fn smollm2_tokenizer() -> Tokenizer {
    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let path = hearth_hub::resolve("smollm2-135m", &opts).expect("pull SmolLM2").path;
    Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap()
}

/// How often the worker called each hook.
#[derive(Default)]
struct Calls {
    prepare: AtomicUsize,
    apply: AtomicUsize,
    commit: AtomicUsize,
}

/// Only digit tokens, a comma forced after each, complete after three digits.
struct Digits {
    allowed: Arc<Vec<bool>>,
    comma: u32,
    committed: usize,
    calls: Arc<Calls>,
}

impl TokenConstraint for Digits {
    fn prepare(&mut self) -> Result<(), String> {
        self.calls.prepare.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn apply(&mut self, logits: &mut [f32]) -> Result<(), String> {
        self.calls.apply.fetch_add(1, Ordering::SeqCst);
        for (i, l) in logits.iter_mut().enumerate() {
            if !self.allowed.get(i).copied().unwrap_or(false) {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    fn commit(&mut self, token: u32) -> Result<Vec<u32>, String> {
        self.calls.commit.fetch_add(1, Ordering::SeqCst);
        if !self.allowed.get(token as usize).copied().unwrap_or(false) {
            return Err(format!("token {token} is not a digit"));
        }
        self.committed += 1;
        Ok(vec![self.comma])
    }

    fn is_finished(&self) -> bool {
        self.committed == 3
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

    fn tool_calls(
        &self,
        _: &[Tool],
        _: &ToolChoice,
        _: bool,
    ) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Err(ConstraintError("this provider constrains JSON output only".into()))
    }

    fn json(&self, _: Option<&Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Ok(Some(Box::new(Digits {
            allowed: self.allowed.clone(),
            comma: self.comma,
            committed: 0,
            calls: self.calls.clone(),
        })))
    }
}

#[tokio::test]
async fn the_worker_prepares_applies_commits_forces_and_finishes_through_the_constraint() {
    let tokenizer = smollm2_tokenizer();
    let allowed: Vec<bool> = (0..tokenizer.vocab_size() as u32)
        .map(|id| {
            let bytes = tokenizer.token_bytes(id, false).unwrap();
            !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
        })
        .collect();
    let comma = tokenizer.encode(",", false, false).unwrap()[0];
    let calls = Arc::new(Calls::default());
    let provider = DigitsProvider { allowed: Arc::new(allowed), comma, calls: calls.clone() };
    let (router, _) = app(Setup { constraints: Constraints::Custom(Arc::new(provider)), ..Setup::default() });

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
    assert_eq!(calls.apply.load(Ordering::SeqCst), 3);
    assert_eq!(calls.commit.load(Ordering::SeqCst), 3);
    assert_eq!(calls.prepare.load(Ordering::SeqCst), 3, "prepared during each pass whose logits are sampled");

    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let body = json!({"messages": [{"role": "user", "content": "x"}], "tools": tools});
    let (status, reply) = send(&router, post("/v1/chat/completions", body.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply["error"]["message"].as_str().unwrap().contains("JSON output only"));
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 24},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        }, "required": ["city", "unit", "days"]},
    }})
}

fn search_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "search_files",
        "description": "Search files for a pattern",
        "parameters": {"type": "object", "properties": {
            "pattern": {"type": "string", "maxLength": 20},
            "options": {"type": "object", "properties": {
                "case_sensitive": {"type": "boolean"},
                "globs": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 2},
            }, "required": ["case_sensitive", "globs"]},
        }, "required": ["pattern", "options"]},
    }})
}

fn chat(content: &str, extra: Value) -> String {
    let mut body = json!({"messages": [{"role": "user", "content": content}], "max_tokens": 120,
                          "temperature": 0.7, "seed": 11});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body.to_string()
}

fn schema_of(tools: &[Value], name: &str) -> Value {
    tools.iter().find(|t| t["function"]["name"] == name).unwrap()["function"]["parameters"].clone()
}

fn assert_valid(schema: &Value, value: &Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{value} does not follow {schema}: {errors:?}");
}

/// The calls of an OpenAI reply, each checked against its tool's schema.
fn checked_calls(reply: &Value, tools: &[Value]) -> Vec<(String, Value)> {
    let message = &reply["choices"][0]["message"];
    let calls = message["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default();
    calls
        .iter()
        .map(|call| {
            let name = call["function"]["name"].as_str().unwrap().to_string();
            let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert_valid(&schema_of(tools, &name), &arguments);
            (name, arguments)
        })
        .collect()
}

#[tokio::test]
async fn required_and_named_tool_calls_follow_their_schemas() {
    let (router, _) = app(Setup::default());
    let tools = vec![weather_tool(), search_tool()];
    let prompts = ["What's the weather in Oslo this week?", "Find TODO comments in the Rust files.", "Hello!"];
    // SmolLM2 sometimes rambles inside a string argument until max_tokens: a reply cut there
    // cannot hold its call, which the grammar cannot help. Every other reply must be a valid call.
    let mut cut = 0;
    for (i, prompt) in prompts.iter().enumerate() {
        let body = chat(prompt, json!({"tools": tools, "tool_choice": "required", "seed": i}));
        let (status, reply) = send(&router, post("/v1/chat/completions", body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let calls = checked_calls(&reply, &tools);
        if reply["choices"][0]["finish_reason"] == "length" && calls.is_empty() {
            cut += 1;
        } else {
            assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls", "{reply}");
            assert!(!calls.is_empty(), "{reply}");
        }

        let named = json!({"type": "function", "function": {"name": "search_files"}});
        let body = chat(prompt, json!({"tools": tools, "tool_choice": named, "seed": i}));
        let (status, reply) = send(&router, post("/v1/chat/completions", body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let calls = checked_calls(&reply, &tools);
        if reply["choices"][0]["finish_reason"] == "length" && calls.is_empty() {
            cut += 1;
            continue;
        }
        assert_eq!(calls.len(), 1, "{reply}");
        assert_eq!(calls[0].0, "search_files");
    }
    assert!(cut <= 1, "{cut} of 6 replies were cut at max_tokens");
    // `parallel_tool_calls: false` allows one call at most; the stream carries the same call.
    let body = chat(prompts[0], json!({"tools": tools, "tool_choice": "required", "parallel_tool_calls": false}));
    let (_, reply) = send(&router, post("/v1/chat/completions", body)).await;
    assert_eq!(checked_calls(&reply, &tools).len(), 1, "{reply}");
    let body = chat(prompts[0], json!({"tools": tools, "tool_choice": "required", "stream": true}));
    let (status, text) = send_text(&router, post("/v1/chat/completions", body)).await;
    assert_eq!(status, StatusCode::OK);
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let streamed: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert!(!streamed.is_empty(), "{text}");
    for call in streamed {
        let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_valid(&schema_of(&tools, call["function"]["name"].as_str().unwrap()), &arguments);
    }
}

#[tokio::test]
async fn anthropic_tool_use_follows_the_schema() {
    let (router, _) = app(Setup::default());
    let tool = weather_tool();
    let anthropic_tool = json!({"name": "get_weather", "description": "Weather for a city",
                                "input_schema": tool["function"]["parameters"]});
    for choice in [json!({"type": "any"}), json!({"type": "tool", "name": "get_weather"})] {
        let body = json!({"model": "m", "max_tokens": 120, "temperature": 0.7, "tools": [anthropic_tool],
                          "tool_choice": choice,
                          "messages": [{"role": "user", "content": "Is it raining in Lima?"}]});
        let (status, reply) = send(&router, post("/v1/messages", body.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["stop_reason"], "tool_use", "{reply}");
        let uses: Vec<&Value> =
            reply["content"].as_array().unwrap().iter().filter(|b| b["type"] == "tool_use").collect();
        assert!(!uses.is_empty(), "{reply}");
        for block in uses {
            assert_eq!(block["name"], "get_weather");
            assert_valid(&tool["function"]["parameters"], &block["input"]);
        }
    }
}

#[tokio::test]
async fn json_replies_follow_the_schema() {
    let (router, _) = app(Setup::default());
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 30},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "languages": {"type": "array", "items": {"type": "string", "enum": ["en", "fr", "de"]}, "maxItems": 3},
    }, "required": ["name", "age", "languages"]});
    for seed in 0..3 {
        let format = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema}});
        let body = chat("Invent a person.", json!({"response_format": format, "seed": seed}));
        let (status, reply) = send(&router, post("/v1/chat/completions", body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
        let value: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{content:?}: {e}"));
        assert_valid(&schema, &value);
        assert_eq!(reply["choices"][0]["finish_reason"], "stop", "the grammar ends the reply: {reply}");
    }
    let body = chat("Describe a cat.", json!({"response_format": {"type": "json_object"}}));
    let (_, reply) = send(&router, post("/v1/chat/completions", body)).await;
    let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
    if reply["choices"][0]["finish_reason"] == "stop" {
        assert!(serde_json::from_str::<Value>(content).unwrap().is_object(), "{content:?}");
    } else {
        assert!(content.starts_with('{'), "{content:?}");
    }
    let body = json!({"model": "m", "max_tokens": 120, "temperature": 0.7,
                      "output_config": {"format": {"type": "json_schema", "schema": schema}},
                      "messages": [{"role": "user", "content": "Invent a person."}]});
    let (status, reply) = send(&router, post("/v1/messages", body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let value: Value = serde_json::from_str(reply["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_valid(&schema, &value);
}

#[tokio::test]
async fn schemas_the_grammar_cannot_enforce_are_400s() {
    let (router, _) = app(Setup::default());
    let bad_tool = json!({"type": "function", "function": {"name": "broken",
        "parameters": {"type": "object", "properties": {"x": {"type": "nonsense"}}}}});
    let body = chat("hi", json!({"tools": [bad_tool], "tool_choice": "required"}));
    let (status, reply) = send(&router, post("/v1/chat/completions", body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"broken\"") && message.contains("schema"), "{message}");

    let not_object = json!({"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}});
    let (status, reply) = send(&router, post("/v1/chat/completions", chat("hi", json!({"tools": [not_object]})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("tools[0]"), "{reply}");

    let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 7}}});
    let (status, reply) =
        send(&router, post("/v1/chat/completions", chat("hi", json!({"response_format": format})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("JSON schema"), "{reply}");

    let body = json!({"model": "m", "max_tokens": 10, "tools": [{"name": "broken",
                      "input_schema": {"type": "object", "properties": {"x": {"type": "nonsense"}}}}],
                      "messages": [{"role": "user", "content": "hi"}]});
    let (status, reply) = send(&router, post("/v1/messages", body.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["type"], "invalid_request_error");
}

#[test]
fn compiled_grammars_are_reused_for_the_same_tools() {
    let provider = GrammarConstraints::new(&smollm2_tokenizer(), ToolCallFormat::Generic).unwrap();
    let tools = [Tool::from_openai(&weather_tool()).unwrap(), Tool::from_openai(&search_tool()).unwrap()];
    for _ in 0..3 {
        assert!(provider.tool_calls(&tools, &ToolChoice::Auto, true).unwrap().is_some());
    }
    assert_eq!(provider.cached_grammars(), 1);
    provider.tool_calls(&tools, &ToolChoice::Required, true).unwrap();
    provider.tool_calls(&tools[..1], &ToolChoice::Auto, true).unwrap();
    provider.json(None).unwrap();
    provider.json(None).unwrap();
    assert_eq!(provider.cached_grammars(), 4);
}

#[tokio::test]
async fn unconstrained_servers_say_so() {
    let (router, _) = app(Setup { constraints: Constraints::Unconstrained, ..Setup::default() });
    let (_, health) = send(&router, get("/health")).await;
    assert_eq!(health["constrained_decoding"], false);
}
