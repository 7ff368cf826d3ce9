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
