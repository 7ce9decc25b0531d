//! The command line (design §5): `run`, `check-config`, `probe`, `status`, `simulate`, `demo`.
//! This is the binary's edge, so errors here are `anyhow` and every command returns its exit code.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use clap::{Parser, Subcommand};
use serde_json::json;
use statusmon_channels::{Health, Observation, ProbeError};
use tokio::sync::mpsc;

use crate::alerts;
use crate::alerts::delivery::{self, Dispatcher, Plan};
use crate::archive::{self, Archive};
use crate::config::{self, Config, ConfigErrors};
use crate::engine::{self, Engine, ProbeReport};
use crate::resolver::ChannelState;
use crate::simulator::{self, GraphScenario, Scenario, SocialScenario, SocialSim};
use crate::status::{self, StatusDocument};
use crate::store::{self, Recorder, Snapshot, SqliteStore, Store};
use crate::web::{self, AlertingApi, WebState};

/// `print!` for the commands' output. A reader that went away (`statusmon demo | head`) ends
/// the process quietly with code 0, as Unix tools do, instead of a panic; `run` then stops the
/// way a kill would (every round is committed before it is printed, so the next start restores
/// it). Any other failure to write is logged once and the command goes on.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        WARNED.call_once(|| tracing::warn!(%error, "cannot write to stdout"));
    }
}

macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))
    };
}

