//! `statusmon classify`, as users and checkers run it: posts piped on stdin, one per line.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::bin;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/channels/tests/fixtures/social/corpus.tsv"
);

/// Runs `statusmon classify ARGS` with `input` piped to stdin.
fn classify(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .arg("classify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn statusmon classify");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    out
}

/// (label, future, text) of every corpus post.
fn corpus() -> Vec<(String, bool, String)> {
    std::fs::read_to_string(CORPUS)
        .expect("read corpus")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let label = f.next().expect("label");
            let _origin = f.next().expect("origin");
            let text = f.next().expect("text");
            let (label, future) = match label.split_once(',') {
                Some((label, _)) => (label, true),
                None => (label, false),
            };
            (label.to_string(), future, text.to_string())
        })
        .collect()
}

#[test]
fn json_lines_carry_stage_label_ids_rule_and_the_future_flag() {
    let out = classify(
        &["--json"],
        "We’re investigating issues impacting multiple Microsoft 365 services. More info can be found in the admin center under MO502273.\n\n\
         The service is continuing to recover and we’re forecasting that the issue will be resolved within the next 3 hours. Details are available at https://portal.office.com/servicestatus and the admin center under MO941162.\n"
            .as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 2, "blank line skipped: {stdout}");
    assert_eq!(rows[0]["stage"], "investigating");
    assert_eq!(rows[0]["label"], "start");
    assert_eq!(rows[0]["incident_ids"], serde_json::json!(["MO502273"]));
    assert_eq!(rows[0]["rule"], "opening-investigation");
    assert_eq!(rows[1]["stage"], "recovering");
    assert_eq!(rows[1]["label"], "recovering");
    assert_eq!(rows[1]["future_fix"], true);
    assert!(
        rows[1]["text"]
            .as_str()
            .expect("text")
            .starts_with("The service")
    );
}

#[test]
fn the_table_speaks_either_vocabulary() {
    let input = b"We've confirmed that there is no enterprise impact to Microsoft Teams.\nimpact has been remediated\n";
    let ours = String::from_utf8(classify(&[], input).stdout).expect("utf-8");
    let fixture =
        String::from_utf8(classify(&["--labels", "fixture"], input).stdout).expect("utf-8");
    let first = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(first(&ours), ["informational", "resolved"], "{ours}");
    assert_eq!(
        first(&fixture),
        ["consumer-redirect", "resolved"],
        "{fixture}"
    );
    assert!(ours.contains("consumer-handoff"), "{ours}");
}

#[test]
fn the_corpus_through_the_binary_meets_the_promise() {
    let posts = corpus();
    let input: String = posts.iter().map(|(_, _, t)| format!("{t}\n")).collect();
    let out = classify(&["--json"], input.as_bytes());
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), posts.len(), "one output line per post");
    let mut right = 0;
    for ((label, future, text), row) in posts.iter().zip(&rows) {
        if row["label"] == label.as_str() {
            right += 1;
        }
        if *future {
            assert_ne!(row["stage"], "resolved", "promises a future fix: {text}");
        }
    }
    let percent = 100.0 * right as f64 / posts.len() as f64;
    println!(
        "statusmon classify on the corpus: {right}/{} = {percent:.1}%",
        posts.len()
    );
    assert!(percent >= 90.0, "{percent:.1}%");
}

#[test]
fn invalid_utf8_is_a_clear_error_with_exit_1() {
    let out = classify(&[], b"impact has been remediated\nWe\xffre investigating\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn empty_input_prints_nothing_and_succeeds() {
    let out = classify(&["--json"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}
