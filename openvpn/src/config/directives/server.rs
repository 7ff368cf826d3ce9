//! Directives of a server config (`server`, or `mode server` + `tls-server`): the server-only ones, the
//! server meaning of shared ones (`keepalive`, `proto`, `port`, `local`, `status`), the refusals of
//! client-only, script and filesystem directives, and oxvpn's two extension blocks.
//!
//! Layer: semantics only. A client config never reaches this file: there the server-only directives stay
//! refused by `categories::SERVER_ONLY`, exactly as before servers existed.

use alloc::string::String;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{arg, err, max_args, number, optional_number, port, Builder, Result};
use crate::config::error::{ConfigError, ErrorKind, WarningKind};
use crate::config::model::Proto;
use crate::config::server_model::*;
use crate::config::syntax::{Body, Statement};
use crate::keys::base64;

/// Whether `statements` are a server config: the `server` helper, or `mode server` with `tls-server`.
/// (`mode server` or `tls-server` alone stays a client config and is refused there, as OpenVPN does.)
pub(super) fn is_server_config(statements: &[Statement]) -> bool {
    let has = |name: &str| statements.iter().any(|s| s.name == name);
    let mode_server = statements
        .iter()
        .any(|s| s.name == "mode" && s.args.first().is_some_and(|a| a == "server"));
    has("server") || (mode_server && has("tls-server"))
}

/// Client-side connection management, meaningless for a server.
const CLIENT_ONLY: &[&str] = &[
    "client",
    "pull",
    "tls-client",
    "remote",
    "connection",
    "remote-random",
    "connect-retry",
    "connect-retry-max",
    "server-poll-timeout",
    "connect-timeout",
    "auth-user-pass",
    "auth-retry",
    "auth-nocache",
    "route-nopull",
    "pull-filter",
    "peer-fingerprint",
    "http-proxy",
    "socks-proxy",
];

/// Directives that hand a decision to a script or plugin.
const NEEDS_SCRIPT: &[&str] = &[
    "auth-user-pass-verify",
    "client-connect",
    "client-disconnect",
    "learn-address",
    "tls-crypt-v2-verify",
    "tls-verify",
    "plugin",
];

/// Directives that read or write files while running.
const NEEDS_FILESYSTEM: &[&str] = &[
    "client-config-dir",
    "ccd-exclusive",
    "ifconfig-pool-persist",
];

fn ipv4(st: &Statement, index: usize) -> Result<Ipv4Addr> {
    arg(st, index)?
        .parse()
        .map_err(|_| err(st, ErrorKind::InvalidArgument))
}

/// `ADDR/BITS` (bits default 128 only when `bits_required` is false).
fn ipv6_prefix(st: &Statement, index: usize) -> Result<Ipv6Prefix> {
    let text = arg(st, index)?;
    let (addr, bits) = text
        .split_once('/')
        .ok_or_else(|| err(st, ErrorKind::InvalidArgument))?;
    let address: Ipv6Addr = addr
        .parse()
        .map_err(|_| err(st, ErrorKind::InvalidArgument))?;
    match bits.parse::<u8>() {
        Ok(prefix_len) if prefix_len <= 128 => Ok(Ipv6Prefix {
            address,
            prefix_len,
        }),
        _ => Err(err(st, ErrorKind::InvalidArgument)),
    }
}

/// `udp|udp4|udp6|tcp|tcp4|tcp6` with an optional `-server` on the TCP forms (TCP on a server listens).
fn server_proto(st: &Statement, value: &str) -> Result<Proto> {
    let lower = value.to_ascii_lowercase();
    let base = lower.strip_suffix("-server").unwrap_or(&lower);
    if base.ends_with("-client") || (base.len() != lower.len() && !base.starts_with("tcp")) {
        return Err(err(st, ErrorKind::InvalidArgument));
    }
    Proto::from_arg(base).ok_or_else(|| err(st, ErrorKind::InvalidArgument))
}

/// Numbered non-empty, non-comment lines of an inline block: `(config line, trimmed text)`.
pub(super) fn block_lines(st: &Statement) -> Result<impl Iterator<Item = (u32, &str)>> {
    let Body::Inline(text) = &st.body else {
        return Err(err(st, ErrorKind::MissingArgument));
    };
    Ok(text
        .lines()
        .enumerate()
        .map(move |(i, l)| {
            let offset = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1);
            (st.line.saturating_add(offset), l.trim())
        })
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#')))
}

