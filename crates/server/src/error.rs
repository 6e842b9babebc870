//! Errors answered to clients, in the JSON shape of the API they called.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which API's error shape to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `{"error": {"message", "type", "param", "code"}}`
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`
    Anthropic,
}

impl Flavor {
    /// The API a request path belongs to.
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/v1/messages") { Flavor::Anthropic } else { Flavor::OpenAi }
    }
}

/// What went wrong, which fixes the status code and the error type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is malformed or asks for something unsupported.
    InvalidRequest,
    /// 401: missing or wrong API key.
    Authentication,
    /// 404: no such endpoint.
    NotFound,
    /// 413: the body is over the size limit.
    TooLarge,
    /// 429: the queue is full.
    QueueFull,
    /// 500: the engine failed.
    Internal,
    /// 503: the engine worker has stopped.
    Unavailable,
}

impl ErrorKind {
    fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::TooLarge => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::QueueFull => "rate_limit_exceeded",
            ErrorKind::Internal => "server_error",
            ErrorKind::Unavailable => "unavailable_error",
        }
    }

    /// The `error.type` Anthropic's API uses for this status.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::QueueFull => "rate_limit_error",
            ErrorKind::Internal => "api_error",
            ErrorKind::Unavailable => "overloaded_error",
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The API shape to answer in.
    pub flavor: Flavor,
    /// What went wrong.
    pub kind: ErrorKind,
    /// What the client reads: names the problem.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(flavor: Flavor, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { flavor, kind, message: message.into() }
    }

    /// A 400 naming what is wrong with the request.
    pub fn invalid(flavor: Flavor, message: impl Into<String>) -> Self {
        Self::new(flavor, ErrorKind::InvalidRequest, message)
    }

    /// The body of this error as JSON, in its flavor's shape.
    pub fn body(&self) -> serde_json::Value {
        match self.flavor {
            Flavor::OpenAi => json!({"error": {
                "message": self.message,
                "type": self.kind.openai_type(),
                "param": null,
                "code": null,
            }}),
            Flavor::Anthropic => json!({"type": "error", "error": {
                "type": self.kind.anthropic_type(),
                "message": self.message,
            }}),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.kind.status(), Json(self.body())).into_response()
    }
}

/// Parses a JSON request body into `T`; any failure is a 400 naming the problem (serde's
/// message says which field and where).
pub fn parse_body<T: serde::de::DeserializeOwned>(
    flavor: Flavor,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        let kind =
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE { ErrorKind::TooLarge } else { ErrorKind::InvalidRequest };
        ApiError::new(flavor, kind, format!("cannot read the request body: {e}"))
    })?;
    if body.is_empty() {
        return Err(ApiError::invalid(flavor, "the request body is empty; a JSON object is expected"));
    }
    let mut de = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            format!("invalid request body: {}", e.inner())
        } else {
            format!("invalid request body at `{path}`: {}", e.inner())
        };
        ApiError::invalid(flavor, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_flavor() {
        let e = ApiError::invalid(Flavor::OpenAi, "messages: must not be empty");
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
        assert_eq!(e.body()["error"]["message"], "messages: must not be empty");
        let e = ApiError::new(Flavor::Anthropic, ErrorKind::QueueFull, "busy");
        assert_eq!(e.body()["type"], "error");
        assert_eq!(e.body()["error"]["type"], "rate_limit_error");
        assert_eq!(e.into_response().status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn bodies_that_are_not_json_name_the_problem() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Req {
            model: String,
            messages: Vec<u32>,
        }
        let e = parse_body::<Req>(Flavor::OpenAi, Ok(axum::body::Bytes::from_static(b"{}"))).err();
        assert!(e.is_some_and(|e| e.message.contains("missing field `model`")));
        let body = axum::body::Bytes::from_static(br#"{"model": "m", "messages": [1, "x"]}"#);
        let e = parse_body::<Req>(Flavor::OpenAi, Ok(body)).err();
        assert!(e.is_some_and(|e| e.message.contains("at `messages[1]`")), "the path of the bad value is named");
        let e = parse_body::<Req>(Flavor::OpenAi, Ok(axum::body::Bytes::new())).err();
        assert!(e.is_some_and(|e| e.message.contains("empty")));
    }
}
