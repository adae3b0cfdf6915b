//! The Anthropic API. Requests go upstream as the client's bytes and headers: only the client's
//! gateway credential is taken out and the upstream credential put in (`x-api-key` for API keys,
//! `Authorization: Bearer` plus the OAuth beta flag for OAuth tokens).

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::Error;
use crate::config::UpstreamConfig;
use crate::types::{KeyKind, Secret};

/// The beta flag without which the API refuses Bearer tokens.
pub const OAUTH_BETA: &str = "oauth-2025-04-20";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Client headers that must not travel upstream: hop-by-hop headers, the client's own
/// credential for us, gateway-only headers, and `accept-encoding` (the SSE tap reads plaintext).
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "accept-encoding",
    "x-api-key",
    "authorization",
    "x-client-id",
];

/// Upstream headers that describe the upstream connection rather than the answer.
const DROPPED_RESPONSE_HEADERS: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

/// The answer of one upstream call, body unread.
pub type UpstreamResponse = http::Response<Incoming>;

type Connector = HttpsConnector<HttpConnector>;

/// Calls go through hyper's pooled client directly. The upstream URI is put together from parts
/// parsed once at start: a general-purpose client parsed the whole URL (host and IDNA included)
/// several times per call, about 18,000 instructions of every proxied request.
#[derive(Clone)]
pub struct Anthropic {
    http: Client<Connector, Full<Bytes>>,
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path (`/anthropic` behind a path-routing proxy), usually empty.
    base_path: String,
    /// The `Host` of a plaintext upstream, which always speaks HTTP/1.1 here, built once. Left
    /// to the pooled client, it was formatted anew for every call to an upstream on an explicit
    /// port (about 2,200 instructions). Over TLS the connection may turn out HTTP/2, whose
    /// `:authority` the client sets itself.
    host: Option<HeaderValue>,
}

/// Which credential a call carries.
pub struct Credential<'a> {
    pub kind: KeyKind,
    pub secret: &'a Secret<String>,
}

impl Anthropic {
    pub fn new(config: &UpstreamConfig) -> Self {
        let base: Uri = config
            .base_url
            .parse()
            .expect("the configuration checked upstream.base-url");
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            // Below the ~60 s idle timeouts common in front of APIs, so a pooled connection is
            // never reused just as the far end closes it.
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_timer(TokioTimer::new())
            .build(connector);
        let scheme = base.scheme().cloned().unwrap_or(Scheme::HTTPS);
        Self {
            http: client,
            host: (scheme == Scheme::HTTP).then(|| plaintext_host(&base)),
            scheme,
            authority: base
                .authority()
                .cloned()
                .expect("the configuration checked upstream.base-url has a host"),
            base_path: base.path().trim_end_matches('/').to_owned(),
        }
    }

    /// Sends one request. `timeout` bounds the wait for the response head (streams then run
    /// under the relay's idle timeout instead).
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: Bytes,
        credential: Credential<'_>,
        timeout: Duration,
    ) -> Result<UpstreamResponse, Error> {
        let uri = self.uri(path_and_query).map_err(|_| Error::Transport)?;
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = upstream_headers(client_headers, &credential);
        if let Some(host) = &self.host {
            request.headers_mut().insert(header::HOST, host.clone());
        }
        match tokio::time::timeout(timeout, self.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_connect() => Err(Error::Connect),
            Ok(Err(_)) => Err(Error::Transport),
            Err(_) => Err(Error::Timeout),
        }
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let path_and_query = if self.base_path.is_empty() {
            PathAndQuery::try_from(path_and_query)?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.base_path))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// The cheapest call that proves a credential works: counting the tokens of one word.
    pub async fn probe(
        &self,
        credential: Credential<'_>,
        model: &str,
        timeout: Duration,
    ) -> Result<UpstreamResponse, Error> {
        let body = format!(
            r#"{{"model":{},"messages":[{{"role":"user","content":"ping"}}]}}"#,
            serde_json::Value::String(model.to_owned())
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        self.send(
            Method::POST,
            "/v1/messages/count_tokens",
            &headers,
            Bytes::from(body),
            credential,
            timeout,
        )
        .await
    }
}

/// `host[:port]`, the port named only when it is not 80, as the pooled client would write it.
fn plaintext_host(base: &Uri) -> HeaderValue {
    let host = base
        .host()
        .expect("the configuration checked upstream.base-url has a host");
    let value = match base.port_u16() {
        Some(port) if port != 80 => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&value).expect("a URI's host and port are valid header bytes")
}

