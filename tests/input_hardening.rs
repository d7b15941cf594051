//! Hardening II: the attacks of the outside probe, replayed against a real
//! server (127.0.0.1:0, a temporary SQLite file). Self-contained: it shares
//! no helpers with the other test binaries.
//!
//! - errors repeat at most a short prefix of unbounded input, and their
//!   headers stay under 8 KiB, so a client with a 16 KiB header limit reads
//!   them;
//! - an undecodable request is INVALID_ARGUMENT / MESSAGE_MALFORMED, never
//!   INTERNAL, and the server goes on serving;
//! - two Authorization headers are UNAUTHENTICATED;
//! - the database, its -wal and -shm, and backups are 0600; a backup refuses
//!   a dangling symlink and creates nothing through it.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use incident_client::{
    Component, ComponentImpact, ComponentServiceClient, CreateComponentRequest,
    CreateIncidentRequest, GetIncidentRequest, ImpactLevel, Incident, IncidentKind,
    IncidentServiceClient,
};
use incidentd::server::{Config, Server};
use prost::bytes::{Buf, BufMut};
use sqlx::{Connection, Row};
use tempfile::TempDir;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The header budget of an error, as the server promises it.
const ERROR_HEADERS_MAX_BYTES: usize = 8 * 1024;
/// grpcio's default limit on a received header list.
const CLIENT_MAX_HEADER_LIST: u32 = 16 * 1024;
/// Longest any one test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

const GET_INCIDENT: &str = "/incident.v1.IncidentService/GetIncident";
const CREATE_INCIDENT: &str = "/incident.v1.IncidentService/CreateIncident";

/// Runs a test body, failing it past [`TEST_TIMEOUT`].
async fn bounded<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("the test ran past its time limit")
}

/// A running server on a fresh database in a temporary folder.
struct Fixture {
    server: Server,
    _dir: TempDir,
    db: PathBuf,
    url: String,
}

impl Fixture {
    async fn start() -> Fixture {
        Self::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut Config)) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("incidentd.db");
        let mut config = Config::new(
            "127.0.0.1:0".parse().unwrap(),
            db.to_str().expect("utf-8 path"),
        );
        configure(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let url = format!("http://{}", server.addr());
        Fixture {
            server,
            _dir: dir,
            db,
            url,
        }
    }

    async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url.clone())
            .expect("url")
            .http2_max_header_list_size(CLIENT_MAX_HEADER_LIST)
            .connect()
            .await
            .expect("connect")
    }

    async fn incidents(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.channel().await).max_decoding_message_size(usize::MAX)
    }

    async fn stop(self) {
        self.server.stop().await.expect("server stops");
    }

    /// Every row of every table: equal states mean nothing was written.
    async fn db_state(&self) -> String {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open db");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
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
        conn.close().await.ok();
        out
    }
}

/// The bytes of the status headers of an error (grpc-status, grpc-message,
/// grpc-status-details-bin) as sent, counted as HTTP/2 counts a header list.
fn error_header_bytes(status: &Status) -> usize {
    let mut headers = http::HeaderMap::new();
    status.add_header(&mut headers).expect("encodable status");
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("grpc-"))
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

fn assert_short_error(status: &Status, code: Code, want_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), want_reason, "{status:?}");
    let bytes = error_header_bytes(status);
    assert!(
        bytes < ERROR_HEADERS_MAX_BYTES,
        "{bytes} bytes of error headers"
    );
}