macro_rules! outln {
    () => {
        write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Exit codes of `status` (Nagios plugin convention).
pub mod exit {
    /// Every target operational.
    pub const OK: u8 = 0;
    /// Advisory or maintenance somewhere; or, for other commands, a failure.
    pub const WARNING: u8 = 1;
    /// An incident somewhere.
    pub const CRITICAL: u8 = 2;
    /// Unknown or blind somewhere, or the check itself could not run.
    pub const UNKNOWN: u8 = 3;
}

/// statusmon keeps Microsoft 365 status visible when the channel you rely on is itself down.
#[derive(Debug, Parser)]
#[command(name = "statusmon", version, about, long_about = None)]
pub struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "STATUSMON_CONFIG",
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe every channel on its schedule, print each change of the resolved picture and serve
    /// the HTTP API on `server.listen`.
    Run,
    /// Validate the config; on error, name the file, the key and the problem, and exit 1.
    CheckConfig,
    /// Probe one channel once and print the observation or the classified error.
    Probe {
        /// The channel id, as in the config.
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Probe every channel once, resolve, print. Exit 0 operational, 1 advisory or
    /// maintenance, 2 incident, 3 unknown or blind (Nagios).
    Status {
        /// Print the status document as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a test alert, marked DRILL, through a route of the config: its sinks in order, the
    /// fallback only if the first fails, as a real alert would go. Prints each sink's answer;
    /// exit 0 when one accepted it, 2 when none did. Needs no running daemon.
    Drill {
        /// The route id, as in `[[routes]]`.
        route: String,
        /// Send through every sink of the route, not just until one accepts: checks the
        /// fallbacks too.
        #[arg(long)]
        every_sink: bool,
    },
    /// Serve simulated upstreams on loopback, for tests, fire drills and benchmarks.
    ///
    /// One listener serves, on their real paths: Microsoft's public status site, Microsoft Graph
    /// service health with its token endpoint, and @MSFT365Status on X API v2 (`/2/...`, bearer
    /// token `sim-x-bearer`), Mastodon (`/api/v1/...`), Bluesky (`/xrpc/...`) and an Atom feed
    /// (`/feeds/msft365status.atom`). Point a channel at it by changing only its base URL. The
    /// social scenario's thread is revealed one post per `--social-step`; `GET /_sim` shows the
    /// state and lists every scenario.
    Simulate {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8900", value_name = "ADDR")]
        listen: SocketAddr,
        /// Scenario of the public status site to start with; switch later with
        /// `PUT /_sim/scenario/NAME`.
        #[arg(long, default_value = "healthy", value_name = "NAME", value_parser = parse_scenario,
              long_help = scenario_help())]
        scenario: Scenario,
        /// Scenario of Graph (every tenant) to start with; switch later with
        /// `PUT /_sim/graph/scenario/NAME` or per tenant with
        /// `PUT /_sim/graph/tenants/TENANT/scenario/NAME`.
        #[arg(long, default_value = "healthy", value_name = "NAME", value_parser = parse_graph_scenario,
              long_help = graph_scenario_help())]
        graph_scenario: GraphScenario,
        /// Scenario of the social upstreams (X API v2, Mastodon, Bluesky, an Atom feed of
        /// @MSFT365Status) to start with; switch later (restarting the timeline) with
        /// `PUT /_sim/social/scenario/NAME?step=30s`.
        #[arg(long, default_value = "quiet", value_name = "NAME", value_parser = parse_social_scenario,
              long_help = social_scenario_help())]
        social_scenario: SocialScenario,
        /// Time between two posts of the social scenario's thread: post k appears k × STEP
        /// after the start (reveal one at once with `POST /_sim/social/advance`).
        #[arg(long, default_value = "30s", value_name = "STEP", value_parser = parse_social_step)]
        social_step: Duration,
        /// Also receive e-mail alerts over SMTP on this address (plain SMTP, no STARTTLS: point
        /// an email sink at it with `tls = "none"`); what arrives shows in `GET /_sim/hooks`.
        #[arg(long, value_name = "ADDR")]
        smtp_listen: Option<SocketAddr>,
    },
    /// Run a scripted outage against the built-in simulator and show each change as it happens
    /// (no credentials or internet needed; about 35 seconds).
    Demo {
        /// Play the script this many times faster (probes too), from 1 to 10.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
        speed: u32,
        /// Where to serve the HTTP API while the demo runs (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
        listen: SocketAddr,
    },
    /// Re-run the channels' parsers and the resolver over an archive of raw upstream answers
    /// (recorded by `run` with `[archive] path`) and print the timeline: the first picture, each
    /// change with the time it happened, the last picture, and every probe whose outcome now
    /// differs from the one recorded. Channels are built from the config (no credentials needed).
    Replay {
        /// The archive folder.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print the replay as one JSON object (first/last status documents, changes,
        /// differences).
        #[arg(long)]
        json: bool,
    },
    /// Print what `run` announced, from its store (`[store] path`): every change with the time it
    /// was seen, oldest first, or with `--incidents` every incident it kept. Safe while `run`
    /// is running.
    History {
        /// Only what concerns this target.
        #[arg(long, value_name = "ID")]
        target: Option<String>,
        /// Only what happened within this long before now ("24h", "7d").
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        since: Option<Duration>,
        /// The incidents instead of the changes: first seen, last change, resolved, sources.
        #[arg(long, conflicts_with = "channel")]
        incidents: bool,
        /// This channel's observation history instead of the changes: a row each time its answer
        /// or its error class changed.
        #[arg(long, value_name = "ID", conflicts_with = "target")]
        channel: Option<String>,
        /// Print JSON Lines, one object per change or incident.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark the daemon: start an upstream and `statusmon run` as child processes, then
    /// measure the daemon's CPU, memory, scheduling lag and status-API latency (takes minutes;
    /// build with --release). See BENCHMARKS.md.
    Bench {
        /// `tenants`: the simulator with one Graph channel per tenant plus shared channels, every
        /// 60 s; `static`: many channels polling one static JSON endpoint, every 20 s.
        #[arg(long, value_enum)]
        profile: crate::bench::Profile,
        /// Tenants of the `tenants` profile.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=9999))]
        tenants: u32,
        /// Channels of the `static` profile.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=9999))]
        channels: u32,
        /// Probe interval [default: the profile's, 60s or 20s].
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        interval: Option<Duration>,
        /// Time after the first round before measuring [default: one interval + 10s].
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        warmup: Option<Duration>,
        /// Length of the quiet window (CPU, memory, scheduling lag; no API load).
        #[arg(long, default_value = "60s", value_name = "DUR", value_parser = parse_duration)]
        duration: Duration,
        /// Length of each status-API load phase.
        #[arg(long, default_value = "20s", value_name = "DUR", value_parser = parse_duration)]
        api_duration: Duration,
        /// Concurrent keep-alive clients of the status API.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
        clients: u32,
        /// Requests per second each client sends in the paced API phases (the flat-out phases
        /// send the next request as soon as an answer is in).
        #[arg(long, default_value_t = 10.0, value_name = "N")]
        rate: f64,
        /// Also print the results as Markdown (for BENCHMARKS.md).
        #[arg(long)]
        markdown: bool,
        /// Run this daemon binary instead of this one (to compare builds).
        #[arg(long, value_name = "PATH")]
        daemon: Option<PathBuf>,
    },
    /// Classify social posts read from stdin, one post per line: print each post's stage,
    /// incident ids and the rule that fired (no config or network needed).
    Classify {
        /// Print one JSON object per post (JSON Lines) with both `stage` and `label`.
        #[arg(long)]
        json: bool,
        /// Vocabulary of the table's first column: our stages, or the fixture file's hand
        /// labels (start, update, recovering, resolved, consumer-redirect).
        #[arg(long, value_enum, default_value = "stage", value_name = "SET")]
        labels: crate::classify_cmd::Labels,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_scenario(name: &str) -> Result<Scenario, String> {
    name.parse::<Scenario>().map_err(|e| e.to_string())
}

fn parse_graph_scenario(name: &str) -> Result<GraphScenario, String> {
    name.parse::<GraphScenario>().map_err(|e| e.to_string())
}

fn parse_social_scenario(name: &str) -> Result<SocialScenario, String> {
    name.parse::<SocialScenario>().map_err(|e| e.to_string())
}

fn parse_social_step(text: &str) -> Result<Duration, String> {
    let step = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if step < simulator::MIN_SOCIAL_STEP {
        return Err(format!(
            "the step must be at least {}",
            humantime::format_duration(simulator::MIN_SOCIAL_STEP)
        ));
    }
    Ok(step)
}

fn social_scenario_help() -> String {
    let mut lines = vec![
        "Scenario of the social upstreams (X API v2, Mastodon, Bluesky, Atom feed) to start with:"
            .to_string(),
    ];
    for s in SocialScenario::ALL {
        lines.push(format!("  {s:<24} {}", s.description()));
    }
    lines.join("\n")
}

fn graph_scenario_help() -> String {
    let mut lines = vec!["Scenario of Graph (every tenant) to start with:".to_string()];
    for s in GraphScenario::ALL {
        lines.push(format!("  {s:<24} {}", s.description()));
    }
    lines.join("\n")
}

fn scenario_help() -> String {
    let mut lines = vec!["Scenario to start with:".to_string()];
    for s in Scenario::ALL {
        lines.push(format!("  {s:<24} {}", s.description()));
    }
    lines.join("\n")
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::CheckConfig => Ok(check_config(&cli.config)),
        Command::Probe { channel, json } => probe(&cli.config, &channel, json).await,
        Command::Status { json } => status(&cli.config, json).await,
        Command::Run => run_daemon(&cli.config).await,
        Command::Drill { route, every_sink } => drill(&cli.config, &route, every_sink).await,
        Command::Simulate {
            listen,
            scenario,
            graph_scenario,
            social_scenario,
            social_step,
            smtp_listen,
        } => {
            let social = simulator::SocialSim {
                scenario: social_scenario,
                step: social_step,
            };
            simulator::serve_until_ctrl_c(listen, scenario, graph_scenario, social, smtp_listen)
                .await?;
            Ok(exit::OK)
        }
        Command::Demo { speed, listen } => demo(speed, listen).await,
        Command::Replay { dir, json } => replay(&cli.config, &dir, json).await,
        Command::Classify { json, labels } => Ok(crate::classify_cmd::run_stdio(json, labels)),
        Command::History {
            target,
            since,
            incidents,
            channel,
            json,
        } => {
            let shown = match channel {
                Some(channel) => Shown::Observations(channel),
                None if incidents => Shown::Incidents,
                None => Shown::Changes,
            };
            history(&cli.config, target.as_deref(), since, shown, json).await
        }
        Command::Bench {
            profile,
            tenants,
            channels,
            interval,
            warmup,
            duration,
            api_duration,
            clients,
            rate,
            markdown,
            daemon,
        } => {
            let options = crate::bench::BenchOptions {
                profile,
                tenants: tenants as usize,
                channels: channels as usize,
                interval,
                warmup,
                duration,
                api_duration,
                clients: clients as usize,
                rate,
                markdown,
                daemon,
            };
            // On Ctrl-C the benchmark is dropped, and with it the child processes it started.
            let report = tokio::select! {
                report = crate::bench::run(&options) => report?,
                () = crate::signal::shutdown() => {
                    anyhow::bail!("interrupted; the daemon and the upstream were stopped")
                }
            };
            out!("{}", report.render_text());
            if markdown {
                outln!();
                out!("{}", report.render_markdown());
            }
            Ok(exit::OK)
        }
    }
}

fn report_config_errors(errors: &ConfigErrors) {
    let mut stderr = std::io::stderr().lock();
    for error in &errors.0 {
        let _ = writeln!(stderr, "error: {error}");
    }
}

fn load(path: &Path) -> Option<Config> {
    match config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("warning: {}: {warning}", path.display());
            }
            Some(config)
        }
        Err(errors) => {
            report_config_errors(&errors);
            None
        }
    }
}

