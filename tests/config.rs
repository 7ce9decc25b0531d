//! The config contract: the shipped example parses, every error names file, key and problem, and
//! environment overrides work and are named when they are wrong.

use std::path::Path;
use std::time::Duration;

use statusmon::config::{self, ChannelSettings, ConfigErrors, Origin};

fn parse(text: &str) -> Result<config::Config, ConfigErrors> {
    config::parse(text, Path::new("my.toml"), std::iter::empty())
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<config::Config, ConfigErrors> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config::parse(text, Path::new("my.toml"), env)
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8080"
[store]
path = "statusmon.db"
[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "https://status.cloud.microsoft"
interval = "2m"
[[targets]]
id = "contoso"
name = "Contoso"
channels = ["m365-public"]
"#;

fn first_error(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("config should be rejected:\n{text}"),
        Err(errors) => errors.0[0].to_string(),
    }
}

#[test]
fn the_shipped_config_toml_parses_without_warnings_or_credentials() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let config = config::load(&path).unwrap_or_else(|e| panic!("config.toml: {e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(!config.targets.is_empty());
    let public = config
        .channels
        .iter()
        .find(|c| c.id == "m365-public")
        .expect("m365-public");
    let ChannelSettings::M365StatusSite(site) = &public.kind else {
        panic!("m365-public is not a status-site channel");
    };
    assert_eq!(site.base_url, "https://status.cloud.microsoft");
    assert_eq!(
        public.max_age,
        public.interval * 3,
        "max_age defaults to 3 × interval"
    );
    let x = config
        .channels
        .iter()
        .find(|c| c.id == "msft365status-x")
        .expect("msft365status-x");
    let ChannelSettings::X(x) = &x.kind else {
        panic!("msft365status-x is not an x channel");
    };
    assert!(
        x.bearer_token.is_err(),
        "the shipped config needs no X token; without one the channel is disabled"
    );
}

#[test]
fn defaults_fill_in_what_is_left_out() {
    let config = parse(GOOD).expect("valid");
    let c = &config.channels[0];
    assert_eq!(c.interval, Duration::from_secs(120));
    assert_eq!(c.max_age, Duration::from_secs(360));
    assert_eq!(c.limits.timeout, Duration::from_secs(10));
    assert!(c.enabled);
    assert_eq!(config.policy.fail_threshold, 1);
    assert_eq!(config.policy.recover_threshold, 2);
    assert_eq!(config.scheduler.probes_per_host.get(), 100);
    assert_eq!(config.archive, None);
    assert_eq!(
        config.archive_retention,
        Duration::from_secs(14 * 24 * 3600)
    );
}

#[test]
fn errors_name_the_file_the_key_and_the_problem() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "interval = \"2m\"",
            "intervl = \"2m\"",
            &["my.toml", "channels[0].intervl", "unknown key"],
        ),
        (
            "interval = \"2m\"",
            "interval = \"5 parsecs\"",
            &["my.toml", "channels[0].interval"],
        ),
        (
            "interval = \"2m\"",
            "interval = 120",
            &["channels[0].interval"],
        ),
        (
            "[server]",
            "[sever]",
            &["my.toml", "sever", "unknown field"],
        ),
        (
            "listen = \"127.0.0.1:8080\"",
            "listen = \"localhost\"",
            &["server.listen"],
        ),
        (
            "[server]",
            "[scheduler]\nprobes_per_host = 0\n[server]",
            &["my.toml", "scheduler.probes_per_host", "at least 1"],
        ),
        (
            "[server]",
            "[archive]\nretention = \"6h\"\n[server]",
            &["my.toml", "archive.retention", "at least \"1d\""],
        ),
        (
            "channels = [\"m365-public\"]",
            "channels = [\"m365-public\", \"graph\"]",
            &["targets[0].channels[1]", "\"graph\" is not declared"],
        ),
        (
            "kind = \"m365_status_site\"",
            "kind = \"statuspage\"",
            &["channels[0].kind", "statuspage", "m365_status_site"],
        ),
        (
            "base_url = \"https://status.cloud.microsoft\"",
            "base_url = \"status.cloud.microsoft\"",
            &["channels[0].base_url"],
        ),
        (
            "interval = \"2m\"",
            "interval = \"2m\"\nmax_age = \"1m\"",
            &["channels[0].max_age", "shorter than interval"],
        ),
        (
            "interval = \"2m\"",
            "interval = \"2m\"\ntimeout = \"5m\"",
            &["channels[0].timeout"],
        ),
        (
            "interval = \"2m\"",
            "interval = \"2m\"\nposts = [\"mac\", \"exchange\"]",
            &["channels[0].posts[1]", "exchange"],
        ),
        ("id = \"contoso\"", "id = \"con toso\"", &["targets[0].id"]),
    ];
    for (from, to, needles) in cases {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "case {to:?} did not change the config");
        let message = first_error(&text);
        for needle in *needles {
            assert!(
                message.contains(needle),
                "{to:?}: message {message:?} lacks {needle:?}"
            );
        }
    }
}

