//! The built-in simulator: realistic upstream behaviour on loopback, for tests, demos and fire
//! drills (`statusmon simulate`).
//!
//! One listener serves every simulated upstream on its real paths, so a channel is pointed at it
//! by changing only its base URL. That is Microsoft's public backup status site
//! (`status_site`); Microsoft Graph's service-health API (`graph`) with the identity platform's
//! token endpoint (`token`), per tenant; and the social upstreams of @MSFT365Status (`social`):
//! X API v2 under `/2/` (bearer [`SIM_X_BEARER_TOKEN`]), Mastodon under `/api/v1/`, Bluesky's
//! AppView under `/xrpc/` and an Atom feed at [`SIM_FEED_PATH`]. Which situation the site plays
//! is a [`Scenario`]; Graph plays a [`GraphScenario`] per tenant (with a default for every
//! tenant); the social upstreams play one [`SocialScenario`]. So site, Graph and social
//! situations combine freely, and all are switchable at runtime through the control endpoints
//! under `/_sim` (see [`router`]).
//!
//! The social scenario is a timeline: the account's history (an old, resolved thread from days
//! ago) is always there, and the scenario's thread is revealed post by post, post k (0-based)
//! at `start + k × step`, stamped with that time ([`SocialSim`]: default `quiet`, step
//! [`DEFAULT_SOCIAL_STEP`]). `POST /_sim/social/advance` reveals the next post at once (for
//! deterministic tests); switching the social scenario restarts the timeline.
//!
//! Structure, for adding an upstream: each upstream is one module that exposes
//! `routes() -> Router<SimState>` and turns a scenario into its own payloads; [`router`] merges
//! those routes. The site's transport failures (`failing`, `failing-hang`, `throttled`) are
//! applied to every site path by one middleware before any module sees the request, and every
//! upstream request is counted there too. Graph applies its own per-tenant failures after
//! authenticating the token (the tenant comes from the token), and accounts each tenant's request
//! budget (`tenants`). The social networks apply their own refusals (X's 401/402/403/429,
//! Mastodon's and Bluesky's 429) and keep their rate-limit windows (`social`). New situations are
//! new [`Scenario`] / [`GraphScenario`] / [`SocialScenario`] variants.
//!
//! The simulator also plays the other side: receivers for every alert sink, so tests and
//! `statusmon drill` deliver alerts to it (`receivers`). On the same listener, under `/hooks/`:
//! a signed generic webhook (`/hooks/webhook/{name}`, verified against [`SIM_WEBHOOK_SECRET`]),
//! Slack (`/hooks/slack/{name}`), Teams Workflows (`/hooks/teams/{name}`), PagerDuty Events v2
//! (`/hooks/pagerduty/v2/enqueue`) and Alertmanager (`/hooks/alertmanager/api/v2/alerts`); and,
//! on a port of its own, plain SMTP without TLS ([`SimHandle::start_smtp`], so an e-mail sink
//! uses `tls = "none"`). Every request lands in one bounded log of [`HookDelivery`] entries
//! ([`SimHandle::hook_deliveries`], `GET /_sim/hooks`); PagerDuty's open alerts and pages and
//! Alertmanager's alerts by label set are kept as those services keep them
//! ([`SimHandle::pagerduty_state`], [`SimHandle::alertmanager_state`]); and any receiver can be
//! switched down ([`SimHandle::set_hook_down`]) to exercise a sink's retries. Receiver requests
//! are not upstream requests: they are not counted and never see the site's transport faults.

mod control;
mod faults;
mod graph;
mod receivers;
mod scenario;
mod smtp;
mod social;
mod status_site;
mod tenants;
mod token;

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

pub use receivers::{
    AlertmanagerAlert, AlertmanagerState, EmailEnvelope, HookDelivery, MAX_HOOK_BODY,
    MAX_HOOK_DELIVERIES, PagerDutyAlert, PagerDutyState, SIM_WEBHOOK_SECRET, SignatureCheck,
    TEAMS_MAX_BYTES,
};
pub use scenario::{
    GraphScenario, Scenario, SocialScenario, UnknownGraphScenario, UnknownScenario,
    UnknownSocialScenario,
};
pub use smtp::{SMTP_IDLE_TIMEOUT, SMTP_MAX_MESSAGE, SmtpHandle, serve as serve_smtp};
pub use social::{
    DEFAULT_SOCIAL_STEP, MIN_SOCIAL_STEP, SIM_BLUESKY_DID, SIM_BLUESKY_HANDLE, SIM_FEED_PATH,
    SIM_HISTORY_INCIDENT_ID, SIM_INCIDENT_ID, SIM_MASTODON_ACCOUNT_ID, SIM_MASTODON_ACCT,
    SIM_NO_IDS_INCIDENT_ID, SIM_X_BEARER_TOKEN, SIM_X_USER_ID, SIM_X_USERNAME, SocialRequests,
    SocialSim,
};
pub use tenants::{
    DEFAULT_SLOW_DELAY, DEFAULT_TOKEN_LIFETIME, GraphLimits, GraphTenantStats, MAX_TENANTS,
    SIM_CLIENT_SECRET,
};

