//! The control-channel reliability layer (§4) fed arbitrary event sequences. A sender and a receiver are
//! joined by a channel the fuzzer controls: it drops, duplicates, reorders and delays packets and ACKs,
//! advances time, and (in hostile mode) injects forged packets and ACK ids.
//! Checks: nothing panics; the receiver never delivers bytes that were not sent, in order (honest mode);
//! the sender's window holds; and after the fuzzer's sequence a loss-free channel delivers the whole stream
//! (honest mode), so no sequence of loss, duplication and reordering wedges the layer.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use openvpn::reliable::{ReliableRecv, ReliableSend, MAX_ACKS_PER_PACKET, SEND_WINDOW};

const P_CONTROL_V1: u8 = 4;
const MAX_PAYLOAD: usize = 100;

struct Link {
    send: ReliableSend,
    recv: ReliableRecv,
    /// Packets in flight sender -> receiver: (id, payload).
    to_recv: VecDeque<(u32, Vec<u8>)>,
    /// ACK ids in flight receiver -> sender.
    to_send: VecDeque<u32>,
    sent: Vec<u8>,
    delivered: Vec<u8>,
    now_ms: u64,
}

impl Link {
    fn transmit(&mut self, max_payload: usize) -> bool {
        let Some(p) = self.send.poll_transmit(self.now_ms, max_payload) else {
            return false;
        };
        assert!(
            p.retransmit || p.payload.len() <= max_payload,
            "new packet over the size asked for"
        );
        self.to_recv.push_back((p.id, p.payload.to_vec()));
        true
    }

    fn deliver(&mut self, index: usize, duplicate: bool) {
        let pkt = if duplicate {
            self.to_recv.get(index).cloned()
        } else {
            self.to_recv.remove(index)
        };
        let Some((id, payload)) = pkt else { return };
        let _ = self.recv.on_packet(id, &payload);
        self.recv.drain_in_order(&mut self.delivered);
        for ack in self.recv.take_acks(MAX_ACKS_PER_PACKET, true) {
            self.to_send.push_back(ack);
        }
    }

    fn ack(&mut self, index: usize, duplicate: bool) {
        let id = if duplicate {
            self.to_send.get(index).copied()
        } else {
            self.to_send.remove(index)
        };
        if let Some(id) = id {
            self.send.on_ack(id);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, ops)) = data.split_first() else {
        return;
    };
    let hostile = mode & 1 == 1;
    let mut link = Link {
        send: ReliableSend::new(P_CONTROL_V1),
        recv: ReliableRecv::new(),
        to_recv: VecDeque::new(),
        to_send: VecDeque::new(),
        sent: Vec::new(),
        delivered: Vec::new(),
        now_ms: 0,
    };
    let mut counter = 0u8;
    for op in ops.chunks(2) {
        let (&kind, arg) = match op {
            [k, a] => (k, *a),
            [k] => (k, 0),
            _ => break,
        };
        let index = usize::from(arg);
        match kind % 10 {
            0 => {
                // The TLS layer writes `arg` bytes of a recognisable stream.
                let bytes: Vec<u8> = (0..arg)
                    .map(|_| {
                        counter = counter.wrapping_add(1);
                        counter
                    })
                    .collect();
                if link.send.queue_stream(&bytes).is_ok() {
                    link.sent.extend_from_slice(&bytes);
                }
            }
            1 => {
                let _ = link.transmit(usize::from(arg % 128) + 1);
            }
            2 => link.deliver(index % link.to_recv.len().max(1), false),
            3 => link.deliver(index % link.to_recv.len().max(1), true),
            4 => {
                // Loss: drop one packet in flight.
                let at = index % link.to_recv.len().max(1);
                let _ = link.to_recv.remove(at);
            }
            5 => link.ack(index % link.to_send.len().max(1), false),
            6 => link.ack(index % link.to_send.len().max(1), true),
            7 => {
                let at = index % link.to_send.len().max(1);
                let _ = link.to_send.remove(at);
            }
            8 => link.now_ms += u64::from(arg) * 97,
            _ => {
                if hostile {
                    // Forged: an arbitrary id near the window edges, or an ACK for anything.
                    let id = u32::from(arg)
                        .wrapping_sub(16)
                        .wrapping_add(link.recv.expected());
                    if kind & 0x10 == 0 {
                        let _ = link.recv.on_packet(id, &[arg; 3]);
                        link.recv.drain_in_order(&mut link.delivered);
                    } else {
                        link.send.on_ack(id);
                    }
                } else {
                    let acks = link.recv.take_acks(
                        usize::from(arg) % (MAX_ACKS_PER_PACKET + 1),
                        kind & 0x10 != 0,
                    );
                    assert!(acks.len() <= MAX_ACKS_PER_PACKET);
                    link.to_send.extend(acks);
                }
            }
        }
        if link.to_recv.len() > 64 {
            link.to_recv.pop_front();
        }
        if link.to_send.len() > 64 {
            link.to_send.pop_front();
        }
        if !hostile {
            assert!(
                link.sent.starts_with(&link.delivered),
                "delivered bytes that were not sent in order"
            );
            assert!(
                link.send.unacked_len() <= SEND_WINDOW as usize,
                "send window overrun"
            );
        }
        let _ = link.send.poll_at();
        let _ = link.send.wants_transmit(link.now_ms);
        let _ = link.recv.has_pending_acks();
    }
    if hostile {
        return;
    }
    // A perfect channel from here on: everything must arrive within a bounded number of rounds.
    link.to_recv.clear();
    link.to_send.clear();
    for _ in 0..2000 {
        if link.delivered.len() == link.sent.len() && link.send.is_idle() {
            break;
        }
        // What an event loop does: sleep until the sender's next deadline.
        link.now_ms = link.now_ms.max(link.send.poll_at().unwrap_or(link.now_ms));
        while link.transmit(MAX_PAYLOAD) {}
        while !link.to_recv.is_empty() {
            link.deliver(0, false);
        }
        while !link.to_send.is_empty() {
            link.ack(0, false);
        }
    }
    assert_eq!(
        link.delivered.len(),
        link.sent.len(),
        "stream not delivered over a loss-free channel"
    );
    assert_eq!(link.delivered, link.sent);
    assert!(
        link.send.is_idle(),
        "sender still has unacknowledged packets"
    );
});
