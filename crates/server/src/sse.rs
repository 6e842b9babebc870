//! Server-sent event streams fed by a request's generation events.
//!
//! The stream owns the event receiver: when the client disconnects, hyper drops the response
//! body, the receiver goes with it, and the worker stops generating for that request.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures_util::StreamExt as _;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::{ApiError, Flavor};
use crate::worker::GenerationEvent;

/// Turns generation events into one API's server-sent events.
pub trait EventConverter: Send + 'static {
    /// The events for one generation event, and whether the stream is complete.
    fn on_event(&mut self, event: GenerationEvent) -> (Vec<Event>, bool);
    /// The events to end with when the worker went away before finishing.
    fn on_lost(&mut self) -> Vec<Event>;
}

/// An SSE response streaming `events` through `converter`, once the worker has admitted the
/// request: a request it rejects (a prompt longer than the context, say) is answered with a plain
/// error status instead of a stream that starts and fails.
pub async fn sse_response<C: EventConverter>(
    mut events: UnboundedReceiver<GenerationEvent>,
    converter: C,
    flavor: Flavor,
) -> Result<Response, ApiError> {
    let first = events.recv().await;
    if let Some(GenerationEvent::Failed(f)) = &first
        && f.rejected
    {
        return Err(ApiError::new(flavor, f.kind(), f.message.clone()));
    }
    let stream = futures_util::stream::unfold(Some((first, events, converter)), |state| async move {
        let (first, mut events, mut converter) = state?;
        let next = match first {
            Some(event) => Some(event),
            None => events.recv().await,
        };
        match next {
            Some(event) => {
                let (out, done) = converter.on_event(event);
                Some((out, if done { None } else { Some((None, events, converter)) }))
            }
            None => Some((converter.on_lost(), None)),
        }
    })
    .flat_map(|out| futures_util::stream::iter(out.into_iter().map(Ok::<_, Infallible>)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// An SSE event whose data is `value` as JSON.
pub fn json_event(value: &impl serde::Serialize) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")))
}
