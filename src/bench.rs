//! `statusmon bench`: starts an upstream and a daemon as child processes, lets the daemon warm
//! up, then measures it from outside: CPU and resident memory from `/proc` in a quiet window,
//! scheduling lag from its own `/metrics`, and status-API latency under concurrent keep-alive
//! clients. The figures in `BENCHMARKS.md` come from here.
//!
//! Two profiles. `tenants`: the built-in simulator (`statusmon simulate`, its own process) and
//! one Graph channel per tenant plus the shared public-site, X and Atom-feed channels, every 60 s.
//! `static`: a small static getAuthorFeed answer served by this process and that many `bluesky`
//! channels polling it every 20 s, one target each.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use hdrhistogram::Histogram;
use rand::Rng;

use crate::simulator;

/// Which load the daemon is put under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The simulator, one Graph channel per tenant plus shared channels, 60 s intervals.
    Tenants,
    /// Many channels polling one small static JSON endpoint, 20 s intervals.
    Static,
}

impl Profile {
    /// The probe interval the profile is defined with.
    pub fn default_interval(self) -> Duration {
        match self {
            Profile::Tenants => Duration::from_secs(60),
            Profile::Static => Duration::from_secs(20),
        }
    }
}

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The profile.
    pub profile: Profile,
    /// Tenants (Graph channels) of the `tenants` profile.
    pub tenants: usize,
    /// Channels of the `static` profile.
    pub channels: usize,
    /// Probe interval; the profile's own when `None`.
    pub interval: Option<Duration>,
    /// Time between the first round and the quiet window; one interval + 10 s when `None`.
    pub warmup: Option<Duration>,
    /// Length of the quiet window (CPU, memory, lag).
    pub duration: Duration,
    /// Length of each API load phase.
    pub api_duration: Duration,
    /// Concurrent keep-alive API clients.
    pub clients: usize,
    /// Requests per second each client sends in the paced phases (the flat-out phases send
    /// the next request as soon as the answer is in).
    pub rate: f64,
    /// Print the results as Markdown too.
    pub markdown: bool,
    /// The daemon binary; this executable when `None` (to compare builds).
    pub daemon: Option<PathBuf>,
}

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A local operation failed (temp files, starting a process, binding a port).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The upstream or the daemon did not come up in time.
    #[error("{0}")]
    NotReady(String),
    /// The daemon process ended during the benchmark.
    #[error("the daemon died ({status}); last lines of its output:\n{log}")]
    DaemonDied {
        /// Its exit status.
        status: String,
        /// The end of its stdout and stderr.
        log: String,
    },
    /// A request to the daemon failed where an answer was needed.
    #[error("{0}")]
    Http(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// CPU time and resident memory of a process at one moment, from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
}

/// `utime + stime` (fields 14 and 15) from the text of `/proc/PID/stat`. The command name in
/// field 2 may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_proc_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field such as `VmRSS` or `VmHWM` from the text of `/proc/PID/status`, in KiB.
pub fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Reads one sample of process `pid`; an error means the process is gone.
pub fn sample_process(pid: u32) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    Ok(ProcSample {
        cpu_ticks: parse_proc_stat(&stat).ok_or_else(|| bad("unreadable /proc/PID/stat"))?,
        rss_kib: parse_status_kib(&status, "VmRSS").ok_or_else(|| bad("no VmRSS"))?,
    })
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux unless told
/// otherwise).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// A Prometheus histogram as exported: cumulative buckets by upper bound, sum and count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromHistogram {
    /// `(le, cumulative count)`, ascending, `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl PromHistogram {
    /// Reads histogram `name` (without `_bucket`) from an OpenMetrics text; `None` if absent.
    pub fn parse(text: &str, name: &str) -> Option<PromHistogram> {
        let bucket = format!("{name}_bucket{{le=\"");
        let mut out = PromHistogram::default();
        let mut seen = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket) {
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                out.buckets.push((le, count.trim().parse().ok()?));
            } else if let Some(sum) = line.strip_prefix(&format!("{name}_sum ")) {
                out.sum = sum.trim().parse().ok()?;
                seen = true;
            } else if let Some(count) = line.strip_prefix(&format!("{name}_count ")) {
                out.count = count.trim().parse().ok()?;
            }
        }
        seen.then_some(out)
    }

    /// What was observed after `earlier` (same buckets), so a window excludes start-up.
    pub fn since(&self, earlier: &PromHistogram) -> PromHistogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, count)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0, |(_, c)| *c);
                (*le, count.saturating_sub(before))
            })
            .collect();
        PromHistogram {
            buckets,
            sum: (self.sum - earlier.sum).max(0.0),
            count: self.count.saturating_sub(earlier.count),
        }
    }

    /// The mean observation, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The upper bound of the bucket holding quantile `q` (so the true value is at most this).
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, count)| *count >= rank)
            .map(|(le, _)| *le)
    }
}