use receivers::HookState;
use social::SocialState;
use tenants::GraphState;

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
    graph: GraphState,
    social: SocialState,
    hooks: HookState,
    stop: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain data that a panic cannot leave half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimState {
    /// A fresh simulator state playing `scenario` on the site and a healthy Graph.
    pub fn new(scenario: Scenario) -> Self {
        SimState::with_graph(scenario, GraphScenario::Healthy)
    }

    /// A fresh simulator state playing `scenario` on the site and `graph` for every Graph tenant
    /// (and the default [`SocialSim`] on the social upstreams).
    pub fn with_graph(scenario: Scenario, graph: GraphScenario) -> Self {
        SimState::with_social(scenario, graph, SocialSim::default())
    }

    /// A fresh simulator state playing `scenario` on the site, `graph` for every Graph tenant
    /// and `social` on the social upstreams (its timeline starts now).
    pub fn with_social(scenario: Scenario, graph: GraphScenario, social: SocialSim) -> Self {
        let (stop, _) = watch::channel(false);
        SimState {
            inner: Arc::new(Inner {
                scenario: Mutex::new(scenario),
                total: AtomicU64::new(0),
                by_path: Mutex::new(HashMap::new()),
                graph: GraphState::new(graph),
                social: SocialState::new(social),
                hooks: HookState::default(),
                stop,
            }),
        }
    }

    /// The Graph upstream's per-tenant state.
    pub(crate) fn graph(&self) -> &GraphState {
        &self.inner.graph
    }

    /// The social upstreams' timeline and budgets.
    pub(crate) fn social(&self) -> &SocialState {
        &self.inner.social
    }

    /// The alert receivers' log, down switches and PagerDuty/Alertmanager state.
    pub(crate) fn hooks(&self) -> &HookState {
        &self.inner.hooks
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
///   "requests": N, "requests_by_path": {...}, "social": {...}, "graph": {"scenario", "tenant_scenarios",
///   "scenarios", "limits", "slow_delay_ms", "token_lifetime_s", "client_secret", "tenants":
///   {tenant: stats}, "untracked_requests"}}`;
/// - `PUT` or `POST /_sim/scenario/{name}`: switches the site's scenario (`{"scenario",
///   "previous"}`), or answers 404 with `{"error", "scenarios"}` for an unknown name;
/// - `PUT` or `POST /_sim/graph/scenario/{name}`: switches the Graph scenario of every tenant
///   without its own (same answers);
/// - `PUT` or `POST /_sim/graph/tenants/{tenant}/scenario/{name}`: gives one tenant its own Graph
///   scenario; `DELETE /_sim/graph/tenants/{tenant}/scenario` returns it to the default;
/// - `GET /_sim/graph/tenants/{tenant}`: that tenant's scenario and stats;
/// - `PUT` or `POST /_sim/social/scenario/{name}` (optional `?step=2s`, at least
///   [`MIN_SOCIAL_STEP`]): switches the social scenario and restarts its timeline (`{"scenario",
///   "previous", "step", "step_ms", "started", "thread_posts"}`); 404 `{"error", "scenarios"}`
///   for an unknown name, 400 `{"error"}` for a bad step;
/// - `POST /_sim/social/advance`: reveals the next post of the social thread now (`{"revealed",
///   "post": {"index", "at", "text"} | null, "visible_posts", "thread_posts", "next_post_at"}`).
///
/// `GET /_sim` has a `social` section too: `{"scenario", "scenarios": [{"name", "description",
/// "aliases", "thread_posts"}], "step", "step_ms", "started", "visible_posts", "thread_posts",
/// "next_post_at", "posts": [{"index", "at", "text"}], "requests": {"x", "mastodon", "bluesky",
/// "feed"}, "x": {"bearer_token", "username", "user_id"}, "mastodon": {"acct", "account_id"},
/// "bluesky": {"handle", "did"}, "feed"}`.
///
/// The alert receivers' control endpoints:
/// - `GET /_sim/hooks` (optional `?receiver=webhook/ops&after=SEQ`): `{"deliveries": [HookDelivery
///   …], "down": ["slack/x", …], "evicted": N, "webhook_secret"}`, oldest delivery first;
/// - `GET /_sim/hooks/pagerduty`: [`PagerDutyState`] (`open`, `pages`, `pages_by_dedup_key`,
///   `resolved`, `events`, `dropped`);
/// - `GET /_sim/hooks/alertmanager`: [`AlertmanagerState`] (`alerts`, one per label set);
/// - `POST /_sim/hooks/{receiver}/down` and `…/up`, receiver `webhook/{name}`, `slack/{name}`,
///   `teams/{name}`, `pagerduty`, `alertmanager` or `email`: `{"receiver", "down",
///   "previous_down"}`, 404 `{"error", "receivers"}` for another name;
/// - `POST /_sim/hooks/reset`: forgets deliveries, down switches and alerts (`{"reset": true}`).
pub fn router(state: SimState) -> Router {
    Router::new()
        .merge(status_site::routes())
        .merge(graph::routes())
        .merge(token::routes())
        .merge(social::routes())
        .merge(receivers::routes())
        .merge(control::routes())
        .fallback(status_site::app_shell)
        .layer(middleware::from_fn_with_state(state.clone(), upstream_gate))
        .with_state(state)
}

/// Counts every upstream request and applies the site scenario's transport failure, if any,
/// before the site answers. Control and receiver paths pass untouched; Graph, token and social
/// paths are counted but left to their own scenarios.
async fn upstream_gate(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if control::is_control(path) || receivers::is_hook_path(path) {
        return next.run(request).await;
    }
    state.count(path);
    if graph::is_graph_path(path) || token::is_token_path(path) || social::is_social_path(path) {
        return next.run(request).await;
    }
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
/// runtime, with a healthy Graph. Returns as soon as the socket is bound.
pub async fn start(listen: SocketAddr, scenario: Scenario) -> io::Result<SimHandle> {
    start_with_graph(listen, scenario, GraphScenario::Healthy).await
}

/// [`start`], with `graph` as every Graph tenant's initial scenario.
pub async fn start_with_graph(
    listen: SocketAddr,
    scenario: Scenario,
    graph: GraphScenario,
) -> io::Result<SimHandle> {
    start_with_social(listen, scenario, graph, SocialSim::default()).await
}

/// [`start_with_graph`], with `social` on the social upstreams (its timeline starts when the
/// socket is bound).
pub async fn start_with_social(
    listen: SocketAddr,
    scenario: Scenario,
    graph: GraphScenario,
    social: SocialSim,
) -> io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr()?;
    let state = SimState::with_social(scenario, graph, social);
    let app = router(state.clone());
    let stop = state.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.stopped().await })
            .await
    });
    tracing::debug!(%addr, %scenario, %graph, social = %social.scenario, "simulator listening");
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

    /// The Graph scenario of every tenant without its own.
    pub fn graph_scenario(&self) -> GraphScenario {
        self.state.graph().default_scenario()
    }

    /// Switches the Graph scenario of every tenant without its own; the next request sees it.
    pub fn set_graph_scenario(&self, scenario: GraphScenario) {
        self.state.graph().set_default_scenario(scenario);
    }

    /// The Graph scenario `tenant` plays (its own, or the default).
    pub fn tenant_scenario(&self, tenant: &str) -> GraphScenario {
        self.state.graph().scenario_for(tenant)
    }

    /// Gives `tenant` its own Graph scenario. Returns false (and changes nothing) for a tenant
    /// id the token endpoint would not accept, or when [`MAX_TENANTS`] tenants are tracked.
    pub fn set_tenant_scenario(&self, tenant: &str, scenario: GraphScenario) -> bool {
        self.state
            .graph()
            .set_tenant_scenario(tenant, Some(scenario))
    }

    /// Returns `tenant` to the default Graph scenario.
    pub fn clear_tenant_scenario(&self, tenant: &str) {
        self.state.graph().set_tenant_scenario(tenant, None);
    }

    /// What the simulator has seen from `tenant` on Graph and its token endpoint (zeros for a
    /// tenant never seen).
    pub fn graph_stats(&self, tenant: &str) -> GraphTenantStats {
        self.state.graph().stats(tenant)
    }

    /// Every tracked tenant's stats, sorted by tenant.
    pub fn graph_tenants(&self) -> BTreeMap<String, GraphTenantStats> {
        self.state.graph().all_stats()
    }

    /// The per-tenant Graph budget.
    pub fn graph_limits(&self) -> GraphLimits {
        self.state.graph().limits()
    }

    /// Changes the per-tenant Graph budget (each limit at least 1); applies to the next request.
    pub fn set_graph_limits(&self, limits: GraphLimits) {
        self.state.graph().set_limits(limits);
    }

    /// How long the `slow` Graph scenario holds each answer (default [`DEFAULT_SLOW_DELAY`]).
    pub fn set_graph_slow_delay(&self, delay: Duration) {
        self.state.graph().set_slow_delay(delay);
    }

    /// The lifetime (`expires_in`, whole seconds) of tokens issued from now on, for tenants
    /// without their own (default [`DEFAULT_TOKEN_LIFETIME`]).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state.graph().set_token_lifetime(lifetime);
    }

    /// The lifetime of tokens issued from now on for `tenant`. Returns false as
    /// [`SimHandle::set_tenant_scenario`] does.
    pub fn set_tenant_token_lifetime(&self, tenant: &str, lifetime: Duration) -> bool {
        self.state
            .graph()
            .set_tenant_token_lifetime(tenant, lifetime)
    }

    /// The social scenario being played.
    pub fn social_scenario(&self) -> SocialScenario {
        self.state.social().scenario()
    }

    /// The time between two posts of the social scenario's thread.
    pub fn social_step(&self) -> Duration {
        self.state.social().step()
    }

    /// Switches the social scenario, keeping the step, and restarts the timeline (its first
    /// post is visible at once).
    pub fn set_social_scenario(&self, scenario: SocialScenario) {
        let step = self.social_step();
        self.state.social().restart(SocialSim { scenario, step });
    }

    /// Switches the social scenario and step and restarts the timeline.
    pub fn set_social(&self, social: SocialSim) {
        self.state.social().restart(social);
    }

    /// Reveals the next post of the social thread now. Returns its index in the thread, or None
    /// when every post is already visible.
    pub fn advance_social(&self) -> Option<usize> {
        self.state.social().advance()
    }

    /// How many posts of the social scenario's thread are visible now (the history not counted).
    pub fn social_visible_posts(&self) -> usize {
        self.state.social().progress().posts.len()
    }

    /// Upstream requests so far per social network.
    pub fn social_requests(&self) -> SocialRequests {
        social::requests(&self.state)
    }

    /// Every request the alert receivers logged (HTTP and e-mail), oldest first; at most
    /// [`MAX_HOOK_DELIVERIES`] are kept.
    pub fn hook_deliveries(&self) -> Vec<HookDelivery> {
        self.state.hooks().deliveries()
    }

    /// The logged requests of one receiver (`webhook/ops`, `pagerduty`, `email`, …), oldest
    /// first.
    pub fn hook_deliveries_to(&self, receiver: &str) -> Vec<HookDelivery> {
        self.state.hooks().deliveries_after(0, Some(receiver))
    }

    /// Switches a receiver down (it answers 503 with `Retry-After: 1`; SMTP 421/451) or back
    /// up. `receiver` is `webhook/{name}`, `slack/{name}`, `teams/{name}`, `pagerduty`,
    /// `alertmanager` or `email`. Returns false (and changes nothing) for any other name.
    pub fn set_hook_down(&self, receiver: &str, down: bool) -> bool {
        self.state.hooks().set_down(receiver, down).is_some()
    }

    /// The receivers switched down, sorted.
    pub fn hooks_down(&self) -> Vec<String> {
        self.state.hooks().down()
    }

    /// The PagerDuty receiver's open alerts and page counts.
    pub fn pagerduty_state(&self) -> PagerDutyState {
        self.state.hooks().pagerduty()
    }

    /// The Alertmanager receiver's alerts, one per label set.
    pub fn alertmanager_state(&self) -> AlertmanagerState {
        self.state.hooks().alertmanager()
    }

    /// Forgets every logged delivery, down switch and PagerDuty/Alertmanager alert (delivery
    /// `seq` numbers keep counting).
    pub fn reset_hooks(&self) {
        self.state.hooks().reset();
    }

    /// Starts the SMTP receiver on `listen` (port 0 picks a free port), logging e-mail into this
    /// simulator's receivers. It speaks plain SMTP only (no STARTTLS), so an e-mail sink points
    /// at it with `tls = "none"`; it stops with the simulator or on [`SmtpHandle::shutdown`].
    pub async fn start_smtp(&self, listen: SocketAddr) -> io::Result<SmtpHandle> {
        SmtpHandle::start(listen, self.state.clone()).await
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

/// What `statusmon simulate` runs: starts the simulator on `listen` (the site playing
/// `scenario`, every Graph tenant `graph`, the social upstreams `social`), says on stdout where
/// it is and how to use it, then serves until Ctrl-C (or SIGTERM) and shuts down cleanly.
pub async fn serve_until_ctrl_c(
    listen: SocketAddr,
    scenario: Scenario,
    graph: GraphScenario,
    social: SocialSim,
    smtp_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let sim = start_with_social(listen, scenario, graph, social).await.map_err(|e| {
        anyhow::anyhow!(
            "the simulator cannot listen on {listen}: {e} (is the port in use? pick another address)"
        )
    })?;
    let smtp = match smtp_listen {
        Some(addr) => Some(sim.start_smtp(addr).await.map_err(|e| {
            anyhow::anyhow!("{e} (is the port in use? pick another --smtp-listen address)")
        })?),
        None => None,
    };
    let base = sim.base_url();
    println!("simulator listening on {}", sim.addr());
    println!("scenario: {scenario} ({})", scenario.description());
    println!("base_url for an m365_status_site channel: {base}");
    println!("switch scenario: curl -X PUT {base}/_sim/scenario/<name>");
    println!("scenarios: {}", Scenario::names());
    println!(
        "graph scenario (every tenant): {graph} ({})",
        graph.description()
    );
    println!(
        "for a graph channel: authority = graph_url = {base}, any tenant id (a GUID or a domain), \
         any client_id, client_secret = {SIM_CLIENT_SECRET} (or a PS256 client assertion whose \
         aud ends in /<tenant>/oauth2/v2.0/token)"
    );
    println!("switch graph scenario: curl -X PUT {base}/_sim/graph/scenario/<name>");
    println!("  for one tenant: curl -X PUT {base}/_sim/graph/tenants/<tenant>/scenario/<name>");
    println!("graph scenarios: {}", GraphScenario::names());
    let limits = sim.graph_limits();
    println!(
        "graph budget per tenant: {} requests / 60 s, {} / 3600 s (beyond: 429, counted as over_budget)",
        limits.per_60s, limits.per_3600s
    );
    println!(
        "social scenario: {} ({}), one post every {}",
        social.scenario,
        social.scenario.description(),
        humantime::format_duration(sim.social_step())
    );
    println!(
        "for social channels: base_url = {base}; X bearer token = {SIM_X_BEARER_TOKEN}, \
         username {SIM_X_USERNAME} (id {SIM_X_USER_ID}); Mastodon acct {SIM_MASTODON_ACCT}; \
         Bluesky actor {SIM_BLUESKY_HANDLE}; Atom feed {base}{SIM_FEED_PATH}"
    );
    println!(
        "switch social scenario (restarts the timeline): curl -X PUT '{base}/_sim/social/scenario/<name>?step=30s'"
    );
    println!("  reveal the next post now: curl -X POST {base}/_sim/social/advance");
    println!("social scenarios: {}", SocialScenario::names());
    println!(
        "alert receivers: {base}/hooks/webhook/<name> (secret {SIM_WEBHOOK_SECRET}), \
         {base}/hooks/slack/<name>, {base}/hooks/teams/<name>, {base}/hooks/pagerduty/v2/enqueue, \
         {base}/hooks/alertmanager/api/v2/alerts"
    );
    println!(
        "  what arrived: curl {base}/_sim/hooks; switch one down: curl -X POST {base}/_sim/hooks/<receiver>/down"
    );
    if let Some(smtp) = &smtp {
        println!(
            "e-mail receiver (SMTP, no STARTTLS): an email sink with host = \"{}\", port = {}, \
             tls = \"none\"; any username and password are accepted",
            smtp.addr().ip(),
            smtp.addr().port()
        );
    }
    println!("state, request counts and per-tenant graph stats: curl {base}/_sim");
    println!("press Ctrl-C to stop");
    crate::signal::shutdown().await;
    println!("stopping the simulator");
    if let Some(smtp) = smtp {
        smtp.shutdown().await;
    }
    sim.shutdown().await;
    Ok(())
}
