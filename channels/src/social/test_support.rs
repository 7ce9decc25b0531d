//! What the social channels' tests share: their fixtures, test times, and the checkers of the
//! tables several of them run (settings refused at startup, hostile pages, classified errors).
//! The loopback server they probe is [`crate::test_server`].

use std::fmt;

use chrono::{DateTime, Utc};

use crate::error::{ErrorClass, ProbeError};

/// The directory of this crate's social fixtures.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/social/");
/// The shared fixtures these were copied from, when present.
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/social/");

/// Reads `{dir}{name}`.
pub fn fixture_in(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!("{dir}{name}"))
        .unwrap_or_else(|e| panic!("cannot read fixture {dir}{name}: {e}"))
}

/// Reads `tests/fixtures/social/{name}`.
pub fn fixture(name: &str) -> Vec<u8> {
    fixture_in(FIXTURES, name)
}

/// Checks that the local copies equal the shared files, printing a note and passing when the
/// shared directory is absent (a checkout without it).
pub fn assert_copies_match_shared(copies: &[(&str, &str)]) {
    if !std::path::Path::new(SHARED).is_dir() {
        println!("note: {SHARED} is absent; skipping the comparison with the shared fixtures");
        return;
    }
    for (local, shared) in copies {
        assert_eq!(
            fixture(local),
            fixture_in(SHARED, shared),
            "{local} differs from shared {shared}"
        );
    }
}

/// A test time, from RFC 3339.
/// One clock reading for the whole test run, for posts stamped "N minutes ago": reading the clock
/// per post let two posts of the same minute land in different milliseconds and swap order.
pub static NOW: std::sync::LazyLock<DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

/// `minutes` before [`NOW`], as upstreams write times.
pub fn minutes_ago(minutes: i64) -> String {
    (*NOW - chrono::TimeDelta::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad test time {rfc3339:?}: {e}"))
        .with_timezone(&Utc)
}

/// Asserts that case `name` failed with `class` and a message saying every one of `says`.
pub fn assert_error(name: &str, e: &ProbeError, class: ErrorClass, says: &[&str]) {
    assert_eq!(e.class(), class, "{name}: {e}");
    for word in says {
        assert!(e.to_string().contains(word), "{name}: {e}");
    }
}

/// Runs settings cases `(name, edit, word)`: each edit of `config()` must be refused by `build`
/// as a config error naming `word`.
pub fn check_refused_settings<C, T: fmt::Debug>(
    cases: Vec<(&str, impl Fn(&mut C), &str)>,
    config: impl Fn() -> C,
    build: impl Fn(C) -> Result<T, ProbeError>,
) {
    for (name, edit, says) in cases {
        let mut c = config();
        edit(&mut c);
        let e = build(c).expect_err(name);
        assert_eq!(e.class(), ErrorClass::Config, "{name}");
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
}

/// How a page parsed: usable posts, skipped items, all items.
pub type Counts = (usize, usize, usize);

/// Runs page cases `(name, body, want)` through `parse`: `Ok(n)` wants `n` usable posts and the
/// rest skipped, `Err(word)` wants drift saying `word`.
pub fn check_pages(
    cases: Vec<(&str, Vec<u8>, Result<usize, &str>)>,
    parse: impl Fn(&[u8]) -> Result<Counts, ProbeError>,
) {
    for (name, body, want) in cases {
        match (parse(&body), want) {
            (Ok((posts, skipped, items)), Ok(n)) => {
                assert_eq!(posts, n, "{name}");
                assert_eq!(skipped, items - n, "{name}");
            }
            (Err(e), Err(says)) => assert_error(name, &e, ErrorClass::Drift, &[says]),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}
