//! Outbound calls. A provider makes one call with one credential and reports what happened;
//! it never chooses a credential and never retries.

pub mod anthropic;
pub mod oauth;
pub mod ratelimit_headers;
pub mod subscription_headers;

pub use anthropic::Anthropic;

/// A call that produced no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not connect to the upstream")]
    Connect,
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the connection to the upstream failed")]
    Transport,
}
