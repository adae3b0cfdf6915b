//! The Anthropic dialect: Messages requests, responses, stream events, errors and batches.

pub mod batch;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;

pub use batch::{batch_id, batch_ids_in_page, rewrite_results_url};
pub use error::{
    ErrorType, UpstreamError, error_body, error_event, is_credit_exhausted, parse_error_body,
};
pub use request::{PeekError, RequestPeek, Speed, peek_request};
pub use response::{MessageSummary, summarize_message};
pub use stream::{EventKind, StreamTap};
