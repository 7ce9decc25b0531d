//! The simulator's own endpoints under `/_sim`: read its state, switch the site's scenario, the
//! Graph scenarios (default and per tenant) and the social scenario, and step the social
//! timeline. They are never counted as upstream requests and
//! never subject to a scenario's failures, so a running simulator can always be switched out of
//! `failing-hang`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

use super::social::{self, MIN_SOCIAL_STEP, SocialSim, param, query_pairs};
use super::tenants::valid_tenant;
use super::{
    GraphScenario, SIM_BLUESKY_DID, SIM_BLUESKY_HANDLE, SIM_CLIENT_SECRET, SIM_FEED_PATH,
    SIM_MASTODON_ACCOUNT_ID, SIM_MASTODON_ACCT, SIM_X_BEARER_TOKEN, SIM_X_USER_ID, SIM_X_USERNAME,
    Scenario, SimState, SocialScenario,
};

/// The prefix of every control path.
pub(crate) const PREFIX: &str = "/_sim";

/// Whether `path` is a control path (and so exempt from counting and faults).
pub(crate) fn is_control(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route("/_sim", get(status))
        .route(
            "/_sim/scenario/{name}",
            axum::routing::put(switch).post(switch),
        )
        .route(
            "/_sim/graph/scenario/{name}",
            axum::routing::put(switch_graph).post(switch_graph),
        )
        .route("/_sim/graph/tenants/{tenant}", get(tenant_status))
        .route(
            "/_sim/graph/tenants/{tenant}/scenario/{name}",
            axum::routing::put(switch_tenant).post(switch_tenant),
        )
        .route(
            "/_sim/graph/tenants/{tenant}/scenario",
            delete(reset_tenant),
        )
        .route(
            "/_sim/social/scenario/{name}",
            axum::routing::put(switch_social).post(switch_social),
        )
        .route("/_sim/social/advance", axum::routing::post(advance_social))
}

fn catalogue() -> serde_json::Value {
    Scenario::ALL
        .iter()
        .map(|s| {
            json!({
                "name": s.name(),
                "description": s.description(),
                "aliases": s.aliases(),
            })
        })
        .collect()
}

fn social_catalogue() -> serde_json::Value {
    SocialScenario::ALL
        .iter()
        .map(|s| {
            json!({
                "name": s.name(),
                "description": s.description(),
                "aliases": s.aliases(),
                "thread_posts": s.thread_len(),
            })
        })
        .collect()
}

/// The `social` section of `GET /_sim`.
fn social_status(state: &SimState) -> serde_json::Value {
    let social = state.social();
    let scenario = social.scenario();
    let step = social.step();
    let super::social::Progress { posts, next } = social.progress();
    json!({
        "scenario": scenario.to_string(),
        "scenarios": social_catalogue(),
        "step": humantime::format_duration(step).to_string(),
        "step_ms": u64::try_from(step.as_millis()).unwrap_or(u64::MAX),
        "started": social::iso_ms(social.started()),
        "visible_posts": posts.len(),
        "thread_posts": scenario.thread_len(),
        "next_post_at": next.map(social::iso_ms),
        "posts": posts
            .iter()
            .enumerate()
            .map(|(index, (at, text))| json!({"index": index, "at": social::iso_ms(*at), "text": text}))
            .collect::<Vec<_>>(),
        "requests": social::requests(state),
        "x": {
            "bearer_token": SIM_X_BEARER_TOKEN,
            "username": SIM_X_USERNAME,
            "user_id": SIM_X_USER_ID,
        },
        "mastodon": {"acct": SIM_MASTODON_ACCT, "account_id": SIM_MASTODON_ACCOUNT_ID},
        "bluesky": {"handle": SIM_BLUESKY_HANDLE, "did": SIM_BLUESKY_DID},
        "feed": SIM_FEED_PATH,
    })
}

fn graph_catalogue() -> serde_json::Value {
    GraphScenario::ALL
        .iter()
        .map(|s| json!({"name": s.name(), "description": s.description()}))
        .collect()
}

async fn status(State(state): State<SimState>) -> Json<serde_json::Value> {
    let graph = state.graph();
    Json(json!({
        "scenario": state.scenario().to_string(),
        "scenarios": catalogue(),
        "requests": state.requests(),
        "requests_by_path": state.requests_by_path(),
        "graph": {
            "scenario": graph.default_scenario().to_string(),
            "tenant_scenarios": graph
                .tenant_scenarios()
                .into_iter()
                .map(|(tenant, s)| (tenant, s.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "scenarios": graph_catalogue(),
            "limits": graph.limits(),
            "slow_delay_ms": u64::try_from(graph.slow_delay().as_millis()).unwrap_or(u64::MAX),
            "token_lifetime_s": graph.token_lifetime().as_secs(),
            "client_secret": SIM_CLIENT_SECRET,
            "tenants": graph.all_stats(),
            "untracked_requests": graph.untracked_requests(),
        },
        "social": social_status(&state),
    }))
}

fn unknown_graph_scenario(error: &super::UnknownGraphScenario) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": error.to_string(),
            "scenarios": GraphScenario::ALL.iter().map(GraphScenario::name).collect::<Vec<_>>(),
        })),
    )
        .into_response()
}

