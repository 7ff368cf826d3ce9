//! Client-side CPU of one TLS handshake as the engine runs it: `tls::client_config` + `TlsSession` (rustls
//! unbuffered, ring, the engine's own server-certificate verifier) against an in-memory rustls server that
//! asks for a client certificate, as an OpenVPN server does. Only the time spent in the client's calls is
//! counted (criterion `iter_custom`); the server's share is excluded. ECDSA P-256 certificates from a
//! throwaway PKI that `openssl` makes in a temporary directory (the bench is skipped without `openssl`).
//!
//! Not covered: the reliability layer, tls-crypt-v2 wrapping and key-method 2 (a few HMACs: microseconds);
//! `make bench` measures a whole connect of build/ovpn-ping against the real server.
//!
//! Run with `cargo bench -p openvpn --bench handshake`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use openvpn::keys::pem;
use openvpn::tls::{self, KeyDer, TlsSession, TlsSettings, WallClock};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{UnbufferedServerConnection, WebPkiClientVerifier};
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use rustls::{RootCertStore, ServerConfig};

/// The PKI's DER parts.
struct Pki {
    ca: Vec<u8>,
    server_cert: Vec<u8>,
    server_key: Vec<u8>,
    client_cert: Vec<u8>,
    client_key: Vec<u8>,
}

/// A P-256 CA, a server certificate (EKU serverAuth) and a client certificate (EKU clientAuth).
fn make_pki(dir: &Path) -> Option<Pki> {
    let script = r#"set -e
o() { openssl "$@" 2>/dev/null; }
o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
o req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out ca.crt
for n in server client; do
  o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $n.key
  o req -new -key $n.key -subj "/CN=bench $n" -out $n.csr
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%sAuth\n' $n > $n.ext
  o x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2 -extfile $n.ext -out $n.crt
done"#;
    std::fs::create_dir_all(dir).ok()?;
    let ok = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let der = |file: &str| -> Option<Vec<u8>> {
        let text = std::fs::read_to_string(dir.join(file)).ok()?;
        Some(pem::blocks(&text).ok()?.into_iter().next()?.der)
    };
    Some(Pki {
        ca: der("ca.crt")?,
        server_cert: der("server.crt")?,
        server_key: der("server.key")?,
        client_cert: der("client.crt")?,
        client_key: der("client.key")?,
    })
}

/// The peer: rustls' unbuffered server, driven the way `TlsSession` drives the client.
struct Server {
    conn: UnbufferedServerConnection,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
}

impl Server {
    /// Runs until rustls needs more input; true once the handshake is complete.
    fn process(&mut self) -> bool {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let (stop, done) = match state.expect("server TLS") {
                ConnectionState::EncodeTlsData(mut enc) => {
                    let start = self.outgoing.len();
                    self.outgoing.resize(start + 16384, 0);
                    // 16 KiB holds any handshake message of this PKI.
                    let n = enc
                        .encode(&mut self.outgoing[start..])
                        .expect("server handshake message fits 16 KiB");
                    self.outgoing.truncate(start + n);
                    (false, false)
                }
                ConnectionState::TransmitTlsData(tx) => {
                    tx.done();
                    (false, false)
                }
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        discard += record.expect("record").discard;
                    }
                    (false, false)
                }
                ConnectionState::BlockedHandshake => (true, false),
                ConnectionState::WriteTraffic(_) => (true, true),
                _ => (true, false),
            };
            self.incoming.drain(..discard);
            if stop {
                return done;
            }
        }
    }
}

/// One handshake; returns the time spent in the client's calls.
fn handshake(
    client_config: &Arc<rustls::ClientConfig>,
    server_config: &Arc<ServerConfig>,
) -> Duration {
    let mut server = Server {
        conn: UnbufferedServerConnection::new(server_config.clone()).expect("server"),
        incoming: Vec::new(),
        outgoing: Vec::new(),
    };
    let t = Instant::now();
    let mut client = TlsSession::client(client_config.clone()).expect("client");
    client.process().expect("client hello");
    let mut to_server = client.take_outgoing();
    let mut client_time = t.elapsed();
    for _ in 0..8 {
        server.incoming.extend_from_slice(&to_server);
        let server_done = server.process();
        if server_done && !client.is_handshaking() {
            return client_time;
        }
        let to_client = std::mem::take(&mut server.outgoing);
        let t = Instant::now();
        client.feed(&to_client);
        client.process().expect("client handshake");
        to_server = client.take_outgoing();
        client_time += t.elapsed();
    }
    panic!("handshake did not complete");
}

fn bench_handshake(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("oxv-bench-handshake-{}", std::process::id()));
    let pki = make_pki(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let Some(pki) = pki else {
        eprintln!("handshake bench skipped: openssl could not make the PKI");
        return;
    };
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    let settings = TlsSettings {
        ca: vec![pki.ca.clone()],
        cert_chain: vec![pki.client_cert.clone()],
        key: Some(KeyDer::Pkcs8(pki.client_key.clone())),
        checks: tls::PeerChecks {
            remote_cert_tls: Some(tls::CertPurpose::Server),
            ..Default::default()
        },
        ..Default::default()
    };
    let client_config = tls::client_config(&settings, WallClock::new(unix)).expect("client config");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca.clone()))
        .expect("root");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let server_config = |versions: &[&'static rustls::SupportedProtocolVersion]| {
        Arc::new(
            ServerConfig::builder_with_details(provider.clone(), Arc::new(WallClock::new(unix)))
                .with_protocol_versions(versions)
                .expect("versions")
                .with_client_cert_verifier(verifier.clone())
                .with_single_cert(
                    vec![CertificateDer::from(pki.server_cert.clone())],
                    PrivateKeyDer::Pkcs8(pki.server_key.clone().into()),
                )
                .expect("server config"),
        )
    };

    let mut group = c.benchmark_group("handshake_client_cpu");
    for (name, versions) in [
        ("TLS1.3-P256", &[&rustls::version::TLS13][..]),
        ("TLS1.2-P256", &[&rustls::version::TLS12][..]),
    ] {
        let server = server_config(versions);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| handshake(&client_config, &server)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_handshake);
criterion_main!(benches);
