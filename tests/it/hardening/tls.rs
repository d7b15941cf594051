//! TLS: a round trip with a self-signed certificate; plaintext and
//! untrusting clients get nothing.

use std::time::Duration;

use incident_client::tonic::Status;
use incident_client::tonic::transport::{Certificate, Channel, ClientTlsConfig};
use incident_client::*;
use incidentd::server::TlsFiles;
use tonic_health::pb::health_check_response::ServingStatus;

use super::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_round_trip_with_a_self_signed_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_pem = cert.cert.pem();
    let files = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let srv = TestServer::start_with(Options {
        tls: Some(TlsFiles {
            cert: cert_path,
            key: key_path,
        }),
        ..Options::default()
    })
    .await;
    let port = srv.addr().port();

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("TLS connect");
    assert_eq!(
        health(ch.clone()).await.expect("health over TLS"),
        ServingStatus::Serving as i32
    );
    let mut incidents = IncidentServiceClient::new(ch.clone());
    let created = incidents
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Over TLS")),
            ..Default::default()
        })
        .await
        .expect("create over TLS")
        .into_inner()
        .incident
        .unwrap();
    let got = incidents
        .get_incident(GetIncidentRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .expect("get over TLS")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(got.title, "Over TLS");

    // A plaintext client against the TLS port gets nothing.
    let plain = async {
        let ch = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        health(ch).await
    }
    .await;
    assert!(plain.is_err(), "plaintext call on the TLS port: {plain:?}");

    // A TLS client that does not trust the certificate is refused too.
    let untrusted = async {
        let ch = Channel::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(ClientTlsConfig::new().domain_name("localhost"))
            .map_err(|e| Status::unavailable(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        health(ch).await
    }
    .await;
    assert!(
        untrusted.is_err(),
        "untrusted certificate accepted: {untrusted:?}"
    );

    // The TLS client is still served.
    assert_eq!(
        health(ch).await.expect("health over TLS"),
        ServingStatus::Serving as i32
    );
}
