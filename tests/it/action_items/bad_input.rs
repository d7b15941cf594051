//! Every bad input of items, listings and postmortems.

use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn every_bad_input_is_rejected_with_the_field_named_and_nothing_written() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Bad input").await;
    let it = api
        .create(item(&inc.id, "target", ActionItemStatus::Open))
        .await;
    let mut cases = Cases::new(&srv, "bad input");

    let good = || item(&inc.id, "fine", ActionItemStatus::Open);
    let too_many: BTreeMap<String, String> =
        (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let create_cases: Vec<(&str, ActionItem, &str)> = vec![
        (
            "empty title",
            ActionItem {
                title: String::new(),
                ..good()
            },
            "action_item.title",
        ),
        (
            "blank title",
            ActionItem {
                title: "   ".into(),
                ..good()
            },
            "action_item.title",
        ),
        (
            "201-char title",
            ActionItem {
                title: "x".repeat(201),
                ..good()
            },
            "action_item.title",
        ),
        (
            "unknown status",
            ActionItem {
                status: 99,
                ..good()
            },
            "action_item.status",
        ),
        (
            "unknown priority",
            ActionItem {
                priority: 99,
                ..good()
            },
            "action_item.priority",
        ),
        (
            "257-char owner",
            ActionItem {
                owner: "o".repeat(257),
                ..good()
            },
            "action_item.owner",
        ),
        (
            "due_time nanos 1e9",
            ActionItem {
                due_time: Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: 1_000_000_000,
                }),
                ..good()
            },
            "action_item.due_time",
        ),
        (
            "due_time nanos -1",
            ActionItem {
                due_time: Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: -1,
                }),
                ..good()
            },
            "action_item.due_time",
        ),
        (
            "bad incident_id",
            ActionItem {
                incident_id: "INC-1x".into(),
                ..good()
            },
            "action_item.incident_id",
        ),
        (
            "empty incident_id",
            ActionItem {
                incident_id: String::new(),
                ..good()
            },
            "action_item.incident_id",
        ),
        (
            "65 labels",
            ActionItem {
                labels: too_many.clone(),
                ..good()
            },
            "action_item.labels",
        ),
        (
            "description over 16 KiB",
            ActionItem {
                description: "d".repeat(16 * 1024 + 1),
                ..good()
            },
            "action_item.description",
        ),
    ];
    for (name, a, field) in create_cases {
        let req = CreateActionItemRequest {
            action_item: Some(a),
            request_id: rid(),
        };
        cases
            .reject(
                &format!("create: {name}"),
                Rejection::invalid(&[field]),
                api.ai.create_action_item(req),
            )
            .await;
    }
    // Every bad field at once.
    let req = CreateActionItemRequest {
        action_item: Some(ActionItem {
            title: String::new(),
            status: 99,
            owner: "o".repeat(257),
            ..good()
        }),
        request_id: String::new(),
    };
    cases
        .reject(
            "create: all at once",
            Rejection::invalid(&[
                "action_item.title",
                "action_item.status",
                "action_item.owner",
            ]),
            api.ai.create_action_item(req),
        )
        .await;
    // Values at the limits are accepted.
    let at_limits = api
        .try_create(ActionItem {
            title: "x".repeat(200),
            owner: "o".repeat(256),
            labels: (0..64).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
            due_time: Some(Timestamp {
                seconds: 1_900_000_000,
                nanos: 999_999_999,
            }),
            ..good()
        })
        .await;
    if let Err(e) = at_limits {
        cases.fail("create at the limits", format!("refused: {e:?}"));
    }

    let upd = |f: fn(&mut ActionItem)| {
        let mut a = ActionItem {
            id: it.id.clone(),
            ..Default::default()
        };
        f(&mut a);
        a
    };
    let update_cases: Vec<(&str, ActionItem, Vec<&str>, &str)> = vec![
        (
            "empty title",
            upd(|a| a.title.clear()),
            vec!["title"],
            "action_item.title",
        ),
        (
            "201-char title",
            upd(|a| a.title = "x".repeat(201)),
            vec![],
            "action_item.title",
        ),
        (
            "unknown status",
            upd(|a| a.status = 99),
            vec![],
            "action_item.status",
        ),
        (
            "unset status in the mask",
            upd(|_| {}),
            vec!["status"],
            "action_item.status",
        ),
        (
            "257-char owner",
            upd(|a| a.owner = "o".repeat(257)),
            vec!["owner"],
            "action_item.owner",
        ),
        (
            "due_time nanos",
            upd(|a| {
                a.due_time = Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: 1_000_000_000,
                })
            }),
            vec!["due_time"],
            "action_item.due_time",
        ),
        (
            "unknown mask path",
            upd(|a| a.title = "t".into()),
            vec!["title", "bogus"],
            "update_mask",
        ),
        (
            "65 labels",
            upd(|a| a.labels = (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect()),
            vec!["labels"],
            "action_item.labels",
        ),
        (
            "bad id",
            ActionItem {
                id: "nope".into(),
                title: "t".into(),
                ..Default::default()
            },
            vec!["title"],
            "action_item.id",
        ),
    ];
    for (name, a, paths, field) in update_cases {
        let req = UpdateActionItemRequest {
            action_item: Some(a),
            update_mask: mask(&paths),
            request_id: rid(),
        };
        cases
            .reject(
                &format!("update: {name}"),
                Rejection::invalid(&[field]),
                api.ai.update_action_item(req),
            )
            .await;
    }
    let req = DeleteActionItemRequest {
        id: "nope".into(),
        ..Default::default()
    };
    cases
        .reject(
            "delete: bad id",
            Rejection::invalid(&["id"]),
            api.ai.delete_action_item(req),
        )
        .await;
    let unknown = rid();
    let req = DeleteActionItemRequest {
        id: unknown.clone(),
        ..Default::default()
    };
    cases
        .reject(
            "delete: unknown id",
            Rejection::not_found("action_item_id", &unknown),
            api.ai.delete_action_item(req),
        )
        .await;
    let req = CreateActionItemRequest {
        action_item: Some(good()),
        request_id: "not-a-uuid".into(),
    };
    cases
        .reject(
            "create: bad request_id",
            Rejection::invalid(&["request_id"]),
            api.ai.create_action_item(req),
        )
        .await;

    // Listing.
    let list_cases: Vec<(&str, ListActionItemsRequest, &str)> = vec![
        (
            "unknown status",
            ListActionItemsRequest {
                statuses: vec![99],
                ..Default::default()
            },
            "statuses[0]",
        ),
        (
            "bad label",
            ListActionItemsRequest {
                label: "bad key!".into(),
                ..Default::default()
            },
            "label",
        ),
        (
            "bad incident_id",
            ListActionItemsRequest {
                incident_id: "INC-1x".into(),
                ..Default::default()
            },
            "incident_id",
        ),
        (
            "negative page_size",
            ListActionItemsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            "as_of_time nanos",
            ListActionItemsRequest {
                overdue: true,
                as_of_time: Some(Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "as_of_time",
        ),
    ];
    for (name, req, field) in list_cases {
        cases
            .reject(
                &format!("list: {name}"),
                Rejection::invalid(&[field]),
                api.ai.list_action_items(req),
            )
            .await;
    }

    // The postmortem.
    let pm = |f: fn(&mut Postmortem)| {
        let mut p = Postmortem {
            incident_id: inc.id.clone(),
            ..Default::default()
        };
        f(&mut p);
        p
    };
    let pm_cases: Vec<(&str, Postmortem, Vec<&str>, &str)> = vec![
        (
            "body over 256 KiB",
            pm(|p| p.body = "b".repeat(256 * 1024 + 1)),
            vec![],
            "postmortem.body",
        ),
        (
            "body and sections over 256 KiB together",
            pm(|p| {
                p.body = "b".repeat(200 * 1024);
                p.sections = vec![section("Timeline", &"t".repeat(57 * 1024))];
            }),
            vec![],
            "postmortem",
        ),
        (
            "section with an empty title",
            pm(|p| p.sections = vec![section("Impact", "x"), section("", "body")]),
            vec![],
            "postmortem.sections[1].title",
        ),
        (
            "section with a 201-char title",
            pm(|p| p.sections = vec![section(&"s".repeat(201), "x")]),
            vec![],
            "postmortem.sections[0].title",
        ),
        (
            "unknown mask path",
            pm(|p| p.body = "x".into()),
            vec!["body", "conclusion"],
            "update_mask",
        ),
        (
            "bad incident_id",
            Postmortem {
                incident_id: "INC-1x".into(),
                body: "x".into(),
                ..Default::default()
            },
            vec![],
            "postmortem.incident_id",
        ),
        (
            "257-char author",
            pm(|p| p.author = "a".repeat(257)),
            vec![],
            "postmortem.author",
        ),
    ];
    for (name, p, paths, field) in pm_cases {
        let req = UpdatePostmortemRequest {
            postmortem: Some(p),
            update_mask: mask_if_any(&paths),
            request_id: rid(),
        };
        cases
            .reject(
                &format!("postmortem: {name}"),
                Rejection::invalid(&[field]),
                api.inc.update_postmortem(req),
            )
            .await;
    }
    // A postmortem of exactly 256 KiB is accepted.
    let full = api
        .try_update_pm(pm(|p| p.body = "b".repeat(256 * 1024)), &[])
        .await;
    if let Err(e) = full {
        cases.fail(
            "postmortem of exactly 256 KiB",
            format!("refused: {}", e.message()),
        );
    }
    let req = PublishPostmortemRequest {
        incident_id: inc.id.clone(),
        occur_time: Some(from_now(3600)),
        ..Default::default()
    };
    cases
        .reject(
            "publish: occur_time in the future",
            Rejection::invalid(&["occur_time"]),
            api.inc.publish_postmortem(req),
        )
        .await;
    let req = PublishPostmortemRequest {
        incident_id: "nope".into(),
        ..Default::default()
    };
    cases
        .reject(
            "publish: bad incident_id",
            Rejection::invalid(&["incident_id"]),
            api.inc.publish_postmortem(req),
        )
        .await;

    cases.finish();
    assert_eq!(api.get_item(&it.id).await, it);
    assert_eq!(api.counts(&inc.id).await.0, 2);
}
