//! Operations: online backup and Prometheus metrics, through the real binary
//! where the process boundary matters. The backup is SQLite's (VACUUM INTO a
//! file): its tests run on SQLite whatever the run's backend.

use std::process::{Command, Stdio};

use incident_client::*;

use crate::support::{
    Daemon, Options, Rejection, TestDb, TestServer, assert_rejected, create_incident, eventually,
    free_port, http_get, integrity_check, plain_incident, start_server,
};

#[tokio::test]
async fn a_backup_of_a_live_database_serves_everything_it_held() {
    let srv = TestServer::start_sqlite().await;
    for i in 0..20 {
        create_incident(
            &mut srv.incidents().await,
            plain_incident(&format!("incident {i}")),
        )
        .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("backup.db");
    // Taken while the server runs and writes continue.
    let writer = {
        let url = srv.url.clone();
        tokio::spawn(async move {
            let mut c = IncidentServiceClient::connect(url).await.expect("connect");
            for i in 0..20 {
                c.create_incident(CreateIncidentRequest {
                    incident: Some(Incident {
                        title: format!("during backup {i}"),
                        kind: IncidentKind::Incident as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .expect("create during backup");
            }
        })
    };
    incidentd::store::Store::backup(srv.db.as_str(), &dest)
        .await
        .expect("backup");
    writer.await.expect("writer");
    assert!(
        incidentd::store::Store::backup(srv.db.as_str(), &dest)
            .await
            .is_err(),
        "an existing backup is never overwritten"
    );

    let dest = dest.to_str().expect("a UTF-8 temporary path");
    let restored = start_server("127.0.0.1:0", dest, &Options::default())
        .await
        .expect("serve the backup");
    let mut c = IncidentServiceClient::connect(format!("http://{}", restored.addr()))
        .await
        .expect("connect");
    for n in 1..=20 {
        let got = c
            .get_incident(GetIncidentRequest {
                id: format!("INC-{n}"),
                ..Default::default()
            })
            .await
            .expect("every incident written before the backup is in it")
            .into_inner()
            .incident
            .unwrap();
        assert_eq!(got.title, format!("incident {}", n - 1));
    }
    let all = c
        .list_incidents(ListIncidentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert!(
        (20..=40).contains(&all.len()),
        "a consistent snapshot: {}",
        all.len()
    );
    // Snapshot consistency: references are exactly 1..=N, no hole.
    let mut numbers: Vec<u32> = all
        .iter()
        .map(|i| i.reference.trim_start_matches("INC-").parse().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=all.len() as u32).collect::<Vec<_>>());
    restored.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code_and_the_backup_command_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let metrics = format!("127.0.0.1:{}", free_port());
    let server = Daemon::start(
        &db,
        &dir.path().join("log"),
        &["--metrics-listen", &metrics],
    )
    .await;
    let mut client = IncidentServiceClient::new(server.channel().await);
    let metered = client
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: "Metered".into(),
                kind: IncidentKind::Incident as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .expect("incident");
    // Read twice: the first from the database, the second from the cache.
    for _ in 0..2 {
        client
            .get_incident(GetIncidentRequest {
                id: metered.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert_rejected(
        &server,
        Rejection::not_found("incident_id", "INC-999"),
        client.get_incident(GetIncidentRequest {
            id: "INC-999".into(),
            ..Default::default()
        }),
    )
    .await;

    let body = eventually("the metrics endpoint answering", || {
        http_get(&metrics, "/metrics")
    })
    .await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for line in [
        r#"incidentd_rpc_requests_total{method="/incident.v1.IncidentService/CreateIncident",code="Ok"} 1"#,
        r#"incidentd_rpc_requests_total{method="/incident.v1.IncidentService/GetIncident",code="NotFound"} 1"#,
        r#"incidentd_incident_cache_lookups_total{result="miss"} 1"#,
        r#"incidentd_incident_cache_lookups_total{result="hit"} 1"#,
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "metrics lack the line {line}:\n{body}"
        );
    }
    for needle in [
        "incidentd_rpc_duration_seconds_bucket",
        "incidentd_writer_batch_size",
        "incidentd_writer_group_statements",
    ] {
        assert!(body.contains(needle), "metrics lack {needle}:\n{body}");
    }
    // The one incident created took the writer's WAL a few pages.
    let frames: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("incidentd_sqlite_wal_frames_per_commit_sum "))
        .unwrap_or_else(|| panic!("metrics lack the WAL's frames per commit:\n{body}"))
        .parse()
        .expect("a number");
    assert!(frames >= 1.0, "WAL frames written: {frames}");

    let backup = dir.path().join("copy.db");
    let status = Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args(["backup"])
        .arg(&backup)
        .arg("--database")
        .arg(db.as_str())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run backup");
    assert!(status.success());
    let url = format!("sqlite://{}?mode=ro", backup.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM incidents")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(titles, ["Metered"]);
    assert_eq!(integrity_check(&backup).await, "ok");
}
