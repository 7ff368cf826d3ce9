//! The control channel of one key state (one key_id, §3, §4), on either side: reliability, TLS,
//! key-method 2 and the text messages that follow, over *plain* control packets. Wrapping (tls-auth,
//! tls-crypt, tls-crypt-v2) happens one layer up; nothing here knows about sockets, data keys or timers
//! beyond `now`.
//!
//! The two roles differ in three places only: who speaks first (the client's reset), which TLS side
//! runs, and the order of the key-method-2 messages (the client writes its own as soon as TLS is up; the
//! server answers the client's). Everything else (ACKs, retransmission, the in-order TLS stream,
//! control messages) is the same code.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroize;

use crate::crypto::prf::{derive_key2_legacy, Km2Randoms};
use crate::crypto::{Role, KEY2_LEN};
use crate::reliable::{ReliableRecv, ReliableSend, MAX_ACKS_PER_PACKET, MAX_ACKS_PIGGYBACK};
use crate::session::{self, ClientKeySource, KeyMethod2, Km2Error, ServerKeySource};
use crate::tls::{TlsError, TlsSession};
use crate::wire::tlv::EarlyNegotiation;
use crate::wire::{AckBlock, ControlRepr, KeyId, Opcode, SessionId};

/// Why a key state's handshake failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HandshakeError {
    /// TLS failed (certificate, alert, protocol).
    Tls(TlsError),
    /// The peer's key-method-2 message was malformed.
    KeyMethod2(Km2Error),
    /// The server's reset carried malformed early-negotiation TLVs (§2.7: fatal).
    BadEarlyNegotiation,
    /// More than [`MAX_SEND_QUEUE`](crate::reliable::MAX_SEND_QUEUE) bytes wait to be sent: the peer does
    /// not acknowledge what we send.
    SendQueueFull,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Tls(e) => write!(f, "{e}"),
            HandshakeError::KeyMethod2(e) => write!(f, "{e}"),
            HandshakeError::BadEarlyNegotiation => {
                f.write_str("server reset: malformed early-negotiation TLV")
            }
            HandshakeError::SendQueueFull => {
                f.write_str("control channel: send queue full, the peer acknowledges nothing")
            }
        }
    }
}

/// Something the owner must act on, produced while processing control packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEvent {
    /// Client side: the server's key-method-2 message arrived: data keys can be derived once options are
    /// known.
    ServerKeys(ServerKeySource),
    /// Server side: the client's key-method-2 message arrived (ours is sent in answer): its credentials
    /// and peer-info, for authentication and cipher negotiation.
    ClientKeys(ClientHelloInfo),
    /// A NUL-terminated control message (PUSH_REPLY, AUTH_FAILED, PUSH_REQUEST, ...), as bytes without
    /// the NUL.
    Message(Vec<u8>),
}

/// What a client tells the server in its key-method-2 message besides its key material. The password
/// is wiped when dropped; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    /// The client's options (OCC) string.
    pub options: alloc::string::String,
    /// `auth-user-pass` username (empty if none).
    pub username: alloc::string::String,
    /// `auth-user-pass` password or auth-token (empty if none).
    pub password: alloc::string::String,
    /// Peer-info `KEY=VALUE` lines.
    pub peer_info: alloc::string::String,
}

impl fmt::Debug for ClientHelloInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHelloInfo")
            .field("username", &self.username)
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .field("peer_info", &self.peer_info)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientHelloInfo {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

/// Where the key state is in the §3 sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the peer's reset (a client's hard reset is answered before a key state exists on a
    /// UDP server, see `server::handshake`).
    PreStart,
    /// TLS handshake running (on a server: until the client's key-method-2 message arrives).
    Tls,
    /// Client side: TLS up, our key-method-2 message sent; waiting for the server's.
    SentKey,
    /// Both key-method-2 messages exchanged.
    GotKey,
}

/// How a key state begins.
#[derive(Debug, Clone, Copy)]
pub struct KeyStart {
    /// The key_id (0 for a new session).
    pub key_id: KeyId,
    /// Our session id.
    pub local_sid: SessionId,
    /// The peer's session id: `None` for key_id 0 (learnt from its reset), known for renegotiations.
    pub remote_sid: Option<SessionId>,
    /// Our reset: HARD_RESET_CLIENT_V2 (V3 for tls-crypt-v2) or HARD_RESET_SERVER_V2 for key_id 0,
    /// SOFT_RESET_V1 for a renegotiation (§9).
    pub reset_opcode: Opcode,
    /// Initial retransmit timeout (`tls-timeout`), milliseconds.
    pub retransmit_ms: u64,
}

