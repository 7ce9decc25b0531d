//! The post classifier: one free-text status post in, a lifecycle stage and incident ids out.
//!
//! Posts are read the way a person reads them, by ordered phrase rules (first match wins, see
//! [`RULES`]). Two things make plain keyword matching wrong on @MSFT365Status, and the rules are
//! built around them (`reference/social.md` §2):
//!
//! - "resolved" appears in posts that are still open: "we're forecasting that the issue will be
//!   resolved within the next 3 hours", "until impact has been resolved for all services",
//!   "monitoring to confirm the issue is resolved". A post only counts as resolved on a
//!   past/present resolution phrase ("impact has been remediated", "the issue is resolved") with no
//!   future-fix marker anywhere in the post, no condition ("to confirm", "once", "until", "if")
//!   before it and no partial scope ("the majority of", "some users", "residual").
//! - "We've confirmed" and "identified" are used for scope and cause, not for the end.
//!
//! Matching runs on words, not bytes: the text is lowercased, curly and mangled quotes are
//! straightened (`We’re`, `We"re` → `we're`), contractions are expanded (`we're` → `we are`) and
//! sentence ends are kept as `.` tokens so a condition in one sentence does not leak into the next.
//! The function is pure and total: any string gives a classification, never a panic.

use std::fmt;

use serde::Serialize;

use crate::model::incident_ids;

/// Where an incident is in its lifecycle, as far as one post (or a thread's latest post) says.
///
/// `Unknown` is not a stage Microsoft uses: it means no rule matched, or a thread went quiet while
/// open. It is never shown as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Impact reported, cause not known yet.
    Investigating,
    /// Cause, scope or mitigation named; no recovery yet.
    Identified,
    /// A fix or mitigation is taking effect; some users still impacted.
    Recovering,
    /// Impact is over, said in the past or present tense without conditions.
    Resolved,
    /// Not an enterprise incident: a hand-off to consumer support.
    Informational,
    /// No rule matched, or an open thread went quiet.
    Unknown,
}

impl Stage {
    /// The lowercase name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Investigating => "investigating",
            Stage::Identified => "identified",
            Stage::Recovering => "recovering",
            Stage::Resolved => "resolved",
            Stage::Informational => "informational",
            Stage::Unknown => "unknown",
        }
    }

    /// The default label in the hand-labelling vocabulary of the shared fixture file
    /// (`start | update | recovering | resolved | consumer-redirect`), for when only a stage is
    /// known (e.g. a thread's state).
    ///
    /// A single post's [`Classification::label`] is finer: an `investigating` post that continues
    /// an investigation ("we're still investigating", "we're reviewing telemetry") is an `update`,
    /// not a `start`. Prefer that label when a post is at hand.
    pub fn fixture_label(self) -> FixtureLabel {
        match self {
            Stage::Investigating => FixtureLabel::Start,
            Stage::Identified | Stage::Unknown => FixtureLabel::Update,
            Stage::Recovering => FixtureLabel::Recovering,
            Stage::Resolved => FixtureLabel::Resolved,
            Stage::Informational => FixtureLabel::ConsumerRedirect,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five hand labels of `../shared/fixtures/social/msft365status-posts.txt`, so our output can
/// be compared with a person's labelling in that vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixtureLabel {
    /// The first post of an incident.
    Start,
    /// Any later post before recovery: scope, cause, mitigation in progress, ETAs.
    Update,
    /// Recovery under way.
    Recovering,
    /// Impact over.
    Resolved,
    /// "No enterprise impact" / consumer hand-off.
    ConsumerRedirect,
}

impl FixtureLabel {
    /// The label as written in the fixture header.
    pub fn as_str(self) -> &'static str {
        match self {
            FixtureLabel::Start => "start",
            FixtureLabel::Update => "update",
            FixtureLabel::Recovering => "recovering",
            FixtureLabel::Resolved => "resolved",
            FixtureLabel::ConsumerRedirect => "consumer-redirect",
        }
    }

    /// Parses a label as written in the fixture header.
    pub fn parse(label: &str) -> Option<FixtureLabel> {
        [
            FixtureLabel::Start,
            FixtureLabel::Update,
            FixtureLabel::Recovering,
            FixtureLabel::Resolved,
            FixtureLabel::ConsumerRedirect,
        ]
        .into_iter()
        .find(|l| l.as_str() == label.trim())
    }
}

