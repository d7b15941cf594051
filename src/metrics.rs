//! Prometheus metrics. Recorded through the `metrics` facade everywhere (a
//! no-op until an exporter is installed) and served by
//! `metrics-exporter-prometheus` on `--metrics-listen`.

use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

/// Calls answered, by method and gRPC code.
pub const RPC_REQUESTS: &str = "incidentd_rpc_requests_total";
/// Time to answer (to the response headers for streams), by method.
pub const RPC_DURATION: &str = "incidentd_rpc_duration_seconds";
/// Requests committed per group commit.
pub const WRITER_BATCH: &str = "incidentd_writer_batch_size";
/// Statements each group commit ran, BEGIN to COMMIT.
pub const WRITER_GROUP_STATEMENTS: &str = "incidentd_writer_group_statements";
/// SQLite: WAL frames (database pages) each commit of the writer appended:
/// what a group costs the disk.
pub const WAL_FRAMES: &str = "incidentd_sqlite_wal_frames_per_commit";
/// Write requests waiting for the writer.
pub const WRITER_QUEUE: &str = "incidentd_writer_queue_depth";
/// Open SubscribeTimeline streams.
pub const SUBSCRIBERS: &str = "incidentd_subscribers_open";
/// How far behind the head an event was when a subscriber got it.
pub const SUBSCRIBER_LAG: &str = "incidentd_subscriber_lag_events";
/// GetIncident lookups in the incident cache, by result (hit, miss).
pub const INCIDENT_CACHE: &str = "incidentd_incident_cache_lookups_total";
/// 1 on the replica that runs the background work (request_id pruning), 0
/// on the others; always 1 on SQLite.
pub const BACKGROUND_LEASE: &str = "incidentd_background_lease_held";
/// Size of the database file(s) in bytes.
pub const DATABASE_BYTES: &str = "incidentd_database_bytes";

/// Installs the exporter and its HTTP listener (GET /metrics).
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(RPC_DURATION.to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ],
        )?
        .install()?;
    Ok(())
}

/// Counts calls and their latency.
#[derive(Clone, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;
    fn layer(&self, inner: S) -> Metered<S> {
        Metered { inner }
    }
}

/// See [`MetricsLayer`].
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = method_label(req.uri().path());
        let started = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await;
            // An error is answered in the headers; a success's status comes in
            // the trailers, after the body, where a layer does not look.
            let code = match &response {
                Ok(r) => grpc_code(r.headers()).unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Unknown,
            };
            metrics::counter!(RPC_REQUESTS, "method" => method.clone(), "code" => format!("{code:?}")).increment(1);
            metrics::histogram!(RPC_DURATION, "method" => method)
                .record(started.elapsed().as_secs_f64());
            response
        })
    }
}

/// The label of a request path: the path of a method the server has, or
/// `unknown`, so made-up paths cannot create series without bound.
pub fn method_label(path: &str) -> String {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]
        .into_iter()
        .flat_map(method_paths)
        .collect()
    });
    if known.contains(path) {
        path.to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// Every `/package.Service/Method` an encoded descriptor set declares.
fn method_paths(encoded: &[u8]) -> Vec<String> {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    paths
}

/// The gRPC status code a header (or trailer) map carries, if any.
pub fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

/// Samples the database size every `every`, until the store closes.
pub fn watch_database_size(store: crate::store::Store, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut shutdown = store.hub().shutdown_signal();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tick.tick() => {}
            }
            if let Ok(bytes) = store.size_bytes().await {
                metrics::gauge!(DATABASE_BYTES).set(bytes as f64);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_get_their_own_label() {
        for path in [
            "/incident.v1.IncidentService/GetIncident",
            "/incident.v1.TimelineService/SubscribeTimeline",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(method_label(path), path);
        }
        for path in [
            "/incident.v1.IncidentService/Nope",
            "/made.up/1",
            "/",
            "/incident.v1.IncidentService/GetIncident/extra",
        ] {
            assert_eq!(method_label(path), "unknown");
        }
    }
}