fn check_config(path: &Path) -> u8 {
    let Some(config) = load(path) else {
        return exit::WARNING;
    };
    // Sinks are built as `run` builds them, so what only the SMTP library or a template engine
    // refuses (an address, a template) is found here too.
    let built = engine::http_client()
        .map_err(|e| e.to_string())
        .and_then(|client| Plan::build(&config.alerts, &client));
    if let Err(problem) = built {
        eprintln!("error: {}: alerts: {problem}", path.display());
        return exit::WARNING;
    }
    outln!(
        "{}: OK: {} channel(s), {} target(s)",
        path.display(),
        config.channels.len(),
        config.targets.len()
    );
    for target in &config.targets {
        outln!(
            "  target {} ({}): {} (primary: {})",
            target.id,
            target.name,
            target.channels.join(" → "),
            target.channels.first().map(String::as_str).unwrap_or("-")
        );
    }
    let alerts = &config.alerts;
    if !alerts.sinks.is_empty() || !alerts.routes.is_empty() {
        outln!(
            "  alerts: {} sink(s), {} route(s), {} maintenance window(s)",
            alerts.sinks.len(),
            alerts.routes.len(),
            alerts.maintenance.len()
        );
        for route in &alerts.routes {
            outln!("  route {}: {}", route.id, route.sinks.join(" else "));
        }
    }
    exit::OK
}

async fn probe(path: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let Some(config) = load(path) else {
        return Ok(exit::WARNING);
    };
    let Some(channel_config) = config.channels.iter().find(|c| c.id == id) else {
        return Err(not_configured("channel", id, path, &config.channels, |c| {
            &c.id
        }));
    };
    if !channel_config.enabled {
        eprintln!("note: channel {id} has enabled = false in the config; probing it anyway");
    }
    let client = engine::http_client().context("building the HTTP client")?;
    let channel = engine::build_channel(channel_config, &client, None)
        .map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
    let started = std::time::Instant::now();
    let outcome =
        engine::probe_once(channel.as_ref(), engine::probe_deadline(channel_config)).await;
    let elapsed = started.elapsed();
    let code = match &outcome {
        Ok(o) if o.faults.is_empty() => exit::OK,
        _ => exit::WARNING,
    };
    if json {
        let value = match &outcome {
            Ok(observation) => json!({
                "channel": id, "ok": true, "elapsed_ms": elapsed.as_millis(),
                "observation": observation,
            }),
            Err(error) => json!({
                "channel": id, "ok": false, "elapsed_ms": elapsed.as_millis(),
                "error": {
                    "class": error.class(), "message": error.to_string(),
                    "transient": error.is_transient(),
                    "retry_after_ms": error.retry_after().map(|d| d.as_millis()),
                },
            }),
        };
        outln!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        out!("{}", render_probe(id, &outcome, elapsed));
    }
    Ok(code)
}