impl fmt::Display for FixtureLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one post says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// The lifecycle stage.
    pub stage: Stage,
    /// The same post in the fixture's hand-labelling vocabulary (depends on the rule, not only
    /// on the stage: see [`Stage::fixture_label`]).
    pub label: FixtureLabel,
    /// Microsoft incident ids in the text (`[A-Z]{2}\d{6,8}`), in order of appearance, once each.
    /// Empty for most follow-ups: they inherit their thread's ids (see [`super::thread`]).
    pub incident_ids: Vec<String>,
    /// The stable name of the rule that fired (one of [`RULES`]), so users tuning rules can see
    /// why.
    pub rule: &'static str,
    /// The post speaks of a fix or resolution still to come (ETA, "will be resolved", "expect",
    /// "forecasting", "until … resolved", "next update", "by 15:00"). Such a post is never
    /// [`Stage::Resolved`].
    pub future_fix: bool,
}

/// Every rule, in the order they are tried, with what it looks for. The first that matches wins.
pub const RULES: &[(&str, &str)] = &[
    (
        CONSUMER_HANDOFF,
        "informational: \"no enterprise impact\", consumer-only scope, \"follow @MicrosoftHelps\"",
    ),
    (
        RESOLVED,
        "resolved: \"has been remediated/resolved/mitigated/restored\", \"is resolved\", \"have recovered\" … with no future-fix marker, no condition before it and no partial scope",
    ),
    (
        PARTIALLY_RESOLVED,
        "recovering: a resolution phrase limited to part of the scope (\"the majority of services are now recovered\")",
    ),
    (
        RECOVERING,
        "recovering: \"recovering\", \"signs of recovery\", \"improvement\", \"rolled back\", \"have reverted\", \"fix has been deployed\", \"returning to a healthy state\"",
    ),
    (
        OPENING_INVESTIGATION,
        "investigating (start): the post opens with \"we're investigating\", \"we've received reports\", \"we're aware\", \"users may be\"",
    ),
    (
        IDENTIFIED,
        "identified (update): cause, scope or mitigation under way: \"identified\", \"determined\", \"isolated\", \"recent change\", \"fix\", \"reverting\", \"rerouting\", \"mitigation\", \"delays\"",
    ),
    (
        EXPECTED_FIX,
        "identified (update): an ETA or expected fix with no other stage word (\"we're forecasting that the issue will be resolved …\")",
    ),
    (
        CONTINUED_INVESTIGATION,
        "investigating (update): \"continue to investigate\", \"still investigating\"",
    ),
    (
        INVESTIGATION_PHRASE,
        "investigating (start): \"investigating an issue\", \"investigating reports\", \"received reports\", \"aware of\", \"looking into\"",
    ),
    (
        INVESTIGATION_PROGRESS,
        "investigating (update): \"reviewing\", \"analyzing\", \"isolate\", \"troubleshooting\", \"investigation\"",
    ),
    (
        IMPACT_DESCRIBED,
        "investigating (start): impact described without any stage word: \"unable\", \"impacting\", \"issue\", \"degraded\"",
    ),
    (NO_MATCH, "unknown: nothing above matched"),
];

const CONSUMER_HANDOFF: &str = "consumer-handoff";
const RESOLVED: &str = "resolved";
const PARTIALLY_RESOLVED: &str = "partially-resolved";
const RECOVERING: &str = "recovering";
const OPENING_INVESTIGATION: &str = "opening-investigation";
const IDENTIFIED: &str = "identified";
const EXPECTED_FIX: &str = "expected-fix";
const CONTINUED_INVESTIGATION: &str = "continued-investigation";
const INVESTIGATION_PHRASE: &str = "investigation-phrase";
const INVESTIGATION_PROGRESS: &str = "investigation-progress";
const IMPACT_DESCRIBED: &str = "impact-described";
const NO_MATCH: &str = "no-match";

