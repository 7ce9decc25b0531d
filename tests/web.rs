//! The HTTP API: the router over documents from real resolutions (against the simulator), and
//! the real `statusmon run` serving it while the simulator's Graph fails under it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::Value;
use statusmon::config::{self, Config};
use statusmon::engine::{self, Engine};
use statusmon::simulator::{self, GraphScenario, Scenario, SimHandle};
use statusmon::status::{self, StatusDocument};
use statusmon::web::{self, WebState};
use tokio::io::{AsyncBufReadExt, BufReader};
use tower::ServiceExt;

use crate::support::{bin, plain_client, simulator, site_config, status_document};

/// Graph (primary) then the public site, both at `base_url`, probed every `interval`.
fn graph_toml(base_url: &str, interval: &str, timeout: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"

[[channels]]
id = "contoso-graph"
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "statusmon-test"
authority = "{base_url}"
graph_url = "{base_url}"
interval = "{interval}"
timeout = "{timeout}"
# Short intervals for a short test: lift the local hourly budget so the config says nothing.
budget_per_hour = 100000

[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "{base_url}"
interval = "{interval}"
timeout = "{timeout}"

[[targets]]
id = "contoso"
name = "Contoso"
channels = ["contoso-graph", "m365-public"]
"#
    )
}

const SECRET_VAR: &str = "STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET";

pub(crate) fn graph_config(base_url: &str) -> Config {
    let env = [(
        SECRET_VAR.to_string(),
        simulator::SIM_CLIENT_SECRET.to_string(),
    )];
    config::parse(
        &graph_toml(base_url, "1m", "2s"),
        Path::new("web.toml"),
        env,
    )
    .expect("test config is valid")
}

pub(crate) async fn graph_sim(graph: GraphScenario) -> SimHandle {
    simulator::start_with_graph(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Scenario::Healthy,
        graph,
    )
    .await
    .expect("simulator")
}

/// A document from one real round against the simulator playing `graph` on Graph.
async fn graph_document(graph: GraphScenario) -> StatusDocument {
    let sim = graph_sim(graph).await;
    status_document(graph_config(&sim.base_url())).await
}

fn published(document: StatusDocument) -> WebState {
    let state = WebState::new();
    state.publish(Arc::new(document), &[]);
    state
}

/// One request through the router: status, headers and the body as JSON.
async fn call(state: &WebState, method: Method, path: &str) -> (StatusCode, HeaderMap, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    let response = web::router(state.clone())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{path}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, headers, json)
}

async fn get(state: &WebState, path: &str) -> (StatusCode, Value) {
    let (status, headers, json) = call(state, Method::GET, path).await;
    assert_eq!(
        headers.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "{path}: cache-control"
    );
    (status, json)
}

#[tokio::test]
async fn data_endpoints_answer_503_json_before_the_first_round() {
    let state = WebState::new();
    for path in [
        "/api/v1/status",
        "/api/v1/targets",
        "/api/v1/targets/t1",
        "/api/v1/channels",
        "/api/v1/incidents",
        "/readyz",
    ] {
        let (status, json) = get(&state, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {json}");
        assert_eq!(json["error"], "no round resolved yet", "{path}");
    }
    let (status, json) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, serde_json::json!({ "status": "ok" }));
}