#[test]
fn duplicate_ids_are_rejected_and_every_error_is_reported() {
    let text = format!(
        "{GOOD}\n[[channels]]\nid = \"m365-public\"\nkind = \"m365_status_site\"\n\
         [[targets]]\nid = \"contoso\"\nchannels = [\"nope\"]\n"
    );
    let errors = parse(&text).expect_err("duplicates");
    let all = errors.to_string();
    assert!(
        all.contains("channels[1].id") && all.contains("duplicate channel id"),
        "{all}"
    );
    assert!(
        all.contains("targets[1].id") && all.contains("duplicate target id"),
        "{all}"
    );
    assert!(all.contains("targets[1].channels[0]"), "{all}");
    assert!(errors.0.len() >= 3);
}

#[test]
fn a_channel_with_a_bad_key_does_not_also_fail_its_targets() {
    let errors =
        parse(&GOOD.replacen("interval = \"2m\"", "intervl = \"2m\"", 1)).expect_err("bad key");
    assert_eq!(errors.0.len(), 1, "one mistake, one error: {errors}");
    assert!(errors.to_string().contains("channels[0].intervl"));
}

#[test]
fn a_config_without_targets_says_what_to_add() {
    let text = GOOD.split("[[targets]]").next().unwrap_or_default();
    assert!(first_error(text).contains("no [[targets]]"));
}

#[test]
fn broken_toml_is_reported_with_its_position() {
    let message = first_error("[[channels]\nid = 1");
    assert!(message.starts_with("my.toml: not valid TOML"), "{message}");
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn environment_overrides_reach_channels_and_sections() {
    let config = parse_env(
        GOOD,
        &[
            (
                "STATUSMON_CHANNEL__M365_PUBLIC__BASE_URL",
                "http://127.0.0.1:9",
            ),
            ("STATUSMON_CHANNEL__M365_PUBLIC__ENABLED", "false"),
            ("STATUSMON_SERVER__LISTEN", "127.0.0.1:9999"),
            ("STATUSMON_RESOLVER__RECOVER_THRESHOLD", "3"),
            ("STATUSMON_CONFIG", "ignored.toml"),
            ("UNRELATED", "x"),
        ],
    )
    .expect("overrides are valid");
    let ChannelSettings::M365StatusSite(site) = &config.channels[0].kind else {
        panic!("not a status-site channel");
    };
    assert_eq!(site.base_url, "http://127.0.0.1:9");
    assert!(!config.channels[0].enabled);
    assert_eq!(config.server.listen.port(), 9999);
    assert_eq!(config.policy.recover_threshold, 3);
}

#[test]
fn a_bad_override_names_the_variable() {
    let errors = parse_env(
        GOOD,
        &[("STATUSMON_CHANNEL__M365_PUBLIC__INTERVAL", "soon")],
    )
    .expect_err("bad");
    assert_eq!(
        errors.0[0].origin,
        Origin::Env("STATUSMON_CHANNEL__M365_PUBLIC__INTERVAL".into())
    );
    let message = errors.to_string();
    assert!(
        message.contains("environment variable STATUSMON_CHANNEL__M365_PUBLIC__INTERVAL"),
        "{message}"
    );
    assert!(message.contains("channels[0].interval"), "{message}");

    let errors = parse_env(GOOD, &[("STATUSMON_CHANNEL__NOPE__BASE_URL", "http://x")])
        .expect_err("no such channel");
    assert!(
        errors
            .to_string()
            .contains("no channel whose id matches NOPE")
    );
    let errors = parse_env(GOOD, &[("STATUSMON_LISTEN", "x")]).expect_err("malformed");
    assert!(errors.to_string().contains("STATUSMON_LISTEN"));
}

#[test]
fn secret_files_are_read_trimmed_and_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    std::fs::write(&path, "s3cr3t-value\n").expect("write");
    let secret = config::read_secret_file("client_secret_file", &path).expect("readable");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&secret),
        "s3cr3t-value"
    );
    assert!(
        !format!("{secret:?}").contains("s3cr3t"),
        "Debug must redact"
    );
    std::fs::write(&path, "\n").expect("write");
    let error = config::read_secret_file("client_secret_file", &path).expect_err("empty");
    assert!(
        error.contains("client_secret_file") && error.contains("empty"),
        "{error}"
    );
    let error = config::read_secret_file("k", &dir.path().join("missing")).expect_err("missing");
    assert!(error.contains("cannot read secret file"), "{error}");
}