// Pattern syntax: words separated by spaces, matched against whole words of the normalized text
// (contractions expanded: "we're" is "we are"). A word ending in `*` matches any word with that
// prefix; `…` skips up to GAP words within the same sentence.

const CONSUMER_PATTERNS: &[&str] = &[
    "no enterprise impact",
    "no impact to enterprise",
    "no impact for enterprise",
    "not impacting enterprise",
    "not affecting enterprise",
    "does not affect enterprise",
    "does not impact enterprise",
    "enterprise customers are not",
    "enterprise users are not",
    "follow @*",
    "consumer* … follow",
    "only affects consumer*",
    "only impacts consumer*",
    "limited to consumer*",
    "personal microsoft account* … @*",
    "@microsofthelps",
    "no impact … enterprise",
    "no impact … business",
    "no impact … commercial",
    "no impact … work or school",
    "not impact enterprise",
    "not affect enterprise",
    "updates … @*",
    "teams free",
    "free users",
];

/// Phrases saying the impact is over. Tense matters: "been resolved", not "be resolved".
const RESOLUTION_PATTERNS: &[&str] = &[
    "been remediated",
    "is remediated",
    "is now remediated",
    "remediated the impact",
    "remediated the issue",
    "been resolved",
    "is resolved",
    "are resolved",
    "is now resolved",
    "are now resolved",
    "resolved the issue",
    "resolved this issue",
    "been mitigated",
    "is mitigated",
    "is now mitigated",
    "has mitigated",
    "have mitigated",
    "mitigated the impact",
    "mitigated the issue",
    "been fixed",
    "is fixed",
    "been restored",
    "been fully restored",
    "is restored",
    "are restored",
    "is now restored",
    "are now restored",
    "fully restored",
    "has recovered",
    "have recovered",
    "has fully recovered",
    "have fully recovered",
    "fully recovered",
    "is now recovered",
    "are now recovered",
    "returned to a healthy state",
    "in a healthy state",
    "returned to normal",
    "back to normal",
    "operating normally",
    "functioning normally",
    "working as expected",
    "processing as expected",
    "performing as expected",
    "now able to",
    "now be able to",
    "been addressed",
    "fixed the issue",
    "no longer impacted",
    "no longer affected",
    "no longer experiencing",
];

/// A fix or resolution still to come. Any of these anywhere in a post rules out `resolved`.
const FUTURE_PATTERNS: &[&str] = &[
    "be resolved",
    "be remediated",
    "be mitigated",
    "be restored",
    "be fixed",
    "be recovered",
    "be fully",
    "be complete*",
    "will resolve",
    "will remediate",
    "will mitigate",
    "will restore",
    "will recover",
    "will fix",
    "full restoration",
    "forecast*",
    "eta",
    "next update",
    "within the next",
    "in the next",
    "over the next",
    "timeline",
    "until … resolved",
    "until … remediated",
    "until … mitigated",
    "until … restored",
    "until … recovered",
    "until … complete*",
    "until … fixed",
];

/// Words after which a resolution phrase is not a statement but a condition or a goal
/// ("monitoring to confirm that the issue is resolved", "once impact has been remediated").
const CONDITIONS: &[&str] = &[
    "to confirm",
    "to ensure",
    "to verify",
    "to validate",
    "to determine",
    "to see",
    "to check",
    "to make sure",
    "once",
    "until",
    "if",
    "whether",
    "unless",
    "when",
    "before",
];

