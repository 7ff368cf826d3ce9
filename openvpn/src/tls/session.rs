//! One TLS client session over the control channel (one per key_id): drives rustls' unbuffered state
//! machine with the reassembled control-channel stream and collects what it produces.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ClientConfig;

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

/// A TLS client session fed from and feeding the reliability layer.
pub struct TlsClient {
    conn: UnbufferedClientConnection,
    /// Received TLS bytes not yet consumed by rustls.
    incoming: Vec<u8>,
    /// TLS bytes produced for the peer, not yet taken by the caller.
    outgoing: Vec<u8>,
    /// Plaintext writes waiting for the handshake to allow application data; one TLS write each.
    app_out: VecDeque<Vec<u8>>,
    /// Decrypted application-data records, one entry per record.
    app_in: VecDeque<Vec<u8>>,
    closed: bool,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("handshaking", &self.is_handshaking())
            .finish()
    }
}

/// Plaintext still queued either way (a key-method-2 message, a PUSH_REPLY with an auth-token) is wiped.
impl Drop for TlsClient {
    fn drop(&mut self) {
        self.app_out.iter_mut().for_each(Zeroize::zeroize);
        self.app_in.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl TlsClient {
    /// Starts a session; the ClientHello is available from [`take_outgoing`](Self::take_outgoing) after
    /// the first [`process`](Self::process).
    pub fn new(config: Arc<ClientConfig>) -> Result<Self, TlsError> {
        // An IP-address name makes rustls send no SNI, as OpenVPN (§5.1); our verifier ignores the name.
        let name = ServerName::IpAddress(rustls::pki_types::IpAddr::V4(
            rustls::pki_types::Ipv4Addr::from([0, 0, 0, 0]),
        ));
        let conn = UnbufferedClientConnection::new(config, name).map_err(|_| TlsError::Start)?;
        Ok(TlsClient {
            conn,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            app_out: VecDeque::new(),
            app_in: VecDeque::new(),
            closed: false,
        })
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Appends in-order control-channel payload bytes (TLS records, arbitrarily split).
    pub fn feed(&mut self, tls_bytes: &[u8]) {
        self.incoming.extend_from_slice(tls_bytes);
    }

    /// Queues one application write (a key-method-2 message or a NUL-terminated control message).
    /// Refused when the writes waiting for the handshake would exceed
    /// [`MAX_SEND_QUEUE`](crate::reliable::MAX_SEND_QUEUE) bytes.
    pub fn write(&mut self, plaintext: Vec<u8>) -> Result<(), TlsError> {
        if self.app_out_len().saturating_add(plaintext.len()) > MAX_SEND_QUEUE {
            return Err(TlsError::QueueFull);
        }
        self.app_out.push_back(plaintext);
        Ok(())
    }

    /// Plaintext bytes written and not yet encrypted, plus TLS bytes not yet taken.
    pub fn queued_bytes(&self) -> usize {
        self.app_out_len() + self.outgoing.len()
    }

    /// Bytes in `app_out` (at most [`MAX_SEND_QUEUE`]; a handful of writes during the handshake).
    fn app_out_len(&self) -> usize {
        self.app_out.iter().map(Vec::len).sum()
    }

    /// TLS bytes to hand to the reliability layer.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.outgoing)
    }

    /// The next decrypted application record (the caller wipes it once read if it may hold secrets).
    pub fn pop_record(&mut self) -> Option<Vec<u8>> {
        self.app_in.pop_front()
    }

    /// Runs rustls until it needs more input: consumes fed bytes, produces outgoing TLS bytes and records.
    pub fn process(&mut self) -> Result<(), TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        // Bounded: each state either consumes input, emits output or ends the loop.
        for _ in 0..10_000 {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let mut done = false;
            let mut result = Ok(());
            match state {
                Err(e) => {
                    result = Err(TlsError::Tls(e));
                    done = true;
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(r) => {
                                discard += r.discard;
                                self.app_in.push_back(r.payload.to_vec());
                            }
                            Err(e) => {
                                result = Err(TlsError::Tls(e));
                                done = true;
                                break;
                            }
                        }
                    }
                }
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    let start = self.outgoing.len();
                    self.outgoing.resize(start + 4096, 0);
                    loop {
                        let buf = self.outgoing.get_mut(start..).unwrap_or_default();
                        match enc.encode(buf) {
                            Ok(n) => {
                                self.outgoing.truncate(start + n);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(s)) => {
                                self.outgoing.resize(start + s.required_size, 0);
                            }
                            Err(_) => {
                                self.outgoing.truncate(start);
                                break;
                            }
                        }
                    }
                }
                Ok(ConnectionState::TransmitTlsData(mut tx)) => {
                    if let Some(mut w) = tx.may_encrypt_app_data() {
                        encrypt_all(&mut self.app_out, &mut self.outgoing, |d, o| {
                            w.encrypt(d, o)
                        });
                    }
                    tx.done();
                }
                Ok(ConnectionState::WriteTraffic(mut w)) => {
                    encrypt_all(&mut self.app_out, &mut self.outgoing, |d, o| {
                        w.encrypt(d, o)
                    });
                    done = true;
                }
                Ok(ConnectionState::PeerClosed) | Ok(ConnectionState::Closed) => {
                    self.closed = true;
                    result = Err(TlsError::Closed);
                    done = true;
                }
                Ok(_) => done = true,
            }
            let discard = discard.min(self.incoming.len());
            self.incoming.drain(..discard);
            if done {
                return result;
            }
        }
        Ok(())
    }
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