#[tokio::test]
async fn status_is_the_document_that_status_json_prints() {
    let sim = simulator(Scenario::Healthy).await;
    let document = status_document(site_config(&sim.base_url(), "")).await;
    let expected = serde_json::to_value(&document).expect("serializes");
    let state = published(document);
    let (status, headers, json) = call(&state, Method::GET, "/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(json, expected);
    assert!(json["generated_at"].is_string());
    assert_eq!(json["targets"][0]["id"], "t1");
    assert_eq!(json["targets"][0]["verdict"], "operational");
    assert_eq!(json["targets"][0]["visibility"], "full");
    assert_eq!(json["channels"][0]["id"], "m365-public");
    assert_eq!(json["channels"][0]["state"], "fresh");
}

#[tokio::test]
async fn targets_list_every_target_and_one_target_by_id_or_a_404() {
    let state = published(graph_document(GraphScenario::Healthy).await);
    let document = state.document().expect("published");

    let (status, json) = get(&state, "/api/v1/targets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json["targets"],
        serde_json::to_value(&document.targets).expect("serializes")
    );
    assert!(json["generated_at"].is_string());
    assert!(json.get("channels").is_none());

    let (status, json) = get(&state, "/api/v1/targets/contoso").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["id"], "contoso");
    assert_eq!(json["visibility"], "full");
    assert_eq!(json["source"], "contoso-graph");
    assert_eq!(json["primary"]["channel"], "contoso-graph");
    assert!(json["services"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        json["generated_at"],
        serde_json::to_value(document.generated_at).expect("time")
    );

    let (status, json) = get(&state, "/api/v1/targets/fabrikam").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error = json["error"].as_str().expect("error text");
    assert!(
        error.contains("fabrikam") && error.contains("contoso"),
        "{error}"
    );
    assert_eq!(json.as_object().map(|o| o.len()), Some(1), "{json}");
}

/// The raw answer to a GET: status, `Content-Length` and the body's bytes.
async fn get_raw(state: &WebState, path: &str) -> (StatusCode, Option<usize>, Vec<u8>) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = web::router(state.clone())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, length, body.to_vec())
}

