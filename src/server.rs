//! Assembles the tonic server: the four incident.v1 services, health,
//! reflection (v1 and v1alpha), a tracing span per RPC, graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server as TonicServer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::metrics::grpc_code;

use std::sync::Arc;

use tonic::transport::ServerTlsConfig;

use crate::admission::AdmissionLayer;
use crate::api::action_items::ActionItems;
use crate::api::components::Components;
use crate::api::incidents::Incidents;
use crate::api::timeline::Timeline;
use crate::auth::{AuthLayer, Tokens};
use crate::config::{LimitArgs, ServeArgs};
use crate::connection::{ConnLimits, TrackLayer};
use crate::domain::limits::REQUEST_MAX_BYTES;
use crate::proto::action_item_service_server::ActionItemServiceServer;
use crate::proto::component_service_server::ComponentServiceServer;
use crate::proto::incident_service_server::IncidentServiceServer;
use crate::proto::timeline_service_server::TimelineServiceServer;
use crate::quota::Quotas;
use crate::store::{Store, StoreOptions};

/// What `serve` needs to run: the settings of [`ServeArgs`] with the files
/// they name already read.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: String,
    pub store: StoreOptions,
    /// Connection, stream, call and subscriber limits and timeouts.
    pub limits: LimitArgs,
    /// Seeds to load before serving (already loaded ones are skipped).
    pub seed_dir: Option<std::path::PathBuf>,
    /// Bearer tokens; `None` serves open, on loopback only.
    pub tokens: Option<Arc<Tokens>>,
    /// PEM certificate chain and key: serve TLS.
    pub tls: Option<TlsFiles>,
    /// How long shutdown waits for calls and streams before cutting them off.
    pub shutdown_grace: Duration,
}

/// Where the TLS certificate chain and private key are (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Config {
    /// The server `incidentd serve` with these settings runs (without seeds:
    /// the caller resolves the seed folder). Reads the tokens file.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Config> {
        Ok(Config {
            listen: args.listen,
            database: args.db.database.clone(),
            store: args.store.clone(),
            limits: args.limits.clone(),
            seed_dir: None,
            tokens: args
                .tokens_file
                .as_deref()
                .map(Tokens::load)
                .transpose()?
                .map(Arc::new),
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            shutdown_grace: args.shutdown_grace,
        })
    }

    /// A server on `listen` and `database` with every other setting at its default.
    pub fn new(listen: SocketAddr, database: impl Into<String>) -> Config {
        let defaults = ServeArgs::default();
        Config {
            listen,
            database: database.into(),
            store: defaults.store,
            limits: defaults.limits,
            seed_dir: None,
            tokens: None,
            tls: None,
            shutdown_grace: defaults.shutdown_grace,
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    store: Store,
    grace: Duration,
}

impl Server {
    /// Opens the database and starts serving; returns once the socket listens.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        if config.tokens.is_none() && !config.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve without authentication on non-loopback address {}: \
                 give a --tokens-file, or listen on 127.0.0.1 or ::1",
                config.listen
            );
        }
        let tls = match &config.tls {
            None => None,
            Some(files) => {
                let cert = std::fs::read(&files.cert)
                    .with_context(|| format!("reading TLS certificate {}", files.cert.display()))?;
                let key = std::fs::read(&files.key)
                    .with_context(|| format!("reading TLS key {}", files.key.display()))?;
                Some(
                    ServerTlsConfig::new()
                        .identity(tonic::transport::Identity::from_pem(cert, key))
                        .timeout(config.limits.handshake_timeout),
                )
            }
        };
        let store = Store::open(&config.database, config.store.clone())
            .await
            .with_context(|| {
                format!(
                    "opening database {}",
                    crate::store::redacted(&config.database)
                )
            })?;
        crate::metrics::watch_database_size(store.clone(), Duration::from_secs(15));
        if let Some(dir) = &config.seed_dir {
            load_seeds(&store, dir).await?;
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let nofile = crate::connection::raise_nofile_limit();
        // The read pool, the writer's connections, and on PostgreSQL the
        // tail, the listener and the lease.
        let database_connections =
            config.store.read_connections + config.store.write_connections as u32 + 3;
        let conn_limits = ConnLimits::new(&config.limits, nofile, database_connections);
        tracing::info!(
            open_file_limit = nofile,
            max_connections = conn_limits.max_connections,
            "connection cap"
        );
        if conn_limits.max_connections < config.limits.max_connections {
            tracing::warn!(
                requested = config.limits.max_connections,
                max_connections = conn_limits.max_connections,
                "--max-connections lowered to fit the open-file limit; raise it (ulimit -n, LimitNOFILE=) to allow more"
            );
        }
        let incoming = crate::connection::incoming(listener, conn_limits);
        if config.tokens.is_none() {
            tracing::warn!(%addr, "serving without authentication (open mode, loopback only); the actor is the x-actor metadata value");
        }

        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, tonic_health::ServingStatus::Serving).await;

        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let svc_store = store.clone();
        let auth = AuthLayer::new(config.tokens.clone());
        let quotas = Quotas::new(&config.limits, config.tokens.as_deref());
        let admission = AdmissionLayer::new(quotas.clone(), config.limits.request_read_timeout);
        let streams_per_connection = config.limits.max_streams_per_connection;
        let task = tokio::spawn(async move {
            let incidents = IncidentServiceServer::new(Incidents::new(svc_store.clone()))
                .max_decoding_message_size(REQUEST_MAX_BYTES);
            let components = ComponentServiceServer::new(Components::new(svc_store.clone()))
                .max_decoding_message_size(REQUEST_MAX_BYTES);
            let timeline = TimelineServiceServer::new(Timeline::new(svc_store.clone(), quotas))
                .max_decoding_message_size(REQUEST_MAX_BYTES);
            let action_items = ActionItemServiceServer::new(ActionItems::new(svc_store.clone()))
                .max_decoding_message_size(REQUEST_MAX_BYTES);
            let health_on_stop = health.clone();
            let hub = svc_store.hub().clone();
            let mut builder = TonicServer::builder();
            if let Some(tls) = tls {
                builder = builder.tls_config(tls)?;
            }
            builder
                // Dead streaming clients are found by HTTP/2 pings and reaped.
                .http2_keepalive_interval(Some(Duration::from_secs(30)))
                .http2_keepalive_timeout(Some(Duration::from_secs(10)))
                .max_concurrent_streams(streams_per_connection)
                .layer(TrackLayer)
                .layer(
                    TraceLayer::new_for_grpc()
                        .make_span_with(rpc_span)
                        .on_request(())
                        .on_response(on_response)
                        .on_body_chunk(())
                        .on_eos(on_eos)
                        .on_failure(()),
                )
                .layer(crate::metrics::MetricsLayer)
                .layer(auth)
                .layer(admission)
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(incidents)
                .add_service(components)
                .add_service(timeline)
                .add_service(action_items)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = shutdown_rx.await;
                    tracing::info!("shutting down: draining in-flight requests");
                    set_health(&health_on_stop, tonic_health::ServingStatus::NotServing).await;
                    // tonic waits for open streams: end them, each after it has
                    // delivered everything committed so far.
                    hub.shut_down();
                })
                .await?;
            Ok(())
        });
        Ok(Server {
            addr,
            shutdown: Some(shutdown_tx),
            task,
            store,
            grace: config.shutdown_grace,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting calls, lets those in flight finish and ends every
    /// stream with UNAVAILABLE, within the grace period; past it, cuts off
    /// whatever is left (a client that never reads). Then commits what the
    /// writer holds and closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = match tokio::time::timeout(self.grace, &mut self.task).await {
            Ok(joined) => joined.map_err(anyhow::Error::from).and_then(|r| r),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "grace period over: cutting off the calls and streams still open");
                self.task.abort();
                Ok(())
            }
        };
        self.store.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Health names: each service, and "" for the server as a whole, so probes
