//! Scripted misbehaviour: the `Scenario` vocabulary, the per-key FIFO queue, the alternate
//! (every second request) and the chaos ratio, and which endpoint may consume what.

use std::collections::VecDeque;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::auth::Denied;
use crate::error::{ApiError, ErrorKind};
use crate::keys::{Credential, permission_denied};
use crate::limits::{Dimension, Exceeded};
use crate::server::Call;
use crate::stream;

/// What the mock does instead of (or to) a normal answer. In the `/_mock/` control API a
/// scenario is a JSON object tagged by `type` in snake_case, e.g.
/// `{"type":"rate_limited","retry_after_secs":5}`, `{"type":"slow_first_token","delay_ms":300}`,
/// `{"type":"replay","status":200,"content_type":"text/event-stream","body":"…"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Scenario {
    /// 429 `rate_limit_error` with `retry-after`, `x-should-retry: true` and the
    /// rate-limit header set showing the requests dimension exhausted until then. On an
    /// OAuth key the unified headers report the windows as they are (a transient 429, not a
    /// spent quota).
    RateLimited { retry_after_secs: u64 },
    /// 529 `overloaded_error`.
    Overloaded,
    /// 500 `api_error`.
    ServerError,
    /// 401 `authentication_error` "invalid x-api-key".
    Unauthorized,
    /// 400 `invalid_request_error` with the real "credit balance is too low" message.
    CreditBalance,
    /// 400 `invalid_request_error` whose message is a validation error quoting client
    /// input that happens to contain "credit balance is too low": not the provider's
    /// billing message, so not a billing failure.
    CreditBalanceInInput,
    /// 402 `billing_error`.
    BillingError,
    /// 403 `permission_error` "Your credential does not have access to model X", naming
    /// the request's model. For a key that may never use some models, see
    /// [`MockKey::deny_models`](crate::MockKey::deny_models).
    PermissionDenied,
    /// Streams: message_start, content_block_start and ping arrive, then the first delta
    /// waits `delay`. Non-streaming: the whole response waits `delay`.
    SlowFirstToken {
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
    },
    /// Streams: `after_events` events, then the connection is dropped (no terminator, no
    /// error event). Non-streaming: half the JSON body, then the drop.
    CutMidStream { after_events: usize },
    /// Streams: `after_events` events, then silence with the connection held open until the
    /// client goes away (or the mock shuts down). Non-streaming: half the body, then silence.
    Stall { after_events: usize },
    /// Streams: message_start and ping, then an `overloaded_error` error event, before any
    /// content. Non-streaming: 529 `overloaded_error`.
    ErrorBeforeContent,
    /// Streams: `after_events` events, then an `overloaded_error` error event and the end
    /// (no message_stop). Non-streaming: 529 `overloaded_error`.
    MidStreamError { after_events: usize },
    /// Exactly these bytes with this status and content type (event streams are paced
    /// event by event like generated ones).
    Replay {
        status: u16,
        content_type: String,
        #[serde(with = "text")]
        body: Bytes,
    },
}

impl Scenario {
    /// Whether the scenario replaces the answer with a complete response of its own (as
    /// opposed to shaping or delaying a generated answer).
    pub(crate) fn is_status(&self) -> bool {
        match self {
            Scenario::RateLimited { .. }
            | Scenario::Overloaded
            | Scenario::ServerError
            | Scenario::Unauthorized
            | Scenario::CreditBalance
            | Scenario::CreditBalanceInInput
            | Scenario::BillingError
            | Scenario::PermissionDenied
            | Scenario::Replay { .. } => true,
            Scenario::SlowFirstToken { .. }
            | Scenario::CutMidStream { .. }
            | Scenario::Stall { .. }
            | Scenario::ErrorBeforeContent
            | Scenario::MidStreamError { .. } => false,
        }
    }
}

/// Which endpoint a scenario is drawn for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Consumer {
    /// `/v1/messages` and `/v1/complete`: everything applies.
    Generation,
    /// `/v1/messages/count_tokens`: only status-type scenarios apply.
    CountTokens,
}

impl Consumer {
    fn accepts(self, scenario: &Scenario) -> bool {
        self == Consumer::Generation || scenario.is_status()
    }
}

/// The scenarios scripted for one key.
#[derive(Default)]
pub(crate) struct Script {
    state: Mutex<ScriptState>,
}

#[derive(Default)]
struct ScriptState {
    queue: VecDeque<(Scenario, u32)>,
    alternate: Option<Alternate>,
    chaos: Option<(Scenario, f64)>,
}

