//! The data-channel packet header (wire reference §6.1):
//!
//! ```text
//! P_DATA_V1: [op|kid 1]                      [encrypted payload ...]
//! P_DATA_V2: [op|kid 1][peer-id 3 (24-bit BE)][encrypted payload ...]
//! ```
//!
//! Only the header is decoded here; the cipher-specific layout after it belongs to `crypto::data`.

use super::{write_at, Error, Field, KeyId, OpKey, Opcode};

/// Length of the P_DATA_V1 header.
pub const V1_HEADER_LEN: usize = 1;
/// Length of the P_DATA_V2 header.
pub const V2_HEADER_LEN: usize = 4;
/// The peer-id value that means "unset".
pub const PEER_ID_UNSET: u32 = 0x00FF_FFFF;
/// Largest peer-id (24 bits).
pub const PEER_ID_MAX: u32 = 0x00FF_FFFF;

/// A read-only checked view of a data packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates that `buffer` starts with a complete P_DATA_V1 or P_DATA_V2 header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let op = OpKey::parse(buffer.as_ref())?;
        let need = match op.opcode {
            Opcode::DataV1 => V1_HEADER_LEN,
            Opcode::DataV2 => V2_HEADER_LEN,
            other => return Err(Error::UnknownOpcode(other as u8)),
        };
        if buffer.as_ref().len() < need {
            return Err(Error::Truncated(Field::PeerId));
        }
        Ok(Packet { buffer })
    }

    fn first(&self) -> u8 {
        self.buffer.as_ref().first().copied().unwrap_or(0)
    }

    /// P_DATA_V1 or P_DATA_V2.
    pub fn opcode(&self) -> Opcode {
        if self.first() >> Opcode::SHIFT == Opcode::DataV1 as u8 {
            Opcode::DataV1
        } else {
            Opcode::DataV2
        }
    }

    /// The key_id selecting the data key.
    pub fn key_id(&self) -> KeyId {
        KeyId::new(self.first() & KeyId::MASK).unwrap_or_default()
    }

    /// The 24-bit peer-id of P_DATA_V2; `None` for P_DATA_V1.
    pub fn peer_id(&self) -> Option<u32> {
        match self.opcode() {
            Opcode::DataV2 => {
                let b = self.buffer.as_ref();
                let bytes = [0, *b.get(1)?, *b.get(2)?, *b.get(3)?];
                Some(u32::from_be_bytes(bytes))
            }
            _ => None,
        }
    }

    /// Header length: 1 for V1, 4 for V2.
    pub fn header_len(&self) -> usize {
        match self.opcode() {
            Opcode::DataV1 => V1_HEADER_LEN,
            _ => V2_HEADER_LEN,
        }
    }

    /// The header bytes (for V2 they are part of the AEAD additional data).
    pub fn header(&self) -> &[u8] {
        self.buffer.as_ref().get(..self.header_len()).unwrap_or(&[])
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

/// A data packet header in its valid-state form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// The key_id of the data key.
    pub key_id: KeyId,
    /// `Some` selects P_DATA_V2 with this 24-bit peer-id; `None` selects P_DATA_V1.
    pub peer_id: Option<u32>,
}

impl Repr {
    /// Reads the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Repr {
        Repr {
            key_id: packet.key_id(),
            peer_id: packet.peer_id(),
        }
    }

    /// Header length on the wire.
    pub const fn buffer_len(&self) -> usize {
        if self.peer_id.is_some() {
            V2_HEADER_LEN
        } else {
            V1_HEADER_LEN
        }
    }

    /// Writes the header at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.peer_id {
            Some(peer_id) => {
                if peer_id > PEER_ID_MAX {
                    return Err(Error::ValueTooLarge(Field::PeerId));
                }
                let op = u32::from(OpKey::new(Opcode::DataV2, self.key_id).to_byte());
                write_at(buf, 0, &((op << 24) | peer_id).to_be_bytes())?;
                Ok(V2_HEADER_LEN)
            }
            None => {
                write_at(buf, 0, &[OpKey::new(Opcode::DataV1, self.key_id).to_byte()])?;
                Ok(V1_HEADER_LEN)
            }
        }
    }
}

/// Fuzzing entry point: parses untrusted bytes as a data packet header; must never panic.
pub fn fuzz_parse(bytes: &[u8]) {
    if let Ok(packet) = Packet::new_checked(bytes) {
        let repr = Repr::parse(&packet);
        let mut out = [0u8; 4];
        let _ = repr.emit(&mut out);
        let _ = (packet.header(), packet.payload());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_header_from_real_packet() {
        let wire = [0x48, 0, 0, 0, 0, 0, 0, 1, 0xd4];
        let packet = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(packet.opcode(), Opcode::DataV2);
        assert_eq!(packet.peer_id(), Some(0));
        assert_eq!(packet.header(), &[0x48, 0, 0, 0]);
        assert_eq!(packet.payload(), &[0, 0, 0, 1, 0xd4]);
        let repr = Repr {
            key_id: KeyId::new(2).unwrap(),
            peer_id: Some(0x123456),
        };
        let mut out = [0u8; 4];
        assert_eq!(repr.emit(&mut out), Ok(4));
        assert_eq!(out, [0x4a, 0x12, 0x34, 0x56]);
        let back = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Repr::parse(&back), repr);
    }

    #[test]
    fn v1_and_errors() {
        let packet = Packet::new_checked(&[0x31u8, 9][..]).unwrap();
        assert_eq!(
            (packet.opcode(), packet.key_id().value(), packet.peer_id()),
            (Opcode::DataV1, 1, None)
        );
        assert_eq!(packet.payload(), &[9]);
        assert_eq!(
            Packet::new_checked(&[0x48u8, 0][..]).err(),
            Some(Error::Truncated(Field::PeerId))
        );
        assert_eq!(
            Packet::new_checked(&[0x20u8][..]).err(),
            Some(Error::UnknownOpcode(4))
        );
        let too_big = Repr {
            key_id: KeyId::ZERO,
            peer_id: Some(0x0100_0000),
        };
        assert_eq!(
            too_big.emit(&mut [0u8; 4]),
            Err(Error::ValueTooLarge(Field::PeerId))
        );
    }
}
