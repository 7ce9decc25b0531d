//! Vendor HTML to plain text. Upstream messages are HTML we did not write: we keep their words for
//! display and never their markup, links or scripts.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// The longest text we keep from one upstream message.
pub const MAX_TEXT: usize = 4000;

/// The most HTML we parse from one upstream message. Parsing time grows with the square of the
/// nesting depth (8,000 nested `<div>`s took 0.1 s in a release build, and a 1 MiB body of them
/// would take about a minute), so a hostile or broken upstream could stall a probe; 32 KiB is
/// far more markup than [`MAX_TEXT`] bytes of text need.
pub const MAX_HTML: usize = 32 * 1024;

/// The visible text of an HTML fragment, whitespace collapsed, at most [`MAX_TEXT`] bytes.
/// Script and style contents are dropped. Only the first [`MAX_HTML`] bytes are read.
pub fn html_to_text(html: &str) -> String {
    let html = &html[..html.floor_char_boundary(MAX_HTML)];
    let fragment = Html::parse_fragment(html);
    let mut raw = String::new();
    let mut hidden_depth = 0usize;
    for edge in fragment.root_element().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) if is_hidden(e.name()) => hidden_depth += 1,
                Node::Element(e) if e.name() == "br" => raw.push(' '),
                Node::Text(t) if hidden_depth == 0 => raw.push_str(&t.text),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(e) = node.value() {
                    if is_hidden(e.name()) {
                        hidden_depth = hidden_depth.saturating_sub(1);
                    } else if is_block(e.name()) {
                        raw.push(' ');
                    }
                }
            }
        }
    }
    let mut out = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > MAX_TEXT {
        out.truncate(out.floor_char_boundary(MAX_TEXT));
        out.push('…');
    }
    out
}

/// At most `max` characters of `text`, with `…` when something was cut: for vendor words and
/// messages echoed in our own messages, so one absurd upstream value cannot flood a line.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn is_hidden(name: &str) -> bool {
    matches!(name, "script" | "style" | "template" | "noscript")
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "li"
            | "ul"
            | "ol"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "section"
            | "article"
            | "blockquote"
            | "pre"
            | "hr"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_words_drops_markup_and_scripts() {
        let html = "<div>Users may be unable&nbsp;to <a href=\"https://x\">sign in</a>.</div>\
                    <script>alert(1)</script><p>More info</p>";
        assert_eq!(
            html_to_text(html),
            "Users may be unable to sign in. More info"
        );
    }

    #[test]
    fn shorten_counts_characters_and_marks_the_cut() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }

    #[test]
    fn reads_only_the_first_max_html_bytes_of_a_hostile_body() {
        // A megabyte of nesting would stall the parser for about a minute; only the head is read.
        let hostile = format!(
            "{}head{}tail",
            "<div>".repeat(1000),
            "<div>".repeat(200_000)
        );
        assert_eq!(html_to_text(&hostile), "head");
        let multibyte = "é".repeat(MAX_HTML);
        assert!(html_to_text(&multibyte).starts_with('é'));
    }

    #[test]
    fn caps_length_on_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let text = html_to_text(&long);
        assert!(text.len() <= MAX_TEXT + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }
}
