//! Server-sent event streams fed by a request's generation events.
//!
//! The stream owns the event receiver: when the client disconnects, hyper drops the response
//! body, the receiver goes with it, and the worker stops generating for that request.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::worker::GenerationEvent;

/// Turns generation events into one API's server-sent events.
pub trait EventConverter: Send + 'static {
    /// The events for one generation event, and whether the stream is complete.
    fn on_event(&mut self, event: GenerationEvent) -> (Vec<Event>, bool);
    /// The events to end with when the worker went away before finishing.
    fn on_lost(&mut self) -> Vec<Event>;
}

/// An SSE response streaming `events` through `converter`.
pub fn sse_response<C: EventConverter>(
    events: UnboundedReceiver<GenerationEvent>,
    converter: C,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(Some((events, converter)), |state| async move {
        let (mut events, mut converter) = state?;
        match events.recv().await {
            Some(event) => {
                let (out, done) = converter.on_event(event);
                Some((out, if done { None } else { Some((events, converter)) }))
            }
            None => Some((converter.on_lost(), None)),
        }
    })
    .flat_map(|out| futures_util::stream::iter(out.into_iter().map(Ok)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// An SSE event whose data is `value` as JSON.
pub fn json_event(value: &impl serde::Serialize) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")))
}
