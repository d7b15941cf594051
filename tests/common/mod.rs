//! Test harness: a real server on 127.0.0.1:0 over a temporary SQLite file,
//! driven through `incident-client`.

#![allow(dead_code)]

use std::path::PathBuf;

use incident_client::prost_types::{FieldMask, Timestamp};
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Status};
use incident_client::{
    Component, ComponentImpact, ComponentServiceClient, CreateComponentRequest,
    CreateIncidentRequest, ImpactLevel, Incident, IncidentKind, IncidentServiceClient,
    IncidentStatus, ListTimelineEventsRequest, PostStatusUpdateRequest, PostStatusUpdateResponse,
    TimelineEvent, TimelineServiceClient,
};
use incidentd::server::{Config, Server};
use incidentd::store::StoreOptions;
use sqlx::{Connection, Row};
use tempfile::TempDir;

/// A running server with its database file.
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub db: PathBuf,
    pub url: String,
    pub options: Options,
}

/// Tuning of a test server.
#[derive(Clone, Debug)]
pub struct Options {
    pub live_buffer: usize,
    pub max_subscribers: usize,
    /// Seeds to load at start (`serve --seed-dir`), e.g. [`seeds_dir()`].
    pub seed_dir: Option<PathBuf>,
}

/// The repository's `seeds/` folder.
pub fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

impl Default for Options {
    fn default() -> Self {
        Options {
            live_buffer: 4096,
            max_subscribers: 64,
            seed_dir: None,
        }
    }
}

impl TestServer {
    /// Starts a server on a fresh database.
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on a fresh database with non-default tuning.
    pub async fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("incidentd.db");
        let server = start_on(&db, "127.0.0.1:0", &options).await;
        let url = format!("http://{}", server.addr());
        TestServer {
            server: Some(server),
            dir,
            db,
            url,
            options,
        }
    }

    /// Stops the server (draining it) and starts a new one on the same file
    /// and the same address, so open channels reconnect to it.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Stops the server (draining it).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("stop");
        }
    }

    /// Starts the server again on the same file and address.
    pub async fn start_again(&mut self) {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let server = start_on(&self.db, &addr, &self.options).await;
        self.url = format!("http://{}", server.addr());
        self.server = Some(server);
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn incidents(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.channel().await)
    }

    pub async fn components(&self) -> ComponentServiceClient<Channel> {
        ComponentServiceClient::new(self.channel().await)
    }

    pub async fn timeline(&self) -> incident_client::TimelineServiceClient<Channel> {
        incident_client::TimelineServiceClient::new(self.channel().await)
    }

    /// A lazily connecting channel: it reconnects after a restart.
    pub fn lazy_channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect_lazy()
    }

    /// A digest of every row of every table: equal digests mean nothing changed.
    pub async fn db_state(&self) -> String {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open db");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .expect("tables");
        let mut out = String::new();
        for t in tables {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {t} ORDER BY 1")))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
            out.push_str(&format!("{t}:{}\n", rows.len()));
            for r in rows {
                for i in 0..r.len() {
                    let v: Option<Vec<u8>> = r.try_get_unchecked(i).ok();
                    out.push_str(&format!("{v:?}|"));
                }
                out.push('\n');
            }
        }
        out
    }

    /// Number of rows of one table.
    pub async fn count(&self, table: &str) -> i64 {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open db");
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .expect("count")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Servers stop with the test runtime; the temp dir goes with `dir`.
    }
}

async fn start_on(db: &std::path::Path, addr: &str, options: &Options) -> Server {
    let mut config = Config::new(addr.parse().expect("addr"), db.display().to_string());
    config.store = StoreOptions {
        live_buffer: options.live_buffer,
        ..StoreOptions::default()
    };
    config.max_subscribers = options.max_subscribers;
    config.seed_dir = options.seed_dir.clone();
    Server::start(config).await.expect("server starts")
}

