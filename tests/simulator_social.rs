//! Simulator tests for the social upstreams of @MSFT365Status (X API v2, Mastodon, Bluesky, the
//! Atom feed) and their timeline: plain HTTP calls (no social channel), so each test pins down
//! what the simulator puts on the wire.

use crate::support::plain_client;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use statusmon::simulator::{
    self, GraphScenario, SIM_BLUESKY_DID, SIM_BLUESKY_HANDLE, SIM_FEED_PATH,
    SIM_HISTORY_INCIDENT_ID, SIM_INCIDENT_ID, SIM_MASTODON_ACCOUNT_ID, SIM_NO_IDS_INCIDENT_ID,
    SIM_X_BEARER_TOKEN, SIM_X_USER_ID, Scenario, SimHandle, SocialScenario, SocialSim,
};
use statusmon_channels::social::{Stage, classify};

/// A step long enough that only `/_sim/social/advance` reveals posts during a test.
const HOUR: Duration = Duration::from_secs(3600);
/// Posts in the account's history (the old, resolved thread).
const HISTORY: usize = 4;
const FIELDS: &str = "created_at,conversation_id,referenced_tweets,in_reply_to_user_id,entities";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn social_sim(scenario: SocialScenario, step: Duration) -> SimHandle {
    simulator::start_with_social(
        loopback(),
        Scenario::Healthy,
        GraphScenario::Healthy,
        SocialSim { scenario, step },
    )
    .await
    .expect("the simulator binds an ephemeral loopback port")
}

/// A simulator playing `scenario` with its whole thread revealed (through the control endpoint).
async fn revealed(scenario: SocialScenario) -> SimHandle {
    let sim = social_sim(scenario, HOUR).await;
    for _ in 1..scenario.thread_len() {
        let body = advance(&sim).await;
        assert_eq!(body["revealed"], true, "{body}");
    }
    sim
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"))
        .with_timezone(&Utc)
}

async fn get(sim: &SimHandle, path: &str) -> reqwest::Response {
    plain_client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .expect("the simulator answers")
}

async fn x_get(sim: &SimHandle, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = plain_client().get(format!("{}{path}", sim.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the simulated X answers")
}

/// `GET` and expect 200 JSON.
async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let content_type = header(&response, "content-type");
    let text = response.text().await.expect("a body");
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    json(&text)
}

async fn tweets(sim: &SimHandle, query: &str) -> Value {
    let path = format!("/2/users/{SIM_X_USER_ID}/tweets?{query}");
    ok_json(x_get(sim, &path, Some(SIM_X_BEARER_TOKEN)).await).await
}

fn data(body: &Value) -> &Vec<Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a data array: {body}"))
}

fn ids(body: &Value) -> Vec<u64> {
    data(body)
        .iter()
        .map(|t| t["id"].as_str().expect("an id").parse().expect("numeric"))
        .collect()
}

async fn mastodon(sim: &SimHandle, query: &str) -> (Vec<Value>, String) {
    let response = get(
        sim,
        &format!("/api/v1/accounts/{SIM_MASTODON_ACCOUNT_ID}/statuses?{query}"),
    )
    .await;
    let link = header(&response, "link");
    let body = ok_json(response).await;
    (body.as_array().expect("an array of statuses").clone(), link)
}

fn mastodon_ids(statuses: &[Value]) -> Vec<u64> {
    statuses
        .iter()
        .map(|s| s["id"].as_str().expect("an id").parse().expect("numeric"))
        .collect()
}

async fn author_feed(sim: &SimHandle, query: &str) -> Value {
    let path = format!("/xrpc/app.bsky.feed.getAuthorFeed?actor={SIM_BLUESKY_HANDLE}&{query}");
    ok_json(get(sim, &path).await).await
}

async fn advance(sim: &SimHandle) -> Value {
    let response = plain_client()
        .post(format!("{}/_sim/social/advance", sim.base_url()))
        .send()
        .await
        .expect("the control endpoint answers");
    ok_json(response).await
}

async fn switch(sim: &SimHandle, name_and_query: &str) -> reqwest::Response {
    plain_client()
        .put(format!(
            "{}/_sim/social/scenario/{name_and_query}",
            sim.base_url()
        ))
        .send()
        .await
        .expect("the control endpoint answers")
}

async fn sim_state(sim: &SimHandle) -> Value {
    ok_json(get(sim, "/_sim").await).await
}

fn has_incident_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|i| {
        let letters = bytes[i..].iter().take(2).all(u8::is_ascii_uppercase) && i + 2 <= bytes.len();
        let digits = bytes[(i + 2).min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        letters && (6..=8).contains(&digits)
    })
}

/// Asserts X's rate-limit headers and returns `remaining`.
fn x_rate_headers(response: &reqwest::Response) -> u64 {
    let limit: u64 = header(response, "x-rate-limit-limit")
        .parse()
        .expect("x-rate-limit-limit");
    let remaining: u64 = header(response, "x-rate-limit-remaining")
        .parse()
        .expect("x-rate-limit-remaining");
    let reset: i64 = header(response, "x-rate-limit-reset")
        .parse()
        .expect("x-rate-limit-reset (epoch seconds)");
    let now = Utc::now().timestamp();
    assert!(remaining <= limit);
    assert!(
        reset > now - 1 && reset <= now + 901,
        "reset {reset}, now {now}"
    );
    remaining
}