#[tokio::test]
async fn each_round_is_answered_anew_for_kept_and_re_resolved_targets_alike() {
    let first = graph_document(GraphScenario::Healthy).await;
    let kept = Arc::clone(&first.targets[0]);
    let mut other = (*kept).clone();
    other.id = "fabrikam".to_string();
    let state = WebState::new();
    state.publish(
        Arc::new(StatusDocument {
            generated_at: first.generated_at,
            targets: vec![Arc::clone(&kept), Arc::new(other.clone())],
            channels: first.channels.clone(),
        }),
        &[],
    );
    // Every answer of the first round is made (and kept for its round).
    for path in [
        "/api/v1/status",
        "/api/v1/targets",
        "/api/v1/targets/contoso",
        "/api/v1/targets/fabrikam",
    ] {
        assert_eq!(get(&state, path).await.0, StatusCode::OK, "{path}");
    }
    // The next round keeps contoso's resolution as it was and resolves fabrikam anew.
    other.verdict = statusmon_channels::Health::Incident;
    let second = StatusDocument {
        generated_at: first.generated_at + chrono::TimeDelta::seconds(1),
        targets: vec![kept, Arc::new(other)],
        channels: first.channels.clone(),
    };
    let expected = serde_json::to_value(&second).expect("serializes");
    let time = expected["generated_at"].clone();
    state.publish(Arc::new(second), &[]);

    let (status, length, body) = get_raw(&state, "/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(length, Some(body.len()), "Content-Length is the body's");
    let json: Value = serde_json::from_slice(&body).expect("the document is JSON");
    assert_eq!(json, expected);
    assert_eq!(json["targets"][1]["verdict"], "incident");

    let (_, json) = get(&state, "/api/v1/targets").await;
    assert_eq!(json["targets"], expected["targets"]);
    assert_eq!(json["generated_at"], time);
    for (i, id) in ["contoso", "fabrikam"].into_iter().enumerate() {
        let (status, length, body) = get_raw(&state, &format!("/api/v1/targets/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            length,
            Some(body.len()),
            "{id}: Content-Length is the body's"
        );
        let mut json: Value = serde_json::from_slice(&body).expect("a target is JSON");
        let object = json.as_object_mut().expect("a target is an object");
        assert_eq!(object.remove("generated_at"), Some(time.clone()), "{id}");
        assert_eq!(json, expected["targets"][i], "{id}");
    }
}

#[tokio::test]
async fn channels_lists_every_channel_with_its_state() {
    let state = published(graph_document(GraphScenario::Healthy).await);
    let (status, json) = get(&state, "/api/v1/channels").await;
    assert_eq!(status, StatusCode::OK);
    let channels = json["channels"].as_array().expect("channels");
    let ids: Vec<&str> = channels.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["contoso-graph", "m365-public"]);
    for channel in channels {
        assert_eq!(channel["state"], "fresh", "{channel}");
        assert!(channel["kind"].is_string() && channel["last_success"].is_string());
    }
}

#[tokio::test]
async fn incidents_are_every_targets_incidents_with_the_target_id() {
    let state = published(graph_document(GraphScenario::Incident).await);
    let document = state.document().expect("published");
    let expected: usize = document.targets.iter().map(|t| t.incidents.len()).sum();
    assert!(expected > 0, "the incident scenario reports incidents");
    let (status, json) = get(&state, "/api/v1/incidents").await;
    assert_eq!(status, StatusCode::OK);
    let incidents = json["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), expected);
    for incident in incidents {
        assert_eq!(incident["target"], "contoso", "{incident}");
        assert!(incident["id"].is_string() && incident["title"].is_string());
        assert!(incident["sources"].is_array() && incident["classification"].is_string());
    }
    let (_, json) = get(&state, "/api/v1/targets/contoso").await;
    assert_eq!(json["incidents"][0]["id"], incidents[0]["id"]);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_json_errors() {
    let state = published(graph_document(GraphScenario::Healthy).await);
    let (status, json) = get(&state, "/api/v2/status").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "no endpoint /api/v2/status");
    let (status, json) = get(&state, "/api").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "no endpoint /api");

    for (method, path) in [
        (Method::POST, "/api/v1/status"),
        (Method::DELETE, "/api/v1/targets/contoso"),
        (Method::PUT, "/readyz"),
    ] {
        let (status, headers, json) = call(&state, method.clone(), path).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(
            json["error"],
            format!("method {method} is not allowed on {path}")
        );
        let allow = headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(allow.contains("GET"), "{method} {path}: Allow {allow:?}");
        assert_eq!(
            headers.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
    }
}

#[tokio::test]
async fn readyz_is_ready_while_every_primary_is_fresh() {
    let state = published(graph_document(GraphScenario::Healthy).await);
    let (status, json) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "ready");
    assert_eq!(
        json["targets"],
        serde_json::json!([{ "target": "contoso", "primary": "contoso-graph", "state": "fresh" }])
    );
}

#[tokio::test]
async fn readyz_fails_naming_the_target_and_its_failing_primary() {
    let state = published(graph_document(GraphScenario::Failing).await);
    let (status, json) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(json["status"], "not ready");
    let trouble = &json["not_ready"][0];
    assert_eq!(trouble["target"], "contoso");
    assert_eq!(trouble["primary"], "contoso-graph");
    assert_eq!(trouble["state"], "failing");
    assert_eq!(trouble["error_class"], "http");
    let error = json["error"].as_str().expect("error text");
    assert!(error.contains("contoso-graph is failing"), "{error}");
    // The data endpoints still answer: a degraded picture is still a picture.
    let (status, json) = get(&state, "/api/v1/targets/contoso").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["visibility"], "degraded");
}

#[tokio::test]
async fn readyz_fails_when_the_primary_is_stale() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let client = engine::http_client().expect("client");
    let mut engine = Engine::new(Arc::new(graph_config(&sim.base_url())), &client);
    engine.probe_all().await;
    // Resolve later than max age (3 × 1m) with no probe since: every channel is stale.
    let later = chrono::Utc::now() + chrono::Duration::minutes(4);
    let targets = engine.resolve(later);
    let state = published(engine.document(targets, later));
    let (status, json) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(json["not_ready"][0]["primary"], "contoso-graph");
    assert_eq!(json["not_ready"][0]["state"], "stale");
}

