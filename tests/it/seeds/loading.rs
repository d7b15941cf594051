//! Loading the seeds: every file, the filters over them, report times, and
//! loading twice.

use incident_client::*;
use incidentd::seed::{self, Outcome};
use incidentd::store::{Store, StoreOptions};

use super::*;
use crate::support::*;

#[tokio::test]
async fn every_seed_file_loads() {
    let seeds = seed::read_dir(&seeds_dir()).expect("every seed parses");
    assert_eq!(seeds.len(), SEED_FILES.len());
    for f in SEED_FILES {
        assert!(seeds_dir().join(f).is_file(), "{f} exists");
    }

    let ts = seeded().await;
    let incidents = all_incidents(&ts, ListIncidentsRequest::default()).await;
    let mut titles: Vec<&str> = incidents.iter().map(|i| i.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "Conversation notifications might not be visible on websites",
            "Delays in the Dashboard, Analytics, and Offers for some queues",
            "Difficulty to load the desk",
            "Disturbances on the Conversations Panel",
            "Service disruption - Impossible to start new conversations & errors on the conversation panel",
        ]
    );
    // References in file order: INC-1 is seed 000 ... INC-5 is seed 004.
    let by_ref = |r: &str| {
        incidents
            .iter()
            .find(|i| i.reference == r)
            .map(|i| i.title.clone())
    };
    assert_eq!(
        by_ref("INC-1").as_deref(),
        Some("Disturbances on the Conversations Panel")
    );
    assert_eq!(
        by_ref("INC-5").as_deref(),
        Some("Delays in the Dashboard, Analytics, and Offers for some queues")
    );
    // Every seed is resolved, with a published postmortem.
    for i in &incidents {
        assert_eq!(i.status(), IncidentStatus::Resolved, "{}", i.title);
        assert!(i.postmortem_publish_time.is_some(), "{}", i.title);
    }
    assert_eq!(ts.count("seeds").await, 5);
}

#[tokio::test]
async fn labels_and_severities_filter_the_seeds() {
    let ts = seeded().await;
    let titles = |v: Vec<Incident>| {
        let mut t: Vec<String> = v.into_iter().map(|i| i.title).collect();
        t.sort_unstable();
        t
    };
    let dixa = all_incidents(
        &ts,
        ListIncidentsRequest {
            label: "company=Dixa".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        titles(dixa),
        ["Delays in the Dashboard, Analytics, and Offers for some queues"]
    );
    let iadvize = all_incidents(
        &ts,
        ListIncidentsRequest {
            label: "company=iAdvize".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(iadvize.len(), 4);

    let p0 = all_incidents(
        &ts,
        ListIncidentsRequest {
            severities: vec![Severity::P0 as i32],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        titles(p0),
        [
            "Service disruption - Impossible to start new conversations & errors on the conversation panel"
        ]
    );
    let p1 = all_incidents(
        &ts,
        ListIncidentsRequest {
            severities: vec![Severity::P1 as i32],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        titles(p1),
        [
            "Conversation notifications might not be visible on websites",
            "Difficulty to load the desk",
            "Disturbances on the Conversations Panel",
        ]
    );
    let open = all_incidents(
        &ts,
        ListIncidentsRequest {
            open: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert!(open.is_empty());
}

/// Every event of a seed incident, in sequence order, carries a time of the
/// report as its occurrence time: the milestones (UpdateIncident), the action
/// items and the postmortem draft included, none written at the load time
/// (which would read as after the postmortem's publication).
#[tokio::test]
async fn every_seed_event_carries_a_report_time() {
    let ts = seeded().await;
    for i in all_incidents(&ts, ListIncidentsRequest::default()).await {
        let s = fetch(&ts, &i.title).await;
        let publish = seconds(&s.postmortem.publish_time);
        for w in s.events.windows(2) {
            assert!(
                seconds(&w[0].occur_time) <= seconds(&w[1].occur_time),
                "{}: {:?} at {} before {:?} at {}",
                i.title,
                w[0].kind(),
                utc(&w[0].occur_time),
                w[1].kind(),
                utc(&w[1].occur_time)
            );
        }
        for e in &s.events {
            assert!(
                seconds(&e.occur_time) <= publish,
                "{}: {:?} at {}",
                i.title,
                e.kind(),
                utc(&e.occur_time)
            );
        }
    }
}

#[tokio::test]
async fn loading_twice_changes_nothing() {
    let mut ts = seeded().await;
    let before = ts.snapshot().await;

    // Again through the loader, on the same database.
    ts.stop().await;
    let store = Store::open(ts.db.as_str(), StoreOptions::default())
        .await
        .expect("open store");
    let outcomes = seed::load(&store, seed::read_dir(&seeds_dir()).expect("read seeds"))
        .await
        .expect("load again");
    store.close().await;
    assert_eq!(outcomes.len(), 5);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Skipped { .. })),
        "{outcomes:?}"
    );
    ts.assert_unchanged(&before, "loading again").await;

    // And through a server started with the seeds on the same database.
    ts.start_again().await;
    ts.assert_unchanged(&before, "a server started with the seeds again")
        .await;
    let incidents = all_incidents(&ts, ListIncidentsRequest::default()).await;
    assert_eq!(incidents.len(), 5);
}
