//! ListActionItems: every filter across pages, page tokens, overdue.

use std::collections::{BTreeMap, HashSet};

use incident_client::*;

use super::*;
use crate::support::*;

/// One model row: the item as last returned by the server.
fn matches(a: &ActionItem, r: &ListActionItemsRequest) -> bool {
    if !r.show_deleted && a.delete_time.is_some() {
        return false;
    }
    if !r.incident_id.is_empty() && a.incident_id != r.incident_id {
        return false;
    }
    if !r.statuses.is_empty() && !r.statuses.contains(&a.status) {
        return false;
    }
    if !r.owner.is_empty() && a.owner != r.owner {
        return false;
    }
    if !r.label.is_empty() {
        let ok = match r.label.split_once('=') {
            Some((k, v)) => a.labels.get(k).is_some_and(|x| x == v),
            None => a.labels.contains_key(&r.label),
        };
        if !ok {
            return false;
        }
    }
    if r.overdue {
        let at = r.as_of_time.map_or_else(now_nanos, |t| nanos(&Some(t)));
        let due = a.due_time.map(|d| nanos(&Some(d)));
        if is_closed(a.status) || due.is_none_or(|d| d > at) {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn every_filter_alone_and_combined_across_pages() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let incidents = [
        api.resolved("Livechat DB frozen").await,
        api.declare("Desk does not load").await,
        api.resolved("Dixa phone outage").await,
    ];
    let statuses = [
        ActionItemStatus::Open,
        ActionItemStatus::InProgress,
        ActionItemStatus::Done,
        ActionItemStatus::WontDo,
    ];
    let owners = ["alice", "bob", "carol"];
    // Items in creation order (oldest first), as last returned by the server.
    let mut model: Vec<ActionItem> = Vec::new();
    for i in 0..26usize {
        let mut l = BTreeMap::new();
        if i % 2 == 0 {
            l.insert("area".to_owned(), "tech".to_owned());
        } else if i % 5 == 0 {
            l.insert("area".to_owned(), "support".to_owned());
        }
        if i % 4 == 1 {
            l.insert("customer".to_owned(), "iadvize".to_owned());
        }
        let due_time = match i % 3 {
            0 => None,
            // Long past: overdue now.
            1 if i % 2 == 1 => Some(ts(&format!("2020-01-{:02}T00:00:00Z", i + 1))),
            _ => Some(ts(&format!("2030-01-{:02}T00:00:00Z", i + 1))),
        };
        let created = api
            .create(ActionItem {
                owner: owners[(i / 2) % 3].into(),
                due_time,
                labels: l,
                ..item(
                    &incidents[i % 3].id,
                    &format!("item {i}"),
                    statuses[(i / 3) % 4],
                )
            })
            .await;
        model.push(created);
    }
    for i in [4usize, 11, 19] {
        let d = api.try_delete(&model[i].id, "").await.expect("delete");
        model[i] = d;
    }
    // Newest first.
    let newest_first: Vec<ActionItem> = model.iter().rev().cloned().collect();

    let a = incidents[0].id.clone();
    let b = incidents[1].id.clone();
    let c = incidents[2].id.clone();
    let as_of = Some(ts("2030-01-15T00:00:00Z"));
    let open = ActionItemStatus::Open as i32;
    let in_progress = ActionItemStatus::InProgress as i32;
    let done = ActionItemStatus::Done as i32;
    let wont_do = ActionItemStatus::WontDo as i32;
    let base = ListActionItemsRequest::default;
    let cases: Vec<(&str, ListActionItemsRequest)> = vec![
        ("no filter", base()),
        (
            "incident",
            ListActionItemsRequest {
                incident_id: b.clone(),
                ..base()
            },
        ),
        (
            "one status",
            ListActionItemsRequest {
                statuses: vec![open],
                ..base()
            },
        ),
        (
            "two statuses",
            ListActionItemsRequest {
                statuses: vec![done, open],
                ..base()
            },
        ),
        (
            "owner",
            ListActionItemsRequest {
                owner: "alice".into(),
                ..base()
            },
        ),
        (
            "label key",
            ListActionItemsRequest {
                label: "area".into(),
                ..base()
            },
        ),
        (
            "label key=value",
            ListActionItemsRequest {
                label: "area=tech".into(),
                ..base()
            },
        ),
        (
            "other label",
            ListActionItemsRequest {
                label: "customer=iadvize".into(),
                ..base()
            },
        ),
        (
            "overdue now",
            ListActionItemsRequest {
                overdue: true,
                ..base()
            },
        ),
        (
            "overdue as of",
            ListActionItemsRequest {
                overdue: true,
                as_of_time: as_of,
                ..base()
            },
        ),
        (
            "show deleted",
            ListActionItemsRequest {
                show_deleted: true,
                ..base()
            },
        ),
        (
            "incident + statuses + owner",
            ListActionItemsRequest {
                incident_id: a.clone(),
                statuses: vec![open, in_progress],
                owner: "bob".into(),
                ..base()
            },
        ),
        (
            "incident + label + deleted",
            ListActionItemsRequest {
                incident_id: a.clone(),
                label: "area=tech".into(),
                show_deleted: true,
                ..base()
            },
        ),
        (
            "label + closed statuses + deleted",
            ListActionItemsRequest {
                label: "area".into(),
                statuses: vec![done, wont_do],
                show_deleted: true,
                ..base()
            },
        ),
        (
            "overdue + owner + status",
            ListActionItemsRequest {
                overdue: true,
                as_of_time: as_of,
                owner: "carol".into(),
                statuses: vec![open, in_progress, done],
                ..base()
            },
        ),
        (
            "incident + overdue + deleted",
            ListActionItemsRequest {
                incident_id: c.clone(),
                overdue: true,
                as_of_time: as_of,
                show_deleted: true,
                ..base()
            },
        ),
        (
            "every filter",
            ListActionItemsRequest {
                incident_id: b.clone(),
                statuses: vec![open, in_progress],
                owner: "alice".into(),
                label: "area".into(),
                overdue: true,
                as_of_time: as_of,
                show_deleted: true,
                ..base()
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, req) in cases {
        let want: Vec<String> = newest_first
            .iter()
            .filter(|a| matches(a, &req))
            .map(|a| a.id.clone())
            .collect();
        assert!(
            !want.is_empty(),
            "case {name:?} selects nothing: fix the data set"
        );
        for size in [1, 2, 3, 0] {
            let pages = api
                .list_pages(ListActionItemsRequest {
                    page_size: size,
                    ..req.clone()
                })
                .await;
            let got: Vec<String> = pages.iter().flatten().map(|a| a.id.clone()).collect();
            let unique: HashSet<&String> = got.iter().collect();
            if unique.len() != got.len() {
                failures.push(format!("{name} (page_size {size}): an item repeated"));
            }
            if got != want {
                failures.push(format!(
                    "{name} (page_size {size}): want {} items {want:?}, got {} {got:?}",
                    want.len(),
                    got.len()
                ));
            }
            if size > 0 {
                let want_pages = want.len().div_ceil(size as usize).max(1);
                if pages.len() != want_pages && pages.len() != want_pages + 1 {
                    failures.push(format!(
                        "{name} (page_size {size}): {} pages for {} items",
                        pages.len(),
                        want.len()
                    ));
                }
            }
            // The items listed are the items as they are.
            for got in pages.iter().flatten() {
                let m = model.iter().find(|m| m.id == got.id).expect("known item");
                if m != got {
                    failures.push(format!("{name}: {} differs from Get", got.id));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_page_token_is_bound_to_its_filters() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Paging").await;
    for i in 0..4 {
        api.create(ActionItem {
            owner: "alice".into(),
            ..item(&inc.id, &format!("item {i}"), ActionItemStatus::Open)
        })
        .await;
    }
    let first = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(first.action_items.len(), 2);
    assert!(!first.next_page_token.is_empty());
    // Filters changed between pages.
    assert_rejected(
        &srv,
        Rejection::page_token(),
        api.ai.list_action_items(ListActionItemsRequest {
            page_size: 2,
            owner: "bob".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        }),
    )
    .await;

    // Keyset pages: writes between pages neither skip nor repeat an item.
    let all = api.list_all(ListActionItemsRequest::default()).await;
    assert_eq!(all.len(), 4);
    let first = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(ids(&first.action_items), ids(&all[..2]));
    // A newer item and the deletion of a listed one do not shift the rest.
    api.create(item(&inc.id, "newer", ActionItemStatus::Open))
        .await;
    api.try_delete(&all[0].id, "")
        .await
        .expect("delete a listed item");
    let rest = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(ids(&rest.action_items), ids(&all[2..]));
}

#[tokio::test]
async fn overdue_at_the_boundary() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Overdue").await;
    let due = nanos(&Some(ts("2131-06-01T12:00:00.5Z")));
    let mk = |title: &str, status: ActionItemStatus, due_at: i128| ActionItem {
        due_time: Some(from_nanos(due_at)),
        ..item(&inc.id, title, status)
    };
    let exactly = api
        .create(mk("due exactly then", ActionItemStatus::Open, due))
        .await;
    let later = api
        .create(mk("due 1 ns later", ActionItemStatus::Open, due + 1))
        .await;
    let earlier = api
        .create(mk(
            "due 1 ns earlier",
            ActionItemStatus::InProgress,
            due - 1,
        ))
        .await;
    let done = api
        .create(mk(
            "done, long due",
            ActionItemStatus::Done,
            due - 86_400_000_000_000,
        ))
        .await;
    let wont = api
        .create(mk(
            "won't do, long due",
            ActionItemStatus::WontDo,
            due - 86_400_000_000_000,
        ))
        .await;
    let undated = api
        .create(item(&inc.id, "no due time", ActionItemStatus::Open))
        .await;
    assert_eq!(
        nanos(&exactly.due_time),
        due,
        "due_time keeps its nanoseconds"
    );

    let overdue_at = |at: i128| ListActionItemsRequest {
        overdue: true,
        as_of_time: Some(from_nanos(at)),
        ..Default::default()
    };
    let at_due = api.list_all(overdue_at(due)).await;
    assert_eq!(ids(&at_due), vec![earlier.id.clone(), exactly.id.clone()]);
    let before_due = api.list_all(overdue_at(due - 1)).await;
    assert_eq!(ids(&before_due), vec![earlier.id.clone()]);
    let just_after = api.list_all(overdue_at(due + 1)).await;
    assert_eq!(
        ids(&just_after),
        vec![earlier.id.clone(), later.id.clone(), exactly.id.clone()]
    );
    // Far later still: DONE, WONT_DO and undated items are never overdue.
    let far = api.list_all(overdue_at(due + 1_000_000_000_000_000)).await;
    let far_ids: HashSet<String> = ids(&far).into_iter().collect();
    for never in [&done, &wont, &undated] {
        assert!(
            !far_ids.contains(&never.id),
            "{} is not overdue",
            never.title
        );
    }
    // Without as_of_time it is judged now: none of these is due yet.
    assert!(
        api.list_all(ListActionItemsRequest {
            overdue: true,
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Closing an overdue item takes it out; reopening it brings it back.
    api.set_status(&exactly.id, ActionItemStatus::Done).await;
    assert_eq!(
        ids(&api.list_all(overdue_at(due)).await),
        vec![earlier.id.clone()]
    );
    api.set_status(&exactly.id, ActionItemStatus::InProgress)
        .await;
    assert_eq!(
        ids(&api.list_all(overdue_at(due)).await),
        vec![earlier.id.clone(), exactly.id.clone()]
    );
}