/// One key_id's control channel.
pub struct KeyState {
    key_id: KeyId,
    local_sid: SessionId,
    remote_sid: Option<SessionId>,
    send: ReliableSend,
    recv: ReliableRecv,
    tls: TlsSession,
    phase: Phase,
    role: Role,
    /// The client's key source: ours on a client, the peer's (once its key-method-2 message arrived) on
    /// a server.
    client_keys: Option<ClientKeySource>,
    /// The server's key source: ours on a server, the peer's on a client.
    server_keys: Option<ServerKeySource>,
    /// Our key-method-2 message: a client writes it once the handshake completes, a server in answer to
    /// the client's.
    km2: Option<Vec<u8>>,
    events: VecDeque<KeyEvent>,
    /// Set once any authenticated packet from the server arrived (for the burst reschedule).
    heard_from_peer: bool,
    /// Before the server's session id is known: the sender session id of the packet that acknowledged
    /// our reset while naming our session id (only the real server can: it saw our reset).
    reset_acked_by: Option<SessionId>,
}

impl fmt::Debug for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyState")
            .field("key_id", &self.key_id)
            .field("phase", &self.phase)
            .finish()
    }
}

/// The key-method-2 message not yet handed to TLS and messages not yet taken are wiped (pre-master,
/// password, auth-token); `client_keys` wipes itself.
impl Drop for KeyState {
    fn drop(&mut self) {
        if let Some(km2) = self.km2.as_mut() {
            km2.zeroize();
        }
        for event in self.events.iter_mut() {
            if let KeyEvent::Message(bytes) = event {
                bytes.zeroize();
            }
        }
    }
}

impl KeyState {
    /// Starts a client key state: queues our reset with message-id 0 and prepares TLS and the
    /// key-method-2 message (see [`KeyStart`]).
    pub fn new_client(
        start: KeyStart,
        tls: TlsSession,
        client_keys: ClientKeySource,
        km2: Vec<u8>,
    ) -> Self {
        let mut key = Self::new(start, tls, Role::Client, km2);
        key.client_keys = Some(client_keys);
        key
    }

    /// Starts a server key state: queues our reset with message-id 0 (sent once the peer's reset is
    /// known); `km2` is our key-method-2 message, sent in answer to the client's.
    pub fn new_server(
        start: KeyStart,
        tls: TlsSession,
        server_keys: ServerKeySource,
        km2: Vec<u8>,
    ) -> Self {
        let mut key = Self::new(start, tls, Role::Server, km2);
        key.server_keys = Some(server_keys);
        key
    }

    /// UDP server, key_id 0: the resets were exchanged statelessly before this key state existed (the
    /// client's reset was answered with the cookie reset, and the client's third packet acknowledged
    /// it): mark our reset acknowledged and the client's received, and start TLS.
    pub fn resets_exchanged(&mut self) {
        self.send.on_ack(0);
        if self.recv.on_packet(0, &[]) == crate::reliable::RecvOutcome::Accepted {
            let _ = self.recv.pop_in_order();
        }
        let _ = self.recv.take_acks(MAX_ACKS_PER_PACKET, false);
        self.heard_from_peer = true;
        self.phase = Phase::Tls;
    }

    fn new(start: KeyStart, tls: TlsSession, role: Role, km2: Vec<u8>) -> Self {
        let KeyStart {
            key_id,
            local_sid,
            remote_sid,
            reset_opcode,
            retransmit_ms,
        } = start;
        let mut send = ReliableSend::new(Opcode::ControlV1 as u8);
        send.set_initial_timeout_ms(retransmit_ms);
        send.queue_packet(reset_opcode as u8, Vec::new());
        KeyState {
            key_id,
            local_sid,
            remote_sid,
            send,
            recv: ReliableRecv::new(),
            tls,
            phase: Phase::PreStart,
            role,
            client_keys: None,
            server_keys: None,
            km2: Some(km2),
            events: VecDeque::new(),
            heard_from_peer: false,
            reset_acked_by: None,
        }
    }