fn render_probe(id: &str, outcome: &Result<Observation, ProbeError>, elapsed: Duration) -> String {
    let took = statusmon_channels::error::humanize(elapsed);
    match outcome {
        Err(error) => format!(
            "{id}: FAILED after {took}\n  class: {}{}\n  {error}\n",
            error.class(),
            if error.is_transient() {
                " (transient: a retry may succeed)"
            } else {
                ""
            }
        ),
        Ok(o) => {
            let mut out = format!(
                "{id}: answered in {took}; source time {}; digest {}\n",
                o.source_time
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "not given".into()),
                o.digest.get(..12).unwrap_or(&o.digest)
            );
            for s in &o.services {
                out.push_str(&format!(
                    "  {:<34} {:<12} {}\n",
                    s.name,
                    s.health.as_str(),
                    if s.status_text.is_empty() {
                        String::new()
                    } else {
                        format!("{:?}", s.status_text)
                    }
                ));
            }
            for i in &o.incidents {
                out.push_str(&format!(
                    "  incident {}: {} [{}]\n",
                    i.id.as_deref().unwrap_or("(no id)"),
                    i.title,
                    i.status
                ));
            }
            for f in &o.faults {
                out.push_str(&format!(
                    "  fault ({}): {}: {}\n",
                    f.services.join(", "),
                    f.error.class(),
                    f.error
                ));
            }
            out
        }
    }
}

async fn status(path: &Path, json: bool) -> anyhow::Result<u8> {
    let Some(config) = load(path) else {
        return Ok(exit::UNKNOWN);
    };
    let client = engine::http_client().context("building the HTTP client")?;
    let mut engine = Engine::new(Arc::new(config), &client);
    engine.probe_all().await;
    let now = Utc::now();
    let targets = engine.resolve(now);
    let document = engine.document(targets, now);
    if json {
        outln!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        out!("{}", document.render_table());
    }
    Ok(document.exit_code())
}

async fn run_daemon(path: &Path) -> anyhow::Result<u8> {
    let Some(config) = load(path) else {
        return Ok(exit::WARNING);
    };
    let client = engine::http_client().context("building the HTTP client")?;
    let listener = bind_api(config.server.listen, "server.listen").await?;
    let store = SqliteStore::open(&config.store.path, config.store.retention).await?;
    let snapshot = store.load().await?;
    let archive = match &config.archive {
        Some(dir) => Some(
            Archive::open(dir, config.archive_retention)
                .context("cannot record upstream answers ([archive] path)")?,
        ),
        None => None,
    };
    let config = Arc::new(config);
    let mut engine = match &archive {
        Some(archive) => Engine::with_builder(config, |channel| {
            archive.recording_channel(channel, &client)
        }),
        None => Engine::new(config, &client),
    };
    outln!(
        "statusmon {}: watching {} channel(s) for {} target(s) from {}; Ctrl-C to stop",
        env!("CARGO_PKG_VERSION"),
        engine.channels().len(),
        engine.config().targets.len(),
        path.display()
    );
    if let Some(archive) = &archive {
        outln!(
            "recording every upstream answer to {} (statusmon replay {0})",
            archive.dir().display()
        );
    }
    let state = WebState::new();
    let baseline = restore(&mut engine, &snapshot, &store, &state);
    let store: Arc<dyn Store> = Arc::new(store);
    let alerts_config = &engine.config().alerts;
    let plan = Plan::build(alerts_config, &client).map_err(|e| anyhow::anyhow!("alerts: {e}"))?;
    outln!("{}", alerting_line(&plan));
    let (dispatcher, alerting) = Dispatcher::start(plan, Arc::clone(&store)).await?;
    state.attach_alerting(AlertingApi {
        alerting: alerting.clone(),
        token: alerts_config.settings.api_token.clone(),
    });
    let (stop_delivery, delivery_stopped) = tokio::sync::watch::channel(false);
    let dispatcher = dispatcher.with_metrics(state.metrics().clone());
    let delivery = tokio::spawn(dispatcher.run(delivery_stopped));
    let api = Api::serve(listener, state)?;
    outln!("{}", dashboard_line(api.addr));
    let recorder = Recorder::new(store, &snapshot).signal_alerts(alerting.waker());
    let signal = crate::signal::shutdown();
    let stop = async move {
        signal.await;
        // Delivery stops first: what it has not finished stays in the outbox for the next start.
        let _ = stop_delivery.send(true);
    };
    watch_with(engine, stop, &api.state, Some(recorder), baseline).await;
    say("stopping: signal received");
    let _ = tokio::time::timeout(Duration::from_secs(5), delivery).await;
    api.stop().await;
    if let Some(archive) = archive {
        archive.close();
    }
    Ok(exit::OK)
}

