//! Reading a Messages (or count_tokens) request body: the raw shape the mock peeks at, and
//! its validation into the `Prompt` the answer is generated from.

use jiff::civil::Date;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::models;

/// Which endpoint's required fields apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Messages,
    CountTokens,
}

/// The top-level fields the mock reads, borrowed from the body.
///
/// Unknown top-level fields are accepted and ignored on purpose. The real API rejects them
/// (its schema has `additionalProperties: false`), but keyloop's tests send such fields to
/// check that the gateway forwards bodies unchanged, which needs an upstream that lets them
/// through; those tests read the recorded body instead.
#[derive(Deserialize)]
struct Raw<'a> {
    model: Option<Value>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    max_tokens: Option<Value>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    stream: Option<Value>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Content,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Tool {
    name: Option<String>,
    input_schema: Option<Schema>,
}

#[derive(Deserialize)]
struct Schema {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    required: Vec<String>,
}

#[derive(Deserialize)]
struct ToolChoice {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
}

/// A validated request: what the answer depends on.
#[derive(Debug)]
pub(crate) struct Prompt {
    pub(crate) model: String,
    /// 0 for count_tokens, which has no `max_tokens`.
    pub(crate) max_tokens: u64,
    pub(crate) stream: bool,
    /// (bytes of system + messages + tools as sent) / 4, at least 1.
    pub(crate) input_tokens: u64,
    /// Varies the generated words between different conversations.
    pub(crate) seed: u64,
    pub(crate) turn: Turn,
}

/// What the last user turn asks of the model.
#[derive(Debug, PartialEq)]
pub(crate) enum Turn {
    /// Plain text answer.
    Text,
    /// A text block, then a call of this tool.
    CallTool {
        name: String,
        input: Map<String, Value>,
    },
    /// The user returned a tool result; the answer mentions it.
    ToolResult { excerpt: String },
}

impl Prompt {
    /// Validates `body` as the API would on `today`: the schema first, then whether the model
    /// is served that day (a retired or unknown one is 404 `not_found_error`).
    pub(crate) fn parse(body: &[u8], endpoint: Endpoint, today: Date) -> Result<Prompt, ApiError> {
        let raw: Raw<'_> = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                ApiError::invalid("Request body must be a JSON object")
            } else {
                ApiError::invalid(format!("Request body is not valid JSON: {e}"))
            }
        })?;
        let model = match raw.model {
            None => return Err(ApiError::invalid("model: Field required")),
            Some(Value::String(model)) => model,
            Some(_) => return Err(ApiError::invalid("model: Input should be a valid string")),
        };
        let messages_raw = raw
            .messages
            .ok_or_else(|| ApiError::invalid("messages: Field required"))?;
        let max_tokens = match (raw.max_tokens, endpoint) {
            (None, Endpoint::Messages) => {
                return Err(ApiError::invalid("max_tokens: Field required"));
            }
            (None, Endpoint::CountTokens) => 0,
            (Some(value), _) => value
                .as_u64()
                .ok_or_else(|| ApiError::invalid("max_tokens: Input should be a valid integer"))?,
        };
        let stream = match raw.stream {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => stream,
            Some(_) => return Err(ApiError::invalid("stream: Input should be a valid boolean")),
        };
        let messages: Vec<Message> = serde_json::from_str(messages_raw.get()).map_err(|_| {
            ApiError::invalid(
                "messages: Input should be a valid list of messages with `role` and `content`",
            )
        })?;
        if messages.is_empty() {
            return Err(ApiError::invalid(
                "messages: List should have at least 1 item",
            ));
        }
        let tools: Vec<Tool> = match raw.tools {
            None => Vec::new(),
            Some(tools) => serde_json::from_str(tools.get())
                .map_err(|_| ApiError::invalid("tools: Input should be a valid list"))?,
        };
        let tool_choice: Option<ToolChoice> = match raw.tool_choice {
            None => None,
            Some(choice) => serde_json::from_str(choice.get()).map_err(|_| {
                ApiError::invalid("tool_choice: Input should be a valid dictionary with a `type`")
            })?,
        };
        models::check_served(&model, today)?;
        let sent = [Some(messages_raw), raw.system, raw.tools]
            .into_iter()
            .flatten()
            .map(|raw| raw.get().len() as u64)
            .sum::<u64>();
        Ok(Prompt {
            model,
            max_tokens,
            stream,
            input_tokens: (sent / 4).max(1),
            seed: fnv1a(messages_raw.get().as_bytes()),
            turn: turn(&messages, &tools, tool_choice.as_ref()),
        })
    }
}

fn turn(messages: &[Message], tools: &[Tool], choice: Option<&ToolChoice>) -> Turn {
    let last_user = messages.iter().rev().find(|m| m.role == "user");
    if let Some(Message {
        content: Content::Blocks(blocks),
        ..
    }) = last_user
        && let Some(result) = blocks.iter().find(|b| b.kind == "tool_result")
    {
        return Turn::ToolResult {
            excerpt: excerpt(result.content.as_ref()),
        };
    }
    let tool = match choice.map(|c| (c.kind.as_str(), c.name.as_deref())) {
        Some(("none", _)) => None,
        Some(("tool", Some(name))) => tools.iter().find(|t| t.name.as_deref() == Some(name)),
        Some(("any", _)) => tools.first(),
        _ => last_user.and_then(|m| asked_tool(&user_text(m), tools)),
    };
    match tool {
        Some(tool) => Turn::CallTool {
            name: tool.name.clone().unwrap_or_default(),
            input: tool
                .input_schema
                .as_ref()
                .map(example_input)
                .unwrap_or_default(),
        },
        None => Turn::Text,
    }
}

/// The text of a user message, lower-cased.
fn user_text(message: &Message) -> String {
    match &message.content {
        Content::Text(text) => text.to_lowercase(),
        Content::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| b.text.as_deref())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
    }
}

/// With `tool_choice` auto, the tool the user's words ask for: the first whose name has a part
/// of four letters or more (split on `_`, `-` and case changes) in the last user message.
/// Agents that always send tools (Claude Code sends two dozen) thus get plain text for
/// "say hi", and a tool call for "what's the weather" when `get_weather` is offered.
fn asked_tool<'t>(text: &str, tools: &'t [Tool]) -> Option<&'t Tool> {
    tools.iter().find(|tool| {
        let name = tool.name.as_deref().unwrap_or_default();
        name_parts(name)
            .into_iter()
            .any(|part| part.len() >= 4 && text.contains(&part))
    })
}

fn name_parts(name: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(name.len() + 4);
    for (i, c) in name.char_indices() {
        if c.is_uppercase() && i > 0 {
            spaced.push(' ');
        }
        spaced.push(if c == '_' || c == '-' { ' ' } else { c });
    }
    spaced.split_whitespace().map(str::to_lowercase).collect()
}

/// An input satisfying the schema's required properties: strings "example", numbers 1,
/// booleans true, anything else null.
fn example_input(schema: &Schema) -> Map<String, Value> {
    schema
        .required
        .iter()
        .map(|name| {
            let kind = schema
                .properties
                .get(name)
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str);
            let value = match kind {
                Some("string") => Value::from("example"),
                Some("number" | "integer") => Value::from(1),
                Some("boolean") => Value::Bool(true),
                _ => Value::Null,
            };
            (name.clone(), value)
        })
        .collect()
}

/// The first 40 characters of a tool result's text.
fn excerpt(content: Option<&Value>) -> String {
    let text = match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let text = text.trim();
    if text.is_empty() {
        "(empty)".to_owned()
    } else {
        text.chars().take(40).collect()
    }
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
