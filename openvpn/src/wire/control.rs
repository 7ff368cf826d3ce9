//! The plain control packet (wire reference §2.2):
//!
//! ```text
//! P_CONTROL_V1 / *_RESET_* / P_CONTROL_WKC_V1:  [op|kid 1][session id 8][ACK block][message-id 4][payload]
//! P_ACK_V1:                                     [op|kid 1][session id 8][ACK block (count >= 1)]
//! ```
//!
//! tls-auth and tls-crypt (in `crypto`) turn this layout into their wire format and back, so the
//! reliability layer only ever sees plain packets. This module does not interpret payloads.

use super::{read_u32, write_at, AckBlock, Error, Field, KeyId, OpKey, Opcode, SessionId};

mod field {
    use core::ops::Range;
    pub const OPKEY: usize = 0;
    pub const SESSION_ID: Range<usize> = 1..9;
    pub const ACK_BLOCK: usize = 9;
}

/// Length of the clear header every control packet starts with: opcode byte and session id.
pub const HEADER_LEN: usize = field::ACK_BLOCK;

/// A read-only checked view of a plain control packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    acks: AckBlock,
    body: usize,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates `buffer` as a plain control packet; afterwards no accessor can fail or panic.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let bytes = buffer.as_ref();
        let op = OpKey::parse(bytes)?;
        if !op.opcode.is_control() {
            return Err(Error::UnknownOpcode(op.opcode as u8));
        }
        let sid = SessionId::parse(
            bytes.get(field::SESSION_ID.start..).unwrap_or(&[]),
            Field::SessionId,
        )?;
        if sid.is_zero() {
            return Err(Error::ZeroSessionId);
        }
        let (acks, ack_len) = AckBlock::parse(bytes.get(field::ACK_BLOCK..).unwrap_or(&[]))?;
        let mut body = field::ACK_BLOCK + ack_len;
        if op.opcode.is_reliable() {
            read_u32(bytes, body, Field::MessageId)?;
            body += 4;
        } else if acks.is_empty() {
            return Err(Error::EmptyAck);
        }
        Ok(Packet { buffer, acks, body })
    }

    /// Opcode and key_id.
    pub fn op_key(&self) -> OpKey {
        // new_checked verified the byte.
        OpKey::parse(self.buffer.as_ref()).unwrap_or(OpKey::new(Opcode::AckV1, KeyId::ZERO))
    }

    /// The packet opcode.
    pub fn opcode(&self) -> Opcode {
        self.op_key().opcode
    }

    /// The key_id.
    pub fn key_id(&self) -> KeyId {
        self.op_key().key_id
    }

    /// The sender's session id.
    pub fn session_id(&self) -> SessionId {
        SessionId::parse(
            self.buffer
                .as_ref()
                .get(field::SESSION_ID.start..)
                .unwrap_or(&[]),
            Field::SessionId,
        )
        .unwrap_or_default()
    }

    /// The ACK block.
    pub fn acks(&self) -> &AckBlock {
        &self.acks
    }

    /// The message-id of a reliable packet; `None` for P_ACK_V1.
    pub fn message_id(&self) -> Option<u32> {
        if self.opcode().is_reliable() {
            read_u32(
                self.buffer.as_ref(),
                self.body.saturating_sub(4),
                Field::MessageId,
            )
            .ok()
        } else {
            None
        }
    }

    /// The payload (TLS bytes, or early-negotiation TLVs in a server reset); empty for P_ACK_V1.
    pub fn payload(&self) -> &[u8] {
        if self.opcode().is_reliable() {
            self.buffer.as_ref().get(self.body..).unwrap_or(&[])
        } else {
            &[]
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// A plain control packet in its valid-state form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    /// A control opcode.
    pub opcode: Opcode,
    /// The key_id.
    pub key_id: KeyId,
    /// The sender's session id (never zero on the wire).
    pub session_id: SessionId,
    /// Acknowledged peer message-ids.
    pub acks: AckBlock,
    /// Required for reliable opcodes, ignored for P_ACK_V1.
    pub message_id: Option<u32>,
    /// TLS bytes; ignored for P_ACK_V1.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Reads the fields of a checked packet.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &'a Packet<&'a T>) -> Repr<'a> {
        let op = packet.op_key();
        Repr {
            opcode: op.opcode,
            key_id: op.key_id,
            session_id: packet.session_id(),
            acks: packet.acks,
            message_id: packet.message_id(),
            payload: packet.payload(),
        }
    }

    /// Checks and parses `bytes` in one step.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Repr<'a>, Error> {
        let packet = Packet::new_checked(bytes)?;
        let op = packet.op_key();
        let message_id = packet.message_id();
        let payload = if op.opcode.is_reliable() {
            bytes.get(packet.body..).unwrap_or(&[])
        } else {
            &[]
        };
        Ok(Repr {
            opcode: op.opcode,
            key_id: op.key_id,
            session_id: packet.session_id(),
            acks: packet.acks,
            message_id,
            payload,
        })
    }

    /// Bytes the packet takes on the wire.
    pub fn buffer_len(&self) -> usize {
        let mut len = HEADER_LEN + self.acks.buffer_len();
        if self.opcode.is_reliable() {
            len += 4 + self.payload.len();
        }
        len
    }

    /// Writes the packet at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if !self.opcode.is_control() {
            return Err(Error::UnknownOpcode(self.opcode as u8));
        }
        if self.session_id.is_zero() {
            return Err(Error::ZeroSessionId);
        }
        if self.opcode == Opcode::AckV1 && self.acks.is_empty() {
            return Err(Error::EmptyAck);
        }
        if buf.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        write_at(
            buf,
            field::OPKEY,
            &[OpKey::new(self.opcode, self.key_id).to_byte()],
        )?;
        write_at(buf, field::SESSION_ID.start, self.session_id.as_bytes())?;
        let mut at = field::ACK_BLOCK
            + self
                .acks
                .emit(buf.get_mut(field::ACK_BLOCK..).unwrap_or(&mut []))?;
        if self.opcode.is_reliable() {
            let id = self.message_id.ok_or(Error::MissingMessageId)?;
            write_at(buf, at, &id.to_be_bytes())?;
            at += 4;
            write_at(buf, at, self.payload)?;
            at += self.payload.len();
        }
        Ok(at)
    }
}

