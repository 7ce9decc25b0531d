//! The simulator's own endpoints under `/_sim`: read its state, switch its scenario. They are
//! never counted as upstream requests and never subject to a scenario's failures, so a running
//! simulator can always be switched out of `failing-hang`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Scenario, SimState};

/// The prefix of every control path.
pub(crate) const PREFIX: &str = "/_sim";

/// Whether `path` is a control path (and so exempt from counting and faults).
pub(crate) fn is_control(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(crate) fn routes() -> Router<SimState> {
    Router::new().route("/_sim", get(status)).route(
        "/_sim/scenario/{name}",
        axum::routing::put(switch).post(switch),
    )
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

async fn status(State(state): State<SimState>) -> Json<serde_json::Value> {
    Json(json!({
        "scenario": state.scenario().to_string(),
        "scenarios": catalogue(),
        "requests": state.requests(),
        "requests_by_path": state.requests_by_path(),
    }))
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
