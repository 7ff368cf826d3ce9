//! The data side of the engine: encrypting tunnel packets into caller buffers (copying or in place),
//! decrypting received data packets in place, and keepalive pings (§6, §7). No allocation per packet.

use alloc::vec::Vec;
use core::ops::Range;

use rand_core::CryptoRngCore;

use super::{Engine, ReceivedAt, ReconnectReason, SendError, State};
use crate::crypto::Inbound;
use crate::time::Instant;
use crate::wire::tcp::{emit_prefix, PREFIX_LEN};

impl Engine {
    pub(super) fn receive_data(&mut self, now: Instant, datagram: &mut [u8]) -> ReceivedAt {
        let Some(data) = self.data.as_mut() else {
            // No data key yet (handshake, reconnect wait): a drop like any other unknown-key packet.
            self.stats.data_dropped += 1;
            return ReceivedAt::Dropped;
        };
        match data.decrypt(datagram, now) {
            Ok(Inbound::Ip(range)) => {
                self.last_received = now;
                if range.end > datagram.len() || range.start > range.end {
                    return ReceivedAt::Dropped;
                }
                let len = range.len();
                self.stats.packets_in += 1;
                self.stats.bytes_in += len as u64;
                self.tunnel_activity(now, len);
                ReceivedAt::Packet(range)
            }
            Ok(Inbound::Ping) => {
                self.last_received = now;
                self.stats.pings_received += 1;
                ReceivedAt::Consumed
            }
            Ok(inbound) => {
                self.last_received = now;
                if inbound.is_exit() {
                    self.reconnect(now, ReconnectReason::ServerExit);
                }
                ReceivedAt::Consumed
            }
            Err(e) => {
                self.stats.data_dropped += 1;
                if self.is_tcp() {
                    // Over TCP nothing is lost or reordered: a failure means a broken session (§1.1).
                    self.reconnect(now, ReconnectReason::DataError(e));
                }
                ReceivedAt::Dropped
            }
        }
    }

