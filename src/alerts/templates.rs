//! Message templates: the words a sink puts in front of people (a title and a body), rendered
//! with minijinja from an [`AlertEvent`].
//!
//! Every sink kind has defaults that read well in its medium; a `[[sinks]]` entry may replace
//! the title, the body or both. User templates are compiled when the configuration is validated
//! ([`check`]), so a typo is a start-up error, not a silent gap in an alert. A template that still
//! fails at run time (a branch the check's sample event did not take) never loses the alert: the
//! kind's default renders instead and a warning is logged.
//!
//! Rendering does no HTML escaping (the output is not HTML): each sink escapes what its own
//! format needs (Slack its `&`, `<` and `>`), since only it knows which characters are control
//! characters there.
//!
//! The context is every [`AlertEvent`] field (`kind`, `severity` and `purpose` as their
//! snake_case names, `at` as RFC 3339), plus `status` (`"firing"` or `"resolved"`), and the
//! booleans `drill` and `reminder`. An undefined name is an error (strict mode), so `{{ sumary }}`
//! is caught by [`check`] instead of rendering as nothing.

use chrono::{SecondsFormat, TimeZone, Utc};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};

use super::sinks::SinkKind;
use super::{AlertEvent, EventKind, Purpose, Severity};

/// The most a rendered title may hold, in characters: it is one line (a subject, a summary).
pub const MAX_TITLE_CHARS: usize = 1024;
/// The most a rendered body may hold, in characters, before the sinks' own (smaller) limits: a
/// runaway loop in a user template must not send megabytes per alert. (Rendering itself is
/// bounded by [`FUEL`].)
pub const MAX_BODY_CHARS: usize = 64 * 1024;

const TITLE: &str = "title";
const BODY: &str = "body";
const DEFAULT_TITLE: &str = "default_title";
const DEFAULT_BODY: &str = "default_body";

/// The default title of every kind: what kind of message it is, then the event's one line.
const TITLE_DEFAULT: &str = "{% if drill %}[DRILL] {% endif %}{% if reminder %}[REMINDER] {% endif %}\
{% if not firing %}[RESOLVED] {% endif %}{{ summary }}";

/// The default body of kinds whose format has no separate place for the facts (webhook text,
/// e-mail, PagerDuty's details, Alertmanager's description): the detail, then one fact per line.
const BODY_FULL: &str = "{% if detail %}{{ detail }}\n\n{% endif %}\
Target: {{ target }}\n\
{%- if service %}\nService: {{ service }}{% endif %}\n\
{%- if incident %}\nIncident: {{ incident }}{% endif %}\n\
Severity: {{ severity }}\n\
Status: {{ status }}\n\
Time: {{ at }}\n\
{%- if drill %}\n\nThis is a drill sent by statusmon: no action is needed.{% endif %}\n\
{%- if reminder %}\n\nA reminder: this alert is still firing.{% endif %}";

/// The default body of kinds that show the facts themselves (Slack's context line, the Teams
/// fact set): just the detail, so the facts are not said twice.
const BODY_SHORT: &str = "{{ detail }}\
{%- if drill %}\nThis is a drill sent by statusmon: no action is needed.{% endif %}";

/// The compiled templates of one sink: its kind's defaults and the user's overrides.
pub struct Templates {
    env: Environment<'static>,
    title_override: bool,
    body_override: bool,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("title_override", &self.title_override)
            .field("body_override", &self.body_override)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Compiles the defaults of `kind` and the overrides given. The error names the template
    /// (`title_template` or `body_template`) and the reason, with its line.
    pub fn new(kind: SinkKind, title: Option<&str>, body: Option<&str>) -> Result<Self, String> {
        let mut env = environment();
        let default_body = match kind {
            SinkKind::Slack | SinkKind::Teams => BODY_SHORT,
            SinkKind::Webhook | SinkKind::PagerDuty | SinkKind::Alertmanager | SinkKind::Email => {
                BODY_FULL
            }
        };
        // The defaults are ours and compile; an error here is a bug, reported like any other.
        env.add_template_owned(DEFAULT_TITLE, TITLE_DEFAULT)
            .map_err(|e| format!("default title template: {e}"))?;
        env.add_template_owned(DEFAULT_BODY, default_body)
            .map_err(|e| format!("default body template: {e}"))?;
        if let Some(title) = title {
            env.add_template_owned(TITLE, title.to_string())
                .map_err(|e| format!("title_template: {e}"))?;
        }
        if let Some(body) = body {
            env.add_template_owned(BODY, body.to_string())
                .map_err(|e| format!("body_template: {e}"))?;
        }
        Ok(Templates {
            env,
            title_override: title.is_some(),
            body_override: body.is_some(),
        })
    }

