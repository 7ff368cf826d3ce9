//! The server role: typed settings from a server config, the client address pool and the password
//! database. The per-client protocol state is the shared session core (`engine`), not here.
//!
//! Layer: protocol-side data structures only; no I/O, no clock, no randomness.

pub mod config;
pub mod pool;
pub mod users;
