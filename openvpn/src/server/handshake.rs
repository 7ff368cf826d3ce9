//! The stateless first exchange of a UDP server (wire reference §2.7, §2.8; OpenVPN `ssl_pkt.c`
//! `tls_pre_decrypt_lite`, `mudp.c` `do_pre_decrypt_check`):
//!
//! ```text
//! client                                   server
//!   HARD_RESET_CLIENT_V2/V3 (msg 0)  --->  on_initial: answer, keep nothing
//!                                    <---  HARD_RESET_SERVER_V2, session id = cookie, ACK 0, msg 0
//!   ACK_V1 / CONTROL_V1 / WKC_V1     --->  on_third: echoed session id == cookie? -> Accepted
//! ```
//!
//! Layer: pure functions of one received datagram (the raw UDP payload), the server's immutable settings
//! ([`StatelessHandshake`]) and caller-supplied time. No state is created before [`on_third`] accepts;
//! a flood of spoofed or replayed packets costs CPU only, bounded by [`InitialRateLimit`] for the replies.
//! Every refusal is a [`Refused`] value; [`HandshakeCounters`] tallies them for the status output.
//!
//! [`on_third`]: StatelessHandshake::on_third

use super::cookie::{CookieJar, InitialRateLimit};
use super::wkc::{WkcPolicy, WkcRefusal};
use crate::crypto::control::{
    ControlProtection, ControlWrap, Protection, ProtectionError, UnwrapError,
};
use crate::crypto::data::Role;
use crate::crypto::key2::{Digest, KeyDirection, KEY2_LEN};
use crate::crypto::tls_crypt_v2::{WkcError, MAX_WKC_LEN, MIN_WKC_LEN};
use crate::crypto::{TlsCrypt, TlsCryptV2ServerKey};
use crate::time::Instant;
use crate::wire::packet_id::EARLY_NEG_START;
use crate::wire::tlv::{EarlyNegotiation, EARLY_NEG_FLAG_RESEND_WKC};
use crate::wire::{AckBlock, ControlRepr, KeyId, OpKey, Opcode, ReplayId, SessionId};
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use zeroize::Zeroizing;

/// How many transmissions of its reset a client may have made: each one takes the next replay counter
/// (§2.4), so an honest reset carries counter 1..=this above the start of its sequence (0, or
/// `EARLY_NEG_START` for tls-crypt-v2 early negotiation). Anything else is refused.
pub const MAX_RESET_TRANSMISSIONS: u32 = 16;
/// The largest plain client reset handled (it is 14 bytes: header, empty ACK block, message-id).
const MAX_RESET_PLAIN: usize = 64;
/// The largest plain third packet handled: a control packet of the default control MTU with room to spare.
pub const MAX_THIRD_PLAIN: usize = 2048;
/// Bytes of the plain server reset: header 9, one ACK 13, message-id 4, TLV 6.
const MAX_REPLY_PLAIN: usize = 32;

/// The server's live control-channel protection, built once from its [`ControlProtection`]: the shared
/// wrapper (cloned per client, which gets its own replay state in the [`ControlWrap`] of [`Accepted`]), or
/// for tls-crypt-v2 the expanded server key that unwraps each client's WKc, and the client-key policy.
// One value per server (not per client): the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Live {
    Shared(Protection),
    TlsCryptV2 {
        key: TlsCryptV2ServerKey,
        policy: WkcPolicy,
    },
}

impl Live {
    /// The opcode a client's first packet must carry under this protection.
    fn reset_opcode(&self) -> Opcode {
        match self {
            Live::TlsCryptV2 { .. } => Opcode::ControlHardResetClientV3,
            Live::Shared(_) => Opcode::ControlHardResetClientV2,
        }
    }
}

/// A tls-crypt-v2 client key as unwrapped from the client's WKc.
#[derive(Clone)]
pub struct ClientKey {
    /// Kc, the client's tls-crypt key (also the `original` key of dynamic tls-crypt, §2.9).
    pub kc: Zeroizing<[u8; KEY2_LEN]>,
    /// The metadata (type byte first); show it with [`MetadataDisplay`](super::wkc::MetadataDisplay).
    pub metadata: Vec<u8>,
    /// The WKc as received (for policy and logs; its SHA-256 names it in the revocation list).
    pub wkc: Vec<u8>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("metadata", &super::wkc::MetadataDisplay(&self.metadata))
            .field("wkc_len", &self.wkc.len())
            .finish_non_exhaustive()
    }
}

/// The reply [`StatelessHandshake::on_initial`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Bytes of the wrapped HARD_RESET_SERVER_V2 at the start of `out`; send them back to the peer.
    pub len: usize,
    /// The client's session id.
    pub client_sid: SessionId,
    /// Our session id: the cookie.
    pub server_sid: SessionId,
    /// True when the reply asked a tls-crypt-v2 client to re-send its WKc (early negotiation).
    pub early_negotiation: bool,
}

/// A third packet passed every check: create the session from this.
#[derive(Debug)]
pub struct Accepted {
    /// The client's session id.
    pub client_sid: SessionId,
    /// Our session id (the cookie the client echoed).
    pub server_sid: SessionId,
    /// This session's control wrap, with its own replay state: the received packets are recorded, and
    /// the next packet we send uses replay counter 2 (our reset used 1).
    pub wrap: ControlWrap,
    /// The third packet in plain form (`ControlRepr::parse_bytes` reads it): its ACK of our reset and, for
    /// P_CONTROL_V1 / P_CONTROL_WKC_V1, message 1 with the start of the ClientHello. Feed it to the
    /// session's reliability layer, which has already sent (and had acknowledged) its message 0.
    pub plain: Vec<u8>,
    /// tls-crypt-v2 only: the client key from the WKc.
    pub client_key: Option<ClientKey>,
}

