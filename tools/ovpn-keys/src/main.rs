//! ovpn-keys: sets up an OpenVPN deployment from nothing, compatible both ways with `openvpn --genkey`.
//! Static, tls-crypt-v2 and auth-token keys are made and read with the engine's own key code
//! (`openvpn::keys`, `openvpn::crypto::TlsCryptV2ServerKey`); certificates and CRLs are written by rcgen.
//!
//! Layer: host tool (std). Randomness comes from the OS (`OsRng`); secrets are written 0600, never printed.

mod fail;
mod files;
mod genkey;
mod pki;
mod profile;
mod show;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fail::{Failure, Outcome};

const HELP: &str = "\
ovpn-keys: keys, a small PKI, client profiles and server configs for OpenVPN (and oxvpn)

Keys (the formats of `openvpn --genkey`):
  ovpn-keys genkey secret FILE                 OpenVPN Static key V1, for tls-auth / tls-crypt
  ovpn-keys genkey tls-crypt-v2-server FILE    tls-crypt-v2 server key
  ovpn-keys genkey tls-crypt-v2-client --server-key FILE [--metadata user:BASE64 | timestamp[:UNIX]] FILE
                                               tls-crypt-v2 client key wrapped by the server key; metadata
                                               0x00 + user bytes, or 0x01 + 64-bit time (default: now)
  ovpn-keys genkey auth-token FILE             auth-token server key (auth-gen-token-secret)
  ovpn-keys show FILE [--server-key FILE]      what a key, certificate or CRL file is; a client key's
                                               metadata decoded when its server key is given

PKI (one directory: ca.crt, ca.key, crl.pem, index.txt, tc-v2-server.key, issued/, private/):
  ovpn-keys pki init DIR [--key-type p256|ed25519|rsa2048] [--days N] [--cn NAME]
                                               the CA (EC P-256 by default, 3650 days), an empty CRL and
                                               the tls-crypt-v2 server key
  ovpn-keys pki server NAME [--pki DIR] [--days N]   server certificate (EKU serverAuth; 825 days)
  ovpn-keys pki client NAME [--pki DIR] [--days N]   client certificate (EKU clientAuth; 825 days)
  ovpn-keys pki revoke NAME [--pki DIR]        revoke NAME's certificate and rewrite crl.pem
  ovpn-keys pki crl [--pki DIR]                rewrite crl.pem (it is valid 180 days)
  ovpn-keys pki list [--pki DIR]               names, serials, expiry, revoked

Profiles and server config:
  ovpn-keys profile NAME --remote HOST PORT PROTO [--remote ...] [--pki DIR] [-o FILE] [--days N]
                    [--metadata user:BASE64 | timestamp[:UNIX]]
                                               one self-contained client .ovpn (inline ca, cert, key and a
                                               tls-crypt-v2 client key whose metadata is the user name);
                                               issues NAME's client certificate if it has none; -o NAME.ovpn
  ovpn-keys server-config [--pki DIR] [--name SERVER] [--proto udp|tcp] [--port N] [--subnet CIDR] -o FILE
                                               OpenVPN 2.6 server config (inline keys, crl-verify of the
                                               PKI's crl.pem); udp, 1194, 10.8.0.0/24 by default

Common options:
  --pki DIR   the PKI directory (default: ./pki)
  --force     replace an existing output file (otherwise refused)
  -h, --help  this text

Files with secrets (keys, profiles, server configs) are written with mode 0600.
Exit codes: 0 ok; 1 bad input or refused (malformed or wrong kind of key file, bad metadata, the output
exists without --force, the name already has a certificate); 2 usage; 3 I/O error (a file cannot be read or
written).
";

/// The command line split into positional arguments and options.
#[derive(Default)]
struct Args {
    positional: Vec<String>,
    server_key: Option<PathBuf>,
    metadata: Option<String>,
    pki: Option<PathBuf>,
    key_type: Option<String>,
    days: Option<i64>,
    cn: Option<String>,
    remotes: Vec<profile::Remote>,
    out: Option<PathBuf>,
    proto: Option<String>,
    port: Option<u16>,
    subnet: Option<String>,
    name: Option<String>,
    force: bool,
    help: bool,
}

fn parse_args(raw: &[String]) -> Outcome<Args> {
    let mut a = Args::default();
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" | "help" => a.help = true,
            "--force" => a.force = true,
            "--server-key" => a.server_key = Some(value(arg)?.into()),
            "--metadata" => a.metadata = Some(value(arg)?),
            "--pki" => a.pki = Some(value(arg)?.into()),
            "--key-type" => a.key_type = Some(value(arg)?),
            "--cn" => a.cn = Some(value(arg)?),
            "-o" | "--out" => a.out = Some(value(arg)?.into()),
            "--proto" => a.proto = Some(value(arg)?),
            "--subnet" => a.subnet = Some(value(arg)?),
            "--name" => a.name = Some(value(arg)?),
            "--days" => {
                let v = value(arg)?;
                a.days = Some(
                    v.parse()
                        .ok()
                        .filter(|d| (1..=36500).contains(d))
                        .ok_or_else(|| Failure::Usage(format!("--days {v}: expected 1..=36500")))?,
                );
            }
            "--port" => {
                let v = value(arg)?;
                a.port =
                    Some(v.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                        Failure::Usage(format!("--port {v}: expected 1..=65535"))
                    })?);
            }
            "--remote" => {
                let host = value(arg)?;
                let port = value("--remote HOST")?;
                let proto = value("--remote HOST PORT")?;
                a.remotes
                    .push(profile::Remote::parse(&host, &port, &proto)?);
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Failure::Usage(format!("unknown option {s}")))
            }
            _ => a.positional.push(arg.clone()),
        }
    }
    Ok(a)
}

