//! Sending half of the reliability layer: message-id assignment, send window, retransmission with
//! exponential backoff and fast retransmit, and cutting a TLS byte stream into control-packet payloads.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::{QueueFull, DEFAULT_RETRANSMIT_MS, FAST_RETRANSMIT_ACKS, MAX_SEND_QUEUE, SEND_WINDOW};

/// A reliable control packet waiting for its ACK.
#[derive(Debug, Clone)]
struct Unacked {
    id: u32,
    /// The control opcode to (re)send it with: resets, P_CONTROL_V1, P_CONTROL_WKC_V1.
    opcode: u8,
    payload: Vec<u8>,
    /// When it is due for (re)transmission; `None` = never sent yet.
    due_ms: Option<u64>,
    timeout_ms: u64,
    /// ACKs for later ids received since the last transmission.
    later_acks: u8,
}

/// One packet [`ReliableSend::poll_transmit`] asks the caller to send now.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingPacket<'a> {
    /// Message-id to put in the packet.
    pub id: u32,
    /// Control opcode the packet was queued with.
    pub opcode: u8,
    /// Payload (TLS bytes, or the reset TLVs).
    pub payload: &'a [u8],
    /// True if this is a retransmission.
    pub retransmit: bool,
}

/// The sending half of one key state's reliability layer.
#[derive(Debug, Clone)]
pub struct ReliableSend {
    next_id: u32,
    unacked: VecDeque<Unacked>,
    /// TLS ciphertext not yet cut into packets.
    stream: VecDeque<u8>,
    /// Opcode used for packets cut from the stream (P_CONTROL_V1 unless overridden once, e.g. WKC_V1).
    stream_opcode: u8,
    /// A one-shot opcode for the next packet cut from the stream.
    next_opcode_override: Option<u8>,
    initial_timeout_ms: u64,
}

impl ReliableSend {
    /// A sender whose packets cut from the TLS stream use `stream_opcode` (the P_CONTROL_V1 opcode).
    pub fn new(stream_opcode: u8) -> Self {
        ReliableSend {
            next_id: 0,
            unacked: VecDeque::new(),
            stream: VecDeque::new(),
            stream_opcode,
            next_opcode_override: None,
            initial_timeout_ms: DEFAULT_RETRANSMIT_MS,
        }
    }

    /// Sets the initial retransmit timeout (`--tls-timeout`), in milliseconds.
    pub fn set_initial_timeout_ms(&mut self, ms: u64) {
        self.initial_timeout_ms = ms.max(1);
    }

    /// True while the send window has room for a new message-id (§4: `next_id - lowest_unacked < 6`).
    pub fn window_open(&self) -> bool {
        match self.unacked.front() {
            Some(first) => self.next_id.wrapping_sub(first.id) < SEND_WINDOW,
            None => true,
        }
    }