    /// Encrypts an IP packet for the tunnel into `out` (the whole datagram for the remote); returns its
    /// length. No allocation.
    /// `out` needs `ip_packet.len() + 106` bytes; over TCP the output starts with the length prefix.
    /// `rng` supplies CBC IVs (unused by AEAD ciphers).
    pub fn encapsulate(
        &mut self,
        now: Instant,
        ip_packet: &[u8],
        out: &mut [u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<usize, SendError> {
        let key_id = self.send_key_id(now);
        let prefix = if self.is_tcp() { PREFIX_LEN } else { 0 };
        let data = self.data.as_mut().ok_or(SendError::NotConnected)?;
        if let Some(id) = key_id {
            data.set_primary(id);
        }
        let body = out.get_mut(prefix..).ok_or(SendError::BufferTooSmall)?;
        let n = data.encrypt(ip_packet, body, rng).map_err(|e| match e {
            crate::crypto::DataError::BufferTooSmall => SendError::BufferTooSmall,
            _ => SendError::Crypto,
        })?;
        if prefix > 0 {
            emit_prefix(n, out).map_err(|_| SendError::BufferTooSmall)?;
        }
        let n = n + prefix;
        self.last_sent = now;
        self.stats.packets_out += 1;
        self.stats.bytes_out += ip_packet.len() as u64;
        self.tunnel_activity(now, ip_packet.len());
        Ok(n)
    }

    /// Bytes to leave in front of an IP packet for [`encapsulate_in_place`](Self::encapsulate_in_place)
    /// (the data header, the cipher's headroom, a compression prefix and, over TCP, the length prefix).
    /// `None` until the tunnel is up; constant for a connection (renegotiations keep the cipher).
    pub fn data_headroom(&self) -> Option<usize> {
        let prefix = if self.is_tcp() { PREFIX_LEN } else { 0 };
        Some(prefix + self.data.as_ref()?.headroom()?)
    }

    /// Encrypts the IP packet at `buf[data_headroom()..][..payload_len]` in place, without copying it.
    /// `buf` must extend at least [`MAX_OVERHEAD`](crate::crypto::DataChannel::MAX_OVERHEAD) bytes past the headroom plus payload.
    /// Returns where the datagram to send lies in `buf` (over TCP, its length prefix included).
    pub fn encapsulate_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        payload_len: usize,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Range<usize>, SendError> {
        self.seal_in_place(now, buf, None, payload_len, rng)
    }

    /// [`encapsulate_in_place`](Self::encapsulate_in_place) with the IP packet at `buf[at..]`: `at` may be
    /// less than [`data_headroom`](Self::data_headroom) by the compression prefix the packet does not need
    /// (the start of the returned range tells by how much: data headroom minus `at` plus that start is
    /// the unused part), so that the datagram can start at `buf[0]`. Too little room is
    /// [`SendError::BufferTooSmall`], before a packet-id is used (the payload may have been framed: write
    /// it again at `data_headroom()` and retry).
    pub fn encapsulate_in_place_at(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        at: usize,
        payload_len: usize,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Range<usize>, SendError> {
        self.seal_in_place(now, buf, Some(at), payload_len, rng)
    }

    /// Both in-place variants: the payload at `at`, or at the data headroom of the key chosen now.
    fn seal_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        at: Option<usize>,
        payload_len: usize,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Range<usize>, SendError> {
        let key_id = self.send_key_id(now);
        let prefix = if self.is_tcp() { PREFIX_LEN } else { 0 };
        let data = self.data.as_mut().ok_or(SendError::NotConnected)?;
        if let Some(id) = key_id {
            data.set_primary(id);
        }
        let body = buf.get_mut(prefix..).ok_or(SendError::BufferTooSmall)?;
        let sealed = match at {
            Some(at) => {
                let at = at.checked_sub(prefix).ok_or(SendError::BufferTooSmall)?;
                data.encrypt_in_place_at(body, at, payload_len, rng)
            }
            None => data.encrypt_in_place(body, payload_len, rng),
        };
        let sealed = sealed.map_err(|e| match e {
            crate::crypto::DataError::BufferTooSmall => SendError::BufferTooSmall,
            _ => SendError::Crypto,
        })?;
        // `sealed` is relative to `body`; the prefix goes right before it.
        let start = sealed.start + prefix;
        let end = sealed.end + prefix;
        if prefix > 0 {
            let at = buf
                .get_mut(sealed.start..)
                .ok_or(SendError::BufferTooSmall)?;
            emit_prefix(sealed.len(), at).map_err(|_| SendError::BufferTooSmall)?;
        }
        self.last_sent = now;
        self.stats.packets_out += 1;
        self.stats.bytes_out += payload_len as u64;
        self.tunnel_activity(now, payload_len);
        Ok(if prefix > 0 {
            sealed.start..end
        } else {
            start..end
        })
    }

    /// Shuts the engine down: returns the OCC EXIT data packet to send to the server (explicit exit
    /// notification, §7.3) if the tunnel is up, then stops. Without `cc-exit` (not announced by oxvpn) this
    /// is how a 2.6 server learns the client left; send it once or a few times, it is idempotent.
    pub fn shutdown(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Option<Vec<u8>> {
        let packet = if self.state == State::Connected {
            let key_id = self.send_key_id(now);
            let prefix = if self.is_tcp() { PREFIX_LEN } else { 0 };
            let data = self.data.as_mut()?;
            if let Some(id) = key_id {
                data.set_primary(id);
            }
            let mut out = alloc::vec![0u8; prefix + 64 + crate::crypto::DataChannel::MAX_OVERHEAD];
            let n = data.encrypt_occ_exit(out.get_mut(prefix..)?, rng).ok()?;
            if prefix > 0 {
                emit_prefix(n, &mut out).ok()?;
            }
            out.truncate(prefix + n);
            Some(out)
        } else {
            None
        };
        self.exit(super::ExitReason::Shutdown);
        packet
    }

    pub(super) fn poll_keepalive(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Option<Vec<u8>> {
        if self.state != State::Connected {
            return None;
        }
        let ping = self.ping_secs()?;
        if now.saturating_duration_since(self.last_sent).as_secs() < ping {
            return None;
        }
        let key_id = self.send_key_id(now);
        let data = self.data.as_mut()?;
        if let Some(id) = key_id {
            data.set_primary(id);
        }
        let mut out = alloc::vec![0u8; 128];
        let n = data.encrypt_ping(&mut out, rng).ok()?;
        out.truncate(n);
        self.last_sent = now;
        self.stats.pings_sent += 1;
        Some(out)
    }
}
