//! An Atom feed (RFC 4287) of the account's posts, as a bridge would serve it:
//! `GET /feeds/msft365status.atom` (`application/atom+xml`), one `<entry>` per visible post,
//! newest first, each with the X post's address as `id` and `link`, the post's text as `title`,
//! `published`/`updated` at the post's time and `content type="html"` (a paragraph with
//! links). Feeds carry no reply links, so a follow-up without an id is on its own. It plays the
//! scenario's posts in every social scenario (the error scenarios are the APIs').

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use super::{Piece, SIM_FEED_PATH, SIM_X_USERNAME, base_url, html_escape, pieces, x::x_id};
use crate::simulator::SimState;
use crate::simulator::status_site::xml_text;

pub(super) fn routes() -> Router<SimState> {
    Router::new().route(SIM_FEED_PATH, get(feed))
}

fn atom_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The post as HTML: one paragraph, links as anchors.
fn html(text: &str) -> String {
    let mut out = String::from("<p>");
    for piece in pieces(text) {
        match piece {
            Piece::Text(plain) => out.push_str(&html_escape(plain)),
            Piece::Link(link) => {
                let link = html_escape(link);
                out.push_str(&format!("<a href=\"{link}\">{link}</a>"));
            }
        }
    }
    out.push_str("</p>");
    out
}

async fn feed(State(state): State<SimState>, headers: HeaderMap) -> Response {
    let snapshot = state.social().snapshot();
    let base = base_url(&headers);
    let profile = format!("https://x.com/{SIM_X_USERNAME}");
    let updated = snapshot
        .posts
        .last()
        .map_or(snapshot.created, |post| post.at);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    xml.push_str(&format!(
        "  <title>Microsoft 365 Status (@{SIM_X_USERNAME})</title>\n\
         \x20 <subtitle>Posts by @{SIM_X_USERNAME}</subtitle>\n\
         \x20 <link href=\"{}{SIM_FEED_PATH}\" rel=\"self\" type=\"application/atom+xml\"/>\n\
         \x20 <link href=\"{profile}\" rel=\"alternate\" type=\"text/html\"/>\n\
         \x20 <id>{}{SIM_FEED_PATH}</id>\n\
         \x20 <updated>{}</updated>\n\
         \x20 <author>\n    <name>Microsoft 365 Status</name>\n    <uri>{profile}</uri>\n  </author>\n",
        xml_text(&base),
        xml_text(&base),
        atom_time(updated),
    ));
    for post in snapshot.posts.iter().rev() {
        let address = format!("{profile}/status/{}", x_id(post));
        xml.push_str(&format!(
            "  <entry>\n\
             \x20   <title>{}</title>\n\
             \x20   <link href=\"{address}\" rel=\"alternate\"/>\n\
             \x20   <id>{address}</id>\n\
             \x20   <published>{at}</published>\n\
             \x20   <updated>{at}</updated>\n\
             \x20   <content type=\"html\">{}</content>\n\
             \x20 </entry>\n",
            xml_text(&post.text),
            xml_text(&html(&post.text)),
            at = atom_time(post.at),
        ));
    }
    xml.push_str("</feed>\n");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        xml,
    )
        .into_response()
}