#[tokio::test]
async fn readyz_fails_when_the_resolution_loop_stalls() {
    let mut document = graph_document(GraphScenario::Healthy).await;
    document.generated_at -= chrono::Duration::seconds(61);
    let state = published(document);
    let (status, json) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    let error = json["error"].as_str().expect("error text");
    assert!(error.contains("last published 61s ago"), "{error}");
}

/// Reads SSE bytes into `seen` until `needle` has been seen; returns everything read as text.
pub(crate) async fn read_until(
    body: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    seen: &mut Vec<u8>,
    needle: &str,
) -> String {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while !String::from_utf8_lossy(seen).contains(needle) {
            match body.next().await {
                Some(Ok(chunk)) => seen.extend_from_slice(&chunk),
                _ => return false,
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    let text = String::from_utf8_lossy(seen).into_owned();
    assert!(found, "never saw {needle:?} in the event stream:\n{text}");
    text
}

/// The JSON data of every `event: NAME` in an SSE text.
pub(crate) fn events_named(text: &str, name: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l == format!("event: {name}")))
        .filter_map(|block| {
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            serde_json::from_str(&data.join("\n")).ok()
        })
        .collect()
}

#[tokio::test]
async fn events_send_the_document_then_each_change_and_end_on_close() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let client = engine::http_client().expect("client");
    let mut engine = Engine::new(Arc::new(graph_config(&sim.base_url())), &client);
    let state = WebState::new();

    // Opened before the first round: the stream waits for it.
    let response = web::router(state.clone())
        .oneshot(
            Request::builder()
                .uri("/api/v1/events")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"text/event-stream"[..])
    );
    let mut body = response.into_body().into_data_stream();

    engine.probe_all().await;
    let now = chrono::Utc::now();
    let targets = engine.resolve(now);
    let first = Arc::new(engine.document(targets, now));
    state.publish(Arc::clone(&first), &[]);
    let mut seen = Vec::new();
    read_until(&mut body, &mut seen, "event: status").await;
    let text = read_until(&mut body, &mut seen, "\n\n").await;
    let status = events_named(&text, "status");
    assert_eq!(
        status.first(),
        Some(&serde_json::to_value(&*first).expect("json"))
    );

    sim.set_graph_scenario(GraphScenario::Failing);
    engine.probe_all().await;
    let now = chrono::Utc::now();
    let targets = engine.resolve(now);
    let second = engine.document(targets, now);
    let changes = status::changes(&first, &second);
    assert!(!changes.is_empty());
    state.publish(Arc::new(second), &changes);
    let last = changes.last().expect("a change").text.clone();
    let needle = serde_json::to_string(&last).expect("json");
    let seen = read_until(&mut body, &mut seen, &needle).await;
    let events = events_named(&seen, "change");
    assert_eq!(events.len(), changes.len(), "{seen}");
    for (event, change) in events.iter().zip(&changes) {
        assert_eq!(event["text"], change.text.as_str());
        assert_eq!(
            event["target"].as_str(),
            change.target.as_deref(),
            "{event}"
        );
        assert_eq!(
            event["channel"].as_str(),
            change.channel.as_deref(),
            "{event}"
        );
        assert_eq!(
            event["at"],
            serde_json::to_value(now).expect("time"),
            "{event}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["channel"] == "contoso-graph" && e.get("target").is_none()),
        "{seen}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["target"] == "contoso" && e.get("channel").is_none()),
        "{seen}"
    );

    state.close();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while body.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream ends when the server closes"
    );
}

/// Polls `url` until `check` accepts its status and JSON body, or `limit` passes.
async fn poll(
    client: &reqwest::Client,
    url: &str,
    limit: Duration,
    check: impl Fn(u16, &Value) -> bool,
) -> Option<(u16, Value)> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if check(status, &json) {
                return Some((status, json));
            }
            last = Some((status, json));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url}: no acceptable answer within {limit:?}; last: {last:?}");
}