/// Scope that makes a resolution partial anywhere in the post.
const PARTIAL_PATTERNS: &[&str] = &[
    "majority",
    "most users",
    "most customers",
    "most tenants",
    "most of",
    "most impacted",
    "most affected",
    "most services",
    "most regions",
    "some users",
    "some customers",
    "some tenants",
    "some services",
    "some regions",
    "subset",
    "partial*",
    "half",
    "portion",
    "continuing to address",
    "continue to address",
    "continuing to see",
    "still seeing",
    "still experiencing",
    "still impacted",
    "still affected",
];

/// Scope that makes a resolution partial unless it is the subject of the resolution itself
/// ("residual impact has been remediated" is the end).
const REMAINDER_WORDS: &[&str] = &["residual", "remaining"];

const RECOVERING_PATTERNS: &[&str] = &[
    "recovering",
    "recovered",
    "signs of recovery",
    "seeing recovery",
    "see recovery",
    "observing recovery",
    "observe recovery",
    "confirm recovery",
    "full recovery",
    "recovery is progressing",
    "recovery progress*",
    "continuing to recover",
    "continue to recover",
    "continues to recover",
    "begun to recover",
    "begin to recover",
    "started to recover",
    "start to recover",
    "returning to a healthy state",
    "returning to normal",
    "restored",
    "restoring",
    "improvement*",
    "improving",
    "improved",
    "continues to improve",
    "continue to improve",
    "positive trend",
    "availability is at",
    "availability has increased",
    "reduction in",
    "decrease in",
    "decline in",
    "drop in error*",
    "success* … climbing",
    "success* … rising",
    "success* … increasing",
    "availability … climbing",
    "availability … rising",
    "availability … increasing",
    "drop in failure*",
    "increase in success*",
    "increase in … successful",
    "increase in availability",
    "back online",
    "coming back",
    "draining",
    "backlog",
    "catching up",
    "subsid*",
    "stabiliz*",
    "provided relief",
    "provides relief",
    "restart* … completed",
    "mitigation* … completed",
    "fix … completed",
    "deployed a fix",
    "deployed the fix",
    "see relief",
    "seeing relief",
    "experience relief",
    "experiencing relief",
    "rolled back",
    "have reverted",
    "has reverted",
    "had reverted",
    "reverted the",
    "reverted a",
    "completed the revert*",
    "completed the rollback",
    "rollback has completed",
    "rollback completes",
    "rollback is complete",
    "have deployed",
    "has been deployed",
    "has deployed",
    "fix has been applied",
    "applied a fix",
    "applied the fix",
    "implemented a fix",
    "implemented the fix",
    "has reached",
    "have reached",
    "deployment has completed",
    "completed the deployment",
    "completed deployment",
    "deployment is complete",
];

/// The first words of a post that opens an incident.
const OPENING_PATTERNS: &[&str] = &[
    "we are investigating",
    "we are currently investigating",
    "we are actively investigating",
    "we are aware",
    "we are looking into",
    "we have received reports",
    "we are receiving reports",
    "we are seeing reports",
    "we are investigating reports",
    "users may be",
    "some users may",
    "users may",
    "investigating",
];

/// Words in an opening sentence that show it continues an earlier post.
const CONTINUATION_WORDS: &[&str] = &[
    "still",
    "further",
    "additional",
    "remaining",
    "residual",
    "continue",
    "continuing",
];

const IDENTIFIED_PATTERNS: &[&str] = &[
    "identified",
    "determined",
    "isolated",
    "traced",
    "pinpointed",
    "found that",
    "root cause",
    "potential cause",
    "likely cause",
    "probable cause",
    "cause of impact",
    "cause of the impact",
    "is the cause",
    "caused by",
    "causing",
    "contributing",
    "resulted in",
    "recent change",
    "recent deployment",
    "recent update",
    "a change",
    "the change",
    "code change",
    "configuration change",
    "fix",
    "fixes",
    "hotfix",
    "revert*",
    "rolling back",
    "roll back",
    "rollback",
    "rerout*",
    "redirect* traffic",
    "direct traffic",
    "failover*",
    "failing over",
    "failed over",
    "fail over",
    "mitigation*",
    "mitigating",
    "potential solution*",
    "facing delays",
    "downstream impact",
];