/// The name of the schedule-lag histogram in `/metrics`.
pub const LAG_METRIC: &str = "statusmon_schedule_lag_seconds";

/// A child process that is killed when dropped, so no benchmark leaves one behind.
struct Guarded {
    child: Child,
    log: PathBuf,
}

impl Guarded {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the end of its output if it has exited.
    fn check_alive(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::DaemonDied {
                status: status.to_string(),
                log: tail(&self.log, 20),
            }),
            Err(e) => Err(BenchError::DaemonDied {
                status: format!("cannot be waited for: {e}"),
                log: tail(&self.log, 20),
            }),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return "(no output)".to_string();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn spawn(
    program: &Path,
    args: &[&str],
    log: PathBuf,
    envs: &[(&str, &str)],
) -> Result<Guarded, BenchError> {
    let out = std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (key, value) in envs {
        command.env(key, value);
    }
    let child = command.spawn().map_err(io(format!(
        "starting {} {}",
        program.display(),
        args.join(" ")
    )))?;
    Ok(Guarded { child, log })
}

/// A free port on 127.0.0.1 (free when asked; the child binds it a moment later).
fn free_port() -> Result<u16, BenchError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free local port"))?;
    let port = listener
        .local_addr()
        .map_err(io("reading a local port"))?
        .port();
    Ok(port)
}

/// Prints one progress line, with the time since the benchmark started.
fn progress(started: Instant, line: &str) {
    eprintln!("[{:>4}s] {line}", started.elapsed().as_secs());
}

fn http_client() -> Result<reqwest::Client, BenchError> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BenchError::Http(format!("building an HTTP client: {e}")))
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<(u16, String), BenchError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| BenchError::Http(format!("GET {url}: {e}")))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| BenchError::Http(format!("GET {url}: reading the body: {e}")))?;
    Ok((status, text))
}

/// Waits until `url` answers 200, checking that `process` is still alive.
async fn wait_for_ok(
    client: &reqwest::Client,
    url: &str,
    process: &mut Guarded,
    limit: Duration,
    started: Instant,
    what: &str,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + limit;
    let mut said = Instant::now();
    loop {
        process.check_alive()?;
        if let Ok((200, _)) = get_text(client, url).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::NotReady(format!(
                "{what} did not answer 200 at {url} within {}s",
                limit.as_secs()
            )));
        }
        if said.elapsed() > Duration::from_secs(10) {
            progress(started, &format!("still waiting for {what}…"));
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// CPU and memory of the daemon over a window, sampled every second.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceStats {
    /// Average CPU, in percent of one core.
    pub cpu_percent: f64,
    /// Mean resident memory, MiB.
    pub rss_mean_mib: f64,
    /// Highest sampled resident memory, MiB.
    pub rss_peak_mib: f64,
}

/// Samples process `pid` every second until `stop` is set; `None` if it vanished.
async fn sample_until(pid: u32, stop: Arc<AtomicBool>) -> Option<ResourceStats> {
    let ticks = clock_ticks_per_second();
    let first = sample_process(pid).ok()?;
    let started = Instant::now();
    let mut rss: Vec<u64> = vec![first.rss_kib];
    let mut last = first;
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    while !stop.load(Ordering::Relaxed) {
        interval.tick().await;
        last = sample_process(pid).ok()?;
        rss.push(last.rss_kib);
    }
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    let cpu = last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / ticks;
    let mean = rss.iter().sum::<u64>() as f64 / rss.len() as f64;
    let peak = rss.iter().copied().max().unwrap_or(0) as f64;
    Some(ResourceStats {
        cpu_percent: 100.0 * cpu / seconds,
        rss_mean_mib: mean / 1024.0,
        rss_peak_mib: peak / 1024.0,
    })
}

