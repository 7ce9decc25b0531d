//! Thread grouping and thread state: posts become incidents.
//!
//! @MSFT365Status posts follow-ups as replies to the first post, and most follow-ups carry no
//! incident id ("We’ve identified a potential networking issue …"). So ids belong to threads, not
//! posts: every post of a thread inherits every id the thread mentions, and one thread may carry
//! several (EX571516 and MO571683 in June 2023). A post outside any thread is its own incident.
//!
//! A thread's state is its latest post's stage, with one exception: an open thread that has been
//! quiet for too long is `unknown`. Silence never means resolved — many incidents never get a
//! "resolved" post, and the account only covers "certain events".

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::classify::{Classification, Stage, classify};
use crate::model::SharedText;

/// One social post, as any social channel (X, Mastodon, Bluesky, RSS) hands it over: plain text
/// (HTML already stripped) and how it hangs in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The post's id on its network.
    pub id: String,
    /// The post's plain text (shared with the incidents observed from it).
    pub text: SharedText,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// The post it replies to, if any (X `referenced_tweets[replied_to]`, Mastodon
    /// `in_reply_to_id`).
    pub reply_to: Option<String>,
    /// The conversation's root post, when the network says so (X `conversation_id`).
    pub root: Option<String>,
}

/// The posts of one conversation, which together describe one incident (or several, when the
/// thread names several ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// The id of the conversation's root post (which may itself be missing from the posts, e.g.
    /// when it is older than the page fetched).
    pub root: String,
    /// The thread's posts, oldest first.
    pub posts: Vec<Post>,
    /// Every incident id any post of the thread mentions, in order of first appearance. Every
    /// post of the thread belongs to all of them.
    pub incident_ids: Vec<String>,
}

impl Thread {
    /// Each post with its own classification, oldest first, the incident ids replaced by the
    /// thread's (so a follow-up without an id still names its incident).
    pub fn classified(&self) -> Vec<(&Post, Classification)> {
        self.posts
            .iter()
            .map(|post| {
                let mut c = classify(&post.text);
                c.incident_ids = self.incident_ids.clone();
                (post, c)
            })
            .collect()
    }

    /// The stage of the latest post any rule understood; `None` when no post was understood.
    pub fn latest_stage(&self) -> Option<Stage> {
        self.posts
            .iter()
            .rev()
            .map(|p| classify(&p.text).stage)
            .find(|s| *s != Stage::Unknown)
    }

    /// When the thread last said anything.
    pub fn last_post_at(&self) -> Option<DateTime<Utc>> {
        self.posts.iter().map(|p| p.created_at).max()
    }
}

/// Groups posts into threads: a post's thread is its `root` when given, else the top of its
/// `reply_to` chain among the posts (or the first parent that is not among them), else itself.
///
/// Threads come out ordered by their first post; posts within a thread by time (ties keep input
/// order). Reply cycles, which no network should send, are one thread rooted at the least id in the
/// cycle.
pub fn group(posts: &[Post]) -> Vec<Thread> {
    let by_id: HashMap<&str, &Post> = posts.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut order: Vec<String> = Vec::new();
    let mut members: HashMap<String, Vec<Post>> = HashMap::new();
    for post in posts {
        let root = root_of(post, &by_id);
        if !members.contains_key(&root) {
            order.push(root.clone());
        }
        members.entry(root).or_default().push(post.clone());
    }
    let mut threads: Vec<Thread> = order
        .into_iter()
        .map(|root| {
            let mut posts = members.remove(&root).unwrap_or_default();
            posts.sort_by_key(|p| p.created_at);
            let mut incident_ids: Vec<String> = Vec::new();
            for post in &posts {
                for id in crate::model::incident_ids(&post.text) {
                    if !incident_ids.contains(&id) {
                        incident_ids.push(id);
                    }
                }
            }
            Thread {
                root,
                posts,
                incident_ids,
            }
        })
        .collect();
    threads.sort_by_key(|t| t.posts.first().map(|p| p.created_at));
    threads
}

fn root_of(post: &Post, by_id: &HashMap<&str, &Post>) -> String {
    if let Some(root) = &post.root {
        return root.clone();
    }
    let mut current = post;
    let mut seen = vec![post.id.as_str()];
    while let Some(parent_id) = &current.reply_to {
        match by_id.get(parent_id.as_str()) {
            Some(parent) if !seen.contains(&parent.id.as_str()) => {
                if let Some(root) = &parent.root {
                    return root.clone();
                }
                seen.push(parent.id.as_str());
                current = parent;
            }
            // A cycle: every member picks the same root, the least id in it.
            Some(_) => return seen.into_iter().min().unwrap_or(&post.id).to_string(),
            None => return parent_id.clone(),
        }
    }
    current.id.clone()
}

/// The thread's stage at `now`: the stage of its latest post that any rule understood (a post
/// no rule matched, e.g. a bare link, says nothing about the stage). A thread that is not
/// resolved or informational and has been quiet longer than `quiet_after` is
/// [`Stage::Unknown`]: it may have ended, or not; it is never taken for resolved.
pub fn thread_state(thread: &Thread, now: DateTime<Utc>, quiet_after: Duration) -> Stage {
    stage_at(
        thread.latest_stage(),
        thread.last_post_at(),
        now,
        quiet_after,
    )
}

/// [`thread_state`] from a thread's [`Thread::latest_stage`] and last post time, for callers that
/// already hold them (classifying a thread's posts again for every question is wasted work).
pub fn stage_at(
    latest: Option<Stage>,
    last_post_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    quiet_after: Duration,
) -> Stage {
    let Some(stage) = latest else {
        return Stage::Unknown;
    };
    if matches!(stage, Stage::Resolved | Stage::Informational) {
        return stage;
    }
    let quiet = match (last_post_at, TimeDelta::from_std(quiet_after)) {
        (Some(last), Ok(limit)) => now.signed_duration_since(last) > limit,
        // A limit too large for the calendar never expires; a thread without posts has no stage.
        (Some(_), Err(_)) => false,
        (None, _) => true,
    };
    if quiet { Stage::Unknown } else { stage }
}
