//! The background prober: returns cooling and disabled credentials to rotation by calling the
//! cheapest endpoint the provider offers (count_tokens) — one probe per credential at a time.
//! The pool decides who is due; this task only makes the calls and reports back.

use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::outcome::{classify, classify_transport};
use crate::pool::{KeyPool, ProbeNow, ProbeRefused, ProbeTicket};
use crate::providers::Anthropic;
use crate::providers::anthropic::Credential;
use crate::types::{KeyId, Outcome, OutcomeClass, now_ms};

/// Longest sleep between checks, in case a wake-up was missed.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// Probe answers are tiny; anything bigger is not read.
const PROBE_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct Prober {
    pub pool: KeyPool,
    pub upstream: Anthropic,
    pub model: String,
    pub timeout: Duration,
}

impl Prober {
    pub async fn run(self, tracker: TaskTracker, shutdown: CancellationToken) {
        let mut transitions = self.pool.subscribe();
        loop {
            for ticket in self.pool.due_probes(now_ms()) {
                let pool = self.pool.clone();
                let upstream = self.upstream.clone();
                let model = self.model.clone();
                let timeout = self.timeout;
                tracker.spawn(async move {
                    probe_one(pool, upstream, ticket, &model, timeout).await;
                });
            }
            let sleep = self
                .pool
                .next_wake()
                .map(|at| Duration::from_millis((at - now_ms()).max(5) as u64))
                .unwrap_or(MAX_IDLE)
                .min(MAX_IDLE);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(sleep) => {}
                // A new cooldown may end sooner than what we were sleeping towards.
                _ = transitions.recv() => {}
            }
        }
    }

    /// The operator's "probe now": checks the key at once through the pool's state machine
    /// (see `KeyPool::probe_now`) and returns what the provider said.
    pub async fn probe_now(&self, id: &KeyId) -> Result<Outcome, ProbeRefused> {
        let probe = self.pool.probe_now(id, now_ms())?;
        let (kind, secret, name) = match &probe {
            ProbeNow::Ticket(t) => (t.kind, &t.secret, t.name.as_str()),
            ProbeNow::Lease(l) => (l.kind(), l.secret(), l.name()),
        };
        let outcome = check(
            &self.upstream,
            Credential { kind, secret },
            &self.model,
            self.timeout,
        )
        .await;
        tracing::info!(key = %name, outcome = outcome.class.as_str(), "operator's probe finished");
        match probe {
            ProbeNow::Ticket(ticket) => self.pool.probe_finished(ticket, &outcome, now_ms()),
            ProbeNow::Lease(lease) => {
                self.pool.report(&lease, &outcome, now_ms());
            }
        }
        Ok(outcome)
    }
}

async fn probe_one(
    pool: KeyPool,
    upstream: Anthropic,
    ticket: ProbeTicket,
    model: &str,
    timeout: Duration,
) {
    let credential = Credential {
        kind: ticket.kind,
        secret: &ticket.secret,
    };
    let outcome = check(&upstream, credential, model, timeout).await;
    tracing::info!(key = %ticket.name, outcome = outcome.class.as_str(), "probe finished");
    pool.probe_finished(ticket, &outcome, now_ms());
}

/// One probe call (count_tokens) with `credential`, classified. Used by the prober and by the
/// operator's "probe now".
pub async fn check(
    upstream: &Anthropic,
    credential: Credential<'_>,
    model: &str,
    timeout: Duration,
) -> Outcome {
    // One deadline for the answer and its body: an upstream that sends the head and then
    // trickles (or holds) the body must not hold the credential's probe slot forever.
    let deadline = tokio::time::Instant::now() + timeout;
    match upstream.probe(credential, model, timeout).await {
        Ok(response) => {
            let (parts, upstream) = response.into_parts();
            let mut body = Vec::new();
            let mut chunks = upstream.into_data_stream();
            loop {
                match tokio::time::timeout_at(deadline, chunks.next()).await {
                    Err(_) => return Outcome::of(OutcomeClass::Timeout),
                    Ok(Some(Ok(chunk))) if body.len() + chunk.len() <= PROBE_BODY_LIMIT => {
                        body.extend_from_slice(&chunk);
                    }
                    Ok(_) => break,
                }
            }
            classify(parts.status, &parts.headers, &body, Some(model), now_ms())
        }
        Err(e) => classify_transport(&e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::check;
    use crate::config::Config;
    use crate::providers::Anthropic;
    use crate::providers::anthropic::Credential;
    use crate::types::{KeyKind, OutcomeClass, Secret};

    #[tokio::test]
    async fn a_probe_whose_body_never_comes_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers the head at once, promises a body, and never sends it.
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
                .await
                .unwrap();
            socket
        });
        let env = vec![(
            "KEYLOOP_UPSTREAM__BASE_URL".to_owned(),
            format!("http://{addr}"),
        )];
        let config = Config::load(None, &env).unwrap();
        let upstream = Anthropic::new(&config.upstream);
        let secret = Secret::new("sk-ant-api03-probe-test-000000000000".to_owned());
        let outcome = check(
            &upstream,
            Credential {
                kind: KeyKind::ApiKey,
                secret: &secret,
            },
            "claude-haiku-5-5",
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(outcome.class, OutcomeClass::Timeout);
        drop(server.await.unwrap());
    }
}