fn run(raw: &[String]) -> Outcome {
    let a = parse_args(raw)?;
    if a.help || a.positional.is_empty() {
        print!("{HELP}");
        return if a.help {
            Ok(())
        } else {
            Err(Failure::Usage("no command given".into()))
        };
    }
    let pos: Vec<&str> = a.positional.iter().map(String::as_str).collect();
    let pki_dir = a.pki.clone().unwrap_or_else(|| PathBuf::from("pki"));
    match pos.as_slice() {
        ["genkey", kind, file] => genkey::genkey(
            kind,
            Path::new(file),
            a.server_key.as_deref(),
            a.metadata.as_deref(),
            a.force,
        ),
        ["show", file] => show::show(Path::new(file), a.server_key.as_deref()),
        ["pki", "init", dir] => {
            let key_type = match &a.key_type {
                Some(t) => pki::KeyType::parse(t)?,
                None => pki::KeyType::P256,
            };
            pki::init(
                Path::new(dir),
                key_type,
                a.days.unwrap_or(3650),
                a.cn.as_deref().unwrap_or("oxvpn CA"),
                a.force,
            )
        }
        ["pki", role @ ("server" | "client"), name] => {
            let role = if *role == "server" {
                pki::Role::Server
            } else {
                pki::Role::Client
            };
            pki::Pki::open(&pki_dir)?.issue(role, name, a.days.unwrap_or(825))
        }
        ["pki", "revoke", name] => pki::Pki::open(&pki_dir)?.revoke(name),
        ["pki", "crl"] => {
            let p = pki::Pki::open(&pki_dir)?;
            p.write_crl()?;
            println!("wrote {}", p.crl_path().display());
            Ok(())
        }
        ["pki", "list"] => {
            pki::Pki::open(&pki_dir)?.list();
            Ok(())
        }
        ["profile", name] => {
            pki::check_name(name)?;
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{name}.ovpn")));
            profile::profile(
                &pki_dir,
                name,
                &a.remotes,
                &out,
                a.days.unwrap_or(825),
                a.metadata.as_deref(),
                a.force,
            )
        }
        ["server-config"] => {
            let out = a.out.as_deref().ok_or_else(|| {
                Failure::Usage("server-config needs -o FILE (it holds secrets)".into())
            })?;
            profile::server_config(&profile::ServerOptions {
                pki_dir: &pki_dir,
                name: a.name.as_deref(),
                proto: a.proto.as_deref().unwrap_or("udp"),
                port: a.port.unwrap_or(1194),
                subnet: a.subnet.as_deref().unwrap_or("10.8.0.0/24"),
                out,
                force: a.force,
            })
        }
        _ => Err(Failure::Usage(format!(
            "unknown command or wrong arguments: {}",
            pos.join(" ")
        ))),
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match run(&raw) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ovpn-keys: {e}");
            ExitCode::from(e.code())
        }
    }
}
