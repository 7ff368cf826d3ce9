//! The control side of the engine: unwrapping and dispatching control packets, the control messages after
//! key-method 2 (PUSH_REPLY, AUTH_FAILED, RESTART, ...), applying the push, and building the next control
//! packet within the control-channel MTU (§4, §8).
//!
//! Layer: engine internals; no I/O. Key-state details live in `key_state`, renegotiation in `rekey`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use zeroize::Zeroize;

use super::{Action, ControlProtection, Engine, EngineError, ExitReason, PushFailure};
use super::{HandshakeError, KeyEvent, KeyState, PUSH_REQUEST_FIRST};
use super::{ReconnectReason, State};
use crate::crypto::control::ControlWrap;
use crate::crypto::{Compression, DataChannel, DataCipher, Digest, Role};
use crate::peer;
use crate::session::{self, ControlMessage, PushedConfig};
use crate::time::Instant;
use crate::tls;
use crate::wire::{ControlRepr, Opcode};

impl Engine {
    pub(super) fn receive_control(&mut self, now: Instant, datagram: &[u8]) {
        if self.key.is_none() {
            return;
        }
        let mut plain = core::mem::take(&mut self.plain);
        match peer::control::unwrap(&mut self.wrap, datagram, now, &mut plain) {
            Ok(repr) => self.dispatch_control(now, &repr),
            Err(e) => {
                log::debug!("control packet dropped: {e:?}");
                self.stats.control_dropped += 1;
            }
        }
        self.plain = plain;
    }

    /// Hands an unwrapped control packet to the key state of its key_id.
    fn dispatch_control(&mut self, now: Instant, repr: &ControlRepr<'_>) {
        let Some(key) = self.key.as_mut() else { return };
        let plain = repr;
        if repr.key_id != key.key_id() {
            // A SOFT_RESET on the next key_id starts a server-initiated renegotiation (§9); anything else
            // is out of sync ("key IDs out of sync") and dropped.
            let next = key.key_id().next();
            if repr.opcode == Opcode::ControlSoftResetV1
                && repr.key_id == next
                && self.state == State::Connected
            {
                self.last_received = now;
                let mut bytes = alloc::vec![0u8; plain.buffer_len()];
                if let Ok(n) = plain.emit(&mut bytes) {
                    bytes.truncate(n);
                    self.pending_soft_reset = Some((next, bytes));
                }
            } else if let Some(old) = self.old_key.as_mut().filter(|o| o.key_id() == repr.key_id) {
                // The previous key's control channel still ACKs late retransmissions and carries
                // messages the server sent on it (§9: the lame duck stays valid).
                self.last_received = now;
                if old.on_packet(repr, now.as_millis()).is_ok() {
                    let mut messages = Vec::new();
                    while let Some(event) = old.pop_event() {
                        if let KeyEvent::Message(bytes) = event {
                            messages.push(bytes);
                        }
                    }
                    for mut bytes in messages {
                        self.handle_message(now, &bytes);
                        bytes.zeroize();
                    }
                }
            } else {
                log::debug!("control packet for key_id {} ignored", repr.key_id);
            }
            return;
        }
        self.last_received = now;
        let result = key.on_packet(repr, now.as_millis());
        if let Err(e) = result {
            self.handshake_failed(now, e);
            return;
        }
        self.process_key_events(now);
    }

    pub(super) fn handshake_failed(&mut self, now: Instant, e: HandshakeError) {
        // A refused certificate is retried like OpenVPN does (the next remote, the clock or the server may
        // be fixed meanwhile), with its own reason so the caller can show what failed.
        if let HandshakeError::Tls(tls::TlsError::Tls(tls_error)) = &e {
            if let Some(what) = tls::rejection_reason(tls_error) {
                log::warn!("{what}");
                self.reconnect(now, ReconnectReason::CertificateRejected(what));
                return;
            }
        }
        self.reconnect(now, ReconnectReason::Handshake(e));
    }