pub(super) fn line_err(line: u32, st: &Statement, kind: ErrorKind) -> ConfigError {
    ConfigError::new(line, &st.name, kind)
}

/// 64 lowercase hex digits.
fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digits = core::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

/// `USERNAME pbkdf2-sha256:ITERATIONS:SALT_B64:HASH_B64`.
fn parse_user(text: &str) -> core::result::Result<UserEntry, ErrorKind> {
    let mut words = text.split_ascii_whitespace();
    let (Some(username), Some(spec), None) = (words.next(), words.next(), words.next()) else {
        return Err(ErrorKind::BadPasswordHash);
    };
    let mut fields = spec.split(':');
    let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(hash), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ErrorKind::BadPasswordHash);
    };
    let iterations: u32 = iterations.parse().map_err(|_| ErrorKind::BadPasswordHash)?;
    if iterations < MIN_PBKDF2_ITERATIONS {
        return Err(ErrorKind::WeakPasswordHash);
    }
    let salt = base64::decode(salt).filter(|s| !s.is_empty() && s.len() <= 64);
    let hash = base64::decode(hash).filter(|h| (16..=64).contains(&h.len()));
    let (Some(salt), Some(hash)) = (salt, hash) else {
        return Err(ErrorKind::BadPasswordHash);
    };
    Ok(UserEntry {
        username: String::from(username),
        iterations,
        salt,
        hash,
    })
}

