//! Receiving half of the reliability layer: the receive window, duplicate suppression, in-order
//! reassembly of the TLS byte stream, and the ACK ids to send back (pending plus the 2.6 MRU list).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::{MAX_ACKS_PER_PACKET, RECV_WINDOW};

/// What [`ReliableRecv::on_packet`] did with a reliable packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvOutcome {
    /// New in-window packet, buffered for in-order delivery and queued for ACK.
    Accepted,
    /// Already delivered or buffered: payload dropped, id ACKed again (§4).
    Duplicate,
    /// Beyond the receive window: ignored and not ACKed (§4).
    OutOfWindow,
}

/// The receiving half of one key state's reliability layer.
#[derive(Debug, Clone, Default)]
pub struct ReliableRecv {
    expected: u32,
    buffered: BTreeMap<u32, Vec<u8>>,
    /// Ids still to acknowledge, oldest first, at most [`MAX_ACKS_PER_PACKET`].
    pending_acks: VecDeque<u32>,
    /// Ids acknowledged recently, newest first, re-sent to fill ACK blocks (2.6 MRU list, §4).
    recent_acks: VecDeque<u32>,
}

impl ReliableRecv {
    /// A receiver expecting message-id 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next message-id to deliver.
    pub fn expected(&self) -> u32 {
        self.expected
    }

    /// Handles a received reliable packet with message-id `id`.
    pub fn on_packet(&mut self, id: u32, payload: &[u8]) -> RecvOutcome {
        let offset = id.wrapping_sub(self.expected);
        if offset >= 0x8000_0000 || self.buffered.contains_key(&id) {
            self.queue_ack(id);
            return RecvOutcome::Duplicate;
        }
        if offset >= RECV_WINDOW {
            return RecvOutcome::OutOfWindow;
        }
        self.buffered.insert(id, payload.to_vec());
        self.queue_ack(id);
        RecvOutcome::Accepted
    }

    fn queue_ack(&mut self, id: u32) {
        if !self.pending_acks.contains(&id) && self.pending_acks.len() < MAX_ACKS_PER_PACKET {
            self.pending_acks.push_back(id);
        }
    }

    /// Appends the payloads now deliverable in message-id order to `out`; returns how many packets.
    pub fn drain_in_order(&mut self, out: &mut Vec<u8>) -> usize {
        let mut n = 0;
        while let Some(payload) = self.buffered.remove(&self.expected) {
            out.extend_from_slice(&payload);
            self.expected = self.expected.wrapping_add(1);
            n += 1;
        }
        n
    }

    /// Pops the next in-order packet payload, if it has arrived.
    pub fn pop_in_order(&mut self) -> Option<Vec<u8>> {
        let payload = self.buffered.remove(&self.expected)?;
        self.expected = self.expected.wrapping_add(1);
        Some(payload)
    }

    /// True if some received id has not been acknowledged yet (then a P_ACK_V1 is due if nothing else goes).
    pub fn has_pending_acks(&self) -> bool {
        !self.pending_acks.is_empty()
    }

    /// Takes up to `max` ids for an outgoing ACK block: pending ids first, then recently acked ids
    /// (newest first, no duplicates) to make ACK loss harmless. Returns an empty list if nothing is pending
    /// and `fill_only_if_pending` is set.
    pub fn take_acks(&mut self, max: usize, fill_only_if_pending: bool) -> Vec<u32> {
        let mut ids = Vec::with_capacity(max);
        if fill_only_if_pending && self.pending_acks.is_empty() {
            return ids;
        }
        while ids.len() < max {
            let Some(id) = self.pending_acks.pop_front() else {
                break;
            };
            ids.push(id);
        }
        for id in self.recent_acks.iter() {
            if ids.len() >= max {
                break;
            }
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        for id in ids.iter().rev() {
            self.recent_acks.retain(|r| r != id);
            self.recent_acks.push_front(*id);
        }
        self.recent_acks.truncate(MAX_ACKS_PER_PACKET);
        ids
    }
}