    /// The title (one line) and body for `event`. Never fails: an override that errors falls
    /// back to the default's output (logged), and if even that failed the event's own summary
    /// and detail are used.
    pub fn render(&self, event: &AlertEvent) -> (String, String) {
        let ctx = event_context(event);
        let title = self.render_one(TITLE, DEFAULT_TITLE, self.title_override, &ctx, event);
        let body = self.render_one(BODY, DEFAULT_BODY, self.body_override, &ctx, event);
        (
            truncate_chars(&one_line(&title), MAX_TITLE_CHARS),
            truncate_chars(&body, MAX_BODY_CHARS),
        )
    }

    /// Renders the override when there is one, else (or when it fails) the default.
    fn render_one(
        &self,
        name: &str,
        default: &str,
        has_override: bool,
        ctx: &Value,
        event: &AlertEvent,
    ) -> String {
        if has_override {
            match self.try_render(name, ctx) {
                Ok(text) => return text,
                Err(e) => tracing::warn!(
                    template = name,
                    alert = %event.alert,
                    error = %e,
                    "alert template failed; the default is used instead"
                ),
            }
        }
        match self.try_render(default, ctx) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(template = default, error = %e, "default alert template failed");
                if name == TITLE {
                    event.summary.clone()
                } else {
                    event.detail.clone()
                }
            }
        }
    }

    fn try_render(&self, name: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// Checks user templates as configuration validation does: each compiles, and renders against a
/// sample event with every field set (which catches undefined names such as `{{ sumary }}`, and
/// filters used on the wrong type). The error says which template and why.
pub fn check(title: Option<&str>, body: Option<&str>) -> Result<(), String> {
    let templates = Templates::new(SinkKind::Webhook, title, body)?;
    let sample = sample_event();
    let ctx = event_context(&sample);
    for (name, key, present) in [
        (TITLE, "title_template", templates.title_override),
        (BODY, "body_template", templates.body_override),
    ] {
        if present {
            templates
                .try_render(name, &ctx)
                .map_err(|e| format!("{key}: {e}"))?;
        }
    }
    Ok(())
}

/// The template context of an event (see the module's documentation).
fn event_context(event: &AlertEvent) -> Value {
    context! {
        status => if event.firing { "firing" } else { "resolved" },
        drill => event.purpose == Purpose::Drill,
        reminder => event.purpose == Purpose::Reminder,
        at => event.at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ..Value::from_serialize(event)
    }
}

/// The instructions one rendering may run: far above what a message template needs (the
/// defaults use a few dozen), far below what a runaway loop in a user template would; beyond it
/// the render fails and the sink's default is used.
const FUEL: u64 = 100_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // Not HTML: each sink escapes for its own format.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// An event with every field set, for [`check`].
fn sample_event() -> AlertEvent {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    AlertEvent {
        alert: "contoso/incident/EX123456".to_string(),
        idempotency_key: "contoso/incident/EX123456#incident_new@2026-01-01T12:00:00.000Z"
            .to_string(),
        kind: EventKind::IncidentNew,
        target: "contoso".to_string(),
        service: Some("Exchange".to_string()),
        incident: Some("EX123456".to_string()),
        severity: Severity::Critical,
        firing: true,
        summary: "Contoso: incident EX123456 new: Users can't send mail".to_string(),
        detail: "status investigating; from m365-public".to_string(),
        at,
        purpose: Purpose::Transition,
    }
}

/// `text` with line breaks as spaces, trimmed: a title is one line.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters of `text`, the last one `…` when it was cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some(_) => {
            let keep: String = text.chars().take(max - 1).collect();
            format!("{keep}…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_title_prefixes() {
        let templates = Templates::new(SinkKind::Email, None, None).expect("defaults compile");
        let mut event = sample_event();
        assert_eq!(templates.render(&event).0, event.summary);
        event.firing = false;
        assert!(templates.render(&event).0.starts_with("[RESOLVED] "));
        event.purpose = Purpose::Drill;
        assert!(
            templates
                .render(&event)
                .0
                .starts_with("[DRILL] [RESOLVED] ")
        );
        event.firing = true;
        event.purpose = Purpose::Reminder;
        assert!(templates.render(&event).0.starts_with("[REMINDER] "));
    }

    #[test]
    fn default_body_lists_facts() {
        let templates = Templates::new(SinkKind::Email, None, None).expect("defaults compile");
        let event = sample_event();
        let (_, body) = templates.render(&event);
        assert_eq!(
            body,
            "status investigating; from m365-public\n\nTarget: contoso\nService: Exchange\n\
             Incident: EX123456\nSeverity: critical\nStatus: firing\nTime: 2026-01-01T12:00:00Z"
        );
        let mut event = event;
        event.service = None;
        event.incident = None;
        event.purpose = Purpose::Drill;
        let (_, body) = templates.render(&event);
        assert!(!body.contains("Service:"), "{body}");
        assert!(body.ends_with("no action is needed."), "{body}");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abcd", 4), "abcd");
        assert_eq!(truncate_chars("ééé", 2), "é…");
    }
}