impl Builder<'_> {
    /// Applies `st` in a server config. `Ok(true)` when handled here, `Ok(false)` for the shared
    /// directives (`ca`, `cert`, `data-ciphers`, `reneg-sec`, …) the caller applies as for a client.
    pub(super) fn apply_server(&mut self, st: &Statement) -> Result<bool> {
        let name = st.name.as_str();
        if CLIENT_ONLY.contains(&name) {
            return Err(err(st, ErrorKind::ClientDirectiveInServer));
        }
        if NEEDS_SCRIPT.contains(&name) {
            return Err(err(st, ErrorKind::NeedsScript));
        }
        if NEEDS_FILESYSTEM.contains(&name) {
            return Err(err(st, ErrorKind::NeedsFilesystem));
        }
        let Some(s) = self.server.as_mut() else {
            return Ok(false);
        };
        match name {
            "server" => {
                max_args(st, 3)?;
                let nopool = match st.args.get(2).map(String::as_str) {
                    None => false,
                    Some("nopool") => true,
                    Some(_) => return Err(err(st, ErrorKind::InvalidArgument)),
                };
                s.server = Some(ServerHelper {
                    network: ipv4(st, 0)?,
                    netmask: ipv4(st, 1)?,
                    nopool,
                });
            }
            "server-ipv6" => {
                max_args(st, 1)?;
                s.server_ipv6 = Some(ipv6_prefix(st, 0)?);
            }
            "mode" => match arg(st, 0)? {
                "server" => s.mode_server = true,
                _ => return Err(err(st, ErrorKind::InvalidArgument)),
            },
            "tls-server" => {
                max_args(st, 0)?;
                s.tls_server = true;
            }
            "topology" => {
                max_args(st, 1)?;
                s.topology = Some(match arg(st, 0)? {
                    "subnet" => Topology::Subnet,
                    "net30" => Topology::Net30,
                    "p2p" => Topology::P2p,
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                });
            }
            "ifconfig" => {
                max_args(st, 2)?;
                s.ifconfig = Some((ipv4(st, 0)?, ipv4(st, 1)?));
            }
            "ifconfig-ipv6" => {
                max_args(st, 2)?;
                s.ifconfig_ipv6 = Some(ipv6_prefix(st, 0)?);
            }
            "ifconfig-pool" => {
                max_args(st, 3)?;
                let netmask = match st.args.get(2) {
                    Some(_) => Some(ipv4(st, 2)?),
                    None => None,
                };
                let (start, end) = (ipv4(st, 0)?, ipv4(st, 1)?);
                if u32::from(start) > u32::from(end) {
                    return Err(err(st, ErrorKind::InvalidArgument));
                }
                s.ifconfig_pool = Some(Ipv4Pool {
                    start,
                    end,
                    netmask,
                });
            }
            "ifconfig-ipv6-pool" => {
                max_args(st, 1)?;
                s.ifconfig_ipv6_pool = Some(ipv6_prefix(st, 0)?);
            }
            "max-clients" => {
                max_args(st, 1)?;
                let n: u32 = number(st, 0)?;
                if n == 0 {
                    return Err(err(st, ErrorKind::InvalidNumber));
                }
                s.max_clients = Some(n);
            }
            "duplicate-cn" => s.duplicate_cn = true,
            "client-to-client" => s.client_to_client = true,
            "push" => {
                max_args(st, 1)?;
                let text = arg(st, 0)?;
                // A comma would split the option in the PUSH_REPLY; compression is never pushed.
                let first = text.split_ascii_whitespace().next().unwrap_or("");
                if text.trim().is_empty()
                    || text.len() > MAX_PUSH_OPTION_LEN
                    || text.contains(',')
                    || matches!(first, "comp-lzo" | "compress")
                {
                    return Err(err(st, ErrorKind::InvalidArgument));
                }
                if s.push.len() >= MAX_PUSH_LINES {
                    return Err(err(st, ErrorKind::TooManyEntries));
                }
                s.push.push(String::from(text));
            }
            "push-reset" => self.warn(st, WarningKind::ServerNoEffect),
            "keepalive" => {
                max_args(st, 2)?;
                let (ping, timeout): (u32, u32) = (number(st, 0)?, number(st, 1)?);
                if ping == 0 || timeout < ping.saturating_mul(2) {
                    // OpenVPN: "the second parameter should be at least twice the first".
                    return Err(err(st, ErrorKind::InvalidNumber));
                }
                s.keepalive = Some((ping, timeout));
                self.config.ping = ping;
                self.config.ping_restart = timeout.saturating_mul(2);
            }
            "auth-gen-token" => {
                max_args(st, 3)?;
                if st.args.get(2).is_some_and(|a| a != "external-auth") {
                    return Err(err(st, ErrorKind::InvalidArgument));
                }
                s.auth_gen_token = Some(AuthGenToken {
                    lifetime: optional_number(st, 0)?.unwrap_or(0),
                    renewal: optional_number(st, 1)?,
                });
            }
            "auth-user-pass-optional" => s.auth_user_pass_optional = true,
            "username-as-common-name" => s.username_as_common_name = true,
            "verify-client-cert" => {
                max_args(st, 1)?;
                s.verify_client_cert = match arg(st, 0)? {
                    "none" => VerifyClientCert::None,
                    "optional" => VerifyClientCert::Optional,
                    "require" => VerifyClientCert::Require,
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                };
            }
            "client-cert-not-required" => {
                s.verify_client_cert = VerifyClientCert::None;
                self.warn(st, WarningKind::Obsolete);
            }
            "remote-cert-tls" => {
                max_args(st, 1)?;
                match arg(st, 0)? {
                    "client" => {
                        self.config.tls.remote_cert_tls =
                            Some(crate::config::model::RemoteCertTls::Client)
                    }
                    _ => return Err(err(st, ErrorKind::InvalidArgument)),
                }
            }
            "port" | "lport" => {
                max_args(st, 1)?;
                s.port = Some(port(st, 0)?);
            }
            "proto" => {
                max_args(st, 1)?;
                s.proto = Some(server_proto(st, arg(st, 0)?)?);
            }
            "local" => {
                max_args(st, 3)?;
                let address: IpAddr = arg(st, 0)?
                    .parse()
                    .map_err(|_| err(st, ErrorKind::InvalidArgument))?;
                let port = match st.args.get(1) {
                    Some(_) => Some(port(st, 1)?),
                    None => None,
                };
                let proto = match st.args.get(2) {
                    Some(p) => Some(server_proto(st, p)?),
                    None => None,
                };
                let s = self
                    .server
                    .as_mut()
                    .ok_or_else(|| err(st, ErrorKind::ServerMode))?;
                if s.listeners.len() >= MAX_LISTENERS {
                    return Err(err(st, ErrorKind::TooManyEntries));
                }
                s.listeners.push(ListenerLine {
                    address,
                    port,
                    proto,
                });
            }
            "connect-freq-initial" => {
                max_args(st, 2)?;
                s.connect_freq_initial = Some((number(st, 0)?, number(st, 1)?));
            }
            "tls-crypt-v2-max-age" => {
                max_args(st, 1)?;
                s.tls_crypt_v2_max_age = Some(number(st, 0)?);
            }
            "status" => {
                max_args(st, 2)?;
                arg(st, 0)?;
                s.status_interval = Some(optional_number(st, 1)?.unwrap_or(60));
                self.warn(st, WarningKind::StatusToConsole);
            }
            "status-interval" => {
                max_args(st, 1)?;
                s.status_interval = Some(number(st, 0)?);
            }
            "dh" => self.warn(st, WarningKind::DhNotUsed),
            "tls-crypt-v2" => {
                // The key itself goes through the shared control-channel code; only the cookie mode is here.
                if matches!(st.body, Body::None) {
                    match st.args.get(1).map(String::as_str) {
                        None => {}
                        Some("allow-noncookie") => s.tls_crypt_v2_force_cookie = false,
                        Some("force-cookie") => s.tls_crypt_v2_force_cookie = true,
                        Some(_) => return Err(err(st, ErrorKind::InvalidArgument)),
                    }
                }
                return Ok(false);
            }
            "tls-crypt-v2-revoked" => {
                for (line, text) in block_lines(st)? {
                    let hash = parse_sha256_hex(text)
                        .ok_or_else(|| line_err(line, st, ErrorKind::BadRevokedKeyHash))?;
                    let s = self
                        .server
                        .as_mut()
                        .ok_or_else(|| err(st, ErrorKind::ServerMode))?;
                    if s.tls_crypt_v2_revoked.len() >= MAX_REVOKED_KEYS {
                        return Err(line_err(line, st, ErrorKind::TooManyEntries));
                    }
                    s.tls_crypt_v2_revoked.push(hash);
                }
            }
            "auth-user-pass-db" => {
                for (line, text) in block_lines(st)? {
                    let user = parse_user(text).map_err(|kind| line_err(line, st, kind))?;
                    let s = self
                        .server
                        .as_mut()
                        .ok_or_else(|| err(st, ErrorKind::ServerMode))?;
                    if s.users.iter().any(|u| u.username == user.username) {
                        return Err(line_err(line, st, ErrorKind::InvalidArgument));
                    }
                    if s.users.len() >= MAX_USERS {
                        return Err(line_err(line, st, ErrorKind::TooManyEntries));
                    }
                    s.users.push(user);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_lines() {
        let ok = parse_user(
            "alice pbkdf2-sha256:10000:c2FsdHNhbHQ=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .unwrap();
        assert_eq!(
            (
                ok.username.as_str(),
                ok.iterations,
                ok.salt.len(),
                ok.hash.len()
            ),
            ("alice", 10_000, 8, 32)
        );
        assert_eq!(
            parse_user("bob pbkdf2-sha256:9999:c2FsdA==:AAAAAAAAAAAAAAAAAAAAAA==").unwrap_err(),
            ErrorKind::WeakPasswordHash
        );
        for bad in [
            "bob",
            "bob sha256:10000:c2FsdA==:AAAAAAAAAAAAAAAAAAAAAA==",
            "bob pbkdf2-sha256:10000:c2FsdA==",
            "bob pbkdf2-sha256:x:c2FsdA==:AAAAAAAAAAAAAAAAAAAAAA==",
            "bob pbkdf2-sha256:10000:!!:AAAAAAAAAAAAAAAAAAAAAA==",
            "bob pbkdf2-sha256:10000:c2FsdA==:AAAA",
            "bob pbkdf2-sha256:10000:c2FsdA==:AAAAAAAAAAAAAAAAAAAAAA== extra",
        ] {
            assert_eq!(
                parse_user(bad).unwrap_err(),
                ErrorKind::BadPasswordHash,
                "{bad}"
            );
        }
    }

    #[test]
    fn revoked_hashes() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert_eq!(parse_sha256_hex(hex).unwrap()[1], 0x11);
        assert!(parse_sha256_hex(&hex.to_ascii_uppercase()).is_none());
        assert!(parse_sha256_hex(&hex[1..]).is_none());
    }
}