/// Latency of one API load phase.
#[derive(Debug, Clone)]
pub struct LoadStats {
    /// What was asked.
    pub endpoint: String,
    /// The offered load: requests per second in all, or `None` for flat out.
    pub offered: Option<f64>,
    /// Completed requests per second.
    pub requests_per_second: f64,
    /// Requests that failed or did not answer 200.
    pub errors: u64,
    /// Latency percentiles (p50, p90, p99) and the maximum, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// The daemon's CPU and memory during the phase.
    pub daemon: ResourceStats,
    /// Size of one answer, bytes.
    pub body_bytes: usize,
}

/// `clients` keep-alive clients (one connection each) asking `paths` (chosen at random) for
/// `duration`: each `rate` times a second (from a random offset, a late request is not made up
/// for), or as fast as answers come when `rate` is `None`.
async fn load(
    base: &str,
    paths: Arc<Vec<String>>,
    clients: usize,
    rate: Option<f64>,
    duration: Duration,
) -> Result<(Histogram<u64>, u64, u64, usize, Duration), BenchError> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = http_client()?;
        let paths = Arc::clone(&paths);
        let base = base.to_string();
        let mut pace = rate.filter(|r| *r > 0.0).map(|r| {
            let period = Duration::from_secs_f64(1.0 / r);
            let offset = period.mul_f64(rand::rng().random_range(0.0..1.0));
            let mut pace = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            pace
        });
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)
                .map_err(|e| BenchError::Http(format!("histogram: {e}")))?;
            let (mut ok, mut errors, mut size) = (0u64, 0u64, 0usize);
            while Instant::now() < deadline {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let path = if paths.len() == 1 {
                    &paths[0]
                } else {
                    &paths[rand::rng().random_range(0..paths.len())]
                };
                let url = format!("{base}{path}");
                let sent = Instant::now();
                let answer = match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => response.bytes().await,
                    Ok(_) => {
                        errors += 1;
                        continue;
                    }
                    Err(e) => Err(e),
                };
                let micros = sent.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
                match answer {
                    Ok(body) => {
                        histogram.saturating_record(micros.max(1));
                        size = body.len();
                        ok += 1;
                    }
                    Err(_) => errors += 1,
                }
            }
            Ok::<_, BenchError>((histogram, ok, errors, size))
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)
        .map_err(|e| BenchError::Http(format!("histogram: {e}")))?;
    let (mut ok, mut errors, mut size) = (0, 0, 0);
    for task in tasks {
        let (histogram, o, e, s) = task
            .await
            .map_err(|e| BenchError::Http(format!("a load client failed: {e}")))??;
        total
            .add(&histogram)
            .map_err(|e| BenchError::Http(format!("merging histograms: {e}")))?;
        ok += o;
        errors += e;
        size = size.max(s);
    }
    Ok((total, ok, errors, size, started.elapsed()))
}

/// A small getAuthorFeed answer: one resolved incident thread of three posts by `actor`, stamped
/// an hour or so before `now` (inside the channel's history), about 2 KB.
pub fn static_feed(actor: &str, now: chrono::DateTime<Utc>) -> String {
    let did = "did:plc:statusmonbench";
    let texts = [
        "We've confirmed that the issue is resolved. Users can access Exchange Online again. More info in EX900001.",
        "We're deploying a fix for the issue affecting access to Exchange Online. More info in EX900001.",
        "We're investigating an issue where some users can't access Exchange Online. More info in EX900001.",
    ];
    let root = format!("at://{did}/app.bsky.feed.post/bench0");
    let items: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let age = chrono::TimeDelta::minutes(60 + 20 * i as i64);
            let at = (now - age).to_rfc3339_opts(SecondsFormat::Millis, true);
            let uri = format!("at://{did}/app.bsky.feed.post/bench{}", texts.len() - 1 - i);
            let mut record = serde_json::json!({
                "$type": "app.bsky.feed.post", "text": text, "createdAt": at,
            });
            if i + 1 < texts.len() {
                record["reply"] = serde_json::json!({
                    "root": { "uri": root, "cid": "bench" },
                    "parent": { "uri": format!("at://{did}/app.bsky.feed.post/bench{}", texts.len() - 2 - i), "cid": "bench" },
                });
            }
            serde_json::json!({
                "post": {
                    "uri": uri, "cid": "bench",
                    "author": { "did": did, "handle": actor },
                    "record": record, "indexedAt": at,
                }
            })
        })
        .collect();
    serde_json::json!({ "feed": items }).to_string()
}

