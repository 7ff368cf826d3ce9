//! Two in-memory ends exchanging byte streams over a lossy, duplicating, reordering link.

use alloc::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const P_CONTROL: u8 = 4;

#[derive(Clone)]
struct Wire {
    acks: Vec<u32>,
    msg: Option<(u32, Vec<u8>)>,
}

struct End {
    send: ReliableSend,
    recv: ReliableRecv,
    got: Vec<u8>,
}

impl End {
    fn new() -> Self {
        End {
            send: ReliableSend::new(P_CONTROL),
            recv: ReliableRecv::new(),
            got: Vec::new(),
        }
    }

    fn transmit(&mut self, now: u64, out: &mut Vec<Wire>) {
        while self.send.wants_transmit(now) {
            let acks = self.recv.take_acks(MAX_ACKS_PIGGYBACK, false);
            let Some(p) = self.send.poll_transmit(now, 100) else {
                break;
            };
            out.push(Wire {
                acks,
                msg: Some((p.id, p.payload.to_vec())),
            });
        }
        if self.recv.has_pending_acks() {
            let acks = self.recv.take_acks(MAX_ACKS_PER_PACKET, true);
            out.push(Wire { acks, msg: None });
        }
    }

    fn receive(&mut self, w: &Wire) {
        for id in &w.acks {
            self.send.on_ack(*id);
        }
        if let Some((id, payload)) = &w.msg {
            self.recv.on_packet(*id, payload);
            self.recv.drain_in_order(&mut self.got);
        }
    }
}

struct Link {
    in_flight: Vec<(u64, Wire)>,
}

impl Link {
    fn carry(&mut self, rng: &mut ChaCha8Rng, now: u64, loss: u32, dup: u32, packets: Vec<Wire>) {
        for w in packets {
            let copies = if rng.next_u32() % 100 < dup { 2 } else { 1 };
            for _ in 0..copies {
                if rng.next_u32() % 100 < loss {
                    continue;
                }
                let delay = 10 + u64::from(rng.next_u32() % 300);
                self.in_flight.push((now + delay, w.clone()));
            }
        }
    }

    fn arrivals(&mut self, now: u64) -> Vec<Wire> {
        let (due, keep): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|(t, _)| *t <= now);
        self.in_flight = keep;
        due.into_iter().map(|(_, w)| w).collect()
    }
}

fn stream(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut v = alloc::vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Runs both directions until both streams arrive; returns the simulated time it took.
fn converge(seed: u64, loss: u32, dup: u32) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut a, mut b) = (End::new(), End::new());
    let (data_a, data_b) = (stream(&mut rng, 5000), stream(&mut rng, 3000));
    a.send.queue_stream(&data_a).unwrap();
    b.send.queue_stream(&data_b).unwrap();
    let (mut ab, mut ba) = (
        Link {
            in_flight: Vec::new(),
        },
        Link {
            in_flight: Vec::new(),
        },
    );
    let mut now = 0u64;
    while now < 3_600_000 {
        let mut out = Vec::new();
        a.transmit(now, &mut out);
        ab.carry(&mut rng, now, loss, dup, out);
        let mut out = Vec::new();
        b.transmit(now, &mut out);
        ba.carry(&mut rng, now, loss, dup, out);
        for w in ab.arrivals(now) {
            b.receive(&w);
        }
        for w in ba.arrivals(now) {
            a.receive(&w);
        }
        if b.got.len() == data_a.len()
            && a.got.len() == data_b.len()
            && a.send.is_idle()
            && b.send.is_idle()
        {
            break;
        }
        assert!(b.got.len() <= data_a.len() && a.got.len() <= data_b.len());
        now += 50;
    }
    assert!(
        b.got == data_a,
        "seed {seed}: a->b stream differs ({} of {} bytes)",
        b.got.len(),
        data_a.len()
    );
    assert!(
        a.got == data_b,
        "seed {seed}: b->a stream differs ({} of {} bytes)",
        a.got.len(),
        data_b.len()
    );
    assert!(
        a.send.is_idle() && b.send.is_idle(),
        "seed {seed}: everything acked"
    );
    now
}

#[test]
fn perfect_link_delivers_in_order() {
    converge(1, 0, 0);
}

#[test]
fn lossy_duplicating_reordering_link_converges() {
    for seed in 0..40 {
        converge(seed, 20, 10);
    }
}

#[test]
fn very_lossy_link_converges() {
    for seed in 100..110 {
        converge(seed, 45, 20);
    }
}