const CONTINUED_PATTERNS: &[&str] = &[
    "continue to investigate",
    "continuing to investigate",
    "continue investigating",
    "continuing investigating",
    "still investigating",
    "continuing our investigation",
    "continue our investigation",
    "investigation continues",
    "investigation is ongoing",
    "investigating further",
    "further investigat*",
    "expanding our investigation",
];

const INVESTIGATION_PATTERNS: &[&str] = &[
    "investigating an",
    "investigating a",
    "investigating reports",
    "investigating issues",
    "investigating access",
    "received reports",
    "receiving reports",
    "aware of",
    "looking into",
];

const PROGRESS_PATTERNS: &[&str] = &[
    "reviewing",
    "analyzing",
    "analysing",
    "analysis",
    "isolate",
    "troubleshoot*",
    "gathering",
    "collecting",
    "affects users",
    "confirmed that this issue",
    "investigation",
    "working to understand",
    "still seeing",
    "still experiencing",
    "additional teams",
    "engag*",
    "narrow*",
];

const IMPACT_PATTERNS: &[&str] = &[
    "investigat*",
    "unable",
    "impacting",
    "affecting",
    "experiencing",
    "degraded",
    "issue",
    "issues",
    "outage",
    "disruption",
    "problem*",
    "errors",
    "delays",
];

/// The longest `…` gap, in words.
const GAP: usize = 12;

/// Classifies one post. Pure: no I/O, no clock; any text gives an answer.
pub fn classify(text: &str) -> Classification {
    let incident_ids = incident_ids(text);
    let words = Words::new(text);
    let future_fix = words.future_fix();
    let (stage, label, rule) = decide(&words, future_fix);
    Classification {
        stage,
        label,
        incident_ids,
        rule,
        future_fix,
    }
}

fn decide(words: &Words, future_fix: bool) -> (Stage, FixtureLabel, &'static str) {
    if words.any(CONSUMER_PATTERNS) {
        return (
            Stage::Informational,
            FixtureLabel::ConsumerRedirect,
            CONSUMER_HANDOFF,
        );
    }
    if !future_fix {
        match words.resolution() {
            Resolution::Full => return (Stage::Resolved, FixtureLabel::Resolved, RESOLVED),
            Resolution::Partial => {
                return (
                    Stage::Recovering,
                    FixtureLabel::Recovering,
                    PARTIALLY_RESOLVED,
                );
            }
            Resolution::None => {}
        }
    }
    if words.any(RECOVERING_PATTERNS) {
        return (Stage::Recovering, FixtureLabel::Recovering, RECOVERING);
    }
    if words.opens_incident() {
        return (
            Stage::Investigating,
            FixtureLabel::Start,
            OPENING_INVESTIGATION,
        );
    }
    if words.any(IDENTIFIED_PATTERNS) {
        return (Stage::Identified, FixtureLabel::Update, IDENTIFIED);
    }
    if future_fix {
        return (Stage::Identified, FixtureLabel::Update, EXPECTED_FIX);
    }
    if words.any(CONTINUED_PATTERNS) {
        return (
            Stage::Investigating,
            FixtureLabel::Update,
            CONTINUED_INVESTIGATION,
        );
    }
    if words.any(INVESTIGATION_PATTERNS) {
        return (
            Stage::Investigating,
            FixtureLabel::Start,
            INVESTIGATION_PHRASE,
        );
    }
    if words.any(PROGRESS_PATTERNS) {
        return (
            Stage::Investigating,
            FixtureLabel::Update,
            INVESTIGATION_PROGRESS,
        );
    }
    if words.any(IMPACT_PATTERNS) {
        return (Stage::Investigating, FixtureLabel::Start, IMPACT_DESCRIBED);
    }
    (Stage::Unknown, FixtureLabel::Update, NO_MATCH)
}