    /// This state's key_id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Where the handshake is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Our session id.
    pub fn local_sid(&self) -> SessionId {
        self.local_sid
    }

    /// The peer's session id once its reset arrived.
    pub fn remote_sid(&self) -> Option<SessionId> {
        self.remote_sid
    }

    /// Tests: the server's key-method-2 randoms, as if its message had arrived.
    #[cfg(test)]
    pub(crate) fn set_server_keys(&mut self, keys: ServerKeySource) {
        self.server_keys = Some(keys);
    }

    /// Which side of the control channel this key state is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's verified certificate chain (end entity first), once TLS verified it.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.tls.peer_certificates()
    }

    /// The data-channel key material of this key_id (legacy PRF, §5.6), once both key-method-2 messages
    /// were exchanged: the same derivation on both sides, with the client's and the server's session ids
    /// in their places.
    pub fn derive_key2(&self) -> Option<zeroize::Zeroizing<[u8; KEY2_LEN]>> {
        let (ck, sk, remote) = (
            self.client_keys.as_ref()?,
            self.server_keys.as_ref()?,
            self.remote_sid?,
        );
        let (client_sid, server_sid) = match self.role {
            Role::Client => (self.local_sid, remote),
            Role::Server => (remote, self.local_sid),
        };
        let key2 = derive_key2_legacy(
            &ck.pre_master,
            &Km2Randoms {
                random1: ck.random1,
                random2: ck.random2,
            },
            &Km2Randoms {
                random1: sk.random1,
                random2: sk.random2,
            },
            &client_sid,
            &server_sid,
        );
        Some(key2)
    }

    /// The next event for the engine.
    pub fn pop_event(&mut self) -> Option<KeyEvent> {
        self.events.pop_front()
    }

    /// Queues a control message (`PUSH_REQUEST`, `EXIT`) as one TLS write.
    pub fn send_message(&mut self, text: &str) -> Result<(), HandshakeError> {
        self.tls
            .write(session::message::encode(text))
            .map_err(|_| HandshakeError::SendQueueFull)?;
        self.pump_tls()
    }

    /// Bytes waiting to be sent: plaintext writes waiting for TLS and TLS bytes not yet cut into packets
    /// (each part at most [`MAX_SEND_QUEUE`](crate::reliable::MAX_SEND_QUEUE)).
    pub fn queued_bytes(&self) -> usize {
        self.tls.queued_bytes() + self.send.stream_len()
    }

    /// True when every reliable packet we sent has been acknowledged.
    pub fn all_acked(&self) -> bool {
        self.send.is_idle()
    }

    /// Handles an unwrapped control packet of this key_id from the peer.
    pub fn on_packet(&mut self, repr: &ControlRepr<'_>, now_ms: u64) -> Result<(), HandshakeError> {
        // ACKs must name our session (§2.1); the wrapping already authenticated the packet.
        let acks_name_us = match repr.acks.remote_session_id() {
            Some(sid) if sid != self.local_sid => return Ok(()),
            Some(_) => true,
            None => false,
        };
        if self.role == Role::Server && self.remote_sid.is_none() {
            // A server's peer speaks first: its hard reset (message-id 0) names its session.
            let reset = matches!(
                repr.opcode,
                Opcode::ControlHardResetClientV2 | Opcode::ControlHardResetClientV3
            );
            if !(reset && repr.message_id == Some(0) && self.key_id == KeyId::ZERO) {
                return Ok(());
            }
            self.remote_sid = Some(repr.session_id);
            self.reset_acked_by = Some(repr.session_id);
        }
        if self.remote_sid.is_none() {
            // Until the server's session id is known, only a packet that names our session id (which a
            // blind spoofer cannot know without tls-auth/tls-crypt) moves anything: an empty ACK block
            // proves nothing, and adopting its sender's id would lock the real server out.
            if !acks_name_us && self.reset_acked_by != Some(repr.session_id) {
                return Ok(());
            }
            if acks_name_us && repr.acks.ids().contains(&0) {
                self.reset_acked_by = Some(repr.session_id);
            }
        }
        if let Some(remote) = self.remote_sid {
            // Only a retransmitted server reset may name another id: the cookie slot can change (§2.8).
            if repr.session_id != remote && repr.opcode != Opcode::ControlHardResetServerV2 {
                return Ok(());
            }
        }
        for id in repr.acks.ids() {
            self.send.on_ack(*id);
        }
        if !self.heard_from_peer {
            self.heard_from_peer = true;
            self.send.reschedule_all(now_ms);
        }
        let Some(message_id) = repr.message_id else {
            return Ok(()); // P_ACK_V1
        };
        match repr.opcode {
            Opcode::ControlHardResetServerV2
            | Opcode::ControlHardResetClientV2
            | Opcode::ControlHardResetClientV3
            | Opcode::ControlSoftResetV1 => {
                // Resets carry message-id 0 (§4); a SOFT_RESET only on key_id > 0, a hard reset (from the
                // other side) only on 0.
                let expected = match (self.key_id == KeyId::ZERO, self.role) {
                    (false, _) => repr.opcode == Opcode::ControlSoftResetV1,
                    (true, Role::Client) => repr.opcode == Opcode::ControlHardResetServerV2,
                    (true, Role::Server) => matches!(
                        repr.opcode,
                        Opcode::ControlHardResetClientV2 | Opcode::ControlHardResetClientV3
                    ),
                };
                if message_id != 0 || !expected {
                    return Ok(());
                }
                if self.remote_sid.is_none() {
                    // Accept the server's reset only from the session that acknowledged ours.
                    if self.reset_acked_by != Some(repr.session_id) {
                        return Ok(());
                    }
                    self.remote_sid = Some(repr.session_id);
                }
                if self.recv.on_packet(message_id, &[]) != crate::reliable::RecvOutcome::Accepted {
                    return Ok(()); // retransmitted reset: ACK queued again, nothing else
                }
                let _ = self.recv.pop_in_order();
                if repr.opcode == Opcode::ControlHardResetServerV2 && self.role == Role::Client {
                    let early = EarlyNegotiation::parse(repr.payload)
                        .map_err(|_| HandshakeError::BadEarlyNegotiation)?;
                    if early.resend_wkc() {
                        self.send.override_next_opcode(Opcode::ControlWkcV1 as u8);
                    }
                }
                self.phase = Phase::Tls;
                self.pump_tls()
            }
            // P_CONTROL_WKC_V1 is a P_CONTROL_V1 with the client key appended (removed by the wrap). A
            // renegotiation (key_id > 0, the peer's session known) may begin without the peer's
            // SOFT_RESET: OpenVPN 3 answers a server's SOFT_RESET with its ClientHello as message-id 0,
            // and OpenVPN 2.x takes any first message-id 0 alike (the reset is an empty message).
            Opcode::ControlV1 | Opcode::ControlWkcV1
                if self.phase != Phase::PreStart
                    || (self.key_id != KeyId::ZERO && self.remote_sid.is_some()) =>
            {
                if self.phase == Phase::PreStart {
                    self.phase = Phase::Tls;
                }
                self.recv.on_packet(message_id, repr.payload);
                let mut stream = Vec::new();
                self.recv.drain_in_order(&mut stream);
                if !stream.is_empty() {
                    self.tls.feed(&stream);
                    self.pump_tls()?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Runs TLS: sends the key-method-2 message once the handshake is done, moves TLS output into the
    /// reliability layer, and turns received application records into events.
    fn pump_tls(&mut self) -> Result<(), HandshakeError> {
        if self.phase == Phase::PreStart {
            return Ok(());
        }
        self.tls.process().map_err(HandshakeError::Tls)?;
        if self.role == Role::Client && !self.tls.is_handshaking() {
            if let Some(km2) = self.km2.take() {
                self.tls
                    .write(km2)
                    .map_err(|_| HandshakeError::SendQueueFull)?;
                self.phase = Phase::SentKey;
                self.tls.process().map_err(HandshakeError::Tls)?;
            }
        }
        self.flush_tls()?;
        while let Some(mut record) = self.tls.pop_record() {
            let result = self.on_record(&record);
            // The server's randoms, a PUSH_REPLY's auth-token: nothing stays in freed memory.
            record.zeroize();
            result?;
        }
        Ok(())
    }

    /// Encrypts what waits for TLS and moves TLS output into the reliability layer.
    fn flush_tls(&mut self) -> Result<(), HandshakeError> {
        self.tls.process().map_err(HandshakeError::Tls)?;
        let out = self.tls.take_outgoing();
        if !out.is_empty() {
            self.send
                .queue_stream(&out)
                .map_err(|_| HandshakeError::SendQueueFull)?;
        }
        Ok(())
    }

    fn on_record(&mut self, record: &[u8]) -> Result<(), HandshakeError> {
        if self.role == Role::Server && self.phase == Phase::Tls {
            // The client's key-method-2 message is its first application record (§5.2); ours answers it.
            let km2 = KeyMethod2::parse(record, true).map_err(HandshakeError::KeyMethod2)?;
            let keys = km2
                .client_key_source()
                .ok_or(HandshakeError::KeyMethod2(Km2Error::Truncated))?;
            let text = |b: &[u8]| alloc::string::String::from_utf8_lossy(b).into_owned();
            let info = ClientHelloInfo {
                options: text(km2.options),
                username: text(km2.username),
                password: text(km2.password),
                peer_info: text(km2.peer_info),
            };
            self.client_keys = Some(keys);
            self.events.push_back(KeyEvent::ClientKeys(info));
            if let Some(ours) = self.km2.take() {
                self.tls
                    .write(ours)
                    .map_err(|_| HandshakeError::SendQueueFull)?;
            }
            self.phase = Phase::GotKey;
            return self.flush_tls();
        }
        if self.phase == Phase::SentKey {
            // The server's key-method-2 message is its first application record (§5.2).
            let km2 = KeyMethod2::parse(record, false).map_err(HandshakeError::KeyMethod2)?;
            let keys = km2
                .server_key_source()
                .ok_or(HandshakeError::KeyMethod2(Km2Error::Truncated))?;
            self.server_keys = Some(keys.clone());
            self.events.push_back(KeyEvent::ServerKeys(keys));
            self.phase = Phase::GotKey;
            return Ok(());
        }
        for msg in session::split_messages(record) {
            self.events.push_back(KeyEvent::Message(msg.to_vec()));
        }
        Ok(())
    }

    /// The next plain control packet to send at `now_ms`, written into `out` (cleared first).
    /// `max_payload(opcode)` is the TLS payload room in a packet with that opcode.
    pub fn poll_packet(
        &mut self,
        now_ms: u64,
        max_payload: usize,
        wkc_len: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let remote = self.remote_sid.unwrap_or(SessionId::ZERO);
        if self.send.wants_transmit(now_ms) {
            let acks = if self.remote_sid.is_some() {
                self.recv.take_acks(MAX_ACKS_PIGGYBACK, false)
            } else {
                Vec::new()
            };
            let room = if self.send.has_opcode_override() {
                max_payload.saturating_sub(wkc_len)
            } else {
                max_payload
            };
            if let Some(p) = self.send.poll_transmit(now_ms, room) {
                let Some(opcode) = Opcode::from_u8(p.opcode) else {
                    return false;
                };
                let repr = ControlRepr {
                    opcode,
                    key_id: self.key_id,
                    session_id: self.local_sid,
                    acks: ack_block(remote, &acks),
                    message_id: Some(p.id),
                    payload: p.payload,
                };
                return emit(&repr, out);
            }
        }
        if self.remote_sid.is_some() && self.recv.has_pending_acks() {
            let acks = self.recv.take_acks(MAX_ACKS_PER_PACKET, true);
            let repr = ControlRepr {
                opcode: Opcode::AckV1,
                key_id: self.key_id,
                session_id: self.local_sid,
                acks: ack_block(remote, &acks),
                message_id: None,
                payload: &[],
            };
            return emit(&repr, out);
        }
        false
    }

    /// The earliest retransmission deadline (ms), or `Some(0)`-like immediacy if ACKs are pending.
    pub fn poll_at_ms(&self) -> Option<u64> {
        if self.recv.has_pending_acks() {
            return Some(0);
        }
        self.send.poll_at()
    }
}

fn ack_block(remote: SessionId, ids: &[u32]) -> AckBlock {
    let mut block = AckBlock::new(remote);
    for id in ids {
        block.try_push(*id);
    }
    block
}

fn emit(repr: &ControlRepr<'_>, out: &mut Vec<u8>) -> bool {
    out.resize(repr.buffer_len(), 0);
    match repr.emit(out) {
        Ok(n) => {
            out.truncate(n);
            true
        }
        Err(_) => {
            out.clear();
            false
        }
    }
}
