//! `profile` and `server-config`: a self-contained client `.ovpn` per user and the matching server config,
//! every key inline. The server config names the CRL by path, so `pki revoke` takes effect at the next
//! connection without a restart (OpenVPN re-reads `crl-verify` files).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use openvpn::keys::Metadata;

use crate::fail::{Failure, Outcome};
use crate::files::{self, Secrecy};
use crate::genkey;
use crate::pki::{Pki, Role};

/// The data ciphers both ends offer.
pub const DATA_CIPHERS: &str = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305";

/// One `--remote HOST PORT PROTO`.
#[derive(Debug, Clone)]
pub struct Remote {
    pub host: String,
    pub port: u16,
    pub proto: String,
}

impl Remote {
    /// Parses the three arguments of `--remote`.
    pub fn parse(host: &str, port: &str, proto: &str) -> Outcome<Remote> {
        let port = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| Failure::Usage(format!("--remote {host} {port}: bad port")))?;
        if !matches!(proto, "udp" | "tcp" | "udp4" | "udp6" | "tcp4" | "tcp6") {
            return Err(Failure::Usage(format!(
                "--remote {host} {port} {proto}: PROTO must be udp or tcp (or udp4/udp6/tcp4/tcp6)"
            )));
        }
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c == '#' || c == ';')
        {
            return Err(Failure::Usage(format!("--remote `{host}`: bad host name")));
        }
        Ok(Remote {
            host: host.to_string(),
            port,
            proto: proto.to_string(),
        })
    }
}

fn inline(out: &mut String, tag: &str, body: &str) {
    let _ = writeln!(out, "<{tag}>\n{}\n</{tag}>", body.trim_end());
}

/// `profile NAME`: issues a client certificate for NAME if it has no valid one, wraps a tls-crypt-v2 client
/// key whose metadata names the user, and writes one `.ovpn`.
pub fn profile(
    pki_dir: &Path,
    name: &str,
    remotes: &[Remote],
    out: &Path,
    days: i64,
    metadata: Option<&str>,
    force: bool,
) -> Outcome {
    if remotes.is_empty() {
        return Err(Failure::Usage(
            "profile needs at least one --remote HOST PORT PROTO".into(),
        ));
    }
    if !force && out.exists() {
        return Err(Failure::Input(format!(
            "{}: already exists; refusing to overwrite it (give --force to replace it)",
            out.display()
        )));
    }
    let mut pki = Pki::open(pki_dir)?;
    let meta = match metadata {
        Some(arg) => genkey::parse_metadata(arg)?,
        None => Metadata::User(name.as_bytes().to_vec()),
    };
    match pki.valid(name).map(|e| e.role) {
        Some(Role::Client) => {}
        Some(Role::Server) => {
            return Err(Failure::Input(format!(
                "`{name}` is a server certificate in {}; pick another user name",
                pki_dir.display()
            )))
        }
        None => pki.issue(Role::Client, name, days)?,
    }
    let server_key = genkey::read_server_key(&pki.tls_crypt_v2_path())?;
    let client_key = genkey::new_client_key(&server_key, &meta)
        .map_err(|e| Failure::input(&pki.tls_crypt_v2_path(), e))?;

    let mut text =
        format!("# OpenVPN client profile for `{name}`, made by ovpn-keys\nclient\ndev tun\n");
    for r in remotes {
        let _ = writeln!(text, "remote {} {} {}", r.host, r.port, r.proto);
    }
    if remotes.len() > 1 {
        text.push_str("remote-random\n");
    }
    let _ = write!(
        text,
        "resolv-retry infinite\nnobind\nremote-cert-tls server\ndata-ciphers {DATA_CIPHERS}\nverb 3\n"
    );
    inline(&mut text, "ca", &files::read_text(&pki.ca_path())?);
    inline(&mut text, "cert", &files::read_text(&pki.cert_path(name))?);
    inline(&mut text, "key", &files::read_text(&pki.key_path(name))?);
    inline(&mut text, "tls-crypt-v2", &client_key.to_pem());
    files::write_new(out, &text, Secrecy::Secret, force)?;
    println!(
        "wrote {} for `{name}` (tls-crypt-v2 metadata: {})",
        out.display(),
        genkey::describe_metadata(&meta)
    );
    Ok(())
}