const GRAPH: &str = r#"
[[channels]]
id = "contoso-graph"
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
[[targets]]
id = "contoso"
channels = ["contoso-graph"]
"#;

fn graph_settings(config: &config::Config) -> &config::GraphSettings {
    match &config.channels[0].kind {
        ChannelSettings::Graph(settings) => settings,
        other => panic!("not a graph channel: {other:?}"),
    }
}

#[test]
fn the_three_tenant_example_parses_and_runs_without_credentials() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/three-tenants.toml");
    let config = config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.targets.len(), 3);
    let graphs: Vec<&config::ChannelConfig> = config
        .channels
        .iter()
        .map(|c| &**c)
        .filter(|c| matches!(c.kind, ChannelSettings::Graph(_)))
        .collect();
    assert_eq!(graphs.len(), 3);
    for target in &config.targets {
        assert_eq!(
            target.channels.last().map(String::as_str),
            Some("m365-public")
        );
    }
    for channel in graphs {
        let ChannelSettings::Graph(settings) = &channel.kind else {
            unreachable!()
        };
        let missing = settings
            .credential
            .as_ref()
            .expect_err("no credentials in the example");
        assert!(missing.contains("CLIENT_SECRET"), "{missing}");
    }
}

#[test]
fn graph_credentials_come_from_the_environment_or_files_and_never_show() {
    let secret = "s3cr3t-VALUE-xyz";
    let config = parse_env(
        GRAPH,
        &[("STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET", secret)],
    )
    .expect("valid");
    let settings = graph_settings(&config);
    assert!(matches!(
        settings.credential,
        Ok(statusmon_channels::graph::Credential::Secret(_))
    ));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(
        !format!("{config:?}").contains(secret),
        "Debug leaks the secret"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{secret}\n")).expect("write");
    let text = GRAPH.replace(
        "client_id = ",
        &format!(
            "client_secret_file = {:?}\nclient_id = ",
            file.display().to_string()
        ),
    );
    let config = parse(&text).expect("valid");
    assert!(graph_settings(&config).credential.is_ok());

    let inline = GRAPH.replace(
        "client_id = ",
        &format!("client_secret = \"{secret}\"\nclient_id = "),
    );
    let config = parse(&inline).expect("inline secrets work");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("client_secret is written in the file")),
        "{:?}",
        config.warnings
    );
    assert!(!format!("{:?}", config.warnings).contains(secret));
}

