//! The key-method-2 message: the first TLS application record in each direction (§5.2).
//!
//! ```text
//! u32 0 | u8 key_method=2 | [client] pre_master[48] | random1[32] | random2[32]
//! | u16 len + options\0 | u16 len + username\0 | u16 len + password\0 | u16 len + peer-info\0
//! ```
//! An absent string is `len = 0` with no bytes; peers may omit the trailing strings (treated as empty).

use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// Length of the client's pre-master secret.
pub const PRE_MASTER_LEN: usize = 48;
/// Length of each random.
pub const RANDOM_LEN: usize = 32;
/// Largest options string including its NUL (§5.2).
pub const MAX_OPTIONS_LEN: usize = 512;

/// Why a key-method-2 message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Km2Error {
    /// Shorter than its fixed fields.
    Truncated,
    /// The leading 4 bytes are not zero.
    BadPrefix,
    /// The key method byte's low nibble is not 2.
    BadKeyMethod,
    /// A string length runs past the end of the message.
    BadStringLength,
    /// A non-empty string is not NUL-terminated.
    MissingNul,
    /// A string contains a NUL byte before its end (the peer would cut it there and pass the rest on).
    EmbeddedNul,
}

impl fmt::Display for Km2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Km2Error::Truncated => "key-method-2 message truncated",
            Km2Error::BadPrefix => "key-method-2 message: leading zero word missing",
            Km2Error::BadKeyMethod => "key-method-2 message: key method is not 2",
            Km2Error::BadStringLength => "key-method-2 message: string length past the end",
            Km2Error::MissingNul => "key-method-2 message: string not NUL-terminated",
            Km2Error::EmbeddedNul => "key-method-2 message: NUL byte inside a string",
        })
    }
}

/// The client's key source (random material it sends).
#[derive(Clone)]
pub struct ClientKeySource {
    /// Pre-master secret.
    pub pre_master: [u8; PRE_MASTER_LEN],
    /// random1 (master-secret seed).
    pub random1: [u8; RANDOM_LEN],
    /// random2 (key-expansion seed).
    pub random2: [u8; RANDOM_LEN],
}

impl fmt::Debug for ClientKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKeySource(..)")
    }
}

impl Zeroize for ClientKeySource {
    fn zeroize(&mut self) {
        self.pre_master.zeroize();
        self.random1.zeroize();
        self.random2.zeroize();
    }
}

/// Wiped when dropped: the pre-master and randoms make the data keys.
impl Drop for ClientKeySource {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ClientKeySource {
    /// Fresh random key source.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        let mut k = ClientKeySource {
            pre_master: [0; PRE_MASTER_LEN],
            random1: [0; RANDOM_LEN],
            random2: [0; RANDOM_LEN],
        };
        rng.fill_bytes(&mut k.pre_master);
        rng.fill_bytes(&mut k.random1);
        rng.fill_bytes(&mut k.random2);
        k
    }
}

/// The server's key source.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKeySource {
    /// random1.
    pub random1: [u8; RANDOM_LEN],
    /// random2.
    pub random2: [u8; RANDOM_LEN],
}

impl fmt::Debug for ServerKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKeySource(..)")
    }
}

impl Zeroize for ServerKeySource {
    fn zeroize(&mut self) {
        self.random1.zeroize();
        self.random2.zeroize();
    }
}

impl ServerKeySource {
    /// Fresh random key source.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        let mut k = ServerKeySource {
            random1: [0; RANDOM_LEN],
            random2: [0; RANDOM_LEN],
        };
        rng.fill_bytes(&mut k.random1);
        rng.fill_bytes(&mut k.random2);
        k
    }
}

/// Wiped when dropped: the randoms make the data keys.
impl Drop for ServerKeySource {
    fn drop(&mut self) {
        self.zeroize();
    }
}

/// A parsed key-method-2 message; strings exclude their NUL. `Debug` shows the options, username and
/// peer-info, never the pre-master, randoms or password.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMethod2<'a> {
    /// Client pre-master (client messages only).
    pub pre_master: Option<&'a [u8]>,
    /// random1.
    pub random1: &'a [u8],
    /// random2.
    pub random2: &'a [u8],
    /// The options (OCC) string.
    pub options: &'a [u8],
    /// Username (empty if absent).
    pub username: &'a [u8],
    /// Password (empty if absent).
    pub password: &'a [u8],
    /// Peer-info `KEY=VALUE\n` lines (empty if absent).
    pub peer_info: &'a [u8],
}

