//! The generated answer to a Messages request, and its two renderings: the Message object
//! (§5) and the event sequence (§7) in the real order.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::request::{Prompt, Turn};
use crate::ids;
use crate::limits::Cost;
use crate::stream::{self, Events, Rendition};

/// Words the generated text is made of.
const VOCABULARY: [&str; 16] = [
    "Hello", "from", "the", "mock", "upstream", "here", "is", "a", "short", "answer", "made", "of",
    "plain", "words", "for", "tests",
];

/// `usage.service_tier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ServiceTier {
    Standard,
    Batch,
}

pub(crate) struct Answer {
    id: String,
    model: String,
    /// The text deltas; their concatenation is the text block.
    deltas: Vec<String>,
    tool: Option<ToolCall>,
    stop_reason: &'static str,
    usage: Usage,
}

struct ToolCall {
    id: String,
    name: String,
    input: Map<String, Value>,
}

impl Answer {
    /// `words` text deltas (then a tool call when the prompt asks for one); output tokens
    /// are words + 1, cut to `max_tokens` with `stop_reason: "max_tokens"` when it is lower.
    pub(crate) fn generate(prompt: &Prompt, words: usize, tier: ServiceTier) -> Answer {
        let budget = usize::try_from(prompt.max_tokens.saturating_sub(1)).unwrap_or(usize::MAX);
        let truncated = words > budget;
        let words = words.min(budget);
        let mut deltas: Vec<String> = (0..words)
            .map(|i| {
                let word =
                    VOCABULARY[(prompt.seed as usize).wrapping_add(i * 5) % VOCABULARY.len()];
                if i == 0 {
                    word.to_owned()
                } else {
                    format!(" {word}")
                }
            })
            .collect();
        let mut tool = None;
        match &prompt.turn {
            Turn::Text => {}
            Turn::ToolResult { excerpt } => {
                if let Some(first) = deltas.first_mut() {
                    *first = format!("Tool result \"{excerpt}\":");
                }
            }
            Turn::CallTool { name, input } if !truncated => {
                tool = Some(ToolCall {
                    id: ids::tool_use(),
                    name: name.clone(),
                    input: input.clone(),
                });
            }
            Turn::CallTool { .. } => {}
        }
        let stop_reason = if truncated {
            "max_tokens"
        } else if tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        };
        let output_tokens = if truncated {
            prompt.max_tokens
        } else {
            words as u64 + 1
        };
        Answer {
            id: ids::message(),
            model: prompt.model.clone(),
            deltas,
            tool,
            stop_reason,
            usage: Usage::new(prompt.input_tokens, output_tokens, tier),
        }
    }

    fn text(&self) -> String {
        self.deltas.concat()
    }

    /// The complete Message object.
    pub(crate) fn message(&self) -> Message<'_> {
        let mut content = Vec::with_capacity(2);
        if !self.deltas.is_empty() {
            content.push(Block::Text {
                text: Cow::Owned(self.text()),
            });
        }
        if let Some(tool) = &self.tool {
            content.push(Block::tool_use(tool, &tool.input));
        }
        Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content,
            stop_reason: Some(self.stop_reason),
            stop_sequence: None,
            usage: self.usage,
        }
    }
}

impl Rendition for Answer {
    fn model(&self) -> &str {
        &self.model
    }

    fn cost(&self) -> Cost {
        Cost {
            input_tokens: self.usage.input_tokens,
            output_tokens: self.usage.output_tokens,
        }
    }

    fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.message()).unwrap_or_default())
    }

    /// message_start, per block (content_block_start, the ping after the first one,
    /// deltas, content_block_stop), message_delta, message_stop.
    fn events(&self) -> Events {
        let empty = Map::new();
        let mut start = self.message();
        start.content.clear();
        start.stop_reason = None;
        start.usage.output_tokens = 1;
        let message_start = render(&Event::MessageStart { message: start });

        let mut frames = vec![message_start.clone()];
        let mut first_content = None;
        let mut index = 0;
        let mut open_block = |frames: &mut Vec<Bytes>, block: Block<'_>, deltas: Vec<Delta<'_>>| {
            frames.push(render(&Event::ContentBlockStart {
                index,
                content_block: block,
            }));
            if index == 0 {
                frames.push(stream::ping());
            }
            first_content.get_or_insert(frames.len());
            for delta in deltas {
                frames.push(render(&Event::ContentBlockDelta { index, delta }));
            }
            frames.push(render(&Event::ContentBlockStop { index }));
            index += 1;
        };
        if !self.deltas.is_empty() {
            let deltas = self
                .deltas
                .iter()
                .map(|text| Delta::TextDelta { text })
                .collect();
            open_block(
                &mut frames,
                Block::Text {
                    text: Cow::Borrowed(""),
                },
                deltas,
            );
        }
        let input_json;
        if let Some(tool) = &self.tool {
            input_json = serde_json::to_string(&tool.input).unwrap_or_default();
            let deltas = std::iter::once("")
                .chain(fragments(&input_json, 3))
                .map(|partial_json| Delta::InputJsonDelta { partial_json })
                .collect();
            open_block(&mut frames, Block::tool_use(tool, &empty), deltas);
        }
        if frames.len() == 1 {
            frames.push(stream::ping());
        }
        let first_content = first_content.unwrap_or(frames.len());
        frames.push(render(&Event::MessageDelta {
            delta: StopDelta {
                stop_reason: self.stop_reason,
                stop_sequence: None,
            },
            usage: OutputUsage {
                output_tokens: self.usage.output_tokens,
            },
        }));
        frames.push(render(&Event::MessageStop));
        Events {
            frames,
            first_content,
            preamble: vec![message_start, stream::ping()],
        }
    }
}

/// `text` in `parts` pieces of about equal length, split on char boundaries.
fn fragments(text: &str, parts: usize) -> impl Iterator<Item = &str> {
    let size = text.len().div_ceil(parts).max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = size.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

fn render(event: &Event<'_>) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_default();
    stream::frame(event.name(), &data)
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation: CacheCreation,
    output_tokens: u64,
    service_tier: ServiceTier,
}

impl Usage {
    fn new(input_tokens: u64, output_tokens: u64, service_tier: ServiceTier) -> Usage {
        Usage {
            input_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            cache_creation: CacheCreation::default(),
            output_tokens,
            service_tier,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

#[derive(Serialize)]
pub(crate) struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: Cow<'a, str>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Map<String, Value>,
        caller: Caller,
    },
}

impl<'a> Block<'a> {
    fn tool_use(tool: &'a ToolCall, input: &'a Map<String, Value>) -> Block<'a> {
        Block::ToolUse {
            id: &tool.id,
            name: &tool.name,
            input,
            caller: Caller { kind: "direct" },
        }
    }
}

#[derive(Serialize)]
struct Caller {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_cover_the_text_on_char_boundaries() {
        let text = r#"{"city":"Zürich","n":1}"#;
        let pieces: Vec<&str> = fragments(text, 3).collect();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.len() >= 2 && pieces.iter().all(|p| !p.is_empty()));
    }
}
