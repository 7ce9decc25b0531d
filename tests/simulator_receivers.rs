//! The simulator's alert receivers: each answers as its vendor does, logs every request in
//! arrival order, and can be switched down; PagerDuty and Alertmanager keep their dedup state;
//! the SMTP receiver takes a real session (and a real lettre client) without keeping a password.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::support::plain_client;
use statusmon::simulator::{
    HookDelivery, SIM_WEBHOOK_SECRET, SMTP_MAX_MESSAGE, Scenario, SignatureCheck, SimHandle,
    SmtpHandle,
};

const ROUTING_KEY: &str = "e93facc04764012d7bfb002500d5d1a6";

async fn sim() -> SimHandle {
    crate::support::simulator(Scenario::Healthy).await
}

async fn post_json(sim: &SimHandle, path: &str, body: &Value) -> reqwest::Response {
    post_raw(sim, path, serde_json::to_vec(body).unwrap()).await
}

async fn post_raw(
    sim: &SimHandle,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    plain_client()
        .post(format!("{}{path}", sim.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the simulator answers")
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn control_get(sim: &SimHandle, path: &str) -> Value {
    let response = plain_client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(response.status(), 200, "GET {path}");
    json_of(response).await
}

async fn control_post(sim: &SimHandle, path: &str) -> reqwest::Response {
    plain_client()
        .post(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("the simulator answers")
}

fn sign(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = BASE64
        .decode(SIM_WEBHOOK_SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

async fn signed_webhook(
    sim: &SimHandle,
    name: &str,
    id: &str,
    signature: Option<String>,
    body: &[u8],
) -> reqwest::Response {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut request = plain_client()
        .post(format!("{}/hooks/webhook/{name}", sim.base_url()))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", &timestamp)
        .body(body.to_vec());
    if let Some(signature) = signature {
        // "{sign}" stands for the right signature of this very request.
        let signature = signature.replace("{sign}", &sign(id, &timestamp, body));
        request = request.header("webhook-signature", signature);
    }
    request.send().await.expect("the simulator answers")
}

fn pd_trigger(dedup_key: &str) -> Value {
    json!({
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {"summary": "Exchange Online degraded", "source": "statusmon", "severity": "critical"},
    })
}

fn pd_event(action: &str, dedup_key: &str) -> Value {
    json!({"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": dedup_key})
}

#[tokio::test]
async fn webhook_signatures_are_checked_and_recorded() {
    let sim = sim().await;
    let body = br#"{"type":"incident.opened","data":{"id":"EX123456"}}"#;

    let valid = signed_webhook(&sim, "ops", "msg_valid", Some("{sign}".into()), body).await;
    assert_eq!(valid.status(), 200);
    // Signed over other bytes than those sent.
    let forged = sign("msg_forged", "1", b"{}");
    let invalid = signed_webhook(&sim, "ops", "msg_forged", Some(forged), body).await;
    assert_eq!(
        invalid.status(),
        200,
        "a bad signature is logged, not refused"
    );
    let unsigned = signed_webhook(&sim, "ops", "msg_unsigned", None, body).await;
    assert_eq!(unsigned.status(), 200);
    // A rotated key: one of several signatures matching is enough.
    let rotation = signed_webhook(
        &sim,
        "ops",
        "msg_rotated",
        Some(format!(
            "{} v1a,ignored {{sign}}",
            sign("old-key", "1", b"x")
        )),
        body,
    )
    .await;
    assert_eq!(rotation.status(), 200);

    let log = sim.hook_deliveries_to("webhook/ops");
    let checks: Vec<_> = log
        .iter()
        .map(|d| (d.idempotency_key.as_deref(), d.signature))
        .collect();
    assert_eq!(
        checks,
        vec![
            (Some("msg_valid"), Some(SignatureCheck::Valid)),
            (Some("msg_forged"), Some(SignatureCheck::Invalid)),
            (Some("msg_unsigned"), Some(SignatureCheck::Absent)),
            (Some("msg_rotated"), Some(SignatureCheck::Valid)),
        ]
    );
    let first = &log[0];
    assert_eq!(first.status, 200);
    assert!(!first.refused);
    assert_eq!(first.body["data"]["id"], "EX123456");
    assert!(first.headers["webhook-signature"].starts_with("v1,"));
    assert!(first.headers.contains_key("webhook-timestamp"));

    // The same log over HTTP, with the signature as a word.
    let hooks = control_get(&sim, "/_sim/hooks?receiver=webhook/ops").await;
    let deliveries = hooks["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 4);
    assert_eq!(deliveries[0]["signature"], "valid");
    assert_eq!(deliveries[1]["signature"], "invalid");
    assert_eq!(deliveries[2]["signature"], "absent");
    assert_eq!(hooks["webhook_secret"], SIM_WEBHOOK_SECRET);
}

#[tokio::test]
async fn a_stale_webhook_timestamp_is_invalid_even_when_signed() {
    let sim = sim().await;
    let body = br#"{"type":"x"}"#;
    let stale = (chrono::Utc::now().timestamp() - 3600).to_string();
    let response = plain_client()
        .post(format!("{}/hooks/webhook/ops", sim.base_url()))
        .header("webhook-id", "msg_old")
        .header("webhook-timestamp", &stale)
        .header("webhook-signature", sign("msg_old", &stale, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = sim.hook_deliveries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].signature, Some(SignatureCheck::Invalid));
}

#[tokio::test]
async fn slack_answers_ok_or_no_text() {
    let sim = sim().await;
    let ok = post_json(
        &sim,
        "/hooks/slack/alerts",
        &json!({"text": "Exchange down"}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok");

    let blocks_only = json!({"blocks": [{"type": "section"}]});
    let no_text = post_json(&sim, "/hooks/slack/alerts", &blocks_only).await;
    assert_eq!(no_text.status(), 400);
    assert_eq!(no_text.text().await.unwrap(), "no_text");

    let garbage = post_raw(&sim, "/hooks/slack/alerts", "{not json").await;
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.text().await.unwrap(), "invalid_payload");

    let log = sim.hook_deliveries_to("slack/alerts");
    let statuses: Vec<u16> = log.iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![200, 400, 400]);
    assert_eq!(log[0].body["text"], "Exchange down");
    assert_eq!(
        log[2].body,
        json!("{not json"),
        "a non-JSON body is kept as text"
    );
    assert!(
        log.iter()
            .all(|d| d.signature.is_none() && d.idempotency_key.is_none())
    );
}

#[tokio::test]
async fn teams_accepts_adaptive_cards_only_and_refuses_oversize() {
    let sim = sim().await;
    let card = |text: &str| {
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"type": "AdaptiveCard", "version": "1.2",
                            "body": [{"type": "TextBlock", "text": text}]},
            }],
        })
    };
    let accepted = post_json(&sim, "/hooks/teams/ops", &card("Teams degraded")).await;
    assert_eq!(accepted.status(), 202);

    let message_card = json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.teams.card.o365connector", "content": {}}]});
    assert_eq!(
        post_json(&sim, "/hooks/teams/ops", &message_card)
            .await
            .status(),
        400
    );
    let no_attachments = json!({"type": "message", "attachments": []});
    assert_eq!(
        post_json(&sim, "/hooks/teams/ops", &no_attachments)
            .await
            .status(),
        400
    );
    let not_a_message = json!({"text": "hi"});
    assert_eq!(
        post_json(&sim, "/hooks/teams/ops", &not_a_message)
            .await
            .status(),
        400
    );

    let big = card(&"x".repeat(29 * 1024));
    let too_big = post_json(&sim, "/hooks/teams/ops", &big).await;
    assert_eq!(too_big.status(), 413);

    let statuses: Vec<u16> = sim
        .hook_deliveries_to("teams/ops")
        .iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, vec![202, 400, 400, 400, 413]);
}

#[tokio::test]
async fn pagerduty_pages_once_per_open_alert() {
    let sim = sim().await;
    let enqueue = "/hooks/pagerduty/v2/enqueue";

    let first = post_json(&sim, enqueue, &pd_trigger("episode-1")).await;
    assert_eq!(first.status(), 202);
    let answer: Value = json_of(first).await;
    assert_eq!(
        answer,
        json!({"status": "success", "message": "Event processed", "dedup_key": "episode-1"})
    );
    assert_eq!(
        post_json(&sim, enqueue, &pd_trigger("episode-1"))
            .await
            .status(),
        202
    );
    let state = sim.pagerduty_state();
    assert_eq!(
        state.pages, 1,
        "a repeated trigger on an open alert does not page"
    );
    assert_eq!(state.open.len(), 1);
    assert_eq!(state.open[0].triggers, 2);
    assert_eq!(state.open[0].severity, "critical");

    assert_eq!(
        post_json(&sim, enqueue, &pd_event("acknowledge", "episode-1"))
            .await
            .status(),
        202
    );
    assert!(sim.pagerduty_state().open[0].acknowledged);
    assert_eq!(
        post_json(&sim, enqueue, &pd_event("resolve", "episode-1"))
            .await
            .status(),
        202
    );
    let state = sim.pagerduty_state();
    assert_eq!((state.pages, state.open.len(), state.resolved), (1, 0, 1));

    // A late resolve is dropped; a trigger after the resolve opens a new alert and pages again.
    assert_eq!(
        post_json(&sim, enqueue, &pd_event("resolve", "episode-1"))
            .await
            .status(),
        202
    );
    assert_eq!(
        post_json(&sim, enqueue, &pd_trigger("episode-1"))
            .await
            .status(),
        202
    );
    let state = sim.pagerduty_state();
    assert_eq!(state.pages, 2);
    assert_eq!(state.pages_by_dedup_key["episode-1"], 2);
    assert_eq!(state.dropped, 1);
    assert_eq!(state.open.len(), 1);

    // A trigger without a key gets one made up, and always pages.
    let keyless = json!({"routing_key": ROUTING_KEY, "event_action": "trigger",
        "payload": {"summary": "s", "source": "h", "severity": "info"}});
    let answer: Value = json_of(post_json(&sim, enqueue, &keyless).await).await;
    let made_up = answer["dedup_key"].as_str().unwrap();
    assert!(!made_up.is_empty() && made_up != "episode-1");
    assert_eq!(sim.pagerduty_state().pages, 3);

    // The same view over HTTP.
    let view = control_get(&sim, "/_sim/hooks/pagerduty").await;
    assert_eq!(view["pages"], 3);
    assert_eq!(view["open"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn pagerduty_refuses_invalid_events() {
    let sim = sim().await;
    let enqueue = "/hooks/pagerduty/v2/enqueue";
    let mut short_key = pd_trigger("k");
    short_key["routing_key"] = json!("too-short");
    let refused = post_json(&sim, enqueue, &short_key).await;
    assert_eq!(refused.status(), 400);
    let answer: Value = json_of(refused).await;
    assert_eq!(answer["status"], "invalid event");
    assert_eq!(answer["message"], "Event object is invalid");
    assert!(
        answer["errors"][0]
            .as_str()
            .unwrap()
            .contains("routing_key"),
        "{answer}"
    );

    let mut bad_action = pd_trigger("k");
    bad_action["event_action"] = json!("escalate");
    assert_eq!(post_json(&sim, enqueue, &bad_action).await.status(), 400);
    let mut bad_severity = pd_trigger("k");
    bad_severity["payload"]["severity"] = json!("disaster");
    assert_eq!(post_json(&sim, enqueue, &bad_severity).await.status(), 400);
    let mut no_summary = pd_trigger("k");
    no_summary["payload"]
        .as_object_mut()
        .unwrap()
        .remove("summary");
    assert_eq!(post_json(&sim, enqueue, &no_summary).await.status(), 400);
    let resolve_without_key = json!({"routing_key": ROUTING_KEY, "event_action": "resolve"});
    assert_eq!(
        post_json(&sim, enqueue, &resolve_without_key)
            .await
            .status(),
        400
    );
    let mut acknowledge_null_key = pd_event("acknowledge", "k");
    acknowledge_null_key["dedup_key"] = Value::Null;
    let refused = post_json(&sim, enqueue, &acknowledge_null_key).await;
    assert_eq!(refused.status(), 400);
    assert!(
        json_of(refused).await["errors"]
            .to_string()
            .contains("'dedup_key' is required"),
    );
    assert_eq!(post_raw(&sim, enqueue, "[1,2").await.status(), 400);

    let state = sim.pagerduty_state();
    assert_eq!((state.pages, state.events, state.dropped), (0, 0, 0));
    assert_eq!(sim.hook_deliveries_to("pagerduty").len(), 7);
}

#[tokio::test]
async fn alertmanager_dedups_by_label_set() {
    let sim = sim().await;
    let alerts = "/hooks/alertmanager/api/v2/alerts";
    let firing = json!([
        {"labels": {"alertname": "M365Degraded", "service": "exchange"},
         "annotations": {"summary": "first"}},
        {"labels": {"alertname": "M365Degraded", "service": "teams"}},
    ]);
    let response = post_json(&sim, alerts, &firing).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "");
    // The same label set in another order is the same alert; its annotations are replaced.
    let again = json!([{"labels": {"service": "exchange", "alertname": "M365Degraded"},
                        "annotations": {"summary": "second"}}]);
    assert_eq!(post_json(&sim, alerts, &again).await.status(), 200);

    let state = sim.alertmanager_state();
    assert_eq!(state.alerts.len(), 2);
    let exchange = state
        .alerts
        .iter()
        .find(|a| a.labels["service"] == "exchange")
        .unwrap();
    assert_eq!(exchange.posts, 2);
    assert_eq!(exchange.annotations["summary"], "second");
    assert_eq!(exchange.status, "firing");
    assert!(exchange.ends_at > chrono::Utc::now() + chrono::TimeDelta::minutes(4));

    // endsAt in the past resolves it.
    let resolved = json!([{"labels": {"alertname": "M365Degraded", "service": "teams"},
                           "endsAt": (chrono::Utc::now() - chrono::TimeDelta::seconds(1)).to_rfc3339()}]);
    assert_eq!(post_json(&sim, alerts, &resolved).await.status(), 200);
    let view = control_get(&sim, "/_sim/hooks/alertmanager").await;
    let teams = view["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["service"] == "teams")
        .unwrap()
        .clone();
    assert_eq!(teams["status"], "resolved");
    assert_eq!(teams["posts"], 2);
    assert!(teams["startsAt"].is_string() && teams["endsAt"].is_string());

    // Refusals: not an array; an alert without labels (the valid one beside it is still kept).
    let not_array = post_json(&sim, alerts, &json!({"labels": {"a": "b"}})).await;
    assert_eq!(not_array.status(), 400);
    let mixed = json!([{"annotations": {"x": "y"}}, {"labels": {"alertname": "Other"}}]);
    let partial = post_json(&sim, alerts, &mixed).await;
    assert_eq!(partial.status(), 400);
    assert!(partial.text().await.unwrap().contains("alert 0"));
    assert_eq!(sim.alertmanager_state().alerts.len(), 3);
}

#[tokio::test]
async fn a_down_receiver_refuses_then_everything_arrives_in_order() {
    let sim = sim().await;
    let switched = control_post(&sim, "/_sim/hooks/webhook/ops/down").await;
    assert_eq!(switched.status(), 200);
    let answer: Value = json_of(switched).await;
    assert_eq!(answer["down"], true);
    assert!(sim.set_hook_down("pagerduty", true));
    assert_eq!(sim.hooks_down(), vec!["pagerduty", "webhook/ops"]);

    let refused = signed_webhook(&sim, "ops", "evt-1", Some("{sign}".into()), b"{\"n\":1}").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refused_pd = post_json(&sim, "/hooks/pagerduty/v2/enqueue", &pd_trigger("k1")).await;
    assert_eq!(refused_pd.status(), 503);
    assert_eq!(
        sim.pagerduty_state().pages,
        0,
        "a refused trigger pages nobody"
    );
    // Other receivers are unaffected.
    let other = signed_webhook(&sim, "other", "evt-x", Some("{sign}".into()), b"{}").await;
    assert_eq!(other.status(), 200);

    let hooks = control_get(&sim, "/_sim/hooks").await;
    assert_eq!(hooks["down"], json!(["pagerduty", "webhook/ops"]));

    assert_eq!(
        control_post(&sim, "/_sim/hooks/webhook/ops/up")
            .await
            .status(),
        200
    );
    assert!(sim.set_hook_down("pagerduty", false));
    for n in 1..=3 {
        let id = format!("evt-{n}");
        let body = format!("{{\"n\":{n}}}");
        let response =
            signed_webhook(&sim, "ops", &id, Some("{sign}".into()), body.as_bytes()).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        post_json(&sim, "/hooks/pagerduty/v2/enqueue", &pd_trigger("k1"))
            .await
            .status(),
        202
    );

    let log: Vec<HookDelivery> = sim.hook_deliveries_to("webhook/ops");
    let seen: Vec<(bool, u16, &str)> = log
        .iter()
        .map(|d| (d.refused, d.status, d.idempotency_key.as_deref().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (true, 503, "evt-1"),
            (false, 200, "evt-1"),
            (false, 200, "evt-2"),
            (false, 200, "evt-3"),
        ]
    );
    assert!(
        log.windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
    );
    assert_eq!(sim.pagerduty_state().pages, 1);

    // Unknown receivers are refused, not switched.
    assert_eq!(
        control_post(&sim, "/_sim/hooks/sms/x/down").await.status(),
        404
    );
    assert_eq!(
        control_post(&sim, "/_sim/hooks/pagerduty/sideways")
            .await
            .status(),
        404
    );
    assert!(!sim.set_hook_down("webhook/", true));

    // Reset forgets everything; seq keeps counting.
    let last_seq = sim.hook_deliveries().last().unwrap().seq;
    sim.set_hook_down("email", true);
    assert_eq!(control_post(&sim, "/_sim/hooks/reset").await.status(), 200);
    assert!(sim.hook_deliveries().is_empty());
    assert!(sim.hooks_down().is_empty());
    assert_eq!(sim.pagerduty_state().pages, 0);
    post_json(&sim, "/hooks/slack/x", &json!({"text": "t"})).await;
    assert!(sim.hook_deliveries()[0].seq > last_seq);
}

#[tokio::test]
async fn receivers_are_not_upstreams() {
    let sim = crate::support::simulator(Scenario::Failing).await;
    let response = post_json(&sim, "/hooks/slack/x", &json!({"text": "t"})).await;
    assert_eq!(
        response.status(),
        200,
        "the site's failure does not reach the receivers"
    );
    assert_eq!(sim.requests(), 0);
    let after = control_get(&sim, "/_sim/hooks?after=1").await;
    assert!(after["deliveries"].as_array().unwrap().is_empty());
    let invalid = plain_client()
        .get(format!("{}/_sim/hooks?after=x", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        post_json(&sim, "/hooks/slack/bad%20name", &json!({"text": "t"}))
            .await
            .status(),
        404
    );
    assert_eq!(
        sim.hook_deliveries().len(),
        1,
        "a request to no receiver is not logged"
    );
}

// ---------------------------------------------------------------------------------------------
// SMTP.

struct Smtp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Smtp {
    async fn connect(addr: SocketAddr) -> (Smtp, String) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (reader, writer) = stream.into_split();
        let mut smtp = Smtp {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = smtp.reply().await;
        (smtp, greeting)
    }

    /// One reply, all its lines.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(5), self.reader.read_line(&mut line))
                .await
                .expect("the server replies in time")
                .unwrap();
            assert!(n > 0, "the server closed the connection after {all:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.unwrap();
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }
}

/// The reply code (the whole reply, should it be shorter than a code).
fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

/// The simulator's SMTP receiver on a free loopback port.
async fn start_smtp(sim: &SimHandle) -> SmtpHandle {
    sim.start_smtp(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

#[tokio::test]
async fn smtp_records_a_message_but_never_the_password() {
    let sim = sim().await;
    let smtp = start_smtp(&sim).await;
    let (mut c, greeting) = Smtp::connect(smtp.addr()).await;
    assert_eq!(code(&greeting), "220");

    let ehlo = c.command("EHLO client.example").await;
    assert_eq!(code(&ehlo), "250");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(code(&c.command("FOO bar").await), "500");

    let credentials = BASE64.encode(b"\0alerts@example.com\0hunter2-secret");
    assert_eq!(
        code(&c.command(&format!("AUTH PLAIN {credentials}")).await),
        "235"
    );
    assert_eq!(
        code(&c.command("MAIL FROM:<statusmon@example.com>").await),
        "250"
    );
    assert_eq!(
        code(&c.command("RCPT TO:<oncall@example.com>").await),
        "250"
    );
    assert_eq!(code(&c.command("RCPT TO:<lead@example.com>").await), "250");
    assert_eq!(code(&c.command("DATA").await), "354");
    c.send(
        "From: statusmon <statusmon@example.com>\r\n\
         To: oncall@example.com\r\n\
         Subject: Exchange Online degraded\r\n\
         X-Statusmon-Idempotency-Key: ep-42/opened\r\n\
         \r\n\
         First line.\r\n\
         ..starts with a dot\r\n\
         .\r\n",
    )
    .await;
    let queued = c.reply().await;
    assert_eq!(code(&queued), "250", "{queued}");
    assert_eq!(code(&c.command("NOOP").await), "250");
    assert_eq!(code(&c.command("RSET").await), "250");
    assert_eq!(code(&c.command("QUIT").await), "221");

    let log = sim.hook_deliveries_to("email");
    assert_eq!(log.len(), 1);
    let mail = &log[0];
    assert_eq!(mail.status, 250);
    assert!(!mail.refused);
    assert_eq!(mail.idempotency_key.as_deref(), Some("ep-42/opened"));
    let text = mail.body.as_str().unwrap();
    assert!(
        text.contains("\r\n.starts with a dot\r\n"),
        "dot-unstuffed: {text:?}"
    );
    assert!(!text.contains("..starts"), "{text:?}");
    assert!(text.ends_with("starts with a dot\r\n"), "{text:?}");
    let envelope = mail.email.as_ref().unwrap();
    assert_eq!(envelope.from, "statusmon@example.com");
    assert_eq!(envelope.to, vec!["oncall@example.com", "lead@example.com"]);
    assert_eq!(envelope.auth.as_deref(), Some("PLAIN"));
    assert_eq!(
        envelope.subject.as_deref(),
        Some("Exchange Online degraded")
    );

    let everything = serde_json::to_string(&control_get(&sim, "/_sim/hooks").await).unwrap();
    assert!(everything.contains("ep-42/opened"));
    assert!(
        !everything.contains("hunter2"),
        "the password leaked: {everything}"
    );
    assert!(!everything.contains(&credentials));
    smtp.shutdown().await;
}

#[tokio::test]
async fn smtp_auth_login_and_sequence_errors() {
    let sim = sim().await;
    let smtp = start_smtp(&sim).await;
    let (mut c, _) = Smtp::connect(smtp.addr()).await;
    assert_eq!(
        code(&c.command("MAIL FROM:<a@b>").await),
        "503",
        "EHLO first"
    );
    assert_eq!(code(&c.command("HELO client").await), "250");
    assert_eq!(code(&c.command("DATA").await), "503", "no recipients yet");
    assert_eq!(code(&c.command("AUTH CRAM-MD5").await), "504");
    assert_eq!(code(&c.command("AUTH LOGIN").await), "334");
    assert_eq!(code(&c.command(&BASE64.encode("user")).await), "334");
    assert_eq!(code(&c.command(&BASE64.encode("pass-word-9")).await), "235");
    assert_eq!(
        code(&c.command("AUTH PLAIN").await),
        "503",
        "already authenticated"
    );
    assert_eq!(code(&c.command("RCPT TO:<x@y>").await), "503", "MAIL first");
    assert_eq!(code(&c.command("STARTTLS").await), "502");
    assert!(sim.hook_deliveries().is_empty());

    // A message after AUTH LOGIN is logged with the mechanism, never the credentials.
    assert_eq!(code(&c.command("MAIL FROM:<a@b>").await), "250");
    assert_eq!(code(&c.command("RCPT TO:<c@d>").await), "250");
    assert_eq!(code(&c.command("DATA").await), "354");
    c.send("Subject: login\r\n\r\nhello\r\n.\r\n").await;
    assert_eq!(code(&c.reply().await), "250");
    assert_eq!(code(&c.command("QUIT").await), "221");
    let log = sim.hook_deliveries_to("email");
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].email.as_ref().unwrap().auth.as_deref(),
        Some("LOGIN")
    );
    let everything = serde_json::to_string(&control_get(&sim, "/_sim/hooks").await).unwrap();
    assert!(everything.contains("Subject: login"), "{everything}");
    assert!(!everything.contains("pass-word"), "{everything}");
    assert!(!everything.contains(&BASE64.encode("pass-word-9")));
    smtp.shutdown().await;
}

#[tokio::test]
async fn smtp_refuses_oversize_messages() {
    let sim = sim().await;
    let smtp = start_smtp(&sim).await;
    let (mut c, _) = Smtp::connect(smtp.addr()).await;
    assert_eq!(code(&c.command("EHLO client").await), "250");
    let declared = format!("MAIL FROM:<a@b> SIZE={}", SMTP_MAX_MESSAGE + 1);
    assert_eq!(
        code(&c.command(&declared).await),
        "552",
        "refused on the declared size"
    );

    assert_eq!(code(&c.command("MAIL FROM:<a@b>").await), "250");
    assert_eq!(code(&c.command("RCPT TO:<c@d>").await), "250");
    assert_eq!(code(&c.command("DATA").await), "354");
    let line = format!("{}\r\n", "y".repeat(998));
    let lines = SMTP_MAX_MESSAGE / line.len() + 2;
    let big = line.repeat(lines);
    c.send("Subject: big\r\n\r\n").await;
    c.send(&big).await;
    c.send(".\r\n").await;
    let refused = c.reply().await;
    assert_eq!(code(&refused), "552", "{refused}");
    // The session goes on, and a message of fair size still gets through.
    assert_eq!(code(&c.command("MAIL FROM:<a@b>").await), "250");
    assert_eq!(code(&c.command("RCPT TO:<c@d>").await), "250");
    assert_eq!(code(&c.command("DATA").await), "354");
    c.send("Subject: small\r\n\r\nfine\r\n.\r\n").await;
    assert_eq!(code(&c.reply().await), "250");

    let statuses: Vec<u16> = sim
        .hook_deliveries_to("email")
        .iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, vec![552, 250]);
    smtp.shutdown().await;
}

#[tokio::test]
async fn smtp_down_answers_421_at_greeting_and_451_at_data() {
    let sim = sim().await;
    let smtp = start_smtp(&sim).await;
    let (mut c, _) = Smtp::connect(smtp.addr()).await;
    assert_eq!(code(&c.command("EHLO client").await), "250");
    assert_eq!(code(&c.command("MAIL FROM:<a@b>").await), "250");
    assert_eq!(code(&c.command("RCPT TO:<c@d>").await), "250");
    assert_eq!(
        control_post(&sim, "/_sim/hooks/email/down").await.status(),
        200
    );
    assert_eq!(code(&c.command("DATA").await), "451");

    let (_, greeting) = Smtp::connect(smtp.addr()).await;
    assert_eq!(code(&greeting), "421");

    assert!(sim.set_hook_down("email", false));
    assert_eq!(code(&c.command("MAIL FROM:<a@b>").await), "250");
    assert_eq!(code(&c.command("RCPT TO:<c@d>").await), "250");
    assert_eq!(code(&c.command("DATA").await), "354");
    c.send("Subject: after\r\n\r\nback\r\n.\r\n").await;
    assert_eq!(code(&c.reply().await), "250");

    let seen: Vec<(u16, bool)> = sim
        .hook_deliveries_to("email")
        .iter()
        .map(|d| (d.status, d.refused))
        .collect();
    assert_eq!(seen, vec![(451, true), (421, true), (250, false)]);
    smtp.shutdown().await;
}

#[tokio::test]
async fn lettre_delivers_to_the_smtp_receiver_without_tls() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let sim = sim().await;
    let smtp = start_smtp(&sim).await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.addr().port())
        .credentials(Credentials::new("alerts".into(), "lettre-secret-77".into()))
        .timeout(Some(Duration::from_secs(5)))
        .build();
    let message = Message::builder()
        .from("statusmon <statusmon@example.com>".parse().unwrap())
        .to("oncall@example.com".parse().unwrap())
        .subject("Teams restored")
        .body(".leading dot\r\nsecond line\r\n".to_string())
        .unwrap();
    transport.send(message).await.expect("lettre delivers");

    let log = sim.hook_deliveries_to("email");
    assert_eq!(log.len(), 1);
    let mail = &log[0];
    assert_eq!(mail.status, 250);
    let envelope = mail.email.as_ref().unwrap();
    assert_eq!(envelope.to, vec!["oncall@example.com"]);
    // lettre prefers PLAIN when the server offers it.
    assert_eq!(envelope.auth.as_deref(), Some("PLAIN"));
    assert!(mail.body.as_str().unwrap().contains("\r\n.leading dot\r\n"));
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains("lettre-secret")
    );
    smtp.shutdown().await;
}
