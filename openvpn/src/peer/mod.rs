//! One peer's protocol state, shared by both roles: the key states of a session (control channel per
//! key_id: reliability, TLS, key-method 2) and the data-key bookkeeping around them. The client
//! ([`crate::engine`]) owns one peer; the server ([`crate::server`]) owns one per connected client.
//!
//! Layer: protocol state machine; no I/O, `now` and randomness come from the owner.

pub mod control;
pub mod key_state;
pub mod send_keys;

pub use key_state::{ClientHelloInfo, HandshakeError, KeyEvent, KeyStart, KeyState, Phase};
pub use send_keys::{SendKey, SendKeys};
