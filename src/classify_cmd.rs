//! `statusmon classify`: reads social posts from stdin, one per line, and prints how the post
//! classifier reads each (stage, incident ids, the rule that fired) — for users tuning rules, for
//! checking a feed by hand, and for tests.
//!
//! One line is one post (posts with line breaks must be joined first); blank lines are skipped.
//! Output is one line per post, in input order: a table row, or with `--json` one JSON object
//! (JSON Lines). Invalid UTF-8 on stdin stops the command with a message naming the line, exit 1.

use std::io::{self, BufRead, IsTerminal, Write};

use clap::ValueEnum;
use serde_json::json;
use statusmon_channels::social::{Classification, classify};

/// Which vocabulary the table's first column uses. JSON always carries both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Labels {
    /// Our stages: investigating, identified, recovering, resolved, informational, unknown.
    Stage,
    /// The hand-labelling vocabulary of the shared fixture file: start, update, recovering,
    /// resolved, consumer-redirect.
    Fixture,
}

/// Exit code when every line was read.
pub const OK: u8 = 0;
/// Exit code when stdin could not be read (invalid UTF-8, I/O error).
pub const INPUT_ERROR: u8 = 1;

/// The longest prefix of a post shown in the table.
const TEXT_PREFIX: usize = 72;

/// Runs the command on the process's stdin and stdout; returns the exit code.
pub fn run_stdio(json: bool, labels: Labels) -> u8 {
    let stdin = io::stdin().lock();
    let stdout = io::stdout();
    let header = !json && stdout.is_terminal();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut err = io::stderr().lock();
    run(stdin, &mut out, &mut err, json, labels, header)
}

/// Classifies every line of `input` and writes one result per post to `out`; problems go to
/// `err`. `header` adds a column header to the table (for people, not for scripts).
pub fn run(
    mut input: impl BufRead,
    out: &mut impl Write,
    err: &mut impl Write,
    json: bool,
    labels: Labels,
    header: bool,
) -> u8 {
    if header {
        let first = match labels {
            Labels::Stage => "STAGE",
            Labels::Fixture => "LABEL",
        };
        if writeln!(out, "{first:<17} {:<20} {:<23} TEXT", "IDS", "RULE").is_err() {
            return OK;
        }
    }
    let mut raw = Vec::new();
    let mut number = 0usize;
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(err, "error: reading stdin after line {number}: {e}");
                let _ = out.flush();
                return INPUT_ERROR;
            }
        }
        number += 1;
        let Ok(line) = std::str::from_utf8(&raw) else {
            let _ = writeln!(
                err,
                "error: stdin line {number} is not valid UTF-8; give one post per line as UTF-8 text"
            );
            let _ = out.flush();
            return INPUT_ERROR;
        };
        let text = line.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        let c = classify(text);
        let written = if json {
            writeln!(out, "{}", json_line(&c, text))
        } else {
            writeln!(out, "{}", table_row(&c, text, labels))
        };
        // A closed pipe (`| head`) is the reader's choice, not an error.
        if written.is_err() {
            return OK;
        }
    }
    let _ = out.flush();
    OK
}

fn json_line(c: &Classification, text: &str) -> serde_json::Value {
    json!({
        "stage": c.stage,
        "label": c.label,
        "incident_ids": c.incident_ids,
        "rule": c.rule,
        "future_fix": c.future_fix,
        "text": text,
    })
}

fn table_row(c: &Classification, text: &str, labels: Labels) -> String {
    let first = match labels {
        Labels::Stage => c.stage.as_str(),
        Labels::Fixture => c.label.as_str(),
    };
    let ids = if c.incident_ids.is_empty() {
        "-".to_string()
    } else {
        c.incident_ids.join(",")
    };
    let rule = if c.future_fix {
        format!("{}+future", c.rule)
    } else {
        c.rule.to_string()
    };
    let shown: String = if text.chars().count() > TEXT_PREFIX {
        let mut s: String = text.chars().take(TEXT_PREFIX - 1).collect();
        s.push('…');
        s
    } else {
        text.to_string()
    };
    format!("{first:<17} {ids:<20} {rule:<23} {shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(input: &[u8], json: bool, labels: Labels) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(input, &mut out, &mut err, json, labels, false);
        (
            code,
            String::from_utf8(out).expect("utf-8 out"),
            String::from_utf8(err).expect("utf-8 err"),
        )
    }

    #[test]
    fn one_row_per_post_blank_lines_skipped_crlf_tolerated() {
        let (code, out, err) = run_on(
            b"We're investigating an issue under EX571516.\r\n\n  \nimpact has been remediated\n",
            false,
            Labels::Stage,
        );
        assert_eq!(code, OK);
        assert!(err.is_empty());
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert!(rows[0].starts_with("investigating "), "{out}");
        assert!(rows[0].contains("EX571516"), "{out}");
        assert!(rows[1].starts_with("resolved "), "{out}");
    }

    #[test]
    fn invalid_utf8_names_the_line_and_fails() {
        let (code, out, err) = run_on(
            b"impact has been remediated\n\xff\xfe\n",
            false,
            Labels::Stage,
        );
        assert_eq!(code, INPUT_ERROR);
        assert_eq!(out.lines().count(), 1);
        assert!(err.contains("line 2"), "{err}");
    }
}