/// that ask for no particular service see the drain too.
const HEALTH_NAMES: [&str; 5] = [
    "",
    <IncidentServiceServer<Incidents> as tonic::server::NamedService>::NAME,
    <ComponentServiceServer<Components> as tonic::server::NamedService>::NAME,
    <TimelineServiceServer<Timeline> as tonic::server::NamedService>::NAME,
    <ActionItemServiceServer<ActionItems> as tonic::server::NamedService>::NAME,
];

async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    for name in HEALTH_NAMES {
        health.set_service_status(name, status).await;
    }
}

/// Loads the seeds of `dir` and logs what each one did.
pub async fn load_seeds(store: &Store, dir: &std::path::Path) -> anyhow::Result<()> {
    let seeds = crate::seed::read_dir(dir)?;
    for outcome in crate::seed::load(store, seeds).await? {
        match outcome {
            crate::seed::Outcome::Loaded { key, reference } => {
                tracing::info!(%key, %reference, "seed loaded")
            }
            crate::seed::Outcome::Skipped { key } => {
                tracing::info!(%key, "seed already loaded; skipped")
            }
        }
    }
    Ok(())
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        // Both reflection versions are described by both services, so
        // `grpcurl list` (which speaks v1alpha) shows v1 as well.
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false)
}

/// One span per RPC with its method; the code and latency are logged when the
/// call ends (in the headers for errors, in the trailers otherwise).
fn rpc_span(req: &http::Request<tonic::body::Body>) -> Span {
    tracing::info_span!("rpc", method = %req.uri().path())
}

fn on_response<B>(res: &http::Response<B>, latency: Duration, _: &Span) {
    if let Some(code) = grpc_code(res.headers()) {
        tracing::info!(code = ?code, latency_us = latency.as_micros() as u64, "rpc finished");
    }
}

fn on_eos(trailers: Option<&http::HeaderMap>, latency: Duration, _: &Span) {
    let code = trailers.and_then(grpc_code).unwrap_or(tonic::Code::Ok);
    tracing::info!(code = ?code, latency_us = latency.as_micros() as u64, "rpc finished");
}
