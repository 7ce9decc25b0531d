//! Transport-level failures shared by every simulated upstream: a server error, a hang, a
//! throttle. They are applied before any upstream module sees the request.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::SimState;
use super::scenario::TransportFault;

/// The `Retry-After` the `throttled` scenario sends, in seconds.
pub(crate) const RETRY_AFTER_SECS: u64 = 30;

/// Answers (or, for a hang, does not answer) according to `fault`.
pub(crate) async fn respond(fault: TransportFault, state: &SimState) -> Response {
    match fault {
        TransportFault::ServerError => server_error(),
        TransportFault::Throttle => throttled(),
        TransportFault::Hang => {
            // Hold the request until the simulator stops; the client's own timeout is what the
            // scenario exercises. Waking on shutdown keeps graceful shutdown from waiting forever.
            state.stopped().await;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "simulator shutting down\n",
            )
                .into_response()
        }
    }
}

fn server_error() -> Response {
    let body = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Service Unavailable</title></head>\n\
                <body><h1>Service Unavailable</h1>\n\
                <p>The service is temporarily unavailable. Please try again later.</p></body></html>\n";
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()),
        ],
        format!("Too many requests. Retry after {RETRY_AFTER_SECS} seconds.\n"),
    )
        .into_response()
}
