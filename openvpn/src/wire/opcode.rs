//! The first byte of every OpenVPN packet: a 5-bit opcode and a 3-bit key_id (wire reference §1.2).

use super::Error;
use core::fmt;

/// An OpenVPN packet opcode (high 5 bits of the first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Key-method 1 client reset; rejected by 2.5+.
    ControlHardResetClientV1 = 1,
    /// Key-method 1 server reset; rejected by 2.5+.
    ControlHardResetServerV1 = 2,
    /// Starts a renegotiation on a new key_id.
    ControlSoftResetV1 = 3,
    /// Reliable control packet carrying TLS bytes.
    ControlV1 = 4,
    /// ACKs only: no message-id, no payload.
    AckV1 = 5,
    /// Data packet with a 1-byte header.
    DataV1 = 6,
    /// First client packet (no tls-crypt-v2).
    ControlHardResetClientV2 = 7,
    /// The server's reply to a client reset.
    ControlHardResetServerV2 = 8,
    /// Data packet with a 4-byte header carrying a 24-bit peer-id.
    DataV2 = 9,
    /// First client packet with tls-crypt-v2 (WKc appended).
    ControlHardResetClientV3 = 10,
    /// P_CONTROL_V1 with WKc appended (tls-crypt-v2 early negotiation, §2.7).
    ControlWkcV1 = 11,
}

impl Opcode {
    /// Number of bits the opcode is shifted left in the first byte.
    pub const SHIFT: u8 = 3;

    /// The opcode with numeric value `value`, if OpenVPN defines one.
    pub const fn from_u8(value: u8) -> Option<Opcode> {
        Some(match value {
            1 => Opcode::ControlHardResetClientV1,
            2 => Opcode::ControlHardResetServerV1,
            3 => Opcode::ControlSoftResetV1,
            4 => Opcode::ControlV1,
            5 => Opcode::AckV1,
            6 => Opcode::DataV1,
            7 => Opcode::ControlHardResetClientV2,
            8 => Opcode::ControlHardResetServerV2,
            9 => Opcode::DataV2,
            10 => Opcode::ControlHardResetClientV3,
            11 => Opcode::ControlWkcV1,
            _ => return None,
        })
    }

    /// True for the data opcodes P_DATA_V1 and P_DATA_V2.
    pub const fn is_data(self) -> bool {
        matches!(self, Opcode::DataV1 | Opcode::DataV2)
    }

    /// True for every control-channel opcode (everything but data).
    pub const fn is_control(self) -> bool {
        !self.is_data()
    }

    /// True for control packets that carry a message-id and go through the reliability layer
    /// (every control opcode except P_ACK_V1).
    pub const fn is_reliable(self) -> bool {
        self.is_control() && !matches!(self, Opcode::AckV1)
    }

    /// True for the hard-reset opcodes (V1, V2, V3 of either side).
    pub const fn is_hard_reset(self) -> bool {
        matches!(
            self,
            Opcode::ControlHardResetClientV1
                | Opcode::ControlHardResetServerV1
                | Opcode::ControlHardResetClientV2
                | Opcode::ControlHardResetServerV2
                | Opcode::ControlHardResetClientV3
        )
    }

    /// True for the opcodes after which a tls-crypt-v2 client appends its WKc
    /// (P_CONTROL_HARD_RESET_CLIENT_V3 and P_CONTROL_WKC_V1, §2.7).
    pub const fn carries_wkc(self) -> bool {
        matches!(
            self,
            Opcode::ControlHardResetClientV3 | Opcode::ControlWkcV1
        )
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Opcode::ControlHardResetClientV1 => "P_CONTROL_HARD_RESET_CLIENT_V1",
            Opcode::ControlHardResetServerV1 => "P_CONTROL_HARD_RESET_SERVER_V1",
            Opcode::ControlSoftResetV1 => "P_CONTROL_SOFT_RESET_V1",
            Opcode::ControlV1 => "P_CONTROL_V1",
            Opcode::AckV1 => "P_ACK_V1",
            Opcode::DataV1 => "P_DATA_V1",
            Opcode::ControlHardResetClientV2 => "P_CONTROL_HARD_RESET_CLIENT_V2",
            Opcode::ControlHardResetServerV2 => "P_CONTROL_HARD_RESET_SERVER_V2",
            Opcode::DataV2 => "P_DATA_V2",
            Opcode::ControlHardResetClientV3 => "P_CONTROL_HARD_RESET_CLIENT_V3",
            Opcode::ControlWkcV1 => "P_CONTROL_WKC_V1",
        })
    }
}

