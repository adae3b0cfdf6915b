//! A cheap look into a Messages request body before it is forwarded unchanged.
//!
//! The gateway routes on `model`, picks the streaming path on `stream`, attributes usage to
//! `metadata.user_id` and prices fast mode by `speed`; everything else is forwarded as bytes.
//! So the peek reads those four fields, proves the whole body is valid JSON (a body upstream
//! would reject should not cost an attempt on a key), and skips every other value without
//! allocating.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// The fields the gateway acts on. Strings borrow from the body unless they contain escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestPeek<'a> {
    pub model: Option<Cow<'a, str>>,
    pub stream: bool,
    pub user_id: Option<Cow<'a, str>>,
    pub speed: Speed,
}

/// The request's `speed`: fast mode is billed at a multiple of the list price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Speed {
    /// No `speed`, `null`, `"standard"`, or a value the upstream will refuse (it answers 400,
    /// so nothing is billed).
    #[default]
    Standard,
    /// `"fast"`.
    Fast,
}

impl Speed {
    /// The value as the request spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Fast => "fast",
        }
    }

    /// `"fast"` is fast mode; anything else is not.
    pub fn from_wire(value: &str) -> Self {
        if value == "fast" {
            Self::Fast
        } else {
            Self::Standard
        }
    }
}

/// Why a body cannot be forwarded. Each message says what to fix; the gateway sends it to the
/// client as an `invalid_request_error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeekError {
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    NotAnObject,
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// A field we route or bill on appears twice. JSON parsers disagree on which copy wins, so
    /// forwarding it could let upstream act on a different model than the one we routed.
    DuplicateField {
        field: &'static str,
    },
    /// `model` is stored, logged and shown: it must look like a model id.
    BadModel {
        problem: &'static str,
    },
}

/// The longest `model` accepted. Model ids of every provider are far shorter; the value is
/// stored with every usage record and shown in the panel.
pub const MAX_MODEL_CHARS: usize = 256;

impl fmt::Display for PeekError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax {
                line,
                column,
                message,
            } => write!(
                f,
                "request body is not valid JSON: {message} at line {line} column {column}"
            ),
            Self::NotAnObject => f.write_str("request body must be a JSON object"),
            Self::WrongType { field, expected } => {
                write!(f, "request field `{field}` must be {expected}")
            }
            Self::DuplicateField { field } => {
                write!(f, "request field `{field}` appears more than once")
            }
            Self::BadModel { problem } => write!(f, "request field `model` {problem}"),
        }
    }
}

impl std::error::Error for PeekError {}

/// Validates `body` and reads `model`, `stream`, `metadata.user_id` and `speed` from it.
///
/// Syntax errors win over type errors: the whole body is parsed before a wrong field type is
/// reported, so the client learns about the more basic problem first.
pub fn peek_request(body: &[u8]) -> Result<RequestPeek<'_>, PeekError> {
    let text = std::str::from_utf8(body).map_err(|err| utf8_error(body, err.valid_up_to()))?;
    let peek = match serde_json::from_str::<Top<'_>>(text).map_err(syntax_error)? {
        Top::Object(fields) => fields.into_peek()?,
        Top::NotObject => return Err(PeekError::NotAnObject),
    };
    if let Some(model) = &peek.model {
        check_model(model)?;
    }
    Ok(peek)
}

/// A model id: printable ASCII letters, digits and `-._:@/+` (Bedrock and Vertex ids use the
/// last four), at most [`MAX_MODEL_CHARS`].
fn check_model(model: &str) -> Result<(), PeekError> {
    let problem = if model.is_empty() {
        "is empty"
    } else if model.len() > MAX_MODEL_CHARS {
        "is longer than 256 characters"
    } else if !model
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:@/+".contains(&b))
    {
        "may only contain letters, digits and -._:@/+"
    } else {
        return Ok(());
    };
    Err(PeekError::BadModel { problem })
}

/// Line and column (1-based) of byte `at`.
fn position(body: &[u8], at: usize) -> (usize, usize) {
    let before = &body[..at.min(body.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, before.len() - line_start + 1)
}

fn syntax_error(err: serde_json::Error) -> PeekError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let location = format!(" at line {line} column {column}");
    let mut message = full.strip_suffix(&location).unwrap_or(&full).to_owned();
    if message == "recursion limit exceeded" {
        message = "values nested deeper than 128 levels".to_owned();
    }
    PeekError::Syntax {
        line,
        column,
        message,
    }
}

/// JSON must be UTF-8 (RFC 8259 §8.1); serde_json would not notice bad bytes inside strings
/// it skips, so the check happens up front.
fn utf8_error(body: &[u8], at: usize) -> PeekError {
    let (line, column) = position(body, at);
    PeekError::Syntax {
        line,
        column,
        message: "invalid UTF-8".to_owned(),
    }
}

