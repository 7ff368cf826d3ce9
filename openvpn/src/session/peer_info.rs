//! Peer-info (`IV_*` variables, §5.4) and the options ("OCC") string (§5.3) the client sends in its
//! key-method-2 message. Only what oxvpn implements is announced.

use alloc::format;
use alloc::string::String;

/// IV_PROTO bit 1: P_DATA_V2 with peer-id.
pub const IV_PROTO_DATA_V2: u32 = 1 << 1;
/// IV_PROTO bit 2: the server may push without waiting for PUSH_REQUEST.
pub const IV_PROTO_REQUEST_PUSH: u32 = 1 << 2;
/// IV_PROTO bit 4: understands `AUTH_PENDING,timeout N`.
pub const IV_PROTO_AUTH_PENDING_KW: u32 = 1 << 4;
/// IV_PROTO bit 8: understands `AUTH_FAILED,TEMP[flags]:msg`.
pub const IV_PROTO_AUTH_FAIL_TEMP: u32 = 1 << 8;

/// IV_PROTO bit 3: the client can derive data keys with the TLS exporter (tls-ekm).
pub const IV_PROTO_TLS_KEY_EXPORT: u32 = 1 << 3;
/// IV_PROTO bit 7: the client understands `protocol-flags cc-exit` (EXIT as a control message).
pub const IV_PROTO_CC_EXIT_NOTIFY: u32 = 1 << 7;
/// IV_PROTO bit 9: the client supports dynamic tls-crypt.
pub const IV_PROTO_DYN_TLS_CRYPT: u32 = 1 << 9;

/// The longest peer-info text [`PeerInfoFromClient::parse`] reads (OpenVPN clients send a few hundred
/// bytes; the rest of a longer text is ignored).
pub const MAX_PEER_INFO_LEN: usize = 8192;
/// The longest value kept for one variable; a longer value is dropped (the variable counts as unsent).
pub const MAX_PEER_INFO_VALUE: usize = 1024;

/// What a client announced in its peer-info (server side): the `IV_*` variables the server uses. Bounded:
/// at most [`MAX_PEER_INFO_LEN`] bytes are read and each kept value is at most [`MAX_PEER_INFO_VALUE`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfoFromClient {
    /// `IV_VER`.
    pub version: Option<String>,
    /// `IV_PLAT`.
    pub platform: Option<String>,
    /// `IV_CIPHERS`, colon-separated.
    pub ciphers: Option<String>,
    /// `IV_NCP` (2 = AES-GCM negotiation in older clients).
    pub ncp: Option<u32>,
    /// `IV_PROTO` bits (0 when absent).
    pub proto: u32,
    /// `IV_MTU`.
    pub mtu: Option<u16>,
}

impl PeerInfoFromClient {
    /// Reads `KEY=VALUE` lines; unknown variables, malformed lines and oversized values are skipped (a
    /// client's peer-info is informational, never a reason to fail).
    pub fn parse(text: &str) -> Self {
        let mut end = text.len().min(MAX_PEER_INFO_LEN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut info = PeerInfoFromClient::default();
        for line in text.get(..end).unwrap_or("").lines() {
            let Some((key, value)) = line.trim_end_matches('\r').split_once('=') else {
                continue;
            };
            if value.len() > MAX_PEER_INFO_VALUE {
                continue;
            }
            match key {
                "IV_VER" => info.version = Some(String::from(value)),
                "IV_PLAT" => info.platform = Some(String::from(value)),
                "IV_CIPHERS" => info.ciphers = Some(String::from(value)),
                "IV_NCP" => info.ncp = value.parse().ok(),
                "IV_PROTO" => info.proto = value.parse().unwrap_or(0),
                "IV_MTU" => info.mtu = value.parse().ok(),
                _ => {}
            }
        }
        info
    }

    /// Whether the client set `bit` (an `IV_PROTO_*` constant) in IV_PROTO.
    pub fn has_proto(&self, bit: u32) -> bool {
        self.proto & bit != 0
    }
}

/// The outer transport, as it appears in the options string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP over IPv4.
    Udp4,
    /// UDP over IPv6.
    Udp6,
    /// TCP over IPv4.
    Tcp4,
    /// TCP over IPv6.
    Tcp6,
}

/// What the client announces in peer-info.
#[derive(Debug, Clone)]
pub struct PeerInfo<'a> {
    /// `IV_VER`.
    pub version: &'a str,
    /// `IV_PLAT`.
    pub platform: &'a str,
    /// `IV_CIPHERS`: the data ciphers we accept, colon-separated, canonical names.
    pub ciphers: &'a str,
    /// `IV_MTU`: the largest tun MTU we accept from a push.
    pub mtu: u16,
}

