//! The control-channel reliability layer (OpenVPN wire reference §4).
//!
//! Layer: pure state machine over message-ids and payload bytes. It knows nothing about opcodes on the wire,
//! control-channel wrapping or sockets: the caller cuts packets with [`ReliableSend::poll_transmit`], feeds
//! received reliable packets to [`ReliableRecv::on_packet`] and ACK blocks to [`ReliableSend::on_ack`].
//! Time is the caller's monotonic clock in milliseconds; nothing here reads a clock.
//!
//! One `ReliableSend` + `ReliableRecv` pair exists per key state (key_id); message-ids start at 0 for each.

mod recv;
mod send;
#[cfg(test)]
mod tests;

pub use recv::{RecvOutcome, ReliableRecv};
pub use send::{OutgoingPacket, ReliableSend};

/// Packets the sender may have outstanding (`TLS_RELIABLE_N_SEND_BUFFERS`, §4).
pub const SEND_WINDOW: u32 = 6;
/// Receive window: ids `expected..expected + RECV_WINDOW` are accepted (`TLS_RELIABLE_N_REC_BUFFERS`, §4).
pub const RECV_WINDOW: u32 = 12;
/// Most ACK ids piggy-backed on a reliable control packet (`CONTROL_SEND_ACK_MAX`, §4).
pub const MAX_ACKS_PIGGYBACK: usize = 4;
/// Most ACK ids in a P_ACK_V1 packet, and most ids a receiver accepts in one ACK block (§2.1).
pub const MAX_ACKS_PER_PACKET: usize = 8;
/// Fast retransmit after ACKs for this many later ids (`N_ACK_RETRANSMIT`, §4).
pub const FAST_RETRANSMIT_ACKS: u8 = 3;
/// Most bytes waiting to be sent in one key state's control channel: TLS ciphertext not yet cut into
/// packets ([`ReliableSend::queue_stream`]), and separately plaintext writes waiting for TLS. A peer that
/// never acknowledges stops the sender here; the key state then fails instead of growing without bound.
/// The largest legitimate flight (a client certificate chain) is a few KiB.
pub const MAX_SEND_QUEUE: usize = 64 * 1024;

/// [`ReliableSend::queue_stream`] refused bytes: [`MAX_SEND_QUEUE`] would be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Default initial retransmit timeout (`--tls-timeout 2`), milliseconds.
pub const DEFAULT_RETRANSMIT_MS: u64 = 2000;
