//! One TLS session over the control channel (one per key_id), client or server side: drives rustls'
//! unbuffered state machine with the reassembled control-channel stream and collects what it produces.
//! Both roles run the same loop ([`step`]); only the rustls connection type differs.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};

use zeroize::Zeroize;

use crate::reliable::MAX_SEND_QUEUE;

/// Why the TLS session failed.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsError {
    /// rustls could not start a session.
    Start,
    /// The handshake or a record failed; the rustls error says which check.
    Tls(rustls::Error),
    /// The peer closed the TLS session.
    Closed,
    /// A write would queue more than [`MAX_SEND_QUEUE`](crate::reliable::MAX_SEND_QUEUE) plaintext bytes.
    QueueFull,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Start => f.write_str("TLS: could not start the session"),
            TlsError::Tls(e) => write!(f, "TLS: {e}"),
            TlsError::Closed => f.write_str("TLS: peer closed the session"),
            TlsError::QueueFull => f.write_str("TLS: too much plaintext waiting to be sent"),
        }
    }
}

/// The rustls connection of one side.
enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// What the state loop writes to: everything of a [`TlsSession`] except the connection and its input.
#[derive(Default)]
struct Buffers {
    /// TLS bytes produced for the peer, not yet taken by the caller.
    outgoing: Vec<u8>,
    /// Plaintext writes waiting for the handshake to allow application data; one TLS write each.
    app_out: VecDeque<Vec<u8>>,
    /// Decrypted application-data records, one entry per record.
    app_in: VecDeque<Vec<u8>>,
    closed: bool,
}

/// A TLS session (client or server side) fed from and feeding the reliability layer.
pub struct TlsSession {
    conn: Conn,
    /// Received TLS bytes not yet consumed by rustls.
    incoming: Vec<u8>,
    bufs: Buffers,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("server", &matches!(self.conn, Conn::Server(_)))
            .field("handshaking", &self.is_handshaking())
            .finish()
    }
}

/// Plaintext still queued either way (a key-method-2 message, a PUSH_REPLY with an auth-token) is wiped.
impl Drop for TlsSession {
    fn drop(&mut self) {
        self.bufs.app_out.iter_mut().for_each(Zeroize::zeroize);
        self.bufs.app_in.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl TlsSession {
    /// Starts a client session; the ClientHello is available from [`take_outgoing`](Self::take_outgoing)
    /// after the first [`process`](Self::process).
    pub fn client(config: Arc<ClientConfig>) -> Result<Self, TlsError> {
        // An IP-address name makes rustls send no SNI, as OpenVPN (§5.1); our verifier ignores the name.
        let name = ServerName::IpAddress(rustls::pki_types::IpAddr::V4(
            rustls::pki_types::Ipv4Addr::from([0, 0, 0, 0]),
        ));
        let conn = UnbufferedClientConnection::new(config, name).map_err(|_| TlsError::Start)?;
        Ok(Self::with(Conn::Client(conn)))
    }

    /// Starts a server session: it waits for the client's ClientHello.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, TlsError> {
        let conn = UnbufferedServerConnection::new(config).map_err(|_| TlsError::Start)?;
        Ok(Self::with(Conn::Server(conn)))
    }

    fn with(conn: Conn) -> Self {
        TlsSession {
            conn,
            incoming: Vec::new(),
            bufs: Buffers::default(),
        }
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        match &self.conn {
            Conn::Client(c) => c.is_handshaking(),
            Conn::Server(c) => c.is_handshaking(),
        }
    }

    /// The peer's certificate chain (end entity first), once the handshake verified it.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match &self.conn {
            Conn::Client(c) => c.peer_certificates(),
            Conn::Server(c) => c.peer_certificates(),
        }
    }

    /// Appends in-order control-channel payload bytes (TLS records, arbitrarily split).
    pub fn feed(&mut self, tls_bytes: &[u8]) {
        self.incoming.extend_from_slice(tls_bytes);
    }

    /// Queues one application write (a key-method-2 message or a NUL-terminated control message).
    /// Refused when the writes waiting for the handshake would exceed
    /// [`MAX_SEND_QUEUE`](crate::reliable::MAX_SEND_QUEUE) bytes.
    pub fn write(&mut self, plaintext: Vec<u8>) -> Result<(), TlsError> {
        if self.bufs.app_out_len().saturating_add(plaintext.len()) > MAX_SEND_QUEUE {
            return Err(TlsError::QueueFull);
        }
        self.bufs.app_out.push_back(plaintext);
        Ok(())
    }

    /// Plaintext bytes written and not yet encrypted, plus TLS bytes not yet taken.
    pub fn queued_bytes(&self) -> usize {
        self.bufs.app_out_len() + self.bufs.outgoing.len()
    }

    /// TLS bytes to hand to the reliability layer.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.bufs.outgoing)
    }

    /// The next decrypted application record (the caller wipes it once read if it may hold secrets).
    pub fn pop_record(&mut self) -> Option<Vec<u8>> {
        self.bufs.app_in.pop_front()
    }

    /// Runs rustls until it needs more input: consumes fed bytes, produces outgoing TLS bytes and records.
    pub fn process(&mut self) -> Result<(), TlsError> {
        if self.bufs.closed {
            return Err(TlsError::Closed);
        }
        // Bounded: each state either consumes input, emits output or ends the loop.
        for _ in 0..10_000 {
            let (discard, done) = match &mut self.conn {
                Conn::Client(c) => step(c.process_tls_records(&mut self.incoming), &mut self.bufs),
                Conn::Server(c) => step(c.process_tls_records(&mut self.incoming), &mut self.bufs),
            };
            let discard = discard.min(self.incoming.len());
            self.incoming.drain(..discard);
            if let Some(result) = done {
                return result;
            }
        }
        Ok(())
    }
}