/// Parses `A.B.C.D/N` into the network and its mask.
fn parse_subnet(arg: &str) -> Outcome<(Ipv4Addr, Ipv4Addr)> {
    let bad = || {
        Failure::Usage(format!(
            "--subnet {arg}: expected an IPv4 network like 10.8.0.0/24 (prefix 8..=29)"
        ))
    };
    let (addr, len) = arg.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    if !(8..=29).contains(&len) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - len);
    Ok((Ipv4Addr::from(u32::from(addr) & mask), Ipv4Addr::from(mask)))
}

/// Options of `server-config`.
pub struct ServerOptions<'a> {
    pub pki_dir: &'a Path,
    pub name: Option<&'a str>,
    pub proto: &'a str,
    pub port: u16,
    pub subnet: &'a str,
    pub out: &'a Path,
    pub force: bool,
}

/// `server-config`: an OpenVPN 2.6 server config with the server's certificate, key and tls-crypt-v2 key
/// inline, `remote-cert-tls client` and the PKI's CRL.
pub fn server_config(o: &ServerOptions<'_>) -> Outcome {
    let pki = Pki::open(o.pki_dir)?;
    let name = match o.name {
        Some(n) => n.to_string(),
        None => {
            let servers: Vec<&str> = pki
                .entries
                .iter()
                .filter(|e| e.role == Role::Server && e.revoked.is_none())
                .map(|e| e.name.as_str())
                .collect();
            match servers.as_slice() {
                [one] => one.to_string(),
                [] => {
                    return Err(Failure::Input(format!(
                        "{}: no server certificate yet; make one with `ovpn-keys pki server NAME --pki {}`",
                        o.pki_dir.display(),
                        o.pki_dir.display()
                    )))
                }
                _ => {
                    return Err(Failure::Usage(format!(
                        "several server certificates ({}); pick one with --name",
                        servers.join(", ")
                    )))
                }
            }
        }
    };
    if !matches!(pki.valid(&name), Some(e) if e.role == Role::Server) {
        return Err(Failure::Input(format!(
            "{}: no valid server certificate named `{name}`",
            o.pki_dir.display()
        )));
    }
    let proto = match o.proto {
        "udp" => "udp",
        "tcp" => "tcp-server",
        other => {
            return Err(Failure::Usage(format!(
                "--proto {other}: expected udp or tcp"
            )))
        }
    };
    let (network, mask) = parse_subnet(o.subnet)?;
    let crl = std::fs::canonicalize(pki.crl_path())
        .map_err(|e| Failure::io(&pki.crl_path(), "find", e))?;
    // Checked here so the config never names a key file openvpn would refuse later.
    genkey::read_server_key(&pki.tls_crypt_v2_path())?;

    let mut text = format!(
        "# OpenVPN 2.6 server config for `{name}`, made by ovpn-keys from {}\n\
         port {port}\nproto {proto}\ndev tun\ntopology subnet\nserver {network} {mask}\n\
         keepalive 10 60\ndh none\ndata-ciphers {DATA_CIPHERS}\nremote-cert-tls client\n\
         crl-verify {crl}\npersist-key\nverb 3\n",
        o.pki_dir.display(),
        port = o.port,
        crl = crl.display()
    );
    if proto == "udp" {
        text.push_str("explicit-exit-notify 1\n");
    }
    inline(&mut text, "ca", &files::read_text(&pki.ca_path())?);
    inline(&mut text, "cert", &files::read_text(&pki.cert_path(&name))?);
    inline(&mut text, "key", &files::read_text(&pki.key_path(&name))?);
    inline(
        &mut text,
        "tls-crypt-v2",
        &files::read_text(&pki.tls_crypt_v2_path())?,
    );
    files::write_new(o.out, &text, Secrecy::Secret, o.force)?;
    println!(
        "wrote {} (server `{name}`, {} port {}, clients in {network}/{mask})",
        o.out.display(),
        o.proto,
        o.port
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_and_remotes() {
        let (net, mask) = parse_subnet("10.8.0.7/24").unwrap();
        assert_eq!(
            (net.to_string(), mask.to_string()),
            ("10.8.0.0".into(), "255.255.255.0".into())
        );
        assert!(parse_subnet("10.8.0.0/30").is_err());
        assert!(parse_subnet("10.8.0.0").is_err());
        assert!(Remote::parse("vpn.example.com", "443", "tcp").is_ok());
        assert!(Remote::parse("vpn.example.com", "0", "udp").is_err());
        assert!(Remote::parse("vpn.example.com", "1194", "icmp").is_err());
        assert!(Remote::parse("a b", "1194", "udp").is_err());
    }
}