async fn drill(path: &Path, route_id: &str, every_sink: bool) -> anyhow::Result<u8> {
    let Some(config) = load(path) else {
        return Ok(exit::WARNING);
    };
    let routes = &config.alerts.routes;
    let Some(route) = routes.iter().find(|r| r.id == route_id) else {
        return Err(not_configured("route", route_id, path, routes, |r| &r.id));
    };
    let client = engine::http_client().context("building the HTTP client")?;
    let plan = Plan::build(&config.alerts, &client).map_err(|e| anyhow::anyhow!("alerts: {e}"))?;
    let target = route
        .filter
        .targets
        .first()
        .or_else(|| config.targets.first().map(|t| &t.id))
        .map_or("statusmon", String::as_str);
    let event = delivery::drill_event(route, target, Utc::now());
    let sinks = plan.sinks_of(route);
    outln!(
        "drill: sending a test alert through route {} ({}), marked DRILL",
        route.id,
        route.sinks.join(" else ")
    );
    let attempts: Vec<delivery::RouteAttempt> = if every_sink {
        let mut all = Vec::new();
        for sink in &sinks {
            all.push(
                delivery::send_through(std::slice::from_ref(sink), &event, plan.attempts).await,
            );
        }
        all
    } else {
        vec![delivery::send_through(&sinks, &event, plan.attempts).await]
    };
    let mut accepted = Vec::new();
    for attempt in &attempts {
        for (sink, result) in &attempt.tries {
            match result {
                Ok(answer) => outln!("  {sink}: delivered ({answer})"),
                Err(error) => outln!("  {sink}: failed: {error}"),
            }
        }
        if let Some((sink, _)) = attempt.delivered() {
            accepted.push(sink.to_string());
        }
    }
    if accepted.is_empty() {
        outln!("drill: no sink of route {} accepted the alert", route.id);
        return Ok(exit::CRITICAL);
    }
    if every_sink && accepted.len() < sinks.len() {
        outln!(
            "drill: {} of {} sinks accepted it ({})",
            accepted.len(),
            sinks.len(),
            accepted.join(", ")
        );
        return Ok(exit::WARNING);
    }
    outln!("drill: delivered by {}", accepted.join(", "));
    Ok(exit::OK)
}

/// What `run` says of its alerting at start-up.
fn alerting_line(plan: &Plan) -> String {
    if plan.routes.is_empty() {
        return "alerts: no [[routes]] configured; alert events are kept in the store only".into();
    }
    let routes: Vec<String> = plan
        .routes
        .iter()
        .map(|r| format!("{} → {}", r.id, r.sinks.join(" else ")))
        .collect();
    format!("alerts: {}", routes.join("; "))
}

fn stamp(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// "no channel "x" in config.toml (channels: a, b)": an id the config does not have, with the
/// ones it has.
fn not_configured<T>(
    kind: &str,
    id: &str,
    path: &Path,
    items: &[T],
    id_of: impl Fn(&T) -> &String,
) -> anyhow::Error {
    let known: Vec<&str> = items.iter().map(|item| id_of(item).as_str()).collect();
    anyhow::anyhow!(
        "no {kind} {id:?} in {} ({kind}s: {})",
        path.display(),
        known.join(", ")
    )
}

/// What `history` prints.
enum Shown {
    /// The announced changes.
    Changes,
    /// The incidents kept.
    Incidents,
    /// One channel's observation history.
    Observations(String),
}

async fn history(
    path: &Path,
    target: Option<&str>,
    since: Option<Duration>,
    shown: Shown,
    json: bool,
) -> anyhow::Result<u8> {
    let Some(config) = load(path) else {
        return Ok(exit::WARNING);
    };
    let channels: Option<Vec<&str>> = match target {
        None => None,
        Some(id) => match config.targets.iter().find(|t| t.id == id) {
            Some(spec) => Some(spec.channels.iter().map(String::as_str).collect()),
            None => {
                return Err(not_configured("target", id, path, &config.targets, |t| {
                    &t.id
                }));
            }
        },
    };
    if let Shown::Observations(id) = &shown
        && !config.channels.iter().any(|c| c.id == *id)
    {
        return Err(not_configured("channel", id, path, &config.channels, |c| {
            &c.id
        }));
    }
    let file = &config.store.path;
    if !file.exists() {
        anyhow::bail!(
            "no store at {}: `statusmon run` keeps one there ([store] path)",
            file.display()
        );
    }
    let store = SqliteStore::open(file, config.store.retention).await?;
    let since = since
        .and_then(|d| chrono::TimeDelta::from_std(d).ok())
        .and_then(|d| Utc::now().checked_sub_signed(d));
    let recent = |at: chrono::DateTime<Utc>| since.is_none_or(|since| at >= since);
    // A target's lines, and those of its channels' own health.
    let concerns = |about_target: Option<&str>, about_channel: Option<&str>| {
        target.is_none_or(|target| {
            about_target == Some(target)
                || about_channel
                    .is_some_and(|c| channels.as_ref().is_some_and(|cs| cs.contains(&c)))
        })
    };
    if let Shown::Observations(channel) = shown {
        let rows = store.history(Some(channel)).await?;
        for row in rows.iter().filter(|r| recent(r.at)) {
            if json {
                outln!(
                    "{}",
                    json!({
                        "at": row.at,
                        "channel": row.channel,
                        "digest": row.digest,
                        "error_class": row.error_class,
                        "error_message": row.error_message,
                    })
                );
            } else {
                let what = match (&row.error_class, &row.digest) {
                    (Some(class), _) => format!(
                        "failing, {class}: {}",
                        row.error_message.as_deref().unwrap_or("")
                    ),
                    (None, Some(digest)) => {
                        format!("answered (digest {})", digest.get(..12).unwrap_or(digest))
                    }
                    (None, None) => "answered".to_string(),
                };
                outln!("{}  channel {}: {what}", stamp(row.at), row.channel);
            }
        }
    } else if matches!(shown, Shown::Incidents) {
        let rows = store.incidents().await?;
        for row in rows
            .iter()
            .filter(|r| concerns(Some(&r.target), None) && recent(r.last_updated))
        {
            if json {
                outln!(
                    "{}",
                    json!({
                        "target": row.target,
                        "id": row.id,
                        "title": row.title,
                        "service": row.service,
                        "classification": row.classification,
                        "status": row.status,
                        "resolved": row.resolved,
                        "listed": row.listed,
                        "sources": row.sources,
                        "first_seen": row.first_seen,
                        "last_updated": row.last_updated,
                        "resolved_at": row.resolved_at,
                    })
                );
            } else {
                let state = match (row.resolved, row.listed) {
                    (true, _) => "resolved",
                    (false, true) => "ongoing",
                    (false, false) => "no longer reported",
                };
                outln!(
                    "{}  target {} · incident {}: {} [{}, {state}] first seen {}, last change {} ({})",
                    stamp(row.last_updated),
                    row.target,
                    row.id,
                    row.title,
                    row.status,
                    stamp(row.first_seen),
                    stamp(row.last_updated),
                    row.sources.join(", ")
                );
            }
        }
    } else {
        let rows = store.transitions().await?;
        for row in rows
            .iter()
            .filter(|r| concerns(r.target.as_deref(), r.channel.as_deref()) && recent(r.at))
        {
            if json {
                outln!(
                    "{}",
                    json!({
                        "at": row.at,
                        "target": row.target,
                        "channel": row.channel,
                        "text": row.text,
                    })
                );
            } else {
                outln!("{}  {}", stamp(row.at), row.text);
            }
        }
    }
    store.close().await?;
    Ok(exit::OK)
}

async fn replay(path: &Path, dir: &Path, json: bool) -> anyhow::Result<u8> {
    let Some(config) = load(path) else {
        return Ok(exit::WARNING);
    };
    let records = match archive::read(dir) {
        Ok(records) => records,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(exit::WARNING);
        }
    };
    let channels: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.channel.as_str()).collect();
    eprintln!(
        "replaying {} probe(s) of {} channel(s) from {}",
        records.len(),
        channels.len(),
        dir.display()
    );
    let replay = tokio::task::spawn_blocking(move || archive::replay(config, records))
        .await
        .context("the replay task failed")?
        .context("starting the replay")?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&replay)?);
    } else {
        out!("{}", replay.render());
    }
    Ok(exit::OK)
}

