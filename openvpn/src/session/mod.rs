//! What runs inside the TLS session (OpenVPN wire reference §5.2-5.4, §8): the key-method-2 message,
//! peer-info and the options (OCC) string, the NUL-terminated control messages and the PUSH_REPLY
//! with its typed pushed options.
//!
//! Layer: codecs over TLS plaintext only; no state machine, timers or packets here (see `engine`).

pub mod key_method2;
pub mod message;
pub mod peer_info;
pub mod push;
pub mod push_build;

pub use key_method2::{
    emit_client as emit_key_method2, emit_server as emit_server_key_method2, ClientKeySource,
    KeyMethod2, Km2Error, ServerKeySource,
};
pub use message::{split_messages, ControlMessage};
pub use peer_info::{occ_options_string, PeerInfo, PeerInfoFromClient, Transport};
pub use push::{
    AuthToken, FilterAction, PullFilter, PushAccumulator, PushError, PushedConfig, Route, Route6,
    Topology,
};
pub use push_build::{build_push_reply, PushReplyParams, MAX_PUSH_MESSAGE};
#[cfg(test)]
mod testvec;
