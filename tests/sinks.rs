//! Alert sinks against receivers on 127.0.0.1: what each vendor is sent, and how its answers
//! are classified. Every receiver records the requests it got and answers from a script.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha256;
use statusmon::alerts::sinks::{
    EmailSettings, Sink, SinkError, SinkKind, SinkSettings, SinkSpec, SmtpTls, teams, webhook,
};
use statusmon::alerts::{AlertEvent, EventKind, Purpose, Severity, templates};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::plain_client;

// ---------------------------------------------------------------------------------------------
// A scripted, recording HTTP receiver.

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

impl Answer {
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A receiver answering with `script` in order, the last answer once the script runs out.
async fn receiver(script: Vec<Answer>) -> Receiver {
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let app = axum::Router::new().fallback({
        let got = got.clone();
        move |request: Request<Body>| {
            let got = got.clone();
            let script = script.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let n = {
                    let mut got = got.lock().unwrap();
                    got.push(Received {
                        path: parts
                            .uri
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        headers: parts.headers,
                        body: body.to_vec(),
                    });
                    got.len() - 1
                };
                let answer = script[n.min(script.len() - 1)].clone();
                tokio::time::sleep(answer.delay).await;
                let mut response =
                    Response::builder().status(StatusCode::from_u16(answer.status).unwrap());
                for (name, value) in &answer.headers {
                    response = response.header(*name, value);
                }
                response.body(Body::from(answer.body)).unwrap()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}"),
        got,
        task,
    }
}

/// A loopback address nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Events and specs.

fn event(firing: bool) -> AlertEvent {
    let at = Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
    AlertEvent {
        alert: "contoso/incident/EX1234567".to_string(),
        idempotency_key: format!(
            "contoso/incident/EX1234567#{}@2026-03-04T10:00:00.000Z",
            if firing {
                "incident_new"
            } else {
                "incident_resolved"
            }
        ),
        kind: if firing {
            EventKind::IncidentNew
        } else {
            EventKind::IncidentResolved
        },
        target: "contoso".to_string(),
        service: Some("Exchange".to_string()),
        incident: Some("EX1234567".to_string()),
        severity: if firing {
            Severity::Critical
        } else {
            Severity::Info
        },
        firing,
        summary: "Contoso: incident EX1234567 new: mail delayed".to_string(),
        detail: "status investigating; from m365-public".to_string(),
        at,
        purpose: Purpose::Transition,
    }
}

fn spec(settings: SinkSettings) -> SinkSpec {
    SinkSpec {
        id: "s1".to_string(),
        timeout: Duration::from_secs(5),
        title_template: None,
        body_template: None,
        settings,
    }
}

fn build(settings: SinkSettings) -> Sink {
    Sink::build(spec(settings), plain_client()).unwrap()
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_string())
}

fn transient(result: Result<impl std::fmt::Debug, SinkError>) -> (String, Option<Duration>) {
    match result {
        Err(SinkError::Transient {
            message,
            retry_after,
        }) => (message, retry_after),
        other => panic!("expected a transient error, got {other:?}"),
    }
}

fn permanent(result: Result<impl std::fmt::Debug, SinkError>) -> String {
    match result {
        Err(SinkError::Permanent { message }) => message,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook.

#[tokio::test]
async fn webhook_signature_verifies_and_id_is_the_idempotency_key() {
    let server = receiver(vec![answer(204, "")]).await;
    let key_bytes = b"0123456789abcdef0123456789abcdef";
    let whsec = format!("whsec_{}", STANDARD.encode(key_bytes));
    let sink = build(SinkSettings::Webhook {
        url: secret(&format!("{}/hooks/in", server.url)),
        secret: Some(secret(&whsec)),
    });
    let event = event(true);
    let sent = sink.send(&event).await.unwrap();
    assert_eq!(sent.detail, "webhook: HTTP 204");
    // A retry of the same event carries the same id.
    sink.send(&event).await.unwrap();

    let got = server.got();
    assert_eq!(got.len(), 2);
    for request in &got {
        assert_eq!(request.path, "/hooks/in");
        let id = request.header("webhook-id").unwrap();
        assert_eq!(id, event.idempotency_key);
        let timestamp: i64 = request
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!((Utc::now().timestamp() - timestamp).abs() < 60);
        let signature = request.header("webhook-signature").unwrap();
        let mac_b64 = signature.strip_prefix("v1,").expect("v1 scheme");
        // An independent check, as a receiver does it: HMAC over the raw bytes received.
        let mut mac = Hmac::<Sha256>::new_from_slice(key_bytes).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        mac.verify_slice(&STANDARD.decode(mac_b64).unwrap())
            .expect("the signature verifies");
        let body = request.json();
        assert_eq!(body["type"], "statusmon.alert");
        assert_eq!(body["event"]["alert"], event.alert);
        assert_eq!(body["event"]["severity"], "critical");
        assert_eq!(body["title"], event.summary);
        assert!(body["text"].as_str().unwrap().contains("Target: contoso"));
    }
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "stable across retries"
    );
}

#[test]
fn webhook_sign_matches_the_standard_webhooks_vector() {
    assert_eq!(
        webhook::sign(
            &secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[tokio::test]
async fn webhook_unsigned_without_secret_and_answers_classified() {
    let server = receiver(vec![
        answer(410, "gone"),
        answer(503, "busy").header("retry-after", "12"),
        answer(302, "").header("location", "http://127.0.0.1:1/elsewhere"),
    ])
    .await;
    let sink = Sink::build(
        spec(SinkSettings::Webhook {
            url: secret(&server.url),
            secret: None,
        }),
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    )
    .unwrap();
    let event = event(true);
    let message = permanent(sink.send(&event).await);
    assert!(message.contains("410"), "{message}");
    let (message, retry_after) = transient(sink.send(&event).await);
    assert_eq!(message, "webhook: HTTP 503 (busy)");
    assert_eq!(retry_after, Some(Duration::from_secs(12)));
    let message = permanent(sink.send(&event).await);
    assert_eq!(message, "webhook: HTTP 302");
    assert!(server.got()[0].header("webhook-signature").is_none());
}

#[test]
fn webhook_bad_whsec_secret_is_refused_at_build() {
    let err = Sink::build(
        spec(SinkSettings::Webhook {
            url: secret("https://example.invalid/hook"),
            secret: Some(secret("whsec_%%%notbase64")),
        }),
        plain_client(),
    )
    .unwrap_err();
    assert!(err.contains("whsec_"), "{err}");
    assert!(!err.contains("%%%notbase64"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Slack.

#[tokio::test]
async fn slack_escapes_vendor_mentions() {
    let server = receiver(vec![answer(200, "ok")]).await;
    let sink = build(SinkSettings::Slack {
        url: secret(&format!("{}/services/T0/B0/XYZ", server.url)),
    });
    let mut event = event(true);
    event.summary = "Contoso: <!channel> mail down & <@U123>".to_string();
    event.detail = "see <https://evil.example|click> > now".to_string();
    let sent = sink.send(&event).await.unwrap();
    assert_eq!(sent.detail, "slack: HTTP 200 ok");

    let got = server.got();
    let raw = String::from_utf8(got[0].body.clone()).unwrap();
    let body = got[0].json();
    let all_text = serde_json::to_string(&body).unwrap();
    for control in ["<!channel>", "<@U123>", "<https://evil"] {
        assert!(!all_text.contains(control), "{control} unescaped in {raw}");
    }
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; mail down &amp; &lt;@U123&gt;"),
        "{text}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("&lt;https://evil.example|click&gt; &gt; now")
    );
    assert_eq!(blocks.last().unwrap()["type"], "context");
}

#[tokio::test]
async fn slack_answers_are_classified() {
    let server = receiver(vec![
        answer(404, "channel_not_found"),
        answer(429, "{\"ok\":false}").header("retry-after", "7"),
        answer(500, "rollup_error"),
        answer(200, "something else"),
        answer(410, "channel_is_archived"),
    ])
    .await;
    let sink = build(SinkSettings::Slack {
        url: secret(&format!("{}/services/T0/B0/XYZ", server.url)),
    });
    let event = event(true);
    assert_eq!(
        permanent(sink.send(&event).await),
        "slack: HTTP 404 (channel_not_found)"
    );
    let (_, retry_after) = transient(sink.send(&event).await);
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    let (message, _) = transient(sink.send(&event).await);
    assert_eq!(message, "slack: HTTP 500 (rollup_error)");
    permanent(sink.send(&event).await);
    assert_eq!(
        permanent(sink.send(&event).await),
        "slack: HTTP 410 (channel_is_archived)"
    );
}

#[tokio::test]
async fn slack_truncates_to_its_limits() {
    let server = receiver(vec![answer(200, "ok")]).await;
    let sink = build(SinkSettings::Slack {
        url: secret(&server.url),
    });
    let mut event = event(true);
    event.detail = "<&>".repeat(20_000);
    sink.send(&event).await.unwrap();
    let body = server.got()[0].json();
    for block in body["blocks"].as_array().unwrap() {
        let text = block["text"]["text"]
            .as_str()
            .or(block["elements"][0]["text"].as_str())
            .unwrap();
        assert!(text.chars().count() <= 3000, "{}", text.len());
        // Never cut inside an entity: what precedes the `…` ends one.
        let kept = text.strip_suffix('…').unwrap_or(text);
        assert!(kept.ends_with(';') || !kept.contains('&'), "{text}");
    }
    assert!(body["text"].as_str().unwrap().chars().count() <= 40_000);
}

// ---------------------------------------------------------------------------------------------
// Teams.

#[tokio::test]
async fn teams_payload_shape_and_size_cap() {
    let server = receiver(vec![answer(202, "")]).await;
    let sink = build(SinkSettings::Teams {
        url: secret(&format!(
            "{}/workflows/abc/triggers/manual/paths/invoke?sig=SIGSECRET",
            server.url
        )),
    });
    let mut event = event(true);
    event.detail = "a \"quoted\" line of incident text\n".repeat(5_000);
    let sent = sink.send(&event).await.unwrap();
    assert_eq!(sent.detail, "teams: HTTP 202");

    let got = server.got();
    assert!(
        got[0].body.len() <= teams::MAX_PAYLOAD_BYTES,
        "{} bytes is over our cap, which keeps under Teams' 28 KB",
        got[0].body.len()
    );
    let body = got[0].json();
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let blocks = card["body"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "TextBlock");
    assert_eq!(blocks[0]["text"], event.summary);
    assert_eq!(blocks[1]["type"], "TextBlock");
    assert!(blocks[1]["text"].as_str().unwrap().ends_with('…'));
    let facts = blocks[2]["facts"].as_array().unwrap();
    assert_eq!(blocks[2]["type"], "FactSet");
    let titles: Vec<&str> = facts.iter().map(|f| f["title"].as_str().unwrap()).collect();
    for title in ["Target", "Service", "Incident", "Severity", "Time"] {
        assert!(titles.contains(&title), "{titles:?}");
    }
    assert_eq!(facts[0]["value"], "contoso");

    // A small message is not cut.
    let small = self::event(true);
    sink.send(&small).await.unwrap();
    let card = server.got()[1].json();
    assert_eq!(
        card["attachments"][0]["content"]["body"][1]["text"],
        small.detail
    );
}

#[tokio::test]
async fn teams_answers_are_classified() {
    let server = receiver(vec![
        answer(404, "flow not found"),
        answer(429, "").header("retry-after", "3"),
        answer(200, "1"),
    ])
    .await;
    let sink = build(SinkSettings::Teams {
        url: secret(&server.url),
    });
    let event = event(true);
    assert_eq!(
        permanent(sink.send(&event).await),
        "teams: HTTP 404 (flow not found)"
    );
    assert_eq!(
        transient(sink.send(&event).await).1,
        Some(Duration::from_secs(3))
    );
    assert_eq!(sink.send(&event).await.unwrap().detail, "teams: HTTP 200");
}

// ---------------------------------------------------------------------------------------------
// PagerDuty.

const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32";

fn pagerduty(url: &str) -> Sink {
    build(SinkSettings::PagerDuty {
        url: format!("{url}/v2/enqueue"),
        routing_key: secret(ROUTING_KEY),
    })
}

#[tokio::test]
async fn pagerduty_trigger_then_resolve_share_the_dedup_key() {
    let accepted = r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#;
    let server = receiver(vec![answer(202, accepted)]).await;
    let sink = pagerduty(&server.url);
    let mut updated = event(true);
    updated.kind = EventKind::IncidentUpdated;
    updated.severity = Severity::Warning;
    updated.idempotency_key = "other".to_string();
    assert_eq!(
        sink.send(&event(true)).await.unwrap().detail,
        "pagerduty: HTTP 202 (trigger)"
    );
    sink.send(&updated).await.unwrap();
    assert_eq!(
        sink.send(&event(false)).await.unwrap().detail,
        "pagerduty: HTTP 202 (resolve)"
    );

    let got: Vec<Value> = server.got().iter().map(Received::json).collect();
    assert!(server.got().iter().all(|r| r.path == "/v2/enqueue"));
    let trigger = &got[0];
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "contoso/incident/EX1234567");
    assert_eq!(trigger["payload"]["source"], "statusmon");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["summary"], event(true).summary);
    assert_eq!(
        trigger["payload"]["custom_details"]["event"]["idempotency_key"],
        event(true).idempotency_key
    );
    assert_eq!(got[1]["payload"]["severity"], "warning");
    assert_eq!(got[1]["dedup_key"], trigger["dedup_key"]);
    let resolve = &got[2];
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert!(resolve.get("payload").is_none());
}

#[tokio::test]
async fn pagerduty_drills_and_long_keys() {
    let server = receiver(vec![answer(202, "{}")]).await;
    let sink = pagerduty(&server.url);
    let mut drill = event(true);
    drill.purpose = Purpose::Drill;
    drill.severity = Severity::Critical;
    sink.send(&drill).await.unwrap();
    let mut long = event(true);
    long.alert = format!("contoso/service/{}", "x".repeat(300));
    long.summary = "s".repeat(5000);
    sink.send(&long).await.unwrap();

    let got: Vec<Value> = server.got().iter().map(Received::json).collect();
    assert_eq!(
        got[0]["dedup_key"],
        format!("statusmon-drill/{}", drill.idempotency_key)
    );
    assert_eq!(got[0]["event_action"], "trigger");
    assert_eq!(got[0]["payload"]["severity"], "info");
    let key = got[1]["dedup_key"].as_str().unwrap();
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        got[1]["payload"]["summary"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        1024
    );
}

#[tokio::test]
async fn pagerduty_400_is_permanent_429_and_5xx_transient() {
    let invalid = r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#;
    let server = receiver(vec![
        answer(400, invalid),
        answer(429, "").header("retry-after", "30"),
        answer(502, "bad gateway"),
    ])
    .await;
    let sink = pagerduty(&server.url);
    let event = event(true);
    let message = permanent(sink.send(&event).await);
    assert_eq!(
        message,
        "pagerduty: HTTP 400 (Event object is invalid; Length of 'routing_key' is incorrect \
         (should be 32 characters))"
    );
    let (message, retry_after) = transient(sink.send(&event).await);
    assert_eq!(message, "pagerduty: HTTP 429");
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    let (message, retry_after) = transient(sink.send(&event).await);
    assert_eq!(message, "pagerduty: HTTP 502 (bad gateway)");
    assert_eq!(retry_after, None);
    // Network failure: transient too.
    let down = pagerduty(&closed_port().await);
    transient(down.send(&event).await);
}

// ---------------------------------------------------------------------------------------------
// Alertmanager.

fn alertmanager(urls: Vec<String>) -> Sink {
    build(SinkSettings::Alertmanager {
        urls,
        resend_every: Duration::from_secs(60),
        resolved_for: Duration::from_secs(300),
        bearer_token: Some(secret("am-bearer-token")),
    })
}

#[tokio::test]
async fn alertmanager_posts_to_every_instance_with_stable_labels() {
    let a = receiver(vec![answer(200, "")]).await;
    let b = receiver(vec![answer(200, "")]).await;
    let sink = alertmanager(vec![a.url.clone(), format!("{}/", b.url)]);
    let firing = event(true);
    let before = Utc::now();
    let sent = sink.send(&firing).await.unwrap();
    assert_eq!(sent.detail, "alertmanager: 1 alert accepted by 2 of 2");
    let mut updated = event(true);
    updated.severity = Severity::Warning;
    sink.send(&updated).await.unwrap();
    let resolved = event(false);
    sink.send(&resolved).await.unwrap();

    for server in [&a, &b] {
        let got = server.got();
        assert_eq!(got.len(), 3);
        for request in &got {
            assert_eq!(request.path, "/api/v2/alerts");
            assert_eq!(
                request.header("authorization").unwrap(),
                "Bearer am-bearer-token"
            );
        }
        let alerts: Vec<Value> = got.iter().map(|r| r.json()[0].clone()).collect();
        let labels = &alerts[0]["labels"];
        assert_eq!(labels["alertname"], "Microsoft365Status");
        assert_eq!(labels["statusmon_alert"], firing.alert);
        assert_eq!(labels["target"], "contoso");
        assert_eq!(labels["service"], "Exchange");
        assert_eq!(labels["incident"], "EX1234567");
        assert_eq!(labels["source"], "statusmon");
        assert!(labels.get("severity").is_none(), "severity is no label");
        assert_eq!(alerts[1]["labels"], *labels, "labels stable while firing");
        assert_eq!(alerts[2]["labels"], *labels, "labels stable at resolution");
        assert_eq!(alerts[0]["annotations"]["severity"], "critical");
        assert_eq!(alerts[1]["annotations"]["severity"], "warning");
        assert_eq!(alerts[0]["annotations"]["summary"], firing.summary);

        assert_eq!(alerts[0]["startsAt"], "2026-03-04T10:00:00.000Z");
        let ends: chrono::DateTime<Utc> = alerts[0]["endsAt"].as_str().unwrap().parse().unwrap();
        let ahead = (ends - before).num_seconds();
        assert!((175..=185).contains(&ahead), "endsAt {ahead}s ahead");
        assert_eq!(alerts[2]["endsAt"], "2026-03-04T10:00:00.000Z");
    }
}

#[tokio::test]
async fn alertmanager_one_instance_down_still_succeeds() {
    let up = receiver(vec![answer(200, "")]).await;
    let down = closed_port().await;
    let sink = alertmanager(vec![down.clone(), up.url.clone()]);
    let sent = sink.send(&event(true)).await.unwrap();
    assert!(
        sent.detail
            .starts_with("alertmanager: 1 alert accepted by 1 of 2 (urls[0]: "),
        "{}",
        sent.detail
    );
    assert!(!sent.detail.contains(&down), "{}", sent.detail);
    assert_eq!(up.got().len(), 1);

    // None accepted: transient if any might accept later, permanent if all refused outright.
    let bad = receiver(vec![answer(400, "bad alert")]).await;
    let sink = alertmanager(vec![down.clone(), bad.url.clone()]);
    let (message, _) = transient(sink.send(&event(true)).await);
    assert!(
        message.contains("urls[1]: HTTP 400 (bad alert)"),
        "{message}"
    );
    let sink = alertmanager(vec![bad.url.clone()]);
    permanent(sink.send(&event(true)).await);
}

#[tokio::test]
async fn alertmanager_refresh_reposts_the_current_state() {
    let server = receiver(vec![answer(200, "")]).await;
    let sink = alertmanager(vec![server.url.clone()]);
    let mut recent = event(false);
    recent.alert = "contoso/visibility".to_string();
    recent.at = Utc::now() - chrono::Duration::seconds(30);
    let old = event(false); // resolved in 2026-03: past resolved_for
    let sent = sink
        .refresh(&[event(true)], &[recent.clone(), old])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.detail, "alertmanager: 2 alerts accepted by 1 of 1");
    let alerts = server.got()[0].json();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let ends: chrono::DateTime<Utc> = alerts[0]["endsAt"].as_str().unwrap().parse().unwrap();
    assert!(ends > Utc::now() + chrono::Duration::seconds(170));
    assert_eq!(alerts[1]["labels"]["statusmon_alert"], "contoso/visibility");
    let resolved_end: chrono::DateTime<Utc> =
        alerts[1]["endsAt"].as_str().unwrap().parse().unwrap();
    assert!((resolved_end - recent.at).num_milliseconds().abs() < 1);

    // Nothing to post, and other kinds: no-ops.
    assert!(sink.refresh(&[], &[event(false)]).await.unwrap().is_none());
    let slack = build(SinkSettings::Slack {
        url: secret(&server.url),
    });
    assert!(slack.refresh(&[event(true)], &[]).await.unwrap().is_none());
    assert_eq!(server.got().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Secrets.

#[tokio::test]
async fn secrets_never_appear_in_errors_receipts_or_debug() {
    const TOKEN: &str = "xoxTOKENsecret4242";
    // A hostile receiver that echoes the request path, query and body back.
    let echo = receiver(vec![
        answer(404, &format!("no such hook /services/T0/B0/{TOKEN}")),
        answer(200, &format!("ok but {TOKEN}")),
    ])
    .await;
    let slack = build(SinkSettings::Slack {
        url: secret(&format!("{}/services/T0/B0/{TOKEN}", echo.url)),
    });
    let mut texts = Vec::new();
    let e = slack.send(&event(true)).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let e = slack.send(&event(true)).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    texts.push(format!("{slack:?}"));

    // Network failure and timeout with the token in the URL.
    let down = closed_port().await;
    let webhook = build(SinkSettings::Webhook {
        url: secret(&format!("{down}/hook/{TOKEN}?key={TOKEN}")),
        secret: Some(secret(TOKEN)),
    });
    let e = webhook.send(&event(true)).await.unwrap_err();
    assert!(e.is_transient());
    texts.push(format!("{e} {e:?} {webhook:?}"));
    let slow = receiver(vec![Answer {
        delay: Duration::from_secs(5),
        ..answer(200, "ok")
    }])
    .await;
    let mut timeout_spec = spec(SinkSettings::Teams {
        url: secret(&format!("{}/paths/invoke?sig={TOKEN}", slow.url)),
    });
    timeout_spec.timeout = Duration::from_millis(200);
    let teams = Sink::build(timeout_spec, plain_client()).unwrap();
    let (message, _) = transient(teams.send(&event(true)).await);
    assert_eq!(message, "teams: no answer within 200ms");
    texts.push(format!("{teams:?}"));

    // PagerDuty echoing the routing key.
    let pd_echo = receiver(vec![answer(
        400,
        &format!(r#"{{"message":"bad key {ROUTING_KEY}","errors":[]}}"#),
    )])
    .await;
    let pd = pagerduty(&pd_echo.url);
    let e = pd.send(&event(true)).await.unwrap_err();
    texts.push(format!("{e} {e:?} {pd:?}"));
    assert!(e.message().contains("[redacted]"), "{e}");

    // A bad URL at build time is named without being repeated.
    let err = Sink::build(
        spec(SinkSettings::Slack {
            url: secret(&format!("hooks.slack.com/services/{TOKEN}")),
        }),
        plain_client(),
    )
    .unwrap_err();
    texts.push(err);

    for text in &texts {
        assert!(!text.contains(TOKEN), "secret leaked: {text}");
        assert!(!text.contains(ROUTING_KEY), "routing key leaked: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Templates.

#[test]
fn bad_user_templates_are_rejected_with_a_clear_message() {
    let err = templates::check(Some("{{ summary"), None).unwrap_err();
    assert!(err.starts_with("title_template: "), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    let err = templates::check(None, Some("{{ sumary }}")).unwrap_err();
    assert!(err.starts_with("body_template: "), "{err}");
    assert!(err.contains("undefined"), "{err}");
    let err = templates::check(None, Some("{% for x in target %}")).unwrap_err();
    assert!(err.starts_with("body_template: "), "{err}");
    // A runaway loop runs out of fuel instead of rendering for ever.
    let err = templates::check(
        None,
        Some("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
    )
    .unwrap_err();
    assert!(err.contains("fuel"), "{err}");
    templates::check(
        Some("{{ status | upper }}: {{ summary }} ({{ severity }})"),
        Some("{{ detail }} at {{ at }} {% if drill %}drill{% endif %}{{ service or '-' }}"),
    )
    .unwrap();

    let mut bad = spec(SinkSettings::Slack {
        url: secret("https://hooks.slack.com/services/T/B/X"),
    });
    bad.title_template = Some("{% if %}".to_string());
    let err = Sink::build(bad, plain_client()).unwrap_err();
    assert!(
        err.starts_with("sink s1 (slack): title_template: "),
        "{err}"
    );
}

#[tokio::test]
async fn user_templates_render_and_a_runtime_failure_falls_back() {
    let server = receiver(vec![answer(204, "")]).await;
    // Passes the check (its sample is critical and firing) but fails for an info event.
    let title = "{% if severity == 'info' %}{{ summary.nope() }}{% endif %}\
                 {{ status | upper }} {{ target }}";
    templates::check(Some(title), None).unwrap();
    let mut with_templates = spec(SinkSettings::Webhook {
        url: secret(&server.url),
        secret: None,
    });
    with_templates.title_template = Some(title.to_string());
    with_templates.body_template = Some("{{ kind }}/{{ purpose }}/{{ reminder }}".to_string());
    let sink = Sink::build(with_templates, plain_client()).unwrap();

    let firing = event(true);
    let notice = sink.notice(&firing);
    assert_eq!(notice.title, "FIRING contoso");
    // Jinja semantics: booleans print as `True`/`False`.
    assert_eq!(notice.body, "incident_new/transition/False");

    let resolved = event(false);
    let notice = sink.notice(&resolved);
    assert_eq!(
        notice.title,
        format!("[RESOLVED] {}", resolved.summary),
        "fell back to the default title"
    );
    // And the send goes through with the fallback.
    sink.send(&resolved).await.unwrap();
    assert_eq!(
        server.got()[0].json()["title"],
        format!("[RESOLVED] {}", resolved.summary)
    );
}

#[test]
fn default_titles_say_drill_reminder_and_resolved() {
    let sink = build(SinkSettings::Slack {
        url: secret("https://hooks.slack.com/services/T/B/X"),
    });
    assert_eq!(sink.kind(), SinkKind::Slack);
    assert_eq!(sink.id(), "s1");
    let mut e = event(true);
    e.purpose = Purpose::Reminder;
    assert!(sink.notice(&e).title.starts_with("[REMINDER] "));
    e.purpose = Purpose::Drill;
    assert!(sink.notice(&e).title.starts_with("[DRILL] "));
    assert!(sink.notice(&event(false)).title.starts_with("[RESOLVED] "));
}

// ---------------------------------------------------------------------------------------------
// E-mail, against a minimal SMTP responder (plain TCP, no TLS).

/// What the SMTP responder answers at each step, and what it received.
#[derive(Clone)]
struct SmtpScript {
    auth: &'static str,
    rcpt: &'static str,
}

struct Smtp {
    port: u16,
    data: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn smtp(script: SmtpScript) -> Smtp {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn({
        let data = data.clone();
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                let data = data.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 localhost ESMTP test\r\n").await.ok();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: String = if upper.starts_with("EHLO") {
                            "250-localhost\r\n250 AUTH PLAIN LOGIN\r\n".into()
                        } else if upper.starts_with("AUTH") {
                            format!("{}\r\n", script.auth)
                        } else if upper.starts_with("MAIL FROM") {
                            "250 2.1.0 Ok\r\n".into()
                        } else if upper.starts_with("RCPT TO") {
                            format!("{}\r\n", script.rcpt)
                        } else if upper == "DATA" {
                            write
                                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                                .await
                                .ok();
                            let mut message = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                message.push_str(&line);
                                message.push('\n');
                            }
                            data.lock().unwrap().push(message);
                            "250 2.0.0 Ok: queued as 42\r\n".into()
                        } else if upper == "QUIT" {
                            write.write_all(b"221 2.0.0 Bye\r\n").await.ok();
                            break;
                        } else {
                            "250 Ok\r\n".into()
                        };
                        write.write_all(reply.as_bytes()).await.ok();
                    }
                });
            }
        }
    });
    Smtp { port, data, task }
}

const PASSWORD: &str = "hunter2-smtp-password";

fn email(port: u16, username: Option<&str>) -> Sink {
    build(SinkSettings::Email(EmailSettings {
        host: "127.0.0.1".to_string(),
        port,
        tls: SmtpTls::None,
        username: username.map(str::to_string),
        password: Some(secret(PASSWORD)),
        from: "statusmon <alerts@example.com>".to_string(),
        to: vec![
            "oncall@example.com".to_string(),
            "ops@example.com".to_string(),
        ],
    }))
}

#[tokio::test]
async fn email_is_sent_with_subject_and_idempotency_header() {
    let server = smtp(SmtpScript {
        auth: "235 2.7.0 Authentication successful",
        rcpt: "250 2.1.5 Ok",
    })
    .await;
    let sink = email(server.port, Some("alerts"));
    let event = event(true);
    let sent = sink.send(&event).await.unwrap();
    assert_eq!(sent.detail, "email: 250 2.0.0 Ok: queued as 42");
    let data = server.data.lock().unwrap().clone();
    assert_eq!(data.len(), 1);
    let message = &data[0];
    assert!(
        message.contains(&format!("Subject: {}", event.summary)),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "X-Statusmon-Idempotency-Key: {}",
            event.idempotency_key
        )),
        "{message}"
    );
    assert!(message.contains("Content-Type: text/plain"), "{message}");
    assert!(message.contains("Target: contoso"), "{message}");
    assert!(
        message.contains("To: oncall@example.com, ops@example.com"),
        "{message}"
    );
}

#[tokio::test]
async fn email_replies_are_classified_without_the_password() {
    // A server that repeats the password in its refusal: it must not reach the message.
    let refuses = smtp(SmtpScript {
        auth: "535 5.7.8 bad credentials hunter2-smtp-password",
        rcpt: "250 Ok",
    })
    .await;
    let e = email(refuses.port, Some("alerts"))
        .send(&event(true))
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(matches!(e, SinkError::Permanent { .. }), "{e:?}");
    assert!(text.contains("535"), "{text}");

    let busy = smtp(SmtpScript {
        auth: "235 Ok",
        rcpt: "451 4.3.0 try again later",
    })
    .await;
    let (message, _) = transient(email(busy.port, None).send(&event(true)).await);
    assert!(message.contains("451"), "{message}");

    let unknown = smtp(SmtpScript {
        auth: "235 Ok",
        rcpt: "550 5.1.1 no such user",
    })
    .await;
    let message = permanent(email(unknown.port, None).send(&event(true)).await);
    assert!(message.contains("550"), "{message}");

    // Nothing listening: transient.
    let port: u16 = closed_port()
        .await
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let e = email(port, Some("alerts"))
        .send(&event(true))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(!format!("{e:?}").contains(PASSWORD));
}

#[test]
fn email_bad_addresses_are_refused_at_build() {
    let err = Sink::build(
        spec(SinkSettings::Email(EmailSettings {
            host: "smtp.example.com".to_string(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            from: "not an address".to_string(),
            to: vec!["oncall@example.com".to_string()],
        })),
        plain_client(),
    )
    .unwrap_err();
    assert!(
        err.starts_with("sink s1 (email): from is not a valid address"),
        "{err}"
    );
}