/// The decoded AIP-193 details of an error status.
pub struct ErrorDetails {
    pub code: Code,
    pub reason: String,
    pub metadata: std::collections::HashMap<String, String>,
    pub bad_fields: Vec<String>,
    pub preconditions: Vec<(String, String)>,
}

/// Decodes the rich error details of a status.
pub fn details(status: &Status) -> ErrorDetails {
    use tonic_types::StatusExt;
    let d = status.get_error_details();
    let info = d.error_info().cloned();
    ErrorDetails {
        code: status.code(),
        reason: info.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
        metadata: info.map(|i| i.metadata).unwrap_or_default(),
        bad_fields: d
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default(),
        preconditions: d
            .precondition_failure()
            .map(|p| {
                p.violations
                    .iter()
                    .map(|v| (v.r#type.clone(), v.subject.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Asserts an error's code, reason and (if given) the bad field it names.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str, field: Option<&str>) {
    let d = details(status);
    assert_eq!(d.code, code, "code of {status:?}");
    assert_eq!(d.reason, reason, "reason of {status:?}");
    if let Some(field) = field {
        assert!(
            d.bad_fields.iter().any(|f| f == field),
            "expected bad field {field:?}, got {:?} in {status:?}",
            d.bad_fields
        );
    }
}

// ---------------------------------------------------------------- values

/// Parses an RFC 3339 string (e.g. `"2023-08-11T10:04:00+02:00"`) into a
/// protobuf `Timestamp`.
pub fn ts(s: &str) -> Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339");
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Nanoseconds since the epoch of a timestamp that must be set; a total
/// order key for comparing timestamps.
pub fn nanos(t: &Option<Timestamp>) -> i128 {
    let t = t.as_ref().expect("timestamp set");
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
}

/// A fresh, unique `request_id` (UUIDv7).
pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A field mask naming these paths.
pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// An incident (kind `Incident`) with only its title set, ready to create.
pub fn plain_incident(title: &str) -> Incident {
    Incident {
        title: title.into(),
        kind: IncidentKind::Incident as i32,
        ..Default::default()
    }
}

/// An impact of `level` on component `c`.
pub fn impact(c: &Component, level: ImpactLevel) -> ComponentImpact {
    ComponentImpact {
        component_id: c.id.clone(),
        impact: level as i32,
    }
}

// ---------------------------------------------------------------- calls

/// Creates a component named `name` under `parent` (`""` for a root).
pub async fn create_component(srv: &TestServer, name: &str, parent: &str) -> Component {
    srv.components()
        .await
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: name.into(),
                parent_id: parent.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create component")
        .into_inner()
        .component
        .expect("component")
}

/// Creates `incident` (no request_id) and returns it as stored.
pub async fn create_incident(
    client: &mut IncidentServiceClient<Channel>,
    incident: Incident,
) -> Incident {
    client
        .create_incident(CreateIncidentRequest {
            incident: Some(incident),
            ..Default::default()
        })
        .await
        .expect("create incident")
        .into_inner()
        .incident
        .expect("incident")
}

/// Posts a status update on incident `id` with these component impacts,
/// occurring at `at` (RFC 3339; `None` for now).
pub async fn post_status_update(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
    message: &str,
    impacts: Vec<ComponentImpact>,
    at: Option<&str>,
) -> PostStatusUpdateResponse {
    client
        .post_status_update(PostStatusUpdateRequest {
            incident_id: id.into(),
            status: status as i32,
            message: message.into(),
            component_impacts: impacts,
            occur_time: at.map(ts),
            ..Default::default()
        })
        .await
        .expect("post status update")
        .into_inner()
}

/// Every timeline event matching `req`, following `next_page_token` to the
/// end (`req.page_token` is the first page's token).
pub async fn list_all_timeline_events(
    client: &mut TimelineServiceClient<Channel>,
    mut req: ListTimelineEventsRequest,
) -> Vec<TimelineEvent> {
    let mut out = Vec::new();
    loop {
        let page = client
            .list_timeline_events(req.clone())
            .await
            .expect("list timeline events")
            .into_inner();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}