/// Puts the stored last-known state back into the engine, publishes it at once (resolved now,
/// so channels are fresh or stale by their real age) and says what was restored. Returns the
/// last published document: the baseline the first round is diffed against, so what was
/// announced before the restart is not announced again.
fn restore(
    engine: &mut Engine,
    snapshot: &Snapshot,
    store: &SqliteStore,
    web: &WebState,
) -> Option<Arc<StatusDocument>> {
    for skipped in &snapshot.skipped {
        tracing::warn!(store = %store.location(), skipped, "a stored row could not be read back");
    }
    if snapshot.is_empty() {
        say(&format!(
            "no stored state in {}: starting fresh",
            store.location()
        ));
        return None;
    }
    let channels = engine.restore(snapshot);
    let now = Utc::now();
    let targets = engine.peek(now);
    let restored = Arc::new(engine.document(targets, now));
    web.metrics().observe_document(Arc::clone(&restored));
    web.publish(Arc::clone(&restored), &[]);
    let baseline = snapshot.document.clone().map(Arc::new);
    let ongoing = baseline
        .as_deref()
        .map(store::ongoing_incidents)
        .unwrap_or(0);
    say(&format!(
        "restored last-known state from {}: {channels} channel(s), {ongoing} ongoing incident(s)",
        store.location()
    ));
    baseline
}

/// Binds the HTTP API's address before anything else starts, so a taken port is an error at
/// start-up that names the address and where it was configured, not a silent missing API.
async fn bind_api(listen: SocketAddr, setting: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot serve the HTTP API on {listen} ({setting})"))
}

/// The line that tells a person where the dashboard is.
fn dashboard_line(addr: SocketAddr) -> String {
    format!("open http://{addr}/ to watch the dashboard")
}

/// The HTTP API running in the background of `run` and `demo`.
struct Api {
    addr: SocketAddr,
    state: WebState,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Api {
    /// Starts serving on `listener` and says where.
    fn serve(listener: tokio::net::TcpListener, state: WebState) -> anyhow::Result<Api> {
        let addr = listener
            .local_addr()
            .context("reading the HTTP API's bound address")?;
        let app = web::router(state.clone());
        let closing = state.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { closing.closed().await })
                .await
        });
        outln!(
            "serving the HTTP API on http://{addr} (/api/v1/status, /api/v1/events, /readyz, /metrics)"
        );
        Ok(Api {
            addr,
            state,
            server,
        })
    }

    /// Ends the event streams and the server, letting requests in flight finish (briefly).
    async fn stop(self) {
        self.state.close();
        match tokio::time::timeout(Duration::from_secs(5), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP API stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "the HTTP API task failed"),
            Err(_) => tracing::warn!("the HTTP API did not stop within 5s; leaving it"),
        }
    }
}

/// Prints a line with a UTC timestamp, as `run` and `demo` do.
fn say(line: &str) {
    outln!(
        "{}  {line}",
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
    );
}