/// Why a datagram from an unknown peer was dropped. Refusals are silent on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Shorter than the opcode, session id, wrapping header or tag.
    Truncated,
    /// Larger than any packet of this phase.
    TooLarge,
    /// Not an opcode this phase accepts under the configured protection.
    UnexpectedOpcode,
    /// key_id is not 0 (the first session of a connection is always key_id 0).
    NonZeroKeyId,
    /// The client's session id is all zero.
    ZeroSessionId,
    /// The tls-crypt-v2 WKc is missing, has a bad length or does not authenticate.
    Wkc(WkcError),
    /// The tls-crypt-v2 client key was refused by the policy (age, revocation).
    Policy(WkcRefusal),
    /// The HMAC or tag did not verify.
    Authentication,
    /// The plain packet does not parse.
    Malformed(crate::wire::Error),
    /// A reset whose replay counter is not at the start of a sequence (1.., or 0x0F000001.. for
    /// early negotiation), as OpenVPN 2.7.6 refuses.
    ResetPacketId,
    /// A reset whose message-id is not 0.
    ResetMessageId,
    /// A reset carrying ACKs.
    ResetHasAcks,
    /// A tls-crypt-v2 client without early negotiation: it cannot re-send its WKc, so the cookie
    /// exchange cannot serve it (OpenVPN's `allow-noncookie` keeps state for it; `force-cookie` refuses).
    NoEarlyNegotiation,
    /// Over the `connect-freq-initial` budget: no reply.
    RateLimited,
    /// A third packet that acknowledges nothing, so it echoes no session id.
    NoAck,
    /// A third packet whose ACKs do not include our reset (0) or include an id above 1.
    AckOutOfHandshake,
    /// A third packet whose message-id is above 1.
    MessageIdOutOfHandshake,
    /// The echoed session id is not the cookie for this client, address and time (also: expired).
    BadCookie,
    /// The replay packet-id of a third packet is invalid (0).
    ReplayId,
}

impl Refused {
    /// Number of counter slots in [`HandshakeCounters`].
    pub const KINDS: usize = 19;

    /// A stable index per kind (nested reasons share their kind's slot).
    pub const fn index(self) -> usize {
        match self {
            Refused::Truncated => 0,
            Refused::TooLarge => 1,
            Refused::UnexpectedOpcode => 2,
            Refused::NonZeroKeyId => 3,
            Refused::ZeroSessionId => 4,
            Refused::Wkc(_) => 5,
            Refused::Policy(_) => 6,
            Refused::Authentication => 7,
            Refused::Malformed(_) => 8,
            Refused::ResetPacketId => 9,
            Refused::ResetMessageId => 10,
            Refused::ResetHasAcks => 11,
            Refused::NoEarlyNegotiation => 12,
            Refused::RateLimited => 13,
            Refused::NoAck => 14,
            Refused::AckOutOfHandshake => 15,
            Refused::MessageIdOutOfHandshake => 16,
            Refused::BadCookie => 17,
            Refused::ReplayId => 18,
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Truncated => f.write_str("packet truncated"),
            Refused::TooLarge => f.write_str("packet too large for the handshake"),
            Refused::UnexpectedOpcode => f.write_str("unexpected opcode from an unknown peer"),
            Refused::NonZeroKeyId => f.write_str("key_id is not 0"),
            Refused::ZeroSessionId => f.write_str("all-zero session id"),
            Refused::Wkc(e) => write!(f, "{e}"),
            Refused::Policy(e) => write!(f, "{e}"),
            Refused::Authentication => f.write_str("control packet failed authentication"),
            Refused::Malformed(e) => write!(f, "malformed control packet: {e}"),
            Refused::ResetPacketId => f.write_str("reset with a replay packet-id not at its start"),
            Refused::ResetMessageId => f.write_str("reset with a message-id other than 0"),
            Refused::ResetHasAcks => f.write_str("reset carrying ACKs"),
            Refused::NoEarlyNegotiation => {
                f.write_str("tls-crypt-v2 client without early negotiation (no cookie possible)")
            }
            Refused::RateLimited => f.write_str("connect-freq-initial exceeded, no reply"),
            Refused::NoAck => f.write_str("third packet without ACK"),
            Refused::AckOutOfHandshake => {
                f.write_str("third packet ACKs ids outside the handshake")
            }
            Refused::MessageIdOutOfHandshake => {
                f.write_str("third packet message-id outside the handshake")
            }
            Refused::BadCookie => f.write_str("invalid or expired session-id cookie"),
            Refused::ReplayId => f.write_str("invalid replay packet-id"),
        }
    }
}

impl From<UnwrapError> for Refused {
    fn from(e: UnwrapError) -> Refused {
        match e {
            UnwrapError::Truncated => Refused::Truncated,
            UnwrapError::Auth => Refused::Authentication,
            UnwrapError::BufferTooSmall => Refused::TooLarge,
            UnwrapError::Replay(_) => Refused::ReplayId,
        }
    }
}

/// Tallies of the stateless handshake, for the status output and the "flood creates no state" test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeCounters {
    /// Resets answered.
    pub replies: u64,
    /// Third packets accepted (sessions created).
    pub accepted: u64,
    refused: [u64; Refused::KINDS],
}

impl HandshakeCounters {
    /// Counts the outcome of [`StatelessHandshake::on_initial`].
    pub fn note_initial(&mut self, outcome: &Result<Reply, Refused>) {
        match outcome {
            Ok(_) => self.replies = self.replies.saturating_add(1),
            Err(r) => self.note_refused(*r),
        }
    }

    /// Counts the outcome of [`StatelessHandshake::on_third`].
    pub fn note_third(&mut self, outcome: &Result<Accepted, Refused>) {
        match outcome {
            Ok(_) => self.accepted = self.accepted.saturating_add(1),
            Err(r) => self.note_refused(*r),
        }
    }

    /// Counts one refusal.
    pub fn note_refused(&mut self, reason: Refused) {
        if let Some(n) = self.refused.get_mut(reason.index()) {
            *n = n.saturating_add(1);
        }
    }

    /// How many datagrams were refused for `reason`'s kind.
    pub fn refused(&self, reason: Refused) -> u64 {
        self.refused.get(reason.index()).copied().unwrap_or(0)
    }

    /// All refusals.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().fold(0u64, |a, n| a.saturating_add(*n))
    }
}

/// The server's settings for the stateless first exchange; immutable, shared by every datagram.
#[derive(Clone, Debug)]
pub struct StatelessHandshake {
    /// Control-channel protection, ready to use.
    control: Live,
    /// The cookie secret.
    pub cookies: CookieJar,
    /// `hand-window` in seconds (default 60): the cookie slot is half of it.
    pub hand_window: u32,
}

/// A datagram from a peer without a session, once its wrapping was removed.
struct Opened {
    op: OpKey,
    id: Option<ReplayId>,
    len: usize,
    /// The per-client protection (tls-crypt-v2) or a copy of the shared one.
    protection: Protection,
    client_key: Option<ClientKey>,
}

