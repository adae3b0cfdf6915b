use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{Files, router};

async fn send(app: Router, method: Method, uri: &str, if_none_match: Option<&str>) -> Response {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    app.oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn get_path(uri: &str) -> Response {
    send(router(), Method::GET, uri, None).await
}

async fn body(response: Response) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn header_of(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn an_asset() -> String {
    Files::iter()
        .find(|path| path.starts_with("assets/"))
        .expect("both the app and the placeholder have a file under assets/")
        .into_owned()
}

#[tokio::test]
async fn bare_mount_redirects_to_the_slash() {
    let response = get_path("/admin").await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header_of(&response, header::LOCATION), "admin/");
}

#[tokio::test]
async fn root_is_the_page_revalidated_every_time_with_security_headers() {
    let response = get_path("/admin/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
    assert_eq!(
        header_of(&response, header::CONTENT_SECURITY_POLICY),
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
    );
    assert_eq!(header_of(&response, header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(header_of(&response, header::REFERRER_POLICY), "no-referrer");
    assert_eq!(
        header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    let etag = header_of(&response, header::ETAG);
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34);

    let page = body(response).await;
    assert_eq!(page, Files::get("index.html").unwrap().data.as_ref());
}

#[tokio::test]
async fn unknown_page_paths_get_the_page() {
    let root = body(get_path("/admin/").await).await;
    for path in ["/admin/credentials", "/admin/requests/abc"] {
        let response = get_path(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(body(response).await, root, "{path}");
    }
}

#[tokio::test]
async fn matching_etag_gets_not_modified_without_a_body() {
    let etag = header_of(&get_path("/admin/").await, header::ETAG).to_owned();
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let response = send(router(), Method::GET, "/admin/", Some(&tag)).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(header_of(&response, header::ETAG), etag);
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert!(body(response).await.is_empty());
    }
    let stale = send(router(), Method::GET, "/admin/", Some("\"0000\"")).await;
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn hashed_assets_are_immutable_with_their_own_type() {
    let asset = an_asset();
    let response = get_path(&format!("/admin/{asset}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let content_type = header_of(&response, header::CONTENT_TYPE).to_owned();
    let expected = if asset.ends_with(".js") {
        "text/javascript; charset=utf-8"
    } else if asset.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        content_type.as_str()
    };
    assert_eq!(content_type, expected, "{asset}");
    assert_eq!(
        body(response).await,
        Files::get(&asset).unwrap().data.as_ref()
    );
}

#[tokio::test]
async fn head_answers_headers_only() {
    let response = send(router(), Method::HEAD, "/admin/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(header::ETAG));
    assert!(body(response).await.is_empty());
}

#[tokio::test]
async fn missing_files_are_not_found_rather_than_the_page() {
    for path in ["/admin/assets/index-00000000.js", "/admin/favicon.ico"] {
        let response = get_path(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
    }
}

#[tokio::test]
async fn unknown_api_paths_get_an_api_error_not_the_page() {
    let response = get_path("/admin/api/no-such-route").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "application/json"
    );
    let error: &[u8] = br#"{"error":{"type":"not_found","message":"no such admin API route"}}"#;
    assert_eq!(body(response).await, error);
}

#[tokio::test]
async fn api_routes_merged_or_nested_beside_it_take_precedence() {
    let api = || Router::new().route("/session", get(|| async { "api" }));
    let merged = router().merge(Router::new().route("/admin/api/session", get(|| async { "api" })));
    let nested = router().nest("/admin/api", api());
    for app in [merged, nested] {
        let response = send(app.clone(), Method::GET, "/admin/api/session", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(response).await, b"api");
        let page = send(app, Method::GET, "/admin/", None).await;
        assert_eq!(page.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn placeholder_says_how_to_get_the_panel() {
    let page = String::from_utf8(body(get_path("/admin/").await).await).unwrap();
    assert_eq!(
        super::is_placeholder(),
        page.contains("panel not built"),
        "build kind {}",
        super::BUILD
    );
}