/// A key_id (0..=7): selects the TLS session / data key a packet belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(u8);

impl KeyId {
    /// Mask of the key_id bits in the first byte.
    pub const MASK: u8 = 0x07;
    /// key_id 0: the first TLS session of a connection.
    pub const ZERO: KeyId = KeyId(0);

    /// The key_id `value`, if it fits in 3 bits.
    pub const fn new(value: u8) -> Option<KeyId> {
        if value <= Self::MASK {
            Some(KeyId(value))
        } else {
            None
        }
    }

    /// The numeric value (0..=7).
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The key_id of the next renegotiation: 1, 2, … 7, then 1 again, never 0 (§1.2, §9).
    pub const fn next(self) -> KeyId {
        if self.0 >= Self::MASK {
            KeyId(1)
        } else {
            KeyId(self.0 + 1)
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The decoded first byte: opcode and key_id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpKey {
    /// The packet opcode.
    pub opcode: Opcode,
    /// The key_id the packet belongs to.
    pub key_id: KeyId,
}

impl OpKey {
    /// Pairs an opcode with a key_id.
    pub const fn new(opcode: Opcode, key_id: KeyId) -> OpKey {
        OpKey { opcode, key_id }
    }

    /// Decodes a first byte; unknown opcodes (0, 12..31) are an error.
    pub const fn from_byte(byte: u8) -> Result<OpKey, Error> {
        let op = byte >> Opcode::SHIFT;
        match Opcode::from_u8(op) {
            Some(opcode) => Ok(OpKey {
                opcode,
                key_id: KeyId(byte & KeyId::MASK),
            }),
            None => Err(Error::UnknownOpcode(op)),
        }
    }

    /// Decodes the first byte of `packet`.
    pub fn parse(packet: &[u8]) -> Result<OpKey, Error> {
        match packet.first() {
            Some(&b) => OpKey::from_byte(b),
            None => Err(Error::Truncated(super::Field::Opcode)),
        }
    }

    /// The encoded first byte.
    pub const fn to_byte(self) -> u8 {
        ((self.opcode as u8) << Opcode::SHIFT) | self.key_id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_match_the_table() {
        let table = [
            (0x18, Opcode::ControlSoftResetV1),
            (0x20, Opcode::ControlV1),
            (0x28, Opcode::AckV1),
            (0x30, Opcode::DataV1),
            (0x38, Opcode::ControlHardResetClientV2),
            (0x40, Opcode::ControlHardResetServerV2),
            (0x48, Opcode::DataV2),
            (0x50, Opcode::ControlHardResetClientV3),
            (0x58, Opcode::ControlWkcV1),
        ];
        for (byte, opcode) in table {
            let ok = OpKey::from_byte(byte).unwrap();
            assert_eq!(ok.opcode, opcode);
            assert_eq!(ok.key_id, KeyId::ZERO);
            assert_eq!(ok.to_byte(), byte);
        }
        let ok = OpKey::from_byte(0x4b).unwrap();
        assert_eq!((ok.opcode, ok.key_id.value()), (Opcode::DataV2, 3));
        assert_eq!(OpKey::from_byte(0x00), Err(Error::UnknownOpcode(0)));
        assert_eq!(OpKey::from_byte(0x60), Err(Error::UnknownOpcode(12)));
        assert_eq!(
            OpKey::parse(&[]),
            Err(Error::Truncated(super::super::Field::Opcode))
        );
    }

    #[test]
    fn key_id_wraps_to_one() {
        assert_eq!(KeyId::ZERO.next().value(), 1);
        assert_eq!(KeyId::new(7).unwrap().next().value(), 1);
        assert_eq!(KeyId::new(8), None);
    }
}
