//! NUL-terminated control-channel text messages after key-method 2 (§8.1), recognised by prefix.

use alloc::vec::Vec;

/// Longest control message accepted (§8.1: "accept up to 2048").
pub const MAX_MESSAGE_LEN: usize = 2048;

/// A control message received from the server. Text excludes the NUL and trailing CR/LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage<'a> {
    /// `PUSH_REPLY[,opt,...]`: the whole message, to be fed to a [`super::PushAccumulator`].
    PushReply(&'a str),
    /// `AUTH_FAILED[,reason]`: the text after `AUTH_FAILED` and its comma.
    AuthFailed(&'a str),
    /// `AUTH_PENDING[,timeout N]`.
    AuthPending(&'a str),
    /// `RESTART[,msg]`: the text after the comma (may start with `[flags]`).
    Restart(&'a str),
    /// `HALT[,msg]`.
    Halt(&'a str),
    /// `EXIT`: the server is shutting down (cc-exit).
    Exit,
    /// `INFO[_PRE],<extra>`.
    Info(&'a str),
    /// Anything else: logged and ignored.
    Unknown(&'a str),
    /// Not printable ASCII or too long: dropped.
    Invalid,
}

impl<'a> ControlMessage<'a> {
    /// Classifies one message (without its NUL).
    pub fn parse(bytes: &'a [u8]) -> Self {
        let mut end = bytes.len();
        while end > 0 && matches!(bytes.get(end - 1), Some(b'\r' | b'\n')) {
            end -= 1;
        }
        let Some(bytes) = bytes.get(..end) else {
            return ControlMessage::Invalid;
        };
        if bytes.len() > MAX_MESSAGE_LEN || bytes.iter().any(|b| !(0x20..0x7f).contains(b)) {
            return ControlMessage::Invalid;
        }
        let Ok(text) = core::str::from_utf8(bytes) else {
            return ControlMessage::Invalid;
        };
        let arg = |prefix: &str| -> Option<&'a str> {
            let rest = text.strip_prefix(prefix)?;
            if rest.is_empty() {
                Some(rest)
            } else {
                rest.strip_prefix(',')
            }
        };
        if text.starts_with("PUSH_REPLY") {
            ControlMessage::PushReply(text)
        } else if let Some(a) = arg("AUTH_FAILED") {
            ControlMessage::AuthFailed(a)
        } else if let Some(a) = arg("AUTH_PENDING") {
            ControlMessage::AuthPending(a)
        } else if let Some(a) = arg("RESTART") {
            ControlMessage::Restart(a)
        } else if let Some(a) = arg("HALT") {
            ControlMessage::Halt(a)
        } else if text == "EXIT" {
            ControlMessage::Exit
        } else if let Some(a) = arg("INFO_PRE").or_else(|| arg("INFO")) {
            ControlMessage::Info(a)
        } else {
            ControlMessage::Unknown(text)
        }
    }
}

/// Splits one TLS record's plaintext at NULs; a final piece without a NUL is ignored (§8.1).
pub fn split_messages(record: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = match record.iter().rposition(|b| *b == 0) {
        Some(last) => record.get(..last).unwrap_or_default(),
        None => &[],
    };
    let has_any = record.contains(&0);
    complete
        .split(|b| *b == 0)
        .filter(move |m| has_any && !m.is_empty())
}

/// Encodes an outgoing control message (`PUSH_REQUEST`, `EXIT`): text plus NUL, one TLS write.
pub fn encode(text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_classifies() {
        let rec = b"AUTH_FAILED,bad password\0RESTART,[N]bye\r\n\0EXIT\0INFO,hello\0HALT\0PUSH_REPLY,ping 2\0partial";
        let msgs: Vec<_> = split_messages(rec).map(ControlMessage::parse).collect();
        assert_eq!(
            msgs,
            [
                ControlMessage::AuthFailed("bad password"),
                ControlMessage::Restart("[N]bye"),
                ControlMessage::Exit,
                ControlMessage::Info("hello"),
                ControlMessage::Halt(""),
                ControlMessage::PushReply("PUSH_REPLY,ping 2"),
            ]
        );
        assert_eq!(split_messages(b"no nul").count(), 0);
        assert_eq!(ControlMessage::parse(b"BAD\x01"), ControlMessage::Invalid);
        assert_eq!(
            ControlMessage::parse(b"ACC,x"),
            ControlMessage::Unknown("ACC,x")
        );
        assert_eq!(encode("PUSH_REQUEST"), b"PUSH_REQUEST\0");
    }
}