/// A codec that sends and receives message bytes as they are.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Calls `path` with `message` as the bytes of the request message.
async fn raw_call(
    channel: Channel,
    path: &'static str,
    message: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("not ready: {e}")))?;
    grpc.unary(
        tonic::Request::new(message),
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn create_component(f: &Fixture, name: &str) -> Component {
    ComponentServiceClient::new(f.channel().await)
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: name.into(),
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

async fn create_incident(f: &Fixture, title: &str) -> Incident {
    f.incidents()
        .await
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: title.into(),
                kind: IncidentKind::Incident as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create incident")
        .into_inner()
        .incident
        .expect("incident")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// ------------------------------------------------- 5. errors repeat input

#[tokio::test]
async fn a_3mb_id_gets_a_short_error_that_a_16kib_client_reads() {
    bounded(async {
        let f = Fixture::start().await;
        let id = "x".repeat(3 * 1024 * 1024);
        let err = f
            .incidents()
            .await
            .get_incident(GetIncidentRequest { id: id.clone() })
            .await
            .expect_err("a 3 MB id is no id");
        assert_short_error(&err, Code::InvalidArgument, "FIELD_INVALID");
        assert!(err.message().len() < 300, "message: {}", err.message());
        let details = err.get_error_details();
        let bad = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "id");
        let prefix = format!("\"{}\"…", "x".repeat(64));
        assert!(
            bad[0].description.starts_with(&prefix),
            "{}",
            bad[0].description
        );
        assert!(bad[0].description.len() < 200, "{}", bad[0].description);

        // A well-formed id of nothing is NOT_FOUND, as short.
        let err = f
            .incidents()
            .await
            .get_incident(GetIncidentRequest {
                id: "0190a0a0-0000-7000-8000-000000000000".into(),
            })
            .await
            .expect_err("no such incident");
        assert_short_error(&err, Code::NotFound, "NOT_FOUND");
        f.stop().await;
    })
    .await
}

#[tokio::test]
async fn ten_thousand_duplicate_impacts_get_a_short_error_and_write_nothing() {
    bounded(async {
        let f = Fixture::start().await;
        let c = create_component(&f, "api").await;
        let before = f.db_state().await;
        let impacts = vec![
            ComponentImpact {
                component_id: c.id.clone(),
                impact: ImpactLevel::PartialOutage as i32,
            };
            10_000
        ];
        let err = f
            .incidents()
            .await
            .create_incident(CreateIncidentRequest {
                incident: Some(Incident {
                    title: "many impacts".into(),
                    kind: IncidentKind::Incident as i32,
                    component_impacts: impacts,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("duplicates are refused");
        assert_short_error(&err, Code::InvalidArgument, "FIELD_INVALID");
        let details = err.get_error_details();
        let bad = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(bad.len(), 20, "violations reported");
        assert_eq!(bad[0].field, "incident.component_impacts");
        assert_eq!(bad[1].field, "incident.component_impacts[1].component_id");
        assert_eq!(bad[1].description, "component listed twice");
        let last = &bad[19].description;
        assert!(last.ends_with("… and 9980 more violations"), "{last}");
        assert!(
            err.message().ends_with(" more violations"),
            "{}",
            err.message()
        );
        assert_eq!(f.db_state().await, before, "nothing was written");
        f.stop().await;
    })
    .await
}

// ------------------------------------------- 6. undecodable requests

#[tokio::test]
async fn malformed_messages_are_invalid_argument_and_the_server_goes_on() {
    bounded(async {
        let f = Fixture::start().await;
        let incident = create_incident(&f, "still served").await;
        let before = f.db_state().await;
        let mut nested = vec![(15 << 3) | 3; 150];
        nested.extend(std::iter::repeat_n((15 << 3) | 4, 150));
        let cases: Vec<(&str, &'static str, Vec<u8>)> = vec![
            // GetIncidentRequest.id (1, length-delimited) = ff fe.
            ("bad UTF-8", GET_INCIDENT, vec![0x0a, 0x02, 0xff, 0xfe]),
            // id announces 10 bytes, 3 follow.
            (
                "truncated",
                GET_INCIDENT,
                vec![0x0a, 0x0a, b'a', b'b', b'c'],
            ),
            // id sent as a varint.
            ("wrong wire type", GET_INCIDENT, vec![0x08, 0x01]),
            // 150 nested groups of an unknown field: past prost's 100.
            ("recursion", GET_INCIDENT, nested),
            // CreateIncidentRequest.incident (1) { title (3) = ff }.
            (
                "bad UTF-8, nested",
                CREATE_INCIDENT,
                vec![0x0a, 0x03, 0x1a, 0x01, 0xff],
            ),
        ];
        for (what, path, bytes) in cases {
            let err = raw_call(f.channel().await, path, bytes)
                .await
                .expect_err(what);
            assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
            assert_eq!(reason(&err), "MESSAGE_MALFORMED", "{what}: {err:?}");
            assert_eq!(
                err.get_error_details().error_info().unwrap().domain,
                "incidentd"
            );
            assert!(
                err.message().starts_with("request message is malformed: "),
                "{what}: {}",
                err.message()
            );
            assert!(error_header_bytes(&err) < ERROR_HEADERS_MAX_BYTES);
        }
        // A well-formed message through the same raw path still decodes.
        let ok = raw_call(
            f.channel().await,
            GET_INCIDENT,
            prost::Message::encode_to_vec(&GetIncidentRequest {
                id: incident.id.clone(),
            }),
        )
        .await;
        assert!(ok.is_ok(), "{ok:?}");
        let got = f
            .incidents()
            .await
            .get_incident(GetIncidentRequest {
                id: incident.id.clone(),
            })
            .await
            .expect("the server still answers")
            .into_inner()
            .incident
            .expect("incident");
        assert_eq!(got.title, "still served");
        assert_eq!(f.db_state().await, before, "nothing was written");
        f.stop().await;
    })
    .await
}

// ---------------------------------------------- 8. Authorization header

#[tokio::test]
async fn two_authorization_headers_are_unauthenticated() {
    bounded(async {
        let tokens = incidentd::auth::Tokens::parse(&format!(
            "[[token]]\nname = \"vic\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
            incidentd::auth::token_digest("v-secret")
        ))
        .expect("tokens");
        let f = Fixture::start_with(|c| c.tokens = Some(Arc::new(tokens))).await;
        let mut client = f.incidents().await;
        let request = |values: &[&str]| {
            let mut r = tonic::Request::new(GetIncidentRequest { id: "INC-1".into() });
            for v in values {
                r.metadata_mut()
                    .append("authorization", v.parse().expect("ascii"));
            }
            r
        };
        // One good header passes authentication (the incident does not exist).
        let err = client
            .get_incident(request(&["Bearer v-secret"]))
            .await
            .expect_err("no INC-1");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        for values in [
            &["Bearer v-secret", "Bearer v-secret"][..],
            &["Bearer v-secret", "Bearer nope"][..],
            &["Bearer nope", "Bearer v-secret"][..],
        ] {
            let err = client
                .get_incident(request(values))
                .await
                .expect_err("two headers");
            assert_short_error(&err, Code::Unauthenticated, "UNAUTHENTICATED");
            assert!(err.message().contains("more than one"), "{}", err.message());
        }
        // The scheme in any case, several spaces.
        let err = client
            .get_incident(request(&["bEARER   v-secret"]))
            .await
            .expect_err("no INC-1");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        for bad in [
            "Bearer\tv-secret",
            "Bearer v-secret junk",
            "Bearer v-secret,x",
        ] {
            let err = client
                .get_incident(request(&[bad]))
                .await
                .expect_err("malformed");
            assert_short_error(&err, Code::Unauthenticated, "UNAUTHENTICATED");
        }
        f.stop().await;
    })
    .await
}

// ------------------------------------------------- 7, 9. file modes

#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_0600() {
    bounded(async {
        let f = Fixture::start().await;
        // A write, so the WAL certainly holds something.
        create_incident(&f, "on disk").await;
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", f.db.display()));
            assert_eq!(format!("{:o}", mode(&path)), "600", "{}", path.display());
        }
        f.stop().await;
    })
    .await
}

#[tokio::test]
async fn backup_refuses_a_dangling_symlink_and_writes_new_files_0600() {
    bounded(async {
        let f = Fixture::start().await;
        create_incident(&f, "backed up").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let database = f.db.to_str().unwrap();

        // A dangling symlink: refused, and its target is not created.
        let target = dir.path().join("target.db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = incidentd::store::Store::backup(database, &link)
            .await
            .expect_err("a symlink is refused");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!target.exists(), "nothing created through the link");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );

        // An existing file: refused and left as it was.
        let existing = dir.path().join("existing.db");
        std::fs::write(&existing, b"keep").unwrap();
        incidentd::store::Store::backup(database, &existing)
            .await
            .expect_err("an existing file is refused");
        assert_eq!(std::fs::read(&existing).unwrap(), b"keep");

        // A new path: a 0600 copy that opens and holds the incident.
        let dest = dir.path().join("backup.db");
        incidentd::store::Store::backup(database, &dest)
            .await
            .expect("backup");
        assert_eq!(format!("{:o}", mode(&dest)), "600");
        let url = format!("sqlite://{}?mode=ro", dest.display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open backup");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(n, 1);
        conn.close().await.ok();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["backup.db", "existing.db", "link.db"]);
        f.stop().await;
    })
    .await
}