    /// Queues a whole packet with its own opcode (a reset or SOFT_RESET, or an empty WKC_V1).
    /// Returns its message-id. Ignores the window: callers queue these only at the start of a key state.
    pub fn queue_packet(&mut self, opcode: u8, payload: Vec<u8>) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.unacked.push_back(Unacked {
            id,
            opcode,
            payload,
            due_ms: None,
            timeout_ms: self.initial_timeout_ms,
            later_acks: 0,
        });
        id
    }

    /// Appends TLS ciphertext to the stream; it is cut into packets as the window allows. Refused, with
    /// nothing queued, when the stream would exceed [`MAX_SEND_QUEUE`] bytes.
    pub fn queue_stream(&mut self, bytes: &[u8]) -> Result<(), QueueFull> {
        if self.stream.len().saturating_add(bytes.len()) > MAX_SEND_QUEUE {
            return Err(QueueFull);
        }
        self.stream.extend(bytes.iter().copied());
        Ok(())
    }

    /// Makes the next packet cut from the stream use `opcode` (P_CONTROL_WKC_V1 after RESEND_WKC, §2.7).
    pub fn override_next_opcode(&mut self, opcode: u8) {
        self.next_opcode_override = Some(opcode);
    }

    /// True if a one-shot opcode override is still waiting for stream data.
    pub fn has_opcode_override(&self) -> bool {
        self.next_opcode_override.is_some()
    }

    /// Bytes of TLS stream not yet packetised.
    pub fn stream_len(&self) -> usize {
        self.stream.len()
    }

    /// True if nothing is queued or unacknowledged.
    pub fn is_idle(&self) -> bool {
        self.unacked.is_empty() && self.stream.is_empty()
    }

    /// Number of packets sent or queued and not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// True once message `id` has been acknowledged (or was never queued below `next_id`).
    pub fn is_acked(&self, id: u32) -> bool {
        id.wrapping_sub(self.next_id) >= 0x8000_0000 && !self.unacked.iter().any(|p| p.id == id)
    }

    /// Handles one ACK entry from the peer. Unknown and duplicate ids are ignored (§4).
    pub fn on_ack(&mut self, id: u32) {
        let Some(pos) = self.unacked.iter().position(|p| p.id == id) else {
            return;
        };
        self.unacked.remove(pos);
        // Fast retransmit bookkeeping: every older unacked packet saw an ACK for a later id.
        for p in self.unacked.iter_mut().take(pos) {
            if p.due_ms.is_some() {
                p.later_acks = p.later_acks.saturating_add(1);
            }
        }
    }

    /// Makes every sent packet due now (the peer's first packet arrived: "burst", §4).
    pub fn reschedule_all(&mut self, now_ms: u64) {
        for p in self.unacked.iter_mut() {
            if p.due_ms.is_some() {
                p.due_ms = Some(now_ms);
            }
        }
    }

    /// The next packet to send at `now_ms`, if any: the oldest due retransmission first, then a never-sent
    /// packet, then a new packet cut from the stream with at most `max_payload` bytes while the window is
    /// open. The packet is marked sent (its timer doubles) when returned.
    pub fn poll_transmit(&mut self, now_ms: u64, max_payload: usize) -> Option<OutgoingPacket<'_>> {
        let pos = match self.unacked.iter().position(|p| Self::is_due(p, now_ms)) {
            Some(pos) => pos,
            None => {
                if self.stream.is_empty() || !self.window_open() || max_payload == 0 {
                    return None;
                }
                let n = self.stream.len().min(max_payload);
                let payload: Vec<u8> = self.stream.drain(..n).collect();
                let opcode = self
                    .next_opcode_override
                    .take()
                    .unwrap_or(self.stream_opcode);
                self.queue_packet(opcode, payload);
                self.unacked.len().checked_sub(1)?
            }
        };
        let p = self.unacked.get_mut(pos)?;
        let retransmit = p.due_ms.is_some();
        if retransmit {
            // Exponential backoff (§4): 2, 4, 8, ... s, uncapped; hand-window bounds the exchange.
            p.timeout_ms = p.timeout_ms.saturating_mul(2);
        }
        p.due_ms = Some(now_ms.saturating_add(p.timeout_ms));
        p.later_acks = 0;
        Some(OutgoingPacket {
            id: p.id,
            opcode: p.opcode,
            payload: &p.payload,
            retransmit,
        })
    }

    fn is_due(p: &Unacked, now_ms: u64) -> bool {
        match p.due_ms {
            None => true,
            Some(due) => due <= now_ms || p.later_acks >= FAST_RETRANSMIT_ACKS,
        }
    }

    /// True if [`poll_transmit`](Self::poll_transmit) would return a packet now.
    pub fn wants_transmit(&self, now_ms: u64) -> bool {
        self.unacked.iter().any(|p| Self::is_due(p, now_ms))
            || (!self.stream.is_empty() && self.window_open())
    }

    /// The earliest retransmission deadline, if any packet is outstanding.
    pub fn poll_at(&self) -> Option<u64> {
        self.unacked.iter().map(|p| p.due_ms.unwrap_or(0)).min()
    }
}
