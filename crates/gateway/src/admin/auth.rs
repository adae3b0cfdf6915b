//! Who may use the admin API: the holder of the admin token, or a panel session opened with it.
//!
//! - The token comes from the config (`admin.token`), else its digest from the store; with
//!   neither, one is generated on first start, shown once on a terminal (else written to a
//!   0600 file in the data directory) and kept only as a SHA-256 digest.
//! - Tokens are compared as digests in constant time.
//! - An address that fails 5 times in a row is locked out for 1 s, then 2, 4 … up to 5 min per
//!   further failure; the right token ends it. Lock-outs answer 429 without looking at the token.
//! - Panel sessions are random ids in an HttpOnly, SameSite=Strict cookie, held in memory
//!   (a restart signs everyone out) and valid for 12 hours.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::store::{self, Store};
use crate::types::{EpochMs, Secret, now_ms};

pub const COOKIE: &str = "keyloop_admin";
const SESSION_MS: EpochMs = 12 * 3_600_000;
/// Sessions beyond this are refused rather than letting memory grow.
const MAX_SESSIONS: usize = 10_000;
const FREE_FAILURES: u32 = 5;
const MAX_LOCKOUT_S: u64 = 300;
/// Failures this far apart are not "repeated": the count starts over.
const FORGET_AFTER_MS: EpochMs = 15 * 60_000;
/// Failure records kept before the stale ones are swept.
const MAX_TRACKED_ADDRESSES: usize = 10_000;
const TOKEN_DIGEST_META: &str = "admin_token_digest";

type Digest32 = [u8; 32];

fn digest(value: &str) -> Digest32 {
    Sha256::digest(value.as_bytes()).into()
}

/// The admin token's digest: the configured token's, the stored one, or a new token's, which is
/// printed once on stderr (never logged).
pub async fn load_token(
    store: &dyn Store,
    configured: Option<&Secret<String>>,
    data_dir: &Path,
) -> store::Result<Digest32> {
    if let Some(token) = configured {
        return Ok(digest(token.expose()));
    }
    if let Some(stored) = stored_token(store).await? {
        return Ok(stored);
    }
    let token = reset_token(store).await?;
    hand_over(&token, data_dir);
    Ok(digest(token.expose()))
}

/// The generated token is the permanent admin credential, so it never goes to a log stream
/// (service managers keep stderr): a person at a terminal sees it once; otherwise it is written
/// to a file only its owner can read, and the log says where.
fn hand_over(token: &Secret<String>, data_dir: &Path) {
    if std::io::stderr().is_terminal() {
        eprintln!(
            "\n  keyloop generated an admin token (shown only this once; keep it safe):\n\n    {}\n\n  \
             Sign in to the panel with it. `keyloop admin reset-token` makes a new one.\n",
            token.expose()
        );
        tracing::warn!("generated a new admin token and showed it on the terminal");
        return;
    }
    let path = data_dir.join(TOKEN_FILE);
    let text = format!("{}\n", token.expose());
    match crate::vault::write_private(&path, text.as_bytes(), true) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            "generated a new admin token and wrote it to this file (readable by its owner only); \
             read it, then delete the file"
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "generated a new admin token but could not write it; run `keyloop admin reset-token`"
        ),
    }
}

/// Where a generated admin token goes when no terminal is there to show it.
pub const TOKEN_FILE: &str = "admin-token";

/// The stored token's digest, if one was generated.
pub async fn stored_token(store: &dyn Store) -> store::Result<Option<Digest32>> {
    Ok(store
        .meta(TOKEN_DIGEST_META)
        .await?
        .and_then(|stored| Digest32::try_from(stored.as_slice()).ok()))
}

/// Makes a new admin token and stores its digest; the old one stops working (a running server
/// notices within seconds, see `Gate::set_token`).
pub async fn reset_token(store: &dyn Store) -> store::Result<Secret<String>> {
    let token = Secret::new(format!("kla_{}", random_hex::<24>()));
    store
        .set_meta(TOKEN_DIGEST_META, &digest(token.expose()))
        .await?;
    Ok(token)
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// Who made an admin call, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    /// "admin" (the token) or "session 1a2b3c4d" (a panel session, by a short fingerprint).
    pub name: String,
    pub remote: Option<IpAddr>,
}

impl Actor {
    /// The command line, run by whoever can read the store and its master key.
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            remote: None,
        }
    }
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: EpochMs,
    last: EpochMs,
}

struct Session {
    expires_at: EpochMs,
}