#[test]
fn graph_settings_have_sane_defaults_and_a_missing_credential_says_what_to_set() {
    let config = parse(GRAPH).expect("valid without credentials");
    let settings = graph_settings(&config);
    assert_eq!(settings.authority, "https://login.microsoftonline.com");
    assert_eq!(settings.graph_url, "https://graph.microsoft.com");
    assert_eq!(settings.budget.per_minute.get(), 240);
    assert_eq!(settings.budget.per_hour.get(), 800);
    assert_eq!(config.channels[0].interval, Duration::from_secs(60));
    let missing = settings.credential.as_ref().expect_err("no credential");
    assert!(
        missing.contains("client_secret_file")
            && missing.contains("STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET")
            && missing.contains("certificate_file"),
        "{missing}"
    );
    let no_client =
        parse(&GRAPH.replace("client_id = \"11111111-2222-3333-4444-555555555555\"", ""))
            .expect("valid");
    let missing = graph_settings(&no_client)
        .credential
        .as_ref()
        .expect_err("no client id");
    assert!(missing.contains("client_id"), "{missing}");
}

#[test]
fn graph_mistakes_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let cases: Vec<(String, &[&str])> = vec![
        (
            GRAPH.replace(
                "tenant_id = \"contoso.onmicrosoft.com\"",
                "tenant_id = \"\"",
            ),
            &["channels[0].tenant_id"],
        ),
        (
            GRAPH.replace("kind = \"graph\"", "kind = \"graph\"\ntenant = \"x\""),
            &["channels[0].tenant", "tenant_id"],
        ),
        (
            GRAPH.replace("kind = \"graph\"", "kind = \"graph\"\nbudget_per_hour = 0"),
            &["channels[0].budget_per_hour", "at least 1"],
        ),
        (
            GRAPH.replace(
                "kind = \"graph\"",
                "kind = \"graph\"\ngraph_url = \"graph.microsoft.com\"",
            ),
            &["channels[0].graph_url"],
        ),
        (
            GRAPH.replace(
                "kind = \"graph\"",
                &format!(
                    "kind = \"graph\"\nprivate_key_file = {:?}",
                    key.display().to_string()
                ),
            ),
            &["channels[0].certificate_file", "set both"],
        ),
        (
            GRAPH.replace(
                "kind = \"graph\"",
                "kind = \"graph\"\nclient_secret_file = \"/nonexistent/secret\"",
            ),
            &["channels[0].client_secret_file", "/nonexistent/secret"],
        ),
        (
            GRAPH.replace(
                "kind = \"graph\"",
                "kind = \"graph\"\nbase_url = \"https://x\"",
            ),
            &["channels[0].base_url", "graph"],
        ),
    ];
    for (text, needles) in cases {
        let message = match parse(&text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        };
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }
}

