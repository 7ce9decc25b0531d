//! Parse cost of a full Graph issues page (1,000 issues, the most `Prefer: odata.maxpagesize`
//! allows) and of turning it into an observation. Run: `cargo bench -p statusmon-channels`.
//! Figures go into BENCHMARKS.md.

use chrono::{TimeZone, Utc};
use statusmon_channels::graph::{Collected, assemble, parse_issues_page, parse_overviews};

fn main() {
    divan::main();
}

const SERVICES: [(&str, &str); 10] = [
    ("Exchange", "Exchange Online"),
    ("SharePoint", "SharePoint Online"),
    ("microsoftteams", "Microsoft Teams"),
    ("OSDPPlatform", "Microsoft 365 suite"),
    ("OrgLiveID", "Identity Service"),
    ("Forms", "Microsoft Forms"),
    ("OneDriveForBusiness", "OneDrive for Business"),
    ("Planner", "Planner"),
    ("PowerBIcom", "Power BI"),
    ("Intune", "Microsoft Intune"),
];

/// A `healthOverviews` answer for the services above, one of them degraded.
fn overviews() -> Vec<u8> {
    let value: Vec<serde_json::Value> = SERVICES
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            let status = if i == 0 {
                "serviceDegradation"
            } else {
                "serviceOperational"
            };
            serde_json::json!({ "service": name, "status": status, "id": id })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/serviceAnnouncement/healthOverviews",
        "value": value,
    }))
    .expect("serializable")
}

/// An issues page of `n` issues shaped like Graph's (three HTML posts each; one in ten open).
fn issues_page(n: usize) -> Vec<u8> {
    let value: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let (_, service) = SERVICES[i % SERVICES.len()];
            let open = i % 10 == 0;
            let posts: Vec<serde_json::Value> = (0..3)
                .map(|p| serde_json::json!({
                    "createdDateTime": format!("2026-11-2{}T0{p}:15:00.{i:03}Z", i % 5),
                    "postType": "regular",
                    "description": {
                        "contentType": "html",
                        "content": format!("<p>Title: Users may see delays ({i}/{p})</p><p>User impact: Users may be unable to send or receive email.</p><p>Current status: We're reviewing service telemetry to isolate the source of the problem. Next update by: Wednesday, November 25, 2026, at 3:00 PM UTC</p>"),
                    },
                }))
                .collect();
            serde_json::json!({
                "startDateTime": "2026-11-20T08:00:00Z",
                "endDateTime": if open { serde_json::Value::Null } else { serde_json::json!("2026-11-21T10:00:00Z") },
                "lastModifiedDateTime": format!("2026-11-2{}T10:20:24.767Z", i % 5),
                "title": format!("Some users may be unable to access {service} ({i})"),
                "id": format!("EX{:06}", 100_000 + i),
                "impactDescription": "Users may be unable to access the service.",
                "classification": if i % 3 == 0 { "incident" } else { "advisory" },
                "origin": "microsoft",
                "status": if open { "serviceDegradation" } else { "serviceRestored" },
                "service": service,
                "feature": "Access",
                "featureGroup": "Portal",
                "isResolved": !open,
                "highImpact": null,
                "details": [{ "name": "NotifyInApp", "value": "True" }],
                "posts": posts,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/serviceAnnouncement/issues",
        "value": value,
    }))
    .expect("serializable")
}

#[divan::bench]
fn parse_1000_issue_page(bencher: divan::Bencher) {
    let page = issues_page(1000);
    bencher
        .counter(divan::counter::BytesCount::of_slice(&page))
        .bench(|| parse_issues_page(divan::black_box(&page), "GET issues").map(|p| p.items.len()));
}

#[divan::bench]
fn parse_and_assemble_1000_issues(bencher: divan::Bencher) {
    let page = issues_page(1000);
    let overview = overviews();
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("valid time");
    bencher.bench(|| {
        let overviews = parse_overviews(divan::black_box(&overview), "GET healthOverviews")
            .map(|p| p.items)
            .unwrap_or_default();
        let issues = parse_issues_page(divan::black_box(&page), "GET issues").map(|p| p.items);
        let collected = Collected {
            overviews,
            issues,
            digest: String::new(),
        };
        assemble("bench", collected, now).map(|o| o.incidents.len())
    });
}
