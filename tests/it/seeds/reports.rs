//! Each seed read back: the facts of its report.

use incident_client::*;

use super::*;

#[tokio::test]
async fn seed_000_conversation_panel_two_windows_on_two_days() {
    let ts = seeded().await;
    let s = fetch(&ts, "Disturbances on the Conversations Panel").await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P1);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2024-11-21T08:52:00Z".to_owned(), Investigating), // 09:52 CET
            ("2024-11-21T09:01:00Z".to_owned(), Monitoring),    // 10:01 CET
            ("2024-11-21T13:09:00Z".to_owned(), Resolved),      // 14:09 CET
        ]
    );
    // Nov 20 17:19 > 17:52 CET and Nov 21 9:30 > 9:43 CET.
    assert_eq!(
        windows(&s),
        [
            (
                "2024-11-20T16:19:00Z".to_owned(),
                "2024-11-20T16:52:00Z".to_owned(),
                33,
                ImpactLevel::DegradedPerformance
            ),
            (
                "2024-11-21T08:30:00Z".to_owned(),
                "2024-11-21T08:43:00Z".to_owned(),
                13,
                ImpactLevel::DegradedPerformance
            ),
        ]
    );
    assert_eq!(s.incident.identify_time, None);
    assert_eq!(utc(&s.incident.mitigate_time), "2024-11-21T09:01:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-11-21T13:09:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2024-11-25T13:44:00Z"); // 14:44 CET
    assert_eq!(
        section_titles(&s),
        [
            "Incident",
            "Resolution",
            "Actions for the future",
            "Focus on the Black Friday period"
        ]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Done; 3]);

    // The full "This incident affected" list: 8 groups, 31 components under them,
    // each marked by the first post.
    assert_eq!(s.incident.component_impacts.len(), 31);
    let components = ts
        .components()
        .await
        .list_components(ListComponentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list components")
        .into_inner()
        .components;
    let name_of = |id: &str| {
        components
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    // "Login" under both Administration and Conversation Panel.
    let mut login_parents: Vec<String> = components
        .iter()
        .filter(|c| c.name == "Login")
        .map(|c| name_of(&c.parent_id))
        .collect();
    login_parents.sort_unstable();
    assert_eq!(login_parents, ["Administration", "Conversation Panel"]);
    // Both windows name the two areas the postmortem names.
    for w in &s.incident.impact_windows {
        let mut names: Vec<String> = w.component_ids.iter().map(|id| name_of(id)).collect();
        names.sort_unstable();
        assert_eq!(names, ["Administration", "Conversation Panel"]);
    }
}

#[tokio::test]
async fn seed_001_livechat_db_downtime_and_stated_milestones() {
    let ts = seeded().await;
    let s = fetch(
        &ts,
        "Service disruption - Impossible to start new conversations & errors on the conversation panel",
    )
    .await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P0);

    use IncidentStatus::*;
    // "Update" posts keep the status.
    assert_eq!(
        posts(&s),
        [
            ("2024-02-22T08:42:00Z".to_owned(), Investigating), // 09:42 CET
            ("2024-02-22T08:59:00Z".to_owned(), Investigating), // 09:59 CET, Update
            ("2024-02-22T09:23:00Z".to_owned(), Investigating), // 10:23 CET, Update
            ("2024-02-22T09:58:00Z".to_owned(), Monitoring),    // 10:58 CET
            ("2024-02-22T10:35:00Z".to_owned(), Monitoring),    // 11:35 CET, Update
            ("2024-02-22T13:48:00Z".to_owned(), Resolved),      // 14:48 CET
        ]
    );
    // Downtime 9:25 > 10:50 CET: 85 minutes.
    assert_eq!(
        windows(&s),
        [(
            "2024-02-22T08:25:00Z".to_owned(),
            "2024-02-22T09:50:00Z".to_owned(),
            85,
            ImpactLevel::MajorOutage
        )]
    );
    // "over since 10:50am CET" / "resolved since 10:50am CET": stated outright,
    // while the RESOLVED post itself is at 14:48 CET.
    assert_eq!(s.incident.identify_time, None);
    assert_eq!(utc(&s.incident.mitigate_time), "2024-02-22T09:50:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-02-22T09:50:00Z");
    assert_eq!(
        utc(&s.updates.last().expect("posts").post_time),
        "2024-02-22T13:48:00Z"
    );

    assert_eq!(utc(&s.postmortem.publish_time), "2024-02-26T09:05:00Z"); // 10:05 CET
    assert_eq!(
        section_titles(&s),
        ["Incident", "Resolution", "Actions for the future"]
    );
    assert_eq!(
        item_statuses(&s),
        [ActionItemStatus::Done, ActionItemStatus::InProgress]
    );
    assert_eq!(s.incident.open_action_item_count, 1);
    // No separate maintenance incident for the 6:30 > 8:00 CET upgrade.
    let maintenance = all_incidents(
        &ts,
        ListIncidentsRequest {
            kind: IncidentKind::Maintenance as i32,
            ..Default::default()
        },
    )
    .await;
    assert!(maintenance.is_empty());
}