#[test]
fn an_interval_beyond_the_graph_budget_is_warned_about() {
    let config = parse(&GRAPH.replace("kind = \"graph\"", "kind = \"graph\"\ninterval = \"1s\""))
        .expect("valid");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("beyond its budget of 800/h")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn a_base_address_with_a_query_is_refused_by_the_same_rule_as_the_channels() {
    let message = first_error(&GOOD.replace(
        "https://status.cloud.microsoft\"",
        "https://status.cloud.microsoft/?x=1\"",
    ));
    assert!(
        message.contains("channels[0].base_url") && message.contains("no query"),
        "{message}"
    );
}

const SOCIAL: &str = r#"
[[channels]]
id = "msft365status-x"
kind = "x"
username = "@MSFT365Status"
base_url = "http://127.0.0.1:9"
interval = "2m"
quiet_after = "4h"
[[channels]]
id = "status-mastodon"
kind = "mastodon"
base_url = "https://mastodon.example"
account = "@status@mastodon.example"
[[channels]]
id = "status-bluesky"
kind = "bluesky"
actor = "status.example.com"
[[channels]]
id = "vendor-history"
kind = "feed"
url = "https://status.example.com/history.atom?lang=en"
[[targets]]
id = "t"
channels = ["msft365status-x", "status-mastodon", "status-bluesky", "vendor-history"]
"#;

#[test]
fn social_channels_parse_with_defaults_and_an_x_channel_without_a_token_is_disabled() {
    let config = parse(SOCIAL).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let [x, mastodon, bluesky, feed] = &config.channels[..] else {
        panic!("four channels");
    };
    let ChannelSettings::X(x_settings) = &x.kind else {
        panic!("x");
    };
    assert_eq!(x_settings.username, "MSFT365Status");
    assert_eq!(x_settings.max_results, 100);
    assert_eq!(x_settings.social.quiet_after, Duration::from_secs(4 * 3600));
    let missing = x_settings
        .bearer_token
        .as_ref()
        .expect_err("no token configured");
    assert!(
        missing.contains("STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN"),
        "{missing}"
    );
    let ChannelSettings::Mastodon(m) = &mastodon.kind else {
        panic!("mastodon");
    };
    assert_eq!(m.account, "status@mastodon.example");
    assert_eq!(m.limit, 40);
    let ChannelSettings::Bluesky(b) = &bluesky.kind else {
        panic!("bluesky");
    };
    assert_eq!(b.base_url, "https://public.api.bsky.app");
    assert_eq!(feed.interval, Duration::from_secs(300));

    let with_token = parse_env(
        SOCIAL,
        &[(
            "STATUSMON_CHANNEL__MSFT365STATUS_X__BEARER_TOKEN",
            "sim-x-bearer",
        )],
    )
    .expect("valid");
    let ChannelSettings::X(x_settings) = &with_token.channels[0].kind else {
        panic!("x");
    };
    assert!(x_settings.bearer_token.is_ok());
    assert!(with_token.warnings.is_empty(), "{:?}", with_token.warnings);

    let inline = parse(&SOCIAL.replace(
        "quiet_after = \"4h\"",
        "quiet_after = \"4h\"\nbearer_token = \"abc\"",
    ))
    .expect("valid");
    assert!(
        inline
            .warnings
            .iter()
            .any(|w| w.contains("bearer_token is written in the file")),
        "{:?}",
        inline.warnings
    );
}

#[test]
fn social_keys_are_checked_and_named() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "quiet_after = \"4h\"",
            "quiet_after = \"10s\"",
            &["channels[0].quiet_after", "at least 1m"],
        ),
        (
            "quiet_after = \"4h\"",
            "quiet_after = \"4h\"\nhistory = \"1h\"",
            &["channels[0].history", "shorter than quiet_after"],
        ),
        (
            "quiet_after = \"4h\"",
            "quiet_after = \"4h\"\nmax_results = 500",
            &["channels[0].max_results"],
        ),
        (
            "quiet_after = \"4h\"",
            "quiet_after = \"4h\"\nmax_results = 2",
            &["channels[0].max_results", "5..=100"],
        ),
        (
            "quiet_after = \"4h\"",
            "quiet_after = \"4h\"\nmax_pages = 0",
            &["channels[0].max_pages", "1..=50"],
        ),
        (
            "quiet_after = \"4h\"",
            "quiet_after = \"4h\"\naccount = \"a\"",
            &["channels[0].account", "unknown key", "kind x"],
        ),
        (
            "account = \"@status@mastodon.example\"",
            "",
            &["channels[1].account", "needs account"],
        ),
        (
            "base_url = \"https://mastodon.example\"",
            "",
            &["channels[1].base_url", "needs base_url"],
        ),
        (
            "actor = \"status.example.com\"",
            "actor = \"\"",
            &["channels[2].actor"],
        ),
        (
            "url = \"https://status.example.com/history.atom?lang=en\"",
            "url = \"ftp://x/y\"",
            &["channels[3].url"],
        ),
        (
            "url = \"https://status.example.com/history.atom?lang=en\"",
            "url = \"https://a/b\"\nlimit = 3",
            &["channels[3].limit", "unknown key"],
        ),
        (
            "kind = \"x\"",
            "kind = \"twitter\"",
            &["channels[0].kind", "x, mastodon, bluesky, feed"],
        ),
    ];
    for (from, to, needles) in cases {
        let text = SOCIAL.replacen(from, to, 1);
        assert_ne!(text, SOCIAL, "case {to:?} did not change the config");
        let message = match parse(&text) {
            Ok(_) => panic!("should be rejected: {to:?}"),
            Err(errors) => errors.to_string(),
        };
        for needle in *needles {
            assert!(
                message.contains(needle),
                "{to:?}: {message:?} lacks {needle:?}"
            );
        }
    }
}