fn upstream_headers(client: &HeaderMap, credential: &Credential<'_>) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(client.len() + 2);
    for (name, value) in client {
        if !DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut secret = match credential.kind {
        KeyKind::ApiKey => HeaderValue::from_str(credential.secret.expose()),
        KeyKind::OAuth => HeaderValue::from_str(&format!("Bearer {}", credential.secret.expose())),
    }
    .unwrap_or_else(|_| HeaderValue::from_static("invalid-credential-bytes"));
    secret.set_sensitive(true);
    match credential.kind {
        KeyKind::ApiKey => {
            headers.insert(HeaderName::from_static("x-api-key"), secret);
        }
        KeyKind::OAuth => {
            headers.insert(header::AUTHORIZATION, secret);
            add_oauth_beta(&mut headers);
        }
    }
    headers
}

/// Adds the OAuth beta flag to the client's `anthropic-beta` list unless it is already there.
fn add_oauth_beta(headers: &mut HeaderMap) {
    let present = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|flag| flag.trim() == OAUTH_BETA);
    if !present {
        headers.append("anthropic-beta", HeaderValue::from_static(OAUTH_BETA));
    }
}

/// The upstream's response headers as the client should see them, the hop-by-hop and framing
/// ones removed in place: the map is the client's from here on, and building a copy hashed
/// every name again.
pub fn client_response_headers(mut headers: HeaderMap) -> HeaderMap {
    // Looked for first, by comparing names: most answers carry none of them.
    if headers
        .keys()
        .any(|name| DROPPED_RESPONSE_HEADERS.contains(name))
    {
        for name in &DROPPED_RESPONSE_HEADERS {
            headers.remove(name);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "klk_client".parse().unwrap());
        h.insert("authorization", "Bearer klk_client".parse().unwrap());
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        h.append("anthropic-beta", "a-1,b-2".parse().unwrap());
        h.append("anthropic-beta", "c-3".parse().unwrap());
        h.insert("x-client-id", "bot-7".parse().unwrap());
        h.insert("x-stainless-lang", "python".parse().unwrap());
        h.insert("accept-encoding", "gzip".parse().unwrap());
        h
    }

    fn upstream(base_url: &str) -> Anthropic {
        let env: Vec<(String, String)> = Vec::new();
        let mut config = crate::config::Config::load(None, &env).unwrap().upstream;
        config.base_url = base_url.to_owned();
        Anthropic::new(&config)
    }

    #[tokio::test]
    async fn the_client_path_and_query_follow_the_base_url() {
        let direct = upstream("https://api.anthropic.com");
        assert_eq!(
            direct.uri("/v1/messages?beta=true").unwrap(),
            "https://api.anthropic.com/v1/messages?beta=true"
        );
        let behind = upstream("http://gateway.internal:8080/anthropic");
        assert_eq!(
            behind.uri("/v1/messages/count_tokens").unwrap(),
            "http://gateway.internal:8080/anthropic/v1/messages/count_tokens"
        );
    }

    /// The request head a plaintext upstream on an explicit port receives: its own `Host`, not
    /// the one the client sent to the gateway.
    #[tokio::test]
    async fn a_plaintext_upstream_is_sent_its_own_host() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let head = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                assert!(n > 0, "the connection closed before the request head ended");
                seen.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(seen).unwrap()
        });
        let mut client = client_headers();
        client.insert("host", "gateway.example:8080".parse().unwrap());
        let secret = Secret::new("sk-ant-api03-upstream".to_owned());
        let answer = upstream(&format!("http://127.0.0.1:{port}"))
            .send(
                Method::POST,
                "/v1/messages",
                &client,
                Bytes::from_static(b"{}"),
                Credential {
                    kind: KeyKind::ApiKey,
                    secret: &secret,
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let head = head.await.unwrap().to_ascii_lowercase();
        let hosts: Vec<_> = head.lines().filter(|l| l.starts_with("host:")).collect();
        assert_eq!(hosts, [format!("host: 127.0.0.1:{port}")]);
    }

    #[test]
    fn api_key_replaces_client_credential() {
        let secret = Secret::new("sk-ant-api03-upstream".to_owned());
        let h = upstream_headers(
            &client_headers(),
            &Credential {
                kind: KeyKind::ApiKey,
                secret: &secret,
            },
        );
        assert_eq!(h["x-api-key"], "sk-ant-api03-upstream");
        assert!(h.get("authorization").is_none());
        assert!(h.get("x-client-id").is_none());
        assert!(h.get("accept-encoding").is_none());
        assert_eq!(h["x-stainless-lang"], "python");
        let betas: Vec<_> = h.get_all("anthropic-beta").iter().collect();
        assert_eq!(betas, ["a-1,b-2", "c-3"], "beta headers untouched");
    }

    #[test]
    fn oauth_uses_bearer_and_adds_beta_once() {
        let secret = Secret::new("sk-ant-oat01-token".to_owned());
        let cred = Credential {
            kind: KeyKind::OAuth,
            secret: &secret,
        };
        let h = upstream_headers(&client_headers(), &cred);
        assert_eq!(h["authorization"], "Bearer sk-ant-oat01-token");
        assert!(h.get("x-api-key").is_none());
        let betas: Vec<_> = h.get_all("anthropic-beta").iter().collect();
        assert_eq!(betas, ["a-1,b-2", "c-3", OAUTH_BETA]);

        let mut already = HeaderMap::new();
        already.insert("anthropic-beta", format!("x,{OAUTH_BETA}").parse().unwrap());
        let h = upstream_headers(&already, &cred);
        assert_eq!(h.get_all("anthropic-beta").iter().count(), 1);
    }
}