#[tokio::test]
async fn seed_002_notifications_86_and_37_minutes_inside_11_01_to_13_04_cest() {
    let ts = seeded().await;
    let s = fetch(
        &ts,
        "Conversation notifications might not be visible on websites",
    )
    .await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P1);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2024-09-02T10:06:00Z".to_owned(), Investigating),
            ("2024-09-02T10:08:00Z".to_owned(), Investigating), // keeps the status
            ("2024-09-02T10:26:00Z".to_owned(), Identified),
            ("2024-09-02T11:07:00Z".to_owned(), Monitoring),
            ("2024-09-02T12:02:00Z".to_owned(), Resolved),
        ]
    );
    // 11:01 > 13:04 CEST, order of the phases not given: totals by `duration`.
    assert_eq!(
        windows(&s),
        [
            (
                "2024-09-02T09:01:00Z".to_owned(),
                "2024-09-02T11:04:00Z".to_owned(),
                86,
                ImpactLevel::DegradedPerformance
            ),
            (
                "2024-09-02T09:01:00Z".to_owned(),
                "2024-09-02T11:04:00Z".to_owned(),
                37,
                ImpactLevel::MajorOutage
            ),
        ]
    );
    // Together they fill the 123 minutes of the span.
    let span = (seconds(&s.incident.impact_windows[0].end_time)
        - seconds(&s.incident.impact_windows[0].start_time))
        / 60;
    assert_eq!(span, 86 + 37);
    assert_eq!(utc(&s.incident.identify_time), "2024-09-02T10:26:00Z");
    assert_eq!(utc(&s.incident.mitigate_time), "2024-09-02T11:07:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-09-02T12:02:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2024-09-06T12:31:00Z");
    assert_eq!(
        section_titles(&s),
        ["Incident", "Resolution", "Actions for the future"]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Done; 3]);
    // Chat, Call and "1 more component" (Video).
    assert_eq!(s.incident.component_impacts.len(), 3);
    for w in &s.incident.impact_windows {
        assert_eq!(w.component_ids.len(), 3);
    }
}

#[tokio::test]
async fn seed_003_desk_loading() {
    let ts = seeded().await;
    let s = fetch(&ts, "Difficulty to load the desk").await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P1);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2023-08-11T08:04:00Z".to_owned(), Investigating), // 10:04 CEST
            ("2023-08-11T08:22:00Z".to_owned(), Identified),    // 10:22 CEST
            ("2023-08-11T08:45:00Z".to_owned(), Monitoring),    // 10:45 CEST
            ("2023-08-11T13:38:00Z".to_owned(), Resolved),      // 15:38 CEST
        ]
    );
    // 9:35 > 10:42 CEST.
    assert_eq!(
        windows(&s),
        [(
            "2023-08-11T07:35:00Z".to_owned(),
            "2023-08-11T08:42:00Z".to_owned(),
            67,
            ImpactLevel::MajorOutage
        )]
    );
    assert_eq!(utc(&s.incident.identify_time), "2023-08-11T08:22:00Z");
    assert_eq!(utc(&s.incident.mitigate_time), "2023-08-11T08:45:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2023-08-11T13:38:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2023-08-17T16:03:00Z"); // 18:03 CEST
    assert_eq!(
        section_titles(&s),
        [
            "Incident",
            "Reasons",
            "Resolution",
            "Actions for the future"
        ]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Done; 2]);
}