#[tokio::test]
async fn run_serves_the_api_and_readyz_follows_the_primary() {
    let sim = graph_sim(GraphScenario::Healthy).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.toml");
    let (interval, timeout) = (Duration::from_secs(1), Duration::from_millis(500));
    std::fs::write(&path, graph_toml(&sim.base_url(), "1s", "500ms")).expect("write config");
    let mut child = tokio::process::Command::new(bin())
        .args(["run", "--config"])
        .arg(&path)
        .current_dir(dir.path())
        .env(SECRET_VAR, simulator::SIM_CLIENT_SECRET)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn statusmon run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("serving the HTTP API on ") {
                return rest.split(' ').next().map(str::to_string);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("run says where it serves the API");
    let dashboard = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .ok()
        .and_then(|line| line.ok().flatten());
    assert_eq!(
        dashboard,
        Some(format!("open {base}/ to watch the dashboard")),
        "run says where the dashboard is"
    );
    // Keep reading stdout so the process never blocks on a full pipe.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let client = plain_client();
    let (_, document) = poll(
        &client,
        &format!("{base}/api/v1/status"),
        Duration::from_secs(10),
        |status, _| status == 200,
    )
    .await
    .expect("a document");
    let target = &document["targets"][0];
    assert_eq!(target["id"], "contoso");
    assert_eq!(target["visibility"], "full");
    assert!(
        [
            "operational",
            "advisory",
            "incident",
            "maintenance",
            "unknown"
        ]
        .contains(&target["verdict"].as_str().unwrap_or_default())
    );
    assert!(target["services"].is_array() && target["incidents"].is_array());
    assert!(target["admin_plane"]["verdict"].is_string());
    let channels = document["channels"].as_array().expect("channels");
    let ids: Vec<&str> = channels.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["contoso-graph", "m365-public"]);
    for channel in channels {
        assert!(channel["kind"].is_string() && channel["state"].is_string());
    }
    poll(
        &client,
        &format!("{base}/readyz"),
        Duration::from_secs(5),
        |status, _| status == 200,
    )
    .await;

    // An event stream stays open across the outage and must not hold up the shutdown.
    let mut events = client
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(events.status().as_u16(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("a first event")
        .expect("chunk")
        .expect("not ended");
    assert!(String::from_utf8_lossy(&first).contains("event: status"));

    sim.set_graph_scenario(GraphScenario::Failing);
    let switched = Instant::now();
    // A failing probe within one interval and its timeout, resolved within the next second;
    // plus a second of slack for a loaded machine.
    let limit = timeout + Duration::from_secs(1) + interval + Duration::from_secs(1);
    poll(
        &client,
        &format!("{base}/api/v1/status"),
        limit,
        |_, json| json["targets"][0]["visibility"] == "degraded",
    )
    .await;
    let (_, ready) = poll(
        &client,
        &format!("{base}/readyz"),
        limit.saturating_sub(switched.elapsed()),
        |status, _| status == 503,
    )
    .await
    .expect("not ready");
    assert_eq!(ready["not_ready"][0]["target"], "contoso");
    assert_eq!(ready["not_ready"][0]["primary"], "contoso-graph");
    assert_eq!(ready["not_ready"][0]["state"], "failing");
    assert!(switched.elapsed() <= limit, "took {:?}", switched.elapsed());

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(8), child.wait())
        .await
        .expect("stops soon after SIGTERM, open event stream or not")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    drain.abort();
}

#[tokio::test]
async fn run_says_which_address_it_cannot_serve_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("busy.toml");
    let toml =
        graph_toml("http://127.0.0.1:9", "1m", "2s").replace("127.0.0.1:0", &addr.to_string());
    std::fs::write(&path, toml).expect("write config");
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(&path)
            .current_dir(dir.path())
            .output(),
    )
    .await
    .expect("exits at once")
    .expect("run statusmon");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot serve the HTTP API on {addr} (server.listen)"
        )),
        "{stderr}"
    );
    drop(taken);
}
