//! Usage and cost: turning each finished request into a priced usage record and handing it to
//! a bounded background writer. Imports no framework or driver; the request path never waits
//! on the store.

pub mod record;

pub use record::{FailedAttempt, RequestOutcome, Route, UsageRecord};