#[tokio::test]
async fn seed_004_dixa_queue_routing_over_three_days() {
    let ts = seeded().await;
    let s = fetch(
        &ts,
        "Delays in the Dashboard, Analytics, and Offers for some queues",
    )
    .await;
    check_common(&s, "Dixa");
    // The report does not assess severity.
    assert_eq!(s.incident.severity(), Severity::Unspecified);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2024-10-01T12:12:00Z".to_owned(), Identified), // Oct 1 14:12 CEST
            ("2024-10-01T12:15:00Z".to_owned(), Identified), // 14:15 CEST, Update
            ("2024-10-01T12:18:00Z".to_owned(), Identified), // 14:18 CEST, Update
            ("2024-10-01T12:20:00Z".to_owned(), Identified), // 14:20 CEST, Update
            ("2024-10-01T13:29:00Z".to_owned(), Identified), // 15:29 CEST, Update
            ("2024-10-02T07:38:00Z".to_owned(), Identified), // Oct 2 09:38 CEST, Update
            ("2024-10-02T08:25:00Z".to_owned(), Identified), // Oct 2 10:25 CEST, Update
            ("2024-10-02T18:20:00Z".to_owned(), Resolved),   // Oct 2 20:20 CEST
        ]
    );
    // The "next update" promises, each after its own post.
    let promises: Vec<Option<String>> = s
        .updates
        .iter()
        .map(|u| {
            u.next_update_time
                .as_ref()
                .map(|_| utc(&u.next_update_time))
        })
        .collect();
    assert_eq!(
        promises,
        [
            Some("2024-10-01T13:00:00Z".to_owned()), // "13:00 UCT"
            None,
            None,
            None,
            None,
            Some("2024-10-02T09:00:00Z".to_owned()),
            Some("2024-10-02T11:00:00Z".to_owned()),
            None,
        ]
    );
    for u in &s.updates {
        if u.next_update_time.is_some() {
            assert!(seconds(&u.next_update_time) > seconds(&u.post_time));
        }
    }
    assert_eq!(s.incident.next_update_time, None);

    // Oct 1 13:07 CEST > Oct 3 20:20 CEST, with the postmortem's timeline inside.
    assert_eq!(
        windows(&s),
        [
            (
                "2024-10-01T11:07:00Z".to_owned(),
                "2024-10-03T18:20:00Z".to_owned(),
                2 * 24 * 60 + 7 * 60 + 13,
                ImpactLevel::PartialOutage
            ),
            (
                "2024-10-01T11:07:00Z".to_owned(),
                "2024-10-01T12:30:00Z".to_owned(),
                83,
                ImpactLevel::PartialOutage
            ),
            (
                "2024-10-01T13:00:00Z".to_owned(),
                "2024-10-02T16:00:00Z".to_owned(),
                27 * 60,
                ImpactLevel::PartialOutage
            ),
        ]
    );
    // Declared as IDENTIFIED at the first post; mitigated at 14:30 CEST as the
    // postmortem states; resolved by the status post of Oct 2 20:20 CEST, while
    // the impact window runs to Oct 3 20:20 CEST (the report's contradiction).
    assert_eq!(utc(&s.incident.identify_time), "2024-10-01T12:12:00Z");
    assert_eq!(utc(&s.incident.mitigate_time), "2024-10-01T12:30:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-10-02T18:20:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2024-10-04T13:09:00Z"); // 15:09 CEST
    assert_eq!(s.postmortem.author, "Dixa Incident Management Team");
    assert_eq!(
        section_titles(&s),
        [
            "Incident Overview",
            "Timeline",
            "Root Cause",
            "Impact",
            "Resolution",
            "Aftermath and Long-term Actions",
            "Conclusion"
        ]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Open; 4]);
    assert_eq!(s.incident.open_action_item_count, 4);
    let titles: Vec<&str> = s.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Protocol review",
            "Queue service improvements",
            "Enhanced monitoring",
            "Post-incident review"
        ]
    );
}