/// The static profile's upstream: every request to getAuthorFeed gets the same bytes.
async fn serve_static(
    body: Bytes,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BenchError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("binding the static upstream"))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the static upstream's address"))?;
    let app = Router::new().route(
        "/xrpc/app.bsky.feed.getAuthorFeed",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    body,
                )
            }
        }),
    );
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the static upstream stopped");
        }
    });
    Ok((addr, server))
}

/// The actor of the static profile's channels.
pub const STATIC_ACTOR: &str = "status.bench.example";

fn humantime_secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The config of the `tenants` profile: one Graph channel per tenant (`tenant-0001`…) as each
/// target's primary, then the public site, X and the Atom feed, shared by every target.
pub fn tenants_config(
    base: &str,
    listen: SocketAddr,
    tenants: usize,
    interval: Duration,
    dir: &Path,
) -> String {
    let every = humantime_secs(interval);
    let secret = dir.join("graph-secret");
    let bearer = dir.join("x-bearer");
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\n\n[store]\npath = {:?}\n\n",
        dir.join("statusmon.db").display().to_string()
    );
    for n in 1..=tenants {
        text.push_str(&format!(
            "[[channels]]\nid = \"tenant-{n:04}\"\nkind = \"graph\"\n\
             tenant_id = \"tenant-{n:04}.onmicrosoft.com\"\nclient_id = \"statusmon-bench\"\n\
             client_secret_file = {:?}\nauthority = \"{base}\"\ngraph_url = \"{base}\"\n\
             interval = \"{every}\"\n\n",
            secret.display().to_string()
        ));
    }
    text.push_str(&format!(
        "[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\nbase_url = \"{base}\"\n\
         interval = \"{every}\"\n\n\
         [[channels]]\nid = \"msft365status-x\"\nkind = \"x\"\nusername = \"{}\"\n\
         base_url = \"{base}\"\nbearer_token_file = {:?}\ninterval = \"{every}\"\n\n\
         [[channels]]\nid = \"msft365status-feed\"\nkind = \"feed\"\nurl = \"{base}{}\"\n\
         interval = \"{every}\"\n\n",
        simulator::SIM_X_USERNAME,
        bearer.display().to_string(),
        simulator::SIM_FEED_PATH,
    ));
    for n in 1..=tenants {
        text.push_str(&format!(
            "[[targets]]\nid = \"tenant-{n:04}\"\nname = \"Tenant {n:04}\"\n\
             channels = [\"tenant-{n:04}\", \"m365-public\", \"msft365status-x\", \"msft365status-feed\"]\n\n"
        ));
    }
    text
}

/// The config of the `static` profile: `channels` bluesky channels (`static-0001`…) at the static
/// endpoint, each the only channel of its own target.
pub fn static_config(
    base: &str,
    listen: SocketAddr,
    channels: usize,
    interval: Duration,
    dir: &Path,
) -> String {
    let every = humantime_secs(interval);
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\n\n[store]\npath = {:?}\n\n",
        dir.join("statusmon.db").display().to_string()
    );
    for n in 1..=channels {
        text.push_str(&format!(
            "[[channels]]\nid = \"static-{n:04}\"\nkind = \"bluesky\"\nbase_url = \"{base}\"\n\
             actor = \"{STATIC_ACTOR}\"\ninterval = \"{every}\"\n\n"
        ));
    }
    for n in 1..=channels {
        text.push_str(&format!(
            "[[targets]]\nid = \"static-{n:04}\"\nchannels = [\"static-{n:04}\"]\n\n"
        ));
    }
    text
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// What ran, in one line.
    pub setup: String,
    /// The machine, in one line.
    pub machine: String,
    /// Length of the quiet window, s.
    pub window_secs: u64,
    /// The daemon in the quiet window.
    pub quiet: ResourceStats,
    /// Peak resident memory over the daemon's whole life (`VmHWM`), MiB.
    pub rss_hwm_mib: Option<f64>,
    /// Schedule lag in the quiet window; `None` if the daemon does not export it.
    pub lag_quiet: Option<PromHistogram>,
    /// Schedule lag during the API load phases.
    pub lag_loaded: Option<PromHistogram>,
    /// One entry per API phase.
    pub api: Vec<LoadStats>,
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