    pub(super) fn process_key_events(&mut self, now: Instant) {
        loop {
            let Some(event) = self.key.as_mut().and_then(KeyState::pop_event) else {
                return;
            };
            match event {
                KeyEvent::ServerKeys(_) if self.state == State::Connected => {
                    self.finish_renegotiation(now);
                }
                KeyEvent::ServerKeys(keys) => {
                    self.server_keys = Some(keys);
                    if self.pushed.is_none() {
                        self.next_push_request = Some(now + PUSH_REQUEST_FIRST);
                    }
                }
                // Only a server-side key state reports a client's key-method-2 message.
                KeyEvent::ClientKeys(_) => {}
                KeyEvent::Message(mut bytes) => {
                    self.handle_message(now, &bytes);
                    // A PUSH_REPLY may carry the auth-token.
                    bytes.zeroize();
                }
            }
            if self.state == State::Exited {
                return;
            }
        }
    }

    pub(super) fn handle_message(&mut self, now: Instant, bytes: &[u8]) {
        match ControlMessage::parse(bytes) {
            ControlMessage::PushReply(text) => match self.push.feed(text) {
                Ok(Some(config)) => self.apply_push(now, config),
                Ok(None) => {}
                Err(e) => self.reconnect(now, ReconnectReason::BadPush(PushFailure::Parse(e))),
            },
            ControlMessage::AuthFailed(reason) => {
                log::warn!("AUTH_FAILED {reason}");
                // A rejected token or a temporary/session failure is retried with the real credentials
                // (§8.1); a plain failure of the configured credentials stops.
                let had_token = self.auth_token.take().is_some();
                if let Some(temp) = reason.strip_prefix("TEMP") {
                    // `TEMP[backoff N,advance no|addr|remote]:msg` (IV_PROTO bit 8).
                    let flags = temp
                        .strip_prefix('[')
                        .and_then(|t| t.split_once(']'))
                        .map_or("", |(f, _)| f);
                    let mut advance = true;
                    let mut backoff = None;
                    for flag in flags.split(',').map(str::trim) {
                        if let Some(n) = flag.strip_prefix("backoff ") {
                            backoff = n.trim().parse::<u64>().ok();
                        } else if flag == "advance no" {
                            advance = false;
                        }
                    }
                    self.reconnect_to(now, ReconnectReason::AuthRetry(reason.to_string()), advance);
                    if let (Some(secs), Some(at)) = (backoff, self.restart_at) {
                        let wanted = now + core::time::Duration::from_secs(secs);
                        if wanted > at {
                            self.restart_at = Some(wanted);
                        }
                    }
                } else if had_token || reason.starts_with("SESSION:") {
                    self.reconnect(now, ReconnectReason::AuthRetry(reason.to_string()));
                } else {
                    self.exit(ExitReason::AuthFailed(reason.to_string()));
                }
            }
            ControlMessage::Restart(msg) => {
                self.reconnect(now, ReconnectReason::ServerRestart(msg.to_string()))
            }
            ControlMessage::Halt(msg) => self.exit(ExitReason::Halt(msg.to_string())),
            ControlMessage::Exit => self.reconnect(now, ReconnectReason::ServerExit),
            ControlMessage::Info(text) => log::info!("server INFO: {text}"),
            ControlMessage::AuthPending(text) => {
                // Extra authentication runs on the server: give the handshake `timeout N` more seconds.
                log::info!("server AUTH_PENDING {text}");
                let secs = text
                    .split(',')
                    .find_map(|kv| {
                        kv.trim()
                            .strip_prefix("timeout ")
                            .and_then(|n| n.trim().parse::<u64>().ok())
                    })
                    .unwrap_or(self.config.hand_window_secs);
                let until = now + core::time::Duration::from_secs(secs);
                if until > self.handshake_deadline {
                    self.handshake_deadline = until;
                }
            }
            ControlMessage::Unknown(text) => log::info!("unknown control message ignored: {text}"),
            ControlMessage::Invalid => log::debug!("invalid control message dropped"),
        }
    }