/// How often `watch` publishes a fresh document when nothing changed: no report came in and no
/// channel's state moved (the resolver's only dependence on the clock is a channel turning
/// stale). Resolving a thousand targets to the same picture every second was most of the idle
/// daemon's work; the document's `generated_at` still advances, well inside `/readyz`'s stall
/// limit.
const REPUBLISH_UNCHANGED: Duration = Duration::from_secs(5);

/// The schedule loop shared by `run` and `demo`: probes on schedule, resolves after outcomes
/// (every report already queued is recorded first, and resolutions are at least
/// [`engine::RESOLVE_COALESCE`] apart) and, checked every second, whenever a channel's state moved (so
/// staleness shows without a probe) or [`REPUBLISH_UNCHANGED`] has passed; prints the full
/// picture once every channel has answered once, then each change, until `stop` completes.
/// Every resolved document and every change is also published to `web`, for the HTTP API. Nothing is
/// stored (`demo`); see [`watch_with`].
pub async fn watch(
    engine: Engine,
    stop: impl Future<Output = ()>,
    web: &WebState,
) -> StatusDocument {
    watch_with(engine, stop, web, None, None).await
}

/// [`watch`] with persistence (`run`). With a `store`, each round's changes are committed
/// before they are announced, and the store is flushed and closed at the end. With a `baseline` (the document published before a
/// restart), the first round is diffed against it instead of printed whole, so what was already
/// announced is not announced again.
pub async fn watch_with(
    mut engine: Engine,
    stop: impl Future<Output = ()>,
    web: &WebState,
    mut store: Option<Recorder>,
    baseline: Option<Arc<StatusDocument>>,
) -> StatusDocument {
    let (sender, mut reports) = mpsc::channel::<ProbeReport>(64);
    let hosts = engine::HostLimits::new(engine.config().scheduler.probes_per_host);
    let tasks = engine::spawn_schedule(engine.channels(), sender, &hosts);
    let mut waiting: Vec<String> = engine
        .channels()
        .iter()
        .filter(|c| c.channel.is_some())
        .map(|c| c.config.id.clone())
        .collect();
    let mut shown: Option<Arc<StatusDocument>> = baseline;
    let mut first = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // With no enabled channel there is no sender; keep resolving (everything stays visible as
    // disabled) until told to stop.
    let mut receiving = true;
    // Reports recorded since the last resolution, and when that was.
    let mut unresolved = false;
    let mut resolved_at = tokio::time::Instant::now();
    // Every channel's state at the last resolution, in record order.
    let mut states: Vec<ChannelState> = Vec::new();
    tokio::pin!(stop);
    loop {
        let mut take = |report: ProbeReport| {
            waiting.retain(|id| *id != report.channel);
            web.metrics().record_probe(&report);
            engine.record(&report.channel, report.outcome, report.at);
        };
        let ticked = tokio::select! {
            () = &mut stop => break,
            report = reports.recv(), if receiving => {
                match report {
                    Some(report) => {
                        take(report);
                        while let Ok(report) = reports.try_recv() {
                            take(report);
                        }
                        unresolved = true;
                    }
                    None => receiving = false,
                }
                false
            }
            () = tokio::time::sleep_until(resolved_at + engine::RESOLVE_COALESCE), if unresolved => false,
            _ = tick.tick() => true,
        };
        if !waiting.is_empty() {
            continue;
        }
        if !ticked && (!unresolved || resolved_at.elapsed() < engine::RESOLVE_COALESCE) {
            continue;
        }
        let now = Utc::now();
        let states_now: Vec<ChannelState> =
            engine.records().values().map(|r| r.state(now)).collect();
        if ticked
            && !unresolved
            && shown.is_some()
            && states_now == states
            && resolved_at.elapsed() < REPUBLISH_UNCHANGED
        {
            continue;
        }
        states = states_now;
        unresolved = false;
        resolved_at = tokio::time::Instant::now();
        let targets = engine.resolve_reusing(now, shown.as_deref());
        let document = Arc::new(engine.document(targets, now));
        let changes = match &shown {
            None => Vec::new(),
            Some(before) => status::changes(before, &document),
        };
        if let Some(recorder) = &mut store
            && let Some(notice) = recorder
                .record(
                    engine.records(),
                    engine.memory(),
                    &document,
                    &changes,
                    // Against what was shown (the restored baseline after a restart), so a
                    // restart queues no alert twice.
                    &alerts::events::between(shown.as_deref(), &document),
                )
                .await
        {
            say(&notice);
        }
        if shown.is_none() {
            say("first round complete:");
            out!("{}", indent(&document.render_table()));
        } else if first {
            say(&format!(
                "first round complete: {} change(s) since the restored state",
                changes.len()
            ));
        }
        first = false;
        for change in &changes {
            say(&change.text);
        }
        web.metrics().observe_document(Arc::clone(&document));
        web.publish(Arc::clone(&document), &changes);
        shown = Some(document);
    }
    for task in tasks {
        task.abort();
    }
    if let Some(recorder) = store {
        recorder.close().await;
    }
    let now = Utc::now();
    let targets = engine.resolve(now);
    engine.document(targets, now)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}

