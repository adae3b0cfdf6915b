//! Wire: the provider protocols as bytes and types, and nothing else.
//!
//! This crate knows what the Anthropic Messages API puts on the wire (request bodies, response
//! bodies, SSE stream events, error envelopes, batch objects) and how to read usage out of them.
//! It never performs I/O: no sockets, files, clocks, tasks or logging. Every function takes bytes
//! or values and returns bytes or values, so the whole crate is testable against recorded
//! fixtures and compiles in seconds. Upstream API churn should land here and nowhere else.
//!
//! Dialects: `anthropic` (OpenAI and Gemini will follow as sibling modules).

pub mod anthropic;
pub mod sse;
pub mod usage;