impl fmt::Debug for KeyMethod2<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| alloc::string::String::from_utf8_lossy(b).into_owned();
        f.debug_struct("KeyMethod2")
            .field("pre_master", &self.pre_master.map(|_| "<redacted>"))
            .field("options", &text(self.options))
            .field("username", &text(self.username))
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .field("peer_info", &text(self.peer_info))
            .finish_non_exhaustive()
    }
}

impl<'a> KeyMethod2<'a> {
    /// Parses a message; `from_client` says whether a pre-master is present.
    pub fn parse(bytes: &'a [u8], from_client: bool) -> Result<Self, Km2Error> {
        let mut r = Reader(bytes);
        if r.take(4)? != [0, 0, 0, 0] {
            return Err(Km2Error::BadPrefix);
        }
        if r.take(1)?.first().map(|b| b & 0x0f) != Some(2) {
            return Err(Km2Error::BadKeyMethod);
        }
        let pre_master = if from_client {
            Some(r.take(PRE_MASTER_LEN)?)
        } else {
            None
        };
        let random1 = r.take(RANDOM_LEN)?;
        let random2 = r.take(RANDOM_LEN)?;
        let options = r.string()?;
        let username = r.string_or_empty()?;
        let password = r.string_or_empty()?;
        let peer_info = r.string_or_empty()?;
        Ok(KeyMethod2 {
            pre_master,
            random1,
            random2,
            options,
            username,
            password,
            peer_info,
        })
    }

    /// The client's pre-master and randoms, if this is a client message.
    pub fn client_key_source(&self) -> Option<ClientKeySource> {
        Some(ClientKeySource {
            pre_master: self.pre_master?.try_into().ok()?,
            random1: self.random1.try_into().ok()?,
            random2: self.random2.try_into().ok()?,
        })
    }

    /// The server's randoms, if this is a server message.
    pub fn server_key_source(&self) -> Option<ServerKeySource> {
        Some(ServerKeySource {
            random1: self.random1.try_into().ok()?,
            random2: self.random2.try_into().ok()?,
        })
    }
}

/// Builds the client's message. `username`/`password` are sent only when `Some`.
pub fn emit_client(
    keys: &ClientKeySource,
    options: &str,
    username: Option<&str>,
    password: Option<&str>,
    peer_info: &str,
) -> Result<Vec<u8>, Km2Error> {
    let randoms = (Some(&keys.pre_master[..]), &keys.random1, &keys.random2);
    emit(randoms, options, username, password, peer_info)
}

/// Builds the server's message: its two randoms and its options string, no credentials or peer-info.
pub fn emit_server(keys: &ServerKeySource, options: &str) -> Result<Vec<u8>, Km2Error> {
    emit(
        (None, &keys.random1, &keys.random2),
        options,
        None,
        None,
        "",
    )
}

/// The message of either side: `pre_master` only from the client.
fn emit(
    (pre_master, random1, random2): (Option<&[u8]>, &[u8; RANDOM_LEN], &[u8; RANDOM_LEN]),
    options: &str,
    username: Option<&str>,
    password: Option<&str>,
    peer_info: &str,
) -> Result<Vec<u8>, Km2Error> {
    let strings = [Some(options), username, password, Some(peer_info)];
    if strings.iter().flatten().any(|s| s.contains('\0')) {
        return Err(Km2Error::EmbeddedNul);
    }
    let mut out = Vec::with_capacity(
        5 + PRE_MASTER_LEN + 2 * RANDOM_LEN + options.len() + peer_info.len() + 16,
    );
    out.extend_from_slice(&[0, 0, 0, 0, 2]);
    out.extend_from_slice(pre_master.unwrap_or_default());
    out.extend_from_slice(random1);
    out.extend_from_slice(random2);
    put_string(&mut out, Some(options));
    put_string(&mut out, username);
    put_string(&mut out, password);
    put_string(
        &mut out,
        if peer_info.is_empty() {
            None
        } else {
            Some(peer_info)
        },
    );
    Ok(out)
}

