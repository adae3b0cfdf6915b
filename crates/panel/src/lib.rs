//! keyloop's web panel: the single-page app built from `ui/` by `build.rs`, embedded in the
//! binary and served under `/admin/` beside the admin API it talks to (`/admin/api/…`).
//!
//! - `GET /admin` redirects to `/admin/`.
//! - `/admin/` and any other path under it that names no file and is not an asset or API path
//!   answer `index.html` (`Cache-Control: no-cache`); the app routes by URL fragment.
//! - `/admin/assets/*` are content-hashed by Vite and cached for a year, `immutable`.
//! - Every file carries an `ETag` from its embedded SHA-256; a matching `If-None-Match` gets 304.
//! - Every answer carries the security headers below; the app needs no inline script, and
//!   uPlot's element styles are covered by `style-src 'unsafe-inline'`.
//! - An `/admin/api/…` path no API route took answers a 404 in the API's error shape, never the
//!   page, so a typo in a script does not come back as HTML with status 200.

use std::borrow::Cow;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::{EmbeddedFile, RustEmbed};

#[cfg(test)]
mod tests;

/// The files of the built panel (or of the placeholder `build.rs` wrote instead).
#[derive(RustEmbed)]
#[folder = "$OUT_DIR/panel"]
struct Files;

/// How `build.rs` got the embedded files: `vite`, `prebuilt` or `placeholder`.
const BUILD: &str = env!("KEYLOOP_PANEL_BUILD");

const INDEX: &str = "index.html";
const ASSETS_PREFIX: &str = "assets/";
const API_PREFIX: &str = "api/";

const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
const CACHE_REVALIDATE: &str = "no-cache";

/// The panel's routes, to be merged into the admin listener's router next to `/admin/api/…`.
pub fn router() -> Router {
    Router::new()
        .route("/admin", get(redirect_to_root))
        .route("/admin/", get(index))
        .route("/admin/{*path}", get(file_or_index))
}

/// True when the binary carries the "panel not built" page instead of the app (Node was
/// missing at build time); the server can say so in its start-up log.
pub fn is_placeholder() -> bool {
    BUILD == "placeholder"
}

async fn redirect_to_root() -> Redirect {
    // Relative, so it also works behind a proxy that mounts the admin listener under a prefix.
    Redirect::temporary("admin/")
}

async fn index(headers: HeaderMap) -> Response {
    serve(INDEX, &headers)
}

async fn file_or_index(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.starts_with(API_PREFIX) {
        return api_not_found();
    }
    if Files::get(&path).is_some() {
        return serve(&path, &headers);
    }
    if path.starts_with(ASSETS_PREFIX) || names_a_file(&path) {
        return with_security_headers(StatusCode::NOT_FOUND.into_response());
    }
    serve(INDEX, &headers)
}

/// `favicon.ico`, `robots.txt`: a missing file is a 404, not the page.
fn names_a_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Files::get(path) else {
        return with_security_headers(StatusCode::NOT_FOUND.into_response());
    };
    let etag = etag(&file);
    let cache = if path.starts_with(ASSETS_PREFIX) {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    let mut response = if if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Body::from(into_bytes(file.data)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type(path));
        response
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response_headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex digits in quotes are a valid header value"),
    );
    with_security_headers(response)
}

/// A strong validator: the first 16 bytes of the file's SHA-256, quoted.
fn etag(file: &EmbeddedFile) -> String {
    let hash = file.metadata.sha256_hash();
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// RFC 9110 §13.1.2: a list of entity tags or `*`, compared weakly.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

fn content_type(path: &str) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || mime.subtype() == mime_guess::mime::JAVASCRIPT
        || mime.subtype() == mime_guess::mime::JSON
        || mime.suffix() == Some(mime_guess::mime::XML);
    let value = if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).expect("a mime type is a valid header value")
}

fn into_bytes(data: Cow<'static, [u8]>) -> Bytes {
    match data {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    }
}

fn api_not_found() -> Response {
    let body = r#"{"error":{"type":"not_found","message":"no such admin API route"}}"#;
    let mut response = (StatusCode::NOT_FOUND, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_security_headers(response)
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
