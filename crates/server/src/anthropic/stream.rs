//! Generation events to Anthropic's stream: `message_start`, then per content block
//! `content_block_start`, `content_block_delta`s and `content_block_stop`, then `message_delta`
//! (stop reason, output tokens) and `message_stop`.

use axum::response::sse::Event;
use serde_json::{Value, json};

use super::types::{MessageOut, UsageOut};
use super::{FLAVOR, stop_reason};
use crate::error::{ApiError, ErrorKind};
use crate::generation::new_id;
use crate::prompt::ChatPrompt;
use crate::sse::EventConverter;
use crate::tool_calls::{Piece, ToolCallParser};
use crate::worker::{GenerationEvent, Usage};

/// Converts one request's events.
pub struct MessageStream {
    id: String,
    model: String,
    prefix: String,
    parser: Option<ToolCallParser>,
    /// Index of the next content block.
    next_block: usize,
    /// Whether a text block is open (tool-use blocks are sent whole).
    text_open: bool,
    used_tools: bool,
}

impl MessageStream {
    /// A converter for message `id` answering `prompt`.
    pub fn new(id: String, model: String, prompt: ChatPrompt) -> Self {
        Self {
            id,
            model,
            prefix: prompt.reply_prefix,
            parser: prompt.tools_active.then(|| ToolCallParser::new(&prompt.tools)),
            next_block: 0,
            text_open: false,
            used_tools: false,
        }
    }

    fn event(kind: &str, data: Value) -> Event {
        Event::default().event(kind).data(data.to_string())
    }

    fn close_text(&mut self, out: &mut Vec<Event>) {
        if self.text_open {
            self.text_open = false;
            out.push(Self::event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.next_block}),
            ));
            self.next_block += 1;
        }
    }

    fn pieces(&mut self, pieces: Vec<Piece>, out: &mut Vec<Event>) {
        for piece in pieces {
            match piece {
                Piece::Text(text) if text.is_empty() => {}
                Piece::Text(text) => {
                    let index = self.next_block;
                    if !self.text_open {
                        self.text_open = true;
                        out.push(Self::event(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "text", "text": ""}}),
                        ));
                    }
                    out.push(Self::event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": text}}),
                    ));
                }
                Piece::Call(call) => {
                    self.close_text(out);
                    self.used_tools = true;
                    let index = self.next_block;
                    self.next_block += 1;
                    out.push(Self::event(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": index, "content_block":
                               {"type": "tool_use", "id": new_id("toolu_"), "name": call.name, "input": {}}}),
                    ));
                    out.push(Self::event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": call.arguments.to_string()}}),
                    ));
                    out.push(Self::event("content_block_stop", json!({"type": "content_block_stop", "index": index})));
                }
            }
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<Event>) {
        let pieces = match self.parser.as_mut() {
            Some(parser) => parser.push(text),
            None => vec![Piece::Text(text.to_string())],
        };
        self.pieces(pieces, out);
    }

    fn error(message: String, kind: ErrorKind) -> Event {
        Self::event("error", ApiError::new(FLAVOR, kind, message).body())
    }
}

impl EventConverter for MessageStream {
    fn on_event(&mut self, event: GenerationEvent) -> (Vec<Event>, bool) {
        let mut out = Vec::new();
        match event {
            GenerationEvent::Started { prompt_tokens, cached_tokens } => {
                let usage = Usage { prompt_tokens, cached_tokens, completion_tokens: 0 };
                let message = MessageOut {
                    id: self.id.clone(),
                    kind: "message",
                    role: "assistant",
                    model: self.model.clone(),
                    content: Vec::new(),
                    stop_reason: None,
                    stop_sequence: None,
                    usage: UsageOut::from(usage),
                };
                out.push(Self::event("message_start", json!({"type": "message_start", "message": message})));
                let prefix = std::mem::take(&mut self.prefix);
                self.text(&prefix, &mut out);
            }
            GenerationEvent::Text(text) => self.text(&text, &mut out),
            GenerationEvent::Finished { reason, usage } => {
                if let Some(pieces) = self.parser.as_mut().map(ToolCallParser::finish) {
                    self.pieces(pieces, &mut out);
                }
                self.close_text(&mut out);
                let (stop_reason, stop_sequence) = stop_reason(&reason, self.used_tools);
                out.push(Self::event(
                    "message_delta",
                    json!({"type": "message_delta",
                           "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                           "usage": {"output_tokens": usage.completion_tokens}}),
                ));
                out.push(Self::event("message_stop", json!({"type": "message_stop"})));
                return (out, true);
            }
            GenerationEvent::Failed(f) => {
                let kind = f.kind();
                out.push(Self::error(f.message, kind));
                return (out, true);
            }
        }
        (out, false)
    }

    fn on_lost(&mut self) -> Vec<Event> {
        vec![Self::error("the engine worker stopped before the reply was complete".into(), ErrorKind::Unavailable)]
    }
}