/// Fuzzing entry point: parses untrusted bytes as a plain control packet and re-emits it; must never panic.
pub fn fuzz_parse(bytes: &[u8]) {
    if let Ok(repr) = Repr::parse_bytes(bytes) {
        let mut out = [0u8; 2048];
        if let Some(out) = out.get_mut(..repr.buffer_len()) {
            let _ = repr.emit(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn plain_reset_from_test_pkt() {
        let wire = hex("386891923fa31034370000000000");
        let repr = Repr::parse_bytes(&wire).unwrap();
        assert_eq!(repr.opcode, Opcode::ControlHardResetClientV2);
        assert_eq!(repr.key_id, KeyId::ZERO);
        assert_eq!(repr.session_id.0, hex("6891923fa3103437")[..]);
        assert!(repr.acks.is_empty());
        assert_eq!(repr.message_id, Some(0));
        assert!(repr.payload.is_empty());
        let mut out = vec![0; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out), Ok(14));
        assert_eq!(out, wire);
    }

    #[test]
    fn control_with_ack_and_plain_ack() {
        let wire = hex("207819bf2ebcd19a450100000000eafebfa4418ae31b00000001160301");
        let packet = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(packet.opcode(), Opcode::ControlV1);
        assert_eq!(packet.acks().ids(), &[0]);
        assert_eq!(
            packet.acks().remote_session_id().unwrap().0,
            hex("eafebfa4418ae31b")[..]
        );
        assert_eq!(packet.message_id(), Some(1));
        assert_eq!(packet.payload(), &hex("160301")[..]);
        let repr = Repr::parse(&packet);
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut out).unwrap();
        assert_eq!(out, wire);

        let ack = hex("28aeb9afe1f01d79c80100000000dd85db535623b02e");
        let repr = Repr::parse_bytes(&ack).unwrap();
        assert_eq!(repr.opcode, Opcode::AckV1);
        assert_eq!(repr.message_id, None);
        assert_eq!(repr.acks.ids(), &[0]);
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut out).unwrap();
        assert_eq!(out, ack);
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(Repr::parse_bytes(&[]), Err(Error::Truncated(Field::Opcode)));
        assert_eq!(
            Repr::parse_bytes(&hex("48000000")),
            Err(Error::UnknownOpcode(9))
        );
        assert_eq!(
            Repr::parse_bytes(&hex("38000000")),
            Err(Error::Truncated(Field::SessionId))
        );
        assert_eq!(
            Repr::parse_bytes(&hex("3800000000000000000000000000")),
            Err(Error::ZeroSessionId)
        );
        assert_eq!(
            Repr::parse_bytes(&hex("386891923fa310343700000000")),
            Err(Error::Truncated(Field::MessageId))
        );
        assert_eq!(
            Repr::parse_bytes(&hex("286891923fa310343700")),
            Err(Error::EmptyAck)
        );
        assert_eq!(
            Repr::parse_bytes(&hex("386891923fa3103437")),
            Err(Error::Truncated(Field::AckCount))
        );
        for len in 0..40 {
            fuzz_parse(
                &hex("207819bf2ebcd19a450100000000eafebfa4418ae31b00000001160301")[..len.min(29)],
            );
        }
    }

    #[test]
    fn random_reprs_round_trip() {
        use rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xc0de);
        let opcodes = [
            Opcode::ControlSoftResetV1,
            Opcode::ControlV1,
            Opcode::AckV1,
            Opcode::ControlHardResetClientV2,
            Opcode::ControlHardResetServerV2,
            Opcode::ControlHardResetClientV3,
            Opcode::ControlWkcV1,
        ];
        let mut payload = [0u8; 300];
        for _ in 0..2000 {
            let opcode = opcodes[rng.next_u32() as usize % opcodes.len()];
            let mut acks = AckBlock::new(SessionId::random(&mut rng));
            let n_acks = rng.next_u32() % 9;
            for _ in 0..n_acks {
                acks.try_push(rng.next_u32());
            }
            if opcode == Opcode::AckV1 && acks.is_empty() {
                acks.try_push(0);
            }
            let plen = rng.next_u32() as usize % payload.len();
            rng.fill_bytes(&mut payload[..plen]);
            let reliable = opcode.is_reliable();
            let repr = Repr {
                opcode,
                key_id: KeyId::new((rng.next_u32() % 8) as u8).unwrap(),
                session_id: SessionId::random(&mut rng),
                acks,
                message_id: reliable.then(|| rng.next_u32()),
                payload: if reliable { &payload[..plen] } else { &[] },
            };
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut out), Ok(out.len()));
            assert_eq!(Repr::parse_bytes(&out), Ok(repr));
            assert_eq!(
                repr.emit(&mut out[..repr.buffer_len() - 1]),
                Err(Error::BufferTooSmall)
            );
        }
    }
}