/// Checks tokens and sessions. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    token: Mutex<Digest32>,
    sessions: Mutex<HashMap<Digest32, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Gate {
    pub fn new(token_digest: Digest32) -> Self {
        Self {
            inner: Arc::new(GateInner {
                token: Mutex::new(token_digest),
                sessions: Mutex::new(HashMap::new()),
                failures: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Refuses an address that is locked out, before any token is looked at.
    fn check_lockout(&self, remote: Option<IpAddr>, now: EpochMs) -> Result<(), ApiError> {
        let Some(ip) = remote else { return Ok(()) };
        let failures = self.inner.failures.lock();
        match failures.get(&ip) {
            Some(f) if f.locked_until > now => Err(ApiError::locked_out(
                ((f.locked_until - now) as u64).div_ceil(1000),
            )),
            _ => Ok(()),
        }
    }

    fn failed(&self, remote: Option<IpAddr>, now: EpochMs) {
        let Some(ip) = remote else { return };
        let mut failures = self.inner.failures.lock();
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            failures.retain(|_, f| now - f.last < FORGET_AFTER_MS || f.locked_until > now);
            if failures.len() >= MAX_TRACKED_ADDRESSES {
                // A flood of addresses: keep only those locked out now.
                failures.retain(|_, f| f.locked_until > now);
            }
        }
        let f = failures.entry(ip).or_default();
        if now - f.last >= FORGET_AFTER_MS {
            // An old typo does not count against today's attempt.
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count >= FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES).min(16);
            let secs = (1u64 << doublings).min(MAX_LOCKOUT_S);
            f.locked_until = now + (secs * 1000) as EpochMs;
            tracing::warn!(remote = %ip, failures = f.count, lockout_s = secs, "admin sign-in failures");
        }
    }

    fn succeeded(&self, remote: Option<IpAddr>) {
        if let Some(ip) = remote {
            self.inner.failures.lock().remove(&ip);
        }
    }

    fn token_matches(&self, presented: &str) -> bool {
        let expected = *self.inner.token.lock();
        digest(presented).ct_eq(&expected).into()
    }

    /// Takes a token reset from the CLI. Panel sessions opened with the old token end too: a
    /// reset is how a leaked token is revoked.
    pub fn set_token(&self, token_digest: Digest32) {
        let mut token = self.inner.token.lock();
        if *token != token_digest {
            *token = token_digest;
            drop(token);
            self.inner.sessions.lock().clear();
            tracing::info!("the admin token was reset; the new one is in force, sessions ended");
        }
    }

    /// Checks a token offered at sign-in; on success opens a session and returns its id and
    /// expiry.
    pub fn sign_in(
        &self,
        presented: &str,
        remote: Option<IpAddr>,
    ) -> Result<(String, EpochMs), ApiError> {
        let now = now_ms();
        self.check_lockout(remote, now)?;
        if !self.token_matches(presented) {
            self.failed(remote, now);
            return Err(ApiError::unauthorized("wrong admin token"));
        }
        self.succeeded(remote);
        let id = random_hex::<32>();
        let expires_at = now + SESSION_MS;
        let mut sessions = self.inner.sessions.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires_at > now);
        }
        if sessions.len() >= MAX_SESSIONS {
            return Err(ApiError::conflict(
                "too many open sessions; sign out elsewhere",
            ));
        }
        sessions.insert(digest(&id), Session { expires_at });
        Ok((id, expires_at))
    }

    pub fn sign_out(&self, session_id: &str) {
        self.inner.sessions.lock().remove(&digest(session_id));
    }

    /// Who is calling, from the bearer token or the session cookie.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        remote: Option<IpAddr>,
    ) -> Result<(Actor, Option<EpochMs>), ApiError> {
        let now = now_ms();
        if let Some(session) = session_cookie(headers) {
            let key = digest(session);
            let mut sessions = self.inner.sessions.lock();
            match sessions.get(&key) {
                Some(s) if s.expires_at > now => {
                    let actor = Actor {
                        name: format!("session {}", &hex::encode(key)[..8]),
                        remote,
                    };
                    return Ok((actor, Some(s.expires_at)));
                }
                Some(_) => {
                    sessions.remove(&key);
                }
                None => {}
            }
        }
        let Some(token) = bearer(headers) else {
            return Err(ApiError::unauthorized(
                "sign in: send `Authorization: Bearer <admin token>` or use the panel",
            ));
        };
        self.check_lockout(remote, now)?;
        if !self.token_matches(token) {
            self.failed(remote, now);
            return Err(ApiError::unauthorized("wrong admin token"));
        }
        self.succeeded(remote);
        Ok((
            Actor {
                name: "admin".into(),
                remote,
            },
            None,
        ))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

pub fn set_cookie(session_id: &str) -> HeaderValue {
    let value = format!(
        "{COOKIE}={session_id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_MS / 1000
    );
    HeaderValue::from_str(&value).expect("hex session ids are valid header text")
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("keyloop_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub fn remote_of(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// A change made with the session cookie must come from the panel's own page. The cookie is
/// SameSite=Strict, but every port of 127.0.0.1 is the same "site", so a page served by any
/// other local program could otherwise post forms with it. Browsers send `Origin` (and
/// `Sec-Fetch-Site`) on every such request; scripts using the token are not affected.
fn same_origin(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host),
        // No Origin at all: not a browser's cross-site request.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// Middleware: lets an authenticated call through with its [`Actor`] attached.
pub async fn require(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let remote = remote_of(&request);
    match gate.authenticate(request.headers(), remote) {
        Ok((actor, expires_at))
            if expires_at.is_some() && !request.method().is_safe() && !same_origin(&request) =>
        {
            tracing::warn!(actor = %actor.name, method = %request.method(), "admin: cross-origin change refused");
            ApiError::forbidden("a change with the panel's cookie must come from the panel itself")
                .into_response()
        }
        Ok((actor, expires_at)) => {
            request.extensions_mut().insert(actor);
            request.extensions_mut().insert(SessionExpiry(expires_at));
            next.run(request).await
        }
        Err(e) => {
            let mut response = e.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"keyloop admin\""),
                );
            }
            response
        }
    }
}

