//! OpenVPN wire formats: checked byte views (`Packet`) and valid-state representations (`Repr`).
//!
//! Layer: pure codecs. Nothing here holds session state, performs cryptography, allocates or reads a clock.
//! Every parser takes untrusted `&[u8]` and returns an [`Error`] instead of panicking; every emitter writes
//! into a caller buffer sized with `buffer_len()`.
//!
//! Reference: shared/docs/openvpn-wire.md §1 (framing, first byte), §2 (control packets), §6.1 (data header).
//!
//! - [`opcode`]: the opcode / key_id byte (§1.2).
//! - [`session_id`]: 8-byte session ids (§2.1).
//! - [`ack`]: the ACK block carried by every control packet (§2.1).
//! - [`control`]: the plain control packet (§2.2); tls-auth / tls-crypt wrapping lives in `crypto` and
//!   produces / consumes exactly this plain layout.
//! - [`packet_id`]: the long-form replay packet-id of tls-auth / tls-crypt (§2.4) and its sender counter.
//! - [`tlv`]: the early-negotiation TLVs of a tls-crypt-v2 server reset (§2.7).
//! - [`data`]: the P_DATA_V1 / P_DATA_V2 header with peer-id (§6.1).
//! - [`tcp`]: the 2-byte length framing used over TCP (§1.1).

pub mod ack;
pub mod control;
pub mod data;
pub mod opcode;
pub mod packet_id;
pub mod session_id;
pub mod tcp;
pub mod tlv;

pub use ack::AckBlock;
pub use control::{Packet as ControlPacket, Repr as ControlRepr};
pub use data::{Packet as DataPacket, Repr as DataRepr};
pub use opcode::{KeyId, OpKey, Opcode};
pub use packet_id::{ReplayId, ReplayIdSender};
pub use session_id::SessionId;

use core::fmt;

/// The field of a packet a wire error refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The first byte (opcode and key_id).
    Opcode,
    /// The sender's 8-byte session id.
    SessionId,
    /// The ACK count byte.
    AckCount,
    /// The 4-byte message-ids of the ACK block.
    AckIds,
    /// The remote session id that follows a non-empty ACK list.
    RemoteSessionId,
    /// The 4-byte reliability message-id.
    MessageId,
    /// The 8-byte replay packet-id (counter and time).
    ReplayId,
    /// The 24-bit peer-id of P_DATA_V2.
    PeerId,
    /// A TLV header or value.
    Tlv,
    /// The 2-byte TCP length prefix or the frame it announces.
    Length,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Opcode => "opcode",
            Field::SessionId => "session id",
            Field::AckCount => "ack count",
            Field::AckIds => "ack message-ids",
            Field::RemoteSessionId => "ack remote session id",
            Field::MessageId => "message-id",
            Field::ReplayId => "replay packet-id",
            Field::PeerId => "peer-id",
            Field::Tlv => "TLV",
            Field::Length => "length",
        })
    }
}

/// Why bytes could not be parsed or emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer ended inside the named field.
    Truncated(Field),
    /// The opcode (high 5 bits of the first byte) is not one OpenVPN defines, or not valid here.
    UnknownOpcode(u8),
    /// An ACK block announced more than 8 message-ids (RELIABLE_ACK_SIZE).
    TooManyAcks(u8),
    /// A P_ACK_V1 carried no ACKs.
    EmptyAck,
    /// A session id was all zero, which OpenVPN reserves for "undefined".
    ZeroSessionId,
    /// A reliable control packet was emitted without a message-id.
    MissingMessageId,
    /// A value does not fit its field (e.g. a peer-id above 24 bits, a TCP frame above 65535 bytes).
    ValueTooLarge(Field),
    /// A TLV had an inconsistent length.
    BadTlv,
    /// The output buffer is smaller than `buffer_len()`.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated(field) => write!(f, "packet truncated in the {field}"),
            Error::UnknownOpcode(op) => write!(f, "unknown or unexpected opcode {op}"),
            Error::TooManyAcks(n) => write!(f, "ack count {n} exceeds 8"),
            Error::EmptyAck => f.write_str("P_ACK_V1 without acks"),
            Error::ZeroSessionId => f.write_str("all-zero session id"),
            Error::MissingMessageId => f.write_str("reliable control packet without a message-id"),
            Error::ValueTooLarge(field) => write!(f, "value too large for the {field}"),
            Error::BadTlv => f.write_str("malformed early-negotiation TLV"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

/// Reads a big-endian u32 at `at`, or reports the field as truncated.
pub(crate) fn read_u32(buf: &[u8], at: usize, field: Field) -> Result<u32, Error> {
    let bytes: [u8; 4] = buf
        .get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Truncated(field))?;
    Ok(u32::from_be_bytes(bytes))
}

/// Reads a big-endian u16 at `at`, or reports the field as truncated.
pub(crate) fn read_u16(buf: &[u8], at: usize, field: Field) -> Result<u16, Error> {
    let bytes: [u8; 2] = buf
        .get(at..at.saturating_add(2))
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Truncated(field))?;
    Ok(u16::from_be_bytes(bytes))
}

/// Copies `src` into `buf` at `at`, or fails with [`Error::BufferTooSmall`].
pub(crate) fn write_at(buf: &mut [u8], at: usize, src: &[u8]) -> Result<(), Error> {
    buf.get_mut(at..at.saturating_add(src.len()))
        .ok_or(Error::BufferTooSmall)?
        .copy_from_slice(src);
    Ok(())
}
