//! The HTTP routes, with the API-key check, the body size limit and JSON 404s.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::{ApiError, ErrorKind, Flavor};
use crate::state::AppState;
use crate::{anthropic, openai};

/// The server's routes over `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(openai::chat::chat_completions))
        .route("/v1/completions", post(openai::completions::completions))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{id}", get(openai::get_model))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

/// Serves the routes on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// `GET /health`: the model and the worker's load; no key needed.
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let m = state.engine.metrics();
    Json(json!({
        "status": "ok",
        "model": state.model.id,
        "context_length": state.model.context_length,
        "constrained_decoding": state.constraints.is_enforcing(),
        "queue_depth": m.queue_depth.load(Relaxed),
        "active_sequences": m.active_sequences.load(Relaxed),
    }))
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.engine.metrics().render()).into_response()
}

async fn not_found(request: Request) -> ApiError {
    let path = request.uri().path().to_string();
    ApiError::new(Flavor::for_path(&path), ErrorKind::NotFound, format!("no endpoint {} {path}", request.method()))
}

/// Lets a request through only with the server's key, as `Authorization: Bearer <key>` (OpenAI
/// clients) or `x-api-key: <key>` (Anthropic clients).
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = state.api_key.as_deref() else { return next.run(request).await };
    if presented_key(request.headers()).is_some_and(|k| constant_time_eq(k.as_bytes(), key.as_bytes())) {
        return next.run(request).await;
    }
    let flavor = Flavor::for_path(request.uri().path());
    ApiError::new(flavor, ErrorKind::Authentication, "a valid API key is required (Authorization: Bearer or x-api-key)")
        .into_response()
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok())).map(str::trim)
}

/// Compares keys without stopping at the first difference, so timing does not leak a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", "k1".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(presented_key(&h), Some("k1"));
        h.insert(header::AUTHORIZATION, "Bearer k2".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(presented_key(&h), Some("k2"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