/// When the caller's panel session ends (None for the token).
#[derive(Clone, Copy, Debug)]
pub struct SessionExpiry(pub Option<EpochMs>);

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(digest("the-right-token-123"))
    }

    fn ip() -> Option<IpAddr> {
        Some("10.0.0.7".parse().unwrap())
    }

    #[test]
    fn five_failures_lock_the_address_out_and_the_lockout_doubles() {
        let gate = gate();
        for _ in 0..4 {
            assert_eq!(
                gate.sign_in("wrong", ip()).unwrap_err().status,
                StatusCode::UNAUTHORIZED
            );
        }
        // The fifth failure locks for 1 s; even the right token is refused meanwhile.
        gate.sign_in("wrong", ip()).unwrap_err();
        let locked = gate.sign_in("the-right-token-123", ip()).unwrap_err();
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(locked.retry_after_s, Some(1));
        // Another address is not affected.
        assert!(
            gate.sign_in("the-right-token-123", Some("10.0.0.8".parse().unwrap()))
                .is_ok()
        );
        // The next failure (after the lock) doubles it.
        gate.inner
            .failures
            .lock()
            .get_mut(&ip().unwrap())
            .unwrap()
            .locked_until = 0;
        gate.sign_in("wrong", ip()).unwrap_err();
        assert_eq!(gate.sign_in("x", ip()).unwrap_err().retry_after_s, Some(2));
        // The right token after the lock clears the record.
        gate.inner
            .failures
            .lock()
            .get_mut(&ip().unwrap())
            .unwrap()
            .locked_until = 0;
        assert!(gate.sign_in("the-right-token-123", ip()).is_ok());
        assert!(gate.inner.failures.lock().get(&ip().unwrap()).is_none());
    }

    #[test]
    fn sessions_authenticate_until_signed_out() {
        let gate = gate();
        let (id, _) = gate.sign_in("the-right-token-123", ip()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).unwrap(),
        );
        let (actor, expiry) = gate.authenticate(&headers, ip()).unwrap();
        assert!(actor.name.starts_with("session "));
        assert!(expiry.is_some());
        gate.sign_out(&id);
        assert!(gate.authenticate(&headers, ip()).is_err());
    }

    #[test]
    fn a_reset_token_ends_open_sessions_and_old_failures_are_forgotten() {
        let gate = gate();
        let (id, _) = gate.sign_in("the-right-token-123", ip()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={id}")).unwrap(),
        );
        gate.set_token(digest("another-token-4567"));
        assert!(gate.authenticate(&headers, ip()).is_err());
        assert!(
            gate.sign_in("the-right-token-123", Some("10.9.9.9".parse().unwrap()))
                .is_err()
        );

        for _ in 0..4 {
            gate.sign_in("wrong", ip()).unwrap_err();
        }
        // Twenty minutes later the earlier typos no longer count towards a lock-out.
        gate.inner
            .failures
            .lock()
            .get_mut(&ip().unwrap())
            .unwrap()
            .last -= 20 * 60_000;
        assert_eq!(
            gate.sign_in("wrong", ip()).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert!(gate.sign_in("another-token-4567", ip()).is_ok());
    }

    #[test]
    fn bearer_token_is_checked() {
        let gate = gate();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(gate.authenticate(&headers, ip()).is_err());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer the-right-token-123"),
        );
        assert_eq!(gate.authenticate(&headers, ip()).unwrap().0.name, "admin");
    }
}
