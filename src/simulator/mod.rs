//! The built-in simulator: realistic upstream behaviour on loopback, for tests, demos and fire
//! drills (`statusmon simulate`).
//!
//! One listener serves every simulated upstream on its real paths, so a channel is pointed at it
//! by changing only its base URL. Today that is Microsoft's public backup status site
//! (`status_site`). Which situation is played is a [`Scenario`], switchable at runtime through
//! the control endpoints under `/_sim` (see [`router`]).
//!
//! Structure, for adding an upstream: each upstream is one module that exposes
//! `routes() -> Router<SimState>` and turns a [`Scenario`] into its own payloads; [`router`]
//! merges those routes. Transport failures (`failing`, `failing-hang`, `throttled`) are applied
//! to every upstream path by one middleware before any module sees the request, and requests are
//! counted there too. New situations are new [`Scenario`] variants.

mod control;
mod faults;
mod scenario;
mod status_site;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use scenario::{Scenario, UnknownScenario};

/// How long [`SimHandle::shutdown`] waits for open connections before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How many distinct paths are counted separately; beyond that, requests are counted only in
/// the total (a scanner must not grow the simulator's memory without bound).
const MAX_COUNTED_PATHS: usize = 1024;

/// The simulator's shared state: the scenario being played, request counters and the shutdown
/// signal. Cheap to clone; every clone is the same simulator.
#[derive(Debug, Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    scenario: Mutex<Scenario>,
    total: AtomicU64,
    by_path: Mutex<HashMap<String, u64>>,
    stop: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain data that a panic cannot leave half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimState {
    /// A fresh simulator state playing `scenario`.
    pub fn new(scenario: Scenario) -> Self {
        let (stop, _) = watch::channel(false);
        SimState {
            inner: Arc::new(Inner {
                scenario: Mutex::new(scenario),
                total: AtomicU64::new(0),
                by_path: Mutex::new(HashMap::new()),
                stop,
            }),
        }
    }

    /// The scenario being played.
    pub fn scenario(&self) -> Scenario {
        *lock(&self.inner.scenario)
    }

    /// Switches the scenario; the next request sees it.
    pub fn set_scenario(&self, scenario: Scenario) {
        *lock(&self.inner.scenario) = scenario;
    }

    /// Upstream requests received so far (control requests under `/_sim` are not counted).
    pub fn requests(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// Upstream requests received so far whose path starts with `path_prefix`
    /// (e.g. `/api/posts`, `/api/feed/mac`).
    pub fn requests_to(&self, path_prefix: &str) -> u64 {
        lock(&self.inner.by_path)
            .iter()
            .filter(|(path, _)| path.starts_with(path_prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Upstream requests per path, sorted by path.
    pub fn requests_by_path(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.by_path)
            .iter()
            .map(|(path, n)| (path.clone(), *n))
            .collect()
    }

    fn count(&self, path: &str) {
        self.inner.total.fetch_add(1, Ordering::Relaxed);
        let mut by_path = lock(&self.inner.by_path);
        if let Some(n) = by_path.get_mut(path) {
            *n += 1;
        } else if by_path.len() < MAX_COUNTED_PATHS {
            by_path.insert(path.to_string(), 1);
        }
    }

    /// Tells the server and every held request to stop.
    fn begin_shutdown(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Resolves once shutdown has begun.
    async fn stopped(&self) {
        let mut stop = self.inner.stop.subscribe();
        // An error means the sender is gone, which also means the simulator is gone.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

/// The simulator's HTTP application: every upstream's routes, the `/_sim` control endpoints, and
/// the status site's catch-all (its single-page app answers any unknown path with its HTML shell).
///
/// Control endpoints:
/// - `GET /_sim`: `{"scenario": "...", "scenarios": [{"name", "description", "aliases"}],
///   "requests": N, "requests_by_path": {...}}`;
/// - `PUT` or `POST /_sim/scenario/{name}`: switches the scenario (`{"scenario", "previous"}`), or
///   answers 404 with `{"error", "scenarios"}` for an unknown name.
pub fn router(state: SimState) -> Router {
    Router::new()
        .merge(status_site::routes())
        .merge(control::routes())
        .fallback(status_site::app_shell)
        .layer(middleware::from_fn_with_state(state.clone(), upstream_gate))
        .with_state(state)
}

/// Counts every upstream request and applies the scenario's transport failure, if any, before
/// the upstream module answers. Control paths pass untouched.
async fn upstream_gate(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if control::is_control(path) {
        return next.run(request).await;
    }
    state.count(path);
    match state.scenario().transport_fault() {
        Some(fault) => faults::respond(fault, &state).await,
        None => next.run(request).await,
    }
}

/// A running simulator. Dropping it stops the server in the background; [`SimHandle::shutdown`]
/// stops it and waits.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: SimState,
    server: Option<JoinHandle<io::Result<()>>>,
}

/// Binds `listen` (port 0 picks a free port) and serves the simulator on the current tokio
/// runtime. Returns as soon as the socket is bound.
pub async fn start(listen: SocketAddr, scenario: Scenario) -> io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr()?;
    let state = SimState::new(scenario);
    let app = router(state.clone());
    let stop = state.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.stopped().await })
            .await
    });
    tracing::debug!(%addr, %scenario, "simulator listening");
    Ok(SimHandle {
        addr,
        state,
        server: Some(server),
    })
}

impl SimHandle {
    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a channel should use as its `base_url`, e.g. `http://127.0.0.1:8787` (an
    /// unspecified listen address is reached through loopback).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Switches the scenario; the next request sees it.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.state.set_scenario(scenario);
    }

    /// The scenario being played.
    pub fn scenario(&self) -> Scenario {
        self.state.scenario()
    }

    /// Upstream requests received so far (control requests are not counted).
    pub fn requests(&self) -> u64 {
        self.state.requests()
    }

    /// Upstream requests received so far whose path starts with `path_prefix`.
    pub fn requests_to(&self, path_prefix: &str) -> u64 {
        self.state.requests_to(path_prefix)
    }

    /// Stops accepting, releases held (`failing-hang`) requests, lets open connections finish
    /// and waits for the server, cutting it off after a short grace period.
    pub async fn shutdown(mut self) {
        self.state.begin_shutdown();
        let Some(mut server) = self.server.take() else {
            return;
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "simulator server ended with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "simulator server task failed"),
            Err(_elapsed) => {
                tracing::warn!(
                    "simulator connections still open after {SHUTDOWN_GRACE:?}; closing them"
                );
                server.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.begin_shutdown();
    }
}

/// What `statusmon simulate` runs: starts the simulator on `listen`, says on stdout where it is
/// and how to use it, then serves until Ctrl-C (or SIGTERM) and shuts down cleanly.
pub async fn serve_until_ctrl_c(listen: SocketAddr, scenario: Scenario) -> anyhow::Result<()> {
    let sim = start(listen, scenario).await.map_err(|e| {
        anyhow::anyhow!(
            "the simulator cannot listen on {listen}: {e} (is the port in use? pick another address)"
        )
    })?;
    let base = sim.base_url();
    println!("simulator listening on {}", sim.addr());
    println!("scenario: {scenario} ({})", scenario.description());
    println!("base_url for an m365_status_site channel: {base}");
    println!("switch scenario: curl -X PUT {base}/_sim/scenario/<name>");
    println!("scenarios: {}", Scenario::names());
    println!("state and request counts: curl {base}/_sim");
    println!("press Ctrl-C to stop");
    crate::signal::shutdown().await;
    println!("stopping the simulator");
    sim.shutdown().await;
    Ok(())
}
