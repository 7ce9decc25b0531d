//! `statusmon bench`: its pieces (reading `/proc`, reading the lag histogram) and the command
//! end to end at a tiny size. Nothing here asserts a performance figure.

use std::process::Command;

use statusmon::bench::{self, PromHistogram};

use crate::support::bin;

#[test]
fn proc_stat_is_read_after_the_command_name_even_with_spaces_and_parentheses() {
    let stat = "4242 (tokio (rt) worker) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 3 0 100";
    assert_eq!(
        bench::parse_proc_stat(stat),
        Some(267),
        "utime 250 + stime 17"
    );
    assert_eq!(bench::parse_proc_stat("4242 (cut) S 1 2"), None);
    let status = "Name:\tstatusmon\nVmHWM:\t   52000 kB\nVmRSS:\t   41234 kB\nThreads:\t3\n";
    assert_eq!(bench::parse_status_kib(status, "VmRSS"), Some(41234));
    assert_eq!(bench::parse_status_kib(status, "VmHWM"), Some(52000));
    assert_eq!(bench::parse_status_kib(status, "VmSwap"), None);
}

#[test]
fn this_process_can_be_sampled() {
    let sample = bench::sample_process(std::process::id()).expect("our own /proc entry");
    assert!(sample.rss_kib > 0, "{sample:?}");
}

const LAG: &str = "\
# TYPE statusmon_schedule_lag_seconds histogram
statusmon_schedule_lag_seconds_sum 0.5
statusmon_schedule_lag_seconds_count 100
statusmon_schedule_lag_seconds_bucket{le=\"0.001\"} 90
statusmon_schedule_lag_seconds_bucket{le=\"0.01\"} 98
statusmon_schedule_lag_seconds_bucket{le=\"0.1\"} 100
statusmon_schedule_lag_seconds_bucket{le=\"+Inf\"} 100
# EOF
";

#[test]
fn the_lag_histogram_gives_mean_and_p99_bound_over_a_window() {
    let later = PromHistogram::parse(LAG, bench::LAG_METRIC).expect("the histogram");
    assert_eq!(later.count, 100);
    assert_eq!(later.mean(), Some(0.005));
    assert_eq!(later.quantile_bound(0.5), Some(0.001));
    assert_eq!(later.quantile_bound(0.99), Some(0.1));
    let earlier = PromHistogram {
        buckets: vec![(0.001, 80), (0.01, 80), (0.1, 80), (f64::INFINITY, 80)],
        sum: 0.04,
        count: 80,
    };
    let window = later.since(&earlier);
    assert_eq!(window.count, 20);
    assert_eq!(window.quantile_bound(0.5), Some(0.001), "{window:?}");
    assert_eq!(window.quantile_bound(0.99), Some(0.1), "{window:?}");
    assert!(PromHistogram::parse("# EOF\n", bench::LAG_METRIC).is_none());
}

/// The whole command at a tiny size: upstream, daemon, windows, both API phases, the table.
#[test]
fn bench_runs_the_static_profile_end_to_end_and_prints_the_table() {
    let out = Command::new(bin())
        .args([
            "bench",
            "--profile",
            "static",
            "--channels",
            "3",
            "--interval",
            "2s",
            "--warmup",
            "1s",
            "--duration",
            "2s",
            "--api-duration",
            "1s",
            "--clients",
            "2",
            "--rate",
            "10",
            "--markdown",
        ])
        .output()
        .expect("run statusmon bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("profile static: 3 bluesky channels"),
        "{stdout}"
    );
    assert!(stdout.contains("% of one core"), "{stdout}");
    let lag_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("schedule lag"))
        .expect("a schedule lag line");
    assert!(
        lag_line.contains("mean") && lag_line.contains("p99"),
        "{lag_line}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("/api/v1/"))
        .collect();
    assert_eq!(
        rows.len(),
        4,
        "paced and flat out, whole and per target:\n{stdout}"
    );
    for endpoint in ["/api/v1/status ", "/api/v1/targets/{random} "] {
        for offered in ["20", "max"] {
            let row = rows
                .iter()
                .find(|r| r.starts_with(endpoint) && r.split_whitespace().nth(1) == Some(offered))
                .unwrap_or_else(|| panic!("no row {endpoint}{offered}:\n{stdout}"));
            // endpoint, offered, req/s, p50, p90, p99, max, errors: every request answered 200.
            let errors: u64 = row
                .split_whitespace()
                .nth(7)
                .and_then(|e| e.parse().ok())
                .unwrap_or_else(|| panic!("errors column in {row:?}"));
            assert_eq!(errors, 0, "{row}");
        }
    }
    assert!(
        stdout.contains("| `/api/v1/status` |"),
        "markdown table:\n{stdout}"
    );
    assert!(
        stderr.contains("quiet window"),
        "progress lines on stderr:\n{stderr}"
    );
}

#[test]
fn bench_exits_nonzero_when_the_daemon_dies() {
    let out = Command::new(bin())
        .args([
            "bench",
            "--profile",
            "static",
            "--channels",
            "2",
            "--interval",
            "2s",
            "--daemon",
            "/bin/false",
        ])
        .output()
        .expect("run statusmon bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("the daemon died"), "{stderr}");
}
