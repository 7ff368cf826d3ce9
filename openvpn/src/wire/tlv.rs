//! Early-negotiation TLVs carried in the payload of a hard reset with message-id 0
//! (wire reference §2.7): `type (2) || length (2) || value`.

use super::{read_u16, write_at, Error, Field};

/// TLV type of the early-negotiation flags.
pub const TLV_TYPE_EARLY_NEG_FLAGS: u16 = 0x0001;
/// Flag: the client must re-send its WKc in the packet with message-id 1 (P_CONTROL_WKC_V1).
pub const EARLY_NEG_FLAG_RESEND_WKC: u16 = 0x0001;

/// The early-negotiation information of a server reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EarlyNegotiation {
    /// The EARLY_NEG_FLAGS value, if the TLV was present.
    pub flags: Option<u16>,
}

impl EarlyNegotiation {
    /// Parses a reset payload as a TLV list: unknown types are skipped; a short header, a length past the
    /// end or a flags TLV whose length is not 2 is an error (OpenVPN treats all three as fatal).
    pub fn parse(payload: &[u8]) -> Result<EarlyNegotiation, Error> {
        let mut out = EarlyNegotiation::default();
        let mut rest = payload;
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(Error::BadTlv);
            }
            let kind = read_u16(rest, 0, Field::Tlv)?;
            let len = usize::from(read_u16(rest, 2, Field::Tlv)?);
            let value = rest.get(4..4 + len).ok_or(Error::BadTlv)?;
            if kind == TLV_TYPE_EARLY_NEG_FLAGS {
                let flags: [u8; 2] = value.try_into().map_err(|_| Error::BadTlv)?;
                out.flags = Some(u16::from_be_bytes(flags));
            }
            rest = rest.get(4 + len..).unwrap_or(&[]);
        }
        Ok(out)
    }

    /// True when the server asked for the WKc to be re-sent.
    pub fn resend_wkc(&self) -> bool {
        self.flags
            .is_some_and(|f| f & EARLY_NEG_FLAG_RESEND_WKC != 0)
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        if self.flags.is_some() {
            6
        } else {
            0
        }
    }

    /// Writes the TLV list (used by tests and server-side tooling).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.flags {
            Some(flags) => {
                write_at(buf, 0, &TLV_TYPE_EARLY_NEG_FLAGS.to_be_bytes())?;
                write_at(buf, 2, &2u16.to_be_bytes())?;
                write_at(buf, 4, &flags.to_be_bytes())?;
                Ok(6)
            }
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_server_reset_tlv() {
        let neg = EarlyNegotiation::parse(&[0, 1, 0, 2, 0, 1]).unwrap();
        assert!(neg.resend_wkc());
        let mut out = [0u8; 6];
        assert_eq!(neg.emit(&mut out), Ok(6));
        assert_eq!(out, [0, 1, 0, 2, 0, 1]);
    }

    #[test]
    fn skips_unknown_and_rejects_malformed() {
        let neg = EarlyNegotiation::parse(&[0, 9, 0, 1, 0xaa, 0, 1, 0, 2, 0, 0]).unwrap();
        assert_eq!(neg.flags, Some(0));
        assert!(!neg.resend_wkc());
        assert_eq!(
            EarlyNegotiation::parse(&[]),
            Ok(EarlyNegotiation::default())
        );
        assert_eq!(EarlyNegotiation::parse(&[0, 1, 0]), Err(Error::BadTlv));
        assert_eq!(
            EarlyNegotiation::parse(&[0, 9, 0, 5, 1]),
            Err(Error::BadTlv)
        );
        assert_eq!(
            EarlyNegotiation::parse(&[0, 1, 0, 1, 1]),
            Err(Error::BadTlv)
        );
    }
}