/// A scenario for every second request the queue leaves alone.
struct Alternate {
    scenario: Scenario,
    /// Requests seen since it was set.
    seen: u64,
}

impl Script {
    pub(crate) fn push(&self, scenario: Scenario, times: u32) {
        if times > 0 {
            self.state.lock().queue.push_back((scenario, times));
        }
    }

    pub(crate) fn set_chaos(&self, scenario: Scenario, ratio: f64) {
        self.state.lock().chaos = (ratio > 0.0).then_some((scenario, ratio.min(1.0)));
    }

    pub(crate) fn set_alternate(&self, scenario: Option<Scenario>) {
        self.state.lock().alternate = scenario.map(|scenario| Alternate { scenario, seen: 0 });
    }

    pub(crate) fn clear(&self) {
        let mut state = self.state.lock();
        state.queue.clear();
        state.alternate = None;
        state.chaos = None;
    }

    /// The scenario for this request, if any: the head of the queue (consumed) when the
    /// consumer accepts it, else the alternate on every second request, else a chaos roll.
    pub(crate) fn draw(&self, consumer: Consumer) -> Option<Scenario> {
        let mut state = self.state.lock();
        if let Some((scenario, times)) = state.queue.front_mut()
            && consumer.accepts(scenario)
        {
            let drawn = scenario.clone();
            *times -= 1;
            if *times == 0 {
                state.queue.pop_front();
            }
            return Some(drawn);
        }
        if let Some(alternate) = state.alternate.as_mut() {
            alternate.seen += 1;
            if alternate.seen.is_multiple_of(2) && consumer.accepts(&alternate.scenario) {
                return Some(alternate.scenario.clone());
            }
        }
        let (scenario, ratio) = state.chaos.as_ref()?;
        (consumer.accepts(scenario) && rand::random_bool(*ratio)).then(|| scenario.clone())
    }
}

const CREDIT_BALANCE: &str = "Your credit balance is too low to access the Anthropic API. \
     Please go to Plans & Billing to upgrade or purchase credits.";

/// A validation error that quotes the client's text, which mentions a low credit balance.
const CREDIT_BALANCE_IN_INPUT: &str = "messages.0.content.0.text: the text \"Why does the \
     dashboard say my credit balance is too low?\" contains an unpaired surrogate and is not \
     valid UTF-8";

/// Not captured from the real API; 402 answers are rare (§9.2).
const BILLING: &str = "Your organization has a billing issue that prevents API access. \
     Please check Plans & Billing.";

/// The complete response of a status-type scenario; `None` for stream-shaping ones.
pub(crate) fn respond(scenario: &Scenario, call: &Call<'_>) -> Option<Response> {
    let error = match scenario {
        Scenario::RateLimited { retry_after_secs } => {
            let snapshot = call.key.limits.snapshot();
            let exceeded = Exceeded::scripted(snapshot, Dimension::Requests, *retry_after_secs);
            // The server adds an OAuth key's unified headers.
            return Some(match call.key.credential {
                Credential::ApiKey => exceeded.into_response(call.request_id),
                Credential::OAuth => exceeded.into_error_response(call.request_id),
            });
        }
        Scenario::Replay {
            status,
            content_type,
            body,
        } => {
            let interval = call.pacing().interval;
            return Some(stream::replay(
                *status,
                content_type,
                body,
                interval,
                call.stop(),
            ));
        }
        Scenario::Overloaded => ApiError::overloaded(),
        Scenario::ServerError => ApiError::new(ErrorKind::ApiError, "Internal server error"),
        Scenario::Unauthorized => Denied::InvalidApiKey.into_error(),
        Scenario::CreditBalance => ApiError::invalid(CREDIT_BALANCE),
        Scenario::CreditBalanceInInput => ApiError::invalid(CREDIT_BALANCE_IN_INPUT),
        Scenario::BillingError => ApiError::new(ErrorKind::BillingError, BILLING),
        Scenario::PermissionDenied => permission_denied(&requested_model(call.body)),
        Scenario::SlowFirstToken { .. }
        | Scenario::CutMidStream { .. }
        | Scenario::Stall { .. }
        | Scenario::ErrorBeforeContent
        | Scenario::MidStreamError { .. } => return None,
    };
    Some(call.error(error))
}

/// The `model` of a request body, for answers given before the body is validated.
fn requested_model(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Peek {
        model: Option<String>,
    }
    serde_json::from_slice::<Peek>(body)
        .ok()
        .and_then(|peek| peek.model)
        .unwrap_or_else(|| "unknown".to_owned())
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Replay bodies travel as JSON strings in the control API.
mod text {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        String::deserialize(d).map(Bytes::from)
    }
}