// ---------------------------------------------------------------------------------------------
// X.

#[tokio::test]
async fn x_looks_up_the_account_by_username_case_insensitively() {
    let sim = social_sim(SocialScenario::Quiet, HOUR).await;
    let response = x_get(
        &sim,
        "/2/users/by/username/msft365STATUS",
        Some(SIM_X_BEARER_TOKEN),
    )
    .await;
    let first = x_rate_headers(&response);
    assert_eq!(header(&response, "x-rate-limit-limit"), "300");
    let body = ok_json(response).await;
    assert_eq!(
        body,
        serde_json::json!({"data": {"id": SIM_X_USER_ID, "name": "Microsoft 365 Status", "username": "MSFT365Status"}})
    );

    // Another account: 200 with only errors[], as X answers; the window counts down.
    let response = x_get(
        &sim,
        "/2/users/by/username/SomeoneElse",
        Some(SIM_X_BEARER_TOKEN),
    )
    .await;
    assert_eq!(x_rate_headers(&response), first - 1);
    let body = ok_json(response).await;
    assert!(body.get("data").is_none(), "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["title"], "Not Found Error");
    assert_eq!(error["resource_type"], "user");
    assert_eq!(error["value"], "SomeoneElse");
    assert!(
        error["type"]
            .as_str()
            .expect("a type")
            .ends_with("/2/problems/resource-not-found")
    );

    // Not a username at all: 400 invalid-request.
    let response = x_get(
        &sim,
        "/2/users/by/username/no-such!name",
        Some(SIM_X_BEARER_TOKEN),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body = json(&response.text().await.expect("a body"));
    assert!(
        body["type"]
            .as_str()
            .expect("a type")
            .ends_with("/invalid-request"),
        "{body}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn x_refuses_requests_without_the_bearer_token() {
    let sim = social_sim(SocialScenario::Incident, HOUR).await;
    let timeline = format!("/2/users/{SIM_X_USER_ID}/tweets");
    for (path, token) in [
        ("/2/users/by/username/MSFT365Status", None),
        (timeline.as_str(), None),
        (timeline.as_str(), Some("not-the-token")),
    ] {
        let response = x_get(&sim, path, token).await;
        assert_eq!(response.status(), 401, "{path} {token:?}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
        x_rate_headers(&response);
        let body = json(&response.text().await.expect("a body"));
        assert_eq!(
            body,
            serde_json::json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn x_timeline_is_newest_first_with_the_fields_asked_for() {
    let sim = revealed(SocialScenario::Incident).await;
    let thread = SocialScenario::Incident.thread_len();
    assert_eq!(thread, 6);

    // Default fields only.
    let body = tweets(&sim, "max_results=100").await;
    assert_eq!(body["meta"]["result_count"], HISTORY + thread);
    let first = &data(&body)[0];
    let keys: HashSet<&str> = first
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["id", "text", "edit_history_tweet_ids"])
    );
    assert_eq!(
        first["edit_history_tweet_ids"],
        serde_json::json!([first["id"]])
    );

    let body = tweets(&sim, &format!("max_results=100&tweet.fields={FIELDS}")).await;
    let posts = data(&body);
    let ids = ids(&body);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(body["meta"]["newest_id"], ids[0].to_string());
    assert_eq!(body["meta"]["oldest_id"], ids[ids.len() - 1].to_string());
    assert!(body["meta"].get("next_token").is_none(), "{body}");
    let times: Vec<DateTime<Utc>> = posts
        .iter()
        .map(|t| {
            let text = t["created_at"].as_str().expect("created_at");
            assert!(text.ends_with(".000Z"), "{text}");
            parse_time(text)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(Utc::now() - times[0] < chrono::TimeDelta::seconds(30));

    // The incident thread, oldest first: a root, then replies to the post before.
    let incident: Vec<&Value> = posts[..thread].iter().rev().collect();
    let root = incident[0]["id"].as_str().expect("an id");
    assert!(incident[0].get("referenced_tweets").is_none());
    assert!(incident[0].get("in_reply_to_user_id").is_none());
    assert!(incident[0]["text"].as_str().expect("text").starts_with(
        "We're investigating an issue affecting access to multiple Microsoft 365 services"
    ));
    for pair in incident.windows(2) {
        let (parent, reply) = (pair[0], pair[1]);
        assert_eq!(reply["conversation_id"], root);
        assert_eq!(reply["in_reply_to_user_id"], SIM_X_USER_ID);
        assert_eq!(
            reply["referenced_tweets"],
            serde_json::json!([{"type": "replied_to", "id": parent["id"]}])
        );
        assert!(
            reply["text"]
                .as_str()
                .expect("text")
                .contains(SIM_INCIDENT_ID)
        );
    }
    // The ETA post links through t.co, with the expanded URL in entities.
    let eta = incident
        .iter()
        .find(|t| t["text"].as_str().expect("text").contains("we expect"))
        .expect("an ETA post");
    assert!(
        eta["text"]
            .as_str()
            .expect("text")
            .contains("https://t.co/"),
        "{eta}"
    );
    let url = &eta["entities"]["urls"][0];
    assert_eq!(url["expanded_url"], "https://status.cloud.microsoft");
    let text: Vec<char> = eta["text"].as_str().expect("text").chars().collect();
    let (start, end) = (
        url["start"].as_u64().expect("start") as usize,
        url["end"].as_u64().expect("end") as usize,
    );
    assert_eq!(
        text[start..end].iter().collect::<String>(),
        url["url"].as_str().expect("url")
    );

    // The history: an old, resolved thread from days ago, in its own conversation.
    let history = &posts[thread..];
    assert_eq!(history.len(), HISTORY);
    for post in history {
        assert!(
            Utc::now() - parse_time(post["created_at"].as_str().expect("time"))
                > chrono::TimeDelta::days(3)
        );
        assert_ne!(post["conversation_id"], root);
    }
    assert!(
        history[0]["text"]
            .as_str()
            .expect("text")
            .contains("remediated")
    );
    assert!(
        history[3]["text"]
            .as_str()
            .expect("text")
            .contains(SIM_HISTORY_INCIDENT_ID)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn x_since_id_and_until_id_are_exclusive_and_nothing_new_is_just_meta() {
    let sim = social_sim(SocialScenario::Incident, HOUR).await;
    let body = tweets(&sim, "").await;
    let newest = ids(&body)[0];
    assert_eq!(ids(&body).len(), HISTORY + 1);

    let response = x_get(
        &sim,
        &format!("/2/users/{SIM_X_USER_ID}/tweets?since_id={newest}"),
        Some(SIM_X_BEARER_TOKEN),
    )
    .await;
    x_rate_headers(&response);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("a body"),
        r#"{"meta":{"result_count":0}}"#
    );

    advance(&sim).await;
    advance(&sim).await;
    let body = tweets(&sim, &format!("since_id={newest}&tweet.fields=created_at")).await;
    let new = ids(&body);
    assert_eq!(new.len(), 2, "{body}");
    assert!(new.iter().all(|id| *id > newest));
    assert_eq!(body["meta"]["result_count"], 2);

    let body = tweets(&sim, &format!("until_id={}", new[0])).await;
    let older = ids(&body);
    assert_eq!(older[0], new[1], "until_id is exclusive");

    let body = tweets(&sim, &format!("since_id={}&until_id={}", newest, new[0])).await;
    assert_eq!(ids(&body), vec![new[1]]);
    let body = tweets(&sim, "exclude=replies").await;
    assert_eq!(ids(&body).len(), 2, "only the two roots: {body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn x_pages_with_max_results_and_pagination_token() {
    let sim = revealed(SocialScenario::Incident).await;
    let total = HISTORY + SocialScenario::Incident.thread_len();
    let first = tweets(&sim, "max_results=5").await;
    assert_eq!(first["meta"]["result_count"], 5);
    let token = first["meta"]["next_token"]
        .as_str()
        .expect("a next_token while more posts remain")
        .to_string();
    let second = tweets(&sim, &format!("max_results=5&pagination_token={token}")).await;
    assert_eq!(second["meta"]["result_count"], total - 5);
    assert!(second["meta"].get("next_token").is_none(), "{second}");
    let mut all = ids(&first);
    all.extend(ids(&second));
    assert!(all.windows(2).all(|w| w[0] > w[1]), "{all:?}");
    assert_eq!(all.len(), total);
    // Default page size is 10: everything fits.
    assert!(tweets(&sim, "").await["meta"].get("next_token").is_none());

    for (query, parameter) in [
        ("max_results=4", "max_results"),
        ("max_results=101", "max_results"),
        ("max_results=ten", "max_results"),
        ("since_id=abc", "since_id"),
        ("pagination_token=garbage", "pagination_token"),
        ("tweet.fields=created_at,bogus", "tweet.fields"),
        ("count=20", "count"),
        ("since_id=20&until_id=10", "since_id"),
    ] {
        let response = x_get(
            &sim,
            &format!("/2/users/{SIM_X_USER_ID}/tweets?{query}"),
            Some(SIM_X_BEARER_TOKEN),
        )
        .await;
        assert_eq!(response.status(), 400, "{query}");
        x_rate_headers(&response);
        let body = json(&response.text().await.expect("a body"));
        assert_eq!(body["title"], "Invalid Request", "{query}: {body}");
        assert!(
            body["type"]
                .as_str()
                .expect("type")
                .ends_with("/2/problems/invalid-request")
        );
        assert!(
            body["errors"][0]["parameters"].get(parameter).is_some(),
            "{query}: {body}"
        );
    }

    // An id that is not the account's: 200 with errors[], no data.
    let body = ok_json(x_get(&sim, "/2/users/12345/tweets", Some(SIM_X_BEARER_TOKEN)).await).await;
    assert!(body.get("data").is_none());
    assert_eq!(body["errors"][0]["resource_type"], "user");
    sim.shutdown().await;
}

#[tokio::test]
async fn x_error_scenarios_answer_with_the_real_bodies() {
    let sim = social_sim(SocialScenario::CreditsDepleted, HOUR).await;
    let timeline = format!("/2/users/{SIM_X_USER_ID}/tweets");
    let cases: [(&str, u16, &str, &str); 4] = [
        (
            "credits-depleted",
            402,
            "CreditsDepleted",
            "/2/problems/credits",
        ),
        (
            "usage-capped",
            429,
            "UsageCapExceeded",
            "/2/problems/usage-capped",
        ),
        ("unauthorized", 401, "Unauthorized", "about:blank"),
        (
            "client-forbidden",
            403,
            "Client Forbidden",
            "/2/problems/client-forbidden",
        ),
    ];
    for (name, status, title, kind) in cases {
        assert_eq!(switch(&sim, name).await.status(), 200);
        for path in ["/2/users/by/username/MSFT365Status", timeline.as_str()] {
            let response = x_get(&sim, path, Some(SIM_X_BEARER_TOKEN)).await;
            assert_eq!(response.status(), status, "{name} {path}");
            assert!(header(&response, "content-type").contains("json"));
            x_rate_headers(&response);
            let body = json(&response.text().await.expect("a body"));
            assert_eq!(body["title"], title, "{name}: {body}");
            assert!(
                body["type"].as_str().expect("type").ends_with(kind),
                "{name}: {body}"
            );
        }
    }
    // The bodies, word for word as recorded.
    switch(&sim, "credits-depleted").await;
    let body = json(
        &x_get(&sim, &timeline, Some(SIM_X_BEARER_TOKEN))
            .await
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(
        body,
        serde_json::json!({
            "type": "https://api.twitter.com/2/problems/credits",
            "title": "CreditsDepleted",
            "detail": "Your enrolled account does not have any credits to fulfill this request.",
        })
    );
    // Without a token it is still the 401 first.
    assert_eq!(x_get(&sim, &timeline, None).await.status(), 401);
    // The other networks play the incident meanwhile.
    let (statuses, _) = mastodon(&sim, "").await;
    assert!(statuses.iter().any(|s| {
        s["content"]
            .as_str()
            .expect("content")
            .contains(SIM_INCIDENT_ID)
    }));
    let feed = author_feed(&sim, "").await;
    assert!(feed["feed"].as_array().expect("feed").iter().any(|item| {
        item["post"]["record"]["text"]
            .as_str()
            .expect("text")
            .contains(SIM_INCIDENT_ID)
    }));
    assert_eq!(get(&sim, SIM_FEED_PATH).await.status(), 200);

    switch(&sim, "usage-capped").await;
    let body = json(
        &x_get(&sim, &timeline, Some(SIM_X_BEARER_TOKEN))
            .await
            .text()
            .await
            .expect("a body"),
    );
    assert_eq!(body["detail"], "Usage cap exceeded: Monthly product cap");
    assert_eq!(body["period"], "Monthly");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limited_refuses_on_x_mastodon_and_bluesky_with_their_headers() {
    let sim = social_sim(SocialScenario::RateLimited, HOUR).await;
    let now = Utc::now();

    let response = x_get(
        &sim,
        &format!("/2/users/{SIM_X_USER_ID}/tweets"),
        Some(SIM_X_BEARER_TOKEN),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "x-rate-limit-remaining"), "0");
    let reset: i64 = header(&response, "x-rate-limit-reset")
        .parse()
        .expect("epoch seconds");
    assert!(
        reset > now.timestamp() && reset <= now.timestamp() + 10,
        "{reset}"
    );
    let body = json(&response.text().await.expect("a body"));
    assert_eq!(
        body,
        serde_json::json!({"title": "Too Many Requests", "type": "about:blank", "status": 429, "detail": "Too Many Requests"})
    );

    let response = get(
        &sim,
        &format!("/api/v1/accounts/{SIM_MASTODON_ACCOUNT_ID}/statuses"),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    let reset = parse_time(&header(&response, "x-ratelimit-reset"));
    assert!(
        reset > now && reset <= now + chrono::TimeDelta::seconds(10),
        "{reset}"
    );
    assert_eq!(
        json(&response.text().await.expect("a body")),
        serde_json::json!({"error": "Too many requests"})
    );

    let response = get(
        &sim,
        &format!("/xrpc/app.bsky.feed.getAuthorFeed?actor={SIM_BLUESKY_HANDLE}"),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "ratelimit-remaining"), "0");
    let reset: i64 = header(&response, "ratelimit-reset")
        .parse()
        .expect("epoch seconds");
    assert!(reset > now.timestamp() && reset <= now.timestamp() + 10);
    let body = json(&response.text().await.expect("a body"));
    assert_eq!(body["error"], "RateLimitExceeded");

    // The feed is no API: it plays the incident.
    assert_eq!(get(&sim, SIM_FEED_PATH).await.status(), 200);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Mastodon.

#[tokio::test]
async fn mastodon_looks_up_the_account_and_serves_html_statuses_with_a_reblog() {
    let sim = revealed(SocialScenario::Incident).await;
    let response = get(&sim, "/api/v1/accounts/lookup?acct=MSFT365Status").await;
    assert_eq!(header(&response, "x-ratelimit-limit"), "300");
    parse_time(&header(&response, "x-ratelimit-reset"));
    let account = ok_json(response).await;
    assert_eq!(account["id"], SIM_MASTODON_ACCOUNT_ID);
    assert_eq!(account["acct"], "MSFT365Status");
    assert!(
        account["url"]
            .as_str()
            .expect("url")
            .starts_with(&sim.base_url())
    );
    let response = get(&sim, "/api/v1/accounts/lookup?acct=somebody").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        json(&response.text().await.expect("a body")),
        serde_json::json!({"error": "Record not found"})
    );
    assert_eq!(
        get(&sim, "/api/v1/accounts/42/statuses").await.status(),
        404
    );

    let (statuses, _) = mastodon(&sim, "limit=40").await;
    let thread = SocialScenario::Incident.thread_len();
    assert_eq!(
        statuses.len(),
        HISTORY + thread + 1,
        "the posts and one reblog"
    );
    let ids = mastodon_ids(&statuses);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let reblogs: Vec<&Value> = statuses.iter().filter(|s| !s["reblog"].is_null()).collect();
    assert_eq!(reblogs.len(), 1);
    assert_ne!(
        reblogs[0]["reblog"]["account"]["id"],
        SIM_MASTODON_ACCOUNT_ID
    );
    assert_eq!(reblogs[0]["content"], "");
    for status in statuses.iter().filter(|s| s["reblog"].is_null()) {
        let content = status["content"].as_str().expect("content");
        assert!(
            content.starts_with("<p>") && content.ends_with("</p>"),
            "{content}"
        );
        assert_eq!(status["account"]["id"], SIM_MASTODON_ACCOUNT_ID);
        assert_eq!(status["visibility"], "public");
    }
    // The thread: each follow-up replies to the post before it.
    let incident: Vec<&Value> = statuses[..thread].iter().rev().collect();
    assert!(incident[0]["in_reply_to_id"].is_null());
    for pair in incident.windows(2) {
        assert_eq!(pair[1]["in_reply_to_id"], pair[0]["id"]);
        assert_eq!(pair[1]["in_reply_to_account_id"], SIM_MASTODON_ACCOUNT_ID);
    }
    let eta = incident
        .iter()
        .find(|s| {
            s["content"]
                .as_str()
                .expect("content")
                .contains("we expect")
        })
        .expect("an ETA post");
    assert!(
        eta["content"]
            .as_str()
            .expect("content")
            .contains("<a href=\"https://status.cloud.microsoft\""),
        "{eta}"
    );

    let (without, _) = mastodon(&sim, "limit=40&exclude_reblogs=true").await;
    assert_eq!(without.len(), HISTORY + thread);
    assert!(without.iter().all(|s| s["reblog"].is_null()));
    // Replies to oneself stay, as on Mastodon.
    let (no_replies, _) = mastodon(&sim, "limit=40&exclude_replies=true&exclude_reblogs=1").await;
    assert_eq!(no_replies.len(), HISTORY + thread);
    let (pinned, link) = mastodon(&sim, "pinned=true").await;
    assert!(pinned.is_empty() && link.is_empty());
    sim.shutdown().await;
}

/// The URL of `rel` in a `Link` header.
fn link_url(link: &str, rel: &str) -> Option<String> {
    link.split(", ")
        .find(|part| part.ends_with(&format!("rel=\"{rel}\"")))
        .and_then(|part| part.split_once('<'))
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(url, _)| url.to_string())
}

#[tokio::test]
async fn mastodon_pages_with_max_id_since_id_min_id_and_link_headers() {
    let sim = revealed(SocialScenario::Incident).await;
    let (all, link) = mastodon(&sim, "limit=40").await;
    assert!(
        link_url(&link, "next").is_none(),
        "a page that is not full has no next: {link}"
    );
    let all = mastodon_ids(&all);

    let (page, link) = mastodon(&sim, "limit=3").await;
    let page = mastodon_ids(&page);
    assert_eq!(page, all[..3]);
    let next = link_url(&link, "next").expect("rel=next");
    let prev = link_url(&link, "prev").expect("rel=prev");
    let base = format!(
        "{}/api/v1/accounts/{SIM_MASTODON_ACCOUNT_ID}/statuses?",
        sim.base_url()
    );
    assert_eq!(next, format!("{base}limit=3&max_id={}", page[2]));
    assert_eq!(prev, format!("{base}limit=3&min_id={}", page[0]));

    // Following next gives the next older page.
    let response = plain_client().get(&next).send().await.expect("answers");
    let older = mastodon_ids(ok_json(response).await.as_array().expect("statuses"));
    assert_eq!(older, all[3..6]);

    // min_id: the statuses immediately newer than it, newest first.
    let oldest = all[all.len() - 1];
    let (newer, link) = mastodon(&sim, &format!("limit=3&min_id={oldest}")).await;
    let newer = mastodon_ids(&newer);
    let n = all.len();
    assert_eq!(newer, all[n - 4..n - 1]);
    assert!(link_url(&link, "prev").is_some());
    // since_id: the newest statuses newer than it.
    let (newest, _) = mastodon(&sim, &format!("limit=3&since_id={oldest}")).await;
    assert_eq!(mastodon_ids(&newest), all[..3]);
    // Nothing newer: an empty array and no Link.
    let (none, link) = mastodon(&sim, &format!("min_id={}", all[0])).await;
    assert!(none.is_empty() && link.is_empty(), "{link}");

    let response = get(
        &sim,
        &format!("/api/v1/accounts/{SIM_MASTODON_ACCOUNT_ID}/statuses?max_id=abc"),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(json(&response.text().await.expect("a body"))["error"].is_string());
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Bluesky.

#[tokio::test]
async fn bluesky_serves_the_profile_and_a_feed_with_a_pin_and_a_repost() {
    let sim = revealed(SocialScenario::Incident).await;
    let profile = ok_json(
        get(
            &sim,
            &format!("/xrpc/app.bsky.actor.getProfile?actor={SIM_BLUESKY_HANDLE}"),
        )
        .await,
    )
    .await;
    assert_eq!(profile["did"], SIM_BLUESKY_DID);
    assert_eq!(profile["handle"], SIM_BLUESKY_HANDLE);
    let by_did = ok_json(
        get(
            &sim,
            &format!("/xrpc/app.bsky.actor.getProfile?actor={SIM_BLUESKY_DID}"),
        )
        .await,
    )
    .await;
    assert_eq!(by_did, profile);

    let body = author_feed(&sim, "").await;
    assert!(
        body.get("cursor").is_none(),
        "everything fits in 50: {body}"
    );
    let feed = body["feed"].as_array().expect("feed");
    let thread = SocialScenario::Incident.thread_len();
    // The pin, the posts (with the pinned post at its own place too) and one repost.
    assert_eq!(feed.len(), 1 + HISTORY + thread + 1 + 1);
    assert_eq!(feed[0]["reason"]["$type"], "app.bsky.feed.defs#reasonPin");
    assert_eq!(feed[0]["post"]["uri"], profile["pinnedPost"]["uri"]);
    let reposts: Vec<&Value> = feed
        .iter()
        .filter(|item| item["reason"]["$type"] == "app.bsky.feed.defs#reasonRepost")
        .collect();
    assert_eq!(reposts.len(), 1);
    assert_ne!(reposts[0]["post"]["author"]["did"], SIM_BLUESKY_DID);
    assert_eq!(reposts[0]["reason"]["by"]["did"], SIM_BLUESKY_DID);

    let uris: HashSet<&str> = feed
        .iter()
        .map(|i| i["post"]["uri"].as_str().expect("uri"))
        .collect();
    let mut times = Vec::new();
    for item in &feed[1..] {
        let post = &item["post"];
        assert!(
            post["uri"]
                .as_str()
                .expect("uri")
                .starts_with("at://did:plc:")
        );
        assert!(post["cid"].as_str().expect("cid").starts_with("bafyrei"));
        assert_eq!(post["record"]["$type"], "app.bsky.feed.post");
        times.push(parse_time(
            item["reason"]["indexedAt"]
                .as_str()
                .unwrap_or_else(|| post["indexedAt"].as_str().expect("indexedAt")),
        ));
        if let Some(reply) = post["record"].get("reply") {
            for end in ["root", "parent"] {
                let uri = reply[end]["uri"].as_str().expect("a reply ref");
                assert!(uris.contains(uri), "{end} {uri} is in the feed");
                assert_eq!(item["reply"][end]["uri"], uri);
            }
        }
    }
    assert!(
        times.windows(2).all(|w| w[0] > w[1]),
        "newest first: {times:?}"
    );
    let newest = &feed[1]["post"]["record"];
    assert!(
        newest["text"]
            .as_str()
            .expect("text")
            .contains("remediated")
    );
    assert_eq!(newest["reply"]["root"]["uri"], feed[thread]["post"]["uri"]);

    let no_pin = author_feed(&sim, "includePins=false").await;
    assert_eq!(
        no_pin["feed"].as_array().expect("feed").len(),
        feed.len() - 1
    );
    let no_replies = author_feed(&sim, "filter=posts_no_replies").await;
    assert!(
        no_replies["feed"]
            .as_array()
            .expect("feed")
            .iter()
            .all(|i| i["post"]["record"].get("reply").is_none())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bluesky_cursor_pages_backwards_through_the_feed() {
    let sim = revealed(SocialScenario::Incident).await;
    let everything = author_feed(&sim, "includePins=false&limit=100").await;
    let expected: Vec<String> = everything["feed"]
        .as_array()
        .expect("feed")
        .iter()
        .map(|i| i["post"]["uri"].as_str().expect("uri").to_string())
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        assert!(round < 10, "paging ends");
        let query = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".to_string(),
        };
        let body = author_feed(&sim, &query).await;
        let items = body["feed"].as_array().expect("feed");
        for item in items {
            if item["reason"]["$type"] == "app.bsky.feed.defs#reasonPin" {
                assert!(cursor.is_none(), "the pin comes on the first page only");
                continue;
            }
            seen.push(item["post"]["uri"].as_str().expect("uri").to_string());
        }
        match body.get("cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    for (query, message) in [
        ("limit=0", ""),
        ("limit=101", ""),
        ("filter=bogus", "filter"),
        ("includePins=maybe", "includePins"),
    ] {
        let response = get(
            &sim,
            &format!("/xrpc/app.bsky.feed.getAuthorFeed?actor={SIM_BLUESKY_HANDLE}&{query}"),
        )
        .await;
        assert_eq!(response.status(), 400, "{query}");
        let body = json(&response.text().await.expect("a body"));
        assert_eq!(body["error"], "InvalidRequest");
        assert!(
            body["message"].as_str().expect("message").contains(message),
            "{body}"
        );
    }
    for path in [
        "/xrpc/app.bsky.feed.getAuthorFeed?actor=nobody.bsky.social",
        "/xrpc/app.bsky.actor.getProfile?actor=nobody.bsky.social",
    ] {
        let response = get(&sim, path).await;
        assert_eq!(response.status(), 400);
        assert_eq!(
            json(&response.text().await.expect("a body")),
            serde_json::json!({"error": "InvalidRequest", "message": "Profile not found"})
        );
    }
    let response = get(&sim, "/xrpc/app.bsky.feed.getTimeline").await;
    assert_eq!(response.status(), 501);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The feed.

#[tokio::test]
async fn the_atom_feed_has_one_entry_per_visible_post() {
    let sim = social_sim(SocialScenario::Incident, HOUR).await;
    let response = get(&sim, SIM_FEED_PATH).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("application/atom+xml"));
    let xml = response.text().await.expect("a body");
    assert!(xml.starts_with("<?xml"));
    assert!(xml.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
    assert_eq!(xml.matches("<entry>").count(), HISTORY + 1);
    for element in [
        "<id>",
        "<title>",
        "<updated>",
        "<published>",
        "<content type=\"html\">",
    ] {
        assert_eq!(
            xml.matches(element).count(),
            HISTORY + 1 + usize::from(matches!(element, "<id>" | "<title>" | "<updated>")),
            "{element}"
        );
    }
    let first_entry = xml.split("<entry>").nth(1).expect("an entry");
    assert!(
        first_entry.contains(SIM_INCIDENT_ID),
        "newest first: {first_entry}"
    );

    advance(&sim).await;
    let xml = get(&sim, SIM_FEED_PATH).await.text().await.expect("a body");
    assert_eq!(xml.matches("<entry>").count(), HISTORY + 2);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The timeline and the control endpoints.

#[tokio::test]
async fn advance_reveals_one_post_at_a_time_until_the_thread_ends() {
    let sim = social_sim(SocialScenario::Incident, HOUR).await;
    let thread = SocialScenario::Incident.thread_len();
    assert_eq!(
        sim.social_visible_posts(),
        1,
        "the first post is visible at the start"
    );
    let state = sim_state(&sim).await;
    assert_eq!(state["social"]["scenario"], "incident");
    assert_eq!(state["social"]["visible_posts"], 1);
    assert_eq!(state["social"]["thread_posts"], thread);
    assert_eq!(state["social"]["step"], "1h");
    assert!(state["social"]["next_post_at"].is_string());

    let mut last = String::new();
    for k in 1..thread {
        let body = advance(&sim).await;
        assert_eq!(body["revealed"], true);
        assert_eq!(body["post"]["index"], k);
        assert_eq!(body["visible_posts"], k + 1);
        let at = body["post"]["at"].as_str().expect("at").to_string();
        assert!(at > last, "{at} after {last}");
        last = at;
        let x = tweets(&sim, "max_results=100").await;
        assert_eq!(ids(&x).len(), HISTORY + k + 1);
    }
    let body = advance(&sim).await;
    assert_eq!(body["revealed"], false);
    assert!(body["post"].is_null());
    assert!(body["next_post_at"].is_null());
    assert_eq!(sim.advance_social(), None);

    // What the posts say, post by post: the scenario is a real incident from start to end.
    let stages: Vec<Stage> = sim_state(&sim).await["social"]["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| classify(p["text"].as_str().expect("text")).stage)
        .collect();
    assert_eq!(stages[0], Stage::Investigating);
    assert!(stages.contains(&Stage::Identified));
    assert!(stages.contains(&Stage::Recovering));
    assert_eq!(stages[thread - 1], Stage::Resolved);
    assert!(
        stages[..thread - 1].iter().all(|s| *s != Stage::Resolved),
        "{stages:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_short_step_reveals_posts_on_schedule_with_their_own_times() {
    let sim = social_sim(SocialScenario::Quiet, HOUR).await;
    let response = switch(&sim, "incident?step=300ms").await;
    let body = ok_json(response).await;
    assert_eq!(body["scenario"], "incident");
    assert_eq!(body["previous"], "quiet");
    assert_eq!(body["step_ms"], 300);
    let started = parse_time(body["started"].as_str().expect("started"));
    assert_eq!(sim.social_step(), Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let (statuses, _) = mastodon(&sim, "limit=40&exclude_reblogs=true").await;
    let thread: Vec<DateTime<Utc>> = statuses
        .iter()
        .map(|s| parse_time(s["created_at"].as_str().expect("created_at")))
        .filter(|at| *at >= started)
        .collect();
    assert!((4..=6).contains(&thread.len()), "{thread:?}");
    for (k, at) in thread.iter().rev().enumerate() {
        assert_eq!(
            *at,
            started + chrono::TimeDelta::milliseconds(300 * k as i64),
            "post {k}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn quiet_has_only_the_old_resolved_thread() {
    let sim = social_sim(SocialScenario::Quiet, Duration::from_millis(10)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let body = tweets(&sim, &format!("tweet.fields={FIELDS}")).await;
    let posts = data(&body);
    assert_eq!(posts.len(), HISTORY);
    for post in posts {
        let at = parse_time(post["created_at"].as_str().expect("created_at"));
        assert!(Utc::now() - at > chrono::TimeDelta::days(3), "{at}");
    }
    assert_eq!(
        classify(posts[0]["text"].as_str().expect("text")).stage,
        Stage::Resolved
    );
    assert_eq!(sim.social_visible_posts(), 0);
    assert_eq!(advance(&sim).await["revealed"], false);
    sim.shutdown().await;
}

#[tokio::test]
async fn incident_no_ids_names_the_id_only_in_the_root_and_ends_open() {
    let sim = revealed(SocialScenario::IncidentNoIds).await;
    let thread = SocialScenario::IncidentNoIds.thread_len();
    let body = tweets(&sim, &format!("tweet.fields={FIELDS}")).await;
    let incident: Vec<&Value> = data(&body)[..thread].iter().rev().collect();
    let root_text = incident[0]["text"].as_str().expect("text");
    assert!(root_text.contains(SIM_NO_IDS_INCIDENT_ID), "{root_text}");
    for post in &incident[1..] {
        let text = post["text"].as_str().expect("text");
        assert!(!has_incident_id(text), "{text}");
        assert_eq!(post["conversation_id"], incident[0]["id"]);
    }
    let last = classify(incident[thread - 1]["text"].as_str().expect("text"));
    assert_ne!(last.stage, Stage::Resolved, "{last:?}");
    assert!(has_incident_id(root_text) && !has_incident_id("no ids here"));
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_social_scenarios_and_bad_steps_are_refused() {
    let sim = social_sim(SocialScenario::Incident, HOUR).await;
    let response = switch(&sim, "meltdown").await;
    assert_eq!(response.status(), 404);
    let body = json(&response.text().await.expect("a body"));
    assert!(body["error"].as_str().expect("error").contains("meltdown"));
    let names: Vec<&str> = body["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|n| n.as_str().expect("name"))
        .collect();
    for scenario in SocialScenario::ALL {
        assert!(names.contains(&scenario.name()), "{names:?}");
    }
    for step in ["soon", "1ms"] {
        let response = switch(&sim, &format!("quiet?step={step}")).await;
        assert_eq!(response.status(), 400, "{step}");
        assert!(json(&response.text().await.expect("a body"))["error"].is_string());
    }
    assert_eq!(
        sim.social_scenario(),
        SocialScenario::Incident,
        "nothing changed"
    );
    // POST works as PUT, and aliases parse.
    let response = plain_client()
        .post(format!("{}/_sim/social/scenario/No_Ids", sim.base_url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(ok_json(response).await["scenario"], "incident-no-ids");
    assert_eq!(sim.social_scenario(), SocialScenario::IncidentNoIds);

    assert_eq!(
        "healthy".parse::<SocialScenario>(),
        Ok(SocialScenario::Quiet)
    );
    assert_eq!(
        " Rate_Limited ".parse::<SocialScenario>(),
        Ok(SocialScenario::RateLimited)
    );
    assert_eq!(
        SocialScenario::CreditsDepleted.to_string(),
        "credits-depleted"
    );
    let error = "nope".parse::<SocialScenario>().expect_err("unknown");
    assert!(error.to_string().contains("usage-capped"), "{error}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_site_failing_leaves_the_social_upstreams_answering() {
    let sim = social_sim(SocialScenario::Incident, HOUR).await;
    sim.set_scenario(Scenario::Failing);
    assert_eq!(get(&sim, "/api/posts/mac").await.status(), 503);
    tweets(&sim, "").await;
    mastodon(&sim, "").await;
    author_feed(&sim, "").await;
    assert_eq!(get(&sim, SIM_FEED_PATH).await.status(), 200);
    // Unknown social paths are the network's own 404/501, not the site's 503.
    assert_eq!(
        x_get(&sim, "/2/nope", Some(SIM_X_BEARER_TOKEN))
            .await
            .status(),
        404
    );
    assert_eq!(get(&sim, "/api/v1/nope").await.status(), 404);

    let requests = sim.social_requests();
    assert_eq!(
        (
            requests.x,
            requests.mastodon,
            requests.bluesky,
            requests.feed
        ),
        (2, 2, 1, 1)
    );
    let state = sim_state(&sim).await;
    assert_eq!(state["social"]["requests"]["x"], 2);
    assert_eq!(state["requests_by_path"][SIM_FEED_PATH], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn simulate_takes_a_social_scenario_and_step() {
    let output = tokio::process::Command::new(crate::support::bin())
        .args(["simulate", "--help"])
        .output()
        .await
        .expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for word in [
        "--social-scenario",
        "--social-step",
        "credits-depleted",
        "incident-no-ids",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let output = tokio::process::Command::new(crate::support::bin())
        .args(["simulate", "--social-scenario", "meltdown"])
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("rate-limited"));
    let output = tokio::process::Command::new(crate::support::bin())
        .args(["simulate", "--social-step", "1ms"])
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
}
