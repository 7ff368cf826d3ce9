//! The server role: many clients, each with the per-peer session core of [`crate::peer`], and what an
//! OpenVPN server needs beyond it.
//!
//! Layer: protocol only, like the rest of the crate: no clock, no randomness, no I/O.
//!
//! - [`engine`]: the server engine: the client table (peer-ids), per-client sessions, float, timers.
//! - [`cookie`]: the stateless HMAC session-id cookie and the rate limit of initial replies (§2.8).
//! - [`handshake`]: the stateless first exchange over UDP: answer a client reset, accept a third packet.
//! - [`wkc`]: the tls-crypt-v2 client-key policy (max age, revocation list) and metadata display.

pub mod cookie;
pub mod engine;
pub mod handshake;
pub mod wkc;