#[test]
fn window_limits_outstanding_packets() {
    let mut s = ReliableSend::new(P_CONTROL);
    s.queue_stream(&[0u8; 1000]).unwrap();
    let mut ids = Vec::new();
    while let Some(p) = s.poll_transmit(0, 100) {
        ids.push(p.id);
    }
    assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    // ACKing a later id does not open the window (it counts from the lowest unacked id).
    s.on_ack(5);
    assert!(s.poll_transmit(0, 100).is_none());
    s.on_ack(0);
    assert_eq!(s.poll_transmit(0, 100).map(|p| p.id), Some(6));
}

#[test]
fn retransmit_backs_off_exponentially() {
    let mut s = ReliableSend::new(P_CONTROL);
    s.queue_packet(7, alloc::vec![]);
    let p = s
        .poll_transmit(0, 100)
        .map(|p| (p.id, p.opcode, p.retransmit));
    assert_eq!(p, Some((0, 7, false)));
    assert_eq!(s.poll_at(), Some(2000));
    assert!(s.poll_transmit(1999, 100).is_none());
    assert_eq!(s.poll_transmit(2000, 100).map(|p| p.retransmit), Some(true));
    assert_eq!(s.poll_at(), Some(6000));
    assert!(s.poll_transmit(5999, 100).is_none());
    assert!(s.poll_transmit(6000, 100).is_some());
    assert_eq!(s.poll_at(), Some(14000));
    s.on_ack(0);
    assert_eq!(s.poll_at(), None);
    assert!(s.is_acked(0) && !s.is_acked(1));
}

#[test]
fn fast_retransmit_after_three_later_acks() {
    let mut s = ReliableSend::new(P_CONTROL);
    s.queue_stream(&[1u8; 40]).unwrap();
    while s.poll_transmit(0, 10).is_some() {}
    for id in 1..4 {
        s.on_ack(id);
    }
    assert_eq!(
        s.poll_transmit(10, 10).map(|p| (p.id, p.retransmit)),
        Some((0, true))
    );
}

#[test]
fn receiver_window_duplicates_and_acks() {
    let mut r = ReliableRecv::new();
    assert_eq!(r.on_packet(12, b"x"), RecvOutcome::OutOfWindow);
    assert_eq!(r.on_packet(1, b"b"), RecvOutcome::Accepted);
    assert_eq!(r.on_packet(1, b"b"), RecvOutcome::Duplicate);
    let mut out = Vec::new();
    assert_eq!(r.drain_in_order(&mut out), 0);
    assert_eq!(r.on_packet(0, b"a"), RecvOutcome::Accepted);
    assert_eq!(r.drain_in_order(&mut out), 2);
    assert_eq!(out, b"ab");
    assert_eq!(r.on_packet(0, b"a"), RecvOutcome::Duplicate);
    // Pending acks once each, oldest first; then the MRU list refills (newest first).
    assert_eq!(r.take_acks(8, true), [1, 0]);
    assert!(!r.has_pending_acks());
    assert!(r.take_acks(8, true).is_empty());
    assert_eq!(r.on_packet(2, b"c"), RecvOutcome::Accepted);
    assert_eq!(r.take_acks(4, false), [2, 1, 0]);
}

#[test]
fn stream_queue_stops_at_its_cap_when_nothing_is_acknowledged() {
    let mut s = ReliableSend::new(P_CONTROL);
    let chunk = [7u8; 1000];
    let mut queued = 0;
    let mut refused = 0;
    // A peer that never ACKs: the window fills after 6 packets and everything else stays queued.
    for _ in 0..4096 {
        match s.queue_stream(&chunk) {
            Ok(()) => queued += chunk.len(),
            Err(QueueFull) => refused += 1,
        }
        while s.poll_transmit(0, 100).is_some() {}
    }
    assert!(refused > 0, "4 MB queued without an ACK");
    assert!(s.stream_len() <= MAX_SEND_QUEUE);
    assert!(s.stream_len() > MAX_SEND_QUEUE - chunk.len());
    assert_eq!(
        queued,
        s.stream_len() + 6 * 100,
        "refused chunks are not queued in part"
    );
    // Room again once ACKs let the stream drain.
    for id in 0..6 {
        s.on_ack(id);
    }
    while s.poll_transmit(0, 100).is_some() {}
    assert_eq!(s.queue_stream(&chunk[..500]), Ok(()));
}
