//! Batch ids and rewriting `results_url` to point at the gateway.

use keyloop_wire::anthropic::{batch_id, batch_ids_in_page, rewrite_results_url};

const ENDED: &str = r#"{"id":"msgbatch_01Ended","type":"message_batch","processing_status":"ended","request_counts":{"processing":0,"succeeded":2,"errored":0,"canceled":0,"expired":0},"results_url":"https://api.anthropic.com/v1/messages/batches/msgbatch_01Ended/results","created_at":"2026-01-01T12:00:00Z","expires_at":"2026-01-02T12:00:00Z","ended_at":"2026-01-01T12:30:00Z","cancel_initiated_at":null,"archived_at":null,"zz_future_field":{"b":1,"a":[2.5,"x"]}}"#;

const RUNNING: &str = r#"{"processing_status":"in_progress","id":"msgbatch_01Running","type":"message_batch","results_url":null,"request_counts":{"processing":3,"succeeded":0,"errored":0,"canceled":0,"expired":0}}"#;

const UPSTREAM_URL: &str = "https://api.anthropic.com/v1/messages/batches/msgbatch_01Ended/results";
const GATEWAY_URL: &str = "https://gw.example/v1/messages/batches/msgbatch_01Ended/results";

fn rewrite(body: &str, base_url: &str) -> Option<String> {
    rewrite_results_url(body.as_bytes(), base_url).map(|out| String::from_utf8(out).unwrap())
}

#[test]
fn rewrites_a_batch_keeping_every_other_byte() {
    let expected = ENDED.replace(UPSTREAM_URL, GATEWAY_URL);
    assert_ne!(expected, ENDED);
    assert_eq!(
        rewrite(ENDED, "https://gw.example").as_deref(),
        Some(&*expected)
    );
    assert_eq!(
        rewrite(ENDED, "https://gw.example/").as_deref(),
        Some(&*expected)
    );
}

#[test]
fn leaves_a_null_results_url_alone() {
    assert_eq!(
        rewrite(RUNNING, "https://gw.example").as_deref(),
        Some(RUNNING)
    );
}

#[test]
fn rewrites_each_batch_in_a_list_page() {
    let page = format!(
        r#"{{"data":[{RUNNING},{ENDED}],"has_more":true,"first_id":"msgbatch_01Running","last_id":"msgbatch_01Ended"}}"#
    );
    let expected = page.replace(UPSTREAM_URL, GATEWAY_URL);
    assert_eq!(
        rewrite(&page, "https://gw.example").as_deref(),
        Some(&*expected)
    );
}

#[test]
fn encodes_ids_that_could_escape_the_path() {
    let body = r#"{"id":"../x?y","results_url":"https://api.anthropic.com/z"}"#;
    assert_eq!(
        rewrite(body, "http://gw").as_deref(),
        Some(
            r#"{"id":"../x?y","results_url":"http://gw/v1/messages/batches/%2E%2E%2Fx%3Fy/results"}"#
        )
    );
}

#[test]
fn refuses_bodies_that_are_not_batches_or_pages() {
    for body in [
        "not json",
        "[]",
        r#"{"type":"error","error":{"type":"not_found_error","message":"x"}}"#,
        r#"{"id":7,"results_url":"u"}"#,
        r#"{"data":{"id":"x"}}"#,
    ] {
        assert_eq!(rewrite(body, "http://gw"), None, "{body}");
    }
}

#[test]
fn reads_batch_ids() {
    assert_eq!(
        batch_id(ENDED.as_bytes()).as_deref(),
        Some("msgbatch_01Ended")
    );
    assert_eq!(batch_id(b"{}"), None);
    assert_eq!(batch_id(b"<html>"), None);

    let page = format!(r#"{{"data":[{RUNNING},{ENDED}],"has_more":false}}"#);
    assert_eq!(
        batch_ids_in_page(page.as_bytes()),
        ["msgbatch_01Running", "msgbatch_01Ended"]
    );
    assert!(batch_ids_in_page(ENDED.as_bytes()).is_empty());
    assert!(batch_ids_in_page(b"nope").is_empty());
}