fn put_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        // Strings longer than u16 cannot be sent; config limits keep them far below (§5.2: 4096).
        Some(s) if s.len() < usize::from(u16::MAX) => {
            let len = u16::try_from(s.len() + 1).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        _ => out.extend_from_slice(&[0, 0]),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Km2Error> {
        if self.0.len() < n {
            return Err(Km2Error::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn string(&mut self) -> Result<&'a [u8], Km2Error> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([
            len.first().copied().unwrap_or(0),
            len.get(1).copied().unwrap_or(0),
        ]));
        if len == 0 {
            return Ok(&[]);
        }
        let s = self.take(len).map_err(|_| Km2Error::BadStringLength)?;
        match s.split_last() {
            Some((0, body)) if body.contains(&0) => Err(Km2Error::EmbeddedNul),
            Some((0, body)) => Ok(body),
            _ => Err(Km2Error::MissingNul),
        }
    }

    fn string_or_empty(&mut self) -> Result<&'a [u8], Km2Error> {
        if self.0.is_empty() {
            return Ok(&[]);
        }
        self.string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testvec::hex;

    #[test]
    fn parses_and_rebuilds_real_client_message() {
        let bytes = hex(crate::session::testvec::REAL_KM2_CLIENT);
        let m = KeyMethod2::parse(&bytes, true).unwrap();
        assert_eq!(m.options, b"V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-client");
        assert_eq!(m.username, b"alice");
        assert_eq!(m.password, b"secret123");
        assert!(m.peer_info.starts_with(b"IV_VER=2.6.14\nIV_PLAT=linux\n"));
        assert!(m.peer_info.ends_with(b"IV_PROTO=990\n"));
        let keys = ClientKeySource {
            pre_master: m.pre_master.unwrap().try_into().unwrap(),
            random1: m.random1.try_into().unwrap(),
            random2: m.random2.try_into().unwrap(),
        };
        let rebuilt = emit_client(
            &keys,
            core::str::from_utf8(m.options).unwrap(),
            Some("alice"),
            Some("secret123"),
            core::str::from_utf8(m.peer_info).unwrap(),
        )
        .unwrap();
        assert_eq!(rebuilt, bytes);
    }

    #[test]
    fn parses_real_server_message() {
        let bytes = hex(crate::session::testvec::REAL_KM2_SERVER);
        let m = KeyMethod2::parse(&bytes, false).unwrap();
        assert!(m.options.ends_with(b"key-method 2,tls-server"));
        assert_eq!(
            (m.username, m.password, m.peer_info),
            (&b""[..], &b""[..], &b""[..])
        );
        assert_eq!(
            m.server_key_source().unwrap().random1[..4],
            [0x39, 0x96, 0x02, 0xdd]
        );
    }

    #[test]
    fn rejects_malformed_messages() {
        let bytes = hex(crate::session::testvec::REAL_KM2_SERVER);
        for n in 0..bytes.len() - 6 {
            assert!(
                KeyMethod2::parse(&bytes[..n], false).is_err(),
                "prefix of {n} bytes"
            );
        }
        let mut bad = bytes.clone();
        bad[4] = 1;
        assert_eq!(KeyMethod2::parse(&bad, false), Err(Km2Error::BadKeyMethod));
        // Options length pointing past the end.
        let mut bad = bytes;
        bad[69] = 0xff;
        assert_eq!(
            KeyMethod2::parse(&bad, false),
            Err(Km2Error::BadStringLength)
        );
    }

    #[test]
    fn absent_strings_are_zero_length() {
        let keys = ClientKeySource {
            pre_master: [1; 48],
            random1: [2; 32],
            random2: [3; 32],
        };
        let m = emit_client(&keys, "V4", None, None, "").unwrap();
        assert_eq!(&m[m.len() - 6..], &[0, 0, 0, 0, 0, 0]);
        let p = KeyMethod2::parse(&m, true).unwrap();
        assert_eq!(p.options, b"V4");
    }

    #[test]
    fn nul_bytes_inside_strings_are_refused_both_ways() {
        let keys = ClientKeySource {
            pre_master: [1; 48],
            random1: [2; 32],
            random2: [3; 32],
        };
        // A NUL would end the string early on the server, which passes the rest on (e.g. to a script).
        for (user, pass, info) in [
            ("al\0ice", "pw", "IV_VER=1\n"),
            ("alice", "p\0w", "IV_VER=1\n"),
            ("alice", "pw", "IV_VER=1\n\0IV_X=2\n"),
        ] {
            assert_eq!(
                emit_client(&keys, "V4", Some(user), Some(pass), info),
                Err(Km2Error::EmbeddedNul),
                "{user:?} {pass:?} {info:?}"
            );
        }
        assert_eq!(
            emit_client(&keys, "V4\0x", None, None, ""),
            Err(Km2Error::EmbeddedNul)
        );
        let good = emit_client(&keys, "V4", Some("alice"), Some("pw"), "IV_VER=1\n").unwrap();
        assert!(KeyMethod2::parse(&good, true).is_ok());
        // The same message with one byte of each string turned into a NUL (lengths unchanged).
        for needle in [&b"alice"[..], b"pw", b"IV_VER", b"V4"] {
            let at = good
                .windows(needle.len())
                .rposition(|w| w == needle)
                .unwrap();
            let mut bad = good.clone();
            bad[at + 1] = 0;
            assert_eq!(
                KeyMethod2::parse(&bad, true),
                Err(Km2Error::EmbeddedNul),
                "{needle:?}"
            );
        }
    }
}