impl StatelessHandshake {
    /// Settings with the default `hand-window` for the server's configured protection. Fails for a
    /// tls-crypt-v2 client key (a client's protection).
    pub fn new(
        control: ControlProtection,
        cookies: CookieJar,
    ) -> Result<StatelessHandshake, ProtectionError> {
        let control = match &control {
            ControlProtection::TlsCryptV2Server { key, policy } => Live::TlsCryptV2 {
                key: TlsCryptV2ServerKey::new(key),
                policy: policy.clone(),
            },
            other => Live::Shared(Protection::new(other, Role::Server)?),
        };
        Ok(StatelessHandshake {
            control,
            cookies,
            hand_window: super::cookie::DEFAULT_HAND_WINDOW,
        })
    }

    /// Answers a client's first packet without keeping any state: checks that `datagram` is an authentic
    /// P_CONTROL_HARD_RESET_CLIENT_V2 (V3 for tls-crypt-v2) with key_id 0, message-id 0, no ACKs and a
    /// replay counter at the start of its sequence; takes one reply from `limit`; and writes the wrapped
    /// HARD_RESET_SERVER_V2 (session id = cookie, ACK of message 0, message-id 0, replay counter 1 at
    /// `now_unix`, and the RESEND_WKC TLV for an early-negotiating tls-crypt-v2 client) into `out`.
    /// `now` is the monotonic clock of the rate limit; `now_unix` the wall clock in seconds.
    pub fn on_initial(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        now_unix: u64,
        now: Instant,
        limit: &mut InitialRateLimit,
        out: &mut [u8],
    ) -> Result<Reply, Refused> {
        let mut plain = [0u8; MAX_RESET_PLAIN];
        let opened = self.open(
            datagram,
            &[self.control.reset_opcode()],
            now_unix,
            &mut plain,
        )?;
        let repr = ControlRepr::parse_bytes(plain.get(..opened.len).unwrap_or(&[]))
            .map_err(Refused::Malformed)?;
        if repr.message_id != Some(0) {
            return Err(Refused::ResetMessageId);
        }
        if !repr.acks.is_empty() {
            return Err(Refused::ResetHasAcks);
        }
        let early = match opened.id {
            None => false,
            Some(id) => {
                let (early, offset) = match id.counter.checked_sub(EARLY_NEG_START) {
                    Some(offset) if id.is_early_negotiation() => (true, offset),
                    _ => (false, id.counter),
                };
                if !(1..=MAX_RESET_TRANSMISSIONS).contains(&offset) {
                    return Err(Refused::ResetPacketId);
                }
                early
            }
        };
        // Early negotiation only means something for tls-crypt-v2 (§2.7, `mudp.c`).
        let early = early && opened.op.opcode == Opcode::ControlHardResetClientV3;
        if opened.op.opcode == Opcode::ControlHardResetClientV3 && !early {
            return Err(Refused::NoEarlyNegotiation);
        }
        if !limit.allow(now) {
            return Err(Refused::RateLimited);
        }
        let client_sid = repr.session_id;
        let server_sid =
            self.cookies
                .server_session_id(client_sid, peer, now_unix, self.hand_window);
        let mut acks = AckBlock::new(client_sid);
        acks.try_push(0);
        let mut tlv = [0u8; 6];
        let tlv_len = if early {
            EarlyNegotiation {
                flags: Some(EARLY_NEG_FLAG_RESEND_WKC),
            }
            .emit(&mut tlv)
            .unwrap_or(0)
        } else {
            0
        };
        let reply = ControlRepr {
            opcode: Opcode::ControlHardResetServerV2,
            key_id: KeyId::ZERO,
            session_id: server_sid,
            acks,
            message_id: Some(0),
            payload: tlv.get(..tlv_len).unwrap_or(&[]),
        };
        let mut reply_plain = [0u8; MAX_REPLY_PLAIN];
        let n = reply.emit(&mut reply_plain).map_err(Refused::Malformed)?;
        let id = ReplayId {
            counter: 1,
            time: unix_u32(now_unix),
        };
        let len = opened
            .protection
            .seal(reply_plain.get(..n).unwrap_or(&[]), id, out)
            .map_err(|_| Refused::TooLarge)?;
        Ok(Reply {
            len,
            client_sid,
            server_sid,
            early_negotiation: early,
        })
    }

    /// Accepts a client's third packet: an authentic P_ACK_V1 or P_CONTROL_V1 (P_CONTROL_WKC_V1 carrying
    /// the WKc for tls-crypt-v2) with key_id 0, whose ACKs include our reset (0) and nothing above 1,
    /// whose message-id is at most 1, and whose echoed session id equals the cookie for this client
    /// session id, `peer` and a slot of the last `hand_window` (exactly, in constant time). Only then is
    /// per-client state created: the returned [`Accepted`].
    pub fn on_third(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        now_unix: u64,
        now: Instant,
    ) -> Result<Accepted, Refused> {
        let allowed: &[Opcode] = match self.control {
            Live::TlsCryptV2 { .. } => &[Opcode::ControlWkcV1],
            _ => &[Opcode::AckV1, Opcode::ControlV1],
        };
        let mut plain = Zeroizing::new([0u8; MAX_THIRD_PLAIN]);
        let opened = self.open(datagram, allowed, now_unix, &mut plain[..])?;
        let bytes = plain.get(..opened.len).unwrap_or(&[]);
        let repr = ControlRepr::parse_bytes(bytes).map_err(Refused::Malformed)?;
        let echoed = repr.acks.remote_session_id().ok_or(Refused::NoAck)?;
        let ids = repr.acks.ids();
        if !ids.contains(&0) || ids.iter().any(|&id| id > 1) {
            return Err(Refused::AckOutOfHandshake);
        }
        if repr.message_id.is_some_and(|id| id > 1) {
            return Err(Refused::MessageIdOutOfHandshake);
        }
        let client_sid = repr.session_id;
        if !self
            .cookies
            .check(echoed, client_sid, peer, now_unix, self.hand_window)
        {
            return Err(Refused::BadCookie);
        }
        let mut wrap = ControlWrap::new(opened.protection);
        wrap.resume_after_stateless(opened.id, unix_u32(now_unix), now)
            .map_err(|_| Refused::ReplayId)?;
        Ok(Accepted {
            client_sid,
            server_sid: echoed,
            wrap,
            plain: bytes.to_vec(),
            client_key: opened.client_key,
        })
    }

