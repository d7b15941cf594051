//! Paging ListIncidents: a growing list, the default and the cap, queries
//! beyond ASCII.

use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn pages_through_a_growing_list_without_skipping_or_repeating() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut created = Vec::new();
    for n in 0..25 {
        created.push(create_incident(&mut client, plain_incident(&format!("Outage {n:02}"))).await);
    }
    let expected: Vec<String> = created.iter().rev().map(|i| i.id.clone()).collect();

    let req = ListIncidentsRequest {
        page_size: 7,
        ..Default::default()
    };
    let mut seen: Vec<Incident> = Vec::new();
    let mut tokens = Vec::new();
    let mut page_token = String::new();
    for page in 0.. {
        let r = client
            .list_incidents(ListIncidentsRequest {
                page_token: page_token.clone(),
                ..req.clone()
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(r.incidents.clone());
        tokens.push(r.next_page_token.clone());
        if r.next_page_token.is_empty() {
            assert_eq!(r.incidents.len(), 4, "the last page holds the remainder");
            break;
        }
        assert_eq!(r.incidents.len(), 7, "page {page} is full");
        page_token = r.next_page_token;
        // The world moves on between pages: new incidents are declared, an
        // unseen one gets a status update and a new title.
        match page {
            0 => {
                for n in 0..3 {
                    create_incident(&mut client, plain_incident(&format!("Late {n}"))).await;
                }
            }
            1 => {
                let target = &created[3];
                post(&mut client, &target.id, IncidentStatus::Identified, "found").await;
                client
                    .update_incident(UpdateIncidentRequest {
                        incident: Some(Incident {
                            id: target.id.clone(),
                            title: "Outage 03 (renamed)".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .expect("update");
                create_incident(&mut client, plain_incident("Later still")).await;
            }
            _ => {}
        }
    }
    assert_eq!(tokens.len(), 4, "25 items at 7 per page are 4 pages");
    assert!(tokens[..3].iter().all(|t| !t.is_empty()));
    let seen_ids: Vec<String> = seen.iter().map(|i| i.id.clone()).collect();
    assert_eq!(
        seen_ids, expected,
        "every incident that existed at the start, once, newest first; none created later"
    );
    assert_newest_first(&seen);
    let renamed = seen.iter().find(|i| i.id == created[3].id).unwrap();
    assert_eq!(
        renamed.title, "Outage 03 (renamed)",
        "pages show current state"
    );

    // A fresh listing sees the late ones first, and exactly-divisible lists
    // end without a trailing empty page.
    let all = pages(
        &mut client,
        ListIncidentsRequest {
            page_size: 5,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 6, "29 items at 5 per page");
    let all: Vec<String> = all.into_iter().flatten().map(|i| i.title).collect();
    assert_eq!(all.len(), 29);
    assert_eq!(all[..4], ["Later still", "Late 2", "Late 1", "Late 0"]);
    let exact = pages(
        &mut client,
        ListIncidentsRequest {
            page_size: 29,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(exact.len(), 1, "a page holding the last item ends the list");

    // The page size may change between pages; the filters may not.
    let first = client
        .list_incidents(ListIncidentsRequest {
            page_size: 2,
            query: "outage".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let more = client
        .list_incidents(ListIncidentsRequest {
            page_size: 3,
            query: "outage".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("page size may change between pages")
        .into_inner();
    assert_eq!(more.incidents.len(), 3);
    assert_eq!(more.incidents[0].title, "Outage 22");
    // Changed filters reject the old token.
    assert_rejected(
        &srv,
        Rejection::page_token(),
        client.list_incidents(ListIncidentsRequest {
            page_size: 2,
            query: "late".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        }),
    )
    .await;
    // A forged token.
    assert_rejected(
        &srv,
        Rejection::page_token(),
        client.list_incidents(ListIncidentsRequest {
            page_token: "bm90LWEtdG9rZW4".into(),
            ..Default::default()
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_size_defaults_to_50_and_is_capped_at_1000() {
    let srv = TestServer::start().await;
    let channel = srv.channel().await;
    // 1010 incidents from 101 concurrent callers: group commit at work.
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..101 {
        let mut client = IncidentServiceClient::new(channel.clone());
        tasks.spawn(async move {
            for k in 0..10 {
                create_incident(&mut client, plain_incident(&format!("Bulk {t}-{k}"))).await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("creator task");
    }
    assert_eq!(srv.count("incidents").await, 1010);
    let mut client = srv.incidents().await;

    let r = client
        .list_incidents(ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incidents.len(), 50, "page_size 0 means 50");
    assert!(!r.next_page_token.is_empty());

    let all = pages(
        &mut client,
        ListIncidentsRequest {
            page_size: 5000,
            ..Default::default()
        },
    )
    .await;
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1000, 10], "page_size above 1000 means 1000");
    // Group commit gives many incidents one create time: their id orders them.
    let listed = all.concat();
    assert_newest_first(&listed);
    let times: HashSet<i128> = listed.iter().map(|i| nanos(&i.create_time)).collect();
    assert!(
        times.len() < listed.len(),
        "no two incidents share a create time"
    );
    let refs: HashSet<&str> = listed.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(refs.len(), 1010, "references are unique under concurrency");
    assert!((1..=1010).all(|n| refs.contains(format!("INC-{n}").as_str())));

    // Negative page size.
    assert_rejected(
        &srv,
        Rejection::invalid(&["page_size"]),
        client.list_incidents(ListIncidentsRequest {
            page_size: -1,
            ..Default::default()
        }),
    )
    .await;
}

#[tokio::test]
async fn query_is_case_insensitive_beyond_ascii() {
    // The seed reports are French: "Échec" must be found by "échec".
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    create_incident(&mut client, plain_incident("Échec de connexion au desk")).await;
    create_incident(&mut client, plain_incident("Lenteurs sur la messagerie")).await;
    assert_eq!(
        titles(
            &mut client,
            ListIncidentsRequest {
                query: "échec".into(),
                ..req(5)
            }
        )
        .await,
        ["Échec de connexion au desk"]
    );
    assert_eq!(
        titles(
            &mut client,
            ListIncidentsRequest {
                query: "LENTEURS".into(),
                ..req(5)
            }
        )
        .await,
        ["Lenteurs sur la messagerie"]
    );
}