fn invalid_tenant(tenant: &str) -> Response {
    let shown: String = tenant
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": format!(
                "{shown:?} is not a tenant id (a GUID or a domain name: letters, digits, '.', '-', '_'), \
                 or too many tenants are tracked"
            ),
        })),
    )
        .into_response()
}

async fn switch_graph(State(state): State<SimState>, Path(name): Path<String>) -> Response {
    match name.parse::<GraphScenario>() {
        Ok(scenario) => {
            let previous = state.graph().set_default_scenario(scenario);
            tracing::info!(%previous, %scenario, "simulator graph scenario switched");
            Json(json!({
                "scenario": scenario.to_string(),
                "previous": previous.to_string(),
            }))
            .into_response()
        }
        Err(error) => unknown_graph_scenario(&error),
    }
}

async fn switch_tenant(
    State(state): State<SimState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Response {
    let scenario = match name.parse::<GraphScenario>() {
        Ok(scenario) => scenario,
        Err(error) => return unknown_graph_scenario(&error),
    };
    let graph = state.graph();
    let previous = graph.scenario_for(&tenant);
    if !graph.set_tenant_scenario(&tenant, Some(scenario)) {
        return invalid_tenant(&tenant);
    }
    tracing::info!(%tenant, %previous, %scenario, "simulator tenant graph scenario switched");
    Json(json!({
        "tenant": tenant,
        "scenario": scenario.to_string(),
        "previous": previous.to_string(),
    }))
    .into_response()
}

async fn reset_tenant(State(state): State<SimState>, Path(tenant): Path<String>) -> Response {
    if !valid_tenant(&tenant) {
        return invalid_tenant(&tenant);
    }
    let graph = state.graph();
    let previous = graph.scenario_for(&tenant);
    graph.set_tenant_scenario(&tenant, None);
    Json(json!({
        "tenant": tenant,
        "scenario": graph.scenario_for(&tenant).to_string(),
        "previous": previous.to_string(),
    }))
    .into_response()
}

async fn tenant_status(State(state): State<SimState>, Path(tenant): Path<String>) -> Response {
    if !valid_tenant(&tenant) {
        return invalid_tenant(&tenant);
    }
    let graph = state.graph();
    Json(json!({
        "tenant": tenant,
        "scenario": graph.scenario_for(&tenant).to_string(),
        "stats": graph.stats(&tenant),
    }))
    .into_response()
}

async fn switch(State(state): State<SimState>, Path(name): Path<String>) -> Response {
    match name.parse::<Scenario>() {
        Ok(scenario) => {
            let previous = state.scenario();
            state.set_scenario(scenario);
            tracing::info!(%previous, %scenario, "simulator scenario switched");
            Json(json!({
                "scenario": scenario.to_string(),
                "previous": previous.to_string(),
            }))
            .into_response()
        }
        Err(error) => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": error.to_string(),
                "scenarios": Scenario::ALL.iter().map(Scenario::name).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}

async fn switch_social(
    State(state): State<SimState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let scenario = match name.parse::<SocialScenario>() {
        Ok(scenario) => scenario,
        Err(error) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({
                    "error": error.to_string(),
                    "scenarios": SocialScenario::ALL.iter().map(SocialScenario::name).collect::<Vec<_>>(),
                })),
            )
                .into_response();
        }
    };
    let social = state.social();
    let pairs = query_pairs(query.as_deref());
    let step = match param(&pairs, "step") {
        None => social.step(),
        Some(text) => match humantime::parse_duration(text) {
            Ok(step) if step >= MIN_SOCIAL_STEP => step,
            Ok(_) => {
                return bad_step(format!(
                    "step {text:?} is shorter than {}",
                    humantime::format_duration(MIN_SOCIAL_STEP)
                ));
            }
            Err(e) => {
                let shown: String = text.chars().filter(|c| !c.is_control()).take(80).collect();
                return bad_step(format!(
                    "step {shown:?} is not a duration like 2s or 500ms: {e}"
                ));
            }
        },
    };
    let previous = social.restart(SocialSim { scenario, step });
    let step = social.step();
    tracing::info!(%previous, %scenario, ?step, "simulator social scenario switched");
    Json(json!({
        "scenario": scenario.to_string(),
        "previous": previous.to_string(),
        "step": humantime::format_duration(step).to_string(),
        "step_ms": u64::try_from(step.as_millis()).unwrap_or(u64::MAX),
        "started": social::iso_ms(social.started()),
        "thread_posts": scenario.thread_len(),
    }))
    .into_response()
}

fn bad_step(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

async fn advance_social(State(state): State<SimState>) -> Response {
    let social = state.social();
    let revealed = social.advance();
    let super::social::Progress { posts, next } = social.progress();
    let post = revealed
        .and_then(|index| posts.get(index).map(|(at, text)| (index, at, text)))
        .map(|(index, at, text)| json!({"index": index, "at": social::iso_ms(*at), "text": text}));
    Json(json!({
        "revealed": revealed.is_some(),
        "post": post,
        "visible_posts": posts.len(),
        "thread_posts": social.scenario().thread_len(),
        "next_post_at": next.map(social::iso_ms),
    }))
    .into_response()
}