    /// The checks shared by both phases: opcode in `allowed`, key_id 0, a non-zero session id, then the
    /// WKc (tls-crypt-v2) and the wrapping. Writes the plain packet into `plain`.
    fn open(
        &self,
        datagram: &[u8],
        allowed: &[Opcode],
        now_unix: u64,
        plain: &mut [u8],
    ) -> Result<Opened, Refused> {
        let op = OpKey::parse(datagram).map_err(|e| match e {
            crate::wire::Error::Truncated(_) => Refused::Truncated,
            _ => Refused::UnexpectedOpcode,
        })?;
        if !allowed.contains(&op.opcode) {
            return Err(Refused::UnexpectedOpcode);
        }
        if op.key_id != KeyId::ZERO {
            return Err(Refused::NonZeroKeyId);
        }
        let sid = SessionId::parse(
            datagram.get(1..).unwrap_or(&[]),
            crate::wire::Field::SessionId,
        )
        .map_err(|_| Refused::Truncated)?;
        if sid.is_zero() {
            return Err(Refused::ZeroSessionId);
        }
        let (protection, client_key, wire) = match &self.control {
            Live::Shared(protection) => (protection.clone(), None, datagram),
            Live::TlsCryptV2 { key, policy } => {
                let (front, wkc) = split_wkc(datagram).map_err(Refused::Wkc)?;
                let (kc, metadata) = key.unwrap_client_key(wkc).map_err(Refused::Wkc)?;
                let kc = Zeroizing::new(kc);
                policy
                    .check(&metadata, wkc, now_unix)
                    .map_err(Refused::Policy)?;
                let protection = Protection::TlsCrypt(TlsCrypt::server(&kc));
                let client_key = ClientKey {
                    kc,
                    metadata,
                    wkc: wkc.to_vec(),
                };
                (protection, Some(client_key), front)
            }
        };
        let (id, len) = protection.open(wire, plain)?;
        Ok(Opened {
            op,
            id,
            len,
            protection,
            client_key,
        })
    }
}

/// Splits the WKc off the end of a tls-crypt-v2 packet (§2.7): the last 2 bytes give its length, which
/// must lie in 290..=1024 and leave room for a tls-crypt packet before it.
fn split_wkc(datagram: &[u8]) -> Result<(&[u8], &[u8]), WkcError> {
    let len_at = datagram.len().checked_sub(2).ok_or(WkcError::WkcLength)?;
    let field: [u8; 2] = datagram
        .get(len_at..)
        .and_then(|b| b.try_into().ok())
        .ok_or(WkcError::WkcLength)?;
    let len = usize::from(u16::from_be_bytes(field));
    if !(MIN_WKC_LEN..=MAX_WKC_LEN).contains(&len) {
        return Err(WkcError::WkcLength);
    }
    let min_packet = crate::wire::control::HEADER_LEN + crate::crypto::tls_crypt::OVERHEAD;
    let split = datagram
        .len()
        .checked_sub(len)
        .filter(|&at| at >= min_packet)
        .ok_or(WkcError::WkcLength)?;
    Ok(datagram.split_at(split))
}

/// The 32-bit time of a replay id (OpenVPN truncates `time_t` the same way).
fn unix_u32(now_unix: u64) -> u32 {
    u32::try_from(now_unix & u64::from(u32::MAX)).unwrap_or(0)
}

/// Fuzzing entry point: runs untrusted bytes through both phases under every protection (fixed keys), and
/// through the tls-crypt-v2 path with a valid WKc whose metadata and surrounding packet come from the
/// input. Must never panic.
pub fn fuzz_handshake(data: &[u8]) {
    let key = [0x3cu8; KEY2_LEN];
    let server_key = [0x5au8; 128];
    let peer = SocketAddr::from(([192, 0, 2, 1], 1194));
    let now_unix = 1_700_000_000;
    let policy = WkcPolicy {
        max_age_days: Some(30),
        revoked: super::wkc::RevocationList::new([[0u8; 32]]),
    };
    let controls = [
        ControlProtection::None,
        ControlProtection::TlsAuth {
            key,
            direction: KeyDirection::Normal,
            digest: Digest::Sha1,
        },
        ControlProtection::TlsCrypt { key },
        ControlProtection::TlsCryptV2Server {
            key: server_key,
            policy: policy.clone(),
        },
        ControlProtection::TlsCryptV2Server {
            key: server_key,
            policy: WkcPolicy::default(),
        },
    ];
    let mut out = [0u8; 128];
    for control in controls {
        let Ok(hs) = StatelessHandshake::new(control, CookieJar::new(&[7; 32])) else {
            continue;
        };
        let mut limit = InitialRateLimit::default();
        let _ = hs.on_initial(data, peer, now_unix, Instant::ZERO, &mut limit, &mut out);
        let _ = hs.on_third(data, peer, now_unix, Instant::ZERO);
    }
    fuzz_with_valid_wkc(data, &server_key, peer, now_unix);
}

