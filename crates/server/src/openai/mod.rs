//! The OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions`, `/v1/models`.

pub mod chat;
pub mod completions;
pub mod types;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorKind, Flavor};
use crate::state::AppState;
use crate::worker::FinishReason;
use types::ModelCard;

const FLAVOR: Flavor = Flavor::OpenAi;

/// `finish_reason` for how generation ended.
fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::EndOfTurn | FinishReason::StopString(_) => "stop",
        FinishReason::Length => "length",
    }
}

/// Refuses parameters this server does not implement, rather than silently ignoring them.
fn check_unsupported(
    n: Option<i64>,
    frequency_penalty: Option<f32>,
    presence_penalty: Option<f32>,
) -> Result<(), ApiError> {
    if n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(FLAVOR, "n: only 1 choice per request is supported"));
    }
    for (name, value) in [("frequency_penalty", frequency_penalty), ("presence_penalty", presence_penalty)] {
        if value.is_some_and(|v| v != 0.0) {
            return Err(ApiError::invalid(
                FLAVOR,
                format!("{name}: not supported (use repeat_penalty, llama.cpp's repetition penalty)"),
            ));
        }
    }
    Ok(())
}

fn card(state: &AppState) -> ModelCard {
    ModelCard { id: state.model.id.clone(), object: "model", created: state.model.created, owned_by: "hearth" }
}

/// `GET /v1/models`.
pub async fn list_models(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"object": "list", "data": [card(&state)]}))
}

/// `GET /v1/models/{id}`.
pub async fn get_model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if id == state.model.id {
        Json(card(&state)).into_response()
    } else {
        ApiError::new(
            FLAVOR,
            ErrorKind::NotFound,
            format!("model {id:?} is not served here (try {:?})", state.model.id),
        )
        .into_response()
    }
}
