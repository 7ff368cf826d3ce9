//! The server role: many clients, each with the per-peer session core of [`crate::peer`], and what an
//! OpenVPN server needs beyond it.
//!
//! Layer: protocol only, like the rest of the crate: no clock, no randomness, no I/O.
//!
//! - [`config`]: [`config::ServerSettings`] from a parsed server config (the `server` helper expanded,
//!   listeners, timers, push lines, auth), and the data-cipher negotiation.
//! - [`pool`]: the address pool (subnet or net30, sticky per common name, `duplicate-cn`).
//! - [`users`]: the `<auth-user-pass-db>` extension: PBKDF2 password hashes, checked in constant time.
//! - [`engine`]: the server engine: the client table (peer-ids), per-client sessions, float, timers.
//! - [`cookie`]: the stateless HMAC session-id cookie and the rate limit of initial replies (§2.8).
//! - [`handshake`]: the stateless first exchange over UDP: answer a client reset, accept a third packet.
//! - [`wkc`]: the tls-crypt-v2 client-key policy (max age, revocation list) and metadata display.

pub mod config;
pub mod cookie;
pub mod engine;
pub mod handshake;
pub mod pool;
pub mod service;
pub mod token;
pub mod users;
pub mod wkc;