#[derive(Debug, PartialEq, Eq)]
enum Resolution {
    None,
    Partial,
    Full,
}

/// A post as normalized words; sentence ends are the token `.`.
struct Words {
    tokens: Vec<String>,
}

impl Words {
    fn new(text: &str) -> Words {
        let mut tokens = tokenize(&straighten(text));
        // Replies start with the handles they answer; they are not part of the sentence.
        let handles = tokens.iter().take_while(|t| t.starts_with('@')).count();
        tokens.drain(..handles);
        Words { tokens }
    }

    /// Every match of `pattern`, as (first word, one past the last word).
    fn matches<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
        let parts: Vec<&str> = pattern.split_whitespace().collect();
        (0..self.tokens.len())
            .filter_map(move |start| match_at(&self.tokens, start, &parts).map(|end| (start, end)))
    }

    fn has(&self, pattern: &str) -> bool {
        self.matches(pattern).next().is_some()
    }

    fn any(&self, patterns: &[&str]) -> bool {
        patterns.iter().any(|p| self.has(p))
    }

    /// "as expected" / "as anticipated" describe behaviour, not a forecast.
    fn expectation(&self) -> bool {
        self.tokens.iter().enumerate().any(|(i, t)| {
            let forward = ["expect", "anticipat", "estimat"]
                .iter()
                .any(|p| t.starts_with(p));
            forward && (i == 0 || self.tokens[i - 1] != "as")
        })
    }

    /// "by 15:00", "by Tuesday", "by end of day": a deadline.
    fn deadline(&self) -> bool {
        const WHEN: &[&str] = &[
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
            "tomorrow",
            "tonight",
            "midnight",
            "noon",
            "end",
            "eod",
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ];
        self.tokens.windows(2).any(|w| {
            w[0] == "by"
                && (w[1].starts_with(|c: char| c.is_ascii_digit()) || WHEN.contains(&w[1].as_str()))
        })
    }

    fn future_fix(&self) -> bool {
        self.any(FUTURE_PATTERNS) || self.expectation() || self.deadline()
    }

    /// The start of the sentence holding token `at`.
    fn sentence_start(&self, at: usize) -> usize {
        self.tokens[..at]
            .iter()
            .rposition(|t| t == ".")
            .map_or(0, |p| p + 1)
    }

    /// The end (exclusive) of the sentence holding token `at`.
    fn sentence_end(&self, at: usize) -> usize {
        self.tokens[at..]
            .iter()
            .position(|t| t == ".")
            .map_or(self.tokens.len(), |p| at + p)
    }

    fn resolution(&self) -> Resolution {
        let mut found = Resolution::None;
        for pattern in RESOLUTION_PATTERNS {
            for (start, _end) in self.matches(pattern) {
                let from = self.sentence_start(start);
                let before = &self.tokens[from..start];
                let conditional = CONDITIONS.iter().any(|c| {
                    let parts: Vec<&str> = c.split_whitespace().collect();
                    before.windows(parts.len()).any(|w| w == parts.as_slice())
                });
                let negated = before
                    .iter()
                    .rev()
                    .take(2)
                    .any(|t| matches!(t.as_str(), "not" | "no" | "never" | "yet"));
                if conditional || negated {
                    continue;
                }
                let to = self.sentence_end(start);
                let remainder_elsewhere = self.tokens.iter().enumerate().any(|(i, t)| {
                    REMAINDER_WORDS.contains(&t.as_str()) && !(from..to).contains(&i)
                });
                if self.any(PARTIAL_PATTERNS) || remainder_elsewhere {
                    found = Resolution::Partial;
                } else {
                    return Resolution::Full;
                }
            }
        }
        found
    }

    /// The post's first sentence opens an incident ("We're investigating an issue …") and does
    /// not continue one ("We're still investigating …").
    fn opens_incident(&self) -> bool {
        let end = self.sentence_end(0);
        let first = &self.tokens[..end];
        let opens = OPENING_PATTERNS.iter().any(|p| {
            let parts: Vec<&str> = p.split_whitespace().collect();
            match_at(first, 0, &parts).is_some()
        });
        opens
            && !first
                .iter()
                .any(|t| CONTINUATION_WORDS.contains(&t.as_str()))
    }
}

