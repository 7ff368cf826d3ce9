//! The ACK block present in every control packet (wire reference §2.1):
//! `ack_count (1) || ack_count × message-id (4) || remote session id (8, only if ack_count > 0)`.

use super::{read_u32, write_at, Error, Field, SessionId};

/// The most message-ids one ACK block may carry (RELIABLE_ACK_SIZE).
pub const MAX_ACKS: usize = 8;
/// The most ACKs a sender piggybacks on a reliable P_CONTROL_* packet (CONTROL_SEND_ACK_MAX, §4).
pub const MAX_PIGGYBACK_ACKS: usize = 4;

/// An ACK block: up to 8 acknowledged message-ids and, when non-empty, the session id they refer to
/// (which must be the receiver's own).
#[derive(Clone, Copy, Debug, Default)]
pub struct AckBlock {
    ids: [u32; MAX_ACKS],
    count: u8,
    remote_session_id: SessionId,
}

/// Blocks are equal when they carry the same ids and, if non-empty, the same remote session id: an empty
/// block's session id is not on the wire and does not take part.
impl PartialEq for AckBlock {
    fn eq(&self, other: &Self) -> bool {
        self.ids() == other.ids() && self.remote_session_id() == other.remote_session_id()
    }
}

impl Eq for AckBlock {}

impl AckBlock {
    /// The empty block (a single `00` byte on the wire).
    pub const EMPTY: AckBlock = AckBlock {
        ids: [0; MAX_ACKS],
        count: 0,
        remote_session_id: SessionId::ZERO,
    };

    /// An empty block that will acknowledge ids of the peer whose session id is `remote`.
    pub const fn new(remote: SessionId) -> AckBlock {
        AckBlock {
            ids: [0; MAX_ACKS],
            count: 0,
            remote_session_id: remote,
        }
    }

    /// Appends `id`; returns false (and changes nothing) when the block already holds 8 ids.
    pub fn try_push(&mut self, id: u32) -> bool {
        match self.ids.get_mut(usize::from(self.count)) {
            Some(slot) => {
                *slot = id;
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// The acknowledged message-ids, in wire order.
    pub fn ids(&self) -> &[u32] {
        self.ids.get(..usize::from(self.count)).unwrap_or(&[])
    }

    /// Number of acknowledged ids.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True when nothing is acknowledged.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The session id the ACKs refer to; `None` for an empty block (it is not on the wire then).
    pub fn remote_session_id(&self) -> Option<SessionId> {
        if self.count == 0 {
            None
        } else {
            Some(self.remote_session_id)
        }
    }

    /// Bytes this block takes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::wire_len(self.len())
    }

    /// Bytes an ACK block with `count` ids takes on the wire.
    pub const fn wire_len(count: usize) -> usize {
        if count == 0 {
            1
        } else {
            1 + 4 * count + SessionId::LEN
        }
    }

    /// Parses a block from the start of `buf`; returns it and the number of bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(AckBlock, usize), Error> {
        let count = *buf.first().ok_or(Error::Truncated(Field::AckCount))?;
        if usize::from(count) > MAX_ACKS {
            return Err(Error::TooManyAcks(count));
        }
        let mut block = AckBlock::EMPTY;
        let mut at = 1;
        for _ in 0..count {
            block.try_push(read_u32(buf, at, Field::AckIds)?);
            at += 4;
        }
        if count > 0 {
            block.remote_session_id =
                SessionId::parse(buf.get(at..).unwrap_or(&[]), Field::RemoteSessionId)?;
            at += SessionId::LEN;
        }
        Ok((block, at))
    }

    /// Writes the block at the start of `buf`; returns the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        write_at(buf, 0, &[self.count])?;
        let mut at = 1;
        for id in self.ids() {
            write_at(buf, at, &id.to_be_bytes())?;
            at += 4;
        }
        if self.count > 0 {
            write_at(buf, at, self.remote_session_id.as_bytes())?;
            at += SessionId::LEN;
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit_round_trip() {
        // From the real tls-crypt handshake (§10.8): ACKs [1, 0] of session 1938daee5f45d390.
        let wire = [
            0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0x19, 0x38, 0xda, 0xee, 0x5f, 0x45, 0xd3, 0x90, 0xaa,
        ];
        let (block, used) = AckBlock::parse(&wire).unwrap();
        assert_eq!(used, 17);
        assert_eq!(block.ids(), &[1, 0]);
        assert_eq!(
            block.remote_session_id().unwrap().0,
            [0x19, 0x38, 0xda, 0xee, 0x5f, 0x45, 0xd3, 0x90]
        );
        let mut out = [0u8; 17];
        assert_eq!(block.emit(&mut out), Ok(17));
        assert_eq!(&out[..], &wire[..17]);
        assert_eq!(AckBlock::EMPTY.buffer_len(), 1);
    }

    #[test]
    fn rejects_bad_blocks() {
        assert_eq!(AckBlock::parse(&[]), Err(Error::Truncated(Field::AckCount)));
        assert_eq!(AckBlock::parse(&[9]), Err(Error::TooManyAcks(9)));
        assert_eq!(
            AckBlock::parse(&[1, 0, 0]),
            Err(Error::Truncated(Field::AckIds))
        );
        assert_eq!(
            AckBlock::parse(&[1, 0, 0, 0, 0, 1]),
            Err(Error::Truncated(Field::RemoteSessionId))
        );
        let mut full = AckBlock::new(SessionId([1; 8]));
        for i in 0..8 {
            assert!(full.try_push(i));
        }
        assert!(!full.try_push(8));
        assert_eq!(full.emit(&mut [0u8; 10]), Err(Error::BufferTooSmall));
    }
}