/// The input's first byte picks the metadata length; that many bytes are the metadata, wrapped under the
/// server key with a fixed Kc; the rest is a plain control packet wrapped with Kc (client role) and sent
/// with the valid WKc appended, to both phases. Drives the code behind a successful WKc unwrap.
fn fuzz_with_valid_wkc(data: &[u8], server_key: &[u8; 128], peer: SocketAddr, now_unix: u64) {
    let Some((&meta_len, rest)) = data.split_first() else {
        return;
    };
    let meta_len = usize::from(meta_len).min(rest.len());
    let (metadata, packet) = rest.split_at(meta_len);
    let kc = [0x42u8; KEY2_LEN];
    let Ok(wkc) = TlsCryptV2ServerKey::new(server_key).wrap_client_key(&kc, metadata) else {
        return;
    };
    let Ok(client) = crate::crypto::TlsCryptV2Client::new(&kc, &wkc) else {
        return;
    };
    let mut wire = alloc::vec![0u8; packet.len() + 64 + wkc.len()];
    let id = ReplayId {
        counter: EARLY_NEG_START + 1,
        time: 1,
    };
    let Ok(n) = client.wrap(packet, id, &mut wire) else {
        return;
    };
    // Append the WKc whatever the opcode, so the server's split always finds it.
    let opcode_carries = OpKey::parse(packet).is_ok_and(|op| op.opcode.carries_wkc());
    let total = if opcode_carries {
        n
    } else {
        match wire.get_mut(n..n + wkc.len()) {
            Some(tail) => {
                tail.copy_from_slice(&wkc);
                n + wkc.len()
            }
            None => return,
        }
    };
    let Some(datagram) = wire.get(..total) else {
        return;
    };
    for policy in [
        WkcPolicy::default(),
        WkcPolicy {
            max_age_days: Some(1),
            revoked: super::wkc::RevocationList::default(),
        },
    ] {
        let Ok(hs) = StatelessHandshake::new(
            ControlProtection::TlsCryptV2Server {
                key: *server_key,
                policy,
            },
            CookieJar::new(&[7; 32]),
        ) else {
            return;
        };
        let mut out = [0u8; 128];
        let mut limit = InitialRateLimit::default();
        if let Ok(reply) = hs.on_initial(
            datagram,
            peer,
            now_unix,
            Instant::ZERO,
            &mut limit,
            &mut out,
        ) {
            let mut back = [0u8; 128];
            if let Some(wire) = out.get(..reply.len) {
                let _ = client.unwrap(wire, &mut back);
            }
        }
        if let Ok(accepted) = hs.on_third(datagram, peer, now_unix, Instant::ZERO) {
            let _ = ControlRepr::parse_bytes(&accepted.plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::data::Role;
    use crate::crypto::test_util::{hex, pem_body, test_pkt_static_key};
    use crate::crypto::tls_crypt::tests::SAMPLE_TA_KEY;
    use crate::crypto::tls_crypt_v2::tests::{L4_CLIENT_PEM, L4_RESET_V3, L4_SERVER_PEM};
    use crate::keys::Metadata;
    use crate::server::wkc::{wkc_digest, RevocationList};
    extern crate std;
    use std::vec::Vec;

    const NOW: u64 = 1_800_000_000;
    const CSID: SessionId = SessionId([0xc1, 2, 3, 4, 5, 6, 7, 8]);
    const SERVER_KEY: [u8; 128] = [0x21; 128];

    fn peer() -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 7], 40000))
    }

    fn server(control: ControlProtection) -> StatelessHandshake {
        StatelessHandshake::new(control, CookieJar::new(&[0x99; 32])).unwrap()
    }

    fn kc() -> [u8; KEY2_LEN] {
        core::array::from_fn(|i| (i * 13 + 5) as u8)
    }

    fn wkc_with(metadata: &[u8]) -> Vec<u8> {
        TlsCryptV2ServerKey::new(&SERVER_KEY)
            .wrap_client_key(&kc(), metadata)
            .unwrap()
    }

    fn created(t: u64) -> Vec<u8> {
        Metadata::Timestamp(t).encode().unwrap()
    }

    /// A client and the server for each protection, with the opcodes the client uses.
    fn modes() -> Vec<(&'static str, ControlWrap, ControlProtection, Opcode, Opcode)> {
        let key = test_pkt_static_key();
        let v2 = Opcode::ControlHardResetClientV3;
        let v = Opcode::ControlHardResetClientV2;
        let policy = WkcPolicy {
            max_age_days: Some(30),
            revoked: RevocationList::new([[5; 32]]),
        };
        std::vec![
            (
                "none",
                ControlWrap::none(),
                ControlProtection::None,
                v,
                Opcode::ControlV1
            ),
            (
                "tls-auth",
                ControlWrap::tls_auth(&key, KeyDirection::Inverse, Digest::Sha256),
                ControlProtection::TlsAuth {
                    key,
                    direction: KeyDirection::Normal,
                    digest: Digest::Sha256
                },
                v,
                Opcode::ControlV1,
            ),
            (
                "tls-crypt",
                ControlWrap::tls_crypt(&key),
                ControlProtection::TlsCrypt { key },
                v,
                Opcode::ControlV1,
            ),
            (
                "tls-crypt-v2",
                ControlWrap::tls_crypt_v2(&kc(), &wkc_with(&created(NOW - 86400))).unwrap(),
                ControlProtection::TlsCryptV2Server {
                    key: SERVER_KEY,
                    policy
                },
                v2,
                Opcode::ControlWkcV1,
            ),
        ]
    }

    fn emit(repr: ControlRepr<'_>) -> Vec<u8> {
        let mut out = std::vec![0u8; repr.buffer_len()];
        repr.emit(&mut out).unwrap();
        out
    }

    fn reset(opcode: Opcode) -> Vec<u8> {
        emit(ControlRepr {
            opcode,
            key_id: KeyId::ZERO,
            session_id: CSID,
            acks: AckBlock::EMPTY,
            message_id: Some(0),
            payload: &[],
        })
    }

    fn third(opcode: Opcode, echoed: SessionId, ids: &[u32], msg: u32, payload: &[u8]) -> Vec<u8> {
        let mut acks = AckBlock::new(echoed);
        for id in ids {
            acks.try_push(*id);
        }
        emit(ControlRepr {
            opcode,
            key_id: KeyId::ZERO,
            session_id: CSID,
            acks,
            message_id: (opcode != Opcode::AckV1).then_some(msg),
            payload,
        })
    }

    fn wrap(client: &mut ControlWrap, plain: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; plain.len() + 2000];
        let n = client.wrap(plain, NOW as u32, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// The whole exchange in every mode: the client's real wrap builds its reset; the server answers
    /// statelessly; the client opens and parses the answer, builds its third packet; the server accepts
    /// it, refuses a wrong echoed session id, and the accepted wrap talks to the client.
    #[test]
    fn three_way_handshake_in_every_mode() {
        for (name, mut client, control, reset_op, third_op) in modes() {
            let hs = server(control);
            let mut limit = InitialRateLimit::default();
            let mut out = [0u8; 256];
            let wire = wrap(&mut client, &reset(reset_op));
            let reply = hs
                .on_initial(&wire, peer(), NOW, Instant::ZERO, &mut limit, &mut out)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let early = reset_op == Opcode::ControlHardResetClientV3;
            assert_eq!(reply.early_negotiation, early, "{name}");
            assert_eq!(reply.client_sid, CSID);

            // The client opens the reply: ACK of its message 0 naming its session, message-id 0.
            let mut plain = [0u8; 256];
            let n = client
                .unwrap(&out[..reply.len], Instant::ZERO, &mut plain)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let answer = ControlRepr::parse_bytes(&plain[..n]).unwrap();
            assert_eq!(answer.opcode, Opcode::ControlHardResetServerV2);
            assert_eq!(answer.key_id, KeyId::ZERO);
            assert_eq!(answer.session_id, reply.server_sid);
            assert_eq!(answer.acks.ids(), &[0]);
            assert_eq!(answer.acks.remote_session_id(), Some(CSID));
            assert_eq!(answer.message_id, Some(0));
            assert_eq!(
                EarlyNegotiation::parse(answer.payload)
                    .unwrap()
                    .resend_wkc(),
                early,
                "{name}"
            );

            // A retransmitted reset (next replay counter) gets the same cookie.
            let again = wrap(&mut client, &reset(reset_op));
            let reply2 = hs
                .on_initial(&again, peer(), NOW + 1, Instant::ZERO, &mut limit, &mut out)
                .unwrap();
            assert_eq!(reply2.server_sid, reply.server_sid, "{name}");

            let ssid = answer.session_id;
            let hello = b"\x16\x03\x01\x00\x05hello";
            // A wrong echoed session id (CVE-2025-13086), another port, an expired slot: refused.
            let mut wrong = ssid;
            wrong.0[7] ^= 1;
            let bad = wrap(&mut client, &third(third_op, wrong, &[0], 1, hello));
            assert_eq!(
                hs.on_third(&bad, peer(), NOW, Instant::ZERO).err(),
                Some(Refused::BadCookie),
                "{name}"
            );
            let good_plain = third(third_op, ssid, &[0], 1, hello);
            let good = wrap(&mut client, &good_plain);
            let moved = SocketAddr::from(([198, 51, 100, 7], 40001));
            assert_eq!(
                hs.on_third(&good, moved, NOW, Instant::ZERO).err(),
                Some(Refused::BadCookie)
            );
            assert_eq!(
                hs.on_third(&good, peer(), NOW + 120, Instant::ZERO).err(),
                Some(Refused::BadCookie)
            );
            let accepted = hs
                .on_third(&good, peer(), NOW + 45, Instant::ZERO)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(accepted.client_sid, CSID);
            assert_eq!(accepted.server_sid, ssid);
            assert_eq!(accepted.plain, good_plain, "{name}");
            assert_eq!(accepted.client_key.is_some(), early);
            if let Some(key) = &accepted.client_key {
                assert_eq!(*key.kc, kc());
                assert_eq!(key.metadata, created(NOW - 86400));
                assert_eq!(key.wkc, wkc_with(&created(NOW - 86400)));
            }

            // The accepted wrap is this session's: replays of the client's packets are refused, its next
            // packet goes through, and our next packet (replay counter 2) reaches the client.
            let mut wrap_s = accepted.wrap;
            let mut scratch = [0u8; 2048];
            if name != "none" {
                assert!(wrap_s.unwrap(&good, Instant::ZERO, &mut scratch).is_err());
                assert!(wrap_s.unwrap(&wire, Instant::ZERO, &mut scratch).is_err());
            }
            let next = wrap(
                &mut client,
                &third(Opcode::ControlV1, ssid, &[1], 2, b"more"),
            );
            assert!(wrap_s.unwrap(&next, Instant::ZERO, &mut scratch).is_ok());
            let ours = emit(ControlRepr {
                opcode: Opcode::ControlV1,
                key_id: KeyId::ZERO,
                session_id: ssid,
                acks: AckBlock::EMPTY,
                message_id: Some(1),
                payload: b"server hello",
            });
            let mut sent = [0u8; 256];
            let m = wrap_s.wrap(&ours, NOW as u32 + 45, &mut sent).unwrap();
            // The replay id follows the header (tls-crypt) or the HMAC (tls-auth, SHA256).
            let at = if name == "tls-auth" { 9 + 32 } else { 9 };
            if name != "none" {
                assert_eq!(sent[at..at + 4], [0, 0, 0, 2], "{name}");
            }
            assert!(client
                .unwrap(&sent[..m], Instant::ZERO, &mut scratch)
                .is_ok());

            // P_ACK_V1 is a valid third packet too, except for tls-crypt-v2 (the WKc must come again).
            let ack = wrap(&mut client, &third(Opcode::AckV1, ssid, &[0], 0, &[]));
            let got = hs.on_third(&ack, peer(), NOW, Instant::ZERO);
            if early {
                assert!(got.is_err());
            } else {
                assert!(got.is_ok(), "{name}");
            }
        }
    }

    /// Real packets: the server reset matches the plain form of OpenVPN's, and the ACK of the real trace
    /// (which echoes that server's session id, not our cookie) is refused.
    #[test]
    fn real_clients_get_openvpns_reply() {
        let key: [u8; 256] = hex(SAMPLE_TA_KEY).try_into().unwrap();
        let hs = server(ControlProtection::TlsCrypt { key });
        let reset = hex("38df0b478d923bae6f000000016b071c067484b908cb08343b292c8ea5f694ea1882c7bc0beb0273930424ede9d2216662198b5b5430");
        let mut out = [0u8; 128];
        let mut limit = InitialRateLimit::default();
        let reply = hs
            .on_initial(&reset, peer(), NOW, Instant::ZERO, &mut limit, &mut out)
            .unwrap();
        assert_eq!(reply.len, 66);
        let mut plain = [0u8; 128];
        let mut client = ControlWrap::tls_crypt(&key);
        let n = client
            .unwrap(&out[..reply.len], Instant::ZERO, &mut plain)
            .unwrap();
        assert_eq!(plain[9..n], hex("0100000000df0b478d923bae6f00000000")[..]);
        let ack = hex("28df0b478d923bae6f000000036b071c06fa62da5f0079954e77d12fba63d6790f2e07d579c0c67bffa3f39a315fd9210aefb8be00d3491f9950c068f09919ec7bff");
        assert_eq!(
            hs.on_third(&ack, peer(), NOW, Instant::ZERO).err(),
            Some(Refused::BadCookie)
        );

        // tls-crypt-v2 with early negotiation (§10.11): the same plain reply as OpenVPN 2.6.14's.
        let server_key: [u8; 128] = pem_body(L4_SERVER_PEM).try_into().unwrap();
        let body = pem_body(L4_CLIENT_PEM);
        let hs = server(ControlProtection::TlsCryptV2Server {
            key: server_key,
            policy: WkcPolicy::default(),
        });
        let reply = hs
            .on_initial(
                &hex(L4_RESET_V3),
                peer(),
                NOW,
                Instant::ZERO,
                &mut limit,
                &mut out,
            )
            .unwrap();
        assert_eq!(reply.len, 72);
        assert!(reply.early_negotiation);
        let mut client =
            ControlWrap::tls_crypt_v2(&body[..256].try_into().unwrap(), &body[256..]).unwrap();
        let n = client
            .unwrap(&out[..reply.len], Instant::ZERO, &mut plain)
            .unwrap();
        assert_eq!(
            plain[9..n],
            hex("0100000000a4b7076dcd189cca00000000000100020001")[..]
        );
        // The key was made at 0x6b071c79 (2026-11): a max-age of 1 day refuses it a year later.
        let strict = server(ControlProtection::TlsCryptV2Server {
            key: server_key,
            policy: WkcPolicy {
                max_age_days: Some(1),
                revoked: RevocationList::default(),
            },
        });
        assert_eq!(
            strict
                .on_initial(
                    &hex(L4_RESET_V3),
                    peer(),
                    0x6b07_1c79 + 366 * 86400,
                    Instant::ZERO,
                    &mut limit,
                    &mut out
                )
                .err(),
            Some(Refused::Policy(WkcRefusal::TooOld {
                created: 0x6b07_1c79,
                max_age_days: 1
            }))
        );
    }

    #[test]
    fn hostile_initial_packets() {
        let key = test_pkt_static_key();
        let hs = server(ControlProtection::None);
        let mut limit = InitialRateLimit::new(1000, 1);
        let mut out = [0u8; 128];
        let mut run = |hs: &StatelessHandshake, bytes: &[u8]| {
            hs.on_initial(bytes, peer(), NOW, Instant::ZERO, &mut limit, &mut out)
                .err()
        };
        let good = reset(Opcode::ControlHardResetClientV2);
        for len in 0..good.len() {
            assert!(run(&hs, &good[..len]).is_some(), "len {len}");
        }
        assert_eq!(run(&hs, &[]), Some(Refused::Truncated));
        assert_eq!(
            run(&hs, &reset(Opcode::ControlV1)),
            Some(Refused::UnexpectedOpcode)
        );
        assert_eq!(
            run(&hs, &reset(Opcode::ControlHardResetClientV3)),
            Some(Refused::UnexpectedOpcode)
        );
        assert_eq!(run(&hs, &[0xf8; 20]), Some(Refused::UnexpectedOpcode));
        let mut kid = good.clone();
        kid[0] |= 1;
        assert_eq!(run(&hs, &kid), Some(Refused::NonZeroKeyId));
        let mut zero = good.clone();
        zero[1..9].fill(0);
        assert_eq!(run(&hs, &zero), Some(Refused::ZeroSessionId));
        // ACK count overflow, ACKs present, message-id 1, oversized.
        let mut acks = good.clone();
        acks[9] = 0xff;
        assert!(matches!(run(&hs, &acks), Some(Refused::Malformed(_))));
        let with_ack = third(Opcode::ControlHardResetClientV2, CSID, &[0], 0, &[]);
        assert_eq!(run(&hs, &with_ack), Some(Refused::ResetHasAcks));
        let msg1 = third(Opcode::ControlHardResetClientV2, CSID, &[], 1, &[]);
        assert_eq!(run(&hs, &msg1), Some(Refused::ResetMessageId));
        let mut big = good.clone();
        big.resize(1500, 0);
        assert_eq!(run(&hs, &big), Some(Refused::TooLarge));
        assert!(run(&hs, &good).is_none());

        // Replay packet-id: only the start of a sequence (retransmissions included).
        let hs = server(ControlProtection::TlsCrypt { key });
        let mut client = ControlWrap::tls_crypt(&key);
        for i in 1..=20u32 {
            let wire = wrap(&mut client, &good);
            let expect = if i <= MAX_RESET_TRANSMISSIONS {
                None
            } else {
                Some(Refused::ResetPacketId)
            };
            assert_eq!(run(&hs, &wire), expect, "counter {i}");
        }
        let mut bad_tag = wrap(&mut ControlWrap::tls_crypt(&key), &good);
        bad_tag[20] ^= 1;
        assert_eq!(run(&hs, &bad_tag), Some(Refused::Authentication));
        // A server reset sent to a server, and the client's own direction, are refused.
        let mut srv = ControlWrap::tls_crypt_for(&key, Role::Server);
        assert_eq!(
            run(&hs, &wrap(&mut srv, &good)),
            Some(Refused::Authentication)
        );

        // The rate limit: authentic resets beyond the budget get no reply.
        let mut tight = InitialRateLimit::new(2, 10);
        let wire = wrap(&mut ControlWrap::tls_crypt(&key), &good);
        let outcomes: Vec<_> = (0..3)
            .map(|_| {
                hs.on_initial(&wire, peer(), NOW, Instant::ZERO, &mut tight, &mut out)
                    .err()
            })
            .collect();
        assert_eq!(outcomes, [None, None, Some(Refused::RateLimited)]);
        // The output buffer too small.
        assert_eq!(
            hs.on_initial(
                &wire,
                peer(),
                NOW,
                Instant::ZERO,
                &mut limit,
                &mut [0u8; 10]
            )
            .err(),
            Some(Refused::TooLarge)
        );
    }

    #[test]
    fn hostile_tls_crypt_v2_packets() {
        let policy = WkcPolicy {
            max_age_days: Some(30),
            revoked: RevocationList::new([wkc_digest(&wkc_with(&created(NOW - 5)))]),
        };
        let hs = server(ControlProtection::TlsCryptV2Server {
            key: SERVER_KEY,
            policy,
        });
        let mut limit = InitialRateLimit::default();
        let mut out = [0u8; 128];
        let v3 = reset(Opcode::ControlHardResetClientV3);
        let send = |meta: &[u8], early: bool| {
            let mut c = ControlWrap::tls_crypt_v2(&kc(), &wkc_with(meta)).unwrap();
            if early {
                return wrap(&mut c, &v3);
            }
            {
                // An old client: its counter starts at 1. Rebuild the packet with that replay id.
                let client = crate::crypto::TlsCryptV2Client::new(&kc(), &wkc_with(meta)).unwrap();
                let mut buf = std::vec![0u8; 2000];
                let n = client
                    .wrap(
                        &v3,
                        ReplayId {
                            counter: 1,
                            time: 5,
                        },
                        &mut buf,
                    )
                    .unwrap();
                buf.truncate(n);
                buf
            }
        };
        let mut run = |bytes: &[u8]| {
            hs.on_initial(bytes, peer(), NOW, Instant::ZERO, &mut limit, &mut out)
                .err()
        };
        assert_eq!(run(&send(&created(NOW - 10), true)), None);
        assert_eq!(
            run(&send(&created(NOW - 10), false)),
            Some(Refused::NoEarlyNegotiation)
        );
        assert_eq!(
            run(&send(&created(NOW - 5), true)),
            Some(Refused::Policy(WkcRefusal::Revoked))
        );
        assert_eq!(
            run(&send(b"\x00alice", true)),
            Some(Refused::Policy(WkcRefusal::NoTimestamp))
        );
        let good = send(&created(NOW - 10), true);
        // Truncations: every prefix is refused without panicking.
        for len in 0..good.len() {
            assert!(run(&good[..len]).is_some(), "len {len}");
        }
        // Huge and tiny WKc length fields, a length past the packet, a tampered WKc.
        for field in [0xffffu16, 0x0400 + 1, 0, 289, 1024] {
            let mut bad = good.clone();
            let at = bad.len() - 2;
            bad[at..].copy_from_slice(&field.to_be_bytes());
            assert!(matches!(run(&bad), Some(Refused::Wkc(_))), "field {field}");
        }
        let mut short = good[good.len() - 299..].to_vec();
        short.splice(0..0, [0x50u8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(run(&short), Some(Refused::Wkc(WkcError::WkcLength)));
        let mut tampered = good.clone();
        let at = tampered.len() - 100;
        tampered[at] ^= 1;
        assert_eq!(run(&tampered), Some(Refused::Wkc(WkcError::WkcAuth)));
        let mut inner = good.clone();
        inner[30] ^= 1;
        assert_eq!(run(&inner), Some(Refused::Authentication));
        // A V2 reset to a tls-crypt-v2 server, and a P_CONTROL_V1 third packet (no WKc).
        let mut v2 = good.clone();
        v2[0] = 0x38;
        assert_eq!(run(&v2), Some(Refused::UnexpectedOpcode));
        let mut ctl = good.clone();
        ctl[0] = 0x20;
        assert_eq!(
            hs.on_third(&ctl, peer(), NOW, Instant::ZERO).err(),
            Some(Refused::UnexpectedOpcode)
        );
    }

    #[test]
    fn hostile_third_packets() {
        let key = test_pkt_static_key();
        let hs = server(ControlProtection::TlsAuth {
            key,
            direction: KeyDirection::Normal,
            digest: Digest::Sha1,
        });
        let ssid = hs
            .cookies
            .server_session_id(CSID, peer(), NOW, hs.hand_window);
        let mut client = ControlWrap::tls_auth(&key, KeyDirection::Inverse, Digest::Sha1);
        let mut run = |plain: &[u8]| {
            let wire = wrap(&mut client, plain);
            hs.on_third(&wire, peer(), NOW, Instant::ZERO).err()
        };
        assert_eq!(run(&third(Opcode::ControlV1, ssid, &[0], 1, b"x")), None);
        assert_eq!(run(&third(Opcode::ControlV1, ssid, &[0, 1], 0, b"")), None);
        assert_eq!(
            run(&third(Opcode::ControlV1, ssid, &[], 1, b"x")),
            Some(Refused::NoAck)
        );
        assert_eq!(
            run(&third(Opcode::ControlV1, ssid, &[0, 2], 1, b"x")),
            Some(Refused::AckOutOfHandshake)
        );
        assert_eq!(
            run(&third(Opcode::ControlV1, ssid, &[1], 1, b"x")),
            Some(Refused::AckOutOfHandshake)
        );
        assert_eq!(
            run(&third(Opcode::ControlV1, ssid, &[0], 2, b"x")),
            Some(Refused::MessageIdOutOfHandshake)
        );
        assert_eq!(
            run(&third(Opcode::ControlWkcV1, ssid, &[0], 1, b"x")),
            Some(Refused::UnexpectedOpcode)
        );
        assert_eq!(
            run(&third(Opcode::ControlHardResetClientV2, ssid, &[0], 0, b"")),
            Some(Refused::UnexpectedOpcode)
        );
        let mut acks9 = third(Opcode::ControlV1, ssid, &[0], 1, b"x");
        acks9[9] = 9;
        assert!(matches!(run(&acks9), Some(Refused::Malformed(_))));
        let mut kid = third(Opcode::ControlV1, ssid, &[0], 1, b"x");
        kid[0] |= 2;
        assert_eq!(run(&kid), Some(Refused::NonZeroKeyId));
        let oversized = third(Opcode::ControlV1, ssid, &[0], 1, &[0u8; 3000]);
        assert_eq!(run(&oversized), Some(Refused::TooLarge));

        let mut counters = HandshakeCounters::default();
        counters.note_third(&hs.on_third(&[0x20; 5], peer(), NOW, Instant::ZERO));
        counters.note_refused(Refused::BadCookie);
        counters.note_refused(Refused::Wkc(WkcError::WkcAuth));
        assert_eq!(counters.refused(Refused::Truncated), 1);
        assert_eq!(counters.refused(Refused::Wkc(WkcError::WkcLength)), 1);
        assert_eq!(counters.refused_total(), 3);
        assert_eq!(Refused::ReplayId.index(), Refused::KINDS - 1);
    }

    #[test]
    fn fuzz_entry_survives_garbage_and_mutations() {
        use rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        let mut buf = [0u8; 800];
        for len in (0..800).step_by(7) {
            rng.fill_bytes(&mut buf[..len]);
            fuzz_handshake(&buf[..len]);
        }
        // Valid-WKc path: metadata of 9 bytes, then plain packets of each kind.
        let mut seed = std::vec![9u8];
        seed.extend_from_slice(&created(NOW - 10));
        for packet in [
            reset(Opcode::ControlHardResetClientV3),
            third(Opcode::ControlWkcV1, CSID, &[0], 1, b"hi"),
            std::vec![0x58, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff],
        ] {
            let mut input = seed.clone();
            input.extend_from_slice(&packet);
            fuzz_handshake(&input);
            for _ in 0..50 {
                let mut m = input.clone();
                let at = rng.next_u32() as usize % m.len();
                m[at] ^= 1 << (rng.next_u32() % 8);
                fuzz_handshake(&m);
            }
        }
    }
}
