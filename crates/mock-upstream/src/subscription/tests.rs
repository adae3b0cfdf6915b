use std::time::Duration;

use super::*;

fn windows(subscription: Subscription) -> Windows {
    Windows::new(subscription, Clock::start())
}

fn small() -> Subscription {
    Subscription {
        five_hour: 2,
        seven_day: 10,
        ..Subscription::default()
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers[name].to_str().unwrap()
}

fn headers_of(report: &Report) -> HeaderMap {
    let mut headers = HeaderMap::new();
    report.write_headers(&mut headers);
    headers
}

#[tokio::test(start_paused = true)]
async fn a_full_window_refuses_until_its_reset() {
    let windows = windows(small());
    windows.admit("claude-sonnet-5-5").unwrap();
    windows.admit("claude-sonnet-5-5").unwrap();
    let refused = windows.admit("claude-sonnet-5-5").unwrap_err();
    assert_eq!(refused.retry_after_secs, 5 * 60 * 60);
    assert_eq!(refused.report.claim, Window::FiveHour);
    tokio::time::advance(Duration::from_secs(5 * 60 * 60 - 1)).await;
    assert_eq!(windows.admit("m").unwrap_err().retry_after_secs, 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (report, charge) = windows.admit("m").unwrap();
    assert_eq!(charge, Charge::Included);
    let five = report
        .windows
        .iter()
        .find(|w| w.window == Window::FiveHour)
        .unwrap();
    assert_eq!(five.utilization, 0.5);
    let seven = report
        .windows
        .iter()
        .find(|w| w.window == Window::SevenDay)
        .unwrap();
    assert_eq!(seven.utilization, 0.3, "the 7-day window kept its count");
}

#[tokio::test(start_paused = true)]
async fn windows_roll_over_by_whole_lengths() {
    let windows = windows(small());
    windows.set_utilization(Window::FiveHour, 1.0).unwrap();
    let before = windows.snapshot(None);
    // Three and a half lengths later: the window ends 4 lengths after start.
    tokio::time::advance(FIVE_HOURS * 7 / 2).await;
    let after = windows.snapshot(None);
    let reset = |r: &Report| r.windows[0].reset;
    assert_eq!(reset(&after) - reset(&before), 3 * 5 * 60 * 60);
    assert_eq!(after.windows[0].utilization, 0.0);
}

#[tokio::test(start_paused = true)]
async fn warning_threshold_and_representative_claim() {
    let windows = windows(small());
    windows.set_utilization(Window::SevenDay, 0.8).unwrap();
    let headers = headers_of(&windows.snapshot(None));
    assert_eq!(header(&headers, STATUS), "allowed_warning");
    assert_eq!(header(&headers, CLAIM), "seven_day");
    assert_eq!(
        header(&headers, "anthropic-ratelimit-unified-7d-status"),
        "allowed_warning"
    );
    assert_eq!(
        header(&headers, "anthropic-ratelimit-unified-7d-utilization"),
        "0.80"
    );
    assert_eq!(
        header(
            &headers,
            "anthropic-ratelimit-unified-7d-surpassed-threshold"
        ),
        "0.75"
    );
    assert!(!headers.contains_key("anthropic-ratelimit-unified-5h-surpassed-threshold"));
    assert_eq!(
        header(&headers, RESET),
        header(&headers, "anthropic-ratelimit-unified-7d-reset")
    );
}

#[tokio::test(start_paused = true)]
async fn scoped_windows_hold_back_only_their_models() {
    let windows = windows(Subscription {
        seven_day_opus: Some(1),
        ..Subscription::default()
    });
    windows.admit("claude-opus-5-5").unwrap();
    let refused = windows.admit("claude-opus-5-5").unwrap_err();
    assert_eq!(refused.report.claim, Window::SevenDayOpus);
    let (report, _) = windows.admit("claude-sonnet-5-5").unwrap();
    let headers = headers_of(&report);
    assert_eq!(header(&headers, STATUS), "allowed");
    assert_eq!(
        header(&headers, "anthropic-ratelimit-unified-7d_opus-status"),
        "rejected"
    );
    assert!(!headers.contains_key("anthropic-ratelimit-unified-7d_sonnet-status"));
}

#[tokio::test(start_paused = true)]
async fn overage_serves_once_included_windows_are_spent() {
    let windows = windows(Subscription {
        five_hour: 1,
        seven_day_overage_included: Some(3),
        overage: Some(Overage {
            credit: 1,
            disabled_reason: None,
        }),
        ..Subscription::default()
    });
    windows.admit("m").unwrap();
    let (report, charge) = windows.admit("m").unwrap();
    assert_eq!(charge, Charge::Overage);
    let headers = headers_of(&report);
    assert_eq!(header(&headers, OVERAGE_IN_USE), "true");
    assert_eq!(
        header(&headers, "anthropic-ratelimit-unified-7d_oi-utilization"),
        "0.67"
    );
    // Credit spent: refused, overage rejected as out of credits.
    let refused = windows.admit("m").unwrap_err();
    let headers = headers_of(&refused.report);
    assert_eq!(header(&headers, STATUS), "rejected");
    assert_eq!(header(&headers, OVERAGE_STATUS), "rejected");
    assert_eq!(header(&headers, OVERAGE_DISABLED), "out_of_credits");
    assert_eq!(header(&headers, OVERAGE_IN_USE), "false");
}

#[tokio::test(start_paused = true)]
async fn a_window_with_room_left_serves_one_more_request() {
    let windows = windows(Subscription {
        five_hour: 3,
        ..Subscription::default()
    });
    windows.set_utilization(Window::FiveHour, 0.9).unwrap();
    let (report, _) = windows.admit("m").unwrap();
    assert_eq!(report.windows[0].utilization, 1.0);
    assert_eq!(report.windows[0].status, Status::Rejected);
    windows.admit("m").unwrap_err();
}

#[tokio::test(start_paused = true)]
async fn a_refund_gives_back_what_was_taken() {
    let windows = windows(small());
    let (_, charge) = windows.admit("m").unwrap();
    windows.refund("m", charge);
    assert_eq!(windows.snapshot(None).windows[0].utilization, 0.0);
}

#[test]
fn values_and_names() {
    assert_eq!(decimal(0.424), "0.42");
    assert_eq!(decimal(1.0), "1.00");
    assert_eq!(Window::SevenDayOverageIncluded.as_str(), "7d_oi");
    assert_eq!(
        Window::SevenDayOverageIncluded.claim(),
        "seven_day_overage_included"
    );
    assert_eq!(
        SEVEN_DAY_SONNET.surpassed,
        "anthropic-ratelimit-unified-7d_sonnet-surpassed-threshold"
    );
    let clock = Clock {
        start: Instant::now(),
        epoch: Timestamp::from_second(1_767_268_800).unwrap(), // 2026-01-01T12:00:00Z
    };
    assert_eq!(clock.next_month_secs(clock.start), 1_769_904_000); // 2026-02-01T00:00:00Z
    assert_eq!(
        clock.epoch_secs(clock.start + Duration::from_millis(1_200)),
        1_767_268_802
    );
}