/// Matches pattern `parts` at `tokens[i..]`; returns one past the last matched token.
fn match_at(tokens: &[String], i: usize, parts: &[&str]) -> Option<usize> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(i);
    };
    if *first == "…" {
        for skip in 0..=GAP {
            let j = i + skip;
            if j > tokens.len() || (skip > 0 && tokens[j - 1] == ".") {
                break;
            }
            if let Some(end) = match_at(tokens, j, rest) {
                return Some(end);
            }
        }
        return None;
    }
    let token = tokens.get(i)?;
    let hit = match first.strip_suffix('*') {
        Some(prefix) => token != "." && token.starts_with(prefix),
        None => token == first,
    };
    if hit {
        match_at(tokens, i + 1, rest)
    } else {
        None
    }
}

/// Lowercases and straightens quotes: curly apostrophes and HTML apostrophe entities become `'`,
/// and a double quote between two letters (a page's mangling of `We’re` into `We"re`) too.
fn straighten(text: &str) -> String {
    let text = text
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&apos;", "'")
        .replace("&rsquo;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let c = match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{2032}' | '`' | '\u{00B4}' => '\'',
            '"' | '\u{201C}' | '\u{201D}' => {
                let letter_before = i > 0 && chars[i - 1].is_alphabetic();
                let letter_after = chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if letter_before && letter_after {
                    '\''
                } else {
                    '"'
                }
            }
            other => other,
        };
        out.extend(c.to_lowercase());
    }
    out
}

/// Splits normalized text into words and `.` sentence ends, expanding contractions.
fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '\'' | '@' | '_' | '%');
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        // "99.9", "3:00", "t.co", "1,000" stay one word.
        let joins = matches!(c, '.' | ':' | ',')
            && !word.is_empty()
            && prev.is_some_and(char::is_alphanumeric)
            && next.is_some_and(char::is_alphanumeric);
        if is_word(c) || joins {
            word.push(c);
            continue;
        }
        push_word(&mut tokens, &mut word);
        let ends_sentence = matches!(c, '.' | '!' | '?' | ';' | '\u{2026}');
        if ends_sentence && tokens.last().is_some_and(|t| t != ".") {
            tokens.push(".".to_string());
        }
    }
    push_word(&mut tokens, &mut word);
    tokens
}

fn push_word(tokens: &mut Vec<String>, word: &mut String) {
    let taken = std::mem::take(word);
    let trimmed = taken.trim_matches('\'');
    if trimmed.is_empty() {
        return;
    }
    let expansions: &[(&str, &str)] = &[
        ("'re", "are"),
        ("'ve", "have"),
        ("'ll", "will"),
        ("'m", "am"),
        ("'d", "would"),
    ];
    match trimmed {
        "can't" | "cannot" => return tokens.extend(["can".into(), "not".into()]),
        "won't" => return tokens.extend(["will".into(), "not".into()]),
        "it's" | "that's" | "there's" | "what's" | "here's" => {
            let stem = trimmed.trim_end_matches("'s");
            return tokens.extend([stem.to_string(), "is".into()]);
        }
        _ => {}
    }
    if let Some(stem) = trimmed.strip_suffix("n't") {
        return tokens.extend([stem.to_string(), "not".into()]);
    }
    for (suffix, full) in expansions {
        if let Some(stem) = trimmed.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return tokens.extend([stem.to_string(), (*full).to_string()]);
        }
    }
    let stem = trimmed.strip_suffix("'s").unwrap_or(trimmed);
    tokens.push(stem.to_string());
}

#[cfg(test)]
pub(super) fn words_for_test(text: &str) -> Vec<String> {
    Words::new(text).tokens
}