/// Runs a benchmark and returns its figures; progress goes to stderr.
pub async fn run(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(io("finding this executable"))?;
    let daemon_exe = options.daemon.clone().unwrap_or_else(|| exe.clone());
    let dir = tempfile::Builder::new()
        .prefix("statusmon-bench-")
        .tempdir()
        .map_err(io("creating a temp directory"))?;
    let interval = options
        .interval
        .unwrap_or(options.profile.default_interval());
    let warmup = options.warmup.unwrap_or(interval + Duration::from_secs(10));
    if cfg!(debug_assertions) {
        progress(
            started,
            "warning: a debug build; build with --release for real figures",
        );
    }
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let client = http_client()?;
    // The upstream: a separate simulator process, or a static server in this process.
    let mut _simulator: Option<Guarded> = None;
    let mut _static_server = None;
    let (config, setup) = match options.profile {
        Profile::Tenants => {
            let port = free_port()?;
            let sim_listen = format!("127.0.0.1:{port}");
            let mut sim = spawn(
                &exe,
                &["simulate", "--listen", &sim_listen],
                dir.path().join("simulator.log"),
                &[],
            )?;
            let base = format!("http://{sim_listen}");
            progress(
                started,
                &format!("simulator (pid {}) starting on {base}", sim.pid()),
            );
            wait_for_ok(
                &client,
                &format!("{base}/_sim"),
                &mut sim,
                Duration::from_secs(30),
                started,
                "the simulator",
            )
            .await?;
            _simulator = Some(sim);
            for (file, secret) in [
                ("graph-secret", simulator::SIM_CLIENT_SECRET),
                ("x-bearer", simulator::SIM_X_BEARER_TOKEN),
            ] {
                std::fs::write(dir.path().join(file), secret)
                    .map_err(io(format!("writing {file}")))?;
            }
            let setup = format!(
                "profile tenants: {} targets; {} Graph channels (one per tenant) + public site, X \
                 and Atom feed shared; every {} against the simulator (its own process)",
                options.tenants,
                options.tenants,
                humantime_secs(interval)
            );
            (
                tenants_config(&base, listen, options.tenants, interval, dir.path()),
                setup,
            )
        }
        Profile::Static => {
            let body = Bytes::from(static_feed(STATIC_ACTOR, Utc::now()));
            let size = body.len();
            let (addr, server) = serve_static(body).await?;
            _static_server = Some(AbortOnDrop(server));
            let setup = format!(
                "profile static: {} bluesky channels, one target each, every {} against one \
                 static {size}-byte getAuthorFeed answer on loopback (served by the bench process)",
                options.channels,
                humantime_secs(interval)
            );
            (
                static_config(
                    &format!("http://{addr}"),
                    listen,
                    options.channels,
                    interval,
                    dir.path(),
                ),
                setup,
            )
        }
    };
    let config_path = dir.path().join("statusmon.toml");
    std::fs::write(&config_path, config).map_err(io("writing the config"))?;
    let config_arg = config_path.display().to_string();
    let mut daemon = spawn(
        &daemon_exe,
        &["run", "--config", &config_arg],
        dir.path().join("daemon.log"),
        &[],
    )?;
    let api = format!("http://{listen}");
    progress(started, &setup);
    progress(
        started,
        &format!("daemon (pid {}) starting; API on {api}", daemon.pid()),
    );
    wait_for_ok(
        &client,
        &format!("{api}/api/v1/status"),
        &mut daemon,
        interval * 2 + Duration::from_secs(60),
        started,
        "the daemon's first round",
    )
    .await?;
    progress(
        started,
        &format!(
            "first round complete; warming up for {}",
            humantime_secs(warmup)
        ),
    );
    let warm_until = Instant::now() + warmup;
    while Instant::now() < warm_until {
        daemon.check_alive()?;
        tokio::time::sleep(Duration::from_secs(1).min(warm_until - Instant::now())).await;
    }

    progress(
        started,
        &format!(
            "quiet window: sampling CPU and memory for {}",
            humantime_secs(options.duration)
        ),
    );
    let lag_start = lag(&client, &api).await?;
    let quiet = sample_window(&mut daemon, options.duration).await?;
    let lag_end = lag(&client, &api).await?;
    progress(
        started,
        &format!(
            "quiet window: CPU {:.2}% of a core, RSS mean {:.1} MiB, peak {:.1} MiB",
            quiet.cpu_percent, quiet.rss_mean_mib, quiet.rss_peak_mib
        ),
    );

    let (status, document) = get_text(&client, &format!("{api}/api/v1/targets")).await?;
    if status != 200 {
        return Err(BenchError::Http(format!(
            "/api/v1/targets answered {status}"
        )));
    }
    let ids = target_ids(&document);
    if ids.is_empty() {
        return Err(BenchError::Http(
            "/api/v1/targets lists no target".to_string(),
        ));
    }
    let mut phases = Vec::new();
    let whole = Arc::new(vec!["/api/v1/status".to_string()]);
    let each: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("/api/v1/targets/{id}"))
            .collect(),
    );
    let offered = options.rate * options.clients as f64;
    for (endpoint, paths, rate) in [
        ("/api/v1/status", &whole, Some(options.rate)),
        ("/api/v1/targets/{random}", &each, Some(options.rate)),
        ("/api/v1/status", &whole, None),
        ("/api/v1/targets/{random}", &each, None),
    ] {
        let rate = rate.filter(|r| *r > 0.0);
        progress(
            started,
            &format!(
                "API load: {} clients on {endpoint}, {} for {}",
                options.clients,
                rate.map_or("flat out".to_string(), |_| format!(
                    "{offered:.0} requests/s in all"
                )),
                humantime_secs(options.api_duration)
            ),
        );
        daemon.check_alive()?;
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn(sample_until(daemon.pid(), Arc::clone(&stop)));
        let outcome = load(
            &api,
            Arc::clone(paths),
            options.clients,
            rate,
            options.api_duration,
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        let resources = sampler.await.ok().flatten();
        daemon.check_alive()?;
        let (histogram, ok, errors, size, elapsed) = outcome?;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let stats = LoadStats {
            endpoint: endpoint.to_string(),
            offered: rate.map(|_| offered),
            requests_per_second: ok as f64 / elapsed.as_secs_f64().max(0.001),
            errors,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            daemon: resources.unwrap_or_default(),
            body_bytes: size,
        };
        progress(
            started,
            &format!(
                "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                stats.requests_per_second, stats.p50_ms, stats.p99_ms, stats.errors
            ),
        );
        phases.push(stats);
    }
    let lag_after_load = lag(&client, &api).await?;
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .ok()
        .and_then(|s| parse_status_kib(&s, "VmHWM"))
        .map(|kib| kib as f64 / 1024.0);
    daemon.check_alive()?;
    progress(started, "done; stopping the daemon and the upstream");
    let lag_quiet = match (&lag_start, &lag_end) {
        (Some(a), Some(b)) => Some(b.since(a)),
        _ => None,
    };
    let lag_loaded = match (&lag_end, &lag_after_load) {
        (Some(a), Some(b)) => Some(b.since(a)),
        _ => None,
    };
    Ok(BenchReport {
        setup,
        machine: machine(),
        window_secs: options.duration.as_secs(),
        quiet,
        rss_hwm_mib: hwm,
        lag_quiet,
        lag_loaded,
        api: phases,
    })
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sample_window(
    daemon: &mut Guarded,
    duration: Duration,
) -> Result<ResourceStats, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_until(daemon.pid(), Arc::clone(&stop)));
    let until = Instant::now() + duration;
    while Instant::now() < until {
        daemon.check_alive()?;
        tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())).await;
    }
    stop.store(true, Ordering::Relaxed);
    let stats = sampler.await.ok().flatten();
    daemon.check_alive()?;
    stats.ok_or_else(|| BenchError::NotReady("the daemon's /proc entries vanished".to_string()))
}

