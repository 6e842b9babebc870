//! Building the router on SmolLM2 for in-process tests, and sending it requests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use hearth_engine::chat_template::ChatTemplate;
use hearth_engine::gguf::GgufFile;
use hearth_engine::{Model, Tokenizer};
use hearth_grammar::ToolCallFormat;
use hearth_server::{
    AppState, ConstraintProvider, Engine, GrammarConstraints, Limits, ServedModel, Unconstrained, WorkerConfig,
};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// Which constraint provider the server runs with.
pub enum Constraints {
    /// Grammars from the grammar crate, as `hearth serve` runs by default.
    Grammar,
    /// None (`hearth serve --unconstrained`).
    Unconstrained,
    /// A provider of the test's own.
    Custom(Arc<dyn ConstraintProvider>),
}

pub struct Setup {
    pub worker: WorkerConfig,
    pub limits: Limits,
    pub api_key: Option<&'static str>,
    pub constraints: Constraints,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            worker: WorkerConfig { max_sequences: 4, queue_capacity: 8, kv_budget_bytes: 256 << 20, step_tokens: 512 },
            limits: Limits { max_body_bytes: 64 * 1024, max_tokens: 512, default_max_tokens: 32 },
            api_key: None,
            constraints: Constraints::Grammar,
        }
    }
}

/// The router and its state over SmolLM2.
pub fn app(setup: Setup) -> (Router, AppState) {
    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let path = hearth_hub::resolve("smollm2-135m", &opts).expect("pull SmolLM2").path;
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &candle_core::Device::Cpu).unwrap();
    let tokenizer = Arc::new(Tokenizer::from_gguf(&gguf).unwrap());
    let template = ChatTemplate::from_gguf(&gguf, None)
        .unwrap()
        .with_tokenizer_adding(tokenizer.adds_bos(), tokenizer.vocab().add_eos);
    let constraints: Arc<dyn ConstraintProvider> = match setup.constraints {
        Constraints::Grammar => {
            let source = gguf.opt_str("tokenizer.chat_template").unwrap();
            let format = ToolCallFormat::detect(source, &tokenizer);
            Arc::new(GrammarConstraints::new(&tokenizer, format).unwrap())
        }
        Constraints::Unconstrained => Arc::new(Unconstrained),
        Constraints::Custom(provider) => provider,
    };
    let served = ServedModel::new("smollm2-135m".into(), tokenizer.clone(), template, model.config().context_length);
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let (engine, _) =
        hearth_server::worker::spawn(Engine { model, tokenizer, threads }, setup.worker, Arc::default()).unwrap();
    let state = AppState {
        model: Arc::new(served),
        engine,
        limits: setup.limits,
        api_key: setup.api_key.map(Arc::from),
        constraints,
    };
    (hearth_server::router(state.clone()), state)
}

pub fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(body.into()).unwrap()
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

pub async fn send_text(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}