/// The top-level value. Type problems are recorded rather than raised so that parsing goes on
/// to the end of the body and a later syntax error is still found.
enum Top<'a> {
    Object(Fields<'a>),
    NotObject,
}

#[derive(Default)]
struct Fields<'a> {
    model: Option<Scalar<'a>>,
    stream: Option<Scalar<'a>>,
    metadata: Option<Metadata<'a>>,
    speed: Option<Scalar<'a>>,
    duplicate: Option<&'static str>,
}

/// A value where we expect a string or a bool; anything else is kept only as "wrong".
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    Other,
}

enum Metadata<'a> {
    Object {
        user_id: Option<Scalar<'a>>,
        duplicate: bool,
    },
    Null,
    Other,
}

/// Object keys we care about. Matching happens on the parser's borrowed or scratch string,
/// so keys are never allocated.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Model,
    Stream,
    Metadata,
    UserId,
    Speed,
    #[serde(other)]
    Other,
}

impl<'a> Fields<'a> {
    fn into_peek(self) -> Result<RequestPeek<'a>, PeekError> {
        if let Some(field) = self.duplicate {
            return Err(PeekError::DuplicateField { field });
        }
        let model = match self.model {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Str(model)) => Some(model),
            Some(_) => return Err(wrong_type("model", "a string")),
        };
        let stream = match self.stream {
            None | Some(Scalar::Null) => false,
            Some(Scalar::Bool(stream)) => stream,
            Some(_) => return Err(wrong_type("stream", "a boolean")),
        };
        let user_id = match self.metadata {
            None | Some(Metadata::Null) => None,
            Some(Metadata::Other) => return Err(wrong_type("metadata", "an object")),
            Some(Metadata::Object {
                duplicate: true, ..
            }) => {
                return Err(PeekError::DuplicateField {
                    field: "metadata.user_id",
                });
            }
            Some(Metadata::Object { user_id, .. }) => match user_id {
                None | Some(Scalar::Null) => None,
                Some(Scalar::Str(user_id)) => Some(user_id),
                Some(_) => return Err(wrong_type("metadata.user_id", "a string or null")),
            },
        };
        let speed = match self.speed {
            None | Some(Scalar::Null) => Speed::Standard,
            Some(Scalar::Str(speed)) => Speed::from_wire(&speed),
            Some(_) => return Err(wrong_type("speed", "a string")),
        };
        Ok(RequestPeek {
            model,
            stream,
            user_id,
            speed,
        })
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> PeekError {
    PeekError::WrongType { field, expected }
}

/// Stores `value` in `slot`, reporting whether the slot was already taken.
fn set_once<T>(slot: &mut Option<T>, value: T) -> bool {
    slot.replace(value).is_some()
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let (name, duplicate) = match key {
                Key::Model => ("model", set_once(&mut fields.model, map.next_value()?)),
                Key::Stream => ("stream", set_once(&mut fields.stream, map.next_value()?)),
                Key::Metadata => (
                    "metadata",
                    set_once(&mut fields.metadata, map.next_value()?),
                ),
                Key::Speed => ("speed", set_once(&mut fields.speed, map.next_value()?)),
                Key::UserId | Key::Other => {
                    map.next_value::<Skip>()?;
                    continue;
                }
            };
            if duplicate {
                fields.duplicate.get_or_insert(name);
            }
        }
        Ok(Top::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip::drain_seq(seq)?;
        Ok(Top::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    /// Reached only for strings with escapes, which the parser had to unescape into scratch.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip::drain_seq(seq)?;
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip::drain_map(map)?;
        Ok(Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Metadata<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MetadataVisitor)
    }
}

struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = Metadata<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut user_id = None;
        let mut duplicate = false;
        while let Some(key) = map.next_key::<Key>()? {
            if let Key::UserId = key {
                duplicate |= set_once(&mut user_id, map.next_value()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Metadata::Object { user_id, duplicate })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Metadata::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip::drain_seq(seq)?;
        Ok(Metadata::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Metadata::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Metadata::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Metadata::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Metadata::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Metadata::Other)
    }
}

/// A value the gateway does not act on, skipped without allocating but walked through
/// `deserialize_any`, so that serde_json's nesting limit (128 levels) and its number checks
/// (`1e400` is out of range) apply to it. `IgnoredAny` skips with an iterative scan that checks
/// neither: a body nested 10,000 deep would reach the provider.
struct Skip;

impl Skip {
    fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(())
    }

    fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
        Skip::drain_seq(seq).map(|()| Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        Skip::drain_map(map).map(|()| Skip)
    }
}