    pub(super) fn apply_push(&mut self, now: Instant, config: PushedConfig) {
        if self.pushed.is_some() {
            // A later PUSH_REPLY (e.g. auth-token refresh) only updates the token.
            if let Some(t) = config.auth_token {
                self.auth_token = Some(t);
            }
            return;
        }
        self.next_push_request = None;
        if let Some(t) = &config.auth_token {
            self.auth_token = Some(t.clone());
        }
        // A server without cipher negotiation pushes no `cipher`: then `data-ciphers-fallback` applies
        // (OpenVPN's old default BF-CBC is not implemented).
        let pushed = config.cipher.is_some();
        let cipher_name = config
            .cipher
            .clone()
            .or_else(|| self.config.data_ciphers_fallback.clone())
            .unwrap_or_else(|| String::from("BF-CBC"));
        // Accept only a cipher from our own list (§5.5), or the configured fallback.
        let ours = self
            .config
            .data_ciphers
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&cipher_name))
            || (!pushed && self.config.data_ciphers_fallback.is_some());
        let Some(cipher) = DataCipher::from_name(&cipher_name, self.config.auth).filter(|_| ours)
        else {
            self.reconnect(
                now,
                ReconnectReason::BadPush(PushFailure::CipherNotAllowed(cipher_name)),
            );
            return;
        };
        if config.tls_ekm {
            self.reconnect(now, ReconnectReason::BadPush(PushFailure::TlsEkmRequired));
            return;
        }
        let compression = match config
            .compression
            .as_deref()
            .map(|c| c.split_ascii_whitespace().collect::<Vec<_>>())
        {
            None => self.config.compression,
            // Only the framing stubs are supported (§6.5): oxvpn never compresses and cannot decompress.
            Some(words) => match words.as_slice() {
                ["comp-lzo", "no"] => Compression::LzoStub,
                ["compress", "stub-v2"] => Compression::StubV2,
                ["compress"] | ["compress", "stub"] => Compression::Stub,
                _ => {
                    self.exit(ExitReason::CompressionRequired(words.join(" ")));
                    return;
                }
            },
        };
        let (Some(key), true) = (self.key.take(), self.server_keys.is_some()) else {
            return;
        };
        self.negotiated = Some((cipher, config.peer_id));
        let mut channel = DataChannel::new();
        channel.set_compression(compression);
        self.data = Some(channel);
        let installed = self.install_data_key(now, &key);
        self.key = Some(key);
        if !installed {
            self.reconnect(now, ReconnectReason::BadPush(PushFailure::DataKeyRejected));
            return;
        }
        self.state = State::Connected;
        self.failures = 0;
        self.last_activity = now;
        self.window_start = now;
        self.window_bytes = 0;
        self.last_received = now;
        log::info!(
            "tunnel up: cipher {cipher_name}, peer-id {:?}",
            config.peer_id
        );
        self.pushed = Some(config.clone());
        self.actions.push_back(Action::TunnelUp(config));
    }

    pub(super) fn poll_control_packet(&mut self, now: Instant) -> Option<Vec<u8>> {
        let max = self.control_payload_room();
        let wkc_len = match self.protection() {
            ControlProtection::TlsCryptV2 { wkc, .. } => wkc.len(),
            _ => 0,
        };
        let unix = self.unix_now_u32(now);
        let mut plain = core::mem::take(&mut self.plain);
        let packet = peer::control::poll_packet(
            &mut self.wrap,
            self.key.as_mut(),
            self.old_key.as_mut(),
            now,
            (max, wkc_len),
            unix,
            &mut plain,
        );
        self.plain = plain;
        packet
    }

    /// TLS payload room per control packet (§4): `max-packet-size` minus IP/UDP, wrapping, header, a full
    /// piggy-backed ACK block and the message-id.
    pub(super) fn control_payload_room(&self) -> usize {
        let wrap = match self.protection() {
            ControlProtection::None => 0,
            ControlProtection::TlsAuth { digest, .. } => {
                8 + match digest {
                    Digest::Sha1 => 20,
                    Digest::Sha256 => 32,
                    Digest::Sha384 => 48,
                    Digest::Sha512 => 64,
                }
            }
            _ => 56,
        };
        let ip_udp = match self.transport() {
            session::Transport::Udp6 | session::Transport::Tcp6 => 48,
            _ => 28,
        };
        let header = 1 + 8 + (1 + 4 * 4 + 8) + 4;
        usize::from(self.config.max_packet_size.min(2048))
            .saturating_sub(ip_udp + wrap + header)
            .max(64)
    }
}

/// The control-channel wrapping for `protection`, with fresh replay state.
pub(super) fn new_wrap(protection: &ControlProtection) -> Result<ControlWrap, EngineError> {
    ControlWrap::for_role(protection, Role::Client).map_err(EngineError::ControlKey)
}