impl Buffers {
    /// Bytes in `app_out` (at most [`MAX_SEND_QUEUE`]; a handful of writes during the handshake).
    fn app_out_len(&self) -> usize {
        self.app_out.iter().map(Vec::len).sum()
    }
}

/// One turn of rustls' state machine, the same for both roles: returns how many input bytes to discard
/// and, when the loop must end, its result.
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    bufs: &mut Buffers,
) -> (usize, Option<Result<(), TlsError>>) {
    let UnbufferedStatus { mut discard, state } = status;
    let done = match state {
        Err(e) => Some(Err(TlsError::Tls(e))),
        Ok(ConnectionState::ReadTraffic(mut traffic)) => {
            let mut failed = None;
            while let Some(record) = traffic.next_record() {
                match record {
                    Ok(r) => {
                        discard += r.discard;
                        bufs.app_in.push_back(r.payload.to_vec());
                    }
                    Err(e) => {
                        failed = Some(Err(TlsError::Tls(e)));
                        break;
                    }
                }
            }
            failed
        }
        Ok(ConnectionState::EncodeTlsData(mut enc)) => {
            let start = bufs.outgoing.len();
            bufs.outgoing.resize(start + 4096, 0);
            loop {
                let buf = bufs.outgoing.get_mut(start..).unwrap_or_default();
                match enc.encode(buf) {
                    Ok(n) => {
                        bufs.outgoing.truncate(start + n);
                        break;
                    }
                    Err(EncodeError::InsufficientSize(s)) => {
                        bufs.outgoing.resize(start + s.required_size, 0);
                    }
                    Err(_) => {
                        bufs.outgoing.truncate(start);
                        break;
                    }
                }
            }
            None
        }
        Ok(ConnectionState::TransmitTlsData(mut tx)) => {
            if let Some(mut w) = tx.may_encrypt_app_data() {
                encrypt_all(&mut bufs.app_out, &mut bufs.outgoing, |d, o| {
                    w.encrypt(d, o)
                });
            }
            tx.done();
            None
        }
        Ok(ConnectionState::WriteTraffic(mut w)) => {
            encrypt_all(&mut bufs.app_out, &mut bufs.outgoing, |d, o| {
                w.encrypt(d, o)
            });
            Some(Ok(()))
        }
        Ok(ConnectionState::PeerClosed) | Ok(ConnectionState::Closed) => {
            bufs.closed = true;
            Some(Err(TlsError::Closed))
        }
        // BlockedHandshake (more input needed) and early data (never enabled) end the turn.
        Ok(_) => Some(Ok(())),
    };
    (discard, done)
}

fn encrypt_all(
    app_out: &mut VecDeque<Vec<u8>>,
    outgoing: &mut Vec<u8>,
    mut encrypt: impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
) {
    while let Some(mut data) = app_out.pop_front() {
        let start = outgoing.len();
        outgoing.resize(start + data.len() + 256, 0);
        loop {
            let buf = outgoing.get_mut(start..).unwrap_or_default();
            match encrypt(&data, buf) {
                Ok(n) => {
                    outgoing.truncate(start + n);
                    break;
                }
                Err(EncryptError::InsufficientSize(s)) => {
                    outgoing.resize(start + s.required_size, 0)
                }
                Err(_) => {
                    outgoing.truncate(start);
                    break;
                }
            }
        }
        // The plaintext (key-method 2: pre-master, password) is not needed once encrypted.
        data.zeroize();
    }
}