/// The demo's config: the real loader, pointed at the simulator, with short intervals. The
/// simulator's client secret comes in through the environment override, as a real one would.
fn demo_config(base_url: &str, speed: u32) -> anyhow::Result<Config> {
    let interval = humantime::format_duration(Duration::from_secs(1) / speed);
    let timeout = humantime::format_duration(Duration::from_millis(800) / speed);
    let text = format!(
        r#"
[[channels]]
id = "contoso-graph"
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "statusmon-demo"
authority = "{base_url}"
graph_url = "{base_url}"
interval = "{interval}"
timeout = "{timeout}"

[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "{base_url}"
interval = "{interval}"
timeout = "{timeout}"

[[channels]]
id = "msft365status-x"
kind = "x"
username = "{username}"
base_url = "{base_url}"
interval = "{interval}"
timeout = "{timeout}"

[[targets]]
id = "contoso"
name = "Contoso Microsoft 365"
channels = ["contoso-graph", "m365-public", "msft365status-x"]
"#,
        username = simulator::SIM_X_USERNAME,
    );
    let env = [
        (
            "STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET".to_string(),
            simulator::SIM_CLIENT_SECRET.to_string(),
        ),
        (
            "STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN".to_string(),
            simulator::SIM_X_BEARER_TOKEN.to_string(),
        ),
    ];
    config::parse(&text, Path::new("(demo)"), env).map_err(|e| anyhow::anyhow!("demo config: {e}"))
}

/// What one step of the demo changes in the simulator.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    Site(Scenario),
    Graph(GraphScenario),
    /// The social scenario, with the time between two posts at speed 1.
    Social(SocialScenario, Duration),
}

/// One step of the demo script.
struct Step {
    after: Duration,
    change: Upstream,
    narration: &'static str,
}

async fn demo(speed: u32, listen: SocketAddr) -> anyhow::Result<u8> {
    let listener = bind_api(listen, "--listen").await?;
    let addr = listener
        .local_addr()
        .context("reading the HTTP API's bound address")?;
    outln!("{}\n", dashboard_line(addr));
    let sim = simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), Scenario::Healthy)
        .await
        .context("starting the simulator on 127.0.0.1")?;
    let config = demo_config(&sim.base_url(), speed)?;
    let client = engine::http_client().context("building the HTTP client")?;
    let engine = Engine::new(Arc::new(config), &client);
    outln!(
        "statusmon demo: a scripted outage against the built-in simulator at {}",
        sim.base_url()
    );
    outln!(
        "  target \"contoso\" watches Graph (contoso-graph, primary), the public status site (m365-public) and @MSFT365Status on X (msft365status-x), each probed every {}.",
        humantime::format_duration(Duration::from_secs(1) / speed)
    );
    outln!(
        "  Verdicts say where they come from and how sure we are; nothing is green without an explicit statement."
    );
    let api = Api::serve(listener, WebState::new())?;
    outln!();
    let steps = [
        Step {
            after: Duration::from_secs(5),
            change: Upstream::Graph(GraphScenario::Advisory),
            narration: "Microsoft posts an Exchange advisory in the tenant's Service health (Graph)",
        },
        Step {
            after: Duration::from_secs(6),
            change: Upstream::Graph(GraphScenario::Failing),
            narration: "the admin portal API (Graph) starts failing with HTTP 503: the status now rests on the public site",
        },
        Step {
            after: Duration::from_secs(2),
            change: Upstream::Social(SocialScenario::Incident, Duration::from_secs(3)),
            narration: "@MSFT365Status starts posting on X: each post is shown as it arrives, low confidence, deciding only what no official channel covers",
        },
        Step {
            after: Duration::from_secs(4),
            change: Upstream::Site(Scenario::AdminDegraded),
            narration: "the public site reports the admin center degraded: the outage is on Microsoft's side",
        },
        Step {
            after: Duration::from_secs(6),
            change: Upstream::Site(Scenario::FailingHang),
            narration: "the public site stops answering too: the picture rests on @MSFT365Status alone (low confidence; last known verdicts kept)",
        },
        Step {
            after: Duration::from_secs(5),
            change: Upstream::Site(Scenario::Healthy),
            narration: "the public site is back: degraded visibility, from the fallback",
        },
        Step {
            after: Duration::from_secs(4),
            change: Upstream::Graph(GraphScenario::Healthy),
            narration: "Graph is back: full visibility",
        },
    ];
    let script = async {
        for step in steps {
            tokio::time::sleep(step.after / speed).await;
            let what = match step.change {
                Upstream::Site(scenario) => {
                    sim.set_scenario(scenario);
                    format!("site: {scenario}")
                }
                Upstream::Graph(scenario) => {
                    sim.set_graph_scenario(scenario);
                    format!("graph: {scenario}")
                }
                Upstream::Social(scenario, step) => {
                    sim.set_social(SocialSim::new(scenario).with_step(step / speed));
                    format!("x: {scenario}")
                }
            };
            say(&format!("▶ {} [simulator {what}]", step.narration));
        }
        tokio::time::sleep(Duration::from_secs(5) / speed).await;
    };
    let stop = async {
        tokio::select! {
            () = script => {},
            () = crate::signal::shutdown() => {},
        }
    };
    let last = watch(engine, stop, &api.state).await;
    api.stop().await;
    sim.shutdown().await;
    outln!("\nfinal picture:");
    out!("{}", indent(&last.render_table()));
    let admin = last
        .targets
        .first()
        .map(|t| t.admin_plane.verdict)
        .unwrap_or(Health::Unknown);
    outln!(
        "demo over (admin center now {admin}). Try: statusmon simulate --graph-scenario incident, then point a config at it."
    );
    Ok(exit::OK)
}