impl PeerInfo<'_> {
    /// IV_PROTO: DATA_V2 | REQUEST_PUSH | AUTH_PENDING_KW | AUTH_FAIL_TEMP = 278. No TLS_KEY_EXPORT
    /// (rustls' unbuffered API has no exporter, so keys come from the legacy PRF), no cc-exit (exit
    /// notification goes as OCC EXIT), no dyn-tls-crypt, no `dns` option.
    pub const IV_PROTO: u32 = IV_PROTO_DATA_V2
        | IV_PROTO_REQUEST_PUSH
        | IV_PROTO_AUTH_PENDING_KW
        | IV_PROTO_AUTH_FAIL_TEMP;

    /// The `KEY=VALUE\n` text.
    pub fn to_text(&self) -> String {
        let has = |c: &str| self.ciphers.split(':').any(|x| x == c);
        let ncp = if has("AES-128-GCM") && has("AES-256-GCM") {
            "IV_NCP=2\n"
        } else {
            ""
        };
        format!(
            "IV_VER={}\nIV_PLAT={}\nIV_MTU={}\n{}IV_CIPHERS={}\nIV_PROTO={}\n",
            self.version,
            self.platform,
            self.mtu,
            ncp,
            self.ciphers,
            Self::IV_PROTO
        )
    }
}

/// The options string 2.6 sends for a tun client (§5.3); servers only compare it and log differences.
pub fn occ_options_string(transport: Transport, tun_mtu: u16) -> String {
    let proto = match transport {
        Transport::Udp4 => "UDPv4",
        Transport::Udp6 => "UDPv6",
        Transport::Tcp4 => "TCPv4_CLIENT",
        Transport::Tcp6 => "TCPv6_CLIENT",
    };
    // link-mtu is what 2.6 computes for its defaults; it is informational only.
    format!(
        "V4,dev-type tun,link-mtu {},tun-mtu {},proto {},auth SHA1,keysize 128,key-method 2,tls-client",
        u32::from(tun_mtu) + 41,
        tun_mtu,
        proto
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_client_announces() {
        let text = "IV_VER=2.6.12\nIV_PLAT=linux\nIV_NCP=2\nIV_TCPNL=1\nIV_PROTO=990\n\
                    IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nIV_MTU=1600\ngarbage\nIV_SSL=OpenSSL\n";
        let p = PeerInfoFromClient::parse(text);
        assert_eq!(p.version.as_deref(), Some("2.6.12"));
        assert_eq!(p.platform.as_deref(), Some("linux"));
        assert_eq!(p.ncp, Some(2));
        assert_eq!(
            p.ciphers.as_deref(),
            Some("AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305")
        );
        assert_eq!(p.mtu, Some(1600));
        assert!(p.has_proto(IV_PROTO_DATA_V2) && p.has_proto(IV_PROTO_CC_EXIT_NOTIFY));
        assert!(p.has_proto(IV_PROTO_DYN_TLS_CRYPT) && !p.has_proto(1 << 0));
        // Our own announcement reads back.
        let ours = PeerInfo {
            version: "oxvpn",
            platform: "oxvpn",
            ciphers: "AES-256-GCM:AES-128-GCM",
            mtu: 1500,
        };
        let p = PeerInfoFromClient::parse(&ours.to_text());
        assert_eq!((p.proto, p.ncp), (PeerInfo::IV_PROTO, Some(2)));
        // Bounded: oversized values and texts are cut, never a panic.
        let long = alloc::format!(
            "IV_CIPHERS={}\nIV_VER=x\n",
            "A".repeat(MAX_PEER_INFO_VALUE + 1)
        );
        let p = PeerInfoFromClient::parse(&long);
        assert_eq!((p.ciphers, p.version.as_deref()), (None, Some("x")));
        let huge = alloc::format!("IV_VER=1\n{}é", "x".repeat(MAX_PEER_INFO_LEN));
        assert_eq!(
            PeerInfoFromClient::parse(&huge).version.as_deref(),
            Some("1")
        );
        assert_eq!(
            PeerInfoFromClient::parse("IV_PROTO=junk\nIV_NCP=-1"),
            PeerInfoFromClient::default()
        );
    }

    #[test]
    fn announces_only_what_is_implemented() {
        let pi = PeerInfo {
            version: "oxvpn-0.1",
            platform: "oxvpn",
            ciphers: "AES-256-GCM:AES-128-GCM",
            mtu: 1600,
        };
        assert_eq!(
            pi.to_text(),
            "IV_VER=oxvpn-0.1\nIV_PLAT=oxvpn\nIV_MTU=1600\nIV_NCP=2\nIV_CIPHERS=AES-256-GCM:AES-128-GCM\nIV_PROTO=278\n"
        );
        let pi = PeerInfo {
            ciphers: "AES-256-GCM",
            ..pi
        };
        assert!(!pi.to_text().contains("IV_NCP"));
        assert_eq!(
            occ_options_string(Transport::Udp4, 1500),
            "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-client"
        );
    }
}