async fn lag(client: &reqwest::Client, api: &str) -> Result<Option<PromHistogram>, BenchError> {
    let (status, text) = get_text(client, &format!("{api}/metrics")).await?;
    if status != 200 {
        return Err(BenchError::Http(format!("/metrics answered {status}")));
    }
    Ok(PromHistogram::parse(&text, LAG_METRIC))
}

fn target_ids(targets_json: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(targets_json)
        .ok()
        .and_then(|v| {
            v.get("targets")?.as_array().map(|targets| {
                targets
                    .iter()
                    .filter_map(|t| t.get("id")?.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn ms(seconds: f64) -> String {
    if seconds.is_infinite() {
        "> 10 s".to_string()
    } else {
        format!("{:.2} ms", seconds * 1000.0)
    }
}

fn lag_text(lag: &Option<PromHistogram>) -> String {
    match lag {
        None => "not exported by this daemon".to_string(),
        Some(h) if h.count == 0 => "no probes started".to_string(),
        Some(h) => format!(
            "mean {}, p99 ≤ {} ({} probes)",
            h.mean().map_or("-".to_string(), ms),
            h.quantile_bound(0.99).map_or("-".to_string(), ms),
            h.count
        ),
    }
}

impl BenchReport {
    /// The results as a plain-text table.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("{}\nmachine: {}\n\n", self.setup, self.machine));
        let q = &self.quiet;
        out.push_str(&format!(
            "daemon, quiet window ({} s, no API load)\n  CPU                {:.2}% of one core\n  RSS                mean {:.1} MiB, peak {:.1} MiB (lifetime peak {})\n  schedule lag       {}\n",
            self.window_secs,
            q.cpu_percent,
            q.rss_mean_mib,
            q.rss_peak_mib,
            self.rss_hwm_mib.map_or("-".to_string(), |m| format!("{m:.1} MiB")),
            lag_text(&self.lag_quiet),
        ));
        out.push_str(&format!(
            "  lag under API load {}\n\n",
            lag_text(&self.lag_loaded)
        ));
        let header = [
            "status API",
            "offered",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "errors",
            "daemon CPU",
            "body",
        ];
        let rows =
            std::iter::once(header.map(str::to_string)).chain(self.api.iter().map(api_cells));
        for c in rows {
            out.push_str(&format!(
                "{:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10}\n",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
            ));
        }
        out
    }

    /// The results as Markdown, for `BENCHMARKS.md`.
    pub fn render_markdown(&self) -> String {
        let q = &self.quiet;
        let mut out = format!(
            "{}; machine: {}.\n\n| figure (quiet window, {} s) | value |\n|---|---|\n\
             | CPU, average | {:.2}% of one core |\n| RSS, mean | {:.1} MiB |\n\
             | RSS, peak (sampled each second) | {:.1} MiB |\n| RSS, lifetime peak (VmHWM) | {} |\n\
             | schedule lag | {} |\n| schedule lag under API load | {} |\n\n",
            self.setup,
            self.machine,
            self.window_secs,
            q.cpu_percent,
            q.rss_mean_mib,
            q.rss_peak_mib,
            self.rss_hwm_mib
                .map_or("-".to_string(), |m| format!("{m:.1} MiB")),
            lag_text(&self.lag_quiet),
            lag_text(&self.lag_loaded),
        );
        out.push_str("| status API | offered req/s | answered req/s | p50 | p90 | p99 | max | errors | daemon CPU | answer size |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for c in self.api.iter().map(api_cells) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} ms | {} ms | {} ms | {} ms | {} | {} | {} |\n",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
            ));
        }
        out
    }
}

/// One API phase's figures in the tables' column order, formatted alike for text and Markdown.
fn api_cells(a: &LoadStats) -> [String; 10] {
    [
        a.endpoint.to_string(),
        offered(a.offered),
        format!("{:.0}", a.requests_per_second),
        format!("{:.3}", a.p50_ms),
        format!("{:.3}", a.p90_ms),
        format!("{:.3}", a.p99_ms),
        format!("{:.3}", a.max_ms),
        a.errors.to_string(),
        format!("{:.0}%", a.daemon.cpu_percent),
        bytes(a.body_bytes),
    ]
}

fn offered(rate: Option<f64>) -> String {
    rate.map_or("max".to_string(), |r| format!("{r:.0}"))
}

fn bytes(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{:.2} MiB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}
